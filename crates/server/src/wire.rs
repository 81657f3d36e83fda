//! The records of a published zone in the form they take in responses.
//!
//! Every node of a [`PublishedZone`](crate::PublishedZone) is stored once
//! as a *node region* in one contiguous buffer, so that answering from a
//! node reads a few adjacent cache lines instead of following pointers
//! from the node to its RRsets, their RDATA lists and each RDATA. A node
//! region is laid out as follows, with integers in network byte order:
//!
//! ```text
//! owner length (1)  owner name in uncompressed wire format, case as loaded
//! RRset count (2)
//! one directory entry per RRset, in the node's type order:
//!     type (2)  class (2)  TTL (4)  RDATA count (2)  RRSIG count (2)
//!     start of the records, from the region start (4)
//!     length of the RDATA records (4)  length of the RRSIG records (4)
//! the records of each RRset: first its RDATA records, then its RRSIGs,
//! each as in a message but without the owner name:
//!     type (2)  class (2)  TTL (4)  RDATA length (2)  RDATA
//! ```
//!
//! A response then copies a record with one slice copy after writing the
//! (usually compressed) owner name; only the RDATA of types whose names may
//! be compressed goes through the writer octet by octet.

use bytes::Bytes;
use keymaster_zone::{Class, Node, Rtype};

/// Octets of one directory entry.
const DIRECTORY_ENTRY_LEN: usize = 24;

/// Octets of a record before its RDATA: type, class, TTL, RDATA length.
pub(crate) const RECORD_HEADER_LEN: usize = 10;

/// Error from [`append_node`]: the node's records do not fit the 32-bit
/// offsets of a node region, or an RRset has more than 65535 records.
#[derive(Debug)]
pub(crate) struct NodeTooLarge;

/// Appends the region of `node` to `buf` and returns its start.
pub(crate) fn append_node(buf: &mut Vec<u8>, node: &Node) -> Result<usize, NodeTooLarge> {
    let start = buf.len();
    let owner = node.name.as_wire();
    buf.push(owner.len() as u8);
    buf.extend_from_slice(owner);
    let count = u16::try_from(node.rrsets.len()).map_err(|_| NodeTooLarge)?;
    buf.extend_from_slice(&count.to_be_bytes());

    // The directory first, with the record offsets filled in below.
    let directory = buf.len();
    buf.resize(directory + node.rrsets.len() * DIRECTORY_ENTRY_LEN, 0);
    for (index, rrset) in node.rrsets.iter().enumerate() {
        let records_start = buf.len() - start;
        for rdata in &rrset.rdatas {
            push_record(buf, rrset.rtype, rrset.class, rrset.ttl, rdata)?;
        }
        let rdata_len = buf.len() - start - records_start;
        for signature in &rrset.signatures {
            push_record(buf, Rtype::RRSIG, rrset.class, rrset.ttl, signature)?;
        }
        let signatures_len = buf.len() - start - records_start - rdata_len;

        let mut entry = [0u8; DIRECTORY_ENTRY_LEN];
        entry[0..2].copy_from_slice(&rrset.rtype.to_int().to_be_bytes());
        entry[2..4].copy_from_slice(&rrset.class.to_int().to_be_bytes());
        entry[4..8].copy_from_slice(&rrset.ttl.to_be_bytes());
        entry[8..10].copy_from_slice(&count_u16(rrset.rdatas.len())?.to_be_bytes());
        entry[10..12].copy_from_slice(&count_u16(rrset.signatures.len())?.to_be_bytes());
        entry[12..16].copy_from_slice(&offset_u32(records_start)?.to_be_bytes());
        entry[16..20].copy_from_slice(&offset_u32(rdata_len)?.to_be_bytes());
        entry[20..24].copy_from_slice(&offset_u32(signatures_len)?.to_be_bytes());
        let at = directory + index * DIRECTORY_ENTRY_LEN;
        buf[at..at + DIRECTORY_ENTRY_LEN].copy_from_slice(&entry);
    }
    offset_u32(buf.len() - start)?;
    Ok(start)
}

fn push_record(
    buf: &mut Vec<u8>,
    rtype: Rtype,
    class: Class,
    ttl: u32,
    rdata: &Bytes,
) -> Result<(), NodeTooLarge> {
    let rdlength = u16::try_from(rdata.len()).map_err(|_| NodeTooLarge)?;
    buf.extend_from_slice(&rtype.to_int().to_be_bytes());
    buf.extend_from_slice(&class.to_int().to_be_bytes());
    buf.extend_from_slice(&ttl.to_be_bytes());
    buf.extend_from_slice(&rdlength.to_be_bytes());
    buf.extend_from_slice(rdata);
    Ok(())
}

fn count_u16(count: usize) -> Result<u16, NodeTooLarge> {
    u16::try_from(count).map_err(|_| NodeTooLarge)
}

fn offset_u32(offset: usize) -> Result<u32, NodeTooLarge> {
    u32::try_from(offset).map_err(|_| NodeTooLarge)
}

fn read_u16(octets: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([octets[at], octets[at + 1]])
}

fn read_u32(octets: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([octets[at], octets[at + 1], octets[at + 2], octets[at + 3]])
}

/// A node region: the owner name and the RRsets of one node.
///
/// The region is built by [`append_node`] and never changes, so the reads
/// below index within bounds; the slice extends to the end of the buffer.
#[derive(Clone, Copy)]
pub(crate) struct WireNode<'z> {
    region: &'z [u8],
}

impl<'z> WireNode<'z> {
    /// Returns the node whose region starts at `region[0]`.
    pub(crate) fn new(region: &'z [u8]) -> Self {
        Self { region }
    }

    /// Returns the owner name in wire format, case as loaded.
    pub(crate) fn name(&self) -> &'z [u8] {
        let len = usize::from(self.region[0]);
        &self.region[1..1 + len]
    }

    fn directory_start(&self) -> usize {
        1 + usize::from(self.region[0]) + 2
    }

    pub(crate) fn rrset_count(&self) -> usize {
        usize::from(read_u16(self.region, self.directory_start() - 2))
    }

    /// Returns the RRsets in type order.
    pub(crate) fn rrsets(&self) -> impl Iterator<Item = WireRrset<'z>> + '_ {
        (0..self.rrset_count()).map(|index| self.rrset_at(index))
    }

    /// Returns the RRset of type `rtype`.
    pub(crate) fn rrset(&self, rtype: Rtype) -> Option<WireRrset<'z>> {
        let code = rtype.to_int();
        let directory = self.directory_start();
        let index = (0..self.rrset_count())
            .find(|index| read_u16(self.region, directory + index * DIRECTORY_ENTRY_LEN) == code)?;
        Some(self.rrset_at(index))
    }

    /// Returns true if the node owns an RRset of type `rtype`.
    pub(crate) fn has(&self, rtype: Rtype) -> bool {
        self.rrset(rtype).is_some()
    }

    /// Returns the RRset at `index` in type order; `index` must be below
    /// [`WireNode::rrset_count`].
    pub(crate) fn rrset_at(&self, index: usize) -> WireRrset<'z> {
        let entry = &self.region[self.directory_start() + index * DIRECTORY_ENTRY_LEN..];
        let records_start = read_u32(entry, 12) as usize;
        let rdata_len = read_u32(entry, 16) as usize;
        let signatures_len = read_u32(entry, 20) as usize;
        let signatures_start = records_start + rdata_len;
        WireRrset {
            owner: self.name(),
            rtype: Rtype::from_int(read_u16(entry, 0)),
            class: Class::from_int(read_u16(entry, 2)),
            ttl: read_u32(entry, 4),
            rdatas: Records {
                octets: &self.region[records_start..signatures_start],
                count: read_u16(entry, 8),
            },
            signatures: Records {
                octets: &self.region[signatures_start..signatures_start + signatures_len],
                count: read_u16(entry, 10),
            },
        }
    }
}

/// One RRset of a node region.
#[derive(Clone, Copy)]
pub(crate) struct WireRrset<'z> {
    pub(crate) owner: &'z [u8],
    pub(crate) rtype: Rtype,
    pub(crate) class: Class,
    pub(crate) ttl: u32,
    /// The records of the RRset.
    pub(crate) rdatas: Records<'z>,
    /// The RRSIG records that cover the RRset.
    pub(crate) signatures: Records<'z>,
}

impl<'z> WireRrset<'z> {
    /// Returns true if the RRset has at least one record.
    pub(crate) fn has_data(&self) -> bool {
        self.rdatas.count > 0
    }

    /// Returns the RDATA of the first record, if there is one.
    pub(crate) fn first_rdata(&self) -> Option<&'z [u8]> {
        self.rdatas.iter().next()
    }
}

/// A run of records without owner names, as stored in a node region.
#[derive(Clone, Copy, Default)]
pub(crate) struct Records<'z> {
    pub(crate) octets: &'z [u8],
    pub(crate) count: u16,
}

impl<'z> Records<'z> {
    pub(crate) fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Returns the RDATA of each record.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &'z [u8]> {
        let octets = self.octets;
        let mut pos = 0;
        (0..self.count).map(move |_| {
            let len = usize::from(read_u16(octets, pos + 8));
            let rdata = &octets[pos + RECORD_HEADER_LEN..pos + RECORD_HEADER_LEN + len];
            pos += RECORD_HEADER_LEN + len;
            rdata
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keymaster_zone::{Name, Rrset};

    fn name(wire: &'static [u8]) -> Name {
        Name::from_wire(Bytes::from_static(wire)).unwrap()
    }

    #[test]
    fn node_region_round_trip() {
        let owner = name(b"\x04host\x07example\x00");
        let mut a = Rrset::new(owner.clone(), Class::IN, Rtype::A, 300);
        a.rdatas.push(Bytes::from_static(&[192, 0, 2, 1]));
        a.rdatas.push(Bytes::from_static(&[192, 0, 2, 2]));
        a.signatures.push(Bytes::from_static(b"signature"));
        let mut txt = Rrset::new(owner.clone(), Class::IN, Rtype::TXT, 60);
        txt.rdatas.push(Bytes::from_static(b"\x05hello"));
        let node = Node {
            name: owner,
            rrsets: vec![a, txt],
        };

        let mut buf = vec![0xaa; 3];
        let start = append_node(&mut buf, &node).unwrap();
        assert_eq!(start, 3);
        let region = WireNode::new(&buf[start..]);
        assert_eq!(region.name(), b"\x04host\x07example\x00");
        assert_eq!(region.rrsets().count(), 2);
        assert!(region.rrset(Rtype::AAAA).is_none());

        let a = region.rrset(Rtype::A).unwrap();
        assert_eq!(a.ttl, 300);
        assert_eq!(a.class, Class::IN);
        let rdatas: Vec<&[u8]> = a.rdatas.iter().collect();
        assert_eq!(rdatas, [&[192, 0, 2, 1][..], &[192, 0, 2, 2][..]]);
        let signatures: Vec<&[u8]> = a.signatures.iter().collect();
        assert_eq!(signatures, [&b"signature"[..]]);
        // The first stored record: type A, class IN, TTL 300, length 4.
        assert_eq!(&a.rdatas.octets[..10], &[0, 1, 0, 1, 0, 0, 1, 44, 0, 4]);

        let txt = region.rrset(Rtype::TXT).unwrap();
        assert_eq!(txt.first_rdata(), Some(&b"\x05hello"[..]));
        assert!(txt.signatures.is_empty());
    }
}
