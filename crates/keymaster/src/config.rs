//! The configuration file and its runtime model.
//!
//! The file is TOML with a `version` key; unknown keys are rejected so a
//! typo is an error rather than a silently ignored setting. Values are
//! layered: built-in defaults, then the file, then environment variables
//! (`KEYMASTER_*`), then command-line flags.
//!
//! ```toml
//! version = 1
//! [server]
//! name = "ns1"
//! listen = ["127.0.0.1:5353"]
//! control = "127.0.0.1:8053"
//! data_dir = "keymaster-data"
//! allow_transfer = ["127.0.0.0/8", "::1"]
//!
//! [[tsig_key]]
//! name = "transfer-key"
//! algorithm = "hmac-sha256"
//! secret = "base64 of the shared secret"
//!
//! [[zone]]
//! name = "example.com"
//! file = "example.com.zone"
//! sign = true
//! policy = "default"
//!
//! [policy.fast]
//! zsk_lifetime = "30d"
//!
//! [cluster]
//! endpoints = ["http://127.0.0.1:2379"]
//! cluster_key = "cluster.key"
//! ```

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use keymaster_policy::{build_policies, Policy, PolicyTables, DEFAULT_POLICY};
use keymaster_server::{Network, NetworkError, TransferAccess, TsigAlgorithm, TsigKey};
use keymaster_store::etcd::{EtcdTls, DEFAULT_PREFIX};
use serde::Deserialize;
use zeroize::Zeroizing;

/// The only configuration format version so far.
pub const CONFIG_VERSION: u32 = 1;
/// Default DNS listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:5353";
/// Default control API address.
pub const DEFAULT_CONTROL: &str = "127.0.0.1:8053";
/// The shortest TSIG secret accepted for any algorithm, in octets (128 bits).
/// An algorithm with a longer hash output needs half its output length, the
/// minimum of FIPS 198 section 3, so hmac-sha512 needs 32 octets.
pub const MIN_TSIG_SECRET: usize = 16;
/// Default lifetime of a member's lease in the cluster store: how long a
/// member whose process died still shows online.
pub const DEFAULT_LEASE_TTL: std::time::Duration = std::time::Duration::from_secs(10);
/// Longest lease accepted, so that a dead member is noticed within an hour.
const MAX_LEASE_TTL: u64 = 3600;

/// The configuration file as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    pub version: u32,
    #[serde(default)]
    pub server: ServerSection,
    #[serde(default, rename = "zone")]
    pub zones: Vec<ZoneSection>,
    #[serde(default, rename = "policy")]
    pub policies: PolicyTables,
    #[serde(default, rename = "tsig_key")]
    pub tsig_keys: Vec<TsigKeySection>,
    pub cluster: Option<ClusterSection>,
}

/// One `[[tsig_key]]`: a key that allows zone transfers from any address.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TsigKeySection {
    pub name: String,
    pub algorithm: String,
    /// The shared secret in base64, wiped from memory when dropped.
    #[serde(deserialize_with = "deserialize_secret")]
    pub secret: Zeroizing<String>,
}

/// Reads a secret string into memory that is wiped when dropped.
fn deserialize_secret<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Zeroizing<String>, D::Error> {
    String::deserialize(deserializer).map(Zeroizing::new)
}

impl std::fmt::Debug for TsigKeySection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TsigKeySection")
            .field("name", &self.name)
            .field("algorithm", &self.algorithm)
            .field("secret", &"(redacted)")
            .finish()
    }
}

/// `[server]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSection {
    pub name: Option<String>,
    pub listen: Option<Vec<String>>,
    pub control: Option<String>,
    pub data_dir: Option<PathBuf>,
    /// Largest UDP response, in octets (EDNS payload cap).
    pub max_udp_payload: Option<u16>,
    /// Recursive resolver used to find the parent zone's name servers of
    /// zones without `parent_servers`.
    pub resolver: Option<String>,
    /// Networks allowed to transfer zones without TSIG.
    pub allow_transfer: Option<Vec<String>>,
}

/// One `[[zone]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZoneSection {
    pub name: String,
    pub file: PathBuf,
    #[serde(default = "default_sign")]
    pub sign: bool,
    pub policy: Option<String>,
    /// Addresses of the parent zone's name servers, queried for the zone's
    /// DS RRset; without them they are looked up through the resolver.
    pub parent_servers: Option<Vec<String>>,
}

/// `[cluster]`: the etcd cluster store this server shares with the other
/// members.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterSection {
    /// etcd client URLs.
    pub endpoints: Option<Vec<String>>,
    /// Cluster key file; without it the server joins but cannot sign.
    pub cluster_key: Option<PathBuf>,
    /// Prefix of every key in etcd.
    pub prefix: Option<String>,
    /// Lifetime of the member's lease.
    pub lease_ttl: Option<keymaster_policy::Duration>,
    /// CA certificate for `https://` endpoints.
    pub ca_file: Option<PathBuf>,
    /// Client certificate, for an etcd that requires one.
    pub cert_file: Option<PathBuf>,
    /// Private key of the client certificate.
    pub key_file: Option<PathBuf>,
}

fn default_sign() -> bool {
    true
}

/// A zone to serve from a master file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZoneConfig {
    /// Apex in presentation format with a trailing dot.
    pub name: String,
    pub file: PathBuf,
    pub sign: bool,
    pub policy: String,
    /// Parent name server addresses to check the DS RRset at; empty means
    /// look them up.
    pub parent_servers: Vec<SocketAddr>,
}

/// The runtime configuration of `keymaster serve`.
#[derive(Clone, Debug)]
pub struct Config {
    pub name: String,
    pub listen: Vec<SocketAddr>,
    pub control: SocketAddr,
    pub data_dir: PathBuf,
    pub max_udp_payload: u16,
    pub zones: Vec<ZoneConfig>,
    pub policies: BTreeMap<String, Policy>,
    /// Resolver for finding parent name servers, if configured.
    pub resolver: Option<SocketAddr>,
    /// Who may transfer zones: networks and TSIG keys.
    pub transfer: TransferAccess,
    /// The cluster store, if this server is a cluster member.
    pub cluster: Option<ClusterConfig>,
}

/// How this server reaches the cluster store and what it brings.
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    /// etcd client URLs, all `http://` or all `https://`.
    pub endpoints: Vec<String>,
    /// Cluster key file; `None` for a member that cannot sign.
    pub cluster_key: Option<PathBuf>,
    /// Prefix of every key in etcd, ending in `/`.
    pub prefix: String,
    pub lease_ttl: std::time::Duration,
    /// TLS files, given for `https://` endpoints.
    pub tls: Option<EtcdTls>,
}

/// Error in the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read configuration file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("configuration file {path} is invalid")]
    Parse {
        path: PathBuf,
        #[source]
        source: SyntaxError,
    },
    #[error("configuration file {path}: version {found} is not supported; this keymaster reads version {CONFIG_VERSION}")]
    Version { path: PathBuf, found: u32 },
    #[error("{origin}: invalid address {value:?}: expected IP:PORT such as 127.0.0.1:5353")]
    Address { origin: String, value: String },
    #[error("zone {zone}: policy {policy:?} is not defined; define [policy.{policy}] or use \"default\"")]
    UnknownPolicy { zone: String, policy: String },
    #[error("invalid zone name {zone:?}: {reason}")]
    ZoneName { zone: String, reason: String },
    #[error("zone {zone:?} is configured twice")]
    DuplicateZone { zone: String },
    #[error(transparent)]
    Policy(#[from] keymaster_policy::PolicyError),
    #[error("{path}: server.allow_transfer: invalid network {value:?}: {source}")]
    Network {
        path: String,
        value: String,
        #[source]
        source: NetworkError,
    },
    #[error("{path}: tsig_key {key:?}: invalid name: {reason}")]
    TsigKeyName {
        path: String,
        key: String,
        reason: String,
    },
    #[error("{path}: tsig_key {key:?}: unknown algorithm {value:?}; use \"hmac-sha256\" or \"hmac-sha512\"")]
    TsigAlgorithm {
        path: String,
        key: String,
        value: String,
    },
    #[error(
        "{path}: tsig_key {key:?}: the secret is not valid base64 (the value is not shown); \
             generate one with `tsig-keygen` or `openssl rand -base64 32`"
    )]
    TsigSecret { path: String, key: String },
    #[error(
        "{path}: tsig_key {key:?}: the secret is too short for {algorithm} ({len} octets, \
         at least {min} are required; the value is not shown); generate one with \
         `tsig-keygen -a {algorithm}`"
    )]
    TsigSecretLength {
        path: String,
        key: String,
        algorithm: TsigAlgorithm,
        len: usize,
        min: usize,
    },
    #[error("{path}: tsig_key {key:?} is defined twice")]
    DuplicateTsigKey { path: String, key: String },
    /// A bad `[cluster]` value or cluster flag.
    #[error("{origin}: {key} = {value:?}: {reason}")]
    Cluster {
        /// The file and section, or the flag.
        origin: String,
        key: &'static str,
        value: String,
        reason: String,
    },
    #[error("policy {policy:?}: {source}")]
    Lifetime {
        policy: String,
        #[source]
        source: keymaster_lifecycle::LifetimeTooShort,
    },
}

/// A syntax or type error in the configuration file.
///
/// The TOML parser's message quotes the offending source line. When that
/// line may hold a TSIG secret, only the position, the key and the reason
/// are kept, so that the secret stays out of terminals and logs.
#[derive(Debug, thiserror::Error)]
pub enum SyntaxError {
    /// The parser's own message, with the quoted line.
    #[error(transparent)]
    Shown(toml::de::Error),
    /// The line is in a `[[tsig_key]]` table or names a secret.
    #[error(
        "TOML parse error at line {line}, column {column}{}: {reason} \
         (the line is not shown because it may hold a TSIG secret)",
        key.as_ref().map(|key| format!(", key `{key}`")).unwrap_or_default()
    )]
    Masked {
        line: usize,
        column: usize,
        key: Option<String>,
        reason: String,
    },
}

impl SyntaxError {
    /// Wraps a parse error of `text`, masking it if it touches a secret.
    fn new(error: toml::de::Error, text: &str) -> Self {
        let span = error.span().unwrap_or(0..0);
        let start = floor_char_boundary(text, span.start);
        let end = floor_char_boundary(text, span.end.max(start));
        let line_start = text[..start].rfind('\n').map_or(0, |at| at + 1);
        let line_end = |from: usize| text[from..].find('\n').map_or(text.len(), |at| from + at);
        let line = &text[line_start..line_end(start)];
        let touched = &text[line_start..line_end(end)];

        // The message itself may quote a value, as serde's type errors do.
        let message = error.message().trim_end();
        let mut reason = message.to_string();
        for value in secret_values(text) {
            reason = reason.replace(value, "(secret not shown)");
        }
        let masked = reason != message
            || touched.to_ascii_lowercase().contains("secret")
            || in_tsig_key_table(&text[..line_end(start)]);
        if !masked {
            return Self::Shown(error);
        }
        Self::Masked {
            line: text[..start].matches('\n').count() + 1,
            column: text[line_start..start].chars().count() + 1,
            key: line_key(line).map(str::to_string),
            reason,
        }
    }
}

/// Returns the largest character boundary of `text` at or before `at`.
fn floor_char_boundary(text: &str, at: usize) -> usize {
    let mut at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

/// Returns the key a line assigns, if it looks like a key name: lower-case
/// letters and underscores only, so that a secret written in the key's
/// place is never returned.
fn line_key(line: &str) -> Option<&str> {
    let (key, _) = line.split_once('=')?;
    let key = key.trim();
    let plain = key.chars().all(|c| c.is_ascii_lowercase() || c == '_');
    (plain && !key.is_empty() && key.len() <= 40).then_some(key)
}

/// Returns the values of the lines of `text` that assign a key whose name
/// contains `secret`, without quotes.
fn secret_values(text: &str) -> impl Iterator<Item = &str> {
    text.lines().filter_map(|line| {
        let (key, value) = line.split_once('=')?;
        if !key.to_ascii_lowercase().contains("secret") {
            return None;
        }
        let value = value.trim().trim_start_matches(['"', '\'']);
        let value = value.split(['"', '\'']).next()?.trim();
        (value.len() >= 4).then_some(value)
    })
}

/// Returns true if the last table header in `before` opens a
/// `[[tsig_key]]` table.
fn in_tsig_key_table(before: &str) -> bool {
    let header = before
        .lines()
        .map(str::trim)
        .rfind(|line| line.starts_with('['));
    header.is_some_and(|header| {
        let name: String = header
            .chars()
            .filter(|c| !matches!(c, '[' | ']' | '"' | '\'') && !c.is_whitespace())
            .collect();
        name.starts_with("tsig_key")
    })
}

/// Settings given on the command line or in the environment; they win over the file.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub name: Option<String>,
    pub listen: Vec<String>,
    pub control: Option<String>,
    pub data_dir: Option<PathBuf>,
    /// `NAME=PATH` pairs.
    pub zones: Vec<(String, PathBuf)>,
    /// `--etcd` URLs; they replace the file's endpoints.
    pub etcd: Vec<String>,
    /// `--cluster-key FILE`.
    pub cluster_key: Option<PathBuf>,
}

impl ConfigFile {
    /// Reads and parses a configuration file.
    pub fn read(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(path, &text)
    }

    /// Parses the text of the configuration file at `path`.
    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let file: Self = toml::from_str(text).map_err(|error| ConfigError::Parse {
            path: path.to_path_buf(),
            source: SyntaxError::new(error, text),
        })?;
        if file.version != CONFIG_VERSION {
            return Err(ConfigError::Version {
                path: path.to_path_buf(),
                found: file.version,
            });
        }
        Ok(file)
    }
}

/// Returns `name` with exactly one trailing dot, lower-cased.
pub fn normalize_zone(name: &str) -> String {
    let trimmed = name.trim().trim_end_matches('.');
    format!("{}.", trimmed.to_ascii_lowercase())
}

fn parse_address(origin: &str, value: &str) -> Result<SocketAddr, ConfigError> {
    value.parse().map_err(|_| ConfigError::Address {
        origin: origin.to_string(),
        value: value.to_string(),
    })
}

impl Config {
    /// Builds the runtime configuration from an optional file and overrides.
    /// Relative zone file paths in the file are taken relative to its folder.
    pub fn build(
        file: Option<(&Path, ConfigFile)>,
        overrides: &Overrides,
    ) -> Result<Self, ConfigError> {
        let path_text = file.as_ref().map_or_else(
            || "(no file)".to_string(),
            |(path, _)| path.display().to_string(),
        );
        let (path, base, file) = match file {
            Some((path, file)) => (Some(path), path.parent().map(Path::to_path_buf), file),
            None => (
                None,
                None,
                ConfigFile {
                    version: CONFIG_VERSION,
                    ..ConfigFile::default()
                },
            ),
        };
        let resolve = |path: &Path| match (&base, path.is_relative()) {
            (Some(base), true) => base.join(path),
            _ => path.to_path_buf(),
        };
        let policies = build_policies(&file.policies)?;
        for (name, policy) in &policies {
            keymaster_lifecycle::LifecyclePolicy::from(policy)
                .check()
                .map_err(|source| ConfigError::Lifetime {
                    policy: name.clone(),
                    source,
                })?;
        }

        let name = overrides
            .name
            .clone()
            .or(file.server.name.clone())
            .unwrap_or_else(default_server_name);
        let listen_text = match (&overrides.listen[..], &file.server.listen) {
            ([], Some(listen)) => listen.clone(),
            ([], None) => vec![DEFAULT_LISTEN.to_string()],
            (flags, _) => flags.to_vec(),
        };
        let listen = listen_text
            .iter()
            .map(|value| parse_address("listen", value))
            .collect::<Result<Vec<_>, _>>()?;
        let control_text = overrides.control.clone().or(file.server.control.clone());
        let control = parse_address(
            "control",
            control_text.as_deref().unwrap_or(DEFAULT_CONTROL),
        )?;
        let data_dir = match (&overrides.data_dir, &file.server.data_dir) {
            (Some(dir), _) => dir.clone(),
            (None, Some(dir)) => resolve(dir),
            (None, None) => PathBuf::from("keymaster-data"),
        };

        let mut zones: Vec<ZoneConfig> = Vec::new();
        for section in &file.zones {
            let policy = section
                .policy
                .clone()
                .unwrap_or_else(|| DEFAULT_POLICY.to_string());
            let origin = format!("zone {} parent_servers", section.name);
            let parent_servers = section
                .parent_servers
                .iter()
                .flatten()
                .map(|value| parse_address(&origin, value))
                .collect::<Result<Vec<_>, _>>()?;
            zones.push(ZoneConfig {
                name: normalize_zone(&section.name),
                file: resolve(&section.file),
                sign: section.sign,
                policy,
                parent_servers,
            });
        }
        for (zone, path) in &overrides.zones {
            let config = ZoneConfig {
                name: normalize_zone(zone),
                file: path.clone(),
                sign: true,
                policy: DEFAULT_POLICY.to_string(),
                parent_servers: Vec::new(),
            };
            zones.retain(|z| z.name != config.name);
            zones.push(config);
        }
        for zone in &zones {
            let root = keymaster_zone::Name::root();
            if let Err(error) = keymaster_zone::parse_name(&zone.name, &root) {
                return Err(ConfigError::ZoneName {
                    zone: zone.name.clone(),
                    reason: error.to_string(),
                });
            }
        }
        for (index, zone) in zones.iter().enumerate() {
            if zones[..index].iter().any(|other| other.name == zone.name) {
                return Err(ConfigError::DuplicateZone {
                    zone: zone.name.clone(),
                });
            }
            if !policies.contains_key(&zone.policy) {
                return Err(ConfigError::UnknownPolicy {
                    zone: zone.name.clone(),
                    policy: zone.policy.clone(),
                });
            }
        }
        let transfer = build_transfer(&path_text, &file)?;
        let cluster = build_cluster(path, file.cluster.as_ref(), overrides, &resolve)?;
        Ok(Self {
            transfer,
            name,
            listen,
            control,
            data_dir,
            max_udp_payload: file.server.max_udp_payload.unwrap_or(1232),
            zones,
            policies,
            resolver: file
                .server
                .resolver
                .as_deref()
                .map(|value| parse_address("resolver", value))
                .transpose()?,
            cluster,
        })
    }

    /// Returns the policy named `name`, or the default one.
    pub fn policy(&self, name: &str) -> &Policy {
        self.policies
            .get(name)
            .or_else(|| self.policies.get(DEFAULT_POLICY))
            .expect("the default policy is always built in")
    }
}

/// Builds the zone transfer access rules from `[server] allow_transfer`
/// and the `[[tsig_key]]` tables of the file at `path`.
fn build_transfer(path: &str, file: &ConfigFile) -> Result<TransferAccess, ConfigError> {
    let allow = match &file.server.allow_transfer {
        None => Network::loopback(),
        Some(values) => values
            .iter()
            .map(|value| {
                value.parse().map_err(|source| ConfigError::Network {
                    path: path.to_string(),
                    value: value.clone(),
                    source,
                })
            })
            .collect::<Result<_, _>>()?,
    };
    let mut keys: Vec<TsigKey> = Vec::new();
    for section in &file.tsig_keys {
        let key = || section.name.clone();
        let name = keymaster_zone::parse_name(&section.name, &keymaster_zone::Name::root())
            .map_err(|error| ConfigError::TsigKeyName {
                path: path.to_string(),
                key: key(),
                reason: error.to_string(),
            })?;
        let algorithm: TsigAlgorithm =
            section
                .algorithm
                .parse()
                .map_err(|_| ConfigError::TsigAlgorithm {
                    path: path.to_string(),
                    key: key(),
                    value: section.algorithm.clone(),
                })?;
        let secret = data_encoding::BASE64
            .decode(section.secret.trim().as_bytes())
            .ok()
            .filter(|secret| !secret.is_empty())
            .ok_or_else(|| ConfigError::TsigSecret {
                path: path.to_string(),
                key: key(),
            })?;
        let min = (algorithm.mac_len() / 2).max(MIN_TSIG_SECRET);
        if secret.len() < min {
            return Err(ConfigError::TsigSecretLength {
                path: path.to_string(),
                key: key(),
                algorithm,
                len: secret.len(),
                min,
            });
        }
        if keys.iter().any(|other| *other.name() == name) {
            return Err(ConfigError::DuplicateTsigKey {
                path: path.to_string(),
                key: key(),
            });
        }
        keys.push(TsigKey::new(name, algorithm, secret));
    }
    Ok(TransferAccess { allow, keys })
}

/// Builds the cluster settings from `[cluster]` and the flags, or `None`
/// when neither names an etcd endpoint.
fn build_cluster(
    path: Option<&Path>,
    section: Option<&ClusterSection>,
    overrides: &Overrides,
    resolve: &dyn Fn(&Path) -> PathBuf,
) -> Result<Option<ClusterConfig>, ConfigError> {
    let file_origin = match path {
        Some(path) => format!("configuration file {} [cluster]", path.display()),
        None => "[cluster]".to_string(),
    };
    let error = |origin: &str, key, value: &str, reason: &str| ConfigError::Cluster {
        origin: origin.to_string(),
        key,
        value: value.to_string(),
        reason: reason.to_string(),
    };
    let (endpoints, origin) = match (&overrides.etcd[..], section) {
        ([], Some(section)) => (
            section.endpoints.clone().unwrap_or_default(),
            file_origin.clone(),
        ),
        ([], None) => {
            if let Some(key) = &overrides.cluster_key {
                return Err(error(
                    "--cluster-key",
                    "cluster_key",
                    &key.display().to_string(),
                    "a cluster key needs a cluster store: give --etcd URL or endpoints in [cluster]",
                ));
            }
            return Ok(None);
        }
        (flags, _) => (flags.to_vec(), "--etcd".to_string()),
    };
    if endpoints.is_empty() {
        return Err(error(
            &origin,
            "endpoints",
            "[]",
            "name at least one etcd client URL, such as http://127.0.0.1:2379",
        ));
    }
    for endpoint in &endpoints {
        if !is_endpoint(endpoint) {
            return Err(error(
                &origin,
                "endpoints",
                endpoint,
                "expected an etcd client URL such as http://127.0.0.1:2379 or https://etcd1:2379",
            ));
        }
    }
    let secure = endpoints[0].starts_with("https://");
    if let Some(other) = endpoints
        .iter()
        .find(|e| e.starts_with("https://") != secure)
    {
        return Err(error(
            &origin,
            "endpoints",
            other,
            "mixes http:// and https://; use one scheme for every endpoint",
        ));
    }

    let empty = ClusterSection::default();
    let section = section.unwrap_or(&empty);
    let tls = build_tls(section, resolve);
    match (&tls, secure) {
        (Some(_), false) => {
            return Err(error(
                &file_origin,
                "endpoints",
                &endpoints[0],
                "TLS files are set, so the endpoints must start with https://",
            ))
        }
        (None, true) | (Some(EtcdTls { ca_file: None, .. }), true) => {
            return Err(error(
                &origin,
                "endpoints",
                &endpoints[0],
                "an https:// endpoint needs ca_file in [cluster], the CA that signed etcd's certificate",
            ))
        }
        _ => {}
    }
    if let Some(tls) = &tls {
        if tls.cert_file.is_some() != tls.key_file.is_some() {
            let (key, value) = match (&tls.cert_file, &tls.key_file) {
                (Some(cert), None) => ("cert_file", cert),
                (_, Some(key)) => ("key_file", key),
                (None, None) => unreachable!("one of the two is set"),
            };
            return Err(error(
                &file_origin,
                key,
                &value.display().to_string(),
                "a client certificate needs both cert_file and key_file",
            ));
        }
    }

    let prefix = section
        .prefix
        .clone()
        .unwrap_or_else(|| DEFAULT_PREFIX.to_string());
    if prefix.is_empty() || prefix.chars().any(char::is_whitespace) {
        return Err(error(
            &file_origin,
            "prefix",
            &prefix,
            "expected a key prefix without spaces, such as /keymaster/",
        ));
    }
    let lease_ttl = match section.lease_ttl {
        None => DEFAULT_LEASE_TTL,
        Some(ttl) if (1..=MAX_LEASE_TTL).contains(&ttl.as_secs()) => {
            std::time::Duration::from_secs(ttl.as_secs())
        }
        Some(ttl) => {
            return Err(error(
                &file_origin,
                "lease_ttl",
                &ttl.to_string(),
                "must be between 1s and 1h",
            ))
        }
    };
    let cluster_key = match (&overrides.cluster_key, &section.cluster_key) {
        (Some(path), _) => Some(path.clone()),
        (None, Some(path)) => Some(resolve(path)),
        (None, None) => None,
    };
    Ok(Some(ClusterConfig {
        endpoints,
        cluster_key,
        prefix,
        lease_ttl,
        tls,
    }))
}

/// Returns the TLS files of `[cluster]`, resolved, or `None` when none is set.
fn build_tls(section: &ClusterSection, resolve: &dyn Fn(&Path) -> PathBuf) -> Option<EtcdTls> {
    let files = [&section.ca_file, &section.cert_file, &section.key_file];
    if files.iter().all(|file| file.is_none()) {
        return None;
    }
    let resolved = |file: &Option<PathBuf>| file.as_deref().map(resolve);
    Some(EtcdTls {
        ca_file: resolved(&section.ca_file),
        cert_file: resolved(&section.cert_file),
        key_file: resolved(&section.key_file),
    })
}

/// Returns whether `text` looks like an etcd client URL: `http://` or
/// `https://`, a host and a port.
fn is_endpoint(text: &str) -> bool {
    let Some(rest) = text
        .strip_prefix("http://")
        .or_else(|| text.strip_prefix("https://"))
    else {
        return false;
    };
    let rest = rest.trim_end_matches('/');
    match rest.rsplit_once(':') {
        Some((host, port)) => {
            !host.is_empty()
                && !host.contains('/')
                && !host.contains(char::is_whitespace)
                && port.parse::<u16>().is_ok_and(|port| port != 0)
        }
        None => false,
    }
}

/// Returns the host name, or `keymaster` when it cannot be read.
fn default_server_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|name| name.trim().to_string())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "keymaster".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ConfigFile, toml::de::Error> {
        toml::from_str(text)
    }

    #[test]
    fn file_zones_resolve_relative_to_the_file() {
        let file =
            parse("version = 1\n[[zone]]\nname = \"Example.COM\"\nfile = \"example.zone\"\n")
                .unwrap();
        let config = Config::build(
            Some((Path::new("/etc/km/keymaster.toml"), file)),
            &Overrides::default(),
        )
        .unwrap();
        assert_eq!(config.zones[0].name, "example.com.");
        assert_eq!(config.zones[0].file, PathBuf::from("/etc/km/example.zone"));
        assert!(config.zones[0].sign);
    }

    #[test]
    fn flags_win_over_the_file() {
        let file =
            parse("version = 1\n[server]\nlisten = [\"127.0.0.1:53\"]\nname = \"a\"\n").unwrap();
        let overrides = Overrides {
            listen: vec!["127.0.0.2:5300".into()],
            name: Some("b".into()),
            ..Overrides::default()
        };
        let config = Config::build(Some((Path::new("k.toml"), file)), &overrides).unwrap();
        assert_eq!(
            config.listen,
            vec!["127.0.0.2:5300".parse::<SocketAddr>().unwrap()]
        );
        assert_eq!(config.name, "b");
    }

    #[test]
    fn unknown_key_is_rejected() {
        let error = parse("version = 1\n[server]\nlisten_on = []\n").unwrap_err();
        assert!(error.to_string().contains("listen_on"), "{error}");
    }

    #[test]
    fn undefined_policy_is_rejected() {
        let file =
            parse("version = 1\n[[zone]]\nname = \"a\"\nfile = \"a.zone\"\npolicy = \"strict\"\n")
                .unwrap();
        let error =
            Config::build(Some((Path::new("k.toml"), file)), &Overrides::default()).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("policy \"strict\" is not defined"),
            "{error}"
        );
    }

    #[test]
    fn bad_address_names_the_value() {
        let overrides = Overrides {
            listen: vec!["localhost".into()],
            ..Overrides::default()
        };
        let error = Config::build(None, &overrides).unwrap_err();
        assert!(error.to_string().contains("\"localhost\""), "{error}");
    }

    fn build_text(text: &str) -> Result<Config, ConfigError> {
        let file = parse(text).unwrap();
        Config::build(
            Some((Path::new("/etc/km.toml"), file)),
            &Overrides::default(),
        )
    }

    #[test]
    fn transfer_defaults_to_loopback() {
        let config = build_text("version = 1\n").unwrap();
        assert_eq!(config.transfer.allow, Network::loopback());
        assert!(config.transfer.keys.is_empty());
    }

    #[test]
    fn transfer_settings_are_read() {
        let text = "version = 1\n[server]\nallow_transfer = []\n\
                    [[tsig_key]]\nname = \"xfr\"\nalgorithm = \"hmac-sha512\"\nsecret = \"{SECRET}\"\n";
        let config = build_text(&text.replace("{SECRET}", SECRET)).unwrap();
        assert!(config.transfer.allow.is_empty());
        let key = &config.transfer.keys[0];
        assert_eq!(key.name().to_string(), "xfr.");
        assert_eq!(key.algorithm(), TsigAlgorithm::HmacSha512);
        let debug = format!("{config:?}");
        assert!(!debug.contains(SECRET), "{debug}");
    }

    #[test]
    fn transfer_errors_name_file_key_value() {
        let error = build_text("version = 1\n[server]\nallow_transfer = [\"10.0.0.1/8\"]\n")
            .unwrap_err()
            .to_string();
        assert!(error.contains("/etc/km.toml"), "{error}");
        assert!(error.contains("allow_transfer"), "{error}");
        assert!(error.contains("\"10.0.0.1/8\""), "{error}");
        assert!(error.contains("10.0.0.0/8"), "{error}");

        let key = "[[tsig_key]]\nname = \"k\"\n";
        let error = build_text(&format!(
            "version = 1\n{key}algorithm = \"hmac-md5\"\nsecret = \"c2VjcmV0\"\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(error.contains("/etc/km.toml"), "{error}");
        assert!(error.contains("\"hmac-md5\""), "{error}");

        let error = build_text(&format!(
            "version = 1\n{key}algorithm = \"hmac-sha256\"\nsecret = \"not base64!\"\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(error.contains("/etc/km.toml"), "{error}");
        assert!(error.contains("tsig_key \"k\""), "{error}");
        assert!(error.contains("base64"), "{error}");
        assert!(!error.contains("not base64!"), "{error}");
    }

    /// A 16-octet secret in base64, the shortest accepted for hmac-sha256.
    const SIXTEEN: &str = "MDEyMzQ1Njc4OWFiY2RlZg==";

    /// A 32-octet secret in base64.
    const SECRET: &str = "pRP5FapFoJ95JEL06sv4PQ2mVQeq/pqW8nxSPlvFHAo=";

    #[test]
    fn short_tsig_secret_is_rejected() {
        // 15 octets: "0123456789abcde".
        let text = "version = 1\n[[tsig_key]]\nname = \"k\"\nalgorithm = \"hmac-sha256\"\n\
                    secret = \"MDEyMzQ1Njc4OWFiY2Rl\"\n";
        let error = build_text(text).unwrap_err().to_string();
        assert!(error.contains("/etc/km.toml"), "{error}");
        assert!(error.contains("tsig_key \"k\""), "{error}");
        assert!(error.contains("15 octets"), "{error}");
        assert!(error.contains("16"), "{error}");
        assert!(!error.contains("MDEyMzQ1Njc4OWFiY2Rl"), "{error}");
        let one = text.replace("MDEyMzQ1Njc4OWFiY2Rl", "QQ==");
        assert!(build_text(&one).is_err());
        let sixteen = text.replace("MDEyMzQ1Njc4OWFiY2Rl", SIXTEEN);
        assert!(build_text(&sixteen).is_ok());

        // hmac-sha512 needs 32 octets, half its hash output.
        let sha512 = sixteen.replace("hmac-sha256", "hmac-sha512");
        let error = build_text(&sha512).unwrap_err().to_string();
        assert!(error.contains("hmac-sha512"), "{error}");
        assert!(error.contains("16 octets"), "{error}");
        assert!(error.contains("at least 32"), "{error}");
        let long = sha512.replace(SIXTEEN, SECRET);
        assert!(build_text(&long).is_ok());
    }

    /// Returns the message of a parse error with its causes, as the
    /// command line prints it.
    fn parse_error_text(text: &str) -> String {
        let error = ConfigFile::parse(Path::new("/etc/km.toml"), text).unwrap_err();
        let mut message = error.to_string();
        let mut source = std::error::Error::source(&error);
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        message
    }

    #[test]
    fn parse_errors_near_a_secret_hide_it() {
        let head = "version = 1\n[server]\nlisten = [\"127.0.0.1:5353\"]\n\
                    [[tsig_key]]\nname = \"k1\"\nalgorithm = \"hmac-sha256\"\n";
        let cases = [
            (format!("secret = \"{SECRET}\" x\n"), 7, Some("secret")),
            (format!("secret = \"{SECRET}\n"), 7, Some("secret")),
            (
                format!("secret = \"{SECRET}\"\nsecret = \"{SECRET}\"\n"),
                8,
                Some("secret"),
            ),
            (format!("secrett = \"{SECRET}\"\n"), 7, Some("secrett")),
            (format!("secret = \"\"\"\n{SECRET}\n\"\"\" x\n"), 9, None),
            (
                format!("secret = \"{SECRET}\"\nnote = 1\n"),
                8,
                Some("note"),
            ),
        ];
        for (tail, line, key) in cases {
            let error = parse_error_text(&format!("{head}{tail}"));
            assert!(error.contains("/etc/km.toml"), "{error}");
            assert!(error.contains(&format!("line {line},")), "{error}");
            if let Some(key) = key {
                assert!(error.contains(&format!("`{key}`")), "{error}");
            }
            assert!(error.contains("not shown"), "{error}");
            assert!(
                !error.contains(&SECRET[..12]),
                "the secret is shown: {error}"
            );
        }
    }

    fn build_file(text: &str, overrides: &Overrides) -> Result<Config, ConfigError> {
        let file = parse(text).unwrap();
        Config::build(Some((Path::new("/etc/km/k.toml"), file)), overrides)
    }

    #[test]
    fn cluster_section_is_read_with_defaults() {
        let config = build_file(
            "version = 1\n[cluster]\nendpoints = [\"http://127.0.0.1:2379\"]\ncluster_key = \"c.key\"\n",
            &Overrides::default(),
        )
        .unwrap();
        let cluster = config.cluster.unwrap();
        assert_eq!(cluster.endpoints, ["http://127.0.0.1:2379"]);
        assert_eq!(cluster.cluster_key, Some(PathBuf::from("/etc/km/c.key")));
        assert_eq!(cluster.prefix, DEFAULT_PREFIX);
        assert_eq!(cluster.lease_ttl, DEFAULT_LEASE_TTL);
        assert!(cluster.tls.is_none());
        assert!(build_file("version = 1\n", &Overrides::default())
            .unwrap()
            .cluster
            .is_none());
    }

    #[test]
    fn cluster_flags_win_over_the_file() {
        let overrides = Overrides {
            etcd: vec!["http://127.0.0.2:2379".into()],
            cluster_key: Some(PathBuf::from("flag.key")),
            ..Overrides::default()
        };
        let config = build_file(
            "version = 1\n[cluster]\nendpoints = [\"http://127.0.0.1:2379\"]\ncluster_key = \"c.key\"\nlease_ttl = \"3s\"\n",
            &overrides,
        )
        .unwrap();
        let cluster = config.cluster.unwrap();
        assert_eq!(cluster.endpoints, ["http://127.0.0.2:2379"]);
        assert_eq!(cluster.cluster_key, Some(PathBuf::from("flag.key")));
        assert_eq!(cluster.lease_ttl, std::time::Duration::from_secs(3));
    }

    #[test]
    fn cluster_errors_name_the_file_key_and_value() {
        let cases = [
            ("endpoints = []", "endpoints = \"[]\""),
            (
                "endpoints = [\"127.0.0.1:2379\"]",
                "endpoints = \"127.0.0.1:2379\"",
            ),
            (
                "endpoints = [\"http://a:1\", \"https://b:2\"]\nca_file = \"ca.pem\"",
                "mixes http:// and https://",
            ),
            ("endpoints = [\"https://a:1\"]", "needs ca_file"),
            (
                "endpoints = [\"http://a:1\"]\nca_file = \"ca.pem\"",
                "must start with https://",
            ),
            (
                "endpoints = [\"https://a:1\"]\nca_file = \"ca.pem\"\ncert_file = \"c.pem\"",
                "cert_file = \"/etc/km/c.pem\"",
            ),
            (
                "endpoints = [\"http://a:1\"]\nlease_ttl = \"2h\"",
                "lease_ttl = \"2h\"",
            ),
            (
                "endpoints = [\"http://a:1\"]\nlease_ttl = 0",
                "lease_ttl = \"0s\"",
            ),
            (
                "endpoints = [\"http://a:1\"]\nprefix = \"\"",
                "prefix = \"\"",
            ),
        ];
        for (section, expected) in cases {
            let text = format!("version = 1\n[cluster]\n{section}\n");
            let error = build_file(&text, &Overrides::default()).unwrap_err();
            let message = error.to_string();
            assert!(message.contains(expected), "{section}: {message}");
            assert!(message.contains("/etc/km/k.toml"), "{section}: {message}");
        }
    }

    #[test]
    fn parse_errors_elsewhere_quote_the_line() {
        let text = "version = 1\n[server]\nlisten = [\"127.0.0.1:5353\"] x\n";
        let error = parse_error_text(text);
        assert!(error.contains("line 3"), "{error}");
        assert!(error.contains("listen = [\"127.0.0.1:5353\"] x"), "{error}");
    }

    #[test]
    fn cluster_unknown_key_is_rejected() {
        let error = parse("version = 1\n[cluster]\nendpoint = [\"http://a:1\"]\n").unwrap_err();
        assert!(error.to_string().contains("endpoint"), "{error}");
    }

    #[test]
    fn cluster_key_flag_needs_a_cluster() {
        let overrides = Overrides {
            cluster_key: Some(PathBuf::from("c.key")),
            ..Overrides::default()
        };
        let message = Config::build(None, &overrides).unwrap_err().to_string();
        assert!(message.contains("--cluster-key"), "{message}");
        assert!(message.contains("--etcd"), "{message}");
        let overrides = Overrides {
            etcd: vec!["localhost".into()],
            ..Overrides::default()
        };
        let message = Config::build(None, &overrides).unwrap_err().to_string();
        assert!(
            message.contains("--etcd: endpoints = \"localhost\""),
            "{message}"
        );
    }

    #[test]
    fn invalid_zone_name_is_rejected() {
        let overrides = Overrides {
            zones: vec![("x..y".into(), PathBuf::from("z.zone"))],
            ..Overrides::default()
        };
        let error = Config::build(None, &overrides).unwrap_err();
        assert!(matches!(error, ConfigError::ZoneName { .. }), "{error}");
    }
}
