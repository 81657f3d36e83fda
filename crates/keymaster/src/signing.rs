//! From an unsigned zone and its keys to a checked, signed version.
//!
//! Both the daemon and the offline `sign` command go through
//! [`sign_version`]: it sets the SOA serial, signs with the policy's
//! timings, and runs keymaster's own validator over the result. A version
//! that fails validation is never returned, so it is never served or
//! written.

use std::io::{self, Write};
use std::time::Instant;

use bytes::Bytes;

use keymaster_dnssec::{
    sign_zone, sign_zone_streamed, verify_zone_with, Denial, SignOptions, SignatureCheck,
    SignedNodes, SigningKey, VerifyOptions, VerifyReport, ZoneCheck,
};
use keymaster_keys::{ds_rdata, DigestType};
use keymaster_policy::{Denial as PolicyDenial, Digest, Policy, PostSignVerify};
use keymaster_zone::{node_to_text, Name, Node, NodeKind, Zone};
use rayon::prelude::*;

/// Error of producing a signed version.
#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    #[error("zone {zone}: has no SOA record")]
    NoSoa { zone: String },
    #[error("zone {zone}: no key can sign {duty}")]
    NoKey { zone: String, duty: &'static str },
    #[error("zone {zone}: signing failed")]
    Sign {
        zone: String,
        #[source]
        source: Box<keymaster_dnssec::SignError>,
    },
    #[error("zone {zone} serial {serial}: the signed version failed validation with {count} errors, first: {first}")]
    Invalid {
        zone: String,
        serial: u32,
        count: usize,
        first: String,
    },
}

/// Result of a signing run.
pub struct SignedVersion {
    pub zone: Zone,
    pub serial: u32,
    pub rrsets_signed: usize,
    /// Signatures made.
    pub signatures: usize,
    /// Signatures taken over from [`SignOptions::previous`].
    pub reused: usize,
    pub seconds: f64,
    /// Earliest signature expiration, UNIX seconds.
    pub earliest_expiration: u64,
}

/// Returns the serial for a new version: the file's serial if it is newer
/// than the last one published (RFC 1982 comparison), else the last plus one.
pub fn next_serial(file_serial: u32, last_published: Option<u32>) -> u32 {
    match last_published {
        None => file_serial,
        Some(last) if serial_gt(file_serial, last) => file_serial,
        Some(last) => last.wrapping_add(1),
    }
}

/// Compares serials with RFC 1982 arithmetic: true if `a` is newer than `b`.
pub fn serial_gt(a: u32, b: u32) -> bool {
    a != b && a.wrapping_sub(b) < 0x8000_0000
}

/// Builds the signer's options from a policy at time `now`.
pub fn sign_options(
    policy: &Policy,
    now: u64,
    salt: Bytes,
    cds: Vec<Bytes>,
    cdnskey: Vec<Bytes>,
) -> SignOptions {
    let inception = now.saturating_sub(policy.signature_inception_offset.as_secs());
    let expiration = now + policy.signature_validity.as_secs();
    let dnskey_expiration = now + policy.signature_validity_dnskey.as_secs();
    let denial = match policy.denial {
        PolicyDenial::Nsec => Denial::Nsec,
        PolicyDenial::Nsec3 => Denial::Nsec3 {
            iterations: policy.nsec3_iterations,
            salt,
            opt_out: policy.nsec3_opt_out,
        },
    };
    SignOptions {
        inception: to_u32(inception),
        expiration: to_u32(expiration),
        dnskey_expiration: to_u32(dnskey_expiration),
        jitter: policy.signature_jitter.as_u32(),
        dnskey_ttl: policy.dnskey_ttl.as_u32(),
        denial,
        cds,
        cdnskey,
        extra_dnskeys: Vec::new(),
        deterministic: false,
        previous: None,
    }
}

/// Returns the signer's denial settings for the engine's, with the NSEC3
/// salt in use.
pub fn denial_from(settings: &keymaster_lifecycle::DenialSettings, salt: Bytes) -> Denial {
    match settings {
        keymaster_lifecycle::DenialSettings::Nsec => Denial::Nsec,
        keymaster_lifecycle::DenialSettings::Nsec3 {
            iterations,
            opt_out,
            ..
        } => Denial::Nsec3 {
            iterations: *iterations,
            salt,
            opt_out: *opt_out,
        },
    }
}

/// Converts UNIX seconds to the 32-bit RRSIG time field; RFC 4034
/// section 3.1.5 makes the field wrap, so the low 32 bits are what counts.
fn to_u32(seconds: u64) -> u32 {
    seconds as u32
}

/// Returns the signatures the policy has the post-sign check verify.
pub fn post_sign_check(policy: &Policy) -> SignatureCheck {
    match policy.post_sign_verify {
        PostSignVerify::Sample => SignatureCheck::Sample,
        PostSignVerify::All => SignatureCheck::All,
    }
}

/// Returns the DS digest type for a policy digest.
pub fn digest_type(digest: Digest) -> DigestType {
    match digest {
        Digest::Sha256 => DigestType::Sha256,
        Digest::Sha384 => DigestType::Sha384,
    }
}

/// Returns the CDS RDATA for `dnskeys` with the policy's CDS digests.
pub fn cds_records(origin: &Name, dnskeys: &[Bytes], policy: &Policy) -> Vec<Bytes> {
    let digests = policy.cds_digests.iter().map(|digest| digest_type(*digest));
    let pairs = digests.flat_map(|digest| dnskeys.iter().map(move |dnskey| (digest, dnskey)));
    pairs
        .map(|(digest, dnskey)| ds_rdata(origin, dnskey, digest))
        .collect()
}

/// Signs `unsigned` as a new version with serial `serial` and validates
/// it, verifying the signatures that `check` selects.
pub fn sign_version(
    unsigned: Zone,
    keys: &[SigningKey],
    options: &SignOptions,
    check: SignatureCheck,
    serial: u32,
    now: u64,
    progress: Option<&(dyn Fn(usize, usize) + Sync)>,
) -> Result<SignedVersion, SigningError> {
    let (zone_name, input) = prepare_version(unsigned, keys, serial)?;

    let started = Instant::now();
    let progress = progress.map(|f| f as &dyn Fn(usize, usize));
    let signed =
        sign_zone(input, keys, options, progress).map_err(|source| SigningError::Sign {
            zone: zone_name.clone(),
            source: Box::new(source),
        })?;
    let seconds = started.elapsed().as_secs_f64();

    let verify = VerifyOptions {
        now: to_u32(now),
        signatures: check,
    };
    let report = verify_zone_with(&signed.zone, &verify);
    accept_version(zone_name, serial, &report)?;
    let earliest_expiration = earliest_expiration(&signed.zone, now);
    Ok(SignedVersion {
        zone: signed.zone,
        serial,
        rrsets_signed: signed.stats.rrsets_signed,
        signatures: signed.stats.signatures,
        reused: signed.stats.reused,
        seconds,
        earliest_expiration,
    })
}

/// Checks that `keys` can sign the zone and sets its serial; returns the
/// zone's name for messages and the zone ready to sign.
fn prepare_version(
    unsigned: Zone,
    keys: &[SigningKey],
    serial: u32,
) -> Result<(String, Zone), SigningError> {
    let zone_name = unsigned.origin().to_string();
    require_keys(&zone_name, keys)?;
    let mut input = unsigned;
    if !input.set_serial(serial) {
        return Err(SigningError::NoSoa { zone: zone_name });
    }
    Ok((zone_name, input))
}

/// Turns the validator's report on a signed version into the error that
/// stops its publication, if it found any.
fn accept_version(zone: String, serial: u32, report: &VerifyReport) -> Result<(), SigningError> {
    tracing::debug!(zone = %zone, stats = ?report.stats, "checked the signed version");
    match report.errors.first() {
        Some(first) => Err(SigningError::Invalid {
            zone,
            serial,
            count: report.errors.len(),
            first: first.to_string(),
        }),
        None => Ok(()),
    }
}

/// Checks that `keys` hold a key for each signing duty.
fn require_keys(zone: &str, keys: &[SigningKey]) -> Result<(), SigningError> {
    let duties = [
        (keys.iter().any(|key| key.signs_zone), "the zone data"),
        (keys.iter().any(|key| key.signs_keys), "the DNSKEY RRset"),
    ];
    match duties.into_iter().find(|(covered, _)| !covered) {
        Some((_, duty)) => Err(SigningError::NoKey {
            zone: zone.to_string(),
            duty,
        }),
        None => Ok(()),
    }
}

/// Returns the earliest RRSIG expiration in `zone` as UNIX seconds, reading
/// the 32-bit field in the window around `now` (RFC 4034 section 3.1.5).
pub fn earliest_expiration(zone: &Zone, now: u64) -> u64 {
    earliest_of(zone.nodes(), now).unwrap_or(now)
}

/// Returns the earliest RRSIG expiration over `nodes`, if any has one.
fn earliest_of<'a>(nodes: impl Iterator<Item = &'a Node>, now: u64) -> Option<u64> {
    let rrsets = nodes.flat_map(|node| &node.rrsets);
    let expirations = rrsets
        .flat_map(|rrset| &rrset.signatures)
        .filter_map(|rdata| {
            let field = rdata.get(8..12)?;
            let value = u32::from_be_bytes(field.try_into().ok()?);
            let delta = value.wrapping_sub(now as u32) as i32;
            Some((now as i64 + i64::from(delta)).max(0) as u64)
        });
    expirations.min()
}

/// Signs `unsigned` as [`sign_version`] does, but writes the signed zone to
/// `out` as a master file, a batch of nodes at a time, and checks each
/// batch on the way. The whole signed zone is never in memory at once, and
/// the returned version contains signatures at the apex only.
///
/// On error, what was written to `out` is not a valid version and must be
/// discarded; callers write to a temporary file and keep it only on success.
#[allow(clippy::too_many_arguments)]
pub fn sign_version_to(
    unsigned: Zone,
    keys: &[SigningKey],
    options: &SignOptions,
    check: SignatureCheck,
    serial: u32,
    now: u64,
    progress: Option<&(dyn Fn(usize, usize) + Sync)>,
    out: &mut dyn Write,
) -> Result<SignedVersion, SigningError> {
    let (zone_name, input) = prepare_version(unsigned, keys, serial)?;
    let started = Instant::now();
    let mut sink = StreamedOutput {
        out,
        verify: VerifyOptions {
            now: to_u32(now),
            signatures: check,
        },
        check: None,
        apex: input.origin().clone(),
        now,
        earliest: None,
    };
    let progress = progress.map(|f| f as &dyn Fn(usize, usize));
    let signed =
        sign_zone_streamed(input, keys, options, progress, &mut sink).map_err(|source| {
            SigningError::Sign {
                zone: zone_name.clone(),
                source: Box::new(source),
            }
        })?;
    let seconds = started.elapsed().as_secs_f64();
    let Some(check) = sink.check else {
        return Err(SigningError::NoSoa { zone: zone_name });
    };
    let report = check.finish(&signed.zone);
    accept_version(zone_name, serial, &report)?;
    Ok(SignedVersion {
        zone: signed.zone,
        serial,
        rrsets_signed: signed.stats.rrsets_signed,
        signatures: signed.stats.signatures,
        reused: signed.stats.reused,
        seconds,
        earliest_expiration: sink.earliest.unwrap_or(now),
    })
}

/// Checks and writes out the batches of a streamed signing.
struct StreamedOutput<'w> {
    out: &'w mut dyn Write,
    verify: VerifyOptions,
    /// The validation run, from the moment the zone is ready to sign.
    check: Option<ZoneCheck>,
    apex: Name,
    now: u64,
    earliest: Option<u64>,
}

impl SignedNodes for StreamedOutput<'_> {
    fn begin(&mut self, zone: &Zone) -> io::Result<()> {
        self.check = Some(ZoneCheck::begin(zone, &self.verify));
        Ok(())
    }

    fn nodes(&mut self, nodes: &[(&Node, NodeKind)]) -> io::Result<()> {
        if let Some(check) = &mut self.check {
            check.check_nodes(nodes);
        }
        let batch = earliest_of(nodes.iter().map(|(node, _)| *node), self.now);
        self.earliest = self.earliest.into_iter().chain(batch).min();
        // Text formatting costs about as much as the rest of the output
        // path, so it runs on every core.
        let apex = &self.apex;
        let texts: Vec<String> = nodes
            .par_iter()
            .map(|(node, _)| {
                let mut text = String::new();
                node_to_text(node, apex, &mut text);
                text
            })
            .collect();
        for text in texts {
            self.out.write_all(text.as_bytes())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_follows_rfc1982() {
        assert!(serial_gt(2, 1));
        assert!(serial_gt(0, u32::MAX));
        assert!(!serial_gt(1, 2));
        assert!(!serial_gt(0x8000_0001, 1));
    }

    #[test]
    fn next_serial_never_goes_backwards() {
        assert_eq!(next_serial(10, None), 10);
        assert_eq!(next_serial(10, Some(5)), 10);
        assert_eq!(next_serial(10, Some(10)), 11);
        assert_eq!(next_serial(3, Some(10)), 11);
        assert_eq!(next_serial(3, Some(u32::MAX)), 3);
        assert_eq!(next_serial(u32::MAX, Some(u32::MAX)), 0);
    }
}
