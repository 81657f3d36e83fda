//! Semantic checks applied while a zone is loaded.
//!
//! Each record is checked as it is added, so an error names the line that
//! broke the rule; the rules that need the whole zone run at the end.
//! Rejected: records outside the origin or of another class, an SOA
//! record that is missing at the apex, placed elsewhere or duplicated, a
//! CNAME beside other data (RRSIG, NSEC and NSEC3 excepted; RFC 2181
//! section 10.1 and RFC 4035 section 2.5), two CNAMEs or two DNAMEs at one
//! name, NS beside DNAME below the apex and a DNAME below the apex with
//! names under it (RFC 6672 section 2.3), and DS at the apex (RFC 4035
//! section 2.4).
//!
//! Limitations: names below an apex DNAME are accepted (BIND does the
//! same); they are occluded and never served.

use std::collections::HashSet;

use domain::base::iana::{Class, Rtype};

use crate::master::error::{
    CheckError, LoadError, LoadErrorKind, LoadWarning, Location, WarningKind,
};
use crate::master::reader::Located;
use crate::master::LoadedZone;
use crate::name::{CanonicalKey, Name};
use crate::record::Record;
use crate::zone::{Inserted, Zone};

/// Types dropped when the zone is loaded to be signed.
pub const DNSSEC_TYPES: [Rtype; 7] = [
    Rtype::DNSKEY,
    Rtype::RRSIG,
    Rtype::NSEC,
    Rtype::NSEC3,
    Rtype::NSEC3PARAM,
    Rtype::CDS,
    Rtype::CDNSKEY,
];

/// Collects checked records into a zone.
pub(crate) struct ZoneBuilder {
    zone: Zone,
    class: Option<Class>,
    strip_dnssec: bool,
    stripped: usize,
    warnings: Vec<LoadWarning>,
    adjusted: HashSet<(CanonicalKey, u16)>,
    /// Each DNAME owner below the apex and where it was first read.
    dnames: Vec<(Name, Location)>,
    /// Each DS owner below the apex and where it was first read.
    ds_owners: Vec<(Name, Location)>,
    top: Location,
}

impl ZoneBuilder {
    pub(crate) fn new(origin: Name, strip_dnssec: bool, top: Location) -> Self {
        Self {
            zone: Zone::new(origin, Class::IN),
            class: None,
            strip_dnssec,
            stripped: 0,
            warnings: Vec::new(),
            adjusted: HashSet::new(),
            dnames: Vec::new(),
            ds_owners: Vec::new(),
            top,
        }
    }

    /// Checks one record and adds it.
    pub(crate) fn add(&mut self, located: Located) -> Result<(), LoadError> {
        let Located {
            record,
            location,
            ttl_from_soa,
        } = located;
        let fail = |error: CheckError| LoadError {
            location: location.clone(),
            text: record.owner.to_string(),
            reason: LoadErrorKind::Check(error),
        };
        let origin = self.zone.origin().clone();
        let class = *self.class.get_or_insert(record.class);
        if record.class != class {
            return Err(fail(CheckError::ClassMismatch {
                expected: class,
                found: record.class,
            }));
        }
        if !record.owner.ends_with(&origin) {
            return Err(fail(CheckError::OutOfZone {
                owner: record.owner.clone(),
                origin,
            }));
        }
        if self.strip_dnssec && DNSSEC_TYPES.contains(&record.rtype) {
            self.stripped += 1;
            return Ok(());
        }
        if let Some(error) = self.conflict(&record, &origin) {
            return Err(fail(error));
        }
        if ttl_from_soa {
            self.warnings.push(LoadWarning {
                location: location.clone(),
                kind: WarningKind::TtlFromSoaMinimum { ttl: record.ttl },
            });
        }
        let new_ds = record.rtype == Rtype::DS && record.owner != origin;
        if new_ds && !self.ds_owners.iter().any(|(name, _)| *name == record.owner) {
            self.ds_owners
                .push((record.owner.clone(), location.clone()));
        }
        let new_dname = record.rtype == Rtype::DNAME && record.owner != origin;
        if new_dname && !self.dnames.iter().any(|(name, _)| *name == record.owner) {
            self.dnames.push((record.owner.clone(), location.clone()));
        }
        let (owner, rtype) = (record.owner.clone(), record.rtype);
        if let Inserted::TtlAdjusted { now, .. } = self.zone.insert(record) {
            if self
                .adjusted
                .insert((owner.canonical_key(), rtype.to_int()))
            {
                self.warnings.push(LoadWarning {
                    location,
                    kind: WarningKind::TtlAdjusted {
                        owner,
                        rtype,
                        ttl: now,
                    },
                });
            }
        }
        Ok(())
    }

    /// Returns the rule that `record` breaks given the records already added.
    fn conflict(&self, record: &Record, origin: &Name) -> Option<CheckError> {
        let owner = &record.owner;
        let at_apex = owner == origin;
        match record.rtype {
            Rtype::SOA if !at_apex => {
                return Some(CheckError::SoaNotAtApex {
                    owner: owner.clone(),
                    apex: origin.clone(),
                })
            }
            Rtype::DS if at_apex => return Some(CheckError::DsAtApex(owner.clone())),
            _ => {}
        }
        let node = self.zone.get(owner)?;
        let holds = |rtype: Rtype| node.rrset(rtype).is_some_and(|r| !r.rdatas.is_empty());
        let differs = |rtype: Rtype| {
            node.rrset(rtype)
                .is_some_and(|r| !r.rdatas.is_empty() && !r.rdatas.contains(&record.rdata))
        };
        match record.rtype {
            Rtype::SOA if differs(Rtype::SOA) => Some(CheckError::MultipleSoa(owner.clone())),
            Rtype::CNAME if differs(Rtype::CNAME) => {
                Some(CheckError::MultipleCnames(owner.clone()))
            }
            Rtype::CNAME => node
                .rrsets
                .iter()
                .any(|rrset| !rrset.rdatas.is_empty() && !beside_cname(rrset.rtype))
                .then(|| CheckError::CnameAndOtherData(owner.clone())),
            rtype if !beside_cname(rtype) && holds(Rtype::CNAME) => {
                Some(CheckError::CnameAndOtherData(owner.clone()))
            }
            Rtype::DNAME if differs(Rtype::DNAME) => {
                Some(CheckError::MultipleDnames(owner.clone()))
            }
            Rtype::DNAME if !at_apex && holds(Rtype::NS) => {
                Some(CheckError::NsBesideDname(owner.clone()))
            }
            Rtype::NS if !at_apex && holds(Rtype::DNAME) => {
                Some(CheckError::NsBesideDname(owner.clone()))
            }
            _ => None,
        }
    }

    /// Runs the checks that need the whole zone and returns the result.
    pub(crate) fn finish(mut self) -> Result<LoadedZone, LoadError> {
        let origin = self.zone.origin().clone();
        if self.zone.soa().is_none_or(|soa| soa.rdatas.is_empty()) {
            return Err(LoadError {
                location: self.top.clone(),
                text: String::new(),
                reason: LoadErrorKind::Check(CheckError::NoSoa(origin)),
            });
        }
        for (name, location) in &self.dnames {
            if self.zone.has_descendants(name) {
                return Err(LoadError {
                    location: location.clone(),
                    text: name.to_string(),
                    reason: LoadErrorKind::Check(CheckError::DnameWithDescendants(name.clone())),
                });
            }
        }
        // A DS belongs to the parent side of a zone cut (RFC 4034 section 5).
        for (name, location) in &self.ds_owners {
            if !self.zone.get(name).is_some_and(|node| node.has(Rtype::NS)) {
                return Err(LoadError {
                    location: location.clone(),
                    text: name.to_string(),
                    reason: LoadErrorKind::Check(CheckError::DsWithoutDelegation(name.clone())),
                });
            }
        }
        if let Some(class) = self.class {
            if class != self.zone.class() {
                self.zone = rebuild_with_class(self.zone, class);
            }
        }
        if self.stripped > 0 {
            self.warnings.push(LoadWarning {
                location: self.top.clone(),
                kind: WarningKind::DnssecStripped {
                    count: self.stripped,
                },
            });
        }
        Ok(LoadedZone {
            zone: self.zone,
            warnings: self.warnings,
        })
    }
}

/// Returns true for types allowed at a name that owns a CNAME.
fn beside_cname(rtype: Rtype) -> bool {
    matches!(
        rtype,
        Rtype::CNAME | Rtype::RRSIG | Rtype::NSEC | Rtype::NSEC3
    )
}

/// Moves the RRsets of `zone` into a zone of another class.
fn rebuild_with_class(zone: Zone, class: Class) -> Zone {
    let mut rebuilt = Zone::new(zone.origin().clone(), class);
    for node in zone.nodes() {
        for rrset in &node.rrsets {
            rebuilt.put_rrset(rrset.clone());
        }
    }
    rebuilt
}
