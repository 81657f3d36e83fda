//! A response writer with name compression (RFC 1035 section 4.1.4).
//!
//! Responses are written by hand rather than with `domain`'s message
//! builder: the zone already stores uncompressed wire-format RDATA, so a
//! record is copied in with a few slice operations, and the writer keeps a
//! short list of name offsets for compression instead of a map.
//!
//! Names inside RDATA are compressed only for the types RFC 3597 section 4
//! allows (NS, CNAME, SOA, PTR, MX). DNAME, RRSIG and NSEC targets are
//! never compressed (RFC 6672 section 2.5, RFC 4034 sections 3.1.7 and 4.1.1).

use keymaster_zone::name::wire_name_len;
use keymaster_zone::{Class, Rtype};

use crate::message::HEADER_LEN;
use crate::wire::{Records, RECORD_HEADER_LEN};

/// Compression pointers can address only the first 16 KiB of a message.
const MAX_POINTER_TARGET: usize = 0x3fff;

/// Maximum number of label positions kept as compression targets. Names
/// written after the list is full are still compressed against the names
/// before, but are not targets themselves, which makes large responses
/// slightly longer, never wrong. A 1232-octet UDP response stays far below
/// this number of labels in practice.
const MAX_TARGETS: usize = 256;

/// Returns the offset of the first name in the RDATA of the types whose
/// names may be compressed (RFC 3597 section 4), `None` for other types.
fn compressed_name_at(rtype: Rtype) -> Option<usize> {
    match rtype {
        Rtype::NS | Rtype::CNAME | Rtype::PTR | Rtype::SOA => Some(0),
        Rtype::MX => Some(2),
        _ => None,
    }
}

/// Positions of the section counts in the header.
const ANCOUNT: usize = 6;

/// A message section.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Section {
    Answer = 0,
    Authority = 1,
    Additional = 2,
}

/// A point to which the writer can be rolled back.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Mark {
    len: usize,
    names: usize,
    counts: [u16; 3],
}

/// Writes records into a response buffer with a size limit.
pub(crate) struct Writer<'b> {
    buf: &'b mut Vec<u8>,
    limit: usize,
    /// Offsets of names written so far, each a possible pointer target;
    /// the first `name_count` entries are in use. A fixed array keeps the
    /// writer free of allocations.
    names: [u16; MAX_TARGETS],
    /// The uncompressed length of the name at each target, which rules
    /// out most targets without reading the message.
    name_lens: [u8; MAX_TARGETS],
    name_count: usize,
    counts: [u16; 3],
}

impl<'b> Writer<'b> {
    /// Starts a response in `buf`: the header, then `question` as sent.
    pub(crate) fn new(buf: &'b mut Vec<u8>, header: [u8; HEADER_LEN], question: &[u8]) -> Self {
        buf.clear();
        buf.extend_from_slice(&header);
        let mut writer = Self {
            buf,
            limit: usize::MAX,
            names: [0; MAX_TARGETS],
            name_lens: [0; MAX_TARGETS],
            name_count: 0,
            counts: [0; 3],
        };
        if !question.is_empty() {
            writer.buf[4..6].copy_from_slice(&1u16.to_be_bytes());
            writer.buf.extend_from_slice(question);
            // Every label start of the question name is a pointer target.
            if let Ok(qname_len) = wire_name_len(question) {
                let mut pos = 0;
                while pos + 1 < qname_len {
                    writer.add_target(HEADER_LEN + pos, qname_len - pos);
                    pos += 1 + question[pos] as usize;
                }
            }
        }
        writer
    }

    /// Remembers the name of `len` uncompressed octets at `offset` as a
    /// compression target, if pointers can reach it and the list has room.
    /// Returns true if it was added.
    fn add_target(&mut self, offset: usize, len: usize) -> bool {
        if offset > MAX_POINTER_TARGET || self.name_count == MAX_TARGETS {
            return false;
        }
        self.names[self.name_count] = offset as u16;
        // Names are at most 255 octets long.
        self.name_lens[self.name_count] = len as u8;
        self.name_count += 1;
        true
    }

    /// Sets the size the message must not exceed.
    pub(crate) fn set_limit(&mut self, limit: usize) {
        self.limit = limit;
    }

    pub(crate) fn mark(&self) -> Mark {
        Mark {
            len: self.buf.len(),
            names: self.name_count,
            counts: self.counts,
        }
    }

    pub(crate) fn rollback(&mut self, mark: Mark) {
        self.buf.truncate(mark.len);
        self.name_count = mark.names;
        self.counts = mark.counts;
    }

    /// Returns true if the message is still within the size limit.
    pub(crate) fn fits(&self) -> bool {
        self.buf.len() <= self.limit
    }

    /// Sets bits in the header's flag octets.
    pub(crate) fn set_flags(&mut self, flags: u16) {
        let current = u16::from_be_bytes([self.buf[2], self.buf[3]]);
        self.buf[2..4].copy_from_slice(&(current | flags).to_be_bytes());
    }

    /// Writes the section counts into the header.
    pub(crate) fn finish(self) {
        for (i, count) in self.counts.iter().enumerate() {
            let pos = ANCOUNT + 2 * i;
            self.buf[pos..pos + 2].copy_from_slice(&count.to_be_bytes());
        }
    }

    /// Writes one record. `owner` and `rdata` are uncompressed wire format.
    pub(crate) fn record(
        &mut self,
        section: Section,
        owner: &[u8],
        rtype: Rtype,
        class: Class,
        ttl: u32,
        rdata: &[u8],
    ) {
        self.name(owner);
        self.buf.extend_from_slice(&rtype.to_int().to_be_bytes());
        self.buf.extend_from_slice(&class.to_int().to_be_bytes());
        self.buf.extend_from_slice(&ttl.to_be_bytes());
        self.rdata_with_length(rtype, rdata);
        let count = &mut self.counts[section as usize];
        *count = count.saturating_add(1);
    }

    /// Writes the RDATA length field and the RDATA, compressed.
    fn rdata_with_length(&mut self, rtype: Rtype, rdata: &[u8]) {
        let length_at = self.buf.len();
        self.buf.extend_from_slice(&[0, 0]);
        self.rdata(rtype, rdata);
        let length = self.buf.len() - length_at - 2;
        // RDATA in a zone is at most 65535 octets, and compression only
        // shortens it.
        let length = u16::try_from(length).unwrap_or(u16::MAX);
        self.buf[length_at..length_at + 2].copy_from_slice(&length.to_be_bytes());
    }

    /// Writes records stored in a node region (see [`crate::wire`]), all
    /// owned by `owner` and sent with `ttl`.
    ///
    /// The owner is compressed once; the records after the first point to
    /// it, which is what [`Writer::name`] would write for them.
    pub(crate) fn records(
        &mut self,
        section: Section,
        owner: &[u8],
        ttl: u32,
        records: &Records<'_>,
    ) {
        let octets = records.octets;
        let mut pos = 0;
        let mut owner_target = None;
        for _ in 0..records.count {
            match owner_target {
                Some(target) => self.pointer(target),
                None => owner_target = self.name(owner),
            }
            let header = &octets[pos..pos + RECORD_HEADER_LEN];
            let rtype = Rtype::from_int(u16::from_be_bytes([header[0], header[1]]));
            let rdlength = usize::from(u16::from_be_bytes([header[8], header[9]]));
            let rdata_start = pos + RECORD_HEADER_LEN;
            let rdata = &octets[rdata_start..rdata_start + rdlength];
            pos = rdata_start + rdlength;

            // Type and class as stored, then the TTL of this response.
            self.buf.extend_from_slice(&header[..4]);
            self.buf.extend_from_slice(&ttl.to_be_bytes());
            if compressed_name_at(rtype).is_some() {
                self.rdata_with_length(rtype, rdata);
            } else {
                self.buf.extend_from_slice(&header[8..10]);
                self.buf.extend_from_slice(rdata);
            }
            let count = &mut self.counts[section as usize];
            *count = count.saturating_add(1);
        }
    }

    /// Writes an OPT record with the given UDP payload size and TTL field.
    pub(crate) fn opt(&mut self, udp_payload: u16, ttl: u32) {
        self.buf.push(0);
        self.buf
            .extend_from_slice(&Rtype::OPT.to_int().to_be_bytes());
        self.buf.extend_from_slice(&udp_payload.to_be_bytes());
        self.buf.extend_from_slice(&ttl.to_be_bytes());
        self.buf.extend_from_slice(&[0, 0]);
        self.counts[Section::Additional as usize] += 1;
    }

    /// Writes RDATA, compressing the names of the types that allow it.
    fn rdata(&mut self, rtype: Rtype, rdata: &[u8]) {
        let Some(start) = compressed_name_at(rtype) else {
            self.buf.extend_from_slice(rdata);
            return;
        };
        // RDATA that does not hold a valid name is copied as it is.
        let Some(len) = rdata.get(start..).and_then(|rest| wire_name_len(rest).ok()) else {
            self.buf.extend_from_slice(rdata);
            return;
        };
        self.buf.extend_from_slice(&rdata[..start]);
        self.name(&rdata[start..start + len]);
        let mut rest = &rdata[start + len..];
        if rtype == Rtype::SOA {
            if let Ok(rname) = wire_name_len(rest) {
                self.name(&rest[..rname]);
                rest = &rest[rname..];
            }
        }
        self.buf.extend_from_slice(rest);
    }

    /// Writes a name, pointing to the longest suffix already written.
    /// Returns the offset of a target for the whole name, if there is one
    /// now, so that the same name can be written as a pointer to it.
    pub(crate) fn name(&mut self, wire: &[u8]) -> Option<u16> {
        // Find the first label start whose suffix is already in the message.
        let mut pos = 0;
        let mut pointer = None;
        while let Some(&len) = wire.get(pos) {
            if len == 0 {
                break;
            }
            if let Some(target) = self.find(&wire[pos..]) {
                pointer = Some(target);
                break;
            }
            pos += 1 + len as usize;
        }

        // Write the labels before it, each a new pointer target. The
        // search above found no earlier target for the whole name, so the
        // first label written, if added, is the one for the whole name.
        let mut whole = if pos == 0 { pointer } else { None };
        let mut label = 0;
        while label < pos {
            let added = self.add_target(self.buf.len(), wire.len() - label);
            if label == 0 && added {
                whole = Some(self.names[self.name_count - 1]);
            }
            let len = wire[label] as usize;
            self.buf.extend_from_slice(&wire[label..label + 1 + len]);
            label += 1 + len;
        }
        match pointer {
            Some(target) => self.pointer(target),
            None => self.buf.push(0),
        }
        whole
    }

    /// Writes a compression pointer to `target`.
    fn pointer(&mut self, target: u16) {
        self.buf.extend_from_slice(&(0xc000 | target).to_be_bytes());
    }

    /// Returns the offset of a name in the message equal to `suffix`.
    fn find(&self, suffix: &[u8]) -> Option<u16> {
        let count = self.name_count;
        let targets = self.names[..count].iter().zip(&self.name_lens[..count]);
        targets
            .filter(|(_, &len)| usize::from(len) == suffix.len())
            .map(|(&offset, _)| offset)
            .find(|&offset| self.name_equals(offset as usize, suffix))
    }

    /// Compares the possibly compressed name at `offset` with `wire`,
    /// ignoring ASCII case.
    fn name_equals(&self, mut offset: usize, wire: &[u8]) -> bool {
        let mut pos = 0;
        // The writer only creates backward pointers, and names have at most
        // 128 labels, so this loop ends; the bound guards against mistakes.
        for _ in 0..256 {
            let Some(&len) = self.buf.get(offset) else {
                return false;
            };
            if len & 0xc0 == 0xc0 {
                let Some(&low) = self.buf.get(offset + 1) else {
                    return false;
                };
                offset = (usize::from(len & 0x3f) << 8) | usize::from(low);
                continue;
            }
            let len = len as usize;
            if wire.get(pos) != Some(&(len as u8)) {
                return false;
            }
            if len == 0 {
                return true;
            }
            let (Some(ours), Some(theirs)) = (
                self.buf.get(offset + 1..offset + 1 + len),
                wire.get(pos + 1..pos + 1 + len),
            ) else {
                return false;
            };
            // An early exit, because most labels compared differ in their
            // first octets (the slice method compares every octet).
            let same = ours
                .iter()
                .zip(theirs)
                .all(|(a, b)| a.eq_ignore_ascii_case(b));
            if !same {
                return false;
            }
            offset += 1 + len;
            pos += 1 + len;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_compression_points_to_question() {
        let mut buf = Vec::new();
        let question = b"\x03www\x07example\x00\x00\x01\x00\x01";
        let mut writer = Writer::new(&mut buf, [0; HEADER_LEN], question);
        writer.record(
            Section::Answer,
            b"\x03WWW\x07example\x00",
            Rtype::CNAME,
            Class::IN,
            60,
            b"\x04mail\x07EXAMPLE\x00",
        );
        writer.finish();
        // Owner: pointer to offset 12. RDATA: "mail" then a pointer to
        // "example" at offset 16.
        let expected_tail = [
            0xc0, 12, 0, 5, 0, 1, 0, 0, 0, 60, 0, 7, 4, b'm', b'a', b'i', b'l', 0xc0, 16,
        ];
        assert!(buf.ends_with(&expected_tail), "{buf:?}");
        assert_eq!(&buf[6..8], &[0, 1]);
    }

    #[test]
    fn rrsig_signer_is_not_compressed() {
        let mut buf = Vec::new();
        let question = b"\x07example\x00\x00\x01\x00\x01";
        let mut writer = Writer::new(&mut buf, [0; HEADER_LEN], question);
        let mut rdata = vec![0; 18];
        rdata.extend_from_slice(b"\x07example\x00");
        writer.record(
            Section::Answer,
            b"\x07example\x00",
            Rtype::RRSIG,
            Class::IN,
            60,
            &rdata,
        );
        assert!(buf.ends_with(b"\x07example\x00"));
    }
}
