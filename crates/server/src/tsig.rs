//! TSIG: transaction signatures with a shared secret (RFC 8945).
//!
//! A client signs its request with a [`TsigKey`] that both sides share.
//! The server checks the MAC and the time, then signs every message of its
//! response. The first response message covers the request MAC, and each
//! later message of a zone transfer covers the MAC of the message before
//! it and only the timers (RFC 8945 section 5.3.1). This server signs
//! every message, never leaving any unsigned.
//!
//! Terms: the *MAC* is the HMAC over the message and the *TSIG variables*
//! (RFC 8945 section 4.3.3); *fudge* is the number of seconds the signing
//! time may differ from the receiver's clock.
//!
//! Limitations: HMAC-SHA256 and HMAC-SHA512 only, no HMAC-MD5 or SHA-1.
//! Truncated MACs (RFC 8945 section 5.2.2.1) are rejected with BADTRUNC.
//! Signed queries of other types are checked and their responses signed,
//! but a signature grants access to zone transfers only.

use std::fmt;
use std::str::FromStr;

use aws_lc_rs::{constant_time, hmac};
use keymaster_zone::{Name, Rtype};
use zeroize::Zeroizing;

use crate::message::{read_name, skip_any_record, Header, HEADER_LEN};

/// The fudge this server puts in its TSIG records, in seconds (the value
/// RFC 8945 section 10 recommends).
const FUDGE: u16 = 300;

/// CLASS ANY, the class of TSIG records.
const CLASS_ANY: u16 = 255;

/// The longest "other data" this server sends: a 48-bit time.
const MAX_OTHER_LEN: usize = 6;

/// TSIG error codes (RFC 8945 section 3), named as the RFC names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(clippy::enum_variant_names)]
pub(crate) enum TsigError {
    BadSig = 16,
    BadKey = 17,
    BadTime = 18,
    BadTrunc = 22,
}

impl fmt::Display for TsigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::BadSig => "BADSIG",
            Self::BadKey => "BADKEY",
            Self::BadTime => "BADTIME",
            Self::BadTrunc => "BADTRUNC",
        })
    }
}

/// A TSIG MAC algorithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TsigAlgorithm {
    HmacSha256,
    HmacSha512,
}

impl TsigAlgorithm {
    /// Returns the algorithm name as configured, such as `hmac-sha256`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::HmacSha256 => "hmac-sha256",
            Self::HmacSha512 => "hmac-sha512",
        }
    }

    /// Returns the algorithm name in wire format (RFC 8945 section 6).
    fn wire_name(self) -> &'static [u8] {
        match self {
            Self::HmacSha256 => b"\x0bhmac-sha256\x00",
            Self::HmacSha512 => b"\x0bhmac-sha512\x00",
        }
    }

    fn hmac(self) -> hmac::Algorithm {
        match self {
            Self::HmacSha256 => hmac::HMAC_SHA256,
            Self::HmacSha512 => hmac::HMAC_SHA512,
        }
    }

    /// Returns the length of a full MAC, the hash output, in octets.
    pub fn mac_len(self) -> usize {
        match self {
            Self::HmacSha256 => 32,
            Self::HmacSha512 => 64,
        }
    }
}

impl fmt::Display for TsigAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error from parsing a [`TsigAlgorithm`].
#[derive(Debug, thiserror::Error)]
#[error("unknown TSIG algorithm {0:?}; use hmac-sha256 or hmac-sha512")]
pub struct UnknownTsigAlgorithm(pub String);

impl FromStr for TsigAlgorithm {
    type Err = UnknownTsigAlgorithm;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim_end_matches('.').to_ascii_lowercase().as_str() {
            "hmac-sha256" => Ok(Self::HmacSha256),
            "hmac-sha512" => Ok(Self::HmacSha512),
            _ => Err(UnknownTsigAlgorithm(text.to_string())),
        }
    }
}

/// A named TSIG key. The secret is wiped from memory when the key is
/// dropped and never printed.
#[derive(Clone)]
pub struct TsigKey {
    name: Name,
    /// The name in lower-case wire format, its canonical form.
    name_lower: Box<[u8]>,
    algorithm: TsigAlgorithm,
    secret: Zeroizing<Vec<u8>>,
}

impl TsigKey {
    /// Creates a key from its name, algorithm and secret octets.
    pub fn new(name: Name, algorithm: TsigAlgorithm, secret: Vec<u8>) -> Self {
        Self {
            name_lower: name.as_wire().to_ascii_lowercase().into_boxed_slice(),
            name,
            algorithm,
            secret: Zeroizing::new(secret),
        }
    }

    /// Returns the key name.
    pub fn name(&self) -> &Name {
        &self.name
    }

    /// Returns the MAC algorithm.
    pub fn algorithm(&self) -> TsigAlgorithm {
        self.algorithm
    }

    fn hmac_key(&self) -> hmac::Key {
        hmac::Key::new(self.algorithm.hmac(), &self.secret)
    }
}

impl fmt::Debug for TsigKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TsigKey")
            .field("name", &self.name)
            .field("algorithm", &self.algorithm)
            .field("secret", &"(redacted)")
            .finish()
    }
}

impl PartialEq for TsigKey {
    fn eq(&self, other: &Self) -> bool {
        self.name_lower == other.name_lower
            && self.algorithm == other.algorithm
            && constant_time::verify_slices_are_equal(&self.secret, &other.secret).is_ok()
    }
}

impl Eq for TsigKey {}

/// The reason a signed request was rejected.
#[derive(Debug)]
pub(crate) enum RequestError {
    /// The TSIG record is malformed or not the last record: FORMERR.
    Malformed,
    /// Unknown key, bad MAC or truncated MAC: NOTAUTH with an unsigned
    /// TSIG record (RFC 8945 section 5.3.2).
    Unsigned {
        key_name: Vec<u8>,
        algorithm: Vec<u8>,
        original_id: u16,
        error: TsigError,
    },
    /// A good MAC outside the time window: NOTAUTH, signed, with the
    /// server's time (RFC 8945 section 5.2.3).
    BadTime(Box<Signer>),
}

impl RequestError {
    /// Returns the TSIG error, if the error has one.
    pub(crate) fn tsig_error(&self) -> Option<TsigError> {
        match self {
            Self::Malformed => None,
            Self::Unsigned { error, .. } => Some(*error),
            Self::BadTime(_) => Some(TsigError::BadTime),
        }
    }

    /// Returns the key name the request named, in presentation format.
    pub(crate) fn key_name(&self) -> String {
        match self {
            Self::Malformed => String::new(),
            Self::Unsigned { key_name, .. } => wire_to_text(key_name),
            Self::BadTime(signer) => signer.key_name().to_string(),
        }
    }

    /// Appends the TSIG record of the error response to `message`, whose
    /// header counts are final.
    pub(crate) fn sign_response(&mut self, message: &mut Vec<u8>, now: u64) {
        match self {
            Self::Malformed => {}
            Self::Unsigned {
                key_name,
                algorithm,
                original_id,
                error,
            } => {
                let rdata = TsigRdata {
                    algorithm,
                    time_signed: now,
                    mac: &[],
                    original_id: *original_id,
                    error: *error as u16,
                    other: &[],
                };
                append_tsig(message, key_name, &rdata);
            }
            Self::BadTime(signer) => signer.sign(message, now),
        }
    }
}

/// Returns a wire name in presentation format, for logs.
fn wire_to_text(wire: &[u8]) -> String {
    Name::from_wire(bytes::Bytes::copy_from_slice(wire))
        .map(|name| name.to_string())
        .unwrap_or_else(|_| "(invalid name)".to_string())
}

/// The fields of a TSIG record.
struct TsigRdata<'a> {
    algorithm: &'a [u8],
    time_signed: u64,
    mac: &'a [u8],
    original_id: u16,
    error: u16,
    other: &'a [u8],
}

/// A TSIG record found at the end of a request.
struct RequestTsig<'m> {
    /// Offset of the record in the message.
    start: usize,
    key_name: Vec<u8>,
    fudge: u16,
    rdata: TsigRdata<'m>,
    /// Owned copy of the algorithm name, which `rdata` borrows from.
    algorithm: Vec<u8>,
}

/// Checks the TSIG record of a request whose question section ends at
/// `question_end`.
///
/// Returns `Ok(None)` for a request without TSIG, and a [`Signer`] for the
/// response to a correctly signed one.
pub(crate) fn check_request(
    keys: &[TsigKey],
    message: &[u8],
    header: Header,
    question_end: usize,
    now: u64,
) -> Result<Option<Signer>, RequestError> {
    let Some(tsig) = find_tsig(message, header, question_end)? else {
        return Ok(None);
    };
    let rdata = TsigRdata {
        algorithm: &tsig.algorithm,
        ..tsig.rdata
    };
    let unsigned = |error| RequestError::Unsigned {
        key_name: tsig.key_name.clone(),
        algorithm: tsig.algorithm.clone(),
        original_id: rdata.original_id,
        error,
    };

    // RFC 8945 section 5.2.1: the key must be known for this algorithm.
    let key = keys.iter().find(|key| {
        *key.name_lower == *tsig.key_name && key.algorithm.wire_name() == tsig.algorithm
    });
    let Some(key) = key else {
        return Err(unsigned(TsigError::BadKey));
    };

    // Section 5.2.2.1: a MAC shorter than allowed is malformed; this
    // server accepts only full-length MACs.
    let full = key.algorithm.mac_len();
    if rdata.mac.len() > full || rdata.mac.len() < (full / 2).max(10) {
        return Err(RequestError::Malformed);
    }
    if rdata.mac.len() < full {
        return Err(unsigned(TsigError::BadTrunc));
    }

    // Section 5.2.2: the MAC over the request as it was before the TSIG
    // record was added, with the original ID.
    let mut context = hmac::Context::with_key(&key.hmac_key());
    context.update(&rdata.original_id.to_be_bytes());
    context.update(&message[2..10]);
    context.update(&header.arcount.saturating_sub(1).to_be_bytes());
    context.update(&message[HEADER_LEN..tsig.start]);
    update_variables(&mut context, &key.name_lower, &rdata, tsig.fudge);
    let expected = context.sign();
    if constant_time::verify_slices_are_equal(expected.as_ref(), rdata.mac).is_err() {
        return Err(unsigned(TsigError::BadSig));
    }

    let mut signer = Signer {
        key: key.clone(),
        prior_mac: rdata.mac.to_vec(),
        first: true,
        original_id: rdata.original_id,
        error: 0,
        other: Vec::new(),
        time_signed: None,
    };
    // Section 5.2.3: the time is checked after the MAC.
    if now.abs_diff(rdata.time_signed) > u64::from(tsig.fudge) {
        signer.error = TsigError::BadTime as u16;
        signer.other = time48(now).to_vec();
        signer.time_signed = Some(rdata.time_signed);
        return Err(RequestError::BadTime(Box::new(signer)));
    }
    Ok(Some(signer))
}

/// Finds and parses the TSIG record, which must be the last record of the
/// additional section (RFC 8945 section 5.1).
fn find_tsig(
    message: &[u8],
    header: Header,
    question_end: usize,
) -> Result<Option<RequestTsig<'_>>, RequestError> {
    let total = u32::from(header.ancount) + u32::from(header.nscount) + u32::from(header.arcount);
    let mut pos = question_end;
    let mut last = None;
    for index in 0..total {
        let (rtype, end) = skip_any_record(message, pos).ok_or(RequestError::Malformed)?;
        if rtype == Rtype::TSIG {
            let is_last_additional = index + 1 == total && header.arcount > 0;
            if !is_last_additional {
                return Err(RequestError::Malformed);
            }
            last = Some(pos);
        }
        pos = end;
    }
    match last {
        Some(start) => parse_tsig(message, start)
            .map(Some)
            .ok_or(RequestError::Malformed),
        None => Ok(None),
    }
}

/// Parses the TSIG record at `start`.
fn parse_tsig(message: &[u8], start: usize) -> Option<RequestTsig<'_>> {
    let (key_name, pos) = read_name(message, start)?;
    let fixed = message.get(pos..pos + 10)?;
    // RFC 8945 section 4.2: class ANY and TTL 0.
    if u16::from_be_bytes([fixed[2], fixed[3]]) != CLASS_ANY || fixed[4..8] != [0; 4] {
        return None;
    }
    let rdlength = usize::from(u16::from_be_bytes([fixed[8], fixed[9]]));
    let rdata_start = pos + 10;
    let rdata_end = rdata_start + rdlength;
    if rdata_end != message.len() {
        return None;
    }
    let (algorithm, mut pos) = read_name(message, rdata_start)?;
    let mut take = |len: usize| {
        let field = message
            .get(pos..pos + len)
            .filter(|_| pos + len <= rdata_end);
        pos += len;
        field
    };
    let time = take(6)?;
    let time_signed = time.iter().fold(0u64, |acc, &b| acc << 8 | u64::from(b));
    let fudge = take(2)?;
    let fudge = u16::from_be_bytes([fudge[0], fudge[1]]);
    let mac_len = take(2)?;
    let mac = take(usize::from(u16::from_be_bytes([mac_len[0], mac_len[1]])))?;
    let ids = take(6)?;
    let other_len = usize::from(u16::from_be_bytes([ids[4], ids[5]]));
    let other = take(other_len)?;
    if pos != rdata_end {
        return None;
    }
    Some(RequestTsig {
        start,
        key_name,
        fudge,
        rdata: TsigRdata {
            algorithm: &[],
            time_signed,
            mac,
            original_id: u16::from_be_bytes([ids[0], ids[1]]),
            error: u16::from_be_bytes([ids[2], ids[3]]),
            other,
        },
        algorithm,
    })
}

/// Returns a time as the 48-bit field of TSIG.
fn time48(time: u64) -> [u8; 6] {
    let octets = time.to_be_bytes();
    [
        octets[2], octets[3], octets[4], octets[5], octets[6], octets[7],
    ]
}

/// Adds the TSIG variables of RFC 8945 section 4.3.3 to a MAC.
fn update_variables(context: &mut hmac::Context, key_name: &[u8], rdata: &TsigRdata, fudge: u16) {
    context.update(key_name);
    context.update(&CLASS_ANY.to_be_bytes());
    context.update(&[0, 0, 0, 0]);
    context.update(rdata.algorithm);
    context.update(&time48(rdata.time_signed));
    context.update(&fudge.to_be_bytes());
    context.update(&rdata.error.to_be_bytes());
    context.update(&(rdata.other.len() as u16).to_be_bytes());
    context.update(rdata.other);
}

/// Appends a TSIG record and counts it in ARCOUNT.
fn append_tsig(message: &mut Vec<u8>, key_name: &[u8], rdata: &TsigRdata) {
    let rdlength = rdata.algorithm.len() + 16 + rdata.mac.len() + rdata.other.len();
    message.extend_from_slice(key_name);
    message.extend_from_slice(&Rtype::TSIG.to_int().to_be_bytes());
    message.extend_from_slice(&CLASS_ANY.to_be_bytes());
    message.extend_from_slice(&[0, 0, 0, 0]);
    message.extend_from_slice(&(rdlength as u16).to_be_bytes());
    message.extend_from_slice(rdata.algorithm);
    message.extend_from_slice(&time48(rdata.time_signed));
    message.extend_from_slice(&FUDGE.to_be_bytes());
    message.extend_from_slice(&(rdata.mac.len() as u16).to_be_bytes());
    message.extend_from_slice(rdata.mac);
    message.extend_from_slice(&rdata.original_id.to_be_bytes());
    message.extend_from_slice(&rdata.error.to_be_bytes());
    message.extend_from_slice(&(rdata.other.len() as u16).to_be_bytes());
    message.extend_from_slice(rdata.other);
    let arcount = u16::from_be_bytes([message[10], message[11]]).saturating_add(1);
    message[10..12].copy_from_slice(&arcount.to_be_bytes());
}

/// Signs the messages of a response to a signed request, one after the
/// other.
pub(crate) struct Signer {
    key: TsigKey,
    /// The MAC of the request, then of the last message signed.
    prior_mac: Vec<u8>,
    first: bool,
    original_id: u16,
    error: u16,
    other: Vec<u8>,
    /// The time to sign with instead of the current time (for BADTIME).
    time_signed: Option<u64>,
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer")
            .field("key", &self.key)
            .field("first", &self.first)
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// Returns the name of the key that signed the request.
    pub(crate) fn key_name(&self) -> &Name {
        &self.key.name
    }

    /// Returns the most octets a TSIG record of this signer adds.
    pub(crate) fn reserved_len(&self) -> usize {
        let algorithm = self.key.algorithm;
        self.key.name_lower.len()
            + 10
            + algorithm.wire_name().len()
            + 16
            + algorithm.mac_len()
            + MAX_OTHER_LEN
    }

    /// Appends a TSIG record signing `message`, whose header counts are
    /// final, as the next message of the response.
    pub(crate) fn sign(&mut self, message: &mut Vec<u8>, now: u64) {
        let time_signed = self.time_signed.unwrap_or(now);
        let mut context = hmac::Context::with_key(&self.key.hmac_key());
        context.update(&(self.prior_mac.len() as u16).to_be_bytes());
        context.update(&self.prior_mac);
        context.update(message);
        let algorithm = self.key.algorithm.wire_name();
        let mut rdata = TsigRdata {
            algorithm,
            time_signed,
            mac: &[],
            original_id: self.original_id,
            error: self.error,
            other: &self.other,
        };
        if self.first {
            update_variables(&mut context, &self.key.name_lower, &rdata, FUDGE);
        } else {
            // RFC 8945 section 5.3.1: later messages cover the timers only.
            context.update(&time48(time_signed));
            context.update(&FUDGE.to_be_bytes());
        }
        let mac = context.sign();
        rdata.mac = mac.as_ref();
        append_tsig(message, self.key.name.as_wire(), &rdata);
        self.prior_mac = mac.as_ref().to_vec();
        self.first = false;
    }
}

/// Appends a TSIG record signing the request `message`, whose header
/// counts are final, as a client does, with signing time `time` (RFC 8945
/// section 5.1). A zone transfer client calls this on its request.
pub fn sign_request(key: &TsigKey, message: &mut Vec<u8>, time: u64) {
    append_request_tsig(key, message, time, key.algorithm.mac_len());
}

/// Appends a TSIG record as [`sign_request`] does, with the MAC cut to
/// `mac_len` octets, for tests that send truncated MACs.
#[cfg(test)]
pub(crate) fn sign_request_cut(key: &TsigKey, message: &mut Vec<u8>, time: u64, mac_len: usize) {
    append_request_tsig(key, message, time, mac_len);
}

fn append_request_tsig(key: &TsigKey, message: &mut Vec<u8>, time: u64, mac_len: usize) {
    let rdata = TsigRdata {
        algorithm: key.algorithm.wire_name(),
        time_signed: time,
        mac: &[],
        original_id: u16::from_be_bytes([message[0], message[1]]),
        error: 0,
        other: &[],
    };
    let mut context = hmac::Context::with_key(&key.hmac_key());
    context.update(message);
    update_variables(&mut context, &key.name_lower, &rdata, FUDGE);
    let mac = context.sign();
    let rdata = TsigRdata {
        mac: &mac.as_ref()[..mac_len],
        ..rdata
    };
    append_tsig(message, key.name.as_wire(), &rdata);
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn key(secret: &[u8]) -> TsigKey {
        let name = Name::from_wire(Bytes::from_static(b"\x08transfer\x00")).unwrap();
        TsigKey::new(name, TsigAlgorithm::HmacSha256, secret.to_vec())
    }

    /// Builds an AXFR query for "example." signed the way a client does:
    /// the MAC covers the message before the TSIG record and the variables.
    fn signed_query(key: &TsigKey, time: u64) -> Vec<u8> {
        let mut message = vec![0xab, 0xcd, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        message.extend_from_slice(b"\x07example\x00\x00\xfc\x00\x01");
        sign_request(key, &mut message, time);
        message
    }

    fn check(keys: &[TsigKey], message: &[u8], now: u64) -> Result<Option<Signer>, RequestError> {
        let header = Header::parse(message).unwrap();
        check_request(keys, message, header, HEADER_LEN + 13, now)
    }

    #[test]
    fn check_accepts_correct_signature() {
        let key = key(b"0123456789abcdef");
        let message = signed_query(&key, 1_700_000_000);
        let signer = check(&[key], &message, 1_700_000_100).unwrap().unwrap();
        assert_eq!(signer.key_name().to_string(), "transfer.");
    }

    #[test]
    fn check_rejects_bad_key_mac_time() {
        let message = signed_query(&key(b"right secret"), 1_700_000_000);
        let error = check(&[key(b"wrong secret")], &message, 1_700_000_000).unwrap_err();
        assert_eq!(error.tsig_error(), Some(TsigError::BadSig));
        let error = check(&[], &message, 1_700_000_000).unwrap_err();
        assert_eq!(error.tsig_error(), Some(TsigError::BadKey));
        let error = check(&[key(b"right secret")], &message, 1_700_001_000).unwrap_err();
        assert_eq!(error.tsig_error(), Some(TsigError::BadTime));
    }

    #[test]
    fn check_rejects_tsig_not_last() {
        let mut message = signed_query(&key(b"secret"), 1_700_000_000);
        // One more additional record after the TSIG record: an empty OPT.
        message.extend_from_slice(&[0, 0, 41, 4, 0, 0, 0, 0, 0, 0, 0]);
        message[11] = 2;
        let error = check(&[key(b"secret")], &message, 1_700_000_000).unwrap_err();
        assert!(matches!(error, RequestError::Malformed));
    }

    #[test]
    fn check_rejects_nonzero_ttl() {
        let key = key(b"0123456789abcdef");
        let mut message = signed_query(&key, 1_700_000_000);
        // The TTL follows the 25 octets of the query, the 10-octet key
        // name, the type and the class.
        assert_eq!(&message[39..43], &[0, 0, 0, 0]);
        message[42] = 1;
        let error = check(&[key], &message, 1_700_000_000).unwrap_err();
        assert!(matches!(error, RequestError::Malformed), "{error:?}");
    }

    #[test]
    fn key_debug_hides_secret() {
        let text = format!("{:?}", key(b"do-not-print"));
        assert!(!text.contains("do-not-print"), "{text}");
        assert!(text.contains("redacted"), "{text}");
    }
}
