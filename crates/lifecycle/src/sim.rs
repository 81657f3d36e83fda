//! A simulated zone, parent and resolver population that drives the engine
//! with a virtual clock and counts the seconds any resolver could see a
//! bogus answer.
//!
//! The simulation applies the engine's actions the way a server would: each
//! change of the DNSKEY RRset, of the keys signing zone data, or of the
//! parent's DS RRset becomes a new *version* with the TTL it was published
//! with. A resolver may hold a version from its publication until its
//! successor's publication plus the propagation delay plus its TTL. At every
//! moment where that set of possible versions changes, every combination of
//! a DS version, a DNSKEY version and a zone-signature version is validated
//! with [`crate::validity::validate`]. The loop steps from event to event,
//! never per second, and stops after [`MAX_STEPS`] steps.
//!
//! Besides bogus and insecure seconds, a run records a timeline of every
//! action and every DS publication by the parent, in words. It also
//! records [`Stall`]s: records that wait longer than the policy allows, and
//! rollovers that nothing would move on (see [`Stall`] for the exact rule).
//!
//! Limitations: the parent publishes a requested DS RRset at all its
//! servers at once after a fixed delay, and resolvers honour TTLs exactly.

mod stall;

use std::collections::{BTreeMap, BTreeSet};

use keymaster_policy::Policy;
use serde::{Deserialize, Serialize};

use crate::engine::step;
use crate::events::{self, DS_AT_PARENT, DS_GONE_FROM_PARENT};
use crate::policy::LifecyclePolicy;
use crate::state::{EngineState, Request};
use crate::types::{Action, Observations, ParentDs};
use crate::validity::{validate, DnskeyView, Verdict};
pub use stall::Stall;
use stall::StallWatch;

/// Upper bound of engine steps in one run.
pub const MAX_STEPS: usize = 200_000;

/// Key tag the simulation gives every key, so that only ids tell keys apart.
pub const SHARED_KEY_TAG: u16 = 4242;

/// The inputs of a simulated run: policy, time span, parent delay and events.
#[derive(Clone, Debug)]
pub struct Scenario {
    pub policy: LifecyclePolicy,
    pub start: u64,
    pub end: u64,
    /// Policies that take effect at the given times.
    pub policy_changes: Vec<(u64, LifecyclePolicy)>,
    /// Operator requests made at the given times.
    pub requests: Vec<(u64, Request)>,
    /// Seconds from a DS request until every parent server serves the new
    /// DS RRset.
    pub parent_delay: u64,
    /// Intervals `[from, to)` during which the key store is unreadable.
    pub key_store_outages: Vec<(u64, u64)>,
    /// Times at which the parent starts serving its DS RRset with a new TTL,
    /// in seconds. Before the first change the parent uses the first
    /// policy's `parent_ds_ttl`; later policy changes do not change it.
    /// A DS publication due at the same time uses the new TTL.
    pub parent_ds_ttl_changes: Vec<(u64, u64)>,
}

impl Scenario {
    /// Returns a run of `years` 365-day years from time 1 000 000 000 under `policy`,
    /// with a parent that takes an hour to publish a DS change.
    pub fn new(policy: LifecyclePolicy, years: u64) -> Self {
        let start = 1_000_000_000;
        Self {
            policy,
            start,
            end: start + years * 365 * 86_400,
            policy_changes: Vec::new(),
            requests: Vec::new(),
            parent_delay: 3_600,
            key_store_outages: Vec::new(),
            parent_ds_ttl_changes: Vec::new(),
        }
    }

    /// Returns a run of `span` seconds from time 1 000 000 000 under a
    /// configured policy, with a parent that takes `parent_delay` seconds
    /// to publish a DS change.
    pub fn from_policy(policy: &Policy, span: u64, parent_delay: u64) -> Self {
        let start = 1_000_000_000;
        Self {
            end: start + span,
            parent_delay,
            ..Self::new(LifecyclePolicy::from(policy), 0)
        }
    }
}

/// One event of a run, in words, such as "ksk-3: DNSKEY published" or
/// "ksk-3: DS at the parent".
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimelineEntry {
    /// Simulated UNIX time of the event.
    pub at: u64,
    pub event: String,
}

/// The outcome of a run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Seconds during which some resolver could hold a bogus combination.
    pub bogus_seconds: u64,
    /// First moment of a bogus combination.
    pub first_bogus: Option<u64>,
    /// Seconds during which some resolver could hold no DS RRset.
    pub insecure_seconds: u64,
    pub steps: usize,
    /// Times of the steps that returned actions.
    pub action_times: Vec<u64>,
    /// Keys generated, per role name.
    pub generated: BTreeMap<String, usize>,
    /// Maximum number of keys in the ring at once.
    pub max_keys: usize,
    /// Actions a server would refuse, such as removing a published key.
    pub errors: Vec<String>,
    /// Number of `HaltKeyManagement` actions.
    pub halts: usize,
    pub final_state: EngineState,
    /// Every action and every DS publication by the parent, in time order.
    pub timeline: Vec<TimelineEntry>,
    /// Records and rollovers that stopped moving for longer than the policy
    /// allows.
    pub stalls: Vec<Stall>,
}

#[derive(Clone, Debug)]
struct Version<T> {
    start: u64,
    ttl: u64,
    content: T,
}

/// The versions of one RRset kind over time.
#[derive(Clone, Debug)]
struct Timeline<T> {
    versions: Vec<Version<T>>,
    propagation: u64,
}

impl<T: Clone + PartialEq> Timeline<T> {
    fn new(start: u64, ttl: u64, content: T, propagation: u64) -> Self {
        Self {
            versions: vec![Version {
                start,
                ttl,
                content,
            }],
            propagation,
        }
    }

    fn publish(&mut self, start: u64, ttl: u64, content: T) {
        let last = &self.versions[self.versions.len() - 1];
        if last.content == content && last.ttl == ttl {
            return;
        }
        if last.start == start {
            self.versions.pop();
        }
        self.versions.push(Version {
            start,
            ttl,
            content,
        });
    }

    /// Last moment, exclusive, a resolver may hold version `index`.
    fn expiry(&self, index: usize) -> u64 {
        match self.versions.get(index + 1) {
            Some(next) => next.start + self.propagation + self.versions[index].ttl,
            None => u64::MAX,
        }
    }

    fn possible(&self, time: u64) -> Vec<&T> {
        (0..self.versions.len())
            .filter(|index| self.versions[*index].start <= time && time < self.expiry(*index))
            .map(|index| &self.versions[index].content)
            .collect()
    }

    fn change_points(&self) -> Vec<u64> {
        let mut points = Vec::new();
        for index in 0..self.versions.len() {
            points.push(self.versions[index].start);
            let expiry = self.expiry(index);
            if expiry != u64::MAX {
                points.push(expiry);
            }
        }
        points
    }
}

/// The simulated server, parent and key table.
struct World {
    key_index: BTreeMap<String, usize>,
    /// Key ids by index.
    ids: Vec<String>,
    /// TTL of the parent's DS RRset.
    parent_ttl: u64,
    algorithms: Vec<u8>,
    dnskey: DnskeyView,
    zone_signers: BTreeSet<usize>,
    parent_ds: BTreeSet<usize>,
    parent_pending: Vec<(u64, BTreeSet<usize>)>,
    dnskey_ttl: u64,
    max_zone_ttl: u64,
    dnskey_timeline: Timeline<DnskeyView>,
    zone_timeline: Timeline<BTreeSet<usize>>,
    parent_timeline: Timeline<BTreeSet<usize>>,
}

/// Runs a scenario to its end and validates every moment of it.
pub fn run(scenario: &Scenario) -> Report {
    let policy = &scenario.policy;
    let start = scenario.start;
    let mut world = World {
        key_index: BTreeMap::new(),
        ids: Vec::new(),
        parent_ttl: policy.parent_ds_ttl,
        algorithms: Vec::new(),
        dnskey: DnskeyView::default(),
        zone_signers: BTreeSet::new(),
        parent_ds: BTreeSet::new(),
        parent_pending: Vec::new(),
        dnskey_ttl: policy.dnskey_ttl,
        max_zone_ttl: policy.max_zone_ttl,
        dnskey_timeline: Timeline::new(
            start,
            policy.dnskey_ttl,
            DnskeyView::default(),
            policy.zone_propagation_delay,
        ),
        zone_timeline: Timeline::new(
            start,
            policy.max_zone_ttl,
            BTreeSet::new(),
            policy.zone_propagation_delay,
        ),
        parent_timeline: Timeline::new(start, policy.parent_ds_ttl, BTreeSet::new(), 0),
    };
    let mut report = Report::default();
    let mut stalls = StallWatch::new(scenario);
    let mut state = EngineState::default();
    let mut policy = policy.clone();
    let mut now = start;
    let mut previous: Option<u64> = None;

    for _ in 0..MAX_STEPS {
        // Events that are due: policy changes and parent publications.
        let is_new = |at: u64| at <= now && previous.is_none_or(|last| at > last);
        for (at, changed) in &scenario.policy_changes {
            if is_new(*at) {
                policy = changed.clone();
            }
        }
        for (at, ttl) in &scenario.parent_ds_ttl_changes {
            if is_new(*at) {
                world.change_parent_ttl(*at, *ttl, &mut report);
            }
        }
        world.publish_parent(now, &mut report);

        let requests = scenario
            .requests
            .iter()
            .filter(|(at, _)| is_new(*at))
            .map(|(_, request)| request.clone())
            .collect();
        let readable = !scenario
            .key_store_outages
            .iter()
            .any(|(from, to)| (*from..*to).contains(&now));
        let observations = world.observe(&state, requests, readable);
        let result = step(&state, &policy, &observations, now);
        report.steps += 1;
        if !result.actions.is_empty() {
            report.action_times.push(now);
        }
        record_actions(&state, &result.actions, now, &mut report);
        state = result.state;
        for action in &result.actions {
            world.apply(action, &mut state, scenario, now, &mut report);
        }
        world.publish_zone(now);
        report.max_keys = report.max_keys.max(state.keys.len());
        let moving = result.next_due.is_some() || !world.parent_pending.is_empty();
        stalls.check_step(&state, now, moving);

        // The next event: the engine's due time, a parent publication, a
        // policy change, a request or the edge of a key store outage.
        let mut next = result.next_due;
        let mut consider = |at: u64| {
            if at > now {
                next = Some(next.map_or(at, |current: u64| current.min(at)));
            }
        };
        world
            .parent_pending
            .iter()
            .for_each(|(at, _)| consider(*at));
        scenario
            .policy_changes
            .iter()
            .for_each(|(at, _)| consider(*at));
        scenario.requests.iter().for_each(|(at, _)| consider(*at));
        scenario
            .parent_ds_ttl_changes
            .iter()
            .for_each(|(at, _)| consider(*at));
        for (from, to) in &scenario.key_store_outages {
            consider(*from);
            consider(*to);
        }
        previous = Some(now);
        match next {
            Some(at) if at <= scenario.end => now = at.max(now + 1),
            _ => break,
        }
    }
    stalls.check_records(&state, scenario.end);
    report.stalls = stalls.stalls;
    report.final_state = state;
    world.count(scenario, &mut report);
    report
}

/// Adds the actions of one step to the timeline; `before` is the state the
/// step started from.
fn record_actions(before: &EngineState, actions: &[Action], now: u64, report: &mut Report) {
    for action in actions {
        for (id, event) in events::key_events(before, action) {
            report.timeline.push(TimelineEntry {
                at: now,
                event: format!("{id}: {event}"),
            });
        }
        if let Some(event) = events::zone_event(action) {
            report.timeline.push(TimelineEntry { at: now, event });
        }
    }
}

impl World {
    /// Serves the parent's DS RRset with a new TTL from `at` on.
    fn change_parent_ttl(&mut self, at: u64, ttl: u64, report: &mut Report) {
        self.parent_ttl = ttl;
        self.parent_timeline
            .publish(at, ttl, self.parent_ds.clone());
        report.timeline.push(TimelineEntry {
            at,
            event: format!("parent serves its DS RRset with TTL {ttl}s"),
        });
    }

    /// Makes every parent publication that is due visible.
    fn publish_parent(&mut self, now: u64, report: &mut Report) {
        let ttl = self.parent_ttl;
        let mut due: Vec<(u64, BTreeSet<usize>)> = Vec::new();
        self.parent_pending.retain(|(at, ds)| {
            if *at <= now {
                due.push((*at, ds.clone()));
                false
            } else {
                true
            }
        });
        due.sort_by_key(|(at, _)| *at);
        for (at, ds) in due {
            for index in ds.difference(&self.parent_ds) {
                report.timeline.push(TimelineEntry {
                    at,
                    event: format!("{}: {DS_AT_PARENT}", self.ids[*index]),
                });
            }
            for index in self.parent_ds.difference(&ds) {
                report.timeline.push(TimelineEntry {
                    at,
                    event: format!("{}: {DS_GONE_FROM_PARENT}", self.ids[*index]),
                });
            }
            self.parent_ds = ds.clone();
            self.parent_timeline.publish(at, ttl, ds);
        }
    }

    fn observe(&self, state: &EngineState, requests: Vec<Request>, readable: bool) -> Observations {
        let mut parent_ds = BTreeMap::new();
        for key in &state.keys {
            let Some(index) = self.key_index.get(&key.id) else {
                continue;
            };
            let seen = if self.parent_ds.contains(index) {
                ParentDs::AtAllServers
            } else {
                ParentDs::Gone
            };
            parent_ds.insert(key.id.clone(), seen);
        }
        Observations {
            parent_ds,
            unknown_ds_tags: Vec::new(),
            secure_delegation: Some(!self.parent_ds.is_empty()),
            parent_ds_ttl: Some(self.parent_ttl),
            requests,
            key_store_readable: readable,
        }
    }

    fn index(&self, id: &str, report: &mut Report) -> Option<usize> {
        let index = self.key_index.get(id).copied();
        if index.is_none() {
            report.errors.push(format!("action names unknown key {id}"));
        }
        index
    }

    /// Applies one action as a server would.
    fn apply(
        &mut self,
        action: &Action,
        state: &mut EngineState,
        scenario: &Scenario,
        now: u64,
        report: &mut Report,
    ) {
        match action {
            Action::GenerateKey {
                id,
                role,
                algorithm,
            } => {
                self.key_index.insert(id.clone(), self.algorithms.len());
                self.ids.push(id.clone());
                self.algorithms.push(*algorithm);
                state.set_key_tag(id, SHARED_KEY_TAG);
                *report.generated.entry(format!("{role:?}")).or_default() += 1;
            }
            Action::PublishDnskey { id } => {
                if let Some(index) = self.index(id, report) {
                    self.dnskey.keys.insert(index, false);
                }
            }
            Action::UnpublishDnskey { id } => {
                if let Some(index) = self.index(id, report) {
                    self.dnskey.keys.remove(&index);
                }
            }
            Action::StartSigningDnskey { id } => {
                if let Some(index) = self.index(id, report) {
                    self.dnskey.signers.insert(index);
                }
            }
            Action::StopSigningDnskey { id } => {
                if let Some(index) = self.index(id, report) {
                    self.dnskey.signers.remove(&index);
                }
            }
            Action::StartSigningZone { id } => {
                if let Some(index) = self.index(id, report) {
                    self.zone_signers.insert(index);
                }
            }
            Action::StopSigningZone { id } => {
                if let Some(index) = self.index(id, report) {
                    self.zone_signers.remove(&index);
                }
            }
            Action::SetRevoke { id } => {
                if let Some(index) = self.index(id, report) {
                    match self.dnskey.keys.get_mut(&index) {
                        Some(revoked) => *revoked = true,
                        None => report.errors.push(format!("revoked unpublished key {id}")),
                    }
                }
            }
            Action::RemoveKey { id } => {
                if let Some(index) = self.index(id, report) {
                    let in_use = self.dnskey.keys.contains_key(&index)
                        || self.dnskey.signers.contains(&index)
                        || self.zone_signers.contains(&index)
                        || self.parent_ds.contains(&index);
                    if in_use {
                        report.errors.push(format!("removed key {id} while in use"));
                    }
                }
            }
            Action::RequestDs { ids, .. } => {
                let ds = ids.iter().filter_map(|id| self.index(id, report)).collect();
                self.parent_pending.push((now + scenario.parent_delay, ds));
            }
            Action::PublishTtls {
                dnskey_ttl,
                max_zone_ttl,
            } => {
                self.dnskey_ttl = *dnskey_ttl;
                self.max_zone_ttl = *max_zone_ttl;
            }
            Action::HaltKeyManagement => report.halts += 1,
            Action::Unsign => {
                self.dnskey = DnskeyView::default();
                self.zone_signers.clear();
            }
            Action::PublishCds { .. }
            | Action::PublishCdsDelete
            | Action::ChangeDenial { .. }
            | Action::ResignZone
            | Action::ResumeKeyManagement { .. } => {}
        }
    }

    /// Records the zone's RRsets as published at `now`.
    fn publish_zone(&mut self, now: u64) {
        self.dnskey_timeline
            .publish(now, self.dnskey_ttl, self.dnskey.clone());
        self.zone_timeline
            .publish(now, self.max_zone_ttl, self.zone_signers.clone());
    }

    /// Validates every combination resolvers could hold between the change
    /// points of the three timelines.
    fn count(&self, scenario: &Scenario, report: &mut Report) {
        let mut points: Vec<u64> = self
            .dnskey_timeline
            .change_points()
            .into_iter()
            .chain(self.zone_timeline.change_points())
            .chain(self.parent_timeline.change_points())
            .filter(|at| (scenario.start..scenario.end).contains(at))
            .collect();
        points.push(scenario.end);
        points.sort_unstable();
        points.dedup();
        let algorithm = |index: usize| self.algorithms[index];
        for pair in points.windows(2) {
            let (at, next) = (pair[0], pair[1]);
            let mut bogus = false;
            let mut insecure = false;
            for ds in self.parent_timeline.possible(at) {
                for dnskey in self.dnskey_timeline.possible(at) {
                    for zone in self.zone_timeline.possible(at) {
                        match validate(&algorithm, ds, dnskey, zone) {
                            Verdict::Secure => {}
                            Verdict::Insecure => insecure = true,
                            Verdict::Bogus => bogus = true,
                        }
                    }
                }
            }
            if bogus {
                report.bogus_seconds += next - at;
                report.first_bogus.get_or_insert(at);
            }
            if insecure {
                report.insecure_seconds += next - at;
            }
        }
    }
}
