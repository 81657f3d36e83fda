//! The data an RRSIG signs, and the fields a signer chooses.
//!
//! The signed data is the RRSIG RDATA without its signature field, followed
//! by every record of the RRset in canonical form and canonical order (RFC
//! 4034 section 3.1.8.1): owner name in lower case, type, class, the
//! original TTL, RDATA length and canonical RDATA (section 6.2 as amended by
//! RFC 6840 section 5.1). When the RRSIG's labels field is smaller than the
//! owner's label count, the owner was synthesised from a wildcard and the
//! signed owner is `*.` followed by the rightmost `labels` labels (RFC 4035
//! section 5.3.2).

use bytes::{BufMut, Bytes, BytesMut};
use keymaster_zone::{canonical_rdata, Class, Name, Rtype};

use crate::rdata::Rrsig;

/// Returns the RRSIG labels field for an owner: its label count, not
/// counting the root label or a leading wildcard label (RFC 4034 section 3.1.3).
pub fn rrsig_labels(owner: &Name) -> u8 {
    let count = owner.label_count();
    let count = if owner.is_wildcard() {
        count - 1
    } else {
        count
    };
    count as u8
}

/// The fields of an RRSIG chosen before signing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RrsigHeader {
    pub type_covered: Rtype,
    pub algorithm: u8,
    pub labels: u8,
    pub original_ttl: u32,
    pub expiration: u32,
    pub inception: u32,
    pub key_tag: u16,
    /// The apex, in the case the RDATA will carry.
    pub signer: Name,
}

impl RrsigHeader {
    /// Appends the RDATA up to and including the signer name, which is
    /// folded to lower case as the canonical form requires.
    pub fn write(&self, out: &mut impl BufMut) {
        out.put_u16(self.type_covered.to_int());
        out.put_u8(self.algorithm);
        out.put_u8(self.labels);
        out.put_u32(self.original_ttl);
        out.put_u32(self.expiration);
        out.put_u32(self.inception);
        out.put_u16(self.key_tag);
        for &byte in self.signer.as_wire() {
            out.put_u8(byte.to_ascii_lowercase());
        }
    }

    /// Builds the complete RRSIG RDATA from this header and a signature.
    pub fn rdata(&self, signature: &[u8]) -> Bytes {
        let mut out = BytesMut::with_capacity(18 + self.signer.as_wire().len() + signature.len());
        self.write(&mut out);
        out.put_slice(signature);
        out.freeze()
    }
}

/// The parts of an RRset that go into signed data.
pub struct SignedRrset<'a> {
    /// The owner name exactly as stored in the zone.
    pub owner: &'a Name,
    pub class: Class,
    pub rtype: Rtype,
    /// RDATA in canonical order.
    pub rdatas: &'a [Bytes],
}

/// Writes the signed data into `out`, which is cleared first.
///
/// `header` is the RRSIG RDATA up to and including the signer name, with the
/// signer in lower case. `labels` and `original_ttl` are the RRSIG's fields.
/// Records whose canonical RDATA repeats an earlier one are written once,
/// as RFC 4034 section 6.3 requires.
pub fn write_signed_data(
    out: &mut Vec<u8>,
    header: &[u8],
    labels: u8,
    original_ttl: u32,
    rrset: &SignedRrset<'_>,
) {
    out.clear();
    out.extend_from_slice(header);
    let owner_start = out.len();
    write_signed_owner(out, rrset.owner, labels);
    let owner_end = out.len();

    let mut previous: Option<std::borrow::Cow<'_, [u8]>> = None;
    for rdata in rrset.rdatas {
        let canonical = canonical_rdata(rrset.rtype, rdata);
        if previous.as_ref() == Some(&canonical) {
            continue;
        }
        if out.len() > owner_end {
            out.extend_from_within(owner_start..owner_end);
        }
        out.extend_from_slice(&rrset.rtype.to_int().to_be_bytes());
        out.extend_from_slice(&rrset.class.to_int().to_be_bytes());
        out.extend_from_slice(&original_ttl.to_be_bytes());
        out.extend_from_slice(&(canonical.len() as u16).to_be_bytes());
        out.extend_from_slice(&canonical);
        previous = Some(canonical);
    }
}

/// Writes the owner as the signed data needs it: lower case, and for an
/// owner with more labels than `labels`, the wildcard it was expanded from.
fn write_signed_owner(out: &mut Vec<u8>, owner: &Name, labels: u8) {
    let count = owner.label_count();
    let labels = labels as usize;
    if labels >= count {
        out.extend(owner.as_wire().iter().map(u8::to_ascii_lowercase));
        return;
    }
    let mut suffix = owner.clone();
    for _ in 0..count - labels {
        suffix = suffix.parent().unwrap_or_else(Name::root);
    }
    out.extend_from_slice(b"\x01*");
    out.extend(suffix.as_wire().iter().map(u8::to_ascii_lowercase));
}

/// Writes the header part of an existing RRSIG as signed data needs it,
/// with the signer name folded to lower case.
pub fn write_rrsig_header(out: &mut Vec<u8>, rdata: &[u8], rrsig: &Rrsig) {
    out.clear();
    out.extend_from_slice(&rdata[..crate::rdata::RRSIG_FIXED_LEN]);
    out.extend(rrsig.signer.as_wire().iter().map(u8::to_ascii_lowercase));
}

/// Returns the expiration of one RRSIG with jitter applied: a value in
/// `[expiration - jitter, expiration]` chosen by a fixed hash of the owner
/// (ignoring case), the covered type and the key tag.
///
/// The hash is 64-bit FNV-1a, which is defined byte for byte, so every
/// signer given the same input picks the same expiration.
pub fn jittered_expiration(
    expiration: u32,
    jitter: u32,
    owner: &Name,
    rtype: Rtype,
    key_tag: u16,
) -> u32 {
    if jitter == 0 {
        return expiration;
    }
    const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash = FNV_OFFSET;
    let tail = rtype.to_int().to_be_bytes().into_iter();
    let bytes = owner.as_wire().iter().map(u8::to_ascii_lowercase);
    for byte in bytes.chain(tail).chain(key_tag.to_be_bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(FNV_PRIME);
    }
    let span = u64::from(jitter) + 1;
    expiration.wrapping_sub((hash % span) as u32)
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

    #[test]
    fn labels_skip_wildcard() {
        // RFC 4035 appendix A: *.w.example has Labels 2, x.y.w.example 4.
        assert_eq!(rrsig_labels(&name("*.w.example")), 2);
        assert_eq!(rrsig_labels(&name("x.y.w.example")), 4);
        assert_eq!(rrsig_labels(&Name::root()), 0);
    }

    #[test]
    fn expanded_owner_becomes_wildcard() {
        let mut out = Vec::new();
        write_signed_owner(&mut out, &name("A.B.w.Example"), 2);
        assert_eq!(out, b"\x01*\x01w\x07example\x00");
    }

    #[test]
    fn jitter_stays_in_range_and_ignores_case() {
        let lower = jittered_expiration(1_000_000, 3600, &name("www.example"), Rtype::A, 7);
        let upper = jittered_expiration(1_000_000, 3600, &name("WWW.example"), Rtype::A, 7);
        assert_eq!(lower, upper);
        assert!((1_000_000 - 3600..=1_000_000).contains(&lower));
        assert_eq!(jittered_expiration(5, 0, &name("x"), Rtype::A, 1), 5);
    }
}
