//! Published zones and the indexes the query path reads.
//!
//! A [`PublishedZone`] is one immutable version of a zone, built once when
//! the version is published. It stores the zone's nodes in the wire form
//! of [`wire`](crate::wire) and adds what answering needs without
//! searching the whole zone:
//!
//! - a hash map from each lower-case owner name to its entry, which also
//!   holds the *empty non-terminals* (names without records that have
//!   descendants with records) and marks zone cuts and occluded names;
//! - the NSEC chain in canonical order, for finding the NSEC that covers a
//!   name that does not exist;
//! - the NSEC3 parameters from NSEC3PARAM, the NSEC3 hashes sorted, and for
//!   each existing name the NSEC3 record that matches it, so that a
//!   negative answer hashes only the names that do not exist (the next
//!   closer name and the wildcard at the closest encloser);
//! - a table from the leading bits of a hash to its range in the sorted
//!   NSEC3 hashes. SHA-1 output is close to uniform, so the range contains a
//!   few hashes and finding the covering NSEC3 touches one or two cache
//!   lines instead of a binary search over the whole chain.
//!
//! A [`ZoneSet`] holds the published zones behind an atomic pointer swap:
//! readers never block and see either the old or the new set.
//!
//! Limitations: zones are keyed by their apex alone, so one ZoneSet holds
//! one class (the query path serves class IN). NSEC3 records whose
//! parameters differ from the apex NSEC3PARAM are ignored.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::num::NonZeroUsize;
use std::sync::Arc;

use arc_swap::ArcSwap;
use data_encoding::BASE32HEX_NOPAD;
use hashbrown::HashTable;
use keymaster_zone::name::MAX_NAME_LEN;
use keymaster_zone::zone::soa_minimum;
use keymaster_zone::{Class, Name, Node, NodeKind, Rtype, Zone};

use crate::nsec3::{Nsec3Params, MAX_ITERATIONS, NSEC3_SHA1, SHA1_LEN};
use crate::tsig::TsigKey;
use crate::wire::{append_node, WireNode};

/// The start of a node region in [`PublishedZone`]'s wire buffer. The
/// buffer starts with one unused octet, so no region starts at 0 and an
/// `Option<NodeRef>` takes no more room than the offset.
pub(crate) type NodeRef = NonZeroUsize;

/// The hasher of the name indexes. foldhash replaces the standard
/// library's SipHash, which took about 4% of the query path in a `perf`
/// profile. It is still seeded at random per index, so query names cannot
/// be chosen to collide.
type NameHasher = foldhash::fast::RandomState;

/// Maximum length of a key made by [`canonical_key_into`]: every octet
/// of a name may take two key octets.
pub(crate) const MAX_CANONICAL_KEY_LEN: usize = 2 * MAX_NAME_LEN;

/// Upper bound on the number of leading hash bits that index the NSEC3
/// range table; 2^16 entries of 4 octets are 256 KiB.
const MAX_NSEC3_INDEX_BITS: u32 = 16;

/// Error from [`PublishedZone::new`].
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("zone {zone} has no SOA record at its apex")]
    MissingSoa { zone: Name },
    #[error("zone {zone} has an NSEC3PARAM record that is too short")]
    MalformedNsec3Param { zone: Name },
    #[error("zone {zone} uses NSEC3 hash algorithm {algorithm}; only 1 (SHA-1) is defined")]
    UnsupportedNsec3Algorithm { zone: Name, algorithm: u8 },
    #[error("zone {zone} uses {iterations} NSEC3 iterations; at most 2500 are accepted")]
    TooManyIterations { zone: Name, iterations: u16 },
    #[error(
        "zone {zone}: the records of {name} take more than 4 GiB, or an RRset has more than \
         65535 records"
    )]
    NodeTooLarge { zone: Name, name: Name },
}

/// The position of a name relative to the zone's cuts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum EntryKind {
    Apex,
    Authoritative,
    /// A zone cut: the name owns an NS RRset below the apex.
    Cut,
    /// Below a zone cut or a DNAME: glue or data that is never answered.
    Occluded,
    EmptyNonTerminal,
}

/// The index data of one existing name.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Entry {
    /// The node's region, `None` for an empty non-terminal.
    pub(crate) node: Option<NodeRef>,
    /// The region that contains the name: the node's, or for an empty
    /// non-terminal a region without RRsets.
    region: NodeRef,
    pub(crate) kind: EntryKind,
    /// Index into the NSEC3 chain of the record whose hash matches the name.
    pub(crate) nsec3_match: Option<u32>,
    /// Index of the NSEC3 record that covers the name's hash when none
    /// matches it (names below an Opt-Out span).
    pub(crate) nsec3_cover: Option<u32>,
    /// True if the node owns a DNAME RRset with data.
    pub(crate) dname: bool,
}

/// The kind of proof the zone gives that names or types do not exist.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Denial {
    /// The zone is unsigned or has neither NSEC nor NSEC3PARAM at its apex.
    None,
    Nsec,
    Nsec3,
}

/// One published version of a zone, with the indexes the query path needs.
pub struct PublishedZone {
    origin: Name,
    origin_lower: Box<[u8]>,
    class: Class,
    serial: u32,
    /// Number of labels of the origin, not counting the root label.
    origin_labels: usize,
    /// The node regions, one after the other (see [`crate::wire`]).
    wire: Vec<u8>,
    /// The node regions with records, in the order of [`Zone::walk`]
    /// (canonical order), for zone transfers.
    nodes: Vec<NodeRef>,
    entries: NameIndex,
    apex: NodeRef,
    /// TTL of the SOA in negative answers (RFC 2308 section 5): the
    /// smaller of the SOA TTL and its MINIMUM field.
    negative_ttl: u32,
    denial: Denial,
    /// NSEC owners in canonical order as [`canonical_key_into`] encodes
    /// them, each with its node.
    nsec_chain: Vec<(Box<[u8]>, NodeRef)>,
    nsec3_params: Option<Nsec3Params>,
    /// NSEC3 owner hashes in ascending order, each with its node.
    nsec3_chain: Vec<([u8; SHA1_LEN], NodeRef)>,
    nsec3_index: Nsec3Index,
    /// Keys whose signed transfer requests are allowed for this zone alone,
    /// beside the keys of [`TransferAccess`](crate::TransferAccess).
    transfer_keys: Vec<TsigKey>,
}

impl std::fmt::Debug for PublishedZone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublishedZone")
            .field("origin", &self.origin)
            .field("serial", &self.serial)
            .field("nodes", &self.nodes.len())
            .field("denial", &self.denial)
            .finish()
    }
}

impl PublishedZone {
    /// Builds the indexes for `zone`.
    ///
    /// The zone must have an SOA at its apex. If the apex owns an
    /// NSEC3PARAM record, negative answers use the NSEC3 chain with those
    /// parameters; otherwise, if the apex owns an NSEC record, the NSEC
    /// chain; otherwise negative answers carry no proof.
    pub fn new(zone: Zone) -> Result<Self, PublishError> {
        let origin = zone.origin().clone();
        let serial = zone.serial().ok_or_else(|| PublishError::MissingSoa {
            zone: origin.clone(),
        })?;
        let nsec3_params = nsec3_params(&zone)?;

        // Store every node and split them into answerable names and NSEC3
        // records.
        let mut wire = vec![0u8];
        let mut nodes = Vec::with_capacity(zone.node_count());
        let mut entries = NameIndex::with_capacity(zone.node_count());
        let mut nsec_chain = Vec::new();
        let mut nsec3_chain = Vec::new();
        for (node, kind) in zone.walk() {
            let index = append_node(&mut wire, node)
                .ok()
                .and_then(NodeRef::new)
                .ok_or_else(|| PublishError::NodeTooLarge {
                    zone: origin.clone(),
                    name: node.name.clone(),
                })?;
            nodes.push(index);
            // A hashed owner name may also own other data (RFC 5155
            // section 7.2.8), in which case it is an ordinary name too.
            if let Some(hash) = nsec3_hash_of_owner(node, &origin, nsec3_params.as_ref()) {
                nsec3_chain.push((hash, index));
                if node.rrsets.len() == 1 {
                    continue;
                }
            }
            if node.has(Rtype::NSEC) && kind != NodeKind::Occluded {
                let mut key = [0u8; MAX_CANONICAL_KEY_LEN];
                let key = canonical_key_into(&mut key, node.name.as_wire());
                nsec_chain.push((Box::from(key), index));
            }
            let kind = match kind {
                NodeKind::Apex => EntryKind::Apex,
                NodeKind::Authoritative => EntryKind::Authoritative,
                NodeKind::Delegation => EntryKind::Cut,
                NodeKind::Occluded => EntryKind::Occluded,
            };
            let dname = node
                .rrset(Rtype::DNAME)
                .is_some_and(|rrset| !rrset.rdatas.is_empty());
            let entry = Entry {
                node: Some(index),
                region: index,
                kind,
                nsec3_match: None,
                nsec3_cover: None,
                dname,
            };
            entries.insert(&wire, entry);
        }
        nsec3_chain.sort_unstable_by_key(|(hash, _)| *hash);
        nsec_chain.sort_unstable();

        // Empty non-terminals below a cut or a DNAME are occluded too.
        for name in zone.empty_non_terminals() {
            let kind = if is_occluded(&entries, &wire, &name, &origin) {
                EntryKind::Occluded
            } else {
                EntryKind::EmptyNonTerminal
            };
            let empty = Node {
                name: name.clone(),
                rrsets: Vec::new(),
            };
            let region = append_node(&mut wire, &empty)
                .ok()
                .and_then(NodeRef::new)
                .ok_or_else(|| PublishError::NodeTooLarge {
                    zone: origin.clone(),
                    name: name.clone(),
                })?;
            let entry = Entry {
                node: None,
                region,
                kind,
                nsec3_match: None,
                nsec3_cover: None,
                dname: false,
            };
            entries.insert(&wire, entry);
        }
        wire.shrink_to_fit();

        let apex = entries
            .get(&wire, &lower_wire(&origin))
            .and_then(|entry| entry.node)
            .ok_or_else(|| PublishError::MissingSoa {
                zone: origin.clone(),
            })?;
        let apex_node = WireNode::new(&wire[apex.get()..]);
        let negative_ttl = negative_ttl(apex_node).ok_or_else(|| PublishError::MissingSoa {
            zone: origin.clone(),
        })?;
        let denial = if nsec3_params.is_some() {
            Denial::Nsec3
        } else if apex_node.has(Rtype::NSEC) {
            Denial::Nsec
        } else {
            Denial::None
        };

        // Link each existing name to the NSEC3 record that matches it.
        if let Some(params) = &nsec3_params {
            for entry in entries.table.iter_mut() {
                if entry.kind == EntryKind::Occluded {
                    continue;
                }
                let hash = params.hash(WireNode::new(&wire[entry.region.get()..]).name());
                match nsec3_chain.binary_search_by(|probe| probe.0.cmp(&hash)) {
                    Ok(pos) => entry.nsec3_match = Some(pos as u32),
                    Err(pos) => entry.nsec3_cover = covering_index(pos, nsec3_chain.len()),
                }
            }
        }

        let nsec3_index = Nsec3Index::new(&nsec3_chain);
        Ok(Self {
            origin_lower: lower_wire(&origin),
            origin_labels: origin.label_count(),
            origin,
            class: zone.class(),
            serial,
            wire,
            nodes,
            entries,
            apex,
            negative_ttl,
            denial,
            nsec_chain,
            nsec3_params,
            nsec3_chain,
            nsec3_index,
            transfer_keys: Vec::new(),
        })
    }

    /// Allows transfers of this zone to requests signed with `key`, from
    /// any address, as a key of [`TransferAccess`](crate::TransferAccess)
    /// allows them for every zone.
    pub fn allow_transfer_key(&mut self, key: TsigKey) {
        if !self.transfer_keys.contains(&key) {
            self.transfer_keys.push(key);
        }
    }

    /// Returns the keys that [`PublishedZone::allow_transfer_key`] added.
    pub fn transfer_keys(&self) -> &[TsigKey] {
        &self.transfer_keys
    }

    /// Returns the zone apex.
    pub fn origin(&self) -> &Name {
        &self.origin
    }

    /// Returns the class of the zone.
    pub fn class(&self) -> Class {
        self.class
    }

    /// Returns the SOA serial of this version.
    pub fn serial(&self) -> u32 {
        self.serial
    }

    pub(crate) fn origin_lower(&self) -> &[u8] {
        &self.origin_lower
    }

    pub(crate) fn origin_labels(&self) -> usize {
        self.origin_labels
    }

    pub(crate) fn negative_ttl(&self) -> u32 {
        self.negative_ttl
    }

    pub(crate) fn denial(&self) -> Denial {
        self.denial
    }

    pub(crate) fn nsec3_params(&self) -> Option<&Nsec3Params> {
        self.nsec3_params.as_ref()
    }

    /// Returns the entry of a name given in lower-case wire format.
    pub(crate) fn entry(&self, lower_wire: &[u8]) -> Option<&Entry> {
        self.entries.get(&self.wire, lower_wire)
    }

    pub(crate) fn node(&self, node: NodeRef) -> WireNode<'_> {
        WireNode::new(&self.wire[node.get()..])
    }

    pub(crate) fn apex(&self) -> WireNode<'_> {
        self.node(self.apex)
    }

    /// Returns the region of the apex node.
    pub(crate) fn apex_ref(&self) -> NodeRef {
        self.apex
    }

    /// Returns the node at `index` in canonical order, `None` past the
    /// last node.
    pub(crate) fn node_at(&self, index: usize) -> Option<NodeRef> {
        self.nodes.get(index).copied()
    }

    /// Returns the published zone whose apex is the lower-case wire name
    /// `lower`, if there is one.
    pub(crate) fn zone_at_apex(zones: &ZoneMap, lower: &[u8]) -> Option<Arc<Self>> {
        zones.get(lower).cloned()
    }

    /// Returns the NSEC node whose owner is the last one before the wire
    /// name `name` in canonical order, wrapping around to the last NSEC of
    /// the chain.
    pub(crate) fn covering_nsec(&self, name: &[u8]) -> Option<WireNode<'_>> {
        let mut key = [0u8; MAX_CANONICAL_KEY_LEN];
        let key = canonical_key_into(&mut key, name);
        let after = self
            .nsec_chain
            .partition_point(|(owner, _)| **owner <= *key);
        let pos = after
            .checked_sub(1)
            .or(self.nsec_chain.len().checked_sub(1))?;
        Some(self.node(self.nsec_chain[pos].1))
    }

    /// Returns the NSEC3 node matching the entry's name, if there is one.
    pub(crate) fn matching_nsec3(&self, entry: &Entry) -> Option<WireNode<'_>> {
        let pos = entry.nsec3_match?;
        Some(self.node(self.nsec3_chain[pos as usize].1))
    }

    /// Returns the NSEC3 node covering the entry's name when none matches.
    pub(crate) fn covering_nsec3_of(&self, entry: &Entry) -> Option<WireNode<'_>> {
        let pos = entry.nsec3_cover?;
        Some(self.node(self.nsec3_chain[pos as usize].1))
    }

    /// Returns the NSEC3 node whose hash is the last one below `hash`,
    /// wrapping around to the last record of the chain.
    pub(crate) fn covering_nsec3(&self, hash: &[u8; SHA1_LEN]) -> Option<WireNode<'_>> {
        let below = self.nsec3_index.count_below(&self.nsec3_chain, hash);
        let pos = covering_index(below, self.nsec3_chain.len())?;
        Some(self.node(self.nsec3_chain[pos as usize].1))
    }
}

/// The entries of a zone's names, found by lower-case wire name.
///
/// The table stores no names: an entry's name is the owner name in its
/// region, which the query path reads next anyway. A lookup then touches
/// one cache line fewer than a map with a separately allocated key.
struct NameIndex {
    table: HashTable<Entry>,
    hasher: NameHasher,
}

impl NameIndex {
    fn with_capacity(capacity: usize) -> Self {
        Self {
            table: HashTable::with_capacity(capacity),
            hasher: NameHasher::default(),
        }
    }

    /// Returns the entry of the name `lower`, in lower-case wire format,
    /// whose region is in `wire`.
    fn get(&self, wire: &[u8], lower: &[u8]) -> Option<&Entry> {
        let hash = self.hasher.hash_one(lower);
        self.table.find(hash, |entry| {
            let name = WireNode::new(&wire[entry.region.get()..]).name();
            name.eq_ignore_ascii_case(lower)
        })
    }

    /// Adds `entry`, whose region is in `wire`. A name must be added once.
    fn insert(&mut self, wire: &[u8], entry: Entry) {
        let hasher = &self.hasher;
        let hash_of = |entry: &Entry| {
            let mut lower = [0u8; MAX_NAME_LEN];
            let name = WireNode::new(&wire[entry.region.get()..]).name();
            for (to, from) in lower.iter_mut().zip(name) {
                *to = from.to_ascii_lowercase();
            }
            hasher.hash_one(&lower[..name.len()])
        };
        let hash = hash_of(&entry);
        self.table.insert_unique(hash, entry, hash_of);
    }
}

/// Returns the leading `bits` bits of `hash` as a number.
fn hash_prefix(hash: &[u8; SHA1_LEN], bits: u32) -> usize {
    let leading = u32::from_be_bytes([hash[0], hash[1], hash[2], hash[3]]);
    // `checked_shr` covers bits = 0, where the shift would be 32.
    leading.checked_shr(32 - bits).unwrap_or(0) as usize
}

/// A range table over a sorted NSEC3 chain: entry `p` of `bounds` is the
/// position of the first hash whose leading `bits` bits are at least `p`,
/// and one last entry is the chain length.
#[derive(Debug)]
struct Nsec3Index {
    bounds: Vec<u32>,
    bits: u32,
}

impl Nsec3Index {
    /// Builds the table for `chain`, with about one bit per doubling of the
    /// chain, so that each range contains one to two hashes on average.
    fn new<T>(chain: &[([u8; SHA1_LEN], T)]) -> Self {
        let bits = (usize::BITS - chain.len().leading_zeros()).min(MAX_NSEC3_INDEX_BITS);
        let prefixes = 1usize << bits;
        let mut bounds = Vec::with_capacity(prefixes + 1);
        let mut pos = 0;
        for prefix in 0..prefixes {
            while pos < chain.len() && hash_prefix(&chain[pos].0, bits) < prefix {
                pos += 1;
            }
            bounds.push(pos as u32);
        }
        bounds.push(chain.len() as u32);
        Self { bounds, bits }
    }

    /// Returns the number of hashes in `chain`, the chain this table was
    /// built for, that are below `hash`.
    fn count_below<T>(&self, chain: &[([u8; SHA1_LEN], T)], hash: &[u8; SHA1_LEN]) -> usize {
        // Hashes with smaller leading bits are all below, those with larger
        // ones all above, so only the range with the same bits is searched.
        let prefix = hash_prefix(hash, self.bits);
        let start = self.bounds[prefix] as usize;
        let end = self.bounds[prefix + 1] as usize;
        start + chain[start..end].partition_point(|probe| probe.0 < *hash)
    }
}

/// Writes the key whose byte order is the canonical order of RFC 4034
/// section 6.1 for the wire name `wire` into `buf` and returns it.
///
/// Labels are written from the root down, each octet folded to lower case
/// and shifted up by one so that the label separator 0x00 sorts before any
/// octet; 0xfe and 0xff take two octets to keep the shift order-preserving.
/// Comparing keys bytewise then compares names label by label from the
/// right, a shorter label before a longer one that it prefixes.
pub(crate) fn canonical_key_into<'b>(
    buf: &'b mut [u8; MAX_CANONICAL_KEY_LEN],
    wire: &[u8],
) -> &'b [u8] {
    // A valid name has at most MAX_NAME_LEN octets, which bounds the key.
    let wire = &wire[..wire.len().min(MAX_NAME_LEN)];
    let mut starts = [0u8; MAX_NAME_LEN];
    let mut count = 0;
    let mut pos = 0;
    while let Some(&len) = wire.get(pos) {
        if len == 0 || count == starts.len() {
            break;
        }
        starts[count] = pos as u8;
        count += 1;
        pos += 1 + len as usize;
    }
    let mut written = 0;
    for &start in starts[..count].iter().rev() {
        let start = usize::from(start);
        let len = usize::from(wire[start]);
        let label = wire.get(start + 1..start + 1 + len).unwrap_or_default();
        for &octet in label {
            match octet.to_ascii_lowercase() {
                0xfe => {
                    buf[written..written + 2].copy_from_slice(&[0xff, 0x00]);
                    written += 2;
                }
                0xff => {
                    buf[written..written + 2].copy_from_slice(&[0xff, 0x01]);
                    written += 2;
                }
                octet => {
                    buf[written] = octet + 1;
                    written += 1;
                }
            }
        }
        buf[written] = 0;
        written += 1;
    }
    &buf[..written]
}

/// Returns the index of the record before insertion point `below` in a
/// chain of `len` records, wrapping around to the last record.
fn covering_index(below: usize, len: usize) -> Option<u32> {
    let pos = below.checked_sub(1).or(len.checked_sub(1))?;
    Some(pos as u32)
}

/// Returns the negative-answer TTL of RFC 2308 section 5 from the apex
/// SOA, or `None` if the apex has no SOA record.
fn negative_ttl(apex: WireNode<'_>) -> Option<u32> {
    let soa = apex.rrset(Rtype::SOA)?;
    let minimum = soa.first_rdata().and_then(soa_minimum);
    Some(minimum.map_or(soa.ttl, |minimum| minimum.min(soa.ttl)))
}

/// Returns the name in lower-case wire format.
pub(crate) fn lower_wire(name: &Name) -> Box<[u8]> {
    name.as_wire().to_ascii_lowercase().into_boxed_slice()
}

/// Reads and checks the NSEC3PARAM record at the apex.
fn nsec3_params(zone: &Zone) -> Result<Option<Nsec3Params>, PublishError> {
    let Some(rrset) = zone.apex().and_then(|apex| apex.rrset(Rtype::NSEC3PARAM)) else {
        return Ok(None);
    };
    let Some(rdata) = rrset.rdatas.first() else {
        return Ok(None);
    };
    let zone_name = zone.origin().clone();
    let params = Nsec3Params::from_rdata(rdata).ok_or(PublishError::MalformedNsec3Param {
        zone: zone_name.clone(),
    })?;
    if params.algorithm != NSEC3_SHA1 {
        return Err(PublishError::UnsupportedNsec3Algorithm {
            zone: zone_name,
            algorithm: params.algorithm,
        });
    }
    if params.iterations > MAX_ITERATIONS {
        return Err(PublishError::TooManyIterations {
            zone: zone_name,
            iterations: params.iterations,
        });
    }
    Ok(Some(params))
}

/// Returns the hash in an NSEC3 node's owner name if the node, directly
/// below the apex, contains NSEC3 records made with `params`.
fn nsec3_hash_of_owner(
    node: &Node,
    origin: &Name,
    params: Option<&Nsec3Params>,
) -> Option<[u8; SHA1_LEN]> {
    let params = params?;
    let nsec3 = node.rrset(Rtype::NSEC3)?;
    if node.name.parent().as_ref() != Some(origin) {
        return None;
    }
    let matches = nsec3
        .rdatas
        .iter()
        .any(|rdata| Nsec3Params::from_rdata(rdata).as_ref() == Some(params));
    if !matches {
        return None;
    }
    let label = node.name.labels().next()?;
    let decoded = BASE32HEX_NOPAD.decode(&label.to_ascii_uppercase()).ok()?;
    decoded.try_into().ok()
}

/// Returns true if a proper ancestor of `name` below the apex is a zone
/// cut or owns a DNAME, or the apex owns a DNAME.
fn is_occluded(entries: &NameIndex, wire: &[u8], name: &Name, origin: &Name) -> bool {
    let mut current = name.parent();
    while let Some(ancestor) = current {
        if !ancestor.ends_with(origin) {
            return false;
        }
        let entry = entries.get(wire, &lower_wire(&ancestor));
        if let Some(node) = entry.and_then(|entry| entry.node) {
            let node = WireNode::new(&wire[node.get()..]);
            let is_cut = ancestor != *origin && node.has(Rtype::NS);
            if is_cut || node.has(Rtype::DNAME) {
                return true;
            }
        }
        current = ancestor.parent();
    }
    false
}

pub(crate) type ZoneMap = HashMap<Box<[u8]>, Arc<PublishedZone>, NameHasher>;

/// The set of published zones, replaced atomically on every change.
#[derive(Default)]
pub struct ZoneSet {
    zones: ArcSwap<ZoneMap>,
}

impl std::fmt::Debug for ZoneSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.apexes()).finish()
    }
}

impl ZoneSet {
    /// Creates an empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Publishes `zone`, replacing the version with the same apex. Returns
    /// the replaced version.
    pub fn publish(&self, zone: Arc<PublishedZone>) -> Option<Arc<PublishedZone>> {
        let key = zone.origin_lower.clone();
        let before = self.zones.rcu(|map| {
            let mut map = ZoneMap::clone(map);
            map.insert(key.clone(), zone.clone());
            map
        });
        before.get(&key).cloned()
    }

    /// Stops serving the zone with apex `apex` and returns its last version.
    pub fn withdraw(&self, apex: &Name) -> Option<Arc<PublishedZone>> {
        let key = lower_wire(apex);
        let before = self.zones.rcu(|map| {
            let mut map = ZoneMap::clone(map);
            map.remove(&key);
            map
        });
        before.get(&key).cloned()
    }

    /// Returns the published version of the zone with apex `apex`.
    pub fn get(&self, apex: &Name) -> Option<Arc<PublishedZone>> {
        self.zones.load().get(&lower_wire(apex)).cloned()
    }

    /// Returns the closest enclosing zone of `name`: the published zone
    /// with the longest apex that `name` equals or lies below.
    pub fn find(&self, name: &Name) -> Option<Arc<PublishedZone>> {
        find_in(&self.zones.load(), &lower_wire(name)).cloned()
    }

    /// Returns the apexes of all published zones, in canonical order.
    pub fn apexes(&self) -> Vec<Name> {
        let mut apexes: Vec<Name> = self
            .zones
            .load()
            .values()
            .map(|zone| zone.origin.clone())
            .collect();
        apexes.sort();
        apexes
    }

    pub(crate) fn snapshot(&self) -> arc_swap::Guard<Arc<ZoneMap>> {
        self.zones.load()
    }
}

/// Returns the zone in `zones` that most closely encloses the name given in
/// lower-case wire format.
pub(crate) fn find_in<'m>(zones: &'m ZoneMap, lower_wire: &[u8]) -> Option<&'m Arc<PublishedZone>> {
    let mut pos = 0;
    // A wire name has at most 128 labels including the root.
    for _ in 0..=128 {
        let suffix = lower_wire.get(pos..)?;
        if let Some(zone) = zones.get(suffix) {
            return Some(zone);
        }
        let len = *suffix.first()? as usize;
        if len == 0 {
            return None;
        }
        pos += 1 + len;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use keymaster_zone::parse_name;

    #[test]
    fn canonical_keys_follow_rfc4034_order() {
        // The example order of RFC 4034 section 6.1.
        let ordered = [
            "example.",
            "a.example.",
            "yljkjljk.a.example.",
            "Z.a.example.",
            "zABC.a.EXAMPLE.",
            "z.example.",
            "\\001.z.example.",
            "*.z.example.",
            "\\200.z.example.",
        ];
        let keys: Vec<Vec<u8>> = ordered
            .iter()
            .map(|text| {
                let name = parse_name(text, &Name::root()).unwrap();
                let mut buf = [0u8; MAX_CANONICAL_KEY_LEN];
                canonical_key_into(&mut buf, name.as_wire()).to_vec()
            })
            .collect();
        for pair in keys.windows(2) {
            assert!(
                pair[0] < pair[1],
                "{:?} sorts before {:?}",
                pair[0],
                pair[1]
            );
        }
    }

    #[test]
    fn canonical_key_folds_and_escapes() {
        let mut buf = [0u8; MAX_CANONICAL_KEY_LEN];
        let key = canonical_key_into(&mut buf, b"\x02A\xff\x03com\x00");
        assert_eq!(key, b"dpn\x00b\xff\x01\x00");
        let mut buf = [0u8; MAX_CANONICAL_KEY_LEN];
        assert_eq!(canonical_key_into(&mut buf, b"\x00"), b"");
    }

    /// Returns 20 octets that depend only on `seed`.
    fn pseudo_hash(seed: u32) -> [u8; SHA1_LEN] {
        let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
        let mut hash = [0u8; SHA1_LEN];
        for octet in &mut hash {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            *octet = state as u8;
        }
        hash
    }

    #[test]
    fn nsec3_index_agrees_with_binary_search() {
        for len in [0u32, 1, 2, 3, 100, 5000] {
            let mut chain: Vec<([u8; SHA1_LEN], ())> =
                (0..len).map(|seed| (pseudo_hash(seed), ())).collect();
            chain.sort_unstable();
            let index = Nsec3Index::new(&chain);
            assert_eq!(index.bounds.len(), (1 << index.bits) + 1);

            let mut probes: Vec<[u8; SHA1_LEN]> = (0..2000)
                .map(|seed| pseudo_hash(seed + 1_000_000))
                .collect();
            probes.extend(chain.iter().map(|(hash, _)| *hash));
            probes.push([0; SHA1_LEN]);
            probes.push([0xff; SHA1_LEN]);
            for probe in probes {
                let expected = chain.partition_point(|(hash, _)| *hash < probe);
                assert_eq!(
                    index.count_below(&chain, &probe),
                    expected,
                    "chain of {len}"
                );
            }
        }
    }
}
