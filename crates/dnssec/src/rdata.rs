//! Wire-format views and builders for the DNSSEC record types.
//!
//! The zone model keeps RDATA as uncompressed wire octets. This module reads
//! the fields of RRSIG (RFC 4034 section 3.1), DNSKEY (section 2.1), DS
//! (section 5.1), NSEC (section 4.1), NSEC3 and NSEC3PARAM (RFC 5155
//! sections 3.2 and 4.2) out of those octets, and builds NSEC, NSEC3 and
//! NSEC3PARAM RDATA. Parsers return `None` on truncated or malformed RDATA;
//! callers report that as a finding rather than panicking.

use bytes::{BufMut, Bytes, BytesMut};
use keymaster_zone::name::wire_name_len;
use keymaster_zone::{Name, Rtype};

/// Length of the fixed RRSIG fields before the signer name.
pub const RRSIG_FIXED_LEN: usize = 18;

/// The fields of RRSIG RDATA.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rrsig {
    pub type_covered: Rtype,
    pub algorithm: u8,
    pub labels: u8,
    pub original_ttl: u32,
    pub expiration: u32,
    pub inception: u32,
    pub key_tag: u16,
    pub signer: Name,
    /// Length of the RDATA before the signature field, which is the part
    /// that goes into the signed data.
    pub header_len: usize,
    pub signature: Bytes,
}

impl Rrsig {
    /// Parses RRSIG RDATA.
    pub fn parse(rdata: &Bytes) -> Option<Self> {
        let fixed = rdata.get(..RRSIG_FIXED_LEN)?;
        let signer_len = wire_name_len(&rdata[RRSIG_FIXED_LEN..]).ok()?;
        let header_len = RRSIG_FIXED_LEN + signer_len;
        let signer = Name::from_wire(rdata.slice(RRSIG_FIXED_LEN..header_len)).ok()?;
        Some(Self {
            type_covered: Rtype::from_int(u16::from_be_bytes([fixed[0], fixed[1]])),
            algorithm: fixed[2],
            labels: fixed[3],
            original_ttl: read_u32(&fixed[4..8]),
            expiration: read_u32(&fixed[8..12]),
            inception: read_u32(&fixed[12..16]),
            key_tag: u16::from_be_bytes([fixed[16], fixed[17]]),
            signer,
            header_len,
            signature: rdata.slice(header_len..),
        })
    }
}

/// The fields of DNSKEY (or CDNSKEY) RDATA.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnskeyFields {
    pub flags: u16,
    pub protocol: u8,
    pub algorithm: u8,
    pub public_key: Bytes,
}

impl DnskeyFields {
    /// Parses DNSKEY RDATA.
    pub fn parse(rdata: &Bytes) -> Option<Self> {
        let fixed = rdata.get(..4)?;
        Some(Self {
            flags: u16::from_be_bytes([fixed[0], fixed[1]]),
            protocol: fixed[2],
            algorithm: fixed[3],
            public_key: rdata.slice(4..),
        })
    }
}

/// The fields of DS (or CDS) RDATA.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DsFields {
    pub key_tag: u16,
    pub algorithm: u8,
    pub digest_type: u8,
    pub digest: Bytes,
}

impl DsFields {
    /// Parses DS RDATA.
    pub fn parse(rdata: &Bytes) -> Option<Self> {
        let fixed = rdata.get(..4)?;
        Some(Self {
            key_tag: u16::from_be_bytes([fixed[0], fixed[1]]),
            algorithm: fixed[2],
            digest_type: fixed[3],
            digest: rdata.slice(4..),
        })
    }
}

/// The fields of NSEC RDATA.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NsecFields {
    pub next: Name,
    pub types: TypeBitmap,
}

impl NsecFields {
    /// Parses NSEC RDATA.
    pub fn parse(rdata: &Bytes) -> Option<Self> {
        let len = wire_name_len(rdata).ok()?;
        let next = Name::from_wire(rdata.slice(..len)).ok()?;
        let types = TypeBitmap::parse(&rdata[len..])?;
        Some(Self { next, types })
    }

    /// Builds NSEC RDATA.
    pub fn build(next: &Name, types: &TypeBitmap) -> Bytes {
        let mut out = BytesMut::with_capacity(next.as_wire().len() + 34);
        out.put_slice(next.as_wire());
        types.write(&mut out);
        out.freeze()
    }
}

/// NSEC3 hash algorithm number for SHA-1 (RFC 5155 section 11).
pub const NSEC3_SHA1: u8 = 1;
/// NSEC3 flag: the record may cover unsigned delegations (RFC 5155 section 3.1.2.1).
pub const NSEC3_FLAG_OPT_OUT: u8 = 0x01;

/// The fields of NSEC3 RDATA.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Nsec3Fields {
    pub hash_algorithm: u8,
    pub flags: u8,
    pub iterations: u16,
    pub salt: Bytes,
    pub next_hash: Bytes,
    pub types: TypeBitmap,
}

impl Nsec3Fields {
    /// Parses NSEC3 RDATA.
    pub fn parse(rdata: &Bytes) -> Option<Self> {
        let (params, rest) = Nsec3Params::parse_prefix(rdata)?;
        let hash_len = *rdata.get(rest)? as usize;
        let hash_end = rest + 1 + hash_len;
        let next_hash = rdata
            .get(rest + 1..hash_end)
            .map(|_| rdata.slice(rest + 1..hash_end))?;
        let types = TypeBitmap::parse(&rdata[hash_end..])?;
        Some(Self {
            hash_algorithm: params.hash_algorithm,
            flags: params.flags,
            iterations: params.iterations,
            salt: params.salt,
            next_hash,
            types,
        })
    }

    /// Builds NSEC3 RDATA.
    pub fn build(params: &Nsec3Params, next_hash: &[u8], types: &TypeBitmap) -> Bytes {
        let mut out = BytesMut::with_capacity(6 + params.salt.len() + next_hash.len() + 34);
        params.write(&mut out);
        out.put_u8(next_hash.len() as u8);
        out.put_slice(next_hash);
        types.write(&mut out);
        out.freeze()
    }
}

/// The parameters shared by NSEC3 and NSEC3PARAM RDATA.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Nsec3Params {
    pub hash_algorithm: u8,
    pub flags: u8,
    pub iterations: u16,
    pub salt: Bytes,
}

impl Nsec3Params {
    /// Parses NSEC3PARAM RDATA; trailing octets make it invalid.
    pub fn parse(rdata: &Bytes) -> Option<Self> {
        let (params, end) = Self::parse_prefix(rdata)?;
        (end == rdata.len()).then_some(params)
    }

    /// Parses the leading fields and returns them with the offset after the salt.
    fn parse_prefix(rdata: &Bytes) -> Option<(Self, usize)> {
        let fixed = rdata.get(..5)?;
        let salt_end = 5 + fixed[4] as usize;
        rdata.get(5..salt_end)?;
        let params = Self {
            hash_algorithm: fixed[0],
            flags: fixed[1],
            iterations: u16::from_be_bytes([fixed[2], fixed[3]]),
            salt: rdata.slice(5..salt_end),
        };
        Some((params, salt_end))
    }

    /// Builds NSEC3PARAM RDATA.
    pub fn build(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(5 + self.salt.len());
        self.write(&mut out);
        out.freeze()
    }

    fn write(&self, out: &mut BytesMut) {
        out.put_u8(self.hash_algorithm);
        out.put_u8(self.flags);
        out.put_u16(self.iterations);
        out.put_u8(self.salt.len() as u8);
        out.put_slice(&self.salt);
    }
}

/// A set of record types in the window-block form of RFC 4034 section 4.1.2.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TypeBitmap {
    /// Type numbers, sorted and without duplicates.
    types: Vec<u16>,
}

impl TypeBitmap {
    /// Creates an empty bitmap.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a type.
    pub fn insert(&mut self, rtype: Rtype) {
        let value = rtype.to_int();
        if let Err(pos) = self.types.binary_search(&value) {
            self.types.insert(pos, value);
        }
    }

    /// Returns true if the type is present.
    pub fn contains(&self, rtype: Rtype) -> bool {
        self.types.binary_search(&rtype.to_int()).is_ok()
    }

    /// Returns true if no type is present.
    pub fn is_empty(&self) -> bool {
        self.types.is_empty()
    }

    /// Returns the types in ascending order.
    pub fn iter(&self) -> impl Iterator<Item = Rtype> + '_ {
        self.types.iter().map(|&value| Rtype::from_int(value))
    }

    /// Parses the window blocks; blocks out of order, empty or longer than
    /// 32 octets make the bitmap invalid (RFC 4034 section 4.1.2).
    pub fn parse(mut wire: &[u8]) -> Option<Self> {
        let mut types = Vec::new();
        let mut last_window: Option<u8> = None;
        while !wire.is_empty() {
            let window = *wire.first()?;
            let len = *wire.get(1)? as usize;
            if len == 0 || len > 32 || last_window.is_some_and(|last| window <= last) {
                return None;
            }
            let bits = wire.get(2..2 + len)?;
            for (octet_index, &octet) in bits.iter().enumerate() {
                for bit in 0..8 {
                    if octet & (0x80 >> bit) != 0 {
                        let low = (octet_index * 8 + bit) as u16;
                        types.push((u16::from(window) << 8) | low);
                    }
                }
            }
            last_window = Some(window);
            wire = &wire[2 + len..];
        }
        Some(Self { types })
    }

    /// Appends the window blocks.
    pub fn write(&self, out: &mut BytesMut) {
        let mut index = 0;
        while index < self.types.len() {
            let window = (self.types[index] >> 8) as u8;
            let mut bits = [0u8; 32];
            let mut used = 0;
            while index < self.types.len() && (self.types[index] >> 8) as u8 == window {
                let low = (self.types[index] & 0xff) as usize;
                bits[low / 8] |= 0x80 >> (low % 8);
                used = low / 8 + 1;
                index += 1;
            }
            out.put_u8(window);
            out.put_u8(used as u8);
            out.put_slice(&bits[..used]);
        }
    }
}

impl FromIterator<Rtype> for TypeBitmap {
    fn from_iter<I: IntoIterator<Item = Rtype>>(iter: I) -> Self {
        let mut types: Vec<u16> = iter.into_iter().map(|rtype| rtype.to_int()).collect();
        types.sort_unstable();
        types.dedup();
        Self { types }
    }
}

impl std::fmt::Display for TypeBitmap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut first = true;
        for rtype in self.iter() {
            if !first {
                f.write_str(" ")?;
            }
            write!(f, "{rtype}")?;
            first = false;
        }
        Ok(())
    }
}

fn read_u32(bytes: &[u8]) -> u32 {
    u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bitmap_matches_rfc4034_example() {
        // RFC 4034 section 4.3: A MX RRSIG NSEC TYPE1234.
        let bitmap: TypeBitmap = [
            Rtype::A,
            Rtype::MX,
            Rtype::RRSIG,
            Rtype::NSEC,
            Rtype::from_int(1234),
        ]
        .into_iter()
        .collect();
        let mut out = BytesMut::new();
        bitmap.write(&mut out);
        let expected: &[u8] = &[
            0x00, 0x06, 0x40, 0x01, 0x00, 0x00, 0x00, 0x03, 0x04, 0x1b, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x20,
        ];
        assert_eq!(&out[..], expected);
        assert_eq!(TypeBitmap::parse(expected), Some(bitmap));
    }

    #[test]
    fn bitmap_rejects_unordered_windows() {
        assert_eq!(TypeBitmap::parse(&[1, 1, 0x80, 0, 1, 0x40]), None);
        assert_eq!(TypeBitmap::parse(&[0, 0]), None);
    }
}
