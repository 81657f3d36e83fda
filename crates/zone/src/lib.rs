//! Names, records, zones and master files for keymaster.
//!
//! This crate holds the data model every other part of keymaster works on:
//! [`Name`] (an uncompressed wire-format domain name), [`Record`] and
//! [`Rrset`] (with RDATA in wire format), and [`Zone`] (the RRsets of one
//! zone in canonical order, RFC 4034 section 6). It has no knowledge of
//! keys or signing.

pub mod name;
pub mod record;
pub mod zone;

pub use domain::base::iana::{Class, Rtype};
pub use name::{CanonicalKey, Name, NameError};
pub use record::{canonical_rdata, Record, Rrset};
pub use zone::{Inserted, Node, NodeKind, Zone};
