//! Key lifecycle in the running server, with timings of seconds: rollovers
//! started by command, the manual parent DS confirmation, going insecure
//! with the CDS delete form, restarts mid-rollover, and the `plan` and
//! `simulate` commands. Every signed version the server saves is checked by
//! keymaster's validator and, when installed, by BIND's dnssec-verify.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use keymaster_testutil::cli::{key_of_role, keys_established};
use keymaster_testutil::{free_port, output_text, tool, wait_until, ChildGuard};

fn keymaster() -> Command {
    Command::new(env!("CARGO_BIN_EXE_keymaster"))
}

/// A zone with TTLs of two seconds, so that rollover waits take seconds.
const ZONE: &str = "$ORIGIN roll.test.
$TTL 2
@    IN SOA ns1 hostmaster 1 60 30 600 2
     IN NS  ns1
ns1  IN A   192.0.2.1
www  IN A   192.0.2.80
mail IN A   192.0.2.25
";

/// A policy whose every wait is one or two seconds.
const FAST_POLICY: &str = "
dnskey_ttl = \"2s\"
max_zone_ttl = \"2s\"
zone_propagation_delay = \"1s\"
parent_ds_ttl = \"2s\"
parent_propagation_delay = \"1s\"
publish_safety = \"1s\"
retire_safety = \"1s\"
signature_validity = \"1d\"
signature_validity_dnskey = \"1d\"
signature_refresh = \"12h\"
signature_jitter = \"1h\"
signature_inception_offset = \"1m\"
";

/// A running `keymaster serve` on a configuration file.
struct Server {
    child: Option<ChildGuard>,
    dir: PathBuf,
    dns_port: u16,
    starts: usize,
}

impl Server {
    /// Writes the zone and a configuration with `policy_extra` added to the
    /// fast policy, and starts the server.
    fn start(dir: &Path, policy_extra: &str) -> Self {
        std::fs::write(dir.join("roll.test.zone"), ZONE).unwrap();
        let dns_port = free_port();
        let control_port = free_port();
        let config = format!(
            "version = 1\n[server]\nname = \"km1\"\nlisten = [\"127.0.0.1:{dns_port}\"]\n\
             control = \"127.0.0.1:{control_port}\"\ndata_dir = \"data\"\n\
             [[zone]]\nname = \"roll.test\"\nfile = \"roll.test.zone\"\npolicy = \"fast\"\n\
             [policy.fast]\n{FAST_POLICY}{policy_extra}\n"
        );
        std::fs::write(dir.join("keymaster.toml"), config).unwrap();
        let mut server = Self {
            child: None,
            dir: dir.to_path_buf(),
            dns_port,
            starts: 0,
        };
        server.launch();
        server
    }

    fn launch(&mut self) {
        self.starts += 1;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("serve.log"))
            .unwrap();
        let mut command = keymaster();
        command
            .arg("serve")
            .arg("--config")
            .arg(self.dir.join("keymaster.toml"))
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        self.child = Some(ChildGuard::spawn("keymaster serve", &mut command));
        let ready = wait_until(Duration::from_secs(60), || {
            let show = self.cli(&["zone", "show", "roll.test", "--json"]);
            show.status.success()
                && serde_json::from_slice::<serde_json::Value>(&show.stdout)
                    .is_ok_and(|v| v["serial"].is_u64())
        });
        assert!(ready, "server did not publish roll.test:\n{}", self.log());
    }

    /// Stops the server with SIGKILL, as a crash would.
    fn kill(&mut self) {
        if let Some(mut guard) = self.child.take() {
            let _ = guard.child.kill();
            let _ = guard.child.wait();
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("serve.log")).unwrap_or_default()
    }

    fn cli(&self, args: &[&str]) -> Output {
        keymaster()
            .arg("--data-dir")
            .arg(self.dir.join("data"))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run keymaster")
    }

    /// Runs a CLI command that must succeed.
    fn succeed(&self, args: &[&str]) {
        let output = self.cli(args);
        assert!(
            output.status.success(),
            "keymaster {args:?} failed: {}",
            output_text(&output)
        );
    }

    fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut full = args.to_vec();
        full.push("--json");
        let output = self.cli(&full);
        assert!(
            output.status.success(),
            "keymaster {args:?} failed: {}",
            output_text(&output)
        );
        serde_json::from_slice(&output.stdout).expect("JSON output")
    }

    fn keys(&self) -> Vec<serde_json::Value> {
        self.json(&["key", "list", "roll.test"])
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    fn saved(&self) -> PathBuf {
        self.dir.join("data/signed/roll.test.zone")
    }
}

fn role(key: &serde_json::Value) -> &str {
    key["role"].as_str().unwrap_or_default()
}

fn state<'a>(key: &'a serde_json::Value, record: &str) -> &'a str {
    key[format!("{record}_state")].as_str().unwrap_or_default()
}

/// Checks every saved version not seen yet with keymaster's own validator
/// and with dnssec-verify, and records the serials checked in `seen`.
struct VersionChecker {
    seen: BTreeSet<u64>,
    dnssec_verify: Option<PathBuf>,
}

impl VersionChecker {
    fn new(test: &str) -> Self {
        Self {
            seen: BTreeSet::new(),
            dnssec_verify: tool(test, "dnssec-verify"),
        }
    }

    fn check(&mut self, server: &Server) {
        let Ok(version) = std::fs::read_to_string(server.saved()) else {
            return;
        };
        let Some(serial) = soa_serial(&version) else {
            return;
        };
        if !self.seen.insert(serial) {
            return;
        }
        let copy = server.dir.join(format!("version-{serial}.zone"));
        std::fs::write(&copy, &version).unwrap();
        let ours = keymaster()
            .args(["verify", "--origin", "roll.test."])
            .arg(&copy)
            .output()
            .unwrap();
        assert!(
            ours.status.success(),
            "keymaster verify rejects serial {serial}: {}",
            output_text(&ours)
        );
        if let Some(verify) = &self.dnssec_verify {
            let theirs = Command::new(verify)
                .args(["-q", "-o", "roll.test."])
                .arg(&copy)
                .output()
                .unwrap();
            assert!(
                theirs.status.success(),
                "dnssec-verify rejects serial {serial}: {}\n{version}",
                output_text(&theirs)
            );
        }
    }
}

/// Returns the serial of the SOA record in a saved master file.
fn soa_serial(text: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let at = fields.iter().position(|field| *field == "SOA")?;
        fields.get(at + 3)?.parse().ok()
    })
}

/// Waits up to `seconds` for `done`, checking every new saved version.
fn wait_checking(
    server: &Server,
    checker: &mut VersionChecker,
    seconds: u64,
    mut done: impl FnMut(&[serde_json::Value]) -> bool,
) -> bool {
    for _ in 0..seconds * 4 {
        checker.check(server);
        let keys = server.keys();
        if done(&keys) {
            checker.check(server);
            return true;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    false
}

#[test]
fn zsk_rollover_by_command() {
    let test = "zsk_rollover_by_command";
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "parent_ds_check = \"manual\"\n");
    let mut checker = VersionChecker::new(test);
    assert!(
        wait_checking(&server, &mut checker, 60, keys_established),
        "the first keys never became omnipresent: {:?}\n{}",
        server.keys(),
        server.log()
    );
    let (old_id, old_tag) = key_of_role(&server.keys(), "zsk");
    server.succeed(&["key", "rollover", "roll.test", &old_tag.to_string()]);

    let finished = wait_checking(&server, &mut checker, 120, |keys| {
        keys.iter().all(|key| key["id"] != old_id.as_str()) && keys_established(keys)
    });
    assert!(
        finished,
        "the ZSK rollover did not finish: {:?}\n{}",
        server.keys(),
        server.log()
    );
    let (new_id, _) = key_of_role(&server.keys(), "zsk");
    assert_ne!(new_id, old_id);
    assert!(
        checker.seen.len() >= 3,
        "a pre-publication rollover needs at least three versions, saw {:?}",
        checker.seen
    );
    let log = server.log();
    assert!(
        log.contains("generated Zsk"),
        "no generation logged:\n{log}"
    );
}

#[test]
fn ksk_rollover_waits_for_manual_step() {
    let test = "ksk_rollover_waits_for_manual_step";
    let dir = tempfile::tempdir().unwrap();
    // The command appends the zone name, which keymaster passes as the
    // last argument ($0 of the script), and the DS records to a file.
    let submitted = dir.path().join("submitted.ds");
    let extra = format!(
        "parent_ds_check = \"manual\"\nparent_ds_escalate_after = \"3s\"\n\
         parent_ds_command = [\"/bin/sh\", \"-c\", \"echo zone $0 >> {0}; cat >> {0}\"]\n",
        submitted.display()
    );
    let server = Server::start(dir.path(), &extra);
    let mut checker = VersionChecker::new(test);
    assert!(wait_checking(&server, &mut checker, 60, keys_established));
    // The first KSK's DS is waiting for the parent: confirm it.
    let (old_id, old_tag) = key_of_role(&server.keys(), "ksk");
    server.succeed(&["key", "step", "roll.test", &old_tag.to_string()]);
    assert!(
        wait_checking(&server, &mut checker, 60, |keys| keys
            .iter()
            .any(|key| role(key) == "ksk" && state(key, "ds") == "omnipresent")),
        "the confirmed DS never became omnipresent: {:?}",
        server.keys()
    );

    server.succeed(&["key", "rollover", "roll.test", &old_id]);
    // The new KSK's DS waits for the parent until the operator confirms it.
    assert!(
        wait_checking(&server, &mut checker, 60, |keys| keys.iter().any(
            |key| role(key) == "ksk"
                && key["id"] != old_id.as_str()
                && state(key, "ds") == "rumoured"
        )),
        "the new KSK's DS was never requested: {:?}",
        server.keys()
    );
    std::thread::sleep(Duration::from_secs(8));
    let show = server.json(&["zone", "show", "roll.test"]);
    let waits = show["key_waits"].to_string();
    assert!(
        waits.contains("parent"),
        "zone show does not name the parent wait: {show}"
    );
    assert!(
        server.keys().iter().any(|key| key["id"] == old_id.as_str()),
        "the old KSK left before the parent confirmed the new DS"
    );
    let log = server.log();
    assert!(
        log.contains(" IN DS "),
        "the DS records to submit are not logged:\n{log}"
    );
    assert!(
        log.contains("has not served the requested DS RRset"),
        "a long wait for the parent was not escalated:\n{log}"
    );
    // The command ran once for the first DS and once for the rollover, each
    // time with the DS records of the keys the parent must serve.
    let new_tag = server
        .keys()
        .iter()
        .find(|key| role(key) == "ksk" && key["id"] != old_id.as_str())
        .map(|key| key["key_tag"].as_u64().unwrap())
        .unwrap();
    let commands = std::fs::read_to_string(&submitted).unwrap_or_default();
    assert_eq!(
        commands.matches("zone roll.test.\n").count(),
        2,
        "the command did not run once per wait: {commands:?}"
    );
    assert!(
        commands.contains(&format!(" DS {old_tag} 13 2 ")),
        "the first DS was not handed to the command: {commands:?}"
    );
    assert!(
        commands.contains(&format!(" DS {new_tag} 13 2 ")),
        "the new DS was not handed to the command: {commands:?}"
    );

    server.succeed(&["key", "step", "roll.test", &old_id]);
    let finished = wait_checking(&server, &mut checker, 120, |keys| {
        keys.iter().all(|key| key["id"] != old_id.as_str()) && keys_established(keys)
    });
    assert!(
        finished,
        "the KSK rollover did not finish: {:?}\n{}",
        server.keys(),
        server.log()
    );
}

#[test]
fn retire_removes_a_standby_key_only() {
    let test = "retire_removes_a_standby_key_only";
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "parent_ds_check = \"manual\"\n");
    let mut checker = VersionChecker::new(test);
    assert!(wait_checking(&server, &mut checker, 60, keys_established));
    let (_, ksk_tag) = key_of_role(&server.keys(), "ksk");
    let only = server.cli(&["key", "retire", "roll.test", &ksk_tag.to_string()]);
    assert!(!only.status.success(), "retiring the only KSK succeeded");
    assert!(
        output_text(&only).contains("only"),
        "{}",
        output_text(&only)
    );

    let added = server.json(&["key", "add", "roll.test", "--role", "zsk"]);
    let added_id = added["id"].as_str().unwrap().to_string();
    assert_eq!(
        added["dnskey_state"], "hidden",
        "an added key was published at once: {added}"
    );
    assert_eq!(server.keys().len(), 3);
    server.succeed(&["key", "retire", "roll.test", &added_id]);
    assert!(
        server
            .keys()
            .iter()
            .all(|key| key["id"] != added_id.as_str()),
        "the standby key is still listed: {:?}",
        server.keys()
    );
    let unknown = server.cli(&["key", "rollover", "roll.test", "nosuchkey"]);
    assert!(!unknown.status.success());
    assert!(
        output_text(&unknown).contains("no key with id or tag"),
        "{}",
        output_text(&unknown)
    );
}

/// Runs a CLI command that must fail and returns its output text.
fn rejected(server: &Server, args: &[&str]) -> String {
    let output = server.cli(args);
    let text = output_text(&output);
    assert!(
        !output.status.success(),
        "keymaster {args:?} succeeded: {text}"
    );
    text
}

#[test]
fn operator_mistakes_are_rejected() {
    let test = "operator_mistakes_are_rejected";
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "parent_ds_check = \"manual\"\n");
    let mut checker = VersionChecker::new(test);
    assert!(wait_checking(&server, &mut checker, 60, keys_established));
    let (ksk_id, ksk_tag) = key_of_role(&server.keys(), "ksk");
    let (_, zsk_tag) = key_of_role(&server.keys(), "zsk");

    // While the first DS waits for the parent, `ds` prints exactly it.
    let ds = server.cli(&["ds", "roll.test"]);
    let ds_text = String::from_utf8_lossy(&ds.stdout).to_string();
    assert_eq!(ds_text.lines().count(), 1, "ds printed: {ds_text}");
    assert!(
        ds_text.contains(&format!(" DS {ksk_tag} 13 2 ")),
        "ds printed: {ds_text}"
    );

    // Confirm the DS; a second confirmation has nothing to confirm.
    server.succeed(&["key", "step", "roll.test", &ksk_id]);
    assert!(
        wait_checking(&server, &mut checker, 60, |keys| keys
            .iter()
            .any(|key| role(key) == "ksk" && state(key, "ds") == "omnipresent")),
        "the confirmed DS never became omnipresent: {:?}",
        server.keys()
    );
    let again = rejected(&server, &["key", "step", "roll.test", &zsk_tag.to_string()]);
    assert!(again.contains("nothing to confirm"), "{again}");

    // Dropping the keys while the parent holds their DS would go bogus.
    let unsign = rejected(&server, &["zone", "unsign", "roll.test", "--no-parent-ds"]);
    assert!(unsign.contains(&format!("key {ksk_tag}")), "{unsign}");
    assert!(unsign.contains("bogus"), "{unsign}");

    // Keys the policy would never use are refused.
    let csk = rejected(&server, &["key", "add", "roll.test", "--role", "csk"]);
    assert!(csk.contains("never be used"), "{csk}");
    let other_algorithm = rejected(
        &server,
        &[
            "key",
            "add",
            "roll.test",
            "--role",
            "ksk",
            "--algorithm",
            "ED25519",
        ],
    );
    assert!(
        other_algorithm.contains("algorithm 15"),
        "{other_algorithm}"
    );

    // A standby KSK waits hidden, so the parent's DS set does not change.
    let standby = server.json(&["key", "add", "roll.test", "--role", "ksk"]);
    assert_eq!(standby["dnskey_state"], "hidden", "{standby}");
    let ds = server.cli(&["ds", "roll.test"]);
    let ds_text = String::from_utf8_lossy(&ds.stdout).to_string();
    assert_eq!(ds_text.lines().count(), 1, "ds printed: {ds_text}");
    assert!(
        ds_text.contains(&format!(" DS {ksk_tag} 13 2 ")),
        "ds printed: {ds_text}"
    );

    // A forecast longer than the engine looks ahead is refused, not cut.
    let plan = rejected(&server, &["plan", "roll.test", "--for", "1000y"]);
    assert!(plan.contains("maximum span"), "{plan}");

    // A BIND key of another zone is not imported.
    let Some(keygen) = tool(test, "dnssec-keygen") else {
        return;
    };
    let keygen_output = Command::new(keygen)
        .args(["-q", "-a", "ECDSAP256SHA256", "-K"])
        .arg(dir.path())
        .arg("other.test")
        .stdin(Stdio::null())
        .output()
        .expect("run dnssec-keygen");
    assert!(
        keygen_output.status.success(),
        "dnssec-keygen failed: {}",
        output_text(&keygen_output)
    );
    let base = String::from_utf8_lossy(&keygen_output.stdout)
        .trim()
        .to_string();
    let key_file = dir.path().join(format!("{base}.key"));
    let import = rejected(
        &server,
        &["key", "import", "roll.test", key_file.to_str().unwrap()],
    );
    assert!(import.contains("other.test."), "{import}");
}

#[test]
fn hung_parent_ds_command_delays_no_rollover() {
    let test = "hung_parent_ds_command_delays_no_rollover";
    let dir = tempfile::tempdir().unwrap();
    // The command starts when the first DS is requested and outlives the
    // whole test; keymaster kills it after its timeout.
    let started = dir.path().join("started");
    let extra = format!(
        "parent_ds_check = \"manual\"\n\
         parent_ds_command = [\"/bin/sh\", \"-c\", \"touch {}; exec sleep 60\"]\n",
        started.display()
    );
    let server = Server::start(dir.path(), &extra);
    let mut checker = VersionChecker::new(test);
    assert!(wait_checking(&server, &mut checker, 60, keys_established));
    assert!(
        wait_until(Duration::from_secs(20), || started.exists()),
        "parent_ds_command never ran:\n{}",
        server.log()
    );

    let (old_id, _) = key_of_role(&server.keys(), "zsk");
    server.succeed(&["key", "rollover", "roll.test", &old_id]);
    // A ZSK rollover under the fast policy takes about ten seconds; a
    // blocked maintenance loop would wait for the command first.
    let finished = wait_checking(&server, &mut checker, 40, |keys| {
        keys.iter().all(|key| key["id"] != old_id.as_str()) && keys_established(keys)
    });
    assert!(
        finished,
        "the ZSK rollover stalled behind parent_ds_command: {:?}\n{}",
        server.keys(),
        server.log()
    );
}

#[test]
fn rollover_resumes_after_kill_9() {
    let test = "rollover_resumes_after_kill_9";
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), "parent_ds_check = \"manual\"\n");
    let mut checker = VersionChecker::new(test);
    assert!(wait_checking(&server, &mut checker, 60, keys_established));
    let (old_id, _) = key_of_role(&server.keys(), "zsk");
    server.succeed(&["key", "rollover", "roll.test", &old_id]);
    // Kill the server three times while the rollover runs.
    for pause in [1500, 2500, 3500] {
        std::thread::sleep(Duration::from_millis(pause));
        checker.check(&server);
        server.kill();
        server.launch();
    }
    let finished = wait_checking(&server, &mut checker, 180, |keys| {
        keys.iter().all(|key| key["id"] != old_id.as_str()) && keys_established(keys)
    });
    assert!(
        finished,
        "the rollover did not finish after restarts: {:?}\n{}",
        server.keys(),
        server.log()
    );
    let zsks = server
        .keys()
        .iter()
        .filter(|key| role(key) == "zsk")
        .count();
    assert_eq!(zsks, 1, "restarts left extra ZSKs: {:?}", server.keys());
    assert_eq!(server.starts, 4);
}

#[test]
fn unsign_publishes_cds_delete_first() {
    let test = "unsign_publishes_cds_delete_first";
    let Some(dig) = tool(test, "dig") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "parent_ds_check = \"manual\"\n");
    let mut checker = VersionChecker::new(test);
    assert!(wait_checking(&server, &mut checker, 60, keys_established));
    let (_, ksk_tag) = key_of_role(&server.keys(), "ksk");
    // The parent holds the DS: confirm it, so the zone has a secure delegation.
    assert!(server
        .cli(&["key", "step", "roll.test", &ksk_tag.to_string()])
        .status
        .success());
    assert!(wait_checking(&server, &mut checker, 60, |keys| keys
        .iter()
        .any(
            |key| role(key) == "ksk" && state(key, "ds") == "omnipresent"
        )));

    server.succeed(&["zone", "unsign", "roll.test"]);
    let query = |rtype: &str| {
        let output = Command::new(&dig)
            .arg("@127.0.0.1")
            .arg("-p")
            .arg(server.dns_port.to_string())
            .args(["+short", "+time=2", "+tries=1", "roll.test", rtype])
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    };
    assert!(
        wait_until(Duration::from_secs(30), || query("CDS") == "0 0 0 00"),
        "the CDS delete form is not served: {:?}",
        query("CDS")
    );
    assert_eq!(query("CDNSKEY"), "0 3 0 AA==");
    assert!(
        !query("DNSKEY").is_empty(),
        "the zone went unsigned before the DS left"
    );
    std::thread::sleep(Duration::from_secs(5));
    assert!(
        !query("DNSKEY").is_empty(),
        "the zone went unsigned without the parent's confirmation"
    );

    // The registrar removed the DS: confirm it, and the zone goes insecure.
    assert!(server
        .cli(&["key", "step", "roll.test", &ksk_tag.to_string()])
        .status
        .success());
    assert!(
        wait_until(Duration::from_secs(60), || query("DNSKEY").is_empty()),
        "the zone is still signed after the DS left: {}",
        server.log()
    );
    let show = server.json(&["zone", "show", "roll.test"]);
    assert_eq!(show["is_signed"], false, "{show}");
}

#[test]
fn plan_lists_future_rollovers() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        dir.path(),
        "zsk_lifetime = \"30d\"\nparent_ds_check = \"manual\"\n",
    );
    let events = server.json(&["plan", "roll.test", "--for", "100d"]);
    let events = events.as_array().expect("a list of events");
    let generated = events
        .iter()
        .filter(|event| {
            event["event"]
                .as_str()
                .unwrap_or_default()
                .contains("generated")
                && event["role"] == "zsk"
        })
        .count();
    // A 30-day ZSK lifetime brings three successors within 100 days.
    assert!(
        (3..=4).contains(&generated),
        "unexpected ZSK plan: {events:?}"
    );
    let table = server.cli(&["plan", "roll.test", "--for", "100d"]);
    assert!(table.status.success());
    assert!(
        output_text(&table).contains("TIME (UTC)"),
        "{}",
        output_text(&table)
    );
}

fn write_policy(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("policy.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn simulate_counts_no_bogus_seconds_for_a_safe_policy() {
    let dir = tempfile::tempdir().unwrap();
    let policy = write_policy(
        dir.path(),
        "zsk_lifetime = \"60d\"\nksk_lifetime = \"1y\"\n",
    );
    let output = keymaster()
        .args(["simulate", "--for", "10y", "--policy"])
        .arg(&policy)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "simulate failed: {}",
        output_text(&output)
    );
    assert!(
        output_text(&output).contains("bogus seconds: 0"),
        "{}",
        output_text(&output)
    );
}

#[test]
fn simulate_fails_when_the_parent_is_slower_than_assumed() {
    let dir = tempfile::tempdir().unwrap();
    // The policy trusts the parent to publish within an hour without
    // checking; the simulated parent takes two days.
    let policy = write_policy(
        dir.path(),
        "ksk_lifetime = \"90d\"\nparent_ds_check = \"none\"\nparent_propagation_delay = \"1h\"\n",
    );
    let output = keymaster()
        .args([
            "simulate",
            "--for",
            "1y",
            "--parent-delay",
            "2d",
            "--policy",
        ])
        .arg(&policy)
        .output()
        .unwrap();
    assert!(
        !output.status.success(),
        "an unsafe run passed: {}",
        output_text(&output)
    );
    assert!(
        output_text(&output).contains("bogus seconds"),
        "{}",
        output_text(&output)
    );
}
