//! A zone: its apex, its RRsets in canonical order, and its zone cuts.
//!
//! Terms follow RFC 9499. A *zone cut* is a name below the apex that owns
//! an NS RRset; the names below a zone cut (and below a DNAME) are
//! *occluded*: their address records serve as glue and are neither
//! authoritative nor signed. An *empty non-terminal* is a name without
//! records that has descendants with records.

use std::collections::{BTreeMap, HashSet};
use std::ops::Bound;

use bytes::Bytes;
use domain::base::iana::{Class, Rtype};

use crate::name::{CanonicalKey, Name};
use crate::record::{reserve_one, Record, Rrset};

/// The RRsets owned by one name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    pub name: Name,
    /// RRsets sorted by type number, without RRSIG (signatures live in
    /// the RRset they cover).
    pub rrsets: Vec<Rrset>,
}

impl Node {
    /// Returns the RRset of type `rtype`.
    pub fn rrset(&self, rtype: Rtype) -> Option<&Rrset> {
        self.rrsets.iter().find(|rrset| rrset.rtype == rtype)
    }

    /// Returns the RRset of type `rtype` for changing.
    pub fn rrset_mut(&mut self, rtype: Rtype) -> Option<&mut Rrset> {
        self.rrsets.iter_mut().find(|rrset| rrset.rtype == rtype)
    }

    /// Returns true if the node owns an RRset of type `rtype`.
    pub fn has(&self, rtype: Rtype) -> bool {
        self.rrset(rtype).is_some()
    }

    /// Inserts or replaces an RRset, keeping the type order.
    pub fn put_rrset(&mut self, rrset: Rrset) {
        match self
            .rrsets
            .binary_search_by_key(&rrset.rtype.to_int(), |r| r.rtype.to_int())
        {
            Ok(pos) => self.rrsets[pos] = rrset,
            Err(pos) => {
                reserve_one(&mut self.rrsets);
                self.rrsets.insert(pos, rrset);
            }
        }
    }

    /// Removes the RRset of type `rtype` and returns it.
    pub fn remove_rrset(&mut self, rtype: Rtype) -> Option<Rrset> {
        let pos = self.rrsets.iter().position(|rrset| rrset.rtype == rtype)?;
        Some(self.rrsets.remove(pos))
    }
}

/// Where a node sits relative to the zone's cuts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeKind {
    /// The zone apex.
    Apex,
    /// An authoritative name inside the zone.
    Authoritative,
    /// A zone cut: NS here is a delegation, only DS and NSEC/NSEC3 are
    /// authoritative.
    Delegation,
    /// A name below a zone cut or a DNAME: glue or occluded data.
    Occluded,
}

/// Outcome of [`Zone::insert`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Inserted {
    /// The record was added.
    Added,
    /// The record was already present.
    Duplicate,
    /// The record was added to an RRset whose TTL differed; the RRset now
    /// uses the smaller of the two TTLs.
    TtlAdjusted { previous: u32, now: u32 },
}

/// A zone held in memory, ordered canonically.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Zone {
    origin: Name,
    class: Class,
    nodes: BTreeMap<CanonicalKey, Node>,
}

impl Zone {
    /// Creates an empty zone.
    pub fn new(origin: Name, class: Class) -> Self {
        Self {
            origin,
            class,
            nodes: BTreeMap::new(),
        }
    }

    /// Returns the zone apex.
    pub fn origin(&self) -> &Name {
        &self.origin
    }

    /// Returns the class.
    pub fn class(&self) -> Class {
        self.class
    }

    /// Adds one record. RRSIG records are attached to the RRset they cover,
    /// which is created empty if it does not exist yet.
    pub fn insert(&mut self, record: Record) -> Inserted {
        let key = record.owner.canonical_key();
        let node = self.nodes.entry(key).or_insert_with(|| Node {
            name: record.owner.clone(),
            rrsets: Vec::new(),
        });
        let (rtype, is_signature) = match covered_type(&record) {
            Some(covered) => (covered, true),
            None => (record.rtype, false),
        };
        let pos = match node
            .rrsets
            .binary_search_by_key(&rtype.to_int(), |r| r.rtype.to_int())
        {
            Ok(pos) => pos,
            Err(pos) => {
                let rrset = Rrset::new(record.owner.clone(), record.class, rtype, record.ttl);
                reserve_one(&mut node.rrsets);
                node.rrsets.insert(pos, rrset);
                pos
            }
        };
        let rrset = &mut node.rrsets[pos];
        if is_signature {
            if rrset.signatures.contains(&record.rdata) {
                return Inserted::Duplicate;
            }
            rrset.push_signature(record.rdata);
            return Inserted::Added;
        }
        let first = rrset.rdatas.is_empty();
        if !rrset.insert(record.rdata) {
            return Inserted::Duplicate;
        }
        if first {
            rrset.ttl = record.ttl;
        } else if record.ttl != rrset.ttl {
            let previous = rrset.ttl;
            rrset.ttl = previous.min(record.ttl);
            return Inserted::TtlAdjusted {
                previous,
                now: rrset.ttl,
            };
        }
        Inserted::Added
    }

    /// Inserts or replaces a whole RRset.
    pub fn put_rrset(&mut self, rrset: Rrset) {
        let key = rrset.owner.canonical_key();
        let node = self.nodes.entry(key).or_insert_with(|| Node {
            name: rrset.owner.clone(),
            rrsets: Vec::new(),
        });
        node.put_rrset(rrset);
    }

    /// Removes an RRset and returns it; a node left empty is removed too.
    pub fn remove_rrset(&mut self, name: &Name, rtype: Rtype) -> Option<Rrset> {
        let key = name.canonical_key();
        let node = self.nodes.get_mut(&key)?;
        let removed = node.remove_rrset(rtype);
        if node.rrsets.is_empty() {
            self.nodes.remove(&key);
        }
        removed
    }

    /// Removes every RRset of the given types, and all signatures if
    /// `signatures` is true. Returns the number of records removed.
    pub fn strip(&mut self, types: &[Rtype], signatures: bool) -> usize {
        let mut removed = 0;
        for node in self.nodes.values_mut() {
            node.rrsets.retain(|rrset| {
                let drop = types.contains(&rrset.rtype);
                if drop {
                    removed += rrset.rdatas.len() + rrset.signatures.len();
                }
                !drop
            });
            if signatures {
                for rrset in &mut node.rrsets {
                    removed += rrset.signatures.len();
                    rrset.signatures.clear();
                }
            }
        }
        // Signatures whose covered RRset was absent leave empty RRsets behind.
        for node in self.nodes.values_mut() {
            node.rrsets
                .retain(|rrset| !rrset.rdatas.is_empty() || !rrset.signatures.is_empty());
        }
        self.nodes.retain(|_, node| !node.rrsets.is_empty());
        removed
    }

    /// Returns the node owned by `name`.
    pub fn get(&self, name: &Name) -> Option<&Node> {
        self.nodes.get(&name.canonical_key())
    }

    /// Returns the node owned by `name` for changing.
    pub fn get_mut(&mut self, name: &Name) -> Option<&mut Node> {
        self.nodes.get_mut(&name.canonical_key())
    }

    /// Returns one RRset.
    pub fn rrset(&self, name: &Name, rtype: Rtype) -> Option<&Rrset> {
        self.get(name)?.rrset(rtype)
    }

    /// Returns the apex node.
    pub fn apex(&self) -> Option<&Node> {
        self.get(&self.origin)
    }

    /// Returns the SOA RRset at the apex.
    pub fn soa(&self) -> Option<&Rrset> {
        self.apex()?.rrset(Rtype::SOA)
    }

    /// Returns the SOA serial.
    pub fn serial(&self) -> Option<u32> {
        soa_serial(self.soa()?.rdatas.first()?)
    }

    /// Replaces the SOA serial; signatures over the SOA are dropped.
    pub fn set_serial(&mut self, serial: u32) -> bool {
        let origin = self.origin.clone();
        let Some(soa) = self
            .get_mut(&origin)
            .and_then(|node| node.rrset_mut(Rtype::SOA))
        else {
            return false;
        };
        let Some(rdata) = soa
            .rdatas
            .first()
            .and_then(|rdata| with_soa_serial(rdata, serial))
        else {
            return false;
        };
        soa.rdatas = vec![rdata];
        soa.signatures.clear();
        true
    }

    /// Returns the nodes in canonical order.
    pub fn nodes(&self) -> impl DoubleEndedIterator<Item = &Node> + ExactSizeIterator {
        self.nodes.values()
    }

    /// Returns the nodes in canonical order for changing.
    pub fn nodes_mut(&mut self) -> impl Iterator<Item = &mut Node> {
        self.nodes.values_mut()
    }

    /// Returns the number of names that own records.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Returns the number of records, signatures included.
    pub fn record_count(&self) -> usize {
        let rrsets = self.nodes.values().flat_map(|node| &node.rrsets);
        rrsets
            .map(|rrset| rrset.rdatas.len() + rrset.signatures.len())
            .sum()
    }

    /// Returns every record in canonical order, each RRset followed by its RRSIGs.
    pub fn records(&self) -> impl Iterator<Item = Record> + '_ {
        let rrsets = self.nodes.values().flat_map(|node| &node.rrsets);
        rrsets.flat_map(|rrset| rrset.records().chain(rrset.signature_records()))
    }

    /// Returns the last node that sorts strictly before `name`.
    pub fn predecessor(&self, name: &Name) -> Option<&Node> {
        let key = name.canonical_key();
        self.nodes.range(..key).next_back().map(|(_, node)| node)
    }

    /// Returns the first node that sorts strictly after `name`.
    pub fn successor(&self, name: &Name) -> Option<&Node> {
        let key = name.canonical_key();
        let mut range = self.nodes.range((Bound::Excluded(key), Bound::Unbounded));
        range.next().map(|(_, node)| node)
    }

    /// Returns true if some node lies strictly below `name`.
    pub fn has_descendants(&self, name: &Name) -> bool {
        self.successor(name)
            .is_some_and(|node| node.name.is_below(name))
    }

    /// Returns each node with its kind, in canonical order.
    ///
    /// Descendants of a name follow it directly in canonical order, so one
    /// pass that remembers the last zone cut or DNAME classifies every node.
    pub fn walk(&self) -> impl Iterator<Item = (&Node, NodeKind)> + '_ {
        let mut cut: Option<Name> = None;
        self.nodes.values().map(move |node| {
            if let Some(top) = &cut {
                if node.name.is_below(top) {
                    return (node, NodeKind::Occluded);
                }
                cut = None;
            }
            if node.name == self.origin {
                if node.has(Rtype::DNAME) {
                    cut = Some(node.name.clone());
                }
                return (node, NodeKind::Apex);
            }
            if node.has(Rtype::NS) {
                cut = Some(node.name.clone());
                return (node, NodeKind::Delegation);
            }
            if node.has(Rtype::DNAME) {
                cut = Some(node.name.clone());
            }
            (node, NodeKind::Authoritative)
        })
    }

    /// Returns the empty non-terminals, in canonical order.
    pub fn empty_non_terminals(&self) -> Vec<Name> {
        let mut seen = HashSet::new();
        let mut found = Vec::new();
        for node in self.nodes.values() {
            let mut name = node.name.clone();
            while let Some(parent) = name.parent() {
                if !parent.is_below(&self.origin) || self.get(&parent).is_some() {
                    break;
                }
                if seen.insert(parent.clone()) {
                    found.push(parent.clone());
                }
                name = parent;
            }
        }
        found.sort();
        found
    }
}

/// Returns the type an RRSIG record covers, or `None` for other records.
pub fn covered_type(record: &Record) -> Option<Rtype> {
    if record.rtype != Rtype::RRSIG || record.rdata.len() < 2 {
        return None;
    }
    Some(Rtype::from_int(u16::from_be_bytes([
        record.rdata[0],
        record.rdata[1],
    ])))
}

/// Returns the serial field of SOA RDATA.
pub fn soa_serial(rdata: &[u8]) -> Option<u32> {
    let pos = soa_serial_offset(rdata)?;
    let bytes = rdata.get(pos..pos + 4)?;
    Some(u32::from_be_bytes(bytes.try_into().ok()?))
}

/// Returns SOA RDATA with its serial field replaced.
pub fn with_soa_serial(rdata: &[u8], serial: u32) -> Option<Bytes> {
    let pos = soa_serial_offset(rdata)?;
    if rdata.len() < pos + 20 {
        return None;
    }
    let mut out = rdata.to_vec();
    out[pos..pos + 4].copy_from_slice(&serial.to_be_bytes());
    Some(Bytes::from(out))
}

/// Returns the SOA MINIMUM field, the TTL of negative answers (RFC 2308).
pub fn soa_minimum(rdata: &[u8]) -> Option<u32> {
    let pos = soa_serial_offset(rdata)? + 16;
    let bytes = rdata.get(pos..pos + 4)?;
    Some(u32::from_be_bytes(bytes.try_into().ok()?))
}

fn soa_serial_offset(rdata: &[u8]) -> Option<usize> {
    let mname = crate::name::wire_name_len(rdata).ok()?;
    let rname = crate::name::wire_name_len(rdata.get(mname..)?).ok()?;
    Some(mname + rname)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(text: &str) -> Name {
        let labels: Vec<&[u8]> = text
            .split('.')
            .filter(|l| !l.is_empty())
            .map(str::as_bytes)
            .collect();
        Name::from_labels(labels).unwrap()
    }

    fn record(owner: &str, rtype: Rtype, ttl: u32, rdata: &[u8]) -> Record {
        Record {
            owner: name(owner),
            class: Class::IN,
            ttl,
            rtype,
            rdata: Bytes::copy_from_slice(rdata),
        }
    }

    #[test]
    fn walk_classifies_cuts_and_glue() {
        let mut zone = Zone::new(name("example"), Class::IN);
        zone.insert(record("example", Rtype::NS, 60, b"\x02ns\x07example\x00"));
        zone.insert(record(
            "sub.example",
            Rtype::NS,
            60,
            b"\x02ns\x03sub\x07example\x00",
        ));
        zone.insert(record("ns.sub.example", Rtype::A, 60, &[192, 0, 2, 1]));
        zone.insert(record("www.example", Rtype::A, 60, &[192, 0, 2, 2]));
        let kinds: Vec<_> = zone
            .walk()
            .map(|(node, kind)| (node.name.to_string(), kind))
            .collect();
        assert_eq!(
            kinds,
            vec![
                ("example.".to_string(), NodeKind::Apex),
                ("sub.example.".to_string(), NodeKind::Delegation),
                ("ns.sub.example.".to_string(), NodeKind::Occluded),
                ("www.example.".to_string(), NodeKind::Authoritative),
            ]
        );
    }

    #[test]
    fn insert_keeps_smallest_ttl() {
        let mut zone = Zone::new(name("example"), Class::IN);
        zone.insert(record("a.example", Rtype::A, 300, &[192, 0, 2, 1]));
        let outcome = zone.insert(record("a.example", Rtype::A, 60, &[192, 0, 2, 2]));
        assert_eq!(
            outcome,
            Inserted::TtlAdjusted {
                previous: 300,
                now: 60
            }
        );
        assert_eq!(zone.rrset(&name("a.example"), Rtype::A).unwrap().ttl, 60);
    }

    #[test]
    fn empty_non_terminals_are_found() {
        let mut zone = Zone::new(name("example"), Class::IN);
        zone.insert(record("example", Rtype::A, 60, &[192, 0, 2, 1]));
        zone.insert(record("a.b.c.example", Rtype::A, 60, &[192, 0, 2, 1]));
        let ents: Vec<String> = zone
            .empty_non_terminals()
            .iter()
            .map(Name::to_string)
            .collect();
        assert_eq!(ents, vec!["c.example.", "b.c.example."]);
    }
}
