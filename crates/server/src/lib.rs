//! The authoritative DNS server of keymaster.
//!
//! This crate answers queries for complete zones handed to it; it knows
//! nothing of keys or signing. A signed zone arrives with its RRSIG, NSEC,
//! NSEC3, NSEC3PARAM and DNSKEY records already in place, and the server
//! only selects and copies them into responses.
//!
//! - [`ZoneSet`] holds the published zones, each a [`PublishedZone`]
//!   indexed once per version; publishing swaps a pointer so the query
//!   path never waits.
//! - [`answer`] turns query octets into response octets without I/O, so
//!   every protocol case is testable without sockets.
//! - [`Server`] listens on UDP and TCP and calls [`answer_into`] for each
//!   message, or [`transfer`] for AXFR and IXFR requests, which
//!   [`TransferAccess`] allows by address or by TSIG key ([`tsig`]).
//!
//! The module docs of [`answer`](mod@answer), [`zoneset`] and
//! [`transport`] list what is not supported.

pub mod answer;
mod message;
pub mod nsec3;
pub mod transfer;
pub mod transport;
pub mod tsig;
mod wire;
mod writer;
pub mod zoneset;

pub use answer::{answer, answer_into, Protocol, Transport, DEFAULT_UDP_PAYLOAD};
pub use message::read_name_keeping_case;
pub use transfer::{Network, NetworkError, TransferAccess};
pub use transport::{BindError, Server, ServerConfig};
pub use tsig::{sign_request, TsigAlgorithm, TsigKey, UnknownTsigAlgorithm};
pub use zoneset::{PublishError, PublishedZone, ZoneSet};
