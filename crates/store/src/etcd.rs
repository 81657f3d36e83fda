//! The cluster backend: state shared by every server of a cluster in etcd.
//!
//! # Key layout
//!
//! Every key lives under one prefix, `/keymaster/` by default
//! ([`EtcdOptions::prefix`]). Zone names and key ids are written with `%`
//! as `%25` and `/` as `%2F`, so that a component never contains the
//! separator. Records are JSON, the same as in the SQLite backend; engine
//! state and settings are stored as the text they are given.
//!
//! | key | value | lease |
//! |---|---|---|
//! | `zones/<zone>` | [`ZoneRecord`] | none |
//! | `keys/<zone>/<id>` | [`StoredKey`], private key sealed | none |
//! | `roles/<zone>` | [`RoleRecord`] | none |
//! | `engine/<zone>` | the rollover engine's state | none |
//! | `content/<zone>` | a cluster zone's records as master-file text | none |
//! | `signing/<zone>` | [`SigningRecord`] of a signed cluster zone | none |
//! | `meta/<name>` | a setting | none |
//! | `secrets/<name>` | a value written once ([`EtcdStore::create_once`]) | none |
//! | `members/<server>` | [`Member`] | none: an offline member stays listed |
//! | `online/<server>` | `{"lease": ID}` | the member's lease |
//!
//! A zone's keys are listed oldest first by their etcd create revision.
//!
//! # Fencing
//!
//! [`Store::commit`] sends one etcd transaction. Before building it, the
//! store reads the role record of every zone that the transaction is
//! fenced on or that a `PutRole` touches, and checks the fence and the
//! expected epochs the way [`crate::SqliteStore`] does, failing with
//! [`StoreError::Fenced`] or [`StoreError::EpochMismatch`]. The
//! transaction then compares each role record's mod revision with the one
//! read (0 when absent), and a `DeleteZone` compares the zone's key range,
//! so that every write lands only if nothing it was decided on changed in
//! between. A `PutSigning` is checked and compared the same way against
//! the signing record it expects. All puts and deletes sit in the success branch; the failure
//! branch is empty, so nothing is ever half-written. When a compare fails,
//! the store reads again and decides again: a moved role becomes `Fenced`
//! or `EpochMismatch`, anything else is retried up to five times.
//!
//! # Threads
//!
//! The store runs the asynchronous etcd client on its own runtime thread.
//! Each call is sent there and its result comes back through a standard
//! channel, so the synchronous [`Store`] methods work from any thread,
//! inside or outside a tokio runtime, and never wait longer than
//! [`EtcdOptions::timeout`]. They do block the calling thread until then.
//!
//! # Membership and change notification
//!
//! [`EtcdStore::register`] writes a [`Member`] record and keeps an
//! `online/` key alive under a lease; [`EtcdStore::members`] lists members
//! with their online state. A server registers only while the `online/`
//! key of its name is absent or names its own instance id
//! ([`StoreError::NameTaken`]), so two live servers never share a name,
//! nor the role records that name one. When the keep-alive loses etcd, one warning
//! names the endpoints, later failures are logged at debug level only, and
//! the return of etcd is logged once. [`EtcdStore::watch`] reports which
//! zone changed.
//!
//! # Limitations
//!
//! - A call that times out ([`StoreError::Unreachable`]) may or may not have
//!   landed when it was a commit; read again before deciding.
//! - etcd limits a transaction to 128 operations and a request to 1.5 MiB
//!   by default, so a commit that deletes a zone with very many keys can be
//!   refused.
//! - Settings under `meta/` are shared by every server using the prefix.
//! - With TLS, the server certificate is checked only against the CA file
//!   given; the system's trust anchors are not used.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use etcd_client::{
    Certificate, Client, Compare, CompareOp, ConnectOptions, EventType, GetOptions, Identity,
    PutOptions, SortOrder, SortTarget, TlsOptions, Txn, TxnOp, TxnOpResponse, WatchOptions,
};
use serde::{Deserialize, Serialize};
use tokio::runtime::Handle;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::{
    Operation, RoleRecord, SigningRecord, Store, StoreError, StoredKey, Transaction, ZoneRecord,
};

/// The prefix used when none is configured.
pub const DEFAULT_PREFIX: &str = "/keymaster/";

/// How long a call waits for etcd when no timeout is configured.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// How many times a commit is decided again after a concurrent write.
const COMMIT_ATTEMPTS: u32 = 5;

/// Pause before trying again a call that could not connect.
const RETRY_PAUSE: Duration = Duration::from_millis(200);

/// gRPC status code UNAVAILABLE.
const GRPC_UNAVAILABLE: i32 = 14;

/// Maximum pause between two attempts to re-establish a watch or a lease.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// How to reach the cluster store.
#[derive(Clone, Debug)]
pub struct EtcdOptions {
    /// Client URLs, such as `http://127.0.0.1:2379`; `https://` with TLS.
    pub endpoints: Vec<String>,
    /// Prefix of every key; a missing trailing `/` is added.
    pub prefix: String,
    /// Maximum wait for one call, commit or registration.
    pub timeout: Duration,
    /// Files for TLS; `None` for plain HTTP/2.
    pub tls: Option<EtcdTls>,
}

impl EtcdOptions {
    /// Options for `endpoints` with the default prefix and timeout, no TLS.
    pub fn new(endpoints: Vec<String>) -> Self {
        Self {
            endpoints,
            prefix: DEFAULT_PREFIX.to_string(),
            timeout: DEFAULT_TIMEOUT,
            tls: None,
        }
    }
}

/// PEM files for a TLS connection to etcd.
#[derive(Clone, Debug, Default)]
pub struct EtcdTls {
    /// CA certificate that the server's certificate must chain to.
    pub ca_file: Option<PathBuf>,
    /// Client certificate, for servers that require one; needs `key_file`.
    pub cert_file: Option<PathBuf>,
    /// Private key of the client certificate.
    pub key_file: Option<PathBuf>,
}

/// A cluster member as registered in the store.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// Server name, unique in the cluster.
    pub name: String,
    /// Addresses the member answers DNS queries on.
    pub dns_addresses: Vec<String>,
    /// URL of the member's control API.
    pub control: String,
    /// keymaster version the member runs.
    pub version: String,
    /// Whether the member can sign: it has the cluster key or reaches the HSM.
    pub can_sign: bool,
}

/// A change in the cluster store, as reported by [`EtcdStore::watch`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// A record of `zone` was written or deleted.
    Zone { zone: String, part: ZonePart },
    /// A member record or its online state changed.
    Member { name: String },
    /// Changes may have been missed (etcd compacted its history while the
    /// watch was away); re-read everything.
    Resync,
}

/// The part of a zone's state that a [`Change::Zone`] touched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ZonePart {
    Zone,
    Keys,
    Role,
    EngineState,
    Content,
    Signing,
}

/// State shared by the store, its registrations and background tasks.
struct Shared {
    client: Client,
    runtime: Handle,
    layout: Layout,
    timeout: Duration,
    /// The endpoints, comma-separated, for error messages.
    endpoints: String,
    /// Dropping this ends the runtime thread and every task on it.
    _shutdown: oneshot::Sender<()>,
}

/// The etcd cluster store.
pub struct EtcdStore {
    shared: Arc<Shared>,
}

impl EtcdStore {
    /// Starts the runtime thread and connects to etcd.
    ///
    /// Fails when the TLS files cannot be read or etcd does not respond to a
    /// status request within the timeout.
    pub fn connect(options: &EtcdOptions) -> Result<Self, StoreError> {
        let endpoints = options.endpoints.join(",");
        if options.endpoints.is_empty() {
            return Err(setup_error("no etcd endpoint given", None));
        }
        let mut connect = ConnectOptions::new()
            .with_connect_timeout(options.timeout)
            .with_keep_alive(Duration::from_secs(10), options.timeout);
        if let Some(tls) = &options.tls {
            connect = connect.with_tls(tls_options(tls)?);
        }
        let (runtime, shutdown) = start_runtime()?;
        let urls = options.endpoints.clone();
        let seconds = options.timeout.as_secs_f64().ceil() as u64;
        let unreachable = |operation| StoreError::Unreachable {
            endpoints: endpoints.clone(),
            operation,
            seconds,
        };

        let connected = run_on(&runtime, options.timeout, async move {
            let mut client = Client::connect(urls, Some(connect)).await?;
            loop {
                match client.status().await {
                    Ok(_) => return Ok(client),
                    Err(error) if not_connected(&error) => tokio::time::sleep(RETRY_PAUSE).await,
                    Err(error) => return Err(error),
                }
            }
        });
        let client = match connected {
            Some(Ok(client)) => client,
            Some(Err(source)) => return Err(etcd_error(&endpoints, "connect", source)),
            None => return Err(unreachable("connect")),
        };
        let shared = Shared {
            client,
            runtime,
            layout: Layout::new(&options.prefix),
            timeout: options.timeout,
            endpoints,
            _shutdown: shutdown,
        };
        Ok(Self {
            shared: Arc::new(shared),
        })
    }

    /// Returns the key prefix in use, with its trailing `/`.
    pub fn prefix(&self) -> &str {
        &self.shared.layout.prefix
    }

    /// Registers `member`: its record stays, and an `online/` key lives as
    /// long as the returned [`Registration`] keeps its lease alive.
    ///
    /// `lease_ttl` is rounded up to whole seconds; etcd raises very short
    /// leases to its own minimum. When the lease is lost (etcd was away
    /// longer than the TTL), the registration takes a new one.
    ///
    /// `instance` identifies this server across restarts (an id kept in its
    /// data directory). While another instance is online under the same
    /// name, registering fails with [`StoreError::NameTaken`]; the same
    /// instance takes its name over at once. An empty instance never
    /// takes a name over.
    pub fn register(
        &self,
        member: &Member,
        instance: &str,
        lease_ttl: Duration,
    ) -> Result<Registration, StoreError> {
        let ttl = (lease_ttl.as_secs_f64().ceil() as i64).max(1);
        let layout = self.shared.layout.clone();
        let record = to_json(member);
        let name = member.name.clone();
        let endpoints = self.shared.endpoints.clone();
        let lease = self.call("register member", {
            let (name, instance) = (name.clone(), instance.to_string());
            move |client| {
                let (layout, name, record) = (layout.clone(), name.clone(), record.clone());
                let (endpoints, instance) = (endpoints.clone(), instance.clone());
                async move {
                    grant_and_put(client, &layout, &endpoints, &name, &record, &instance, ttl).await
                }
            }
        })?;
        let lease = Arc::new(AtomicI64::new(lease));

        let keeper = self.shared.runtime.spawn(keep_registered(
            self.shared.client.clone(),
            self.shared.layout.clone(),
            Reachability::new(&name, &self.shared.endpoints),
            to_json(member),
            instance.to_string(),
            ttl,
            lease.clone(),
        ));
        tracing::info!(member = %name, ttl, "registered in the cluster store");
        Ok(Registration {
            store: Self {
                shared: self.shared.clone(),
            },
            name,
            lease,
            keeper: Some(keeper),
        })
    }

    /// Returns every registered member, sorted by name, and whether it is
    /// online now.
    pub fn members(&self) -> Result<Vec<(Member, bool)>, StoreError> {
        let layout = self.shared.layout.clone();
        let (members, online) = self.call("list members", move |mut client| {
            let scan =
                |dir: &str| TxnOp::get(layout.dir(dir), Some(GetOptions::new().with_prefix()));
            let txn = Txn::new().and_then([scan("members"), scan("online")]);
            async move {
                let response = client.txn(txn).await?;
                let mut ranges = response
                    .op_responses()
                    .into_iter()
                    .filter_map(|op| match op {
                        TxnOpResponse::Get(get) => Some(get),
                        _ => None,
                    });
                let members = ranges.next().map(|g| pairs(g.kvs())).unwrap_or_default();
                let online = ranges.next().map(|g| pairs(g.kvs())).unwrap_or_default();
                Ok((members, online))
            }
        })?;

        let online_prefix = self.shared.layout.dir("online");
        let online: Vec<String> = online
            .into_iter()
            .map(|(key, _)| decode_component(&key[online_prefix.len()..]))
            .collect();
        let mut list = Vec::new();
        for (key, value) in members {
            // One unreadable record must not hide the others, which role
            // changes check before they move a role.
            let member: Member = match self.decode(&key, "member", &value) {
                Ok(member) => member,
                Err(error) => {
                    tracing::warn!(key = %key, %error,
                        "skipping an unreadable member record: {error}; the member rewrites it when it starts, or delete the key");
                    continue;
                }
            };
            let is_online = online.contains(&member.name);
            list.push((member, is_online));
        }
        list.sort_by(|a, b| a.0.name.cmp(&b.0.name));
        Ok(list)
    }

    /// Returns whether the server named `name` is online (holds a live lease).
    pub fn member_online(&self, name: &str) -> Result<bool, StoreError> {
        let key = self.shared.layout.key("online", name);
        Ok(self.get_value(&key, "read online state")?.is_some())
    }

    /// Returns whether the Key Master named in `zone`'s role record is
    /// online, or `None` when the zone has no role record.
    pub fn role_holder_online(&self, zone: &str) -> Result<Option<bool>, StoreError> {
        match self.role(zone)? {
            Some(role) => self.member_online(&role.key_master).map(Some),
            None => Ok(None),
        }
    }

    /// Returns the value stored under `secrets/<name>`, writing `value`
    /// there first when nothing is stored yet.
    ///
    /// The write is one transaction that puts only while the key does not
    /// exist and reads it otherwise, so when several servers call this at
    /// once, all of them get the value of the first.
    pub fn create_once(&self, name: &str, value: &str) -> Result<String, StoreError> {
        let key = self.shared.layout.key("secrets", name);
        let value = value.to_string();
        let stored = self.call("create setting once", {
            let key = key.clone();
            move |mut client| {
                let (key, value) = (key.clone(), value.clone());
                async move {
                    let txn = Txn::new()
                        .when([Compare::create_revision(key.clone(), CompareOp::Equal, 0)])
                        .and_then([TxnOp::put(key.clone(), value.clone(), None)])
                        .or_else([TxnOp::get(key, None)]);
                    let response = client.txn(txn).await?;
                    if response.succeeded() {
                        return Ok(value.into_bytes());
                    }
                    let existing = response.op_responses().into_iter().find_map(|op| match op {
                        TxnOpResponse::Get(get) => get.kvs().first().map(|kv| kv.value().to_vec()),
                        _ => None,
                    });
                    // Deleted between the compare and the read: nothing to
                    // return, and the caller tries again later.
                    Ok(existing.unwrap_or_default())
                }
            }
        })?;
        if stored.is_empty() {
            return Err(StoreError::ClusterCorrupt {
                endpoints: self.shared.endpoints.clone(),
                key,
                what: "secret",
                source: "the key exists but holds no value".into(),
            });
        }
        self.decode_text(&key, "secret", stored)
    }

    /// Starts watching every key under the prefix and returns the receiving
    /// end of a standard (blocking) channel of [`Change`]s.
    ///
    /// Changes made after this returns are reported, normally within
    /// milliseconds. When etcd goes away the watch comes back by itself,
    /// with pauses between attempts that double from 100 ms up to 2 s, and
    /// continues from the last revision it saw. The watch ends when this
    /// store and every registration made from it are dropped, and the
    /// receiver then reports disconnection. Dropping the receiver ends the
    /// watch at the next change.
    pub fn watch(&self) -> Result<mpsc::Receiver<Change>, StoreError> {
        let prefix = self.shared.layout.prefix.clone();
        let revision = self.call("read revision", move |mut client| {
            let prefix = prefix.clone();
            async move {
                let options = GetOptions::new().with_keys_only().with_limit(1);
                let response = client.get(prefix, Some(options)).await?;
                Ok(response.header().map_or(0, |h| h.revision()))
            }
        })?;
        let (sender, receiver) = mpsc::channel();
        self.shared.runtime.spawn(run_watch(
            self.shared.client.clone(),
            self.shared.layout.clone(),
            revision + 1,
            sender,
        ));
        Ok(receiver)
    }

    /// Runs the future that `make` returns for a client on the runtime
    /// thread and waits at most the timeout.
    ///
    /// While etcd refuses connections (the request was never sent), the
    /// future is made and run again every 200 ms until the timeout.
    fn call<T, F, M>(&self, operation: &'static str, mut make: M) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, CallError>> + Send + 'static,
        M: FnMut(Client) -> F + Send + 'static,
    {
        let client = self.shared.client.clone();
        let attempts = async move {
            loop {
                match make(client.clone()).await {
                    Err(CallError::Etcd(error)) if not_connected(&error) => {
                        tracing::debug!(%error, "cluster store refused the connection; trying again");
                        tokio::time::sleep(RETRY_PAUSE).await;
                    }
                    other => return other,
                }
            }
        };
        match run_on(&self.shared.runtime, self.shared.timeout, attempts) {
            Some(Ok(value)) => Ok(value),
            Some(Err(CallError::Etcd(source))) => {
                Err(etcd_error(&self.shared.endpoints, operation, source))
            }
            Some(Err(CallError::Store(error))) => Err(error),
            None => Err(StoreError::Unreachable {
                endpoints: self.shared.endpoints.clone(),
                operation,
                seconds: self.shared.timeout.as_secs_f64().ceil() as u64,
            }),
        }
    }

    /// Reads one key's value.
    fn get_value(&self, key: &str, operation: &'static str) -> Result<Option<Vec<u8>>, StoreError> {
        let key = key.to_string();
        self.call(operation, move |mut client| {
            let key = key.clone();
            async move {
                let response = client.get(key, None).await?;
                Ok(response.kvs().first().map(|kv| kv.value().to_vec()))
            }
        })
    }

    /// Reads every key and value under `dir`, oldest first.
    fn scan(
        &self,
        dir: String,
        operation: &'static str,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        self.call(operation, move |mut client| {
            let dir = dir.clone();
            async move {
                let options = GetOptions::new()
                    .with_prefix()
                    .with_sort(SortTarget::Create, SortOrder::Ascend);
                let response = client.get(dir, Some(options)).await?;
                Ok(pairs(response.kvs()))
            }
        })
    }

    fn decode<T: serde::de::DeserializeOwned>(
        &self,
        key: &str,
        what: &'static str,
        value: &[u8],
    ) -> Result<T, StoreError> {
        serde_json::from_slice(value).map_err(|source| StoreError::ClusterCorrupt {
            endpoints: self.shared.endpoints.clone(),
            key: key.to_string(),
            what,
            source: Box::new(source),
        })
    }

    fn decode_text(
        &self,
        key: &str,
        what: &'static str,
        value: Vec<u8>,
    ) -> Result<String, StoreError> {
        String::from_utf8(value).map_err(|source| StoreError::ClusterCorrupt {
            endpoints: self.shared.endpoints.clone(),
            key: key.to_string(),
            what,
            source: Box::new(source),
        })
    }

    fn read_record<T: serde::de::DeserializeOwned>(
        &self,
        key: &str,
        what: &'static str,
        operation: &'static str,
    ) -> Result<Option<T>, StoreError> {
        self.get_value(key, operation)?
            .map(|value| self.decode(key, what, &value))
            .transpose()
    }
}

impl std::fmt::Debug for EtcdStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdStore")
            .field("endpoints", &self.shared.endpoints)
            .field("prefix", &self.shared.layout.prefix)
            .finish()
    }
}

impl Store for EtcdStore {
    fn zones(&self) -> Result<Vec<ZoneRecord>, StoreError> {
        let mut zones = Vec::new();
        for (key, value) in self.scan(self.shared.layout.dir("zones"), "list zones")? {
            zones.push(self.decode::<ZoneRecord>(&key, "zone", &value)?);
        }
        zones.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(zones)
    }

    fn zone(&self, name: &str) -> Result<Option<ZoneRecord>, StoreError> {
        self.read_record(&self.shared.layout.key("zones", name), "zone", "read zone")
    }

    fn keys(&self, zone: &str) -> Result<Vec<StoredKey>, StoreError> {
        let dir = self.shared.layout.zone_keys(zone);
        let mut keys = Vec::new();
        for (key, value) in self.scan(dir, "list keys")? {
            keys.push(self.decode::<StoredKey>(&key, "key", &value)?);
        }
        Ok(keys)
    }

    fn role(&self, zone: &str) -> Result<Option<RoleRecord>, StoreError> {
        self.read_record(&self.shared.layout.key("roles", zone), "role", "read role")
    }

    fn engine_state(&self, zone: &str) -> Result<Option<String>, StoreError> {
        let key = self.shared.layout.key("engine", zone);
        self.get_value(&key, "read engine state")?
            .map(|value| self.decode_text(&key, "engine state", value))
            .transpose()
    }

    fn zone_content(&self, zone: &str) -> Result<Option<String>, StoreError> {
        let key = self.shared.layout.key("content", zone);
        self.get_value(&key, "read zone content")?
            .map(|value| self.decode_text(&key, "zone content", value))
            .transpose()
    }

    fn signing_record(&self, zone: &str) -> Result<Option<SigningRecord>, StoreError> {
        self.read_record(
            &self.shared.layout.key("signing", zone),
            "signing record",
            "read signing record",
        )
    }

    fn commit(&self, transaction: Transaction) -> Result<(), StoreError> {
        let layout = self.shared.layout.clone();
        let endpoints = self.shared.endpoints.clone();
        self.call("commit", move |client| {
            let (layout, endpoints) = (layout.clone(), endpoints.clone());
            let transaction = transaction.clone();
            async move { commit(client, &layout, &endpoints, transaction).await }
        })
    }

    fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        let key = self.shared.layout.key("meta", key);
        self.get_value(&key, "read setting")?
            .map(|value| self.decode_text(&key, "setting", value))
            .transpose()
    }

    fn set_meta(&self, key: &str, value: &str) -> Result<(), StoreError> {
        let key = self.shared.layout.key("meta", key);
        let value = value.to_string();
        self.call("write setting", move |mut client| {
            let (key, value) = (key.clone(), value.clone());
            async move {
                client.put(key, value, None).await?;
                Ok(())
            }
        })
    }
}

/// A member's registration; its lease is kept alive in the background.
///
/// Dropping it or calling [`Registration::close`] revokes the lease, so the
/// member shows offline at once. A member whose process dies shows offline
/// when the lease expires.
pub struct Registration {
    store: EtcdStore,
    name: String,
    lease: Arc<AtomicI64>,
    keeper: Option<JoinHandle<()>>,
}

impl Registration {
    /// Returns the member's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Returns the etcd lease id in use now.
    pub fn lease_id(&self) -> i64 {
        self.lease.load(Ordering::SeqCst)
    }

    /// Stops the keep-alive and revokes the lease, waiting for etcd.
    pub fn close(mut self) -> Result<(), StoreError> {
        self.revoke()
    }

    fn revoke(&mut self) -> Result<(), StoreError> {
        let Some(keeper) = self.keeper.take() else {
            return Ok(());
        };
        keeper.abort();
        let lease = self.lease_id();
        self.store
            .call("revoke lease", move |mut client| async move {
                client.lease_revoke(lease).await?;
                Ok(())
            })?;
        tracing::info!(member = %self.name, "left the cluster store");
        Ok(())
    }
}

impl std::fmt::Debug for Registration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registration")
            .field("name", &self.name)
            .field("lease", &self.lease_id())
            .finish()
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Err(error) = self.revoke() {
            tracing::warn!(member = %self.name, %error, "could not revoke the member's lease; it expires by itself");
        }
    }
}

/// Failure inside a call on the runtime thread.
enum CallError {
    Etcd(etcd_client::Error),
    Store(StoreError),
}

impl From<etcd_client::Error> for CallError {
    fn from(error: etcd_client::Error) -> Self {
        Self::Etcd(error)
    }
}

impl From<StoreError> for CallError {
    fn from(error: StoreError) -> Self {
        Self::Store(error)
    }
}

/// Key names under the prefix.
#[derive(Clone, Debug)]
struct Layout {
    prefix: String,
}

impl Layout {
    fn new(prefix: &str) -> Self {
        let mut prefix = prefix.to_string();
        if !prefix.ends_with('/') {
            prefix.push('/');
        }
        Self { prefix }
    }

    /// `<prefix><dir>/`
    fn dir(&self, dir: &str) -> String {
        format!("{}{dir}/", self.prefix)
    }

    /// `<prefix><dir>/<name>`
    fn key(&self, dir: &str, name: &str) -> String {
        format!("{}{dir}/{}", self.prefix, encode_component(name))
    }

    /// `<prefix>keys/<zone>/`
    fn zone_keys(&self, zone: &str) -> String {
        format!("{}keys/{}/", self.prefix, encode_component(zone))
    }

    /// `<prefix>keys/<zone>/<id>`
    fn zone_key(&self, zone: &str, id: &str) -> String {
        format!("{}{}", self.zone_keys(zone), encode_component(id))
    }

    /// Tells what a changed key belongs to.
    fn change(&self, key: &str) -> Option<Change> {
        let rest = key.strip_prefix(&self.prefix)?;
        let (dir, name) = rest.split_once('/')?;
        let zone = |part| {
            Some(Change::Zone {
                zone: decode_component(name.split('/').next().unwrap_or(name)),
                part,
            })
        };
        match dir {
            "zones" => zone(ZonePart::Zone),
            "keys" => zone(ZonePart::Keys),
            "roles" => zone(ZonePart::Role),
            "engine" => zone(ZonePart::EngineState),
            "content" => zone(ZonePart::Content),
            "signing" => zone(ZonePart::Signing),
            "members" | "online" => Some(Change::Member {
                name: decode_component(name),
            }),
            _ => None,
        }
    }
}

fn encode_component(text: &str) -> String {
    text.replace('%', "%25").replace('/', "%2F")
}

fn decode_component(text: &str) -> String {
    text.replace("%2F", "/").replace("%25", "%")
}

/// Starts a current-thread runtime on a thread of its own; it runs until
/// the returned sender is dropped.
fn start_runtime() -> Result<(Handle, oneshot::Sender<()>), StoreError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| setup_error("start the etcd client runtime", Some(e)))?;
    let handle = runtime.handle().clone();
    let (shutdown, stopped) = oneshot::channel::<()>();
    std::thread::Builder::new()
        .name("keymaster-etcd".to_string())
        .spawn(move || {
            runtime.block_on(async {
                let _ = stopped.await;
            });
        })
        .map_err(|e| setup_error("start the etcd client thread", Some(e)))?;
    Ok((handle, shutdown))
}

/// Runs `future` on `runtime` and waits for it from this thread for at
/// most `timeout`; `None` when it did not finish in time.
fn run_on<T, F>(runtime: &Handle, timeout: Duration, future: F) -> Option<T>
where
    T: Send + 'static,
    F: Future<Output = T> + Send + 'static,
{
    let (sender, receiver) = mpsc::sync_channel(1);
    runtime.spawn(async move {
        if let Ok(value) = tokio::time::timeout(timeout, future).await {
            let _ = sender.send(value);
        }
    });
    // The task gives up at `timeout` itself; the margin covers a busy
    // runtime thread.
    receiver
        .recv_timeout(timeout + Duration::from_millis(500))
        .ok()
}

/// Returns whether `error` means etcd could not be connected to, so the
/// request was never sent.
fn not_connected(error: &etcd_client::Error) -> bool {
    match error {
        etcd_client::Error::GRpcStatus(status) => {
            status.code() as i32 == GRPC_UNAVAILABLE && status.message().contains("connect")
        }
        _ => false,
    }
}

fn setup_error(what: &str, source: Option<std::io::Error>) -> StoreError {
    StoreError::ClusterSetup {
        what: what.to_string(),
        source: source.unwrap_or_else(|| std::io::Error::other(what.to_string())),
    }
}

fn etcd_error(endpoints: &str, operation: &'static str, source: etcd_client::Error) -> StoreError {
    StoreError::Etcd {
        endpoints: endpoints.to_string(),
        operation,
        source,
    }
}

/// Reads the PEM files named in `tls`.
fn tls_options(tls: &EtcdTls) -> Result<TlsOptions, StoreError> {
    let read = |what: &str, path: &Path| {
        std::fs::read(path)
            .map_err(|e| setup_error(&format!("read the TLS {what} {}", path.display()), Some(e)))
    };
    let mut options = TlsOptions::new();
    if let Some(path) = &tls.ca_file {
        options = options.ca_certificate(Certificate::from_pem(read("CA file", path)?));
    }
    match (&tls.cert_file, &tls.key_file) {
        (Some(cert), Some(key)) => {
            let identity =
                Identity::from_pem(read("client certificate", cert)?, read("client key", key)?);
            options = options.identity(identity);
        }
        (None, None) => {}
        _ => {
            return Err(setup_error(
                "a TLS client certificate and its key must be given together",
                None,
            ))
        }
    }
    Ok(options)
}

/// Serialises a record; cannot fail for the store's types, which hold
/// only strings, numbers, byte strings and enums.
fn to_json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// Returns the keys (as text) and values of a range response.
fn pairs(kvs: &[etcd_client::KeyValue]) -> Vec<(String, Vec<u8>)> {
    kvs.iter()
        .map(|kv| {
            (
                String::from_utf8_lossy(kv.key()).into_owned(),
                kv.value().to_vec(),
            )
        })
        .collect()
}

/// One commit decided against the role records read just before it.
struct CommitPlan<'a> {
    layout: &'a Layout,
    endpoints: &'a str,
    compares: Vec<Compare>,
    /// Final value of every key written: `None` deletes it.
    writes: BTreeMap<String, Option<String>>,
    /// Role records as the transaction will leave them, by zone.
    roles: HashMap<String, Option<RoleRecord>>,
}

impl<'a> CommitPlan<'a> {
    /// Reads the transaction's role records, checks its fence and expected
    /// epochs, and collects its writes and compares.
    async fn decide(
        client: &mut Client,
        layout: &'a Layout,
        endpoints: &'a str,
        transaction: &Transaction,
    ) -> Result<Self, CallError> {
        let mut plan = Self {
            layout,
            endpoints,
            compares: Vec::new(),
            writes: BTreeMap::new(),
            roles: HashMap::new(),
        };
        if let Some(fence) = &transaction.fence {
            let role = plan.role(client, &fence.zone).await?;
            let holds = role
                .as_ref()
                .is_some_and(|r| r.key_master == fence.key_master && r.epoch == fence.epoch);
            if !holds {
                let found = match role {
                    Some(r) => format!("{} at epoch {}", r.key_master, r.epoch),
                    None => "no role record".to_string(),
                };
                return Err(CallError::Store(StoreError::Fenced {
                    zone: fence.zone.clone(),
                    expected_server: fence.key_master.clone(),
                    expected_epoch: fence.epoch,
                    found,
                }));
            }
        }
        for operation in &transaction.operations {
            plan.add(client, operation).await?;
        }
        Ok(plan)
    }

    /// Adds one operation's writes.
    async fn add(&mut self, client: &mut Client, operation: &Operation) -> Result<(), CallError> {
        let layout = self.layout;
        match operation {
            Operation::PutZone(zone) => {
                self.put(layout.key("zones", &zone.name), to_json(zone));
            }
            Operation::ReplaceZone { record, expected } => {
                let key = layout.key("zones", &record.name);
                let response = client.get(key.clone(), None).await?;
                let (found, revision) = match response.kvs().first() {
                    Some(kv) => {
                        let found: ZoneRecord =
                            serde_json::from_slice(kv.value()).map_err(|source| {
                                StoreError::ClusterCorrupt {
                                    endpoints: self.endpoints.to_string(),
                                    key: key.clone(),
                                    what: "zone record",
                                    source: Box::new(source),
                                }
                            })?;
                        (Some(found), kv.mod_revision())
                    }
                    None => (None, 0),
                };
                if found.as_ref() != Some(expected) {
                    return Err(CallError::Store(StoreError::ZoneMoved {
                        zone: record.name.clone(),
                    }));
                }
                self.compares.push(Compare::mod_revision(
                    key.clone(),
                    CompareOp::Equal,
                    revision,
                ));
                self.put(key, to_json(record));
            }
            Operation::DeleteZone(name) => {
                self.delete_zone(client, name).await?;
            }
            Operation::PutKey(key) => {
                self.put(layout.zone_key(&key.zone, &key.id), to_json(key));
            }
            Operation::DeleteKey { zone, id } => {
                self.writes.insert(layout.zone_key(zone, id), None);
            }
            Operation::PutRole {
                role,
                expected_epoch,
            } => {
                let found = self.role(client, &role.zone).await?.map(|r| r.epoch);
                if found != *expected_epoch {
                    return Err(CallError::Store(StoreError::EpochMismatch {
                        zone: role.zone.clone(),
                        expected: *expected_epoch,
                        found,
                    }));
                }
                self.put(layout.key("roles", &role.zone), to_json(role));
                self.roles.insert(role.zone.clone(), Some(role.clone()));
            }
            Operation::PutEngineState { zone, state } => {
                self.put(layout.key("engine", zone), state.clone());
            }
            Operation::PutZoneContent { zone, text } => {
                // TODO: split larger content over several keys; one request
                // is limited to 1.5 MiB by etcd's default settings.
                if text.len() > crate::MAX_ZONE_CONTENT {
                    return Err(CallError::Store(StoreError::TooLarge {
                        zone: zone.clone(),
                        size: text.len(),
                        limit: crate::MAX_ZONE_CONTENT,
                    }));
                }
                self.put(layout.key("content", zone), text.clone());
            }
            Operation::PutSigning {
                record,
                expected_serial,
            } => {
                let found = self.signing(client, &record.zone).await?;
                if found != *expected_serial {
                    return Err(CallError::Store(StoreError::SigningMoved {
                        zone: record.zone.clone(),
                        expected: *expected_serial,
                        found,
                    }));
                }
                self.put(layout.key("signing", &record.zone), to_json(record));
            }
        }
        Ok(())
    }

    /// Returns the serial of `zone`'s stored signing record and compares
    /// the record's mod revision with the one read.
    async fn signing(&mut self, client: &mut Client, zone: &str) -> Result<Option<u32>, CallError> {
        let key = self.layout.key("signing", zone);
        let response = client.get(key.clone(), None).await?;
        let (serial, revision) = match response.kvs().first() {
            Some(kv) => {
                let record: SigningRecord =
                    serde_json::from_slice(kv.value()).map_err(|source| {
                        StoreError::ClusterCorrupt {
                            endpoints: self.endpoints.to_string(),
                            key: key.clone(),
                            what: "signing record",
                            source: Box::new(source),
                        }
                    })?;
                (Some(record.serial), kv.mod_revision())
            }
            None => (None, 0),
        };
        self.compares
            .push(Compare::mod_revision(key, CompareOp::Equal, revision));
        Ok(serial)
    }

    fn put(&mut self, key: String, value: String) {
        self.writes.insert(key, Some(value));
    }

    /// Deletes the zone record, its engine state and every key of the zone,
    /// those stored and those written earlier in this transaction. The key
    /// range is compared so that a key added meanwhile is not left behind.
    async fn delete_zone(&mut self, client: &mut Client, zone: &str) -> Result<(), CallError> {
        let layout = self.layout;
        self.writes.insert(layout.key("zones", zone), None);
        self.writes.insert(layout.key("engine", zone), None);
        self.writes.insert(layout.key("content", zone), None);
        self.writes.insert(layout.key("signing", zone), None);

        let dir = layout.zone_keys(zone);
        let response = client
            .get(
                dir.clone(),
                Some(GetOptions::new().with_prefix().with_keys_only()),
            )
            .await?;
        let revision = response.header().map_or(0, |h| h.revision());
        for (key, _) in pairs(response.kvs()) {
            self.writes.insert(key, None);
        }
        for (key, value) in self.writes.iter_mut() {
            if key.starts_with(&dir) {
                *value = None;
            }
        }
        self.compares
            .push(Compare::mod_revision(dir, CompareOp::Less, revision + 1).with_prefix());
        Ok(())
    }

    /// Returns `zone`'s role record as this transaction leaves it, reading it
    /// (and comparing its mod revision) the first time.
    async fn role(
        &mut self,
        client: &mut Client,
        zone: &str,
    ) -> Result<Option<RoleRecord>, CallError> {
        if let Some(role) = self.roles.get(zone) {
            return Ok(role.clone());
        }
        let key = self.layout.key("roles", zone);
        let response = client.get(key.clone(), None).await?;
        let (role, revision) = match response.kvs().first() {
            Some(kv) => {
                let role: RoleRecord = serde_json::from_slice(kv.value()).map_err(|source| {
                    StoreError::ClusterCorrupt {
                        endpoints: self.endpoints.to_string(),
                        key: key.clone(),
                        what: "role",
                        source: Box::new(source),
                    }
                })?;
                (Some(role), kv.mod_revision())
            }
            None => (None, 0),
        };
        self.compares
            .push(Compare::mod_revision(key, CompareOp::Equal, revision));
        self.roles.insert(zone.to_string(), role.clone());
        Ok(role)
    }

    fn into_txn(self) -> Txn {
        let operations: Vec<TxnOp> = self
            .writes
            .into_iter()
            .map(|(key, value)| match value {
                Some(value) => TxnOp::put(key, value, None),
                None => TxnOp::delete(key, None),
            })
            .collect();
        Txn::new().when(self.compares).and_then(operations)
    }
}

/// Decides and sends a commit, deciding again after a lost compare.
async fn commit(
    mut client: Client,
    layout: &Layout,
    endpoints: &str,
    transaction: Transaction,
) -> Result<(), CallError> {
    for attempt in 1..=COMMIT_ATTEMPTS {
        let plan = CommitPlan::decide(&mut client, layout, endpoints, &transaction).await?;
        if plan.writes.is_empty() {
            return Ok(());
        }
        let response = match client.txn(plan.into_txn()).await {
            Ok(response) => response,
            // Refused before sending: safe to decide and send again.
            Err(error) if not_connected(&error) => return Err(CallError::Etcd(error)),
            // Lost in flight: the outcome is unknown, so it is not repeated.
            Err(error) => {
                return Err(CallError::Store(etcd_error(endpoints, "commit", error)));
            }
        };
        if response.succeeded() {
            return Ok(());
        }
        tracing::debug!(
            attempt,
            "commit lost a compare to a concurrent write; deciding again"
        );
    }
    Err(CallError::Store(StoreError::Contended {
        endpoints: endpoints.to_string(),
        attempts: COMMIT_ATTEMPTS,
    }))
}

/// Grants a lease and writes the member record and its online key. The
/// name must be free, or held by the same `instance`: the same server,
/// restarted before its old lease ran out.
async fn grant_and_put(
    mut client: Client,
    layout: &Layout,
    endpoints: &str,
    name: &str,
    record: &str,
    instance: &str,
    ttl: i64,
) -> Result<i64, CallError> {
    // Two servers under one name would both pass the fence of its roles,
    // so the live online key of another instance keeps the name in use.
    let online_key = layout.key("online", name);
    let taken = || {
        CallError::Store(StoreError::NameTaken {
            endpoints: endpoints.to_string(),
            name: name.to_string(),
        })
    };
    let response = client.get(online_key.clone(), None).await?;
    let compare = match response.kvs().first() {
        None => Compare::create_revision(online_key.clone(), CompareOp::Equal, 0),
        Some(kv) if same_instance(kv.value(), instance) => {
            Compare::mod_revision(online_key.clone(), CompareOp::Equal, kv.mod_revision())
        }
        Some(_) => return Err(taken()),
    };

    let lease = client.lease_grant(ttl, None).await?.id();
    let online = serde_json::json!({ "lease": lease, "instance": instance }).to_string();
    let txn = Txn::new().when([compare]).and_then([
        TxnOp::put(layout.key("members", name), record, None),
        TxnOp::put(
            online_key,
            online,
            Some(PutOptions::new().with_lease(lease)),
        ),
    ]);
    if !client.txn(txn).await?.succeeded() {
        // The unused lease runs out by itself if the revocation fails.
        let _ = client.lease_revoke(lease).await;
        return Err(taken());
    }
    Ok(lease)
}

/// Returns true if an online key's value names `instance`; an empty
/// instance matches none.
fn same_instance(value: &[u8], instance: &str) -> bool {
    !instance.is_empty()
        && serde_json::from_slice::<serde_json::Value>(value)
            .is_ok_and(|online| online["instance"] == instance)
}

/// Keeps a member's lease alive until aborted, taking a new lease and
/// writing the online key again when the old one was lost.
async fn keep_registered(
    mut client: Client,
    layout: Layout,
    mut reach: Reachability,
    record: String,
    instance: String,
    ttl: i64,
    lease: Arc<AtomicI64>,
) {
    let interval = Duration::from_millis((ttl as u64 * 1000 / 3).max(300));
    let mut backoff = Backoff::new();
    loop {
        let lease_id = lease.load(Ordering::SeqCst);
        let error = match keep_alive(&mut client, lease_id, interval, &mut reach).await {
            KeepAliveEnd::Expired => {
                tracing::warn!(member = %reach.member, "member lease expired; registering again");
                let name = &reach.member;
                let endpoints = &reach.endpoints;
                let registered = grant_and_put(
                    client.clone(),
                    &layout,
                    endpoints,
                    name,
                    &record,
                    &instance,
                    ttl,
                );
                match registered.await {
                    Ok(id) => {
                        lease.store(id, Ordering::SeqCst);
                        reach.back();
                        backoff.reset();
                        continue;
                    }
                    Err(CallError::Etcd(error)) => error.to_string(),
                    Err(CallError::Store(error)) => error.to_string(),
                }
            }
            KeepAliveEnd::Failed(error) => error.to_string(),
        };
        reach.lost(&error);
        backoff.wait().await;
    }
}

/// Whether a member's keep-alive reaches the cluster store, so that an
/// outage is logged once when it starts and once when it ends, however
/// many attempts fail in between.
struct Reachability {
    member: String,
    endpoints: String,
    /// When the outage began, while there is one.
    lost_at: Option<std::time::Instant>,
}

impl Reachability {
    fn new(member: &str, endpoints: &str) -> Self {
        Self {
            member: member.to_string(),
            endpoints: endpoints.to_string(),
            lost_at: None,
        }
    }

    /// Notes a failed attempt; the first of an outage is a warning.
    fn lost(&mut self, error: &str) {
        if self.lost_at.is_some() {
            tracing::debug!(member = %self.member, %error, "cluster store still unreachable");
            return;
        }
        self.lost_at = Some(std::time::Instant::now());
        tracing::warn!(member = %self.member, endpoints = %self.endpoints, %error,
            "{} cannot reach the cluster store at {}: {error}; the zones stay served as they are, \
             and the connection is tried again every {} s at most",
            self.member, self.endpoints, MAX_BACKOFF.as_secs());
    }

    /// Notes a successful exchange; the first after an outage is logged.
    fn back(&mut self) {
        if let Some(lost_at) = self.lost_at.take() {
            tracing::info!(member = %self.member, endpoints = %self.endpoints,
                "{} reaches the cluster store at {} again after {} s",
                self.member, self.endpoints, lost_at.elapsed().as_secs());
        }
    }
}

enum KeepAliveEnd {
    /// etcd has no such lease any more.
    Expired,
    Failed(etcd_client::Error),
}

/// Refreshes `lease` every `interval` until it expires or the stream fails.
async fn keep_alive(
    client: &mut Client,
    lease: i64,
    interval: Duration,
    reach: &mut Reachability,
) -> KeepAliveEnd {
    let (mut keeper, mut responses) = match client.lease_keep_alive(lease).await {
        Ok(pair) => pair,
        Err(etcd_client::Error::LeaseKeepAliveError(_)) => return KeepAliveEnd::Expired,
        Err(error) => return KeepAliveEnd::Failed(error),
    };
    loop {
        tokio::time::sleep(interval).await;
        if let Err(error) = keeper.keep_alive().await {
            return KeepAliveEnd::Failed(error);
        }
        let answer = tokio::time::timeout(interval * 2, responses.message()).await;
        match answer {
            Ok(Ok(Some(response))) if response.ttl() > 0 => reach.back(),
            Ok(Ok(Some(_))) => return KeepAliveEnd::Expired,
            Ok(Ok(None)) => {
                return KeepAliveEnd::Failed(etcd_client::Error::LeaseKeepAliveError(
                    "keep-alive stream closed".to_string(),
                ))
            }
            Ok(Err(error)) => return KeepAliveEnd::Failed(error),
            Err(_) => {
                return KeepAliveEnd::Failed(etcd_client::Error::LeaseKeepAliveError(
                    "no keep-alive response in time".to_string(),
                ))
            }
        }
    }
}

/// Watches the prefix from `revision` on, forwarding changes to `sender`
/// until the receiver is gone; re-establishes the watch after failures.
async fn run_watch(
    mut client: Client,
    layout: Layout,
    mut revision: i64,
    sender: mpsc::Sender<Change>,
) {
    let mut backoff = Backoff::new();
    loop {
        match watch_once(&mut client, &layout, &mut revision, &sender, &mut backoff).await {
            Ok(()) => return,
            Err(error) => {
                tracing::debug!(%error, revision, "cluster store watch interrupted; reconnecting");
            }
        }
        backoff.wait().await;
    }
}

/// Runs one watch stream. Returns `Ok` when the receiver is gone, `Err`
/// when the stream ended or failed. `revision` advances past every event forwarded.
async fn watch_once(
    client: &mut Client,
    layout: &Layout,
    revision: &mut i64,
    sender: &mpsc::Sender<Change>,
    backoff: &mut Backoff,
) -> Result<(), etcd_client::Error> {
    let options = WatchOptions::new()
        .with_prefix()
        .with_start_revision(*revision);
    let mut stream = client.watch(layout.prefix.clone(), Some(options)).await?;
    while let Some(response) = stream.message().await? {
        if response.created() {
            backoff.reset();
        }
        if response.canceled() {
            if response.compact_revision() > *revision {
                *revision = response.compact_revision();
                if sender.send(Change::Resync).is_err() {
                    return Ok(());
                }
            }
            return Err(etcd_client::Error::WatchError(format!(
                "watch canceled: {}",
                response.cancel_reason()
            )));
        }
        for event in response.events() {
            let Some(kv) = event.kv() else { continue };
            *revision = (*revision).max(kv.mod_revision() + 1);
            let key = String::from_utf8_lossy(kv.key());
            let Some(change) = layout.change(&key) else {
                continue;
            };
            tracing::trace!(
                ?change,
                deleted = matches!(event.event_type(), EventType::Delete)
            );
            if sender.send(change).is_err() {
                return Ok(());
            }
        }
    }
    Err(etcd_client::Error::WatchError(
        "watch stream ended".to_string(),
    ))
}

/// Pauses between reconnection attempts: 100 ms, doubling up to 2 s.
struct Backoff {
    next: Duration,
}

impl Backoff {
    fn new() -> Self {
        Self {
            next: Duration::from_millis(100),
        }
    }

    fn reset(&mut self) {
        *self = Self::new();
    }

    async fn wait(&mut self) {
        tokio::time::sleep(self.next).await;
        self.next = (self.next * 2).min(MAX_BACKOFF);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_names_keys_under_prefix() {
        let layout = Layout::new("/km");
        assert_eq!(layout.prefix, "/km/");
        assert_eq!(layout.key("zones", "example."), "/km/zones/example.");
        assert_eq!(layout.zone_key("a/b.", "k%1"), "/km/keys/a%2Fb./k%251");
        assert_eq!(layout.dir("online"), "/km/online/");
    }

    #[test]
    fn layout_tells_which_zone_changed() {
        let layout = Layout::new(DEFAULT_PREFIX);
        let zone = |zone: &str, part| {
            Some(Change::Zone {
                zone: zone.to_string(),
                part,
            })
        };
        assert_eq!(
            layout.change("/keymaster/keys/a%2Fb./k1"),
            zone("a/b.", ZonePart::Keys)
        );
        assert_eq!(
            layout.change("/keymaster/roles/example."),
            zone("example.", ZonePart::Role)
        );
        assert_eq!(
            layout.change("/keymaster/engine/example."),
            zone("example.", ZonePart::EngineState)
        );
        assert_eq!(
            layout.change("/keymaster/online/ns1"),
            Some(Change::Member {
                name: "ns1".to_string()
            })
        );
        assert_eq!(
            layout.change("/keymaster/content/example."),
            zone("example.", ZonePart::Content)
        );
        assert_eq!(
            layout.change("/keymaster/signing/example."),
            zone("example.", ZonePart::Signing)
        );
        assert_eq!(layout.change("/keymaster/meta/x"), None);
        assert_eq!(layout.change("/other/zones/example."), None);
    }

    #[test]
    fn components_round_trip() {
        for text in ["example.", "a/b", "100%", "%2F", "x/%25/y"] {
            assert_eq!(decode_component(&encode_component(text)), text);
        }
    }
}
