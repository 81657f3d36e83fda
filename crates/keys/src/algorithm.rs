//! DNSSEC algorithm and DS digest type numbers.
//!
//! [`Algorithm`] lists the signing algorithms this crate supports, with
//! the numbers and mnemonics of the IANA "DNS Security Algorithm Numbers"
//! registry. [`DigestType`] lists the DS digest types of the IANA "Delegation
//! Signer (DS) Resource Record Digest Algorithms" registry that this crate
//! computes.

use std::fmt;
use std::str::FromStr;

/// A DNSSEC signing algorithm that keymaster supports.
///
/// Ed448 is listed so that its keys can be recognised and their key tags and
/// DS records computed, but it cannot be generated or used for signing.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    /// RSA/SHA-256, algorithm 8 (RFC 5702).
    RsaSha256,
    /// RSA/SHA-512, algorithm 10 (RFC 5702).
    RsaSha512,
    /// ECDSA with curve P-256 and SHA-256, algorithm 13 (RFC 6605).
    EcdsaP256Sha256,
    /// ECDSA with curve P-384 and SHA-384, algorithm 14 (RFC 6605).
    EcdsaP384Sha384,
    /// Ed25519, algorithm 15 (RFC 8080).
    Ed25519,
    /// Ed448, algorithm 16 (RFC 8080).
    Ed448,
}

impl Algorithm {
    /// All algorithms, in registry order.
    pub const ALL: [Self; 6] = [
        Self::RsaSha256,
        Self::RsaSha512,
        Self::EcdsaP256Sha256,
        Self::EcdsaP384Sha384,
        Self::Ed25519,
        Self::Ed448,
    ];

    /// Returns the IANA algorithm number.
    pub fn to_u8(self) -> u8 {
        match self {
            Self::RsaSha256 => 8,
            Self::RsaSha512 => 10,
            Self::EcdsaP256Sha256 => 13,
            Self::EcdsaP384Sha384 => 14,
            Self::Ed25519 => 15,
            Self::Ed448 => 16,
        }
    }

    /// Returns the algorithm with IANA number `number`, if this crate supports it.
    pub fn from_u8(number: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.to_u8() == number)
    }

    /// Returns the IANA mnemonic, such as `ECDSAP256SHA256`.
    pub fn mnemonic(self) -> &'static str {
        match self {
            Self::RsaSha256 => "RSASHA256",
            Self::RsaSha512 => "RSASHA512",
            Self::EcdsaP256Sha256 => "ECDSAP256SHA256",
            Self::EcdsaP384Sha384 => "ECDSAP384SHA384",
            Self::Ed25519 => "ED25519",
            Self::Ed448 => "ED448",
        }
    }

    /// Returns true for the RSA algorithms.
    pub fn is_rsa(self) -> bool {
        matches!(self, Self::RsaSha256 | Self::RsaSha512)
    }

    /// Returns the lower-case aliases accepted by [`FromStr`] besides the
    /// mnemonic and the number.
    fn aliases(self) -> &'static [&'static str] {
        match self {
            Self::RsaSha256 => &["rsa256"],
            Self::RsaSha512 => &["rsa512"],
            Self::EcdsaP256Sha256 => &["ecdsa256", "ecdsap256", "p256"],
            Self::EcdsaP384Sha384 => &["ecdsa384", "ecdsap384", "p384"],
            Self::Ed25519 => &[],
            Self::Ed448 => &[],
        }
    }
}

impl Default for Algorithm {
    /// ECDSA P-256, the algorithm most validators support with the smallest
    /// signatures.
    fn default() -> Self {
        Self::EcdsaP256Sha256
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.mnemonic())
    }
}

/// Error for a string that names no known algorithm.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown DNSSEC algorithm {name:?}: expected a number (8, 10, 13, 14, 15, 16) \
     or a mnemonic such as ECDSAP256SHA256"
)]
pub struct UnknownAlgorithm {
    /// The string that was parsed.
    pub name: String,
}

impl FromStr for Algorithm {
    type Err = UnknownAlgorithm;

    /// Parses a mnemonic in any case, a lower-case alias such as `ecdsa256`,
    /// or an algorithm number.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let unknown = || UnknownAlgorithm {
            name: s.to_string(),
        };
        if let Ok(number) = s.parse::<u8>() {
            return Self::from_u8(number).ok_or_else(unknown);
        }
        let lower = s.to_ascii_lowercase();
        Self::ALL
            .into_iter()
            .find(|a| a.mnemonic().eq_ignore_ascii_case(s) || a.aliases().contains(&&*lower))
            .ok_or_else(unknown)
    }
}

/// A DS digest type (RFC 4034 section 5.1.3, RFC 4509, RFC 6605).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DigestType {
    /// SHA-1, digest type 1. Kept for old parents; RFC 8624 says not to use
    /// it for new DS records.
    Sha1,
    /// SHA-256, digest type 2.
    Sha256,
    /// SHA-384, digest type 4.
    Sha384,
}

impl DigestType {
    /// Returns the IANA digest type number.
    pub fn to_u8(self) -> u8 {
        match self {
            Self::Sha1 => 1,
            Self::Sha256 => 2,
            Self::Sha384 => 4,
        }
    }

    /// Returns the digest type with IANA number `number`, if supported.
    pub fn from_u8(number: u8) -> Option<Self> {
        match number {
            1 => Some(Self::Sha1),
            2 => Some(Self::Sha256),
            4 => Some(Self::Sha384),
            _ => None,
        }
    }

    /// Returns the digest length in octets.
    pub fn digest_len(self) -> usize {
        match self {
            Self::Sha1 => 20,
            Self::Sha256 => 32,
            Self::Sha384 => 48,
        }
    }

    pub(crate) fn aws_algorithm(self) -> &'static aws_lc_rs::digest::Algorithm {
        match self {
            Self::Sha1 => &aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY,
            Self::Sha256 => &aws_lc_rs::digest::SHA256,
            Self::Sha384 => &aws_lc_rs::digest::SHA384,
        }
    }
}

impl Default for DigestType {
    /// SHA-256, the digest type RFC 8624 says every parent must accept.
    fn default() -> Self {
        Self::Sha256
    }
}

impl fmt::Display for DigestType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Sha1 => "SHA-1",
            Self::Sha256 => "SHA-256",
            Self::Sha384 => "SHA-384",
        })
    }
}

/// Error for a string that names no supported digest type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown DS digest type {name:?}: expected 1, 2, 4, SHA-1, SHA-256 or SHA-384")]
pub struct UnknownDigestType {
    /// The string that was parsed.
    pub name: String,
}

impl FromStr for DigestType {
    type Err = UnknownDigestType;

    /// Parses a number or a name such as `SHA-256` or `sha256`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let unknown = || UnknownDigestType {
            name: s.to_string(),
        };
        if let Ok(number) = s.parse::<u8>() {
            return Self::from_u8(number).ok_or_else(unknown);
        }
        match s.to_ascii_lowercase().replace('-', "").as_str() {
            "sha1" => Ok(Self::Sha1),
            "sha256" => Ok(Self::Sha256),
            "sha384" => Ok(Self::Sha384),
            _ => Err(unknown()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn algorithm_numbers_match_registry() {
        let expected = [
            (8, "RSASHA256"),
            (10, "RSASHA512"),
            (13, "ECDSAP256SHA256"),
            (14, "ECDSAP384SHA384"),
            (15, "ED25519"),
            (16, "ED448"),
        ];
        for (number, mnemonic) in expected {
            let algorithm = Algorithm::from_u8(number).unwrap();
            assert_eq!(algorithm.to_u8(), number);
            assert_eq!(algorithm.to_string(), mnemonic);
            assert_eq!(mnemonic.parse::<Algorithm>().unwrap(), algorithm);
            assert_eq!(number.to_string().parse::<Algorithm>().unwrap(), algorithm);
        }
    }

    #[test]
    fn algorithm_parses_aliases() {
        assert_eq!("ecdsa256".parse(), Ok(Algorithm::EcdsaP256Sha256));
        assert_eq!("ecdsap384sha384".parse(), Ok(Algorithm::EcdsaP384Sha384));
        assert_eq!("ed25519".parse(), Ok(Algorithm::Ed25519));
        assert_eq!("rsasha512".parse(), Ok(Algorithm::RsaSha512));
    }

    #[test]
    fn algorithm_rejects_unknown() {
        assert!("5".parse::<Algorithm>().is_err());
        assert!("ECDSA".parse::<Algorithm>().is_err());
        assert!("".parse::<Algorithm>().is_err());
    }

    #[test]
    fn digest_type_parses() {
        assert_eq!("2".parse(), Ok(DigestType::Sha256));
        assert_eq!("SHA-384".parse(), Ok(DigestType::Sha384));
        assert_eq!("sha1".parse(), Ok(DigestType::Sha1));
        assert!("3".parse::<DigestType>().is_err());
    }
}
