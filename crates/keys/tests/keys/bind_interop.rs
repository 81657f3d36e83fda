//! Key files exchanged with BIND 9: keys made by `dnssec-keygen` load, and
//! keys written by this crate sign a zone with `dnssec-signzone` that
//! `dnssec-verify` accepts.

use std::path::Path;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use keymaster_keys::bind::{self, BindKey, Timing};
use keymaster_keys::{flags, verify, Algorithm, KeyPair};
use keymaster_testutil::tool;

use crate::presentation::{name, rdata, record, Rrsig, TextRecord};

fn run(command: &mut Command) -> String {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("start {command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

#[test]
fn dnssec_keygen_keys_load() {
    let Some(keygen) = tool("dnssec_keygen_keys_load", "dnssec-keygen") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("ECDSAP256SHA256", None, Algorithm::EcdsaP256Sha256),
        ("ECDSAP384SHA384", None, Algorithm::EcdsaP384Sha384),
        ("ED25519", None, Algorithm::Ed25519),
        ("RSASHA256", Some("2048"), Algorithm::RsaSha256),
        ("RSASHA512", Some("3072"), Algorithm::RsaSha512),
    ];
    for (mnemonic, bits, algorithm) in cases {
        let mut command = Command::new(&keygen);
        command
            .arg("-q")
            .arg("-K")
            .arg(dir.path())
            .args(["-a", mnemonic]);
        command.args(["-f", "KSK", "-n", "ZONE"]);
        if let Some(bits) = bits {
            command.args(["-b", bits]);
        }
        let stem = run(command.arg("example.test")).trim().to_string();
        let tag: u16 = stem.rsplit('+').next().unwrap().parse().unwrap();

        let key = bind::read(&dir.path().join(&stem)).unwrap_or_else(|e| panic!("{stem}: {e}"));
        assert_eq!(key.key.algorithm(), algorithm, "{stem}");
        assert_eq!(key.key_tag(), tag, "{stem}");
        assert_eq!(key.flags, flags::ZONE | flags::SEP, "{stem}");
        assert_eq!(key.owner, name("example.test."));
        assert!(key.timing.created.is_some(), "{stem}");
        assert_eq!(key.file_stem(), stem);

        // The .key file has our public key, which verifies our signature.
        let public = bind::parse_public(
            &std::fs::read_to_string(dir.path().join(format!("{stem}.key"))).unwrap(),
        )
        .unwrap();
        assert_eq!(key.key.public_key(), public.dnskey.public_key, "{stem}");
        let signature = key.key.sign(b"signed data").unwrap();
        let result = verify(
            algorithm.to_u8(),
            &public.dnskey.public_key,
            b"signed data",
            &signature,
        );
        assert_eq!(result, Ok(()), "{stem}");
    }
}

/// Writes a KSK and a ZSK of `algorithm` for `zone` into `dir`.
fn write_keys(dir: &Path, zone: &str, algorithm: Algorithm) -> (BindKey, BindKey) {
    let start = now() - 3600;
    let timing = Timing {
        created: Some(start),
        publish: Some(start),
        activate: Some(start),
        ..Timing::default()
    };
    let make = |flags| BindKey {
        owner: name(zone),
        ttl: Some(3600),
        flags,
        key: KeyPair::generate(algorithm, None).unwrap(),
        timing,
    };
    let (ksk, zsk) = (make(flags::ZONE | flags::SEP), make(flags::ZONE));
    for key in [&ksk, &zsk] {
        let (public, private) = bind::write(dir, key).unwrap();
        let mode = |path: &Path| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::metadata(path).unwrap().permissions().mode() & 0o777
        };
        assert_eq!(mode(&private), 0o600, "{}", private.display());
        assert_eq!(mode(&public), 0o644, "{}", public.display());

        // Our own reader returns the same key.
        let again = bind::read(&public).unwrap();
        assert_eq!(again.key.public_key(), key.key.public_key());
        assert_eq!(again.timing, key.timing);
    }
    (ksk, zsk)
}

/// Returns the records of a zone file written with `-O full`.
fn full_records(text: &str) -> Vec<TextRecord> {
    text.lines()
        .filter(|line| !line.trim().is_empty() && !line.starts_with(';'))
        .map(record)
        .collect()
}

#[test]
fn exported_keys_sign_with_bind() {
    let test = "exported_keys_sign_with_bind";
    let (Some(signzone), Some(verifier)) =
        (tool(test, "dnssec-signzone"), tool(test, "dnssec-verify"))
    else {
        return;
    };
    let cases = [
        (Algorithm::EcdsaP256Sha256, false),
        (Algorithm::EcdsaP384Sha384, false),
        (Algorithm::Ed25519, true),
        (Algorithm::RsaSha256, true),
        (Algorithm::RsaSha512, true),
    ];
    for (algorithm, deterministic) in cases {
        let dir = tempfile::tempdir().unwrap();
        let zone = "example.test.";
        let (ksk, zsk) = write_keys(dir.path(), zone, algorithm);

        let zone_file = dir.path().join("example.test.zone");
        let mut text = String::from(
            "$TTL 3600\n\
             @ IN SOA ns1.example.test. hostmaster.example.test. 1 7200 3600 1209600 3600\n\
             @ IN NS ns1.example.test.\n\
             ns1 IN A 192.0.2.53\n\
             www IN A 192.0.2.1\n\
             www IN A 192.0.2.2\n",
        );
        for key in [&ksk, &zsk] {
            text.push_str(&format!("$INCLUDE {}.key\n", key.file_stem()));
        }
        std::fs::write(&zone_file, text).unwrap();

        run(Command::new(&signzone)
            .current_dir(dir.path())
            .args(["-q", "-O", "full", "-o", zone, "-K", "."])
            .arg(&zone_file));
        let signed = dir.path().join("example.test.zone.signed");
        run(Command::new(&verifier)
            .args(["-q", "-o", zone])
            .arg(&signed));

        // BIND signed with our ZSK; our signature over the same data must
        // verify, and for deterministic algorithms equal BIND's.
        let records = full_records(&std::fs::read_to_string(&signed).unwrap());
        let owner = name("www.example.test.");
        let rrsig = records
            .iter()
            .filter(|r| r.owner == owner && r.rtype == "RRSIG" && r.fields[0] == "A")
            .map(Rrsig::from_record)
            .find(|rrsig| rrsig.key_tag == zsk.key_tag())
            .unwrap_or_else(|| panic!("{algorithm}: no RRSIG by the ZSK"));
        let rrset: Vec<Vec<u8>> = records
            .iter()
            .filter(|r| r.owner == owner && r.rtype == "A")
            .map(rdata)
            .collect();
        assert_eq!(rrset.len(), 2);
        let data = rrsig.signed_data(&owner, &rrset);
        let public_key = zsk.key.public_key();
        assert_eq!(
            verify(algorithm.to_u8(), &public_key, &data, &rrsig.signature),
            Ok(())
        );
        let ours = zsk.key.sign(&data).unwrap();
        assert_eq!(ours.len(), rrsig.signature.len(), "{algorithm}");
        if deterministic {
            assert_eq!(ours, rrsig.signature, "{algorithm}");
        }
    }
}
