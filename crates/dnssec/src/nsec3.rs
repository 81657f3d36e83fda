//! The NSEC3 chain of RFC 5155.
//!
//! Each covered name is hashed with SHA-1, the salt and the iteration count
//! (RFC 5155 section 5), and the NSEC3 record is owned by the base32hex
//! form of the hash, in lower case, as a label under the apex. Records are
//! linked in hash order and the last one points to the first.
//!
//! Covered names (RFC 5155 section 7.1): the apex, every name with
//! authoritative data, every zone cut, and every empty non-terminal above
//! them. Glue and occluded names get no NSEC3. With opt-out, zone cuts
//! without DS are left out, and so are empty non-terminals whose covered
//! descendants are all such cuts; every NSEC3 record then carries the
//! opt-out flag. Wildcard names `*.x` are covered like any other name.
//!
//! Bitmaps list the types at the original name plus RRSIG when that name
//! has signed data. An insecure zone cut therefore has the bitmap `NS` and
//! an empty non-terminal an empty one.
//!
//! Limitation: only hash algorithm 1 (SHA-1) exists, so it is the only one
//! supported.

use std::collections::HashSet;

use aws_lc_rs::digest;
use bytes::Bytes;
use data_encoding::BASE32HEX_NOPAD;
use keymaster_zone::{Name, NameError, NodeKind, Rrset, Rtype, Zone};
use rayon::prelude::*;

use crate::nsec::{data_types, is_nsec3_only};
use crate::rdata::{Nsec3Fields, Nsec3Params, TypeBitmap, NSEC3_FLAG_OPT_OUT};

/// Length of a SHA-1 NSEC3 hash in octets.
pub const NSEC3_HASH_LEN: usize = 20;

/// Error raised while building an NSEC3 chain.
#[derive(Debug, thiserror::Error)]
pub enum Nsec3Error {
    /// Two covered names hash to the same value, so the chain cannot be
    /// built with this salt (RFC 5155 section 7.1 asks for a new salt).
    #[error("NSEC3 hash collision between {first} and {second}; choose another salt")]
    Collision { first: Name, second: Name },
    /// The hashed owner name does not fit under the apex.
    #[error("NSEC3 owner name under {apex} is too long")]
    OwnerName {
        apex: Name,
        #[source]
        source: NameError,
    },
}

/// Computes the NSEC3 hash of `name` (RFC 5155 section 5).
///
/// The name is folded to lower case first, as the canonical form requires.
/// `iterations` counts the additional iterations, so 0 means one SHA-1.
pub fn nsec3_hash(name: &Name, salt: &[u8], iterations: u16) -> [u8; NSEC3_HASH_LEN] {
    let lower = name.as_wire().to_ascii_lowercase();
    let mut hash = sha1_with_salt(&lower, salt);
    for _ in 0..iterations {
        hash = sha1_with_salt(&hash, salt);
    }
    hash
}

fn sha1_with_salt(data: &[u8], salt: &[u8]) -> [u8; NSEC3_HASH_LEN] {
    let mut context = digest::Context::new(&digest::SHA1_FOR_LEGACY_USE_ONLY);
    context.update(data);
    context.update(salt);
    let mut out = [0u8; NSEC3_HASH_LEN];
    out.copy_from_slice(context.finish().as_ref());
    out
}

/// Returns the label for a hash: base32hex without padding, in lower case.
pub fn hash_label(hash: &[u8]) -> String {
    BASE32HEX_NOPAD.encode(hash).to_ascii_lowercase()
}

/// Returns the NSEC3 owner name for a hash in the zone `apex`.
pub fn hashed_owner(hash: &[u8], apex: &Name) -> Result<Name, NameError> {
    apex.prepend(hash_label(hash).as_bytes())
}

/// A name that an NSEC3 chain must cover, with its expected bitmap.
#[derive(Clone, Debug)]
pub(crate) struct CoveredName {
    pub(crate) name: Name,
    pub(crate) types: TypeBitmap,
}

/// Returns the names an NSEC3 chain must cover, with their bitmaps, in no
/// particular order.
///
/// When `opt_out` is false, insecure zone cuts are included; when true they,
/// and the empty non-terminals that lead only to them, are left out.
/// `insecure_cuts` receives the insecure zone cuts either way.
pub(crate) fn covered_names(
    zone: &Zone,
    opt_out: bool,
    insecure_cuts: &mut Vec<Name>,
) -> Vec<CoveredName> {
    let mut covered = Vec::with_capacity(zone.node_count());
    let mut owners: HashSet<&Name> = HashSet::with_capacity(zone.node_count());
    for (node, kind) in zone.walk() {
        if is_nsec3_only(node) {
            continue;
        }
        owners.insert(&node.name);
        if kind == NodeKind::Occluded {
            continue;
        }
        let mut types = data_types(node, kind);
        let secure = kind != NodeKind::Delegation || types.contains(Rtype::DS);
        if !secure {
            insecure_cuts.push(node.name.clone());
            if opt_out {
                continue;
            }
        }
        if secure && !types.is_empty() {
            types.insert(Rtype::RRSIG);
        }
        covered.push(CoveredName {
            name: node.name.clone(),
            types,
        });
    }

    // Empty non-terminals: the ancestors of covered names that own nothing.
    let mut ents = HashSet::new();
    for entry in &covered {
        let mut name = entry.name.clone();
        while let Some(parent) = name.parent() {
            if !parent.is_below(zone.origin()) || owners.contains(&parent) {
                break;
            }
            if !ents.insert(parent.clone()) {
                break;
            }
            name = parent;
        }
    }
    covered.extend(ents.into_iter().map(|name| CoveredName {
        name,
        types: TypeBitmap::new(),
    }));
    covered
}

/// Builds the NSEC3 chain for `zone`, each record with `ttl`.
///
/// `params` gives the salt and iterations; its flags field is ignored and
/// the opt-out flag is set on every record when `opt_out` is true. The zone
/// must not hold NSEC records or an old NSEC3 chain. The result is in hash
/// order, without signatures.
pub fn build_nsec3_chain(
    zone: &Zone,
    params: &Nsec3Params,
    opt_out: bool,
    ttl: u32,
) -> Result<Vec<Rrset>, Nsec3Error> {
    let mut insecure = Vec::new();
    let covered = covered_names(zone, opt_out, &mut insecure);
    let mut hashed: Vec<([u8; NSEC3_HASH_LEN], CoveredName)> = covered
        .into_par_iter()
        .map(|entry| {
            let hash = nsec3_hash(&entry.name, &params.salt, params.iterations);
            (hash, entry)
        })
        .collect();
    hashed.par_sort_unstable_by(|a, b| a.0.cmp(&b.0));
    if let Some(pair) = hashed.windows(2).find(|pair| pair[0].0 == pair[1].0) {
        return Err(Nsec3Error::Collision {
            first: pair[0].1.name.clone(),
            second: pair[1].1.name.clone(),
        });
    }

    let record_params = Nsec3Params {
        flags: if opt_out { NSEC3_FLAG_OPT_OUT } else { 0 },
        ..params.clone()
    };
    let mut chain = Vec::with_capacity(hashed.len());
    for (index, (hash, entry)) in hashed.iter().enumerate() {
        let next = &hashed[(index + 1) % hashed.len()].0;
        let owner = hashed_owner(hash, zone.origin()).map_err(|source| Nsec3Error::OwnerName {
            apex: zone.origin().clone(),
            source,
        })?;
        let mut rrset = Rrset::new(owner, zone.class(), Rtype::NSEC3, ttl);
        rrset.rdatas = vec![Nsec3Fields::build(&record_params, next, &entry.types)];
        chain.push(rrset);
    }
    Ok(chain)
}

/// Builds NSEC3PARAM RDATA with flags 0, as RFC 5155 section 4.1.2 requires
/// of the record published at the apex.
pub fn nsec3param_rdata(salt: &Bytes, iterations: u16) -> Bytes {
    Nsec3Params {
        hash_algorithm: crate::rdata::NSEC3_SHA1,
        flags: 0,
        iterations,
        salt: salt.clone(),
    }
    .build()
}
