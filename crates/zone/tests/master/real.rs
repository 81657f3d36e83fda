//! Real zones: the signed IANA root zone and the 2021 unsigned root zone.
//!
//! The expected counts were taken from the files with `awk` and `sort -u`
//! (one record per line, no comments), not with this crate.

use std::time::{Duration, Instant};

use keymaster_testutil::testdata;
use keymaster_zone::{load_zone_file, load_zone_str, write_zone, LoadOptions, Name, Rtype, Zone};

fn count(zone: &Zone, rtype: Rtype) -> usize {
    zone.nodes()
        .filter_map(|node| node.rrset(rtype))
        .map(|rrset| rrset.rdatas.len())
        .sum()
}

fn signatures(zone: &Zone) -> usize {
    zone.nodes()
        .flat_map(|node| &node.rrsets)
        .map(|rrset| rrset.signatures.len())
        .sum()
}

#[test]
fn root_zone_loads_with_all_records() {
    let Some(data) = testdata("root_zone_loads_with_all_records") else {
        return;
    };
    let path = data.join("zones/real/root-2023051100.zone");
    let started = Instant::now();
    let loaded = load_zone_file(&path, &Name::root(), &LoadOptions::default()).expect("root loads");
    eprintln!("root zone loaded in {:?}", started.elapsed());
    let zone = loaded.zone;
    assert_eq!(zone.record_count(), 24911);
    assert_eq!(zone.node_count(), 7299);
    assert_eq!(count(&zone, Rtype::A), 5833);
    assert_eq!(count(&zone, Rtype::AAAA), 5494);
    assert_eq!(count(&zone, Rtype::NS), 7630);
    assert_eq!(count(&zone, Rtype::DS), 1622);
    assert_eq!(count(&zone, Rtype::NSEC), 1480);
    assert_eq!(count(&zone, Rtype::DNSKEY), 2);
    assert_eq!(signatures(&zone), 2849);
    assert_eq!(zone.serial(), Some(2023051100));
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
}

#[test]
fn root_zone_strips_dnssec_records() {
    let Some(data) = testdata("root_zone_strips_dnssec_records") else {
        return;
    };
    let path = data.join("zones/real/root-2023051100.zone");
    let options = LoadOptions {
        strip_dnssec: true,
        ..LoadOptions::default()
    };
    let loaded = load_zone_file(&path, &Name::root(), &options).expect("root loads");
    // 24911 minus 2 DNSKEY, 1480 NSEC and 2849 RRSIG; DS stays.
    assert_eq!(loaded.zone.record_count(), 24911 - 2 - 1480 - 2849);
    assert_eq!(loaded.warnings.len(), 1);
    assert!(loaded.warnings[0]
        .to_string()
        .contains("dropped 4331 DNSSEC records"));
}

#[test]
fn unsigned_root_zone_loads() {
    let Some(data) = testdata("unsigned_root_zone_loads") else {
        return;
    };
    let path = data.join("vectors/zonemd-verisign/45-root-zone/root.zone.unsigned");
    let zone = load_zone_file(&path, &Name::root(), &LoadOptions::default())
        .expect("root loads")
        .zone;
    assert_eq!(zone.record_count(), 16977);
    assert_eq!(count(&zone, Rtype::A), 4140);
    assert_eq!(count(&zone, Rtype::AAAA), 3529);
    assert_eq!(count(&zone, Rtype::NS), 7122);
    assert_eq!(count(&zone, Rtype::DS), 2185);
    assert_eq!(zone.serial(), Some(2021051901));
}

#[test]
fn root_zone_round_trips_through_writer() {
    let Some(data) = testdata("root_zone_round_trips_through_writer") else {
        return;
    };
    let path = data.join("zones/real/root-2023051100.zone");
    let options = LoadOptions::default();
    let zone = load_zone_file(&path, &Name::root(), &options)
        .expect("root loads")
        .zone;
    let mut text = Vec::new();
    write_zone(&zone, &mut text).expect("write to memory");
    let text = String::from_utf8(text).expect("writer output is UTF-8");
    let again = load_zone_str(&text, &Name::root(), &options)
        .expect("written zone loads")
        .zone;
    assert_eq!(again, zone);
}

#[test]
fn written_zone_passes_external_checkers() {
    let Some(data) = testdata("written_zone_passes_external_checkers") else {
        return;
    };
    let path = data.join("vectors/zonemd-verisign/45-root-zone/root.zone.unsigned");
    let zone = load_zone_file(&path, &Name::root(), &LoadOptions::default())
        .expect("zone loads")
        .zone;
    let folder = tempfile::tempdir().expect("temporary folder");
    let written = folder.path().join("root.zone");
    let file = std::fs::File::create(&written).expect("create output");
    write_zone(&zone, file).expect("write zone");
    // `-i local` keeps named-checkzone from resolving out-of-zone names
    // through the system resolver, so the check sends no queries.
    let checks: [(&str, Vec<&str>); 2] = [
        ("named-checkzone", vec!["-q", "-i", "local", "."]),
        ("kzonecheck", vec!["-o", "."]),
    ];
    for (tool, args) in checks {
        let Some(program) = keymaster_testutil::tool("written_zone_passes_external_checkers", tool)
        else {
            continue;
        };
        let mut command = std::process::Command::new(program);
        command
            .args(&args)
            .arg(&written)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        let mut checker = keymaster_testutil::ChildGuard::spawn(tool, &mut command);
        let mut status = None;
        let finished = keymaster_testutil::wait_until(Duration::from_secs(120), || {
            status = checker.child.try_wait().ok().flatten();
            status.is_some()
        });
        assert!(finished, "{tool} did not finish within 120 s");
        let mut errors = String::new();
        if let Some(stderr) = checker.child.stderr.as_mut() {
            std::io::Read::read_to_string(stderr, &mut errors).expect("read checker output");
        }
        let success = status.is_some_and(|status| status.success());
        assert!(success, "{tool} rejected the written zone: {errors}");
    }
}
