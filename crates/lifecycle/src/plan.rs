//! Forecasts of key events: the real engine run forward on a virtual clock
//! from a stored state, for `keymaster plan` and the next transitions in
//! `keymaster key list`.
//!
//! A forecast assumes that nothing unexpected happens:
//!
//! - the parent serves a requested DS RRset at all its servers
//!   `parent_propagation_delay` after the request;
//! - with `parent_ds_check = "manual"` the operator confirms each DS change
//!   as soon as the parent serves it;
//! - the key store stays readable and no operator request arrives;
//! - the policy stays as it is.
//!
//! Keys the engine generates during a forecast have no key tag yet
//! (`key_tag: None`), and neither has a key after its REVOKE bit is set,
//! because only the caller can compute tags from key data. The loop steps
//! from one due time to the next and stops after [`MAX_STEPS`] steps.

use std::collections::{BTreeMap, BTreeSet};

use keymaster_api::{KeyRole, RecordState};
use keymaster_policy::ParentDsCheck;
use serde::{Deserialize, Serialize};

use crate::engine::step;
use crate::events::{self, DS_AT_PARENT, DS_GONE_FROM_PARENT};
use crate::policy::LifecyclePolicy;
use crate::state::{EngineState, Request};
use crate::types::{Action, Observations, ParentDs};

/// Upper bound of engine steps in one forecast.
pub const MAX_STEPS: usize = 100_000;

/// Span of the forecast behind [`next_transitions`]: ten 365-day years.
pub const NEXT_TRANSITIONS_SPAN: u64 = 10 * 365 * 86_400;

/// One key event of a forecast.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedEvent {
    /// UNIX time of the event.
    pub at: u64,
    pub key_id: String,
    pub role: KeyRole,
    pub algorithm: u8,
    /// Key tag, when known: `None` for keys generated in the forecast and
    /// for keys after their REVOKE bit is set.
    pub key_tag: Option<u16>,
    /// The event in words, such as "DNSKEY published", "signs zone data",
    /// "DS at the parent", "DS omnipresent", "revoked" or "removed".
    pub event: String,
}

/// Runs the engine forward from `now` to `until` and returns every key
/// event in time order.
pub fn forecast(
    state: &EngineState,
    policy: &LifecyclePolicy,
    now: u64,
    until: u64,
) -> Vec<PlannedEvent> {
    let mut events = Vec::new();
    run_forecast(state, policy, now, until, &mut events, |_| false);
    events
}

/// Returns up to `limit` upcoming events per key of `state`, by key id,
/// each as (UNIX time, event). Keys the engine would generate later are
/// left out.
pub fn next_transitions(
    state: &EngineState,
    policy: &LifecyclePolicy,
    now: u64,
    limit: usize,
) -> BTreeMap<String, Vec<(u64, String)>> {
    let mut transitions: BTreeMap<String, Vec<(u64, String)>> = state
        .keys
        .iter()
        .map(|key| (key.id.clone(), Vec::new()))
        .collect();
    let mut events = Vec::new();
    let until = now.saturating_add(NEXT_TRANSITIONS_SPAN);
    run_forecast(state, policy, now, until, &mut events, |events| {
        // Stop once every key has `limit` events or is removed.
        state.keys.iter().all(|key| {
            let of_key = events.iter().filter(|event| event.key_id == key.id);
            let mut count = 0;
            for event in of_key {
                if event.event == "removed" {
                    return true;
                }
                count += 1;
            }
            count >= limit
        })
    });
    for event in events {
        if let Some(list) = transitions.get_mut(&event.key_id) {
            if list.len() < limit {
                list.push((event.at, event.event));
            }
        }
    }
    transitions
}

/// What events name about a key: role, algorithm and key tag.
#[derive(Clone, Copy)]
struct KeyFacts {
    role: KeyRole,
    algorithm: u8,
    key_tag: Option<u16>,
}

/// The facts of every key seen in a forecast, by key id.
type KeyTable = BTreeMap<String, KeyFacts>;

/// The simulated parent: the DS RRset it serves and the one it will serve.
struct Parent {
    served: BTreeSet<String>,
    pending: Option<(u64, BTreeSet<String>)>,
}

fn run_forecast(
    start: &EngineState,
    policy: &LifecyclePolicy,
    now: u64,
    until: u64,
    events: &mut Vec<PlannedEvent>,
    mut done: impl FnMut(&[PlannedEvent]) -> bool,
) {
    let mut keys: KeyTable = start
        .keys
        .iter()
        .map(|key| {
            let facts = KeyFacts {
                role: key.role,
                algorithm: key.algorithm,
                key_tag: Some(key.key_tag),
            };
            (key.id.clone(), facts)
        })
        .collect();
    let mut parent = Parent::from_state(start, policy, now);
    let mut state = start.clone();
    let mut now = now;
    for _ in 0..MAX_STEPS {
        // The parent's publication, then the engine's step.
        let mut found = Vec::new();
        parent.publish(now, &mut found);
        let observations = parent.observe(&state, policy);
        let result = step(&state, policy, &observations, now);
        for action in &result.actions {
            if let Action::GenerateKey {
                id,
                role,
                algorithm,
            } = action
            {
                let facts = KeyFacts {
                    role: *role,
                    algorithm: *algorithm,
                    key_tag: None,
                };
                keys.insert(id.clone(), facts);
            }
            found.extend(events::key_events(&state, action));
            if let Action::RequestDs { ids, .. } = action {
                let ids = ids.iter().cloned().collect();
                parent.pending = Some((now + policy.parent_propagation_delay, ids));
            }
        }
        found.extend(events::record_events(&state, &result.state));
        for (id, event) in found {
            push_event(events, &mut keys, now, id, event);
        }
        state = result.state;
        if done(events) {
            return;
        }

        // The next moment anything happens: the engine's due time or the
        // parent's publication.
        let parent_at = parent.pending.as_ref().map(|(at, _)| *at);
        let next = [result.next_due, parent_at].into_iter().flatten().min();
        match next {
            Some(at) if at <= until => now = at.max(now + 1),
            _ => return,
        }
    }
}

fn push_event(
    events: &mut Vec<PlannedEvent>,
    keys: &mut KeyTable,
    at: u64,
    key_id: String,
    event: String,
) {
    let Some(facts) = keys.get_mut(&key_id) else {
        return;
    };
    let key_tag = facts.key_tag;
    // The REVOKE bit changes the key tag, to a value only the caller knows.
    if event == "revoked" {
        facts.key_tag = None;
    }
    events.push(PlannedEvent {
        at,
        key_id,
        role: facts.role,
        algorithm: facts.algorithm,
        key_tag,
        event,
    });
}

impl Parent {
    /// Reconstructs what the parent serves from the engine's record of its
    /// DS changes, and schedules the publication of the last request.
    fn from_state(state: &EngineState, policy: &LifecyclePolicy, now: u64) -> Self {
        let served: BTreeSet<String> = state
            .keys
            .iter()
            .filter(|key| match key.ds.state {
                RecordState::Omnipresent => true,
                RecordState::Rumoured => key.ds_seen.is_some(),
                RecordState::Unretentive => key.ds_gone.is_none(),
                RecordState::Hidden => false,
            })
            .map(|key| key.id.clone())
            .collect();
        let requested: BTreeSet<String> = state.ds_requested.iter().cloned().collect();
        let last_change = state
            .keys
            .iter()
            .filter(|key| {
                matches!(
                    key.ds.state,
                    RecordState::Rumoured | RecordState::Unretentive
                )
            })
            .map(|key| key.ds.since)
            .max()
            .unwrap_or(now);
        let pending = (requested != served).then(|| {
            let at = (last_change + policy.parent_propagation_delay).max(now);
            (at, requested)
        });
        Self { served, pending }
    }

    /// Serves the pending DS RRset if it is due, and lists the changes.
    fn publish(&mut self, now: u64, found: &mut Vec<(String, String)>) {
        let due = self.pending.as_ref().is_some_and(|(at, _)| *at <= now);
        if !due {
            return;
        }
        let Some((_, ids)) = self.pending.take() else {
            return;
        };
        for id in ids.difference(&self.served) {
            found.push((id.clone(), DS_AT_PARENT.to_string()));
        }
        for id in self.served.difference(&ids) {
            found.push((id.clone(), DS_GONE_FROM_PARENT.to_string()));
        }
        self.served = ids;
    }

    /// Returns what a server would observe. With a manual DS check the
    /// operator confirms a change once the parent serves the requested
    /// RRset.
    fn observe(&self, state: &EngineState, policy: &LifecyclePolicy) -> Observations {
        let parent_ds = state
            .keys
            .iter()
            .map(|key| {
                let seen = if self.served.contains(&key.id) {
                    ParentDs::AtAllServers
                } else {
                    ParentDs::Gone
                };
                (key.id.clone(), seen)
            })
            .collect();
        let mut requests = Vec::new();
        let manual = policy.parent_ds_check == ParentDsCheck::Manual;
        if manual && self.pending.is_none() && awaits_confirmation(state) {
            requests.push(Request::Step);
        }
        Observations {
            parent_ds,
            secure_delegation: Some(!self.served.is_empty()),
            requests,
            ..Observations::default()
        }
    }
}

/// Returns true if a DS change waits for the operator's confirmation.
fn awaits_confirmation(state: &EngineState) -> bool {
    let key_waits = state.keys.iter().any(|key| match key.ds.state {
        RecordState::Rumoured => key.ds_seen.is_none(),
        RecordState::Unretentive => key.ds_gone.is_none(),
        RecordState::Hidden | RecordState::Omnipresent => false,
    });
    let insecure_waits = state
        .going_insecure
        .is_some_and(|going| going.ds_gone.is_none());
    key_waits || insecure_waits
}

#[cfg(test)]
mod tests;
