//! Published zones and the indexes the query path reads.
//!
//! A [`PublishedZone`] is one immutable version of a zone, built once when
//! the version is published. It keeps the zone's nodes and adds what
//! answering needs without searching the whole zone:
//!
//! - a hash map from each lower-case owner name to its entry, which also
//!   holds the *empty non-terminals* (names without records that have
//!   descendants with records) and marks zone cuts and occluded names;
//! - the NSEC chain in canonical order, for finding the NSEC that covers a
//!   name that does not exist;
//! - the NSEC3 parameters from NSEC3PARAM, the NSEC3 hashes sorted, and for
//!   each existing name the NSEC3 record that matches it, so that a
//!   negative answer hashes only the names that do not exist (the next
//!   closer name and the wildcard at the closest encloser).
//!
//! A [`ZoneSet`] holds the published zones behind an atomic pointer swap:
//! readers never block and see either the old or the new set.
//!
//! Limitations: zones are keyed by their apex alone, so one ZoneSet holds
//! one class (the query path serves class IN). NSEC3 records whose
//! parameters differ from the apex NSEC3PARAM are ignored.

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use data_encoding::BASE32HEX_NOPAD;
use keymaster_zone::{CanonicalKey, Class, Name, Node, NodeKind, Rtype, Zone};

use crate::nsec3::{Nsec3Params, MAX_ITERATIONS, NSEC3_SHA1, SHA1_LEN};

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
    /// Index into the node list, `None` for an empty non-terminal.
    pub(crate) node: Option<u32>,
    pub(crate) kind: EntryKind,
    /// Index into the NSEC3 chain of the record whose hash matches the name.
    pub(crate) nsec3_match: Option<u32>,
    /// Index of the NSEC3 record that covers the name's hash when none
    /// matches it (names below an Opt-Out span).
    pub(crate) nsec3_cover: Option<u32>,
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
    nodes: Vec<Node>,
    entries: HashMap<Box<[u8]>, Entry>,
    apex: u32,
    denial: Denial,
    /// NSEC owners in canonical order, each with its node index.
    nsec_chain: Vec<(CanonicalKey, u32)>,
    nsec3_params: Option<Nsec3Params>,
    /// NSEC3 owner hashes in ascending order, each with its node index.
    nsec3_chain: Vec<([u8; SHA1_LEN], u32)>,
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

        // Split the nodes into answerable names and NSEC3 records.
        let mut nodes = Vec::with_capacity(zone.node_count());
        let mut entries = HashMap::with_capacity(zone.node_count());
        let mut nsec_chain = Vec::new();
        let mut nsec3_chain = Vec::new();
        for (node, kind) in zone.walk() {
            let index = nodes.len() as u32;
            // A hashed owner name may also own other data (RFC 5155
            // section 7.2.8), in which case it is an ordinary name too.
            if let Some(hash) = nsec3_hash_of_owner(node, &origin, nsec3_params.as_ref()) {
                nsec3_chain.push((hash, index));
                if node.rrsets.len() == 1 {
                    nodes.push(node.clone());
                    continue;
                }
            }
            if node.has(Rtype::NSEC) && kind != NodeKind::Occluded {
                nsec_chain.push((node.name.canonical_key(), index));
            }
            let kind = match kind {
                NodeKind::Apex => EntryKind::Apex,
                NodeKind::Authoritative => EntryKind::Authoritative,
                NodeKind::Delegation => EntryKind::Cut,
                NodeKind::Occluded => EntryKind::Occluded,
            };
            let entry = Entry {
                node: Some(index),
                kind,
                nsec3_match: None,
                nsec3_cover: None,
            };
            entries.insert(lower_wire(&node.name), entry);
            nodes.push(node.clone());
        }
        nsec3_chain.sort_unstable_by_key(|(hash, _)| *hash);

        // Empty non-terminals below a cut or a DNAME are occluded too.
        for name in zone.empty_non_terminals() {
            let kind = if is_occluded(&entries, &nodes, &name, &origin) {
                EntryKind::Occluded
            } else {
                EntryKind::EmptyNonTerminal
            };
            let entry = Entry {
                node: None,
                kind,
                nsec3_match: None,
                nsec3_cover: None,
            };
            entries.insert(lower_wire(&name), entry);
        }

        let apex = entries
            .get(&lower_wire(&origin)[..])
            .and_then(|entry| entry.node)
            .ok_or_else(|| PublishError::MissingSoa {
                zone: origin.clone(),
            })?;
        let denial = if nsec3_params.is_some() {
            Denial::Nsec3
        } else if nodes[apex as usize].has(Rtype::NSEC) {
            Denial::Nsec
        } else {
            Denial::None
        };

        // Link each existing name to the NSEC3 record that matches it.
        if let Some(params) = &nsec3_params {
            for (name, entry) in entries.iter_mut() {
                if entry.kind == EntryKind::Occluded {
                    continue;
                }
                let hash = params.hash(name);
                match nsec3_chain.binary_search_by(|probe| probe.0.cmp(&hash)) {
                    Ok(pos) => entry.nsec3_match = Some(pos as u32),
                    Err(pos) => entry.nsec3_cover = covering_index(pos, nsec3_chain.len()),
                }
            }
        }

        Ok(Self {
            origin_lower: lower_wire(&origin),
            origin,
            class: zone.class(),
            serial,
            nodes,
            entries,
            apex,
            denial,
            nsec_chain,
            nsec3_params,
            nsec3_chain,
        })
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

    pub(crate) fn denial(&self) -> Denial {
        self.denial
    }

    pub(crate) fn nsec3_params(&self) -> Option<&Nsec3Params> {
        self.nsec3_params.as_ref()
    }

    /// Returns the entry of a name given in lower-case wire format.
    pub(crate) fn entry(&self, lower_wire: &[u8]) -> Option<&Entry> {
        self.entries.get(lower_wire)
    }

    pub(crate) fn node(&self, index: u32) -> &Node {
        &self.nodes[index as usize]
    }

    pub(crate) fn apex(&self) -> &Node {
        self.node(self.apex)
    }

    /// Returns the NSEC node whose owner is the last one before `name` in
    /// canonical order, wrapping around to the last NSEC of the chain.
    pub(crate) fn covering_nsec(&self, name: &Name) -> Option<&Node> {
        let key = name.canonical_key();
        let after = self.nsec_chain.partition_point(|(owner, _)| *owner <= key);
        let pos = after
            .checked_sub(1)
            .or(self.nsec_chain.len().checked_sub(1))?;
        Some(self.node(self.nsec_chain[pos].1))
    }

    /// Returns the NSEC3 node matching the entry's name, if there is one.
    pub(crate) fn matching_nsec3(&self, entry: &Entry) -> Option<&Node> {
        let pos = entry.nsec3_match?;
        Some(self.node(self.nsec3_chain[pos as usize].1))
    }

    /// Returns the NSEC3 node covering the entry's name when none matches.
    pub(crate) fn covering_nsec3_of(&self, entry: &Entry) -> Option<&Node> {
        let pos = entry.nsec3_cover?;
        Some(self.node(self.nsec3_chain[pos as usize].1))
    }

    /// Returns the NSEC3 node whose hash is the last one below `hash`,
    /// wrapping around to the last record of the chain.
    pub(crate) fn covering_nsec3(&self, hash: &[u8; SHA1_LEN]) -> Option<&Node> {
        let below = self.nsec3_chain.partition_point(|probe| probe.0 < *hash);
        let pos = covering_index(below, self.nsec3_chain.len())?;
        Some(self.node(self.nsec3_chain[pos as usize].1))
    }
}

/// Returns the index of the record before insertion point `below` in a
/// chain of `len` records, wrapping around to the last record.
fn covering_index(below: usize, len: usize) -> Option<u32> {
    let pos = below.checked_sub(1).or(len.checked_sub(1))?;
    Some(pos as u32)
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
fn is_occluded(
    entries: &HashMap<Box<[u8]>, Entry>,
    nodes: &[Node],
    name: &Name,
    origin: &Name,
) -> bool {
    let mut current = name.parent();
    while let Some(ancestor) = current {
        if !ancestor.ends_with(origin) {
            return false;
        }
        let entry = entries.get(&lower_wire(&ancestor)[..]);
        if let Some(node) = entry.and_then(|entry| entry.node) {
            let node = &nodes[node as usize];
            let is_cut = ancestor != *origin && node.has(Rtype::NS);
            if is_cut || node.has(Rtype::DNAME) {
                return true;
            }
        }
        current = ancestor.parent();
    }
    false
}

type ZoneMap = HashMap<Box<[u8]>, Arc<PublishedZone>>;

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
