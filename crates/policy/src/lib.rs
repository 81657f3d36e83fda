//! DNSSEC policies: which keys a zone has, how long they live, how its
//! signatures and denial-of-existence records are made.
//!
//! A *policy* is a named set of settings. [`PolicyFile`] is the on-disk
//! form (every key optional, unknown keys rejected); [`Policy`] is the
//! runtime form with every default filled in and every value checked.
//! The module does no I/O.
//!
//! Defaults follow RFC 9276 for NSEC3 (no extra iterations, no salt) and
//! are at least as careful as BIND 9.18's built-in `default` policy for
//! TTLs, propagation delays and safety margins.

mod duration;

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

pub use duration::{Duration, DurationError};

/// DNSSEC algorithm numbers keymaster can generate keys for, with their
/// IANA mnemonics (RFC 8624 section 3.1).
pub const ALGORITHMS: &[(u8, &str)] = &[
    (8, "RSASHA256"),
    (10, "RSASHA512"),
    (13, "ECDSAP256SHA256"),
    (14, "ECDSAP384SHA384"),
    (15, "ED25519"),
    (16, "ED448"),
];

/// Returns the algorithm number for a mnemonic or a decimal number.
pub fn algorithm_number(text: &str) -> Option<u8> {
    let upper = text.trim().to_ascii_uppercase();
    if let Ok(number) = upper.parse::<u8>() {
        return ALGORITHMS
            .iter()
            .any(|(n, _)| *n == number)
            .then_some(number);
    }
    ALGORITHMS
        .iter()
        .find(|(_, name)| *name == upper)
        .map(|(number, _)| *number)
}

/// Returns the mnemonic of an algorithm number.
pub fn algorithm_name(number: u8) -> Option<&'static str> {
    ALGORITHMS
        .iter()
        .find(|(n, _)| *n == number)
        .map(|(_, name)| *name)
}

/// Reads a policy value given as text or as a whole number, as text.
fn name_or_number<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum NameOrNumber {
        Name(String),
        Number(i64),
    }
    Ok(match NameOrNumber::deserialize(deserializer)? {
        NameOrNumber::Name(name) => Some(name),
        NameOrNumber::Number(number) => Some(number.to_string()),
    })
}

/// Largest TTL a record may carry (RFC 2181 section 8).
pub const MAX_TTL: u64 = (1 << 31) - 1;

/// Key layout of a zone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyLayout {
    /// A key-signing key for the DNSKEY RRset and a zone-signing key for the rest.
    KskZsk,
    /// One combined signing key.
    Csk,
}

/// Denial-of-existence method.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Denial {
    Nsec,
    Nsec3,
}

impl fmt::Display for Denial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Nsec => "nsec",
            Self::Nsec3 => "nsec3",
        })
    }
}

/// KSK rollover method (RFC 6781 section 4.1.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KskRollover {
    DoubleKsk,
    DoubleDs,
}

/// ZSK rollover method (RFC 6781 section 4.1.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ZskRollover {
    PrePublication,
    DoubleSignature,
}

/// When CDS and CDNSKEY records are published (RFC 7344).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CdsPublish {
    /// Only while the parent's DS needs to change.
    Rollover,
    Always,
    Never,
}

/// Check of the parent's DS RRset before a KSK is retired.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ParentDsCheck {
    /// Query every address of every parent name server.
    AllParentServers,
    /// Wait for an operator's `keymaster key step`.
    Manual,
    /// Assume the DS changed once the waits have passed.
    None,
}

/// What DS records at the parent that match no key of the zone do to a
/// KSK rollover.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UnknownParentDs {
    /// Report them by key tag and go on.
    Tolerate,
    /// Report them and wait until the parent no longer serves them.
    Block,
}

/// How many signatures the check of every new signed version verifies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PostSignVerify {
    /// Every signature over the apex, the first of each kind of RRset and
    /// a random share of the rest; every other check covers every record.
    Sample,
    /// Every signature, at about twice the cost of signing.
    All,
}

/// DS digest algorithms (RFC 4034, RFC 6605).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Digest {
    Sha256,
    Sha384,
}

impl Digest {
    /// Returns the IANA digest type number.
    pub fn number(self) -> u8 {
        match self {
            Self::Sha256 => 2,
            Self::Sha384 => 4,
        }
    }
}

/// A policy as written in a configuration file. Every key is optional.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyFile {
    /// Mnemonic such as `"ECDSAP256SHA256"`, or the algorithm number.
    #[serde(default, deserialize_with = "name_or_number")]
    pub algorithm: Option<String>,
    pub keys: Option<KeyLayout>,
    pub ksk_lifetime: Option<Lifetime>,
    pub zsk_lifetime: Option<Lifetime>,
    pub csk_lifetime: Option<Lifetime>,
    pub rsa_bits: Option<u32>,
    pub dnskey_ttl: Option<Duration>,
    pub max_zone_ttl: Option<Duration>,
    pub zone_propagation_delay: Option<Duration>,
    pub parent_ds_ttl: Option<Duration>,
    pub parent_propagation_delay: Option<Duration>,
    pub publish_safety: Option<Duration>,
    pub retire_safety: Option<Duration>,
    pub signature_validity: Option<Duration>,
    pub signature_validity_dnskey: Option<Duration>,
    pub signature_refresh: Option<Duration>,
    pub signature_jitter: Option<Duration>,
    pub signature_inception_offset: Option<Duration>,
    pub denial: Option<Denial>,
    pub nsec3_iterations: Option<u16>,
    pub nsec3_salt_length: Option<u8>,
    pub nsec3_opt_out: Option<bool>,
    pub ksk_rollover: Option<KskRollover>,
    pub zsk_rollover: Option<ZskRollover>,
    pub cds_publish: Option<CdsPublish>,
    pub cds_digests: Option<Vec<Digest>>,
    pub ds_digests: Option<Vec<Digest>>,
    pub rfc5011: Option<bool>,
    pub parent_ds_check: Option<ParentDsCheck>,
    pub post_sign_verify: Option<PostSignVerify>,
    pub rfc5011_add_hold_down: Option<Duration>,
    pub rfc5011_remove_hold_down: Option<Duration>,
    pub parent_ds_check_interval: Option<Duration>,
    pub parent_ds_command: Option<Vec<String>>,
    pub parent_ds_escalate_after: Option<Duration>,
    pub unknown_parent_ds: Option<UnknownParentDs>,
}

/// A key lifetime: a duration, or `"unlimited"` for keys rolled only on request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lifetime {
    Unlimited,
    Limited(Duration),
}

impl Lifetime {
    /// Returns the duration, or `None` when unlimited.
    pub fn limit(self) -> Option<Duration> {
        match self {
            Self::Unlimited => None,
            Self::Limited(duration) => Some(duration),
        }
    }
}

impl fmt::Display for Lifetime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unlimited => f.write_str("unlimited"),
            Self::Limited(duration) => duration.fmt(f),
        }
    }
}

impl Serialize for Lifetime {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Lifetime {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let duration = match toml::Value::deserialize(deserializer)? {
            toml::Value::String(text) if text.eq_ignore_ascii_case("unlimited") => {
                return Ok(Self::Unlimited)
            }
            toml::Value::String(text) => text.parse().map_err(serde::de::Error::custom)?,
            toml::Value::Integer(seconds) if seconds >= 0 => Duration(seconds as u64),
            other => {
                let message = format!(
                    "invalid lifetime {other}: expected a duration such as 90d, or \"unlimited\""
                );
                return Err(serde::de::Error::custom(message));
            }
        };
        Ok(if duration.as_secs() == 0 {
            Self::Unlimited
        } else {
            Self::Limited(duration)
        })
    }
}

/// A checked policy with every default filled in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    pub name: String,
    /// DNSSEC algorithm number.
    pub algorithm: u8,
    pub keys: KeyLayout,
    pub ksk_lifetime: Lifetime,
    pub zsk_lifetime: Lifetime,
    pub csk_lifetime: Lifetime,
    pub rsa_bits: u32,
    pub dnskey_ttl: Duration,
    pub max_zone_ttl: Duration,
    pub zone_propagation_delay: Duration,
    pub parent_ds_ttl: Duration,
    pub parent_propagation_delay: Duration,
    pub publish_safety: Duration,
    pub retire_safety: Duration,
    pub signature_validity: Duration,
    pub signature_validity_dnskey: Duration,
    pub signature_refresh: Duration,
    pub signature_jitter: Duration,
    pub signature_inception_offset: Duration,
    pub denial: Denial,
    pub nsec3_iterations: u16,
    pub nsec3_salt_length: u8,
    pub nsec3_opt_out: bool,
    pub ksk_rollover: KskRollover,
    pub zsk_rollover: ZskRollover,
    pub cds_publish: CdsPublish,
    pub cds_digests: Vec<Digest>,
    pub ds_digests: Vec<Digest>,
    pub rfc5011: bool,
    pub parent_ds_check: ParentDsCheck,
    pub post_sign_verify: PostSignVerify,
    /// RFC 5011 section 2.4.1 add hold-down time (30 days; shorter only
    /// for resolvers set up to accept it, as in tests).
    pub rfc5011_add_hold_down: Duration,
    /// RFC 5011 section 2.4.1 remove hold-down time.
    pub rfc5011_remove_hold_down: Duration,
    /// How often the parent's servers are queried while a DS change is pending.
    pub parent_ds_check_interval: Duration,
    /// Program and arguments run once per waiting period with the DS
    /// records to submit on its standard input; the zone name is appended.
    pub parent_ds_command: Vec<String>,
    /// Waiting for the parent longer than this is logged as an error.
    pub parent_ds_escalate_after: Duration,
    pub unknown_parent_ds: UnknownParentDs,
}

/// RSA modulus sizes keys can be generated with.
pub const RSA_BITS: [u32; 4] = [2048, 3072, 4096, 8192];

/// Name of the built-in policy.
pub const DEFAULT_POLICY: &str = "default";

impl Default for Policy {
    /// Returns the built-in default policy: ECDSA P-256, KSK and ZSK, NSEC3
    /// without extra iterations or salt, SHA-256 digests.
    fn default() -> Self {
        Self {
            name: DEFAULT_POLICY.to_string(),
            algorithm: 13,
            keys: KeyLayout::KskZsk,
            ksk_lifetime: Lifetime::Unlimited,
            zsk_lifetime: Lifetime::Limited(Duration::days(90)),
            csk_lifetime: Lifetime::Unlimited,
            rsa_bits: 2048,
            dnskey_ttl: Duration::hours(1),
            max_zone_ttl: Duration::days(1),
            zone_propagation_delay: Duration::secs(300),
            parent_ds_ttl: Duration::days(1),
            parent_propagation_delay: Duration::hours(1),
            publish_safety: Duration::hours(1),
            retire_safety: Duration::hours(1),
            signature_validity: Duration::days(14),
            signature_validity_dnskey: Duration::days(14),
            signature_refresh: Duration::days(5),
            signature_jitter: Duration::hours(12),
            signature_inception_offset: Duration::hours(1),
            denial: Denial::Nsec3,
            nsec3_iterations: 0,
            nsec3_salt_length: 0,
            nsec3_opt_out: false,
            ksk_rollover: KskRollover::DoubleKsk,
            zsk_rollover: ZskRollover::PrePublication,
            cds_publish: CdsPublish::Rollover,
            cds_digests: vec![Digest::Sha256],
            ds_digests: vec![Digest::Sha256],
            rfc5011: false,
            parent_ds_check: ParentDsCheck::AllParentServers,
            post_sign_verify: PostSignVerify::Sample,
            rfc5011_add_hold_down: Duration::days(30),
            rfc5011_remove_hold_down: Duration::days(30),
            parent_ds_check_interval: Duration::hours(1),
            parent_ds_command: Vec::new(),
            parent_ds_escalate_after: Duration::days(7),
            unknown_parent_ds: UnknownParentDs::Tolerate,
        }
    }
}

/// Error for a policy whose values are invalid or contradict each other.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("policy {policy:?}: {reason}")]
pub struct PolicyError {
    pub policy: String,
    pub reason: String,
}

impl Policy {
    /// Builds a policy from its file form on top of the defaults and checks it.
    pub fn from_file(name: &str, file: &PolicyFile) -> Result<Self, PolicyError> {
        let mut policy = Self {
            name: name.to_string(),
            ..Self::default()
        };
        policy.apply(file)?;
        policy.check()?;
        Ok(policy)
    }

    fn apply(&mut self, file: &PolicyFile) -> Result<(), PolicyError> {
        if let Some(text) = &file.algorithm {
            self.algorithm = algorithm_number(text).ok_or_else(|| {
                let known: Vec<&str> = ALGORITHMS.iter().map(|(_, name)| *name).collect();
                self.error(format!(
                    "unknown algorithm {text:?}; use one of {}",
                    known.join(", ")
                ))
            })?;
        }
        macro_rules! take {
            ($($field:ident),*) => { $( if let Some(value) = &file.$field { self.$field = value.clone(); } )* };
        }
        take!(
            keys,
            ksk_lifetime,
            zsk_lifetime,
            csk_lifetime,
            rsa_bits,
            dnskey_ttl,
            max_zone_ttl,
            zone_propagation_delay,
            parent_ds_ttl,
            parent_propagation_delay,
            publish_safety,
            retire_safety,
            signature_validity,
            signature_validity_dnskey,
            signature_refresh,
            signature_jitter,
            signature_inception_offset,
            denial,
            nsec3_iterations,
            nsec3_salt_length,
            nsec3_opt_out,
            ksk_rollover,
            zsk_rollover,
            cds_publish,
            cds_digests,
            ds_digests,
            rfc5011,
            parent_ds_check,
            post_sign_verify,
            rfc5011_add_hold_down,
            rfc5011_remove_hold_down,
            parent_ds_check_interval,
            parent_ds_command,
            parent_ds_escalate_after,
            unknown_parent_ds
        );
        Ok(())
    }

    fn error(&self, reason: String) -> PolicyError {
        PolicyError {
            policy: self.name.clone(),
            reason,
        }
    }

    /// Checks values against each other; the message names the numbers.
    pub fn check(&self) -> Result<(), PolicyError> {
        if self.algorithm == 16 {
            return Err(self.error(
                "algorithm ED448 cannot sign: keymaster reads Ed448 keys but cannot generate or use them; use ED25519 or ECDSAP256SHA256".to_string(),
            ));
        }
        let ttls = [
            ("dnskey_ttl", self.dnskey_ttl),
            ("max_zone_ttl", self.max_zone_ttl),
            ("parent_ds_ttl", self.parent_ds_ttl),
        ];
        for (key, ttl) in ttls {
            if ttl.as_secs() > MAX_TTL {
                return Err(self.error(format!(
                    "{key} {} ({} s) exceeds the largest DNS TTL, {MAX_TTL} s (RFC 2181 section 8)",
                    ttl,
                    ttl.as_secs()
                )));
            }
        }
        if matches!(self.algorithm, 8 | 10) && !RSA_BITS.contains(&self.rsa_bits) {
            let bits = self.rsa_bits;
            return Err(self.error(format!(
                "rsa_bits {bits} is not one of 2048, 3072, 4096 or 8192"
            )));
        }
        if self.signature_refresh >= self.signature_validity {
            return Err(self.error(format!(
                "signature_refresh ({}) must be shorter than signature_validity ({})",
                self.signature_refresh, self.signature_validity
            )));
        }
        if self.signature_refresh >= self.signature_validity_dnskey {
            return Err(self.error(format!(
                "signature_refresh ({}) must be shorter than signature_validity_dnskey ({})",
                self.signature_refresh, self.signature_validity_dnskey
            )));
        }
        if self.signature_jitter > self.signature_refresh {
            return Err(self.error(format!(
                "signature_jitter ({}) must not exceed signature_refresh ({})",
                self.signature_jitter, self.signature_refresh
            )));
        }
        // A signature must outlive every cached copy of the data it covers.
        let minimum_validity = self.max_zone_ttl.as_secs() + self.zone_propagation_delay.as_secs();
        if self.signature_validity.as_secs() - self.signature_refresh.as_secs() < minimum_validity {
            return Err(self.error(format!(
                "signature_validity ({}) minus signature_refresh ({}) is shorter than \
                 max_zone_ttl ({}) plus zone_propagation_delay ({}), so cached signatures could expire",
                self.signature_validity,
                self.signature_refresh,
                self.max_zone_ttl,
                self.zone_propagation_delay
            )));
        }
        if self.nsec3_iterations > 100 {
            let iterations = self.nsec3_iterations;
            return Err(self.error(format!(
                "nsec3_iterations {iterations} exceeds 100; RFC 9276 recommends 0 and validators treat high counts as insecure"
            )));
        }
        if self.ds_digests.is_empty() {
            return Err(self.error("ds_digests must name at least one digest".to_string()));
        }
        Ok(())
    }
}

/// The `[policy.NAME]` tables of a configuration file.
pub type PolicyTables = BTreeMap<String, PolicyFile>;

/// Builds every named policy; the built-in `default` is always present and
/// may be overridden.
pub fn build_policies(tables: &PolicyTables) -> Result<BTreeMap<String, Policy>, PolicyError> {
    let mut policies = BTreeMap::new();
    policies.insert(DEFAULT_POLICY.to_string(), Policy::default());
    for (name, file) in tables {
        policies.insert(name.clone(), Policy::from_file(name, file)?);
    }
    Ok(policies)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Policy, PolicyError> {
        let file: PolicyFile = toml::from_str(text).expect("valid TOML");
        Policy::from_file("test", &file)
    }

    #[test]
    fn algorithm_by_number_or_name() {
        assert_eq!(parse("algorithm = 15").unwrap().algorithm, 15);
        assert_eq!(parse("algorithm = \"rsasha256\"").unwrap().algorithm, 8);
        assert!(parse("algorithm = 99").is_err());
    }

    #[test]
    fn policy_survives_a_json_round_trip() {
        let policy = parse(
            "algorithm = 8\nrsa_bits = 3072\nzsk_lifetime = \"unlimited\"\n\
             ksk_lifetime = \"400d\"\ndenial = \"nsec3\"\nnsec3_iterations = 0\n\
             signature_validity = \"10d\"\ncds_digests = [\"sha256\", \"sha384\"]\n\
             parent_ds_command = [\"/bin/true\", \"-x\"]",
        )
        .unwrap();
        let text = serde_json::to_string(&policy).unwrap();
        let back: Policy = serde_json::from_str(&text).unwrap();
        assert_eq!(back, policy, "{text}");
    }

    #[test]
    fn ed448_is_rejected() {
        let error = parse("algorithm = \"ED448\"").unwrap_err();
        assert!(error.reason.contains("ED448"), "{error}");
    }

    #[test]
    fn ttl_above_rfc2181_limit_is_rejected() {
        let error = parse("dnskey_ttl = 4294967297").unwrap_err();
        assert!(error.reason.contains("dnskey_ttl"), "{error}");
        assert!(parse("dnskey_ttl = 2147483647\nmax_zone_ttl = 60").is_ok());
    }

    #[test]
    fn negative_duration_is_named() {
        let error = toml::from_str::<PolicyFile>("dnskey_ttl = -5").unwrap_err();
        assert!(error.to_string().contains("cannot be negative"), "{error}");
    }

    #[test]
    fn default_policy_passes_its_own_checks() {
        assert_eq!(Policy::default().check(), Ok(()));
        assert_eq!(Policy::default().algorithm, 13);
        assert_eq!(Policy::default().denial, Denial::Nsec3);
    }

    #[test]
    fn file_values_override_defaults() {
        let policy = parse(
            "algorithm = \"ED25519\"\nkeys = \"csk\"\ndnskey_ttl = \"2h\"\ndenial = \"nsec\"",
        )
        .unwrap();
        assert_eq!(policy.algorithm, 15);
        assert_eq!(policy.keys, KeyLayout::Csk);
        assert_eq!(policy.dnskey_ttl, Duration::hours(2));
        assert_eq!(policy.denial, Denial::Nsec);
    }

    #[test]
    fn unknown_key_is_rejected() {
        let result: Result<PolicyFile, _> =
            toml::from_str("algorithm = \"ED25519\"\nalgoritm = 13");
        let message = result.unwrap_err().to_string();
        assert!(message.contains("algoritm"), "{message}");
    }

    #[test]
    fn refresh_longer_than_validity_is_rejected() {
        let error = parse("signature_validity = \"3d\"\nsignature_refresh = \"5d\"").unwrap_err();
        assert!(
            error.reason.contains("signature_refresh (5d)"),
            "{}",
            error.reason
        );
    }

    #[test]
    fn unknown_algorithm_lists_the_known_ones() {
        let error = parse("algorithm = \"GOST\"").unwrap_err();
        assert!(error.reason.contains("ECDSAP256SHA256"), "{}", error.reason);
    }

    #[test]
    fn lifetime_accepts_unlimited_and_zero() {
        assert_eq!(
            parse("ksk_lifetime = \"unlimited\"").unwrap().ksk_lifetime,
            Lifetime::Unlimited
        );
        assert_eq!(
            parse("ksk_lifetime = 0").unwrap().ksk_lifetime,
            Lifetime::Unlimited
        );
        assert_eq!(
            parse("ksk_lifetime = \"2y\"").unwrap().ksk_lifetime,
            Lifetime::Limited(Duration(2 * 365 * 86400))
        );
    }
}
