//! Checks of the RRSIG records of every RRset, verified in parallel.

use std::collections::BTreeSet;

use bytes::Bytes;
use keymaster_keys::VerifyError;
use keymaster_zone::{Name, Rrset, Rtype, Zone};
use rayon::prelude::*;

use super::keys::KeySet;
use super::{finding, Finding, Findings, Problem, VerifyStats};
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
}

/// The result of checking one RRSIG.
struct Checked {
    rrset_index: usize,
    algorithm: Option<u8>,
    /// The key whose signature verified or could not be checked.
    good_key: Option<usize>,
    verified: bool,
    findings: Vec<(bool, Finding)>,
}

/// Checks every signature and that every authoritative RRset is signed by
/// each algorithm of the key set. Returns the good signatures over apex
/// RRsets, for the key checks.
pub(super) fn check(
    zone: &Zone,
    keys: &KeySet,
    now: u32,
    findings: &mut Findings,
    stats: &mut VerifyStats,
) -> Vec<GoodSignature> {
    // Gather the authoritative RRsets and their signatures; report
    // signatures that do not belong anywhere.
    let mut rrsets: Vec<&Rrset> = Vec::new();
    let mut tasks: Vec<Task<'_>> = Vec::new();
    for (node, kind) in zone.walk() {
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
            let signatures = rrset.signatures.iter();
            tasks.extend(signatures.map(|rdata| Task {
                rrset_index,
                rrset,
                rdata,
            }));
        }
    }
    stats.rrsets = rrsets.len();

    // Verify in parallel, one pair of buffers per worker.
    let checked: Vec<Checked> = tasks
        .par_iter()
        .map_init(
            || (Vec::with_capacity(64), Vec::with_capacity(1024)),
            |(header, data), task| check_one(task, zone.origin(), keys, now, header, data),
        )
        .collect();

    // Each RRset needs a usable signature for every algorithm in use.
    let mut covered: Vec<BTreeSet<u8>> = vec![BTreeSet::new(); rrsets.len()];
    let mut attempted: Vec<BTreeSet<u8>> = vec![BTreeSet::new(); rrsets.len()];
    let mut good = Vec::new();
    for result in checked {
        stats.verified += usize::from(result.verified);
        if let Some(algorithm) = result.algorithm {
            attempted[result.rrset_index].insert(algorithm);
            if let Some(key) = result.good_key {
                covered[result.rrset_index].insert(algorithm);
                let rrset = rrsets[result.rrset_index];
                if &rrset.owner == zone.origin() {
                    good.push(GoodSignature {
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
    let required = required_algorithms(keys, &good);
    for (index, rrset) in rrsets.iter().enumerate() {
        for &algorithm in &required {
            if !covered[index].contains(&algorithm) && !attempted[index].contains(&algorithm) {
                let problem = Problem::MissingSignature { algorithm };
                findings.error(&rrset.owner, Some(rrset.rtype), problem);
            }
        }
    }
    good
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
        let key = &keys.keys[index].fields;
        match keymaster_keys::verify(rrsig.algorithm, &key.public_key, data, &rrsig.signature) {
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
