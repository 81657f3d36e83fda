//! Key tags, DS digests and signatures checked against published vectors.

use std::path::{Path, PathBuf};

use keymaster_keys::bind::{self, BindError};
use keymaster_keys::{
    ds_rdata, key_tag, verify, Algorithm, DigestType, Dnskey, KeyError, VerifyError,
};
use keymaster_testutil::testdata;

use crate::presentation::{base64, hex, name, rdata, record, rtype_number, tokens, Rrsig};

fn vectors(test: &str) -> Option<PathBuf> {
    testdata(test).map(|root| root.join("vectors"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// Returns true if `line` starts with `start` once runs of white space in
/// both are collapsed to single spaces.
fn starts_with_fields(line: &str, start: &str) -> bool {
    let collapse = |text: &str| text.split_whitespace().collect::<Vec<_>>().join(" ");
    collapse(line).starts_with(&collapse(start))
}

/// Returns the text from the first line that starts with `start` (after
/// indentation) through the first `)` that follows it.
fn block_through_paren(text: &str, start: &str) -> String {
    let begin = text
        .lines()
        .position(|line| starts_with_fields(line, start))
        .unwrap_or_else(|| panic!("no line starting with {start:?}"));
    let mut block = String::new();
    for line in text.lines().skip(begin) {
        block.push_str(line);
        block.push('\n');
        if line.contains(')') {
            break;
        }
    }
    block
}

/// Returns the lines from the `occurrence`-th line starting with `start`
/// up to the next blank line.
fn paragraph(text: &str, start: &str, occurrence: usize) -> String {
    let begin = text
        .lines()
        .enumerate()
        .filter(|(_, line)| starts_with_fields(line, start))
        .nth(occurrence)
        .unwrap_or_else(|| panic!("no occurrence {occurrence} of {start:?}"))
        .0;
    let lines: Vec<&str> = text
        .lines()
        .skip(begin)
        .take_while(|line| !line.trim().is_empty())
        .collect();
    lines.join("\n")
}

fn dnskey_rdata(text: &str) -> Vec<u8> {
    let record = record(text);
    assert_eq!(record.rtype, "DNSKEY");
    rdata(&record)
}

#[test]
fn rfc4034_key_tags_and_ds() {
    let Some(dir) = vectors("rfc4034_key_tags_and_ds") else {
        return;
    };
    let text = read(&dir.join("rfc4034-rfc4509-examples.txt"));

    // Section 2.3: the key named by key tag 2642 in the section 3.3 RRSIG.
    let example = dnskey_rdata(&block_through_paren(&text, "example.com. 86400 IN DNSKEY"));
    assert_eq!(key_tag(&example), 2642);

    // Section 5.4 and RFC 4509 section 2.3.
    let dskey = dnskey_rdata(&block_through_paren(
        &text,
        "dskey.example.com. 86400 IN DNSKEY",
    ));
    assert_eq!(key_tag(&dskey), 60485);
    let owner = name("dskey.example.com.");
    let published = rdata(&record(&block_through_paren(
        &text,
        "dskey.example.com. 86400 IN DS",
    )));
    assert_eq!(
        &ds_rdata(&owner, &dskey, DigestType::Sha1)[..],
        &published[..]
    );

    let sha256 = "D4B7D520E7BB5F0F67674A0CCEB1E3E0614B93C4F9E99B8383F6A1E4469DA50A";
    let ds = ds_rdata(&owner, &dskey, DigestType::Sha256);
    assert_eq!(&ds[..4], &[0xec, 0x45, 5, 2]);
    assert_eq!(&ds[4..], &hex(sha256)[..]);

    // Derived with dnspython, not published in an RFC.
    let sha384 = "ab64dbebe13c0b6bae558b78ccab93b836f8ada4cbed2d4484a8715a819de7b9\
                  e846315e70ea5d884b377394bdaf16a3";
    let ds = ds_rdata(&owner, &dskey, DigestType::Sha384);
    assert_eq!(&ds[4..], &hex(sha384)[..]);

    // The owner name is lower-cased before hashing.
    let upper = ds_rdata(&name("DSKEY.Example.COM."), &dskey, DigestType::Sha1);
    assert_eq!(&upper[..], &published[..]);
}

#[test]
fn rfc5702_rsa_keys_and_signatures() {
    let Some(dir) = vectors("rfc5702_rsa_keys_and_signatures") else {
        return;
    };
    let text = read(&dir.join("rfc5702-rsasha2.txt"));
    let verbatim = &text[text.find("----- verbatim").expect("verbatim section")..];
    let rrset = vec![rdata(&record("www.example.net. 3600 IN A 192.0.2.91"))];
    let owner = name("www.example.net.");

    let cases = [(8, 9033, 512), (10, 3740, 1024)];
    for (index, (algorithm, tag, bits)) in cases.into_iter().enumerate() {
        let dnskey_text = block_through_paren(
            verbatim,
            &format!("example.net. 3600 IN DNSKEY (256 3 {algorithm}"),
        );
        let dnskey = Dnskey::from_rdata(&dnskey_rdata(&dnskey_text)).unwrap();
        assert_eq!(dnskey.key_tag(), tag, "algorithm {algorithm}");

        let rrsig_text = block_through_paren(
            verbatim,
            &format!("www.example.net. 3600 IN RRSIG (A {algorithm} 3"),
        );
        let rrsig = Rrsig::from_record(&record(&rrsig_text));
        assert_eq!(rrsig.key_tag, tag);
        let data = rrsig.signed_data(&owner, &rrset);
        let result = verify(algorithm, &dnskey.public_key, &data, &rrsig.signature);
        if bits < 1024 {
            assert_eq!(
                result,
                Err(VerifyError::UnsupportedRsaSize { algorithm, bits })
            );
        } else {
            assert_eq!(result, Ok(()), "algorithm {algorithm}");
            let mut altered = data.clone();
            *altered.last_mut().unwrap() ^= 1;
            let result = verify(algorithm, &dnskey.public_key, &altered, &rrsig.signature);
            assert_eq!(result, Err(VerifyError::BadSignature { algorithm }));
        }

        // aws-lc-rs loads RSA private keys of 2048 bits or more only, so
        // these keys cannot reproduce the published signatures. The BIND
        // interoperability test checks RSA signing byte for byte instead.
        let private = paragraph(verbatim, "Private-key-format: v1.2", index);
        let error = bind::parse_private(&private).unwrap_err();
        let BindError::Key { source, .. } = &error else {
            panic!("algorithm {algorithm}: {error:?}");
        };
        assert!(
            matches!(source, KeyError::UnsupportedRsaKeySize { bits: b } if *b == bits),
            "{source:?}"
        );
    }
}

#[test]
fn rfc6605_ecdsa_keys_and_signatures() {
    let Some(dir) = vectors("rfc6605_ecdsa_keys_and_signatures") else {
        return;
    };
    let text = read(&dir.join("rfc6605-ecdsa.txt"));
    let verbatim = &text[text.find("----- verbatim").expect("verbatim section")..];
    let owner = name("www.example.net.");
    let apex = name("example.net.");
    let rrset = vec![rdata(&record("www.example.net. 3600 IN A 192.0.2.1"))];

    let cases = [
        (13, 55648, DigestType::Sha256, 64),
        (14, 10771, DigestType::Sha384, 96),
    ];
    for (index, (algorithm, tag, digest, signature_len)) in cases.into_iter().enumerate() {
        let context = format!("algorithm {algorithm}");
        let dnskey_rdata = dnskey_rdata(&block_through_paren(
            verbatim,
            &format!("example.net. 3600 IN DNSKEY 257 3 {algorithm}"),
        ));
        let dnskey = Dnskey::from_rdata(&dnskey_rdata).unwrap();
        assert_eq!(dnskey.key_tag(), tag, "{context}");
        let published_ds = rdata(&record(&block_through_paren(
            verbatim,
            &format!("example.net. 3600 IN DS {tag}"),
        )));
        assert_eq!(
            &ds_rdata(&apex, &dnskey_rdata, digest)[..],
            &published_ds[..],
            "{context}"
        );

        // The published private key yields the published public key.
        let private = bind::parse_private(&paragraph(verbatim, "Private-key-format", index))
            .unwrap_or_else(|e| panic!("{context}: {e}"));
        assert_eq!(private.key.algorithm().to_u8(), algorithm);
        assert_eq!(private.key.public_key(), dnskey.public_key, "{context}");
        assert_eq!(
            &private.key.dnskey_rdata(257)[..],
            &dnskey_rdata[..],
            "{context}"
        );

        // The published signature verifies, and fails over altered data.
        let rrsig_text = block_through_paren(
            verbatim,
            &format!("www.example.net. 3600 IN RRSIG A {algorithm}"),
        );
        let rrsig = Rrsig::from_record(&record(&rrsig_text));
        let data = rrsig.signed_data(&owner, &rrset);
        assert_eq!(
            verify(algorithm, &dnskey.public_key, &data, &rrsig.signature),
            Ok(())
        );
        let other = rrsig.signed_data(&owner, &[vec![192, 0, 2, 2]]);
        assert_eq!(
            verify(algorithm, &dnskey.public_key, &other, &rrsig.signature),
            Err(VerifyError::BadSignature { algorithm })
        );

        // ECDSA signing is randomised: our signature has the fixed r || s
        // size and verifies under the published key.
        let ours = private.key.sign(&data).unwrap();
        assert_eq!(ours.len(), signature_len, "{context}");
        assert_eq!(verify(algorithm, &dnskey.public_key, &data, &ours), Ok(()));
    }
}

/// Returns the corrected RFC 8080 signature for `algorithm` and `tag`.
fn rfc8080_corrected_signature(text: &str, algorithm: u8, tag: u16) -> Vec<u8> {
    let marker = format!("RRSIG MX {algorithm} 2 3600 1440021600 1438207200 {tag} example.com.");
    let mut lines = text.lines().skip_while(|line| !line.contains(&marker));
    lines.next().expect("corrected RRSIG line");
    base64(lines.next().expect("signature line"))
}

#[test]
fn rfc8080_eddsa_keys_and_signatures() {
    let Some(dir) = vectors("rfc8080_eddsa_keys_and_signatures") else {
        return;
    };
    let text = read(&dir.join("rfc8080-eddsa.txt"));
    let verbatim = &text[text.find("----- verbatim").expect("verbatim section")..];
    let apex = name("example.com.");
    let rrset = vec![rdata(&record(
        "example.com. 3600 IN MX 10 mail.example.com.",
    ))];

    let cases = [(15, 3613), (15, 35217), (16, 9713), (16, 38353)];
    for (index, (algorithm, tag)) in cases.into_iter().enumerate() {
        let context = format!("algorithm {algorithm} key tag {tag}");
        let private_text = paragraph(verbatim, "Private-key-format", index);
        let dnskey_rdata = dnskey_rdata(&paragraph(verbatim, "example.com. 3600 IN DNSKEY", index));
        let dnskey = Dnskey::from_rdata(&dnskey_rdata).unwrap();
        assert_eq!(dnskey.key_tag(), tag, "{context}");
        let published_ds = rdata(&record(&paragraph(
            verbatim,
            "example.com. 3600 IN DS",
            index,
        )));
        let ds = ds_rdata(&apex, &dnskey_rdata, DigestType::Sha256);
        assert_eq!(&ds[..], &published_ds[..], "{context}");

        let corrected = rfc8080_corrected_signature(&text, algorithm, tag);
        let rrsig = Rrsig {
            type_covered: rtype_number("MX"),
            algorithm,
            labels: 2,
            original_ttl: 3600,
            expiration: 1_440_021_600,
            inception: 1_438_207_200,
            key_tag: tag,
            signer: apex.clone(),
            signature: corrected.clone(),
        };
        let data = rrsig.signed_data(&apex, &rrset);
        // The printed RRSIG lacks its algorithm field, so take the
        // signature as the text after the signer's name.
        let printed_tokens = tokens(&paragraph(verbatim, "example.com. 3600 IN RRSIG MX", index));
        let signer = printed_tokens
            .iter()
            .rposition(|t| t == "example.com.")
            .unwrap();
        let printed_signature = base64(&printed_tokens[signer + 1..].join(""));

        if algorithm == 16 {
            // Ed448: key tag and DS only.
            let error = bind::parse_private(&private_text).unwrap_err();
            let unsupported = BindError::UnsupportedAlgorithm {
                path: None,
                algorithm: 16,
            };
            assert_eq!(error.to_string(), unsupported.to_string());
            assert_eq!(
                verify(16, &dnskey.public_key, &data, &corrected),
                Err(VerifyError::UnsupportedAlgorithm { algorithm: 16 })
            );
            continue;
        }

        // Ed25519 is deterministic: the published key reproduces the
        // corrected signature byte for byte.
        let private =
            bind::parse_private(&private_text).unwrap_or_else(|e| panic!("{context}: {e}"));
        assert_eq!(private.key.algorithm(), Algorithm::Ed25519);
        assert_eq!(private.key.public_key(), dnskey.public_key, "{context}");
        assert_eq!(private.key.sign(&data).unwrap(), corrected, "{context}");
        assert_eq!(verify(15, &dnskey.public_key, &data, &corrected), Ok(()));

        // The signature printed in the RFC is known to be wrong.
        assert_eq!(
            verify(15, &dnskey.public_key, &data, &printed_signature),
            Err(VerifyError::BadSignature { algorithm: 15 })
        );
    }
}

#[test]
fn cds_digests_match_vectors() {
    let Some(dir) = vectors("cds_digests_match_vectors") else {
        return;
    };
    let text = read(&dir.join("rfc7344-rfc8078-cds.txt"));
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    let mut checked = 0;
    for apex in ["example.net.", "example.com."] {
        let cdnskey = lines
            .iter()
            .find(|line| line.starts_with(&format!("{apex}  CDNSKEY")))
            .expect("CDNSKEY line");
        let dnskey = rdata(&record(&cdnskey.replace("CDNSKEY", "DNSKEY")));
        for line in lines
            .iter()
            .filter(|line| line.starts_with(&format!("{apex}  CDS")))
        {
            let fields = tokens(line);
            let expected = rdata(&record(&fields[..6].join(" ").replace("CDS", "DS")));
            let digest = DigestType::from_u8(expected[3]).expect("digest type");
            let ds = ds_rdata(&name(apex), &dnskey, digest);
            assert_eq!(&ds[..], &expected[..], "{line}");
            checked += 1;
        }
    }
    assert_eq!(checked, 4);

    // The SHA-1 digest that PowerDNS printed for the RFC 8080 key.
    let dnskey = rdata(&record(
        "example.com. DNSKEY 257 3 15 l02Woi0iS8Aa25FQkUd9RMzZHJpBoRQwAQEX1SxZJA4=",
    ));
    let ds = ds_rdata(&name("example.com."), &dnskey, DigestType::Sha1);
    assert_eq!(
        &ds[4..],
        &hex("b2c63605467c4a40942b47a953e9c0d38f81083a")[..]
    );
}

#[test]
fn nlnetlabs_keys_match_ds() {
    let Some(dir) = vectors("nlnetlabs_keys_match_ds") else {
        return;
    };
    let dir = dir.join("keys/nlnetlabs-domain-dnssec-keys");
    let mut ds_files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "ds"))
        .collect();
    ds_files.sort();
    assert_eq!(ds_files.len(), 7);

    let mut loaded = Vec::new();
    for ds_path in &ds_files {
        let stem = PathBuf::from(ds_path.to_str().unwrap().trim_end_matches(".ds"));
        let context = stem.file_name().unwrap().to_str().unwrap().to_string();
        let expected = rdata(&record(&read(ds_path)));
        let public = bind::parse_public(&read(&dir.join(format!("{context}.key")))).unwrap();
        assert_eq!(public.owner, name("test."));

        // Tag and DS from the .key file, for every algorithm.
        let dnskey = public.dnskey.to_rdata();
        let digest = DigestType::from_u8(expected[3]).unwrap();
        assert_eq!(
            &ds_rdata(&public.owner, &dnskey, digest)[..],
            &expected[..],
            "{context}"
        );

        // The private key, for the algorithms this crate can load.
        let algorithm = public.dnskey.algorithm;
        match bind::read(&stem) {
            Ok(key) => {
                assert_eq!(key.key_tag(), public.dnskey.key_tag(), "{context}");
                assert_eq!(key.key.public_key(), public.dnskey.public_key, "{context}");
                assert_eq!(
                    &key.key.dnskey(key.flags).ds_rdata(&key.owner, digest)[..],
                    &expected[..]
                );
                loaded.push(algorithm);
            }
            Err(BindError::UnsupportedAlgorithm {
                algorithm: rejected,
                ..
            }) => {
                assert_eq!(rejected, algorithm);
                assert!([5, 7, 16].contains(&algorithm), "{context}: {algorithm}");
            }
            Err(error) => panic!("{context}: {error}"),
        }
    }
    assert_eq!(loaded, [8, 13, 14, 15]);

    // The RSA/SHA-512 key has no .ds file; its file name carries the tag.
    let key = bind::read(&dir.join("Ktest.+010+46731")).unwrap();
    assert_eq!(key.key_tag(), 46731);
    assert_eq!(key.key.algorithm(), Algorithm::RsaSha512);

    // The same RSA/SHA-256 key written with a TTL.
    let ttl = bind::parse_public(&read(&dir.join("Ktest-ttl.+008+60616.key"))).unwrap();
    assert_eq!(ttl.ttl, Some(3600));
    assert_eq!(ttl.dnskey.key_tag(), 60616);
}

/// What verifying one RRSIG of an unbound vector file must return.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Verdict {
    Valid,
    Bad,
    /// An RSA key under 1024 bits, which aws-lc-rs does not verify.
    SmallRsa,
    Unsupported,
}

/// An RRSIG with the data it signs.
type SignedRrset = (Rrsig, Vec<u8>);

/// Reads an unbound signature file: the DNSKEYs of the first entry, then
/// for each RRSIG of the later entries its signature data and algorithm.
fn unbound_signatures(text: &str) -> (Vec<Vec<u8>>, Vec<SignedRrset>) {
    let mut entries: Vec<Vec<String>> = Vec::new();
    let mut answer: Option<Vec<String>> = None;
    for line in text.lines() {
        let line = line.trim();
        match line {
            "ENTRY_BEGIN" => answer = None,
            "SECTION ANSWER" => answer = Some(Vec::new()),
            "ENTRY_END" => entries.extend(answer.take()),
            _ if line.starts_with("SECTION") => answer = None,
            _ => {
                let record = line.split(';').next().unwrap_or("").trim();
                if let (Some(records), false) = (answer.as_mut(), record.is_empty()) {
                    records.push(record.to_string());
                }
            }
        }
    }
    let (first, rest) = entries.split_first().expect("DNSKEY entry");
    let dnskeys = first.iter().map(|text| dnskey_rdata(text)).collect();

    let mut signatures = Vec::new();
    for entry in rest {
        let records: Vec<_> = entry.iter().map(|text| record(text)).collect();
        for rrsig_record in records.iter().filter(|r| r.rtype == "RRSIG") {
            let rrsig = Rrsig::from_record(rrsig_record);
            let rrset: Vec<Vec<u8>> = records
                .iter()
                .filter(|r| r.rtype != "RRSIG" && rtype_number(&r.rtype) == rrsig.type_covered)
                .map(rdata)
                .collect();
            let data = rrsig.signed_data(&rrsig_record.owner, &rrset);
            signatures.push((rrsig, data));
        }
    }
    (dnskeys, signatures)
}

#[test]
fn unbound_signatures_verify() {
    use Verdict::*;
    let Some(dir) = vectors("unbound_signatures_verify") else {
        return;
    };
    // Verdicts of an independent validator, with the RSA keys under 1024
    // bits marked as such.
    let cases: [(&str, &[Verdict]); 11] = [
        ("test_sigs.ecdsa_p256", &[Valid]),
        ("test_sigs.ecdsa_p384", &[Valid]),
        ("test_sigs.ed25519", &[Valid]),
        ("test_sigs.ed448", &[Unsupported]),
        ("test_sigs.gost", &[Unsupported, Unsupported, Unsupported]),
        ("test_sigs.hinfo", &[Valid, Valid, Valid, Bad]),
        ("test_sigs.revoked", &[SmallRsa, SmallRsa, SmallRsa]),
        ("test_sigs.rsasha256", &[Valid]),
        ("test_sigs.rsasha256_draft", &[SmallRsa]),
        ("test_sigs.rsasha512_draft", &[Valid]),
        (
            "test_sigs.sha1_and_256",
            &[
                Valid, SmallRsa, Valid, SmallRsa, Bad, SmallRsa, Bad, SmallRsa,
            ],
        ),
    ];
    for (file, expected) in cases {
        let text = read(&dir.join("third-party/unbound").join(file));
        let (dnskeys, signatures) = unbound_signatures(&text);
        let mut verdicts = Vec::new();
        for (rrsig, data) in &signatures {
            let dnskey = dnskeys
                .iter()
                .find(|key| key_tag(key) == rrsig.key_tag && key[3] == rrsig.algorithm)
                .unwrap_or_else(|| panic!("{file}: no DNSKEY with tag {}", rrsig.key_tag));
            let verdict = match verify(rrsig.algorithm, &dnskey[4..], data, &rrsig.signature) {
                Ok(()) => Valid,
                Err(VerifyError::BadSignature { .. }) => Bad,
                Err(VerifyError::UnsupportedRsaSize { bits, .. }) if bits < 1024 => SmallRsa,
                Err(VerifyError::UnsupportedAlgorithm { .. }) => Unsupported,
                Err(error) => panic!("{file}: {error}"),
            };
            verdicts.push(verdict);
        }
        assert_eq!(verdicts, expected, "{file}");
    }
}

#[test]
fn unbound_ds_matches() {
    let Some(dir) = vectors("unbound_ds_matches") else {
        return;
    };
    let mut checked = 0;
    for file in ["test_ds.sha1", "test_ds.sha384"] {
        let text = read(&dir.join("third-party/unbound").join(file));
        for entry in text.split("ENTRY_BEGIN").skip(1) {
            let expect_match = entry.contains("\nyes.");
            let answer = &entry[entry.find("SECTION ANSWER").expect("answer")..];
            let mut ds = None;
            let mut dnskey = None;
            for line in answer
                .lines()
                .skip(1)
                .filter(|l| !l.trim().starts_with(';'))
            {
                if line.contains("ENTRY_END") {
                    break;
                }
                if line.trim().is_empty() {
                    continue;
                }
                let parsed = record(line);
                match parsed.rtype.as_str() {
                    "DS" => ds = Some((parsed.owner.clone(), rdata(&parsed))),
                    "DNSKEY" => dnskey = Some(rdata(&parsed)),
                    other => panic!("{file}: unexpected {other}"),
                }
            }
            let (owner, ds) = ds.expect("DS record");
            let dnskey = dnskey.expect("DNSKEY record");
            let digest = DigestType::from_u8(ds[3]).expect("digest type");
            let computed = ds_rdata(&owner, &dnskey, digest);
            assert_eq!(computed[..] == ds[..], expect_match, "{file}: {owner}");
            checked += 1;
        }
    }
    assert_eq!(checked, 7);
}

/// Returns the DNSKEY RDATA in a zone file whose DNSKEY records span
/// several lines in parentheses.
fn zone_dnskeys(text: &str) -> Vec<Vec<u8>> {
    let lines: Vec<&str> = text.lines().collect();
    let mut keys = Vec::new();
    for (index, line) in lines.iter().enumerate() {
        let fields = tokens(line);
        let Some(position) = fields.iter().position(|field| field == "DNSKEY") else {
            continue;
        };
        // Skip the DNSKEY mnemonic inside NSEC and NSEC3 type bitmaps.
        if fields.get(position + 2).map(String::as_str) != Some("3") {
            continue;
        }
        let mut record_text = String::new();
        for next in std::iter::once(line).chain(lines.iter().skip(index + 1)) {
            record_text.push_str(next);
            record_text.push('\n');
            if next.contains(')') || !line.contains('(') {
                break;
            }
        }
        let fields = tokens(&record_text);
        let start = fields.iter().position(|field| field == "DNSKEY").unwrap();
        keys.push(dnskey_rdata(&format!(
            "example. DNSKEY {}",
            fields[start + 1..].join(" ")
        )));
    }
    keys
}

#[test]
fn rfc4035_rfc5155_zone_keys() {
    let Some(dir) = vectors("rfc4035_rfc5155_zone_keys") else {
        return;
    };
    let owner = name("example.");
    // Key tags and KSK DS digests from an independent DNSSEC library.
    let cases = [
        (
            "rfc4035-appendix-A.signed.zone",
            [38519, 9465],
            [
                "5ac2043ea052d2d854649046ff37793eed159399",
                "40d68db5c39f036f09d72d945e9541f3396cc822baf6b1a058865feb5864ce6b",
                "190c5ae07513257e7095246b48d53a94cd80dc69fd950bc048e4f8c755707139\
                 70f788f33dae50e6b3ae99a951be0496",
            ],
        ),
        (
            "rfc5155-appendix-A.signed.zone",
            [40430, 12708],
            [
                "f0aad80cea4f133ce7237554d993eb1d3190e8a7",
                "e91b0008a43024435de9c7f2c0dd88d29270368d8bd8eb1ee7d41b67139a988d",
                "d9e1a99992ff935dde96919d654bb61d32deafd3656dcd93fdfd45e2875eebc3\
                 35730b536b548ea1e1bc1ce79ac28440",
            ],
        ),
    ];
    for (file, tags, digests) in cases {
        let keys = zone_dnskeys(&read(&dir.join(file)));
        let found: Vec<u16> = keys.iter().map(|key| key_tag(key)).collect();
        assert_eq!(found, tags, "{file}");

        let ksk = &keys[1];
        let digest_types = [DigestType::Sha1, DigestType::Sha256, DigestType::Sha384];
        for (digest, expected) in digest_types.into_iter().zip(digests) {
            let ds = ds_rdata(&owner, ksk, digest);
            assert_eq!(&ds[4..], &hex(expected)[..], "{file} {digest}");
        }
    }
}
