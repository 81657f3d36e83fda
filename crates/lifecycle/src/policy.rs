//! Timing inputs of the engine and the check that a policy's key lifetimes
//! are long enough for the rollovers they start.
//!
//! Every duration is in seconds. The waits here are the intervals of
//! RFC 7583 section 3: the propagation delay (Dprp), the TTL of the DNSKEY
//! RRset (TTLkey), the maximum TTL of signed zone data (TTLsig), the parent's
//! DS TTL (TTLds) and the publish and retire safety margins.

use std::fmt;

use keymaster_policy::{
    CdsPublish, Denial, KeyLayout, KskRollover, ParentDsCheck, Policy, UnknownParentDs, ZskRollover,
};
use serde::{Deserialize, Serialize};

/// RFC 5011 section 2.4.1: the add hold-down time is 30 days. It is the
/// default of [`LifecyclePolicy::rfc5011_add_hold_down`].
pub const RFC5011_ADD_HOLD_DOWN: u64 = 30 * 86_400;

/// RFC 5011 section 2.4.1: the remove hold-down time is 30 days. It is the
/// default of [`LifecyclePolicy::rfc5011_remove_hold_down`].
pub const RFC5011_REMOVE_HOLD_DOWN: u64 = 30 * 86_400;

/// Denial-of-existence settings: NSEC, or NSEC3 with its parameters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "method")]
pub enum DenialSettings {
    Nsec,
    Nsec3 {
        iterations: u16,
        salt_length: u8,
        opt_out: bool,
    },
}

impl fmt::Display for DenialSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Nsec => f.write_str("NSEC"),
            Self::Nsec3 {
                iterations,
                salt_length,
                opt_out,
            } => write!(
                f,
                "NSEC3 (iterations {iterations}, salt length {salt_length}, opt-out {opt_out})"
            ),
        }
    }
}

/// The timing and method settings the engine works from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LifecyclePolicy {
    /// DNSSEC algorithm number of new keys.
    pub algorithm: u8,
    pub layout: KeyLayout,
    /// Key lifetimes in seconds; `None` means the key is rolled only on request.
    pub ksk_lifetime: Option<u64>,
    pub zsk_lifetime: Option<u64>,
    pub csk_lifetime: Option<u64>,
    pub dnskey_ttl: u64,
    pub max_zone_ttl: u64,
    pub zone_propagation_delay: u64,
    pub parent_ds_ttl: u64,
    pub parent_propagation_delay: u64,
    pub publish_safety: u64,
    pub retire_safety: u64,
    pub signature_validity: u64,
    pub signature_refresh: u64,
    pub zsk_method: ZskRollover,
    pub ksk_method: KskRollover,
    pub cds_publish: CdsPublish,
    /// Whether KSK rollovers follow RFC 5011 (hold-down times, REVOKE bit).
    /// RFC 5011 needs the new key in the DNSKEY RRset, signed by the old
    /// one, before the old one goes. So with RFC 5011 every KSK and CSK
    /// rollover is a double-KSK rollover, and `ksk_method` is ignored.
    pub rfc5011: bool,
    /// RFC 5011 add hold-down in seconds: how long the new key's DNSKEY
    /// stays in every cache before its DS is requested.
    #[serde(default = "default_add_hold_down")]
    pub rfc5011_add_hold_down: u64,
    /// RFC 5011 remove hold-down in seconds: how long a revoked key stays
    /// published with the REVOKE bit before it is withdrawn.
    #[serde(default = "default_remove_hold_down")]
    pub rfc5011_remove_hold_down: u64,
    pub parent_ds_check: ParentDsCheck,
    /// Handling of DS records at the parent that match no key. With `Block`
    /// no DS record of the zone's keys becomes omnipresent or leaves while
    /// the parent serves such records.
    #[serde(default = "default_unknown_parent_ds")]
    pub unknown_parent_ds: UnknownParentDs,
    pub denial: DenialSettings,
}

impl From<&Policy> for LifecyclePolicy {
    fn from(policy: &Policy) -> Self {
        let denial = match policy.denial {
            Denial::Nsec => DenialSettings::Nsec,
            Denial::Nsec3 => DenialSettings::Nsec3 {
                iterations: policy.nsec3_iterations,
                salt_length: policy.nsec3_salt_length,
                opt_out: policy.nsec3_opt_out,
            },
        };
        Self {
            algorithm: policy.algorithm,
            layout: policy.keys,
            ksk_lifetime: policy.ksk_lifetime.limit().map(|d| d.as_secs()),
            zsk_lifetime: policy.zsk_lifetime.limit().map(|d| d.as_secs()),
            csk_lifetime: policy.csk_lifetime.limit().map(|d| d.as_secs()),
            dnskey_ttl: policy.dnskey_ttl.as_secs(),
            max_zone_ttl: policy.max_zone_ttl.as_secs(),
            zone_propagation_delay: policy.zone_propagation_delay.as_secs(),
            parent_ds_ttl: policy.parent_ds_ttl.as_secs(),
            parent_propagation_delay: policy.parent_propagation_delay.as_secs(),
            publish_safety: policy.publish_safety.as_secs(),
            retire_safety: policy.retire_safety.as_secs(),
            signature_validity: policy.signature_validity.as_secs(),
            signature_refresh: policy.signature_refresh.as_secs(),
            zsk_method: policy.zsk_rollover,
            ksk_method: policy.ksk_rollover,
            cds_publish: policy.cds_publish,
            rfc5011: policy.rfc5011,
            rfc5011_add_hold_down: policy.rfc5011_add_hold_down.as_secs(),
            rfc5011_remove_hold_down: policy.rfc5011_remove_hold_down.as_secs(),
            parent_ds_check: policy.parent_ds_check,
            unknown_parent_ds: policy.unknown_parent_ds,
            denial,
        }
    }
}

/// Error for a policy whose key lifetime is shorter than the rollover that
/// replaces the key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LifetimeTooShort {
    pub role: keymaster_api::KeyRole,
    pub lifetime: u64,
    /// Seconds from the start of a rollover until the old key is removed.
    pub rollover: u64,
    /// The waits that add up to `rollover`, in words.
    pub breakdown: String,
}

impl fmt::Display for LifetimeTooShort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use keymaster_api::KeyRole;
        let (key, role) = match self.role {
            KeyRole::Ksk => ("ksk_lifetime", "KSK"),
            KeyRole::Zsk => ("zsk_lifetime", "ZSK"),
            KeyRole::Csk => ("csk_lifetime", "CSK"),
        };
        let lifetime = keymaster_policy::Duration(self.lifetime);
        write!(
            f,
            "{key} {lifetime} ({}s) is shorter than a {role} rollover, which takes {}s ({}). \
             Raise {key} to at least {}s, or lower the TTLs, delays and safety margins \
             that make up the rollover",
            self.lifetime, self.rollover, self.breakdown, self.rollover
        )
    }
}

impl std::error::Error for LifetimeTooShort {}

fn default_add_hold_down() -> u64 {
    RFC5011_ADD_HOLD_DOWN
}

fn default_remove_hold_down() -> u64 {
    RFC5011_REMOVE_HOLD_DOWN
}

fn default_unknown_parent_ds() -> UnknownParentDs {
    UnknownParentDs::Tolerate
}

impl Default for LifecyclePolicy {
    /// Returns the settings of the built-in `default` policy.
    fn default() -> Self {
        Self::from(&Policy::default())
    }
}

impl LifecyclePolicy {
    /// Wait after publishing a DNSKEY RRset change until every cache has it.
    pub fn dnskey_publish_wait(&self, dnskey_ttl: u64) -> u64 {
        dnskey_ttl + self.zone_propagation_delay + self.publish_safety
    }

    /// Wait after withdrawing a DNSKEY until no cache has it.
    pub fn dnskey_retire_wait(&self, dnskey_ttl: u64) -> u64 {
        dnskey_ttl + self.zone_propagation_delay + self.retire_safety
    }

    /// Wait after signing all zone data with a key until every cached RRset
    /// carries its signature.
    pub fn zone_signature_publish_wait(&self, max_zone_ttl: u64) -> u64 {
        max_zone_ttl + self.zone_propagation_delay + self.publish_safety
    }

    /// Wait after dropping a key's signatures until no cached RRset carries them.
    pub fn zone_signature_retire_wait(&self, max_zone_ttl: u64) -> u64 {
        max_zone_ttl + self.zone_propagation_delay + self.retire_safety
    }

    /// Wait after the parent publishes a DS until every cache has it.
    pub fn ds_publish_wait(&self, parent_ds_ttl: u64) -> u64 {
        parent_ds_ttl + self.publish_safety
    }

    /// Wait after the parent withdraws a DS until no cache has it.
    pub fn ds_retire_wait(&self, parent_ds_ttl: u64) -> u64 {
        parent_ds_ttl + self.retire_safety
    }

    /// Estimated time from requesting a DS change until caches hold the new
    /// DS RRset, when the parent takes `parent_propagation_delay` to publish.
    pub fn ds_change_estimate(&self) -> u64 {
        self.parent_propagation_delay + self.ds_publish_wait(self.parent_ds_ttl)
    }

    /// Returns the lifetime configured for a role.
    pub fn lifetime(&self, role: keymaster_api::KeyRole) -> Option<u64> {
        match role {
            keymaster_api::KeyRole::Ksk => self.ksk_lifetime,
            keymaster_api::KeyRole::Zsk => self.zsk_lifetime,
            keymaster_api::KeyRole::Csk => self.csk_lifetime,
        }
    }

    /// Returns the KSK rollover method in use: double-KSK whenever RFC 5011
    /// is on, `ksk_method` otherwise.
    pub fn ksk_rollover_method(&self) -> KskRollover {
        if self.rfc5011 {
            KskRollover::DoubleKsk
        } else {
            self.ksk_method
        }
    }

    /// Time a revoked key stays published before it is withdrawn: the
    /// RFC 5011 remove hold-down, but at least the wait until every cache
    /// has the DNSKEY RRset with the REVOKE bit.
    pub fn revoked_key_hold(&self, dnskey_ttl: u64) -> u64 {
        self.rfc5011_remove_hold_down
            .max(self.dnskey_publish_wait(dnskey_ttl))
    }

    /// Time from the start of a rollover until the successor takes over, so
    /// the engine starts a rollover this long before the key's lifetime ends.
    pub fn rollover_lead(&self, role: keymaster_api::KeyRole) -> u64 {
        use keymaster_api::KeyRole;
        let dnskey = self.dnskey_publish_wait(self.dnskey_ttl);
        let hold_down = if self.rfc5011 {
            self.rfc5011_add_hold_down
        } else {
            0
        };
        match role {
            KeyRole::Zsk => match self.zsk_method {
                ZskRollover::PrePublication => dnskey,
                ZskRollover::DoubleSignature => 0,
            },
            KeyRole::Ksk => match self.ksk_rollover_method() {
                KskRollover::DoubleKsk => dnskey + hold_down,
                KskRollover::DoubleDs => self.ds_change_estimate(),
            },
            KeyRole::Csk => dnskey + hold_down,
        }
    }

    /// Time from the start of a rollover until the old key is removed, with
    /// the waits that make it up.
    pub fn rollover_duration(&self, role: keymaster_api::KeyRole) -> (u64, String) {
        use keymaster_api::KeyRole;
        let dnskey_in = self.dnskey_publish_wait(self.dnskey_ttl);
        let dnskey_out = self.dnskey_retire_wait(self.dnskey_ttl);
        let sig_in = self.zone_signature_publish_wait(self.max_zone_ttl);
        let sig_out = self.zone_signature_retire_wait(self.max_zone_ttl);
        let ds_swap = self.parent_propagation_delay + self.ds_retire_wait(self.parent_ds_ttl);
        let lead = self.rollover_lead(role);
        let remove_hold_down = if self.rfc5011 && role != KeyRole::Zsk {
            self.revoked_key_hold(self.dnskey_ttl)
        } else {
            0
        };
        let parts: Vec<(&str, u64)> = match role {
            KeyRole::Zsk => match self.zsk_method {
                ZskRollover::PrePublication => vec![
                    ("DNSKEY publication", dnskey_in),
                    ("signature swap", sig_out),
                    ("DNSKEY withdrawal", dnskey_out),
                ],
                ZskRollover::DoubleSignature => vec![
                    ("double signatures", sig_in),
                    ("DNSKEY and signature withdrawal", dnskey_out.max(sig_out)),
                ],
            },
            KeyRole::Ksk => match self.ksk_rollover_method() {
                KskRollover::DoubleKsk => vec![
                    ("DNSKEY publication", lead),
                    ("DS swap", ds_swap),
                    ("DNSKEY withdrawal", dnskey_out + remove_hold_down),
                ],
                KskRollover::DoubleDs => vec![
                    ("DS publication", lead),
                    ("DNSKEY swap", dnskey_out + remove_hold_down),
                    ("DS withdrawal", ds_swap),
                ],
            },
            KeyRole::Csk => vec![
                ("DNSKEY publication", lead),
                ("DS and signature swap", ds_swap.max(sig_out)),
                ("DNSKEY withdrawal", dnskey_out + remove_hold_down),
            ],
        };
        let total = parts.iter().map(|(_, seconds)| seconds).sum();
        let words: Vec<String> = parts
            .iter()
            .map(|(name, seconds)| format!("{name} {seconds}s"))
            .collect();
        (total, words.join(" + "))
    }

    /// Rejects a policy whose lifetime for a role in use is shorter than the
    /// rollover that replaces a key of that role.
    pub fn check(&self) -> Result<(), LifetimeTooShort> {
        for role in roles(self.layout) {
            let Some(lifetime) = self.lifetime(*role) else {
                continue;
            };
            let (rollover, breakdown) = self.rollover_duration(*role);
            if lifetime < rollover {
                return Err(LifetimeTooShort {
                    role: *role,
                    lifetime,
                    rollover,
                    breakdown,
                });
            }
        }
        Ok(())
    }
}

/// Returns the key roles a layout uses.
pub fn roles(layout: KeyLayout) -> &'static [keymaster_api::KeyRole] {
    use keymaster_api::KeyRole;
    match layout {
        KeyLayout::KskZsk => &[KeyRole::Ksk, KeyRole::Zsk],
        KeyLayout::Csk => &[KeyRole::Csk],
    }
}

#[cfg(test)]
mod tests {
    use keymaster_policy::{Duration, Lifetime, PolicyFile};

    use super::*;
    use crate::testing::{policy, DAY};

    #[test]
    fn short_lifetime_names_numbers() {
        let short = LifecyclePolicy {
            zsk_lifetime: Some(DAY),
            ..policy()
        };
        let error = short.check().expect_err("one day is too short");
        // DNSKEY publication 4500s + signature swap 87900s + withdrawal 5100s.
        assert_eq!(error.rollover, 4_500 + 87_900 + 5_100);
        let message = error.to_string();
        assert!(
            message.starts_with("zsk_lifetime 1d (86400s) is shorter than a ZSK rollover"),
            "{message}"
        );
        assert!(message.contains("takes 97500s"), "{message}");
        assert!(message.contains("DNSKEY publication 4500s"), "{message}");
        assert!(message.contains("at least 97500s"), "{message}");
    }

    #[test]
    fn configured_short_lifetime_is_rejected() {
        // The policy crate accepts the file; the lifecycle check rejects it.
        let file = PolicyFile {
            zsk_lifetime: Some(Lifetime::Limited(Duration::days(1))),
            ..PolicyFile::default()
        };
        let configured = Policy::from_file("short", &file).expect("valid policy file");
        let error = LifecyclePolicy::from(&configured)
            .check()
            .expect_err("one day is too short");
        assert_eq!(error.role, keymaster_api::KeyRole::Zsk);
        assert_eq!(error.lifetime, DAY);
        assert!(error.rollover > DAY, "{error}");
    }

    #[test]
    fn default_policy_passes_check() {
        assert_eq!(LifecyclePolicy::default().check(), Ok(()));
        assert_eq!(policy().check(), Ok(()));
    }

    #[test]
    fn rfc5011_hold_downs_count_in_rollover() {
        let policy = LifecyclePolicy {
            rfc5011: true,
            rfc5011_add_hold_down: 10 * DAY,
            rfc5011_remove_hold_down: 20 * DAY,
            ksk_method: KskRollover::DoubleDs,
            ..policy()
        };
        assert_eq!(policy.ksk_rollover_method(), KskRollover::DoubleKsk);
        // DNSKEY publication 4500s and the add hold-down, the DS swap
        // (parent propagation 3600s + DS retire wait 8400s), then the
        // remove hold-down and the DNSKEY withdrawal 5100s.
        let (rollover, breakdown) = policy.rollover_duration(keymaster_api::KeyRole::Ksk);
        assert_eq!(rollover, 4_500 + 10 * DAY + 12_000 + 20 * DAY + 5_100);
        assert!(breakdown.contains("DS swap 12000s"), "{breakdown}");
        let short = LifecyclePolicy {
            ksk_lifetime: Some(30 * DAY),
            ..policy
        };
        let error = short.check().expect_err("30 days is too short");
        assert_eq!(error.role, keymaster_api::KeyRole::Ksk);
    }
}
