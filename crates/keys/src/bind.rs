//! BIND key files: `K<zone>+<alg>+<tag>.key` and `.private`.
//!
//! The `.key` file contains the DNSKEY record in presentation format, preceded
//! by `;` comments. The `.private` file contains `Field: value` lines. They
//! start with the `Private-key-format` version (v1.2 and v1.3 are read, v1.3
//! is written) and the algorithm. The private key follows in base64, as RSA
//! integers or as one `PrivateKey` field for ECDSA and EdDSA. Optional
//! timing lines come last: `Created`, `Publish`, `Activate`, `Revoke`,
//! `Inactive`, `Delete`, `SyncPublish` and `SyncDelete`, each as
//! `YYYYMMDDHHMMSS` in UTC.
//!
//! Limitations: private keys kept in an HSM (`Engine` and `Label` fields)
//! and algorithms that [`KeyPair`] cannot load are rejected; the `.key`
//! file of such a key still reads through [`parse_public`]. Owner names
//! with `\DDD` escapes are read, but a `.key` file with more than one
//! record, `$ORIGIN` or relative names is not.

use std::fmt::Write as _;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use data_encoding::BASE64;
use keymaster_zone::Name;
use zeroize::Zeroizing;

use crate::algorithm::Algorithm;
use crate::der::RsaPrivateComponents;
use crate::dnskey::{flags, Dnskey};
use crate::error::KeyError;
use crate::keypair::{KeyPair, Material};

/// Key timing metadata as Unix timestamps in seconds (UTC).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Timing {
    /// Generation time of the key.
    pub created: Option<u64>,
    /// Time to publish the DNSKEY in the zone.
    pub publish: Option<u64>,
    /// Time the key starts signing.
    pub activate: Option<u64>,
    /// Time to publish the DNSKEY with the REVOKE flag.
    pub revoke: Option<u64>,
    /// Time the key stops signing.
    pub inactive: Option<u64>,
    /// Time to remove the DNSKEY from the zone.
    pub delete: Option<u64>,
    /// Time to publish the CDS and CDNSKEY records of the key.
    pub sync_publish: Option<u64>,
    /// Time to remove the CDS and CDNSKEY records of the key.
    pub sync_delete: Option<u64>,
}

impl Timing {
    /// Field names in the order BIND writes them.
    fn fields(&self) -> [(&'static str, Option<u64>); 8] {
        [
            ("Created", self.created),
            ("Publish", self.publish),
            ("Activate", self.activate),
            ("Revoke", self.revoke),
            ("Inactive", self.inactive),
            ("Delete", self.delete),
            ("SyncPublish", self.sync_publish),
            ("SyncDelete", self.sync_delete),
        ]
    }

    fn field_mut(&mut self, name: &str) -> Option<&mut Option<u64>> {
        Some(match name {
            "Created" => &mut self.created,
            "Publish" => &mut self.publish,
            "Activate" => &mut self.activate,
            "Revoke" => &mut self.revoke,
            "Inactive" => &mut self.inactive,
            "Delete" => &mut self.delete,
            "SyncPublish" => &mut self.sync_publish,
            "SyncDelete" => &mut self.sync_delete,
            _ => return None,
        })
    }
}

/// The contents of a `.key` file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicKeyFile {
    /// Owner name of the DNSKEY record, the zone apex.
    pub owner: Name,
    /// TTL of the record, if the file gives one.
    pub ttl: Option<u32>,
    /// The DNSKEY record data.
    pub dnskey: Dnskey,
}

/// The contents of a `.private` file.
#[derive(Debug)]
pub struct PrivateKeyFile {
    /// The private key.
    pub key: KeyPair,
    /// The timing lines.
    pub timing: Timing,
}

/// A key read from or written to a `.key` and `.private` pair.
#[derive(Clone, Debug)]
pub struct BindKey {
    /// Owner name of the DNSKEY record, the zone apex.
    pub owner: Name,
    /// TTL of the DNSKEY record, if any.
    pub ttl: Option<u32>,
    /// DNSKEY flags.
    pub flags: u16,
    /// The private key.
    pub key: KeyPair,
    /// The timing metadata.
    pub timing: Timing,
}

impl BindKey {
    /// Returns the key tag of the DNSKEY.
    pub fn key_tag(&self) -> u16 {
        self.key.key_tag(self.flags)
    }

    /// Returns the file name without extension, `K<zone>+<alg>+<tag>`.
    pub fn file_stem(&self) -> String {
        file_stem(&self.owner, self.key.algorithm().to_u8(), self.key_tag())
    }
}

/// Error of reading, parsing or writing BIND key files.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BindError {
    /// A file could not be read.
    #[error("cannot read {}", path.display())]
    Read {
        /// Path of the file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },

    /// A file could not be written.
    #[error("cannot write {}", path.display())]
    Write {
        /// Path of the file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },

    /// A `.key` file contains no DNSKEY record or a malformed one.
    #[error("invalid .key file{}: {reason}", describe_path(path))]
    InvalidPublic {
        /// Path of the file, when read from disk.
        path: Option<PathBuf>,
        /// Description of the problem, without key material.
        reason: &'static str,
    },

    /// A `.private` file line or field is malformed.
    #[error(
        "invalid .private file{}, field {field:?}: {reason}",
        describe_path(path)
    )]
    InvalidPrivate {
        /// Path of the file, when read from disk.
        path: Option<PathBuf>,
        /// Name of the offending field.
        field: String,
        /// Description of the problem, without key material.
        reason: &'static str,
    },

    /// The `.private` file names an algorithm this crate cannot load.
    #[error(
        "cannot load the private key{}: DNSSEC algorithm {algorithm} is not supported",
        describe_path(path)
    )]
    UnsupportedAlgorithm {
        /// Path of the file, when read from disk.
        path: Option<PathBuf>,
        /// The IANA algorithm number.
        algorithm: u8,
    },

    /// The private key fields do not form a usable key.
    #[error("cannot load the private key{}", describe_path(path))]
    Key {
        /// Path of the file, when read from disk.
        path: Option<PathBuf>,
        /// The key error.
        #[source]
        source: KeyError,
    },

    /// The `.key` and `.private` files contain different keys.
    #[error(
        "{} and its .private file contain different keys (key tags {public_tag} and {private_tag})",
        path.display()
    )]
    Mismatch {
        /// Path of the `.key` file.
        path: PathBuf,
        /// Key tag of the `.key` file's DNSKEY.
        public_tag: u16,
        /// Key tag computed from the private key with the same flags.
        private_tag: u16,
    },
}

impl BindError {
    fn with_path(mut self, file: &Path) -> Self {
        match &mut self {
            Self::InvalidPublic { path, .. }
            | Self::InvalidPrivate { path, .. }
            | Self::UnsupportedAlgorithm { path, .. }
            | Self::Key { path, .. } => *path = Some(file.to_path_buf()),
            Self::Read { .. } | Self::Write { .. } | Self::Mismatch { .. } => {}
        }
        self
    }
}

fn describe_path(path: &Option<PathBuf>) -> String {
    match path {
        Some(path) => format!(" {}", path.display()),
        None => String::new(),
    }
}

/// Returns the file name stem BIND uses, `K<zone>+<alg>+<tag>`, with the
/// zone in lower case and with its trailing dot.
pub fn file_stem(owner: &Name, algorithm: u8, key_tag: u16) -> String {
    format!("K{}+{algorithm:03}+{key_tag:05}", owner.to_lowercase())
}

/// Reads a key pair from `path`, which may name the `.key` file, the
/// `.private` file or their common stem.
///
/// Fails with [`BindError::Mismatch`] if the two files hold different keys.
pub fn read(path: &Path) -> Result<BindKey, BindError> {
    let stem = strip_extension(path);
    let key_path = stem.with_extension_appended("key");
    let private_path = stem.with_extension_appended("private");

    let public = parse_public(&read_text(&key_path)?).map_err(|e| e.with_path(&key_path))?;
    let text = Zeroizing::new(read_text(&private_path)?);
    let private = parse_private(&text).map_err(|e| e.with_path(&private_path))?;

    let private_rdata = private.key.dnskey_rdata(public.dnskey.flags);
    if private_rdata != public.dnskey.to_rdata() {
        return Err(BindError::Mismatch {
            path: key_path,
            public_tag: public.dnskey.key_tag(),
            private_tag: crate::key_tag(&private_rdata),
        });
    }
    Ok(BindKey {
        owner: public.owner,
        ttl: public.ttl,
        flags: public.dnskey.flags,
        key: private.key,
        timing: private.timing,
    })
}

/// Writes `key` to `<dir>/K<zone>+<alg>+<tag>.key` (mode 0644) and
/// `.private` (mode 0600) and returns the two paths.
///
/// Existing files are replaced. The `.private` file is created with mode
/// 0600 before any key octet is written to it.
pub fn write(dir: &Path, key: &BindKey) -> Result<(PathBuf, PathBuf), BindError> {
    let stem = dir.join(key.file_stem());
    let key_path = stem.with_extension_appended("key");
    let private_path = stem.with_extension_appended("private");

    write_file(&key_path, format_public(key).as_bytes(), 0o644)?;
    let private = format_private(key).map_err(|e| e.with_path(&private_path))?;
    write_file(&private_path, private.as_bytes(), 0o600)?;
    Ok((key_path, private_path))
}

/// Writes `contents` to `path` through a temporary file created with
/// `mode`, then renames it into place.
fn write_file(path: &Path, contents: &[u8], mode: u32) -> Result<(), BindError> {
    let error = |source| BindError::Write {
        path: path.to_path_buf(),
        source,
    };
    let temporary = path.with_extension_appended("tmp");
    let _ = fs::remove_file(&temporary);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&temporary)
        .map_err(error)?;
    let result = file
        .write_all(contents)
        .and_then(|()| file.sync_all())
        .and_then(|()| fs::rename(&temporary, path));
    if let Err(source) = result {
        let _ = fs::remove_file(&temporary);
        return Err(error(source));
    }
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        File::open(dir)
            .and_then(|dir| dir.sync_all())
            .map_err(error)?;
    }
    Ok(())
}

/// Formats the `.key` file: comments naming the key's role and timing,
/// then the DNSKEY record.
pub fn format_public(key: &BindKey) -> String {
    let role = if key.flags & flags::SEP != 0 {
        "key-signing"
    } else {
        "zone-signing"
    };
    let mut text = format!(
        "; This is a {role} key, keyid {}, for {}\n",
        key.key_tag(),
        key.owner
    );
    for (name, value) in key.timing.fields() {
        if let Some(seconds) = value {
            let _ = writeln!(text, "; {name}: {}", format_time(seconds));
        }
    }
    let ttl = key.ttl.map(|ttl| format!("{ttl} ")).unwrap_or_default();
    let _ = writeln!(
        text,
        "{} {ttl}IN DNSKEY {}",
        key.owner,
        key.key.dnskey(key.flags)
    );
    text
}

/// Formats the `.private` file in format v1.3.
pub fn format_private(key: &BindKey) -> Result<Zeroizing<String>, BindError> {
    let to_key_error = |source| BindError::Key { path: None, source };
    let algorithm = key.key.algorithm();
    let mut text = Zeroizing::new(String::with_capacity(2048));
    text.push_str("Private-key-format: v1.3\n");
    let _ = writeln!(
        text,
        "Algorithm: {} ({})",
        algorithm.to_u8(),
        algorithm.mnemonic()
    );

    match key.key.material() {
        Material::Rsa(_) => {
            let components = key.key.rsa_components().map_err(to_key_error)?;
            for (name, value) in rsa_fields(&components) {
                let encoded = Zeroizing::new(BASE64.encode(value));
                let _ = writeln!(text, "{name}: {}", *encoded);
            }
        }
        Material::Ecdsa(_) | Material::Ed25519(_) => {
            let octets = key.key.private_octets().map_err(to_key_error)?;
            let encoded = Zeroizing::new(BASE64.encode(&octets));
            let _ = writeln!(text, "PrivateKey: {}", *encoded);
        }
    }

    for (name, value) in key.timing.fields() {
        if let Some(seconds) = value {
            let _ = writeln!(text, "{name}: {}", format_time(seconds));
        }
    }
    Ok(text)
}

fn rsa_fields(components: &RsaPrivateComponents) -> [(&'static str, &[u8]); 8] {
    [
        ("Modulus", &components.modulus),
        ("PublicExponent", &components.public_exponent),
        ("PrivateExponent", &components.private_exponent),
        ("Prime1", &components.prime1),
        ("Prime2", &components.prime2),
        ("Exponent1", &components.exponent1),
        ("Exponent2", &components.exponent2),
        ("Coefficient", &components.coefficient),
    ]
}

/// Parses the text of a `.key` file.
///
/// Lines starting with `;` and text after `;` are comments. The first
/// record must be a DNSKEY with an absolute owner name; parentheses may
/// spread it over several lines.
pub fn parse_public(text: &str) -> Result<PublicKeyFile, BindError> {
    let invalid = |reason| BindError::InvalidPublic { path: None, reason };
    let mut tokens = Vec::new();
    for line in text.lines() {
        let line = line.split(';').next().unwrap_or("");
        tokens.extend(
            line.split_whitespace()
                .flat_map(|token| token.split(['(', ')']))
                .filter(|token| !token.is_empty()),
        );
    }
    let mut tokens = tokens.into_iter();
    let owner = parse_name(tokens.next().ok_or(invalid("no record"))?)
        .ok_or(invalid("malformed owner name"))?;

    // TTL and class may come in either order before the type.
    let mut ttl = None;
    let mut token = tokens
        .next()
        .ok_or(invalid("record ends after the owner"))?;
    for _ in 0..2 {
        if let Ok(value) = token.parse::<u32>() {
            ttl = Some(value);
        } else if !token.eq_ignore_ascii_case("IN") {
            break;
        }
        token = tokens
            .next()
            .ok_or(invalid("record ends before its type"))?;
    }
    if !token.eq_ignore_ascii_case("DNSKEY") {
        return Err(invalid("record is not a DNSKEY in class IN"));
    }

    let mut number = |what| {
        tokens
            .next()
            .ok_or(invalid("DNSKEY record is missing a field"))?
            .parse::<u16>()
            .map_err(|_| invalid(what))
    };
    let flags = number("flags are not a number")?;
    let protocol = number("protocol is not a number")?;
    let algorithm = number("algorithm is not a number")?;
    let (Ok(protocol), Ok(algorithm)) = (u8::try_from(protocol), u8::try_from(algorithm)) else {
        return Err(invalid("protocol or algorithm above 255"));
    };
    let encoded: String = tokens.collect();
    let public_key = BASE64
        .decode(encoded.as_bytes())
        .map_err(|_| invalid("public key is not valid base64"))?;
    Ok(PublicKeyFile {
        owner,
        ttl,
        dnskey: Dnskey {
            flags,
            protocol,
            algorithm,
            public_key: Bytes::from(public_key),
        },
    })
}

/// Parses the text of a `.private` file.
///
/// A line without a colon continues the value of the line before it, which
/// lets keys printed with wrapped base64 be read.
pub fn parse_private(text: &str) -> Result<PrivateKeyFile, BindError> {
    let invalid = |field: &str, reason| BindError::InvalidPrivate {
        path: None,
        field: field.to_string(),
        reason,
    };

    // Collect `(field, value)` pairs, joining continuation lines. Each value
    // gets room for the whole text so that joining never reallocates and
    // leaves a stale copy of key octets behind.
    let mut fields: Vec<(&str, Zeroizing<String>)> = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with(';') {
            continue;
        }
        match line.split_once(':') {
            Some((name, value)) => {
                let mut buffer = Zeroizing::new(String::with_capacity(text.len()));
                buffer.push_str(value.trim());
                fields.push((name.trim(), buffer));
            }
            None => match fields.last_mut() {
                Some((_, value)) => value.push_str(line),
                None => return Err(invalid("", "text before the first field")),
            },
        }
    }
    let value = |name: &str| {
        fields
            .iter()
            .find(|(field, _)| *field == name)
            .map(|(_, value)| value.as_str())
    };

    // Header fields.
    let version = value("Private-key-format").ok_or(invalid("Private-key-format", "missing"))?;
    if !version.starts_with("v1.") {
        return Err(invalid(
            "Private-key-format",
            "only versions v1.x are supported",
        ));
    }
    let number = value("Algorithm")
        .ok_or(invalid("Algorithm", "missing"))?
        .split_whitespace()
        .next()
        .and_then(|number| number.parse::<u8>().ok())
        .ok_or(invalid("Algorithm", "not a number"))?;
    if value("Engine").is_some() || value("Label").is_some() {
        return Err(invalid("Label", "keys held in an HSM are not supported"));
    }
    let algorithm = Algorithm::from_u8(number).ok_or_else(|| unsupported_algorithm(number))?;

    // Key fields, decoded into buffers that are wiped on drop.
    let decode = |name: &'static str| -> Result<Zeroizing<Vec<u8>>, BindError> {
        let text = value(name).ok_or(invalid(name, "missing"))?;
        let octets = BASE64
            .decode(text.as_bytes())
            .map_err(|_| invalid(name, "not valid base64"))?;
        Ok(Zeroizing::new(octets))
    };
    let to_key_error = |source| BindError::Key { path: None, source };
    let key = match algorithm {
        Algorithm::RsaSha256 | Algorithm::RsaSha512 => {
            let components = RsaPrivateComponents {
                modulus: decode("Modulus")?.to_vec(),
                public_exponent: decode("PublicExponent")?.to_vec(),
                private_exponent: decode("PrivateExponent")?,
                prime1: decode("Prime1")?,
                prime2: decode("Prime2")?,
                exponent1: decode("Exponent1")?,
                exponent2: decode("Exponent2")?,
                coefficient: decode("Coefficient")?,
            };
            KeyPair::from_rsa_components(algorithm, &components).map_err(to_key_error)?
        }
        Algorithm::EcdsaP256Sha256 | Algorithm::EcdsaP384Sha384 => {
            KeyPair::from_ecdsa_scalar(algorithm, &decode("PrivateKey")?).map_err(to_key_error)?
        }
        Algorithm::Ed25519 => {
            KeyPair::from_ed25519_seed(&decode("PrivateKey")?).map_err(to_key_error)?
        }
        Algorithm::Ed448 => return Err(unsupported_algorithm(number)),
    };

    // Timing fields.
    let mut timing = Timing::default();
    for (name, value) in &fields {
        if let Some(slot) = timing.field_mut(name) {
            let token = value.split_whitespace().next().unwrap_or("");
            *slot = Some(parse_time(token).ok_or(invalid(name, "not a YYYYMMDDHHMMSS time"))?);
        }
    }
    Ok(PrivateKeyFile { key, timing })
}

fn unsupported_algorithm(algorithm: u8) -> BindError {
    BindError::UnsupportedAlgorithm {
        path: None,
        algorithm,
    }
}

fn read_text(path: &Path) -> Result<String, BindError> {
    fs::read_to_string(path).map_err(|source| BindError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Removes a `.key` or `.private` extension.
fn strip_extension(path: &Path) -> PathBuf {
    match path.extension().and_then(|e| e.to_str()) {
        Some("key" | "private") => path.with_extension(""),
        _ => path.to_path_buf(),
    }
}

/// Appends an extension without replacing the last dotted part, which in
/// `Kexample.com.+013+12345` is part of the key tag.
trait AppendExtension {
    fn with_extension_appended(&self, extension: &str) -> PathBuf;
}

impl AppendExtension for Path {
    fn with_extension_appended(&self, extension: &str) -> PathBuf {
        let mut name = self.as_os_str().to_os_string();
        name.push(".");
        name.push(extension);
        PathBuf::from(name)
    }
}

/// Parses an absolute name in presentation format, with `\X` and `\DDD`
/// escapes. A missing final dot is accepted.
fn parse_name(text: &str) -> Option<Name> {
    if text == "." {
        return Some(Name::root());
    }
    let mut labels: Vec<Vec<u8>> = vec![Vec::new()];
    let mut octets = text.bytes();
    while let Some(octet) = octets.next() {
        match octet {
            b'.' => labels.push(Vec::new()),
            b'\\' => {
                let first = octets.next()?;
                let value = if first.is_ascii_digit() {
                    let digits = [first, octets.next()?, octets.next()?];
                    std::str::from_utf8(&digits).ok()?.parse::<u8>().ok()?
                } else {
                    first
                };
                labels.last_mut()?.push(value);
            }
            _ => labels.last_mut()?.push(octet),
        }
    }
    if labels.last().is_some_and(Vec::is_empty) {
        labels.pop();
    }
    Name::from_labels(labels.iter().map(Vec::as_slice)).ok()
}

/// Parses `YYYYMMDDHHMMSS` (UTC) into Unix seconds.
fn parse_time(text: &str) -> Option<u64> {
    if text.len() != 14 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let field = |range: std::ops::Range<usize>| text[range].parse::<u32>().ok();
    let (year, month, day) = (field(0..4)?, field(4..6)?, field(6..8)?);
    let (hour, minute, second) = (field(8..10)?, field(10..12)?, field(12..14)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    if second > 60 || year < 1970 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some(days * 86_400 + u64::from(hour * 3600 + minute * 60 + second))
}

/// Formats Unix seconds as `YYYYMMDDHHMMSS` (UTC).
fn format_time(seconds: u64) -> String {
    let (year, month, day) = civil_from_days(seconds / 86_400);
    let rest = seconds % 86_400;
    format!(
        "{year:04}{month:02}{day:02}{:02}{:02}{:02}",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// Counts days from 1970-01-01 to a date of the proleptic Gregorian
/// calendar, for years from 1970 on.
fn days_from_civil(year: u32, month: u32, day: u32) -> u64 {
    // Count years from March so that the leap day ends the year.
    let year = u64::from(if month <= 2 { year - 1 } else { year });
    let (era, year_of_era) = (year / 400, year % 400);
    let month = u64::from(month);
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + u64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// Converts days since 1970-01-01 to a (year, month, day) date.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let days = days + 719_468;
    let (era, day_of_era) = (days / 146_097, days % 146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_known_values() {
        assert_eq!(parse_time("19700101000000"), Some(0));
        assert_eq!(parse_time("20000101000000"), Some(946_684_800));
        assert_eq!(parse_time("20300101000000"), Some(1_893_456_000));
        assert_eq!(parse_time("20240229123456"), Some(1_709_210_096));
        assert_eq!(format_time(1_709_210_096), "20240229123456");
        assert_eq!(format_time(0), "19700101000000");
    }

    #[test]
    fn time_rejects_malformed() {
        assert_eq!(parse_time("2024022912345"), None);
        assert_eq!(parse_time("20241301000000"), None);
        assert_eq!(parse_time("2024-2-2900000"), None);
    }

    #[test]
    fn name_parses_escapes() {
        let name = parse_name("a\\.b.ex\\097mple.").unwrap();
        assert_eq!(name.as_wire(), b"\x03a.b\x07example\x00");
        assert!(parse_name(".").unwrap().is_root());
        assert_eq!(parse_name("example").unwrap().as_wire(), b"\x07example\x00");
        assert!(parse_name("a..b").is_none());
    }

    #[test]
    fn public_parses_parentheses_and_ttl() {
        let text = "; comment\nexample.net. 3600 IN DNSKEY ( 256 3 13\n qrs= ) ; id\n";
        let file = parse_public(text).unwrap();
        assert_eq!(file.ttl, Some(3600));
        assert_eq!(file.dnskey.flags, 256);
        assert_eq!(file.dnskey.algorithm, 13);
        assert_eq!(&file.dnskey.public_key[..], &[0xaa, 0xbb]);
    }

    #[test]
    fn public_rejects_other_type() {
        let error = parse_public("example.net. IN DS 1 13 2 00").unwrap_err();
        assert!(matches!(error, BindError::InvalidPublic { .. }));
    }

    #[test]
    fn private_rejects_hsm_key() {
        let text = "Private-key-format: v1.3\nAlgorithm: 13 (ECDSAP256SHA256)\nLabel: pkcs11:x\n";
        let error = parse_private(text).unwrap_err();
        assert!(matches!(error, BindError::InvalidPrivate { .. }));
    }

    #[test]
    fn private_rejects_algorithm_5() {
        let text = "Private-key-format: v1.2\nAlgorithm: 5 (RSASHA1)\nModulus: AQAB\n";
        let error = parse_private(text).unwrap_err();
        assert!(matches!(
            error,
            BindError::UnsupportedAlgorithm { algorithm: 5, .. }
        ));
    }

    fn generated(algorithm: Algorithm, flags: u16) -> BindKey {
        BindKey {
            owner: parse_name("example.test.").unwrap(),
            ttl: None,
            flags,
            key: KeyPair::generate(algorithm, None).unwrap(),
            timing: Timing {
                created: Some(1_709_210_096),
                inactive: Some(1_893_456_000),
                ..Timing::default()
            },
        }
    }

    #[test]
    fn write_read_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        for algorithm in [
            Algorithm::EcdsaP256Sha256,
            Algorithm::Ed25519,
            Algorithm::RsaSha512,
        ] {
            let key = generated(algorithm, flags::ZONE | flags::SEP);
            let (public, private) = write(dir.path(), &key).unwrap();
            assert!(public.ends_with(format!("{}.key", key.file_stem())));
            assert!(private.ends_with(format!("{}.private", key.file_stem())));

            let text = fs::read_to_string(&private).unwrap();
            assert!(text.starts_with("Private-key-format: v1.3\n"), "{text}");
            assert!(text.contains("Created: 20240229123456\n"), "{text}");
            assert!(text.contains("Inactive: 20300101000000\n"), "{text}");

            let again = read(&private).unwrap();
            assert_eq!(again.key.public_key(), key.key.public_key(), "{algorithm}");
            assert_eq!(again.flags, key.flags);
            assert_eq!(again.timing, key.timing);
            assert_eq!(again.owner, key.owner);
        }
    }

    #[test]
    fn read_rejects_mismatched_files() {
        let dir = tempfile::tempdir().unwrap();
        let first = generated(Algorithm::EcdsaP256Sha256, flags::ZONE);
        let second = generated(Algorithm::EcdsaP256Sha256, flags::ZONE);
        let (public, _) = write(dir.path(), &first).unwrap();
        let (_, private) = write(dir.path(), &second).unwrap();
        fs::copy(
            &private,
            public.with_file_name(format!("{}.private", first.file_stem())),
        )
        .unwrap();
        let error = read(&public).unwrap_err();
        assert!(matches!(error, BindError::Mismatch { .. }), "{error:?}");
    }

    #[test]
    fn private_errors_omit_key_material() {
        let secret = "c2VjcmV0IGtleSBtYXRlcmlhbCB0aGF0IGlzIHRvbyBzaG9ydA==";
        let text = format!("Private-key-format: v1.3\nAlgorithm: 13\nPrivateKey: {secret}\n");
        let error = parse_private(&text).unwrap_err();
        assert!(matches!(error, BindError::Key { .. }), "{error:?}");
        assert!(!format!("{error:?}").contains(secret));
        assert!(!error.to_string().contains(secret));
    }

    #[test]
    fn file_stem_pads_numbers() {
        let owner = parse_name("Example.COM.").unwrap();
        assert_eq!(file_stem(&owner, 8, 439), "Kexample.com.+008+00439");
    }
}
