//! Signed cluster zones: every member signs its own copy, and all copies
//! are byte-identical.
//!
//! A member signs a cluster zone from what etcd holds: the content, the
//! keys (sealed under the cluster key), the engine state with every key's
//! record states, and the zone's [`SigningRecord`]. The signing record
//! gives the three inputs that would otherwise differ between members:
//! the SOA serial, the time the signature inception and expiration are
//! counted from, and the NSEC3 salt. With the same inputs and
//! deterministic ECDSA signatures (RFC 6979), every member produces the
//! same signed version.
//!
//! A new signing record is written in the same transaction as the change
//! that needs a new version:
//!
//! - a step of the lifecycle engine that changes signed data, by the Key
//!   Master, fenced on its role record;
//! - new content (`zone import`), by any member;
//! - a signature refresh, by the Key Master, fenced on its role record, or
//!   while it is offline by the online member with the cluster key whose
//!   name sorts first.
//!
//! A fenced signing record that fails because the role moved is handled as
//! every fenced key-management write: the loss is logged once and the
//! former Key Master writes no more.
//!
//! Each write compares the signing record it replaces, so of two
//! concurrent writers one wins and the other finds the new version. A
//! member signs when the watch reports a new signing record, and checks
//! after signing that the record has not moved meanwhile, so that it never
//! publishes a serial with inputs read from two versions.
//!
//! Every member signs with the policy stored with the zone by `zone sign`
//! ([`ZoneRecord::policy_definition`]), not with its own definition of the
//! policy's name. A member takes over the signatures of the version it
//! serves wherever the data and RRSIG fields are unchanged
//! (`SignOptions::previous`). `zone import` keeps the signing time while
//! no refresh is due, so only the changed RRsets are signed again.
//!
//! # Limitations
//!
//! - A member without the cluster key cannot sign. It serves the version
//!   of the current signing record transferred from a member that signs
//!   and checked as `daemon::cluster_fetch` describes. While no such
//!   member is online, it serves the signed version it has or saved
//!   earlier while its signatures are valid. It does not serve the zone
//!   otherwise, and never serves it unsigned.

use std::sync::Arc;

use bytes::Bytes;
use keymaster_api::Storage;
use keymaster_store::{Operation, RoleRecord, SigningRecord, StoreError, Transaction, ZoneRecord};
use keymaster_zone::{write_zone, Name, Zone};

use super::lifecycle::fence;
use super::zones::{zone_name, ZoneError};
use super::{unix_now, Daemon};
use crate::signing::{self, next_serial, serial_gt};

/// How long a member that is not the one to refresh a zone's signatures
/// waits before it looks again whether the refresh happened.
pub const REFRESH_RECHECK: u64 = 1;

/// Maximum number of attempts of `zone import` when the Key Master writes
/// a new signing record between the import's read and its commit.
const IMPORT_ATTEMPTS: u32 = 5;

/// Returns the NSEC3 salt of a signing record as octets.
fn salt_of(record: &SigningRecord) -> Bytes {
    Bytes::from(
        data_encoding::HEXLOWER_PERMISSIVE
            .decode(record.nsec3_salt.as_bytes())
            .unwrap_or_default(),
    )
}

impl Daemon {
    /// Returns whether this server has the cluster key.
    pub fn has_cluster_key(&self) -> bool {
        self.cluster.as_ref().is_some_and(|link| link.can_sign())
    }

    /// Returns whether `server` holds a live lease in the cluster store,
    /// or `None` when the store cannot tell.
    pub fn member_online(&self, server: &str) -> Option<bool> {
        if server == self.config.name {
            return Some(true);
        }
        let etcd = self.cluster.as_ref()?.etcd()?;
        etcd.member_online(server).ok()
    }

    /// Returns the member that refreshes the signatures of `zone`: its Key
    /// Master while online, else the online member with the cluster key
    /// whose name sorts first.
    fn refresher(&self, role: &RoleRecord) -> Result<Option<String>, ZoneError> {
        let Some(etcd) = self.cluster.as_ref().and_then(|link| link.etcd()) else {
            return Ok(None);
        };
        let members = etcd.members()?;
        let able = |name: &str| {
            members
                .iter()
                .any(|(member, online)| member.name == name && *online && member.can_sign)
        };
        if able(&role.key_master) {
            return Ok(Some(role.key_master.clone()));
        }
        // `members` is sorted by name.
        Ok(members
            .iter()
            .find(|(member, online)| *online && member.can_sign)
            .map(|(member, _)| member.name.clone()))
    }

    /// Returns the SOA serial of a cluster zone's stored content.
    fn content_serial(&self, record: &ZoneRecord, origin: &Name) -> Result<u32, ZoneError> {
        Ok(self
            .load_cluster_source(record, origin)?
            .serial()
            .unwrap_or(0))
    }

    /// Returns the signing record that follows `previous`, for a new
    /// version made at `now` for `reason`.
    pub(super) fn next_signing_record(
        &self,
        record: &ZoneRecord,
        previous: Option<&SigningRecord>,
        nsec3_salt: String,
        reason: &str,
        now: u64,
    ) -> Result<SigningRecord, ZoneError> {
        let serial = match previous {
            Some(previous) => previous.serial.wrapping_add(1),
            None => {
                let (_, origin) = zone_name(&record.name)?;
                next_serial(self.content_serial(record, &origin)?, record.last_serial)
            }
        };
        Ok(SigningRecord {
            zone: record.name.clone(),
            serial,
            time: now,
            nsec3_salt,
            reason: reason.to_string(),
        })
    }

    /// Adds a new signing record to a transaction of the Key Master's
    /// that changes signed data.
    pub(super) fn with_new_signing_record(
        &self,
        transaction: Transaction,
        record: &ZoneRecord,
        nsec3_salt: &str,
        reason: &str,
        now: u64,
    ) -> Result<Transaction, ZoneError> {
        if record.storage != Storage::Cluster {
            return Ok(transaction);
        }
        let previous = self.store.signing_record(&record.name)?;
        let next = self.next_signing_record(
            record,
            previous.as_ref(),
            nsec3_salt.to_string(),
            reason,
            now,
        )?;
        Ok(transaction.push(Operation::PutSigning {
            record: next,
            expected_serial: previous.map(|previous| previous.serial),
        }))
    }

    /// Signs and publishes a signed cluster zone from the cluster store.
    /// With `step`, the Key Master first runs a step of the lifecycle
    /// engine. Called with the zone's lock held.
    pub(super) fn sign_cluster_zone(
        &self,
        record: ZoneRecord,
        origin: &Name,
        step: bool,
    ) -> Result<(), ZoneError> {
        let zone = record.name.clone();
        let now = unix_now();
        let Some(role) = self.store.role(&zone)? else {
            return Err(ZoneError::Rejected {
                zone,
                reason: "is to be signed but has no Key Master; run `keymaster zone sign` again"
                    .to_string(),
            });
        };
        let is_key_master = role.key_master == self.config.name;
        if !self.has_cluster_key() {
            self.serve_without_key(&record, origin, now);
            return Ok(());
        }
        self.update_runtime(&zone, |runtime| runtime.cannot_sign = None);
        let policy = self.policy_for(&record);
        let mut signing = self.store.signing_record(&zone)?;
        // A Key Master named from another member generates its first keys
        // here, on the change that made it Key Master.
        if is_key_master && (step || signing.is_none()) {
            let outcome = self.step_engine(&record, origin, &policy, &role, now)?;
            if outcome.unsigned {
                return self.finish_unsigning(record, role);
            }
            signing = self.store.signing_record(&zone)?;
        }
        if signing.is_none() && is_key_master {
            let salt = self.load_engine(&zone)?.nsec3_salt;
            let first =
                self.next_signing_record(&record, None, salt, "first signed version", now)?;
            let write = Transaction::fenced(fence(&role)).push(Operation::PutSigning {
                record: first.clone(),
                expected_serial: None,
            });
            match self.store.commit(write) {
                Ok(()) => signing = Some(first),
                Err(StoreError::SigningMoved { .. }) => {
                    signing = self.store.signing_record(&zone)?;
                }
                Err(error) => return Err(self.fenced_write_failed(error)),
            }
        }

        let Some(signing) = signing else {
            // The Key Master has not written the first version yet.
            return self.serve_unsigned_if_nothing(record, origin);
        };
        let served = self.served_signing(&zone);
        if served.as_ref() == Some(&signing) {
            return Ok(());
        }

        // Content, keys and key states are read after the signing record.
        // Every change of them that alters the signed data comes with a new
        // signing record, so the check after signing catches a mixed read.
        let unsigned = self.load_cluster_source(&record, origin)?;
        let plan = self.signing_plan(&record, origin, &policy)?;
        let salt = salt_of(&signing);
        let mut options =
            signing::sign_options(&policy, signing.time, salt.clone(), plan.cds, plan.cdnskey);
        if let Some(denial) = &plan.denial {
            options.denial = signing::denial_from(denial, salt);
        }
        if let Some(ttl) = plan.dnskey_ttl {
            options.dnskey_ttl = ttl;
        }
        options.deterministic = true;
        options.previous = self.served_signed_zone(&zone);
        let version = signing::sign_version(
            unsigned,
            &plan.keys,
            &options,
            signing::post_sign_check(&policy),
            signing.serial,
            now,
            None,
        )?;
        if self.store.signing_record(&zone)?.as_ref() != Some(&signing) {
            tracing::debug!(zone = %zone, serial = signing.serial,
                "zone {zone}: a newer signing record arrived while signing serial {}; signing that instead", signing.serial);
            return Ok(());
        }
        tracing::info!(
            zone = %zone,
            serial = signing.serial,
            reason = %signing.reason,
            signatures = version.signatures,
            reused = version.reused,
            seconds = format!("{:.2}", version.seconds),
            "zone {zone} signed with serial {} ({}): {} new signatures over {} RRsets, {} taken over from the previous version, in {:.2} s",
            signing.serial,
            signing.reason,
            version.signatures,
            version.rrsets_signed,
            version.reused,
            version.seconds
        );
        let mut record = record;
        record.last_signed = Some(signing.time);
        let expiry = version.earliest_expiration;
        let signed_zone = Arc::new(version.zone.clone());
        self.publish(record, version.zone, Some(expiry))?;
        self.update_runtime(&zone, |runtime| {
            runtime.signed_from = Some(signing);
            runtime.signed_zone = Some(signed_zone);
            runtime.refresh_wait = None;
        });
        // The maintenance task may sleep past this version's refresh time.
        self.wake.notify_one();
        if is_key_master {
            self.mark_published(&zone, &role)?;
        }
        Ok(())
    }

    /// Returns the signing record of the version this server serves.
    fn served_signing(&self, zone: &str) -> Option<SigningRecord> {
        let zones = self.zones.lock().unwrap_or_else(|p| p.into_inner());
        zones
            .get(zone)
            .and_then(|runtime| runtime.signed_from.clone())
    }

    /// Returns the signed version this server serves of a cluster zone it
    /// signed itself.
    fn served_signed_zone(&self, zone: &str) -> Option<Arc<Zone>> {
        let zones = self.zones.lock().unwrap_or_else(|p| p.into_inner());
        zones
            .get(zone)
            .and_then(|runtime| runtime.signed_zone.clone())
    }

    /// Returns the time a new version of a signed cluster zone counts its
    /// signatures from. That is the previous version's time while its
    /// refresh is not yet due, so unchanged RRsets keep their signatures,
    /// and `now` otherwise.
    fn signing_time(&self, record: &ZoneRecord, previous: Option<&SigningRecord>, now: u64) -> u64 {
        let Some(previous) = previous else {
            return now;
        };
        let policy = self.policy_for(record);
        let validity = policy
            .signature_validity
            .as_secs()
            .min(policy.signature_validity_dnskey.as_secs());
        // The earliest expiration any RRSIG of the version can have, less
        // the refresh margin, with a minute to spare for the signing.
        let refresh_due = (previous.time + validity)
            .saturating_sub(policy.signature_jitter.as_secs())
            .saturating_sub(policy.signature_refresh.as_secs());
        if previous.time <= now && now + 60 < refresh_due {
            previous.time
        } else {
            now
        }
    }

    /// Serves a signed cluster zone on a member without the cluster key:
    /// the version of the current signing record transferred from a member
    /// that signs (see `daemon::cluster_fetch`), else the signed version it
    /// serves or saved earlier while its signatures are valid, and nothing
    /// otherwise. Such a member never publishes the records unsigned, which
    /// would be bogus below a DS, and never writes the zone's record or a
    /// serial to the cluster store. Records why it does not sign in
    /// `cannot_sign`, which `zone show` reports as the zone's error. Called
    /// with the zone's lock held.
    fn serve_without_key(&self, record: &ZoneRecord, origin: &Name, now: u64) {
        let zone = record.name.as_str();
        self.follow_signers(record, origin, now);
        let (serial, expiry) = {
            let zones = self.zones.lock().unwrap_or_else(|p| p.into_inner());
            zones.get(zone).map_or((None, None), |runtime| {
                (runtime.serial, runtime.next_expiry)
            })
        };
        // Only signed versions have an expiry.
        let valid = match (serial, expiry) {
            (Some(serial), Some(expiry)) if expiry > now => Some((serial, expiry)),
            _ => None,
        };
        let valid = valid.or_else(|| {
            if serial.is_some() {
                self.withdraw(zone, origin);
                tracing::warn!(zone = %zone,
                    "zone {zone}: {} has no cluster key and no signed version with valid signatures, so it stops serving the zone",
                    self.config.name);
            }
            self.restore_saved(zone);
            let restored = {
                let zones = self.zones.lock().unwrap_or_else(|p| p.into_inner());
                zones
                    .get(zone)
                    .and_then(|runtime| Some((runtime.serial?, runtime.next_expiry?)))
            };
            match restored {
                Some((serial, expiry)) if expiry > now => Some((serial, expiry)),
                // Valid this second only.
                Some(_) => {
                    self.withdraw(zone, origin);
                    None
                }
                None => None,
            }
        });
        let name = &self.config.name;
        let fetched_from = {
            let zones = self.zones.lock().unwrap_or_else(|p| p.into_inner());
            zones
                .get(zone)
                .and_then(|runtime| runtime.fetched_from.clone())
        };
        let reason = match (valid, fetched_from) {
            (Some((serial, expiry)), Some(member)) => format!(
                "{name} has no cluster key, so it does not sign this cluster zone; it serves the signed version \
                 with serial {serial} transferred from member {member}, and follows newer versions from the \
                 members with the cluster key; without them it stops serving the zone when the first signature \
                 expires at {expiry} (Unix time)"
            ),
            (Some((serial, expiry)), None) => format!(
                "{name} has no cluster key, so it cannot sign this cluster zone; it serves the signed version \
                 with serial {serial} it saved earlier until its first signature expires at {expiry} (Unix time), \
                 and then stops serving the zone; it serves newer versions once a member with the cluster key \
                 is online to transfer them from, or give it the cluster key with --cluster-key FILE"
            ),
            (None, _) => format!(
                "{name} has no cluster key, so it cannot sign this signed cluster zone, no member with the \
                 cluster key gave it a version that passed its checks, and it has no saved signed version whose \
                 signatures are still valid; the zone is not served here (queries get REFUSED); start a member \
                 with the cluster key, or give this one the key with --cluster-key FILE"
            ),
        };
        self.update_runtime(zone, |runtime| {
            runtime.cannot_sign = Some(reason);
            // Look again when the served version expires. A new signing
            // record arrives through the watch before then.
            runtime.refresh_wait = valid.map(|(_, expiry)| expiry);
        });
    }

    /// Serves the version of the zone's current signing record on a member
    /// without the cluster key, transferred from a member that signs, when
    /// it does not serve that version yet. When no signer has it, tries
    /// again later, with pauses that double up to a minute.
    fn follow_signers(&self, record: &ZoneRecord, origin: &Name, now: u64) {
        let zone = record.name.as_str();
        let signing = match self.store.signing_record(zone) {
            Ok(Some(signing)) => signing,
            Ok(None) => return,
            Err(error) => {
                tracing::debug!(zone = %zone, %error, "cannot read the signing record");
                return;
            }
        };
        let served = self.served_signing(zone);
        if served
            .as_ref()
            .is_some_and(|served| !serial_gt(signing.serial, served.serial))
        {
            self.update_runtime(zone, |runtime| {
                runtime.fetch_due = None;
                runtime.fetch_attempts = 0;
            });
            return;
        }
        let Some(fetched) = self.fetch_signed_version(zone, origin, &signing) else {
            self.update_runtime(zone, |runtime| {
                runtime.fetch_attempts = runtime.fetch_attempts.saturating_add(1);
                let pause = 1u64 << runtime.fetch_attempts.min(6);
                runtime.fetch_due = Some(now + pause.min(super::cluster_fetch::MAX_FETCH_BACKOFF));
            });
            self.wake.notify_one();
            return;
        };
        let expiry = signing::earliest_expiration(&fetched.zone, unix_now());
        let serial = fetched.signing.serial;
        let member = fetched.member;
        let mut record = record.clone();
        record.last_signed = Some(fetched.signing.time);
        if let Err(error) = self.publish(record, fetched.zone, Some(expiry)) {
            tracing::error!(zone = %zone, %error, member = %member,
                "zone {zone}: cannot publish serial {serial} transferred from member {member}: {error}");
            return;
        }
        tracing::info!(zone = %zone, serial, member = %member,
            "zone {zone}: serving serial {serial} transferred from member {member}, checked against the cluster store's keys and signing record");
        self.update_runtime(zone, |runtime| {
            runtime.signed_from = Some(fetched.signing);
            runtime.fetched_from = Some(member);
            runtime.fetch_due = None;
            runtime.fetch_attempts = 0;
            runtime.fetch_error = None;
        });
        self.wake.notify_one();
    }

    /// Stops serving a zone here.
    fn withdraw(&self, zone: &str, origin: &Name) {
        self.published.withdraw(origin);
        self.update_runtime(zone, |runtime| {
            runtime.serial = None;
            runtime.records = None;
            runtime.next_expiry = None;
            runtime.signed_from = None;
            runtime.signed_zone = None;
            runtime.fetched_from = None;
        });
    }

    /// Serves a cluster zone's records unsigned when nothing of it is
    /// served yet; a served version stays otherwise.
    fn serve_unsigned_if_nothing(
        &self,
        record: ZoneRecord,
        origin: &Name,
    ) -> Result<(), ZoneError> {
        if self.runtime_serial(&record.name).is_some() {
            return Ok(());
        }
        let unsigned = self.load_cluster_source(&record, origin)?;
        self.publish_unsigned(record, unsigned)
    }

    /// Refreshes the signatures of a signed cluster zone whose refresh is
    /// due: the member whose turn it is writes a new signing record, the
    /// others look again a moment later. Called with the zone's lock held.
    pub(super) fn refresh_cluster_signatures(&self, zone: &str) -> Result<(), ZoneError> {
        let record = self.record(zone)?;
        let (_, origin) = zone_name(zone)?;
        if !self.has_cluster_key() {
            // It follows the signers' refreshes and withdraws at expiry.
            return self.sign_cluster_zone(record, &origin, false);
        }
        let (Some(role), Some(previous)) =
            (self.store.role(zone)?, self.store.signing_record(zone)?)
        else {
            return self.sign_cluster_zone(record, &origin, false);
        };
        if self.served_signing(zone).as_ref() != Some(&previous) {
            // A newer version exists already: sign it.
            return self.sign_cluster_zone(record, &origin, false);
        }

        let now = unix_now();
        let refresher = self.refresher(&role)?;
        if refresher.as_deref() != Some(self.config.name.as_str()) {
            self.update_runtime(zone, |runtime| {
                runtime.refresh_wait = Some(now + REFRESH_RECHECK);
            });
            return Ok(());
        }

        let is_key_master = role.key_master == self.config.name;
        let next = SigningRecord {
            zone: zone.to_string(),
            serial: previous.serial.wrapping_add(1),
            time: now,
            nsec3_salt: previous.nsec3_salt.clone(),
            reason: "signature refresh".to_string(),
        };
        // Only the Key Master's writes are fenced: a refresh by another
        // member leaves keys and key states alone, and the compare on the
        // signing record keeps two refreshers from both writing.
        let transaction = if is_key_master {
            Transaction::fenced(fence(&role))
        } else {
            Transaction::new()
        };
        let write = transaction.push(Operation::PutSigning {
            record: next.clone(),
            expected_serial: Some(previous.serial),
        });
        match self.store.commit(write) {
            Ok(()) => {}
            Err(StoreError::SigningMoved { .. }) => {}
            // A Key Master that lost its role while it decided stops here,
            // as after any other fenced write.
            Err(error) => return Err(self.fenced_write_failed(error)),
        }
        if !is_key_master {
            tracing::warn!(zone = %zone, serial = next.serial, key_master = %role.key_master,
                "zone {zone}: Key Master {} is offline; {} refreshes the signatures with serial {}; key management waits for the Key Master",
                role.key_master, self.config.name, next.serial);
        }
        self.sign_cluster_zone(record, &origin, false)
    }

    /// Replaces a cluster zone's records with those of the master-file
    /// text `content` (sent by the CLI, without `$INCLUDE`), with a serial
    /// above every one served before, in one transaction with a new
    /// signing record when the zone is signed.
    pub fn import_zone(
        &self,
        zone: &str,
        content: &str,
    ) -> Result<keymaster_api::ZoneInfo, ZoneError> {
        let (name, origin) = zone_name(zone)?;
        let record = self.record(&name)?;
        if record.storage != Storage::Cluster {
            return Err(ZoneError::Rejected {
                zone: name,
                reason: "is stored in a master file; edit the file and run `keymaster zone reload`"
                    .to_string(),
            });
        }
        let loaded = super::zones::load_sent_content(&name, &origin, content)?;
        for warning in &loaded.warnings {
            tracing::warn!(zone = %name, "{warning}");
        }

        // The Key Master's engine may write a new signing record between
        // the read and the commit; the import then reads it and tries again.
        let mut attempt = 1;
        let serial = loop {
            match self.commit_import(&name, loaded.zone.clone()) {
                Err(ZoneError::Store(StoreError::SigningMoved { .. }))
                    if attempt < IMPORT_ATTEMPTS =>
                {
                    tracing::debug!(zone = %name, attempt, "zone {name}: the signing record moved during the import; trying again");
                    attempt += 1;
                }
                result => break result?,
            }
        };
        tracing::info!(zone = %name, serial,
            "zone {name}: records replaced with serial {serial}");
        self.refresh_zone(&name)?;
        self.zone_info(&name)
    }

    /// Writes `content` as the records of the cluster zone `name`, with a
    /// serial above every one served before and, for a signed zone, a new
    /// signing record. Returns the serial.
    fn commit_import(&self, name: &str, mut content: Zone) -> Result<u32, ZoneError> {
        let record = self.record(name)?;
        let file_serial = content.serial().unwrap_or(0);
        let signing = self.store.signing_record(name)?;
        // The highest serial any member may have served.
        let mut last = record.last_serial;
        if let Some(signing) = &signing {
            if last.is_none_or(|last| serial_gt(signing.serial, last)) {
                last = Some(signing.serial);
            }
        }
        let serial = next_serial(file_serial, last);
        content.set_serial(serial);
        let text = zone_text(name, &content)?;

        let mut transaction = Transaction::new().push(Operation::PutZoneContent {
            zone: name.to_string(),
            text,
        });
        if record.signed {
            let salt = signing
                .as_ref()
                .map(|signing| signing.nsec3_salt.clone())
                .unwrap_or_default();
            // Every member signs the new version from the one it serves,
            // so with the time kept only the changed RRsets are signed.
            let next = SigningRecord {
                zone: name.to_string(),
                serial,
                time: self.signing_time(&record, signing.as_ref(), unix_now()),
                nsec3_salt: salt,
                reason: "records imported".to_string(),
            };
            transaction = transaction.push(Operation::PutSigning {
                record: next,
                expected_serial: signing.as_ref().map(|signing| signing.serial),
            });
        }
        self.store.commit(transaction)?;
        Ok(serial)
    }
}

impl Daemon {
    /// Signs a cluster zone: makes this server, or the member `key_master`
    /// names, its Key Master, and marks the zone signed. The Key Master
    /// then generates the keys and writes the first signing record, and
    /// every member with the cluster key signs.
    pub(super) fn sign_cluster(
        &self,
        record: ZoneRecord,
        key_master: Option<&str>,
        policy: Option<String>,
    ) -> Result<keymaster_api::ZoneInfo, ZoneError> {
        let name = record.name.clone();
        let rejected = |reason: String| ZoneError::Rejected {
            zone: name.clone(),
            reason,
        };
        // A zone that has a Key Master keeps it: signing never moves the
        // role, which only `role transfer` and `role seize` do.
        let current = self.store.role(&name)?;
        let target = match (key_master, &current) {
            (Some(server), _) => server.to_string(),
            (None, Some(role)) => role.key_master.clone(),
            (None, None) => self.config.name.clone(),
        };
        if let Some(role) = current.as_ref().filter(|role| role.key_master != target) {
            return Err(rejected(kept_role(&name, role, &target)));
        }
        if target == self.config.name {
            if !self.has_cluster_key() {
                return Err(rejected(format!(
                    "{} has no cluster key, so it cannot be the Key Master; give it the cluster key \
                     with --cluster-key FILE, or name a member that has it with --key-master SERVER",
                    self.config.name
                )));
            }
        } else {
            let etcd = self
                .cluster
                .as_ref()
                .and_then(|link| link.etcd())
                .ok_or_else(|| {
                    rejected(format!(
                        "{} is not connected to the cluster store, so it cannot check member {target}",
                        self.config.name
                    ))
                })?;
            let members = etcd.members()?;
            match members.iter().find(|(member, _)| member.name == target) {
                None => {
                    return Err(rejected(format!(
                        "{target} is not a member of the cluster; `keymaster server list` lists the members"
                    )))
                }
                Some((_, false)) => {
                    return Err(rejected(format!(
                        "member {target} is offline, so it cannot become the Key Master; start it, or name an online member"
                    )))
                }
                Some((member, true)) if !member.can_sign => {
                    return Err(rejected(format!(
                        "member {target} cannot sign: it has no cluster key, so it cannot become the Key Master"
                    )))
                }
                Some(_) => {}
            }
        }
        // The policy is stored with the zone as this member defines it, and
        // every member signs with that definition.
        let policy_name = match policy {
            Some(policy) => policy,
            None => self.record(&name)?.policy,
        };
        let definition = self.policy_definition(&policy_name)?;

        let role = {
            let lock = self.runtime_lock(&name);
            let _guard = lock.lock().unwrap_or_else(|p| p.into_inner());
            let mut record = self.record(&name)?;
            record.signed = true;
            record.policy = policy_name;
            record.policy_definition = Some(definition);
            let mut transaction = Transaction::new().push(Operation::PutZone(record));
            let role = match self.store.role(&name)? {
                Some(role) if role.key_master == target => role,
                Some(role) => return Err(rejected(kept_role(&name, &role, &target))),
                None => {
                    let role = RoleRecord {
                        zone: name.clone(),
                        key_master: target.clone(),
                        epoch: 1,
                        changed: unix_now(),
                    };
                    transaction = transaction.push(Operation::PutRole {
                        role: role.clone(),
                        expected_epoch: None,
                    });
                    tracing::info!(zone = %name, server = %target, epoch = role.epoch,
                        "{target} is now Key Master of cluster zone {name} (epoch {})", role.epoch);
                    role
                }
            };
            // Only the Key Master can queue the request that signs a zone
            // again after `zone unsign`.
            let state = self.load_engine(&name)?.state;
            if role.key_master != self.config.name
                && (state.is_unsigned() || state.going_insecure.is_some())
            {
                return Err(rejected(format!(
                    "its Key Master {} (epoch {}) signs it again: run `keymaster zone sign {name}` there",
                    role.key_master, role.epoch
                )));
            }
            self.store.commit(transaction)?;
            role
        };
        if role.key_master == self.config.name {
            let state = self.load_engine(&name)?.state;
            if state.is_unsigned() {
                self.queue_request(&name, &role, keymaster_lifecycle::Request::Sign)?;
            } else if state.going_insecure.is_some() {
                self.queue_request(&name, &role, keymaster_lifecycle::Request::CancelInsecure)?;
            }
        }
        self.refresh_zone(&name)?;
        self.zone_info(&name)
    }
}

/// Renders a cluster zone's records as the master-file text the cluster
/// store keeps.
pub(super) fn zone_text(name: &str, content: &Zone) -> Result<String, ZoneError> {
    let mut text = Vec::new();
    write_zone(content, &mut text).map_err(|error| ZoneError::Rejected {
        zone: name.to_string(),
        reason: format!("cannot render its records as text: {error}"),
    })?;
    String::from_utf8(text).map_err(|error| ZoneError::Rejected {
        zone: name.to_string(),
        reason: format!("its records are not valid text: {error}"),
    })
}

/// Explains why `zone sign` keeps the Key Master a zone has.
fn kept_role(zone: &str, role: &RoleRecord, target: &str) -> String {
    format!(
        "already has Key Master {} (epoch {}), and signing does not move the role; \
         move it first with `keymaster role transfer {zone} {target}`, or sign without --key-master",
        role.key_master, role.epoch
    )
}
