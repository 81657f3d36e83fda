//! Fixtures shared by the crate's unit tests and its simulation tests, and
//! usable by callers' tests.

use keymaster_policy::{
    CdsPublish, KeyLayout, KskRollover, ParentDsCheck, UnknownParentDs, ZskRollover,
};

use crate::policy::{DenialSettings, LifecyclePolicy};

/// Seconds in a day.
pub const DAY: u64 = 86_400;

/// Seconds in an hour.
pub const HOUR: u64 = 3_600;

/// Start time of tests and simulations (2001-09-09 01:46:40 UTC).
pub const T0: u64 = 1_000_000_000;

/// Returns a KSK+ZSK policy whose waits are easy to add up and tell apart:
///
/// - DNSKEY publication: TTL 1 h + propagation 300 s + publish safety 600 s
///   = 4 500 s; withdrawal with retire safety 1 200 s = 5 100 s;
/// - zone signatures: maximum TTL 1 day, so 87 300 s and 87 900 s;
/// - DS: parent TTL 2 h, so 7 800 s in and 8 400 s out, and the parent's
///   propagation delay is 1 h;
/// - lifetimes: ZSK 30 days, KSK and CSK 365 days;
/// - NSEC, double-KSK and pre-publication, no RFC 5011.
pub fn policy() -> LifecyclePolicy {
    LifecyclePolicy {
        algorithm: 13,
        layout: KeyLayout::KskZsk,
        ksk_lifetime: Some(365 * DAY),
        zsk_lifetime: Some(30 * DAY),
        csk_lifetime: Some(365 * DAY),
        dnskey_ttl: HOUR,
        max_zone_ttl: DAY,
        zone_propagation_delay: 300,
        parent_ds_ttl: 2 * HOUR,
        parent_propagation_delay: HOUR,
        publish_safety: 600,
        retire_safety: 1_200,
        signature_validity: 14 * DAY,
        signature_refresh: 5 * DAY,
        zsk_method: ZskRollover::PrePublication,
        ksk_method: KskRollover::DoubleKsk,
        cds_publish: CdsPublish::Rollover,
        rfc5011: false,
        rfc5011_add_hold_down: 30 * DAY,
        rfc5011_remove_hold_down: 30 * DAY,
        parent_ds_check: ParentDsCheck::AllParentServers,
        unknown_parent_ds: UnknownParentDs::Tolerate,
        denial: DenialSettings::Nsec,
    }
}
