//! DNSSEC keys for keymaster.
//!
//! This crate generates and loads private keys ([`KeyPair`]), signs and
//! verifies data in the DNSSEC signature formats, builds DNSKEY and DS
//! record data, computes key tags, reads and writes BIND key files
//! ([`bind`]) and encrypts private keys at rest ([`kek`]).
//!
//! Terms: a *key tag* is the 16-bit checksum that RRSIG and DS records use to
//! name a DNSKEY (RFC 4034 Appendix B). A *KSK* signs the DNSKEY RRset and
//! carries the SEP flag, a *ZSK* signs the other RRsets, and a *CSK* does
//! both. The *signature data* of an RRSIG is its RDATA without the
//! signature field, followed by the RRset in canonical form (RFC 4034
//! section 3.1.8.1). The signer builds it, and this crate only signs it.
//!
//! All cryptography comes from aws-lc-rs, except deterministic ECDSA
//! signatures (RFC 6979), which come from the RustCrypto `p256` and `p384`
//! crates ([`KeyPair::sign_deterministic`]).
//!
//! Limitations: Ed448 keys are recognised (key tag, DS) but cannot be
//! generated, loaded or used to sign or verify; RSA private keys must have
//! 2048 to 8192 bits.

mod algorithm;
pub mod bind;
mod der;
mod deterministic;
mod dnskey;
mod error;
pub mod kek;
mod keypair;
mod verify;

pub use algorithm::{Algorithm, DigestType, UnknownAlgorithm, UnknownDigestType};
pub use dnskey::{ds_rdata, flags, key_tag, Dnskey, ShortDnskey, DNSKEY_PROTOCOL};
pub use error::{KeyError, VerifyError};
pub use keypair::{KeyPair, Signer, DEFAULT_RSA_BITS};
pub use verify::{verify, VerifyingKey};
