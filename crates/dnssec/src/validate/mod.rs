//! Validation of a signed zone, in the manner of BIND's `dnssec-verify`
//! and Knot's `kzonecheck`.
//!
//! [`verify_zone`] runs every check and returns a [`VerifyReport`] whose
//! errors make the zone unfit to publish and whose warnings do not. The
//! checks are grouped by module:
//!
//! - `structure`: zone content rules that hold without DNSSEC (SOA and NS at
//!   the apex, CNAME and DNAME exclusivity, DS placement, glue for
//!   in-bailiwick name servers).
//! - `keys`: the apex DNSKEY RRset (protocol, zone flag, key-tag
//!   collisions, a self-signature by a SEP key), CDS and CDNSKEY (RFC 7344,
//!   RFC 8078 section 4) and DS parameters at zone cuts.
//! - `signatures`: every authoritative RRset signed by each algorithm of
//!   the DNSKEY set with a valid signature whose window contains `now` (RFC
//!   4035 section 2.2), and no signatures where none belong.
//! - `denial`: the NSEC or NSEC3 chain.
//!
//! A zone without a DNSKEY RRset at the apex is treated as unsigned: only
//! the structural checks run, and any DNSSEC record in it is an error.
//!
//! Every authoritative RRset must be signed by each algorithm whose keys
//! sign the DNSKEY RRset, which is how BIND's `dnssec-verify` reads RFC
//! 4035 section 2.2: a key of a new algorithm may be published before it
//! signs anything.
//!
//! Limitations: signatures by keys that aws-lc-rs cannot use (RSA keys under
//! 1024 bits, Ed448, retired algorithms) are reported as warnings and count
//! as present; reporting four or more keys with one key tag as an error is
//! a heuristic, as Knot's is.

mod denial;
mod keys;
mod signatures;
mod structure;

use std::fmt;
use std::time::{Duration, Instant};

use keymaster_keys::VerifyError;
use keymaster_zone::{Name, Node, NodeKind, Rtype, Zone};

/// One problem found in a zone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// The owner name the problem is about.
    pub owner: Name,
    /// The record type involved, when there is one.
    pub rtype: Option<Rtype>,
    /// The key tag involved, when a key or signature is.
    pub key_tag: Option<u16>,
    pub problem: Problem,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.owner)?;
        if let Some(rtype) = self.rtype {
            write!(f, " {rtype}")?;
        }
        if let Some(tag) = self.key_tag {
            write!(f, " (key tag {tag})")?;
        }
        write!(f, ": {}", self.problem)
    }
}

/// Problem found, with the values that show it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Problem {
    // Structure.
    #[error("no SOA record at the zone apex")]
    MissingSoa,
    #[error("{count} SOA records at the zone apex; exactly one is allowed")]
    MultipleSoa { count: usize },
    #[error("no NS records at the zone apex")]
    MissingApexNs,
    #[error("CNAME next to other data ({other})")]
    CnameWithOtherData { other: Rtype },
    #[error("{count} CNAME records at one name; exactly one is allowed")]
    MultipleCname { count: usize },
    #[error("{count} DNAME records at one name; exactly one is allowed")]
    MultipleDname { count: usize },
    #[error("DNAME next to NS below the apex")]
    DnameWithNs,
    #[error("data below the DNAME at {dname}")]
    DataBelowDname { dname: Name },
    #[error("DS record at the zone apex")]
    DsAtApex,
    #[error("missing glue: name server {target} has no address record")]
    MissingGlue { target: Name },

    // Records that cannot be parsed.
    #[error("malformed {rtype} record data")]
    MalformedRdata { rtype: Rtype },

    // Keys, DS, CDS and CDNSKEY.
    #[error("no DNSKEY RRset at the apex of a zone with DNSSEC records")]
    MissingDnskey,
    #[error("DNSKEY protocol field is {protocol}; it must be 3")]
    DnskeyProtocol { protocol: u8 },
    #[error("DNSKEY without the zone key flag (flags {flags})")]
    DnskeyNotZoneKey { flags: u16 },
    #[error("{count} DNSKEYs share this key tag")]
    KeyTagCollision { count: usize },
    #[error("no key with the SEP flag has a valid signature over the DNSKEY RRset")]
    NoSepSignature,
    #[error("DS algorithm {algorithm} is reserved or unassigned")]
    DsAlgorithm { algorithm: u8 },
    #[error("DS digest type {digest_type} is reserved or unassigned")]
    DsDigestType { digest_type: u8 },
    #[error("DS digest of type {digest_type} has {found} octets; it must have {expected}")]
    DsDigestLength {
        digest_type: u8,
        expected: usize,
        found: usize,
    },
    #[error("CDS without CDNSKEY")]
    CdsWithoutCdnskey,
    #[error("CDNSKEY without CDS")]
    CdnskeyWithoutCds,
    #[error("CDS matches no DNSKEY of the zone")]
    CdsMatchesNoDnskey,
    #[error("CDNSKEY matches no DNSKEY of the zone")]
    CdnskeyMatchesNoDnskey,
    #[error("CDS matches no CDNSKEY")]
    CdsMatchesNoCdnskey,
    #[error("CDNSKEY matches no CDS")]
    CdnskeyMatchesNoCds,
    #[error("not signed by any key that the record set names")]
    NotSignedByNamedKey,
    #[error("malformed delete request: it must be exactly `{expected}`")]
    InvalidDelete { expected: &'static str },
    #[error("delete request mixed with other records")]
    DeleteMixed,

    // Signatures.
    #[error("no signature by algorithm {algorithm}")]
    MissingSignature { algorithm: u8 },
    #[error("signature over data the zone is not authoritative for")]
    SignedNonAuthoritative,
    #[error("signature covers RRSIG")]
    SignatureOverRrsig,
    #[error("signature covers a type that has no records here")]
    SignatureWithoutRrset,
    #[error("signer name {signer} is not the zone apex")]
    WrongSigner { signer: Name },
    #[error("original TTL {original_ttl} differs from the RRset TTL {ttl}")]
    OriginalTtl { original_ttl: u32, ttl: u32 },
    #[error("labels field {labels} exceeds the owner's {owner_labels} labels")]
    Labels { labels: u8, owner_labels: usize },
    #[error("signature by algorithm {algorithm} names no DNSKEY of the zone")]
    UnknownKey { algorithm: u8 },
    #[error("signature expired at {expiration}, validation time {now}")]
    Expired { expiration: u32, now: u32 },
    #[error("signature not valid before {inception}, validation time {now}")]
    NotYetValid { inception: u32, now: u32 },
    #[error("signature does not verify: {source}")]
    BadSignature {
        #[source]
        source: VerifyError,
    },
    #[error("signature not checked: {source}")]
    Unverifiable {
        #[source]
        source: VerifyError,
    },

    // Denial of existence.
    #[error("zone has both NSEC and NSEC3 records")]
    MixedDenial,
    #[error("no NSEC record")]
    MissingNsec,
    #[error("{count} NSEC records at one name; exactly one is allowed")]
    MultipleNsec { count: usize },
    #[error("NSEC record at a name the zone is not authoritative for")]
    NsecNonAuthoritative,
    #[error("NSEC next name is {found}; expected {expected}")]
    NsecNext { expected: Name, found: Name },
    #[error("type bitmap lists {found}; expected {expected}")]
    Bitmap { expected: String, found: String },
    #[error("NSEC3 records but no NSEC3PARAM at the apex")]
    MissingNsec3Param,
    #[error("{count} NSEC3PARAM records at the apex; exactly one is allowed")]
    MultipleNsec3Param { count: usize },
    #[error("NSEC3PARAM flags are {flags}; they must be 0")]
    Nsec3ParamFlags { flags: u8 },
    #[error("NSEC3 hash algorithm {algorithm} is not SHA-1 (1)")]
    Nsec3HashAlgorithm { algorithm: u8 },
    #[error("no NSEC3 chain with the parameters of the NSEC3PARAM record")]
    Nsec3ChainNotFound,
    #[error("NSEC3 parameters differ from the NSEC3PARAM record")]
    Nsec3Params,
    #[error("NSEC3 flags {flags} have unknown bits set")]
    Nsec3Flags { flags: u8 },
    #[error("no NSEC3 record for this name (hash {hash})")]
    MissingNsec3 { hash: String },
    #[error("NSEC3 record at {owner}, which is not a hash label below the apex")]
    Nsec3Owner { owner: Name },
    #[error("NSEC3 record matches no name of the zone")]
    Nsec3Orphan,
    #[error("NSEC3 next hash is {found}; expected {expected}")]
    Nsec3Next { expected: String, found: String },
    #[error("insecure delegation without NSEC3 is not covered by an opt-out NSEC3")]
    NotOptedOut,
}

/// Counts from one validation run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VerifyStats {
    /// Authoritative RRsets checked for signatures.
    pub rrsets: usize,
    /// RRSIG records seen.
    pub signatures: usize,
    /// RRSIG records whose signature was verified successfully.
    pub verified: usize,
    /// RRSIG records whose fields were checked but whose signature was
    /// left out of a [`SignatureCheck::Sample`] run.
    pub not_sampled: usize,
    /// NSEC records seen.
    pub nsec: usize,
    /// NSEC3 records seen.
    pub nsec3: usize,
    pub duration: Duration,
}

/// The outcome of [`verify_zone`].
#[derive(Clone, Debug, Default)]
pub struct VerifyReport {
    /// Problems that make the zone invalid.
    pub errors: Vec<Finding>,
    /// Problems worth reporting that do not make the zone invalid.
    pub warnings: Vec<Finding>,
    pub stats: VerifyStats,
}

impl VerifyReport {
    /// Returns true if no error was found.
    pub fn is_valid(&self) -> bool {
        self.errors.is_empty()
    }
}

/// Collects findings while the checks run.
pub(crate) struct Findings {
    errors: Vec<Finding>,
    warnings: Vec<Finding>,
}

impl Findings {
    fn new() -> Self {
        Self {
            errors: Vec::new(),
            warnings: Vec::new(),
        }
    }

    pub(crate) fn error(&mut self, owner: &Name, rtype: Option<Rtype>, problem: Problem) {
        self.errors.push(finding(owner, rtype, None, problem));
    }

    pub(crate) fn push(&mut self, is_error: bool, finding: Finding) {
        if is_error {
            self.errors.push(finding);
        } else {
            self.warnings.push(finding);
        }
    }
}

/// Builds a finding.
pub(crate) fn finding(
    owner: &Name,
    rtype: Option<Rtype>,
    key_tag: Option<u16>,
    problem: Problem,
) -> Finding {
    Finding {
        owner: owner.clone(),
        rtype,
        key_tag,
        problem,
    }
}

/// The choice of signatures that [`verify_zone_with`] verifies
/// cryptographically.
///
/// Every other check (fields, keys, validity windows, coverage of every
/// RRset, the denial chain) runs on every record in both modes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SignatureCheck {
    /// Every signature, as `dnssec-verify` does.
    #[default]
    All,
    /// Every signature over an apex RRset, the first [`SAMPLE_PER_CLASS`]
    /// signatures of each class, and a random one in [`SAMPLE_ONE_IN`] of
    /// the rest, chosen afresh on every run. A class is what changes how
    /// the signed data is built: the covered type, algorithm and key, the
    /// label count, a wildcard owner or not, upper-case letters in the
    /// owner or not, and one, two or more records.
    ///
    /// A signer's mistakes are in the data it signs, and such a mistake
    /// shows in every signature of its class, so this catches them at a
    /// small share of the cost: a P-256 verification costs about twice a
    /// signature.
    Sample,
}

/// Signatures verified per class before [`SignatureCheck::Sample`] starts
/// sampling.
pub const SAMPLE_PER_CLASS: u32 = 16;

/// Share of the remaining signatures that [`SignatureCheck::Sample`]
/// verifies: one in this many.
pub const SAMPLE_ONE_IN: u64 = 32;

/// Settings of [`verify_zone_with`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VerifyOptions {
    /// Validation time, seconds since the Unix epoch (the low 32 bits).
    pub now: u32,
    pub signatures: SignatureCheck,
}

/// Checks a zone and returns every problem found, with validation time
/// `now` in seconds since the Unix epoch. Every signature is verified.
pub fn verify_zone(zone: &Zone, now: u32) -> VerifyReport {
    let options = VerifyOptions {
        now,
        signatures: SignatureCheck::All,
    };
    verify_zone_with(zone, &options)
}

/// Checks a zone as [`verify_zone`] does, verifying the signatures that
/// `options.signatures` selects.
pub fn verify_zone_with(zone: &Zone, options: &VerifyOptions) -> VerifyReport {
    let mut check = ZoneCheck::begin(zone, options);
    let nodes: Vec<(&Node, NodeKind)> = zone.walk().collect();
    for batch in nodes.chunks(NODES_PER_BATCH) {
        check.check_nodes(batch);
    }
    check.finish(zone)
}

/// Nodes whose signatures [`verify_zone_with`] checks in one parallel batch.
const NODES_PER_BATCH: usize = 4096;

/// A validation run in three steps, for a signer that writes its signed
/// nodes out a batch at a time and drops their signatures afterwards.
///
/// [`ZoneCheck::begin`] runs the checks that need no signatures;
/// [`ZoneCheck::check_nodes`] checks the signatures of every node, in
/// canonical order, apex first; [`ZoneCheck::finish`] runs the checks that
/// need the whole zone but only the outcome of the signature checks.
pub struct ZoneCheck {
    start: Instant,
    now: u32,
    findings: Findings,
    stats: VerifyStats,
    /// The zone's keys, or `None` for an unsigned zone.
    keys: Option<keys::KeySet>,
    signatures: signatures::SignatureChecks,
}

impl ZoneCheck {
    /// Starts checking `zone`: its structure, its DNSKEY RRset and its DS
    /// records. The zone needs its apex DNSKEY RRset but no signatures yet.
    pub fn begin(zone: &Zone, options: &VerifyOptions) -> Self {
        let mut findings = Findings::new();
        structure::check(zone, &mut findings);
        let signed = zone.apex().is_some_and(|apex| apex.has(Rtype::DNSKEY));
        let keys = signed.then(|| {
            let keys = keys::check_dnskeys(zone, &mut findings);
            keys::check_ds(zone, &mut findings);
            keys
        });
        Self {
            start: Instant::now(),
            now: options.now,
            findings,
            stats: VerifyStats::default(),
            keys,
            signatures: signatures::SignatureChecks::new(options.signatures, zone.origin()),
        }
    }

    /// Checks the signatures of `nodes`, given in canonical order with the
    /// kind [`Zone::walk`] gives them. The caller passes every node exactly
    /// once over the whole run; a node left out is not checked.
    pub fn check_nodes(&mut self, nodes: &[(&Node, NodeKind)]) {
        if let Some(keys) = &self.keys {
            let (findings, stats) = (&mut self.findings, &mut self.stats);
            self.signatures
                .check(nodes, keys, self.now, findings, stats);
        }
    }

    /// Runs the checks that need the whole zone, and returns the report.
    pub fn finish(mut self, zone: &Zone) -> VerifyReport {
        let findings = &mut self.findings;
        match &self.keys {
            Some(keys) => {
                let good = self.signatures.good();
                keys::check_dnskey_signed(zone, keys, good, findings);
                keys::check_cds(zone, keys, good, findings);
                denial::check(zone, findings, &mut self.stats);
            }
            None => report_unsigned_dnssec(zone, findings),
        }
        self.stats.duration = self.start.elapsed();
        VerifyReport {
            errors: self.findings.errors,
            warnings: self.findings.warnings,
            stats: self.stats,
        }
    }
}

/// Reports DNSSEC records in a zone without DNSKEY, once per zone.
fn report_unsigned_dnssec(zone: &Zone, findings: &mut Findings) {
    let dnssec_types = [Rtype::NSEC, Rtype::NSEC3, Rtype::NSEC3PARAM];
    let has_dnssec = zone
        .nodes()
        .flat_map(|node| &node.rrsets)
        .any(|rrset| !rrset.signatures.is_empty() || dnssec_types.contains(&rrset.rtype));
    if has_dnssec {
        findings.error(zone.origin(), Some(Rtype::DNSKEY), Problem::MissingDnskey);
    }
}
