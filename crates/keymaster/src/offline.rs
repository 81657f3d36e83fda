//! `keymaster sign` and `keymaster verify`: signing and checking master
//! files without a running server.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use bytes::Bytes;
use keymaster_dnssec::{verify_zone, SigningKey};
use keymaster_keys::bind::{self, BindKey, Timing};
use keymaster_keys::{flags, Algorithm, KeyPair};
use keymaster_policy::{KeyLayout, Policy, PolicyFile};
use keymaster_zone::{load_zone_file, parse_name, LoadOptions, Name, Rtype};

use crate::cli::{SignArgs, VerifyArgs};
use crate::client::write_stdout;
use crate::daemon::{unix_now, write_file_atomically_with};
use crate::signing;

/// Parses a time given as UNIX seconds or as `YYYYMMDDHHMMSS` (UTC), the
/// RRSIG time syntax of RFC 4034 section 3.2.
pub fn parse_time(text: &str) -> anyhow::Result<u64> {
    let text = text.trim();
    keymaster_zone::parse_rrsig_time(text.as_bytes())
        .map(u64::from)
        .with_context(|| {
            format!("invalid time {text:?}: expected YYYYMMDDHHMMSS in UTC or UNIX seconds")
        })
}

/// Reads a policy file whose keys sit at the top level.
pub fn read_policy(path: Option<&Path>) -> anyhow::Result<Policy> {
    let Some(path) = path else {
        return Ok(Policy::default());
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read policy file {}", path.display()))?;
    let file: PolicyFile = toml::from_str(&text)
        .with_context(|| format!("policy file {} is invalid", path.display()))?;
    let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or("file");
    let policy = Policy::from_file(name, &file)?;
    keymaster_lifecycle::LifecyclePolicy::from(&policy)
        .check()
        .with_context(|| format!("policy file {}", path.display()))?;
    Ok(policy)
}

/// Reads the zone's BIND key files from `dir`, or generates the policy's
/// keys there when it has none for the zone.
fn keys_for(dir: &Path, origin: &Name, policy: &Policy, now: u64) -> anyhow::Result<Vec<BindKey>> {
    let prefix = format!("k{}+", origin.to_string().to_ascii_lowercase());
    let mut keys = Vec::new();
    let entries = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read key folder {}", dir.display()))?;
    for entry in entries {
        let path = entry?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if name.to_ascii_lowercase().starts_with(&prefix) && name.ends_with(".private") {
            keys.push(
                bind::read(&path).with_context(|| format!("cannot load key {}", path.display()))?,
            );
        }
    }
    if !keys.is_empty() {
        return Ok(keys);
    }
    let algorithm = Algorithm::from_u8(policy.algorithm)
        .context("the policy's algorithm cannot be used for new keys")?;
    let bits = algorithm.is_rsa().then_some(policy.rsa_bits);
    let roles: &[u16] = match policy.keys {
        KeyLayout::KskZsk => &[flags::ZONE | flags::SEP, flags::ZONE],
        KeyLayout::Csk => &[flags::ZONE | flags::SEP],
    };
    for &key_flags in roles {
        let pair = KeyPair::generate(algorithm, bits)?;
        let timing = Timing {
            created: Some(now),
            publish: Some(now),
            activate: Some(now),
            ..Timing::default()
        };
        let key = BindKey {
            owner: origin.clone(),
            ttl: Some(policy.dnskey_ttl.as_u32()),
            flags: key_flags,
            key: pair,
            timing,
        };
        let (public, _) = bind::write(dir, &key)?;
        tracing::info!(key_tag = key.key_tag(), file = %public.display(), "generated key {}", key.key_tag());
        keys.push(key);
    }
    Ok(keys)
}

/// Turns BIND keys into signer keys, honouring their timing metadata at `now`.
fn signing_keys(keys: &[BindKey], policy: &Policy, now: u64) -> Vec<SigningKey> {
    let reached = |time: Option<u64>| time.is_some_and(|t| t <= now);
    let mut signing = Vec::new();
    for key in keys {
        let timing = &key.timing;
        if reached(timing.delete) {
            continue;
        }
        let published = timing.publish.is_none_or(|t| t <= now) || reached(timing.activate);
        let active = timing.activate.is_none_or(|t| t <= now) && !reached(timing.inactive);
        let is_sep = key.flags & flags::SEP != 0;
        let csk = is_sep
            && (policy.keys == KeyLayout::Csk || !keys.iter().any(|k| k.flags & flags::SEP == 0));
        signing.push(SigningKey {
            dnskey: key.key.dnskey_rdata(key.flags),
            key_tag: key.key_tag(),
            signs_keys: active && is_sep,
            signs_zone: active && (!is_sep || csk),
            published,
            signer: Arc::new(key.key.clone()),
        });
    }
    signing
}

/// Runs `keymaster sign`.
pub fn sign(args: SignArgs) -> anyhow::Result<()> {
    let origin = parse_name(&args.origin, &Name::root())
        .with_context(|| format!("invalid --origin {:?}", args.origin))?;
    let policy = read_policy(args.policy.as_deref())?;
    let now = match &args.time {
        Some(text) => parse_time(text)?,
        None => unix_now(),
    };
    let options = LoadOptions {
        strip_dnssec: true,
        ..LoadOptions::default()
    };
    let loaded = load_zone_file(&args.zonefile, &origin, &options)?;
    for warning in &loaded.warnings {
        tracing::warn!("{warning}");
    }
    let key_dir = args.keys.clone().unwrap_or_else(|| PathBuf::from("."));
    let keys = keys_for(&key_dir, &origin, &policy, now)?;
    let signing = signing_keys(&keys, &policy, now);

    let salt = Bytes::from(random_salt(policy.nsec3_salt_length));
    let options = signing::sign_options(&policy, now, salt, Vec::new(), Vec::new());
    let serial = loaded.zone.serial().context("the zone has no SOA record")?;
    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "signing {bar:40} {pos}/{len} RRsets {elapsed}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    });
    let report = |done: usize, total: usize| {
        if let Some(bar) = &bar {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        }
    };
    let output = args.output.clone().unwrap_or_else(|| {
        let mut name = args.zonefile.clone().into_os_string();
        name.push(".signed");
        PathBuf::from(name)
    });
    // The signed zone goes straight to a temporary file, checked batch by
    // batch; the file replaces `output` only if the whole version is valid.
    let check = signing::post_sign_check(&policy);
    let mut signed = None;
    let written = write_file_atomically_with(&output, 0o644, |out| {
        let version = signing::sign_version_to(
            loaded.zone,
            &signing,
            &options,
            check,
            serial,
            now,
            Some(&report),
            out,
        );
        let failed = version.is_err();
        signed = Some(version);
        if failed {
            return Err(std::io::Error::other("the signed version was not written"));
        }
        Ok(())
    });
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let version = match (signed, written) {
        (Some(Err(error)), _) => return Err(error.into()),
        (_, Err(error)) => {
            return Err(error).with_context(|| format!("cannot write {}", output.display()))
        }
        (Some(Ok(version)), Ok(())) => version,
        (None, Ok(())) => bail!("zone {origin} was not signed"),
    };
    tracing::info!(
        zone = %origin,
        serial,
        "zone {origin} signed with serial {serial}: {} signatures over {} RRsets in {:.2} s, written to {}",
        version.signatures,
        version.rrsets_signed,
        version.seconds,
        output.display()
    );
    Ok(())
}

/// Returns `length` random octets for an NSEC3 salt.
pub fn random_salt(length: u8) -> Vec<u8> {
    (0..length).map(|_| rand::random::<u8>()).collect()
}

/// Runs `keymaster verify`; an error means the zone did not validate.
pub fn verify(args: VerifyArgs) -> anyhow::Result<()> {
    let origin = parse_name(&args.origin, &Name::root())
        .with_context(|| format!("invalid --origin {:?}", args.origin))?;
    let now = match &args.time {
        Some(text) => parse_time(text)?,
        None => unix_now(),
    };
    let options = LoadOptions {
        strip_dnssec: false,
        ..LoadOptions::default()
    };
    let loaded = load_zone_file(&args.zonefile, &origin, &options)?;
    let signed = loaded
        .zone
        .apex()
        .is_some_and(|apex| apex.has(Rtype::DNSKEY));
    let report = verify_zone(&loaded.zone, now as u32);
    let mut out = String::new();
    // Like kzonecheck, an unsigned zone gets the structural checks only;
    // the warning keeps it from passing for a signed one.
    if !signed {
        out.push_str(&format!(
            "warning: zone {origin} is not signed (no DNSKEY RRset at the apex); only its structure was checked\n"
        ));
    }
    for finding in &report.errors {
        out.push_str(&format!("error: {finding}\n"));
    }
    for finding in &report.warnings {
        out.push_str(&format!("warning: {finding}\n"));
    }
    let verdict = match (report.errors.is_empty(), signed) {
        (false, _) => "invalid",
        (true, true) => "valid",
        (true, false) => "valid but unsigned",
    };
    out.push_str(&format!(
        "zone {origin}: {verdict}, {} errors, {} warnings\n",
        report.errors.len(),
        report.warnings.len() + usize::from(!signed)
    ));
    write_stdout(&out)?;
    if !report.errors.is_empty() {
        bail!(
            "zone {origin} failed verification with {} errors",
            report.errors.len()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rrsig_style_times() {
        // RFC 4035 Appendix A signatures expire at 20040509183619.
        assert_eq!(parse_time("20040509183619").unwrap(), 1_084_127_779);
        assert_eq!(parse_time("19700101000000").unwrap(), 0);
        assert_eq!(parse_time("1700000000").unwrap(), 1_700_000_000);
        assert!(parse_time("20041309183619").is_err());
        assert!(parse_time("yesterday").is_err());
    }
}
