//! Answering queries: from query octets to response octets, without I/O.
//!
//! [`answer`] parses a query, finds the closest enclosing published zone
//! and runs the lookup of RFC 1034 section 4.3.2 in it: zone cuts give
//! referrals, DNAME records synthesize a CNAME (RFC 6672), CNAME chains are
//! followed inside the zone, and names that do not exist are answered from
//! a wildcard (RFC 4592) or with NXDOMAIN. Negative answers carry the SOA
//! with the TTL of RFC 2308 section 5, and when the DO bit is set, the NSEC
//! proofs of RFC 4035 section 3.1.3 or the NSEC3 proofs of RFC 5155
//! section 7.2.
//!
//! Choices and limitations:
//!
//! - ANY queries get a minimal answer (RFC 8482 section 4.1): the first
//!   RRset of the name in type order, with its RRSIGs when DO is set.
//! - Positive answers carry no NS RRset in the authority section. The
//!   additional section holds the addresses of in-zone MX, SRV and NS
//!   targets, and glue in referrals.
//! - A response that does not fit loses its additional records first; if
//!   the answer or authority section does not fit either, all sections are
//!   emptied and TC is set, so the client retries over TCP.
//! - AXFR and IXFR get NOTIMP here; the listeners of
//!   [`transport`](crate::transport) hand them to
//!   [`transfer`](crate::transfer) before they reach this function. Other
//!   classes than IN get REFUSED. EDNS options in the query are ignored
//!   and none are sent back.
//! - CNAME and DNAME chains are followed for at most 8 steps and never
//!   leave the zone that holds the query name.

use std::net::SocketAddr;

use bytes::Bytes;
use keymaster_zone::name::{wire_name_len, MAX_NAME_LEN};
use keymaster_zone::{Class, Name, Rtype};

use crate::message::{parse_query, parse_question, Edns, Header, ParseError, Query, HEADER_LEN};
use crate::wire::{Records, WireNode, WireRrset};
use crate::writer::{Section, Writer};
use crate::zoneset::{find_in, Denial, Entry, EntryKind, PublishedZone, ZoneMap, ZoneSet};

/// The UDP payload size advertised and used by default (the value DNS Flag
/// Day 2020 recommends against IP fragmentation).
pub const DEFAULT_UDP_PAYLOAD: u16 = 1232;

/// The smallest UDP payload every client accepts (RFC 1035 section 2.3.4).
const MIN_UDP_PAYLOAD: u16 = 512;

/// Size of an OPT record without options.
const OPT_LEN: usize = 11;

/// Maximum number of CNAME or DNAME steps followed for one query.
const MAX_CHAIN: usize = 8;

/// Response codes (RFC 1035 section 4.1.1, RFC 6672, RFC 6891).
mod rcode {
    pub(super) const NOERROR: u16 = 0;
    pub(super) const FORMERR: u16 = 1;
    pub(super) const NXDOMAIN: u16 = 3;
    pub(super) const NOTIMP: u16 = 4;
    pub(super) const REFUSED: u16 = 5;
    pub(super) const YXDOMAIN: u16 = 6;
    pub(super) const BADVERS: u16 = 16;
}

const FLAG_QR: u16 = 0x8000;
const FLAG_AA: u16 = 0x0400;
const FLAG_TC: u16 = 0x0200;
const FLAG_RD: u16 = 0x0100;
const FLAG_CD: u16 = 0x0010;
const OPCODE_MASK: u16 = 0x7800;
const EDNS_DO: u32 = 0x8000;

/// The transport a query arrived on, which sets the response size limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transport {
    pub protocol: Protocol,
    /// The largest UDP response this server sends, also advertised in OPT.
    pub max_udp_payload: u16,
}

/// UDP or TCP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    Udp,
    Tcp,
}

impl Transport {
    /// UDP with the given maximum payload size.
    pub fn udp(max_udp_payload: u16) -> Self {
        Self {
            protocol: Protocol::Udp,
            max_udp_payload,
        }
    }

    /// TCP, advertising the given UDP payload size in OPT.
    pub fn tcp(max_udp_payload: u16) -> Self {
        Self {
            protocol: Protocol::Tcp,
            max_udp_payload,
        }
    }

    /// Returns the size limit for a response to a query with `edns`.
    fn response_limit(&self, edns: Option<&Edns>) -> usize {
        match (self.protocol, edns) {
            (Protocol::Tcp, _) => usize::from(u16::MAX),
            (Protocol::Udp, None) => usize::from(MIN_UDP_PAYLOAD),
            (Protocol::Udp, Some(edns)) => {
                let ours = self.max_udp_payload.max(MIN_UDP_PAYLOAD);
                usize::from(edns.udp_payload.clamp(MIN_UDP_PAYLOAD, ours))
            }
        }
    }
}

/// Answers one query message. Returns the response octets, or `None` if
/// the message gets no response: it is shorter than a header or is itself
/// a response.
///
/// `peer` is the address the query came from; it is used for logging.
pub fn answer(
    zones: &ZoneSet,
    query: &[u8],
    transport: Transport,
    peer: SocketAddr,
) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(512);
    answer_into(zones, query, transport, peer, &mut out).then_some(out)
}

/// Answers one query message into `out`, which is cleared first, so that a
/// server loop can reuse one buffer. Returns false if the message gets no
/// response (see [`answer`]).
pub fn answer_into(
    zones: &ZoneSet,
    message: &[u8],
    transport: Transport,
    peer: SocketAddr,
    out: &mut Vec<u8>,
) -> bool {
    answer_reserving(zones, message, transport, peer, 0, out)
}

/// Answers like [`answer_into`], but keeps the response `reserved` octets
/// below the size limit, room for a TSIG record to be added afterwards.
pub(crate) fn answer_reserving(
    zones: &ZoneSet,
    message: &[u8],
    transport: Transport,
    peer: SocketAddr,
    reserved: usize,
    out: &mut Vec<u8>,
) -> bool {
    let Some(header) = Header::parse(message) else {
        tracing::trace!(%peer, len = message.len(), "dropped a message shorter than a header");
        return false;
    };
    if header.is_response() {
        tracing::trace!(%peer, "dropped a response sent as a query");
        return false;
    }
    let query = match parse_query(message, header) {
        Ok(query) => query,
        Err(error) => {
            let question = match error {
                ParseError::Question => &[][..],
                ParseError::Body => parse_question(message, header).unwrap_or_default(),
            };
            tracing::trace!(%peer, ?error, "malformed query");
            let reply = Reply::error(header, question, None, rcode::FORMERR);
            reply.encode(out, transport, reserved, &Response::new());
            return true;
        }
    };

    respond(zones, &query, transport, reserved, out);
    true
}

/// Runs the checks and the lookup for a parsed query and writes the response.
fn respond(
    zones: &ZoneSet,
    query: &Query<'_>,
    transport: Transport,
    reserved: usize,
    out: &mut Vec<u8>,
) {
    let header = query.header;
    let edns = query.edns;
    let mut reply_error = |code| {
        let reply = Reply::error(header, query.question, edns, code);
        reply.encode(out, transport, reserved, &Response::new());
    };
    if header.opcode() != 0 {
        return reply_error(rcode::NOTIMP);
    }
    if edns.is_some_and(|edns| edns.version > 0) {
        return reply_error(rcode::BADVERS);
    }
    if query.qclass != Class::IN {
        return reply_error(rcode::REFUSED);
    }
    if matches!(query.qtype, Rtype::AXFR | Rtype::IXFR) {
        return reply_error(rcode::NOTIMP);
    }
    // `parse_query` only accepts an uncompressed name of at most 255
    // octets, so the name is valid here.
    let qname = query.qname;

    // Find the zone; a DS query for a zone apex goes to the parent zone.
    let snapshot = zones.snapshot();
    let mut lower = [0u8; MAX_NAME_LEN];
    let lower = lower_into(&mut lower, query.qname);
    let Some(zone) = select_zone(&snapshot, lower, query.qtype) else {
        return reply_error(rcode::REFUSED);
    };

    let lookup = Lookup {
        zone,
        qtype: query.qtype,
        dnssec_ok: edns.is_some_and(|edns| edns.dnssec_ok),
    };
    let mut response = Response::new();
    lookup.resolve(qname, &mut response);
    lookup.add_additional(&mut response);
    let reply = Reply {
        header,
        question: query.question,
        edns,
        rcode: response.rcode,
        authoritative: response.authoritative,
    };
    reply.encode(out, transport, reserved, &response);
}

/// Returns the zone that answers a query for the lower-case wire name
/// `lower`. DS records live on the parent side of a zone cut, so a DS query
/// for the apex of one published zone goes to the published zone that
/// encloses it, if there is one.
fn select_zone<'m>(zones: &'m ZoneMap, lower: &[u8], qtype: Rtype) -> Option<&'m PublishedZone> {
    let zone = find_in(zones, lower)?;
    if qtype == Rtype::DS && zone.origin_lower() == lower && lower.len() > 1 {
        let parent = &lower[1 + lower[0] as usize..];
        if let Some(parent_zone) = find_in(zones, parent) {
            return Some(parent_zone);
        }
    }
    Some(zone)
}

/// Copies an uncompressed wire name into `buf` with ASCII letters in lower
/// case. Label length octets are below 64 and so unchanged.
fn lower_into<'b>(buf: &'b mut [u8; MAX_NAME_LEN], wire: &[u8]) -> &'b [u8] {
    let len = wire.len().min(MAX_NAME_LEN);
    for (to, from) in buf.iter_mut().zip(&wire[..len]) {
        *to = from.to_ascii_lowercase();
    }
    &buf[..len]
}

/// Returns the offsets of the label starts of a valid wire name, leftmost
/// first, followed by the offset of the root label, and the label count.
fn label_starts(wire: &[u8]) -> ([u8; 129], usize) {
    let mut starts = [0u8; 129];
    let mut pos = 0usize;
    let mut count = 0;
    while count < 128 {
        starts[count] = pos as u8;
        match wire.get(pos) {
            Some(&len) if len != 0 => pos += 1 + len as usize,
            _ => break,
        }
        count += 1;
    }
    (starts, count)
}

/// The header fields and EDNS data of a response.
struct Reply<'q> {
    header: Header,
    question: &'q [u8],
    edns: Option<Edns>,
    rcode: u16,
    authoritative: bool,
}

impl<'q> Reply<'q> {
    /// Creates a response with no records and the given response code.
    fn error(header: Header, question: &'q [u8], edns: Option<Edns>, rcode: u16) -> Self {
        Self {
            header,
            question,
            edns,
            rcode,
            authoritative: false,
        }
    }

    /// Writes the response, dropping records that do not fit in the size
    /// limit less `reserved` octets.
    fn encode(
        &self,
        out: &mut Vec<u8>,
        transport: Transport,
        reserved: usize,
        response: &Response<'_>,
    ) {
        let mut flags = FLAG_QR | (self.header.flags & (OPCODE_MASK | FLAG_RD | FLAG_CD));
        if self.authoritative {
            flags |= FLAG_AA;
        }
        flags |= self.rcode & 0x0f;
        let mut header = [0u8; HEADER_LEN];
        header[0..2].copy_from_slice(&self.header.id.to_be_bytes());
        header[2..4].copy_from_slice(&flags.to_be_bytes());

        let mut writer = Writer::new(out, header, self.question);
        let limit = transport.response_limit(self.edns.as_ref());
        let opt = if self.edns.is_some() { OPT_LEN } else { 0 };
        writer.set_limit(limit.saturating_sub(opt + reserved));

        // Answer and authority must fit whole; additional records may go.
        let start = writer.mark();
        let complete = write_items(&mut writer, Section::Answer, &response.answer)
            && write_items(&mut writer, Section::Authority, &response.authority);
        if complete {
            for item in &response.additional {
                let mark = writer.mark();
                item.write(&mut writer, Section::Additional);
                if !writer.fits() {
                    writer.rollback(mark);
                    break;
                }
            }
        } else {
            writer.rollback(start);
            writer.set_flags(FLAG_TC);
        }

        if let Some(edns) = &self.edns {
            let mut ttl = u32::from(self.rcode >> 4) << 24;
            if edns.dnssec_ok {
                ttl |= EDNS_DO;
            }
            writer.opt(transport.max_udp_payload.max(MIN_UDP_PAYLOAD), ttl);
        }
        writer.finish();
    }
}

/// Writes items into a section; returns false as soon as one does not fit.
fn write_items(writer: &mut Writer<'_>, section: Section, items: &[Item<'_>]) -> bool {
    for item in items {
        item.write(writer, section);
        if !writer.fits() {
            return false;
        }
    }
    true
}

/// One RRset of a response with the RRSIGs that go with it.
///
/// Items borrow their data from the published zone and the query message,
/// so that building a response copies no record data and touches no
/// reference counts shared with other threads.
struct Item<'z> {
    owner: Owner<'z>,
    rtype: Rtype,
    class: Class,
    ttl: u32,
    rdatas: Rdatas<'z>,
    /// RRSIG records, empty when DO is not set.
    signatures: Records<'z>,
}

/// A name in uncompressed wire format, case as found: borrowed from the
/// query or the zone, or synthesized from a DNAME.
#[derive(Clone, Debug)]
enum Owner<'z> {
    Wire(&'z [u8]),
    Synthesized(Name),
}

impl Owner<'_> {
    fn as_wire(&self) -> &[u8] {
        match self {
            Self::Wire(wire) => wire,
            Self::Synthesized(name) => name.as_wire(),
        }
    }

    /// Returns true if both are the same name, ignoring ASCII case.
    fn same_name(&self, other: &[u8]) -> bool {
        self.as_wire().eq_ignore_ascii_case(other)
    }
}

/// Returns true if the wire name `name` equals `suffix` or lies below it,
/// ignoring ASCII case. Both must be valid uncompressed names.
fn wire_ends_with(name: &[u8], suffix: &[u8]) -> bool {
    let Some(offset) = name.len().checked_sub(suffix.len()) else {
        return false;
    };
    // The suffix must start on a label boundary of `name`.
    let mut pos = 0;
    while pos < offset {
        pos += 1 + usize::from(name[pos]);
    }
    pos == offset && name[offset..].eq_ignore_ascii_case(suffix)
}

/// Record data of an [`Item`]: records stored in the zone, whose type
/// and class are those of the item, or one synthesized RDATA.
enum Rdatas<'z> {
    Zone(Records<'z>),
    Synthesized(Bytes),
}

impl Item<'_> {
    fn write(&self, writer: &mut Writer<'_>, section: Section) {
        let owner = self.owner.as_wire();
        match &self.rdatas {
            Rdatas::Zone(records) => writer.records(section, owner, self.ttl, records),
            Rdatas::Synthesized(rdata) => {
                writer.record(section, owner, self.rtype, self.class, self.ttl, rdata)
            }
        }
        writer.records(section, owner, self.ttl, &self.signatures);
    }
}

/// The sections and flags being assembled for one query.
struct Response<'z> {
    rcode: u16,
    authoritative: bool,
    answer: Vec<Item<'z>>,
    authority: Vec<Item<'z>>,
    additional: Vec<Item<'z>>,
}

impl<'z> Response<'z> {
    fn new() -> Self {
        Self {
            rcode: rcode::NOERROR,
            authoritative: true,
            answer: Vec::new(),
            authority: Vec::new(),
            additional: Vec::new(),
        }
    }

    /// Adds an item to the authority section unless the RRset is there.
    fn add_authority(&mut self, item: Item<'z>) {
        let owner = item.owner.as_wire();
        let present = self
            .authority
            .iter()
            .any(|other| other.rtype == item.rtype && other.owner.same_name(owner));
        if !present {
            self.authority.push(item);
        }
    }
}

/// The step after the lookup of one name.
enum Next<'z> {
    Done,
    /// Continue with the target of a CNAME, or the CNAME synthesized from
    /// a DNAME.
    Follow(Owner<'z>),
}

/// The result of matching a node against the query type.
enum NodeAnswer<'z> {
    Answered,
    /// The node owns a CNAME; its target follows.
    Cname(&'z [u8]),
    NoData,
}

/// The lookup of one query in one zone.
struct Lookup<'z> {
    zone: &'z PublishedZone,
    qtype: Rtype,
    dnssec_ok: bool,
}

impl<'z> Lookup<'z> {
    /// Looks up the wire name `qname` and follows CNAME and DNAME records
    /// inside the zone.
    fn resolve(&self, qname: &'z [u8], response: &mut Response<'z>) {
        let mut name = Owner::Wire(qname);
        for _ in 0..MAX_CHAIN {
            let Next::Follow(target) = self.lookup(&name, response) else {
                return;
            };
            let target_wire = target.as_wire();
            let in_zone = wire_ends_with(target_wire, self.zone.origin_lower());
            let seen = response
                .answer
                .iter()
                .any(|item| item.rtype == Rtype::CNAME && item.owner.same_name(target_wire));
            if !in_zone || seen {
                return;
            }
            name = target;
        }
    }

    /// Runs RFC 1034 section 4.3.2 step 3 for one name in the zone.
    fn lookup(&self, name: &Owner<'z>, response: &mut Response<'z>) -> Next<'z> {
        let mut lower = [0u8; MAX_NAME_LEN];
        let lower = lower_into(&mut lower, name.as_wire());
        let (starts, labels) = label_starts(lower);
        let Some(apex_index) = labels.checked_sub(self.zone.origin_labels()) else {
            return Next::Done;
        };

        // A DNAME at the apex redirects every name below it.
        let mut entry = self.zone.entry(self.zone.origin_lower());
        if apex_index > 0 && entry.is_some_and(|apex| apex.dname) {
            let apex = self.zone.apex();
            return self.dname(apex, name, starts[apex_index].into(), response);
        }

        // Walk down from the apex, one label at a time.
        for index in (0..apex_index).rev() {
            let suffix = &lower[usize::from(starts[index])..];
            let Some(found) = self.zone.entry(suffix) else {
                return self.no_such_name(name, lower, &starts, index + 1, response);
            };
            match found.kind {
                EntryKind::Cut if index > 0 || self.qtype != Rtype::DS => {
                    return self.referral(found, response);
                }
                // The walk stops at the cut or DNAME above an occluded name.
                EntryKind::Occluded => return Next::Done,
                _ => {}
            }
            if index > 0 && found.dname {
                if let Some(node) = found.node.map(|node| self.zone.node(node)) {
                    return self.dname(node, name, starts[index].into(), response);
                }
            }
            entry = Some(found);
        }
        let Some(entry) = entry else {
            return Next::Done;
        };
        self.existing(name, entry, response)
    }

    /// Answers for a name that exists in the zone.
    fn existing(&self, name: &Owner<'z>, entry: &Entry, response: &mut Response<'z>) -> Next<'z> {
        let outcome = match entry.node {
            Some(node) => self.answer_from_node(name, self.zone.node(node), response),
            None => NodeAnswer::NoData,
        };
        match outcome {
            NodeAnswer::Answered => Next::Done,
            NodeAnswer::Cname(target) => Next::Follow(Owner::Wire(target)),
            NodeAnswer::NoData => {
                self.add_negative_soa(response);
                if self.dnssec_ok {
                    self.prove_no_data(name.as_wire(), entry, response);
                }
                Next::Done
            }
        }
    }

    /// Adds the RRsets of `node` that answer the query, with `owner` as
    /// their owner name (the query name for a wildcard).
    fn answer_from_node(
        &self,
        owner: &Owner<'z>,
        node: WireNode<'z>,
        response: &mut Response<'z>,
    ) -> NodeAnswer<'z> {
        let with_data = |rrset: &WireRrset<'_>| rrset.has_data();
        match self.qtype {
            Rtype::ANY => {
                let Some(rrset) = node.rrsets().find(with_data) else {
                    return NodeAnswer::NoData;
                };
                response.answer.push(self.item_as(owner, rrset));
                NodeAnswer::Answered
            }
            Rtype::RRSIG => {
                let before = response.answer.len();
                let signed = node.rrsets().filter(|rrset| !rrset.signatures.is_empty());
                for rrset in signed {
                    response.answer.push(Item {
                        owner: owner.clone(),
                        rtype: Rtype::RRSIG,
                        class: rrset.class,
                        ttl: rrset.ttl,
                        rdatas: Rdatas::Zone(rrset.signatures),
                        signatures: Records::default(),
                    });
                }
                if response.answer.len() == before {
                    return NodeAnswer::NoData;
                }
                NodeAnswer::Answered
            }
            qtype => {
                if let Some(rrset) = node.rrset(qtype).filter(with_data) {
                    response.answer.push(self.item_as(owner, rrset));
                    return NodeAnswer::Answered;
                }
                let Some(cname) = node.rrset(Rtype::CNAME).filter(with_data) else {
                    return NodeAnswer::NoData;
                };
                response.answer.push(self.item_as(owner, cname));
                // Only RDATA that is exactly one valid name is followed.
                let target = cname.first_rdata().unwrap_or_default();
                match wire_name_len(target) {
                    Ok(len) if len == target.len() => NodeAnswer::Cname(target),
                    _ => NodeAnswer::Answered,
                }
            }
        }
    }

    /// Answers for a name that does not exist: from the wildcard at the
    /// closest encloser, or with NXDOMAIN. `encloser` is the label index of
    /// the closest encloser in `lower`.
    fn no_such_name(
        &self,
        name: &Owner<'z>,
        lower: &[u8],
        starts: &[u8; 129],
        encloser: usize,
        response: &mut Response<'z>,
    ) -> Next<'z> {
        let encloser_lower = &lower[usize::from(starts[encloser])..];
        let next_closer_lower = &lower[usize::from(starts[encloser - 1])..];
        let mut wildcard = [0u8; MAX_NAME_LEN + 2];
        wildcard[..2].copy_from_slice(b"\x01*");
        wildcard[2..2 + encloser_lower.len()].copy_from_slice(encloser_lower);
        let wildcard = &wildcard[..2 + encloser_lower.len()];
        let encloser_entry = self.zone.entry(encloser_lower);

        // A wildcard that exists at the closest encloser answers the query.
        let source = self.zone.entry(wildcard).filter(|entry| {
            matches!(
                entry.kind,
                EntryKind::Authoritative | EntryKind::EmptyNonTerminal
            )
        });
        if let Some(source) = source {
            let outcome = match source.node {
                Some(node) => self.answer_from_node(name, self.zone.node(node), response),
                None => NodeAnswer::NoData,
            };
            if let NodeAnswer::NoData = outcome {
                self.add_negative_soa(response);
            }
            if self.dnssec_ok {
                self.prove_wildcard(
                    name.as_wire(),
                    next_closer_lower,
                    encloser_entry,
                    source,
                    &outcome,
                    response,
                );
            }
            return match outcome {
                NodeAnswer::Cname(target) => Next::Follow(Owner::Wire(target)),
                _ => Next::Done,
            };
        }

        response.rcode = rcode::NXDOMAIN;
        self.add_negative_soa(response);
        if self.dnssec_ok {
            let name = name.as_wire();
            self.prove_no_name(name, next_closer_lower, encloser_entry, wildcard, response);
        }
        Next::Done
    }

    /// Adds a referral to the child zone at the cut `entry`.
    fn referral(&self, entry: &Entry, response: &mut Response<'z>) -> Next<'z> {
        let Some(node) = entry.node.map(|node| self.zone.node(node)) else {
            return Next::Done;
        };
        let Some(ns) = node.rrset(Rtype::NS) else {
            return Next::Done;
        };
        if response.answer.is_empty() {
            response.authoritative = false;
        }
        response.add_authority(self.item_unsigned(ns));

        // With DO, the DS RRset or the proof that there is none.
        if self.dnssec_ok {
            match node.rrset(Rtype::DS).filter(WireRrset::has_data) {
                Some(ds) => response.add_authority(self.item(ds)),
                None => self.prove_no_data(node.name(), entry, response),
            }
        }

        // Glue: addresses of name servers below the cut or elsewhere in the zone.
        for rdata in ns.rdatas.iter() {
            self.add_addresses(rdata, response);
        }
        Next::Done
    }

    /// Adds the DNAME RRset at `node` and the CNAME it synthesizes for
    /// `name`, whose first `prefix_len` octets are the labels below `node`.
    fn dname(
        &self,
        node: WireNode<'z>,
        name: &Owner<'z>,
        prefix_len: usize,
        response: &mut Response<'z>,
    ) -> Next<'z> {
        let Some(dname) = node.rrset(Rtype::DNAME).filter(WireRrset::has_data) else {
            return Next::Done;
        };
        response.answer.push(self.item(dname));
        let target = dname.first_rdata().unwrap_or_default();
        let mut synthesized = Vec::with_capacity(prefix_len + target.len());
        synthesized.extend_from_slice(&name.as_wire()[..prefix_len]);
        synthesized.extend_from_slice(target);
        let Ok(synthesized) = Name::from_wire(synthesized) else {
            // RFC 6672 section 2.2: the result would be longer than 255 octets.
            response.rcode = rcode::YXDOMAIN;
            return Next::Done;
        };
        response.answer.push(Item {
            owner: name.clone(),
            rtype: Rtype::CNAME,
            class: dname.class,
            ttl: dname.ttl,
            rdatas: Rdatas::Synthesized(synthesized.wire_bytes().clone()),
            signatures: Records::default(),
        });
        Next::Follow(Owner::Synthesized(synthesized))
    }

    /// Adds the apex SOA with the negative-answer TTL of RFC 2308
    /// section 5: the smaller of the SOA TTL and its MINIMUM field.
    fn add_negative_soa(&self, response: &mut Response<'z>) {
        let Some(soa) = self.zone.apex().rrset(Rtype::SOA) else {
            return;
        };
        let mut item = self.item(soa);
        item.ttl = self.zone.negative_ttl();
        response.add_authority(item);
    }

    /// Adds the proof that `name`, which exists, has no RRset of the query
    /// type: its NSEC, or its matching NSEC3 (RFC 5155 section 7.2.3).
    /// Without a matching NSEC3 (a name inside an Opt-Out span, RFC 5155
    /// section 7.2.4), the closest provable encloser proof.
    fn prove_no_data(&self, name: &[u8], entry: &Entry, response: &mut Response<'z>) {
        match self.zone.denial() {
            Denial::None => {}
            Denial::Nsec => {
                let own = entry.node.map(|node| self.zone.node(node));
                let own = own.filter(|node| node.has(Rtype::NSEC));
                if let Some(node) = own.or_else(|| self.zone.covering_nsec(name)) {
                    self.add_proof(node, Rtype::NSEC, response);
                }
            }
            Denial::Nsec3 => match self.zone.matching_nsec3(entry) {
                Some(node) => self.add_proof(node, Rtype::NSEC3, response),
                None => self.prove_closest_encloser(name, response),
            },
        }
    }

    /// Adds the closest provable encloser proof (RFC 5155 section 7.2.1)
    /// for an existing name: the NSEC3 matching its closest ancestor that
    /// has one, and the NSEC3 covering the next closer name.
    fn prove_closest_encloser(&self, name: &[u8], response: &mut Response<'z>) {
        let mut lower = [0u8; MAX_NAME_LEN];
        let lower = lower_into(&mut lower, name);
        let (starts, labels) = label_starts(lower);
        let apex_index = labels.saturating_sub(self.zone.origin_labels());
        let mut below: Option<&Entry> = None;
        for index in 0..=apex_index {
            let entry = self.zone.entry(&lower[usize::from(starts[index])..]);
            let matching = entry.and_then(|entry| self.zone.matching_nsec3(entry));
            if let Some(node) = matching {
                self.add_proof(node, Rtype::NSEC3, response);
                let cover = below.and_then(|below| self.zone.covering_nsec3_of(below));
                if let Some(node) = cover {
                    self.add_proof(node, Rtype::NSEC3, response);
                }
                return;
            }
            below = entry;
        }
    }

    /// Adds the proof for a wildcard answer that the query name does not
    /// exist (RFC 4035 section 3.1.3.3, RFC 5155 section 7.2.6). A wildcard
    /// NODATA answer also proves that the wildcard lacks the type (RFC 4035
    /// section 3.1.3.4, RFC 5155 section 7.2.5).
    fn prove_wildcard(
        &self,
        name: &[u8],
        next_closer: &[u8],
        encloser: Option<&Entry>,
        source: &Entry,
        outcome: &NodeAnswer<'_>,
        response: &mut Response<'z>,
    ) {
        let no_data = matches!(outcome, NodeAnswer::NoData);
        match self.zone.denial() {
            Denial::None => {}
            Denial::Nsec => {
                if let Some(node) = self.zone.covering_nsec(name) {
                    self.add_proof(node, Rtype::NSEC, response);
                }
                let own = source.node.map(|node| self.zone.node(node));
                if let Some(node) = own.filter(|node| no_data && node.has(Rtype::NSEC)) {
                    self.add_proof(node, Rtype::NSEC, response);
                }
            }
            Denial::Nsec3 => {
                if no_data {
                    if let Some(node) = encloser.and_then(|e| self.zone.matching_nsec3(e)) {
                        self.add_proof(node, Rtype::NSEC3, response);
                    }
                }
                self.add_covering_nsec3(next_closer, response);
                if no_data {
                    if let Some(node) = self.zone.matching_nsec3(source) {
                        self.add_proof(node, Rtype::NSEC3, response);
                    }
                }
            }
        }
    }

    /// Adds the proof that neither the query name nor a wildcard at its
    /// closest encloser exists (RFC 4035 section 3.1.3.2, RFC 5155
    /// section 7.2.2).
    fn prove_no_name(
        &self,
        name: &[u8],
        next_closer: &[u8],
        encloser: Option<&Entry>,
        wildcard: &[u8],
        response: &mut Response<'z>,
    ) {
        match self.zone.denial() {
            Denial::None => {}
            Denial::Nsec => {
                if let Some(node) = self.zone.covering_nsec(name) {
                    self.add_proof(node, Rtype::NSEC, response);
                }
                if let Some(node) = self.zone.covering_nsec(wildcard) {
                    self.add_proof(node, Rtype::NSEC, response);
                }
            }
            Denial::Nsec3 => {
                if let Some(node) = encloser.and_then(|e| self.zone.matching_nsec3(e)) {
                    self.add_proof(node, Rtype::NSEC3, response);
                }
                self.add_covering_nsec3(next_closer, response);
                self.add_covering_nsec3(wildcard, response);
            }
        }
    }

    /// Adds the NSEC3 that covers the hash of a name that does not exist.
    fn add_covering_nsec3(&self, lower: &[u8], response: &mut Response<'z>) {
        let Some(params) = self.zone.nsec3_params() else {
            return;
        };
        let hash = params.hash(lower);
        if let Some(node) = self.zone.covering_nsec3(&hash) {
            self.add_proof(node, Rtype::NSEC3, response);
        }
    }

    /// Adds the NSEC or NSEC3 RRset of `node` to the authority section.
    fn add_proof(&self, node: WireNode<'z>, rtype: Rtype, response: &mut Response<'z>) {
        if let Some(rrset) = node.rrset(rtype).filter(WireRrset::has_data) {
            response.add_authority(self.item(rrset));
        }
    }

    /// Adds the addresses of in-zone MX, SRV and NS targets in the answer
    /// section to the additional section.
    fn add_additional(&self, response: &mut Response<'z>) {
        let mut targets: Vec<&'z [u8]> = Vec::new();
        for item in &response.answer {
            let offset = match item.rtype {
                Rtype::NS => 0,
                Rtype::MX => 2,
                Rtype::SRV => 6,
                _ => continue,
            };
            if let Rdatas::Zone(records) = &item.rdatas {
                targets.extend(records.iter().filter_map(|rdata| rdata.get(offset..)));
            }
        }
        for target in targets {
            self.add_addresses(target, response);
        }
    }

    /// Adds the A and AAAA RRsets of the name at the start of `target` to
    /// the additional section, if the zone contains that name.
    fn add_addresses(&self, target: &[u8], response: &mut Response<'z>) {
        let Ok(len) = wire_name_len(target) else {
            return;
        };
        let mut lower = [0u8; MAX_NAME_LEN];
        let lower = lower_into(&mut lower, &target[..len]);
        let Some(entry) = self.zone.entry(lower) else {
            return;
        };
        let Some(node) = entry.node.map(|node| self.zone.node(node)) else {
            return;
        };
        for rtype in [Rtype::A, Rtype::AAAA] {
            let Some(rrset) = node.rrset(rtype).filter(WireRrset::has_data) else {
                continue;
            };
            let owner = rrset.owner;
            let listed = |items: &[Item<'_>]| {
                let mut same = items.iter().filter(|item| item.rtype == rtype);
                same.any(|item| item.owner.same_name(owner))
            };
            if listed(&response.answer) || listed(&response.additional) {
                continue;
            }
            // Glue below a zone cut is not authoritative and has no RRSIGs.
            let item = if entry.kind == EntryKind::Occluded {
                self.item_unsigned(rrset)
            } else {
                self.item(rrset)
            };
            response.additional.push(item);
        }
    }

    /// Returns an item for `rrset`, with its RRSIGs when DO is set.
    fn item(&self, rrset: WireRrset<'z>) -> Item<'z> {
        self.item_as(&Owner::Wire(rrset.owner), rrset)
    }

    /// Returns an item for `rrset` owned by `owner`, with its RRSIGs when
    /// DO is set.
    fn item_as(&self, owner: &Owner<'z>, rrset: WireRrset<'z>) -> Item<'z> {
        let mut item = self.item_unsigned(rrset);
        item.owner = owner.clone();
        if self.dnssec_ok {
            item.signatures = rrset.signatures;
        }
        item
    }

    /// Returns an item for `rrset` without RRSIGs.
    fn item_unsigned(&self, rrset: WireRrset<'z>) -> Item<'z> {
        Item {
            owner: Owner::Wire(rrset.owner),
            rtype: rrset.rtype,
            class: rrset.class,
            ttl: rrset.ttl,
            rdatas: Rdatas::Zone(rrset.rdatas),
            signatures: Records::default(),
        }
    }
}
