//! The daemon as a cluster member: joining the etcd cluster store, staying
//! registered, and following the cluster zones.
//!
//! A server with a cluster configured starts like any other: it binds its
//! sockets and serves its file zones at once. A thread of its own then
//! connects to etcd and registers the server as a member under a lease
//! (name, DNS addresses, control URL, version, and whether it has the
//! cluster key and so can sign). When etcd cannot be reached, the outage
//! is logged once as a warning and the connection is tried again every
//! [`JOIN_RETRY`] until it works; the server keeps serving meanwhile.
//!
//! Once joined, the cluster store is attached to the daemon's
//! [`RoutedStore`], every cluster zone is loaded from it, and a watch on
//! the store reloads a cluster zone whenever its record, content, role or
//! signing record changes, normally within milliseconds. The watch thread
//! queues changed zones for a few worker threads (`daemon::reloads`), so a
//! zone that takes long to sign does not delay the others. Signed cluster
//! zones are signed as `daemon::cluster_signing` describes, or on a member
//! without the cluster key transferred from a signer as
//! `daemon::cluster_fetch` describes. The member's lease is revoked at shutdown;
//! a member that dies shows offline once its lease runs out.
//!
//! # Limitations
//!
//! - A change of a zone's keys or engine state alone is not followed: the
//!   signing record written with every change that alters the signed data
//!   is. A change of its role record is followed too (see `daemon::role`).
//! - A zone deleted from the cluster store stays served until restart.

use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use keymaster_api::{ServerInfo, Storage};
use keymaster_keys::kek::KeyEncryptionKey;
use keymaster_server::TsigKey;
use keymaster_store::etcd::{Change, Member, Registration, ZonePart};
use keymaster_store::{EtcdStore, RoutedStore, Store};
use tokio::sync::watch;

use super::cluster_fetch::{new_transfer_key_text, parse_transfer_key, TRANSFER_KEY_RECORD};
use super::reloads::Reloads;
use super::{Daemon, ZoneError};
use crate::config::ClusterConfig;

/// Pause between two attempts to reach the cluster store; each attempt
/// itself waits up to the etcd client's timeout.
pub const JOIN_RETRY: Duration = Duration::from_secs(1);

/// How often the watch loop looks for shutdown while no change arrives.
const WATCH_POLL: Duration = Duration::from_millis(500);

/// The daemon's link to the cluster store.
pub struct ClusterLink {
    pub settings: ClusterConfig,
    /// The cluster key; without it this member cannot sign.
    pub key: Option<KeyEncryptionKey>,
    routed: Arc<RoutedStore>,
    etcd: RwLock<Option<Arc<EtcdStore>>>,
    registration: Mutex<Option<Registration>>,
    /// The cluster transfer key, once read from the cluster store.
    transfer_key: RwLock<Option<TsigKey>>,
}

impl ClusterLink {
    /// Creates an unconnected link; [`spawn_join`] connects it.
    pub fn new(
        settings: ClusterConfig,
        key: Option<KeyEncryptionKey>,
        routed: Arc<RoutedStore>,
    ) -> Self {
        Self {
            settings,
            key,
            routed,
            etcd: RwLock::new(None),
            registration: Mutex::new(None),
            transfer_key: RwLock::new(None),
        }
    }

    /// Returns the key that signs and allows transfers of cluster zones
    /// between members, reading it from the cluster store the first time,
    /// where the first member to ask creates it (see
    /// `daemon::cluster_fetch`). `None` while the store cannot be read.
    pub fn transfer_key(&self) -> Option<TsigKey> {
        if let Some(key) = self
            .transfer_key
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
        {
            return Some(key);
        }
        let etcd = self.etcd()?;
        let text = match etcd.create_once(TRANSFER_KEY_RECORD, &new_transfer_key_text()) {
            Ok(text) => text,
            Err(error) => {
                tracing::warn!(%error, "cannot read the cluster transfer key; members cannot transfer cluster zones from here until it is read");
                return None;
            }
        };
        match parse_transfer_key(&text) {
            Ok(key) => {
                *self.transfer_key.write().unwrap_or_else(|p| p.into_inner()) = Some(key.clone());
                Some(key)
            }
            Err(reason) => {
                tracing::error!(prefix = %etcd.prefix(), "the cluster transfer key under {}secrets/{TRANSFER_KEY_RECORD} cannot be read: {reason}; \
                    delete it there and restart a member to create a new one", etcd.prefix());
                None
            }
        }
    }

    /// Returns whether this member has the cluster key.
    pub fn can_sign(&self) -> bool {
        self.key.is_some()
    }

    /// Returns the cluster store once connected.
    pub fn etcd(&self) -> Option<Arc<EtcdStore>> {
        self.etcd.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Returns the endpoints, comma-separated, for messages.
    pub fn endpoints(&self) -> String {
        self.settings.endpoints.join(",")
    }

    /// Revokes this member's lease, so that it shows offline at once.
    pub fn leave(&self) {
        let registration = self
            .registration
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(registration) = registration {
            if let Err(error) = registration.close() {
                tracing::warn!(%error, "could not leave the cluster; this member shows offline when its lease runs out");
            }
        }
    }
}

/// Starts the thread that joins the cluster and then follows its zones,
/// until `shutdown` turns true.
pub fn spawn_join(
    daemon: Arc<Daemon>,
    shutdown: watch::Receiver<bool>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("keymaster-cluster".to_string())
        .spawn(move || {
            if let Some((etcd, changes)) = join(&daemon, &shutdown) {
                daemon.load_cluster_zones();
                daemon.observe_roles();
                follow(&daemon, &etcd, changes, &shutdown);
            }
        })
}

/// File in the data directory that contains this server's member instance id.
const INSTANCE_FILE: &str = "member.id";

fn stopping(shutdown: &watch::Receiver<bool>) -> bool {
    *shutdown.borrow()
}

/// Connects and registers, trying again after each failure; returns the
/// store and its change feed, or `None` at shutdown.
fn join(
    daemon: &Daemon,
    shutdown: &watch::Receiver<bool>,
) -> Option<(Arc<EtcdStore>, std::sync::mpsc::Receiver<Change>)> {
    let link = daemon.cluster.as_ref()?;
    let options = crate::cluster::etcd_options(&link.settings);
    let member = crate::cluster::member(&daemon.config, link.can_sign());
    let instance = instance_id(&daemon.config.data_dir);
    let mut warned = false;
    loop {
        if stopping(shutdown) {
            return None;
        }
        let attempt = EtcdStore::connect(&options).and_then(|etcd| {
            let registration = etcd.register(&member, &instance, link.settings.lease_ttl)?;
            let changes = etcd.watch()?;
            Ok((etcd, registration, changes))
        });
        match attempt {
            Ok((etcd, registration, changes)) => {
                let etcd = Arc::new(etcd);
                *link.registration.lock().unwrap_or_else(|p| p.into_inner()) = Some(registration);
                *link.etcd.write().unwrap_or_else(|p| p.into_inner()) = Some(etcd.clone());
                link.routed.attach_cluster(etcd.clone());
                // Read before the cluster zones are published, which allow it.
                link.transfer_key();
                tracing::info!(
                    server = %member.name,
                    endpoints = %link.endpoints(),
                    can_sign = member.can_sign,
                    "{} joined the cluster at {}{}",
                    member.name,
                    link.endpoints(),
                    if member.can_sign { "" } else { " without the cluster key, so it cannot sign" }
                );
                return Some((etcd, changes));
            }
            Err(error @ keymaster_store::StoreError::NameTaken { .. }) if !warned => {
                warned = true;
                tracing::warn!(endpoints = %link.endpoints(), %error,
                    "cannot join the cluster: {error}; serving the file zones and trying again every {} s", JOIN_RETRY.as_secs());
            }
            Err(error) if !warned => {
                warned = true;
                tracing::warn!(endpoints = %link.endpoints(), %error,
                    "cannot reach the cluster store; serving the file zones and trying again every {} s", JOIN_RETRY.as_secs());
            }
            Err(error) => tracing::debug!(%error, "cluster store still unreachable"),
        }
        std::thread::sleep(JOIN_RETRY);
    }
}

/// Returns the id that distinguishes this server from another one started under
/// the same name. It is made at the first start and kept in the data
/// directory, which one server at a time uses.
fn instance_id(data_dir: &std::path::Path) -> String {
    let path = data_dir.join(INSTANCE_FILE);
    if let Ok(text) = std::fs::read_to_string(&path) {
        if !text.trim().is_empty() {
            return text.trim().to_string();
        }
    }
    let id = data_encoding::HEXLOWER.encode(&rand::random::<[u8; 16]>());
    if let Err(error) = super::write_file_atomically(&path, id.as_bytes(), 0o644) {
        tracing::warn!(path = %path.display(), %error,
            "cannot save the member instance id in {}; after a restart this server joins only once its old lease ran out",
            path.display());
    }
    id
}

/// Reloads cluster zones as the watch reports changes, until shutdown.
/// The watch thread queues the zones; worker threads reload them.
fn follow(
    daemon: &Daemon,
    etcd: &EtcdStore,
    changes: std::sync::mpsc::Receiver<Change>,
    shutdown: &watch::Receiver<bool>,
) {
    let reloads = Reloads::default();
    std::thread::scope(|scope| {
        for index in 0..Reloads::workers() {
            let spawned = std::thread::Builder::new()
                .name(format!("keymaster-reload-{index}"))
                .spawn_scoped(scope, || reload_zones(daemon, &reloads));
            if let Err(error) = spawned {
                tracing::error!(%error, "cannot start a thread that reloads cluster zones");
            }
        }
        queue_changes(etcd, &changes, &reloads, shutdown);
        reloads.close();
    });
}

/// Queues the zones the watch reports as changed, until shutdown.
fn queue_changes(
    etcd: &EtcdStore,
    changes: &std::sync::mpsc::Receiver<Change>,
    reloads: &Reloads,
    shutdown: &watch::Receiver<bool>,
) {
    use std::sync::mpsc::RecvTimeoutError;
    while !stopping(shutdown) {
        match changes.recv_timeout(WATCH_POLL) {
            Ok(Change::Zone {
                zone,
                part: ZonePart::Role,
            }) => reloads.push(&zone, true),
            Ok(Change::Zone {
                zone,
                part: ZonePart::Zone | ZonePart::Content | ZonePart::Signing,
            }) => reloads.push(&zone, false),
            // Every change of keys or key states that alters the signed
            // data comes with a new signing record, which is followed.
            Ok(Change::Zone {
                part: ZonePart::Keys | ZonePart::EngineState,
                ..
            }) => {}
            // A member that goes offline is noticed when a signature
            // refresh falls due, which looks up who is online.
            Ok(Change::Member { .. }) => {}
            Ok(Change::Resync) => match etcd.zones() {
                Ok(zones) => {
                    for record in zones {
                        reloads.push(&record.name, true);
                    }
                }
                Err(error) => tracing::error!(%error, "cannot list the cluster zones"),
            },
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                tracing::error!(prefix = %etcd.prefix(), "the cluster store's change feed ended; cluster zones are no longer followed");
                return;
            }
        }
    }
}

/// Reloads queued cluster zones until the queue is closed.
fn reload_zones(daemon: &Daemon, reloads: &Reloads) {
    while let Some(reload) = reloads.next() {
        if reload.role_changed {
            daemon.role_changed(&reload.zone);
        }
        daemon.cluster_zone_changed(&reload.zone);
        reloads.done(&reload.zone);
    }
}

impl Daemon {
    /// Returns the key that seals the private keys of `zone`: the cluster
    /// key for a cluster zone, the server's key-encryption key otherwise.
    pub fn sealing_key(&self, zone: &str) -> Result<&KeyEncryptionKey, ZoneError> {
        let storage = self.store.zone(zone)?.map(|record| record.storage);
        if storage != Some(Storage::Cluster) {
            return Ok(&self.kek);
        }
        self.cluster
            .as_ref()
            .and_then(|link| link.key.as_ref())
            .ok_or_else(|| ZoneError::Rejected {
                zone: zone.to_string(),
                reason: format!(
                    "is a cluster zone, and {} has no cluster key to seal or unseal its private keys; \
                     give the cluster key with --cluster-key FILE or cluster_key in [cluster]",
                    self.config.name
                ),
            })
    }

    /// Returns the servers for `server list`: every cluster member, or
    /// this server alone without a cluster.
    pub fn server_infos(&self) -> Result<Vec<ServerInfo>, ZoneError> {
        // Every zone's Key Master, from the role records of both stores.
        let mut key_masters: Vec<(String, String)> = Vec::new();
        for zone in self.store.zones()? {
            if let Some(role) = self.store.role(&zone.name)? {
                key_masters.push((role.key_master, zone.name));
            }
        }
        let key_master_of = |server: &str| -> Vec<String> {
            key_masters
                .iter()
                .filter(|(holder, _)| holder == server)
                .map(|(_, zone)| zone.clone())
                .collect()
        };

        let Some(link) = &self.cluster else {
            let this = crate::cluster::member(&self.config, true);
            return Ok(vec![server_info(
                this,
                true,
                key_master_of(&self.config.name),
            )]);
        };
        let Some(etcd) = link.etcd() else {
            return Err(ZoneError::Unavailable(format!(
                "{} has not reached the cluster store at {} yet, so the members are unknown; \
                 it serves its file zones meanwhile and keeps trying",
                self.config.name,
                link.endpoints()
            )));
        };
        let members = etcd.members()?;
        Ok(members
            .into_iter()
            .map(|(member, online)| {
                let zones = key_master_of(&member.name);
                server_info(member, online, zones)
            })
            .collect())
    }

    /// Loads and publishes every cluster zone.
    pub fn load_cluster_zones(&self) {
        let Some(etcd) = self.cluster.as_ref().and_then(ClusterLink::etcd) else {
            return;
        };
        let zones = match etcd.zones() {
            Ok(zones) => zones,
            Err(error) => {
                tracing::error!(%error, "cannot list the cluster zones");
                return;
            }
        };
        for record in zones {
            self.cluster_zone_changed(&record.name);
        }
    }

    /// Reloads a cluster zone after its record, content, role or signing
    /// record changed; a signed zone is signed again only for a new
    /// signing record. The Key Master's engine runs at once after a change
    /// that may concern it.
    pub fn cluster_zone_changed(&self, zone: &str) {
        match self.store.zone(zone) {
            Ok(Some(record)) if record.storage == Storage::Cluster => {
                if let Err(error) = self.refresh_zone_with(zone, false) {
                    match self.runtime_serial(zone) {
                        Some(serial) => tracing::error!(zone = %zone, %error, serial,
                            "cluster zone {zone}: cannot publish a new version, so serial {serial} stays served: {error}"),
                        None => {
                            tracing::error!(zone = %zone, %error, "cluster zone {zone} is not served: {error}")
                        }
                    }
                }
                self.schedule_key_master_step(&record);
            }
            Ok(Some(record)) => self.report_hidden_cluster_zone(&record),
            Ok(None) => tracing::debug!(zone = %zone, "cluster zone record is gone"),
            Err(error) => tracing::error!(zone = %zone, %error, "cannot read cluster zone {zone}"),
        }
    }
}

impl Daemon {
    /// Records and logs once that the file zone `record` hides the cluster
    /// zone of the same name on this member.
    fn report_hidden_cluster_zone(&self, record: &keymaster_store::ZoneRecord) {
        let zone = &record.name;
        let file = record.file.as_deref().unwrap_or("its master file");
        let reason = format!(
            "the cluster store has a zone {zone} too, which this member does not serve because its own \
             file zone {zone} (from {file}) has the same name; remove the file zone from this member \
             to serve the cluster zone, or rename one of them"
        );
        let mut first = false;
        self.update_runtime(zone, |runtime| {
            first = runtime.hides_cluster_zone.is_none();
            runtime.hides_cluster_zone = Some(reason.clone());
        });
        if first {
            tracing::error!(zone = %zone, file = %file, "zone {zone}: {reason}");
        }
    }

    /// Has the maintenance task run the engine of a signed cluster zone
    /// this server is Key Master of, when no step is scheduled.
    fn schedule_key_master_step(&self, record: &keymaster_store::ZoneRecord) {
        if !record.signed {
            return;
        }
        let is_key_master = matches!(self.store.role(&record.name),
            Ok(Some(role)) if role.key_master == self.config.name);
        if !is_key_master {
            return;
        }
        let mut scheduled = false;
        self.update_runtime(&record.name, |runtime| {
            if runtime.engine_due.is_none() {
                runtime.engine_due = Some(super::unix_now());
                scheduled = true;
            }
        });
        if scheduled {
            self.wake.notify_one();
        }
    }
}

/// Returns the API view of a member.
fn server_info(member: Member, online: bool, key_master_of: Vec<String>) -> ServerInfo {
    ServerInfo {
        name: member.name,
        online,
        can_sign: member.can_sign,
        dns_addresses: member.dns_addresses,
        control_address: Some(member.control),
        version: member.version,
        key_master_of,
    }
}
