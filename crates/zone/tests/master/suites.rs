//! Parser suites of other DNS implementations, each judged against the
//! verdicts or records its authors wrote down.
//!
//! Every suite reports its cases and matches. A case that does not match
//! must be in that suite's known-mismatch table below, with the reason
//! (the same tables are in `tests/PARSER-SUITES.md`); any other mismatch
//! fails the test.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use keymaster_testutil::testdata;
use keymaster_zone::{
    load_zone_file, parse_name, rdata_from_text, read_records_file, scan_records, Class,
    LoadOptions, Name, Record, Rtype,
};

/// The outcome of one case: `Ok` on a match, `Err(detail)` otherwise.
type Outcome = Result<(), String>;

/// Prints the pass rate and fails on mismatches outside `known`.
fn judge(suite: &str, outcomes: &BTreeMap<String, Outcome>, known: &[(&str, &str)]) {
    let matched = outcomes.values().filter(|outcome| outcome.is_ok()).count();
    eprintln!("{suite}: {matched}/{} cases match", outcomes.len());
    let mut unexpected = Vec::new();
    for (case, outcome) in outcomes {
        let listed = known.iter().any(|(name, _)| name == case);
        match outcome {
            Err(detail) if !listed => unexpected.push(format!("{case}: {detail}")),
            Err(detail) => eprintln!("  known mismatch {case}: {detail}"),
            Ok(()) if listed => eprintln!("  {case} is listed as a mismatch but now matches"),
            Ok(()) => {}
        }
    }
    assert!(
        unexpected.is_empty(),
        "{suite}: {} unexpected mismatches:\n{}",
        unexpected.len(),
        unexpected.join("\n")
    );
}

fn files(folder: &Path, extension: &str) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = fs::read_dir(folder)
        .expect("suite folder is readable")
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.to_string_lossy().ends_with(extension))
        .collect();
    found.sort();
    found
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn origin(text: &str) -> Name {
    parse_name(text, &Name::root()).expect("suite origins are valid")
}

/// One record as a comparable tuple: owner in wire form, class, TTL, type
/// and canonical RDATA.
type RecordKey = (Vec<u8>, u16, u32, u16, Vec<u8>);

/// Records as comparable tuples, sorted, with owner case folded.
fn record_set(records: &[Record]) -> Vec<RecordKey> {
    let mut set: Vec<_> = records
        .iter()
        .map(|r| {
            let rdata = keymaster_zone::canonical_rdata(r.rtype, &r.rdata).to_vec();
            let owner = r.owner.to_lowercase().as_wire().to_vec();
            (owner, r.class.to_int(), r.ttl, r.rtype.to_int(), rdata)
        })
        .collect();
    set.sort();
    set.dedup();
    set
}

/// Compares the records read from two files.
fn same_records(left: &Path, right: &Path, origin: &Name) -> Outcome {
    let left = read_records_file(left, origin).map_err(|error| error.to_string())?;
    let right = read_records_file(right, origin).map_err(|error| error.to_string())?;
    let (left, right) = (record_set(&left), record_set(&right));
    if left == right {
        return Ok(());
    }
    let only_left = left.iter().filter(|r| !right.contains(r)).count();
    let only_right = right.iter().filter(|r| !left.contains(r)).count();
    Err(format!(
        "{only_left} records only in the input, {only_right} only in the expected output"
    ))
}

/// BIND named-checkzone zones: good-* and warn.* load, bad-* are rejected.
const BIND_CHECKZONE_KNOWN: &[(&str, &str)] = &[
    (
        "bad-_dns-svcb1.db",
        "SVCB rules for _dns names (RFC 9461) are not checked",
    ),
    (
        "bad-_dns-svcb2.db",
        "SVCB rules for _dns names (RFC 9461) are not checked",
    ),
    (
        "bad-_dns-svcb3.db",
        "SVCB rules for _dns names (RFC 9461) are not checked",
    ),
    (
        "bad-_dns-svcb4.db",
        "SVCB rules for _dns names (RFC 9461) are not checked",
    ),
    (
        "bad-_dns-svcb5.db",
        "SVCB rules for _dns names (RFC 9461) are not checked",
    ),
    (
        "bad-_dns-svcb6.db",
        "SVCB rules for _dns names (RFC 9461) are not checked",
    ),
    (
        "bad-cdnskey.db",
        "CDS/CDNSKEY consistency with DNSKEY is a signer check, not a load check",
    ),
    (
        "bad-cds.db",
        "CDS/CDNSKEY consistency with DNSKEY is a signer check, not a load check",
    ),
    (
        "bad-dns-sd-reverse.db",
        "BIND's check-names host-name policy is not applied",
    ),
    (
        "bad-nsec3-length.db",
        "NSEC3 next hashed owner names of any length are accepted, as Knot and dnspython do",
    ),
    (
        "bad-nsec3owner-padded.db",
        "BIND's check-names policy for NSEC3 owners is not applied",
    ),
    (
        "bad-rpz-prefix.db",
        "response-policy zone rules are not checked",
    ),
    (
        "bad-svcb-servername.db",
        "BIND's check-names policy for SVCB targets is not applied",
    ),
    (
        "good1.db",
        "NS beside DNAME below the apex is rejected on purpose; BIND accepts it",
    ),
    (
        "warn.inherit.origin.db",
        "includes zones/inherit.db relative to BIND's test folder",
    ),
    (
        "warn.inherited.owner.db",
        "includes zones/inherit.db relative to BIND's test folder",
    ),
];

#[test]
fn bind_checkzone_suite() {
    let Some(data) = testdata("bind_checkzone_suite") else {
        return;
    };
    let folder = data.join("zones/parser/bind-checkzone");
    let mut outcomes = BTreeMap::new();
    for path in files(&folder, ".db") {
        let case = file_name(&path);
        let must_load = case.starts_with("good") || case.starts_with("warn");
        if !must_load && !case.starts_with("bad") {
            continue;
        }
        let result = load_zone_file(&path, &origin("example."), &LoadOptions::default());
        let outcome = match (must_load, result) {
            (true, Ok(_)) | (false, Err(_)) => Ok(()),
            (true, Err(error)) => Err(format!("rejected: {error}")),
            (false, Ok(_)) => Err("loaded but must be rejected".to_string()),
        };
        outcomes.insert(case, outcome);
    }
    judge("bind-checkzone", &outcomes, BIND_CHECKZONE_KNOWN);
}

const BIND_MASTER_KNOWN: &[(&str, &str)] = &[
    (
        "master6.data",
        "DNSKEY flags as mnemonics (FLAG2|...) are a BIND extension",
    ),
    (
        "master8.data",
        "includes testdata/master/master6.data relative to BIND's test folder",
    ),
];

#[test]
fn bind_master_suite() {
    let Some(data) = testdata("bind_master_suite") else {
        return;
    };
    let folder = data.join("zones/parser/bind-master");
    // Verdicts restated from the suite's EXPECTED.md.
    let loads = [
        ("master1.data", true),
        ("master2.data", false),
        ("master3.data", false),
        ("master4.data", true),
        ("master5.data", false),
        ("master6.data", true),
        ("master7.data", false),
        ("master8.data", true),
        ("master9.data", false),
        ("master10.data", true),
        ("master11.data", true),
        ("master15.data", false),
        ("master16.data", true),
        ("master17.data", true),
    ];
    let mut outcomes = BTreeMap::new();
    for (case, must_load) in loads {
        let result = read_records_file(&folder.join(case), &origin("test."));
        let outcome = match (must_load, result) {
            (true, Ok(records)) if case == "master11.data" => {
                let serial = records
                    .iter()
                    .find(|r| r.rtype == Rtype::SOA)
                    .and_then(|soa| keymaster_zone::zone::soa_serial(&soa.rdata));
                if serial == Some(90000) {
                    Ok(())
                } else {
                    Err(format!("serial {serial:?}, expected 90000"))
                }
            }
            (true, Ok(_)) | (false, Err(_)) => Ok(()),
            (true, Err(error)) => Err(format!("rejected: {error}")),
            (false, Ok(_)) => Err("loaded but must be rejected".to_string()),
        };
        outcomes.insert(case.to_string(), outcome);
    }
    judge("bind-master", &outcomes, BIND_MASTER_KNOWN);
}

/// One expected or actual result of a Knot zscanner case.
#[derive(Debug, PartialEq, Eq)]
enum Scanned {
    Record(String),
    /// A rejected entry; `fatal` ends the expected output.
    Error {
        fatal: bool,
    },
}

fn knot_record(record: &Record) -> String {
    let hex = data_encoding::HEXUPPER;
    format!(
        "OWNER={} CLASS={:04X} RRTTL={:08X} RTYPE={:04X} RDATA={}",
        hex.encode(record.owner.as_wire()),
        record.class.to_int(),
        record.ttl,
        record.rtype.to_int(),
        hex.encode(&record.rdata)
    )
}

fn knot_expected(text: &str) -> Vec<Scanned> {
    let mut expected = Vec::new();
    let mut fields = Vec::new();
    for line in text.lines() {
        if line.starts_with("WARNG=") {
            expected.push(Scanned::Error { fatal: false });
        } else if line.starts_with("ERROR=") {
            expected.push(Scanned::Error { fatal: true });
        } else if line.starts_with("------") {
            if !fields.is_empty() {
                expected.push(Scanned::Record(fields.join(" ")));
                fields.clear();
            }
        } else if !line.is_empty() {
            fields.push(line.to_string());
        }
    }
    expected
}

/// Compares the scan of one case with its expected output.
fn knot_compare(expected: &[Scanned], actual: &[Scanned]) -> Outcome {
    for (index, wanted) in expected.iter().enumerate() {
        let Some(found) = actual.get(index) else {
            return Err(format!("item {index}: missing, expected {wanted:?}"));
        };
        match (wanted, found) {
            (Scanned::Error { fatal: true }, Scanned::Error { .. }) => return Ok(()),
            (Scanned::Error { .. }, Scanned::Error { .. }) => {}
            (Scanned::Record(a), Scanned::Record(b)) if a == b => {}
            _ => {
                return Err(format!(
                    "item {index}: expected {wanted:?}, found {found:?}"
                ))
            }
        }
    }
    if actual.len() > expected.len() {
        return Err(format!(
            "{} items more than expected",
            actual.len() - expected.len()
        ));
    }
    Ok(())
}

const KNOT_KNOWN: &[(&str, &str)] = &[
    (
        "00-2_general",
        "Knot rejects a file without records after $ORIGIN; it is accepted here",
    ),
    (
        "01_owner",
        "Knot rejects unescaped & \" , in names; only RFC 1035 rules apply here",
    ),
    (
        "02_class",
        "Knot accepts only class IN; other classes are a zone-level check here",
    ),
    (
        "04-1_ORIGIN",
        "a relative $ORIGIN is appended to the current origin, as in BIND",
    ),
    (
        "04-2_ORIGIN",
        "Knot rejects unescaped % in names; only RFC 1035 rules apply here",
    ),
    (
        "06-1_INCLUDE",
        "a relative $INCLUDE origin is appended to the current origin",
    ),
    (
        "06-2_INCLUDE",
        "Knot rejects unescaped % in names; only RFC 1035 rules apply here",
    ),
    (
        "06-6_INCLUDE",
        "Knot stops on a missing include file; the error is reported and reading goes on",
    ),
    (
        "07-2-rdata",
        "no TTL anywhere: Knot's harness defaults to 0, here it is an error",
    ),
    (
        "07-3-rdata",
        "no TTL anywhere: Knot's harness defaults to 0, here it is an error",
    ),
    (
        "07-4-rdata",
        "no TTL anywhere: Knot's harness defaults to 0, here it is an error",
    ),
    (
        "12_TXT",
        "Knot splits strings over 255 octets; RFC 1035 forbids them, so they are rejected",
    ),
    (
        "14_NS",
        "Knot rejects unescaped & in names; only RFC 1035 rules apply here",
    ),
    (
        "18_MX",
        "Knot rejects unescaped $ in names; only RFC 1035 rules apply here",
    ),
    (
        "26_SRV",
        "Knot rejects unescaped % in names; only RFC 1035 rules apply here",
    ),
    (
        "28_TYPE",
        "TYPE0 is reserved and rejected here; Knot accepts it",
    ),
    (
        "29_CERT",
        "base64 split in blocks that are not multiples of 4 is joined and accepted",
    ),
    (
        "30_KEY",
        "base64 split in blocks that are not multiples of 4 is joined and accepted",
    ),
    (
        "31_DNSKEY",
        "base64 split in blocks that are not multiples of 4 is joined and accepted",
    ),
    ("35_IPSECKEY", "a key with algorithm 0 is not rejected"),
    (
        "36_RRSIG",
        "times after 2106 wrap modulo 2^32 as RFC 4034 section 3.2 says; Knot rejects them",
    ),
    (
        "38_DHCID",
        "base64 split in blocks that are not multiples of 4 is joined and accepted",
    ),
    (
        "39_NSEC3",
        "padded base32hex hashes are rejected, as BIND does (RFC 5155 has no padding)",
    ),
    (
        "50_CDNSKEY",
        "base64 split in blocks that are not multiples of 4 is joined and accepted",
    ),
    (
        "52_CAA",
        "an empty CAA tag is rejected (RFC 8659 section 4.1); Knot accepts it",
    ),
    (
        "57_SVCB",
        "key65535 is reserved (RFC 9460 section 14.3.2) and rejected; Knot accepts it",
    ),
    (
        "58_HTTPS",
        "key65535 is reserved (RFC 9460 section 14.3.2) and rejected; Knot accepts it",
    ),
    (
        "62_ALIAS",
        "ALIAS is a Knot-private type; write it as TYPE65401",
    ),
    (
        "63_DELEG",
        "DELEG has no presentation format here yet; write it in RFC 3597 form",
    ),
];

#[test]
fn knot_zscanner_suite() {
    let Some(data) = testdata("knot_zscanner_suite") else {
        return;
    };
    let suite = data.join("zones/parser/knot-zscanner");
    let folder = suite.join("data");
    let cases = fs::read_to_string(suite.join("TESTS")).expect("TESTS is readable");
    let mut outcomes = BTreeMap::new();
    for case in cases.lines().filter(|line| !line.trim().is_empty()) {
        let input = folder.join(format!("{case}.in"));
        let text = fs::read_to_string(&input).expect("case input is readable");
        let text = text.replace("@TMPDIR@", &folder.to_string_lossy());
        let expected = fs::read_to_string(folder.join(format!("{case}.out")))
            .expect("case output is readable");
        let mut actual = Vec::new();
        scan_records(&text, &Name::root(), Some(&input), |result| {
            actual.push(match result {
                Ok(record) => Scanned::Record(knot_record(&record)),
                Err(_) => Scanned::Error { fatal: false },
            });
            actual.len() < 100_000
        });
        let outcome = knot_compare(&knot_expected(&expected), &actual);
        outcomes.insert(case.to_string(), outcome);
    }
    judge("knot-zscanner", &outcomes, KNOT_KNOWN);
}

const NSD_KNOWN: &[(&str, &str)] = &[
    (
        "crypto.cloudflare.com.zone",
        "uses the draft key name echconfig, now ech",
    ),
    (
        "print_hip_malformed.zone",
        "malformed HIP data in RFC 3597 form is rejected on purpose",
    ),
    (
        "rr-test.zone",
        "ATMA has no presentation format here; RFC 3597 form works",
    ),
    (
        "rr-wks.zone",
        "WKS service names beyond a short list are not known",
    ),
    (
        "svcb.success-cases.zone",
        "uses the draft key name echconfig, now ech",
    ),
    (
        "svcb.test-vectors-pf.zone",
        "uses the unregistered draft key docpath",
    ),
];

/// NSD cases whose input is invalid on purpose, named for the bug they test.
const NSD_MUST_REJECT: &[(&str, &str)] = &[
    ("bug077_dname_length.zone", "a label longer than 63 octets"),
    (
        "bug107_bad_hex_3597.zone",
        "a non-hex digit in RFC 3597 data",
    ),
];

#[test]
fn nsd_tpkg_suite() {
    let Some(data) = testdata("nsd_tpkg_suite") else {
        return;
    };
    let suite = data.join("zones/parser/nsd-tpkg");
    let mut zones = Vec::new();
    for folder in files(&suite, ".tdir") {
        zones.extend(files(&folder, ".zone"));
    }
    let mut outcomes = BTreeMap::new();
    for path in zones {
        let case = file_name(&path);
        let stem = case.trim_end_matches(".zone").to_string();
        let zone_origin = parse_name(&format!("{stem}."), &Name::root()).unwrap_or(Name::root());
        let outcome = if NSD_MUST_REJECT.iter().any(|(name, _)| *name == case) {
            match read_records_file(&path, &zone_origin) {
                Ok(_) => Err("loaded but must be rejected".to_string()),
                Err(_) => Ok(()),
            }
        } else if case == "failure-cases.zone" {
            // Every SVCB record in this file is invalid.
            let text = fs::read_to_string(&path).expect("zone is readable");
            let mut accepted = Vec::new();
            let mut rejected = 0;
            scan_records(&text, &zone_origin, Some(&path), |result| {
                match result {
                    Ok(record) if record.rtype == Rtype::SVCB => accepted.push(record.owner),
                    Ok(_) => {}
                    Err(_) => rejected += 1,
                }
                true
            });
            if accepted.is_empty() && rejected > 0 {
                Ok(())
            } else {
                Err(format!("accepted invalid SVCB at {accepted:?}"))
            }
        } else {
            read_records_file(&path, &zone_origin)
                .map(|_| ())
                .map_err(|error| format!("rejected: {error}"))
        };
        outcomes.insert(case, outcome);
    }
    judge("nsd-tpkg", &outcomes, NSD_KNOWN);
}

const DNSPYTHON_KNOWN: &[(&str, &str)] = &[];

#[test]
fn dnspython_suite() {
    let Some(data) = testdata("dnspython_suite") else {
        return;
    };
    let folder = data.join("zones/parser/dnspython");
    let input = folder.join("example");
    let mut outcomes = BTreeMap::new();
    for good in [
        "example1.good",
        "example2.good",
        "example3.good",
        "example4.good",
    ] {
        let outcome = same_records(&input, &folder.join(good), &origin("example."));
        outcomes.insert(good.to_string(), outcome);
    }
    // RFC 9460 appendix D: each text vector equals its generic form.
    let text = fs::read_to_string(folder.join("svcb_test_vectors.text")).expect("readable");
    let generic = fs::read_to_string(folder.join("svcb_test_vectors.generic")).expect("readable");
    let vectors = |text: &str| {
        let mut rdatas = Vec::new();
        let zone = format!(
            "$TTL 60\n$ORIGIN example.\n{}",
            prefix_entries(text, "v SVCB")
        );
        scan_records(&zone, &origin("example."), None, |result| {
            rdatas.push(result.map(|r| r.rdata).map_err(|e| e.to_string()));
            true
        });
        rdatas
    };
    let (from_text, from_generic) = (vectors(&text), vectors(&generic));
    for (index, (a, b)) in from_text.iter().zip(&from_generic).enumerate() {
        let outcome = match (a, b) {
            (Ok(a), Ok(b)) if a == b => Ok(()),
            _ => Err(format!("text {a:?} generic {b:?}")),
        };
        outcomes.insert(format!("svcb-vector-{index}"), outcome);
    }
    if from_text.len() != from_generic.len() {
        outcomes.insert(
            "svcb-vector-count".into(),
            Err("vector counts differ".into()),
        );
    }
    judge("dnspython", &outcomes, DNSPYTHON_KNOWN);
}

/// Puts `prefix` before every entry of a file of bare RDATA entries.
fn prefix_entries(text: &str, prefix: &str) -> String {
    let mut out = String::new();
    let mut depth = 0;
    for line in text.lines() {
        let code = line.split(';').next().unwrap_or("");
        if depth == 0 && !code.trim().is_empty() {
            out.push_str(prefix);
            out.push(' ');
        }
        depth += code.matches('(').count();
        depth -= code.matches(')').count().min(depth);
        out.push_str(line);
        out.push('\n');
    }
    out
}

const LDNS_KNOWN: &[(&str, &str)] = &[
    (
        "08-zonereader",
        "an empty A record in RFC 3597 form (A \\# 0) is rejected on purpose",
    ),
    (
        "29-generic-rdata-tab.db",
        "no TTL anywhere: ldns defaults to 3600, here it is an error",
    ),
];

#[test]
fn ldns_suites() {
    let Some(data) = testdata("ldns_suites") else {
        return;
    };
    let folder = data.join("zones/parser");
    let mut outcomes = BTreeMap::new();
    let zonereader = folder.join("ldns-08-zonereader");
    outcomes.insert(
        "08-zonereader".to_string(),
        same_records(
            &zonereader.join("08-zonereader.inputzone"),
            &zonereader.join("08-zonereader.outputzone"),
            &origin("jelte.nlnetlabs.nl."),
        ),
    );
    for tpkg in files(&folder.join("ldns-misc"), ".tpkg") {
        for path in files(&tpkg, ".db") {
            let outcome = read_records_file(&path, &origin("example."))
                .map(|_| ())
                .map_err(|error| format!("rejected: {error}"));
            outcomes.insert(file_name(&path), outcome);
        }
    }
    judge("ldns", &outcomes, LDNS_KNOWN);
}

/// A minimal reader for the YAML cases: `origin`, `zonefile` and `result`.
struct YamlCase {
    origin: String,
    zonefile: String,
    records: Vec<YamlRecord>,
}

#[derive(Default)]
struct YamlRecord {
    owner: String,
    class: String,
    ttl: u32,
    rtype: String,
    /// RDATA fields in order, as presentation text.
    fields: Vec<String>,
    unknown_hex: Option<String>,
}

fn parse_yaml_case(text: &str) -> YamlCase {
    let mut case = YamlCase {
        origin: String::new(),
        zonefile: String::new(),
        records: Vec::new(),
    };
    let mut in_zonefile = false;
    for line in text.lines() {
        let trimmed = line.trim();
        if let Some(origin) = line.strip_prefix("origin: ") {
            case.origin = origin.trim().to_string();
            continue;
        }
        if line.starts_with("zonefile:") {
            in_zonefile = true;
            continue;
        }
        if line.starts_with("result:") {
            in_zonefile = false;
            continue;
        }
        if in_zonefile {
            case.zonefile
                .push_str(line.strip_prefix("  ").unwrap_or(line));
            case.zonefile.push('\n');
            continue;
        }
        if let Some(owner) = trimmed.strip_prefix("- owner: ") {
            case.records.push(YamlRecord {
                owner: owner.to_string(),
                ..YamlRecord::default()
            });
            continue;
        }
        let Some(record) = case.records.last_mut() else {
            continue;
        };
        if let Some(class) = trimmed.strip_prefix("class: ") {
            record.class = class.to_string();
        } else if let Some(ttl) = trimmed.strip_prefix("ttl: ") {
            record.ttl = ttl.parse().unwrap_or(0);
        } else if let Some(rtype) = trimmed.strip_prefix("data: !") {
            record.rtype = rtype.to_uppercase();
        } else if let Some(rtype) = trimmed.strip_prefix("rtype: ") {
            record.rtype = rtype.to_uppercase();
        } else if let Some(hex) = trimmed.strip_prefix("data: ") {
            record.unknown_hex = Some(hex.to_string());
        } else if let Some(item) = trimmed.strip_prefix("- ") {
            let escaped = item.replace('\\', "\\\\").replace('"', "\\\"");
            record.fields.push(format!("\"{escaped}\""));
        } else if let Some((_, value)) = trimmed.split_once(": ") {
            record.fields.push(value.to_string());
        }
    }
    case
}

fn yaml_expected(record: &YamlRecord) -> Result<Record, String> {
    let rtype = Rtype::from_mnemonic(record.rtype.as_bytes()).ok_or("unknown type in case")?;
    let rdata_text = match &record.unknown_hex {
        Some(hex) => format!("\\# {} {hex}", hex.len() / 2),
        None => record.fields.join(" "),
    };
    let rdata = rdata_from_text(rtype, &rdata_text, &Name::root()).map_err(|e| e.to_string())?;
    Ok(Record {
        owner: origin(&record.owner),
        class: Class::from_mnemonic(record.class.as_bytes()).ok_or("unknown class in case")?,
        ttl: record.ttl,
        rtype,
        rdata,
    })
}

const DOMAIN_KNOWN: &[(&str, &str)] = &[
    (
        "defaultclass.yaml",
        "needs a default class option (CH); the default here is IN",
    ),
    (
        "stroverflow.yaml",
        "expects a 256-octet string to load; RFC 1035 allows 255",
    ),
    (
        "unknown-zero-length.yaml",
        "empty TXT data in RFC 3597 form is rejected on purpose",
    ),
];

#[test]
fn nlnetlabs_domain_suite() {
    let Some(data) = testdata("nlnetlabs_domain_suite") else {
        return;
    };
    let folder = data.join("zones/parser/nlnetlabs-domain-zonefiles");
    let mut outcomes = BTreeMap::new();
    for path in files(&folder, ".yaml") {
        let case = parse_yaml_case(&fs::read_to_string(&path).expect("case is readable"));
        let mut actual = Vec::new();
        let mut errors = Vec::new();
        scan_records(&case.zonefile, &origin(&case.origin), None, |result| {
            match result {
                Ok(record) => actual.push(record),
                Err(error) => errors.push(error.to_string()),
            }
            true
        });
        let expected: Result<Vec<Record>, String> =
            case.records.iter().map(yaml_expected).collect();
        let outcome = match expected {
            Err(error) => Err(format!("expected record unreadable: {error}")),
            Ok(_) if !errors.is_empty() => Err(format!("rejected: {}", errors.join("; "))),
            Ok(expected) if expected == actual => Ok(()),
            Ok(expected) => Err(format!("expected {expected:?}, read {actual:?}")),
        };
        outcomes.insert(file_name(&path), outcome);
    }
    for extension in [".zone", ".txt"] {
        for path in files(&folder, extension) {
            let outcome = read_records_file(&path, &origin("example.com."))
                .map(|_| ())
                .map_err(|error| format!("rejected: {error}"));
            outcomes.insert(file_name(&path), outcome);
        }
    }
    judge("nlnetlabs-domain", &outcomes, DOMAIN_KNOWN);
}

#[test]
fn simdzone_suite() {
    let Some(data) = testdata("simdzone_suite") else {
        return;
    };
    let path = data.join("zones/parser/simdzone/xbounds.zone");
    let mut outcomes = BTreeMap::new();
    let outcome = read_records_file(&path, &origin("xxx."))
        .map(|_| ())
        .map_err(|error| format!("rejected: {error}"));
    outcomes.insert("xbounds.zone".to_string(), outcome);
    judge("simdzone", &outcomes, &[]);
}
