//! Checks of the RRSIG records of every RRset, verified in parallel.

use std::collections::hash_map::RandomState;
use std::collections::{BTreeSet, HashMap};
use std::hash::BuildHasher;

use bytes::Bytes;
use keymaster_keys::VerifyError;
use keymaster_zone::{Name, Node, NodeKind, Rrset, Rtype};
use rayon::prelude::*;

use super::keys::KeySet;
use super::{
    finding, Finding, Findings, Problem, SignatureCheck, VerifyStats, SAMPLE_ONE_IN,
    SAMPLE_PER_CLASS,
};
use crate::nsec::signing_kind;
use crate::rdata::Rrsig;
use crate::rrsig::{rrsig_labels, write_rrsig_header, write_signed_data, SignedRrset};
use crate::sign::is_authoritative;

/// A signature over an apex RRset that verified, or that could not be
/// checked but is otherwise in order.
pub(super) struct GoodSignature {
    pub(super) covered: Rtype,
    /// Index of the signing key in [`KeySet::keys`].
    pub(super) key: usize,
}

/// One RRSIG to check.
struct Task<'a> {
    rrset_index: usize,
    rrset: &'a Rrset,
    rdata: &'a Bytes,
    /// Verify the signature itself, not only its fields.
    verify: bool,
}

/// The result of checking one RRSIG.
struct Checked {
    rrset_index: usize,
    algorithm: Option<u8>,
    /// The key whose signature verified, could not be checked, or was left
    /// out of the sample with its fields in order.
    good_key: Option<usize>,
    verified: bool,
    findings: Vec<(bool, Finding)>,
}

/// The properties that decide how a signature's signed data is built.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct SampleClass {
    rtype: Rtype,
    algorithm: u8,
    key_tag: u16,
    labels: u8,
    wildcard: bool,
    upper_case: bool,
    /// One, two, or three and more records.
    records: u8,
}

/// Chooses the signatures whose cryptography is checked.
struct Sampler {
    mode: SignatureCheck,
    apex: Name,
    seen: HashMap<SampleClass, u32>,
    random: RandomState,
    count: u64,
}

impl Sampler {
    fn new(mode: SignatureCheck, apex: Name) -> Self {
        Self {
            mode,
            apex,
            seen: HashMap::new(),
            random: RandomState::new(),
            count: 0,
        }
    }

    /// Returns true if the signature `rdata` over `rrset` is to be verified.
    fn chooses(&mut self, rrset: &Rrset, rdata: &[u8]) -> bool {
        if self.mode == SignatureCheck::All || rrset.owner == self.apex || rdata.len() < 18 {
            return true;
        }
        let owner = rrset.owner.as_wire();
        let class = SampleClass {
            rtype: rrset.rtype,
            algorithm: rdata[2],
            key_tag: u16::from_be_bytes([rdata[16], rdata[17]]),
            labels: rdata[3],
            wildcard: rrset.owner.is_wildcard(),
            // Length octets stay below 64, so only letters match.
            upper_case: owner.iter().any(u8::is_ascii_uppercase),
            records: rrset.rdatas.len().min(3) as u8,
        };
        let seen = self.seen.entry(class).or_insert(0);
        *seen = seen.saturating_add(1);
        if *seen <= SAMPLE_PER_CLASS {
            return true;
        }
        self.count += 1;
        self.random
            .hash_one(self.count)
            .is_multiple_of(SAMPLE_ONE_IN)
    }
}

/// The signature checks of one validation run, fed a batch of nodes at a
/// time in canonical order.
pub(super) struct SignatureChecks {
    sampler: Sampler,
    /// Good signatures over apex RRsets, for the key checks.
    good: Vec<GoodSignature>,
    /// The algorithms every RRset must be signed with, known once the apex
    /// and its DNSKEY RRset have been checked.
    required: Option<BTreeSet<u8>>,
}

impl SignatureChecks {
    pub(super) fn new(mode: SignatureCheck, apex: &Name) -> Self {
        Self {
            sampler: Sampler::new(mode, apex.clone()),
            good: Vec::new(),
            required: None,
        }
    }

    /// Returns the good signatures over apex RRsets seen so far.
    pub(super) fn good(&self) -> &[GoodSignature] {
        &self.good
    }

    /// Checks every signature of `nodes` and that every authoritative RRset
    /// there is signed by each algorithm of the key set.
    pub(super) fn check(
        &mut self,
        nodes: &[(&Node, NodeKind)],
        keys: &KeySet,
        now: u32,
        findings: &mut Findings,
        stats: &mut VerifyStats,
    ) {
        // The apex, which sorts first, decides which algorithms the other
        // RRsets need, so it is checked on its own.
        let apex = &self.sampler.apex;
        let split = match self.required {
            Some(_) => 0,
            None => nodes
                .iter()
                .position(|(node, _)| &node.name == apex)
                .map_or(0, |index| index + 1),
        };
        if split > 0 {
            self.check_batch(&nodes[..split], keys, now, findings, stats);
            self.required = Some(required_algorithms(keys, &self.good));
        }
        self.check_batch(&nodes[split..], keys, now, findings, stats);
    }

    fn check_batch(
        &mut self,
        nodes: &[(&Node, NodeKind)],
        keys: &KeySet,
        now: u32,
        findings: &mut Findings,
        stats: &mut VerifyStats,
    ) {
        // Gather the authoritative RRsets and their signatures; report
        // signatures that do not belong anywhere.
        let mut rrsets: Vec<&Rrset> = Vec::new();
        let mut tasks: Vec<Task<'_>> = Vec::new();
        for &(node, kind) in nodes {
            let kind = signing_kind(node, kind);
            for rrset in &node.rrsets {
                stats.signatures += rrset.signatures.len();
                let owner = &node.name;
                if rrset.rtype == Rtype::RRSIG {
                    for _ in &rrset.signatures {
                        findings.error(owner, Some(Rtype::RRSIG), Problem::SignatureOverRrsig);
                    }
                    continue;
                }
                if rrset.rdatas.is_empty() {
                    findings.error(owner, Some(rrset.rtype), Problem::SignatureWithoutRrset);
                    continue;
                }
                if !is_authoritative(kind, rrset.rtype) {
                    if !rrset.signatures.is_empty() {
                        let problem = Problem::SignedNonAuthoritative;
                        findings.error(owner, Some(rrset.rtype), problem);
                    }
                    continue;
                }
                let rrset_index = rrsets.len();
                rrsets.push(rrset);
                for rdata in &rrset.signatures {
                    let verify = self.sampler.chooses(rrset, rdata);
                    stats.not_sampled += usize::from(!verify);
                    tasks.push(Task {
                        rrset_index,
                        rrset,
                        rdata,
                        verify,
                    });
                }
            }
        }
        stats.rrsets += rrsets.len();

        // Verify in parallel, one pair of buffers per worker.
        let apex = &self.sampler.apex;
        let checked: Vec<Checked> = tasks
            .par_iter()
            .map_init(
                || (Vec::with_capacity(64), Vec::with_capacity(1024)),
                |(header, data), task| check_one(task, apex, keys, now, header, data),
            )
            .collect();

        // Each RRset needs a signature for every algorithm in use; one that
        // failed to verify is reported on its own, not as missing too.
        let mut present: Vec<(usize, u8)> = Vec::with_capacity(checked.len());
        for result in checked {
            stats.verified += usize::from(result.verified);
            if let Some(algorithm) = result.algorithm {
                present.push((result.rrset_index, algorithm));
                if let Some(key) = result.good_key {
                    let rrset = rrsets[result.rrset_index];
                    if &rrset.owner == apex {
                        self.good.push(GoodSignature {
                            covered: rrset.rtype,
                            key,
                        });
                    }
                }
            }
            for (is_error, found) in result.findings {
                findings.push(is_error, found);
            }
        }
        present.sort_unstable();
        let computed;
        let required = match &self.required {
            Some(required) => required,
            None => {
                computed = required_algorithms(keys, &self.good);
                &computed
            }
        };
        let mut cursor = 0;
        for (index, rrset) in rrsets.iter().enumerate() {
            let first = cursor;
            while present.get(cursor).is_some_and(|&(at, _)| at == index) {
                cursor += 1;
            }
            let signed_by = &present[first..cursor];
            for &algorithm in required {
                if !signed_by.iter().any(|&(_, found)| found == algorithm) {
                    let problem = Problem::MissingSignature { algorithm };
                    findings.error(&rrset.owner, Some(rrset.rtype), problem);
                }
            }
        }
    }
}

/// Checks one RRSIG: its fields, its key, its window and its signature.
fn check_one(
    task: &Task<'_>,
    apex: &Name,
    keys: &KeySet,
    now: u32,
    header: &mut Vec<u8>,
    data: &mut Vec<u8>,
) -> Checked {
    let rrset = task.rrset;
    let owner = &rrset.owner;
    let mut result = Checked {
        rrset_index: task.rrset_index,
        algorithm: None,
        good_key: None,
        verified: false,
        findings: Vec::new(),
    };
    let Some(rrsig) = Rrsig::parse(task.rdata) else {
        let problem = Problem::MalformedRdata {
            rtype: Rtype::RRSIG,
        };
        result
            .findings
            .push((true, finding(owner, Some(rrset.rtype), None, problem)));
        return result;
    };
    result.algorithm = Some(rrsig.algorithm);
    let tag = Some(rrsig.key_tag);
    let mut report = |is_error, problem| {
        let found = finding(owner, Some(rrset.rtype), tag, problem);
        result.findings.push((is_error, found));
    };

    // Fields the signer chose.
    let mut usable = true;
    if &rrsig.signer != apex {
        report(
            true,
            Problem::WrongSigner {
                signer: rrsig.signer.clone(),
            },
        );
        usable = false;
    }
    if rrsig.original_ttl != rrset.ttl {
        let (original_ttl, ttl) = (rrsig.original_ttl, rrset.ttl);
        report(true, Problem::OriginalTtl { original_ttl, ttl });
    }
    if rrsig.labels != rrsig_labels(owner) {
        let owner_labels = owner.label_count();
        report(
            true,
            Problem::Labels {
                labels: rrsig.labels,
                owner_labels,
            },
        );
        usable = false;
    }
    let candidates = keys.candidates(rrsig.key_tag, rrsig.algorithm);
    if candidates.is_empty() {
        report(
            true,
            Problem::UnknownKey {
                algorithm: rrsig.algorithm,
            },
        );
        usable = false;
    }
    // Serial number arithmetic (RFC 4034 section 3.1.5).
    if (rrsig.expiration.wrapping_sub(now) as i32) < 0 {
        report(
            true,
            Problem::Expired {
                expiration: rrsig.expiration,
                now,
            },
        );
        usable = false;
    }
    if (now.wrapping_sub(rrsig.inception) as i32) < 0 {
        report(
            true,
            Problem::NotYetValid {
                inception: rrsig.inception,
                now,
            },
        );
        usable = false;
    }
    if !usable {
        return result;
    }
    if !task.verify {
        result.good_key = candidates.first().copied();
        return result;
    }

    // The signature itself, against each key with this tag and algorithm.
    write_rrsig_header(header, task.rdata, &rrsig);
    let signed = SignedRrset {
        owner,
        class: rrset.class,
        rtype: rrset.rtype,
        rdatas: &rrset.rdatas,
    };
    write_signed_data(data, header, rrsig.labels, rrsig.original_ttl, &signed);
    let mut failure: Option<VerifyError> = None;
    for &index in &candidates {
        match keys.keys[index].verifier.verify(data, &rrsig.signature) {
            Ok(()) => {
                result.verified = true;
                result.good_key = Some(index);
                return result;
            }
            Err(error @ VerifyError::BadSignature { .. }) => failure = Some(error),
            Err(error) => {
                result.good_key = Some(index);
                failure.get_or_insert(error);
            }
        }
    }
    let Some(error) = failure else {
        return result;
    };
    if result.good_key.is_some() {
        let found = finding(
            owner,
            Some(rrset.rtype),
            tag,
            Problem::Unverifiable { source: error },
        );
        result.findings.push((false, found));
    } else {
        let found = finding(
            owner,
            Some(rrset.rtype),
            tag,
            Problem::BadSignature { source: error },
        );
        result.findings.push((true, found));
    }
    result
}

/// Returns the algorithms every RRset must be signed with: those of the
/// keys that are not revoked and sign the DNSKEY RRset, or of all zone keys
/// when none does (the missing DNSKEY signature is reported on its own).
fn required_algorithms(keys: &KeySet, good: &[GoodSignature]) -> BTreeSet<u8> {
    let signing_dnskey = good
        .iter()
        .filter(|signature| signature.covered == Rtype::DNSKEY);
    let fields = signing_dnskey.map(|signature| &keys.keys[signature.key].fields);
    let active = fields.filter(|key| key.flags & keymaster_keys::flags::REVOKE == 0);
    let algorithms: BTreeSet<u8> = active.map(|key| key.algorithm).collect();
    if algorithms.is_empty() {
        keys.algorithms.clone()
    } else {
        algorithms
    }
}
