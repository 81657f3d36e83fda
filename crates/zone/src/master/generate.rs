//! The `$GENERATE` directive, as BIND defines it.
//!
//! `$GENERATE start-stop[/step] lhs [ttl] [class] type rhs` produces one
//! record per value of the range. In the owner (`lhs`) and data (`rhs`)
//! templates, `$` is the value, `${offset,width,base}` the value plus
//! `offset`, zero-padded to `width` in base `d` (decimal), `o` (octal),
//! `x`/`X` (hex) or `n`/`N` (hex nibbles, reversed and dot-separated, as
//! used in ip6.arpa names, with `width` counting the dots), and `\$` a
//! literal dollar sign.
//!
//! Limitations: start, stop and step must stay below 2^31 together
//! (`stop + step`), as in BIND, whose counter is a signed 32-bit integer;
//! the number of records per directive is capped by
//! [`LoadOptions::max_generate`](super::LoadOptions::max_generate).

use std::fmt::Write as _;

use super::lexer::Token;
use crate::rdata::text::parse_decimal;

/// Reason a `$GENERATE` directive is invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum GenerateError {
    #[error("invalid range; expected start-stop or start-stop/step with start <= stop")]
    Range,
    #[error("range values out of range: stop + step must stay below 2^31")]
    RangeOverflow,
    #[error("$GENERATE directives produce more than {0} records in this zone")]
    TooMany(u64),
    #[error("invalid ${{offset,width,base}} modifier")]
    Modifier,
    #[error("value plus offset is 2^31 or more")]
    OffsetOverflow,
    #[error("missing owner template, type or data template")]
    Missing,
}

/// A parsed range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Range {
    pub(crate) start: u32,
    pub(crate) stop: u32,
    pub(crate) step: u32,
}

impl Range {
    /// Parses `start-stop[/step]`.
    pub(crate) fn parse(text: &[u8]) -> Result<Self, GenerateError> {
        let (span, step) = match text.iter().position(|&b| b == b'/') {
            Some(slash) => (&text[..slash], Some(&text[slash + 1..])),
            None => (text, None),
        };
        let dash = span
            .iter()
            .position(|&b| b == b'-')
            .ok_or(GenerateError::Range)?;
        let start = parse_decimal(&span[..dash]).ok_or(GenerateError::Range)?;
        let stop = parse_decimal(&span[dash + 1..]).ok_or(GenerateError::Range)?;
        let step = match step {
            Some(step) => parse_decimal(step).ok_or(GenerateError::Range)?,
            None => 1,
        };
        if step == 0 || start > stop {
            return Err(GenerateError::Range);
        }
        if u64::from(stop) + u64::from(step) > i32::MAX as u64 {
            return Err(GenerateError::RangeOverflow);
        }
        Ok(Self { start, stop, step })
    }

    /// Returns the number of values in the range.
    pub(crate) fn count(&self) -> u64 {
        u64::from(self.stop - self.start) / u64::from(self.step) + 1
    }

    /// Returns the values of the range.
    pub(crate) fn values(&self) -> impl Iterator<Item = u32> {
        (self.start..=self.stop).step_by(self.step as usize)
    }
}

/// Checks a template once, so that errors surface before any record.
pub(crate) fn check_template(template: &[u8]) -> Result<(), GenerateError> {
    let mut scratch = Vec::new();
    expand(template, 0, &mut scratch)
}

/// Appends `template` with `$` replaced by `value` to `out`.
pub(crate) fn expand(template: &[u8], value: u32, out: &mut Vec<u8>) -> Result<(), GenerateError> {
    let mut pos = 0;
    while pos < template.len() {
        match template[pos] {
            b'\\' if template.get(pos + 1) == Some(&b'$') => {
                out.push(b'$');
                pos += 2;
            }
            b'\\' => {
                out.push(b'\\');
                if let Some(&next) = template.get(pos + 1) {
                    out.push(next);
                }
                pos += 2;
            }
            b'$' if template.get(pos + 1) == Some(&b'{') => {
                let close = template[pos..]
                    .iter()
                    .position(|&b| b == b'}')
                    .ok_or(GenerateError::Modifier)?;
                let modifier = Modifier::parse(&template[pos + 2..pos + close])?;
                modifier.write(value, out)?;
                pos += close + 1;
            }
            b'$' => {
                let mut text = String::new();
                let _ = write!(text, "{value}");
                out.extend_from_slice(text.as_bytes());
                pos += 1;
            }
            byte => {
                out.push(byte);
                pos += 1;
            }
        }
    }
    Ok(())
}

/// The contents of `${offset,width,base}`.
struct Modifier {
    offset: i64,
    width: usize,
    base: u8,
}

impl Modifier {
    fn parse(text: &[u8]) -> Result<Self, GenerateError> {
        let mut parts = text.split(|&b| b == b',');
        let offset_text = parts.next().ok_or(GenerateError::Modifier)?;
        let (negative, digits) = match offset_text.strip_prefix(b"-") {
            Some(digits) => (true, digits),
            None => (false, offset_text),
        };
        let magnitude = i64::from(parse_decimal(digits).ok_or(GenerateError::Modifier)?);
        let offset = if negative { -magnitude } else { magnitude };
        let width = match parts.next() {
            Some(width) => parse_decimal(width).ok_or(GenerateError::Modifier)? as usize,
            None => 0,
        };
        let base = match parts.next() {
            Some([base @ (b'd' | b'o' | b'x' | b'X' | b'n' | b'N')]) => *base,
            Some(_) => return Err(GenerateError::Modifier),
            None => b'd',
        };
        if parts.next().is_some() || width > 255 {
            return Err(GenerateError::Modifier);
        }
        Ok(Self {
            offset,
            width,
            base,
        })
    }

    fn write(&self, value: u32, out: &mut Vec<u8>) -> Result<(), GenerateError> {
        let value = i64::from(value) + self.offset;
        if value > i64::from(i32::MAX) {
            return Err(GenerateError::OffsetOverflow);
        }
        let width = self.width;
        let text = match self.base {
            b'o' => format!("{value:0width$o}"),
            b'x' => format!("{value:0width$x}"),
            b'X' => format!("{value:0width$X}"),
            b'n' | b'N' => nibbles(value, width, self.base == b'N'),
            _ => format!("{value:0width$}"),
        };
        out.extend_from_slice(text.as_bytes());
        Ok(())
    }
}

/// Writes `value` as hex nibbles, lowest first, separated by dots, until
/// the value is used up and at least `width` characters were written.
fn nibbles(value: i64, mut width: usize, upper: bool) -> String {
    let digits: &[u8; 16] = if upper {
        b"0123456789ABCDEF"
    } else {
        b"0123456789abcdef"
    };
    // Negative values print their two's complement, as a C `int` would.
    let mut value = value as u32 as u64;
    let mut text = String::new();
    loop {
        text.push(digits[(value & 0x0f) as usize] as char);
        value >>= 4;
        width = width.saturating_sub(1);
        if width == 0 && value == 0 {
            break;
        }
        text.push('.');
        width = width.saturating_sub(1);
    }
    text
}

/// Rebuilds the text of tokens for re-reading, quoting quoted ones again.
pub(crate) fn join_tokens(tokens: &[Token<'_>], out: &mut Vec<u8>) {
    for (index, token) in tokens.iter().enumerate() {
        if index > 0 {
            out.push(b' ');
        }
        if token.quoted {
            out.push(b'"');
            out.extend_from_slice(token.text);
            out.push(b'"');
        } else {
            out.extend_from_slice(token.text);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expanded(template: &str, value: u32) -> String {
        let mut out = Vec::new();
        expand(template.as_bytes(), value, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn modifiers_match_bind_examples() {
        assert_eq!(expanded("host$", 7), "host7");
        assert_eq!(expanded("1.2.3.${1,0,d}", 7), "1.2.3.8");
        assert_eq!(expanded("${0,3,d}", 7), "007");
        assert_eq!(expanded("${0,4,x}", 1024), "0400");
        assert_eq!(expanded("${0,2,X}", 255), "FF");
        assert_eq!(expanded("${0,3,o}", 8), "010");
        assert_eq!(expanded("${0,3,n}", 1024), "0.0.4");
        assert_eq!(expanded("${0,7,N}", 0xab), "B.A.0.0");
        assert_eq!(expanded("a\\$b", 1), "a$b");
    }

    #[test]
    fn bad_ranges_fail() {
        assert_eq!(Range::parse(b"9--10"), Err(GenerateError::Range));
        assert_eq!(Range::parse(b"1-3/"), Err(GenerateError::Range));
        assert_eq!(Range::parse(b"1-3/0"), Err(GenerateError::Range));
        assert_eq!(Range::parse(b"5-1"), Err(GenerateError::Range));
        assert_eq!(
            Range::parse(b"19-28/2147483645"),
            Err(GenerateError::RangeOverflow)
        );
        let range = Range::parse(b"1-10/3").unwrap();
        assert_eq!(range.values().collect::<Vec<_>>(), vec![1, 4, 7, 10]);
        assert_eq!(range.count(), 4);
    }

    #[test]
    fn bad_modifiers_fail() {
        assert!(check_template(b"${1,0,dgarbage}").is_err());
        assert!(check_template(b"${1000").is_err());
    }
}
