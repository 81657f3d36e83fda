//! A cluster member without the cluster key serves the signed versions the
//! members with the key make: it transfers each from a signer, checks it,
//! and serves it byte for byte. BIND's delv validates its answers,
//! named-compilezone compares its zone transfer with a signer's, and
//! dnssec-verify checks it. Without any signer online and without a saved
//! version, it still refuses the zone.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use keymaster_testutil::etcd::Etcd;
use keymaster_testutil::member::{transfer_canonical, Member, FAST_POLICY, FAST_ZONE};
use keymaster_testutil::{output_text, run, tool, wait_until};

/// Lease of the test members.
const LEASE_TTL: &str = "2s";

/// How long the keyless member may take to serve a new version.
const FOLLOW_TIMEOUT: Duration = Duration::from_secs(10);

/// The cluster zone, as the CLI and the DNS tools name it.
const ZONE: &str = "shared.test.";

fn program() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_keymaster"))
}

/// The independent tools the test checks with.
struct Tools {
    dig: PathBuf,
    delv: PathBuf,
    compile: PathBuf,
    verify: PathBuf,
}

impl Tools {
    fn find(test: &str) -> Option<Self> {
        Some(Self {
            dig: tool(test, "dig")?,
            delv: tool(test, "delv")?,
            compile: tool(test, "named-compilezone")?,
            verify: tool(test, "dnssec-verify")?,
        })
    }

    /// Transfers the zone from every member and returns the serial they
    /// all serve, or `None` while a member is between versions. For one
    /// serial, asserts that the records are identical and that
    /// dnssec-verify accepts each transfer.
    fn identical(&self, members: &[&Member], dir: &Path) -> Option<u32> {
        let transfers: Vec<_> = members
            .iter()
            .map(|member| {
                transfer_canonical(
                    &self.dig,
                    &self.compile,
                    (&member.name, member.dns_port),
                    ZONE,
                    dir,
                )
            })
            .collect();
        let serial = transfers[0].1;
        if transfers.iter().any(|(_, other, _)| *other != serial) {
            return None;
        }
        for (member, (file, _, lines)) in members.iter().zip(&transfers) {
            assert_eq!(
                lines, &transfers[0].2,
                "{} and {} serve different records for serial {serial}",
                member.name, members[0].name
            );
            let verified = run(Command::new(&self.verify).arg("-o").arg(ZONE).arg(file));
            assert!(
                verified.status.success(),
                "dnssec-verify rejects serial {serial} from {}: {}",
                member.name,
                output_text(&verified)
            );
        }
        Some(serial)
    }

    /// Waits up to `timeout` for every member to serve one serial that is
    /// `at_least` or newer with identical records, and returns it.
    fn wait_identical(
        &self,
        members: &[&Member],
        dir: &Path,
        at_least: u32,
        timeout: Duration,
    ) -> Option<u32> {
        let mut found = None;
        wait_until(timeout, || {
            found = self
                .identical(members, dir)
                .filter(|serial| *serial == at_least || serial_newer(*serial, at_least));
            found.is_some()
        });
        found
    }

    /// Writes a delv trust anchor from the DS that `keymaster ds` prints on
    /// `member`.
    fn anchor(&self, member: &Member, dir: &Path) -> PathBuf {
        let output = member.cli(&["ds", ZONE]);
        let text = output_text(&output);
        assert!(output.status.success(), "keymaster ds: {text}");
        let line = text
            .lines()
            .find(|line| line.contains(" DS "))
            .unwrap_or_else(|| panic!("no DS record: {text}"));
        let fields: Vec<&str> = line.split_whitespace().collect();
        let at = fields.iter().position(|field| *field == "DS").unwrap();
        let anchor = format!(
            "trust-anchors {{ \"{}\" static-ds {} {} {} \"{}\"; }};\n",
            fields[0],
            fields[at + 1],
            fields[at + 2],
            fields[at + 3],
            fields[at + 4..].join("")
        );
        let file = dir.join("anchor.conf");
        std::fs::write(&file, anchor).unwrap();
        file
    }

    /// Asserts that delv, asking `member` with `anchor`, validates `name`
    /// `rtype`.
    fn validates(&self, member: &Member, anchor: &Path, name: &str, rtype: &str) {
        let output = run(Command::new(&self.delv)
            .arg("@127.0.0.1")
            .arg("-p")
            .arg(member.dns_port.to_string())
            .arg("-a")
            .arg(anchor)
            .arg(format!("+root={ZONE}"))
            .args([name, rtype]));
        let text = output_text(&output);
        assert!(
            text.contains("fully validated") && !text.contains("bogus"),
            "delv does not validate {name} {rtype} from {}: {text}\n{}",
            member.name,
            member.log()
        );
    }

    /// Returns the status dig reports for the zone's SOA at `member`.
    fn soa_status(&self, member: &Member) -> String {
        let output = run(Command::new(&self.dig)
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
}

/// RFC 1982: whether `a` is newer than `b`.
fn serial_newer(a: u32, b: u32) -> bool {
    a != b && a.wrapping_sub(b) < 0x8000_0000
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

fn cli_ok(member: &Member, args: &[&str]) -> Output {
    let output = member.cli(args);
    assert!(
        output.status.success(),
        "{args:?} on {}: {}",
        member.name,
        output_text(&output)
    );
    output
}

fn zone_json(member: &Member) -> serde_json::Value {
    let output = cli_ok(member, &["zone", "show", ZONE, "--json"]);
    serde_json::from_slice(&output.stdout).unwrap()
}

fn online_members(member: &Member) -> usize {
    let output = member.cli(&["server", "list", "--json"]);
    serde_json::from_slice::<Vec<serde_json::Value>>(&output.stdout)
        .map(|servers| servers.iter().filter(|s| s["online"] == true).count())
        .unwrap_or(0)
}

#[test]
fn keyless_member_serves_transferred_versions() {
    let test = "keyless_member_serves_transferred_versions";
    let Some(tools) = Tools::find(test) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let Some(etcd) = Etcd::start(test, &dir.path().join("etcd")) else {
        return;
    };
    let key = dir.path().join("cluster.key");
    let created = run(Command::new(program())
        .args(["cluster", "new-key", "-o"])
        .arg(&key));
    assert!(created.status.success(), "{}", output_text(&created));

    // A and B sign; C has no cluster key and nothing saved.
    let mut a = start(dir.path(), "ns-a", &etcd, Some(&key));
    let mut b = start(dir.path(), "ns-b", &etcd, Some(&key));
    let mut c = start(dir.path(), "ns-c", &etcd, None);
    let joined = wait_until(Duration::from_secs(20), || online_members(&a) == 3);
    assert!(joined, "the members did not join:\n{}", a.log());

    let zone_file = dir.path().join("shared.zone");
    std::fs::write(&zone_file, FAST_ZONE).unwrap();
    let from = zone_file.to_str().unwrap();
    cli_ok(&a, &["zone", "add", ZONE, "--cluster", "--from-file", from]);
    cli_ok(&a, &["zone", "sign", ZONE, "--policy", "fast"]);

    // C serves what A and B sign, byte for byte, and it validates.
    let first = tools.wait_identical(&[&a, &b, &c], dir.path(), 5, Duration::from_secs(30));
    let Some(first) = first else {
        panic!(
            "A, B and C do not serve one signed version:\n{}\n{}",
            a.log(),
            c.log()
        );
    };
    let anchor = tools.anchor(&a, dir.path());
    tools.validates(&c, &anchor, "www.shared.test.", "A");
    tools.validates(&c, &anchor, "nosuch.shared.test.", "A");
    let info = zone_json(&c);
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
    let output = cli_ok(
        &b,
        &["zone", "import", ZONE, changed.to_str().unwrap(), "--json"],
    );
    let import: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let serial = import["serial"].as_u64().unwrap() as u32;
    assert!(serial_newer(serial, first), "{import}");
    let followed = tools.wait_identical(&[&a, &b, &c], dir.path(), serial, FOLLOW_TIMEOUT);
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
    tools.validates(&c, &anchor, "new.shared.test.", "A");
    let served = followed.unwrap();
    assert_eq!(zone_json(&c)["serial"], served);

    // With every signer gone, a restarted C serves the version it saved.
    a.kill();
    b.kill();
    c.kill();
    let c = start(dir.path(), "ns-c", &etcd, None);
    let restored = wait_until(Duration::from_secs(20), || {
        zone_json(&c)["serial"] == served
    });
    assert!(restored, "C does not serve its saved version:\n{}", c.log());
    let (_, serial, _) = transfer_canonical(
        &tools.dig,
        &tools.compile,
        (&c.name, c.dns_port),
        ZONE,
        dir.path(),
    );
    assert_eq!(serial, served);
    tools.validates(&c, &anchor, "new.shared.test.", "A");

    // A new member without the key, nothing saved and no signer online:
    // the zone is not served.
    let e = start(dir.path(), "ns-e", &etcd, None);
    let refused = wait_until(Duration::from_secs(20), || {
        let info = zone_json(&e);
        info["error"]
            .as_str()
            .is_some_and(|error| error.contains("not served"))
    });
    assert!(refused, "{}\n{}", zone_json(&e), e.log());
    assert_eq!(tools.soa_status(&e), "REFUSED", "{}", e.log());
    assert_eq!(zone_json(&e)["loaded"], false);
}
