//! The Key Master role of cluster zones: assignment, transfer, seizure,
//! and what a member does when the role moves.
//!
//! Every cluster zone has at most one role record in the cluster store,
//! `{zone, key_master, epoch, changed}`. The epoch goes up by one with every
//! change of Key Master, and each change is written with
//! `PutRole { expected_epoch }`, so two concurrent changes cannot both land.
//!
//! - **Assign** gives a zone without a role record its first Key Master
//!   (epoch 1). Any member can do it.
//! - **Transfer** needs the current Key Master online. The member that gets
//!   the request forwards it to the Key Master's control URL, taken from
//!   the Key Master's member record. The Key Master takes the zone's
//!   operation lock, so that a step in flight finishes first. Then it
//!   writes the new role record and stops managing the zone's keys.
//! - **Seize** moves the role away from a Key Master whose lease has run
//!   out; `--force` allows it while the lease is alive.
//!
//! The target of every change must be a registered member that is online
//! and can sign (holds the cluster key).
//!
//! A forwarded transfer is authenticated with a bearer token that every
//! holder of the cluster key derives from it for that one request
//! ([`forward_token`]): it covers the request path, the target, the epoch
//! the forwarding member read and a deadline a few minutes ahead. The
//! control API accepts it for that request and nothing else, and the Key
//! Master rejects it once the role has moved or the deadline has passed,
//! so a copied token cannot move the role later. A member without the
//! cluster key cannot forward, and its refusal names the Key Master's
//! control URL.
//!
//! Every role change carries the deadline of its requester (the CLI sends
//! its `--timeout`). A change that gets the zone's lock after it changes
//! nothing, so an operator whose command timed out never finds the role
//! moved behind their back.
//!
//! A member learns of role changes through the cluster store's watch.
//! When the role comes to it, it runs the zone's engine from the stored
//! state at once; when the role leaves it without its doing, it logs once
//! that it lost the role. Every key-management write is a transaction
//! fenced on the role record read before it; a write that fails with
//! [`StoreError::Fenced`] logs the loss the same way and is never tried
//! again under the old role.
//!
//! # Limitations
//!
//! - A forwarded transfer waits up to [`FORWARD_TIMEOUT`] for the Key
//!   Master, which may be signing a large zone under the zone's lock.
//! - Deadlines are UNIX times, so members' clocks must agree to within a
//!   few seconds, as DNSSEC signature times already require.
//! - A copied forwarding token can be sent again until its deadline, for
//!   the same zone, target and epoch only.
//! - Role records of file zones are not changed here: a file zone has a
//!   single primary, which is always its Key Master.

use std::sync::Arc;
use std::time::Duration;

use keymaster_api::{ErrorBody, KeyMasterStatus, RoleInfo, RoleRequest, Storage, API_PREFIX};
use keymaster_keys::kek::KeyEncryptionKey;
use keymaster_store::etcd::Member;
use keymaster_store::{
    EtcdStore, Operation, RoleRecord, Store, StoreError, Transaction, ZoneRecord,
};

use super::cluster::ClusterLink;
use super::zones::zone_name;
use super::{unix_now, Daemon, ZoneError};

/// Header naming the member that forwarded a role transfer; a forwarded
/// transfer is never forwarded again.
pub const FORWARDED_BY: &str = "x-keymaster-forwarded-by";

/// Label of the forwarding token derived from the cluster key.
const FORWARD_TOKEN_LABEL: &str = "keymaster control API token for forwarded role transfers, v2";

/// Longest wait for the Key Master's response to a forwarded transfer.
pub const FORWARD_TIMEOUT: Duration = Duration::from_secs(120);

/// Returns the bearer token of one forwarded role transfer: HMAC-SHA256
/// under the cluster key of a fixed label, the request path and the
/// request's target, epoch and deadline, in hexadecimal. `None` when the
/// request lacks the epoch or the deadline, which every forwarded
/// transfer carries.
pub fn forward_token(
    cluster_key: &KeyEncryptionKey,
    path: &str,
    request: &RoleRequest,
) -> Option<String> {
    let server = request.server.as_deref().unwrap_or_default();
    let (epoch, deadline) = (request.epoch?, request.deadline?);
    let message = format!("{FORWARD_TOKEN_LABEL}\n{path}\n{server}\n{epoch}\n{deadline}");
    Some(data_encoding::HEXLOWER.encode(&cluster_key.derive_secret(&message)[..]))
}

/// Returns true for the one request path a forwarding token may call:
/// `POST /api/v1/zones/ZONE/role/transfer`.
pub fn forwardable(path: &str) -> bool {
    path.strip_prefix(API_PREFIX)
        .and_then(|rest| rest.strip_prefix("/zones/"))
        .and_then(|rest| rest.strip_suffix("/role/transfer"))
        .is_some_and(|zone| !zone.is_empty() && !zone.contains('/'))
}

/// Rejects a change whose requester stopped waiting before the change got
/// the zone's lock.
fn check_deadline(zone: &str, deadline: Option<u64>) -> Result<(), ZoneError> {
    let now = unix_now();
    let Some(deadline) = deadline.filter(|deadline| now >= *deadline) else {
        return Ok(());
    };
    // The requester no longer reads the response, so the log records it.
    tracing::warn!(zone = %zone, deadline, now,
        "zone {zone}: role change rejected: its requester stopped waiting at {deadline}, before the zone's lock was free");
    Err(rejected(
        zone,
        format!(
            "the request got its turn after its requester stopped waiting (deadline {deadline}, \
             now {now}, in UNIX seconds), so nothing changed; see `keymaster role show {zone}`"
        ),
    ))
}

fn rejected(zone: &str, reason: String) -> ZoneError {
    ZoneError::Rejected {
        zone: zone.to_string(),
        reason,
    }
}

impl Daemon {
    /// Returns the API view of a zone's role; a cluster zone's Key Master
    /// is online while its lease in the cluster store lives.
    pub fn show_role(&self, zone: &str) -> Result<RoleInfo, ZoneError> {
        let (name, _) = zone_name(zone)?;
        let record = self.record(&name)?;
        if record.storage != Storage::Cluster {
            return self.role_info(&name);
        }
        let etcd = self.cluster_store(&name)?;
        let role = self.store.role(&name)?;
        let status = match &role {
            None => KeyMasterStatus::None,
            Some(role) if etcd.member_online(&role.key_master)? => KeyMasterStatus::Online,
            Some(_) => KeyMasterStatus::Offline,
        };
        Ok(RoleInfo {
            zone: name,
            storage: record.storage,
            key_master: role.as_ref().map(|r| r.key_master.clone()),
            epoch: role.as_ref().map_or(0, |r| r.epoch),
            is_key_master: role
                .as_ref()
                .is_some_and(|r| r.key_master == self.config.name),
            key_master_status: status,
            changed: role.map(|r| r.changed),
        })
    }

    /// Carries out `role assign`, `role transfer` or `role seize`.
    /// `forwarded_by` names the member that forwarded a transfer here.
    pub fn change_role(
        &self,
        zone: &str,
        action: &str,
        request: RoleRequest,
        forwarded_by: Option<&str>,
    ) -> Result<RoleInfo, ZoneError> {
        let (name, _) = zone_name(zone)?;
        let record = self.record(&name)?;
        let server = request.server.as_deref();
        if server.is_some_and(|server| server.trim().is_empty()) {
            return Err(ZoneError::BadRequest(
                "the server name is empty; `keymaster server list` shows the members".to_string(),
            ));
        }
        let named = || server.ok_or_else(|| rejected(&name, "name the server".to_string()));
        if record.storage != Storage::Cluster {
            // A member forwards only transfers of cluster zones, so here a
            // file zone of the same name hides the cluster zone.
            if let Some(from) = forwarded_by {
                return Err(rejected(
                    &name,
                    format!(
                        "{from} forwarded the transfer of the cluster zone {name} to {me}, which serves a file zone \
                         of that name instead and so never manages the cluster zone's keys; take the role with \
                         `keymaster role seize {name} SERVER --force` on another member",
                        me = self.config.name
                    ),
                ));
            }
            return match action {
                "assign" => self.assign_role(&name, named()?),
                "transfer" => self.move_role(&name, "transferred"),
                "seize" => self.move_role(&name, "seized"),
                other => Err(unknown_action(other)),
            };
        }
        match action {
            "assign" => self.assign_cluster_role(&record, named()?, request.deadline),
            "transfer" => self.transfer_cluster_role(&record, named()?, &request, forwarded_by),
            "seize" => self.seize_cluster_role(&record, server, request.force, request.deadline),
            other => Err(unknown_action(other)),
        }
    }

    /// Returns the cluster store, or why this member cannot reach it.
    fn cluster_store(&self, zone: &str) -> Result<Arc<EtcdStore>, ZoneError> {
        let link = self.cluster.as_ref().ok_or_else(|| {
            rejected(
                zone,
                "this server has no [cluster] configuration".to_string(),
            )
        })?;
        link.etcd().ok_or_else(|| {
            ZoneError::Unavailable(format!(
                "{} has not reached the cluster store at {} yet; try again once `keymaster server list` lists the members",
                self.config.name,
                link.endpoints()
            ))
        })
    }

    /// Sets the first Key Master of a cluster zone.
    fn assign_cluster_role(
        &self,
        record: &ZoneRecord,
        server: &str,
        deadline: Option<u64>,
    ) -> Result<RoleInfo, ZoneError> {
        let name = record.name.as_str();
        let etcd = self.cluster_store(name)?;
        let lock = self.runtime_lock(name);
        let guard = lock.lock().unwrap_or_else(|p| p.into_inner());
        check_deadline(name, deadline)?;
        if let Some(role) = self.store.role(name)? {
            return Err(rejected(
                name,
                format!(
                    "already has Key Master {} (epoch {}); move it with `keymaster role transfer {name} {server}`",
                    role.key_master, role.epoch
                ),
            ));
        }
        check_candidate(&etcd.members()?, name, server)?;
        let role = self.put_role(record, None, server)?;
        tracing::info!(zone = %name, server = %server, epoch = role.epoch,
            "zone {name}: {server} assigned as Key Master at epoch {}", role.epoch);
        drop(guard);
        self.show_role(name)
    }

    /// Moves the role to `server`: here when this server is the Key
    /// Master, else by forwarding the request to the Key Master.
    fn transfer_cluster_role(
        &self,
        record: &ZoneRecord,
        server: &str,
        request: &RoleRequest,
        forwarded_by: Option<&str>,
    ) -> Result<RoleInfo, ZoneError> {
        let name = record.name.as_str();
        let etcd = self.cluster_store(name)?;
        let Some(role) = self.store.role(name)? else {
            return Err(rejected(
                name,
                format!("has no Key Master yet; give it one with `keymaster role assign {name} {server}`"),
            ));
        };
        if role.key_master == self.config.name {
            return self.transfer_here(record, &etcd, server, request);
        }
        if let Some(from) = forwarded_by {
            return Err(rejected(
                name,
                format!(
                    "{from} forwarded the transfer to {}, but the Key Master is now {} (epoch {}); try again",
                    self.config.name, role.key_master, role.epoch
                ),
            ));
        }

        // Check what can be checked here, for a clear message without a
        // round trip. The Key Master checks again.
        let members = etcd.members()?;
        let holder = members
            .iter()
            .find(|(member, _)| member.name == role.key_master);
        let Some((holder, true)) = holder else {
            return Err(rejected(
                name,
                format!(
                    "its Key Master {} is offline (its lease ran out), and a transfer needs it online to finish its step in flight; \
                     take the role with `keymaster role seize {name} {server}`",
                    role.key_master
                ),
            ));
        };
        if server == role.key_master {
            return Err(rejected(
                name,
                format!("{server} is already its Key Master (epoch {})", role.epoch),
            ));
        }
        check_candidate(&members, name, server)?;
        let Some(key) = self
            .cluster
            .as_ref()
            .and_then(|link: &ClusterLink| link.key.as_ref())
        else {
            return Err(rejected(
                name,
                format!(
                    "{} has no cluster key, so it cannot forward the transfer to the Key Master {} at {}; \
                     send it there: `keymaster --server {} --token-file TOKEN role transfer {name} {server}` \
                     with that server's control.token",
                    self.config.name, holder.name, holder.control, holder.control
                ),
            ));
        };
        // The Key Master gives up a second before this member does, so that
        // its response arrives while this member still waits for it.
        let now = unix_now();
        let deadline = request
            .deadline
            .map_or(u64::MAX, |deadline| deadline.saturating_sub(1))
            .min(now + FORWARD_TIMEOUT.as_secs());
        check_deadline(name, Some(deadline))?;
        let forwarded = RoleRequest {
            server: Some(server.to_string()),
            force: false,
            deadline: Some(deadline),
            epoch: Some(role.epoch),
        };
        self.forward_transfer(name, holder, &forwarded, key)?;
        self.show_role(name)
    }

    /// Transfers the role of a zone this server is Key Master of, after
    /// the step in flight.
    fn transfer_here(
        &self,
        record: &ZoneRecord,
        etcd: &EtcdStore,
        server: &str,
        request: &RoleRequest,
    ) -> Result<RoleInfo, ZoneError> {
        let name = record.name.as_str();
        let me = self.config.name.as_str();
        let lock = self.runtime_lock(name);
        let guard = lock.lock().unwrap_or_else(|p| p.into_inner());
        check_deadline(name, request.deadline)?;
        // The role may have moved while the step in flight held the lock.
        let role = self.store.role(name)?;
        let Some(role) = role.filter(|role| role.key_master == me) else {
            return Err(rejected(
                name,
                format!("{me} is no longer its Key Master; see `keymaster role show {name}`"),
            ));
        };
        if let Some(epoch) = request.epoch.filter(|epoch| *epoch != role.epoch) {
            return Err(rejected(
                name,
                format!(
                    "the transfer was decided on the role at epoch {epoch}, but it is at epoch {} now; \
                     see `keymaster role show {name}` and try again",
                    role.epoch
                ),
            ));
        }
        if server == me {
            return Err(rejected(
                name,
                format!("{me} is already its Key Master (epoch {})", role.epoch),
            ));
        }

        if !etcd.member_online(me)? {
            return Err(rejected(
                name,
                format!("{me}, its Key Master, has no live lease in the cluster store, so it cannot hand the role over; try again once it is online"),
            ));
        }
        check_candidate(&etcd.members()?, name, server)?;

        let moved = self.put_role(record, Some(&role), server)?;
        self.update_runtime(name, |runtime| runtime.engine_due = None);
        tracing::info!(zone = %name, from = %me, to = %server, epoch = moved.epoch,
            "zone {name}: Key Master role transferred from {me} to {server} at epoch {}; {me} performs no more key management for it",
            moved.epoch);
        drop(guard);
        self.show_role(name)
    }

    /// Sends a transfer to the Key Master's control API.
    fn forward_transfer(
        &self,
        zone: &str,
        holder: &Member,
        body: &RoleRequest,
        cluster_key: &KeyEncryptionKey,
    ) -> Result<(), ZoneError> {
        let path = format!(
            "{API_PREFIX}/zones/{}/role/transfer",
            crate::client::segment(zone)
        );
        let url = format!("{}{path}", holder.control.trim_end_matches('/'));
        let token = forward_token(cluster_key, &path, body).ok_or_else(|| {
            ZoneError::BadRequest("a forwarded transfer needs an epoch and a deadline".to_string())
        })?;
        let server = body.server.as_deref().unwrap_or_default();
        let wait = body.deadline.unwrap_or(0).saturating_sub(unix_now()) + 1;
        let agent = ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(wait))
            .build();
        tracing::info!(zone = %zone, key_master = %holder.name, url = %url,
            "zone {zone}: forwarding the transfer of its Key Master role to {server} to the Key Master {}", holder.name);
        let response = agent
            .post(&url)
            .set("Authorization", &format!("Bearer {token}"))
            .set(FORWARDED_BY, &self.config.name)
            .send_json(body);
        match response {
            Ok(_) => Ok(()),
            Err(ureq::Error::Status(code, response)) => {
                let message = response
                    .into_json::<ErrorBody>()
                    .map(|body| body.error)
                    .unwrap_or_else(|_| format!("HTTP status {code}"));
                // The Key Master's message starts with the zone already.
                let message = message
                    .strip_prefix(&format!("zone {zone}: "))
                    .unwrap_or(&message)
                    .to_string();
                Err(rejected(
                    zone,
                    format!(
                        "the Key Master {} refused the transfer: {message}",
                        holder.name
                    ),
                ))
            }
            Err(error) => Err(ZoneError::Unavailable(format!(
                "zone {zone}: cannot reach the Key Master {} at {} to transfer the role: {error}; \
                 `keymaster role show {zone}` shows whether the role moved before the connection failed, \
                 and a transfer that reaches the Key Master after its deadline changes nothing",
                holder.name, holder.control
            ))),
        }
    }

    /// Moves the role away from a Key Master whose lease ran out, or with
    /// `force` from one that looks online.
    fn seize_cluster_role(
        &self,
        record: &ZoneRecord,
        server: Option<&str>,
        force: bool,
        deadline: Option<u64>,
    ) -> Result<RoleInfo, ZoneError> {
        let name = record.name.as_str();
        let me = self.config.name.as_str();
        let server = server.unwrap_or(me);
        let etcd = self.cluster_store(name)?;
        let lock = self.runtime_lock(name);
        let guard = lock.lock().unwrap_or_else(|p| p.into_inner());
        check_deadline(name, deadline)?;
        let Some(role) = self.store.role(name)? else {
            return Err(rejected(
                name,
                format!("has no Key Master to seize from; give it one with `keymaster role assign {name} {server}`"),
            ));
        };
        let old = role.key_master.as_str();
        if old == server {
            return Err(rejected(
                name,
                format!("{server} is already its Key Master (epoch {})", role.epoch),
            ));
        }

        let members = etcd.members()?;
        let old_online = members
            .iter()
            .any(|(member, online)| member.name == old && *online);
        if old_online && !force {
            return Err(rejected(
                name,
                format!(
                    "its Key Master {old} is online (its lease is alive), so the role cannot be seized; \
                     move it with `keymaster role transfer {name} {server}`, or add --force if {old} is cut off while its lease lives"
                ),
            ));
        }
        check_candidate(&members, name, server)?;

        let moved = self.put_role(record, Some(&role), server)?;
        if server != me {
            self.update_runtime(name, |runtime| runtime.engine_due = None);
        }
        if old_online {
            tracing::warn!(zone = %name, operator_server = %me, old = %old, to = %server, epoch = moved.epoch,
                "zone {name}: forced seizure of the Key Master role by the operator on {me}: {old} is online and loses the role; \
                 {server} is Key Master at epoch {}", moved.epoch);
        } else {
            tracing::info!(zone = %name, operator_server = %me, old = %old, to = %server, epoch = moved.epoch,
                "zone {name}: Key Master role seized on {me} from {old}, which is offline; {server} is Key Master at epoch {}",
                moved.epoch);
        }
        drop(guard);
        self.show_role(name)
    }

    /// Writes the role record naming `server`, one epoch after `current`,
    /// and remembers it as the last role this server saw. The caller holds
    /// the zone's lock.
    fn put_role(
        &self,
        record: &ZoneRecord,
        current: Option<&RoleRecord>,
        server: &str,
    ) -> Result<RoleRecord, ZoneError> {
        let role = RoleRecord {
            zone: record.name.clone(),
            key_master: server.to_string(),
            epoch: current.map_or(1, |role| role.epoch + 1),
            changed: unix_now(),
        };
        let put = Operation::PutRole {
            role: role.clone(),
            expected_epoch: current.map(|role| role.epoch),
        };
        self.store.commit(Transaction::new().push(put))?;
        self.update_runtime(&record.name, |runtime| {
            runtime.known_role = Some(role.clone())
        });
        if server == self.config.name {
            self.run_engine_soon(record);
        }
        Ok(role)
    }

    /// Has the maintenance task run the engine of a signed zone now.
    fn run_engine_soon(&self, record: &ZoneRecord) {
        if record.signed {
            let now = unix_now();
            self.update_runtime(&record.name, |runtime| runtime.engine_due = Some(now));
            self.wake.notify_one();
        }
    }

    /// Remembers the role record of every cluster zone without logging,
    /// as the starting point for [`Daemon::role_changed`].
    pub fn observe_roles(&self) {
        let Some(etcd) = self.cluster.as_ref().and_then(ClusterLink::etcd) else {
            return;
        };
        let zones = match etcd.zones() {
            Ok(zones) => zones,
            Err(error) => {
                tracing::error!(%error, "cannot list the cluster zones to read their Key Masters");
                return;
            }
        };
        for record in zones {
            match self.store.role(&record.name) {
                Ok(role) => self.update_runtime(&record.name, |runtime| runtime.known_role = role),
                Err(error) => {
                    tracing::error!(zone = %record.name, %error, "cannot read the Key Master of {}", record.name)
                }
            }
        }
    }

    /// Follows a change of a cluster zone's role record reported by the
    /// watch: a Key Master that lost the role stops, a new one starts.
    pub fn role_changed(&self, zone: &str) {
        let lock = self.runtime_lock(zone);
        let _guard = lock.lock().unwrap_or_else(|p| p.into_inner());
        let role = match self.store.role(zone) {
            Ok(Some(role)) => role,
            Ok(None) => return,
            Err(error) => {
                tracing::error!(zone = %zone, %error, "cannot read the Key Master of {zone}");
                return;
            }
        };
        let me = self.config.name.as_str();
        let mut previous = None;
        self.update_runtime(zone, |runtime| {
            previous = runtime.known_role.replace(role.clone())
        });
        if previous.as_ref() == Some(&role) {
            return;
        }
        let was_mine = previous
            .as_ref()
            .is_some_and(|known| known.key_master == me);
        if role.key_master == me {
            tracing::info!(zone = %zone, epoch = role.epoch,
                "zone {zone}: {me} is now its Key Master at epoch {}; key management continues from the stored state", role.epoch);
            if let Ok(Some(record)) = self.store.zone(zone) {
                self.run_engine_soon(&record);
            }
        } else if was_mine {
            self.report_lost_role(zone, &role);
        } else {
            tracing::info!(zone = %zone, key_master = %role.key_master, epoch = role.epoch,
                "zone {zone}: its Key Master is now {} at epoch {}", role.key_master, role.epoch);
        }
    }

    /// Commits a key-management transaction fenced on the role this
    /// server read. When the role has moved, the loss is logged once and
    /// key management of the zone stops here; the write is not retried.
    pub(super) fn commit_key_management(&self, transaction: Transaction) -> Result<(), ZoneError> {
        self.store
            .commit(transaction)
            .map_err(|error| self.fenced_write_failed(error))
    }

    /// Turns the error of a write fenced on this server's role into a
    /// [`ZoneError`]; a [`StoreError::Fenced`] also records the loss of
    /// the role, as [`Daemon::commit_key_management`] does.
    pub(super) fn fenced_write_failed(&self, error: StoreError) -> ZoneError {
        let StoreError::Fenced { zone, .. } = &error else {
            return error.into();
        };
        let zone = zone.clone();
        self.lost_role(&zone);
        rejected(
            &zone,
            format!(
                "{error}; nothing was stored, and {} performs no more key management for it",
                self.config.name
            ),
        )
    }

    /// Records that a fenced write found the role moved. Runs under the
    /// zone's lock when the write did, so it takes no lock of its own.
    fn lost_role(&self, zone: &str) {
        let role = match self.store.role(zone) {
            Ok(Some(role)) => role,
            Ok(None) => return,
            Err(error) => {
                tracing::error!(zone = %zone, %error, "cannot read the Key Master of {zone} after a fenced write failed");
                return;
            }
        };
        let mut known = None;
        self.update_runtime(zone, |runtime| {
            known = runtime.known_role.replace(role.clone())
        });
        // The watch may have reported this very change already.
        if known.as_ref() != Some(&role) {
            self.report_lost_role(zone, &role);
        }
    }

    fn report_lost_role(&self, zone: &str, role: &RoleRecord) {
        let me = self.config.name.as_str();
        self.update_runtime(zone, |runtime| runtime.engine_due = None);
        tracing::warn!(zone = %zone, key_master = %role.key_master, epoch = role.epoch,
            "{me} lost the Key Master role of {zone} to {} at epoch {}; it performs no more key management for the zone \
             and serves it as a plain primary", role.key_master, role.epoch);
    }

    /// Rejects key management of a cluster zone on a member that is not
    /// its Key Master.
    pub(super) fn require_key_master(&self, role: &RoleRecord) -> Result<(), ZoneError> {
        if role.key_master == self.config.name {
            return Ok(());
        }
        Err(rejected(
            &role.zone,
            format!(
                "its Key Master is {} (epoch {}), which alone manages its keys; run the command there",
                role.key_master, role.epoch
            ),
        ))
    }
}

/// Rejects a server that cannot take the role: not a member, offline, or
/// without the cluster key.
fn check_candidate(members: &[(Member, bool)], zone: &str, server: &str) -> Result<(), ZoneError> {
    let reason = match members.iter().find(|(member, _)| member.name == server) {
        None => format!("{server} is not a member of the cluster; `keymaster server list` shows the members"),
        Some((_, false)) => format!("{server} is offline (its lease ran out); the Key Master must be an online member"),
        Some((member, true)) if !member.can_sign => format!(
            "{server} cannot sign: it has no cluster key; start it with --cluster-key FILE or cluster_key in [cluster]"
        ),
        Some(_) => return Ok(()),
    };
    Err(rejected(
        zone,
        format!("cannot make {server} its Key Master: {reason}"),
    ))
}

fn unknown_action(action: &str) -> ZoneError {
    ZoneError::BadRequest(format!(
        "unknown role action {action:?}; use assign, transfer or seize"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_transfers_are_forwardable() {
        assert!(forwardable("/api/v1/zones/example.com./role/transfer"));
        assert!(forwardable("/api/v1/zones/@/role/transfer"));
        assert!(!forwardable("/api/v1/zones/example.com./role/seize"));
        assert!(!forwardable("/api/v1/zones/example.com./role/assign"));
        assert!(!forwardable("/api/v1/zones/a/b/role/transfer"));
        assert!(!forwardable("/api/v1/zones//role/transfer"));
        assert!(!forwardable("/api/v1/zones/example.com./keys"));
        assert!(!forwardable("/zones/example.com./role/transfer"));
    }

    #[test]
    fn spellings_of_one_zone_are_one_zone() {
        for text in ["ab.test", "AB.Test.", "\\065\\066.test", "\\097b.test."] {
            assert_eq!(zone_name(text).unwrap().0, "ab.test.", "{text}");
        }
        assert_eq!(zone_name("a\\.b.test").unwrap().0, "a\\.b.test.");
        assert!(zone_name("").is_err());
        assert!(zone_name(" ").is_err());
        assert_eq!(zone_name(".").unwrap().0, ".");
    }

    fn member(name: &str, can_sign: bool) -> Member {
        Member {
            name: name.to_string(),
            dns_addresses: Vec::new(),
            control: "http://127.0.0.1:1".to_string(),
            version: "0".to_string(),
            can_sign,
        }
    }

    #[test]
    fn candidates_must_be_online_members_that_sign() {
        let members = vec![
            (member("a", true), true),
            (member("b", true), false),
            (member("c", false), true),
        ];
        assert!(check_candidate(&members, "z.", "a").is_ok());
        let reason = |server| {
            check_candidate(&members, "z.", server)
                .unwrap_err()
                .to_string()
        };
        assert!(reason("b").contains("b is offline"), "{}", reason("b"));
        assert!(
            reason("c").contains("c cannot sign: it has no cluster key"),
            "{}",
            reason("c")
        );
        assert!(reason("d").contains("not a member"), "{}", reason("d"));
    }
}
