//! The resolver's view of a zone and the rule that decides whether a view
//! validates.
//!
//! A *view* is what one resolver may hold at one moment: one DS RRset from
//! the parent, one DNSKEY RRset with its signatures, and signatures over
//! zone data. The three are cached independently, so any DS RRset a
//! resolver may still hold can meet any DNSKEY RRset it may still hold.
//!
//! The rule is deliberately strict: besides a chain from a DS to a DNSKEY
//! that signs the DNSKEY RRset, every algorithm of a usable DNSKEY must sign
//! both the DNSKEY RRset and zone data (RFC 4035 section 2.2). Some
//! validators enforce that, which is why an algorithm rollover introduces
//! signatures before keys (RFC 6781 section 4.1.4). Keys are numbered by the
//! caller; a revoked key (RFC 5011) is never usable.

use std::collections::{BTreeMap, BTreeSet};

/// Outcome of validating one view.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// A chain of trust leads from the DS RRset to the zone data.
    Secure,
    /// The resolver has no DS RRset for the zone, so it does not validate.
    Insecure,
    /// The resolver has a DS RRset but the zone data does not validate.
    Bogus,
}

/// One DNSKEY RRset with its signatures, as a resolver caches it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DnskeyView {
    /// Keys in the RRset, each with whether its REVOKE bit is set.
    pub keys: BTreeMap<usize, bool>,
    /// Keys whose signatures over the RRset come with it.
    pub signers: BTreeSet<usize>,
}

/// Validates one view. `algorithm` returns the algorithm of a key number.
pub fn validate(
    algorithm: &dyn Fn(usize) -> u8,
    ds: &BTreeSet<usize>,
    dnskey: &DnskeyView,
    zone_signers: &BTreeSet<usize>,
) -> Verdict {
    if ds.is_empty() {
        return Verdict::Insecure;
    }
    let usable: BTreeSet<usize> = dnskey
        .keys
        .iter()
        .filter(|(_, revoked)| !**revoked)
        .map(|(key, _)| *key)
        .collect();

    // A DS must point at a usable key that signs the DNSKEY RRset.
    let chained = ds
        .iter()
        .any(|key| usable.contains(key) && dnskey.signers.contains(key));
    if !chained {
        return Verdict::Bogus;
    }

    // Every algorithm in the RRset signs the RRset itself and zone data.
    let algorithms: BTreeSet<u8> = usable.iter().map(|key| algorithm(*key)).collect();
    for wanted in algorithms {
        let of_algorithm = |key: &&usize| usable.contains(*key) && algorithm(**key) == wanted;
        if !dnskey.signers.iter().any(|key| of_algorithm(&key)) {
            return Verdict::Bogus;
        }
        if !zone_signers.iter().any(|key| of_algorithm(&key)) {
            return Verdict::Bogus;
        }
    }
    Verdict::Secure
}

#[cfg(test)]
mod tests {
    use super::*;

    fn algorithm_of(key: usize) -> u8 {
        [13, 13, 8, 8][key]
    }

    fn view(keys: &[(usize, bool)], signers: &[usize]) -> DnskeyView {
        DnskeyView {
            keys: keys.iter().copied().collect(),
            signers: signers.iter().copied().collect(),
        }
    }

    fn set(keys: &[usize]) -> BTreeSet<usize> {
        keys.iter().copied().collect()
    }

    #[test]
    fn chain_validates() {
        let dnskey = view(&[(0, false), (1, false)], &[0]);
        let verdict = validate(&algorithm_of, &set(&[0]), &dnskey, &set(&[1]));
        assert_eq!(verdict, Verdict::Secure);
    }

    #[test]
    fn missing_ds_is_insecure() {
        let dnskey = view(&[(0, false)], &[0]);
        let verdict = validate(&algorithm_of, &set(&[]), &dnskey, &set(&[0]));
        assert_eq!(verdict, Verdict::Insecure);
    }

    #[test]
    fn ds_without_key_is_bogus() {
        let dnskey = view(&[(1, false)], &[1]);
        let verdict = validate(&algorithm_of, &set(&[0]), &dnskey, &set(&[1]));
        assert_eq!(verdict, Verdict::Bogus);
    }

    #[test]
    fn revoked_key_breaks_chain() {
        let dnskey = view(&[(0, true), (1, false)], &[0]);
        let verdict = validate(&algorithm_of, &set(&[0]), &dnskey, &set(&[1]));
        assert_eq!(verdict, Verdict::Bogus);
    }

    #[test]
    fn signature_by_unknown_key_is_bogus() {
        let dnskey = view(&[(0, false)], &[0]);
        let verdict = validate(&algorithm_of, &set(&[0]), &dnskey, &set(&[1]));
        assert_eq!(verdict, Verdict::Bogus);
    }

    #[test]
    fn algorithm_without_zone_signature_is_bogus() {
        let dnskey = view(&[(0, false), (1, false), (2, false)], &[0, 2]);
        let verdict = validate(&algorithm_of, &set(&[0]), &dnskey, &set(&[1]));
        assert_eq!(verdict, Verdict::Bogus);
    }

    #[test]
    fn extra_algorithm_signature_is_secure() {
        let dnskey = view(&[(0, false), (1, false)], &[0]);
        let verdict = validate(&algorithm_of, &set(&[0]), &dnskey, &set(&[1, 3]));
        assert_eq!(verdict, Verdict::Secure);
    }
}
