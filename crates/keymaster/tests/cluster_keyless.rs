//! A cluster member without the cluster key serves the signed versions the
//! members with the key make: it transfers each from a signer, checks it,
//! and serves it byte for byte. BIND's delv validates its answers,
//! named-compilezone compares its zone transfer with a signer's, and
//! dnssec-verify checks it. Without any signer online and without a saved
//! version, it still refuses the zone.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use keymaster_testutil::cli::{json, ok, zone_json};
use keymaster_testutil::dns::serial_newer;
use keymaster_testutil::etcd::{start_etcd, Etcd};
use keymaster_testutil::member::{cluster_key, Member, FAST_POLICY, FAST_ZONE, LEASE_TTL};
use keymaster_testutil::tools::Tools;
use keymaster_testutil::{run, wait_until};

/// How long the keyless member may take to serve a new version.
const FOLLOW_TIMEOUT: Duration = Duration::from_secs(10);

/// The cluster zone, as the CLI and the DNS tools name it.
const ZONE: &str = "shared.test.";

fn program() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_keymaster"))
}

fn start(dir: &Path, name: &str, etcd: &Etcd, key: Option<&Path>) -> Member {
    Member::start_with(
        program(),
        dir,
        name,
        &etcd.endpoint(),
        key,
        LEASE_TTL,
        FAST_POLICY,
    )
}

/// Waits up to `timeout` for the members to serve one version, `at_least`
/// or newer, with identical records, and returns its serial.
fn wait_identical(
    tools: &Tools,
    members: &[&Member],
    dir: &Path,
    at_least: u32,
    timeout: Duration,
) -> Option<u32> {
    tools.wait_identical_where(members, ZONE, dir, timeout, |serial, _| {
        serial == at_least || serial_newer(serial, at_least)
    })
}

/// Returns the response code dig reports for the zone's SOA at `member`.
fn soa_status(tools: &Tools, member: &Member) -> String {
    let output = run(Command::new(&tools.dig)
        .arg("@127.0.0.1")
        .arg("-p")
        .arg(member.dns_port.to_string())
        .args(["+dnssec", "+norec", "+time=1", "+tries=1", ZONE, "SOA"]));
    String::from_utf8_lossy(&output.stdout)
        .split("status: ")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .unwrap_or("no response")
        .to_string()
}

/// Returns how many members `member` lists as online.
fn online_members(member: &Member) -> usize {
    member.servers().map_or(0, |servers| {
        servers
            .iter()
            .filter(|server| server["online"] == true)
            .count()
    })
}

#[test]
fn keyless_member_serves_transferred_versions() {
    let test = "keyless_member_serves_transferred_versions";
    let Some(tools) = Tools::find(test) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let Some(etcd) = start_etcd(test, dir.path()) else {
        return;
    };
    let key = cluster_key(program(), dir.path());

    // A and B sign; C has no cluster key and nothing saved.
    let mut a = start(dir.path(), "ns-a", &etcd, Some(&key));
    let mut b = start(dir.path(), "ns-b", &etcd, Some(&key));
    let mut c = start(dir.path(), "ns-c", &etcd, None);
    let joined = wait_until(Duration::from_secs(20), || online_members(&a) == 3);
    assert!(joined, "the members did not join:\n{}", a.log());

    let zone_file = dir.path().join("shared.zone");
    std::fs::write(&zone_file, FAST_ZONE).unwrap();
    let from = zone_file.to_str().unwrap();
    ok(&a, &["zone", "add", ZONE, "--cluster", "--from-file", from]);
    ok(&a, &["zone", "sign", ZONE, "--policy", "fast"]);

    // C serves what A and B sign, byte for byte, and it validates.
    let serving = wait_until(Duration::from_secs(30), || tools.serial(&c, ZONE).is_some());
    assert!(serving, "C does not serve the zone:\n{}", c.log());
    let first = wait_identical(
        &tools,
        &[&a, &b, &c],
        dir.path(),
        5,
        Duration::from_secs(30),
    );
    let Some(first) = first else {
        panic!(
            "A, B and C do not serve one signed version:\n{}\n{}",
            a.log(),
            c.log()
        );
    };
    let anchor = tools.anchor(&a, ZONE, dir.path());
    tools.assert_validates(&c, &anchor, ZONE, "www.shared.test.", "A");
    tools.assert_validates(&c, &anchor, ZONE, "nosuch.shared.test.", "A");
    let info = zone_json(&c, ZONE);
    assert_eq!(info["can_sign"], false, "{info}");
    assert_eq!(info["serial"], first, "{info}");
    let source = info["fetched_from"].as_str().unwrap_or_default();
    assert!(source == "ns-a" || source == "ns-b", "{info}");
    let error = info["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("no cluster key") && error.contains(source),
        "{info}"
    );
    assert!(
        c.log()
            .contains(&format!("transferred from member {source}")),
        "{}",
        c.log()
    );
    // The signer checked C's request against the cluster transfer key.
    let signer = if source == "ns-a" { &a } else { &b };
    assert!(
        signer.log().contains("key=keymaster-cluster-transfer."),
        "{}",
        signer.log()
    );

    // New records imported on B reach C within seconds.
    let changed = dir.path().join("changed.zone");
    std::fs::write(&changed, format!("{FAST_ZONE}new A 192.0.2.99\n")).unwrap();
    let imported = Instant::now();
    let output = ok(
        &b,
        &["zone", "import", ZONE, changed.to_str().unwrap(), "--json"],
    );
    let import = json(&output);
    let serial = import["serial"].as_u64().unwrap() as u32;
    assert!(serial_newer(serial, first), "{import}");
    let followed = wait_identical(&tools, &[&a, &b, &c], dir.path(), serial, FOLLOW_TIMEOUT);
    assert!(
        followed.is_some(),
        "C does not serve serial {serial} like A and B:\n{}",
        c.log()
    );
    assert!(
        imported.elapsed() < FOLLOW_TIMEOUT + Duration::from_secs(5),
        "{:?}",
        imported.elapsed()
    );
    tools.assert_validates(&c, &anchor, ZONE, "new.shared.test.", "A");
    let served = followed.unwrap();
    assert_eq!(zone_json(&c, ZONE)["serial"], served);

    // With every signer gone, a restarted C serves the version it saved.
    a.kill();
    b.kill();
    c.kill();
    let c = start(dir.path(), "ns-c", &etcd, None);
    let restored = wait_until(Duration::from_secs(20), || {
        zone_json(&c, ZONE)["serial"] == served
    });
    assert!(restored, "C does not serve its saved version:\n{}", c.log());
    let (_, serial, _) = tools.transfer(&c, ZONE, dir.path());
    assert_eq!(serial, served);
    tools.assert_validates(&c, &anchor, ZONE, "new.shared.test.", "A");

    // A new member without the key, nothing saved and no signer online:
    // the zone is not served.
    let e = start(dir.path(), "ns-e", &etcd, None);
    let refused = wait_until(Duration::from_secs(20), || {
        let info = zone_json(&e, ZONE);
        info["error"]
            .as_str()
            .is_some_and(|error| error.contains("not served"))
    });
    assert!(refused, "{}\n{}", zone_json(&e, ZONE), e.log());
    assert_eq!(soa_status(&tools, &e), "REFUSED", "{}", e.log());
    assert_eq!(zone_json(&e, ZONE)["loaded"], false);
}
