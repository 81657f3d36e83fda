//! The NSEC chain of RFC 4034 section 4 and RFC 4035 section 2.3.
//!
//! Every name that owns authoritative data or is a zone cut gets one NSEC
//! record pointing to the next such name in canonical order; the last one
//! points back to the apex. Names below a zone cut (glue and occluded data)
//! and empty non-terminals get none.
//!
//! Type bitmaps list the types present at the name plus NSEC and RRSIG. At
//! a zone cut only NS, DS, NSEC and RRSIG appear, because the parent is
//! authoritative for nothing else there (RFC 4035 section 2.3).

use keymaster_zone::{Name, Node, NodeKind, Rrset, Rtype, Zone};

use crate::rdata::{NsecFields, TypeBitmap};

/// Returns the types an NSEC or NSEC3 bitmap lists for a node, not
/// counting NSEC, NSEC3 and RRSIG, which the caller adds as its chain needs.
pub(crate) fn data_types(node: &Node, kind: NodeKind) -> TypeBitmap {
    let present = node.rrsets.iter().filter(|rrset| !rrset.rdatas.is_empty());
    let types = present
        .map(|rrset| rrset.rtype)
        .filter(|&rtype| match kind {
            NodeKind::Delegation => rtype == Rtype::NS || rtype == Rtype::DS,
            _ => !matches!(rtype, Rtype::NSEC | Rtype::NSEC3 | Rtype::RRSIG),
        });
    types.collect()
}

/// Returns true if the node owns nothing but NSEC3 records, as the hashed
/// owner names of an NSEC3 chain do.
pub(crate) fn is_nsec3_only(node: &Node) -> bool {
    let mut with_data = node.rrsets.iter().filter(|rrset| !rrset.rdatas.is_empty());
    with_data.all(|rrset| rrset.rtype == Rtype::NSEC3)
        && node.rrsets.iter().any(|rrset| rrset.rtype == Rtype::NSEC3)
}

/// Returns the names that an NSEC chain covers, with their expected bitmaps
/// (NSEC and RRSIG included), in canonical order.
pub(crate) fn nsec_names(zone: &Zone) -> Vec<(Name, TypeBitmap)> {
    let mut names = Vec::with_capacity(zone.node_count());
    for (node, kind) in zone.walk() {
        if kind == NodeKind::Occluded || is_nsec3_only(node) {
            continue;
        }
        let mut types = data_types(node, kind);
        types.insert(Rtype::NSEC);
        types.insert(Rtype::RRSIG);
        names.push((node.name.clone(), types));
    }
    names
}

/// Builds the NSEC chain for `zone`, each record with `ttl`.
///
/// The zone must not hold NSEC3 records. The result holds one RRset per
/// covered name, in canonical order, without signatures.
pub fn build_nsec_chain(zone: &Zone, ttl: u32) -> Vec<Rrset> {
    let names = nsec_names(zone);
    let mut chain = Vec::with_capacity(names.len());
    for (index, (name, types)) in names.iter().enumerate() {
        let next = match names.get(index + 1) {
            Some((next, _)) => next,
            None => zone.origin(),
        };
        let mut rrset = Rrset::new(name.clone(), zone.class(), Rtype::NSEC, ttl);
        rrset.rdatas = vec![NsecFields::build(next, types)];
        chain.push(rrset);
    }
    chain
}

/// Returns the kind a node has for signing: the kind from [`Zone::walk`],
/// except that NSEC3 records are always authoritative, even below a DNAME
/// at the apex, which [`Zone::walk`] counts as occluding the apex's
/// children.
pub(crate) fn signing_kind(node: &Node, kind: NodeKind) -> NodeKind {
    if kind == NodeKind::Occluded && is_nsec3_only(node) {
        NodeKind::Authoritative
    } else {
        kind
    }
}
