//! DNSSEC for keymaster: signing zones, building NSEC and NSEC3 chains,
//! and validating signed zones.
//!
//! Terms follow RFC 9499. A *signing key* is a DNSKEY with its private half;
//! a *KSK* signs the DNSKEY, CDS and CDNSKEY RRsets, a *ZSK* signs the rest,
//! and a *CSK* does both. *Authoritative* RRsets are those the zone answers
//! for: everything at the apex and at in-zone names, and at a zone cut only
//! DS and the NSEC or NSEC3 record; delegation NS records and glue are not
//! signed (RFC 4035 section 2.2).
//!
//! - [`sign`] signs a whole zone ([`sign_zone`]) or refreshes expiring
//!   signatures ([`resign_expiring`]).
//! - [`nsec`] and [`nsec3`] build the denial-of-existence chains.
//! - [`validate`] checks a signed zone the way `dnssec-verify` and
//!   `kzonecheck` do ([`verify_zone`]).
//! - [`rrsig`] and [`rdata`] hold the wire-format details shared by them.

pub mod nsec;
pub mod nsec3;
pub mod rdata;
pub mod rrsig;
pub mod sign;
pub mod validate;

pub use nsec::build_nsec_chain;
pub use nsec3::{build_nsec3_chain, nsec3_hash, Nsec3Error};
pub use sign::{
    resign_expiring, sign_zone, sign_zone_streamed, Denial, SignError, SignOptions, SignStats,
    SignedNodes, SignedZone, SigningKey,
};
pub use validate::{
    verify_zone, verify_zone_with, Finding, Problem, SignatureCheck, VerifyOptions, VerifyReport,
    VerifyStats, ZoneCheck,
};
