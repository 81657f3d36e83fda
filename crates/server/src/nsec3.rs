//! NSEC3 owner-name hashing (RFC 5155 section 5).
//!
//! The hash of a name is SHA-1 over its canonical wire form (lower case,
//! uncompressed) followed by the salt, repeated `iterations` more times
//! over the previous digest and the salt. SHA-1 is the only algorithm
//! RFC 5155 defines.

use aws_lc_rs::digest;
use keymaster_zone::name::MAX_NAME_LEN;

/// Hash algorithm number of SHA-1 in NSEC3 and NSEC3PARAM records.
pub const NSEC3_SHA1: u8 = 1;

/// Maximum iteration count accepted when a zone is published. RFC 5155
/// section 10.3 allows at most 2,500 iterations, for 4096-bit keys.
pub const MAX_ITERATIONS: u16 = 2500;

/// Length of a SHA-1 digest in octets.
pub const SHA1_LEN: usize = 20;

/// The hash parameters of an NSEC3 chain, as found in NSEC3PARAM.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Nsec3Params {
    pub algorithm: u8,
    pub iterations: u16,
    pub salt: Vec<u8>,
}

impl Nsec3Params {
    /// Parses NSEC3PARAM RDATA, or the first fields of NSEC3 RDATA.
    ///
    /// Returns `None` if the RDATA is shorter than its salt length field requires.
    pub fn from_rdata(rdata: &[u8]) -> Option<Self> {
        let algorithm = *rdata.first()?;
        let iterations = u16::from_be_bytes([*rdata.get(2)?, *rdata.get(3)?]);
        let salt_len = *rdata.get(4)? as usize;
        let salt = rdata.get(5..5 + salt_len)?.to_vec();
        Some(Self {
            algorithm,
            iterations,
            salt,
        })
    }

    /// Hashes a name given in uncompressed wire format; ASCII case is
    /// folded here, so the caller may pass any case. A name longer than
    /// 255 octets is hashed as its first 255 octets.
    pub fn hash(&self, wire_name: &[u8]) -> [u8; SHA1_LEN] {
        // The name and the salt are each at most 255 octets.
        let mut input = [0u8; 2 * MAX_NAME_LEN];
        let name_len = wire_name.len().min(MAX_NAME_LEN);
        for (to, from) in input.iter_mut().zip(&wire_name[..name_len]) {
            *to = from.to_ascii_lowercase();
        }
        let salt = &self.salt[..self.salt.len().min(MAX_NAME_LEN)];
        input[name_len..name_len + salt.len()].copy_from_slice(salt);
        let mut digest = sha1(&input[..name_len + salt.len()]);
        for _ in 0..self.iterations {
            input[..SHA1_LEN].copy_from_slice(&digest);
            input[SHA1_LEN..SHA1_LEN + salt.len()].copy_from_slice(salt);
            digest = sha1(&input[..SHA1_LEN + salt.len()]);
        }
        digest
    }
}

fn sha1(data: &[u8]) -> [u8; SHA1_LEN] {
    let digest = digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, data);
    let mut out = [0; SHA1_LEN];
    out.copy_from_slice(digest.as_ref());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use data_encoding::BASE32HEX_NOPAD;

    fn wire(text: &str) -> Vec<u8> {
        let mut out = Vec::new();
        for label in text.split('.').filter(|label| !label.is_empty()) {
            out.push(label.len() as u8);
            out.extend_from_slice(label.as_bytes());
        }
        out.push(0);
        out
    }

    #[test]
    fn hashes_match_rfc5155_appendix_a() {
        // Hash values printed in RFC 5155 Appendix A: SHA-1, 12 iterations,
        // salt aabbccdd.
        let params = Nsec3Params {
            algorithm: NSEC3_SHA1,
            iterations: 12,
            salt: vec![0xaa, 0xbb, 0xcc, 0xdd],
        };
        let cases = [
            ("example", "0p9mhaveqvm6t7vbl5lop2u3t2rp3tom"),
            ("a.example", "35mthgpgcu1qg68fab165klnsnk3dpvl"),
            ("*.w.example", "r53bq7cc2uvmubfu5ocmm6pers9tk9en"),
            ("x.y.w.EXAMPLE", "2vptu5timamqttgl4luu9kg21e0aor3s"),
        ];
        for (name, expected) in cases {
            let hash = params.hash(&wire(name));
            assert_eq!(BASE32HEX_NOPAD.encode(&hash).to_ascii_lowercase(), expected);
        }
    }
}
