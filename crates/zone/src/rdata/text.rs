//! Presentation-format primitives shared by the RDATA codec and the reader:
//! names, TTLs, character strings, numbers, times and type mnemonics.
//!
//! Escapes follow RFC 1035 section 5.1: `\DDD` is the octet with decimal
//! value DDD, and `\X` is the character X taken literally.

use std::fmt::Write as _;

use domain::base::iana::Rtype;

use crate::name::{Name, MAX_LABEL_LEN, MAX_NAME_LEN};

/// Error for a domain name in presentation format that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameTextError {
    #[error("empty name")]
    Empty,
    #[error("empty label in a name")]
    EmptyLabel,
    #[error("label longer than 63 octets")]
    LongLabel,
    #[error("name longer than 255 octets")]
    LongName,
    #[error("invalid escape sequence in a name")]
    BadEscape,
}

/// Reads the escape starting after a backslash at `text[pos]`; returns the
/// octet and the position after the escape.
pub(crate) fn unescape_at(text: &[u8], pos: usize) -> Option<(u8, usize)> {
    let first = *text.get(pos)?;
    if !first.is_ascii_digit() {
        return Some((first, pos + 1));
    }
    let digits = text.get(pos..pos + 3)?;
    if !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let value = u32::from(digits[0] - b'0') * 100
        + u32::from(digits[1] - b'0') * 10
        + u32::from(digits[2] - b'0');
    let octet = u8::try_from(value).ok()?;
    Some((octet, pos + 3))
}

/// Parses a domain name in presentation format. `@` is `origin`, and a
/// name without a trailing dot is relative to `origin`.
pub fn parse_name(text: &str, origin: &Name) -> Result<Name, NameTextError> {
    parse_name_bytes(text.as_bytes(), origin)
}

/// Parses a name from raw token octets; see [`parse_name`].
pub(crate) fn parse_name_bytes(text: &[u8], origin: &Name) -> Result<Name, NameTextError> {
    match text {
        b"" => return Err(NameTextError::Empty),
        b"@" => return Ok(origin.clone()),
        b"." => return Ok(Name::root()),
        _ => {}
    }
    let mut wire = Vec::with_capacity(text.len() + 2 + origin.as_wire().len());
    let mut label_start = 0;
    wire.push(0);
    let mut pos = 0;
    let mut absolute = false;
    while pos < text.len() {
        let byte = text[pos];
        if byte == b'.' {
            close_label(&mut wire, label_start)?;
            label_start = wire.len();
            wire.push(0);
            pos += 1;
            if pos == text.len() {
                absolute = true;
            }
            continue;
        }
        let octet = if byte == b'\\' {
            let (octet, next) = unescape_at(text, pos + 1).ok_or(NameTextError::BadEscape)?;
            pos = next;
            octet
        } else {
            pos += 1;
            byte
        };
        wire.push(octet);
    }
    if absolute {
        // The last pushed length octet is the root label.
    } else {
        close_label(&mut wire, label_start)?;
        wire.extend_from_slice(origin.as_wire());
    }
    if wire.len() > MAX_NAME_LEN {
        return Err(NameTextError::LongName);
    }
    Name::from_wire(wire).map_err(|_| NameTextError::LongName)
}

/// Writes the length octet of the label that starts at `start`.
fn close_label(wire: &mut [u8], start: usize) -> Result<(), NameTextError> {
    let len = wire.len() - start - 1;
    if len == 0 {
        return Err(NameTextError::EmptyLabel);
    }
    if len > MAX_LABEL_LEN {
        return Err(NameTextError::LongLabel);
    }
    wire[start] = len as u8;
    Ok(())
}

/// Parses a TTL: decimal seconds ("3600") or units ("1h30m", "1W2d"),
/// case-insensitive. Returns `None` for invalid text or a value above
/// 2^32 - 1.
pub fn parse_ttl(text: &str) -> Option<u32> {
    parse_ttl_bytes(text.as_bytes())
}

pub(crate) fn parse_ttl_bytes(text: &[u8]) -> Option<u32> {
    if text.is_empty() {
        return None;
    }
    if text.iter().all(u8::is_ascii_digit) {
        return parse_decimal(text);
    }
    let mut total: u32 = 0;
    let mut pos = 0;
    while pos < text.len() {
        let start = pos;
        while pos < text.len() && text[pos].is_ascii_digit() {
            pos += 1;
        }
        // Every number needs a unit once units are in use.
        let number = parse_decimal(&text[start..pos])?;
        let unit = match text.get(pos)?.to_ascii_lowercase() {
            b's' => 1,
            b'm' => 60,
            b'h' => 3600,
            b'd' => 86400,
            b'w' => 604800,
            _ => return None,
        };
        pos += 1;
        total = total.checked_add(number.checked_mul(unit)?)?;
    }
    Some(total)
}

/// Parses an unsigned decimal number that fits in a `u32`.
pub(crate) fn parse_decimal(text: &[u8]) -> Option<u32> {
    if text.is_empty() || text.len() > 10 || !text.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut value: u64 = 0;
    for digit in text {
        value = value * 10 + u64::from(digit - b'0');
    }
    u32::try_from(value).ok()
}

/// Parses a record type: a mnemonic or the RFC 3597 form `TYPEnnn`.
pub(crate) fn parse_rtype(text: &[u8]) -> Option<Rtype> {
    if text.len() > 4 && text[..4].eq_ignore_ascii_case(b"TYPE") {
        if let Some(value) = parse_decimal(&text[4..]) {
            return u16::try_from(value).ok().map(Rtype::from_int);
        }
    }
    if text.eq_ignore_ascii_case(b"NSAP-PTR") {
        return Some(Rtype::NSAPPTR);
    }
    if text.eq_ignore_ascii_case(b"MB") {
        return Some(Rtype::from_int(7));
    }
    if text.eq_ignore_ascii_case(b"NSAPPTR") {
        return None;
    }
    Rtype::from_mnemonic(text)
}

/// Writes a record type as its mnemonic, or as `TYPEnnn` without one.
pub(crate) fn write_rtype(out: &mut String, rtype: Rtype) {
    match rtype.to_int() {
        7 => out.push_str("MB"),
        23 => out.push_str("NSAP-PTR"),
        value => match rtype.to_mnemonic_str() {
            Some(mnemonic) => out.push_str(mnemonic),
            None => {
                let _ = write!(out, "TYPE{value}");
            }
        },
    }
}

/// Returns the presentation form of a record type.
pub(crate) fn rtype_to_string(rtype: Rtype) -> String {
    let mut out = String::new();
    write_rtype(&mut out, rtype);
    out
}

/// Error for a character string that cannot be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StringError {
    BadEscape,
    TooLong,
}

/// Appends the unescaped octets of `text` to `out`.
pub(crate) fn unescape_into(text: &[u8], out: &mut Vec<u8>) -> Result<(), StringError> {
    let mut pos = 0;
    while pos < text.len() {
        if text[pos] == b'\\' {
            let (octet, next) = unescape_at(text, pos + 1).ok_or(StringError::BadEscape)?;
            out.push(octet);
            pos = next;
        } else {
            out.push(text[pos]);
            pos += 1;
        }
    }
    Ok(())
}

/// Appends one length-prefixed character string (RFC 1035 section 3.3).
pub(crate) fn push_char_string(text: &[u8], out: &mut Vec<u8>) -> Result<(), StringError> {
    let len_pos = out.len();
    out.push(0);
    unescape_into(text, out)?;
    let len = out.len() - len_pos - 1;
    if len > 255 {
        return Err(StringError::TooLong);
    }
    out[len_pos] = len as u8;
    Ok(())
}

/// Writes octets as a quoted string, escaping quotes, backslashes and
/// octets outside printable ASCII.
pub(crate) fn write_quoted(out: &mut String, octets: &[u8]) {
    out.push('"');
    write_escaped(out, octets, false);
    out.push('"');
}

/// Writes octets with presentation-format escapes; `unquoted` also escapes
/// the delimiters that end an unquoted token.
pub(crate) fn write_escaped(out: &mut String, octets: &[u8], unquoted: bool) {
    for &byte in octets {
        match byte {
            b'"' | b'\\' => {
                out.push('\\');
                out.push(byte as char);
            }
            b' ' | b';' | b'(' | b')' if unquoted => {
                out.push('\\');
                out.push(byte as char);
            }
            0x20..=0x7e => out.push(byte as char),
            _ => {
                let _ = write!(out, "\\{byte:03}");
            }
        }
    }
}

/// Converts an RRSIG time field: `YYYYMMDDHHmmSS` in UTC or decimal
/// seconds since the epoch. Dates wrap modulo 2^32 as RFC 4034 section 3.2
/// describes.
pub fn parse_time(text: &[u8]) -> Option<u32> {
    if text.len() != 14 {
        return parse_decimal(text);
    }
    if !text.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let field = |range: std::ops::Range<usize>| -> i64 {
        text[range]
            .iter()
            .fold(0i64, |acc, digit| acc * 10 + i64::from(digit - b'0'))
    };
    let (year, month, day) = (field(0..4), field(4..6), field(6..8));
    let (hour, minute, second) = (field(8..10), field(10..12), field(12..14));
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let seconds = days * 86400 + hour * 3600 + minute * 60 + second;
    if seconds < 0 {
        return None;
    }
    Some((seconds as u64 & 0xffff_ffff) as u32)
}

/// Returns the days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146097 + day_of_era - 719468
}

/// Writes an RRSIG time as `YYYYMMDDHHmmSS` in UTC.
pub(crate) fn write_time(out: &mut String, seconds: u32) {
    let seconds = i64::from(seconds);
    let days = seconds.div_euclid(86400);
    let rest = seconds.rem_euclid(86400);
    let (year, month, day) = civil_from_days(days);
    let _ = write!(
        out,
        "{year:04}{month:02}{day:02}{:02}{:02}{:02}",
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    );
}

/// Formats UNIX seconds as `YYYY-MM-DD HH:MM:SS` in UTC, for people.
pub fn format_utc(seconds: u64) -> String {
    let seconds = i64::try_from(seconds).unwrap_or(i64::MAX);
    let (year, month, day) = civil_from_days(seconds.div_euclid(86400));
    let rest = seconds.rem_euclid(86400);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}

/// Returns the proleptic Gregorian date of a day count since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let days = days + 719468;
    let era = days.div_euclid(146097);
    let day_of_era = days - era * 146097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36524 - day_of_era / 146096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_units_add_up() {
        assert_eq!(parse_ttl("3600"), Some(3600));
        assert_eq!(parse_ttl("1h30m"), Some(5400));
        assert_eq!(
            parse_ttl("1W2d3H4m5S"),
            Some(604800 + 2 * 86400 + 3 * 3600 + 4 * 60 + 5)
        );
        assert_eq!(parse_ttl("4294967295"), Some(u32::MAX));
        assert_eq!(parse_ttl("4294967296"), None);
        assert_eq!(parse_ttl("1h30"), None);
        assert_eq!(parse_ttl("1x"), None);
        assert_eq!(parse_ttl("-1"), None);
        assert_eq!(parse_ttl(""), None);
    }

    #[test]
    fn rrsig_time_matches_rfc4034_example() {
        // RFC 4034 section 3.3 pairs 20030322173103 with 1048354263.
        assert_eq!(parse_time(b"20030322173103"), Some(1048354263));
        let mut text = String::new();
        write_time(&mut text, 1048354263);
        assert_eq!(text, "20030322173103");
    }

    #[test]
    fn name_escapes_and_origin() {
        let origin = parse_name("example.", &Name::root()).unwrap();
        let name = parse_name("a\\.b\\032c", &origin).unwrap();
        assert_eq!(name.as_wire(), b"\x05a.b c\x07example\x00");
        assert_eq!(parse_name("@", &origin).unwrap(), origin);
        assert_eq!(parse_name("a..b", &origin), Err(NameTextError::EmptyLabel));
        assert_eq!(parse_name("\\256", &origin), Err(NameTextError::BadEscape));
    }
}
