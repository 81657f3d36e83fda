//! The field kinds that RDATA layouts are made of, each with its
//! presentation reader and its wire decoder.

use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};

use bytes::Bytes;
use data_encoding::{BASE32HEX_NOPAD, BASE64, HEXLOWER_PERMISSIVE, HEXUPPER};
use domain::base::iana::Rtype;

use super::text::{self, StringError};
use super::{special, svcb, RdataError, Tokens, WireError};
use crate::name::{wire_name_len, Name};

/// One field of an RDATA layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Field {
    U8,
    U16,
    U32,
    /// A 32-bit number that also accepts TTL units (SOA timers, RRSIG).
    Ttl,
    /// RRSIG inception or expiration time.
    Time,
    Name,
    Ipv4,
    Ipv6,
    CharStr,
    /// A character string that may be absent at the end (ISDN).
    OptCharStr,
    /// One or more character strings up to the end.
    CharStrs,
    /// Base64 up to the end, at least one octet.
    Base64,
    /// Base64 up to the end, possibly absent (IPSECKEY).
    OptBase64,
    /// Hex up to the end, at least one octet.
    Hex,
    /// NSEC3 salt: length octet and hex, `-` when empty.
    Salt,
    /// NSEC3 next hashed owner: length octet and base32hex.
    NextHash,
    /// NSEC type bitmap (RFC 4034 section 4.1.2) up to the end.
    Bitmap,
    /// A record type number as a mnemonic.
    RrType,
    /// A DNSSEC algorithm number or mnemonic.
    Algorithm,
    /// A CERT type number or mnemonic (RFC 4398 section 2.1).
    CertType,
    /// A DSYNC scheme number or mnemonic (`NOTIFY` is 1).
    DsyncScheme,
    Eui48,
    Eui64,
    /// A 64-bit ILNP locator or node identifier (RFC 6742).
    Ilnp64,
    /// CAA property tag: length octet and letters or digits.
    CaaTag,
    /// A string without length octet, up to the end (CAA value, URI target).
    RawString,
    SvcParams,
    Apl,
    Wks,
    IpsecGateway,
    Loc,
    Hip,
    Nsap,
    AmtRelay,
}

impl Field {
    /// Returns true for fields that may be empty and so write the space
    /// before them themselves.
    pub(crate) fn writes_own_separator(self) -> bool {
        matches!(
            self,
            Self::OptCharStr | Self::OptBase64 | Self::Bitmap | Self::SvcParams
        )
    }
}

/// DNSSEC algorithm mnemonics (IANA "DNS Security Algorithm Numbers").
const ALGORITHMS: &[(&str, u8)] = &[
    ("RSAMD5", 1),
    ("DH", 2),
    ("DSA", 3),
    ("RSASHA1", 5),
    ("DSA-NSEC3-SHA1", 6),
    ("RSASHA1-NSEC3-SHA1", 7),
    ("RSASHA256", 8),
    ("RSASHA512", 10),
    ("ECC-GOST", 12),
    ("ECDSAP256SHA256", 13),
    ("ECDSAP384SHA384", 14),
    ("ED25519", 15),
    ("ED448", 16),
    ("INDIRECT", 252),
    ("PRIVATEDNS", 253),
    ("PRIVATEOID", 254),
];

/// CERT type mnemonics, RFC 4398 section 2.1.
const CERT_TYPES: &[(&str, u16)] = &[
    ("PKIX", 1),
    ("SPKI", 2),
    ("PGP", 3),
    ("IPKIX", 4),
    ("ISPKI", 5),
    ("IPGP", 6),
    ("ACPKIX", 7),
    ("IACPKIX", 8),
    ("URI", 253),
    ("OID", 254),
];

/// Reads one field from `tokens` and appends its wire form to `out`.
pub(crate) fn encode_field(
    field: Field,
    tokens: &mut Tokens<'_, '_>,
    origin: &Name,
    out: &mut Vec<u8>,
) -> Result<(), RdataError> {
    match field {
        Field::U8 => {
            let value = number(
                tokens.next("8-bit number")?.text,
                u8::MAX.into(),
                "8-bit number",
            )?;
            out.push(value as u8);
        }
        Field::U16 => {
            let token = tokens.next("16-bit number")?;
            let value = number(token.text, u16::MAX.into(), "16-bit number")?;
            out.extend_from_slice(&(value as u16).to_be_bytes());
        }
        Field::U32 => {
            let token = tokens.next("32-bit number")?;
            let value = number(token.text, u32::MAX, "32-bit number")?;
            out.extend_from_slice(&value.to_be_bytes());
        }
        Field::Ttl => {
            let token = tokens.next("time value")?;
            let value =
                text::parse_ttl_bytes(token.text).ok_or(RdataError::Invalid("time value"))?;
            out.extend_from_slice(&value.to_be_bytes());
        }
        Field::Time => {
            let token = tokens.next("signature time")?;
            let value =
                text::parse_time(token.text).ok_or(RdataError::Invalid("signature time"))?;
            out.extend_from_slice(&value.to_be_bytes());
        }
        Field::Name => {
            let name = text::parse_name_bytes(tokens.next("domain name")?.text, origin)?;
            out.extend_from_slice(name.as_wire());
        }
        Field::Ipv4 => out.extend_from_slice(&ipv4(tokens.next("IPv4 address")?.text)?.octets()),
        Field::Ipv6 => out.extend_from_slice(&ipv6(tokens.next("IPv6 address")?.text)?.octets()),
        Field::CharStr => char_string(tokens.next("character string")?.text, out)?,
        Field::OptCharStr => {
            if let Some(token) = tokens.peek() {
                tokens.next("character string")?;
                char_string(token.text, out)?;
            }
        }
        Field::CharStrs => {
            char_string(tokens.next("character string")?.text, out)?;
            while !tokens.is_empty() {
                char_string(tokens.next("character string")?.text, out)?;
            }
        }
        Field::Base64 => {
            tokens.peek().ok_or(RdataError::Missing("base64 data"))?;
            base64_rest(tokens, out)?;
        }
        // DOA writes absent data as `-`.
        Field::OptBase64 if tokens.peek().is_some_and(|token| token.is(b"-")) => {
            tokens.next("base64 data")?;
        }
        Field::OptBase64 => base64_rest(tokens, out)?,
        Field::Hex => {
            tokens.peek().ok_or(RdataError::Missing("hex data"))?;
            // Tokens are joined first, so a split may fall inside an octet.
            let mut joined = Vec::new();
            while !tokens.is_empty() {
                joined.extend_from_slice(tokens.next("hex data")?.text);
            }
            decode_hex_into(&joined, out)?;
        }
        Field::Salt => {
            let token = tokens.next("NSEC3 salt")?;
            let len_pos = out.len();
            out.push(0);
            if token.text != b"-" {
                decode_hex_into(token.text, out)?;
            }
            let len = out.len() - len_pos - 1;
            if len > 255 {
                return Err(RdataError::Invalid("NSEC3 salt"));
            }
            out[len_pos] = len as u8;
        }
        Field::NextHash => {
            let token = tokens.next("next hashed owner name")?;
            let upper = token.text.to_ascii_uppercase();
            let hash = BASE32HEX_NOPAD
                .decode(&upper)
                .map_err(|_| RdataError::Invalid("base32hex next hashed owner name"))?;
            if hash.is_empty() || hash.len() > 255 {
                return Err(RdataError::Invalid("next hashed owner name length"));
            }
            out.push(hash.len() as u8);
            out.extend_from_slice(&hash);
        }
        Field::Bitmap => {
            let mut types = Vec::new();
            while !tokens.is_empty() {
                let token = tokens.next("record type")?;
                let rtype =
                    text::parse_rtype(token.text).ok_or(RdataError::Invalid("record type"))?;
                types.push(rtype.to_int());
            }
            encode_bitmap(&mut types, out);
        }
        Field::RrType => {
            let token = tokens.next("record type")?;
            let rtype = text::parse_rtype(token.text).ok_or(RdataError::Invalid("record type"))?;
            out.extend_from_slice(&rtype.to_int().to_be_bytes());
        }
        Field::Algorithm => {
            let token = tokens.next("algorithm")?;
            out.push(mnemonic_or_number(token.text, ALGORITHMS, "algorithm")?);
        }
        Field::CertType => {
            let token = tokens.next("certificate type")?;
            let value = match CERT_TYPES
                .iter()
                .find(|(name, _)| token.is(name.as_bytes()))
            {
                Some(&(_, value)) => value,
                None => number(token.text, u16::MAX.into(), "certificate type")? as u16,
            };
            out.extend_from_slice(&value.to_be_bytes());
        }
        Field::DsyncScheme => {
            let token = tokens.next("DSYNC scheme")?;
            out.push(mnemonic_or_number(
                token.text,
                &[("NOTIFY", 1)],
                "DSYNC scheme",
            )?);
        }
        Field::Eui48 => eui(tokens.next("EUI-48 address")?.text, 6, out)?,
        Field::Eui64 => eui(tokens.next("EUI-64 address")?.text, 8, out)?,
        Field::Ilnp64 => ilnp64(tokens.next("64-bit locator")?.text, out)?,
        Field::CaaTag => {
            let token = tokens.next("CAA tag")?;
            let tag = token.text;
            if tag.is_empty() || tag.len() > 255 || !tag.iter().all(u8::is_ascii_alphanumeric) {
                return Err(RdataError::Invalid("CAA tag"));
            }
            out.push(tag.len() as u8);
            out.extend_from_slice(tag);
        }
        Field::RawString => {
            let token = tokens.next("string")?;
            text::unescape_into(token.text, out).map_err(string_error)?;
        }
        Field::SvcParams => svcb::encode_params(tokens, out)?,
        Field::Apl => special::encode_apl(tokens, out)?,
        Field::Wks => special::encode_wks(tokens, out)?,
        Field::IpsecGateway => special::encode_ipsec_gateway(tokens, origin, out)?,
        Field::Loc => special::encode_loc(tokens, out)?,
        Field::Hip => special::encode_hip(tokens, origin, out)?,
        Field::Nsap => special::encode_nsap(tokens, out)?,
        Field::AmtRelay => special::encode_amtrelay(tokens, origin, out)?,
    }
    Ok(())
}

/// Decodes one field of `rdata` at `pos`, writes its text to `out` and
/// returns the position after it.
pub(crate) fn decode_field(
    field: Field,
    rdata: &[u8],
    pos: usize,
    out: &mut String,
) -> Result<usize, WireError> {
    let rest = &rdata[pos.min(rdata.len())..];
    let used = match field {
        Field::U8 => {
            let _ = write!(out, "{}", take::<1>(rest)?[0]);
            1
        }
        Field::U16 => {
            let _ = write!(out, "{}", u16::from_be_bytes(take(rest)?));
            2
        }
        Field::U32 | Field::Ttl => {
            let _ = write!(out, "{}", u32::from_be_bytes(take(rest)?));
            4
        }
        Field::Time => {
            text::write_time(out, u32::from_be_bytes(take(rest)?));
            4
        }
        Field::Name => write_name(out, rest)?,
        Field::Ipv4 => {
            let _ = write!(out, "{}", Ipv4Addr::from(take::<4>(rest)?));
            4
        }
        Field::Ipv6 => {
            let _ = write!(out, "{}", Ipv6Addr::from(take::<16>(rest)?));
            16
        }
        Field::CharStr => write_char_string(out, rest)?,
        Field::OptCharStr => {
            if rest.is_empty() {
                0
            } else {
                out.push(' ');
                write_char_string(out, rest)?
            }
        }
        Field::CharStrs => {
            let mut used = write_char_string(out, rest)?;
            while used < rest.len() {
                out.push(' ');
                used += write_char_string(out, &rest[used..])?;
            }
            used
        }
        Field::Base64 | Field::OptBase64 => {
            if rest.is_empty() && field == Field::Base64 {
                return Err(WireError::Invalid("empty base64 field"));
            }
            if !rest.is_empty() && field == Field::OptBase64 {
                out.push(' ');
            }
            out.push_str(&BASE64.encode(rest));
            rest.len()
        }
        Field::Hex => {
            if rest.is_empty() {
                return Err(WireError::Invalid("empty hex field"));
            }
            out.push_str(&HEXUPPER.encode(rest));
            rest.len()
        }
        Field::Salt => {
            let len = usize::from(take::<1>(rest)?[0]);
            let salt = rest.get(1..1 + len).ok_or(WireError::Truncated)?;
            if salt.is_empty() {
                out.push('-');
            } else {
                out.push_str(&HEXUPPER.encode(salt));
            }
            1 + len
        }
        Field::NextHash => {
            let len = usize::from(take::<1>(rest)?[0]);
            let hash = rest.get(1..1 + len).ok_or(WireError::Truncated)?;
            if hash.is_empty() {
                return Err(WireError::Invalid("empty next hashed owner name"));
            }
            out.push_str(&BASE32HEX_NOPAD.encode(hash));
            1 + len
        }
        Field::Bitmap => {
            if !rest.is_empty() {
                out.push(' ');
            }
            write_bitmap(out, rest)?;
            rest.len()
        }
        Field::RrType => {
            text::write_rtype(out, Rtype::from_int(u16::from_be_bytes(take(rest)?)));
            2
        }
        Field::Algorithm | Field::DsyncScheme => {
            let _ = write!(out, "{}", take::<1>(rest)?[0]);
            1
        }
        Field::CertType => {
            let _ = write!(out, "{}", u16::from_be_bytes(take(rest)?));
            2
        }
        Field::Eui48 => write_eui(out, take::<6>(rest)?.as_slice()),
        Field::Eui64 => write_eui(out, take::<8>(rest)?.as_slice()),
        Field::Ilnp64 => {
            let octets = take::<8>(rest)?;
            let groups: Vec<String> = octets
                .chunks(2)
                .map(|pair| format!("{:04x}", u16::from_be_bytes([pair[0], pair[1]])))
                .collect();
            out.push_str(&groups.join(":"));
            8
        }
        Field::CaaTag => {
            let len = usize::from(take::<1>(rest)?[0]);
            let tag = rest.get(1..1 + len).ok_or(WireError::Truncated)?;
            if tag.is_empty() || !tag.iter().all(u8::is_ascii_alphanumeric) {
                return Err(WireError::Invalid("CAA tag"));
            }
            out.push_str(std::str::from_utf8(tag).map_err(|_| WireError::Invalid("CAA tag"))?);
            1 + len
        }
        Field::RawString => {
            text::write_quoted(out, rest);
            rest.len()
        }
        Field::SvcParams => svcb::decode_params(rest, out)?,
        Field::Apl => special::decode_apl(rest, out)?,
        Field::Wks => special::decode_wks(rest, out)?,
        Field::IpsecGateway => {
            let gateway_type = *rdata.get(1).ok_or(WireError::Truncated)?;
            special::decode_ipsec_gateway(gateway_type, rest, out)?
        }
        Field::Loc => special::decode_loc(rest, out)?,
        Field::Hip => special::decode_hip(rest, out)?,
        Field::Nsap => special::decode_nsap(rest, out)?,
        Field::AmtRelay => special::decode_amtrelay(rest, out)?,
    };
    if used > rest.len() {
        return Err(WireError::Truncated);
    }
    Ok(pos + used)
}

/// Returns the first `N` octets of `rest`.
pub(crate) fn take<const N: usize>(rest: &[u8]) -> Result<[u8; N], WireError> {
    rest.get(..N)
        .and_then(|octets| octets.try_into().ok())
        .ok_or(WireError::Truncated)
}

/// Parses a decimal number no larger than `max`.
pub(crate) fn number(text: &[u8], max: u32, what: &'static str) -> Result<u32, RdataError> {
    text::parse_decimal(text)
        .filter(|value| *value <= max)
        .ok_or(RdataError::Invalid(what))
}

/// Returns the value of a mnemonic from `table`, or parses a number.
fn mnemonic_or_number(
    text: &[u8],
    table: &[(&str, u8)],
    what: &'static str,
) -> Result<u8, RdataError> {
    if let Some(&(_, value)) = table
        .iter()
        .find(|(name, _)| text.eq_ignore_ascii_case(name.as_bytes()))
    {
        return Ok(value);
    }
    Ok(number(text, u8::MAX.into(), what)? as u8)
}

pub(crate) fn ipv4(text: &[u8]) -> Result<Ipv4Addr, RdataError> {
    std::str::from_utf8(text)
        .ok()
        .and_then(|text| text.parse().ok())
        .ok_or(RdataError::Invalid("IPv4 address"))
}

pub(crate) fn ipv6(text: &[u8]) -> Result<Ipv6Addr, RdataError> {
    std::str::from_utf8(text)
        .ok()
        .and_then(|text| text.parse().ok())
        .ok_or(RdataError::Invalid("IPv6 address"))
}

pub(crate) fn string_error(error: StringError) -> RdataError {
    match error {
        StringError::BadEscape => RdataError::Invalid("escape sequence"),
        StringError::TooLong => RdataError::LongString,
    }
}

fn char_string(text: &[u8], out: &mut Vec<u8>) -> Result<(), RdataError> {
    text::push_char_string(text, out).map_err(string_error)
}

/// Decodes base64 from all remaining tokens.
pub(crate) fn base64_rest(
    tokens: &mut Tokens<'_, '_>,
    out: &mut Vec<u8>,
) -> Result<(), RdataError> {
    let mut joined = Vec::new();
    while !tokens.is_empty() {
        joined.extend_from_slice(tokens.next("base64 data")?.text);
    }
    if joined.is_empty() {
        return Ok(());
    }
    let decoded = BASE64
        .decode(&joined)
        .map_err(|_| RdataError::Invalid("base64 data"))?;
    out.extend_from_slice(&decoded);
    Ok(())
}

/// Appends the octets of a hex token (either case, even length).
pub(crate) fn decode_hex_into(text: &[u8], out: &mut Vec<u8>) -> Result<(), RdataError> {
    let decoded = HEXLOWER_PERMISSIVE
        .decode(text)
        .map_err(|_| RdataError::Invalid("hex data"))?;
    out.extend_from_slice(&decoded);
    Ok(())
}

/// Appends an NSEC-style type bitmap for `types` (sorted and deduplicated here).
pub(crate) fn encode_bitmap(types: &mut Vec<u16>, out: &mut Vec<u8>) {
    types.sort_unstable();
    types.dedup();
    let mut index = 0;
    while index < types.len() {
        let window = (types[index] >> 8) as u8;
        let mut bits = [0u8; 32];
        let mut used = 0;
        while index < types.len() && (types[index] >> 8) as u8 == window {
            let low = (types[index] & 0xff) as usize;
            bits[low / 8] |= 0x80 >> (low % 8);
            used = low / 8 + 1;
            index += 1;
        }
        out.push(window);
        out.push(used as u8);
        out.extend_from_slice(&bits[..used]);
    }
}

/// Returns the types of an NSEC-style bitmap, in ascending order.
pub(crate) fn bitmap_types(mut rest: &[u8]) -> Result<Vec<u16>, WireError> {
    let mut types = Vec::new();
    let mut last_window: Option<u8> = None;
    while !rest.is_empty() {
        let [window, len] = take::<2>(rest)?;
        let len = usize::from(len);
        if len == 0 || len > 32 || last_window.is_some_and(|last| last >= window) {
            return Err(WireError::Invalid("type bitmap"));
        }
        let bits = rest.get(2..2 + len).ok_or(WireError::Truncated)?;
        for (octet_index, octet) in bits.iter().enumerate() {
            for bit in 0..8 {
                if octet & (0x80 >> bit) != 0 {
                    types.push(u16::from(window) << 8 | (octet_index * 8 + bit) as u16);
                }
            }
        }
        last_window = Some(window);
        rest = &rest[2 + len..];
    }
    Ok(types)
}

fn write_bitmap(out: &mut String, rest: &[u8]) -> Result<(), WireError> {
    let types = bitmap_types(rest)?;
    for (index, rtype) in types.into_iter().enumerate() {
        if index > 0 {
            out.push(' ');
        }
        text::write_rtype(out, Rtype::from_int(rtype));
    }
    Ok(())
}

/// Writes the name at the start of `rest`; returns its length.
pub(crate) fn write_name(out: &mut String, rest: &[u8]) -> Result<usize, WireError> {
    let len = wire_name_len(rest)?;
    let name = Name::from_wire(Bytes::copy_from_slice(&rest[..len]))?;
    let _ = write!(out, "{name}");
    Ok(len)
}

/// Writes the character string at the start of `rest`; returns its length.
pub(crate) fn write_char_string(out: &mut String, rest: &[u8]) -> Result<usize, WireError> {
    let len = usize::from(take::<1>(rest)?[0]);
    let octets = rest.get(1..1 + len).ok_or(WireError::Truncated)?;
    text::write_quoted(out, octets);
    Ok(1 + len)
}

fn eui(text: &[u8], len: usize, out: &mut Vec<u8>) -> Result<(), RdataError> {
    let invalid = RdataError::Invalid(if len == 6 {
        "EUI-48 address"
    } else {
        "EUI-64 address"
    });
    let groups: Vec<&[u8]> = text.split(|&byte| byte == b'-').collect();
    if groups.len() != len || groups.iter().any(|group| group.len() != 2) {
        return Err(invalid);
    }
    for group in groups {
        let decoded = HEXLOWER_PERMISSIVE
            .decode(group)
            .map_err(|_| invalid.clone())?;
        out.extend_from_slice(&decoded);
    }
    Ok(())
}

fn write_eui(out: &mut String, octets: &[u8]) -> usize {
    let groups: Vec<String> = octets.iter().map(|octet| format!("{octet:02x}")).collect();
    out.push_str(&groups.join("-"));
    octets.len()
}

fn ilnp64(text: &[u8], out: &mut Vec<u8>) -> Result<(), RdataError> {
    let invalid = RdataError::Invalid("64-bit locator");
    let groups: Vec<&[u8]> = text.split(|&byte| byte == b':').collect();
    if groups.len() != 4 {
        return Err(invalid);
    }
    for group in groups {
        if group.len() != 4 || !group.iter().all(u8::is_ascii_hexdigit) {
            return Err(invalid);
        }
        let value = group.iter().fold(0u16, |acc, digit| {
            acc << 4 | (*digit as char).to_digit(16).unwrap_or(0) as u16
        });
        out.extend_from_slice(&value.to_be_bytes());
    }
    Ok(())
}
