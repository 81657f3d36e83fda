//! Parsing of query messages (RFC 1035 section 4.1, RFC 6891 section 6).
//!
//! The parser reads the header, the single question and the OPT record in
//! place, without allocating. It is written here rather than taken from
//! `domain`, whose message parser builds more than a query needs and whose
//! compressed-name handling would have to be bounded again anyway.
//!
//! Question names must be uncompressed: a compression pointer can only
//! point back into the header from there, so it makes the query malformed.
//! Names in the answer, authority and additional sections may be
//! compressed; at most 128 pointers are followed per name.

use keymaster_zone::{Class, Rtype};

/// Size of the message header.
pub(crate) const HEADER_LEN: usize = 12;

/// The fields of a query header that a response echoes or depends on.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Header {
    pub(crate) id: u16,
    /// Flag octets 2 and 3 as sent.
    pub(crate) flags: u16,
    pub(crate) qdcount: u16,
    pub(crate) ancount: u16,
    pub(crate) nscount: u16,
    pub(crate) arcount: u16,
}

impl Header {
    /// Reads the header. Returns `None` if the message is too short.
    pub(crate) fn parse(message: &[u8]) -> Option<Self> {
        let word = |pos: usize| -> Option<u16> {
            Some(u16::from_be_bytes([
                *message.get(pos)?,
                *message.get(pos + 1)?,
            ]))
        };
        Some(Self {
            id: word(0)?,
            flags: word(2)?,
            qdcount: word(4)?,
            ancount: word(6)?,
            nscount: word(8)?,
            arcount: word(10)?,
        })
    }

    /// Returns true if the QR bit marks the message as a response.
    pub(crate) fn is_response(&self) -> bool {
        self.flags & 0x8000 != 0
    }

    pub(crate) fn opcode(&self) -> u8 {
        ((self.flags >> 11) & 0x0f) as u8
    }
}

/// The EDNS parameters of a query's OPT record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Edns {
    /// The requestor's UDP payload size, as sent.
    pub(crate) udp_payload: u16,
    pub(crate) version: u8,
    pub(crate) dnssec_ok: bool,
}

/// A parsed query.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Query<'a> {
    pub(crate) header: Header,
    /// The question name in wire format, case as sent.
    pub(crate) qname: &'a [u8],
    pub(crate) qtype: Rtype,
    pub(crate) qclass: Class,
    /// The question section as sent, for echoing.
    pub(crate) question: &'a [u8],
    pub(crate) edns: Option<Edns>,
}

/// The part of a query with a readable header that failed to parse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ParseError {
    /// The question section is missing or malformed.
    Question,
    /// The question is fine but a later section is malformed, or there is
    /// more than one OPT record.
    Body,
}

/// Parses the question and the OPT record of a message whose header is
/// `header`.
pub(crate) fn parse_query(message: &[u8], header: Header) -> Result<Query<'_>, ParseError> {
    if header.qdcount != 1 {
        return Err(ParseError::Question);
    }
    let qname_len = uncompressed_name_len(message, HEADER_LEN).ok_or(ParseError::Question)?;
    let qname = &message[HEADER_LEN..HEADER_LEN + qname_len];
    let fixed = HEADER_LEN + qname_len;
    let qtype = read_u16(message, fixed).ok_or(ParseError::Question)?;
    let qclass = read_u16(message, fixed + 2).ok_or(ParseError::Question)?;
    let question_end = fixed + 4;

    // Type 0 is reserved (RFC 6895 section 3.1) and names no data.
    if qtype == 0 {
        return Err(ParseError::Body);
    }

    // Skip the answer and authority sections, where an OPT record has no
    // place (RFC 6891 section 6.1.1), then look for OPT.
    let mut pos = question_end;
    let skipped = u32::from(header.ancount) + u32::from(header.nscount);
    for _ in 0..skipped {
        let (next, opt) = skip_record(message, pos).ok_or(ParseError::Body)?;
        if opt.is_some() {
            return Err(ParseError::Body);
        }
        pos = next;
    }
    let mut edns = None;
    for _ in 0..header.arcount {
        let (next, opt) = skip_record(message, pos).ok_or(ParseError::Body)?;
        if let Some(opt) = opt {
            if edns.is_some() {
                return Err(ParseError::Body);
            }
            edns = Some(opt);
        }
        pos = next;
    }

    Ok(Query {
        header,
        qname,
        qtype: Rtype::from_int(qtype),
        qclass: Class::from_int(qclass),
        question: &message[HEADER_LEN..question_end],
        edns,
    })
}

/// Parses as much of the question as is well formed, for echoing in an
/// error response.
pub(crate) fn parse_question(message: &[u8], header: Header) -> Option<&[u8]> {
    if header.qdcount != 1 {
        return None;
    }
    let qname_len = uncompressed_name_len(message, HEADER_LEN)?;
    let end = HEADER_LEN + qname_len + 4;
    message.get(HEADER_LEN..end)
}

fn read_u16(message: &[u8], pos: usize) -> Option<u16> {
    Some(u16::from_be_bytes([
        *message.get(pos)?,
        *message.get(pos + 1)?,
    ]))
}

/// Returns the length of the uncompressed name at `start`.
fn uncompressed_name_len(message: &[u8], start: usize) -> Option<usize> {
    keymaster_zone::name::wire_name_len(message.get(start..)?).ok()
}

/// Returns the type of the record at `start` and the position after it.
pub(crate) fn skip_any_record(message: &[u8], start: usize) -> Option<(Rtype, usize)> {
    let (name_end, _) = skip_name(message, start)?;
    let rtype = read_u16(message, name_end)?;
    let rdlength = usize::from(read_u16(message, name_end + 8)?);
    let end = name_end + 10 + rdlength;
    (end <= message.len()).then_some((Rtype::from_int(rtype), end))
}

/// Reads the possibly compressed name at `start`. Returns it in
/// uncompressed wire format with ASCII letters in lower case, and the
/// position after the name where it starts.
pub(crate) fn read_name(message: &[u8], start: usize) -> Option<(Vec<u8>, usize)> {
    read_name_as(message, start, true)
}

/// Reads the possibly compressed name at `start` as [`read_name`] does,
/// but keeps the case of its letters, as a zone transfer client must.
pub fn read_name_keeping_case(message: &[u8], start: usize) -> Option<(Vec<u8>, usize)> {
    read_name_as(message, start, false)
}

/// Reads a name, following at most 128 compression pointers, each of
/// which must point backward so that every name ends.
fn read_name_as(message: &[u8], start: usize, lowercase: bool) -> Option<(Vec<u8>, usize)> {
    let mut name = Vec::with_capacity(64);
    let mut pos = start;
    let mut end = None;
    for _ in 0..128 {
        let len = *message.get(pos)?;
        match len & 0xc0 {
            0x00 if len == 0 => {
                name.push(0);
                return Some((name, end.unwrap_or(pos + 1)));
            }
            0x00 => {
                let label = message.get(pos..pos + 1 + usize::from(len))?;
                if name.len() + label.len() > 254 {
                    return None;
                }
                if lowercase {
                    name.extend(label.iter().map(u8::to_ascii_lowercase));
                } else {
                    name.extend_from_slice(label);
                }
                pos += label.len();
            }
            0xc0 => {
                let target = (usize::from(len & 0x3f) << 8) | usize::from(*message.get(pos + 1)?);
                end.get_or_insert(pos + 2);
                if target >= pos {
                    return None;
                }
                pos = target;
            }
            _ => return None,
        }
    }
    None
}

/// Returns the serial of the SOA record that an IXFR query for `zone`
/// carries in its authority section (RFC 1995 section 3), whose question
/// ends at `question_end`. The record must be owned by `zone`, a wire name,
/// and its RDATA must hold exactly two names and the five numbers.
pub(crate) fn ixfr_serial(
    message: &[u8],
    header: Header,
    question_end: usize,
    zone: &[u8],
) -> Option<u32> {
    let mut pos = question_end;
    for _ in 0..header.ancount {
        pos = skip_any_record(message, pos)?.1;
    }
    if header.nscount == 0 {
        return None;
    }
    let (owner, name_end) = read_name(message, pos)?;
    if !owner.eq_ignore_ascii_case(zone) {
        return None;
    }
    if Rtype::from_int(read_u16(message, name_end)?) != Rtype::SOA {
        return None;
    }
    let rdata = name_end + 10;
    let rdata_end = rdata + usize::from(read_u16(message, name_end + 8)?);
    let (mname_end, _) = skip_name(message, rdata)?;
    let (rname_end, _) = skip_name(message, mname_end)?;
    // SERIAL, REFRESH, RETRY, EXPIRE and MINIMUM fill the rest.
    if rname_end + 20 != rdata_end || rdata_end > message.len() {
        return None;
    }
    let serial = message.get(rname_end..rname_end + 4)?;
    Some(u32::from_be_bytes([
        serial[0], serial[1], serial[2], serial[3],
    ]))
}

/// Skips one resource record. Returns the position after it and, for an
/// OPT record owned by the root, its EDNS parameters.
fn skip_record(message: &[u8], start: usize) -> Option<(usize, Option<Edns>)> {
    let (name_end, is_root) = skip_name(message, start)?;
    let rtype = read_u16(message, name_end)?;
    let class = read_u16(message, name_end + 2)?;
    let ttl_high = read_u16(message, name_end + 4)?;
    let ttl_low = read_u16(message, name_end + 6)?;
    let rdlength = read_u16(message, name_end + 8)? as usize;
    let end = name_end + 10 + rdlength;
    if end > message.len() {
        return None;
    }
    if Rtype::from_int(rtype) != Rtype::OPT {
        return Some((end, None));
    }
    if !is_root {
        return None;
    }
    let edns = Edns {
        udp_payload: class,
        version: (ttl_high & 0xff) as u8,
        dnssec_ok: ttl_low & 0x8000 != 0,
    };
    Some((end, Some(edns)))
}

/// Skips a possibly compressed name. Returns the position after it in the
/// record and whether the name is the root.
fn skip_name(message: &[u8], start: usize) -> Option<(usize, bool)> {
    let mut pos = start;
    let mut end = None;
    let mut total = 0usize;
    for _ in 0..128 {
        let len = *message.get(pos)?;
        match len & 0xc0 {
            0x00 if len == 0 => {
                let after = end.unwrap_or(pos + 1);
                return Some((after, total == 0));
            }
            0x00 => {
                total += 1 + len as usize;
                if total > 254 {
                    return None;
                }
                pos += 1 + len as usize;
            }
            0xc0 => {
                let target = (usize::from(len & 0x3f) << 8) | usize::from(*message.get(pos + 1)?);
                if end.is_none() {
                    end = Some(pos + 2);
                }
                // Pointers must point backwards, which also rules out loops.
                if target >= pos {
                    return None;
                }
                pos = target;
            }
            _ => return None,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query_bytes(tail: &[u8], arcount: u16) -> Vec<u8> {
        let mut message = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0];
        message.extend_from_slice(&arcount.to_be_bytes());
        message.extend_from_slice(b"\x03www\x07example\x00\x00\x01\x00\x01");
        message.extend_from_slice(tail);
        message
    }

    #[test]
    fn parse_reads_question_and_opt() {
        let opt = [0, 0, 41, 0x04, 0xd0, 0, 0, 0x80, 0, 0, 0];
        let message = query_bytes(&opt, 1);
        let header = Header::parse(&message).unwrap();
        let query = parse_query(&message, header).unwrap();
        assert_eq!(query.qname, b"\x03www\x07example\x00");
        assert_eq!(query.qtype, Rtype::A);
        assert_eq!(query.qclass, Class::IN);
        let edns = query.edns.unwrap();
        assert_eq!(edns.udp_payload, 1232);
        assert_eq!(edns.version, 0);
        assert!(edns.dnssec_ok);
    }

    #[test]
    fn parse_rejects_two_opt_records() {
        let opt = [0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0];
        let message = query_bytes(&[opt, opt].concat(), 2);
        let header = Header::parse(&message).unwrap();
        assert_eq!(parse_query(&message, header).unwrap_err(), ParseError::Body);
    }

    #[test]
    fn parse_rejects_opt_in_answer_section() {
        let opt = [0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0];
        let mut message = query_bytes(&opt, 0);
        // ANCOUNT 1: the OPT record now sits in the answer section.
        message[7] = 1;
        let header = Header::parse(&message).unwrap();
        assert_eq!(parse_query(&message, header).unwrap_err(), ParseError::Body);
    }

    #[test]
    fn parse_rejects_query_type_zero() {
        let mut message = query_bytes(&[], 0);
        let qtype_at = 12 + 13;
        message[qtype_at..qtype_at + 2].copy_from_slice(&[0, 0]);
        let header = Header::parse(&message).unwrap();
        assert_eq!(parse_query(&message, header).unwrap_err(), ParseError::Body);
    }

    #[test]
    fn parse_rejects_pointer_loop() {
        // An additional record whose owner is a pointer to itself.
        let pointer_at = 12 + 17;
        let looped = [0xc0 | (pointer_at >> 8) as u8, pointer_at as u8, 0, 1, 0, 1];
        let message = query_bytes(&looped, 1);
        let header = Header::parse(&message).unwrap();
        assert_eq!(parse_query(&message, header).unwrap_err(), ParseError::Body);
    }

    #[test]
    fn parse_rejects_compressed_question() {
        let mut message = vec![0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        message.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
        let header = Header::parse(&message).unwrap();
        assert_eq!(
            parse_query(&message, header).unwrap_err(),
            ParseError::Question
        );
    }
}
