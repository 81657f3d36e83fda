//! The life of each zone inside the daemon: loading, the Key Master role,
//! keys, signing and publication.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use keymaster_api::{
    DsInfo, KeyInfo, KeyMasterStatus, KeyRole, RecordState, RoleInfo, Storage, ZoneInfo,
};
use keymaster_policy::Policy;
use keymaster_server::PublishedZone;
use keymaster_store::{Operation, RoleRecord, StoreError, StoredKey, Transaction, ZoneRecord};
use keymaster_zone::{
    load_zone_file, load_zone_str, parse_name, write_zone, LoadOptions, Name, Rtype, Zone,
};

use super::keyring::{self, KeyringError};
use super::lifecycle;
use super::{unix_now, Daemon};
use crate::signing::{self, next_serial, serial_gt, SigningError};

/// Runtime state of one zone.
#[derive(Default)]
pub struct ZoneRuntime {
    /// Serializes operations on the zone.
    pub lock: Arc<Mutex<()>>,
    /// Version being served.
    pub serial: Option<u32>,
    pub records: Option<usize>,
    pub next_expiry: Option<u64>,
    /// Reason the zone is not in its intended state.
    pub error: Option<String>,
    /// The last key error, so it is logged once and not every minute.
    pub key_error: Option<String>,
    /// When the lifecycle engine of the zone is next due.
    pub engine_due: Option<u64>,
    /// The signing record of the signed cluster zone version being served.
    pub signed_from: Option<keymaster_store::SigningRecord>,
    /// The signed cluster zone version being served, whose signatures the
    /// next version takes over where its data is unchanged.
    pub signed_zone: Option<Arc<Zone>>,
    /// When a member whose turn it is not looks again whether a due
    /// signature refresh of a cluster zone happened.
    pub refresh_wait: Option<u64>,
    /// Why this server cannot sign the cluster zone, if it cannot.
    pub cannot_sign: Option<String>,
    /// The last role record of a cluster zone this server saw, to tell a
    /// role it lost from one it never held.
    pub known_role: Option<RoleRecord>,
    /// The reason this file zone hides a cluster zone of the same name,
    /// when it does.
    pub hides_cluster_zone: Option<String>,
    /// The member the served signed version was transferred from, on a
    /// member without the cluster key.
    pub fetched_from: Option<String>,
    /// When a member without the cluster key tries again to transfer a
    /// version that no signer had published yet.
    pub fetch_due: Option<u64>,
    /// Transfers tried in a row without a version accepted, for the
    /// pause before the next.
    pub fetch_attempts: u32,
    /// The last reason a transfer failed, so it is logged once.
    pub fetch_error: Option<String>,
}

/// Error of a zone operation requested by an operator.
#[derive(Debug, thiserror::Error)]
pub enum ZoneError {
    #[error("zone {0} is not configured on this server")]
    NotFound(String),
    #[error("zone {0} already exists")]
    Exists(String),
    #[error("invalid zone name {name:?}: {reason}")]
    BadName { name: String, reason: String },
    #[error("zone {zone}: {reason}")]
    Rejected { zone: String, reason: String },
    /// A request the API cannot carry out in any state, such as an unknown
    /// action.
    #[error("invalid request: {0}")]
    BadRequest(String),
    #[error("policy {0:?} is not defined")]
    UnknownPolicy(String),
    /// A service this request needs, such as the cluster store, cannot be
    /// reached now.
    #[error("{0}")]
    Unavailable(String),
    #[error("zone {zone}: cannot load {path}: {message}")]
    Load {
        zone: String,
        path: PathBuf,
        message: String,
    },
    /// Boxed, because key errors carry several names and a source.
    #[error(transparent)]
    Keyring(Box<KeyringError>),
    #[error(transparent)]
    Signing(#[from] SigningError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("zone {zone}: the signed version cannot be published: {message}")]
    Publish { zone: String, message: String },
}

impl From<KeyringError> for ZoneError {
    fn from(error: KeyringError) -> Self {
        Self::Keyring(Box::new(error))
    }
}

impl ZoneError {
    /// Returns true if the error is the operator's request, not the server.
    pub fn is_client_error(&self) -> bool {
        matches!(
            self,
            Self::NotFound(_)
                | Self::Exists(_)
                | Self::BadName { .. }
                | Self::Rejected { .. }
                | Self::BadRequest(_)
                | Self::UnknownPolicy(_)
        )
    }
}

/// Parses an operator's zone name into a normalized string and a `Name`.
///
/// The string is the name's presentation form in lower case, so that
/// spellings of one name (`Example.`, `\069xample.`) give one zone. The
/// root zone may be written `@`, because URL parsers remove a path
/// segment of `.`.
pub fn zone_name(text: &str) -> Result<(String, Name), ZoneError> {
    if text.trim().is_empty() {
        return Err(ZoneError::BadName {
            name: text.to_string(),
            reason: "the name is empty; write the root zone as `.`".to_string(),
        });
    }
    let text = if text == "@" { "." } else { text };
    let normalized = crate::config::normalize_zone(text);
    let name = parse_name(&normalized, &Name::root()).map_err(|error| ZoneError::BadName {
        name: text.to_string(),
        reason: error.to_string(),
    })?;
    let name = name.to_lowercase();
    Ok((name.to_string(), name))
}

/// Loads the records of a cluster zone sent as master-file text by the
/// CLI, which read the operator's file and expanded its `$INCLUDE`s. The
/// server follows no `$INCLUDE` in it, so a request never makes it read
/// one of its own files.
pub(super) fn load_sent_content(
    name: &str,
    origin: &Name,
    content: &str,
) -> Result<keymaster_zone::LoadedZone, ZoneError> {
    let rejected = |reason: String| ZoneError::Rejected {
        zone: name.to_string(),
        reason,
    };
    if content.len() > keymaster_store::MAX_ZONE_CONTENT {
        return Err(rejected(format!(
            "its records are larger than the cluster limit of {} octets",
            keymaster_store::MAX_ZONE_CONTENT
        )));
    }
    let options = LoadOptions {
        allow_include: false,
        ..LoadOptions::default()
    };
    load_zone_str(content, origin, &options)
        .map_err(|error| rejected(format!("its records cannot be loaded: {error}")))
}

impl Daemon {
    /// Loads, signs and publishes every configured and stored zone.
    pub fn load_all(&self) {
        for zone in self.config.zones.clone() {
            let stored = self.store.zone(&zone.name).ok().flatten();
            let record = ZoneRecord {
                name: zone.name.clone(),
                storage: Storage::File,
                file: Some(zone.file.display().to_string()),
                signed: zone.sign,
                policy: zone.policy.clone(),
                last_serial: stored.as_ref().and_then(|s| s.last_serial),
                last_signed: stored.as_ref().and_then(|s| s.last_signed),
                parent_has_ds: stored.as_ref().and_then(|s| s.parent_has_ds),
                from_config: true,
                policy_definition: None,
            };
            if let Err(error) = self
                .store
                .commit(Transaction::new().push(Operation::PutZone(record)))
            {
                tracing::error!(zone = %zone.name, error = %error, "cannot record zone in the state database");
            }
        }
        let zones = match self.store.zones() {
            Ok(zones) => zones,
            Err(error) => {
                tracing::error!(error = %error, "cannot read zones from the state database");
                return;
            }
        };
        // Small zones first, so one large zone does not hold them back.
        let mut zones = zones;
        zones.sort_by_key(|record| {
            let size = record
                .file
                .as_ref()
                .and_then(|file| std::fs::metadata(file).ok());
            size.map_or(0, |metadata| metadata.len())
        });
        for record in zones {
            let configured = self
                .config
                .zones
                .iter()
                .any(|zone| zone.name == record.name);
            if record.from_config && !configured {
                tracing::info!(zone = %record.name, "zone {} is no longer configured, so it is not served; its keys are kept", record.name);
                continue;
            }
            if let Err(error) = self.refresh_zone(&record.name) {
                let served = self.runtime_serial(&record.name);
                match served {
                    Some(serial) => tracing::error!(zone = %record.name, error = %error, serial,
                        "zone {}: cannot sign a new version, so the saved serial {serial} stays served: {error}", record.name),
                    None => tracing::error!(zone = %record.name, error = %error,
                        "zone {} is not served: {error}", record.name),
                }
            }
        }
    }

    pub(super) fn runtime_lock(&self, zone: &str) -> Arc<Mutex<()>> {
        let mut zones = self.zones.lock().unwrap_or_else(|p| p.into_inner());
        zones.entry(zone.to_string()).or_default().lock.clone()
    }

    /// Returns the serial of the version being served, if any.
    pub(super) fn runtime_serial(&self, zone: &str) -> Option<u32> {
        let zones = self.zones.lock().unwrap_or_else(|p| p.into_inner());
        zones.get(zone).and_then(|runtime| runtime.serial)
    }

    pub(super) fn update_runtime(&self, zone: &str, update: impl FnOnce(&mut ZoneRuntime)) {
        let mut zones = self.zones.lock().unwrap_or_else(|p| p.into_inner());
        update(zones.entry(zone.to_string()).or_default());
    }

    pub(super) fn record(&self, zone: &str) -> Result<ZoneRecord, ZoneError> {
        self.store
            .zone(zone)?
            .ok_or_else(|| ZoneError::NotFound(zone.to_string()))
    }

    /// Returns the policy a zone is signed with: for a cluster zone the
    /// definition `zone sign` stored with it, so that every member signs
    /// alike, else this server's own definition of the policy's name.
    pub(super) fn policy_for(&self, record: &ZoneRecord) -> Policy {
        let local = self.config.policy(&record.policy);
        let stored = match (&record.storage, &record.policy_definition) {
            (Storage::Cluster, Some(text)) => text,
            _ => return local.clone(),
        };
        let mut shared = match serde_json::from_str::<Policy>(stored) {
            Ok(shared) => shared,
            Err(error) => {
                self.note_policy(
                    &record.name,
                    format!(
                        "zone {}: the policy stored with it in the cluster store cannot be read ({error}); \
                         this member signs with its own definition of policy {:?} instead; run \
                         `keymaster zone sign {} --policy NAME` on a member of this version to store it again",
                        record.name, record.policy, record.name
                    ),
                );
                return local.clone();
            }
        };
        // The parent DS command runs on this server, so it comes from this
        // server's configuration and never from the cluster store.
        shared.parent_ds_command = self
            .config
            .policies
            .get(&record.policy)
            .map(|own| own.parent_ds_command.clone())
            .unwrap_or_default();
        let differing = policy_differences(&shared, local);
        if differing.is_empty() {
            self.note_policy(&record.name, String::new());
        } else {
            self.note_policy(
                &record.name,
                format!(
                    "zone {}: signed with policy {:?} as stored in the cluster store; this member's own \
                     definition differs in {} and is not used for it; to change the zone's policy, run \
                     `keymaster zone sign {} --policy NAME` on a member with the intended definition",
                    record.name,
                    shared.name,
                    differing.join(", "),
                    record.name
                ),
            );
        }
        shared
    }

    /// Logs a note about a zone's policy once, until the note changes; an
    /// empty note clears it.
    fn note_policy(&self, zone: &str, note: String) {
        let mut notes = self.policy_notes.lock().unwrap_or_else(|p| p.into_inner());
        if notes.get(zone) == Some(&note) || (note.is_empty() && !notes.contains_key(zone)) {
            return;
        }
        if note.is_empty() {
            notes.remove(zone);
        } else {
            tracing::warn!(zone = %zone, "{note}");
            notes.insert(zone.to_string(), note);
        }
    }

    /// Returns the JSON of this server's definition of `name`, to store
    /// with a cluster zone that is signed with it.
    pub(super) fn policy_definition(&self, name: &str) -> Result<String, ZoneError> {
        let policy = self
            .config
            .policies
            .get(name)
            .ok_or_else(|| ZoneError::UnknownPolicy(name.to_string()))?;
        serde_json::to_string(policy).map_err(|error| {
            ZoneError::BadRequest(format!("policy {name:?} cannot be stored: {error}"))
        })
    }

    /// Loads the zone's source, signs it if it should be signed and this
    /// server is its Key Master, and publishes the result. On failure the
    /// previous version stays in service and the error is recorded.
    pub fn refresh_zone(&self, zone: &str) -> Result<(), ZoneError> {
        self.refresh_zone_with(zone, true)
    }

    /// Loads and publishes a zone as [`Daemon::refresh_zone`] does; the
    /// Key Master runs an engine step first only with `step`.
    pub fn refresh_zone_with(&self, zone: &str, step: bool) -> Result<(), ZoneError> {
        let lock = self.runtime_lock(zone);
        let _guard = lock.lock().unwrap_or_else(|p| p.into_inner());
        let result = self.sign_and_publish(zone, step);
        let message = result.as_ref().err().map(ToString::to_string).or_else(|| {
            let zones = self.zones.lock().unwrap_or_else(|p| p.into_inner());
            zones
                .get(zone)
                .and_then(|runtime| runtime.cannot_sign.clone())
        });
        self.update_runtime(zone, |runtime| runtime.error = message);
        if result.is_err() {
            self.restore_saved(zone);
        }
        result
    }

    /// Returns where the last signed version of `zone` is saved.
    fn saved_path(&self, zone: &str) -> PathBuf {
        let mut file = String::new();
        for byte in zone.trim_end_matches('.').bytes() {
            match byte {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'-' | b'_' => {
                    file.push(byte as char)
                }
                _ => file.push_str(&format!("%{byte:02X}")),
            }
        }
        if file.is_empty() {
            file.push_str("root");
        }
        self.config
            .data_dir
            .join("signed")
            .join(format!("{file}.zone"))
    }

    /// Writes a signed version to the data directory, so that a restart
    /// can serve it when the zone cannot be signed again.
    fn save_signed(&self, name: &str, text: std::io::Result<Vec<u8>>) {
        let path = self.saved_path(name);
        let result = text.and_then(|text| {
            std::fs::create_dir_all(path.parent().unwrap_or(&path))?;
            super::write_file_atomically(&path, &text, 0o644)
        });
        if let Err(error) = result {
            tracing::error!(zone = %name, path = %path.display(), %error, "cannot save the signed version");
        }
    }

    /// Serves the saved signed version of a zone that has nothing in
    /// service, if it still validates now.
    pub(super) fn restore_saved(&self, zone: &str) {
        let serving = {
            let zones = self.zones.lock().unwrap_or_else(|p| p.into_inner());
            zones
                .get(zone)
                .is_some_and(|runtime| runtime.serial.is_some())
        };
        let Ok(Some(record)) = self.store.zone(zone) else {
            return;
        };
        if serving || !record.signed {
            return;
        }
        let path = self.saved_path(zone);
        let Ok((_, origin)) = zone_name(zone) else {
            return;
        };
        if !path.is_file() {
            return;
        }
        let options = LoadOptions {
            strip_dnssec: false,
            ..LoadOptions::default()
        };
        let saved = match load_zone_file(&path, &origin, &options) {
            Ok(loaded) => loaded.zone,
            Err(error) => {
                tracing::error!(zone = %zone, %error, "cannot read the saved signed version");
                return;
            }
        };
        let now = unix_now();
        let report = keymaster_dnssec::verify_zone(&saved, now as u32);
        if let Some(first) = report.errors.first() {
            tracing::error!(zone = %zone, error = %first, "the saved signed version no longer validates; the zone is not served");
            return;
        }
        let serial = saved.serial().unwrap_or(0);
        let expiry = signing::earliest_expiration(&saved, now);
        tracing::warn!(zone = %zone, serial, "zone {zone}: serving the saved signed version with serial {serial} until it can be signed again");
        if let Err(error) = self.publish(record, saved, Some(expiry)) {
            tracing::error!(zone = %zone, %error, "cannot publish the saved signed version");
        }
    }

    /// Loads the zone's source and publishes it, signed from the engine
    /// state when the zone is signed. With `step`, the Key Master first runs
    /// a step of the lifecycle engine (which generates the first keys).
    pub(super) fn sign_and_publish(&self, zone: &str, step: bool) -> Result<(), ZoneError> {
        let mut record = self.record(zone)?;
        let (_, origin) = zone_name(zone)?;
        let unsigned = self.load_source(&record, &origin)?;
        let file_serial = unsigned.serial().unwrap_or(0);
        if !record.signed {
            return self.publish_unsigned(record, unsigned);
        }
        if record.storage == Storage::Cluster {
            return self.sign_cluster_zone(record, &origin, step);
        }

        let role = self.ensure_role(&record)?;
        let is_key_master = role.key_master == self.config.name;
        let policy = self.policy_for(&record);
        let now = unix_now();
        if is_key_master && step {
            let outcome = self.step_engine(&record, &origin, &policy, &role, now)?;
            if outcome.unsigned {
                return self.finish_unsigning(record, role);
            }
        }
        let plan = self.signing_plan(&record, &origin, &policy)?;
        let mut options = signing::sign_options(
            &policy,
            now,
            plan.nsec3_salt.clone(),
            plan.cds,
            plan.cdnskey,
        );
        if let Some(denial) = &plan.denial {
            options.denial = signing::denial_from(denial, plan.nsec3_salt.clone());
        }
        if let Some(ttl) = plan.dnskey_ttl {
            options.dnskey_ttl = ttl;
        }
        let serial = next_serial(file_serial, record.last_serial);
        let version = signing::sign_version(
            unsigned,
            &plan.keys,
            &options,
            signing::post_sign_check(&policy),
            serial,
            now,
            None,
        )?;
        tracing::info!(
            zone = %zone,
            serial,
            rrsets = version.rrsets_signed,
            signatures = version.signatures,
            seconds = format!("{:.2}", version.seconds),
            "zone {zone} signed with serial {serial}: {} signatures over {} RRsets in {:.2} s",
            version.signatures,
            version.rrsets_signed,
            version.seconds
        );
        let expiry = version.earliest_expiration;
        record.last_signed = Some(now);
        self.publish(record, version.zone, Some(expiry))?;
        if is_key_master {
            self.mark_published(zone, &role)?;
        }
        Ok(())
    }

    /// Publishes a zone's records unsigned, with a serial that never goes
    /// backwards.
    pub(super) fn publish_unsigned(
        &self,
        record: ZoneRecord,
        unsigned: Zone,
    ) -> Result<(), ZoneError> {
        let file_serial = unsigned.serial().unwrap_or(0);
        let serial = match record.last_serial {
            Some(last) if serial_gt(last, file_serial) => last.wrapping_add(1),
            _ => file_serial,
        };
        let mut version = unsigned;
        version.set_serial(serial);
        let zone = record.name.clone();
        if record.storage == Storage::Cluster && serial != file_serial {
            // Were each member to raise the serial by itself, every raise
            // would wake the others into raising it again. The raised
            // serial goes into the shared content instead, and every member
            // publishes that. Members that race write the same text.
            let text = super::cluster_signing::zone_text(&zone, &version)?;
            self.store
                .commit(Transaction::new().push(Operation::PutZoneContent {
                    zone: zone.clone(),
                    text,
                }))?;
            tracing::info!(zone = %zone, serial,
                "zone {zone}: records stored with serial {serial}, above the last one served");
        }
        self.publish(record, version, None)?;
        self.update_runtime(&zone, |runtime| runtime.signed_from = None);
        Ok(())
    }

    /// Publishes a zone unsigned once the engine found the parent's DS
    /// gone from every cache.
    pub(super) fn finish_unsigning(
        &self,
        mut record: ZoneRecord,
        role: RoleRecord,
    ) -> Result<(), ZoneError> {
        let zone = record.name.clone();
        record.signed = false;
        record.parent_has_ds = Some(false);
        self.store
            .commit(Transaction::new().push(Operation::PutZone(record)))?;
        tracing::info!(zone = %zone, "zone {zone}: the parent's DS is gone from every cache; the zone is now served unsigned");
        self.sign_and_publish(&zone, false)?;
        self.mark_published(&zone, &role)
    }

    fn load_source(&self, record: &ZoneRecord, origin: &Name) -> Result<Zone, ZoneError> {
        if record.storage == Storage::Cluster {
            return self.load_cluster_source(record, origin);
        }
        let Some(path) = record.file.as_ref().map(PathBuf::from) else {
            return Err(ZoneError::Rejected {
                zone: record.name.clone(),
                reason: "has no master file".to_string(),
            });
        };
        let options = LoadOptions {
            strip_dnssec: record.signed,
            ..LoadOptions::default()
        };
        let loaded = load_zone_file(&path, origin, &options).map_err(|error| ZoneError::Load {
            zone: record.name.clone(),
            path: path.clone(),
            message: error.to_string(),
        })?;
        for warning in &loaded.warnings {
            tracing::warn!(zone = %record.name, "{warning}");
        }
        Ok(loaded.zone)
    }

    /// Loads a cluster zone's records from the cluster store.
    pub(super) fn load_cluster_source(
        &self,
        record: &ZoneRecord,
        origin: &Name,
    ) -> Result<Zone, ZoneError> {
        let rejected = |reason: String| ZoneError::Rejected {
            zone: record.name.clone(),
            reason,
        };
        let Some(text) = self.store.zone_content(&record.name)? else {
            return Err(rejected(
                "has no records in the cluster store yet".to_string(),
            ));
        };
        let options = LoadOptions {
            strip_dnssec: record.signed,
            ..LoadOptions::default()
        };
        let loaded = load_zone_str(&text, origin, &options).map_err(|error| {
            rejected(format!(
                "its records in the cluster store cannot be loaded: {error}"
            ))
        })?;
        Ok(loaded.zone)
    }

    pub(super) fn publish(
        &self,
        record: ZoneRecord,
        zone: Zone,
        expiry: Option<u64>,
    ) -> Result<(), ZoneError> {
        let serial = zone.serial();
        let records = zone.record_count();
        // A signed version is rendered for saving before the zone moves
        // into the server's index.
        let saved_text = expiry.map(|_| {
            let mut text = Vec::with_capacity(records * 100);
            write_zone(&zone, &mut text).map(|()| text)
        });
        let mut published = PublishedZone::new(zone).map_err(|error| ZoneError::Publish {
            zone: record.name.clone(),
            message: error.to_string(),
        })?;
        // Members transfer cluster zones from each other with this key.
        if record.storage == Storage::Cluster {
            if let Some(key) = self.cluster.as_ref().and_then(|link| link.transfer_key()) {
                published.allow_transfer_key(key);
            }
        }
        self.published.publish(Arc::new(published));
        if let Some(text) = saved_text {
            self.save_signed(&record.name, text);
        }
        let name = record.name.clone();
        // A member without the cluster key serves versions the signers
        // made and leaves the shared record to them.
        let shared_by_signers = record.storage == Storage::Cluster
            && record.signed
            && self.cluster.is_some()
            && !self.has_cluster_key();
        if !shared_by_signers {
            self.record_publication(&record, serial)?;
        }
        tracing::info!(zone = %name, serial = ?serial, records, "zone {name} published with serial {}", serial.unwrap_or(0));
        self.update_runtime(&name, |runtime| {
            runtime.serial = serial;
            runtime.records = Some(records);
            runtime.next_expiry = expiry;
        });
        Ok(())
    }

    /// Stores the serial and signing time of a published version in the
    /// zone's record. Only those fields change, compared against the record
    /// read, so that an operator's or another member's concurrent change
    /// of the zone's settings is never undone; a lost race is retried.
    fn record_publication(
        &self,
        record: &ZoneRecord,
        serial: Option<u32>,
    ) -> Result<(), ZoneError> {
        const ATTEMPTS: u32 = 5;
        for attempt in 1..=ATTEMPTS {
            let existing = self.store.zone(&record.name)?;
            let mut stored = existing.clone().unwrap_or_else(|| record.clone());
            // The highest serial any member published stays.
            stored.last_serial = match (stored.last_serial, serial.or(record.last_serial)) {
                (Some(last), Some(new)) if serial_gt(last, new) => Some(last),
                (last, new) => new.or(last),
            };
            stored.last_signed = record.last_signed.or(stored.last_signed);
            // Writing an unchanged record would wake every cluster member
            // watching the zone, and their publications would wake this one.
            let operation = match existing {
                Some(expected) if expected == stored => return Ok(()),
                Some(expected) => Operation::ReplaceZone {
                    record: stored,
                    expected,
                },
                None => Operation::PutZone(stored),
            };
            match self.store.commit(Transaction::new().push(operation)) {
                Err(StoreError::ZoneMoved { .. }) if attempt < ATTEMPTS => {
                    tracing::debug!(zone = %record.name, attempt,
                        "zone {}: its record changed while the publication was recorded; retrying", record.name);
                }
                result => return result.map_err(ZoneError::from),
            }
        }
        Ok(())
    }

    /// Makes this server the Key Master of a file-backed zone that has none.
    pub(super) fn ensure_role(&self, record: &ZoneRecord) -> Result<RoleRecord, ZoneError> {
        match self.store.role(&record.name)? {
            Some(role) if role.key_master == self.config.name => Ok(role),
            Some(role) if record.storage == Storage::File => {
                // A file-backed zone has one primary: a role naming another
                // server can only come from a rename of this one.
                let renamed = RoleRecord {
                    zone: record.name.clone(),
                    key_master: self.config.name.clone(),
                    epoch: role.epoch + 1,
                    changed: unix_now(),
                };
                let put = Operation::PutRole {
                    role: renamed.clone(),
                    expected_epoch: Some(role.epoch),
                };
                self.store.commit(Transaction::new().push(put))?;
                tracing::warn!(zone = %record.name, previous = %role.key_master, now = %self.config.name,
                    "Key Master of file-backed zone {} renamed from {} to {}", record.name, role.key_master, self.config.name);
                Ok(renamed)
            }
            Some(role) => Ok(role),
            None => {
                let role = RoleRecord {
                    zone: record.name.clone(),
                    key_master: self.config.name.clone(),
                    epoch: 1,
                    changed: unix_now(),
                };
                let put = Operation::PutRole {
                    role: role.clone(),
                    expected_epoch: None,
                };
                self.store.commit(Transaction::new().push(put))?;
                tracing::info!(zone = %record.name, server = %self.config.name, "{} is now Key Master of zone {}", self.config.name, record.name);
                Ok(role)
            }
        }
    }

    /// Runs what is due in every zone: engine steps of the zones this
    /// server is Key Master of, and signature refreshes. Returns the
    /// earliest time anything is due next.
    pub fn maintain_due(&self) -> Option<u64> {
        let now = unix_now();
        // Per zone: signature expiry, engine due time, refresh recheck time,
        // the next transfer from a signer.
        type Due = (String, Option<u64>, Option<u64>, Option<u64>, Option<u64>);
        let zones: Vec<Due> = {
            let zones = self.zones.lock().unwrap_or_else(|p| p.into_inner());
            zones
                .iter()
                .map(|(name, runtime)| {
                    (
                        name.clone(),
                        runtime.next_expiry,
                        runtime.engine_due,
                        runtime.refresh_wait,
                        runtime.fetch_due,
                    )
                })
                .collect()
        };
        let mut next: Option<u64> = None;
        for (zone, expiry, engine_due, refresh_wait, fetch_due) in zones {
            let Ok(Some(record)) = self.store.zone(&zone) else {
                continue;
            };
            let refresh = self.policy_for(&record).signature_refresh.as_secs();
            let refresh_at = expiry.map(|expiry| {
                expiry
                    .saturating_sub(refresh)
                    .max(refresh_wait.unwrap_or(0))
            });
            let due = |at: Option<u64>| at.is_some_and(|at| at <= now);
            let cluster_signed = record.signed && record.storage == Storage::Cluster;
            let result = if due(engine_due) && record.signed {
                self.step_zone(&zone)
            } else if (due(refresh_at) || due(fetch_due)) && cluster_signed {
                let lock = self.runtime_lock(&zone);
                let _guard = lock.lock().unwrap_or_else(|p| p.into_inner());
                self.refresh_cluster_signatures(&zone)
            } else if due(refresh_at) {
                tracing::info!(zone = %zone, "zone {zone}: refreshing signatures");
                self.refresh_zone(&zone)
            } else {
                Ok(())
            };
            if let Err(error) = result {
                tracing::error!(zone = %zone, error = %error, "zone {zone}: maintenance failed; the previous version stays in service");
                // Try again after a pause rather than at once.
                self.update_runtime(&zone, |runtime| {
                    runtime.engine_due = runtime.engine_due.map(|_| now + super::RETRY_INTERVAL);
                });
            }
            let (expiry, engine_due, refresh_wait, fetch_due) = {
                let zones = self.zones.lock().unwrap_or_else(|p| p.into_inner());
                zones
                    .get(&zone)
                    .map_or((None, None, None, None), |runtime| {
                        (
                            runtime.next_expiry,
                            runtime.engine_due,
                            runtime.refresh_wait,
                            runtime.fetch_due,
                        )
                    })
            };
            let refresh_at =
                expiry.map(|e| e.saturating_sub(refresh).max(refresh_wait.unwrap_or(0)));
            // A transfer is retried only while the zone is a signed cluster zone.
            let fetch_due = fetch_due.filter(|_| cluster_signed);
            for at in [refresh_at, engine_due, fetch_due].into_iter().flatten() {
                next = Some(next.map_or(at, |current| current.min(at)));
            }
        }
        next
    }

    /// Runs a due engine step for a zone and publishes the result if the
    /// signed data changed.
    fn step_zone(&self, zone: &str) -> Result<(), ZoneError> {
        let lock = self.runtime_lock(zone);
        let _guard = lock.lock().unwrap_or_else(|p| p.into_inner());
        let record = self.record(zone)?;
        let role = if record.storage == Storage::Cluster {
            self.store.role(zone)?
        } else {
            Some(self.ensure_role(&record)?)
        };
        let Some(role) = role.filter(|role| role.key_master == self.config.name) else {
            self.update_runtime(zone, |runtime| runtime.engine_due = None);
            return Ok(());
        };
        let (_, origin) = zone_name(zone)?;
        let policy = self.policy_for(&record);
        let outcome = self.step_engine(&record, &origin, &policy, &role, unix_now())?;
        let result = if outcome.unsigned {
            self.finish_unsigning(record, role)
        } else if outcome.resign {
            self.sign_and_publish(zone, false)
        } else {
            Ok(())
        };
        let message = result.as_ref().err().map(ToString::to_string);
        self.update_runtime(zone, |runtime| runtime.error = message);
        result
    }

    /// Returns the API view of a zone.
    pub fn zone_info(&self, zone: &str) -> Result<ZoneInfo, ZoneError> {
        let record = self.record(zone)?;
        let role = self.store.role(zone)?;
        let policy = self.policy_for(&record);
        let (serial, records, next_expiry, error, fetched_from) = {
            let zones = self.zones.lock().unwrap_or_else(|p| p.into_inner());
            match zones.get(zone) {
                Some(r) => (
                    r.serial,
                    r.records,
                    r.next_expiry,
                    r.error.clone().or_else(|| r.hides_cluster_zone.clone()),
                    r.fetched_from.clone(),
                ),
                None => (None, None, None, None, None),
            }
        };
        let is_key_master = role
            .as_ref()
            .is_some_and(|r| r.key_master == self.config.name);
        let cluster = record.storage == Storage::Cluster;
        let status = match &role {
            None => KeyMasterStatus::None,
            // A file-backed zone's Key Master is this server, which is running.
            Some(r) if r.key_master == self.config.name => KeyMasterStatus::Online,
            // A cluster zone's Key Master is online while its lease lives.
            Some(r) if cluster && self.member_online(&r.key_master) == Some(true) => {
                KeyMasterStatus::Online
            }
            Some(_) => KeyMasterStatus::Offline,
        };
        let key_management = match &role {
            Some(r) if record.signed && status == KeyMasterStatus::Offline => Some(format!(
                "waits for Key Master {}, which is offline: no key is generated and no rollover steps until it is back; \
                 the members keep refreshing signatures",
                r.key_master
            )),
            _ => None,
        };
        let signed = record.signed;
        let nsec3 = signed && policy.denial == keymaster_policy::Denial::Nsec3;
        let engine = self.load_engine(zone)?;
        Ok(ZoneInfo {
            zone: record.name.clone(),
            storage: record.storage,
            file: record.file.clone(),
            is_signed: signed,
            policy: Some(record.policy.clone()),
            key_master_server: role.as_ref().map(|r| r.key_master.clone()),
            is_key_master,
            key_master_status: status,
            key_master_epoch: role.as_ref().map_or(0, |r| r.epoch),
            serial,
            loaded: serial.is_some(),
            error,
            denial_of_existence: signed.then(|| policy.denial.to_string()),
            nsec3_iterations: nsec3.then_some(policy.nsec3_iterations),
            nsec3_salt: nsec3.then(|| {
                if policy.nsec3_salt_length == 0 {
                    "-".to_string()
                } else {
                    "random".to_string()
                }
            }),
            nsec3_opt_out: nsec3.then_some(policy.nsec3_opt_out),
            dnskey_ttl: Some(policy.dnskey_ttl.as_secs()),
            ds_ttl: Some(policy.parent_ds_ttl.as_secs()),
            signature_validity: Some(policy.signature_validity.as_secs()),
            signature_refresh: Some(policy.signature_refresh.as_secs()),
            signature_inception_offset: Some(policy.signature_inception_offset.as_secs()),
            propagation_time: Some(policy.zone_propagation_delay.as_secs()),
            // TODO: poll child zones for CDS/CDNSKEY; until then there is no polling period.
            secure_delegation_polling_period: None,
            parent_has_secure_delegation: record.parent_has_ds,
            last_signed: record.last_signed,
            next_signature_expiry: next_expiry,
            records,
            key_waits: engine
                .waiting
                .iter()
                .map(|wait| keymaster_api::KeyWait {
                    what: wait.what.clone(),
                    since: wait.since,
                    until: wait.until,
                })
                .collect(),
            parent_ds_servers: engine.parent.servers.clone(),
            next_key_event: engine.next_due,
            can_sign: cluster.then(|| self.has_cluster_key()),
            key_management,
            fetched_from,
        })
    }

    /// Returns every zone's API view. A member of a cluster fails with
    /// [`ZoneError::Unavailable`] while it cannot read the cluster zones,
    /// rather than list its local zones alone as if they were all.
    pub fn zone_infos(&self) -> Result<Vec<ZoneInfo>, ZoneError> {
        if let Some(link) = &self.cluster {
            let unavailable = |why: String| {
                ZoneError::Unavailable(format!(
                    "the cluster zones cannot be listed: {why}; the members keep serving them, \
                     and `keymaster zone show ZONE` still shows this server's file zones"
                ))
            };
            let Some(etcd) = link.etcd() else {
                return Err(unavailable(format!(
                    "{} has not reached the cluster store at {} yet",
                    self.config.name,
                    link.endpoints()
                )));
            };
            // The store's error names the endpoint it tried.
            if let Err(error) = keymaster_store::Store::zones(etcd.as_ref()) {
                return Err(unavailable(error.to_string()));
            }
        }
        let zones = self.store.zones()?;
        zones
            .iter()
            .map(|record| self.zone_info(&record.name))
            .collect()
    }

    /// Adds a file-backed zone and publishes it unsigned.
    pub fn add_zone(&self, zone: &str, file: PathBuf) -> Result<ZoneInfo, ZoneError> {
        let (name, _) = zone_name(zone)?;
        if self.store.zone(&name)?.is_some() {
            return Err(ZoneError::Exists(name));
        }
        let file = std::fs::canonicalize(&file).map_err(|error| ZoneError::Load {
            zone: name.clone(),
            path: file.clone(),
            message: error.to_string(),
        })?;
        let record = ZoneRecord {
            name: name.clone(),
            storage: Storage::File,
            file: Some(file.display().to_string()),
            signed: false,
            policy: keymaster_policy::DEFAULT_POLICY.to_string(),
            last_serial: None,
            last_signed: None,
            parent_has_ds: None,
            from_config: false,
            policy_definition: None,
        };
        // Load first so a broken file adds nothing.
        let (_, origin) = zone_name(&name)?;
        self.load_source(&record, &origin)?;
        self.store_and_refresh(record)
    }

    /// Adds a cluster zone with the records of the master-file text
    /// `content` (sent by the CLI, without `$INCLUDE`), which is checked as
    /// a whole first. Every member then loads and serves it, unsigned.
    pub fn add_cluster_zone(
        &self,
        zone: &str,
        content: Option<String>,
    ) -> Result<ZoneInfo, ZoneError> {
        let (name, origin) = zone_name(zone)?;
        let rejected = |reason: String| ZoneError::Rejected {
            zone: name.clone(),
            reason,
        };
        let Some(link) = &self.cluster else {
            return Err(rejected(
                "this server has no [cluster] configuration, so it cannot store cluster zones"
                    .to_string(),
            ));
        };
        if link.etcd().is_none() {
            return Err(rejected(format!(
                "this server is not connected to the cluster store at {} yet; try again once `keymaster server list` lists the members",
                link.endpoints()
            )));
        }
        // TODO: add a cluster zone without a file once `zone import` and
        // dynamic updates can fill it.
        let Some(content) = content else {
            return Err(rejected(
                "give its first records with --from-file PATH".to_string(),
            ));
        };
        if self.store.zone(&name)?.is_some() {
            return Err(ZoneError::Exists(name));
        }

        // The members get the records with absolute names.
        let loaded = load_sent_content(&name, &origin, &content)?;
        for warning in &loaded.warnings {
            tracing::warn!(zone = %name, "{warning}");
        }
        let mut text = Vec::new();
        write_zone(&loaded.zone, &mut text)
            .map_err(|error| rejected(format!("cannot render its records as text: {error}")))?;
        let text = String::from_utf8(text)
            .map_err(|error| rejected(format!("its records are not valid text: {error}")))?;

        let record = ZoneRecord {
            name: name.clone(),
            storage: Storage::Cluster,
            file: None,
            signed: false,
            policy: keymaster_policy::DEFAULT_POLICY.to_string(),
            last_serial: None,
            last_signed: None,
            parent_has_ds: None,
            from_config: false,
            policy_definition: None,
        };
        let transaction =
            Transaction::new()
                .push(Operation::PutZone(record))
                .push(Operation::PutZoneContent {
                    zone: name.clone(),
                    text,
                });
        self.store.commit(transaction)?;
        tracing::info!(zone = %name, "cluster zone {name} added");
        self.refresh_zone(&name)?;
        self.zone_info(&name)
    }

    /// Stores a new zone record, then loads and publishes the zone.
    fn store_and_refresh(&self, record: ZoneRecord) -> Result<ZoneInfo, ZoneError> {
        let name = record.name.clone();
        self.store
            .commit(Transaction::new().push(Operation::PutZone(record)))?;
        self.refresh_zone(&name)?;
        self.zone_info(&name)
    }

    /// Changes a zone's stored settings with `change` on a record read
    /// under the zone's lock, so no concurrent publication is undone, then
    /// loads and publishes the zone.
    fn change_and_refresh(
        &self,
        name: &str,
        change: impl FnOnce(&mut ZoneRecord),
    ) -> Result<ZoneInfo, ZoneError> {
        {
            let lock = self.runtime_lock(name);
            let _guard = lock.lock().unwrap_or_else(|p| p.into_inner());
            let mut record = self.record(name)?;
            change(&mut record);
            self.store
                .commit(Transaction::new().push(Operation::PutZone(record)))?;
        }
        self.refresh_zone(name)?;
        self.zone_info(name)
    }

    /// Re-reads a zone's master file and publishes a new version.
    pub fn reload_zone(&self, zone: &str) -> Result<ZoneInfo, ZoneError> {
        let (name, _) = zone_name(zone)?;
        self.refresh_zone(&name)?;
        self.zone_info(&name)
    }

    /// Signs a zone, making this server its Key Master.
    pub fn sign_zone(
        &self,
        zone: &str,
        key_master: Option<&str>,
        policy: Option<&str>,
    ) -> Result<ZoneInfo, ZoneError> {
        let (name, _) = zone_name(zone)?;
        let mut record = self.record(&name)?;
        let policy = policy.map(str::to_string);
        if record.storage == Storage::Cluster {
            return self.sign_cluster(record, key_master, policy);
        }
        if let Some(server) = key_master.filter(|server| *server != self.config.name) {
            return Err(
                self.single_primary(&record, &format!("cannot make {server} its Key Master"))
            );
        }
        if let Some(policy) = &policy {
            if !self.config.policies.contains_key(policy) {
                return Err(ZoneError::UnknownPolicy(policy.clone()));
            }
            record.policy = policy.clone();
        }
        record.signed = true;
        let role = self.ensure_role(&record)?;
        if role.key_master == self.config.name {
            let state = self.load_engine(&name)?.state;
            if state.is_unsigned() {
                // The engine stays idle after going insecure until asked to sign.
                self.queue_request(&name, &role, keymaster_lifecycle::Request::Sign)?;
            } else if state.going_insecure.is_some() {
                self.queue_request(&name, &role, keymaster_lifecycle::Request::CancelInsecure)?;
            }
        }
        self.change_and_refresh(&name, |record| {
            record.signed = true;
            if let Some(policy) = policy {
                record.policy = policy;
            }
        })
    }

    /// Stops signing a zone; the role is kept. A zone whose parent may
    /// hold a DS first asks the parent to remove it (CDS and CDNSKEY delete
    /// form) and stays signed until the DS has left every cache. With
    /// `no_parent_ds` the operator states that the parent never held a DS,
    /// and the zone goes unsigned at once.
    pub fn unsign_zone(&self, zone: &str, no_parent_ds: bool) -> Result<ZoneInfo, ZoneError> {
        let (name, _) = zone_name(zone)?;
        let record = self.record(&name)?;
        if !record.signed {
            return self.zone_info(&name);
        }
        let role = self.ensure_role(&record)?;
        let engine = self.load_engine(&name)?;
        let has_keys = engine.state.keys.iter().any(|key| !key.is_gone());
        // Only the Key Master takes a zone with keys out of signing; from
        // another member the zone would go unsigned under the parent's DS.
        if has_keys {
            self.require_key_master(&role)?;
        }
        if role.key_master == self.config.name && has_keys {
            if no_parent_ds {
                // The engine's own belief overrides the operator's word:
                // dropping keys whose DS the parent serves makes the zone
                // bogus.
                let believed = engine.state.keys.iter().find(|key| {
                    matches!(
                        key.ds.state,
                        RecordState::Omnipresent | RecordState::Unretentive
                    ) || key.ds_seen.is_some()
                });
                if let Some(key) = believed {
                    return Err(ZoneError::Rejected {
                        zone: name.clone(),
                        reason: format!(
                            "the parent is believed to serve the DS of key {} (id {}, DS {}), so --no-parent-ds would leave the zone bogus; \
                             run `keymaster zone unsign {name}` without it: keymaster publishes the CDS delete form and unsigns once the DS is gone",
                            key.key_tag, key.id, key.ds.state.name()
                        ),
                    });
                }
                self.forget_keys(&name, &role)?;
            } else {
                self.queue_request(&name, &role, keymaster_lifecycle::Request::GoInsecure)?;
                tracing::info!(zone = %name, "zone {name}: going insecure: the parent is asked to remove the DS first; the zone stays signed until it is gone");
                return self.zone_info(&name);
            }
        }
        self.change_and_refresh(&name, |record| record.signed = false)
    }

    /// Finds a key of a zone by id or key tag; a tag shared by two keys is
    /// rejected with both ids.
    pub fn find_key(&self, zone: &str, key: &str) -> Result<StoredKey, ZoneError> {
        let keys = self.store.keys(zone)?;
        if let Some(found) = keys.iter().find(|stored| stored.id == key) {
            return Ok(found.clone());
        }
        let tag: Option<u16> = key.parse().ok();
        let matching: Vec<&StoredKey> = keys
            .iter()
            .filter(|stored| Some(stored.key_tag) == tag)
            .collect();
        match matching[..] {
            [one] => Ok(one.clone()),
            [] => Err(ZoneError::Rejected {
                zone: zone.to_string(),
                reason: format!("has no key with id or tag {key}; see `keymaster key list {zone}`"),
            }),
            _ => Err(ZoneError::Rejected {
                zone: zone.to_string(),
                reason: format!(
                    "key tag {key} is shared by keys {}; name the key by id",
                    matching
                        .iter()
                        .map(|k| k.id.as_str())
                        .collect::<Vec<_>>()
                        .join(" and ")
                ),
            }),
        }
    }

    /// Queues an operator request about one key of a zone this server is
    /// Key Master of.
    pub fn key_request(&self, zone: &str, key: &str, action: &str) -> Result<KeyInfo, ZoneError> {
        let (name, _) = zone_name(zone)?;
        let record = self.record(&name)?;
        if !record.signed {
            return Err(ZoneError::Rejected {
                zone: name,
                reason: "is not signed, so its keys do not roll".to_string(),
            });
        }
        let role = self.ensure_role(&record)?;
        if role.key_master != self.config.name {
            return Err(ZoneError::Rejected {
                zone: name,
                reason: format!(
                    "its Key Master is {}, which alone manages its keys",
                    role.key_master
                ),
            });
        }
        let stored = self.find_key(&name, key)?;
        let engine = self.load_engine(&name)?;
        let request = match action {
            "rollover" => keymaster_lifecycle::Request::Retire {
                id: stored.id.clone(),
            },
            "step" if !lifecycle::waiting_for_parent(&engine) => {
                return Err(ZoneError::Rejected {
                    zone: name,
                    reason: "has no DS change waiting for the parent, so there is nothing to confirm; `keymaster zone show` lists the zone's waits".to_string(),
                })
            }
            "step" => keymaster_lifecycle::Request::Step,
            "retire"
                if engine
                    .state
                    .key(&stored.id)
                    .is_some_and(|key| key.standby && key.is_gone()) =>
            {
                // A key waiting to succeed another was never published.
                self.drop_standby_key(&name, &role, &stored.id)?;
                tracing::info!(zone = %name, key_tag = stored.key_tag, "zone {name}: standby key {} (tag {}) retired before use and deleted", stored.id, stored.key_tag);
                return Ok(key_info(&stored, &[]));
            }
            "retire" => {
                let others = engine.state.keys.iter().any(|other| {
                    other.id != stored.id
                        && other.role == stored.role
                        && other.algorithm == stored.algorithm
                        && other.goal == keymaster_lifecycle::Goal::Omnipresent
                        && !other.standby
                });
                if !others {
                    return Err(ZoneError::Rejected {
                        zone: name,
                        reason: format!(
                            "key {} is the zone's only {:?} of algorithm {}; use `keymaster key rollover` to replace it",
                            stored.key_tag, stored.role, stored.algorithm
                        ),
                    });
                }
                keymaster_lifecycle::Request::Retire {
                    id: stored.id.clone(),
                }
            }
            other => {
                return Err(ZoneError::BadRequest(format!(
                    "unknown key action {other:?}; use rollover, step or retire"
                )))
            }
        };
        self.queue_request(&name, &role, request)?;
        tracing::info!(zone = %name, key_tag = stored.key_tag, "zone {name}: key {} (tag {}): {action} requested", stored.id, stored.key_tag);
        Ok(key_info(&stored, &[]))
    }

    fn single_primary(&self, record: &ZoneRecord, what: &str) -> ZoneError {
        if record.storage == Storage::Cluster {
            // Reached only by `zone sign --key-master`; `daemon::role`
            // changes the role of cluster zones.
            return ZoneError::Rejected {
                zone: record.name.clone(),
                reason: format!(
                    "{what}: Key Master roles of cluster zones cannot be changed in this version"
                ),
            };
        }
        ZoneError::Rejected {
            zone: record.name.clone(),
            reason: format!(
                "{what}: the zone is stored in a master file and has a single primary ({}), which is always its Key Master",
                self.config.name
            ),
        }
    }

    /// Returns the API view of a zone's role.
    pub fn role_info(&self, zone: &str) -> Result<RoleInfo, ZoneError> {
        let (name, _) = zone_name(zone)?;
        let record = self.record(&name)?;
        let role = self.store.role(&name)?;
        let is_key_master = role
            .as_ref()
            .is_some_and(|r| r.key_master == self.config.name);
        Ok(RoleInfo {
            zone: name,
            storage: record.storage,
            key_master: role.as_ref().map(|r| r.key_master.clone()),
            epoch: role.as_ref().map_or(0, |r| r.epoch),
            is_key_master,
            key_master_status: match &role {
                None => KeyMasterStatus::None,
                Some(_) if is_key_master => KeyMasterStatus::Online,
                Some(r) if self.member_online(&r.key_master) == Some(true) => {
                    KeyMasterStatus::Online
                }
                Some(_) => KeyMasterStatus::Offline,
            },
            changed: role.map(|r| r.changed),
        })
    }

    /// Assigns a Key Master to a zone that has none yet.
    pub fn assign_role(&self, zone: &str, server: &str) -> Result<RoleInfo, ZoneError> {
        let (name, _) = zone_name(zone)?;
        let record = self.record(&name)?;
        if let Some(role) = self.store.role(&name)? {
            return Err(ZoneError::Rejected {
                zone: name,
                reason: format!(
                    "already has Key Master {} (epoch {}); use `role transfer` to move it",
                    role.key_master, role.epoch
                ),
            });
        }
        if server != self.config.name {
            return Err(self.single_primary(&record, &format!("cannot assign {server}")));
        }
        self.ensure_role(&record)?;
        self.role_info(&name)
    }

    /// Rejects a transfer or seizure of a file-backed zone.
    pub fn move_role(&self, zone: &str, action: &str) -> Result<RoleInfo, ZoneError> {
        let (name, _) = zone_name(zone)?;
        let record = self.record(&name)?;
        Err(self.single_primary(&record, &format!("the Key Master role cannot be {action}")))
    }

    /// Returns the API view of a zone's keys.
    pub fn key_infos(&self, zone: &str) -> Result<Vec<KeyInfo>, ZoneError> {
        let (name, _) = zone_name(zone)?;
        let record = self.record(&name)?;
        let keys = self.store.keys(&name)?;
        let engine = self.load_engine(&name)?;
        let policy = keymaster_lifecycle::LifecyclePolicy::from(&self.policy_for(&record));
        let planned = if record.signed {
            keymaster_lifecycle::plan::next_transitions(&engine.state, &policy, unix_now(), 3)
        } else {
            Default::default()
        };
        Ok(keys
            .iter()
            .map(|key| key_info(key, planned.get(&key.id).map_or(&[][..], Vec::as_slice)))
            .collect())
    }

    /// Adds a key to a zone. It waits as the successor of the current key
    /// of its role, so it replaces that key at its next rollover without an
    /// extra one.
    pub fn add_key(
        &self,
        zone: &str,
        role: KeyRole,
        algorithm: Option<&str>,
        bits: Option<u32>,
    ) -> Result<KeyInfo, ZoneError> {
        let (name, origin) = zone_name(zone)?;
        let record = self.record(&name)?;
        let policy = self.policy_for(&record);
        let algorithm = match algorithm {
            Some(text) => {
                keymaster_policy::algorithm_number(text).ok_or_else(|| ZoneError::Rejected {
                    zone: name.clone(),
                    reason: format!("unknown algorithm {text:?}"),
                })?
            }
            None => policy.algorithm,
        };
        let is_rsa = matches!(algorithm, 8 | 10);
        match bits {
            Some(_) if !is_rsa => {
                return Err(ZoneError::Rejected {
                    zone: name,
                    reason: format!(
                        "--bits applies only to RSA keys, not to algorithm {algorithm}"
                    ),
                })
            }
            Some(value) if !keymaster_policy::RSA_BITS.contains(&value) => {
                return Err(ZoneError::Rejected {
                    zone: name,
                    reason: format!("--bits {value} is not one of 2048, 3072, 4096 or 8192"),
                })
            }
            _ => {}
        }
        check_key_fits_policy(&name, &policy, role, algorithm)?;
        check_algorithm_covered(&name, &self.store.keys(&name)?, role, algorithm)?;
        let kek = self.sealing_key(&name)?;
        let role_record = self.ensure_role(&record)?;
        let key = keyring::generate_key(
            kek,
            &origin,
            keyring::new_key_id(),
            role,
            algorithm,
            bits.unwrap_or(policy.rsa_bits),
            unix_now(),
        )?;
        self.store_new_key(&record, role_record, key, "added by request")
    }

    /// Returns the DS records the parent must serve now, with the DNSKEYs
    /// they match.
    ///
    /// Those are the KSKs or CSKs whose DS is rumoured or omnipresent, the
    /// same set the daemon requests from the parent. Before any DS was requested
    /// (a zone being signed for the first time), the published keys that
    /// are not being replaced are listed with a note, for trust anchors and
    /// early submission.
    pub fn ds_info(
        &self,
        zone: &str,
        digest: keymaster_keys::DigestType,
    ) -> Result<DsInfo, ZoneError> {
        let (name, origin) = zone_name(zone)?;
        let policy = self.policy_for(&self.record(&name)?);
        let keys = self.store.keys(&name)?;
        let sep: Vec<&StoredKey> = keys
            .iter()
            .filter(|key| key.role != KeyRole::Zsk && key.removed.is_none())
            .collect();
        let mut chosen: Vec<&StoredKey> = sep
            .iter()
            .copied()
            .filter(|key| key.ds_state.in_zone())
            .collect();
        let mut note = None;
        if chosen.is_empty() {
            chosen = sep
                .iter()
                .copied()
                .filter(|key| key.dnskey_state.in_zone() && key.retired.is_none())
                .collect();
            if !chosen.is_empty() {
                note = Some(
                    "the DS is not requested from the parent yet: keymaster requests it once the DNSKEY has reached every cache (see `keymaster key list`)"
                        .to_string(),
                );
            }
        }

        let record = |ttl: keymaster_policy::Duration, rtype: Rtype, rdata: Bytes| {
            keymaster_zone::record_to_string(&keymaster_zone::Record {
                owner: origin.clone(),
                class: keymaster_zone::Class::IN,
                ttl: ttl.as_u32(),
                rtype,
                rdata,
            })
        };
        let ds = chosen
            .iter()
            .map(|key| {
                let rdata = keymaster_keys::ds_rdata(&origin, &key.dnskey, digest);
                record(policy.parent_ds_ttl, Rtype::DS, rdata)
            })
            .collect();
        let dnskey = chosen
            .iter()
            .map(|key| {
                record(
                    policy.dnskey_ttl,
                    Rtype::DNSKEY,
                    Bytes::from(key.dnskey.clone()),
                )
            })
            .collect();
        Ok(DsInfo {
            zone: name,
            ds,
            dnskey,
            note,
        })
    }
}

/// Rejects a key the zone's policy would never use: a role outside its key
/// layout, or an algorithm other than its own. The engine folds added keys
/// in as successors of the same role and algorithm, so such a key would
/// wait forever.
fn check_key_fits_policy(
    zone: &str,
    policy: &Policy,
    role: KeyRole,
    algorithm: u8,
) -> Result<(), ZoneError> {
    let layout_roles: &[KeyRole] = match policy.keys {
        keymaster_policy::KeyLayout::KskZsk => &[KeyRole::Ksk, KeyRole::Zsk],
        keymaster_policy::KeyLayout::Csk => &[KeyRole::Csk],
    };
    let role_name = |role: &KeyRole| format!("{role:?}").to_uppercase();
    let reason = if !layout_roles.contains(&role) {
        format!(
            "policy {:?} uses {} keys, so a {} would never be used; add a key of its roles",
            policy.name,
            layout_roles
                .iter()
                .map(role_name)
                .collect::<Vec<_>>()
                .join(" and "),
            role_name(&role)
        )
    } else if algorithm != policy.algorithm {
        let name = |number| keymaster_policy::algorithm_name(number).unwrap_or("unknown");
        format!(
            "policy {:?} signs with algorithm {} ({}), so a key of algorithm {algorithm} ({}) would never be used; \
             to move the zone to another algorithm, change the policy's algorithm and keymaster rolls the keys",
            policy.name,
            policy.algorithm,
            name(policy.algorithm),
            name(algorithm)
        )
    } else {
        return Ok(());
    };
    Err(ZoneError::Rejected {
        zone: zone.to_string(),
        reason,
    })
}

/// Rejects a zone-signing key whose algorithm no key-signing key of the
/// zone has: validators such as BIND's dnssec-verify require every
/// algorithm in the DNSKEY RRset to sign that RRset.
fn check_algorithm_covered(
    zone: &str,
    keys: &[StoredKey],
    role: KeyRole,
    algorithm: u8,
) -> Result<(), ZoneError> {
    let covered = keys
        .iter()
        .any(|key| key.removed.is_none() && key.role != KeyRole::Zsk && key.algorithm == algorithm);
    if role == KeyRole::Zsk && !covered {
        let name = keymaster_policy::algorithm_name(algorithm).unwrap_or("unknown");
        return Err(ZoneError::Rejected {
            zone: zone.to_string(),
            reason: format!(
                "no KSK or CSK of algorithm {algorithm} ({name}) signs the DNSKEY RRset; add one first, \
                 or change the policy's algorithm to roll the zone to it"
            ),
        });
    }
    Ok(())
}

/// Returns the API view of a stored key with its next planned
/// transitions, soonest first.
pub fn key_info(key: &StoredKey, planned: &[(u64, String)]) -> KeyInfo {
    let next_transitions = planned
        .iter()
        .map(|(at, event)| keymaster_api::PlannedTransition {
            at: *at,
            event: event.clone(),
        })
        .collect();
    KeyInfo {
        id: key.id.clone(),
        key_tag: key.key_tag,
        role: key.role,
        algorithm: key.algorithm,
        algorithm_name: keymaster_policy::algorithm_name(key.algorithm)
            .unwrap_or("UNKNOWN")
            .to_string(),
        bits: key.bits,
        dnskey_state: key.dnskey_state,
        krrsig_state: key.krrsig_state,
        zrrsig_state: key.zrrsig_state,
        ds_state: key.ds_state,
        created: key.created,
        published: key.published,
        active: key.active,
        retired: key.retired,
        removed: key.removed,
        next_transitions,
        key_store: match key.private {
            keymaster_store::PrivateKey::EncryptedFile { .. } => "encrypted-file".to_string(),
            keymaster_store::PrivateKey::Pkcs11 { .. } => "pkcs11".to_string(),
        },
    }
}

impl Daemon {
    /// Imports a key read from BIND key files. Like an added key it waits
    /// as the successor of the current key of its role; a zone with no key
    /// of that role yet starts with it.
    pub fn import_key(
        &self,
        zone: &str,
        request: &keymaster_api::ImportKeyRequest,
    ) -> Result<KeyInfo, ZoneError> {
        let (name, origin) = zone_name(zone)?;
        let record = self.record(&name)?;
        let rejected = |reason: String| ZoneError::Rejected {
            zone: name.clone(),
            reason,
        };
        if let Some(owner) = &request.owner {
            let (owner_name, _) = zone_name(owner)?;
            if !owner_name.eq_ignore_ascii_case(&name) {
                return Err(rejected(format!(
                    "the key belongs to zone {owner_name}, not to {name}; import it into its own zone"
                )));
            }
        }
        let algorithm = keymaster_keys::Algorithm::from_u8(request.algorithm)
            .ok_or_else(|| rejected(format!("algorithm {} is not supported", request.algorithm)))?;
        let der = zeroize::Zeroizing::new(
            data_encoding::BASE64
                .decode(request.pkcs8.as_bytes())
                .map_err(|_| rejected("the private key is not valid base64".to_string()))?,
        );
        let pair = keymaster_keys::KeyPair::from_pkcs8(algorithm, &der)
            .map_err(|error| rejected(format!("the private key cannot be loaded: {error}")))?;
        let policy = self.policy_for(&record);
        let role = match (request.flags & keymaster_keys::flags::SEP != 0, policy.keys) {
            (false, _) => KeyRole::Zsk,
            (true, keymaster_policy::KeyLayout::Csk) => KeyRole::Csk,
            (true, keymaster_policy::KeyLayout::KskZsk) => KeyRole::Ksk,
        };
        let tag = pair.key_tag(request.flags);
        if self
            .store
            .keys(&name)?
            .iter()
            .any(|key| key.dnskey == pair.dnskey_rdata(request.flags).as_ref())
        {
            return Err(rejected(format!("key {tag} is already in the zone")));
        }
        check_key_fits_policy(&name, &policy, role, request.algorithm)?;
        check_algorithm_covered(&name, &self.store.keys(&name)?, role, request.algorithm)?;
        let kek = self.sealing_key(&name)?;
        let role_record = self.ensure_role(&record)?;
        let key = keyring::seal_new_key(
            kek,
            &origin,
            keyring::new_key_id(),
            &pair,
            request.flags,
            role,
            unix_now(),
        );
        self.store_new_key(&record, role_record, key, "imported")
    }

    /// Stores a new key under the role's fence; the engine folds it into
    /// the schedule at its next step, which runs at once.
    fn store_new_key(
        &self,
        record: &ZoneRecord,
        role: RoleRecord,
        key: StoredKey,
        how: &str,
    ) -> Result<KeyInfo, ZoneError> {
        let name = record.name.clone();
        let info = key_info(&key, &[]);
        self.require_key_master(&role)?;
        self.commit_key_management(
            Transaction::fenced(lifecycle::fence(&role)).push(Operation::PutKey(key)),
        )?;
        let tag = info.key_tag;
        tracing::info!(zone = %name, key_tag = tag, "zone {name}: key {tag} {how}; it waits to succeed the current key of its role");
        if record.signed {
            let now = unix_now();
            self.update_runtime(&name, |runtime| runtime.engine_due = Some(now));
            self.wake.notify_one();
        }
        Ok(info)
    }
}

/// Returns the names of the settings in which two policies differ, other
/// than the name and the parent DS command.
fn policy_differences(shared: &Policy, local: &Policy) -> Vec<String> {
    let (Ok(serde_json::Value::Object(shared)), Ok(serde_json::Value::Object(local))) =
        (serde_json::to_value(shared), serde_json::to_value(local))
    else {
        return Vec::new();
    };
    shared
        .iter()
        .filter(|(key, _)| !matches!(key.as_str(), "name" | "parent_ds_command"))
        .filter(|(key, value)| local.get(key.as_str()) != Some(value))
        .map(|(key, _)| key.clone())
        .collect()
}
