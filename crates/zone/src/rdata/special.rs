//! Fields whose presentation format does not split into simple fields:
//! LOC (RFC 1876), APL (RFC 3123), WKS (RFC 1035 section 3.4.2), the
//! IPSECKEY gateway (RFC 4025), HIP (RFC 8005), NSAP (RFC 1706) and
//! AMTRELAY (RFC 8777).

use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};

use data_encoding::{BASE64, HEXLOWER_PERMISSIVE, HEXUPPER};

use super::field::{decode_hex_into, ipv4, ipv6, number, take, write_name};
use super::text::parse_name_bytes;
use super::{RdataError, Tokens, WireError};
use crate::name::Name;

/// Reads an IPSECKEY gateway; its kind is the gateway type octet already
/// written at `out[1]`.
pub(super) fn encode_ipsec_gateway(
    tokens: &mut Tokens<'_, '_>,
    origin: &Name,
    out: &mut Vec<u8>,
) -> Result<(), RdataError> {
    let gateway_type = *out.get(1).ok_or(RdataError::Missing("gateway type"))?;
    let token = tokens.next("gateway")?;
    encode_relay(gateway_type, token.text, origin, out)
}

/// Writes a gateway or relay of `kind` 0 (none), 1 (IPv4), 2 (IPv6) or 3 (name).
fn encode_relay(kind: u8, text: &[u8], origin: &Name, out: &mut Vec<u8>) -> Result<(), RdataError> {
    match kind {
        0 if text == b"." => {}
        0 => return Err(RdataError::Invalid("gateway: type 0 requires \".\"")),
        1 => out.extend_from_slice(&ipv4(text)?.octets()),
        2 => out.extend_from_slice(&ipv6(text)?.octets()),
        3 => out.extend_from_slice(parse_name_bytes(text, origin)?.as_wire()),
        _ => return Err(RdataError::Invalid("gateway type")),
    }
    Ok(())
}

pub(super) fn decode_ipsec_gateway(
    gateway_type: u8,
    rest: &[u8],
    out: &mut String,
) -> Result<usize, WireError> {
    decode_relay(gateway_type, rest, out)
}

fn decode_relay(kind: u8, rest: &[u8], out: &mut String) -> Result<usize, WireError> {
    match kind {
        0 => {
            out.push('.');
            Ok(0)
        }
        1 => {
            let _ = write!(out, "{}", Ipv4Addr::from(take::<4>(rest)?));
            Ok(4)
        }
        2 => {
            let _ = write!(out, "{}", Ipv6Addr::from(take::<16>(rest)?));
            Ok(16)
        }
        3 => write_name(out, rest),
        _ => Err(WireError::Invalid("gateway type")),
    }
}

/// Reads AMTRELAY: precedence, discovery-optional bit, type and relay.
pub(super) fn encode_amtrelay(
    tokens: &mut Tokens<'_, '_>,
    origin: &Name,
    out: &mut Vec<u8>,
) -> Result<(), RdataError> {
    let precedence = number(tokens.next("precedence")?.text, 255, "precedence")?;
    let discovery = number(tokens.next("discovery bit")?.text, 1, "discovery bit")?;
    let kind = number(tokens.next("relay type")?.text, 127, "relay type")? as u8;
    out.push(precedence as u8);
    out.push((discovery as u8) << 7 | kind);
    if kind == 0 && tokens.is_empty() {
        return Ok(());
    }
    encode_relay(kind, tokens.next("relay")?.text, origin, out)
}

pub(super) fn decode_amtrelay(rest: &[u8], out: &mut String) -> Result<usize, WireError> {
    let [precedence, flags] = take::<2>(rest)?;
    let kind = flags & 0x7f;
    let _ = write!(out, "{precedence} {} {kind} ", flags >> 7);
    Ok(2 + decode_relay(kind, &rest[2..], out)?)
}

/// Reads APL items `[!]afi:address/prefix` (RFC 3123 section 5).
pub(super) fn encode_apl(tokens: &mut Tokens<'_, '_>, out: &mut Vec<u8>) -> Result<(), RdataError> {
    let invalid = RdataError::Invalid("APL item");
    while !tokens.is_empty() {
        let mut text = tokens.next("APL item")?.text;
        let negate = text.first() == Some(&b'!');
        if negate {
            text = &text[1..];
        }
        let colon = text
            .iter()
            .position(|&b| b == b':')
            .ok_or(invalid.clone())?;
        let slash = text
            .iter()
            .position(|&b| b == b'/')
            .ok_or(invalid.clone())?;
        if slash < colon {
            return Err(invalid);
        }
        let family = number(&text[..colon], 65535, "APL address family")? as u16;
        let address = &text[colon + 1..slash];
        let prefix = number(&text[slash + 1..], 255, "APL prefix")? as u8;
        let octets: Vec<u8> = match family {
            1 if prefix <= 32 => ipv4(address)?.octets().to_vec(),
            2 if prefix <= 128 => ipv6(address)?.octets().to_vec(),
            _ => return Err(invalid),
        };
        let used = octets
            .iter()
            .rposition(|&b| b != 0)
            .map_or(0, |pos| pos + 1);
        out.extend_from_slice(&family.to_be_bytes());
        out.push(prefix);
        out.push((negate as u8) << 7 | used as u8);
        out.extend_from_slice(&octets[..used]);
    }
    Ok(())
}

pub(super) fn decode_apl(rest: &[u8], out: &mut String) -> Result<usize, WireError> {
    let mut pos = 0;
    while pos < rest.len() {
        let [f0, f1, prefix, flags] = take::<4>(&rest[pos..])?;
        let family = u16::from_be_bytes([f0, f1]);
        let len = usize::from(flags & 0x7f);
        let octets = rest
            .get(pos + 4..pos + 4 + len)
            .ok_or(WireError::Truncated)?;
        if pos > 0 {
            out.push(' ');
        }
        if flags & 0x80 != 0 {
            out.push('!');
        }
        match family {
            1 if len <= 4 => {
                let mut address = [0u8; 4];
                address[..len].copy_from_slice(octets);
                let _ = write!(out, "1:{}/{prefix}", Ipv4Addr::from(address));
            }
            2 if len <= 16 => {
                let mut address = [0u8; 16];
                address[..len].copy_from_slice(octets);
                let _ = write!(out, "2:{}/{prefix}", Ipv6Addr::from(address));
            }
            _ => return Err(WireError::Invalid("APL address family")),
        }
        pos += 4 + len;
    }
    Ok(rest.len())
}

/// Well-known service names accepted in WKS records.
const SERVICES: &[(&str, u16)] = &[
    ("ftp", 21),
    ("ssh", 22),
    ("telnet", 23),
    ("smtp", 25),
    ("domain", 53),
    ("http", 80),
    ("pop3", 110),
    ("ntp", 123),
    ("imap", 143),
    ("https", 443),
];

/// Reads WKS: address, protocol and services.
pub(super) fn encode_wks(tokens: &mut Tokens<'_, '_>, out: &mut Vec<u8>) -> Result<(), RdataError> {
    out.extend_from_slice(&ipv4(tokens.next("IPv4 address")?.text)?.octets());
    let protocol = tokens.next("protocol")?;
    let protocol = if protocol.is(b"tcp") {
        6
    } else if protocol.is(b"udp") {
        17
    } else {
        number(protocol.text, 255, "protocol")? as u8
    };
    out.push(protocol);
    let mut bits = Vec::new();
    while !tokens.is_empty() {
        let token = tokens.next("service")?;
        let port = match SERVICES.iter().find(|(name, _)| token.is(name.as_bytes())) {
            Some(&(_, port)) => port,
            None => number(token.text, 65535, "service")? as u16,
        };
        let index = usize::from(port / 8);
        if bits.len() <= index {
            bits.resize(index + 1, 0);
        }
        bits[index] |= 0x80 >> (port % 8);
    }
    out.extend_from_slice(&bits);
    Ok(())
}

pub(super) fn decode_wks(rest: &[u8], out: &mut String) -> Result<usize, WireError> {
    let [a, b, c, d, protocol] = take::<5>(rest)?;
    let _ = write!(out, "{} {protocol}", Ipv4Addr::new(a, b, c, d));
    for (index, octet) in rest[5..].iter().enumerate() {
        for bit in 0..8 {
            if octet & (0x80 >> bit) != 0 {
                let _ = write!(out, " {}", index * 8 + bit);
            }
        }
    }
    Ok(rest.len())
}

/// Reads HIP: algorithm, HIT in hex, public key in base64, rendezvous servers.
pub(super) fn encode_hip(
    tokens: &mut Tokens<'_, '_>,
    origin: &Name,
    out: &mut Vec<u8>,
) -> Result<(), RdataError> {
    let algorithm = number(tokens.next("algorithm")?.text, 255, "algorithm")? as u8;
    let mut hit = Vec::new();
    decode_hex_into(tokens.next("HIT")?.text, &mut hit)?;
    let key = BASE64
        .decode(tokens.next("public key")?.text)
        .map_err(|_| RdataError::Invalid("public key"))?;
    if hit.is_empty() || hit.len() > 255 || key.is_empty() || key.len() > 65535 {
        return Err(RdataError::Invalid("HIT or public key length"));
    }
    out.push(hit.len() as u8);
    out.push(algorithm);
    out.extend_from_slice(&(key.len() as u16).to_be_bytes());
    out.extend_from_slice(&hit);
    out.extend_from_slice(&key);
    while !tokens.is_empty() {
        let name = parse_name_bytes(tokens.next("rendezvous server")?.text, origin)?;
        out.extend_from_slice(name.as_wire());
    }
    Ok(())
}

pub(super) fn decode_hip(rest: &[u8], out: &mut String) -> Result<usize, WireError> {
    let [hit_len, algorithm, k0, k1] = take::<4>(rest)?;
    let hit_len = usize::from(hit_len);
    let key_len = usize::from(u16::from_be_bytes([k0, k1]));
    let hit = rest.get(4..4 + hit_len).ok_or(WireError::Truncated)?;
    let key = rest
        .get(4 + hit_len..4 + hit_len + key_len)
        .ok_or(WireError::Truncated)?;
    if hit.is_empty() || key.is_empty() {
        return Err(WireError::Invalid("HIP lengths"));
    }
    let _ = write!(
        out,
        "{algorithm} {} {}",
        HEXUPPER.encode(hit),
        BASE64.encode(key)
    );
    let mut pos = 4 + hit_len + key_len;
    while pos < rest.len() {
        out.push(' ');
        pos += write_name(out, &rest[pos..])?;
    }
    Ok(pos)
}

/// Reads an NSAP address: `0x` and hex digits, dots allowed between them.
pub(super) fn encode_nsap(
    tokens: &mut Tokens<'_, '_>,
    out: &mut Vec<u8>,
) -> Result<(), RdataError> {
    let text = tokens.next("NSAP address")?.text;
    if text.len() < 3 || !text[..2].eq_ignore_ascii_case(b"0x") {
        return Err(RdataError::Invalid("NSAP address"));
    }
    let digits: Vec<u8> = text[2..].iter().copied().filter(|&b| b != b'.').collect();
    let decoded = HEXLOWER_PERMISSIVE
        .decode(&digits)
        .map_err(|_| RdataError::Invalid("NSAP address"))?;
    out.extend_from_slice(&decoded);
    Ok(())
}

pub(super) fn decode_nsap(rest: &[u8], out: &mut String) -> Result<usize, WireError> {
    if rest.is_empty() {
        return Err(WireError::Invalid("empty NSAP address"));
    }
    out.push_str("0x");
    out.push_str(&HEXUPPER.encode(rest));
    Ok(rest.len())
}

/// Reads LOC (RFC 1876 section 3): latitude, longitude, altitude and the
/// optional size and precisions, which default to 1 m, 10000 m and 10 m.
pub(super) fn encode_loc(tokens: &mut Tokens<'_, '_>, out: &mut Vec<u8>) -> Result<(), RdataError> {
    let latitude = loc_coordinate(tokens, b'N', b'S', 90)?;
    let longitude = loc_coordinate(tokens, b'E', b'W', 180)?;
    let altitude = centimetres(tokens.next("altitude")?.text, true)?;
    if !(-10_000_000..=4_284_967_295).contains(&altitude) {
        return Err(RdataError::Invalid("altitude"));
    }
    let mut precisions = [0x12u8, 0x16, 0x13];
    for precision in &mut precisions {
        if tokens.is_empty() {
            break;
        }
        let value = centimetres(tokens.next("precision")?.text, false)?;
        *precision = loc_precision(value)?;
    }
    out.push(0);
    out.extend_from_slice(&precisions);
    out.extend_from_slice(&latitude.to_be_bytes());
    out.extend_from_slice(&longitude.to_be_bytes());
    out.extend_from_slice(&((altitude + 10_000_000) as u32).to_be_bytes());
    Ok(())
}

/// Reads `degrees [minutes [seconds]] hemisphere` as a LOC coordinate.
fn loc_coordinate(
    tokens: &mut Tokens<'_, '_>,
    positive: u8,
    negative: u8,
    max_degrees: u32,
) -> Result<u32, RdataError> {
    let invalid = RdataError::Invalid("LOC coordinate");
    let degrees = number(tokens.next("degrees")?.text, max_degrees, "degrees")?;
    let mut parts = [0u32; 2];
    let mut index = 0;
    let hemisphere = loop {
        let token = tokens.next("hemisphere")?;
        if token.is(&[positive]) {
            break 1i64;
        }
        if token.is(&[negative]) {
            break -1i64;
        }
        if index == 0 {
            parts[0] = number(token.text, 59, "minutes")?;
        } else if index == 1 {
            parts[1] = milliseconds(token.text)?;
        } else {
            return Err(invalid);
        }
        index += 1;
    };
    let offset =
        i64::from(degrees) * 3_600_000 + i64::from(parts[0]) * 60_000 + i64::from(parts[1]);
    Ok((2_147_483_648i64 + hemisphere * offset) as u32)
}

/// Parses seconds with up to three decimals into milliseconds.
fn milliseconds(text: &[u8]) -> Result<u32, RdataError> {
    let (whole, fraction) = split_decimal(text, 3).ok_or(RdataError::Invalid("seconds"))?;
    if whole > 59 {
        return Err(RdataError::Invalid("seconds"));
    }
    Ok(whole as u32 * 1000 + fraction as u32)
}

/// Splits `digits[.fraction]` into the whole part and the fraction scaled
/// to `places` decimals.
fn split_decimal(text: &[u8], places: u32) -> Option<(u64, u64)> {
    let (whole, fraction) = match text.iter().position(|&b| b == b'.') {
        Some(dot) => (&text[..dot], &text[dot + 1..]),
        None => (text, &b""[..]),
    };
    if whole.is_empty() || whole.len() > 10 || fraction.len() > places as usize {
        return None;
    }
    if !whole.iter().chain(fraction).all(u8::is_ascii_digit) {
        return None;
    }
    let parse = |digits: &[u8]| {
        digits
            .iter()
            .fold(0u64, |acc, d| acc * 10 + u64::from(d - b'0'))
    };
    let scale = 10u64.pow(places - fraction.len() as u32);
    Some((parse(whole), parse(fraction) * scale))
}

/// Parses metres (`-12.5m`, `10`) into centimetres.
fn centimetres(text: &[u8], signed: bool) -> Result<i64, RdataError> {
    let invalid = RdataError::Invalid("LOC distance");
    let text = text
        .strip_suffix(b"m")
        .or_else(|| text.strip_suffix(b"M"))
        .unwrap_or(text);
    let (negative, digits) = match text.strip_prefix(b"-") {
        Some(rest) if signed => (true, rest),
        Some(_) => return Err(invalid),
        None => (false, text),
    };
    let (whole, fraction) = split_decimal(digits, 2).ok_or(invalid)?;
    let value = (whole * 100 + fraction) as i64;
    Ok(if negative { -value } else { value })
}

/// Encodes centimetres as a LOC size: mantissa and power of ten in one octet.
/// Values above 9 * 10^9 cm (90000000.00 m) do not fit and are rejected.
fn loc_precision(mut value: i64) -> Result<u8, RdataError> {
    if value > 9_000_000_000 {
        return Err(RdataError::Invalid("LOC precision"));
    }
    let mut exponent = 0u8;
    while value >= 10 {
        if exponent == 9 {
            return Err(RdataError::Invalid("LOC precision"));
        }
        value /= 10;
        exponent += 1;
    }
    Ok((value as u8) << 4 | exponent)
}

pub(super) fn decode_loc(rest: &[u8], out: &mut String) -> Result<usize, WireError> {
    let octets = take::<16>(rest)?;
    if octets[0] != 0 {
        return Err(WireError::Invalid("LOC version"));
    }
    let word = |at: usize| {
        u32::from_be_bytes([octets[at], octets[at + 1], octets[at + 2], octets[at + 3]])
    };
    write_coordinate(out, word(4), 'N', 'S');
    out.push(' ');
    write_coordinate(out, word(8), 'E', 'W');
    let altitude = i64::from(word(12)) - 10_000_000;
    let sign = if altitude < 0 { "-" } else { "" };
    let _ = write!(
        out,
        " {sign}{}.{:02}m",
        altitude.abs() / 100,
        altitude.abs() % 100
    );
    for &precision in &octets[1..4] {
        let (mantissa, exponent) = (precision >> 4, precision & 0x0f);
        if mantissa > 9 || exponent > 9 {
            return Err(WireError::Invalid("LOC precision"));
        }
        let cm = u64::from(mantissa) * 10u64.pow(u32::from(exponent));
        let _ = write!(out, " {}.{:02}m", cm / 100, cm % 100);
    }
    Ok(16)
}

fn write_coordinate(out: &mut String, raw: u32, positive: char, negative: char) {
    let offset = i64::from(raw) - 2_147_483_648;
    let hemisphere = if offset < 0 { negative } else { positive };
    let ms = offset.unsigned_abs();
    let _ = write!(
        out,
        "{} {} {}.{:03} {hemisphere}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    );
}
