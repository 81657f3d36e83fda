//! The inputs the caller hands the engine and the results it hands back.

use std::collections::BTreeMap;

use keymaster_api::KeyRole;
use serde::{Deserialize, Serialize};

use crate::policy::DenialSettings;
use crate::state::{EngineState, Request};

/// The state of one key's DS as the parent serves it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ParentDs {
    /// Every parent server serves it.
    AtAllServers,
    /// No parent server serves it.
    Gone,
    /// Some parent servers serve it and some do not.
    Mixed,
}

/// The facts the server observed since the last step.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observations {
    /// Parent DS state per key id; keys missing from the map are unknown.
    pub parent_ds: BTreeMap<String, ParentDs>,
    /// Key tags of DS records at the parent that match no key of the ring.
    pub unknown_ds_tags: Vec<u16>,
    /// Whether the parent has any DS for the zone; `None` when not checked,
    /// which the engine treats as a secure delegation.
    pub secure_delegation: Option<bool>,
    /// TTL of the parent's DS RRset, when seen.
    pub parent_ds_ttl: Option<u64>,
    /// Operator requests received since the last step.
    pub requests: Vec<Request>,
    /// Whether the key store can be read.
    pub key_store_readable: bool,
}

impl Default for Observations {
    fn default() -> Self {
        Self {
            parent_ds: BTreeMap::new(),
            unknown_ds_tags: Vec::new(),
            secure_delegation: None,
            parent_ds_ttl: None,
            requests: Vec::new(),
            key_store_readable: true,
        }
    }
}

/// A change the caller must make. Every action that changes signed data
/// means the caller publishes a new zone version with a higher serial.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "action")]
pub enum Action {
    /// Generate a key and report its key tag with `EngineState::set_key_tag`.
    GenerateKey {
        id: String,
        role: KeyRole,
        algorithm: u8,
    },
    PublishDnskey {
        id: String,
    },
    UnpublishDnskey {
        id: String,
    },
    /// Sign the DNSKEY RRset with the key.
    StartSigningDnskey {
        id: String,
    },
    StopSigningDnskey {
        id: String,
    },
    /// Sign all zone data with the key, replacing no other signature.
    StartSigningZone {
        id: String,
    },
    /// Drop the key's signatures from all zone data.
    StopSigningZone {
        id: String,
    },
    /// Set the REVOKE bit of the key (RFC 5011 section 2.1); the key keeps
    /// signing the DNSKEY RRset. Its key tag changes, so the caller reports
    /// the new tag with `EngineState::set_key_tag`.
    SetRevoke {
        id: String,
    },
    /// Delete the key from the key store; it has left the zone.
    RemoveKey {
        id: String,
    },
    /// Publish CDS and CDNSKEY RRsets for exactly these keys; an empty list
    /// removes both RRsets.
    PublishCds {
        ids: Vec<String>,
    },
    /// Publish the CDS and CDNSKEY delete form (RFC 8078 section 4): one
    /// CDS `0 0 0 00` and one CDNSKEY `0 3 0 AA==`, in place of any other
    /// CDS and CDNSKEY records. A later `PublishCds` replaces it.
    PublishCdsDelete,
    /// Publish the zone unsigned: no DNSKEY, RRSIG, NSEC, NSEC3, CDS or
    /// CDNSKEY records. The engine returns it only once no cache can still
    /// have a DS for the zone.
    Unsign,
    /// Ask the parent to serve DS records for exactly these keys. An empty
    /// list requests the removal of every DS.
    RequestDs {
        ids: Vec<String>,
        appear: Vec<String>,
        disappear: Vec<String>,
    },
    /// Build the denial-of-existence chain with these settings, replacing
    /// the old chain in one zone version (one NSEC3PARAM at a time).
    ChangeDenial {
        to: DenialSettings,
    },
    /// Publish the DNSKEY RRset and zone data with these TTLs.
    PublishTtls {
        dnskey_ttl: u64,
        max_zone_ttl: u64,
    },
    /// Re-sign every RRset of the zone with the current signing keys.
    ResignZone,
    /// The key store cannot be read: key management of the zone stops and
    /// the served zone stays as it is. Sent once per outage.
    HaltKeyManagement,
    /// The key store can be read again and key management resumes.
    ResumeKeyManagement {
        halted_since: u64,
    },
}

/// Something the engine waits for, for `key list` and `zone show`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Wait {
    pub what: String,
    pub since: u64,
    /// When the wait ends, if it ends by time alone.
    pub until: Option<u64>,
}

/// The result of one step.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    pub state: EngineState,
    pub actions: Vec<Action>,
    /// Earliest time the engine wants to be called again.
    pub next_due: Option<u64>,
    pub waiting: Vec<Wait>,
}
