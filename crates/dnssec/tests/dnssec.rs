//! Tests of the signer, the chains and the validator against published
//! vectors, real zones and external validators.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use keymaster_dnssec::rdata::{Nsec3Fields, Nsec3Params, Rrsig, TypeBitmap};
use keymaster_dnssec::validate::{SAMPLE_ONE_IN, SAMPLE_PER_CLASS};
use keymaster_dnssec::{
    build_nsec3_chain, build_nsec_chain, nsec3_hash, sign_zone, sign_zone_streamed, verify_zone,
    verify_zone_with, Denial, Problem, SignOptions, SignatureCheck, SignedNodes, SigningKey,
    VerifyOptions, VerifyReport,
};
use keymaster_keys::{flags, Algorithm, KeyPair};
use keymaster_zone::master::{load_zone_file, node_to_text, write_zone, LoadOptions};
use keymaster_zone::{parse_name, Name, Node, NodeKind, Rtype, Zone};

/// 2004-04-20T00:00:00Z, inside the RFC 4035 example's signature window.
const RFC4035_NOW: u32 = 1_082_419_200;
/// 2010-01-01T00:00:00Z, inside the RFC 5155 example's signature window.
const RFC5155_NOW: u32 = 1_262_304_000;
/// 2030-01-01T00:00:00Z, after both examples expired.
const LATER: u32 = 1_893_456_000;

fn name(text: &str) -> Name {
    parse_name(text, &Name::root()).expect("valid test name")
}

fn load(path: &Path, origin: &str, strip_dnssec: bool) -> Result<Zone> {
    let options = LoadOptions {
        strip_dnssec,
        ..LoadOptions::default()
    };
    let loaded = load_zone_file(path, &name(origin), &options)
        .with_context(|| format!("load {}", path.display()))?;
    Ok(loaded.zone)
}

fn describe(report: &VerifyReport) -> String {
    let lines: Vec<String> = report.errors.iter().map(|f| format!("  {f}")).collect();
    lines.join("\n")
}

// ---------------------------------------------------------------------------
// NSEC3 hashes and the example zones.

#[test]
fn nsec3_hashes_match_rfc5155() -> Result<()> {
    let Some(data) = keymaster_testutil::testdata("nsec3_hashes_match_rfc5155") else {
        return Ok(());
    };
    let text = std::fs::read_to_string(data.join("vectors/rfc5155-nsec3-hashes.txt"))?;
    let salt = [0xaa, 0xbb, 0xcc, 0xdd];
    let mut checked = 0;
    // The list of names ends where the expected chain begins.
    let names = text
        .split("# Expected NSEC3 chain")
        .next()
        .unwrap_or_default();
    for line in names
        .lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
    {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let hash = nsec3_hash(&name(fields[0]), &salt, 12);
        let label = keymaster_dnssec::nsec3::hash_label(&hash);
        assert_eq!(label, fields[1], "hash of {}", fields[0]);
        checked += 1;
    }
    assert_eq!(checked, 24);
    Ok(())
}

#[test]
fn rfc4035_example_verifies_in_window() -> Result<()> {
    let Some(data) = keymaster_testutil::testdata("rfc4035_example_verifies_in_window") else {
        return Ok(());
    };
    for file in [
        "vectors/rfc4035-appendix-A.signed.zone",
        "vectors/third-party/knot-rfc4035-like-example.zone.nsec",
    ] {
        let zone = load(&data.join(file), "example", false)?;
        // Knot re-signed its copy in 2015.
        let now = if file.contains("third-party") {
            time_inside_windows(&zone)
        } else {
            RFC4035_NOW
        };
        let report = verify_zone(&zone, now);
        assert!(report.is_valid(), "{file}:\n{}", describe(&report));
        assert!(report.stats.signatures >= 27, "{file}: {:?}", report.stats);
        let expired = verify_zone(&zone, time_after_windows(&zone));
        let count = expired
            .errors
            .iter()
            .filter(|f| matches!(f.problem, Problem::Expired { .. }))
            .count();
        assert_eq!(
            count, report.stats.signatures,
            "{file}: every signature expired"
        );
    }
    Ok(())
}

#[test]
fn rfc5155_example_verifies_in_window() -> Result<()> {
    let Some(data) = keymaster_testutil::testdata("rfc5155_example_verifies_in_window") else {
        return Ok(());
    };
    for file in [
        "vectors/rfc5155-appendix-A.signed.zone",
        "vectors/third-party/knot-rfc5155-optout-example.zone",
    ] {
        let zone = load(&data.join(file), "example", false)?;
        let report = verify_zone(&zone, RFC5155_NOW);
        assert!(report.is_valid(), "{file}:\n{}", describe(&report));
        assert_eq!(report.stats.nsec3, 12, "{file}");
        // NOTE: the example's keys are 512-bit RSA, which aws-lc-rs cannot
        // verify, so the 30 signatures are only checked for their fields.
        let unchecked = report
            .warnings
            .iter()
            .filter(|f| matches!(f.problem, Problem::Unverifiable { .. }))
            .count();
        assert_eq!(report.stats.signatures, 30, "{file}");
        assert_eq!(report.stats.verified + unchecked, 30, "{file}");
        let expired = verify_zone(&zone, LATER);
        assert!(!expired.is_valid(), "{file}: expired zone accepted");
    }
    Ok(())
}

#[test]
fn nsec_chain_matches_rfc4035() -> Result<()> {
    let Some(data) = keymaster_testutil::testdata("nsec_chain_matches_rfc4035") else {
        return Ok(());
    };
    let signed = load(
        &data.join("vectors/rfc4035-appendix-A.signed.zone"),
        "example",
        false,
    )?;
    let mut unsigned = signed.clone();
    unsigned.strip(&[Rtype::NSEC, Rtype::RRSIG], true);
    let chain = build_nsec_chain(&unsigned, 3600);
    let published: Vec<_> = signed
        .nodes()
        .filter_map(|node| node.rrset(Rtype::NSEC))
        .map(|rrset| (rrset.owner.clone(), rrset.rdatas.clone()))
        .collect();
    let built: Vec<_> = chain
        .iter()
        .map(|rrset| (rrset.owner.clone(), rrset.rdatas.clone()))
        .collect();
    assert_eq!(built.len(), 10);
    assert_eq!(built, published);
    Ok(())
}

#[test]
fn nsec3_chain_matches_rfc5155() -> Result<()> {
    let Some(data) = keymaster_testutil::testdata("nsec3_chain_matches_rfc5155") else {
        return Ok(());
    };
    let signed = load(
        &data.join("vectors/rfc5155-appendix-A.signed.zone"),
        "example",
        false,
    )?;
    let mut unsigned = signed.clone();
    unsigned.strip(&[Rtype::NSEC3, Rtype::RRSIG], true);
    let params = Nsec3Params {
        hash_algorithm: 1,
        flags: 0,
        iterations: 12,
        salt: Bytes::from_static(&[0xaa, 0xbb, 0xcc, 0xdd]),
    };
    let published: BTreeMap<Name, Vec<Bytes>> = signed
        .nodes()
        .filter_map(|node| node.rrset(Rtype::NSEC3))
        .map(|rrset| (rrset.owner.clone(), rrset.rdatas.clone()))
        .collect();
    let chain = build_nsec3_chain(&unsigned, &params, true, 3600)?;
    let built: BTreeMap<Name, Vec<Bytes>> = chain
        .iter()
        .map(|rrset| (rrset.owner.clone(), rrset.rdatas.clone()))
        .collect();
    assert_eq!(built.len(), 12);
    assert_eq!(built, published);

    // Without opt-out, the insecure delegation c.example gets the bitmap NS.
    let full = build_nsec3_chain(&unsigned, &params, false, 3600)?;
    assert_eq!(full.len(), 13);
    let c_hash = nsec3_hash(&name("c.example"), &params.salt, 12);
    let owner = keymaster_dnssec::nsec3::hashed_owner(&c_hash, &name("example"))?;
    let record = full
        .iter()
        .find(|rrset| rrset.owner == owner)
        .context("c.example NSEC3")?;
    let fields = Nsec3Fields::parse(&record.rdatas[0]).context("parse NSEC3")?;
    let ns_only: TypeBitmap = [Rtype::NS].into_iter().collect();
    assert_eq!(fields.types, ns_only);
    assert_eq!(fields.flags, 0);
    Ok(())
}

// ---------------------------------------------------------------------------
// Knot's semantic-check zones.

/// Knot's verdicts for its semantic-check zones, as (file, verdict, minimum
/// number of errors). "fatal" zones must fail to load or verify.
const SEMANTIC: &[(&str, &str, usize)] = &[
    ("soa.missing", "fatal", 1),
    ("soa.multiple", "fatal", 1),
    ("soa.duplicate", "clean", 0),
    ("soa.nonfirst", "clean", 0),
    ("soa.relative", "clean", 0),
    ("cname_extra_01.zone", "fatal", 1),
    ("cname_extra_02.signed", "fatal", 1),
    ("cname_multiple.zone", "fatal", 1),
    ("dname_children.zone", "fatal", 1),
    ("dname_multiple.zone", "fatal", 1),
    ("dname_extra_ns.zone", "fatal", 1),
    ("ds_apex.zone", "fatal", 1),
    ("deleg_apex.zone", "fatal", 1),
    ("ns_apex.missing", "error", 1),
    ("glue_apex_both.missing", "error", 2),
    ("glue_apex_one.missing", "error", 1),
    ("glue_besides.missing", "error", 1),
    ("glue_deleg.missing", "error", 1),
    ("glue_in_apex.missing", "error", 1),
    ("glue_in_deleg.valid", "clean", 0),
    ("glue_no_foreign.valid", "clean", 0),
    ("glue_wildcard.valid", "clean", 0),
    ("different_signer_name.signed", "error", 1),
    ("no_rrsig.signed", "error", 1),
    ("no_rrsig_with_delegation.signed", "error", 1),
    ("nsec_broken_chain_01.signed", "error", 1),
    ("nsec_broken_chain_02.signed", "error", 1),
    ("nsec_missing.signed", "error", 1),
    ("nsec_multiple.signed", "error", 1),
    ("nsec_wrong_bitmap_01.signed", "error", 1),
    ("nsec_wrong_bitmap_02.signed", "error", 1),
    ("nsec3_missing.signed", "error", 1),
    ("nsec3_optout_ent.invalid", "error", 1),
    ("nsec3_optout_ent.valid", "clean", 0),
    ("nsec3_optout_ent.all", "clean", 0),
    ("nsec3_wrong_bitmap_01.signed", "error", 1),
    ("nsec3_wrong_bitmap_02.signed", "error", 1),
    ("nsec3_ds.signed", "error", 1),
    ("nsec3_optout.signed", "error", 1),
    ("no_error_nsec3_optout.signed", "clean", 0),
    ("nsec3_chain_01.signed", "error", 1),
    ("nsec3_chain_02.signed", "error", 1),
    ("nsec3_chain_03.signed", "error", 1),
    ("nsec3_param_invalid.signed", "error", 2),
    ("rrsig_signed.signed", "error", 1),
    ("rrsig_rdata_ttl.signed", "error", 1),
    ("rrsig_ttl.signed", "clean", 0),
    ("duplicate.signature", "error", 1),
    ("missing.signed", "error", 1),
    ("delegation.signed", "error", 1),
    ("no_error_delegation_bitmap.signed", "clean", 0),
    ("nsec_nonauth.invalid", "error", 1),
    ("dname_apex_nsec3.signed", "clean", 0),
    ("dnskey_param_error.signed", "error", 1),
    ("dnskey_keytags.many", "error", 1),
    ("dnskey_keytags.more", "clean", 0),
    ("invalid_ds.signed", "error", 2),
    ("cdnskey.cds", "clean", 0),
    ("cdnskey.delete.both", "clean", 0),
    ("cdnskey.delete.invalid.cds", "error", 1),
    ("cdnskey.delete.invalid.cdnskey", "error", 1),
    ("cdnskey.invalid", "error", 1),
    ("cdnskey.invalid.param", "error", 1),
    ("cdnskey.nocds", "error", 1),
    ("cdnskey.nocdnskey", "error", 1),
    ("cdnskey.nodnskey", "error", 1),
    ("cdnskey.orphan.cds", "error", 1),
    ("cdnskey.orphan.cdnskey", "error", 1),
];

/// Returns a validation time inside the zone's signature windows: one
/// second after the latest inception, or 2020-01-01 for unsigned zones.
fn time_inside_windows(zone: &Zone) -> u32 {
    let signatures = zone
        .nodes()
        .flat_map(|node| &node.rrsets)
        .flat_map(|r| &r.signatures);
    let inceptions = signatures
        .filter_map(Rrsig::parse)
        .map(|rrsig| rrsig.inception);
    inceptions.max().map_or(1_577_836_800, |latest| latest + 1)
}

/// Returns a validation time after every signature of the zone expired.
fn time_after_windows(zone: &Zone) -> u32 {
    let signatures = zone
        .nodes()
        .flat_map(|node| &node.rrsets)
        .flat_map(|r| &r.signatures);
    let expirations = signatures
        .filter_map(Rrsig::parse)
        .map(|rrsig| rrsig.expiration);
    expirations.max().map_or(LATER, |latest| latest + 1)
}

/// Returns the files listed in SEMANTIC.md as unreachable verdicts.
fn known_mismatches(manifest_dir: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(manifest_dir.join("tests/SEMANTIC.md")).unwrap_or_default();
    let rows = text.lines().filter_map(|line| line.strip_prefix("| `"));
    rows.filter_map(|rest| rest.split('`').next().map(str::to_string))
        .collect()
}

#[test]
fn knot_semantic_zones_get_expected_verdicts() -> Result<()> {
    let Some(data) = keymaster_testutil::testdata("knot_semantic_zones_get_expected_verdicts")
    else {
        return Ok(());
    };
    let folder = data.join("zones/semantic/knot-semantic-check");
    let known = known_mismatches(Path::new(env!("CARGO_MANIFEST_DIR")));
    let mut mismatches = Vec::new();
    for &(file, verdict, minimum) in SEMANTIC {
        let outcome = match load(&folder.join(file), "example.com", false) {
            Err(error) => Err(format!("{error:#}")),
            Ok(zone) => Ok(verify_zone(&zone, time_inside_windows(&zone))),
        };
        let matched = match (&outcome, verdict) {
            (Err(_), "fatal") => true,
            (Ok(report), "fatal") => !report.is_valid(),
            (Ok(report), "error") => report.errors.len() >= minimum,
            (Ok(report), "clean") => report.is_valid(),
            _ => false,
        };
        let summary = match &outcome {
            Err(error) => format!("load failed: {error}"),
            Ok(report) => format!("{} errors\n{}", report.errors.len(), describe(report)),
        };
        eprintln!("{file}: expected {verdict}, got {summary}");
        if !matched && !known.iter().any(|name| name == file) {
            mismatches.push(format!(
                "{file}: expected {verdict} ({minimum}), got {summary}"
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "mismatches:\n{}",
        mismatches.join("\n")
    );
    Ok(())
}

// ---------------------------------------------------------------------------
// Signing, checked by our validator and by BIND, ldns and Knot.

/// Returns the current time; `dnssec-verify` cannot be given another.
fn now() -> u32 {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970");
    since_epoch.as_secs() as u32
}

/// Signature inception for freshly signed zones: one day ago.
fn inception() -> u32 {
    now() - 86_400
}

fn signing_key(pair: KeyPair, key_flags: u16, ksk: bool, zsk: bool) -> SigningKey {
    SigningKey {
        dnskey: pair.dnskey_rdata(key_flags),
        key_tag: pair.key_tag(key_flags),
        signs_keys: ksk,
        signs_zone: zsk,
        published: true,
        signer: Arc::new(pair),
    }
}

fn ksk_zsk(algorithm: Algorithm) -> Result<Vec<SigningKey>> {
    let ksk = KeyPair::generate(algorithm, None)?;
    let zsk = KeyPair::generate(algorithm, None)?;
    Ok(vec![
        signing_key(ksk, flags::ZONE | flags::SEP, true, false),
        signing_key(zsk, flags::ZONE, false, true),
    ])
}

fn options(denial: Denial) -> SignOptions {
    let inception = inception();
    SignOptions {
        inception,
        expiration: inception + 30 * 86_400,
        dnskey_expiration: inception + 60 * 86_400,
        jitter: 3 * 86_400,
        dnskey_ttl: 3600,
        denial,
        cds: Vec::new(),
        cdnskey: Vec::new(),
        extra_dnskeys: Vec::new(),
        deterministic: false,
        previous: None,
    }
}

fn nsec3(opt_out: bool) -> Denial {
    Denial::Nsec3 {
        iterations: 0,
        salt: Bytes::from_static(&[0x1a, 0x2b]),
        opt_out,
    }
}

/// Runs an external validator and fails with its output if it rejects the file.
fn run_tool(test: &str, tool: &str, args: &[&str], file: &Path) -> Result<bool> {
    let Some(path) = keymaster_testutil::tool(test, tool) else {
        return Ok(false);
    };
    let output = Command::new(&path).args(args).arg(file).output()?;
    if !output.status.success() {
        bail!(
            "{tool} rejected {}:\n{}\n{}",
            file.display(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(true)
}

/// Signs `zone`, writes it out, and checks it with our validator and the
/// external ones. Returns the path of the written file.
fn sign_and_check(
    test: &str,
    zone: &Zone,
    keys: &[SigningKey],
    options: &SignOptions,
    dir: &Path,
    label: &str,
    tools: &[&str],
) -> Result<PathBuf> {
    let signed = sign_zone(zone.clone(), keys, options, None)?;
    eprintln!("{label}: {:?}", signed.stats);
    let report = verify_zone(&signed.zone, now());
    eprintln!("{label}: validated in {:?}", report.stats.duration);
    assert!(
        report.is_valid(),
        "{label}: our validator:\n{}",
        describe(&report)
    );
    assert_eq!(report.stats.verified, report.stats.signatures, "{label}");
    assert_eq!(signed.stats.signatures, report.stats.signatures, "{label}");

    let path = dir.join(format!("{label}.zone"));
    write_zone(&signed.zone, std::fs::File::create(&path)?)?;
    let origin = zone.origin().to_string();
    for &tool in tools {
        match tool {
            "dnssec-verify" => run_tool(test, tool, &["-q", "-o", &origin], &path)?,
            // A CSK carries the SEP flag; -z stops BIND from asking for a
            // separate key without it.
            "dnssec-verify -z" => run_tool(test, "dnssec-verify", &["-z", "-o", &origin], &path)?,
            "ldns-verify-zone" => run_tool(test, tool, &[], &path)?,
            "kzonecheck" => run_tool(test, tool, &["-o", &origin], &path)?,
            _ => bail!("unknown tool {tool}"),
        };
    }
    Ok(path)
}

const ALL_TOOLS: [&str; 3] = ["dnssec-verify", "ldns-verify-zone", "kzonecheck"];

#[test]
fn root_zone_signs_and_validates() -> Result<()> {
    let test = "root_zone_signs_and_validates";
    let Some(data) = keymaster_testutil::testdata(test) else {
        return Ok(());
    };
    let dir = tempfile::tempdir()?;
    let keys = ksk_zsk(Algorithm::EcdsaP256Sha256)?;
    let inputs = [
        ("root-2023", "zones/real/root-2023051100.zone"),
        (
            "root-verisign",
            "vectors/zonemd-verisign/45-root-zone/root.zone.unsigned",
        ),
    ];
    for (label, file) in inputs {
        let zone = load(&data.join(file), ".", true)?;
        for (suffix, denial) in [("nsec", Denial::Nsec), ("nsec3", nsec3(false))] {
            let label = format!("{label}-{suffix}");
            sign_and_check(
                test,
                &zone,
                &keys,
                &options(denial),
                dir.path(),
                &label,
                &ALL_TOOLS,
            )?;
        }
    }
    let zone = load(&data.join(inputs[0].1), ".", true)?;
    let label = "root-2023-optout";
    sign_and_check(
        test,
        &zone,
        &keys,
        &options(nsec3(true)),
        dir.path(),
        label,
        &ALL_TOOLS,
    )?;
    Ok(())
}

const SMALL_ZONE: &str = "\
$ORIGIN example.
$TTL 3600
@ IN SOA ns1 hostmaster 1 7200 3600 1209600 300
@ NS ns1
@ NS ns.other.test.
@ MX 10 mail
ns1 A 192.0.2.1
mail A 192.0.2.2
mail AAAA 2001:db8::2
*.wild TXT \"wildcard\"
a.b.c.deep A 192.0.2.3
secure NS ns.secure
secure DS 12345 13 2 0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF
ns.secure A 192.0.2.4
insecure NS ns.insecure
ns.insecure A 192.0.2.5
";

fn small_zone(dir: &Path) -> Result<Zone> {
    let path = dir.join("small.zone");
    std::fs::write(&path, SMALL_ZONE)?;
    load(&path, "example", false)
}

#[test]
fn small_zone_signs_with_each_algorithm() -> Result<()> {
    let test = "small_zone_signs_with_each_algorithm";
    let dir = tempfile::tempdir()?;
    let zone = small_zone(dir.path())?;
    for (label, algorithm) in [
        ("rsasha256", Algorithm::RsaSha256),
        ("ed25519", Algorithm::Ed25519),
        ("p384", Algorithm::EcdsaP384Sha384),
    ] {
        let keys = ksk_zsk(algorithm)?;
        sign_and_check(
            test,
            &zone,
            &keys,
            &options(Denial::Nsec),
            dir.path(),
            label,
            &ALL_TOOLS,
        )?;
    }

    // A single CSK, with NSEC3 opt-out.
    let csk = KeyPair::generate(Algorithm::EcdsaP256Sha256, None)?;
    let keys = [signing_key(csk, flags::ZONE | flags::SEP, true, true)];
    let tools = ["dnssec-verify -z", "ldns-verify-zone", "kzonecheck"];
    let path = sign_and_check(
        test,
        &zone,
        &keys,
        &options(nsec3(true)),
        dir.path(),
        "csk",
        &tools,
    )?;
    let text = std::fs::read_to_string(path)?;
    assert!(text.contains("NSEC3PARAM"), "NSEC3PARAM published");
    Ok(())
}

#[test]
fn signer_skips_glue_and_delegation_ns() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let zone = small_zone(dir.path())?;
    let keys = ksk_zsk(Algorithm::Ed25519)?;
    let signed = sign_zone(zone.clone(), &keys, &options(Denial::Nsec), None)?.zone;
    let rrset = |owner: &str, rtype| signed.rrset(&name(owner), rtype).context("rrset present");
    assert!(rrset("secure.example", Rtype::NS)?.signatures.is_empty());
    assert!(rrset("ns.secure.example", Rtype::A)?.signatures.is_empty());
    assert!(rrset("ns.insecure.example", Rtype::A)?
        .signatures
        .is_empty());
    assert_eq!(rrset("secure.example", Rtype::DS)?.signatures.len(), 1);
    assert_eq!(rrset("insecure.example", Rtype::NSEC)?.signatures.len(), 1);
    assert!(signed
        .rrset(&name("ns.secure.example"), Rtype::NSEC)
        .is_none());
    // The DNSKEY RRset is signed by the KSK alone, the SOA by the ZSK alone.
    let dnskey_sig =
        Rrsig::parse(&rrset("example", Rtype::DNSKEY)?.signatures[0]).context("rrsig")?;
    assert_eq!(dnskey_sig.key_tag, keys[0].key_tag);
    let soa_sig = Rrsig::parse(&rrset("example", Rtype::SOA)?.signatures[0]).context("rrsig")?;
    assert_eq!(soa_sig.key_tag, keys[1].key_tag);
    // RFC 4034 section 3.1.3: the wildcard label is not counted.
    let wild =
        Rrsig::parse(&rrset("*.wild.example", Rtype::TXT)?.signatures[0]).context("rrsig")?;
    assert_eq!(wild.labels, 2);
    Ok(())
}

#[test]
fn jitter_is_same_on_two_runs() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let zone = small_zone(dir.path())?;
    let keys = ksk_zsk(Algorithm::Ed25519)?;
    // One reading of the clock for both runs, or a second boundary between
    // them changes the inception.
    let options = options(Denial::Nsec);
    let first = sign_zone(zone.clone(), &keys, &options, None)?.zone;
    let second = sign_zone(zone, &keys, &options, None)?.zone;
    // Ed25519 signatures are deterministic (RFC 8032), so whole zones match.
    assert_eq!(first, second);
    let expirations: Vec<u32> = first
        .nodes()
        .flat_map(|node| &node.rrsets)
        .flat_map(|rrset| &rrset.signatures)
        .filter_map(Rrsig::parse)
        .map(|rrsig| rrsig.expiration)
        .collect();
    let distinct: std::collections::BTreeSet<u32> = expirations.iter().copied().collect();
    assert!(distinct.len() > 5, "expirations spread: {distinct:?}");
    Ok(())
}

#[test]
fn resign_replaces_only_expiring() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let zone = small_zone(dir.path())?;
    let keys = ksk_zsk(Algorithm::Ed25519)?;
    let mut signed = sign_zone(zone, &keys, &options(Denial::Nsec), None)?.zone;
    let total: usize = signed
        .nodes()
        .flat_map(|n| &n.rrsets)
        .map(|r| r.signatures.len())
        .sum();

    let mut later = options(Denial::Nsec);
    later.inception += 86_400;
    later.expiration += 86_400;
    later.dnskey_expiration += 86_400;
    // Nothing expires before the inception: no new signatures.
    let made = keymaster_dnssec::resign_expiring(&mut signed, &keys, &later, inception())?;
    assert_eq!(made, 0);
    // The ZSK signatures expire within 30 days, the KSK's after 57 or more.
    let made =
        keymaster_dnssec::resign_expiring(&mut signed, &keys, &later, inception() + 40 * 86_400)?;
    assert_eq!(made, total - 1);
    // A new ZSK replaces the old one's signatures.
    let mut rolled = keys.clone();
    rolled[1] = signing_key(
        KeyPair::generate(Algorithm::Ed25519, None)?,
        flags::ZONE,
        false,
        true,
    );
    let made = keymaster_dnssec::resign_expiring(&mut signed, &rolled, &later, inception())?;
    assert_eq!(made, total - 1);
    Ok(())
}

// ---------------------------------------------------------------------------
// Tampering: each change must be reported.

fn signed_small(denial: Denial) -> Result<Zone> {
    let dir = tempfile::tempdir()?;
    let zone = small_zone(dir.path())?;
    let keys = ksk_zsk(Algorithm::EcdsaP256Sha256)?;
    let signed = sign_zone(zone, &keys, &options(denial), None)?.zone;
    assert!(verify_zone(&signed, now()).is_valid());
    Ok(signed)
}

#[test]
fn tampered_signature_is_reported() -> Result<()> {
    let mut zone = signed_small(Denial::Nsec)?;
    let node = zone.get_mut(&name("mail.example")).context("mail node")?;
    let rrset = node.rrset_mut(Rtype::A).context("mail A")?;
    let mut rdata = rrset.signatures[0].to_vec();
    let last = rdata.len() - 1;
    rdata[last] ^= 0x01;
    rrset.signatures[0] = Bytes::from(rdata);
    let report = verify_zone(&zone, now());
    assert_eq!(report.errors.len(), 1, "{}", describe(&report));
    assert!(matches!(
        report.errors[0].problem,
        Problem::BadSignature { .. }
    ));
    assert_eq!(report.errors[0].owner, name("mail.example"));
    Ok(())
}

#[test]
fn dropped_nsec3_is_reported() -> Result<()> {
    let mut zone = signed_small(nsec3(false))?;
    let owner = zone
        .nodes()
        .find(|node| node.has(Rtype::NSEC3))
        .map(|node| node.name.clone())
        .context("an NSEC3 node")?;
    zone.remove_rrset(&owner, Rtype::NSEC3);
    let report = verify_zone(&zone, now());
    assert!(
        report
            .errors
            .iter()
            .any(|f| matches!(f.problem, Problem::MissingNsec3 { .. })),
        "{}",
        describe(&report)
    );
    assert!(report
        .errors
        .iter()
        .any(|f| matches!(f.problem, Problem::Nsec3Next { .. })));
    Ok(())
}

#[test]
fn changed_bitmap_is_reported() -> Result<()> {
    let mut zone = signed_small(Denial::Nsec)?;
    let node = zone.get_mut(&name("ns1.example")).context("ns1 node")?;
    let nsec = node.rrset_mut(Rtype::NSEC).context("ns1 NSEC")?;
    let fields = keymaster_dnssec::rdata::NsecFields::parse(&nsec.rdatas[0]).context("parse")?;
    let mut types = fields.types.clone();
    types.insert(Rtype::AAAA);
    nsec.rdatas[0] = keymaster_dnssec::rdata::NsecFields::build(&fields.next, &types);
    let report = verify_zone(&zone, now());
    assert!(
        report
            .errors
            .iter()
            .any(|f| matches!(f.problem, Problem::Bitmap { .. })),
        "{}",
        describe(&report)
    );
    // The NSEC signature no longer matches either.
    assert!(report
        .errors
        .iter()
        .any(|f| matches!(f.problem, Problem::BadSignature { .. })));
    Ok(())
}

// ---------------------------------------------------------------------------
// The sampled signature check.

/// Signs a zone of `hosts` A records named h0 to h(hosts-1), with NSEC3.
fn signed_hosts(dir: &Path, hosts: usize) -> Result<Zone> {
    let mut text = String::from(
        "$TTL 3600\n@ SOA ns hostmaster 1 7200 3600 1209600 3600\n@ NS ns\nns A 192.0.2.1\n",
    );
    for host in 0..hosts {
        text.push_str(&format!("h{host} A 10.0.{}.{}\n", host / 256, host % 256));
    }
    let path = dir.join("hosts.zone");
    std::fs::write(&path, text)?;
    let zone = load(&path, "example", false)?;
    let keys = ksk_zsk(Algorithm::EcdsaP256Sha256)?;
    Ok(sign_zone(zone, &keys, &options(nsec3(false)), None)?.zone)
}

/// Flips the last octet of the first signature over `owner` `rtype`.
fn corrupt(zone: &mut Zone, owner: &Name, rtype: Rtype) -> Result<()> {
    let node = zone.get_mut(owner).context("node present")?;
    let rrset = node.rrset_mut(rtype).context("rrset present")?;
    let mut rdata = rrset.signatures[0].to_vec();
    let last = rdata.len() - 1;
    rdata[last] ^= 0x01;
    rrset.signatures[0] = Bytes::from(rdata);
    Ok(())
}

fn sampled(zone: &Zone) -> VerifyReport {
    let options = VerifyOptions {
        now: now(),
        signatures: SignatureCheck::Sample,
    };
    verify_zone_with(zone, &options)
}

#[test]
fn sampled_check_finds_bad_records() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let hosts = 2000;
    let signed = signed_hosts(dir.path(), hosts)?;
    let report = sampled(&signed);
    assert!(report.is_valid(), "{}", describe(&report));
    let stats = &report.stats;
    assert_eq!(stats.verified + stats.not_sampled, stats.signatures);
    // Two classes (A and NSEC3 records below the apex) of about 2,000
    // signatures each: 16 of each plus one in 32 of the rest is verified.
    let expected = 2 * SAMPLE_PER_CLASS as usize + 2 * hosts / SAMPLE_ONE_IN as usize;
    assert!(
        stats.verified > expected / 2 && stats.verified < expected * 2,
        "{} verified, about {expected} expected",
        stats.verified
    );
    assert!(stats.not_sampled > stats.signatures / 2);

    // A bad signature over the apex is always found.
    let mut zone = signed.clone();
    corrupt(&mut zone, &name("example"), Rtype::SOA)?;
    let report = sampled(&zone);
    assert!(
        report
            .errors
            .iter()
            .any(|f| matches!(f.problem, Problem::BadSignature { .. })),
        "{}",
        describe(&report)
    );

    // In canonical order h0, h1, h10, h100... come first: h0 is among the
    // first 16 A signatures of its class, so it is always verified.
    let mut zone = signed.clone();
    corrupt(&mut zone, &name("h0.example"), Rtype::A)?;
    let report = sampled(&zone);
    assert!(
        report
            .errors
            .iter()
            .any(|f| f.owner == name("h0.example")
                && matches!(f.problem, Problem::BadSignature { .. })),
        "{}",
        describe(&report)
    );

    // Fields, coverage and the chain are checked on every record: a
    // signature removed, or one whose original TTL was changed, anywhere
    // in the zone, is found.
    let mut zone = signed.clone();
    let owner = name("h999.example");
    zone.get_mut(&owner)
        .and_then(|node| node.rrset_mut(Rtype::A))
        .context("h999 A")?
        .signatures
        .clear();
    let report = sampled(&zone);
    assert!(
        report
            .errors
            .iter()
            .any(|f| f.owner == owner && matches!(f.problem, Problem::MissingSignature { .. })),
        "{}",
        describe(&report)
    );
    let mut zone = signed;
    let rrset = zone
        .get_mut(&owner)
        .and_then(|node| node.rrset_mut(Rtype::A))
        .context("h999 A")?;
    rrset.ttl += 1;
    let report = sampled(&zone);
    assert!(
        report
            .errors
            .iter()
            .any(|f| f.owner == owner && matches!(f.problem, Problem::OriginalTtl { .. })),
        "{}",
        describe(&report)
    );
    Ok(())
}

#[test]
fn full_check_finds_every_bad_signature() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let mut zone = signed_hosts(dir.path(), 300)?;
    for host in [57, 158, 299] {
        corrupt(&mut zone, &name(&format!("h{host}.example")), Rtype::A)?;
    }
    let report = verify_zone(&zone, now());
    let bad = report
        .errors
        .iter()
        .filter(|f| matches!(f.problem, Problem::BadSignature { .. }))
        .count();
    assert_eq!(bad, 3, "{}", describe(&report));
    assert_eq!(report.stats.not_sampled, 0);
    Ok(())
}

// ---------------------------------------------------------------------------
// Signing in batches.

/// Collects what `sign_zone_streamed` hands over.
#[derive(Default)]
struct Collected {
    begun: usize,
    text: String,
    nodes: usize,
    fail_after: Option<usize>,
}

impl SignedNodes for Collected {
    fn begin(&mut self, zone: &Zone) -> std::io::Result<()> {
        self.begun += 1;
        assert!(zone.apex().is_some_and(|apex| apex.has(Rtype::DNSKEY)));
        Ok(())
    }

    fn nodes(&mut self, nodes: &[(&Node, NodeKind)]) -> std::io::Result<()> {
        if self.fail_after.is_some_and(|limit| self.nodes >= limit) {
            return Err(std::io::Error::other("disk full"));
        }
        for (node, _) in nodes {
            node_to_text(node, &name("example"), &mut self.text);
        }
        self.nodes += nodes.len();
        Ok(())
    }
}

#[test]
fn streamed_signing_matches_whole_zone() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let mut text =
        String::from("$TTL 3600\n@ SOA ns hostmaster 1 7200 3600 1209600 3600\n@ NS ns\n");
    text.push_str("ns A 192.0.2.1\n*.wild TXT \"any\"\nsub NS ns.sub\nns.sub A 192.0.2.9\n");
    for host in 0..9000 {
        text.push_str(&format!("h{host} A 10.0.{}.{}\n", host / 256, host % 256));
    }
    let path = dir.path().join("batches.zone");
    std::fs::write(&path, text)?;
    let zone = load(&path, "example", false)?;
    // Ed25519 signatures are deterministic, so both runs must match octet
    // for octet.
    let keys = ksk_zsk(Algorithm::Ed25519)?;
    let options = options(nsec3(false));

    let whole = sign_zone(zone.clone(), &keys, &options, None)?;
    let mut expected = Vec::new();
    write_zone(&whole.zone, &mut expected)?;

    let mut sink = Collected::default();
    let streamed = sign_zone_streamed(zone.clone(), &keys, &options, None, &mut sink)?;
    assert_eq!(sink.begun, 1);
    assert_eq!(sink.nodes, whole.zone.node_count());
    assert_eq!(streamed.stats.signatures, whole.stats.signatures);
    assert!(
        sink.text == String::from_utf8(expected)?,
        "streamed text differs"
    );
    // Only the apex keeps its signatures.
    let signed_nodes: Vec<&Name> = streamed
        .zone
        .nodes()
        .filter(|node| node.rrsets.iter().any(|rrset| !rrset.signatures.is_empty()))
        .map(|node| &node.name)
        .collect();
    assert_eq!(signed_nodes, [&name("example")]);

    // A failing sink stops the run with its error.
    let mut failing = Collected {
        fail_after: Some(1),
        ..Collected::default()
    };
    let error =
        sign_zone_streamed(zone, &keys, &options, None, &mut failing).expect_err("the sink failed");
    assert!(
        matches!(error, keymaster_dnssec::SignError::Output { .. }),
        "{error}"
    );
    Ok(())
}

// ---------------------------------------------------------------------------
// Deterministic signing: primaries holding the same keys and times publish
// the same signed zone.

/// Loads the KSK and ZSK of one primary afresh from the PKCS #8 documents
/// that every primary shares.
fn primary_keys(documents: &[(Algorithm, Vec<u8>); 2]) -> Result<Vec<SigningKey>> {
    let [(ksk_algorithm, ksk), (zsk_algorithm, zsk)] = documents;
    let ksk = KeyPair::from_pkcs8(*ksk_algorithm, ksk)?;
    let zsk = KeyPair::from_pkcs8(*zsk_algorithm, zsk)?;
    Ok(vec![
        signing_key(ksk, flags::ZONE | flags::SEP, true, false),
        signing_key(zsk, flags::ZONE, false, true),
    ])
}

/// Signs `zone` as a new primary would, with its own key objects, and
/// returns the signed zone as master-file text.
fn sign_as_primary(
    zone: &Zone,
    documents: &[(Algorithm, Vec<u8>); 2],
    options: &SignOptions,
) -> Result<Vec<u8>> {
    let keys = primary_keys(documents)?;
    let signed = sign_zone(zone.clone(), &keys, options, None)?;
    let mut text = Vec::new();
    write_zone(&signed.zone, &mut text)?;
    Ok(text)
}

/// Returns the first line where two master files differ, for messages.
fn first_difference(first: &[u8], second: &[u8]) -> String {
    let first = String::from_utf8_lossy(first);
    let second = String::from_utf8_lossy(second);
    let pairs = first.lines().zip(second.lines());
    match pairs.enumerate().find(|(_, (a, b))| a != b) {
        Some((index, (a, b))) => format!("line {}:\n  {a}\n  {b}", index + 1),
        None => "one file is a prefix of the other".to_string(),
    }
}

#[test]
fn deterministic_signing_gives_identical_zones() -> Result<()> {
    let test = "deterministic_signing_gives_identical_zones";
    let dir = tempfile::tempdir()?;
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/example.com.zone");
    let example = load(&example, "example.com", false)?;
    let mut cases = vec![
        ("example.com", &example, Algorithm::EcdsaP256Sha256),
        ("example.com", &example, Algorithm::EcdsaP384Sha384),
    ];
    // A zone of 10,000 records, so that signing spreads over every thread.
    // P-256 only: RFC 6979 P-384 signs too slowly for a test of this size.
    let huge = match keymaster_testutil::testdata(test) {
        Some(data) => Some(load(
            &data.join("zones/real/nsd-xfr_huge.zone"),
            "huge.example",
            true,
        )?),
        None => None,
    };
    if let Some(zone) = &huge {
        cases.push(("huge.example", zone, Algorithm::EcdsaP256Sha256));
    }

    // One set of times for every run, as a shared store would hand them out.
    let mut options = options(nsec3(false));
    for (label, zone, algorithm) in cases {
        let label = format!("{label}-{algorithm}");
        let documents = [
            (
                algorithm,
                KeyPair::generate(algorithm, None)?.to_pkcs8().to_vec(),
            ),
            (
                algorithm,
                KeyPair::generate(algorithm, None)?.to_pkcs8().to_vec(),
            ),
        ];

        // Two primaries in deterministic mode agree byte for byte.
        options.deterministic = true;
        let first = sign_as_primary(zone, &documents, &options)?;
        let second = sign_as_primary(zone, &documents, &options)?;
        assert!(
            first == second,
            "{label}: deterministic runs differ at {}",
            first_difference(&first, &second)
        );

        // BIND and ldns accept the output.
        let path = dir.path().join(format!("{label}.zone"));
        std::fs::write(&path, &first)?;
        let origin = zone.origin().to_string();
        run_tool(test, "dnssec-verify", &["-q", "-o", &origin], &path)?;
        run_tool(test, "ldns-verify-zone", &[], &path)?;

        // With random nonces the same two runs differ, so the comparison
        // above can fail.
        options.deterministic = false;
        let first = sign_as_primary(zone, &documents, &options)?;
        let second = sign_as_primary(zone, &documents, &options)?;
        assert!(first != second, "{label}: random ECDSA runs agree");
    }
    Ok(())
}

/// Writes a zone of `hosts` A records named h0 upwards with serial
/// `serial`, where host `changed` gets another address and host `dropped`
/// is left out, and loads it.
fn hosts_version(dir: &Path, serial: u32, changed: usize, dropped: usize) -> Result<Zone> {
    let mut text = format!(
        "$TTL 3600\n@ SOA ns hostmaster {serial} 7200 3600 1209600 3600\n@ NS ns\nns A 192.0.2.1\n"
    );
    for host in (0..300).filter(|&host| host != dropped) {
        let last = if host == changed { 255 } else { host % 200 };
        text.push_str(&format!("h{host} A 10.0.{}.{last}\n", host / 200));
    }
    let path = dir.join(format!("hosts-{serial}.zone"));
    std::fs::write(&path, text)?;
    load(&path, "example", false)
}

#[test]
fn previous_signatures_are_reused_only_where_identical() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let algorithm = Algorithm::EcdsaP256Sha256;
    let documents = [
        (
            algorithm,
            KeyPair::generate(algorithm, None)?.to_pkcs8().to_vec(),
        ),
        (
            algorithm,
            KeyPair::generate(algorithm, None)?.to_pkcs8().to_vec(),
        ),
    ];
    // Version 1 has every host; version 2 changes h7 and drops h9.
    let first = hosts_version(dir.path(), 1, usize::MAX, usize::MAX)?;
    let second = hosts_version(dir.path(), 2, 7, 9)?;

    for denial in [Denial::Nsec, nsec3(false)] {
        let mut options = options(denial.clone());
        options.deterministic = true;
        let keys = primary_keys(&documents)?;
        let before = sign_zone(first.clone(), &keys, &options, None)?;
        let total = before.stats.signatures;

        // Signing version 2 from version 1 gives what a full signing gives.
        let full = sign_as_primary(&second, &documents, &options)?;
        let mut reusing = options.clone();
        reusing.previous = Some(Arc::new(before.zone.clone()));
        let after = sign_zone(second.clone(), &keys, &reusing, None)?;
        let mut text = Vec::new();
        write_zone(&after.zone, &mut text)?;
        assert!(
            text == full,
            "{denial:?}: signing with reuse differs from a full signing at {}",
            first_difference(&text, &full)
        );

        // Only the changed RRsets are signed again: the SOA, h7's A RRset,
        // and the NSEC or NSEC3 records next to h9, which is gone. The
        // rest is taken over.
        let stats = &after.stats;
        assert!(
            stats.signatures <= 6,
            "{denial:?}: {} signatures made, {} reused",
            stats.signatures,
            stats.reused
        );
        assert_eq!(
            stats.signatures + stats.reused,
            total - 2,
            "{denial:?}: h9's A RRset and its NSEC or NSEC3 record drop out"
        );

        // With other signature times, nothing of version 1 fits.
        let mut later = reusing.clone();
        later.inception += 3600;
        later.expiration += 3600;
        later.dnskey_expiration += 3600;
        let moved = sign_zone(second.clone(), &keys, &later, None)?;
        assert_eq!(moved.stats.reused, 0, "{denial:?}: reused across times");

        // Another ZSK takes over none of the old ZSK's signatures, and
        // the KSK's DNSKEY signature is made again because the DNSKEY
        // RRset changed.
        let zsk = KeyPair::generate(algorithm, None)?;
        let rolled = vec![keys[0].clone(), signing_key(zsk, flags::ZONE, false, true)];
        let rolled = sign_zone(second.clone(), &rolled, &reusing, None)?;
        assert_eq!(
            rolled.stats.reused, 0,
            "{denial:?}: reused another key's signatures"
        );
    }
    Ok(())
}
