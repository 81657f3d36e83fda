//! SVCB and HTTPS service parameters (RFC 9460 sections 2.1 and 7).
//!
//! A parameter is written `key` or `key=value`, the value optionally
//! quoted. Values are first unescaped as character strings; list values
//! (alpn, mandatory, hints) are then split on commas, and inside an alpn
//! item `\,` and `\\` stand for a comma and a backslash (RFC 9460
//! appendix A.1). On the wire, parameters are sorted by key number.

use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};

use data_encoding::BASE64;

use super::field::{ipv4, ipv6, number, string_error};
use super::text::{unescape_into, write_quoted};
use super::{RdataError, Tokens, WireError};

const MANDATORY: u16 = 0;
const ALPN: u16 = 1;
const NO_DEFAULT_ALPN: u16 = 2;
const PORT: u16 = 3;
const IPV4HINT: u16 = 4;
const ECH: u16 = 5;
const IPV6HINT: u16 = 6;
const DOHPATH: u16 = 7;
const OHTTP: u16 = 8;
const TLS_SUPPORTED_GROUPS: u16 = 9;

/// Registered key names: RFC 9460 section 14.3.2, RFC 9461, RFC 9540 and
/// the IANA registry entry for tls-supported-groups (key 9).
const KEYS: &[(&str, u16)] = &[
    ("mandatory", MANDATORY),
    ("alpn", ALPN),
    ("no-default-alpn", NO_DEFAULT_ALPN),
    ("port", PORT),
    ("ipv4hint", IPV4HINT),
    ("ech", ECH),
    ("ipv6hint", IPV6HINT),
    ("dohpath", DOHPATH),
    ("ohttp", OHTTP),
    ("tls-supported-groups", TLS_SUPPORTED_GROUPS),
];

/// Parses a key name or `keyNNNNN`; key 65535 is reserved.
fn parse_key(text: &[u8]) -> Result<u16, RdataError> {
    if let Some(&(_, key)) = KEYS.iter().find(|(name, _)| text == name.as_bytes()) {
        return Ok(key);
    }
    let digits = text
        .strip_prefix(b"key")
        .ok_or(RdataError::SvcParam("unknown key"))?;
    if digits.len() > 1 && digits[0] == b'0' {
        return Err(RdataError::SvcParam("key number with leading zero"));
    }
    let key =
        number(digits, 65534, "key number").map_err(|_| RdataError::SvcParam("key number"))?;
    Ok(key as u16)
}

/// Reads all remaining tokens as service parameters and appends them
/// sorted by key.
pub(super) fn encode_params(
    tokens: &mut Tokens<'_, '_>,
    out: &mut Vec<u8>,
) -> Result<(), RdataError> {
    let mut params: Vec<(u16, Vec<u8>)> = Vec::new();
    while !tokens.is_empty() {
        let token = tokens.next("service parameter")?;
        let (key_text, value) = match token.text.iter().position(|&b| b == b'=') {
            Some(eq) => (&token.text[..eq], Some(&token.text[eq + 1..])),
            None => (token.text, None),
        };
        let key = parse_key(key_text)?;
        let value = match value {
            Some(raw) => {
                let raw = match raw {
                    [b'"', inner @ .., b'"'] => inner,
                    _ => raw,
                };
                let mut octets = Vec::new();
                unescape_into(raw, &mut octets).map_err(string_error)?;
                Some(octets)
            }
            None => None,
        };
        let encoded = encode_value(key, value.as_deref())?;
        if encoded.len() > 65535 {
            return Err(RdataError::TooLong);
        }
        params.push((key, encoded));
    }
    params.sort_by_key(|(key, _)| *key);
    if params.windows(2).any(|pair| pair[0].0 == pair[1].0) {
        return Err(RdataError::SvcParam("duplicate key"));
    }
    check_consistency(&params)?;
    for (key, value) in params {
        out.extend_from_slice(&key.to_be_bytes());
        out.extend_from_slice(&(value.len() as u16).to_be_bytes());
        out.extend_from_slice(&value);
    }
    Ok(())
}

/// Checks that the keys named in mandatory are present (RFC 9460 section 8).
/// A no-default-alpn without alpn is accepted, as Knot does: RFC 9460
/// section 7.1.1 calls such a record not self-consistent, not malformed.
fn check_consistency(params: &[(u16, Vec<u8>)]) -> Result<(), RdataError> {
    let has = |wanted: u16| params.iter().any(|(key, _)| *key == wanted);
    if let Some((_, list)) = params.iter().find(|(key, _)| *key == MANDATORY) {
        for pair in list.chunks(2) {
            if !has(u16::from_be_bytes([pair[0], pair[1]])) {
                return Err(RdataError::SvcParam("mandatory key is missing"));
            }
        }
    }
    Ok(())
}

/// Encodes the value of one parameter.
fn encode_value(key: u16, value: Option<&[u8]>) -> Result<Vec<u8>, RdataError> {
    let required = || {
        value
            .filter(|v| !v.is_empty())
            .ok_or(RdataError::SvcParam("missing value"))
    };
    let mut out = Vec::new();
    match key {
        MANDATORY => {
            let mut keys = Vec::new();
            for item in required()?.split(|&b| b == b',') {
                let listed = parse_key(item)?;
                if listed == MANDATORY {
                    return Err(RdataError::SvcParam("mandatory lists itself"));
                }
                keys.push(listed);
            }
            keys.sort_unstable();
            if keys.windows(2).any(|pair| pair[0] == pair[1]) {
                return Err(RdataError::SvcParam("duplicate key in mandatory"));
            }
            for listed in keys {
                out.extend_from_slice(&listed.to_be_bytes());
            }
        }
        ALPN => {
            for item in split_alpn(required()?)? {
                if item.is_empty() || item.len() > 255 {
                    return Err(RdataError::SvcParam("empty or long alpn identifier"));
                }
                out.push(item.len() as u8);
                out.extend_from_slice(&item);
            }
        }
        NO_DEFAULT_ALPN | OHTTP => {
            if value.is_some() {
                return Err(RdataError::SvcParam("key takes no value"));
            }
        }
        PORT => {
            let port =
                number(required()?, 65535, "port").map_err(|_| RdataError::SvcParam("port"))?;
            out.extend_from_slice(&(port as u16).to_be_bytes());
        }
        IPV4HINT => {
            for item in required()?.split(|&b| b == b',') {
                out.extend_from_slice(&ipv4(item)?.octets());
            }
        }
        IPV6HINT => {
            for item in required()?.split(|&b| b == b',') {
                out.extend_from_slice(&ipv6(item)?.octets());
            }
        }
        ECH => {
            out = BASE64
                .decode(required()?)
                .map_err(|_| RdataError::SvcParam("ech is not base64"))?;
        }
        DOHPATH => out.extend_from_slice(required()?),
        TLS_SUPPORTED_GROUPS => {
            for item in required()?.split(|&b| b == b',') {
                let group =
                    number(item, 65535, "group").map_err(|_| RdataError::SvcParam("group"))?;
                out.extend_from_slice(&(group as u16).to_be_bytes());
            }
        }
        _ => out.extend_from_slice(value.unwrap_or_default()),
    }
    Ok(out)
}

/// Splits an alpn value on unescaped commas.
fn split_alpn(value: &[u8]) -> Result<Vec<Vec<u8>>, RdataError> {
    let mut items = vec![Vec::new()];
    let mut pos = 0;
    while pos < value.len() {
        match value[pos] {
            b'\\' => {
                let next = *value
                    .get(pos + 1)
                    .ok_or(RdataError::SvcParam("alpn ends in a backslash"))?;
                if let Some(item) = items.last_mut() {
                    item.push(next);
                }
                pos += 2;
            }
            b',' => {
                items.push(Vec::new());
                pos += 1;
            }
            byte => {
                if let Some(item) = items.last_mut() {
                    item.push(byte);
                }
                pos += 1;
            }
        }
    }
    Ok(items)
}

/// Writes the parameters in `rest` and returns the octets used.
pub(super) fn decode_params(rest: &[u8], out: &mut String) -> Result<usize, WireError> {
    let mut pos = 0;
    let mut last: Option<u16> = None;
    while pos < rest.len() {
        let header = rest.get(pos..pos + 4).ok_or(WireError::Truncated)?;
        let key = u16::from_be_bytes([header[0], header[1]]);
        let len = usize::from(u16::from_be_bytes([header[2], header[3]]));
        let value = rest
            .get(pos + 4..pos + 4 + len)
            .ok_or(WireError::Truncated)?;
        if last.is_some_and(|last| last >= key) || key == 65535 {
            return Err(WireError::Invalid("service parameter order"));
        }
        last = Some(key);
        out.push(' ');
        write_param(out, key, value)?;
        pos += 4 + len;
    }
    Ok(pos)
}

fn write_key(out: &mut String, key: u16) {
    match KEYS.iter().find(|(_, number)| *number == key) {
        Some((name, _)) => out.push_str(name),
        None => {
            let _ = write!(out, "key{key}");
        }
    }
}

// The last arm over the registered keys catches the values that the arms
// before it rejected, so it overlaps them on purpose.
#[allow(clippy::match_overlapping_arm)]
fn write_param(out: &mut String, key: u16, value: &[u8]) -> Result<(), WireError> {
    let invalid = WireError::Invalid("service parameter value");
    write_key(out, key);
    match key {
        MANDATORY => {
            if value.is_empty() || !value.len().is_multiple_of(2) {
                return Err(invalid);
            }
            out.push('=');
            for (index, pair) in value.chunks(2).enumerate() {
                if index > 0 {
                    out.push(',');
                }
                write_key(out, u16::from_be_bytes([pair[0], pair[1]]));
            }
        }
        ALPN => {
            let mut list = Vec::new();
            let mut pos = 0;
            while pos < value.len() {
                let len = usize::from(value[pos]);
                let item = value.get(pos + 1..pos + 1 + len).ok_or(invalid.clone())?;
                if item.is_empty() {
                    return Err(invalid);
                }
                if pos > 0 {
                    list.push(b',');
                }
                for &byte in item {
                    if byte == b',' || byte == b'\\' {
                        list.push(b'\\');
                    }
                    list.push(byte);
                }
                pos += 1 + len;
            }
            if list.is_empty() {
                return Err(invalid);
            }
            out.push('=');
            write_quoted(out, &list);
        }
        NO_DEFAULT_ALPN | OHTTP if value.is_empty() => {}
        PORT if value.len() == 2 => {
            let _ = write!(out, "={}", u16::from_be_bytes([value[0], value[1]]));
        }
        IPV4HINT if !value.is_empty() && value.len().is_multiple_of(4) => {
            let items: Vec<String> = value
                .chunks(4)
                .map(|c| Ipv4Addr::new(c[0], c[1], c[2], c[3]).to_string())
                .collect();
            let _ = write!(out, "={}", items.join(","));
        }
        IPV6HINT if !value.is_empty() && value.len().is_multiple_of(16) => {
            let items: Vec<String> = value
                .chunks(16)
                .map(|c| {
                    let octets: [u8; 16] = c.try_into().unwrap_or_default();
                    Ipv6Addr::from(octets).to_string()
                })
                .collect();
            let _ = write!(out, "={}", items.join(","));
        }
        ECH if !value.is_empty() => {
            let _ = write!(out, "={}", BASE64.encode(value));
        }
        DOHPATH => {
            out.push('=');
            write_quoted(out, value);
        }
        TLS_SUPPORTED_GROUPS if !value.is_empty() && value.len().is_multiple_of(2) => {
            let groups: Vec<String> = value
                .chunks(2)
                .map(|pair| u16::from_be_bytes([pair[0], pair[1]]).to_string())
                .collect();
            let _ = write!(out, "={}", groups.join(","));
        }
        // A registered key whose value matched none of the forms above.
        MANDATORY..=TLS_SUPPORTED_GROUPS => return Err(invalid),
        _ if value.is_empty() => {}
        _ => {
            out.push('=');
            write_quoted(out, value);
        }
    }
    Ok(())
}
