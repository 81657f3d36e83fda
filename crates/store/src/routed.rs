//! A store that keeps each zone in the backend its storage names.
//!
//! [`RoutedStore`] joins the server's local store (SQLite) and, once it is
//! connected, the cluster store (etcd). A zone whose [`ZoneRecord::storage`]
//! is [`Storage::Cluster`] lives in the cluster store with its keys, role
//! record, engine state and content; every other zone lives in the local
//! store. Settings ([`Store::meta`]) are always local.
//!
//! A zone's backend is decided by its record: `PutZone` by the record it
//! writes, any other operation by where the zone's record is found, the
//! local store first. [`Store::zones`] is the union of both, a local zone
//! hiding a cluster zone of the same name. A transaction must stay in one
//! backend, because the two cannot commit together atomically; one that
//! mixes them fails with [`StoreError::MixedStores`] and changes nothing.
//!
//! # Limitations
//!
//! - Before the cluster store is attached, cluster zones are unknown: reads
//!   find nothing and writes fail with [`StoreError::ClusterUnavailable`].
//! - When the cluster store cannot be read, [`Store::zones`] returns the
//!   local zones alone and logs a warning, so that file zones stay listed.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use keymaster_api::Storage;

use crate::{
    Operation, RoleRecord, SigningRecord, Store, StoreError, StoredKey, Transaction, ZoneRecord,
};

/// The backend a zone lives in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Backend {
    Local,
    Cluster,
}

/// The local store joined with an optional cluster store, routed per zone.
pub struct RoutedStore {
    local: Arc<dyn Store>,
    cluster: RwLock<Option<Arc<dyn Store>>>,
}

impl RoutedStore {
    /// Routes every zone to `local` until a cluster store is attached.
    pub fn new(local: Arc<dyn Store>) -> Self {
        Self {
            local,
            cluster: RwLock::new(None),
        }
    }

    /// Attaches the cluster store; cluster zones become visible.
    pub fn attach_cluster(&self, cluster: Arc<dyn Store>) {
        *self.cluster.write().unwrap_or_else(|p| p.into_inner()) = Some(cluster);
    }

    /// Returns whether a cluster store is attached.
    pub fn has_cluster(&self) -> bool {
        self.cluster_store().is_some()
    }

    fn cluster_store(&self) -> Option<Arc<dyn Store>> {
        self.cluster
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Returns the backend holding `zone`'s record, local when neither does.
    fn backend_of(&self, zone: &str) -> Result<Backend, StoreError> {
        if self.local.zone(zone)?.is_some() {
            return Ok(Backend::Local);
        }
        match self.cluster_store() {
            Some(cluster) if cluster.zone(zone)?.is_some() => Ok(Backend::Cluster),
            _ => Ok(Backend::Local),
        }
    }

    /// Returns the store of `backend`, failing for a missing cluster store.
    fn store(&self, backend: Backend, zone: &str) -> Result<Arc<dyn Store>, StoreError> {
        match backend {
            Backend::Local => Ok(self.local.clone()),
            Backend::Cluster => {
                self.cluster_store()
                    .ok_or_else(|| StoreError::ClusterUnavailable {
                        zone: zone.to_string(),
                    })
            }
        }
    }

    /// Returns the store holding `zone`.
    fn store_of(&self, zone: &str) -> Result<Arc<dyn Store>, StoreError> {
        self.store(self.backend_of(zone)?, zone)
    }

    /// Decides the one backend a transaction goes to.
    fn route(&self, transaction: &Transaction) -> Result<(Backend, String), StoreError> {
        // Zones written by this transaction are routed by the record written.
        let mut decided: HashMap<&str, Backend> = HashMap::new();
        let mut chosen: Option<(Backend, String)> = None;
        let mut zones: Vec<&str> = Vec::new();
        if let Some(fence) = &transaction.fence {
            zones.push(&fence.zone);
        }
        for operation in &transaction.operations {
            if let Operation::PutZone(record) | Operation::ReplaceZone { record, .. } = operation {
                let backend = match record.storage {
                    Storage::Cluster => Backend::Cluster,
                    Storage::File => Backend::Local,
                };
                decided.insert(&record.name, backend);
            }
            zones.push(operation_zone(operation));
        }
        for zone in zones {
            let backend = match decided.get(zone) {
                Some(backend) => *backend,
                None => {
                    let backend = self.backend_of(zone)?;
                    decided.insert(zone, backend);
                    backend
                }
            };
            match &chosen {
                None => chosen = Some((backend, zone.to_string())),
                Some((first, _)) if *first == backend => {}
                Some((first, first_zone)) => {
                    let (local, cluster) = match first {
                        Backend::Local => (first_zone.clone(), zone.to_string()),
                        Backend::Cluster => (zone.to_string(), first_zone.clone()),
                    };
                    return Err(StoreError::MixedStores { local, cluster });
                }
            }
        }
        Ok(chosen.unwrap_or((Backend::Local, String::new())))
    }
}

/// Returns the zone an operation writes.
fn operation_zone(operation: &Operation) -> &str {
    match operation {
        Operation::PutZone(record) | Operation::ReplaceZone { record, .. } => &record.name,
        Operation::DeleteZone(zone)
        | Operation::DeleteKey { zone, .. }
        | Operation::PutEngineState { zone, .. }
        | Operation::PutZoneContent { zone, .. } => zone,
        Operation::PutSigning { record, .. } => &record.zone,
        Operation::PutKey(key) => &key.zone,
        Operation::PutRole { role, .. } => &role.zone,
    }
}

impl std::fmt::Debug for RoutedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoutedStore")
            .field("cluster", &self.has_cluster())
            .finish_non_exhaustive()
    }
}

impl Store for RoutedStore {
    fn zones(&self) -> Result<Vec<ZoneRecord>, StoreError> {
        let mut zones = self.local.zones()?;
        if let Some(cluster) = self.cluster_store() {
            match cluster.zones() {
                Ok(shared) => {
                    for zone in shared {
                        if !zones.iter().any(|local| local.name == zone.name) {
                            zones.push(zone);
                        }
                    }
                    zones.sort_by(|a, b| a.name.cmp(&b.name));
                }
                Err(error) => {
                    tracing::warn!(%error, "cannot list the cluster zones; listing the local zones alone");
                }
            }
        }
        Ok(zones)
    }

    fn zone(&self, name: &str) -> Result<Option<ZoneRecord>, StoreError> {
        if let Some(record) = self.local.zone(name)? {
            return Ok(Some(record));
        }
        match self.cluster_store() {
            Some(cluster) => cluster.zone(name),
            None => Ok(None),
        }
    }

    fn keys(&self, zone: &str) -> Result<Vec<StoredKey>, StoreError> {
        self.store_of(zone)?.keys(zone)
    }

    fn role(&self, zone: &str) -> Result<Option<RoleRecord>, StoreError> {
        self.store_of(zone)?.role(zone)
    }

    fn engine_state(&self, zone: &str) -> Result<Option<String>, StoreError> {
        self.store_of(zone)?.engine_state(zone)
    }

    fn zone_content(&self, zone: &str) -> Result<Option<String>, StoreError> {
        self.store_of(zone)?.zone_content(zone)
    }

    fn signing_record(&self, zone: &str) -> Result<Option<SigningRecord>, StoreError> {
        self.store_of(zone)?.signing_record(zone)
    }

    fn commit(&self, transaction: Transaction) -> Result<(), StoreError> {
        let (backend, zone) = self.route(&transaction)?;
        self.store(backend, &zone)?.commit(transaction)
    }

    fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.local.meta(key)
    }

    fn set_meta(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.local.set_meta(key, value)
    }
}
