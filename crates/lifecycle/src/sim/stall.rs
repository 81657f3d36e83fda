//! Stalls: steps where key management stops moving for longer than the
//! policy allows.
//!
//! A simulation reports a [`Stall`] in two cases:
//!
//! - a record stays rumoured or unretentive longer than its maximum
//!   legitimate wait. For a DNSKEY and its signatures over the DNSKEY RRset
//!   that is the DNSKEY TTL plus the zone propagation delay plus the larger
//!   safety margin. For signatures over zone data it is the same with the
//!   maximum zone TTL. For a DS it is the larger of the scenario's parent delay and
//!   the parent propagation delay, plus the parent propagation delay once
//!   more (going insecure waits for it after the parent's change), plus the
//!   parent's DS TTL and the larger safety margin. The TTLs are the largest
//!   any policy of the scenario sets, or the parent serves, and time during
//!   key store outages does not count;
//! - the engine returns no due time while a rollover runs (a key is not yet
//!   at its goal) and no parent publication is pending, so nothing would
//!   ever move it on.

use std::collections::BTreeSet;
use std::fmt;

use keymaster_api::RecordState;
use serde::{Deserialize, Serialize};

use super::Scenario;
use crate::state::{EngineState, Goal, Key, RecordKind};

/// A step where key management stopped moving for longer than the policy
/// allows. The module documentation of `sim::stall` gives the exact rule:
/// a record that waits longer than its maximum legitimate wait, or a
/// running rollover with no due time and no pending parent publication.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stall {
    /// Time the stalled record or rollover stopped moving.
    pub since: u64,
    /// Time the simulation found the stall.
    pub found: u64,
    /// The stalled key, if one record stalled.
    pub key_id: Option<String>,
    /// Description of the stalled record or rollover.
    pub what: String,
}

impl fmt::Display for Stall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (since {}, found at {})",
            self.what, self.since, self.found
        )
    }
}

/// Maximum legitimate waits of a scenario, per record kind.
#[derive(Clone, Copy, Debug)]
struct Allowance {
    dnskey: u64,
    zone: u64,
    ds: u64,
}

impl Allowance {
    fn of(scenario: &Scenario) -> Self {
        let policies: Vec<_> = std::iter::once(&scenario.policy)
            .chain(scenario.policy_changes.iter().map(|(_, policy)| policy))
            .collect();
        let largest = |value: &dyn Fn(&crate::policy::LifecyclePolicy) -> u64| {
            policies
                .iter()
                .map(|policy| value(policy))
                .max()
                .unwrap_or(0)
        };
        let safety = largest(&|policy| policy.publish_safety.max(policy.retire_safety));
        let zone_delay = largest(&|policy| policy.zone_propagation_delay);
        let parent_propagation = largest(&|policy| policy.parent_propagation_delay);
        let parent_ds_ttl = scenario
            .parent_ds_ttl_changes
            .iter()
            .map(|(_, ttl)| *ttl)
            .chain([scenario.policy.parent_ds_ttl])
            .max()
            .unwrap_or(0);
        Self {
            dnskey: largest(&|policy| policy.dnskey_ttl) + zone_delay + safety,
            zone: largest(&|policy| policy.max_zone_ttl) + zone_delay + safety,
            ds: scenario.parent_delay.max(parent_propagation)
                + parent_propagation
                + parent_ds_ttl
                + safety,
        }
    }

    fn for_kind(&self, kind: RecordKind) -> u64 {
        match kind {
            RecordKind::Dnskey | RecordKind::Krrsig => self.dnskey,
            RecordKind::Zrrsig => self.zone,
            RecordKind::Ds => self.ds,
        }
    }
}

/// Watches the engine's state step by step and collects stalls.
pub(super) struct StallWatch {
    allowance: Allowance,
    outages: Vec<(u64, u64)>,
    /// Records already reported, by key id, kind and the time they entered
    /// their state.
    reported: BTreeSet<(String, RecordKind, u64)>,
    /// Start of the current stretch of steps with no due time.
    idle_since: Option<u64>,
    pub(super) stalls: Vec<Stall>,
}

impl StallWatch {
    pub(super) fn new(scenario: &Scenario) -> Self {
        Self {
            allowance: Allowance::of(scenario),
            outages: scenario.key_store_outages.clone(),
            reported: BTreeSet::new(),
            idle_since: None,
            stalls: Vec::new(),
        }
    }

    /// Checks the state after a step at `now`. `moving` is true if the
    /// engine returned a due time or a parent publication is pending.
    pub(super) fn check_step(&mut self, state: &EngineState, now: u64, moving: bool) {
        self.check_records(state, now);
        let running = state.keys.iter().any(|key| !key.standby && !at_goal(key));
        if moving || !running {
            self.idle_since = None;
            return;
        }
        if self.idle_since.is_none() {
            self.idle_since = Some(now);
            self.stalls.push(Stall {
                since: now,
                found: now,
                key_id: None,
                what: "a rollover runs but the engine has no due time and no parent \
                       publication is pending"
                    .to_string(),
            });
        }
    }

    /// Reports every record that has waited longer than its allowance.
    pub(super) fn check_records(&mut self, state: &EngineState, now: u64) {
        for key in &state.keys {
            for kind in key.kinds() {
                let record = key.record(*kind);
                let target = match record.state {
                    RecordState::Rumoured => "omnipresent",
                    RecordState::Unretentive => "hidden",
                    RecordState::Hidden | RecordState::Omnipresent => continue,
                };
                let waited = now - record.since - self.outage_overlap(record.since, now);
                let allowed = self.allowance.for_kind(*kind);
                if waited <= allowed {
                    continue;
                }
                let id = (key.id.clone(), *kind, record.since);
                if !self.reported.insert(id) {
                    continue;
                }
                self.stalls.push(Stall {
                    since: record.since,
                    found: now,
                    key_id: Some(key.id.clone()),
                    what: format!(
                        "{kind:?} of key {} did not become {target} within {allowed}s",
                        key.id
                    ),
                });
            }
        }
    }

    /// Seconds of key store outages within `[from, to)`.
    fn outage_overlap(&self, from: u64, to: u64) -> u64 {
        self.outages
            .iter()
            .map(|(start, end)| end.min(&to).saturating_sub(*start.max(&from)))
            .sum()
    }
}

/// Returns true if every record of the key has reached the key's goal.
fn at_goal(key: &Key) -> bool {
    match key.goal {
        Goal::Omnipresent => key.is_established(),
        Goal::Hidden => key.is_gone(),
    }
}
