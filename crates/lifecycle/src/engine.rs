//! The step function: from state, policy, observations and time to a new
//! state, the actions that bring the zone there and the next due time.

use std::collections::BTreeSet;

use keymaster_api::{KeyRole, RecordState};
use keymaster_policy::{CdsPublish, KskRollover, ParentDsCheck, ZskRollover};

use crate::policy::{roles, LifecyclePolicy, RFC5011_ADD_HOLD_DOWN, RFC5011_REMOVE_HOLD_DOWN};
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
    /// never plans a replacement for a key it cannot read.
    fn halt(mut self) -> Step {
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
        self.update_ttls();
        self.observe_parent();
        self.update_denial();
        self.plan_keys();
        self.advance();
        self.remove_gone_keys();
        self.request_ds();
        self.publish_cds();
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

    /// Moves new requests into the state; the manual DS confirmation and key
    /// retirement take effect at once, rollovers when the role is idle.
    fn take_requests(&mut self) {
        for request in &self.observations.requests {
            match request {
                Request::Step => {
                    for key in &mut self.state.keys {
                        if key.ds.state == RecordState::Rumoured && key.ds_seen.is_none() {
                            key.ds_seen = Some(self.now);
                        }
                        if key.ds.state == RecordState::Unretentive && key.ds_gone.is_none() {
                            key.ds_gone = Some(self.now);
                        }
                    }
                }
                Request::Retire { id } => {
                    if let Some(key) = self.state.key_mut(id) {
                        if key.goal == Goal::Omnipresent && !key.standby {
                            key.goal = Goal::Hidden;
                            key.retired = Some(self.now);
                        }
                    }
                }
                Request::Rollover { .. } => self.state.requests.push(request.clone()),
            }
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

    fn effective_zone_ttl(&self) -> u64 {
        effective(self.state.max_zone_ttl, self.policy.max_zone_ttl, self.now)
    }

    fn effective_ds_ttl(&self) -> u64 {
        effective(
            self.state.parent_ds_ttl,
            self.policy.parent_ds_ttl,
            self.now,
        )
    }

    /// Records when the parent started or stopped serving each key's DS.
    fn observe_parent(&mut self) {
        if self.policy.parent_ds_check != ParentDsCheck::AllParentServers {
            return;
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
                let ttl = self.effective_dnskey_ttl();
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
                let ttl = self.effective_zone_ttl();
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
        let ttl = self.effective_ds_ttl();
        let since = key.ds.since;
        if !rumoured && !self.secure() {
            // No DS at the parent: nothing to wait for.
            return Some(since);
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
    fn is_unsigned(&self) -> bool {
        self.state
            .keys
            .iter()
            .all(|key| key.dnskey.state == RecordState::Hidden)
    }

    /// The order each method imposes on the records of an incoming key.
    fn may_introduce(&self, key: &Key, kind: RecordKind) -> bool {
        let unsigned = self.is_unsigned();
        let new_algorithm = !unsigned && self.is_new_algorithm(key.algorithm);
        let double_ds = key.role == KeyRole::Ksk && self.policy.ksk_method == KskRollover::DoubleDs;
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
                let other_sep = self
                    .state
                    .keys
                    .iter()
                    .any(|other| other.id != key.id && other.is_sep() && !other.is_gone());
                if self.policy.rfc5011 && other_sep {
                    let published_long = key
                        .published
                        .is_some_and(|at| at + RFC5011_ADD_HOLD_DOWN <= self.now);
                    if !published_long {
                        return false;
                    }
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

    /// A revoked key stays published for the RFC 5011 remove hold-down.
    fn may_withdraw(&self, key: &Key, kind: RecordKind) -> bool {
        if kind != RecordKind::Dnskey {
            return true;
        }
        match key.revoked {
            Some(at) => at + RFC5011_REMOVE_HOLD_DOWN <= self.now,
            None => true,
        }
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
        if ids != self.state.cds_published {
            self.state.cds_published = ids.clone();
            self.actions.push(Action::PublishCds { ids });
        }
    }

    // ---- next due time and waits ------------------------------------------------

    fn next_due(&self) -> Option<u64> {
        let mut times = Vec::new();
        for key in &self.state.keys {
            for kind in key.kinds() {
                times.extend(self.ready_at(key, *kind));
            }
            if key.goal == Goal::Omnipresent && !key.standby {
                times.extend(self.roll_time(key));
            }
            if let Some(at) = key.revoked {
                times.push(at + RFC5011_REMOVE_HOLD_DOWN);
            }
            if self.policy.rfc5011 {
                times.extend(key.published.map(|at| at + RFC5011_ADD_HOLD_DOWN));
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

    fn describe_waits(&mut self) {
        let mut waits = Vec::new();
        for key in &self.state.keys {
            for kind in key.kinds() {
                let record = key.record(*kind);
                let target = match record.state {
                    RecordState::Rumoured => "omnipresent",
                    RecordState::Unretentive => "hidden",
                    _ => continue,
                };
                let until = self.ready_at(key, *kind);
                let mut what = format!(
                    "{kind:?} of key {} (tag {}, algorithm {}) becomes {target}",
                    key.id, key.key_tag, key.algorithm
                );
                if *kind == RecordKind::Ds && until.is_none() {
                    let verb = if target == "omnipresent" {
                        "appear"
                    } else {
                        "disappear"
                    };
                    what = format!(
                        "DS of key {} (tag {}, algorithm {}) must {verb} at all parent servers",
                        key.id, key.key_tag, key.algorithm
                    );
                }
                waits.push(Wait {
                    what,
                    since: record.since,
                    until,
                });
            }
        }
        if !self.observations.unknown_ds_tags.is_empty() {
            waits.push(Wait {
                what: format!(
                    "parent serves DS records with unknown key tags {:?}",
                    self.observations.unknown_ds_tags
                ),
                since: self.now,
                until: None,
            });
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
mod tests {
    use keymaster_policy::{KeyLayout, KskRollover, ZskRollover};

    use super::*;
    use crate::policy::DenialSettings;

    const DAY: u64 = 86_400;
    const HOUR: u64 = 3_600;
    const T0: u64 = 1_000_000_000;

    fn policy() -> LifecyclePolicy {
        LifecyclePolicy {
            algorithm: 13,
            layout: KeyLayout::KskZsk,
            ksk_lifetime: None,
            zsk_lifetime: Some(30 * DAY),
            csk_lifetime: None,
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
            parent_ds_check: ParentDsCheck::AllParentServers,
            denial: DenialSettings::Nsec,
        }
    }

    fn parent(state: &EngineState, present: &[&str]) -> Observations {
        let mut observations = Observations::default();
        for key in &state.keys {
            let seen = if present.contains(&key.id.as_str()) {
                ParentDs::AtAllServers
            } else {
                ParentDs::Gone
            };
            observations.parent_ds.insert(key.id.clone(), seen);
        }
        observations.secure_delegation = Some(!present.is_empty());
        observations
    }

    fn record(state: &EngineState, id: &str, kind: RecordKind) -> (RecordState, u64) {
        let record = state.key(id).expect("key exists").record(kind);
        (record.state, record.since)
    }

    /// Brings a new zone to KSK and ZSK fully in place, with the DS seen an
    /// hour after it was requested, checking each transition time on the way.
    fn bootstrap(policy: &LifecyclePolicy) -> (EngineState, u64) {
        let first = step(
            &EngineState::default(),
            policy,
            &Observations::default(),
            T0,
        );
        let state = first.state;
        assert_eq!(
            record(&state, "ksk-1", RecordKind::Dnskey),
            (RecordState::Rumoured, T0)
        );
        assert_eq!(
            record(&state, "ksk-1", RecordKind::Krrsig),
            (RecordState::Rumoured, T0)
        );
        assert_eq!(
            record(&state, "zsk-2", RecordKind::Zrrsig),
            (RecordState::Rumoured, T0)
        );
        assert_eq!(
            record(&state, "ksk-1", RecordKind::Ds),
            (RecordState::Hidden, 0)
        );

        // DNSKEY: TTL + propagation + publish safety.
        let dnskey_at = T0 + HOUR + 300 + 600;
        assert_eq!(first.next_due, Some(dnskey_at));
        let second = step(&state, policy, &parent(&state, &[]), dnskey_at);
        let state = second.state;
        assert_eq!(
            record(&state, "ksk-1", RecordKind::Dnskey),
            (RecordState::Omnipresent, dnskey_at)
        );

        // The DS waits for zone signatures in every cache, because unsigned
        // data cached from before signing would be bogus under a DS.
        assert_eq!(
            record(&state, "ksk-1", RecordKind::Ds),
            (RecordState::Hidden, 0)
        );
        let zone_at = T0 + DAY + 300 + 600;
        assert_eq!(second.next_due, Some(zone_at));
        let third = step(&state, policy, &parent(&state, &[]), zone_at);
        let state = third.state;
        assert_eq!(
            record(&state, "zsk-2", RecordKind::Zrrsig),
            (RecordState::Omnipresent, zone_at)
        );
        assert_eq!(
            record(&state, "ksk-1", RecordKind::Ds),
            (RecordState::Rumoured, zone_at)
        );
        assert!(third.actions.contains(&Action::RequestDs {
            ids: vec!["ksk-1".to_string()],
            appear: vec!["ksk-1".to_string()],
            disappear: vec![],
        }));

        // DS: seen at the parent, then its TTL + publish safety.
        let seen_at = zone_at + HOUR;
        let fourth = step(&state, policy, &parent(&state, &["ksk-1"]), seen_at);
        let state = fourth.state;
        assert_eq!(state.key("ksk-1").unwrap().ds_seen, Some(seen_at));
        let ds_at = seen_at + 2 * HOUR + 600;
        let fifth = step(&state, policy, &parent(&state, &["ksk-1"]), ds_at);
        let state = fifth.state;
        assert_eq!(
            record(&state, "ksk-1", RecordKind::Ds),
            (RecordState::Omnipresent, ds_at)
        );
        (state, ds_at)
    }

    #[test]
    fn bootstrap_times() {
        bootstrap(&policy());
    }

    #[test]
    fn zsk_pre_publication_times() {
        let policy = policy();
        let (state, _) = bootstrap(&policy);
        let observe = |state: &EngineState| parent(state, &["ksk-1"]);

        // The rollover starts the DNSKEY publication wait before the end of
        // the 30-day lifetime counted from the start of signing at T0.
        let lead = HOUR + 300 + 600;
        let start = T0 + 30 * DAY - lead;
        let early = step(&state, &policy, &observe(&state), start - 1);
        assert!(early.state.key("zsk-3").is_none());
        let rolled = step(&state, &policy, &observe(&state), start);
        let state = rolled.state;
        assert_eq!(
            record(&state, "zsk-3", RecordKind::Dnskey),
            (RecordState::Rumoured, start)
        );
        assert_eq!(
            record(&state, "zsk-3", RecordKind::Zrrsig),
            (RecordState::Hidden, 0)
        );
        assert_eq!(state.key("zsk-2").unwrap().goal, Goal::Hidden);

        // Once the new DNSKEY is everywhere, the signatures swap in one step.
        let swap = start + lead;
        assert_eq!(rolled.next_due, Some(swap));
        let swapped = step(&state, &policy, &observe(&state), swap).state;
        assert_eq!(
            record(&swapped, "zsk-3", RecordKind::Zrrsig),
            (RecordState::Rumoured, swap)
        );
        assert_eq!(
            record(&swapped, "zsk-2", RecordKind::Zrrsig),
            (RecordState::Unretentive, swap)
        );
        assert_eq!(
            record(&swapped, "zsk-2", RecordKind::Dnskey).0,
            RecordState::Omnipresent
        );

        // The old DNSKEY leaves when no cache can hold its signatures.
        let signatures_gone = swap + DAY + 300 + 1_200;
        let withdrawn = step(&swapped, &policy, &observe(&swapped), signatures_gone).state;
        assert_eq!(
            record(&withdrawn, "zsk-2", RecordKind::Zrrsig),
            (RecordState::Hidden, signatures_gone)
        );
        assert_eq!(
            record(&withdrawn, "zsk-2", RecordKind::Dnskey),
            (RecordState::Unretentive, signatures_gone)
        );

        let removed_at = signatures_gone + HOUR + 300 + 1_200;
        let removed = step(&withdrawn, &policy, &observe(&withdrawn), removed_at);
        assert!(removed.state.key("zsk-2").is_none());
        assert!(removed.actions.contains(&Action::RemoveKey {
            id: "zsk-2".to_string()
        }));
    }

    #[test]
    fn zsk_double_signature_times() {
        let policy = LifecyclePolicy {
            zsk_method: ZskRollover::DoubleSignature,
            ..policy()
        };
        let (state, _) = bootstrap(&policy);
        let start = T0 + 30 * DAY;
        let rolled = step(&state, &policy, &parent(&state, &["ksk-1"]), start).state;
        assert_eq!(
            record(&rolled, "zsk-3", RecordKind::Dnskey),
            (RecordState::Rumoured, start)
        );
        assert_eq!(
            record(&rolled, "zsk-3", RecordKind::Zrrsig),
            (RecordState::Rumoured, start)
        );
        assert_eq!(
            record(&rolled, "zsk-2", RecordKind::Zrrsig).0,
            RecordState::Omnipresent
        );

        let both = start + DAY + 300 + 600;
        let retired = step(&rolled, &policy, &parent(&rolled, &["ksk-1"]), both).state;
        assert_eq!(
            record(&retired, "zsk-2", RecordKind::Zrrsig),
            (RecordState::Unretentive, both)
        );
        assert_eq!(
            record(&retired, "zsk-2", RecordKind::Dnskey),
            (RecordState::Unretentive, both)
        );
    }

    #[test]
    fn ksk_double_ksk_waits_for_parent() {
        let policy = policy();
        let (state, now) = bootstrap(&policy);
        let request = Request::Rollover { role: KeyRole::Ksk };
        let mut observations = parent(&state, &["ksk-1"]);
        observations.requests.push(request);
        let rolled = step(&state, &policy, &observations, now).state;
        assert_eq!(
            record(&rolled, "ksk-3", RecordKind::Dnskey),
            (RecordState::Rumoured, now)
        );

        // After the DNSKEY wait the DS swap is requested.
        let swap = now + HOUR + 300 + 600;
        let requested = step(&rolled, &policy, &parent(&rolled, &["ksk-1"]), swap);
        let state = requested.state;
        assert_eq!(
            record(&state, "ksk-3", RecordKind::Ds),
            (RecordState::Rumoured, swap)
        );
        assert_eq!(
            record(&state, "ksk-1", RecordKind::Ds),
            (RecordState::Unretentive, swap)
        );
        assert!(requested
            .waiting
            .iter()
            .any(|wait| wait.what.contains("must appear")));

        // Without the parent's change nothing moves, however long it takes.
        let later = swap + 30 * DAY;
        let stuck = step(&state, &policy, &parent(&state, &["ksk-1"]), later).state;
        assert_eq!(
            record(&stuck, "ksk-3", RecordKind::Ds).0,
            RecordState::Rumoured
        );
        assert_eq!(
            record(&stuck, "ksk-1", RecordKind::Dnskey).0,
            RecordState::Omnipresent
        );

        // Seen swapped at `later`: DS TTL + safety margins from there.
        let seen = step(&stuck, &policy, &parent(&stuck, &["ksk-3"]), later).state;
        let retire_at = later + 2 * HOUR + 1_200;
        let done = step(&seen, &policy, &parent(&seen, &["ksk-3"]), retire_at).state;
        assert_eq!(
            record(&done, "ksk-1", RecordKind::Ds),
            (RecordState::Hidden, retire_at)
        );
        assert_eq!(
            record(&done, "ksk-1", RecordKind::Dnskey),
            (RecordState::Unretentive, retire_at)
        );
        // The new DS needs the shorter publish safety and is in place too.
        assert_eq!(
            record(&done, "ksk-3", RecordKind::Ds),
            (RecordState::Omnipresent, retire_at)
        );
    }

    #[test]
    fn key_store_unreadable_halts() {
        let policy = policy();
        let (state, now) = bootstrap(&policy);
        let mut observations = parent(&state, &["ksk-1"]);
        observations.key_store_readable = false;
        observations
            .requests
            .push(Request::Rollover { role: KeyRole::Zsk });
        let halted = step(&state, &policy, &observations, now);
        assert_eq!(halted.actions, vec![Action::HaltKeyManagement]);
        assert_eq!(halted.state.keys, state.keys);
        let again = step(&halted.state, &policy, &observations, now + 60);
        assert!(again.actions.is_empty());
        let resumed = step(
            &again.state,
            &policy,
            &parent(&state, &["ksk-1"]),
            now + 120,
        );
        assert!(resumed
            .actions
            .contains(&Action::ResumeKeyManagement { halted_since: now }));
    }

    #[test]
    fn queued_rollover_waits() {
        let policy = policy();
        let (state, now) = bootstrap(&policy);
        let mut observations = parent(&state, &["ksk-1"]);
        observations
            .requests
            .push(Request::Rollover { role: KeyRole::Zsk });
        let first = step(&state, &policy, &observations, now).state;
        let second = step(&first, &policy, &observations, now + 1).state;
        assert_eq!(
            second.requests,
            vec![Request::Rollover { role: KeyRole::Zsk }]
        );
        assert_eq!(second.keys.len(), 3);
    }

    #[test]
    fn standby_key_succeeds_without_extra_roll() {
        let policy = policy();
        let (mut state, _) = bootstrap(&policy);
        state.add_key(Key::new("imported".to_string(), 7, 13, KeyRole::Zsk, T0));
        let lead = HOUR + 300 + 600;
        let before = step(&state, &policy, &parent(&state, &["ksk-1"]), T0 + 2 * DAY).state;
        assert_eq!(
            record(&before, "imported", RecordKind::Dnskey).0,
            RecordState::Hidden
        );
        let start = T0 + 30 * DAY - lead;
        let rolled = step(&before, &policy, &parent(&before, &["ksk-1"]), start);
        assert!(!rolled
            .actions
            .iter()
            .any(|a| matches!(a, Action::GenerateKey { .. })));
        assert_eq!(
            record(&rolled.state, "imported", RecordKind::Dnskey),
            (RecordState::Rumoured, start)
        );
    }

    #[test]
    fn state_round_trips_as_json() {
        let (state, _) = bootstrap(&policy());
        let json = serde_json::to_string(&state).expect("serialise");
        let back: EngineState = serde_json::from_str(&json).expect("deserialise");
        assert_eq!(back, state);
    }

    #[test]
    fn lifetime_check_names_numbers() {
        let short = LifecyclePolicy {
            zsk_lifetime: Some(DAY),
            ..policy()
        };
        let error = short.check().expect_err("one day is too short");
        // DNSKEY publication 4500s + signature swap 87900s + withdrawal 5100s.
        assert_eq!(error.rollover, 4_500 + 87_900 + 5_100);
        assert!(error.to_string().contains("86400s"), "{error}");
        assert!(policy().check().is_ok());
    }
}
