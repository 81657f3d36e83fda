//! Record data (RDATA) between presentation format and wire format.
//!
//! Each known record type has a layout: the list of fields its RDATA holds,
//! in order. One table drives both directions, so a type reads and prints
//! the same fields. RDATA of any type may also be given in the generic form
//! of RFC 3597 section 5 (`\# length hex`); for a known type the octets are
//! then decoded with the same layout, so malformed data is rejected.
//!
//! Names inside RDATA are written out in full (absolute, with a trailing
//! dot) and are never compressed.
//!
//! Limitations: WKS accepts service and protocol numbers and only a few
//! well-known names; types without a layout (NXT, A6, SIG(0) specifics,
//! and types newer than the table) are read and written only in the
//! generic form.

mod field;
mod special;
mod svcb;
pub(crate) mod text;

use bytes::Bytes;
use domain::base::iana::Rtype;

use crate::master::lexer::{tokenize, Token};
use crate::name::{Name, NameError};
use field::{decode_field, encode_field, Field};
pub use text::NameTextError;

/// Maximum length of RDATA accepted from text. RFC 1035 section 3.2.1
/// allows 65535 octets, but a message needs 23 more around the smallest
/// record (12 of header, 11 of root owner, type, class, TTL and length).
/// With this limit every record fits in some DNS message, as in BIND.
pub const MAX_RDATA_LEN: usize = 65512;

/// Error for RDATA in presentation format that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RdataError {
    #[error("missing {0}")]
    Missing(&'static str),
    #[error("unexpected text after the record data")]
    ExtraText,
    #[error("invalid {0}")]
    Invalid(&'static str),
    #[error("invalid name in the record data")]
    Name(#[from] NameTextError),
    #[error("character string longer than 255 octets")]
    LongString,
    #[error("record data longer than 65512 octets, the most a DNS message can carry")]
    TooLong,
    #[error("record type has no presentation format here; use the RFC 3597 form \\# length hex")]
    NoTextFormat,
    #[error("generic record data declares {declared} octets but holds {actual}")]
    GenericLength { declared: usize, actual: usize },
    #[error("generic record data is not valid for this type")]
    GenericData(#[source] WireError),
    #[error("invalid service parameter: {0}")]
    SvcParam(&'static str),
}

/// Error for RDATA in wire format that does not match its type's layout.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("record data ends inside a field")]
    Truncated,
    #[error("record data has octets after its last field")]
    Trailing,
    #[error("invalid name in the record data")]
    Name(#[from] NameError),
    #[error("invalid {0} in the record data")]
    Invalid(&'static str),
}

/// A cursor over the RDATA tokens of one entry.
pub(crate) struct Tokens<'t, 'a> {
    tokens: &'t [Token<'a>],
    pos: usize,
}

impl<'t, 'a> Tokens<'t, 'a> {
    pub(crate) fn new(tokens: &'t [Token<'a>]) -> Self {
        Self { tokens, pos: 0 }
    }

    /// Returns the next token, or `Missing(what)`.
    pub(crate) fn next(&mut self, what: &'static str) -> Result<&'t Token<'a>, RdataError> {
        let token = self.tokens.get(self.pos).ok_or(RdataError::Missing(what))?;
        self.pos += 1;
        Ok(token)
    }

    /// Returns the next token without taking it.
    pub(crate) fn peek(&self) -> Option<&'t Token<'a>> {
        self.tokens.get(self.pos)
    }

    /// Returns true if all tokens were taken.
    pub(crate) fn is_empty(&self) -> bool {
        self.pos >= self.tokens.len()
    }

    /// Returns the index of the token read last, for error reports.
    pub(crate) fn position(&self) -> usize {
        self.pos.saturating_sub(1)
    }
}

/// Returns the field layout of a type, or `None` for types read only in
/// the generic form.
fn layout(rtype: Rtype) -> Option<&'static [Field]> {
    use Field::*;
    let fields: &'static [Field] = match rtype.to_int() {
        1 => &[Ipv4],
        2..=5 | 7..=9 | 12 | 23 | 39 => &[Name],
        6 => &[Name, Name, U32, Ttl, Ttl, Ttl, Ttl],
        11 => &[Wks],
        13 => &[CharStr, CharStr],
        14 | 17 => &[Name, Name],
        15 | 18 | 21 | 36 => &[U16, Name],
        16 | 99 | 56 | 258 | 261 | 262 => &[CharStrs],
        19 => &[CharStr],
        20 => &[CharStr, OptCharStr],
        22 => &[Nsap],
        24 | 46 => &[RrType, Algorithm, U8, Ttl, Time, Time, U16, Name, Base64],
        25 | 48 | 57 | 60 => &[U16, U8, Algorithm, Base64],
        26 => &[U16, Name, Name],
        27 => &[CharStr, CharStr, CharStr],
        28 => &[Ipv6],
        29 => &[Loc],
        31 | 32 => &[Hex],
        33 => &[U16, U16, U16, Name],
        35 => &[U16, U16, CharStr, CharStr, CharStr, Name],
        37 => &[CertType, U16, Algorithm, Base64],
        40 => &[U8, U8, Base64],
        42 => &[Apl],
        43 | 59 | 32768 | 32769 => &[U16, Algorithm, U8, Hex],
        44 => &[U8, U8, Hex],
        45 => &[U8, U8, U8, IpsecGateway, OptBase64],
        47 => &[Name, Bitmap],
        49 | 61 => &[Base64],
        50 => &[U8, U8, U16, Salt, NextHash, Bitmap],
        51 => &[U8, U8, U16, Salt],
        52 | 53 => &[U8, U8, U8, Hex],
        55 => &[Hip],
        58 => &[Name, Name],
        62 => &[U32, U16, Bitmap],
        63 => &[U32, U8, U8, Hex],
        64 | 65 => &[U16, Name, SvcParams],
        66 => &[RrType, DsyncScheme, U16, Name],
        67 | 68 => &[Base64],
        104 | 106 => &[U16, Ilnp64],
        105 => &[U16, Ipv4],
        107 => &[U16, Name],
        108 => &[Eui48],
        109 => &[Eui64],
        256 => &[U16, U16, RawString],
        257 => &[U8, CaaTag, RawString],
        259 => &[U32, U32, U8, CharStr, OptBase64],
        260 => &[AmtRelay],
        _ => return None,
    };
    Some(fields)
}

/// Returns true if `rtype` has a presentation format in this crate.
pub fn has_text_format(rtype: Rtype) -> bool {
    layout(rtype).is_some()
}

/// Encodes RDATA tokens for `rtype` into `out` (cleared first).
pub(crate) fn encode_tokens(
    rtype: Rtype,
    tokens: &mut Tokens<'_, '_>,
    origin: &Name,
    out: &mut Vec<u8>,
) -> Result<(), RdataError> {
    out.clear();
    if tokens.peek().is_some_and(|token| token.is(b"\\#")) {
        tokens.next("generic data marker")?;
        encode_generic(tokens, out)?;
        if let Some(fields) = layout(rtype) {
            decode_fields(fields, out, None).map_err(RdataError::GenericData)?;
        }
        return Ok(());
    }
    let fields = layout(rtype).ok_or(RdataError::NoTextFormat)?;
    for &field in fields {
        encode_field(field, tokens, origin, out)?;
    }
    if !tokens.is_empty() {
        tokens.next("")?;
        return Err(RdataError::ExtraText);
    }
    if out.len() > MAX_RDATA_LEN {
        return Err(RdataError::TooLong);
    }
    check_digest_lengths(rtype, out)
}

/// Checks the DS and CDS digest lengths that the digest type fixes: 1
/// (SHA-1, 20 octets), 2 (SHA-256, 32), 3 (GOST, 32) and 4 (SHA-384, 48),
/// RFC 4034, 4509, 5933 and 6605.
fn check_digest_lengths(rtype: Rtype, rdata: &[u8]) -> Result<(), RdataError> {
    let expected = match rtype {
        Rtype::DS | Rtype::CDS => match rdata.get(3) {
            Some(1) => Some((20, rdata.len() - 4)),
            Some(2 | 3) => Some((32, rdata.len() - 4)),
            Some(4) => Some((48, rdata.len() - 4)),
            _ => None,
        },
        _ => None,
    };
    match expected {
        Some((wanted, found)) if wanted != found => Err(RdataError::Invalid("digest length")),
        _ => Ok(()),
    }
}

/// Reads the generic form after `\#`: a length and hex octets.
fn encode_generic(tokens: &mut Tokens<'_, '_>, out: &mut Vec<u8>) -> Result<(), RdataError> {
    let len_token = tokens.next("generic data length")?;
    let declared = text::parse_decimal(len_token.text)
        .ok_or(RdataError::Invalid("generic data length"))? as usize;
    if declared > MAX_RDATA_LEN {
        return Err(RdataError::TooLong);
    }
    while !tokens.is_empty() {
        let token = tokens.next("hex data")?;
        field::decode_hex_into(token.text, out)?;
    }
    if out.len() != declared {
        return Err(RdataError::GenericLength {
            declared,
            actual: out.len(),
        });
    }
    Ok(())
}

/// Parses RDATA of `rtype` from presentation text; relative names get
/// `origin` appended and `@` stands for `origin`.
pub fn rdata_from_text(rtype: Rtype, text: &str, origin: &Name) -> Result<Bytes, RdataError> {
    let tokens = tokenize(text.as_bytes()).map_err(|_| RdataError::Invalid("quoting"))?;
    let mut cursor = Tokens::new(&tokens);
    let mut out = Vec::with_capacity(text.len());
    encode_tokens(rtype, &mut cursor, origin, &mut out)?;
    Ok(Bytes::from(out))
}

/// Writes RDATA in presentation format, falling back to the generic form
/// of RFC 3597 for types without a layout and for malformed octets.
pub fn rdata_to_text(rtype: Rtype, rdata: &[u8]) -> String {
    let mut out = String::with_capacity(rdata.len() * 2 + 8);
    write_rdata(&mut out, rtype, rdata);
    out
}

/// Appends the presentation form of RDATA to `out`; see [`rdata_to_text`].
pub(crate) fn write_rdata(out: &mut String, rtype: Rtype, rdata: &[u8]) {
    let start = out.len();
    if let Some(fields) = layout(rtype) {
        if decode_fields(fields, rdata, Some(out)).is_ok() {
            return;
        }
        out.truncate(start);
    }
    write_generic(out, rdata);
}

/// Appends `\# length hex` to `out`.
pub(crate) fn write_generic(out: &mut String, rdata: &[u8]) {
    use std::fmt::Write as _;
    let _ = write!(out, "\\# {}", rdata.len());
    if !rdata.is_empty() {
        out.push(' ');
        out.push_str(&data_encoding::HEXUPPER.encode(rdata));
    }
}

/// Checks wire-format RDATA against the layout of `rtype`. Types without
/// a layout are accepted as they are.
pub fn check_wire(rtype: Rtype, rdata: &[u8]) -> Result<(), WireError> {
    match layout(rtype) {
        Some(fields) => decode_fields(fields, rdata, None),
        None => Ok(()),
    }
}

/// Decodes `rdata` field by field, writing text to `out` if given.
fn decode_fields(
    fields: &[Field],
    rdata: &[u8],
    out: Option<&mut String>,
) -> Result<(), WireError> {
    let mut scratch = String::new();
    let out = out.unwrap_or(&mut scratch);
    let mut pos = 0;
    for (index, &field) in fields.iter().enumerate() {
        if index > 0 && !field.writes_own_separator() {
            out.push(' ');
        }
        pos = decode_field(field, rdata, pos, out)?;
    }
    if pos != rdata.len() {
        return Err(WireError::Trailing);
    }
    Ok(())
}
