//! The step function: from state, policy, observations and time to a new
//! state, the actions that bring the zone there and the next due time.

use std::collections::BTreeSet;

use keymaster_api::{KeyRole, RecordState};
use keymaster_policy::{CdsPublish, KskRollover, ParentDsCheck, UnknownParentDs, ZskRollover};

use crate::policy::{roles, LifecyclePolicy};
use crate::state::{EngineState, Goal, Key, PublishedTtl, RecordKind, Request, FLAG_REVOKE};
use crate::types::{Action, Observations, ParentDs, Step, Wait};
use crate::validity::{validate, DnskeyView, Verdict};

/// Interval of the steps the engine requests while the key store is unreadable.
pub const KEY_STORE_RETRY: u64 = 60;

/// Upper bound of transition rounds in one step; each round changes at
/// least one record, and no key ring needs more than a few.
const MAX_ROUNDS: usize = 64;

/// Upper bound of candidate transitions tried together, so the subset search
/// stays below 2^12 validity checks.
const MAX_CANDIDATES: usize = 12;

mod insecure;

/// Runs one step of the engine at `now`.
pub fn step(
    state: &EngineState,
    policy: &LifecyclePolicy,
    observations: &Observations,
    now: u64,
) -> Step {
    let mut engine = Engine {
        state: state.clone(),
        policy,
        observations,
        now,
        actions: Vec::new(),
        waiting: Vec::new(),
        force_cds: false,
    };
    if !observations.key_store_readable {
        return engine.halt();
    }
    if let Some(since) = engine.state.key_store_unreadable_since.take() {
        engine.actions.push(Action::ResumeKeyManagement {
            halted_since: since,
        });
    }
    engine.run()
}

struct Engine<'a> {
    state: EngineState,
    policy: &'a LifecyclePolicy,
    observations: &'a Observations,
    now: u64,
    actions: Vec<Action>,
    waiting: Vec<Wait>,
    /// Publish the CDS and CDNSKEY RRsets even if their key ids did not
    /// change, because they replace the delete form.
    force_cds: bool,
}

/// One record change the engine may make.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Change {
    key: usize,
    kind: RecordKind,
    to: RecordState,
    /// Set the REVOKE bit in place of withdrawing the DNSKEY.
    revoke: bool,
}

impl Engine<'_> {
    /// Stops key management while the key store is unreadable. The engine
    /// never plans a replacement for a key it cannot read. Requests wait in
    /// the state until the store can be read again.
    fn halt(mut self) -> Step {
        let requests = self.observations.requests.iter().cloned();
        self.state.requests.extend(requests);
        let since = match self.state.key_store_unreadable_since {
            Some(since) => since,
            None => {
                self.state.key_store_unreadable_since = Some(self.now);
                self.actions.push(Action::HaltKeyManagement);
                self.now
            }
        };
        self.waiting.push(Wait {
            what: "key store unreadable; key management halted".to_string(),
            since,
            until: None,
        });
        Step {
            state: self.state,
            actions: self.actions,
            next_due: Some(self.now + KEY_STORE_RETRY),
            waiting: self.waiting,
        }
    }

    fn run(mut self) -> Step {
        self.take_requests();
        if !self.state.is_unsigned() {
            self.update_ttls();
            self.observe_parent();
            self.update_denial();
            if self.state.going_insecure.is_some() {
                self.advance_going_insecure();
            } else {
                self.plan_keys();
                self.advance();
                self.remove_gone_keys();
            }
        }
        self.request_ds();
        if !self.state.is_unsigned() && self.state.going_insecure.is_none() {
            self.publish_cds();
        }
        let next_due = self.next_due();
        self.describe_waits();
        Step {
            state: self.state,
            actions: self.actions,
            next_due,
            waiting: self.waiting,
        }
    }

    // ---- requests, TTLs, parent and denial --------------------------------

    /// Handles the requests queued while the key store was unreadable, then
    /// the new ones. Rollovers wait in the state until their role is idle;
    /// every other request takes effect at once.
    fn take_requests(&mut self) {
        let (rollovers, queued): (Vec<Request>, Vec<Request>) =
            std::mem::take(&mut self.state.requests)
                .into_iter()
                .partition(|request| matches!(request, Request::Rollover { .. }));
        self.state.requests = rollovers;
        let observations = self.observations;
        for request in queued.iter().chain(&observations.requests) {
            self.take_request(request);
        }
    }

    fn take_request(&mut self, request: &Request) {
        match request {
            Request::Step => self.confirm_parent_ds(),
            Request::Retire { id } => {
                if let Some(key) = self.state.key_mut(id) {
                    if key.goal == Goal::Omnipresent && !key.standby {
                        key.goal = Goal::Hidden;
                        key.retired = Some(self.now);
                    }
                }
            }
            Request::Rollover { .. } => self.state.requests.push(request.clone()),
            Request::GoInsecure => self.start_going_insecure(),
            Request::CancelInsecure => self.cancel_going_insecure(),
            Request::Sign => self.state.unsigned_since = None,
        }
    }

    /// Records the operator's confirmation that the parent serves the
    /// requested DS RRset (`parent_ds_check = "manual"`).
    fn confirm_parent_ds(&mut self) {
        for key in &mut self.state.keys {
            if key.ds.state == RecordState::Rumoured && key.ds_seen.is_none() {
                key.ds_seen = Some(self.now);
            }
            if key.ds.state == RecordState::Unretentive && key.ds_gone.is_none() {
                key.ds_gone = Some(self.now);
            }
        }
        if let Some(going) = &mut self.state.going_insecure {
            going.ds_gone.get_or_insert(self.now);
        }
    }

    fn update_ttls(&mut self) {
        let now = self.now;
        let propagation = self.policy.zone_propagation_delay;
        let mut changed = false;
        for (slot, ttl) in [
            (&mut self.state.dnskey_ttl, self.policy.dnskey_ttl),
            (&mut self.state.max_zone_ttl, self.policy.max_zone_ttl),
        ] {
            match slot {
                None => {
                    *slot = Some(PublishedTtl {
                        current: ttl,
                        previous: None,
                    })
                }
                Some(published) if published.current != ttl => {
                    published.change(ttl, now, propagation);
                    changed = true;
                }
                Some(_) => {}
            }
        }
        if changed {
            self.actions.push(Action::PublishTtls {
                dnskey_ttl: self.policy.dnskey_ttl,
                max_zone_ttl: self.policy.max_zone_ttl,
            });
        }
        let parent = self
            .observations
            .parent_ds_ttl
            .unwrap_or(self.policy.parent_ds_ttl);
        match &mut self.state.parent_ds_ttl {
            None => {
                self.state.parent_ds_ttl = Some(PublishedTtl {
                    current: parent,
                    previous: None,
                })
            }
            Some(published) => published.change(parent, now, 0),
        }
    }

    fn effective_dnskey_ttl(&self) -> u64 {
        effective(self.state.dnskey_ttl, self.policy.dnskey_ttl, self.now)
    }

    fn effective_ds_ttl(&self) -> u64 {
        effective(
            self.state.parent_ds_ttl,
            self.policy.parent_ds_ttl,
            self.now,
        )
    }

    /// Returns the TTL for a wait that started at `since`: the larger of
    /// the TTL in effect then and now. A wait keeps the old TTL of a TTL
    /// change that was in effect when it started, even after the old TTL
    /// has left caches for records published later.
    fn wait_ttl(&self, published: Option<PublishedTtl>, fallback: u64, since: u64) -> u64 {
        effective(published, fallback, since).max(effective(published, fallback, self.now))
    }

    /// Records when the parent started or stopped serving each key's DS.
    fn observe_parent(&mut self) {
        // A parent that serves no DS at all no longer serves any leaving DS,
        // whatever the check. Caches may still hold it for its TTL.
        if self.observations.secure_delegation == Some(false) {
            for key in &mut self.state.keys {
                if key.ds.state == RecordState::Unretentive && key.ds_gone.is_none() {
                    key.ds_gone = Some(self.now);
                }
            }
        }
        if self.policy.parent_ds_check != ParentDsCheck::AllParentServers {
            return;
        }
        if let Some(going) = &mut self.state.going_insecure {
            if self.observations.secure_delegation == Some(false) {
                going.ds_gone.get_or_insert(self.now);
            }
        }
        for key in &mut self.state.keys {
            let seen = self.observations.parent_ds.get(&key.id);
            if key.ds.state == RecordState::Rumoured
                && key.ds_seen.is_none()
                && seen == Some(&ParentDs::AtAllServers)
            {
                key.ds_seen = Some(self.now);
            }
            if key.ds.state == RecordState::Unretentive
                && key.ds_gone.is_none()
                && seen == Some(&ParentDs::Gone)
            {
                key.ds_gone = Some(self.now);
            }
        }
    }

    /// Switches the denial-of-existence chain in one zone version; every
    /// supported algorithm can sign both NSEC and NSEC3 chains.
    fn update_denial(&mut self) {
        if self.state.denial.as_ref() == Some(&self.policy.denial) {
            return;
        }
        self.state.denial = Some(self.policy.denial.clone());
        self.actions.push(Action::ChangeDenial {
            to: self.policy.denial.clone(),
        });
        self.actions.push(Action::ResignZone);
    }

    // ---- key planning ----------------------------------------------------

    /// Makes sure every role of the layout has a key heading into the zone,
    /// and starts the rollovers that are due.
    fn plan_keys(&mut self) {
        let wanted = roles(self.policy.layout);
        for key in &mut self.state.keys {
            if !wanted.contains(&key.role) && key.goal == Goal::Omnipresent {
                key.goal = Goal::Hidden;
                key.retired = Some(self.now);
            }
        }
        for role in wanted {
            self.plan_role(*role);
        }
    }

    fn plan_role(&mut self, role: KeyRole) {
        let newest = self
            .state
            .keys
            .iter()
            .filter(|key| key.role == role && key.goal == Goal::Omnipresent && !key.standby)
            .max_by_key(|key| key.created)
            .cloned();
        let Some(newest) = newest else {
            self.introduce_successor(role);
            return;
        };

        // A rollover is due when the algorithm changed, the lifetime ends or
        // an operator asked and no rollover of the role is running.
        let algorithm_changed = newest.algorithm != self.policy.algorithm;
        let lifetime_over = self.roll_time(&newest).is_some_and(|due| due <= self.now);
        let requested = self.take_rollover_request(role);
        if !(algorithm_changed || lifetime_over || requested) {
            return;
        }
        for key in &mut self.state.keys {
            if key.role == role && key.goal == Goal::Omnipresent && !key.standby {
                key.goal = Goal::Hidden;
                key.retired = Some(self.now);
            }
        }
        self.introduce_successor(role);
    }

    /// Time the rollover of `key` starts: its lifetime from the start of
    /// signing, less the time its successor needs to take over.
    fn roll_time(&self, key: &Key) -> Option<u64> {
        let lifetime = self.policy.lifetime(key.role)?;
        let active = key.active?;
        let lead = self.policy.rollover_lead(key.role);
        Some((active + lifetime).saturating_sub(lead).max(active))
    }

    /// Consumes a pending rollover request for `role` if no rollover of that
    /// role is running; a request during a rollover stays queued.
    fn take_rollover_request(&mut self, role: KeyRole) -> bool {
        let position = self
            .state
            .requests
            .iter()
            .position(|request| matches!(request, Request::Rollover { role: r } if *r == role));
        let Some(position) = position else {
            return false;
        };
        if self.rollover_running(role) {
            return false;
        }
        self.state.requests.remove(position);
        true
    }

    /// Returns true if a key of `role` is still entering or leaving the zone.
    fn rollover_running(&self, role: KeyRole) -> bool {
        self.state.keys.iter().any(|key| {
            key.role == role
                && !key.standby
                && match key.goal {
                    Goal::Hidden => !key.is_gone(),
                    Goal::Omnipresent => !key.is_established(),
                }
        })
    }

    /// Brings in a standby key of the role, or requests a new one.
    fn introduce_successor(&mut self, role: KeyRole) {
        let algorithm = self.policy.algorithm;
        let standby = self
            .state
            .keys
            .iter_mut()
            .find(|key| key.standby && key.role == role && key.algorithm == algorithm);
        if let Some(key) = standby {
            key.standby = false;
            return;
        }
        self.state.generated += 1;
        let id = format!("{}-{}", role_name(role), self.state.generated);
        self.actions.push(Action::GenerateKey {
            id: id.clone(),
            role,
            algorithm,
        });
        self.state
            .keys
            .push(Key::new(id, 0, algorithm, role, self.now));
    }

    // ---- transitions -----------------------------------------------------

    /// Applies every transition allowed at `now` until none is left.
    fn advance(&mut self) {
        for _ in 0..MAX_ROUNDS {
            let waited = self.finish_waits();
            let changes = self.choose_changes();
            if changes.is_empty() && !waited {
                return;
            }
            for change in changes {
                self.apply(change);
            }
        }
    }

    /// Moves rumoured records to omnipresent and unretentive ones to hidden
    /// once their waits have passed.
    fn finish_waits(&mut self) -> bool {
        let mut changed = false;
        for index in 0..self.state.keys.len() {
            let kinds = self.state.keys[index].kinds();
            for kind in kinds {
                if *kind == RecordKind::Ds && self.ds_blocked() {
                    continue;
                }
                let Some(ready) = self.ready_at(&self.state.keys[index], *kind) else {
                    continue;
                };
                if ready > self.now {
                    continue;
                }
                let record = self.state.keys[index].record_mut(*kind);
                let to = match record.state {
                    RecordState::Rumoured => RecordState::Omnipresent,
                    RecordState::Unretentive => RecordState::Hidden,
                    _ => continue,
                };
                record.set(to, self.now);
                changed = true;
            }
        }
        changed
    }

    /// Time a rumoured or unretentive record may complete its transition;
    /// `None` when that depends on an observation not made yet.
    fn ready_at(&self, key: &Key, kind: RecordKind) -> Option<u64> {
        let record = key.record(kind);
        let rumoured = match record.state {
            RecordState::Rumoured => true,
            RecordState::Unretentive => false,
            _ => return None,
        };
        let policy = self.policy;
        match kind {
            RecordKind::Dnskey | RecordKind::Krrsig => {
                let ttl = self.wait_ttl(self.state.dnskey_ttl, policy.dnskey_ttl, record.since);
                Some(
                    record.since
                        + wait(
                            rumoured,
                            policy.dnskey_publish_wait(ttl),
                            policy.dnskey_retire_wait(ttl),
                        ),
                )
            }
            RecordKind::Zrrsig => {
                let ttl = self.wait_ttl(self.state.max_zone_ttl, policy.max_zone_ttl, record.since);
                Some(
                    record.since
                        + wait(
                            rumoured,
                            policy.zone_signature_publish_wait(ttl),
                            policy.zone_signature_retire_wait(ttl),
                        ),
                )
            }
            RecordKind::Ds => self.ds_ready_at(key, rumoured),
        }
    }

    fn ds_ready_at(&self, key: &Key, rumoured: bool) -> Option<u64> {
        let policy = self.policy;
        let since = key.ds.since;
        if let (Some(going), false) = (self.state.going_insecure, rumoured) {
            return self.insecure_ready_at(&going);
        }
        let changed_at = match policy.parent_ds_check {
            ParentDsCheck::None => Some(since + policy.parent_propagation_delay),
            ParentDsCheck::AllParentServers | ParentDsCheck::Manual => {
                if rumoured {
                    key.ds_seen
                } else {
                    key.ds_gone
                }
            }
        }?;
        let ttl = self.wait_ttl(self.state.parent_ds_ttl, policy.parent_ds_ttl, changed_at);
        Some(
            changed_at
                + wait(
                    rumoured,
                    policy.ds_publish_wait(ttl),
                    policy.ds_retire_wait(ttl),
                ),
        )
    }

    fn secure(&self) -> bool {
        self.observations.secure_delegation.unwrap_or(true)
    }

    /// Returns true if DS records may not become omnipresent or leave now,
    /// because the parent serves DS records of unknown keys and the policy
    /// blocks on them.
    fn ds_blocked(&self) -> bool {
        self.policy.unknown_parent_ds == UnknownParentDs::Block
            && !self.observations.unknown_ds_tags.is_empty()
    }

    /// Lists the transitions the rollover methods allow now and returns the
    /// largest set of them that keeps every resolver view valid.
    fn choose_changes(&self) -> Vec<Change> {
        let mut candidates = self.candidates();
        candidates.truncate(MAX_CANDIDATES);
        if candidates.is_empty() {
            return candidates;
        }
        let count = candidates.len();
        let mut masks: Vec<u32> = (1..(1u32 << count)).collect();
        // Largest sets first; among equal sizes, the lowest mask first keeps
        // the choice deterministic.
        masks.sort_by_key(|mask| (std::cmp::Reverse(mask.count_ones()), *mask));
        for mask in masks {
            let chosen: Vec<Change> = (0..count)
                .filter(|bit| mask & (1 << bit) != 0)
                .map(|bit| candidates[bit])
                .collect();
            if self.keeps_zone_valid(&chosen) {
                return chosen;
            }
        }
        Vec::new()
    }

    fn candidates(&self) -> Vec<Change> {
        let mut out = Vec::new();
        for (index, key) in self.state.keys.iter().enumerate() {
            if key.standby {
                continue;
            }
            for kind in key.kinds() {
                // The DNSKEY RRset signature moves with the DNSKEY record.
                if *kind == RecordKind::Krrsig {
                    continue;
                }
                let state = key.record(*kind).state;
                let change = match (key.goal, state) {
                    (Goal::Omnipresent, RecordState::Hidden) => self
                        .may_introduce(key, *kind)
                        .then_some(RecordState::Rumoured),
                    (Goal::Hidden, RecordState::Rumoured | RecordState::Omnipresent) => self
                        .may_withdraw(key, *kind)
                        .then_some(RecordState::Unretentive),
                    _ => None,
                };
                if let Some(to) = change {
                    let revoke = *kind == RecordKind::Dnskey
                        && to == RecordState::Unretentive
                        && self.policy.rfc5011
                        && key.is_sep()
                        && key.revoked.is_none();
                    out.push(Change {
                        key: index,
                        kind: *kind,
                        to,
                        revoke,
                    });
                }
            }
        }
        out
    }

    /// Returns true if no key of `algorithm` has a DNSKEY in the zone yet, so its
    /// introduction is an algorithm rollover.
    fn is_new_algorithm(&self, algorithm: u8) -> bool {
        !self
            .state
            .keys
            .iter()
            .any(|key| key.algorithm == algorithm && key.dnskey.state != RecordState::Hidden)
    }

    /// Returns true if the zone has no DNSKEY at all yet.
    fn has_no_dnskey(&self) -> bool {
        self.state
            .keys
            .iter()
            .all(|key| key.dnskey.state == RecordState::Hidden)
    }

    /// The order each method imposes on the records of an incoming key.
    fn may_introduce(&self, key: &Key, kind: RecordKind) -> bool {
        let unsigned = self.has_no_dnskey();
        let new_algorithm = !unsigned && self.is_new_algorithm(key.algorithm);
        let double_ds =
            key.role == KeyRole::Ksk && self.policy.ksk_rollover_method() == KskRollover::DoubleDs;
        match kind {
            RecordKind::Dnskey => {
                if new_algorithm {
                    // RFC 6781 section 4.1.4: signatures of the new
                    // algorithm reach every cache before its keys.
                    return self.algorithm_signs_everywhere(key.algorithm);
                }
                if double_ds && !unsigned {
                    return key.ds.state == RecordState::Omnipresent;
                }
                true
            }
            RecordKind::Zrrsig => {
                unsigned
                    || new_algorithm
                    || (key.role == KeyRole::Zsk
                        && self.policy.zsk_method == ZskRollover::DoubleSignature)
                    || key.dnskey.state == RecordState::Omnipresent
            }
            RecordKind::Ds => {
                let held = self
                    .add_hold_down_end(key)
                    .is_some_and(|end| end <= self.now);
                if self.needs_add_hold_down(key) && !held {
                    return false;
                }
                (double_ds && !unsigned && !self.is_new_algorithm(key.algorithm))
                    || key.dnskey.state == RecordState::Omnipresent
            }
            RecordKind::Krrsig => false,
        }
    }

    /// Returns true if zone data carries omnipresent signatures of `algorithm`.
    fn algorithm_signs_everywhere(&self, algorithm: u8) -> bool {
        self.state.keys.iter().any(|key| {
            key.algorithm == algorithm
                && key.signs_zone()
                && key.goal == Goal::Omnipresent
                && key.zrrsig.state == RecordState::Omnipresent
        })
    }

    /// Returns true if the DS of `key` waits for the RFC 5011 add hold-down:
    /// another SEP key is in the zone, so resolvers hold that one as their
    /// trust anchor and must accept `key` first. The first SEP key of a
    /// zone is configured as a trust anchor by hand.
    fn needs_add_hold_down(&self, key: &Key) -> bool {
        self.policy.rfc5011
            && key.is_sep()
            && self
                .state
                .keys
                .iter()
                .any(|other| other.id != key.id && other.is_sep() && !other.is_gone())
    }

    /// End of the RFC 5011 add hold-down of a new key. It starts once the
    /// key's DNSKEY is omnipresent, because a resolver starts it when it
    /// first sees the key.
    // NOTE: a resolver that refreshes less often than the DNSKEY TTL
    // (RFC 5011 section 2.3 sets a one-hour floor) may start its hold-down
    // up to one refresh interval later; the DS swap that follows and the
    // publish safety margin are assumed to cover that.
    fn add_hold_down_end(&self, key: &Key) -> Option<u64> {
        (key.dnskey.state == RecordState::Omnipresent)
            .then(|| key.dnskey.since + self.policy.rfc5011_add_hold_down)
    }

    /// End of the time a revoked key stays published.
    fn revoked_hold_end(&self, key: &Key) -> Option<u64> {
        let hold = self.policy.revoked_key_hold(self.effective_dnskey_ttl());
        key.revoked.map(|at| at + hold)
    }

    /// A revoked key stays published for the RFC 5011 remove hold-down.
    fn may_withdraw(&self, key: &Key, kind: RecordKind) -> bool {
        match kind {
            RecordKind::Dnskey => {}
            RecordKind::Ds => return !self.ds_blocked(),
            RecordKind::Krrsig | RecordKind::Zrrsig => return true,
        }
        self.revoked_hold_end(key).is_none_or(|end| end <= self.now)
    }

    fn apply(&mut self, change: Change) {
        let now = self.now;
        let key = &mut self.state.keys[change.key];
        let id = key.id.clone();
        if change.revoke {
            key.flags |= FLAG_REVOKE;
            key.revoked = Some(now);
            self.actions.push(Action::SetRevoke { id });
            return;
        }
        let introduce = change.to == RecordState::Rumoured;
        key.record_mut(change.kind).set(change.to, now);
        match change.kind {
            RecordKind::Dnskey => {
                let sep = key.is_sep();
                if sep {
                    key.krrsig.set(change.to, now);
                }
                if introduce {
                    key.published.get_or_insert(now);
                    if key.role == KeyRole::Ksk {
                        key.active.get_or_insert(now);
                    }
                    self.actions.push(Action::PublishDnskey { id: id.clone() });
                    if sep {
                        self.actions.push(Action::StartSigningDnskey { id });
                    }
                } else {
                    self.actions
                        .push(Action::UnpublishDnskey { id: id.clone() });
                    if sep {
                        self.actions.push(Action::StopSigningDnskey { id });
                    }
                }
            }
            RecordKind::Zrrsig => {
                if introduce {
                    key.active.get_or_insert(now);
                    self.actions.push(Action::StartSigningZone { id });
                } else {
                    self.actions.push(Action::StopSigningZone { id });
                }
                self.actions.push(Action::ResignZone);
            }
            RecordKind::Ds => {
                key.ds_seen = None;
                key.ds_gone = None;
            }
            RecordKind::Krrsig => {}
        }
    }

    // ---- validity of resolver views -----------------------------------------

    /// Returns true if every combination of views resolvers may hold after `changes`
    /// validates. Once the parent serves a DS that caches hold everywhere,
    /// an insecure view counts as a failure too.
    fn keeps_zone_valid(&self, changes: &[Change]) -> bool {
        let mut keys = self.state.keys.clone();
        let mut revoked_now = BTreeSet::new();
        for change in changes {
            let key = &mut keys[change.key];
            if change.revoke {
                revoked_now.insert(change.key);
                continue;
            }
            key.record_mut(change.kind).set(change.to, self.now);
            if change.kind == RecordKind::Dnskey && key.is_sep() {
                key.krrsig.set(change.to, self.now);
            }
        }
        // A zone that could be signed completely must stay so, even while
        // resolvers treat it as insecure: every version is fully signed.
        if !self.state.is_unsigned() && signable(&self.state.keys) && !signable(&keys) {
            return false;
        }
        let secure = self.secure();
        let must_be_secure = secure
            && self
                .state
                .keys
                .iter()
                .any(|key| key.ds.state == RecordState::Omnipresent);
        // DS records the parent was asked to serve count even for an
        // insecure delegation, because the parent may publish them any time.
        let ds_views = record_views(&keys, RecordKind::Ds);
        let dnskey_views = self.dnskey_views(&keys, &revoked_now);
        let zone_views = record_views(&keys, RecordKind::Zrrsig);
        let algorithm = |index: usize| keys[index].algorithm;
        for ds in &ds_views {
            for dnskey in &dnskey_views {
                for zone in &zone_views {
                    match validate(&algorithm, ds, dnskey, zone) {
                        Verdict::Secure => {}
                        Verdict::Insecure if !must_be_secure => {}
                        _ => return false,
                    }
                }
            }
        }
        true
    }

    /// Lists the DNSKEY RRsets resolvers may hold, including the REVOKE bits set
    /// too recently for every cache to hold them.
    fn dnskey_views(&self, keys: &[Key], revoked_now: &BTreeSet<usize>) -> Vec<DnskeyView> {
        let ttl = self.effective_dnskey_ttl();
        let revoke_wait = self.policy.dnskey_publish_wait(ttl);
        let revoked_at = |index: usize| -> Option<u64> {
            if revoked_now.contains(&index) {
                Some(self.now)
            } else {
                keys[index].revoked
            }
        };
        let mut times = change_times(keys, RecordKind::Dnskey);
        for index in 0..keys.len() {
            if let Some(at) = revoked_at(index) {
                if at + revoke_wait > self.now {
                    times.insert(Some(at));
                }
            }
        }
        times
            .into_iter()
            .map(|time| {
                let mut view = DnskeyView::default();
                for (index, key) in keys.iter().enumerate() {
                    if !present(key.dnskey, time) {
                        continue;
                    }
                    let revoked = match revoked_at(index) {
                        Some(at) if at + revoke_wait > self.now => time.is_some_and(|t| t >= at),
                        Some(_) => true,
                        None => false,
                    };
                    view.keys.insert(index, revoked);
                    if key.is_sep() && present(key.krrsig, time) {
                        view.signers.insert(index);
                    }
                }
                view
            })
            .collect()
    }

    // ---- parent, CDS and removal ------------------------------------------------

    /// Drops keys whose records have all left the zone.
    fn remove_gone_keys(&mut self) {
        let mut removed = Vec::new();
        self.state.keys.retain(|key| {
            let gone = key.goal == Goal::Hidden && key.is_gone();
            if gone {
                removed.push(key.id.clone());
            }
            !gone
        });
        for id in removed {
            self.actions.push(Action::RemoveKey { id });
        }
    }

    /// Key ids whose DS the parent should serve: rumoured or omnipresent DS.
    fn wanted_ds(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .state
            .keys
            .iter()
            .filter(|key| {
                matches!(
                    key.ds.state,
                    RecordState::Rumoured | RecordState::Omnipresent
                )
            })
            .map(|key| key.id.clone())
            .collect();
        ids.sort();
        ids
    }

    fn request_ds(&mut self) {
        let wanted = self.wanted_ds();
        if wanted == self.state.ds_requested {
            return;
        }
        let old: BTreeSet<&String> = self.state.ds_requested.iter().collect();
        let new: BTreeSet<&String> = wanted.iter().collect();
        let appear = new.difference(&old).map(|id| (*id).clone()).collect();
        let disappear = old.difference(&new).map(|id| (*id).clone()).collect();
        self.actions.push(Action::RequestDs {
            ids: wanted.clone(),
            appear,
            disappear,
        });
        self.state.ds_requested = wanted;
    }

    /// Publishes CDS and CDNSKEY for the wanted DS set (RFC 7344), always or
    /// only while the parent's DS RRset has to change.
    fn publish_cds(&mut self) {
        let changing = self.state.keys.iter().any(|key| {
            matches!(
                key.ds.state,
                RecordState::Rumoured | RecordState::Unretentive
            )
        });
        let ids = match self.policy.cds_publish {
            CdsPublish::Always => self.wanted_ds(),
            CdsPublish::Rollover if changing => self.wanted_ds(),
            CdsPublish::Rollover | CdsPublish::Never => Vec::new(),
        };
        if ids != self.state.cds_published || self.force_cds {
            self.state.cds_published = ids.clone();
            self.actions.push(Action::PublishCds { ids });
        }
    }

    // ---- next due time and waits ------------------------------------------------

    fn next_due(&self) -> Option<u64> {
        if self.state.is_unsigned() {
            return None;
        }
        let mut times = Vec::new();
        let going_insecure = self.state.going_insecure;
        if let Some(going) = &going_insecure {
            times.extend(self.insecure_ready_at(going));
        }
        for key in &self.state.keys {
            for kind in key.kinds() {
                times.extend(self.ready_at(key, *kind));
            }
            if key.goal == Goal::Omnipresent && !key.standby && going_insecure.is_none() {
                times.extend(self.roll_time(key));
            }
            times.extend(self.revoked_hold_end(key));
            let awaits_hold_down = key.goal == Goal::Omnipresent
                && key.ds.state == RecordState::Hidden
                && self.needs_add_hold_down(key);
            if awaits_hold_down {
                times.extend(self.add_hold_down_end(key));
            }
        }
        for ttl in [
            self.state.dnskey_ttl,
            self.state.max_zone_ttl,
            self.state.parent_ds_ttl,
        ] {
            if let Some((_, until)) = ttl.and_then(|ttl| ttl.previous) {
                times.push(until);
            }
        }
        times.into_iter().filter(|at| *at > self.now).min()
    }

    /// Names a key for a wait: its id, key tag and algorithm. A key this
    /// step generates has no key tag yet, because the caller computes it.
    fn key_label(&self, key: &Key) -> String {
        let generated = self
            .actions
            .iter()
            .any(|action| matches!(action, Action::GenerateKey { id, .. } if *id == key.id));
        if generated {
            format!("{} (new, algorithm {})", key.id, key.algorithm)
        } else {
            format!(
                "{} (tag {}, algorithm {})",
                key.id, key.key_tag, key.algorithm
            )
        }
    }

    fn describe_waits(&mut self) {
        let mut waits = Vec::new();
        waits.extend(self.going_insecure_wait());
        for key in &self.state.keys {
            for kind in key.kinds() {
                let record = key.record(*kind);
                let target = match record.state {
                    RecordState::Rumoured => "omnipresent",
                    RecordState::Unretentive => "hidden",
                    _ => continue,
                };
                let ready = self.ready_at(key, *kind);
                let blocked = *kind == RecordKind::Ds && self.ds_blocked();
                let until = ready.filter(|_| !blocked);
                let label = self.key_label(key);
                let mut what = format!("{kind:?} of key {label} becomes {target}");
                if blocked {
                    what.push_str(" once the parent serves no DS records of unknown keys");
                }
                if *kind == RecordKind::Ds && ready.is_none() {
                    let verb = if target == "omnipresent" {
                        "appear"
                    } else {
                        "disappear"
                    };
                    what = format!("DS of key {label} must {verb} at all parent servers");
                }
                waits.push(Wait {
                    what,
                    since: record.since,
                    until,
                });
            }
        }
        if let Some(wait) = self.unknown_ds_wait() {
            waits.push(wait);
        }
        for request in &self.state.requests {
            if let Request::Rollover { role } = request {
                waits.push(Wait {
                    what: format!("{role:?} rollover queued until the running one ends"),
                    since: self.now,
                    until: None,
                });
            }
        }
        self.waiting = waits;
    }
}

impl Engine<'_> {
    /// Describes the DS records at the parent that match no key, if any.
    /// With `unknown_parent_ds = "block"` the DS changes wait for them to go.
    fn unknown_ds_wait(&self) -> Option<Wait> {
        let tags = &self.observations.unknown_ds_tags;
        if tags.is_empty() {
            return None;
        }
        let tags: Vec<String> = tags.iter().map(u16::to_string).collect();
        let tags = tags.join(", ");
        let what = match self.policy.unknown_parent_ds {
            UnknownParentDs::Block => format!(
                "DS changes wait because the parent serves DS records with unknown key tags \
                 {tags}. Remove them at the parent or set unknown_parent_ds = \"tolerate\""
            ),
            UnknownParentDs::Tolerate => format!(
                "the parent serves DS records with unknown key tags {tags}, \
                 tolerated by unknown_parent_ds = \"tolerate\""
            ),
        };
        Some(Wait {
            what,
            since: self.now,
            until: None,
        })
    }
}

/// Returns true if the keys can sign a complete zone version: some key
/// signs the DNSKEY RRset, every algorithm that does also signs the zone
/// data, and every signing key of an algorithm with a published DNSKEY has
/// its own DNSKEY published.
fn signable(keys: &[Key]) -> bool {
    let in_zone = |record: crate::state::Record| record.state.in_zone();
    let key_signers: Vec<&Key> = keys
        .iter()
        .filter(|key| key.is_sep() && in_zone(key.krrsig))
        .collect();
    let zone_signers: Vec<&Key> = keys
        .iter()
        .filter(|key| key.signs_zone() && in_zone(key.zrrsig))
        .collect();
    if key_signers.is_empty() || zone_signers.is_empty() {
        return false;
    }
    let every_algorithm_signs_data = key_signers.iter().all(|signer| {
        zone_signers
            .iter()
            .any(|key| key.algorithm == signer.algorithm)
    });
    let published: BTreeSet<u8> = keys
        .iter()
        .filter(|key| in_zone(key.dnskey))
        .map(|key| key.algorithm)
        .collect();
    let signers_published = key_signers
        .iter()
        .chain(zone_signers.iter())
        .filter(|key| published.contains(&key.algorithm))
        .all(|key| in_zone(key.dnskey));
    every_algorithm_signs_data && signers_published
}

fn effective(published: Option<PublishedTtl>, fallback: u64, now: u64) -> u64 {
    published.map_or(fallback, |ttl| ttl.effective(now))
}

fn wait(rumoured: bool, publish: u64, retire: u64) -> u64 {
    if rumoured {
        publish
    } else {
        retire
    }
}

fn role_name(role: KeyRole) -> &'static str {
    match role {
        KeyRole::Ksk => "ksk",
        KeyRole::Zsk => "zsk",
        KeyRole::Csk => "csk",
    }
}

/// Moments that separate the distinct snapshots of one record kind: before
/// every pending change (`None`) and at each change still in some cache.
fn change_times(keys: &[Key], kind: RecordKind) -> BTreeSet<Option<u64>> {
    let mut times = BTreeSet::from([None]);
    for key in keys {
        let record = key.record(kind);
        if matches!(
            record.state,
            RecordState::Rumoured | RecordState::Unretentive
        ) {
            times.insert(Some(record.since));
        }
    }
    times
}

/// Returns true if a record is in the snapshot published at `time` (`None` is a
/// moment before every pending change). A rumoured record is present from
/// its change on, an unretentive one until its change.
// NOTE: an omnipresent record counts as present in every snapshot, even
// when it replaced a record that is still unretentive. So after a swap the
// old key's DNSKEY may be withdrawn once the new record is omnipresent
// (after the publish safety margin), before the old record is hidden
// (after the retire safety margin). The simulations find no bogus second
// from it, because both margins come on top of the TTL.
fn present(record: crate::state::Record, time: Option<u64>) -> bool {
    match record.state {
        RecordState::Omnipresent => true,
        RecordState::Hidden => false,
        RecordState::Rumoured => time.is_some_and(|t| t >= record.since),
        RecordState::Unretentive => time.is_none_or(|t| t < record.since),
    }
}

/// Lists the sets of keys whose `kind` record resolvers may hold.
fn record_views(keys: &[Key], kind: RecordKind) -> Vec<BTreeSet<usize>> {
    change_times(keys, kind)
        .into_iter()
        .map(|time| {
            keys.iter()
                .enumerate()
                .filter(|(_, key)| key.kinds().contains(&kind) && present(key.record(kind), time))
                .map(|(index, _)| index)
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests;
