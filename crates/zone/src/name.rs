//! Domain names in uncompressed wire format.
//!
//! A [`Name`] keeps the octets exactly as they were read, so the query path
//! can echo the case an operator wrote. Comparisons ignore ASCII case, as
//! RFC 4343 requires. [`CanonicalKey`] is a byte string whose plain ordering
//! is the canonical DNS name order of RFC 4034 section 6.1, which lets zones
//! keep their names in a `BTreeMap` and compare them with `memcmp`.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};

use bytes::Bytes;

/// Maximum length of a name in wire format, RFC 1035 section 2.3.4.
pub const MAX_NAME_LEN: usize = 255;
/// Maximum length of one label, RFC 1035 section 2.3.4.
pub const MAX_LABEL_LEN: usize = 63;

/// Error for octets that do not form a valid uncompressed name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("label longer than 63 octets")]
    LongLabel,
    #[error("name longer than 255 octets")]
    LongName,
    #[error("name is not terminated by the root label")]
    Unterminated,
    #[error("compression pointer or unknown label type in an uncompressed name")]
    BadLabelType,
    #[error("empty label inside a name")]
    EmptyLabel,
}

/// An absolute domain name in uncompressed wire format.
#[derive(Clone)]
pub struct Name(Bytes);

impl Name {
    /// The root name.
    pub fn root() -> Self {
        Self(Bytes::from_static(&[0]))
    }

    /// Checks `wire` and wraps it. `wire` must hold exactly one name.
    pub fn from_wire(wire: impl Into<Bytes>) -> Result<Self, NameError> {
        let wire = wire.into();
        let len = wire_name_len(&wire)?;
        if len != wire.len() {
            return Err(NameError::Unterminated);
        }
        Ok(Self(wire))
    }

    /// Builds a name from its labels, leftmost first, without the root label.
    pub fn from_labels<'a>(labels: impl IntoIterator<Item = &'a [u8]>) -> Result<Self, NameError> {
        let mut wire = Vec::with_capacity(32);
        for label in labels {
            if label.is_empty() {
                return Err(NameError::EmptyLabel);
            }
            if label.len() > MAX_LABEL_LEN {
                return Err(NameError::LongLabel);
            }
            wire.push(label.len() as u8);
            wire.extend_from_slice(label);
        }
        wire.push(0);
        if wire.len() > MAX_NAME_LEN {
            return Err(NameError::LongName);
        }
        Ok(Self(Bytes::from(wire)))
    }

    /// Returns the uncompressed wire format, original case preserved.
    pub fn as_wire(&self) -> &[u8] {
        &self.0
    }

    /// Returns the wire format as shared bytes.
    pub fn wire_bytes(&self) -> &Bytes {
        &self.0
    }

    /// Returns the labels, leftmost first, without the root label.
    pub fn labels(&self) -> Labels<'_> {
        Labels { wire: &self.0 }
    }

    /// Returns the number of labels, not counting the root label.
    pub fn label_count(&self) -> usize {
        self.labels().count()
    }

    /// Returns true for the root name.
    pub fn is_root(&self) -> bool {
        self.0.len() == 1
    }

    /// Returns true if the leftmost label is `*`.
    pub fn is_wildcard(&self) -> bool {
        self.0.len() >= 2 && self.0[0] == 1 && self.0[1] == b'*'
    }

    /// Returns the name with its leftmost label removed, or `None` at the root.
    pub fn parent(&self) -> Option<Self> {
        if self.is_root() {
            return None;
        }
        let skip = 1 + self.0[0] as usize;
        Some(Self(self.0.slice(skip..)))
    }

    /// Returns `label.self`.
    pub fn prepend(&self, label: &[u8]) -> Result<Self, NameError> {
        if label.is_empty() {
            return Err(NameError::EmptyLabel);
        }
        if label.len() > MAX_LABEL_LEN {
            return Err(NameError::LongLabel);
        }
        if self.0.len() + 1 + label.len() > MAX_NAME_LEN {
            return Err(NameError::LongName);
        }
        let mut wire = Vec::with_capacity(self.0.len() + 1 + label.len());
        wire.push(label.len() as u8);
        wire.extend_from_slice(label);
        wire.extend_from_slice(&self.0);
        Ok(Self(Bytes::from(wire)))
    }

    /// Returns the wildcard name `*.self`.
    pub fn wildcard(&self) -> Result<Self, NameError> {
        self.prepend(b"*")
    }

    /// Returns true if `self` equals `other` or lies below it, ignoring case.
    pub fn ends_with(&self, other: &Self) -> bool {
        let (a, b) = (&self.0[..], &other.0[..]);
        if b.len() > a.len() {
            return false;
        }
        let offset = a.len() - b.len();
        // The suffix must start on a label boundary of `self`.
        let mut pos = 0;
        while pos < offset {
            pos += 1 + a[pos] as usize;
        }
        pos == offset && a[offset..].eq_ignore_ascii_case(b)
    }

    /// Returns true if `self` lies strictly below `other`.
    pub fn is_below(&self, other: &Self) -> bool {
        self.0.len() > other.0.len() && self.ends_with(other)
    }

    /// Returns the name with ASCII letters folded to lower case.
    pub fn to_lowercase(&self) -> Self {
        if !self.0.iter().any(u8::is_ascii_uppercase) {
            return self.clone();
        }
        // Length octets are at most 63, so folding them is harmless.
        Self(Bytes::from(self.0.to_ascii_lowercase()))
    }

    /// Returns the key whose byte order is the canonical name order.
    pub fn canonical_key(&self) -> CanonicalKey {
        CanonicalKey::new(self)
    }

    /// Compares two names in canonical order (RFC 4034 section 6.1).
    pub fn canonical_cmp(&self, other: &Self) -> Ordering {
        self.canonical_key().cmp(&other.canonical_key())
    }
}

/// Returns the length of the uncompressed name at the start of `wire`.
pub fn wire_name_len(wire: &[u8]) -> Result<usize, NameError> {
    let mut pos = 0;
    loop {
        let Some(&len) = wire.get(pos) else {
            return Err(NameError::Unterminated);
        };
        if len & 0xc0 != 0 {
            return Err(NameError::BadLabelType);
        }
        pos += 1 + len as usize;
        if pos > MAX_NAME_LEN {
            return Err(NameError::LongName);
        }
        if len == 0 {
            return Ok(pos);
        }
    }
}

/// Iterator over the labels of a [`Name`], leftmost first.
pub struct Labels<'a> {
    wire: &'a [u8],
}

impl<'a> Iterator for Labels<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let len = *self.wire.first()? as usize;
        if len == 0 {
            return None;
        }
        let label = &self.wire[1..1 + len];
        self.wire = &self.wire[1 + len..];
        Some(label)
    }
}

impl PartialEq for Name {
    fn eq(&self, other: &Self) -> bool {
        self.0.eq_ignore_ascii_case(&other.0)
    }
}

impl Eq for Name {}

impl Hash for Name {
    fn hash<H: Hasher>(&self, state: &mut H) {
        for byte in self.0.iter() {
            state.write_u8(byte.to_ascii_lowercase());
        }
    }
}

impl PartialOrd for Name {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Name {
    /// Orders names canonically.
    fn cmp(&self, other: &Self) -> Ordering {
        self.canonical_cmp(other)
    }
}

impl fmt::Display for Name {
    /// Writes the name in presentation format with a trailing dot, escaping
    /// special and non-printable octets as RFC 4343 section 2.1 describes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_root() {
            return f.write_str(".");
        }
        for label in self.labels() {
            for &byte in label {
                match byte {
                    b'.' | b'\\' | b'(' | b')' | b';' | b'"' | b'@' | b'$' => {
                        write!(f, "\\{}", byte as char)?
                    }
                    0x21..=0x7e => write!(f, "{}", byte as char)?,
                    _ => write!(f, "\\{byte:03}")?,
                }
            }
            f.write_str(".")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Name({self})")
    }
}

/// A byte string that sorts like its name in canonical DNS order.
///
/// Labels are written from the root down, each octet folded to lower case
/// and shifted up by one so that the label separator 0x00 sorts before any
/// octet; 0xfe and 0xff take two bytes to keep the shift order-preserving.
/// Comparing keys bytewise then compares label by label from the right, a
/// shorter label before a longer one that it prefixes, as RFC 4034
/// section 6.1 requires.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct CanonicalKey(Box<[u8]>);

impl CanonicalKey {
    fn new(name: &Name) -> Self {
        let mut labels: Vec<&[u8]> = name.labels().collect();
        labels.reverse();
        let mut key = Vec::with_capacity(name.0.len() + 4);
        for label in labels {
            for &byte in label {
                match byte.to_ascii_lowercase() {
                    0xfe => key.extend_from_slice(&[0xff, 0x00]),
                    0xff => key.extend_from_slice(&[0xff, 0x01]),
                    b => key.push(b + 1),
                }
            }
            key.push(0);
        }
        Self(key.into_boxed_slice())
    }

    /// Returns the encoded key.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(labels: &[&[u8]]) -> Name {
        Name::from_labels(labels.iter().copied()).unwrap()
    }

    #[test]
    fn canonical_order_matches_rfc4034_example() {
        // RFC 4034 section 6.1 lists these names in canonical order.
        let ordered = [
            name(&[b"example"]),
            name(&[b"a", b"example"]),
            name(&[b"yljkjljk", b"a", b"example"]),
            name(&[b"Z", b"a", b"example"]),
            name(&[b"zABC", b"a", b"EXAMPLE"]),
            name(&[b"z", b"example"]),
            name(&[b"\x01", b"z", b"example"]),
            name(&[b"*", b"z", b"example"]),
            name(&[b"\xc8", b"z", b"example"]),
        ];
        for pair in ordered.windows(2) {
            assert_eq!(pair[0].canonical_cmp(&pair[1]), Ordering::Less, "{pair:?}");
        }
    }

    #[test]
    fn canonical_key_orders_low_and_high_octets() {
        let a = name(&[b"a"]);
        let a0 = name(&[b"a\x00"]);
        let sub = name(&[b"\x01", b"a"]);
        let high = name(&[b"a\xfe"]);
        let higher = name(&[b"a\xff"]);
        assert!(a < sub);
        assert!(sub < a0);
        assert!(a0 < high);
        assert!(high < higher);
    }

    #[test]
    fn ends_with_respects_label_boundaries() {
        let www = name(&[b"www", b"Example", b"com"]);
        assert!(www.ends_with(&name(&[b"example", b"COM"])));
        assert!(!www.ends_with(&name(&[b"ample", b"com"])));
        assert!(www.ends_with(&Name::root()));
        assert!(www.is_below(&name(&[b"com"])));
        assert!(!www.is_below(&www));
    }

    #[test]
    fn display_escapes_special_octets() {
        let n = name(&[b"a.b", b"\x07", b"x y"]);
        assert_eq!(n.to_string(), "a\\.b.\\007.x\\032y.");
    }
}
