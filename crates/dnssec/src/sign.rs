//! Signing a whole zone, and refreshing the signatures of a signed one.
//!
//! [`sign_zone`] takes an unsigned zone (any DNSSEC records in it are
//! dropped first), adds the DNSKEY RRset, CDS and CDNSKEY, the NSEC or
//! NSEC3 chain with its NSEC3PARAM record, and then signs every
//! authoritative RRset: apex and in-zone data, and at a zone cut only DS
//! and NSEC (RFC 4035 section 2.2). The DNSKEY, CDS and CDNSKEY RRsets are
//! signed by every key that signs keys; all other RRsets by every key that
//! signs the zone. Each RRSIG carries the RRset's TTL as its original TTL
//! and the apex as its signer name.
//!
//! TTLs: NSEC and NSEC3 records get the smaller of the SOA TTL and the SOA
//! MINIMUM field (RFC 9077 section 3.3); NSEC3PARAM gets TTL 0, as BIND
//! 9.18's `dnssec-signzone` gives it, because RFC 5155 section 4 sets none
//! and resolvers never fetch it.
//!
//! Expiration times are spread by a jitter that depends only on the owner,
//! type and key tag ([`crate::rrsig::jittered_expiration`]), so that two
//! primaries signing the same zone with the same keys and options publish
//! the same timestamps. The signatures themselves match for RSA and
//! Ed25519, which are deterministic, and for ECDSA only when
//! [`SignOptions::deterministic`] is set: ECDSA then takes RFC 6979 nonces
//! ([`Signer::sign_deterministic`]) instead of random ones, at a lower
//! rate. With it, signing the same zone with the same keys, inception and
//! expiration gives byte-identical output on every primary. The signer
//! never reads the clock: both times come in through [`SignOptions`].
//!
//! Work is spread over the rayon thread pool in batches; the progress
//! callback runs on the calling thread between batches.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use keymaster_keys::{KeyError, Signer};
use keymaster_zone::zone::soa_minimum;
use keymaster_zone::{Name, Node, NodeKind, Rrset, Rtype, Zone};
use rayon::prelude::*;

use crate::nsec::{build_nsec_chain, signing_kind};
use crate::nsec3::{build_nsec3_chain, nsec3param_rdata, Nsec3Error};
use crate::rdata::{Nsec3Params, Rrsig, NSEC3_SHA1};
use crate::rrsig::{
    jittered_expiration, rrsig_labels, write_signed_data, RrsigHeader, SignedRrset,
};

/// RRsets signed per batch between two progress reports.
const BATCH: usize = 4096;

/// A key the signer may publish and use.
#[derive(Clone)]
pub struct SigningKey {
    /// DNSKEY RDATA, flags included.
    pub dnskey: Bytes,
    pub key_tag: u16,
    /// The key signs the DNSKEY, CDS and CDNSKEY RRsets (a KSK or CSK).
    pub signs_keys: bool,
    /// The key signs all other RRsets (a ZSK or CSK).
    pub signs_zone: bool,
    /// The DNSKEY is published in the zone. A key may be published without
    /// signing, as a pre-published ZSK is, or sign without being published,
    /// as some rollover steps need.
    pub published: bool,
    pub signer: Arc<dyn Signer>,
}

impl SigningKey {
    fn algorithm(&self) -> u8 {
        self.signer.algorithm().to_u8()
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("key_tag", &self.key_tag)
            .field("algorithm", &self.algorithm())
            .field("signs_keys", &self.signs_keys)
            .field("signs_zone", &self.signs_zone)
            .field("published", &self.published)
            .finish_non_exhaustive()
    }
}

/// The denial-of-existence chain to build.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Denial {
    /// An NSEC chain (RFC 4034 section 4).
    Nsec,
    /// An NSEC3 chain with SHA-1 (RFC 5155).
    Nsec3 {
        /// Additional hash iterations; RFC 9276 section 3.1 recommends 0.
        iterations: u16,
        salt: Bytes,
        /// Leave insecure delegations out of the chain.
        opt_out: bool,
    },
}

/// Publication and signature-lifetime settings of [`sign_zone`].
#[derive(Clone, Debug)]
pub struct SignOptions {
    /// Signature inception, seconds since the Unix epoch.
    pub inception: u32,
    /// Signature expiration for RRsets signed by zone-signing keys.
    pub expiration: u32,
    /// Signature expiration for the DNSKEY, CDS and CDNSKEY RRsets.
    pub dnskey_expiration: u32,
    /// Expirations are spread over `[expiration - jitter, expiration]`, in seconds.
    pub jitter: u32,
    /// TTL of the DNSKEY, CDS and CDNSKEY RRsets.
    pub dnskey_ttl: u32,
    pub denial: Denial,
    /// CDS RDATA to publish at the apex.
    pub cds: Vec<Bytes>,
    /// CDNSKEY RDATA to publish at the apex.
    pub cdnskey: Vec<Bytes>,
    /// DNSKEY RDATA published beside the keys' own, such as revoked keys.
    pub extra_dnskeys: Vec<Bytes>,
    /// Sign through [`Signer::sign_deterministic`], so that the same keys,
    /// data and times always give the same signatures (RFC 6979 for
    /// ECDSA). Keys that cannot sign deterministically fail the run.
    pub deterministic: bool,
    /// An earlier signed version of the zone whose signatures are taken
    /// over wherever a new one would cover the same data with the same
    /// RRSIG fields and key, so that only the changed RRsets are signed
    /// again. With [`SignOptions::deterministic`] the result is the same
    /// byte for byte as without it; it is only faster.
    pub previous: Option<Arc<Zone>>,
}

/// Counts from one signing run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SignStats {
    pub rrsets_signed: usize,
    /// Signatures made in this run.
    pub signatures: usize,
    /// Signatures taken over from [`SignOptions::previous`].
    pub reused: usize,
    /// NSEC or NSEC3 records added.
    pub nsec_records: usize,
    pub duration: Duration,
}

/// A signed zone with the counts of its signing.
#[derive(Clone, Debug)]
pub struct SignedZone {
    pub zone: Zone,
    pub stats: SignStats,
}

/// Error raised while signing a zone.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// The zone has no SOA record at its apex.
    #[error("zone {zone} has no SOA record at its apex")]
    MissingSoa { zone: Name },
    /// No key signs the zone data, or none signs the DNSKEY RRset.
    #[error("zone {zone} has no key that signs {what}")]
    NoKey { zone: Name, what: &'static str },
    /// The NSEC3 chain could not be built.
    #[error("cannot build the NSEC3 chain of zone {zone}")]
    Nsec3 {
        zone: Name,
        #[source]
        source: Nsec3Error,
    },
    /// The signed nodes could not be written out.
    #[error("cannot write the signed zone {zone}")]
    Output {
        zone: Name,
        #[source]
        source: std::io::Error,
    },
    /// A key failed to sign an RRset.
    #[error("key {key_tag} failed to sign {owner} {rtype}")]
    Sign {
        owner: Name,
        rtype: Rtype,
        key_tag: u16,
        #[source]
        source: KeyError,
    },
}

/// Signs `zone` with `keys` and returns it signed.
///
/// The zone is taken by value and signed in place, so a large zone is
/// never held twice. `progress`, when given, is called with the number of RRsets signed so
/// far and the total, after each batch.
pub fn sign_zone(
    mut zone: Zone,
    keys: &[SigningKey],
    options: &SignOptions,
    progress: Option<&dyn Fn(usize, usize)>,
) -> Result<SignedZone, SignError> {
    let start = Instant::now();
    let nsec_records = prepare(&mut zone, keys, options)?;
    let tally = sign_rrsets(&mut zone, keys, options, None, progress)?;
    let stats = SignStats {
        rrsets_signed: tally.rrsets_signed,
        signatures: tally.signatures,
        reused: tally.reused,
        nsec_records,
        duration: start.elapsed(),
    };
    tracing::debug!(zone = %zone.origin(), ?stats, "signed zone");
    Ok(SignedZone { zone, stats })
}

/// Receives a zone from [`sign_zone_streamed`] as it is signed.
pub trait SignedNodes {
    /// Receives the zone once, ready to be signed: its DNSKEY, CDS and
    /// CDNSKEY RRsets and its NSEC or NSEC3 chain are in place, and it has
    /// no signatures yet.
    fn begin(&mut self, zone: &Zone) -> std::io::Result<()>;

    /// Receives the next batch of signed nodes in canonical order, apex
    /// first, each with the kind [`Zone::walk`] gives it. Every node comes
    /// exactly once.
    fn nodes(&mut self, nodes: &[(&Node, NodeKind)]) -> std::io::Result<()>;
}

/// Signs `zone` as [`sign_zone`] does, a batch of nodes at a time, and
/// hands each batch to `sink`. Once `sink` returns, the signatures of the
/// batch are dropped, except those at the apex, so a zone too large to
/// hold signed can still be written out signed. The zone is returned with
/// signatures at the apex only.
///
/// An error from `sink` stops the run.
pub fn sign_zone_streamed(
    mut zone: Zone,
    keys: &[SigningKey],
    options: &SignOptions,
    progress: Option<&dyn Fn(usize, usize)>,
    sink: &mut dyn SignedNodes,
) -> Result<SignedZone, SignError> {
    let start = Instant::now();
    let nsec_records = prepare(&mut zone, keys, options)?;
    let apex = zone.origin().clone();
    let output_error = |source| SignError::Output {
        zone: apex.clone(),
        source,
    };
    sink.begin(&zone).map_err(output_error)?;
    let plan = Plan::new(&apex, keys, options, None);
    let kinds: Vec<NodeKind> = zone.walk().map(|(_, kind)| kind).collect();
    let mut nodes: Vec<&mut Node> = zone.nodes_mut().collect();
    let total: usize = nodes.iter().map(|node| node.rrsets.len()).sum();

    let (mut tally, mut done, mut first) = (Tally::default(), 0, 0);
    while first < nodes.len() {
        // Whole nodes, up to about one batch of RRsets.
        let mut end = first;
        let mut count = 0;
        while end < nodes.len() && count < BATCH {
            count += nodes[end].rrsets.len();
            end += 1;
        }
        let batch = &mut nodes[first..end];
        let batch_kinds = &kinds[first..end];

        let mut rrsets = Vec::with_capacity(count);
        for (node, &kind) in batch.iter_mut().zip(batch_kinds) {
            collect_signable(node, signing_kind(node, kind), &mut rrsets);
        }
        tally.add(sign_batch(&mut rrsets, &plan)?);
        drop(rrsets);

        let view: Vec<(&Node, NodeKind)> = batch
            .iter()
            .map(|node| &**node)
            .zip(batch_kinds.iter().copied())
            .collect();
        sink.nodes(&view).map_err(output_error)?;
        drop(view);
        for node in batch.iter_mut().filter(|node| node.name != apex) {
            for rrset in &mut node.rrsets {
                rrset.signatures = Vec::new();
            }
        }

        done += count;
        if let Some(report) = progress {
            report(done, total);
        }
        first = end;
    }
    drop(nodes);

    let stats = SignStats {
        rrsets_signed: tally.rrsets_signed,
        signatures: tally.signatures,
        reused: tally.reused,
        nsec_records,
        duration: start.elapsed(),
    };
    tracing::debug!(zone = %apex, ?stats, "signed zone in batches");
    Ok(SignedZone { zone, stats })
}

/// Drops any DNSSEC records from `zone` and adds the DNSKEY, CDS and
/// CDNSKEY RRsets and the NSEC or NSEC3 chain: everything but the
/// signatures. Returns the number of NSEC or NSEC3 records added.
fn prepare(
    zone: &mut Zone,
    keys: &[SigningKey],
    options: &SignOptions,
) -> Result<usize, SignError> {
    let origin = zone.origin().clone();
    // A signer adds these types, so any in the input are dropped first.
    zone.strip(&keymaster_zone::check::DNSSEC_TYPES, true);
    if !keys.iter().any(|key| key.signs_zone) {
        return Err(SignError::NoKey {
            zone: origin,
            what: "the zone data",
        });
    }
    if !keys.iter().any(|key| key.signs_keys) {
        return Err(SignError::NoKey {
            zone: origin,
            what: "the DNSKEY RRset",
        });
    }
    let denial_ttl = denial_ttl(zone).ok_or_else(|| SignError::MissingSoa {
        zone: origin.clone(),
    })?;
    add_apex_records(zone, keys, options);
    add_denial(zone, &options.denial, denial_ttl)
}

/// Replaces the signatures of a signed zone that expire before
/// `refresh_before` or whose key is no longer among `keys` in the right
/// role, and adds signatures for keys that have none yet. Returns the
/// number of signatures made.
///
/// The zone's content, DNSKEY RRset and chain are left as they are;
/// signatures over data the zone is not authoritative for are removed.
pub fn resign_expiring(
    zone: &mut Zone,
    keys: &[SigningKey],
    options: &SignOptions,
    refresh_before: u32,
) -> Result<usize, SignError> {
    let tally = sign_rrsets(zone, keys, options, Some(refresh_before), None)?;
    Ok(tally.signatures)
}

/// Returns the TTL of NSEC and NSEC3 records: the smaller of the SOA TTL
/// and the SOA MINIMUM field.
fn denial_ttl(zone: &Zone) -> Option<u32> {
    let soa = zone.soa()?;
    let minimum = soa_minimum(soa.rdatas.first()?)?;
    Some(minimum.min(soa.ttl))
}

/// Adds the DNSKEY, CDS and CDNSKEY RRsets at the apex.
fn add_apex_records(zone: &mut Zone, keys: &[SigningKey], options: &SignOptions) {
    let origin = zone.origin().clone();
    let class = zone.class();
    let rrset_of = |rtype: Rtype, rdatas: &mut dyn Iterator<Item = &Bytes>| {
        let mut rrset = Rrset::new(origin.clone(), class, rtype, options.dnskey_ttl);
        for rdata in rdatas {
            rrset.insert(rdata.clone());
        }
        rrset
    };
    let published = keys
        .iter()
        .filter(|key| key.published)
        .map(|key| &key.dnskey);
    let mut dnskeys = published.chain(&options.extra_dnskeys);
    let dnskey = rrset_of(Rtype::DNSKEY, &mut dnskeys);
    if !dnskey.rdatas.is_empty() {
        zone.put_rrset(dnskey);
    }
    if !options.cds.is_empty() {
        zone.put_rrset(rrset_of(Rtype::CDS, &mut options.cds.iter()));
    }
    if !options.cdnskey.is_empty() {
        zone.put_rrset(rrset_of(Rtype::CDNSKEY, &mut options.cdnskey.iter()));
    }
}

/// Adds the NSEC or NSEC3 chain (and NSEC3PARAM) and returns its size.
fn add_denial(zone: &mut Zone, denial: &Denial, ttl: u32) -> Result<usize, SignError> {
    let chain = match denial {
        Denial::Nsec => build_nsec_chain(zone, ttl),
        Denial::Nsec3 {
            iterations,
            salt,
            opt_out,
        } => {
            let mut param = Rrset::new(zone.origin().clone(), zone.class(), Rtype::NSEC3PARAM, 0);
            param.rdatas.push(nsec3param_rdata(salt, *iterations));
            zone.put_rrset(param);
            let params = Nsec3Params {
                hash_algorithm: NSEC3_SHA1,
                flags: 0,
                iterations: *iterations,
                salt: salt.clone(),
            };
            build_nsec3_chain(zone, &params, *opt_out, ttl).map_err(|source| SignError::Nsec3 {
                zone: zone.origin().clone(),
                source,
            })?
        }
    };
    let count = chain.len();
    for rrset in chain {
        zone.put_rrset(rrset);
    }
    Ok(count)
}

/// Returns true if the zone is authoritative for an RRset of this type at
/// a node of this kind, so that it must be signed (RFC 4035 section 2.2).
pub(crate) fn is_authoritative(kind: NodeKind, rtype: Rtype) -> bool {
    match kind {
        NodeKind::Apex | NodeKind::Authoritative => rtype != Rtype::RRSIG,
        NodeKind::Delegation => matches!(rtype, Rtype::DS | Rtype::NSEC | Rtype::NSEC3),
        NodeKind::Occluded => false,
    }
}

/// Returns true for the RRsets that key-signing keys sign.
fn signed_by_ksk(rrset: &Rrset, apex: &Name) -> bool {
    matches!(rrset.rtype, Rtype::DNSKEY | Rtype::CDS | Rtype::CDNSKEY) && &rrset.owner == apex
}

/// Per-run values shared by every RRset.
struct Plan<'a> {
    apex: &'a Name,
    ksks: Vec<&'a SigningKey>,
    zsks: Vec<&'a SigningKey>,
    options: &'a SignOptions,
    /// Keep signatures that expire at or after this time; `None` re-signs all.
    refresh_before: Option<u32>,
    /// Key tags whose signatures in [`SignOptions::previous`] may be taken
    /// over: keys published there under a tag and algorithm no other key
    /// of that version has, so a signature there with that tag was made
    /// by this key.
    reusable: Vec<u16>,
}

/// Counts of a batch or run of [`sign_rrset`] calls.
#[derive(Clone, Copy, Debug, Default)]
struct Tally {
    /// RRsets that got at least one new signature.
    rrsets_signed: usize,
    /// Signatures made.
    signatures: usize,
    /// Signatures taken over from the previous version.
    reused: usize,
}

impl Tally {
    fn add(&mut self, other: Self) {
        self.rrsets_signed += other.rrsets_signed;
        self.signatures += other.signatures;
        self.reused += other.reused;
    }
}

/// Returns the tags of `keys` whose signatures in `previous` can be taken
/// over: the key's DNSKEY is published at its apex, and no other DNSKEY
/// there has the same tag and algorithm.
fn reusable_tags(apex: &Name, keys: &[SigningKey], previous: Option<&Zone>) -> Vec<u16> {
    let Some(published) = previous.and_then(|zone| zone.rrset(apex, Rtype::DNSKEY)) else {
        return Vec::new();
    };
    keys.iter()
        .filter(|key| {
            let algorithm = key.algorithm();
            let same_tag = published
                .rdatas
                .iter()
                .filter(|rdata| {
                    rdata.get(3) == Some(&algorithm)
                        && keymaster_keys::key_tag(rdata) == key.key_tag
                })
                .count();
            same_tag == 1 && published.rdatas.contains(&key.dnskey)
        })
        .map(|key| key.key_tag)
        .collect()
}

impl<'a> Plan<'a> {
    fn new(
        apex: &'a Name,
        keys: &'a [SigningKey],
        options: &'a SignOptions,
        refresh_before: Option<u32>,
    ) -> Self {
        Self {
            apex,
            ksks: keys.iter().filter(|key| key.signs_keys).collect(),
            zsks: keys.iter().filter(|key| key.signs_zone).collect(),
            options,
            refresh_before,
            reusable: reusable_tags(apex, keys, options.previous.as_deref()),
        }
    }
}

/// Adds the RRsets of `node` that need signatures to `rrsets`, and drops
/// the signatures of the others.
fn collect_signable<'n>(node: &'n mut Node, kind: NodeKind, rrsets: &mut Vec<&'n mut Rrset>) {
    for rrset in &mut node.rrsets {
        if is_authoritative(kind, rrset.rtype) && !rrset.rdatas.is_empty() {
            rrsets.push(rrset);
        } else {
            rrset.signatures.clear();
        }
    }
}

/// Signs the authoritative RRsets of `zone` in batches.
fn sign_rrsets(
    zone: &mut Zone,
    keys: &[SigningKey],
    options: &SignOptions,
    refresh_before: Option<u32>,
    progress: Option<&dyn Fn(usize, usize)>,
) -> Result<Tally, SignError> {
    let apex = zone.origin().clone();
    let plan = Plan::new(&apex, keys, options, refresh_before);

    // Kinds come from an immutable walk; the RRsets are then taken mutably
    // in the same canonical order.
    let kinds: Vec<NodeKind> = zone
        .walk()
        .map(|(node, kind)| signing_kind(node, kind))
        .collect();
    let mut rrsets: Vec<&mut Rrset> = Vec::new();
    for (node, kind) in zone.nodes_mut().zip(kinds) {
        collect_signable(node, kind, &mut rrsets);
    }

    let total = rrsets.len();
    let (mut tally, mut done) = (Tally::default(), 0);
    for batch in rrsets.chunks_mut(BATCH) {
        tally.add(sign_batch(batch, &plan)?);
        done += batch.len();
        if let Some(report) = progress {
            report(done, total);
        }
    }
    Ok(tally)
}

/// Signs a batch of RRsets in parallel.
fn sign_batch(batch: &mut [&mut Rrset], plan: &Plan<'_>) -> Result<Tally, SignError> {
    let counts: Vec<Tally> = batch
        .par_iter_mut()
        .map_init(
            || (Vec::with_capacity(64), Vec::with_capacity(1024)),
            |(header, data), rrset| sign_rrset(rrset, plan, header, data),
        )
        .collect::<Result<_, _>>()?;
    let mut tally = Tally::default();
    for count in counts {
        tally.add(count);
    }
    Ok(tally)
}

/// Returns the signature of the previous version over the same RRset
/// with the RRSIG fields `header` describes, if there is one.
fn previous_signature(
    plan: &Plan<'_>,
    rrset: &Rrset,
    header: &[u8],
    key_tag: u16,
) -> Option<Bytes> {
    if !plan.reusable.contains(&key_tag) {
        return None;
    }
    let before = plan
        .options
        .previous
        .as_ref()?
        .rrset(&rrset.owner, rrset.rtype)?;
    if before.ttl != rrset.ttl || before.class != rrset.class || before.rdatas != rrset.rdatas {
        return None;
    }
    before
        .signatures
        .iter()
        .find(|rdata| rdata.len() > header.len() && rdata.starts_with(header))
        .cloned()
}

/// Signs one RRset with every key of its role that has no signature worth
/// keeping. The RRset counts as signed when it got at least one new
/// signature.
fn sign_rrset(
    rrset: &mut Rrset,
    plan: &Plan<'_>,
    header: &mut Vec<u8>,
    data: &mut Vec<u8>,
) -> Result<Tally, SignError> {
    let by_ksk = signed_by_ksk(rrset, plan.apex);
    let keys = if by_ksk { &plan.ksks } else { &plan.zsks };
    let expiration = if by_ksk {
        plan.options.dnskey_expiration
    } else {
        plan.options.expiration
    };

    // Keep the signatures that are fresh and made by a key in this role.
    match plan.refresh_before {
        None => rrset.signatures.clear(),
        Some(limit) => rrset.signatures.retain(|rdata| {
            Rrsig::parse(rdata).is_some_and(|rrsig| {
                (rrsig.expiration.wrapping_sub(limit) as i32) >= 0
                    && rrsig.original_ttl == rrset.ttl
                    && keys.iter().any(|key| {
                        key.key_tag == rrsig.key_tag && key.algorithm() == rrsig.algorithm
                    })
            })
        }),
    }

    let labels = rrsig_labels(&rrset.owner);
    let mut tally = Tally::default();
    for key in keys {
        let algorithm = key.algorithm();
        let kept = rrset.signatures.iter().any(|rdata| {
            rdata.len() > 17
                && rdata[2] == algorithm
                && u16::from_be_bytes([rdata[16], rdata[17]]) == key.key_tag
        });
        if kept {
            continue;
        }
        let fields = RrsigHeader {
            type_covered: rrset.rtype,
            algorithm,
            labels,
            original_ttl: rrset.ttl,
            expiration: jittered_expiration(
                expiration,
                plan.options.jitter,
                &rrset.owner,
                rrset.rtype,
                key.key_tag,
            ),
            inception: plan.options.inception,
            key_tag: key.key_tag,
            signer: plan.apex.clone(),
        };
        header.clear();
        fields.write(header);
        if let Some(rdata) = previous_signature(plan, rrset, header, key.key_tag) {
            rrset.push_signature(rdata);
            tally.reused += 1;
            continue;
        }
        let signed = SignedRrset {
            owner: &rrset.owner,
            class: rrset.class,
            rtype: rrset.rtype,
            rdatas: &rrset.rdatas,
        };
        write_signed_data(data, header, labels, rrset.ttl, &signed);
        let signature = if plan.options.deterministic {
            key.signer.sign_deterministic(data)
        } else {
            key.signer.sign(data)
        };
        let signature = signature.map_err(|source| SignError::Sign {
            owner: rrset.owner.clone(),
            rtype: rrset.rtype,
            key_tag: key.key_tag,
            source,
        })?;
        let mut rdata = BytesMut::with_capacity(header.len() + signature.len());
        rdata.extend_from_slice(header);
        rdata.extend_from_slice(&signature);
        rrset.push_signature(rdata.freeze());
        tally.signatures += 1;
    }
    tally.rrsets_signed = usize::from(tally.signatures > 0);
    Ok(tally)
}
