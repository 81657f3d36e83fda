//! Errors of key generation, loading, signing and verification.
//!
//! No error carries key material: the variants name the algorithm, sizes
//! and the failing step, and wrap the library error, which has no key bytes.

use aws_lc_rs::error::{KeyRejected, Unspecified};

use crate::algorithm::Algorithm;

/// Error of generating, loading or using a private key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The algorithm cannot be generated or used for signing.
    #[error(
        "algorithm {algorithm} ({number}) is not supported for key generation or signing",
        number = .algorithm.to_u8()
    )]
    UnsupportedAlgorithm {
        /// The requested algorithm.
        algorithm: Algorithm,
    },

    /// The RSA key size cannot be generated.
    #[error("cannot generate a {bits}-bit RSA key: use 2048, 3072, 4096 or 8192 bits")]
    UnsupportedRsaSize {
        /// The requested size in bits.
        bits: u32,
    },

    /// An RSA private key has a modulus size that cannot be used to sign.
    #[error(
        "cannot load a {bits}-bit RSA private key: signing needs 2048 to 8192 bits, \
         so roll over to a new key of at least 2048 bits"
    )]
    UnsupportedRsaKeySize {
        /// The modulus size in bits.
        bits: usize,
    },

    /// An RSA key size was given for an algorithm that is not RSA.
    #[error("an RSA key size was given for {algorithm}, which is not an RSA algorithm")]
    RsaSizeForNonRsa {
        /// The requested algorithm.
        algorithm: Algorithm,
    },

    /// The crypto library failed to generate a key.
    #[error("failed to generate a {algorithm} key")]
    Generate {
        /// The requested algorithm.
        algorithm: Algorithm,
        /// The library error.
        #[source]
        source: Unspecified,
    },

    /// Private key octets were rejected as invalid for the algorithm.
    #[error("invalid {algorithm} private key")]
    InvalidPrivateKey {
        /// The algorithm the key was loaded for.
        algorithm: Algorithm,
        /// The library error, which describes the problem without key bytes.
        #[source]
        source: KeyRejected,
    },

    /// A DER structure that aws-lc-rs wrote for the key could not be read.
    #[error("unexpected DER encoding of a {algorithm} key from aws-lc-rs")]
    UnexpectedDer {
        /// The key's algorithm.
        algorithm: Algorithm,
    },

    /// The public key could not be computed from the private key.
    #[error("failed to compute the public key of a {algorithm} private key")]
    PublicKey {
        /// The key's algorithm.
        algorithm: Algorithm,
        /// The library error.
        #[source]
        source: Unspecified,
    },

    /// The crypto library failed to sign.
    #[error("failed to sign with a {algorithm} key")]
    Sign {
        /// The key's algorithm.
        algorithm: Algorithm,
        /// The library error.
        #[source]
        source: Unspecified,
    },

    /// Deterministic signatures were requested from a key that cannot make them.
    #[error(
        "this {algorithm} key cannot sign deterministically: \
         turn deterministic signing off or use a key held in memory"
    )]
    NotDeterministic {
        /// The key's algorithm.
        algorithm: Algorithm,
    },

    /// The PKCS #8 document of an ECDSA key could not be loaded into the
    /// deterministic (RFC 6979) signer.
    #[error("cannot load the {algorithm} private key into the RFC 6979 signer")]
    DeterministicKey {
        /// The key's algorithm.
        algorithm: Algorithm,
        /// The PKCS #8 decoding error, which carries no key bytes. Boxed
        /// because it is larger than every other variant.
        #[source]
        source: Box<p256::pkcs8::Error>,
    },

    /// The deterministic (RFC 6979) signer failed to sign.
    #[error("failed to sign deterministically with a {algorithm} key")]
    DeterministicSign {
        /// The key's algorithm.
        algorithm: Algorithm,
        /// The library error.
        #[source]
        source: p256::ecdsa::Error,
    },
}

/// Error of verifying a signature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The algorithm number is not one this crate can verify.
    #[error("cannot verify signatures of DNSSEC algorithm {algorithm}")]
    UnsupportedAlgorithm {
        /// The IANA algorithm number.
        algorithm: u8,
    },

    /// The DNSKEY public key field is malformed for its algorithm.
    #[error("malformed public key for DNSSEC algorithm {algorithm}")]
    MalformedPublicKey {
        /// The IANA algorithm number.
        algorithm: u8,
    },

    /// The RSA modulus is outside the 1024 to 8192 bits that aws-lc-rs
    /// verifies.
    #[error("cannot verify with a {bits}-bit RSA key: the supported sizes are 1024 to 8192 bits")]
    UnsupportedRsaSize {
        /// The IANA algorithm number.
        algorithm: u8,
        /// The modulus size in bits.
        bits: usize,
    },

    /// The signature does not match the data and key.
    #[error("signature of DNSSEC algorithm {algorithm} does not verify")]
    BadSignature {
        /// The IANA algorithm number.
        algorithm: u8,
    },
}
