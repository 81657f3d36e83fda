//! Signature verification by algorithm number.
//!
//! [`verify`] takes the DNSKEY public-key field and a signature in DNSSEC
//! format. It accepts RSA keys of 1024 to 8192 bits for algorithms 5 and 7
//! (RSA/SHA-1), 8 and 10, which covers the 1024-bit keys still found in
//! signed zones. Ed448 (16) and the retired algorithms 1, 3, 6 and 12 are
//! not supported, and neither are RSA keys under 1024 bits, because
//! aws-lc-rs refuses them.

use aws_lc_rs::signature::{
    self, ParsedPublicKey, RsaParameters, VerificationAlgorithm, ECDSA_P256_SHA256_FIXED,
    ECDSA_P384_SHA384_FIXED, ED25519,
};

use crate::error::VerifyError;
use crate::keypair::{rsa_split_public_key, significant_bits};

/// Verifies `signature` over `data` with a DNSKEY public key of the IANA
/// algorithm number `algorithm`.
///
/// This parses the key on every call; a caller that verifies many
/// signatures by one key parses it once with [`VerifyingKey::new`].
pub fn verify(
    algorithm: u8,
    public_key: &[u8],
    data: &[u8],
    signature: &[u8],
) -> Result<(), VerifyError> {
    VerifyingKey::new(algorithm, public_key).verify(data, signature)
}

/// A DNSKEY public key parsed once for verifying many signatures, which
/// roughly doubles the rate for ECDSA against parsing it for each one.
#[derive(Clone, Debug)]
pub struct VerifyingKey {
    algorithm: u8,
    /// The parsed key, or why it cannot verify anything.
    key: Result<ParsedPublicKey, VerifyError>,
}

impl VerifyingKey {
    /// Parses the DNSKEY public-key field `public_key` of algorithm
    /// `algorithm`. A key that cannot be used reports why on every
    /// [`VerifyingKey::verify`].
    pub fn new(algorithm: u8, public_key: &[u8]) -> Self {
        Self {
            algorithm,
            key: parse(algorithm, public_key),
        }
    }

    /// Verifies `signature` over `data`.
    pub fn verify(&self, data: &[u8], signature: &[u8]) -> Result<(), VerifyError> {
        let key = self.key.as_ref().map_err(Clone::clone)?;
        key.verify_sig(data, signature)
            .map_err(|_| VerifyError::BadSignature {
                algorithm: self.algorithm,
            })
    }
}

/// Parses a DNSKEY public key for aws-lc-rs.
fn parse(algorithm: u8, public_key: &[u8]) -> Result<ParsedPublicKey, VerifyError> {
    let malformed = VerifyError::MalformedPublicKey { algorithm };
    let rsa = |parameters: &'static RsaParameters| {
        let (modulus, exponent) = rsa_split_public_key(public_key).ok_or(malformed.clone())?;
        let bits = significant_bits(modulus);
        if !(1024..=8192).contains(&bits) {
            return Err(VerifyError::UnsupportedRsaSize { algorithm, bits });
        }
        signature::RsaPublicKeyComponents {
            n: strip_zeros(modulus),
            e: strip_zeros(exponent),
        }
        .to_parsed_public_key(parameters)
        .map_err(|_| malformed.clone())
    };
    let point = |curve: &'static dyn VerificationAlgorithm, len: usize| {
        if public_key.len() != len {
            return Err(malformed.clone());
        }
        // aws-lc-rs expects an uncompressed SEC 1 point: 0x04 || x || y.
        let mut uncompressed = Vec::with_capacity(1 + len);
        uncompressed.push(0x04);
        uncompressed.extend_from_slice(public_key);
        ParsedPublicKey::new(curve, &uncompressed).map_err(|_| malformed.clone())
    };

    match algorithm {
        5 | 7 => rsa(&signature::RSA_PKCS1_1024_8192_SHA1_FOR_LEGACY_USE_ONLY),
        8 => rsa(&signature::RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY),
        10 => rsa(&signature::RSA_PKCS1_1024_8192_SHA512_FOR_LEGACY_USE_ONLY),
        13 => point(&ECDSA_P256_SHA256_FIXED, 64),
        14 => point(&ECDSA_P384_SHA384_FIXED, 96),
        15 => {
            if public_key.len() != 32 {
                return Err(malformed);
            }
            ParsedPublicKey::new(&ED25519, public_key).map_err(|_| malformed)
        }
        _ => Err(VerifyError::UnsupportedAlgorithm { algorithm }),
    }
}

fn strip_zeros(octets: &[u8]) -> &[u8] {
    let start = octets.iter().position(|&o| o != 0).unwrap_or(octets.len());
    &octets[start..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_rejects_unknown_algorithm() {
        assert_eq!(
            verify(16, &[0; 57], b"", &[0; 114]),
            Err(VerifyError::UnsupportedAlgorithm { algorithm: 16 })
        );
    }

    #[test]
    fn verify_rejects_short_ecdsa_key() {
        assert_eq!(
            verify(13, &[0; 63], b"", &[0; 64]),
            Err(VerifyError::MalformedPublicKey { algorithm: 13 })
        );
    }

    #[test]
    fn significant_bits_skips_leading_zeros() {
        assert_eq!(significant_bits(&[0x00, 0x80, 0x00]), 16);
        assert_eq!(significant_bits(&[0x01, 0xff]), 9);
        assert_eq!(significant_bits(&[]), 0);
    }

    #[test]
    fn verify_rejects_empty_rsa_key() {
        assert_eq!(
            verify(8, &[], b"", &[0; 128]),
            Err(VerifyError::MalformedPublicKey { algorithm: 8 })
        );
    }
}
