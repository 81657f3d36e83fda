//! Zone content rules that hold with or without DNSSEC.

use keymaster_zone::{Name, Node, NodeKind, Rtype, Zone};

use super::{Findings, Problem};
use crate::nsec::is_nsec3_only;

/// Types allowed next to a CNAME (RFC 2181 section 10.1, RFC 4035
/// section 2.5).
const BESIDE_CNAME: [Rtype; 3] = [Rtype::RRSIG, Rtype::NSEC, Rtype::CNAME];

/// Runs the structural checks.
pub(super) fn check(zone: &Zone, findings: &mut Findings) {
    check_apex(zone, findings);
    let mut dname: Option<Name> = None;
    for (node, kind) in zone.walk() {
        if let Some(top) = &dname {
            if node.name.is_below(top) {
                // NSEC3 records sit below the apex even when it owns a DNAME.
                if !is_nsec3_only(node) {
                    let problem = Problem::DataBelowDname { dname: top.clone() };
                    findings.error(&node.name, None, problem);
                }
                continue;
            }
            dname = None;
        }
        check_node(node, kind, zone, findings);
        if node.has(Rtype::DNAME) && kind != NodeKind::Occluded {
            dname = Some(node.name.clone());
        }
    }
}

fn check_apex(zone: &Zone, findings: &mut Findings) {
    let origin = zone.origin();
    match zone.soa().map(|soa| soa.rdatas.len()) {
        None | Some(0) => findings.error(origin, Some(Rtype::SOA), Problem::MissingSoa),
        Some(1) => {}
        Some(count) => findings.error(origin, Some(Rtype::SOA), Problem::MultipleSoa { count }),
    }
    let apex = zone.apex();
    if !apex.is_some_and(|node| node.has(Rtype::NS)) {
        findings.error(origin, Some(Rtype::NS), Problem::MissingApexNs);
    }
    if apex.is_some_and(|node| node.has(Rtype::DS)) {
        findings.error(origin, Some(Rtype::DS), Problem::DsAtApex);
    }
}

fn check_node(node: &Node, kind: NodeKind, zone: &Zone, findings: &mut Findings) {
    if kind == NodeKind::Occluded {
        return;
    }
    let name = &node.name;
    if let Some(cname) = node.rrset(Rtype::CNAME) {
        if cname.rdatas.len() > 1 {
            let count = cname.rdatas.len();
            findings.error(name, Some(Rtype::CNAME), Problem::MultipleCname { count });
        }
        let others = node.rrsets.iter().filter(|rrset| !rrset.rdatas.is_empty());
        for other in others.filter(|rrset| !BESIDE_CNAME.contains(&rrset.rtype)) {
            let problem = Problem::CnameWithOtherData { other: other.rtype };
            findings.error(name, Some(Rtype::CNAME), problem);
        }
    }
    if let Some(dname) = node.rrset(Rtype::DNAME) {
        if dname.rdatas.len() > 1 {
            let count = dname.rdatas.len();
            findings.error(name, Some(Rtype::DNAME), Problem::MultipleDname { count });
        }
        if kind != NodeKind::Apex && node.has(Rtype::NS) {
            findings.error(name, Some(Rtype::DNAME), Problem::DnameWithNs);
        }
    }
    if let Some(ns) = node.rrset(Rtype::NS) {
        for rdata in &ns.rdatas {
            let Ok(target) = Name::from_wire(rdata.clone()) else {
                findings.error(
                    name,
                    Some(Rtype::NS),
                    Problem::MalformedRdata { rtype: Rtype::NS },
                );
                continue;
            };
            if needs_glue(zone, name, &target) && !has_address(zone, &target) {
                findings.error(name, Some(Rtype::NS), Problem::MissingGlue { target });
            }
        }
    }
}

/// Returns true if the zone must hold addresses for an NS target named at
/// `owner`: the target is in the zone and is either authoritative data or
/// lies at or below the zone cut `owner` itself. A target at or below
/// another zone cut needs none, because the other zone provides it.
fn needs_glue(zone: &Zone, owner: &Name, target: &Name) -> bool {
    if !target.ends_with(zone.origin()) {
        return false;
    }
    match enclosing_cut(zone, target) {
        Some(cut) => &cut == owner,
        None => true,
    }
}

/// Returns the zone cut at or above `name`, if any.
fn enclosing_cut(zone: &Zone, name: &Name) -> Option<Name> {
    let mut candidate = Some(name.clone());
    let mut cut = None;
    while let Some(current) = candidate {
        if &current == zone.origin() {
            break;
        }
        if zone.get(&current).is_some_and(|node| node.has(Rtype::NS)) {
            cut = Some(current.clone());
        }
        candidate = current.parent();
    }
    cut
}

/// Returns true if `target` owns an address record, directly or through
/// the wildcard at its closest encloser.
fn has_address(zone: &Zone, target: &Name) -> bool {
    let has = |node: &Node| node.has(Rtype::A) || node.has(Rtype::AAAA);
    if let Some(node) = zone.get(target) {
        return has(node);
    }
    let mut ancestor = target.parent();
    while let Some(current) = ancestor {
        let wildcard = current.wildcard().ok();
        if wildcard.and_then(|w| zone.get(&w)).is_some_and(has) {
            return true;
        }
        let closest_encloser = zone.get(&current).is_some() || zone.has_descendants(&current);
        if closest_encloser || &current == zone.origin() {
            return false;
        }
        ancestor = current.parent();
    }
    false
}
