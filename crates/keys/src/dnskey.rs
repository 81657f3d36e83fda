//! DNSKEY records, key tags and DS records.
//!
//! The *key tag* is the 16-bit checksum of a DNSKEY RDATA that RRSIG and DS
//! records use to point at a key (RFC 4034 Appendix B). It is not unique, so
//! users must compare the full key after a tag match. A DS record carries the
//! key tag, the algorithm and a digest of the owner name and DNSKEY RDATA
//! (RFC 4034 section 5.1.4).

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};
use data_encoding::BASE64;
use keymaster_zone::Name;

use crate::algorithm::DigestType;

/// DNSKEY flag bits (RFC 4034 section 2.1.1, RFC 5011 section 3).
pub mod flags {
    /// Zone Key flag: the key may verify RRSIGs over zone data.
    pub const ZONE: u16 = 0x0100;
    /// Secure Entry Point flag, set on KSKs and CSKs by convention.
    pub const SEP: u16 = 0x0001;
    /// Revoke flag of RFC 5011 trust-anchor rollover.
    pub const REVOKE: u16 = 0x0080;
}

/// The only protocol value a DNSKEY may carry (RFC 4034 section 2.1.2).
pub const DNSKEY_PROTOCOL: u8 = 3;

/// Error for DNSKEY RDATA shorter than its fixed fields.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("DNSKEY RDATA is {len} octets long, shorter than the 4 octets of its fixed fields")]
pub struct ShortDnskey {
    /// Length of the RDATA that was parsed.
    pub len: usize,
}

/// The RDATA of a DNSKEY record.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Dnskey {
    /// Flag bits; see [`flags`].
    pub flags: u16,
    /// Protocol field, 3 in every valid key.
    pub protocol: u8,
    /// IANA algorithm number. A number rather than [`crate::Algorithm`] so
    /// that keys of algorithms this crate cannot use still parse.
    pub algorithm: u8,
    /// Public key in the algorithm's DNSKEY format.
    pub public_key: Bytes,
}

impl Dnskey {
    /// Builds a key with protocol 3.
    pub fn new(flags: u16, algorithm: u8, public_key: Bytes) -> Self {
        Self {
            flags,
            protocol: DNSKEY_PROTOCOL,
            algorithm,
            public_key,
        }
    }

    /// Parses DNSKEY RDATA in wire format.
    pub fn from_rdata(rdata: &[u8]) -> Result<Self, ShortDnskey> {
        if rdata.len() < 4 {
            return Err(ShortDnskey { len: rdata.len() });
        }
        Ok(Self {
            flags: u16::from_be_bytes([rdata[0], rdata[1]]),
            protocol: rdata[2],
            algorithm: rdata[3],
            public_key: Bytes::copy_from_slice(&rdata[4..]),
        })
    }

    /// Returns the RDATA in wire format.
    pub fn to_rdata(&self) -> Bytes {
        let mut rdata = BytesMut::with_capacity(4 + self.public_key.len());
        rdata.put_u16(self.flags);
        rdata.put_u8(self.protocol);
        rdata.put_u8(self.algorithm);
        rdata.put_slice(&self.public_key);
        rdata.freeze()
    }

    /// Returns the key tag of this key.
    pub fn key_tag(&self) -> u16 {
        key_tag(&self.to_rdata())
    }

    /// Returns true if the Zone Key flag is set.
    pub fn is_zone_key(&self) -> bool {
        self.flags & flags::ZONE != 0
    }

    /// Returns true if the Secure Entry Point flag is set.
    pub fn is_sep(&self) -> bool {
        self.flags & flags::SEP != 0
    }

    /// Returns true if the Revoke flag is set.
    pub fn is_revoked(&self) -> bool {
        self.flags & flags::REVOKE != 0
    }

    /// Returns the DS RDATA for this key owned by `owner`.
    pub fn ds_rdata(&self, owner: &Name, digest: DigestType) -> Bytes {
        ds_rdata(owner, &self.to_rdata(), digest)
    }
}

impl fmt::Debug for Dnskey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Dnskey({self})")
    }
}

impl fmt::Display for Dnskey {
    /// Formats the RDATA in presentation format, such as `257 3 13 <base64>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} {}",
            self.flags,
            self.protocol,
            self.algorithm,
            BASE64.encode(&self.public_key)
        )
    }
}

/// Computes the key tag of DNSKEY RDATA in wire format (RFC 4034 Appendix B).
///
/// For algorithm 1 (RSA/MD5) the tag is the most significant 16 bits of the
/// least significant 24 bits of the modulus, as Appendix B.1 requires. RDATA
/// shorter than 4 octets is summed like any other.
pub fn key_tag(dnskey_rdata: &[u8]) -> u16 {
    if dnskey_rdata.len() >= 4 && dnskey_rdata[3] == 1 {
        let len = dnskey_rdata.len();
        if len < 7 {
            return 0;
        }
        return u16::from_be_bytes([dnskey_rdata[len - 3], dnskey_rdata[len - 2]]);
    }
    let mut sum: u32 = 0;
    for (i, &octet) in dnskey_rdata.iter().enumerate() {
        sum += if i % 2 == 0 {
            u32::from(octet) << 8
        } else {
            u32::from(octet)
        };
    }
    sum += (sum >> 16) & 0xffff;
    (sum & 0xffff) as u16
}

/// Builds the DS RDATA for the DNSKEY RDATA `dnskey_rdata` owned by `owner`
/// (RFC 4034 section 5.1.4).
///
/// The digest covers the owner name in canonical (lower-case) form followed
/// by the RDATA. The algorithm field is copied from the RDATA, and is 0 if
/// the RDATA is shorter than 4 octets.
pub fn ds_rdata(owner: &Name, dnskey_rdata: &[u8], digest: DigestType) -> Bytes {
    let mut context = aws_lc_rs::digest::Context::new(digest.aws_algorithm());
    context.update(owner.to_lowercase().as_wire());
    context.update(dnskey_rdata);
    let hash = context.finish();

    let mut rdata = BytesMut::with_capacity(4 + hash.as_ref().len());
    rdata.put_u16(key_tag(dnskey_rdata));
    rdata.put_u8(dnskey_rdata.get(3).copied().unwrap_or(0));
    rdata.put_u8(digest.to_u8());
    rdata.put_slice(hash.as_ref());
    rdata.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dnskey_round_trips_rdata() {
        let rdata = [0x01, 0x01, 3, 13, 0xaa, 0xbb];
        let key = Dnskey::from_rdata(&rdata).unwrap();
        assert_eq!(key.flags, 257);
        assert!(key.is_zone_key());
        assert!(key.is_sep());
        assert!(!key.is_revoked());
        assert_eq!(&key.to_rdata()[..], &rdata[..]);
        assert_eq!(key.to_string(), "257 3 13 qrs=");
    }

    #[test]
    fn dnskey_rejects_short_rdata() {
        assert_eq!(Dnskey::from_rdata(&[1, 0, 3]), Err(ShortDnskey { len: 3 }));
    }

    #[test]
    fn key_tag_algorithm_1_uses_modulus_octets() {
        // Flags 256, protocol 3, algorithm 1, then a key ending 0x12 0x34 0x56.
        let rdata = [0x01, 0x00, 3, 1, 0x01, 0x03, 0x12, 0x34, 0x56];
        assert_eq!(key_tag(&rdata), 0x1234);
    }
}
