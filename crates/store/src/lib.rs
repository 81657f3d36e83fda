//! Persistent state of keymaster behind one trait.
//!
//! The [`Store`] contains the state that must survive a restart: the zones this server
//! knows with their settings, every key's metadata and encrypted private
//! key, the Key Master role record of each zone and the rollover engine's
//! state. Every change goes through [`Store::commit`] as one
//! [`Transaction`]: all of its operations land or none does, and a
//! transaction carrying a [`Fence`] lands only while the zone's role record
//! still names the same Key Master and epoch. That fencing is what stops a
//! former Key Master from acting after the role moved.
//!
//! [`SqliteStore`] is the local backend and [`EtcdStore`] the cluster
//! backend, shared by every server of a cluster; [`RoutedStore`] joins
//! them and keeps each zone in the backend its storage names. Only the
//! cluster backend keeps a zone's content (its records as master-file
//! text), because a file zone's content is its master file. Private keys arrive here
//! already sealed under the key-encryption key; the store never receives them in
//! clear.

pub mod etcd;
mod routed;
mod sqlite;

use keymaster_api::{KeyRole, RecordState, Storage};
use serde::{Deserialize, Serialize};

pub use etcd::EtcdStore;
pub use routed::RoutedStore;
pub use sqlite::SqliteStore;

/// Largest zone content the cluster store takes, in octets: etcd refuses
/// requests over 1.5 MiB by default, and the transaction carries more than
/// the text.
pub const MAX_ZONE_CONTENT: usize = 1_400_000;

/// A zone as this server remembers it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZoneRecord {
    /// Zone apex in presentation format with a trailing dot.
    pub name: String,
    pub storage: Storage,
    /// Master file of a file-backed zone.
    pub file: Option<String>,
    /// Whether the zone should be signed.
    pub signed: bool,
    /// Policy name used when the zone is signed.
    pub policy: String,
    /// Highest SOA serial ever published, so serials never go backwards.
    pub last_serial: Option<u32>,
    /// UNIX time of the last full signing.
    pub last_signed: Option<u64>,
    /// Whether the parent is believed to hold a DS for this zone.
    #[serde(default)]
    pub parent_has_ds: Option<bool>,
    /// Whether the zone comes from the configuration file or flags, rather
    /// than from `zone add`.
    #[serde(default)]
    pub from_config: bool,
    /// The policy a signed cluster zone is signed with, as JSON, written
    /// by `zone sign` so that every member signs with the same settings
    /// whatever its own configuration defines. `None` for file zones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_definition: Option<String>,
}

/// Location of a private key.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum PrivateKey {
    /// PKCS#8 sealed with AES-256-GCM under the key-encryption key.
    EncryptedFile {
        #[serde(with = "hex_bytes")]
        sealed: Vec<u8>,
    },
    /// A key object on a PKCS#11 token.
    Pkcs11 { uri: String },
}

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::EncryptedFile { sealed } => {
                write!(f, "EncryptedFile({} octets sealed)", sealed.len())
            }
            Self::Pkcs11 { uri } => write!(f, "Pkcs11({uri})"),
        }
    }
}

/// A key's metadata and its sealed private key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredKey {
    pub zone: String,
    /// Stable identifier, unique within the zone; key tags can collide.
    pub id: String,
    pub key_tag: u16,
    pub role: KeyRole,
    pub algorithm: u8,
    pub bits: u32,
    /// DNSKEY RDATA in wire format, hex-encoded in storage.
    #[serde(with = "hex_bytes")]
    pub dnskey: Vec<u8>,
    pub private: PrivateKey,
    pub created: u64,
    pub published: Option<u64>,
    pub active: Option<u64>,
    pub retired: Option<u64>,
    pub removed: Option<u64>,
    pub dnskey_state: RecordState,
    pub krrsig_state: RecordState,
    pub zrrsig_state: RecordState,
    pub ds_state: RecordState,
}

/// The Key Master role record of a zone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleRecord {
    pub zone: String,
    pub key_master: String,
    /// Increases with every change of Key Master.
    pub epoch: u64,
    /// UNIX time of the last change.
    pub changed: u64,
}

/// The signing record of a signed cluster zone: what every member needs,
/// beside the zone's content, keys and key states, to sign the same
/// version byte for byte.
///
/// A new record is written in the same transaction as every change that
/// needs a new version: new content, a key state step, a signature
/// refresh. Members sign when it changes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SigningRecord {
    pub zone: String,
    /// SOA serial of the version.
    pub serial: u32,
    /// UNIX time the signature inception and expiration are counted from.
    pub time: u64,
    /// NSEC3 salt in hexadecimal, empty for none.
    pub nsec3_salt: String,
    /// Cause of this version, shown in logs only.
    #[serde(default)]
    pub reason: String,
}

/// The condition a fenced transaction is committed under.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fence {
    pub zone: String,
    pub key_master: String,
    pub epoch: u64,
}

/// One write in a transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Operation {
    PutZone(ZoneRecord),
    /// Replaces a zone record that must still be `expected`, so that a
    /// writer that changes some fields never undoes a concurrent change of
    /// the others.
    ReplaceZone {
        record: ZoneRecord,
        expected: ZoneRecord,
    },
    DeleteZone(String),
    PutKey(StoredKey),
    DeleteKey {
        zone: String,
        id: String,
    },
    /// Replaces the role record; `expected_epoch` must match the stored
    /// epoch (`None`: no record may exist yet).
    PutRole {
        role: RoleRecord,
        expected_epoch: Option<u64>,
    },
    /// Stores the rollover engine's state of a zone, opaque to the store.
    PutEngineState {
        zone: String,
        state: String,
    },
    /// Replaces a cluster zone's records, as master-file text with
    /// absolute names.
    PutZoneContent {
        zone: String,
        text: String,
    },
    /// Replaces a cluster zone's signing record; `expected_serial` must be
    /// the serial of the stored record (`None`: no record may exist yet),
    /// so that of two concurrent writers of a new version one loses.
    PutSigning {
        record: SigningRecord,
        expected_serial: Option<u32>,
    },
}

/// Operations that land together or not at all.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Transaction {
    pub fence: Option<Fence>,
    pub operations: Vec<Operation>,
}

impl Transaction {
    /// Creates an unfenced transaction.
    pub fn new() -> Self {
        Self::default()
    }

    /// Creates a transaction that lands only while `fence` holds.
    pub fn fenced(fence: Fence) -> Self {
        Self {
            fence: Some(fence),
            operations: Vec::new(),
        }
    }

    /// Appends an operation.
    pub fn push(mut self, operation: Operation) -> Self {
        self.operations.push(operation);
        self
    }
}

/// Error of a store operation.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("state database {path}: {operation} failed")]
    Database {
        path: String,
        operation: &'static str,
        #[source]
        source: rusqlite::Error,
    },
    #[error("state database {path}: stored {what} is unreadable")]
    Corrupt {
        path: String,
        what: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("zone {zone}: the Key Master role moved (expected {expected_server} at epoch {expected_epoch}, found {found})")]
    Fenced {
        zone: String,
        expected_server: String,
        expected_epoch: u64,
        found: String,
    },
    #[error("zone {zone}: role record changed concurrently (expected epoch {expected:?}, found {found:?})")]
    EpochMismatch {
        zone: String,
        expected: Option<u64>,
        found: Option<u64>,
    },
    /// The cluster store refused a request or answered with an error.
    #[error("cluster store {endpoints}: {operation} failed")]
    Etcd {
        endpoints: String,
        operation: &'static str,
        #[source]
        source: etcd_client::Error,
    },
    /// No answer from the cluster store in time. A commit that ends this
    /// way may or may not have landed.
    #[error("cluster store unreachable (timed out after {seconds} s): {operation} at {endpoints}")]
    Unreachable {
        endpoints: String,
        operation: &'static str,
        seconds: u64,
    },
    /// A value under the cluster store's prefix cannot be read back.
    #[error("cluster store {endpoints}: stored {what} at {key} is unreadable")]
    ClusterCorrupt {
        endpoints: String,
        key: String,
        what: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A commit kept losing to concurrent writes that did not move the
    /// role record's epoch.
    #[error(
        "cluster store {endpoints}: commit conflicted with concurrent writes {attempts} times"
    )]
    Contended { endpoints: String, attempts: u32 },
    /// The zone record changed since the writer read it.
    #[error("zone {zone}: its record changed concurrently; read it again and retry")]
    ZoneMoved { zone: String },
    /// The signing record changed since the writer read it.
    #[error("zone {zone}: the signing record changed concurrently (expected serial {expected:?}, found {found:?})")]
    SigningMoved {
        zone: String,
        expected: Option<u32>,
        found: Option<u32>,
    },
    /// A zone kept in the cluster store was used while no cluster store is
    /// connected.
    #[error("zone {zone} is kept in the cluster store, which this server is not connected to")]
    ClusterUnavailable { zone: String },
    /// A transaction touched zones of both backends.
    #[error("one transaction cannot change both zone {local} (local state database) and zone {cluster} (cluster store); commit them separately")]
    MixedStores { local: String, cluster: String },
    /// The backend does not keep this kind of record.
    #[error("the {backend} does not keep {what}")]
    Unsupported {
        backend: &'static str,
        what: &'static str,
    },
    /// Zone content larger than the cluster store takes.
    #[error("zone {zone}: its records take {size} octets as text, more than the {limit} octets the cluster store takes in one request")]
    TooLarge {
        zone: String,
        size: usize,
        limit: usize,
    },
    /// Another server is online under the member name this one registers.
    #[error("cluster store {endpoints}: another server is online as member {name}; give this server its own name with --name, or stop the other one")]
    NameTaken { endpoints: String, name: String },
    /// The cluster store connection could not be set up.
    #[error("cluster store: {what}")]
    ClusterSetup {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

/// Persistent state behind one interface, local or clustered.
pub trait Store: Send + Sync {
    /// Returns every zone.
    fn zones(&self) -> Result<Vec<ZoneRecord>, StoreError>;
    /// Returns one zone.
    fn zone(&self, name: &str) -> Result<Option<ZoneRecord>, StoreError>;
    /// Returns every key of a zone, oldest first.
    fn keys(&self, zone: &str) -> Result<Vec<StoredKey>, StoreError>;
    /// Returns a zone's role record.
    fn role(&self, zone: &str) -> Result<Option<RoleRecord>, StoreError>;
    /// Returns a zone's rollover engine state.
    fn engine_state(&self, zone: &str) -> Result<Option<String>, StoreError>;
    /// Returns a cluster zone's records as master-file text. Backends that
    /// keep no zone content refuse.
    fn zone_content(&self, _zone: &str) -> Result<Option<String>, StoreError> {
        Err(StoreError::Unsupported {
            backend: "local state database",
            what: "zone content",
        })
    }
    /// Returns a cluster zone's signing record. Backends that keep no
    /// zone content refuse.
    fn signing_record(&self, _zone: &str) -> Result<Option<SigningRecord>, StoreError> {
        Err(StoreError::Unsupported {
            backend: "local state database",
            what: "signing records",
        })
    }
    /// Applies a transaction atomically.
    fn commit(&self, transaction: Transaction) -> Result<(), StoreError>;
    /// Returns a value from the server's own settings.
    fn meta(&self, key: &str) -> Result<Option<String>, StoreError>;
    /// Sets a value in the server's own settings.
    fn set_meta(&self, key: &str, value: &str) -> Result<(), StoreError>;
}

mod hex_bytes {
    use data_encoding::HEXLOWER_PERMISSIVE;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&HEXLOWER_PERMISSIVE.encode(bytes))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(deserializer)?;
        HEXLOWER_PERMISSIVE
            .decode(text.as_bytes())
            .map_err(serde::de::Error::custom)
    }
}
