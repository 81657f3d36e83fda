//! Names, records, zones and master files for keymaster.
//!
//! This crate holds the data model every other part of keymaster works on:
//! [`Name`] (an uncompressed wire-format domain name), [`Record`] and
//! [`Rrset`] (with RDATA in wire format), and [`Zone`] (the RRsets of one
//! zone in canonical order, RFC 4034 section 6). It reads and writes
//! master files ([`load_zone_file`], [`write_zone`]) and converts RDATA
//! between presentation and wire format ([`rdata_from_text`],
//! [`rdata_to_text`]). It has no knowledge of keys or signing.

pub mod check;
pub mod master;
pub mod name;
pub mod rdata;
pub mod record;
pub mod zone;

pub use domain::base::iana::{Class, Rtype};
pub use master::{
    load_zone_file, load_zone_str, node_to_text, read_records_file, record_to_string, scan_records,
    write_zone, CheckError, LoadError, LoadErrorKind, LoadOptions, LoadWarning, LoadedZone,
    WarningKind, DEFAULT_MAX_FILE_SIZE, MAX_QUOTED_LINE,
};
pub use name::{CanonicalKey, Name, NameError};
pub use rdata::text::{format_utc, parse_name, parse_time as parse_rrsig_time, parse_ttl};
pub use rdata::{rdata_from_text, rdata_to_text, NameTextError, RdataError, WireError};
pub use record::{canonical_rdata, Record, Rrset};
pub use zone::{Inserted, Node, NodeKind, Zone};
