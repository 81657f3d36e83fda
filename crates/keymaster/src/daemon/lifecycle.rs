//! Key management of the zones this server is Key Master of: the daemon's
//! side of the lifecycle engine.
//!
//! Each step loads the engine state from the store and gathers the
//! observations: operator requests, the parent's DS RRsets, and whether
//! every key can be unsealed. It runs [`keymaster_lifecycle::step`] with the
//! real clock and carries out the actions. New keys are generated and
//! sealed, revoked keys get their new DNSKEY, removed keys are deleted. The new engine state
//! and every key's record states land in one fenced transaction, so a former
//! Key Master can never record a step.
//!
//! Crash safety: a step that changes signed data is stored with
//! `unpublished_step` set to its time before the zone is signed, and the
//! mark is cleared once the new version is served. If the server stops in
//! between, the next load moves every record that changed at that time to
//! the load time: the changes are published then, and the waits that follow
//! them start no earlier than their publication.

use std::collections::BTreeMap;

use bytes::Bytes;
use keymaster_api::RecordState;
use keymaster_dnssec::SigningKey;
use keymaster_lifecycle::{
    Action, EngineState, Goal, Key, LifecyclePolicy, Observations, Request, Wait,
};
use keymaster_policy::{ParentDsCheck, Policy};
use keymaster_store::{Fence, Operation, RoleRecord, StoredKey, Transaction, ZoneRecord};
use keymaster_zone::Name;
use serde::{Deserialize, Serialize};

use super::keyring;
use super::zones::ZoneError;
use super::Daemon;

/// Time one parent server has to respond to a DS query.
const PARENT_QUERY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// Minimum time between two warnings about the same pending DS change.
const DS_REMINDER_INTERVAL: u64 = 6 * 3_600;

/// The stored key-management state of a zone: the engine's own state and
/// the daemon's bookkeeping around it.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct StoredEngine {
    pub state: EngineState,
    /// Time of the last step whose changes are not yet known to be served.
    #[serde(default)]
    pub unpublished_step: Option<u64>,
    /// Operator requests not yet handed to the engine.
    #[serde(default)]
    pub requests: Vec<Request>,
    /// The engine's waits after the last step, for `key list` and `zone show`.
    #[serde(default)]
    pub waiting: Vec<Wait>,
    /// When the engine wants to run next.
    #[serde(default)]
    pub next_due: Option<u64>,
    #[serde(default)]
    pub parent: ParentWatch,
    /// NSEC3 salt in hexadecimal, kept from one version to the next and
    /// drawn anew when the denial settings change.
    #[serde(default)]
    pub nsec3_salt: String,
    /// Whether the CDS and CDNSKEY delete form (RFC 8078 section 4) is
    /// published, asking the parent to remove every DS.
    #[serde(default)]
    pub cds_delete: bool,
}

/// The daemon's record of a pending change of the parent's DS RRset.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParentWatch {
    /// Start of the current wait for the parent, if one is running.
    pub waiting_since: Option<u64>,
    /// Last time the parent's servers were queried.
    pub last_check: Option<u64>,
    /// Last time the DS records to submit were logged.
    pub last_reminder: Option<u64>,
    /// Whether the configured command ran for the current wait.
    pub command_ran: bool,
    /// Whether the wait was reported as an error.
    pub escalated: bool,
    /// Per-server summary of the last check.
    pub servers: Vec<String>,
    /// Key tags of DS records at the parent that match no key.
    pub unknown_tags: Vec<u16>,
    /// Whether the parent held any DS at the last complete check.
    pub secure_delegation: Option<bool>,
}

/// What one engine step means for the zone.
pub struct StepOutcome {
    /// The signed data changed and the zone must be signed and published.
    pub resign: bool,
    /// The zone may now be served unsigned.
    pub unsigned: bool,
}

/// The inputs of one signing run, taken from the engine state.
pub struct SigningPlan {
    pub keys: Vec<SigningKey>,
    pub cds: Vec<Bytes>,
    pub cdnskey: Vec<Bytes>,
    pub denial: Option<keymaster_lifecycle::DenialSettings>,
    pub nsec3_salt: Bytes,
    pub dnskey_ttl: Option<u32>,
}

/// Returns the fence for writes decided under `role`.
pub fn fence(role: &RoleRecord) -> Fence {
    Fence {
        zone: role.zone.clone(),
        key_master: role.key_master.clone(),
        epoch: role.epoch,
    }
}

/// Builds an engine key for a stored key that predates the engine state,
/// keeping its record states.
fn engine_key(stored: &StoredKey) -> Key {
    let flags = match stored.dnskey.get(..2) {
        Some(&[high, low]) => u16::from_be_bytes([high, low]),
        _ => keyring::role_flags(stored.role),
    };
    let mut key = Key::new(
        stored.id.clone(),
        stored.key_tag,
        stored.algorithm,
        stored.role,
        stored.created,
    );
    key.flags = flags;
    key.published = stored.published;
    key.active = stored.active;
    key.retired = stored.retired;
    let since = stored.published.unwrap_or(stored.created);
    key.dnskey.set(stored.dnskey_state, since);
    key.krrsig.set(stored.krrsig_state, since);
    key.zrrsig.set(stored.zrrsig_state, since);
    key.ds.set(stored.ds_state, since);
    if key.is_gone() {
        key.standby = true;
    }
    if stored.retired.is_some() {
        key.goal = Goal::Hidden;
    }
    key
}

/// Moves every record that changed at `step` to `now`, for a step that may
/// not have been published.
fn restamp(state: &mut EngineState, step: u64, now: u64) {
    for key in &mut state.keys {
        for kind in key.kinds() {
            let record = key.record_mut(*kind);
            if record.since == step {
                record.since = now;
            }
        }
        for time in [&mut key.published, &mut key.active, &mut key.revoked] {
            if *time == Some(step) {
                *time = Some(now);
            }
        }
    }
}

/// Copies the engine's view of a key into its stored record; returns true
/// if anything changed.
fn mirror(key: &Key, stored: &mut StoredKey) -> bool {
    let before = stored.clone();
    stored.key_tag = key.key_tag;
    stored.published = key.published;
    stored.active = key.active;
    stored.retired = key.retired;
    stored.removed = key.removed;
    stored.dnskey_state = key.dnskey.state;
    stored.krrsig_state = key.krrsig.state;
    stored.zrrsig_state = key.zrrsig.state;
    stored.ds_state = key.ds.state;
    *stored != before
}

/// Returns the DNSKEY RDATA of a stored key with the REVOKE bit cleared: the
/// form the parent's DS and the CDS records are computed from.
pub fn unrevoked_dnskey(stored: &StoredKey) -> Vec<u8> {
    let mut rdata = stored.dnskey.clone();
    if rdata.len() >= 2 {
        rdata[1] &= !(keymaster_keys::flags::REVOKE as u8);
    }
    rdata
}

impl Daemon {
    /// Loads a zone's stored engine state, folding in stored keys the
    /// engine does not know yet (keys from before the engine, or added by
    /// hand).
    pub fn load_engine(&self, zone: &str) -> Result<StoredEngine, ZoneError> {
        let mut stored = match self.store.engine_state(zone)? {
            Some(text) => serde_json::from_str(&text).map_err(|error| ZoneError::Rejected {
                zone: zone.to_string(),
                reason: format!(
                    "the stored key-management state cannot be read ({error}); \
                     restore the state database from a backup"
                ),
            })?,
            None => StoredEngine::default(),
        };
        for key in self.store.keys(zone)? {
            if key.removed.is_none() && stored.state.key(&key.id).is_none() {
                stored.state.add_key(engine_key(&key));
            }
        }
        Ok(stored)
    }

    /// Stores a zone's engine state under the role's fence.
    fn save_engine(
        &self,
        role: &RoleRecord,
        engine: &StoredEngine,
        mut transaction: Transaction,
    ) -> Result<(), ZoneError> {
        let text = serde_json::to_string(engine).map_err(|error| ZoneError::Rejected {
            zone: role.zone.clone(),
            reason: format!("cannot encode the key-management state: {error}"),
        })?;
        transaction = transaction.push(Operation::PutEngineState {
            zone: role.zone.clone(),
            state: text,
        });
        self.commit_key_management(transaction)
    }

    /// Queues an operator request for the zone's next step and wakes the
    /// maintenance task.
    pub fn queue_request(
        &self,
        zone: &str,
        role: &RoleRecord,
        request: Request,
    ) -> Result<(), ZoneError> {
        let lock = self.runtime_lock(zone);
        let _guard = lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut engine = self.load_engine(zone)?;
        engine.requests.push(request);
        self.save_engine(role, &engine, Transaction::fenced(fence(role)))?;
        let now = super::unix_now();
        self.update_runtime(zone, |runtime| runtime.engine_due = Some(now));
        self.wake.notify_one();
        Ok(())
    }

    /// Returns true if every key the engine holds can be unsealed.
    fn key_store_readable(
        &self,
        zone: &str,
        origin: &Name,
        engine: &EngineState,
        stored: &BTreeMap<String, StoredKey>,
    ) -> bool {
        for key in &engine.keys {
            let Some(record) = stored.get(&key.id) else {
                self.report_key_error(
                    zone,
                    &format!(
                        "key {} (tag {}) is missing from the key store",
                        key.id, key.key_tag
                    ),
                );
                return false;
            };
            let kek = match self.sealing_key(zone) {
                Ok(kek) => kek,
                Err(error) => {
                    self.report_key_error(zone, &error.to_string());
                    return false;
                }
            };
            if let Err(error) = keyring::unseal_pair(kek, origin, record) {
                self.report_key_error(zone, &error.to_string());
                return false;
            }
        }
        self.update_runtime(zone, |runtime| runtime.key_error = None);
        true
    }

    /// Logs a key store error once per distinct message.
    pub(super) fn report_key_error(&self, zone: &str, message: &str) {
        let mut first = false;
        self.update_runtime(zone, |runtime| {
            first = runtime.key_error.as_deref() != Some(message);
            runtime.key_error = Some(message.to_string());
        });
        if first {
            tracing::error!(zone = %zone, error = %message,
                "zone {zone}: the key store cannot be read: key management is halted and the last good version stays in service; no replacement key is generated");
        }
    }

    /// Runs one engine step for a zone this server is Key Master of and
    /// carries out its actions.
    pub fn step_engine(
        &self,
        record: &ZoneRecord,
        origin: &Name,
        policy: &Policy,
        role: &RoleRecord,
        now: u64,
    ) -> Result<StepOutcome, ZoneError> {
        let zone = record.name.as_str();
        let mut engine = self.load_engine(zone)?;
        if let Some(step) = engine.unpublished_step {
            // The last step may not be served yet: publish it first.
            restamp(&mut engine.state, step, now);
            engine.unpublished_step = Some(now);
            let transaction = self.with_new_signing_record(
                Transaction::fenced(fence(role)),
                record,
                &engine.nsec3_salt,
                "key state step published again",
                now,
            )?;
            self.save_engine(role, &engine, transaction)?;
            return Ok(StepOutcome {
                resign: true,
                unsigned: false,
            });
        }
        let mut stored: BTreeMap<String, StoredKey> = self
            .store
            .keys(zone)?
            .into_iter()
            .map(|key| (key.id.clone(), key))
            .collect();
        let lifecycle_policy = LifecyclePolicy::from(policy);
        let readable = self.key_store_readable(zone, origin, &engine.state, &stored);
        let mut observations = Observations {
            requests: std::mem::take(&mut engine.requests),
            key_store_readable: readable,
            ..Observations::default()
        };
        if readable {
            self.observe_parent(
                record,
                origin,
                policy,
                &mut engine,
                &stored,
                &mut observations,
                now,
            );
        }
        let step = keymaster_lifecycle::step(&engine.state, &lifecycle_policy, &observations, now);
        let mut state = step.state;
        let mut transaction = Transaction::fenced(fence(role));
        let mut outcome = StepOutcome {
            resign: false,
            unsigned: false,
        };
        for action in &step.actions {
            match action {
                Action::GenerateKey {
                    id,
                    role: key_role,
                    algorithm,
                } => {
                    let key = keyring::generate_key(
                        self.sealing_key(zone)?,
                        origin,
                        id.clone(),
                        *key_role,
                        *algorithm,
                        policy.rsa_bits,
                        now,
                    )?;
                    tracing::info!(zone = %zone, key_tag = key.key_tag, role = ?key_role, algorithm,
                        "zone {zone}: generated {key_role:?} {} with algorithm {algorithm}", key.key_tag);
                    state.set_key_tag(id, key.key_tag);
                    stored.insert(id.clone(), key);
                }
                Action::SetRevoke { id } => {
                    if let Some(key) = stored.get_mut(id) {
                        if key.dnskey.len() >= 2 {
                            key.dnskey[1] |= keymaster_keys::flags::REVOKE as u8;
                        }
                        key.key_tag = keymaster_keys::key_tag(&key.dnskey);
                        state.set_key_tag(id, key.key_tag);
                        if let Some(engine_key) = state.key_mut(id) {
                            engine_key.flags |= keymaster_keys::flags::REVOKE;
                        }
                        tracing::info!(zone = %zone, key_tag = key.key_tag,
                            "zone {zone}: key {id} published with the REVOKE bit, now tag {}", key.key_tag);
                    }
                    outcome.resign = true;
                }
                Action::RemoveKey { id } => {
                    if let Some(key) = stored.remove(id) {
                        tracing::info!(zone = %zone, key_tag = key.key_tag,
                            "zone {zone}: key {} (tag {}) has left the zone and is deleted", key.id, key.key_tag);
                        transaction = transaction.push(Operation::DeleteKey {
                            zone: zone.to_string(),
                            id: id.clone(),
                        });
                    }
                }
                Action::RequestDs {
                    ids,
                    appear,
                    disappear,
                } => {
                    // The request counts as the first reminder, so the next
                    // one comes a reminder interval later.
                    engine.parent = ParentWatch {
                        waiting_since: Some(now),
                        last_reminder: Some(now),
                        ..ParentWatch::default()
                    };
                    let text = self.ds_text(origin, policy, ids, &stored);
                    let hint = parent_ds_hint(zone, policy);
                    tracing::warn!(zone = %zone, appear = ?appear, disappear = ?disappear,
                        "zone {zone}: the parent must now serve exactly these DS records ({hint}):\n{text}");
                }
                Action::HaltKeyManagement => {
                    // Logged by `key_store_readable` with the reason.
                }
                Action::ResumeKeyManagement { halted_since } => {
                    tracing::info!(zone = %zone, halted_since,
                        "zone {zone}: the key store is readable again; key management resumes");
                }
                Action::Unsign => outcome.unsigned = true,
                Action::PublishCdsDelete => {
                    engine.cds_delete = true;
                    outcome.resign = true;
                }
                Action::PublishCds { .. } => {
                    engine.cds_delete = false;
                    outcome.resign = true;
                }
                Action::PublishDnskey { .. }
                | Action::UnpublishDnskey { .. }
                | Action::StartSigningDnskey { .. }
                | Action::StopSigningDnskey { .. }
                | Action::StartSigningZone { .. }
                | Action::StopSigningZone { .. }
                | Action::ChangeDenial { .. }
                | Action::PublishTtls { .. }
                | Action::ResignZone => outcome.resign = true,
            }
        }
        let known: std::collections::BTreeSet<String> = self
            .store
            .keys(zone)?
            .into_iter()
            .map(|key| key.id)
            .collect();
        for key in &state.keys {
            if let Some(record) = stored.get_mut(&key.id) {
                let changed = mirror(key, record);
                if changed || !known.contains(&key.id) {
                    transaction = transaction.push(Operation::PutKey(record.clone()));
                }
            }
        }
        let salt_length = match &state.denial {
            Some(keymaster_lifecycle::DenialSettings::Nsec3 { salt_length, .. }) => *salt_length,
            _ => 0,
        };
        let denial_changed = step
            .actions
            .iter()
            .any(|action| matches!(action, Action::ChangeDenial { .. }));
        if denial_changed || engine.nsec3_salt.len() != usize::from(salt_length) * 2 {
            engine.nsec3_salt =
                data_encoding::HEXLOWER.encode(&crate::offline::random_salt(salt_length));
        }
        engine.state = state;
        engine.waiting = step.waiting;
        engine.next_due = step.next_due;
        self.remind_parent(record, origin, policy, &mut engine, &stored, now);
        if outcome.resign {
            engine.unpublished_step = Some(now);
            // Cluster members sign the new key states when the new signing
            // record, written in the same transaction, reaches them.
            transaction = self.with_new_signing_record(
                transaction,
                record,
                &engine.nsec3_salt,
                "key state step",
                now,
            )?;
        }
        self.save_engine(role, &engine, transaction)?;
        let due = engine_due(&engine, policy, now);
        self.update_runtime(zone, |runtime| runtime.engine_due = due);
        Ok(outcome)
    }

    /// Drops every key of a zone whose parent never held a DS, and leaves
    /// the engine idle until the zone is signed again.
    pub fn forget_keys(&self, zone: &str, role: &RoleRecord) -> Result<(), ZoneError> {
        let lock = self.runtime_lock(zone);
        let _guard = lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut engine = self.load_engine(zone)?;
        let now = super::unix_now();
        let mut transaction = Transaction::fenced(fence(role));
        for key in self.store.keys(zone)? {
            transaction = transaction.push(Operation::DeleteKey {
                zone: zone.to_string(),
                id: key.id.clone(),
            });
        }
        engine.state = EngineState {
            generated: engine.state.generated,
            unsigned_since: Some(now),
            ..EngineState::default()
        };
        engine.requests.clear();
        engine.unpublished_step = None;
        engine.cds_delete = false;
        engine.parent = ParentWatch::default();
        self.save_engine(role, &engine, transaction)?;
        tracing::warn!(zone = %zone, "zone {zone}: unsigned at once on the operator's word that the parent holds no DS; its keys are deleted");
        Ok(())
    }

    /// Deletes a key that waits to succeed another and was never published.
    pub fn drop_standby_key(
        &self,
        zone: &str,
        role: &RoleRecord,
        id: &str,
    ) -> Result<(), ZoneError> {
        let lock = self.runtime_lock(zone);
        let _guard = lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut engine = self.load_engine(zone)?;
        engine.state.keys.retain(|key| key.id != id);
        let transaction = Transaction::fenced(fence(role)).push(Operation::DeleteKey {
            zone: zone.to_string(),
            id: id.to_string(),
        });
        self.save_engine(role, &engine, transaction)
    }

    /// Clears the mark of an unpublished step once its version is served.
    pub fn mark_published(&self, zone: &str, role: &RoleRecord) -> Result<(), ZoneError> {
        let mut engine = self.load_engine(zone)?;
        if engine.unpublished_step.take().is_some() {
            self.save_engine(role, &engine, Transaction::fenced(fence(role)))?;
        }
        Ok(())
    }

    /// Returns the keys, CDS and CDNSKEY records, denial settings and DNSKEY
    /// TTL the next signed version uses, from the engine state.
    pub fn signing_plan(
        &self,
        record: &ZoneRecord,
        origin: &Name,
        policy: &Policy,
    ) -> Result<SigningPlan, ZoneError> {
        let zone = record.name.as_str();
        let engine = self.load_engine(zone)?;
        let stored: BTreeMap<String, StoredKey> = self
            .store
            .keys(zone)?
            .into_iter()
            .map(|key| (key.id.clone(), key))
            .collect();
        let mut keys = Vec::new();
        for key in &engine.state.keys {
            let in_zone = key.dnskey.state.in_zone()
                || key.krrsig.state.in_zone()
                || key.zrrsig.state.in_zone();
            if !in_zone {
                continue;
            }
            let Some(record) = stored.get(&key.id) else {
                let message = format!(
                    "key {} (tag {}) is missing from the key store",
                    key.id, key.key_tag
                );
                self.report_key_error(zone, &message);
                return Err(ZoneError::Rejected {
                    zone: zone.to_string(),
                    reason: message,
                });
            };
            match self
                .sealing_key(zone)
                .and_then(|kek| keyring::unseal_key(kek, origin, record).map_err(ZoneError::from))
            {
                Ok(signing) => keys.push(signing),
                Err(error) => {
                    self.report_key_error(zone, &error.to_string());
                    return Err(error);
                }
            }
        }
        let (cds, cdnskey) = if engine.cds_delete {
            (
                vec![Bytes::from_static(&[0, 0, 0, 0, 0])],
                vec![Bytes::from_static(&[0, 0, 3, 0, 0])],
            )
        } else {
            let dnskeys: Vec<Bytes> = engine
                .state
                .cds_published
                .iter()
                .filter_map(|id| stored.get(id))
                .map(|key| Bytes::from(unrevoked_dnskey(key)))
                .collect();
            (
                crate::signing::cds_records(origin, &dnskeys, policy),
                dnskeys,
            )
        };
        Ok(SigningPlan {
            keys,
            cds,
            cdnskey,
            denial: engine.state.denial.clone(),
            nsec3_salt: Bytes::from(
                data_encoding::HEXLOWER_PERMISSIVE
                    .decode(engine.nsec3_salt.as_bytes())
                    .unwrap_or_default(),
            ),
            dnskey_ttl: engine.state.dnskey_ttl.map(|ttl| ttl.current as u32),
        })
    }

    /// Returns the zone's key events from now until `span` seconds ahead,
    /// planned by running the engine forward on a virtual clock.
    pub fn plan(
        &self,
        zone: &str,
        span: u64,
    ) -> Result<Vec<keymaster_lifecycle::plan::PlannedEvent>, ZoneError> {
        let (name, _) = super::zones::zone_name(zone)?;
        let record = self.record(&name)?;
        if !record.signed {
            return Ok(Vec::new());
        }
        let policy = LifecyclePolicy::from(&self.policy_for(&record));
        let engine = self.load_engine(&name)?;
        let now = super::unix_now();
        Ok(keymaster_lifecycle::plan::forecast(
            &engine.state,
            &policy,
            now,
            now.saturating_add(span),
        ))
    }

    /// Presentation-format DS records for the given keys with the policy's digests.
    fn ds_text(
        &self,
        origin: &Name,
        policy: &Policy,
        ids: &[String],
        stored: &BTreeMap<String, StoredKey>,
    ) -> String {
        let mut lines = Vec::new();
        for id in ids {
            let Some(key) = stored.get(id) else { continue };
            for digest in &policy.ds_digests {
                let rdata = keymaster_keys::ds_rdata(
                    origin,
                    &unrevoked_dnskey(key),
                    crate::signing::digest_type(*digest),
                );
                let record = keymaster_zone::Record {
                    owner: origin.clone(),
                    class: keymaster_zone::Class::IN,
                    ttl: policy.parent_ds_ttl.as_u32(),
                    rtype: keymaster_zone::Rtype::DS,
                    rdata,
                };
                lines.push(keymaster_zone::record_to_string(&record));
            }
        }
        if lines.is_empty() {
            "(none: the parent must remove every DS record of the zone)".to_string()
        } else {
            lines.join("\n")
        }
    }

    /// Queries the parent's servers when a DS change is pending and the
    /// check interval has passed, and records what they serve.
    #[allow(clippy::too_many_arguments)]
    fn observe_parent(
        &self,
        record: &ZoneRecord,
        origin: &Name,
        policy: &Policy,
        engine: &mut StoredEngine,
        stored: &BTreeMap<String, StoredKey>,
        observations: &mut Observations,
        now: u64,
    ) {
        if policy.parent_ds_check != ParentDsCheck::AllParentServers {
            return;
        }
        if !waiting_for_parent(engine) {
            return;
        }
        let interval = policy.parent_ds_check_interval.as_secs().max(1);
        if engine
            .parent
            .last_check
            .is_some_and(|last| now < last + interval)
        {
            return;
        }
        engine.parent.last_check = Some(now);
        let servers = match self.parent_servers(record, origin) {
            Ok(servers) => servers,
            Err(message) => {
                if engine.parent.servers != [message.clone()] {
                    tracing::warn!(zone = %record.name, "zone {}: cannot check the parent's DS: {message}", record.name);
                    engine.parent.servers = vec![message];
                }
                return;
            }
        };
        let keys: Vec<(String, Vec<u8>)> = engine
            .state
            .keys
            .iter()
            .filter(|key| key.is_sep())
            .filter_map(|key| stored.get(&key.id))
            .map(|key| (key.id.clone(), unrevoked_dnskey(key)))
            .collect();
        let view = crate::parent::check_parent(origin, &servers, &keys, PARENT_QUERY_TIMEOUT);
        for error in &view.errors {
            tracing::warn!(zone = %record.name, "zone {}: parent DS check: {error}", record.name);
        }
        if !view.unknown_tags.is_empty() && view.unknown_tags != engine.parent.unknown_tags {
            tracing::warn!(zone = %record.name, tags = ?view.unknown_tags,
                "zone {}: the parent serves DS records with key tags {:?} that match no key of the zone", record.name, view.unknown_tags);
        }
        engine.parent.servers = view
            .servers
            .iter()
            .map(|(address, summary)| format!("{address}: {summary}"))
            .collect();
        engine.parent.unknown_tags = view.unknown_tags.clone();
        engine.parent.secure_delegation = view.secure_delegation;
        observations.parent_ds = view.per_key.clone();
        observations.unknown_ds_tags = view.unknown_tags.clone();
        observations.secure_delegation = view.secure_delegation;
        observations.parent_ds_ttl = view.ds_ttl;
    }

    /// Returns the addresses of the parent's name servers: the configured
    /// ones, or those found through the resolver.
    fn parent_servers(
        &self,
        record: &ZoneRecord,
        origin: &Name,
    ) -> Result<Vec<std::net::SocketAddr>, String> {
        if let Some(zone) = self
            .config
            .zones
            .iter()
            .find(|zone| zone.name == record.name)
        {
            if !zone.parent_servers.is_empty() {
                return Ok(zone.parent_servers.clone());
            }
        }
        // Like BIND's parental-agents and Knot's parent remotes, the
        // servers to ask are configured, never guessed.
        let resolver = self.config.resolver.ok_or_else(|| {
            "the zone has no parent_servers and [server] has no resolver to find them; \
             set one of them, or confirm DS changes with `keymaster key step`"
                .to_string()
        })?;
        crate::parent::find_parent_servers(origin, resolver, PARENT_QUERY_TIMEOUT)
            .map_err(|error| error.to_string())
    }

    /// Reminds the operator of a pending DS change, runs the configured
    /// command once per wait and escalates a long wait to an error.
    fn remind_parent(
        &self,
        record: &ZoneRecord,
        origin: &Name,
        policy: &Policy,
        engine: &mut StoredEngine,
        stored: &BTreeMap<String, StoredKey>,
        now: u64,
    ) {
        let zone = record.name.as_str();
        if !waiting_for_parent(engine) || policy.parent_ds_check == ParentDsCheck::None {
            engine.parent.waiting_since = None;
            return;
        }
        let since = *engine.parent.waiting_since.get_or_insert(now);
        let text = self.ds_text(origin, policy, &engine.state.ds_requested, stored);
        if !engine.parent.command_ran && !policy.parent_ds_command.is_empty() {
            engine.parent.command_ran = true;
            spawn_ds_command(zone, &policy.parent_ds_command, &text);
        }
        let waited = now.saturating_sub(since);
        if !engine.parent.escalated && waited >= policy.parent_ds_escalate_after.as_secs() {
            engine.parent.escalated = true;
            tracing::error!(zone = %zone, waited,
                "zone {zone}: the parent has not served the requested DS RRset for {waited} s; the rollover cannot go on until it does:\n{text}");
            engine.parent.last_reminder = Some(now);
        } else if engine
            .parent
            .last_reminder
            .is_none_or(|last| now >= last + DS_REMINDER_INTERVAL)
        {
            engine.parent.last_reminder = Some(now);
            let hint = parent_ds_hint(zone, policy);
            tracing::warn!(zone = %zone, waited,
                "zone {zone}: waiting for the parent to serve exactly these DS records ({hint}):\n{text}");
        }
    }
}

/// Maximum run time of `parent_ds_command`, after which it is killed.
const DS_COMMAND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Runs `parent_ds_command` on a thread of its own, so that a slow or hung
/// program delays no zone's key management or signature refresh.
fn spawn_ds_command(zone_name: &str, command: &[String], ds_records: &str) {
    let zone = zone_name.to_owned();
    let command = command.to_vec();
    let ds_records = ds_records.to_owned();
    let spawned = std::thread::Builder::new()
        .name("parent-ds-command".to_owned())
        .spawn(move || {
            match crate::parent::run_ds_command(&command, &zone, &ds_records, DS_COMMAND_TIMEOUT) {
                Ok(()) => tracing::info!(zone = %zone,
                    "zone {zone}: parent_ds_command ran with the DS records to submit"),
                Err(error) => tracing::error!(zone = %zone, %error,
                    "zone {zone}: parent_ds_command failed: {error}"),
            }
        });
    if let Err(error) = spawned {
        tracing::error!(zone = %zone_name, %error,
            "zone {zone_name}: cannot start a thread for parent_ds_command: {error}");
    }
}

/// Tells how a wait for the parent's DS RRset ends under `policy`.
fn parent_ds_hint(zone: &str, policy: &Policy) -> String {
    match policy.parent_ds_check {
        ParentDsCheck::Manual => format!("then confirm with `keymaster key step {zone} KEY`"),
        ParentDsCheck::AllParentServers => {
            "keymaster checks every parent server until they all do".to_string()
        }
        ParentDsCheck::None => {
            "keymaster does not check the parent and assumes the change after parent_propagation_delay"
                .to_string()
        }
    }
}

/// Returns true while the engine waits for the parent's DS RRset to change.
pub fn waiting_for_parent(engine: &StoredEngine) -> bool {
    engine.cds_delete
        || engine.state.keys.iter().any(|key| {
            (key.ds.state == RecordState::Rumoured && key.ds_seen.is_none())
                || (key.ds.state == RecordState::Unretentive && key.ds_gone.is_none())
        })
}

/// Returns when the zone's engine must run next: its own due time, the
/// next parent check while a DS change is pending, or now for queued
/// requests and unpublished changes.
pub fn engine_due(engine: &StoredEngine, policy: &Policy, now: u64) -> Option<u64> {
    if !engine.requests.is_empty() || engine.unpublished_step.is_some() {
        return Some(now);
    }
    let mut times: Vec<u64> = engine.next_due.into_iter().collect();
    if waiting_for_parent(engine) && policy.parent_ds_check != ParentDsCheck::None {
        if policy.parent_ds_check == ParentDsCheck::AllParentServers {
            let interval = policy.parent_ds_check_interval.as_secs().max(1);
            times.push(engine.parent.last_check.map_or(now, |last| last + interval));
        }
        // The reminder and the escalation of a long wait need a step too.
        if let Some(last) = engine.parent.last_reminder {
            times.push(last + DS_REMINDER_INTERVAL);
        }
        if let (Some(since), false) = (engine.parent.waiting_since, engine.parent.escalated) {
            times.push(since + policy.parent_ds_escalate_after.as_secs());
        }
    }
    times.into_iter().min()
}
