//! Outgoing zone transfers: AXFR (RFC 5936) and IXFR (RFC 1995).
//!
//! A transfer sends one published version of a zone. The stream keeps a
//! reference to that [`PublishedZone`] until it ends, so a version
//! published meanwhile does not mix into it. The apex SOA comes first and last; in between,
//! every RRset of every node in canonical order, each followed by its RRSIGs,
//! including NSEC and NSEC3 records, DNSKEY, CDS and CDNSKEY, delegations,
//! glue and occluded data. Records go into as many messages as needed, each
//! below 64 KiB, with names compressed within each message.
//!
//! Access: a request signed with a configured [`TsigKey`], or with a key
//! that the requested zone allows ([`PublishedZone::allow_transfer_key`]),
//! is allowed from any address; an unsigned one only from the networks of
//! [`TransferAccess::allow`]. Every message of the response to a signed
//! request is signed (see [`tsig`](crate::tsig)).
//!
//! Limitations: there is no journal, so IXFR from an older serial is
//! answered with the whole zone in AXFR form (RFC 1995 section 4). A
//! request for a name that is not a published zone apex gets NOTAUTH.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use keymaster_zone::name::MAX_NAME_LEN;
use keymaster_zone::{Class, Rtype};

use crate::answer::{answer_into, answer_reserving, Protocol, Transport};
use crate::message::{ixfr_serial, parse_query, Edns, Header, Query, HEADER_LEN};
use crate::tsig::{check_request, RequestError, Signer, TsigKey};
use crate::wire::{Records, RECORD_HEADER_LEN};
use crate::writer::{Section, Writer};
use crate::zoneset::{PublishedZone, ZoneSet};

/// Response codes used here (RFC 1035 section 4.1.1, RFC 8945).
mod rcode {
    pub(super) const FORMERR: u16 = 1;
    pub(super) const SERVFAIL: u16 = 2;
    pub(super) const NOTIMP: u16 = 4;
    pub(super) const REFUSED: u16 = 5;
    pub(super) const NOTAUTH: u16 = 9;
}

const FLAG_QR: u16 = 0x8000;
const FLAG_AA: u16 = 0x0400;
const FLAG_TC: u16 = 0x0200;
const KEEP_FLAGS: u16 = 0x7800 | 0x0100 | 0x0010;

/// Largest message over TCP.
const MAX_MESSAGE: usize = u16::MAX as usize;

/// Size of an OPT record without options.
const OPT_LEN: usize = 11;

/// The UDP payload size advertised in the OPT records of transfers.
const OPT_PAYLOAD: u16 = 1232;

/// A network given as an address and a prefix length, such as
/// `192.0.2.0/24` or `::1/128`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Network {
    address: IpAddr,
    prefix: u8,
}

/// Error from parsing a [`Network`].
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error("expected an IP address or ADDRESS/PREFIX such as 192.0.2.0/24")]
    Syntax,
    #[error("the prefix length must be at most {max}")]
    Prefix { max: u8 },
    #[error("the address has bits set after the prefix; write {expected}")]
    HostBits { expected: String },
}

impl Network {
    /// Returns true if `address` lies in this network. IPv4 addresses
    /// mapped into IPv6 count as IPv4.
    pub fn contains(&self, address: IpAddr) -> bool {
        match (self.address, address.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }

    /// Returns the loopback networks, 127.0.0.0/8 and ::1/128.
    pub fn loopback() -> Vec<Self> {
        vec![
            Self {
                address: IpAddr::from([127, 0, 0, 0]),
                prefix: 8,
            },
            Self {
                address: IpAddr::from(std::net::Ipv6Addr::LOCALHOST),
                prefix: 128,
            },
        ]
    }
}

impl FromStr for Network {
    type Err = NetworkError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let address: IpAddr = address.parse().map_err(|_| NetworkError::Syntax)?;
        let max = if address.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(prefix) => parse_prefix(prefix).ok_or(NetworkError::Syntax)?,
            None => max,
        };
        if prefix > max {
            return Err(NetworkError::Prefix { max });
        }
        let network = Self { address, prefix };
        let base = match address {
            IpAddr::V4(ip) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
                IpAddr::from(std::net::Ipv4Addr::from(u32::from(ip) & mask))
            }
            IpAddr::V6(ip) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
                IpAddr::from(std::net::Ipv6Addr::from(u128::from(ip) & mask))
            }
        };
        if base != address {
            return Err(NetworkError::HostBits {
                expected: format!("{base}/{prefix}"),
            });
        }
        Ok(network)
    }
}

/// Parses a prefix length written as plain decimal digits without a
/// leading zero, such as `24` or `0`. Signs and spaces are rejected,
/// although `u8::from_str` accepts a leading `+`.
fn parse_prefix(text: &str) -> Option<u8> {
    let digits = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    if !digits || (text.len() > 1 && text.starts_with('0')) {
        return None;
    }
    text.parse().ok()
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix)
    }
}

/// The access rules for zone transfers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransferAccess {
    /// Networks from which unsigned transfer requests are allowed.
    pub allow: Vec<Network>,
    /// Keys whose signed requests are allowed from any address.
    pub keys: Vec<TsigKey>,
}

impl Default for TransferAccess {
    /// Loopback only, no keys.
    fn default() -> Self {
        Self {
            allow: Network::loopback(),
            keys: Vec::new(),
        }
    }
}

impl TransferAccess {
    fn allows(&self, address: IpAddr) -> bool {
        self.allow.iter().any(|network| network.contains(address))
    }
}

/// The outcome of [`start`] for one message.
pub(crate) enum Start {
    /// Not a zone transfer request, so the query path must respond.
    NotTransfer,
    /// The one response message is in the output buffer.
    Reply,
    /// A zone transfer; its messages come from the stream.
    Stream(Box<ZoneStream>),
}

/// Returns the current UNIX time in seconds.
fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

/// Handles a message if it is an AXFR or IXFR request of class IN: checks
/// access and either writes the one response into `out` or returns the
/// stream of transfer messages. Other messages, malformed ones included,
/// are left to the query path.
pub(crate) fn start(
    zones: &ZoneSet,
    access: &TransferAccess,
    message: &[u8],
    protocol: Protocol,
    peer: SocketAddr,
    out: &mut Vec<u8>,
) -> Start {
    let Some(header) = Header::parse(message) else {
        return Start::NotTransfer;
    };
    if header.is_response() || header.opcode() != 0 {
        return Start::NotTransfer;
    }
    let Ok(query) = parse_query(message, header) else {
        return Start::NotTransfer;
    };
    let is_transfer = matches!(query.qtype, Rtype::AXFR | Rtype::IXFR);
    let edns_ok = query.edns.is_none_or(|edns| edns.version == 0);
    if !is_transfer || query.qclass != Class::IN || !edns_ok {
        return Start::NotTransfer;
    }
    let mut request = Request {
        query,
        peer,
        protocol,
        now: unix_now(),
    };
    request.handle(zones, access, message, out)
}

/// Answers a query that is not a zone transfer request, and signs the
/// response if the query is signed, as secondaries sign their SOA queries.
///
/// The answer leaves room for the TSIG record, so a signed UDP response
/// stays within the client's size, with TC set if records had to go. A
/// bad signature gets NOTAUTH with the TSIG error, and a malformed TSIG
/// record gets FORMERR (RFC 8945 sections 5.1 and 5.2.2.1). Returns false
/// if the message gets no response.
pub(crate) fn answer_query(
    zones: &ZoneSet,
    access: &TransferAccess,
    message: &[u8],
    transport: Transport,
    peer: SocketAddr,
    out: &mut Vec<u8>,
) -> bool {
    let signed = Header::parse(message)
        .filter(|header| header.arcount > 0 && !header.is_response())
        .and_then(|header| Some((header, parse_query(message, header).ok()?)));
    let Some((header, query)) = signed else {
        return answer_into(zones, message, transport, peer, out);
    };
    let question_end = HEADER_LEN + query.question.len();
    let now = unix_now();
    let mut error = match check_request(&access.keys, message, header, question_end, now) {
        Ok(None) => return answer_into(zones, message, transport, peer, out),
        Ok(Some(mut signer)) => {
            let reserved = signer.reserved_len();
            if !answer_reserving(zones, message, transport, peer, reserved, out) {
                return false;
            }
            signer.sign(out, now);
            return true;
        }
        Err(error) => error,
    };
    let code = match error {
        RequestError::Malformed => rcode::FORMERR,
        _ => rcode::NOTAUTH,
    };
    tracing::info!(
        %peer,
        key = %error.key_name(),
        tsig_error = ?error.tsig_error(),
        "rejected a signed query: the TSIG signature is {}",
        error.tsig_error().map_or("malformed".to_string(), |e| e.to_string()),
    );
    let request = Request {
        query,
        peer,
        protocol: transport.protocol,
        now,
    };
    request.write_empty(out, code, false);
    error.sign_response(out, now);
    true
}

/// A zone transfer request and where it came from.
struct Request<'q> {
    query: Query<'q>,
    peer: SocketAddr,
    protocol: Protocol,
    now: u64,
}

impl Request<'_> {
    fn handle(
        &mut self,
        zones: &ZoneSet,
        access: &TransferAccess,
        message: &[u8],
        out: &mut Vec<u8>,
    ) -> Start {
        let zone_text = qname_text(self.query.qname);
        let question_end = HEADER_LEN + self.query.question.len();

        // The zone is looked up first, because a zone may allow keys of its
        // own beside the configured ones.
        let mut lower = [0u8; MAX_NAME_LEN];
        let qname = self.query.qname;
        lower[..qname.len()].copy_from_slice(qname);
        lower[..qname.len()].make_ascii_lowercase();
        let zone = PublishedZone::zone_at_apex(&zones.snapshot(), &lower[..qname.len()]);
        let with_zone_keys: Vec<TsigKey>;
        let keys = match zone
            .as_ref()
            .filter(|zone| !zone.transfer_keys().is_empty())
        {
            Some(zone) => {
                with_zone_keys = access
                    .keys
                    .iter()
                    .chain(zone.transfer_keys())
                    .cloned()
                    .collect();
                &with_zone_keys
            }
            None => &access.keys,
        };

        // Authenticate: TSIG first, then the address.
        let header = self.query.header;
        let signer = match check_request(keys, message, header, question_end, self.now) {
            Ok(signer) => signer,
            Err(mut error) => {
                let code = match error {
                    RequestError::Malformed => rcode::FORMERR,
                    _ => rcode::NOTAUTH,
                };
                tracing::info!(
                    peer = %self.peer,
                    zone = %zone_text,
                    key = %error.key_name(),
                    tsig_error = ?error.tsig_error(),
                    "refused a zone transfer: the TSIG signature is {}",
                    error.tsig_error().map_or("malformed".to_string(), |e| e.to_string()),
                );
                self.write_empty(out, code, false);
                error.sign_response(out, self.now);
                return Start::Reply;
            }
        };
        let mut signer = signer;
        if signer.is_none() && !access.allows(self.peer.ip()) {
            tracing::info!(
                peer = %self.peer,
                zone = %zone_text,
                "refused a zone transfer: the client is outside the allowed networks and \
                 the request has no TSIG signature"
            );
            self.reply(out, rcode::REFUSED, None, signer.as_mut());
            return Start::Reply;
        }
        let key_name = signer.as_ref().map(|s| s.key_name().to_string());
        let key_text = key_name.as_deref().unwrap_or("none");

        // RFC 5936 section 2.2.1: NOTAUTH for a zone this server does not serve.
        let Some(zone) = zone else {
            tracing::info!(peer = %self.peer, zone = %zone_text, key = %key_text,
                "refused a zone transfer: the zone is not served here");
            self.reply(out, rcode::NOTAUTH, None, signer.as_mut());
            return Start::Reply;
        };

        // RFC 5936 section 4.2 leaves AXFR over UDP undefined and names no
        // RCODE, so it gets NOTIMP, the code for an unsupported kind of
        // query (RFC 1035 section 4.1.1).
        if self.query.qtype == Rtype::AXFR && self.protocol == Protocol::Udp {
            tracing::info!(peer = %self.peer, zone = %zone_text,
                "refused a zone transfer: AXFR over UDP; use TCP");
            self.reply(out, rcode::NOTIMP, None, signer.as_mut());
            return Start::Reply;
        }

        if self.query.qtype == Rtype::IXFR {
            let Some(client) = ixfr_serial(message, header, question_end, qname) else {
                tracing::info!(peer = %self.peer, zone = %zone_text,
                    "refused an IXFR request without a well-formed SOA record of the zone");
                self.reply(out, rcode::FORMERR, None, signer.as_mut());
                return Start::Reply;
            };
            // RFC 1995 section 2: a client as new as the server gets the
            // current SOA alone. Over UDP, an older client gets it too, with
            // TC set, so that it retries over TCP.
            let older = serial_older(client, zone.serial());
            if !older || self.protocol == Protocol::Udp {
                tracing::info!(peer = %self.peer, zone = %zone_text, serial = zone.serial(),
                    client_serial = client, key = %key_text,
                    "answered an IXFR request with the current SOA");
                self.reply(out, 0, Some((&zone, older)), signer.as_mut());
                return Start::Reply;
            }
        }

        Start::Stream(Box::new(ZoneStream {
            zone,
            id: header.id,
            flags: FLAG_QR | FLAG_AA | (header.flags & KEEP_FLAGS),
            question: self.query.question.to_vec(),
            edns: self.query.edns,
            signer,
            cursor: Cursor::default(),
            stage: Stage::FirstSoa,
            records: 0,
            messages: 0,
            peer: self.peer,
            key_name,
        }))
    }

    /// Writes a response with `rcode` and, if given, the zone's SOA in the
    /// answer section (with TC when its flag is true), then signs it.
    fn reply(
        &self,
        out: &mut Vec<u8>,
        rcode: u16,
        soa: Option<(&PublishedZone, bool)>,
        signer: Option<&mut Signer>,
    ) {
        let reserved = signer.as_ref().map_or(0, |signer| signer.reserved_len());
        let truncated = soa.is_some_and(|(_, truncated)| truncated);
        let authoritative = soa.is_some();
        let flags = self.response_flags(rcode, authoritative, truncated);
        let mut writer = Writer::new(
            out,
            header_octets(self.query.header.id, flags),
            self.query.question,
        );
        writer.set_limit(MAX_MESSAGE - reserved - OPT_LEN);
        if let Some((zone, _)) = soa {
            write_soa(&mut writer, zone);
        }
        if self.query.edns.is_some() {
            writer.opt(OPT_PAYLOAD, 0);
        }
        writer.finish();
        if let Some(signer) = signer {
            signer.sign(out, self.now);
        }
    }

    /// Writes a response without records, for TSIG errors.
    fn write_empty(&self, out: &mut Vec<u8>, rcode: u16, authoritative: bool) {
        let flags = self.response_flags(rcode, authoritative, false);
        let writer = Writer::new(
            out,
            header_octets(self.query.header.id, flags),
            self.query.question,
        );
        writer.finish();
    }

    fn response_flags(&self, rcode: u16, authoritative: bool, truncated: bool) -> u16 {
        let mut flags = FLAG_QR | (self.query.header.flags & KEEP_FLAGS) | (rcode & 0x0f);
        if authoritative {
            flags |= FLAG_AA;
        }
        if truncated {
            flags |= FLAG_TC;
        }
        flags
    }
}

/// Returns true if serial `client` is older than `ours` in the serial
/// number arithmetic of RFC 1982. The undefined case, a distance of 2^31,
/// counts as older, so that the client gets the whole zone.
fn serial_older(client: u32, ours: u32) -> bool {
    let distance = ours.wrapping_sub(client);
    distance != 0 && distance <= 0x8000_0000
}

fn header_octets(id: u16, flags: u16) -> [u8; HEADER_LEN] {
    let mut header = [0u8; HEADER_LEN];
    header[0..2].copy_from_slice(&id.to_be_bytes());
    header[2..4].copy_from_slice(&flags.to_be_bytes());
    header
}

/// Returns a wire name in presentation format, for logs.
fn qname_text(wire: &[u8]) -> String {
    keymaster_zone::Name::from_wire(bytes::Bytes::copy_from_slice(wire))
        .map(|name| name.to_string())
        .unwrap_or_else(|_| "(invalid name)".to_string())
}

/// Writes the first record of the apex SOA RRset into the answer section.
fn write_soa(writer: &mut Writer<'_>, zone: &PublishedZone) {
    let apex = zone.apex();
    let Some(soa) = apex.rrset(Rtype::SOA) else {
        return;
    };
    if let Some(record) = first_record(soa.rdatas) {
        writer.records(Section::Answer, soa.owner, soa.ttl, &record);
    }
}

/// Returns the first record of a run of records as a run of one.
fn first_record(records: Records<'_>) -> Option<Records<'_>> {
    let len = record_len(records.octets, 0)?;
    Some(Records {
        octets: &records.octets[..len],
        count: 1,
    })
}

/// Returns the length of the stored record at `offset`, if there is one.
fn record_len(octets: &[u8], offset: usize) -> Option<usize> {
    let header = octets.get(offset..offset + RECORD_HEADER_LEN)?;
    Some(RECORD_HEADER_LEN + usize::from(u16::from_be_bytes([header[8], header[9]])))
}

/// The position of the next record of a transfer: node, RRset, data
/// records (part 0) or RRSIGs (part 1), and the offset in that part.
#[derive(Clone, Copy, Debug, Default)]
struct Cursor {
    node: usize,
    rrset: usize,
    part: u8,
    offset: usize,
}

/// How far a transfer has come.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    FirstSoa,
    Body,
    LastSoa,
    Done,
}

/// Error from [`ZoneStream::next_message`].
#[derive(Debug, thiserror::Error)]
#[error("a record of {zone} does not fit in one message")]
pub(crate) struct RecordTooLarge {
    zone: String,
}

/// The messages of one zone transfer, produced one at a time from one
/// published version of the zone.
pub(crate) struct ZoneStream {
    zone: Arc<PublishedZone>,
    id: u16,
    flags: u16,
    question: Vec<u8>,
    edns: Option<Edns>,
    signer: Option<Signer>,
    cursor: Cursor,
    stage: Stage,
    records: u64,
    messages: u64,
    peer: SocketAddr,
    key_name: Option<String>,
}

impl ZoneStream {
    /// Writes the next message into `out`. Returns false when the transfer
    /// is complete, leaving `out` unchanged.
    pub(crate) fn next_message(&mut self, out: &mut Vec<u8>) -> Result<bool, RecordTooLarge> {
        if self.stage == Stage::Done {
            return Ok(false);
        }
        // The question goes into the first message only (RFC 5936
        // section 2.2.1 allows an empty question in later ones).
        let question: &[u8] = if self.messages == 0 {
            &self.question
        } else {
            &[]
        };
        let mut writer = Writer::new(out, header_octets(self.id, self.flags), question);
        let reserved = self.signer.as_ref().map_or(0, Signer::reserved_len)
            + if self.edns.is_some() { OPT_LEN } else { 0 };
        writer.set_limit(MAX_MESSAGE - reserved);

        let before = self.records;
        let zone = self.zone.clone();
        if self.stage == Stage::FirstSoa {
            write_soa(&mut writer, &zone);
            self.records += 1;
            self.stage = Stage::Body;
        }
        if self.stage == Stage::Body && self.write_body(&mut writer, &zone) {
            self.stage = Stage::LastSoa;
        }
        if self.stage == Stage::LastSoa {
            let mark = writer.mark();
            write_soa(&mut writer, &zone);
            if writer.fits() {
                self.records += 1;
                self.stage = Stage::Done;
            } else {
                writer.rollback(mark);
            }
        }
        if self.records == before {
            return Err(RecordTooLarge {
                zone: zone.origin().to_string(),
            });
        }

        if self.edns.is_some() {
            writer.opt(OPT_PAYLOAD, 0);
        }
        writer.finish();
        if let Some(signer) = &mut self.signer {
            signer.sign(out, unix_now());
        }
        self.messages += 1;
        if self.stage == Stage::Done {
            tracing::info!(
                peer = %self.peer,
                zone = %zone.origin(),
                serial = zone.serial(),
                records = self.records,
                messages = self.messages,
                key = %self.key_name.as_deref().unwrap_or("none"),
                "sent zone {} serial {} to {}",
                zone.origin(),
                zone.serial(),
                self.peer,
            );
        }
        Ok(true)
    }

    /// Writes the one response to a request that cannot be served now,
    /// SERVFAIL with the question, signed if the request was.
    pub(crate) fn write_busy(mut self, out: &mut Vec<u8>) {
        let flags = (self.flags & !FLAG_AA) | rcode::SERVFAIL;
        let mut writer = Writer::new(out, header_octets(self.id, flags), &self.question);
        if self.edns.is_some() {
            writer.opt(OPT_PAYLOAD, 0);
        }
        writer.finish();
        if let Some(signer) = &mut self.signer {
            signer.sign(out, unix_now());
        }
    }

    /// Writes records of the zone until the message is full. Returns true
    /// when every record has been written.
    fn write_body(&mut self, writer: &mut Writer<'_>, zone: &PublishedZone) -> bool {
        let apex = zone.apex_ref();
        loop {
            let Some(node_ref) = zone.node_at(self.cursor.node) else {
                return true;
            };
            let node = zone.node(node_ref);
            if self.cursor.rrset >= node.rrset_count() {
                self.cursor = Cursor {
                    node: self.cursor.node + 1,
                    ..Cursor::default()
                };
                continue;
            }
            let rrset = node.rrset_at(self.cursor.rrset);
            // The apex SOA record goes first and last, not in between; its
            // RRSIGs go here.
            let skip_data = node_ref == apex && rrset.rtype == Rtype::SOA;
            let records = match (self.cursor.part, skip_data) {
                (0, true) => Records::default(),
                (0, false) => rrset.rdatas,
                _ => rrset.signatures,
            };
            let Some(len) = record_len(records.octets, self.cursor.offset) else {
                if self.cursor.part == 0 {
                    self.cursor.part = 1;
                } else {
                    self.cursor.rrset += 1;
                    self.cursor.part = 0;
                }
                self.cursor.offset = 0;
                continue;
            };
            let offset = self.cursor.offset;
            let record = Records {
                octets: &records.octets[offset..offset + len],
                count: 1,
            };
            let mark = writer.mark();
            writer.records(Section::Answer, rrset.owner, rrset.ttl, &record);
            if !writer.fits() {
                writer.rollback(mark);
                return false;
            }
            self.records += 1;
            self.cursor.offset += len;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::skip_any_record;
    use keymaster_zone::{load_zone_str, parse_name, LoadOptions, Name};

    /// Builds a zone with `hosts` names of one TXT record each, a delegation
    /// with glue and an occluded name below the cut.
    fn zone_set(hosts: usize) -> (ZoneSet, usize) {
        let mut text = String::from("$TTL 300\n@ SOA ns hostmaster 7 3600 900 604800 300\n");
        text.push_str("@ NS ns\nns A 192.0.2.1\nsub NS ns.sub\nns.sub A 192.0.2.2\n");
        text.push_str("deep.ns.sub TXT \"occluded\"\n");
        for host in 0..hosts {
            text.push_str(&format!(
                "host{host} TXT \"record number {host} of the zone\"\n"
            ));
        }
        let origin = parse_name("example.", &Name::root()).unwrap();
        let loaded = load_zone_str(&text, &origin, &LoadOptions::default()).unwrap();
        let zones = ZoneSet::new();
        zones.publish(Arc::new(PublishedZone::new(loaded.zone).unwrap()));
        // SOA, two NS, two A, the occluded TXT and the hosts.
        (zones, 6 + hosts)
    }

    fn request(qtype: Rtype, authority_serial: Option<u32>) -> Vec<u8> {
        let mut message = vec![0x12, 0x34, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        message.extend_from_slice(b"\x07example\x00");
        message.extend_from_slice(&qtype.to_int().to_be_bytes());
        message.extend_from_slice(&[0, 1]);
        if let Some(serial) = authority_serial {
            message[9] = 1;
            message.extend_from_slice(&[0xc0, 12, 0, 6, 0, 1, 0, 0, 0, 0, 0, 22, 0, 0]);
            message.extend_from_slice(&serial.to_be_bytes());
            message.extend_from_slice(&[0; 16]);
        }
        message
    }

    fn loopback() -> SocketAddr {
        "127.0.0.1:5300".parse().unwrap()
    }

    /// Returns the types of the answer records of a response.
    fn answer_types(message: &[u8]) -> Vec<Rtype> {
        let header = Header::parse(message).unwrap();
        let mut pos = HEADER_LEN;
        if header.qdcount == 1 {
            let qname = keymaster_zone::name::wire_name_len(&message[pos..]).unwrap();
            pos += qname + 4;
        }
        let mut types = Vec::new();
        for _ in 0..header.ancount {
            let (rtype, end) = skip_any_record(message, pos).unwrap();
            types.push(rtype);
            pos = end;
        }
        types
    }

    fn rcode_of(message: &[u8]) -> u16 {
        u16::from(message[3] & 0x0f)
    }

    #[test]
    fn stream_splits_large_zone() {
        let (zones, records) = zone_set(6000);
        let mut out = Vec::new();
        let access = TransferAccess::default();
        let message = request(Rtype::AXFR, None);
        let Start::Stream(mut stream) = start(
            &zones,
            &access,
            &message,
            Protocol::Tcp,
            loopback(),
            &mut out,
        ) else {
            panic!("no transfer stream");
        };
        let mut types = Vec::new();
        let mut messages = 0;
        while stream.next_message(&mut out).unwrap() {
            assert!(out.len() <= MAX_MESSAGE);
            assert_eq!(rcode_of(&out), 0);
            types.extend(answer_types(&out));
            messages += 1;
            assert!(messages < 1000, "the transfer does not end");
        }
        assert!(messages > 2, "{messages} messages");
        // Every record once, and the SOA a second time at the end.
        assert_eq!(types.len(), records + 1);
        assert_eq!(types.first(), Some(&Rtype::SOA));
        assert_eq!(types.last(), Some(&Rtype::SOA));
        assert_eq!(types.iter().filter(|t| **t == Rtype::SOA).count(), 2);
    }

    #[test]
    fn start_applies_access_rules() {
        let (zones, _) = zone_set(3);
        let access = TransferAccess::default();
        let mut out = Vec::new();
        let outside: SocketAddr = "192.0.2.99:5300".parse().unwrap();
        let axfr = request(Rtype::AXFR, None);

        let result = start(&zones, &access, &axfr, Protocol::Tcp, outside, &mut out);
        assert!(matches!(result, Start::Reply));
        assert_eq!(rcode_of(&out), rcode::REFUSED);

        let result = start(&zones, &access, &axfr, Protocol::Udp, loopback(), &mut out);
        assert!(matches!(result, Start::Reply));
        assert_eq!(rcode_of(&out), rcode::NOTIMP);

        // IXFR from the current serial: the SOA alone; from an older one
        // over UDP: the SOA with TC set.
        let current = request(Rtype::IXFR, Some(7));
        let result = start(
            &zones,
            &access,
            &current,
            Protocol::Udp,
            loopback(),
            &mut out,
        );
        assert!(matches!(result, Start::Reply));
        assert_eq!(answer_types(&out), [Rtype::SOA]);
        assert_eq!(out[2] & 0x02, 0);
        let older = request(Rtype::IXFR, Some(6));
        let result = start(&zones, &access, &older, Protocol::Udp, loopback(), &mut out);
        assert!(matches!(result, Start::Reply));
        assert_eq!(answer_types(&out), [Rtype::SOA]);
        assert_eq!(out[2] & 0x02, 0x02);
        let result = start(&zones, &access, &older, Protocol::Tcp, loopback(), &mut out);
        assert!(matches!(result, Start::Stream(_)));

        // IXFR without the client's SOA is malformed.
        let bare = request(Rtype::IXFR, None);
        let result = start(&zones, &access, &bare, Protocol::Tcp, loopback(), &mut out);
        assert!(matches!(result, Start::Reply));
        assert_eq!(rcode_of(&out), rcode::FORMERR);
    }

    #[test]
    fn start_skips_malformed_requests() {
        let (zones, _) = zone_set(1);
        let access = TransferAccess::default();
        let mut out = Vec::new();
        let axfr = request(Rtype::AXFR, None);
        for len in 0..axfr.len() {
            let result = start(
                &zones,
                &access,
                &axfr[..len],
                Protocol::Tcp,
                loopback(),
                &mut out,
            );
            assert!(matches!(result, Start::NotTransfer), "length {len}");
        }
        let mut two_questions = axfr.clone();
        two_questions[5] = 2;
        two_questions.extend_from_slice(&axfr[HEADER_LEN..]);
        let result = start(
            &zones,
            &access,
            &two_questions,
            Protocol::Tcp,
            loopback(),
            &mut out,
        );
        assert!(matches!(result, Start::NotTransfer));
        let mut chaos = axfr.clone();
        let class_at = chaos.len() - 1;
        chaos[class_at] = 3;
        let result = start(&zones, &access, &chaos, Protocol::Tcp, loopback(), &mut out);
        assert!(matches!(result, Start::NotTransfer));
    }

    #[test]
    fn ixfr_with_bad_soa_gets_formerr() {
        let (zones, _) = zone_set(3);
        let access = TransferAccess::default();
        let mut out = Vec::new();
        // The SOA owned by another name: "org." after the question.
        let mut other_owner = request(Rtype::IXFR, Some(6));
        let at = HEADER_LEN + 13;
        other_owner.splice(at..at + 2, *b"\x03org\x00");
        // RDLENGTH 0, with the serial and timers after the record.
        let mut short = request(Rtype::IXFR, Some(6));
        short[at + 10..at + 12].copy_from_slice(&[0, 0]);
        for message in [other_owner, short] {
            let result = start(
                &zones,
                &access,
                &message,
                Protocol::Tcp,
                loopback(),
                &mut out,
            );
            assert!(matches!(result, Start::Reply));
            assert_eq!(rcode_of(&out), rcode::FORMERR);
        }
        // The owner in another case is the zone.
        let mut upper = request(Rtype::IXFR, Some(6));
        upper.splice(at..at + 2, *b"\x07EXAMPLE\x00");
        let result = start(&zones, &access, &upper, Protocol::Tcp, loopback(), &mut out);
        assert!(matches!(result, Start::Stream(_)));
    }

    fn test_key() -> TsigKey {
        let name = parse_name("transfer.", &Name::root()).unwrap();
        let secret = b"0123456789abcdef0123456789abcdef".to_vec();
        TsigKey::new(name, crate::tsig::TsigAlgorithm::HmacSha256, secret)
    }

    /// Returns a query for `qtype` at "example." with an OPT record
    /// advertising `payload`.
    fn edns_query(qtype: Rtype, payload: u16) -> Vec<u8> {
        let mut message = request(qtype, None);
        message[11] = 1;
        message.extend_from_slice(&[0, 0, 41]);
        message.extend_from_slice(&payload.to_be_bytes());
        message.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
        message
    }

    fn answer(zones: &ZoneSet, access: &TransferAccess, message: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let transport = Transport::udp(1232);
        assert!(answer_query(
            zones,
            access,
            message,
            transport,
            loopback(),
            &mut out
        ));
        out
    }

    #[test]
    fn a_zone_key_allows_transfers_of_that_zone_only() {
        let key = test_key();
        let access = TransferAccess {
            allow: Vec::new(),
            keys: Vec::new(),
        };
        let outside: SocketAddr = "192.0.2.99:5300".parse().unwrap();
        let mut axfr = request(Rtype::AXFR, None);
        crate::tsig::sign_request(&key, &mut axfr, unix_now());
        let mut out = Vec::new();

        // Without the key on the zone, the signature names an unknown key.
        let (zones, _) = zone_set(1);
        let result = start(&zones, &access, &axfr, Protocol::Tcp, outside, &mut out);
        assert!(matches!(result, Start::Reply));
        assert_eq!(rcode_of(&out), rcode::NOTAUTH);

        // With it, the transfer starts from any address.
        let text = "$TTL 300\n@ SOA ns hostmaster 7 3600 900 604800 300\n@ NS ns\nns A 192.0.2.1\n";
        let origin = parse_name("example.", &Name::root()).unwrap();
        let loaded = load_zone_str(text, &origin, &LoadOptions::default()).unwrap();
        let mut keyed = PublishedZone::new(loaded.zone).unwrap();
        keyed.allow_transfer_key(key);
        zones.publish(Arc::new(keyed));
        let result = start(&zones, &access, &axfr, Protocol::Tcp, outside, &mut out);
        assert!(matches!(result, Start::Stream(_)));
    }

    #[test]
    fn malformed_tsig_on_a_query_gets_formerr() {
        let (zones, _) = zone_set(1);
        let key = test_key();
        let access = TransferAccess {
            allow: Vec::new(),
            keys: vec![key.clone()],
        };
        let now = unix_now();
        let mut good = request(Rtype::SOA, None);
        crate::tsig::sign_request_cut(&key, &mut good, now, 32);
        let out = answer(&zones, &access, &good);
        assert_eq!(rcode_of(&out), 0);
        assert_eq!(answer_types(&out), [Rtype::SOA]);

        // A 5-octet MAC, below the minimum of RFC 8945 section 5.2.2.1.
        let mut short_mac = request(Rtype::SOA, None);
        crate::tsig::sign_request_cut(&key, &mut short_mac, now, 5);
        // TTL 1 instead of 0 (RFC 8945 section 4.2).
        let mut ttl = request(Rtype::SOA, None);
        let tsig_at = ttl.len();
        crate::tsig::sign_request_cut(&key, &mut ttl, now, 32);
        ttl[tsig_at + key.name().as_wire().len() + 7] = 1;
        for message in [short_mac, ttl] {
            let out = answer(&zones, &access, &message);
            assert_eq!(rcode_of(&out), rcode::FORMERR);
            assert!(answer_types(&out).is_empty());
        }
    }

    #[test]
    fn signed_udp_answer_fits_the_client_size() {
        // An apex TXT RRset whose answer fills most of 512 octets.
        let mut text = String::from("$TTL 300\n@ SOA ns hostmaster 7 3600 900 604800 300\n");
        text.push_str("@ NS ns\nns A 192.0.2.1\n@ TXT ");
        for _ in 0..2 {
            text.push_str(&format!("\"{}\" ", "x".repeat(200)));
        }
        text.push('\n');
        let origin = parse_name("example.", &Name::root()).unwrap();
        let loaded = load_zone_str(&text, &origin, &LoadOptions::default()).unwrap();
        let zones = ZoneSet::new();
        zones.publish(Arc::new(PublishedZone::new(loaded.zone).unwrap()));
        let key = test_key();
        let access = TransferAccess {
            allow: Vec::new(),
            keys: vec![key.clone()],
        };

        // Unsigned, the answer fits in 512 octets.
        let query = edns_query(Rtype::TXT, 512);
        let unsigned = answer(&zones, &access, &query);
        assert_eq!(answer_types(&unsigned), [Rtype::TXT]);
        assert!(unsigned.len() <= 512, "{}", unsigned.len());
        assert_eq!(unsigned[2] & 0x02, 0);

        // Signed, the TSIG record does not fit beside it: TC, and the
        // signed response stays within 512 octets.
        let mut signed = query.clone();
        crate::tsig::sign_request_cut(&key, &mut signed, unix_now(), 32);
        let out = answer(&zones, &access, &signed);
        assert!(out.len() <= 512, "{} octets", out.len());
        assert_eq!(out[2] & 0x02, 0x02, "no TC flag");
        assert_eq!(rcode_of(&out), 0);
        let arcount = u16::from_be_bytes([out[10], out[11]]);
        assert_eq!(arcount, 2, "OPT and TSIG expected");

        // With room for both, the signed answer is complete.
        let mut roomy = edns_query(Rtype::TXT, 1232);
        crate::tsig::sign_request_cut(&key, &mut roomy, unix_now(), 32);
        let out = answer(&zones, &access, &roomy);
        assert_eq!(answer_types(&out), [Rtype::TXT]);
        assert_eq!(out[2] & 0x02, 0);
    }

    #[test]
    fn network_parses_and_matches() {
        let net: Network = "192.0.2.0/24".parse().unwrap();
        assert!(net.contains("192.0.2.200".parse().unwrap()));
        assert!(!net.contains("192.0.3.1".parse().unwrap()));
        assert!(net.contains("::ffff:192.0.2.7".parse().unwrap()));
        let host: Network = "::1".parse().unwrap();
        assert!(host.contains("::1".parse().unwrap()));
        assert!(!host.contains("127.0.0.1".parse().unwrap()));
        let all: Network = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("203.0.113.9".parse().unwrap()));
        assert!(matches!(
            "192.0.2.1/24".parse::<Network>(),
            Err(NetworkError::HostBits { expected }) if expected == "192.0.2.0/24"
        ));
        assert!(matches!(
            "10.0.0.0/33".parse::<Network>(),
            Err(NetworkError::Prefix { max: 32 })
        ));
        for bad in [
            "example",
            " 10.0.0.0/8",
            "10.0.0.0 /8",
            "10.0.0.0/ 8",
            "10.0.0.0/8 ",
            "10.0.0.0/+8",
            "10.0.0.0/08",
            "10.0.0.0/",
            "10.0.0.0/-0",
            "010.0.0.0/8",
        ] {
            assert!(
                matches!(bad.parse::<Network>(), Err(NetworkError::Syntax)),
                "{bad:?} is accepted"
            );
        }
        assert_eq!("0.0.0.0/0".parse::<Network>().unwrap().prefix, 0);
        assert_eq!("::/0".parse::<Network>().unwrap().prefix, 0);
        assert_eq!("2001:db8::/32".parse::<Network>().unwrap().prefix, 32);
    }

    #[test]
    fn serial_older_follows_rfc1982() {
        assert!(serial_older(1, 2));
        assert!(!serial_older(2, 2));
        assert!(!serial_older(3, 2));
        assert!(serial_older(u32::MAX, 1));
        assert!(!serial_older(1, u32::MAX));
    }
}
