//! The life of each zone inside the daemon: loading, the Key Master role,
//! keys, signing and publication.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use keymaster_api::{
    DsInfo, KeyInfo, KeyMasterStatus, KeyRole, RecordState, RoleInfo, Storage, ZoneInfo,
};
use keymaster_dnssec::SigningKey;
use keymaster_policy::{CdsPublish, Policy};
use keymaster_server::PublishedZone;
use keymaster_store::{Operation, RoleRecord, StoreError, StoredKey, Transaction, ZoneRecord};
use keymaster_zone::{load_zone_file, parse_name, write_zone, LoadOptions, Name, Rtype, Zone};

use super::keyring::{self, KeyringError};
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
    #[error("policy {0:?} is not defined")]
    UnknownPolicy(String),
    #[error("zone {zone}: cannot load {path}: {message}")]
    Load {
        zone: String,
        path: PathBuf,
        message: String,
    },
    #[error(transparent)]
    Keyring(#[from] KeyringError),
    #[error(transparent)]
    Signing(#[from] SigningError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("zone {zone}: the signed version cannot be published: {message}")]
    Publish { zone: String, message: String },
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
                | Self::UnknownPolicy(_)
        )
    }
}

/// Parses an operator's zone name into a normalized string and a `Name`.
///
/// The root zone may be written `@`, because URL parsers remove a path
/// segment of `.`.
pub fn zone_name(text: &str) -> Result<(String, Name), ZoneError> {
    let text = if text == "@" { "." } else { text };
    let normalized = crate::config::normalize_zone(text);
    let name = parse_name(&normalized, &Name::root()).map_err(|error| ZoneError::BadName {
        name: text.to_string(),
        reason: error.to_string(),
    })?;
    Ok((normalized, name))
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
                tracing::error!(zone = %record.name, error = %error, "zone is not served");
            }
        }
    }

    fn runtime_lock(&self, zone: &str) -> Arc<Mutex<()>> {
        let mut zones = self.zones.lock().unwrap_or_else(|p| p.into_inner());
        zones.entry(zone.to_string()).or_default().lock.clone()
    }

    fn update_runtime(&self, zone: &str, update: impl FnOnce(&mut ZoneRuntime)) {
        let mut zones = self.zones.lock().unwrap_or_else(|p| p.into_inner());
        update(zones.entry(zone.to_string()).or_default());
    }

    fn record(&self, zone: &str) -> Result<ZoneRecord, ZoneError> {
        self.store
            .zone(zone)?
            .ok_or_else(|| ZoneError::NotFound(zone.to_string()))
    }

    fn policy_for(&self, record: &ZoneRecord) -> Policy {
        self.config.policy(&record.policy).clone()
    }

    /// Loads the zone's source, signs it if it should be signed and this
    /// server is its Key Master, and publishes the result. On failure the
    /// previous version stays in service and the error is recorded.
    pub fn refresh_zone(&self, zone: &str) -> Result<(), ZoneError> {
        let lock = self.runtime_lock(zone);
        let _guard = lock.lock().unwrap_or_else(|p| p.into_inner());
        let result = self.refresh_locked(zone);
        let message = result.as_ref().err().map(ToString::to_string);
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
    fn restore_saved(&self, zone: &str) {
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

    fn refresh_locked(&self, zone: &str) -> Result<(), ZoneError> {
        let record = self.record(zone)?;
        let (_, origin) = zone_name(zone)?;
        let unsigned = self.load_source(&record, &origin)?;
        let file_serial = unsigned.serial().unwrap_or(0);
        if !record.signed {
            let serial = match record.last_serial {
                Some(last) if serial_gt(last, file_serial) => last.wrapping_add(1),
                _ => file_serial,
            };
            let mut version = unsigned;
            version.set_serial(serial);
            return self.publish(record, version, None);
        }

        self.ensure_role(&record)?;
        let policy = self.policy_for(&record);
        self.ensure_keys(&record, &origin, &policy)?;
        let keys = self.signing_keys(&record, &origin)?;
        let now = unix_now();
        let (cds, cdnskey) = self.cds_for(&record, &origin, &policy)?;
        let options = signing::sign_options(&policy, now, Bytes::new(), cds, cdnskey);
        let serial = next_serial(file_serial, record.last_serial);
        let version = signing::sign_version(
            unsigned,
            &keys,
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
        let mut record = record;
        record.last_signed = Some(now);
        self.publish(record, version.zone, Some(expiry))
    }

    fn load_source(&self, record: &ZoneRecord, origin: &Name) -> Result<Zone, ZoneError> {
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

    fn publish(
        &self,
        mut record: ZoneRecord,
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
        let published = PublishedZone::new(zone).map_err(|error| ZoneError::Publish {
            zone: record.name.clone(),
            message: error.to_string(),
        })?;
        self.published.publish(Arc::new(published));
        if let Some(text) = saved_text {
            self.save_signed(&record.name, text);
        }
        record.last_serial = serial.or(record.last_serial);
        let name = record.name.clone();
        self.store
            .commit(Transaction::new().push(Operation::PutZone(record)))?;
        tracing::info!(zone = %name, serial = ?serial, records, "zone {name} published with serial {}", serial.unwrap_or(0));
        self.update_runtime(&name, |runtime| {
            runtime.serial = serial;
            runtime.records = Some(records);
            runtime.next_expiry = expiry;
        });
        Ok(())
    }

    /// Makes this server the Key Master of a file-backed zone that has none.
    fn ensure_role(&self, record: &ZoneRecord) -> Result<RoleRecord, ZoneError> {
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

    /// Generates the policy's keys for a zone that has no keys at all.
    ///
    /// Keys that exist but cannot be read are never replaced: that would
    /// change the zone's DS behind the parent's back.
    fn ensure_keys(
        &self,
        record: &ZoneRecord,
        origin: &Name,
        policy: &Policy,
    ) -> Result<(), ZoneError> {
        if !self.store.keys(&record.name)?.is_empty() {
            return Ok(());
        }
        let role = self.ensure_role(record)?;
        if role.key_master != self.config.name {
            return Ok(());
        }
        let now = unix_now();
        let mut transaction = Transaction::fenced(keymaster_store::Fence {
            zone: record.name.clone(),
            key_master: role.key_master.clone(),
            epoch: role.epoch,
        });
        for key_role in keyring::policy_roles(policy) {
            let key = keyring::generate_key(
                &self.kek,
                origin,
                *key_role,
                policy.algorithm,
                policy.rsa_bits,
                now,
            )?;
            tracing::info!(zone = %record.name, key_tag = key.key_tag, role = ?key_role, algorithm = policy.algorithm,
                "zone {}: generated {:?} {} with algorithm {}", record.name, key_role, key.key_tag, policy.algorithm);
            transaction = transaction.push(Operation::PutKey(key));
        }
        self.store.commit(transaction)?;
        Ok(())
    }

    /// Unseals the zone's keys; the first failure is logged once.
    fn signing_keys(
        &self,
        record: &ZoneRecord,
        origin: &Name,
    ) -> Result<Vec<SigningKey>, ZoneError> {
        let stored = self.store.keys(&record.name)?;
        let mut keys = Vec::with_capacity(stored.len());
        for key in stored.iter().filter(|key| key.removed.is_none()) {
            match keyring::unseal_key(&self.kek, origin, key) {
                Ok(signing) => keys.push(signing),
                Err(error) => {
                    let message = error.to_string();
                    let mut first = false;
                    self.update_runtime(&record.name, |runtime| {
                        first = runtime.key_error.as_deref() != Some(message.as_str());
                        runtime.key_error = Some(message.clone());
                    });
                    if first {
                        tracing::error!(zone = %record.name, key_tag = key.key_tag, error = %error,
                            "zone {}: key {} cannot be read, so the zone is not signed again and no replacement key is generated", record.name, key.key_tag);
                    }
                    return Err(error.into());
                }
            }
        }
        self.update_runtime(&record.name, |runtime| runtime.key_error = None);
        Ok(keys)
    }

    /// Returns the CDS and CDNSKEY RDATA the zone should publish.
    fn cds_for(
        &self,
        record: &ZoneRecord,
        origin: &Name,
        policy: &Policy,
    ) -> Result<(Vec<Bytes>, Vec<Bytes>), ZoneError> {
        let keys = self.store.keys(&record.name)?;
        let sep = |key: &&StoredKey| key.role != KeyRole::Zsk && key.removed.is_none();
        let wanted = |key: &&StoredKey| {
            matches!(
                key.ds_state,
                RecordState::Rumoured | RecordState::Omnipresent
            )
        };
        let changing = keys.iter().filter(sep).any(|key| {
            matches!(
                key.ds_state,
                RecordState::Rumoured | RecordState::Unretentive
            )
        });
        let publish = match policy.cds_publish {
            CdsPublish::Never => false,
            CdsPublish::Always => true,
            CdsPublish::Rollover => changing,
        };
        if !publish {
            return Ok((Vec::new(), Vec::new()));
        }
        let dnskeys: Vec<Bytes> = keys
            .iter()
            .filter(sep)
            .filter(wanted)
            .map(|key| Bytes::from(key.dnskey.clone()))
            .collect();
        let cds = signing::cds_records(origin, &dnskeys, policy);
        Ok((cds, dnskeys))
    }

    /// Re-signs every zone whose earliest signature is within the policy's
    /// refresh period of expiring.
    pub fn refresh_due(&self) {
        let now = unix_now();
        let due: Vec<String> = {
            let zones = self.zones.lock().unwrap_or_else(|p| p.into_inner());
            zones
                .iter()
                .filter_map(|(name, runtime)| Some((name, runtime.next_expiry?)))
                .map(|(n, e)| (n.clone(), e))
                .collect::<Vec<_>>()
        }
        .into_iter()
        .filter(|(name, expiry)| {
            let refresh = self
                .store
                .zone(name)
                .ok()
                .flatten()
                .map(|record| self.policy_for(&record).signature_refresh.as_secs())
                .unwrap_or(0);
            now + refresh >= *expiry
        })
        .map(|(name, _)| name)
        .collect();
        for zone in due {
            tracing::info!(zone = %zone, "zone {zone}: refreshing signatures");
            if let Err(error) = self.refresh_zone(&zone) {
                tracing::error!(zone = %zone, error = %error, "signature refresh failed; the previous version stays in service");
            }
        }
    }

    /// Returns the API view of a zone.
    pub fn zone_info(&self, zone: &str) -> Result<ZoneInfo, ZoneError> {
        let record = self.record(zone)?;
        let role = self.store.role(zone)?;
        let policy = self.policy_for(&record);
        let (serial, records, next_expiry, error) = {
            let zones = self.zones.lock().unwrap_or_else(|p| p.into_inner());
            match zones.get(zone) {
                Some(r) => (r.serial, r.records, r.next_expiry, r.error.clone()),
                None => (None, None, None, None),
            }
        };
        let is_key_master = role
            .as_ref()
            .is_some_and(|r| r.key_master == self.config.name);
        let status = match &role {
            None => KeyMasterStatus::None,
            // A file-backed zone's Key Master is this server, which is running.
            Some(r) if r.key_master == self.config.name => KeyMasterStatus::Online,
            Some(_) => KeyMasterStatus::Offline,
        };
        let signed = record.signed;
        let nsec3 = signed && policy.denial == keymaster_policy::Denial::Nsec3;
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
        })
    }

    /// Returns every zone's API view.
    pub fn zone_infos(&self) -> Result<Vec<ZoneInfo>, ZoneError> {
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
        };
        // Load first so a broken file adds nothing.
        let (_, origin) = zone_name(&name)?;
        self.load_source(&record, &origin)?;
        self.store_and_refresh(record)
    }

    /// Stores a changed zone record, then loads and publishes the zone.
    fn store_and_refresh(&self, record: ZoneRecord) -> Result<ZoneInfo, ZoneError> {
        let name = record.name.clone();
        self.store
            .commit(Transaction::new().push(Operation::PutZone(record)))?;
        self.refresh_zone(&name)?;
        self.zone_info(&name)
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
        if let Some(server) = key_master.filter(|server| *server != self.config.name) {
            return Err(
                self.single_primary(&record, &format!("cannot make {server} its Key Master"))
            );
        }
        if let Some(policy) = policy {
            if !self.config.policies.contains_key(policy) {
                return Err(ZoneError::UnknownPolicy(policy.to_string()));
            }
            record.policy = policy.to_string();
        }
        record.signed = true;
        self.store_and_refresh(record)
    }

    /// Stops signing a zone and publishes it unsigned; the role is kept.
    pub fn unsign_zone(&self, zone: &str) -> Result<ZoneInfo, ZoneError> {
        let (name, _) = zone_name(zone)?;
        let mut record = self.record(&name)?;
        if record.parent_has_ds == Some(true) {
            // TODO: publish the CDS/CDNSKEY delete form and wait for the
            // parent's DS to go before removing signatures.
            tracing::warn!(zone = %name, "zone {name}: unsigning while the parent may still hold a DS; remove the DS at the parent first");
        }
        record.signed = false;
        self.store_and_refresh(record)
    }

    fn single_primary(&self, record: &ZoneRecord, what: &str) -> ZoneError {
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
        self.record(&name)?;
        let keys = self.store.keys(&name)?;
        Ok(keys.iter().map(key_info).collect())
    }

    /// Adds a key to a zone; it is published and used at once.
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
        check_algorithm_covered(&name, &self.store.keys(&name)?, role, algorithm)?;
        let role_record = self.ensure_role(&record)?;
        let key = keyring::generate_key(
            &self.kek,
            &origin,
            role,
            algorithm,
            bits.unwrap_or(policy.rsa_bits),
            unix_now(),
        )?;
        self.store_new_key(&record, role_record, key, "added by request")
    }

    /// Returns the DS records (and DNSKEYs) of the zone's KSKs or CSKs.
    pub fn ds_info(
        &self,
        zone: &str,
        digest: keymaster_keys::DigestType,
    ) -> Result<DsInfo, ZoneError> {
        let (name, origin) = zone_name(zone)?;
        self.record(&name)?;
        let ttl = self.policy_for(&self.record(&name)?).dnskey_ttl.as_secs() as u32;
        let keys = self.store.keys(&name)?;
        let sep = keys
            .iter()
            .filter(|key| key.role != KeyRole::Zsk && key.removed.is_none());
        let mut ds = Vec::new();
        let mut dnskey = Vec::new();
        for key in sep {
            let record = |rtype: Rtype, rdata: Bytes| keymaster_zone::Record {
                owner: origin.clone(),
                class: keymaster_zone::Class::IN,
                ttl,
                rtype,
                rdata,
            };
            let ds_rdata = keymaster_keys::ds_rdata(&origin, &key.dnskey, digest);
            ds.push(keymaster_zone::record_to_string(&record(
                Rtype::DS,
                ds_rdata,
            )));
            dnskey.push(keymaster_zone::record_to_string(&record(
                Rtype::DNSKEY,
                Bytes::from(key.dnskey.clone()),
            )));
        }
        Ok(DsInfo {
            zone: name,
            ds,
            dnskey,
        })
    }
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

/// Returns the API view of a stored key.
pub fn key_info(key: &StoredKey) -> KeyInfo {
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
        // TODO: fill from the rollover engine's schedule once keys roll.
        next_transitions: Vec::new(),
        key_store: match key.private {
            keymaster_store::PrivateKey::EncryptedFile { .. } => "encrypted-file".to_string(),
            keymaster_store::PrivateKey::Pkcs11 { .. } => "pkcs11".to_string(),
        },
    }
}

impl Daemon {
    /// Imports a key read from BIND key files; it is published and used at once.
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
        check_algorithm_covered(&name, &self.store.keys(&name)?, role, request.algorithm)?;
        let role_record = self.ensure_role(&record)?;
        let key = keyring::seal_new_key(&self.kek, &origin, &pair, request.flags, role, unix_now());
        self.store_new_key(&record, role_record, key, "imported")
    }

    /// Stores a new key under the role's fence, then re-signs a signed zone.
    fn store_new_key(
        &self,
        record: &ZoneRecord,
        role: RoleRecord,
        key: StoredKey,
        how: &str,
    ) -> Result<KeyInfo, ZoneError> {
        let name = record.name.clone();
        let info = key_info(&key);
        let fence = keymaster_store::Fence {
            zone: name.clone(),
            key_master: role.key_master,
            epoch: role.epoch,
        };
        self.store
            .commit(Transaction::fenced(fence).push(Operation::PutKey(key)))?;
        let tag = info.key_tag;
        tracing::info!(zone = %name, key_tag = tag, "zone {name}: key {tag} {how}");
        if record.signed {
            self.refresh_zone(&name)?;
        }
        Ok(info)
    }
}
