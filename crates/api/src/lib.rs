//! Request and response types of the control API.
//!
//! The daemon serves these as JSON over HTTP and the `keymaster` CLI sends
//! and prints them; keeping them in one crate keeps both sides in step.
//! Times are UNIX seconds; durations are seconds.

use serde::{Deserialize, Serialize};

/// Path prefix of every control API route.
pub const API_PREFIX: &str = "/api/v1";

/// Storage of a zone's data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Storage {
    /// A master file on this server; the zone has one primary.
    File,
    /// The etcd cluster; every member is a primary.
    Cluster,
}

/// Whether the Key Master of a zone is reachable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyMasterStatus {
    Online,
    Offline,
    /// No Key Master is assigned.
    None,
}

/// One zone as listed by `zone list` and shown by `zone show`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZoneInfo {
    pub zone: String,
    pub storage: Storage,
    /// Master file of a file-backed zone.
    pub file: Option<String>,
    pub is_signed: bool,
    pub policy: Option<String>,
    pub key_master_server: Option<String>,
    pub is_key_master: bool,
    pub key_master_status: KeyMasterStatus,
    pub key_master_epoch: u64,
    /// SOA serial of the version being served.
    pub serial: Option<u32>,
    /// Whether the zone is served.
    pub loaded: bool,
    /// Last load, signing or key error, if the zone is not in its intended state.
    pub error: Option<String>,
    pub denial_of_existence: Option<String>,
    pub nsec3_iterations: Option<u16>,
    pub nsec3_salt: Option<String>,
    pub nsec3_opt_out: Option<bool>,
    pub dnskey_ttl: Option<u64>,
    pub ds_ttl: Option<u64>,
    pub signature_validity: Option<u64>,
    pub signature_refresh: Option<u64>,
    pub signature_inception_offset: Option<u64>,
    /// Zone propagation delay: how long a change takes to reach every
    /// secondary and cache.
    pub propagation_time: Option<u64>,
    pub secure_delegation_polling_period: Option<u64>,
    pub parent_has_secure_delegation: Option<bool>,
    /// UNIX time of the last full signing.
    pub last_signed: Option<u64>,
    /// Earliest signature expiration in the served version.
    pub next_signature_expiry: Option<u64>,
    pub records: Option<usize>,
    /// Conditions key management waits for, soonest end first.
    #[serde(default)]
    pub key_waits: Vec<KeyWait>,
    /// DS records each parent server returned at the last DS check.
    #[serde(default)]
    pub parent_ds_servers: Vec<String>,
    /// When key management is next due, UNIX seconds.
    #[serde(default)]
    pub next_key_event: Option<u64>,
    /// For a cluster zone, whether this server can sign it, which needs
    /// the cluster key.
    #[serde(default)]
    pub can_sign: Option<bool>,
    /// Reason key management does not run, such as an offline Key Master.
    #[serde(default)]
    pub key_management: Option<String>,
    /// The member a server without the cluster key transferred the served
    /// signed version from; `None` for a version it signed itself or saved.
    #[serde(default)]
    pub fetched_from: Option<String>,
}

/// Something a zone's key management waits for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyWait {
    pub what: String,
    pub since: u64,
    /// When the wait ends, if it ends by time alone.
    pub until: Option<u64>,
}

/// The role a key plays.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyRole {
    Ksk,
    Zsk,
    Csk,
}

/// One of the four per-record states of a key (Mekking et al.).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordState {
    Hidden,
    Rumoured,
    Omnipresent,
    Unretentive,
}

impl RecordState {
    /// Returns true if the record is in the zone (rumoured or
    /// omnipresent), as opposed to never published or withdrawn.
    pub fn in_zone(self) -> bool {
        matches!(self, Self::Rumoured | Self::Omnipresent)
    }

    /// Returns the state's name as the API and the CLI print it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Hidden => "hidden",
            Self::Rumoured => "rumoured",
            Self::Omnipresent => "omnipresent",
            Self::Unretentive => "unretentive",
        }
    }
}

/// One key as listed by `key list`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyInfo {
    pub id: String,
    pub key_tag: u16,
    pub role: KeyRole,
    pub algorithm: u8,
    pub algorithm_name: String,
    pub bits: u32,
    pub dnskey_state: RecordState,
    pub krrsig_state: RecordState,
    pub zrrsig_state: RecordState,
    pub ds_state: RecordState,
    pub created: u64,
    pub published: Option<u64>,
    pub active: Option<u64>,
    pub retired: Option<u64>,
    pub removed: Option<u64>,
    /// Next planned transitions, soonest first.
    pub next_transitions: Vec<PlannedTransition>,
    /// Key store of the private key: `encrypted-file` or `pkcs11`.
    pub key_store: String,
}

/// A transition a key is expected to make.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedTransition {
    pub at: u64,
    pub event: String,
}

/// The Key Master role record of a zone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleInfo {
    pub zone: String,
    pub storage: Storage,
    pub key_master: Option<String>,
    pub epoch: u64,
    pub is_key_master: bool,
    pub key_master_status: KeyMasterStatus,
    /// UNIX time the role last changed.
    pub changed: Option<u64>,
}

/// A server as listed by `server list`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerInfo {
    pub name: String,
    pub online: bool,
    pub can_sign: bool,
    pub dns_addresses: Vec<String>,
    pub control_address: Option<String>,
    pub version: String,
    pub key_master_of: Vec<String>,
}

/// DS and DNSKEY records to hand to the parent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DsInfo {
    pub zone: String,
    pub ds: Vec<String>,
    pub dnskey: Vec<String>,
    /// Reason the records are not yet the set the parent must serve.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Body of `POST /zones/{zone}/sign`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignRequest {
    pub key_master: Option<String>,
    pub policy: Option<String>,
}

/// Body of `POST /zones/{zone}/unsign`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnsignRequest {
    /// Operator's statement that the parent has no DS for the zone and
    /// never had one, so the zone can go unsigned at once.
    #[serde(default)]
    pub no_parent_ds: bool,
}

/// Body of `POST /zones/{zone}/role/{action}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleRequest {
    pub server: Option<String>,
    #[serde(default)]
    pub force: bool,
    /// UNIX time after which the requester no longer waits for the response, and
    /// a request that gets its turn later changes nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<u64>,
    /// Epoch of the role record a forwarded transfer was decided on; the
    /// Key Master rejects it once the role has moved since.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<u64>,
}

/// Body of `POST /zones`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddZoneRequest {
    pub zone: String,
    /// Master file of a file-backed zone, on the server.
    pub file: Option<String>,
    #[serde(default)]
    pub cluster: bool,
    /// First records of a cluster zone as master-file text, read by the
    /// CLI; `$INCLUDE` is rejected in it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
}

/// Body of `POST /zones/{zone}/import`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportZoneRequest {
    /// Records that replace the zone's, as master-file text read by the
    /// CLI; `$INCLUDE` is rejected in it.
    pub content: String,
}

/// Body of `POST /zones/{zone}/keys`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddKeyRequest {
    pub role: KeyRole,
    pub algorithm: Option<String>,
    pub bits: Option<u32>,
}

/// Body of `POST /zones/{zone}/keys/import`: a private key read from BIND
/// key files by the CLI. `Debug` omits the key.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportKeyRequest {
    /// Owner name of the DNSKEY in the `.key` file, which must be the zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// DNSKEY flags from the `.key` file.
    pub flags: u16,
    pub algorithm: u8,
    /// Unencrypted PKCS #8 document, base64-encoded.
    pub pkcs8: String,
}

impl std::fmt::Debug for ImportKeyRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImportKeyRequest")
            .field("owner", &self.owner)
            .field("flags", &self.flags)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

/// Error body of every failed request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
}

/// Status of the daemon, `GET /status`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusInfo {
    pub server: String,
    pub version: String,
    pub started: u64,
    pub zones: usize,
    pub dns_addresses: Vec<String>,
}
