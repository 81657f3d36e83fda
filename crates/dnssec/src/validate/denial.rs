//! Checks of the NSEC chain (RFC 4034 section 4) or the NSEC3 chain (RFC
//! 5155 sections 7.1 and 8).

use std::collections::{HashMap, HashSet};

use bytes::Bytes;

use data_encoding::BASE32HEX_NOPAD;
use keymaster_zone::{Name, Rtype, Zone};
use rayon::prelude::*;

use super::{Findings, Problem, VerifyStats};
use crate::nsec::nsec_names;
use crate::nsec3::{covered_names, hash_label, nsec3_hash, NSEC3_HASH_LEN};
use crate::rdata::{Nsec3Fields, Nsec3Params, NsecFields, TypeBitmap, NSEC3_FLAG_OPT_OUT};

type Hash = [u8; NSEC3_HASH_LEN];

/// Checks whichever chain the zone uses.
pub(super) fn check(zone: &Zone, findings: &mut Findings, stats: &mut VerifyStats) {
    let count = |rtype: Rtype| -> usize {
        let rrsets = zone.nodes().flat_map(|node| node.rrset(rtype));
        rrsets.map(|rrset| rrset.rdatas.len()).sum()
    };
    stats.nsec = count(Rtype::NSEC);
    stats.nsec3 = count(Rtype::NSEC3);
    let has_param = zone.rrset(zone.origin(), Rtype::NSEC3PARAM).is_some();
    if stats.nsec > 0 && (stats.nsec3 > 0 || has_param) {
        findings.error(zone.origin(), None, Problem::MixedDenial);
    }
    if stats.nsec3 > 0 || has_param {
        check_nsec3(zone, findings);
    } else {
        check_nsec(zone, findings);
    }
}

fn check_nsec(zone: &Zone, findings: &mut Findings) {
    let expected = nsec_names(zone);
    let covered: HashSet<&Name> = expected.iter().map(|(name, _)| name).collect();
    for (index, (name, types)) in expected.iter().enumerate() {
        let Some(nsec) = zone
            .rrset(name, Rtype::NSEC)
            .filter(|r| !r.rdatas.is_empty())
        else {
            findings.error(name, Some(Rtype::NSEC), Problem::MissingNsec);
            continue;
        };
        if nsec.rdatas.len() > 1 {
            let count = nsec.rdatas.len();
            findings.error(name, Some(Rtype::NSEC), Problem::MultipleNsec { count });
        }
        let Some(fields) = NsecFields::parse(&nsec.rdatas[0]) else {
            let problem = Problem::MalformedRdata { rtype: Rtype::NSEC };
            findings.error(name, Some(Rtype::NSEC), problem);
            continue;
        };
        let next = expected
            .get(index + 1)
            .map_or(zone.origin(), |(next, _)| next);
        if &fields.next != next {
            let problem = Problem::NsecNext {
                expected: next.clone(),
                found: fields.next.clone(),
            };
            findings.error(name, Some(Rtype::NSEC), problem);
        }
        check_bitmap(name, Rtype::NSEC, types, &fields.types, findings);
    }
    for node in zone.nodes() {
        if node.has(Rtype::NSEC) && !covered.contains(&node.name) {
            findings.error(&node.name, Some(Rtype::NSEC), Problem::NsecNonAuthoritative);
        }
    }
}

fn check_bitmap(
    owner: &Name,
    rtype: Rtype,
    expected: &TypeBitmap,
    found: &TypeBitmap,
    findings: &mut Findings,
) {
    if expected != found {
        let problem = Problem::Bitmap {
            expected: expected.to_string(),
            found: found.to_string(),
        };
        findings.error(owner, Some(rtype), problem);
    }
}

/// One NSEC3 record of the chain. The RDATA is parsed again where it is
/// needed, so that a large chain is not held parsed.
struct Link<'a> {
    hash: Hash,
    owner: &'a Name,
    rdata: &'a Bytes,
    opt_out: bool,
}

impl Link<'_> {
    fn fields(&self) -> Option<Nsec3Fields> {
        Nsec3Fields::parse(self.rdata)
    }
}

/// Returns the link for `hash` in a chain sorted by hash.
fn find<'c, 'a>(chain: &'c [Link<'a>], hash: &Hash) -> Result<&'c Link<'a>, usize> {
    chain
        .binary_search_by(|link| link.hash.cmp(hash))
        .map(|index| &chain[index])
}

fn check_nsec3(zone: &Zone, findings: &mut Findings) {
    let apex = zone.origin();
    let Some(params) = check_nsec3param(zone, findings) else {
        return;
    };

    // Collect the chain: records with the published parameters, by hash.
    let mut chain: Vec<Link<'_>> = Vec::new();
    for node in zone.nodes() {
        let Some(rrset) = node.rrset(Rtype::NSEC3) else {
            continue;
        };
        let owner = &node.name;
        let Some(hash) = owner_hash(owner, apex) else {
            let problem = Problem::Nsec3Owner {
                owner: owner.clone(),
            };
            findings.error(owner, Some(Rtype::NSEC3), problem);
            continue;
        };
        for rdata in &rrset.rdatas {
            let Some(fields) = Nsec3Fields::parse(rdata) else {
                let problem = Problem::MalformedRdata {
                    rtype: Rtype::NSEC3,
                };
                findings.error(owner, Some(Rtype::NSEC3), problem);
                continue;
            };
            if fields.flags & !NSEC3_FLAG_OPT_OUT != 0 {
                let problem = Problem::Nsec3Flags {
                    flags: fields.flags,
                };
                findings.error(owner, Some(Rtype::NSEC3), problem);
            }
            let same = fields.hash_algorithm == params.hash_algorithm
                && fields.iterations == params.iterations
                && fields.salt == params.salt;
            if !same {
                findings.error(owner, Some(Rtype::NSEC3), Problem::Nsec3Params);
                continue;
            }
            chain.push(Link {
                hash,
                owner,
                rdata,
                opt_out: fields.flags & NSEC3_FLAG_OPT_OUT != 0,
            });
        }
    }
    if chain.is_empty() {
        findings.error(apex, Some(Rtype::NSEC3PARAM), Problem::Nsec3ChainNotFound);
        return;
    }
    // One record per hash; of two at one owner the later counts.
    chain.sort_by_key(|link| link.hash);
    chain.reverse();
    chain.dedup_by_key(|link| link.hash);
    chain.reverse();
    check_nsec3_links(&chain, findings);
    check_nsec3_coverage(zone, &params, &chain, findings);
}

/// Checks the NSEC3PARAM RRset and returns the parameters to check the
/// chain against: those of the NSEC3PARAM record, or of the first NSEC3
/// record when the apex has none.
fn check_nsec3param(zone: &Zone, findings: &mut Findings) -> Option<Nsec3Params> {
    let apex = zone.origin();
    let rtype = Some(Rtype::NSEC3PARAM);
    let Some(rrset) = zone
        .rrset(apex, Rtype::NSEC3PARAM)
        .filter(|r| !r.rdatas.is_empty())
    else {
        findings.error(apex, rtype, Problem::MissingNsec3Param);
        let first = zone.nodes().find_map(|node| node.rrset(Rtype::NSEC3))?;
        let fields = Nsec3Fields::parse(first.rdatas.first()?)?;
        return Some(Nsec3Params {
            hash_algorithm: fields.hash_algorithm,
            flags: 0,
            iterations: fields.iterations,
            salt: fields.salt,
        });
    };
    if rrset.rdatas.len() > 1 {
        let count = rrset.rdatas.len();
        findings.error(apex, rtype, Problem::MultipleNsec3Param { count });
    }
    let Some(params) = Nsec3Params::parse(&rrset.rdatas[0]) else {
        findings.error(
            apex,
            rtype,
            Problem::MalformedRdata {
                rtype: Rtype::NSEC3PARAM,
            },
        );
        return None;
    };
    if params.flags != 0 {
        findings.error(
            apex,
            rtype,
            Problem::Nsec3ParamFlags {
                flags: params.flags,
            },
        );
    }
    if params.hash_algorithm != crate::rdata::NSEC3_SHA1 {
        let algorithm = params.hash_algorithm;
        findings.error(apex, rtype, Problem::Nsec3HashAlgorithm { algorithm });
        return None;
    }
    Some(params)
}

/// Returns the hash an NSEC3 owner name encodes, if it is one base32hex
/// label of the right length directly below the apex.
fn owner_hash(owner: &Name, apex: &Name) -> Option<Hash> {
    if owner.parent().as_ref() != Some(apex) {
        return None;
    }
    let label = owner.labels().next()?.to_ascii_uppercase();
    let decoded = BASE32HEX_NOPAD.decode(&label).ok()?;
    decoded.try_into().ok()
}

/// Checks that each record names the next hash in order, the last the first.
fn check_nsec3_links(chain: &[Link<'_>], findings: &mut Findings) {
    for (index, link) in chain.iter().enumerate() {
        let expected = &chain[(index + 1) % chain.len()].hash;
        let Some(fields) = link.fields() else {
            continue;
        };
        if fields.next_hash.as_ref() != expected.as_slice() {
            let problem = Problem::Nsec3Next {
                expected: hash_label(expected),
                found: hash_label(&fields.next_hash),
            };
            findings.error(link.owner, Some(Rtype::NSEC3), problem);
        }
    }
}

/// Checks that every name that needs an NSEC3 record has one with the
/// right bitmap, that names left out are covered by an opt-out record, and
/// that no record matches no name.
fn check_nsec3_coverage(
    zone: &Zone,
    params: &Nsec3Params,
    chain: &[Link<'_>],
    findings: &mut Findings,
) {
    let mut ignored = Vec::new();
    let all = covered_names(zone, false, &mut ignored);
    let hashes: Vec<Hash> = all
        .par_iter()
        .map(|entry| nsec3_hash(&entry.name, &params.salt, params.iterations))
        .collect();

    let mut required: Option<HashSet<Name>> = None;
    let mut present: Vec<&Name> = Vec::new();
    let mut left_out: HashMap<&Name, &Hash> = HashMap::new();
    for (hash, entry) in hashes.iter().zip(&all) {
        let name = &entry.name;
        match find(chain, hash) {
            Ok(link) => {
                present.push(name);
                if let Some(fields) = link.fields() {
                    check_bitmap(name, Rtype::NSEC3, &entry.types, &fields.types, findings);
                }
            }
            Err(position) => {
                // The names that opt-out may leave out are worked out only
                // when a name lacks its record, which in a valid zone
                // happens only with opt-out.
                let required = required.get_or_insert_with(|| {
                    let names = covered_names(zone, true, &mut ignored).into_iter();
                    names.map(|entry| entry.name).collect()
                });
                if required.contains(name) {
                    let problem = Problem::MissingNsec3 {
                        hash: hash_label(hash),
                    };
                    findings.error(name, Some(Rtype::NSEC3), problem);
                    continue;
                }
                left_out.insert(name, hash);
                // The record before the hash covers it; before the first
                // hash, the last record wraps around.
                let covering = position
                    .checked_sub(1)
                    .map_or(chain.last(), |i| chain.get(i));
                let opted_out = covering.is_some_and(|link| link.opt_out);
                if !opted_out {
                    findings.error(name, Some(Rtype::NSEC3), Problem::NotOptedOut);
                }
            }
        }
    }

    // An empty non-terminal above a name that has an NSEC3 record needs one
    // too, or the closest-encloser proof for that name fails (RFC 5155
    // section 7.2.1), even when opt-out would allow leaving it out.
    for name in present {
        let mut ancestor = name.parent();
        while let Some(current) = ancestor.filter(|current| current.is_below(zone.origin())) {
            if let Some(hash) = left_out.remove(&current) {
                let problem = Problem::MissingNsec3 {
                    hash: hash_label(hash),
                };
                findings.error(&current, Some(Rtype::NSEC3), problem);
            }
            ancestor = current.parent();
        }
    }

    let known: HashSet<&Hash> = hashes.iter().collect();
    for link in chain {
        if !known.contains(&link.hash) {
            findings.error(link.owner, Some(Rtype::NSEC3), Problem::Nsec3Orphan);
        }
    }
}
