//! Durations as operators write them: `30s`, `5m`, `1h`, `14d`, `2w`, `2y`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

const MINUTE: u64 = 60;
const HOUR: u64 = 60 * MINUTE;
const DAY: u64 = 24 * HOUR;
const WEEK: u64 = 7 * DAY;
/// A year is 365 days, as in BIND's and Knot's duration syntax.
const YEAR: u64 = 365 * DAY;

/// A span of whole seconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration(pub u64);

/// Error for text that is not a duration.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {text:?}: expected a number with an optional unit s, m, h, d, w or y, such as 90s, 1h30m or 14d")]
pub struct DurationError {
    pub text: String,
}

impl Duration {
    /// Creates a duration of `seconds`.
    pub const fn secs(seconds: u64) -> Self {
        Self(seconds)
    }

    /// Creates a duration of `hours`.
    pub const fn hours(hours: u64) -> Self {
        Self(hours * HOUR)
    }

    /// Creates a duration of `days`.
    pub const fn days(days: u64) -> Self {
        Self(days * DAY)
    }

    /// Returns the number of seconds.
    pub const fn as_secs(self) -> u64 {
        self.0
    }

    /// Returns the number of seconds, saturated to `u32` for DNS fields.
    pub fn as_u32(self) -> u32 {
        u32::try_from(self.0).unwrap_or(u32::MAX)
    }
}

impl FromStr for Duration {
    type Err = DurationError;

    /// Parses `3600`, `1h`, `1h30m` or `2y`; units are case-insensitive.
    fn from_str(text: &str) -> Result<Self, DurationError> {
        let error = || DurationError {
            text: text.to_string(),
        };
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(error());
        }
        let mut total: u64 = 0;
        let mut number: Option<u64> = None;
        for c in trimmed.chars() {
            if let Some(digit) = c.to_digit(10) {
                let value = number.unwrap_or(0);
                let value = value
                    .checked_mul(10)
                    .and_then(|v| v.checked_add(u64::from(digit)));
                number = Some(value.ok_or_else(error)?);
                continue;
            }
            let unit = match c.to_ascii_lowercase() {
                's' => 1,
                'm' => MINUTE,
                'h' => HOUR,
                'd' => DAY,
                'w' => WEEK,
                'y' => YEAR,
                _ => return Err(error()),
            };
            let value = number.take().ok_or_else(error)?;
            let part = value.checked_mul(unit).ok_or_else(error)?;
            total = total.checked_add(part).ok_or_else(error)?;
        }
        if let Some(value) = number {
            total = total.checked_add(value).ok_or_else(error)?;
        }
        Ok(Self(total))
    }
}

impl fmt::Display for Duration {
    /// Writes the largest unit that divides the duration, such as `14d`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let units = [
            (YEAR, 'y'),
            (WEEK, 'w'),
            (DAY, 'd'),
            (HOUR, 'h'),
            (MINUTE, 'm'),
        ];
        if self.0 == 0 {
            return f.write_str("0s");
        }
        for (size, unit) in units {
            if self.0.is_multiple_of(size) {
                return write!(f, "{}{unit}", self.0 / size);
            }
        }
        write!(f, "{}s", self.0)
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Duration {
    /// Accepts a string with units or a plain number of seconds.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(DurationVisitor)
    }
}

/// Reads a duration from a whole number of seconds or from text.
struct DurationVisitor;

impl serde::de::Visitor<'_> for DurationVisitor {
    type Value = Duration;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a duration such as 3600, \"90s\", \"1h30m\" or \"14d\"")
    }

    fn visit_u64<E: serde::de::Error>(self, seconds: u64) -> Result<Duration, E> {
        Ok(Duration(seconds))
    }

    fn visit_i64<E: serde::de::Error>(self, seconds: i64) -> Result<Duration, E> {
        u64::try_from(seconds).map(Duration).map_err(|_| {
            E::custom(format!(
                "invalid duration {seconds}: a duration cannot be negative"
            ))
        })
    }

    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Duration, E> {
        text.parse().map_err(E::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_sums() {
        assert_eq!("90".parse(), Ok(Duration(90)));
        assert_eq!("1h30m".parse(), Ok(Duration(5400)));
        assert_eq!("14D".parse(), Ok(Duration(14 * 86400)));
        assert_eq!("2y".parse(), Ok(Duration(2 * 365 * 86400)));
        assert_eq!("1w".parse(), Ok(Duration(7 * 86400)));
    }

    #[test]
    fn rejects_garbage() {
        assert!("".parse::<Duration>().is_err());
        assert!("h".parse::<Duration>().is_err());
        assert!("5x".parse::<Duration>().is_err());
        assert!("99999999999999999999".parse::<Duration>().is_err());
    }

    #[test]
    fn displays_largest_unit() {
        assert_eq!(Duration(3600).to_string(), "1h");
        assert_eq!(Duration(5400).to_string(), "90m");
        assert_eq!(Duration(61).to_string(), "61s");
    }
}
