//! Cluster tests: the cluster key, the `[cluster]` configuration, and real
//! `keymaster serve` members sharing a private etcd on loopback.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use keymaster_testutil::cli::{keys_established, keys_json, ok, rejected, zone_json};
use keymaster_testutil::dns::{dig_answer, serial_newer};
use keymaster_testutil::etcd::{start_etcd, Etcd};
use keymaster_testutil::history::History;
// The records of the signed cluster zones, with TTLs within `max_zone_ttl`.
use keymaster_testutil::member::FAST_ZONE as SIGNED_ZONE;
use keymaster_testutil::member::{large_zone, server, Member, FAST_POLICY, LEASE_TTL};
use keymaster_testutil::tools::Tools;
use keymaster_testutil::{output_text, run, tool, wait_until, ChildGuard};

fn program() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_keymaster"))
}

fn keymaster() -> Command {
    Command::new(program())
}

fn new_key(path: &Path) -> Output {
    run(keymaster().args(["cluster", "new-key", "-o"]).arg(path))
}

#[test]
fn cluster_new_key_writes_mode_0600_and_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cluster.key");
    let output = new_key(&path);
    assert!(output.status.success(), "{}", output_text(&output));
    let metadata = std::fs::metadata(&path).unwrap();
    assert_eq!(metadata.permissions().mode() & 0o7777, 0o600);
    assert_eq!(metadata.len(), 32);
    let first = std::fs::read(&path).unwrap();

    // A second key differs from the first.
    let other = dir.path().join("other.key");
    assert!(new_key(&other).status.success());
    assert_ne!(std::fs::read(&other).unwrap(), first);

    let again = new_key(&path);
    assert!(!again.status.success(), "an existing key was overwritten");
    let message = output_text(&again);
    assert!(message.contains("already exists"), "{message}");
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert_eq!(std::fs::read(&path).unwrap(), first, "the key changed");

    let missing_dir = dir.path().join("no/such/dir/cluster.key");
    let failed = new_key(&missing_dir);
    assert!(!failed.status.success());
    assert!(
        output_text(&failed).contains(&missing_dir.display().to_string()),
        "{}",
        output_text(&failed)
    );
}

/// Runs `keymaster serve --config FILE --check-config` on `text`.
fn check_config(dir: &Path, text: &str) -> Output {
    let path = dir.join("keymaster.toml");
    std::fs::write(&path, text).unwrap();
    run(keymaster()
        .arg("serve")
        .arg("--config")
        .arg(&path)
        .arg("--check-config"))
}

#[test]
fn cluster_config_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("cluster.key");
    assert!(new_key(&key).status.success());
    let config = dir.path().join("keymaster.toml");

    // A valid section, with and without the cluster key.
    let valid = "version = 1\n[cluster]\nendpoints = [\"http://127.0.0.1:2379\"]\n\
                 cluster_key = \"cluster.key\"\nlease_ttl = \"3s\"\n";
    let output = check_config(dir.path(), valid);
    assert!(output.status.success(), "{}", output_text(&output));
    assert!(
        output_text(&output).contains("cluster store http://127.0.0.1:2379 (can sign)"),
        "{}",
        output_text(&output)
    );
    let output = check_config(
        dir.path(),
        "version = 1\n[cluster]\nendpoints = [\"http://127.0.0.1:2379\"]\n",
    );
    assert!(
        output_text(&output).contains("cannot sign"),
        "{}",
        output_text(&output)
    );

    // An unknown key names itself and the file.
    let output = check_config(
        dir.path(),
        "version = 1\n[cluster]\nendpoints = [\"http://127.0.0.1:2379\"]\nleas_ttl = \"3s\"\n",
    );
    assert!(!output.status.success());
    let message = output_text(&output);
    assert!(message.contains("leas_ttl"), "{message}");
    assert!(message.contains(&config.display().to_string()), "{message}");

    // A bad value names the file, the key and the value.
    let output = check_config(
        dir.path(),
        "version = 1\n[cluster]\nendpoints = [\"etcd1:2379\"]\n",
    );
    assert!(!output.status.success());
    let message = output_text(&output);
    assert!(message.contains(&config.display().to_string()), "{message}");
    assert!(message.contains("endpoints = \"etcd1:2379\""), "{message}");

    // A cluster key that others may read is refused, and so is a missing one.
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let output = check_config(dir.path(), valid);
    assert!(!output.status.success());
    let message = output_text(&output);
    assert!(message.contains(&key.display().to_string()), "{message}");
    assert!(message.contains("chmod 600"), "{message}");
    std::fs::remove_file(&key).unwrap();
    let output = check_config(dir.path(), valid);
    assert!(!output.status.success());
    assert!(
        output_text(&output).contains(&key.display().to_string()),
        "{}",
        output_text(&output)
    );

    // The flags alone make a cluster configuration, and override the file.
    let output = run(keymaster()
        .args(["serve", "--check-config", "--etcd", "http://127.0.0.1:1"])
        .arg("--cluster-key")
        .arg(dir.path().join("absent.key")));
    assert!(!output.status.success());
    assert!(
        output_text(&output).contains("absent.key"),
        "{}",
        output_text(&output)
    );
    let output = run(keymaster().args(["serve", "--check-config", "--cluster-key", "x.key"]));
    assert!(!output.status.success());
    assert!(
        output_text(&output).contains("--etcd"),
        "{}",
        output_text(&output)
    );
}

/// Starts member `name` in `dir/name` with its file zone, the cluster key
/// `key` if given and `etcd` as its cluster store.
fn start(dir: &Path, name: &str, etcd: &Etcd, key: Option<&Path>) -> Member {
    Member::start(program(), dir, name, &etcd.endpoint(), key, LEASE_TTL)
}

#[test]
fn cluster_members_register_and_go_offline() {
    let test = "cluster_members_register_and_go_offline";
    let dir = tempfile::tempdir().unwrap();
    let Some(etcd) = start_etcd(test, dir.path()) else {
        return;
    };
    let key = dir.path().join("cluster.key");
    assert!(new_key(&key).status.success());
    let a = start(dir.path(), "ns-a", &etcd, Some(&key));
    let b = start(dir.path(), "ns-b", &etcd, Some(&key));
    let mut c = start(dir.path(), "ns-c", &etcd, None);

    // Every member sees all three online, and which of them can sign.
    for member in [&a, &b, &c] {
        let mut last = None;
        let listed = wait_until(Duration::from_secs(20), || {
            last = member.servers();
            last.as_ref().is_some_and(|servers| {
                servers.len() == 3 && servers.iter().all(|s| s["online"] == true)
            })
        });
        assert!(
            listed,
            "{}: server list {last:?}\n{}",
            member.name,
            member.log()
        );
        let servers = last.unwrap();
        for (name, can_sign) in [("ns-a", true), ("ns-b", true), ("ns-c", false)] {
            let entry = server(&servers, name).unwrap();
            assert_eq!(entry["can_sign"], can_sign, "{name}: {entry}");
        }
        let entry = server(&servers, &member.name).unwrap();
        assert_eq!(
            entry["dns_addresses"][0],
            format!("127.0.0.1:{}", member.dns_port),
            "{entry}"
        );
        // A file zone's Key Master is the server that holds its file.
        assert_eq!(entry["key_master_of"], serde_json::json!([]), "{entry}");
    }
    assert_eq!(
        a.log().matches("ns-a joined the cluster").count(),
        1,
        "{}",
        a.log()
    );

    // The table form lists the same.
    let table = a.cli(&["server", "list"]);
    let text = output_text(&table);
    assert!(table.status.success(), "{text}");
    assert!(text.contains("ns-c"), "{text}");

    // A member killed with SIGKILL shows offline once its lease ran out,
    // and is still listed.
    let killed = Instant::now();
    c.kill();
    let mut last = None;
    let offline = wait_until(Duration::from_secs(15), || {
        last = a.servers();
        last.as_ref()
            .and_then(|servers| server(servers, "ns-c").map(|s| s["online"] == false))
            .unwrap_or(false)
    });
    assert!(offline, "ns-c still online after SIGKILL: {last:?}");
    let servers = last.unwrap();
    assert_eq!(servers.len(), 3, "{servers:?}");
    assert_eq!(server(&servers, "ns-b").unwrap()["online"], true);
    assert!(
        killed.elapsed() < Duration::from_secs(10),
        "offline only after {:?}",
        killed.elapsed()
    );
}

#[test]
fn cluster_member_joins_when_etcd_returns() {
    let test = "cluster_member_joins_when_etcd_returns";
    let dir = tempfile::tempdir().unwrap();
    let Some(dig) = tool(test, "dig") else {
        return;
    };
    let Some(mut etcd) = start_etcd(test, dir.path()) else {
        return;
    };
    etcd.kill();

    // Without etcd the member starts and serves its file zone.
    let a = start(dir.path(), "ns-a", &etcd, None);
    let answer = dig_answer(&dig, a.dns_port, "ns.ns-a.file.test", "A");
    assert_eq!(answer.as_deref(), Some("192.0.2.1"), "{}", a.log());
    let listing = a.cli(&["server", "list"]);
    assert!(!listing.status.success());
    let message = output_text(&listing);
    assert!(message.contains("cluster store"), "{message}");
    assert!(message.contains(&etcd.endpoint()), "{message}");

    // The outage is logged once as a warning; once etcd is back, the
    // member registers by itself.
    let warned = wait_until(Duration::from_secs(20), || {
        a.log().contains("cannot reach the cluster store")
    });
    assert!(warned, "no warning about the outage: {}", a.log());
    etcd.restart();
    let mut last = None;
    let joined = wait_until(Duration::from_secs(30), || {
        last = a.servers();
        last.as_ref()
            .and_then(|servers| server(servers, "ns-a").map(|s| s["online"] == true))
            .unwrap_or(false)
    });
    assert!(joined, "ns-a did not join: {last:?}\n{}", a.log());
    let log = a.log();
    assert_eq!(
        log.matches("cannot reach the cluster store").count(),
        1,
        "{log}"
    );
    assert_eq!(log.matches("ns-a joined the cluster").count(), 1, "{log}");
    assert_eq!(
        dig_answer(&dig, a.dns_port, "ns.ns-a.file.test", "A").as_deref(),
        Some("192.0.2.1")
    );
}

#[test]
fn cluster_zone_added_on_one_member_is_served_by_all() {
    let test = "cluster_zone_added_on_one_member_is_served_by_all";
    let dir = tempfile::tempdir().unwrap();
    let Some(dig) = tool(test, "dig") else {
        return;
    };
    let Some(etcd) = start_etcd(test, dir.path()) else {
        return;
    };
    let key = dir.path().join("cluster.key");
    assert!(new_key(&key).status.success());
    let a = start(dir.path(), "ns-a", &etcd, Some(&key));
    let b = start(dir.path(), "ns-b", &etcd, Some(&key));
    let c = start(dir.path(), "ns-c", &etcd, None);
    for member in [&a, &b, &c] {
        let joined = wait_until(Duration::from_secs(20), || {
            member.log().contains("joined the cluster")
        });
        assert!(joined, "{} did not join: {}", member.name, member.log());
    }

    // A zone added on A, with an $INCLUDE and relative names only A can
    // resolve, is answered by B and C.
    let zone_file = dir.path().join("shared.zone");
    std::fs::write(dir.path().join("hosts.inc"), "www A 192.0.2.80\n").unwrap();
    std::fs::write(
        &zone_file,
        "$TTL 300\n@ SOA ns hostmaster 7 7200 3600 1209600 300\n@ NS ns\nns A 192.0.2.53\n\
         $INCLUDE hosts.inc\n",
    )
    .unwrap();
    let added = Instant::now();
    let output = a.cli(&[
        "zone",
        "add",
        "shared.test",
        "--cluster",
        "--from-file",
        zone_file.to_str().unwrap(),
    ]);
    assert!(
        output.status.success(),
        "{}\n{}",
        output_text(&output),
        a.log()
    );
    for member in [&a, &b, &c] {
        let served = wait_until(Duration::from_secs(5), || {
            dig_answer(&dig, member.dns_port, "www.shared.test", "A").as_deref()
                == Some("192.0.2.80")
        });
        assert!(
            served,
            "{} does not serve the zone: {}",
            member.name,
            member.log()
        );
        let soa = dig_answer(&dig, member.dns_port, "shared.test", "SOA").unwrap();
        assert!(soa.contains(" 7 7200 "), "{}: {soa}", member.name);
    }
    assert!(
        added.elapsed() < Duration::from_secs(5),
        "served everywhere only after {:?}",
        added.elapsed()
    );
    let listed = b.cli(&["zone", "show", "shared.test", "--json"]);
    let info: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(info["storage"], "cluster", "{info}");
    assert_eq!(info["is_signed"], false, "{info}");

    // A key added on A goes to etcd sealed under the cluster key, not
    // under A's own key-encryption key, and A becomes the Key Master.
    let output = a.cli(&["key", "add", "shared.test", "--role", "ksk"]);
    assert!(
        output.status.success(),
        "{}\n{}",
        output_text(&output),
        a.log()
    );
    check_sealed_under_cluster_key(&etcd, &key, &a.data_dir.join("kek.key"));
    let keys = b.cli(&["key", "list", "shared.test", "--json"]);
    let keys: serde_json::Value = serde_json::from_slice(&keys.stdout).unwrap();
    assert_eq!(keys.as_array().map(Vec::len), Some(1), "{keys}");
    let servers = b.servers().unwrap();
    let entry = server(&servers, "ns-a").unwrap();
    assert_eq!(
        entry["key_master_of"],
        serde_json::json!(["shared.test."]),
        "{entry}"
    );
    // C has no cluster key, so it cannot make one.
    let output = c.cli(&["key", "add", "shared.test", "--role", "zsk"]);
    assert!(!output.status.success());
    let message = output_text(&output);
    assert!(message.contains("no cluster key"), "{message}");

    // A broken file is rejected whole with its file and line, and no
    // member learns of the zone.
    let broken = dir.path().join("broken.zone");
    std::fs::write(
        &broken,
        "$TTL 300\n@ SOA ns hostmaster 1 7200 3600 1209600 300\n@ NS ns\nns A 192.0.2.53\nbad A 300.1.2.3\n",
    )
    .unwrap();
    let output = a.cli(&[
        "zone",
        "add",
        "broken.test",
        "--cluster",
        "--from-file",
        broken.to_str().unwrap(),
    ]);
    assert!(!output.status.success());
    let message = output_text(&output);
    assert!(message.contains("broken.zone:5"), "{message}");
    assert!(message.contains("300.1.2.3"), "{message}");
    for member in [&a, &b, &c] {
        let show = member.cli(&["zone", "show", "broken.test"]);
        assert!(
            !show.status.success(),
            "{}: {}",
            member.name,
            output_text(&show)
        );
    }

    // Records beyond what one etcd request takes are refused with the sizes.
    let large = dir.path().join("large.zone");
    let mut text = String::from(
        "$TTL 300\n@ SOA ns hostmaster 1 7200 3600 1209600 300\n@ NS ns\nns A 192.0.2.53\n",
    );
    for host in 0..40_000 {
        text.push_str(&format!(
            "host{host} A 10.0.{}.{}\n",
            host / 256 % 256,
            host % 256
        ));
    }
    std::fs::write(&large, text).unwrap();
    let output = a.cli(&[
        "zone",
        "add",
        "large.test",
        "--cluster",
        "--from-file",
        large.to_str().unwrap(),
    ]);
    assert!(!output.status.success());
    let message = output_text(&output);
    assert!(message.contains("octets"), "{message}");
    assert!(a.cli(&["zone", "show", "large.test"]).status.code() != Some(0));

    // A cluster zone named like B's file zone: B keeps serving its file
    // zone and reports in the log and in `zone show` that it hides the
    // cluster zone; A serves the cluster zone.
    let output = a.cli(&[
        "zone",
        "add",
        "ns-b.file.test",
        "--cluster",
        "--from-file",
        zone_file.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", output_text(&output));
    let reported = wait_until(Duration::from_secs(5), || {
        b.log().contains("which this member does not serve")
    });
    assert!(reported, "{}", b.log());
    let show = b.cli(&["zone", "show", "ns-b.file.test", "--json"]);
    let info: serde_json::Value = serde_json::from_slice(&show.stdout).unwrap();
    assert_eq!(info["storage"], "file", "{info}");
    let error = info["error"].as_str().unwrap_or_default();
    assert!(error.contains("remove the file zone"), "{info}");
    let soa = dig_answer(&dig, b.dns_port, "ns-b.file.test", "SOA").unwrap();
    assert!(soa.contains(" 1 7200 "), "B serves the cluster zone: {soa}");
    let served = wait_until(Duration::from_secs(5), || {
        dig_answer(&dig, a.dns_port, "www.ns-b.file.test", "A").as_deref() == Some("192.0.2.80")
    });
    assert!(served, "A does not serve the cluster zone: {}", a.log());

    // Without a file, a cluster zone has no records to serve yet.
    let output = a.cli(&["zone", "add", "empty.test", "--cluster"]);
    assert!(!output.status.success());
    assert!(
        output_text(&output).contains("--from-file"),
        "{}",
        output_text(&output)
    );
}

/// Reads the one key of `shared.test.` from etcd and checks that the
/// cluster key opens its private key and the server's own key does not.
fn check_sealed_under_cluster_key(etcd: &Etcd, cluster_key: &Path, local_key: &Path) {
    use keymaster_keys::kek::{key_aad, KeyEncryptionKey};
    use keymaster_store::{PrivateKey, Store};

    let options = keymaster_store::etcd::EtcdOptions::new(vec![etcd.endpoint()]);
    let store = keymaster_store::EtcdStore::connect(&options).unwrap();
    let keys = store.keys("shared.test.").unwrap();
    assert_eq!(keys.len(), 1, "{keys:?}");
    let PrivateKey::EncryptedFile { sealed } = &keys[0].private else {
        panic!("not a sealed key: {:?}", keys[0].private);
    };
    let origin = keymaster_zone::Name::from_labels([&b"shared"[..], &b"test"[..]]).unwrap();
    let aad = key_aad(&origin, &keys[0].id);
    let cluster = KeyEncryptionKey::open_existing(cluster_key).unwrap();
    assert!(
        cluster.open(sealed, &aad).is_ok(),
        "the cluster key does not open it"
    );
    let local = KeyEncryptionKey::open_existing(local_key).unwrap();
    assert!(local.open(sealed, &aad).is_err(), "the local key opens it");
}

/// Policies every member of the signing test defines alike: `fast` rolls
/// keys within seconds, `short` also keeps signatures for 20 s only, so
/// that they are refreshed every few seconds.
const SIGNING_POLICIES: &str = "
[policy.fast]
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
parent_ds_check = \"manual\"
post_sign_verify = \"all\"

[policy.short]
dnskey_ttl = \"2s\"
max_zone_ttl = \"2s\"
zone_propagation_delay = \"1s\"
parent_ds_ttl = \"2s\"
parent_propagation_delay = \"1s\"
publish_safety = \"1s\"
retire_safety = \"1s\"
signature_validity = \"20s\"
signature_validity_dnskey = \"20s\"
signature_refresh = \"12s\"
signature_jitter = \"2s\"
signature_inception_offset = \"1m\"
parent_ds_check = \"manual\"
";

/// Returns how many signatures a member's log reports it made and took over
/// for the version with `serial`.
fn signing_counts(log: &str, serial: u32) -> (usize, usize) {
    let marker = format!("signed with serial {serial} ");
    let Some(line) = log.lines().find(|line| line.contains(&marker)) else {
        panic!("no signing of serial {serial} in the log:\n{log}");
    };
    let number_before = |word: &str| {
        let end = line
            .find(word)
            .unwrap_or_else(|| panic!("{word:?} missing in {line}"));
        let digits: String = line[..end]
            .trim_end()
            .chars()
            .rev()
            .take_while(char::is_ascii_digit)
            .collect();
        digits
            .chars()
            .rev()
            .collect::<String>()
            .parse::<usize>()
            .unwrap()
    };
    (
        number_before(" new signatures"),
        number_before(" taken over"),
    )
}

#[test]
fn signed_cluster_zone_is_identical_on_every_member() {
    let test = "signed_cluster_zone_is_identical_on_every_member";
    let dir = tempfile::tempdir().unwrap();
    let Some(tools) = Tools::find(test) else {
        return;
    };
    let Some(etcd) = start_etcd(test, dir.path()) else {
        return;
    };
    let key = dir.path().join("cluster.key");
    assert!(new_key(&key).status.success());
    let start = |name: &str, key: Option<&Path>| {
        Member::start_with(
            program(),
            dir.path(),
            name,
            &etcd.endpoint(),
            key,
            LEASE_TTL,
            SIGNING_POLICIES,
        )
    };
    let mut a = start("ns-a", Some(&key));
    let b = start("ns-b", Some(&key));
    // C defines the policy `fast` with longer signatures; the definition
    // stored with the zone when A signs it is what counts.
    let c = Member::start_with(
        program(),
        dir.path(),
        "ns-c",
        &etcd.endpoint(),
        Some(&key),
        LEASE_TTL,
        &SIGNING_POLICIES.replacen(
            "signature_validity = \"1d\"",
            "signature_validity = \"2d\"",
            1,
        ),
    );
    // D has no cluster key.
    let d = start("ns-d", None);
    let all = [&a, &b, &c];
    let joined = wait_until(Duration::from_secs(20), || {
        a.servers()
            .is_some_and(|servers| servers.iter().filter(|s| s["online"] == true).count() == 4)
    });
    assert!(joined, "the members did not join: {:?}", a.servers());

    let zone_file = dir.path().join("shared.zone");
    std::fs::write(&zone_file, SIGNED_ZONE).unwrap();
    let output = a.cli(&[
        "zone",
        "add",
        "shared.test",
        "--cluster",
        "--from-file",
        zone_file.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", output_text(&output));

    // A member without the cluster key cannot be named Key Master, nor a
    // server outside the cluster.
    let reason = rejected(&a, &["zone", "sign", "shared.test", "--key-master", "ns-d"]);
    assert!(
        reason.contains("ns-d") && reason.contains("no cluster key"),
        "{reason}"
    );
    let reason = rejected(&a, &["zone", "sign", "shared.test", "--key-master", "ns-x"]);
    assert!(reason.contains("not a member"), "{reason}");
    let reason = rejected(&d, &["zone", "sign", "shared.test"]);
    assert!(reason.contains("no cluster key"), "{reason}");
    assert_eq!(zone_json(&a, "shared.test")["is_signed"], false);

    // Signed on A: A becomes Key Master, and every member serves the same
    // signed version.
    let output = a.cli(&["zone", "sign", "shared.test", "--policy", "fast"]);
    assert!(
        output.status.success(),
        "{}\n{}",
        output_text(&output),
        a.log()
    );
    let first = tools.wait_identical(&all, "shared.test.", dir.path(), 5, 20);
    let Some(first) = first else {
        panic!(
            "the members do not serve one signed version:\n{}\n{}\n{}",
            a.log(),
            b.log(),
            c.log()
        );
    };
    let note = "differs in signature_validity and is not used";
    assert!(c.log().contains(note), "{}", c.log());
    assert!(!a.log().contains(note), "{}", a.log());
    for member in all {
        let info = zone_json(member, "shared.test");
        assert_eq!(info["is_signed"], true, "{info}");
        assert_eq!(info["key_master_server"], "ns-a", "{info}");
        assert_eq!(info["key_master_status"], "online", "{info}");
        assert_eq!(info["key_master_epoch"], 1, "{info}");
        assert_eq!(info["can_sign"], true, "{info}");
        assert_eq!(info["is_key_master"], member.name == "ns-a", "{info}");
    }
    let listed = b.cli(&["zone", "list", "--json"]);
    let listed: Vec<serde_json::Value> = serde_json::from_slice(&listed.stdout).unwrap();
    let shared = listed
        .iter()
        .find(|zone| zone["zone"] == "shared.test.")
        .unwrap();
    assert_eq!(shared["key_master_server"], "ns-a", "{shared}");
    assert_eq!(shared["key_master_status"], "online", "{shared}");
    // D cannot sign, so it serves the version it transferred from a member
    // with the key, and its error names that member.
    let served = wait_until(Duration::from_secs(10), || {
        dig_answer(&tools.dig, d.dns_port, "www.shared.test", "A").is_some()
    });
    assert!(served, "{}", d.log());
    let info = zone_json(&d, "shared.test");
    assert_eq!(info["can_sign"], false, "{info}");
    let error = info["error"].as_str().unwrap_or_default();
    assert!(error.contains("no cluster key"), "{info}");
    assert!(error.contains("transferred from member"), "{info}");

    let anchor = tools.anchor(&a, "shared.test.", dir.path());
    for member in all {
        tools.assert_validates(member, &anchor, "shared.test", "www.shared.test", "A");
        tools.assert_validates(member, &anchor, "shared.test", "nosuch.shared.test", "A");
    }

    // Records imported on B, from a file whose serial is lower than the one
    // served: the serial still goes up, and every member serves the new
    // records within seconds.
    let changed = dir.path().join("changed.zone");
    std::fs::write(
        &changed,
        format!("{SIGNED_ZONE}www2 A 192.0.2.81\n").replace(" 5 7200 ", " 1 7200 "),
    )
    .unwrap();
    let imported = Instant::now();
    let output = b.cli(&["zone", "import", "shared.test", changed.to_str().unwrap()]);
    assert!(
        output.status.success(),
        "{}\n{}",
        output_text(&output),
        b.log()
    );
    let second = tools.wait_identical(&all, "shared.test.", dir.path(), first, 10);
    let Some(second) = second else {
        panic!("the import is not served alike: {}", b.log());
    };
    assert!(
        imported.elapsed() < Duration::from_secs(10),
        "{:?}",
        imported.elapsed()
    );
    for member in all {
        tools.assert_validates(member, &anchor, "shared.test", "www2.shared.test", "A");
    }
    // The import changed one name: each member signs the SOA, the new
    // RRset and the denial records around it, and takes the other
    // signatures over from the version before.
    for member in all {
        let (made, taken) = signing_counts(&member.log(), second);
        assert!(
            (1..=6).contains(&made) && taken >= 4,
            "{}: {made} new signatures, {taken} taken over for serial {second}",
            member.name
        );
    }
    let reason = rejected(
        &b,
        &["zone", "import", "nosuch.test", changed.to_str().unwrap()],
    );
    assert!(reason.contains("nosuch.test"), "{reason}");

    // A ZSK rollover on the Key Master: every version on the way is served
    // alike by every member.
    let established = wait_until(Duration::from_secs(60), || {
        keys_established(&keys_json(&b, "shared.test"))
    });
    assert!(
        established,
        "the first keys never became omnipresent: {:?}\n{}",
        keys_json(&b, "shared.test"),
        a.log()
    );
    let keys = keys_json(&c, "shared.test");
    let zsk = keys.iter().find(|key| key["role"] == "zsk").unwrap();
    let (old_id, old_tag) = (zsk["id"].clone(), zsk["key_tag"].to_string());
    let output = a.cli(&["key", "rollover", "shared.test", &old_tag]);
    assert!(output.status.success(), "{}", output_text(&output));
    let mut serials = vec![second];
    let finished = wait_until(Duration::from_secs(120), || {
        let latest = *serials.last().unwrap();
        if let Some(serial) = tools.identical(&all, "shared.test.", dir.path()) {
            if serial_newer(serial, latest) {
                serials.push(serial);
            }
        }
        let keys = keys_json(&b, "shared.test");
        keys.iter().all(|key| key["id"] != old_id) && keys_established(&keys)
    });
    assert!(
        finished,
        "the ZSK rollover did not finish: {:?}\n{}",
        keys_json(&b, "shared.test"),
        a.log()
    );
    let last = tools.wait_identical(&all, "shared.test.", dir.path(), second, 10);
    assert!(last.is_some(), "no common version after the rollover");
    if last.is_some_and(|serial| serial_newer(serial, *serials.last().unwrap())) {
        serials.extend(last);
    }
    assert!(
        serials.len() >= 4,
        "a pre-publication rollover needs at least three new versions; compared {serials:?}"
    );
    for member in all {
        tools.assert_validates(member, &anchor, "shared.test", "www.shared.test", "A");
    }

    // A zone whose signatures last 20 s, with A as its Key Master. Once A
    // is killed, B (the online member with the cluster key whose name
    // sorts first) refreshes them, and B and C serve the refreshed version.
    let output = a.cli(&[
        "zone",
        "add",
        "short.test",
        "--cluster",
        "--from-file",
        zone_file.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", output_text(&output));
    let output = a.cli(&["zone", "sign", "short.test", "--policy", "short"]);
    assert!(output.status.success(), "{}", output_text(&output));
    let signed = tools.wait_identical(&all, "short.test.", dir.path(), 5, 20);
    assert!(
        signed.is_some(),
        "short.test is not served alike: {}",
        a.log()
    );
    let anchor = tools.anchor(&b, "short.test.", dir.path());
    a.kill();
    let survivors = [&b, &c];
    let offline = wait_until(Duration::from_secs(15), || {
        zone_json(&b, "short.test")["key_master_status"] == "offline"
    });
    assert!(offline, "{}", zone_json(&b, "short.test"));
    let info = zone_json(&c, "short.test");
    assert_eq!(info["key_master_server"], "ns-a", "{info}");
    let waiting = info["key_management"].as_str().unwrap_or_default();
    assert!(waiting.contains("waits for Key Master ns-a"), "{info}");
    // An offline member cannot be made Key Master.
    let reason = rejected(&b, &["zone", "sign", "short.test", "--key-master", "ns-a"]);
    assert!(reason.contains("offline"), "{reason}");

    let killed_at = tools.serial(&b, "short.test").unwrap();
    // Two refreshes: the signatures of the version A published have
    // expired by the second.
    let mut refreshed = killed_at;
    for _ in 0..2 {
        let next = tools.wait_identical(&survivors, "short.test.", dir.path(), refreshed, 30);
        let Some(next) = next else {
            panic!(
                "no refreshed version after serial {refreshed}:\n{}\n{}",
                b.log(),
                c.log()
            );
        };
        refreshed = next;
        for member in survivors {
            tools.assert_validates(member, &anchor, "short.test", "www.short.test", "A");
        }
    }
    assert!(
        b.log().contains("ns-b refreshes the signatures"),
        "{}",
        b.log()
    );
    assert!(
        !c.log().contains("ns-c refreshes the signatures"),
        "{}",
        c.log()
    );
}

/// What `dig +dnssec` got for a zone's SOA: the response code, the serial
/// and whether an RRSIG came with it.
struct SoaAnswer {
    status: String,
    serial: Option<u32>,
    signed: bool,
}

fn dnssec_soa(dig: &Path, port: u16, zone: &str) -> SoaAnswer {
    let output = run(Command::new(dig)
        .arg("@127.0.0.1")
        .arg("-p")
        .arg(port.to_string())
        .args(["+dnssec", "+norec", "+time=1", "+tries=1", zone, "SOA"]));
    let text = String::from_utf8_lossy(&output.stdout).to_string();
    let status = text
        .split("status: ")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .unwrap_or("no response")
        .to_string();
    let answers: Vec<Vec<&str>> = text
        .lines()
        .filter(|line| !line.starts_with(';'))
        .map(|line| line.split_whitespace().collect())
        .filter(|fields: &Vec<&str>| fields.len() > 4)
        .collect();
    let serial = answers
        .iter()
        .find(|fields| fields[3] == "SOA")
        .and_then(|fields| fields.get(6)?.parse().ok());
    let signed = answers
        .iter()
        .any(|fields| fields[3] == "RRSIG" && fields[4] == "SOA");
    SoaAnswer {
        status,
        serial,
        signed,
    }
}

/// Reads the zone record's `last_serial` and the signing record's serial
/// of `zone` from etcd itself.
fn shared_serials(etcd: &Etcd, zone: &str) -> (Option<u32>, Option<u32>) {
    use keymaster_store::Store;
    let options = keymaster_store::etcd::EtcdOptions::new(vec![etcd.endpoint()]);
    let store = keymaster_store::EtcdStore::connect(&options).unwrap();
    let record = store.zone(zone).unwrap().expect("no zone record in etcd");
    let signing = store.signing_record(zone).unwrap();
    (record.last_serial, signing.map(|signing| signing.serial))
}

/// Asks `member` for the SOA of `zone` 20 times over about 5 s and
/// asserts that it never answers without an RRSIG. Returns the serials
/// it answered with.
fn never_unsigned(tools: &Tools, member: &Member, zone: &str) -> Vec<u32> {
    let mut serials = Vec::new();
    for _ in 0..20 {
        let answer = dnssec_soa(&tools.dig, member.dns_port, zone);
        match answer.status.as_str() {
            "REFUSED" => {}
            "NOERROR" => {
                assert!(
                    answer.signed,
                    "{} answers {zone} SOA without an RRSIG:\n{}",
                    member.name,
                    member.log()
                );
                serials.extend(answer.serial);
            }
            other => panic!("{} answers {zone} SOA with {other}", member.name),
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    serials
}

#[test]
fn member_without_cluster_key_never_serves_a_signed_zone_unsigned() {
    let test = "member_without_cluster_key_never_serves_a_signed_zone_unsigned";
    let dir = tempfile::tempdir().unwrap();
    let Some(tools) = Tools::find(test) else {
        return;
    };
    let Some(etcd) = start_etcd(test, dir.path()) else {
        return;
    };
    let key = dir.path().join("cluster.key");
    assert!(new_key(&key).status.success());
    let start = |name: &str, key: Option<&Path>| {
        Member::start_with(
            program(),
            dir.path(),
            name,
            &etcd.endpoint(),
            key,
            LEASE_TTL,
            SIGNING_POLICIES,
        )
    };
    let mut a = start("ns-a", Some(&key));
    // C never has the cluster key; D has it first and loses it later.
    let c = start("ns-c", None);
    let mut d = start("ns-d", Some(&key));
    let joined = wait_until(Duration::from_secs(20), || {
        a.servers()
            .is_some_and(|servers| servers.iter().filter(|s| s["online"] == true).count() == 3)
    });
    assert!(joined, "the members did not join: {:?}", a.servers());

    let zone_file = dir.path().join("shared.zone");
    std::fs::write(&zone_file, SIGNED_ZONE).unwrap();
    let output = a.cli(&[
        "zone",
        "add",
        "shared.test",
        "--cluster",
        "--from-file",
        zone_file.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", output_text(&output));
    let output = a.cli(&["zone", "sign", "shared.test", "--policy", "fast"]);
    assert!(output.status.success(), "{}", output_text(&output));
    let established = wait_until(Duration::from_secs(60), || {
        keys_established(&keys_json(&a, "shared.test"))
    });
    assert!(
        established,
        "{:?}\n{}",
        keys_json(&a, "shared.test"),
        a.log()
    );
    let saved = tools.wait_identical(&[&a, &d], "shared.test.", dir.path(), 5, 20);
    let Some(saved) = saved else {
        panic!(
            "A and D do not serve one signed version:\n{}\n{}",
            a.log(),
            d.log()
        );
    };

    // C has nothing saved, so it serves the version it transferred from a
    // member with the key, always signed, and its error names that member.
    let fetched = wait_until(Duration::from_secs(10), || {
        zone_json(&c, "shared.test")["serial"] == saved
    });
    assert!(fetched, "{}", c.log());
    never_unsigned(&tools, &c, "shared.test");
    let info = zone_json(&c, "shared.test");
    assert_eq!(info["can_sign"], false, "{info}");
    let error = info["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("no cluster key") && error.contains("transferred from member"),
        "{info}"
    );

    // D loses the key while A rolls the ZSK, a key step that raises the
    // serial without new records. A is then stopped, so nothing else
    // writes to etcd.
    d.kill();
    let zsk = keys_json(&a, "shared.test")
        .into_iter()
        .find(|key| key["role"] == "zsk")
        .unwrap();
    let output = a.cli(&[
        "key",
        "rollover",
        "shared.test",
        &zsk["key_tag"].to_string(),
    ]);
    assert!(output.status.success(), "{}", output_text(&output));
    let stepped = wait_until(Duration::from_secs(30), || {
        tools
            .serial(&a, "shared.test")
            .is_some_and(|serial| serial_newer(serial, saved))
    });
    assert!(
        stepped,
        "the rollover did not raise the serial: {}",
        a.log()
    );
    a.kill();
    let before = shared_serials(&etcd, "shared.test.");
    let signers = before.1.expect("no signing record");
    assert!(!serial_newer(saved, signers), "{before:?}");

    // Restarted without the key, D serves the signed version it saved,
    // never a serial the signers do not have, and writes nothing to etcd.
    for round in 0..2 {
        let restarted = start("ns-d", None);
        let served = wait_until(Duration::from_secs(20), || {
            zone_json(&restarted, "shared.test")["loaded"] == true
        });
        assert!(served, "round {round}: {}", restarted.log());
        for serial in never_unsigned(&tools, &restarted, "shared.test") {
            assert_eq!(serial, saved, "round {round}: {}", restarted.log());
        }
        let info = zone_json(&restarted, "shared.test");
        assert_eq!(info["serial"], saved, "{info}");
        let error = info["error"].as_str().unwrap_or_default();
        assert!(
            error.contains("no cluster key") && error.contains("saved"),
            "{info}"
        );
        assert_eq!(
            shared_serials(&etcd, "shared.test."),
            before,
            "round {round}: D changed the shared records:\n{}",
            restarted.log()
        );
        d = restarted;
        d.kill();
    }
    // C keeps the version it transferred while its signatures are valid.
    never_unsigned(&tools, &c, "shared.test");
}

#[test]
fn zone_list_fails_while_etcd_is_down() {
    let test = "zone_list_fails_while_etcd_is_down";
    let dir = tempfile::tempdir().unwrap();
    let Some(mut etcd) = start_etcd(test, dir.path()) else {
        return;
    };
    let a = start(dir.path(), "ns-a", &etcd, None);
    let zone_file = dir.path().join("shared.zone");
    std::fs::write(&zone_file, SIGNED_ZONE).unwrap();
    let joined = wait_until(Duration::from_secs(20), || a.servers().is_some());
    assert!(joined, "{}", a.log());
    let output = a.cli(&[
        "zone",
        "add",
        "shared.test",
        "--cluster",
        "--from-file",
        zone_file.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", output_text(&output));
    let listed = a.cli(&["zone", "list"]);
    assert!(
        listed.status.success() && output_text(&listed).contains("shared.test."),
        "{}",
        output_text(&listed)
    );

    etcd.kill();
    let mut command = keymaster();
    command
        .arg("--data-dir")
        .arg(&a.data_dir)
        .args(["zone", "list"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = ChildGuard::spawn("keymaster zone list", &mut command);
    let started = Instant::now();
    let mut status = None;
    wait_until(Duration::from_secs(30), || {
        status = child.child.try_wait().unwrap();
        status.is_some()
    });
    let Some(status) = status else {
        panic!("zone list still runs after {:?}", started.elapsed());
    };
    let mut output = Output {
        status,
        stdout: Vec::new(),
        stderr: Vec::new(),
    };
    use std::io::Read;
    child
        .child
        .stdout
        .take()
        .unwrap()
        .read_to_end(&mut output.stdout)
        .unwrap();
    child
        .child
        .stderr
        .take()
        .unwrap()
        .read_to_end(&mut output.stderr)
        .unwrap();
    let text = output_text(&output);
    assert!(!output.status.success(), "zone list succeeded: {text}");
    assert!(
        text.contains("cluster zones cannot be listed") && text.contains(&etcd.endpoint()),
        "{text}"
    );
}

/// Returns the position in `log` of the first line that reports `zone`
/// signed with `serial`, if any.
fn signed_line(log: &str, zone: &str, serial: u64) -> Option<usize> {
    log.find(&format!("zone {zone} signed with serial {serial} "))
}

#[test]
fn slow_zone_does_not_hold_back_others() {
    let test = "slow_zone_does_not_hold_back_others";
    let dir = tempfile::tempdir().unwrap();
    let Some(etcd) = start_etcd(test, dir.path()) else {
        return;
    };
    let key = dir.path().join("cluster.key");
    assert!(new_key(&key).status.success());
    let start = |name: &str| {
        Member::join(
            program(),
            dir.path(),
            name,
            &etcd.endpoint(),
            Some(&key),
            FAST_POLICY,
        )
    };
    let (a, b) = (start("ns-a"), start("ns-b"));

    let small = dir.path().join("small.db");
    std::fs::write(&small, SIGNED_ZONE).unwrap();
    let small = small.to_str().unwrap();
    ok(
        &a,
        &[
            "zone",
            "add",
            "small.test.",
            "--cluster",
            "--from-file",
            small,
        ],
    );
    ok(&a, &["zone", "sign", "small.test.", "--policy", "fast"]);
    let large_file = dir.path().join("large.db");
    std::fs::write(&large_file, large_zone(30_000)).unwrap();
    let large_file = large_file.to_str().unwrap();
    ok(
        &a,
        &[
            "zone",
            "add",
            "large.test.",
            "--cluster",
            "--from-file",
            large_file,
        ],
    );
    let first = zone_json(&a, "small.test.")["serial"].as_u64().unwrap();
    let ready = wait_until(Duration::from_secs(20), || {
        signed_line(&b.log(), "small.test.", first).is_some()
    });
    assert!(ready, "B never signed small.test.\n{}", b.log());

    // A and B sign the whole large zone for its first signed version once
    // A has generated its keys. A change of the small zone made meanwhile
    // is served on B without waiting for that.
    std::fs::write(
        dir.path().join("small.db"),
        format!("{SIGNED_ZONE}mail A 192.0.2.25\n"),
    )
    .unwrap();
    let changed = std::thread::scope(|scope| {
        let signing = scope.spawn(|| {
            let args = [
                "--timeout",
                "600",
                "zone",
                "sign",
                "large.test.",
                "--policy",
                "fast",
            ];
            a.cli(&args)
        });
        // B starts signing as soon as the watch shows it the first signing
        // record, which A writes with the step that adds the keys.
        let history = History::connect(&etcd.endpoint());
        let recorded = wait_until(Duration::from_secs(60), || {
            history.exists("/keymaster/signing/large.test.")
        });
        assert!(
            recorded,
            "A wrote no signing record for large.test.\n{}",
            a.log()
        );
        std::thread::sleep(Duration::from_millis(300));
        ok(&a, &["zone", "import", "small.test.", small]);
        let changed = zone_json(&a, "small.test.")["serial"].as_u64().unwrap();
        let signed = signing.join().unwrap();
        assert!(signed.status.success(), "{}", output_text(&signed));
        changed
    });
    assert!(changed > first, "import kept serial {first}");
    let large_signed = "zone large.test. signed with serial";
    let both = wait_until(Duration::from_secs(120), || {
        let log = b.log();
        signed_line(&log, "small.test.", changed).is_some() && log.contains(large_signed)
    });
    assert!(both, "B did not sign both zones\n{}", b.log());
    let log = b.log();
    let small_at = signed_line(&log, "small.test.", changed).unwrap();
    let large_at = log.find(large_signed).unwrap();
    assert!(
        small_at < large_at,
        "B signed small.test. only after the large zone\n{log}\nA:\n{}",
        a.log()
    );
}
