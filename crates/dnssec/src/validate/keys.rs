//! Checks of the apex DNSKEY, CDS and CDNSKEY RRsets and of DS at zone cuts.

use std::collections::{BTreeSet, HashMap};

use bytes::Bytes;
use keymaster_keys::{ds_rdata, flags, key_tag, DigestType, VerifyingKey, DNSKEY_PROTOCOL};
use keymaster_zone::{NodeKind, Rtype, Zone};

use super::signatures::GoodSignature;
use super::{finding, Findings, Problem};
use crate::rdata::{DnskeyFields, DsFields};

/// More keys than this with one key tag is reported; a few collisions
/// happen by chance and are tolerated, as Knot does.
const MAX_KEYS_PER_TAG: usize = 3;

/// CDS RDATA that asks the parent to remove the DS RRset (RFC 8078
/// section 4): key tag 0, algorithm 0, digest type 0, digest 0x00.
const CDS_DELETE: &[u8] = &[0, 0, 0, 0, 0];
/// CDNSKEY RDATA that asks the parent to remove the DS RRset: flags 0,
/// protocol 3, algorithm 0, public key 0x00.
const CDNSKEY_DELETE: &[u8] = &[0, 0, 3, 0, 0];

/// A DNSKEY of the apex RRset.
pub(super) struct ZoneKey {
    pub(super) rdata: Bytes,
    pub(super) fields: DnskeyFields,
    /// The public key parsed once for all the signatures it made.
    pub(super) verifier: VerifyingKey,
    pub(super) tag: u16,
}

/// The apex DNSKEY RRset, parsed.
pub(super) struct KeySet {
    pub(super) keys: Vec<ZoneKey>,
    /// Algorithms that must sign every authoritative RRset: those of the
    /// zone keys that are not revoked (RFC 4035 section 2.2).
    pub(super) algorithms: BTreeSet<u8>,
}

impl KeySet {
    /// Returns the indexes of the keys that may have made a signature with
    /// this tag and algorithm; usually one, more on a key-tag collision.
    pub(super) fn candidates(&self, tag: u16, algorithm: u8) -> Vec<usize> {
        let usable = |key: &ZoneKey| {
            key.tag == tag
                && key.fields.algorithm == algorithm
                && key.fields.protocol == DNSKEY_PROTOCOL
                && key.fields.flags & flags::ZONE != 0
        };
        (0..self.keys.len())
            .filter(|&index| usable(&self.keys[index]))
            .collect()
    }
}

/// Parses and checks the DNSKEY RRset at the apex.
pub(super) fn check_dnskeys(zone: &Zone, findings: &mut Findings) -> KeySet {
    let origin = zone.origin();
    let mut keys = Vec::new();
    let mut algorithms = BTreeSet::new();
    let rdatas = zone
        .rrset(origin, Rtype::DNSKEY)
        .map_or(&[][..], |rrset| &rrset.rdatas);
    for rdata in rdatas {
        let Some(fields) = DnskeyFields::parse(rdata) else {
            let problem = Problem::MalformedRdata {
                rtype: Rtype::DNSKEY,
            };
            findings.error(origin, Some(Rtype::DNSKEY), problem);
            continue;
        };
        let tag = key_tag(rdata);
        let mut report = |problem| {
            findings.push(
                true,
                finding(origin, Some(Rtype::DNSKEY), Some(tag), problem),
            );
        };
        if fields.protocol != DNSKEY_PROTOCOL {
            report(Problem::DnskeyProtocol {
                protocol: fields.protocol,
            });
        }
        if fields.flags & flags::ZONE == 0 {
            report(Problem::DnskeyNotZoneKey {
                flags: fields.flags,
            });
        } else if fields.protocol == DNSKEY_PROTOCOL && fields.flags & flags::REVOKE == 0 {
            algorithms.insert(fields.algorithm);
        }
        keys.push(ZoneKey {
            rdata: rdata.clone(),
            verifier: VerifyingKey::new(fields.algorithm, &fields.public_key),
            fields,
            tag,
        });
    }

    let mut per_tag: HashMap<u16, usize> = HashMap::new();
    for key in &keys {
        *per_tag.entry(key.tag).or_default() += 1;
    }
    let mut crowded: Vec<(u16, usize)> = per_tag
        .into_iter()
        .filter(|&(_, count)| count > MAX_KEYS_PER_TAG)
        .collect();
    crowded.sort_unstable();
    for (tag, count) in crowded {
        let problem = Problem::KeyTagCollision { count };
        findings.push(
            true,
            finding(origin, Some(Rtype::DNSKEY), Some(tag), problem),
        );
    }
    KeySet { keys, algorithms }
}

/// Checks that a SEP key that is not revoked signs the DNSKEY RRset.
pub(super) fn check_dnskey_signed(
    zone: &Zone,
    keys: &KeySet,
    good: &[GoodSignature],
    findings: &mut Findings,
) {
    let by_sep = good.iter().any(|signature| {
        let key = &keys.keys[signature.key];
        signature.covered == Rtype::DNSKEY
            && key.fields.flags & flags::SEP != 0
            && key.fields.flags & flags::REVOKE == 0
    });
    if !by_sep {
        findings.error(zone.origin(), Some(Rtype::DNSKEY), Problem::NoSepSignature);
    }
}

/// Checks DS algorithm, digest type and digest length at every zone cut.
pub(super) fn check_ds(zone: &Zone, findings: &mut Findings) {
    for (node, kind) in zone.walk() {
        if kind != NodeKind::Delegation {
            continue;
        }
        let Some(ds) = node.rrset(Rtype::DS) else {
            continue;
        };
        for rdata in &ds.rdatas {
            let Some(fields) = DsFields::parse(rdata) else {
                let problem = Problem::MalformedRdata { rtype: Rtype::DS };
                findings.error(&node.name, Some(Rtype::DS), problem);
                continue;
            };
            for problem in ds_problems(&fields) {
                let found = finding(&node.name, Some(Rtype::DS), Some(fields.key_tag), problem);
                findings.push(true, found);
            }
        }
    }
}

/// Returns what is wrong with the parameters of one DS record.
fn ds_problems(ds: &DsFields) -> Vec<Problem> {
    let mut problems = Vec::new();
    // Assigned DNSSEC algorithms that may appear in DS: the IANA registry
    // minus 0 (reserved) and 2 (Diffie-Hellman, not a signing algorithm).
    let known_algorithm = matches!(ds.algorithm, 1 | 3 | 5..=8 | 10 | 12..=17 | 252..=254);
    if !known_algorithm {
        problems.push(Problem::DsAlgorithm {
            algorithm: ds.algorithm,
        });
    }
    // Digest types of the IANA registry: 1 SHA-1, 2 SHA-256, 3 GOST R
    // 34.11-94, 4 SHA-384, 5 GOST R 34.11-2012, 6 SM3.
    let expected_len = match ds.digest_type {
        1 => Some(20),
        2 | 3 | 5 | 6 => Some(32),
        4 => Some(48),
        _ => None,
    };
    match expected_len {
        None => problems.push(Problem::DsDigestType {
            digest_type: ds.digest_type,
        }),
        Some(expected) if expected != ds.digest.len() => problems.push(Problem::DsDigestLength {
            digest_type: ds.digest_type,
            expected,
            found: ds.digest.len(),
        }),
        Some(_) => {}
    }
    problems
}

/// Checks CDS and CDNSKEY at the apex (RFC 7344 section 4, RFC 8078
/// section 4).
pub(super) fn check_cds(
    zone: &Zone,
    keys: &KeySet,
    good: &[GoodSignature],
    findings: &mut Findings,
) {
    let origin = zone.origin();
    let empty = Vec::new();
    let cds = zone
        .rrset(origin, Rtype::CDS)
        .map_or(&empty, |rrset| &rrset.rdatas);
    let cdnskey = zone
        .rrset(origin, Rtype::CDNSKEY)
        .map_or(&empty, |rrset| &rrset.rdatas);
    if cds.is_empty() && cdnskey.is_empty() {
        return;
    }
    let mut report = |rtype, problem| findings.error(origin, Some(rtype), problem);

    // Delete requests: algorithm 0 asks for removal and allows one form only.
    let cds_delete = check_delete(cds, 2, CDS_DELETE, "0 0 0 00", Rtype::CDS, &mut report);
    let cdnskey_delete = check_delete(
        cdnskey,
        3,
        CDNSKEY_DELETE,
        "0 3 0 AA==",
        Rtype::CDNSKEY,
        &mut report,
    );
    if cds_delete || cdnskey_delete {
        if cds_delete && !cdnskey.is_empty() && !cdnskey_delete {
            report(Rtype::CDNSKEY, Problem::CdnskeyMatchesNoCds);
        }
        if cdnskey_delete && !cds.is_empty() && !cds_delete {
            report(Rtype::CDS, Problem::CdsMatchesNoCdnskey);
        }
        return;
    }

    if cdnskey.is_empty() {
        report(Rtype::CDS, Problem::CdsWithoutCdnskey);
    }
    if cds.is_empty() {
        report(Rtype::CDNSKEY, Problem::CdnskeyWithoutCds);
    }

    // Each CDS must be the DS of a DNSKEY, and of a CDNSKEY when there are any.
    for rdata in cds {
        let Some(fields) = DsFields::parse(rdata) else {
            report(Rtype::CDS, Problem::MalformedRdata { rtype: Rtype::CDS });
            continue;
        };
        let matches = |dnskey: &Bytes| cds_matches(zone, dnskey, &fields, rdata);
        if !keys.keys.iter().any(|key| matches(&key.rdata)) {
            report(Rtype::CDS, Problem::CdsMatchesNoDnskey);
        }
        if !cdnskey.is_empty() && !cdnskey.iter().any(matches) {
            report(Rtype::CDS, Problem::CdsMatchesNoCdnskey);
        }
    }
    for rdata in cdnskey {
        if !keys.keys.iter().any(|key| key.rdata == *rdata) {
            report(Rtype::CDNSKEY, Problem::CdnskeyMatchesNoDnskey);
        }
        let has_cds = cds.iter().any(|cds_rdata| {
            DsFields::parse(cds_rdata)
                .is_some_and(|fields| cds_matches(zone, rdata, &fields, cds_rdata))
        });
        if !cds.is_empty() && !has_cds {
            report(Rtype::CDNSKEY, Problem::CdnskeyMatchesNoCds);
        }
    }

    // The RRsets must be signed by a key they name.
    let signers = |covered: Rtype| good.iter().filter(move |s| s.covered == covered);
    let cds_named = signers(Rtype::CDS).any(|signature| {
        let key = &keys.keys[signature.key];
        cds.iter().any(|rdata| {
            DsFields::parse(rdata).is_some_and(|fields| {
                fields.key_tag == key.tag && fields.algorithm == key.fields.algorithm
            })
        })
    });
    // A warning only: during a KSK rollover the CDS names the incoming key
    // while the outgoing one still signs, and the parent checks against
    // its current DS RRset, which the zone cannot see (RFC 7344 section 4.1).
    if !cds.is_empty() && !cds_named {
        let found = finding(origin, Some(Rtype::CDS), None, Problem::NotSignedByNamedKey);
        findings.push(false, found);
    }
    let cdnskey_named =
        signers(Rtype::CDNSKEY).any(|signature| cdnskey.contains(&keys.keys[signature.key].rdata));
    if !cdnskey.is_empty() && !cdnskey_named {
        let problem = Problem::NotSignedByNamedKey;
        findings.push(false, finding(origin, Some(Rtype::CDNSKEY), None, problem));
    }
}

/// Checks the delete form in a CDS or CDNSKEY RRset and returns true if the
/// RRset is a delete request. `algorithm_at` is the offset of the algorithm
/// field, whose value 0 marks a delete request.
fn check_delete(
    rdatas: &[Bytes],
    algorithm_at: usize,
    form: &[u8],
    text: &'static str,
    rtype: Rtype,
    report: &mut impl FnMut(Rtype, Problem),
) -> bool {
    let deletes: Vec<&Bytes> = rdatas
        .iter()
        .filter(|rdata| rdata.get(algorithm_at) == Some(&0))
        .collect();
    if deletes.is_empty() {
        return false;
    }
    if deletes.iter().any(|rdata| &rdata[..] != form) {
        report(rtype, Problem::InvalidDelete { expected: text });
    }
    if rdatas.len() > deletes.len() {
        report(rtype, Problem::DeleteMixed);
    }
    true
}

/// Returns true if `ds` (parsed from `ds_wire`) is a digest of `dnskey`.
fn cds_matches(zone: &Zone, dnskey: &Bytes, ds: &DsFields, ds_wire: &Bytes) -> bool {
    if dnskey.get(3) != Some(&ds.algorithm) || key_tag(dnskey) != ds.key_tag {
        return false;
    }
    let Some(digest_type) = DigestType::from_u8(ds.digest_type) else {
        return false;
    };
    ds_rdata(zone.origin(), dnskey, digest_type) == *ds_wire
}
