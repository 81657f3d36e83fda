//! Helpers: zones from master-file text, query building and a response
//! decoder written independently of the server's writer.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use keymaster_server::{answer, PublishedZone, Transport, ZoneSet};
use keymaster_zone::{
    load_zone_str, parse_name, record_to_string, Class, LoadOptions, Name, Record, Rtype,
};

pub(crate) const PEER: &str = "192.0.2.200:5300";

pub(crate) fn name(text: &str) -> Name {
    parse_name(text, &Name::root()).expect("valid test name")
}

/// Loads a zone from master-file text, keeping DNSSEC records.
pub(crate) fn published(origin: &str, text: &str) -> Arc<PublishedZone> {
    let options = LoadOptions {
        strip_dnssec: false,
        ..LoadOptions::default()
    };
    let loaded = load_zone_str(text, &name(origin), &options).expect("test zone loads");
    Arc::new(PublishedZone::new(loaded.zone).expect("test zone publishes"))
}

/// A query message: header with RD clear, one question, and an OPT
/// record when `edns` gives (payload, version, DO).
pub(crate) fn query(qname: &str, qtype: Rtype, edns: Option<(u16, u8, bool)>) -> Vec<u8> {
    query_class(qname, qtype, Class::IN, edns)
}

pub(crate) fn query_class(
    qname: &str,
    qtype: Rtype,
    class: Class,
    edns: Option<(u16, u8, bool)>,
) -> Vec<u8> {
    let mut message = vec![0xbe, 0xef, 0x00, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    message.extend_from_slice(name(qname).as_wire());
    message.extend_from_slice(&qtype.to_int().to_be_bytes());
    message.extend_from_slice(&class.to_int().to_be_bytes());
    if let Some((payload, version, dnssec_ok)) = edns {
        message[11] = 1;
        message.push(0);
        message.extend_from_slice(&41u16.to_be_bytes());
        message.extend_from_slice(&payload.to_be_bytes());
        message.extend_from_slice(&[0, version, if dnssec_ok { 0x80 } else { 0 }, 0, 0, 0]);
    }
    message
}

pub(crate) fn udp(max: u16) -> Transport {
    Transport::udp(max)
}

/// Sends `message` through `answer` over UDP with a 1232-octet limit.
pub(crate) fn ask(zones: &ZoneSet, message: &[u8]) -> Decoded {
    ask_over(zones, message, udp(1232))
}

pub(crate) fn ask_over(zones: &ZoneSet, message: &[u8], transport: Transport) -> Decoded {
    let peer: SocketAddr = PEER.parse().unwrap();
    let bytes = answer(zones, message, transport, peer).expect("a response");
    decode(&bytes)
}

/// A decoded response.
#[derive(Debug)]
pub(crate) struct Decoded {
    pub(crate) id: u16,
    pub(crate) flags: u16,
    pub(crate) size: usize,
    pub(crate) question: Vec<u8>,
    pub(crate) answer: Vec<Record>,
    pub(crate) authority: Vec<Record>,
    pub(crate) additional: Vec<Record>,
    /// UDP payload size and TTL field of the OPT record.
    pub(crate) opt: Option<(u16, u32)>,
}

impl Decoded {
    pub(crate) fn rcode(&self) -> u16 {
        let extended = self.opt.map_or(0, |(_, ttl)| (ttl >> 24) as u16);
        (extended << 4) | (self.flags & 0x0f)
    }
    pub(crate) fn aa(&self) -> bool {
        self.flags & 0x0400 != 0
    }
    pub(crate) fn tc(&self) -> bool {
        self.flags & 0x0200 != 0
    }
    pub(crate) fn answer_text(&self) -> Vec<String> {
        texts(&self.answer)
    }
    pub(crate) fn authority_text(&self) -> Vec<String> {
        texts(&self.authority)
    }
    pub(crate) fn additional_text(&self) -> Vec<String> {
        texts(&self.additional)
    }
}

/// Returns the records in presentation format, sorted, owner names in
/// lower case.
pub(crate) fn texts(records: &[Record]) -> Vec<String> {
    let mut lines: Vec<String> = records
        .iter()
        .map(|record| {
            let mut record = record.clone();
            record.owner = record.owner.to_lowercase();
            record_to_string(&record)
        })
        .collect();
    lines.sort();
    lines
}

/// Decodes a response, expanding compressed names.
pub(crate) fn decode(message: &[u8]) -> Decoded {
    let word = |pos: usize| u16::from_be_bytes([message[pos], message[pos + 1]]);
    let counts = [word(4), word(6), word(8), word(10)];
    let mut pos = 12;
    let question_start = pos;
    for _ in 0..counts[0] {
        pos = read_name(message, pos).1 + 4;
    }
    let question = message[question_start..pos].to_vec();
    let mut sections: [Vec<Record>; 3] = Default::default();
    let mut opt = None;
    for (section, &count) in counts[1..].iter().enumerate() {
        for _ in 0..count {
            let (owner, after) = read_name(message, pos);
            let rtype = Rtype::from_int(word(after));
            let class = word(after + 2);
            let ttl = u32::from_be_bytes(message[after + 4..after + 8].try_into().unwrap());
            let length = word(after + 8) as usize;
            let start = after + 10;
            pos = start + length;
            if rtype == Rtype::OPT {
                opt = Some((class, ttl));
                continue;
            }
            let rdata = expand_rdata(message, rtype, start, pos);
            sections[section].push(Record {
                owner: Name::from_wire(owner).unwrap(),
                class: Class::from_int(class),
                ttl,
                rtype,
                rdata: Bytes::from(rdata),
            });
        }
    }
    assert_eq!(pos, message.len(), "trailing octets in the response");
    let [answer, authority, additional] = sections;
    Decoded {
        id: word(0),
        flags: word(2),
        size: message.len(),
        question,
        answer,
        authority,
        additional,
        opt,
    }
}

/// Reads a possibly compressed name; returns it uncompressed and the
/// position after it.
fn read_name(message: &[u8], start: usize) -> (Vec<u8>, usize) {
    let mut name = Vec::new();
    let mut pos = start;
    let mut end = None;
    for _ in 0..128 {
        let len = message[pos];
        if len & 0xc0 == 0xc0 {
            end.get_or_insert(pos + 2);
            pos = (usize::from(len & 0x3f) << 8) | usize::from(message[pos + 1]);
            continue;
        }
        name.extend_from_slice(&message[pos..pos + 1 + len as usize]);
        pos += 1 + len as usize;
        if len == 0 {
            return (name, end.unwrap_or(pos));
        }
    }
    panic!("name at {start} has too many labels or pointers");
}

/// Returns RDATA with compressed names expanded, for the types whose
/// names may be compressed.
fn expand_rdata(message: &[u8], rtype: Rtype, start: usize, end: usize) -> Vec<u8> {
    let (fixed, names) = match rtype {
        Rtype::NS | Rtype::CNAME | Rtype::PTR => (0, 1),
        Rtype::MX => (2, 1),
        Rtype::SOA => (0, 2),
        _ => return message[start..end].to_vec(),
    };
    let mut out = message[start..start + fixed].to_vec();
    let mut pos = start + fixed;
    for _ in 0..names {
        let (name, after) = read_name(message, pos);
        out.extend_from_slice(&name);
        pos = after;
    }
    out.extend_from_slice(&message[pos..end]);
    out
}
