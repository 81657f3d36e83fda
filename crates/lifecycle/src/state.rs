//! The engine's persistent state: the key ring with the four record states
//! of every key, pending operator requests, denial settings and the TTLs
//! last published.

use keymaster_api::{KeyRole, RecordState};
use serde::{Deserialize, Serialize};

use crate::policy::DenialSettings;

/// DNSKEY flags bit for a key that signs the DNSKEY RRset (RFC 4034 section 2.1.1).
pub const FLAG_SEP: u16 = 0x0001;
/// DNSKEY flags bit of a zone key (RFC 4034 section 2.1.1).
pub const FLAG_ZONE: u16 = 0x0100;
/// DNSKEY flags bit of a revoked key (RFC 5011 section 7).
pub const FLAG_REVOKE: u16 = 0x0080;

/// The direction a key is heading: into the zone or out of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Goal {
    Omnipresent,
    Hidden,
}

/// One record of a key in one of the four states, with the time it entered it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub state: RecordState,
    /// UNIX time of the last change of `state`.
    pub since: u64,
}

impl Record {
    /// A record that was never published.
    pub fn hidden() -> Self {
        Self {
            state: RecordState::Hidden,
            since: 0,
        }
    }

    /// Moves the record to `state` at `now`.
    pub fn set(&mut self, state: RecordState, now: u64) {
        self.state = state;
        self.since = now;
    }
}

/// The four records of a key that caches can hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordKind {
    /// The key's DNSKEY record.
    Dnskey,
    /// Its signatures over the DNSKEY RRset.
    Krrsig,
    /// Its signatures over the other zone data.
    Zrrsig,
    /// The DS record for it at the parent.
    Ds,
}

/// One key of the key ring.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Key {
    /// Stable identifier; keys are always looked up by it because key tags
    /// collide.
    pub id: String,
    pub key_tag: u16,
    pub algorithm: u8,
    pub role: KeyRole,
    /// DNSKEY flags as published, including the REVOKE bit once set.
    pub flags: u16,
    pub created: u64,
    /// First publication of the DNSKEY, once reached.
    pub published: Option<u64>,
    /// Start of signing, once reached.
    pub active: Option<u64>,
    /// Time the engine decided to replace the key.
    pub retired: Option<u64>,
    /// Time the last record of the key left the zone.
    pub removed: Option<u64>,
    pub goal: Goal,
    pub dnskey: Record,
    pub krrsig: Record,
    pub zrrsig: Record,
    pub ds: Record,
    /// Time the parent was seen serving the DS at all its servers (or the
    /// operator confirmed it), while the DS is rumoured.
    pub ds_seen: Option<u64>,
    /// Time the parent was seen serving no DS for the key, while the DS is
    /// unretentive.
    pub ds_gone: Option<u64>,
    /// Time the REVOKE bit was set.
    pub revoked: Option<u64>,
    /// A key added by hand that waits to succeed the current key of its role.
    #[serde(default)]
    pub standby: bool,
}

impl Key {
    /// Creates a key that has no record in the zone yet.
    pub fn new(id: String, key_tag: u16, algorithm: u8, role: KeyRole, now: u64) -> Self {
        let flags = match role {
            KeyRole::Zsk => FLAG_ZONE,
            KeyRole::Ksk | KeyRole::Csk => FLAG_ZONE | FLAG_SEP,
        };
        Self {
            id,
            key_tag,
            algorithm,
            role,
            flags,
            created: now,
            published: None,
            active: None,
            retired: None,
            removed: None,
            goal: Goal::Omnipresent,
            dnskey: Record::hidden(),
            krrsig: Record::hidden(),
            zrrsig: Record::hidden(),
            ds: Record::hidden(),
            ds_seen: None,
            ds_gone: None,
            revoked: None,
            standby: false,
        }
    }

    /// Returns true if the key signs the DNSKEY RRset and has a DS at the parent.
    pub fn is_sep(&self) -> bool {
        matches!(self.role, KeyRole::Ksk | KeyRole::Csk)
    }

    /// Returns true if the key signs zone data other than the DNSKEY RRset.
    pub fn signs_zone(&self) -> bool {
        matches!(self.role, KeyRole::Zsk | KeyRole::Csk)
    }

    /// Returns a record by kind.
    pub fn record(&self, kind: RecordKind) -> Record {
        match kind {
            RecordKind::Dnskey => self.dnskey,
            RecordKind::Krrsig => self.krrsig,
            RecordKind::Zrrsig => self.zrrsig,
            RecordKind::Ds => self.ds,
        }
    }

    /// Returns a record by kind for changing it.
    pub fn record_mut(&mut self, kind: RecordKind) -> &mut Record {
        match kind {
            RecordKind::Dnskey => &mut self.dnskey,
            RecordKind::Krrsig => &mut self.krrsig,
            RecordKind::Zrrsig => &mut self.zrrsig,
            RecordKind::Ds => &mut self.ds,
        }
    }

    /// The record kinds the key's role uses.
    pub fn kinds(&self) -> &'static [RecordKind] {
        match self.role {
            KeyRole::Zsk => &[RecordKind::Dnskey, RecordKind::Zrrsig],
            KeyRole::Ksk => &[RecordKind::Dnskey, RecordKind::Krrsig, RecordKind::Ds],
            KeyRole::Csk => &[
                RecordKind::Dnskey,
                RecordKind::Krrsig,
                RecordKind::Zrrsig,
                RecordKind::Ds,
            ],
        }
    }

    /// Returns true if every record of the key is hidden.
    pub fn is_gone(&self) -> bool {
        self.kinds()
            .iter()
            .all(|kind| self.record(*kind).state == RecordState::Hidden)
    }

    /// Returns true if every record the key's role uses is omnipresent.
    pub fn is_established(&self) -> bool {
        self.kinds()
            .iter()
            .all(|kind| self.record(*kind).state == RecordState::Omnipresent)
    }
}

/// A request from an operator, kept until the engine can act on it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "request")]
pub enum Request {
    /// Roll the keys of a role now.
    Rollover { role: KeyRole },
    /// Confirm that the parent's DS RRset now matches the requested change
    /// (used with `parent_ds_check = manual`).
    Step,
    /// Replace one key now.
    Retire { id: String },
    /// Turn DNSSEC off (RFC 8078 section 4): ask the parent to remove every
    /// DS, then publish the zone unsigned once no cache can hold a DS.
    GoInsecure,
    /// Stop going insecure before the zone is published unsigned; the DS
    /// records of the current keys are requested again.
    CancelInsecure,
    /// Sign the zone again after it was published unsigned, with new keys.
    Sign,
}

/// Progress of turning DNSSEC off for a zone whose parent may serve a DS.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GoingInsecure {
    /// Time of the request, when the CDS and CDNSKEY delete form was
    /// published and the parent was asked to remove every DS.
    pub requested: u64,
    /// Time the parent was seen serving no DS at any server, or the
    /// operator confirmed it with `Request::Step`.
    pub ds_gone: Option<u64>,
    /// Largest DS TTL in effect at the parent since the request, in seconds.
    #[serde(default)]
    pub ds_ttl: u64,
}

/// A TTL as published, with the older value still in caches until a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishedTtl {
    pub current: u64,
    /// The previous TTL and the time until which caches may hold records
    /// published with it.
    pub previous: Option<(u64, u64)>,
}

impl PublishedTtl {
    /// Returns the TTL to use in waits at `now`: the larger of the current
    /// one and a previous one that caches may still hold.
    pub fn effective(&self, now: u64) -> u64 {
        match self.previous {
            Some((ttl, until)) if now < until => ttl.max(self.current),
            _ => self.current,
        }
    }

    /// Records a change to `ttl` at `now`; records published with the old
    /// value leave caches by `now + old + propagation`.
    pub fn change(&mut self, ttl: u64, now: u64, propagation: u64) {
        if ttl == self.current {
            return;
        }
        let old = self.effective(now);
        self.previous = Some((old, now + old + propagation));
        self.current = ttl;
    }
}

/// Everything the engine remembers between steps. The server stores it as
/// JSON after every step.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineState {
    pub keys: Vec<Key>,
    /// Number of keys the engine has generated, used to make new key ids.
    pub generated: u64,
    pub requests: Vec<Request>,
    /// Denial-of-existence settings of the signed zone. A change takes
    /// effect in one zone version, so no setting is ever pending; states
    /// stored with a `denial_pending` field still load.
    pub denial: Option<DenialSettings>,
    pub dnskey_ttl: Option<PublishedTtl>,
    pub max_zone_ttl: Option<PublishedTtl>,
    /// DS TTL last observed at the parent.
    pub parent_ds_ttl: Option<PublishedTtl>,
    /// Time the key store was first found unreadable, while it stays so.
    pub key_store_unreadable_since: Option<u64>,
    /// Key ids whose DS records the engine last asked the parent to serve.
    pub ds_requested: Vec<String>,
    /// Key ids of the CDS and CDNSKEY RRsets last published.
    pub cds_published: Vec<String>,
    /// Progress of going insecure, from `Request::GoInsecure` until the
    /// zone is published unsigned or the request is cancelled.
    #[serde(default)]
    pub going_insecure: Option<GoingInsecure>,
    /// Time the zone was published unsigned (`Action::Unsign`). While set,
    /// steps do nothing until a `Request::Sign`.
    #[serde(default)]
    pub unsigned_since: Option<u64>,
}

impl EngineState {
    /// Returns true if the engine published the zone unsigned and no
    /// `Request::Sign` has come since.
    pub fn is_unsigned(&self) -> bool {
        self.unsigned_since.is_some()
    }

    /// Returns a key by id.
    pub fn key(&self, id: &str) -> Option<&Key> {
        self.keys.iter().find(|key| key.id == id)
    }

    /// Returns a key by id for changing it.
    pub fn key_mut(&mut self, id: &str) -> Option<&mut Key> {
        self.keys.iter_mut().find(|key| key.id == id)
    }

    /// Adds a key imported or generated by hand. A key that is already
    /// published keeps its record states; a key with no record in the zone
    /// waits as the successor of the current key of its role, so adding it
    /// starts no extra rollover.
    pub fn add_key(&mut self, mut key: Key) {
        if key.is_gone() && key.goal == Goal::Omnipresent {
            key.standby = true;
        }
        self.keys.push(key);
    }

    /// Records the key tag of a key after its flags changed (the REVOKE bit
    /// changes the tag, and only the caller has the key data to compute it).
    pub fn set_key_tag(&mut self, id: &str, key_tag: u16) -> bool {
        match self.key_mut(id) {
            Some(key) => {
                key.key_tag = key_tag;
                true
            }
            None => false,
        }
    }
}
