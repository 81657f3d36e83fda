//! The Key Master role of cluster zones: `role assign`, `role transfer`,
//! `role seize` and `role show` between real `keymaster serve` members on
//! a private etcd, and the fencing of a Key Master that was frozen while
//! another member seized its role.

use std::path::Path;
use std::time::Duration;

use keymaster_testutil::cli::{json, ok, rejected};
use keymaster_testutil::etcd::{start_etcd, Etcd};
use keymaster_testutil::history::History;
use keymaster_testutil::member::{cluster_key, server, Member, LEASE_TTL};
use keymaster_testutil::{lines_with, output_text, wait_until};

/// How long a member may take to notice a change made on another one.
const CHANGE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a member may take to show offline after it stopped: the
/// lease, etcd's rounding up of short leases, and a slow machine.
const OFFLINE_TIMEOUT: Duration = Duration::from_secs(20);

fn program() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_keymaster"))
}

/// Starts a member and waits until it joined the cluster.
fn start(dir: &Path, name: &str, etcd: &Etcd, key: Option<&Path>) -> Member {
    Member::join(program(), dir, name, &etcd.endpoint(), key, "")
}

/// Adds cluster zone `zone` on `member` from a small master file.
fn add_zone(member: &Member, dir: &Path, zone: &str) {
    let file = dir.join(format!("{zone}.zone"));
    std::fs::write(
        &file,
        "$TTL 300\n@ SOA ns hostmaster 1 7200 3600 1209600 300\n@ NS ns\nns A 192.0.2.53\n",
    )
    .unwrap();
    let path = file.to_str().unwrap();
    ok(
        member,
        &["zone", "add", zone, "--cluster", "--from-file", path],
    );
}

/// Returns `role show ZONE --json` on `member`.
fn role(member: &Member, zone: &str) -> serde_json::Value {
    json(&ok(member, &["role", "show", zone, "--json"]))
}

/// Waits until every member shows `key_master` at `epoch`, online.
fn wait_role_agreed(members: &[&Member], zone: &str, key_master: &str, epoch: u64) {
    for member in members {
        let mut last = serde_json::Value::Null;
        let agreed = wait_until(CHANGE_TIMEOUT, || {
            last = role(member, zone);
            last["key_master"] == key_master
                && last["epoch"] == epoch
                && last["key_master_status"] == "online"
        });
        assert!(
            agreed,
            "{}: role of {zone} is {last}, not {key_master} at epoch {epoch}",
            member.name
        );
        assert!(last["changed"].is_u64(), "{last}");
        assert_eq!(last["is_key_master"], member.name == key_master, "{last}");
    }
}

/// Waits until `observer` lists `name` as offline.
fn wait_offline(observer: &Member, name: &str) {
    let offline = wait_until(OFFLINE_TIMEOUT, || {
        observer.servers().is_some_and(|servers| {
            server(&servers, name).is_some_and(|entry| entry["online"] == false)
        })
    });
    assert!(offline, "{} never saw {name} offline", observer.name);
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn cluster_role_assign_and_transfer() {
    let test = "cluster_role_assign_and_transfer";
    let dir = tempfile::tempdir().unwrap();
    let Some(etcd) = start_etcd(test, dir.path()) else {
        return;
    };
    let key = cluster_key(program(), dir.path());
    let a = start(dir.path(), "ns-a", &etcd, Some(&key));
    let b = start(dir.path(), "ns-b", &etcd, Some(&key));
    let mut c = start(dir.path(), "ns-c", &etcd, None);
    add_zone(&a, dir.path(), "one.test");
    let unassigned = role(&a, "one.test");
    assert_eq!(
        unassigned["key_master"],
        serde_json::Value::Null,
        "{unassigned}"
    );
    assert_eq!(unassigned["key_master_status"], "none", "{unassigned}");

    // Only an online member with the cluster key can be assigned.
    let message = rejected(&a, &["role", "assign", "one.test", "ns-c"]);
    assert!(
        message.contains("ns-c cannot sign: it has no cluster key"),
        "{message}"
    );
    let message = rejected(&a, &["role", "assign", "one.test", "ns-x"]);
    assert!(message.contains("ns-x is not a member"), "{message}");
    let message = rejected(&a, &["role", "assign", "one.test", ""]);
    assert!(message.contains("the server name is empty"), "{message}");
    let message = rejected(&a, &["role", "transfer", "", "ns-a"]);
    assert!(message.contains("name is empty"), "{message}");

    // Assigned on B, the role is seen alike by every member.
    let assigned = json(&ok(&b, &["role", "assign", "one.test", "ns-a", "--json"]));
    assert_eq!(assigned["key_master"], "ns-a", "{assigned}");
    assert_eq!(assigned["epoch"], 1, "{assigned}");
    wait_role_agreed(&[&a, &b, &c], "one.test", "ns-a", 1);
    let message = rejected(&b, &["role", "assign", "one.test", "ns-b"]);
    assert!(message.contains("already has Key Master ns-a"), "{message}");
    let text = output_text(&ok(&c, &["role", "show", "one.test"]));
    assert!(
        text.contains("Key Master ns-a (epoch 1, online, changed "),
        "{text}"
    );

    // The role survives `zone unsign`.
    ok(&a, &["zone", "unsign", "one.test"]);
    wait_role_agreed(&[&a], "one.test", "ns-a", 1);

    // A transfer to a member without the cluster key is refused with the
    // reason, and a member without the key cannot forward: it names the
    // Key Master's control URL instead.
    let message = rejected(&b, &["role", "transfer", "one.test", "ns-c"]);
    assert!(
        message.contains("ns-c cannot sign: it has no cluster key"),
        "{message}"
    );
    let message = rejected(&c, &["role", "transfer", "one.test", "ns-b"]);
    assert!(message.contains(&a.control_url), "{message}");

    // A transfer sent to B goes to A, the Key Master, which hands over.
    let moved = json(&ok(&b, &["role", "transfer", "one.test", "ns-b", "--json"]));
    assert_eq!(moved["key_master"], "ns-b", "{moved}");
    assert_eq!(moved["epoch"], 2, "{moved}");
    wait_role_agreed(&[&a, &b, &c], "one.test", "ns-b", 2);
    let log = a.log();
    assert_eq!(
        lines_with(&log, "transferred from ns-a to ns-b at epoch 2").len(),
        1,
        "{log}"
    );
    assert!(
        lines_with(&log, "lost the Key Master role").is_empty(),
        "{log}"
    );
    let noticed = wait_until(CHANGE_TIMEOUT, || {
        b.log().contains("ns-b is now its Key Master at epoch 2")
    });
    assert!(noticed, "{}", b.log());

    // The token of a forwarded transfer opens that one request only: not
    // another path, not another target, and not once the role has moved
    // or the deadline has passed.
    let cluster_key = keymaster_keys::kek::KeyEncryptionKey::open_existing(&key).unwrap();
    let transfer = "/api/v1/zones/one.test./role/transfer";
    let forwarded = |server: &str, epoch: u64, deadline: u64| keymaster_api::RoleRequest {
        server: Some(server.to_string()),
        force: false,
        deadline: Some(deadline),
        epoch: Some(epoch),
    };
    let token_for = |body: &keymaster_api::RoleRequest| {
        keymaster::daemon::role::forward_token(&cluster_key, transfer, body).unwrap()
    };
    let send =
        |url: &str, method: &str, path: &str, token: &str, body: &keymaster_api::RoleRequest| {
            let request = ureq::request(method, &format!("{url}{path}"))
                .set("Authorization", &format!("Bearer {token}"));
            let result = if method == "POST" {
                request.send_json(body)
            } else {
                request.call()
            };
            match result {
                Ok(response) => (response.status(), String::new()),
                Err(ureq::Error::Status(code, response)) => {
                    (code, response.into_string().unwrap_or_default())
                }
                Err(error) => panic!("{method} {path}: {error}"),
            }
        };
    let later = unix_now() + 60;
    let body = forwarded("ns-a", 2, later);
    let token = token_for(&body);
    let status =
        |url: &str, method: &str, path: &str, token: &str, body: &keymaster_api::RoleRequest| {
            send(url, method, path, token, body).0
        };
    let url = a.control_url.as_str();
    assert_eq!(status(url, "GET", "/api/v1/zones", &token, &body), 401);
    // The operator token opens the dashboard from the URL, never the API.
    let operator = std::fs::read_to_string(a.data_dir.join("control.token")).unwrap();
    let from_url = |path: &str| match ureq::get(&format!("{url}{path}?token={operator}")).call() {
        Ok(response) => response.status(),
        Err(ureq::Error::Status(code, _)) => code,
        Err(error) => panic!("{path}: {error}"),
    };
    assert_eq!(from_url("/"), 200);
    assert_eq!(from_url("/api/v1/zones"), 401);
    assert_eq!(
        status(
            url,
            "POST",
            "/api/v1/zones/one.test./role/seize",
            &token,
            &body
        ),
        401
    );
    assert_eq!(
        status(
            url,
            "POST",
            "/api/v1/zones/one.test./role/assign",
            &token,
            &body
        ),
        401
    );
    assert_eq!(
        status(
            url,
            "POST",
            "/api/v1/zones/two.test./role/transfer",
            &token,
            &body
        ),
        401
    );
    assert_eq!(status(url, "POST", transfer, "0123", &body), 401);
    assert_eq!(
        status(url, "POST", transfer, &token, &forwarded("ns-c", 2, later)),
        401
    );
    assert_eq!(
        status(
            url,
            "POST",
            transfer,
            &token,
            &forwarded("ns-a", 2, later + 1)
        ),
        401
    );
    let unbound = keymaster_api::RoleRequest {
        server: Some("ns-a".to_string()),
        ..Default::default()
    };
    assert_eq!(status(url, "POST", transfer, &token, &unbound), 401);
    // Accepted, and refused by A, which is no longer the Key Master and
    // never forwards a request that came from a member.
    assert_eq!(status(url, "POST", transfer, &token, &body), 409);
    // B, the Key Master, rejects a token made for the epoch before the
    // last transfer, and one whose deadline has passed.
    let stale = forwarded("ns-a", 1, later);
    let (code, text) = send(&b.control_url, "POST", transfer, &token_for(&stale), &stale);
    assert_eq!(code, 409, "{text}");
    assert!(text.contains("decided on the role at epoch 1"), "{text}");
    let late = forwarded("ns-a", 2, unix_now() - 1);
    let (code, text) = send(&b.control_url, "POST", transfer, &token_for(&late), &late);
    assert_eq!(code, 409, "{text}");
    assert!(text.contains("stopped waiting"), "{text}");
    wait_role_agreed(&[&a, &b], "one.test", "ns-b", 2);

    // Only the new Key Master manages the zone's keys.
    let message = rejected(&a, &["key", "add", "one.test", "--role", "ksk"]);
    assert!(message.contains("its Key Master is ns-b"), "{message}");
    ok(&b, &["key", "add", "one.test", "--role", "ksk"]);

    // One server is Key Master of two zones, and another of a third.
    add_zone(&b, dir.path(), "two.test");
    add_zone(&b, dir.path(), "three.test");
    ok(&c, &["role", "assign", "two.test", "ns-a"]);
    ok(&c, &["role", "assign", "three.test", "ns-b"]);
    let servers = json(&ok(&c, &["server", "list", "--json"]));
    let of = |name: &str| {
        servers
            .as_array()
            .unwrap()
            .iter()
            .find(|server| server["name"] == name)
            .map(|server| server["key_master_of"].clone())
    };
    assert_eq!(
        of("ns-a"),
        Some(serde_json::json!(["two.test."])),
        "{servers}"
    );
    assert_eq!(
        of("ns-b"),
        Some(serde_json::json!(["one.test.", "three.test."])),
        "{servers}"
    );

    // An offline member cannot be assigned.
    add_zone(&a, dir.path(), "four.test");
    c.kill();
    wait_offline(&a, "ns-c");
    let message = rejected(&a, &["role", "assign", "four.test", "ns-c"]);
    assert!(message.contains("ns-c is offline"), "{message}");

    // A cluster zone named like A's file zone, which hides it on A: its
    // role given to A cannot be transferred from there, and the error gives the reason.
    add_zone(&b, dir.path(), "ns-a.file.test");
    ok(&b, &["role", "assign", "ns-a.file.test", "ns-a"]);
    let message = rejected(&b, &["role", "transfer", "ns-a.file.test", "ns-b"]);
    assert!(
        message.contains("serves a file zone of that name"),
        "{message}"
    );
    ok(&b, &["role", "seize", "ns-a.file.test", "ns-b", "--force"]);

    // File zones keep their single primary as Key Master.
    for args in [
        &["role", "transfer", "ns-a.file.test", "ns-b"][..],
        &["role", "seize", "ns-a.file.test", "ns-b", "--force"][..],
    ] {
        let message = rejected(&a, args);
        assert!(message.contains("single primary (ns-a)"), "{message}");
    }
}

/// Returns the number of keys `member` lists for `zone`.
fn key_count(member: &Member, zone: &str) -> usize {
    let output = member.cli(&["key", "list", zone, "--json"]);
    if !output.status.success() {
        return 0;
    }
    json(&output).as_array().map_or(0, Vec::len)
}

#[test]
fn cluster_role_kept_by_sign_unsign_timeouts() {
    let test = "cluster_role_kept_by_sign_unsign_timeouts";
    let dir = tempfile::tempdir().unwrap();
    let Some(etcd) = Etcd::start(test, &dir.path().join("etcd")) else {
        return;
    };
    let key = cluster_key(program(), dir.path());
    let a = start(dir.path(), "ns-a", &etcd, Some(&key));
    let b = start(dir.path(), "ns-b", &etcd, Some(&key));
    add_zone(&a, dir.path(), "kept.test");

    // Another spelling of the same name is the same zone.
    let file = dir.path().join("kept.test.zone");
    let message = rejected(
        &a,
        &[
            "zone",
            "add",
            "\\075EPT.test",
            "--cluster",
            "--from-file",
            file.to_str().unwrap(),
        ],
    );
    assert!(message.contains("kept.test. already exists"), "{message}");

    // A Key Master assigned ahead of signing keeps the role when another
    // member signs the zone, and it makes the keys.
    ok(&a, &["role", "assign", "\\075EPT.TEST", "ns-b"]);
    let message = rejected(&a, &["zone", "sign", "kept.test", "--key-master", "ns-a"]);
    assert!(message.contains("already has Key Master ns-b"), "{message}");
    ok(&a, &["zone", "sign", "kept.test"]);
    wait_role_agreed(&[&a, &b], "kept.test", "ns-b", 1);
    let keyed = wait_until(CHANGE_TIMEOUT, || key_count(&b, "kept.test") >= 2);
    assert!(keyed, "{}", b.log());

    // Only the Key Master takes the zone out of signing; the role
    // survives it, and only the Key Master signs the zone again.
    let message = rejected(&a, &["zone", "unsign", "kept.test"]);
    assert!(message.contains("its Key Master is ns-b"), "{message}");
    let shown = json(&ok(&a, &["zone", "show", "kept.test", "--json"]));
    assert_eq!(shown["is_signed"], true, "{shown}");
    ok(&b, &["zone", "unsign", "kept.test", "--no-parent-ds"]);
    wait_role_agreed(&[&a, &b], "kept.test", "ns-b", 1);
    let message = rejected(&a, &["zone", "sign", "kept.test"]);
    assert!(
        message.contains("run `keymaster zone sign kept.test.` there"),
        "{message}"
    );
    ok(&b, &["zone", "sign", "kept.test"]);

    // A transfer whose requester gave up while the Key Master was frozen
    // changes nothing when the Key Master wakes up.
    b.pause();
    let late = a.cli(&["--timeout", "2", "role", "transfer", "kept.test", "ns-a"]);
    b.resume();
    assert!(!late.status.success(), "{}", output_text(&late));
    std::thread::sleep(Duration::from_secs(3));
    wait_role_agreed(&[&a, &b], "kept.test", "ns-b", 1);
    let moved = json(&ok(
        &a,
        &["role", "transfer", "kept.test", "ns-a", "--json"],
    ));
    assert_eq!(moved["epoch"], 2, "{moved}");
}

#[test]
fn cluster_member_name_held_once() {
    let test = "cluster_member_name_held_once";
    let dir = tempfile::tempdir().unwrap();
    let Some(etcd) = Etcd::start(test, &dir.path().join("etcd")) else {
        return;
    };
    let key = cluster_key(program(), dir.path());
    let mut a = start(dir.path(), "ns-a", &etcd, Some(&key));
    add_zone(&a, dir.path(), "twin.test");
    ok(&a, &["role", "assign", "twin.test", "ns-a"]);

    // A second server under a live member's name would pass the fence of
    // that member's roles: it does not join while the name is online.
    let twin_dir = dir.path().join("twin");
    let twin = Member::start(
        program(),
        &twin_dir,
        "ns-a",
        &etcd.endpoint(),
        Some(&key),
        LEASE_TTL,
    );
    let refused = wait_until(CHANGE_TIMEOUT, || {
        twin.log()
            .contains("another server is online as member ns-a")
    });
    assert!(refused, "{}", twin.log());
    let servers = json(&ok(&a, &["server", "list", "--json"]));
    assert_eq!(servers[0]["name"], "ns-a", "{servers}");
    assert_eq!(
        servers[0]["control_address"],
        a.control_url.as_str(),
        "{servers}"
    );
    let message = rejected(&twin, &["role", "show", "twin.test"]);
    assert!(!message.is_empty());

    // Once the first one has stopped and its lease ran out, the name is free.
    a.kill();
    let joined = wait_until(OFFLINE_TIMEOUT, || {
        twin.log().contains("ns-a joined the cluster")
    });
    assert!(joined, "{}", twin.log());
    wait_role_agreed(&[&twin], "twin.test", "ns-a", 1);
}

#[test]
fn cluster_role_seize() {
    let test = "cluster_role_seize";
    let dir = tempfile::tempdir().unwrap();
    let Some(etcd) = start_etcd(test, dir.path()) else {
        return;
    };
    let key = cluster_key(program(), dir.path());
    let a = start(dir.path(), "ns-a", &etcd, Some(&key));
    let b = start(dir.path(), "ns-b", &etcd, Some(&key));
    let mut c = start(dir.path(), "ns-c", &etcd, Some(&key));
    add_zone(&a, dir.path(), "seize.test");
    ok(&a, &["role", "assign", "seize.test", "ns-a"]);

    // While A's lease lives, seizing needs --force, and a forced seizure is
    // logged as a warning naming the operator's server and the old Key
    // Master, which notices that it lost the role.
    let message = rejected(&c, &["role", "seize", "seize.test"]);
    assert!(message.contains("ns-a is online"), "{message}");
    assert!(message.contains("--force"), "{message}");
    let seized = json(&ok(
        &c,
        &["role", "seize", "seize.test", "--force", "--json"],
    ));
    assert_eq!(seized["key_master"], "ns-c", "{seized}");
    assert_eq!(seized["epoch"], 2, "{seized}");
    wait_role_agreed(&[&a, &b, &c], "seize.test", "ns-c", 2);
    let log = c.log();
    let forced = lines_with(&log, "forced seizure");
    assert_eq!(forced.len(), 1, "{log}");
    assert!(forced[0].contains("WARN"), "{}", forced[0]);
    assert!(forced[0].contains("on ns-c"), "{}", forced[0]);
    assert!(forced[0].contains("ns-a is online"), "{}", forced[0]);
    let lost = wait_until(CHANGE_TIMEOUT, || {
        a.log()
            .contains("lost the Key Master role of seize.test. to ns-c at epoch 2")
    });
    assert!(lost, "{}", a.log());

    // Once C is killed and its lease ran out, a transfer is refused and B
    // seizes the role for itself without --force.
    c.kill();
    wait_offline(&b, "ns-c");
    let message = rejected(&a, &["role", "transfer", "seize.test", "ns-a"]);
    assert!(message.contains("ns-c is offline"), "{message}");
    assert!(message.contains("role seize"), "{message}");
    let seized = json(&ok(&b, &["role", "seize", "seize.test", "--json"]));
    assert_eq!(seized["key_master"], "ns-b", "{seized}");
    assert_eq!(seized["epoch"], 3, "{seized}");
    wait_role_agreed(&[&a, &b], "seize.test", "ns-b", 3);
    let log = b.log();
    assert_eq!(
        lines_with(&log, "seized on ns-b from ns-c, which is offline").len(),
        1,
        "{log}"
    );
    assert!(lines_with(&log, "forced seizure").is_empty(), "{log}");
}

#[test]
fn cluster_role_fences_a_frozen_key_master() {
    let test = "cluster_role_fences_a_frozen_key_master";
    let dir = tempfile::tempdir().unwrap();
    let Some(etcd) = start_etcd(test, dir.path()) else {
        return;
    };
    let key = cluster_key(program(), dir.path());
    let a = start(dir.path(), "ns-a", &etcd, Some(&key));
    let c = start(dir.path(), "ns-c", &etcd, Some(&key));
    add_zone(&a, dir.path(), "fenced.test");
    ok(&a, &["role", "assign", "fenced.test", "ns-a"]);
    ok(&a, &["key", "add", "fenced.test", "--role", "ksk"]);

    // A is frozen; once its lease ran out, C seizes the role.
    a.pause();
    wait_offline(&c, "ns-a");
    ok(&c, &["role", "seize", "fenced.test"]);
    let history = History::connect(&etcd.endpoint());
    let seizure = history.mod_revision("/keymaster/roles/fenced.test.");

    // Back, A learns that it lost the role and manages no key any more.
    a.resume();
    let message = rejected(&a, &["key", "add", "fenced.test", "--role", "zsk"]);
    assert!(message.contains("ns-c"), "{message}");
    let lost = wait_until(CHANGE_TIMEOUT, || {
        a.log()
            .contains("lost the Key Master role of fenced.test. to ns-c at epoch 2")
    });
    assert!(lost, "{}", a.log());
    let added = json(&ok(
        &c,
        &["key", "add", "fenced.test", "--role", "zsk", "--json"],
    ));
    let id = added["id"].as_str().unwrap().to_string();
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        lines_with(&a.log(), "lost the Key Master role").len(),
        1,
        "{}",
        a.log()
    );

    // Since the seizure, the only key-management write is C's new key.
    let written = history.keys_written_after(seizure);
    let managed: Vec<&String> = written
        .iter()
        .filter(|key| {
            ["roles/", "keys/", "engine/"]
                .iter()
                .any(|dir| key.starts_with(&format!("/keymaster/{dir}")))
        })
        .collect();
    assert_eq!(
        managed,
        [&format!("/keymaster/keys/fenced.test./{id}")],
        "all writes since revision {seizure}: {written:?}"
    );
}

/// Returns the serial `member` serves for `zone`, from `zone show`.
fn served_serial(member: &Member, zone: &str) -> Option<u64> {
    let output = member.cli(&["zone", "show", zone, "--json"]);
    if !output.status.success() {
        return None;
    }
    json(&output)["serial"].as_u64()
}

#[test]
fn unsigned_cluster_zone_keeps_one_serial() {
    let test = "unsigned_cluster_zone_keeps_one_serial";
    let dir = tempfile::tempdir().unwrap();
    let Some(etcd) = start_etcd(test, dir.path()) else {
        return;
    };
    let key = cluster_key(program(), dir.path());
    let start_fast = |name: &str| {
        Member::join(
            program(),
            dir.path(),
            name,
            &etcd.endpoint(),
            Some(&key),
            keymaster_testutil::member::FAST_POLICY,
        )
    };
    let a = start_fast("ns-a");
    let b = start_fast("ns-b");
    add_zone(&a, dir.path(), "one.test");
    ok(&a, &["zone", "sign", "one.test", "--policy", "fast"]);
    // Signed versions count past the content's serial 1.
    let signed = wait_until(CHANGE_TIMEOUT, || {
        [&a, &b]
            .iter()
            .all(|member| served_serial(member, "one.test").is_some_and(|serial| serial > 1))
    });
    assert!(signed, "{}", a.log());

    // Unsigned while the parent never had a DS: once both members serve
    // the records unsigned, with a serial above every signed one, the
    // serial stays put and is the same on both.
    ok(&a, &["zone", "unsign", "one.test", "--no-parent-ds"]);
    let unsigned = wait_until(Duration::from_secs(60), || {
        [&a, &b].iter().all(|member| {
            let output = member.cli(&["zone", "show", "one.test", "--json"]);
            output.status.success() && json(&output)["is_signed"] == false
        })
    });
    assert!(unsigned, "{}", a.log());
    std::thread::sleep(Duration::from_secs(2));
    let first = (served_serial(&a, "one.test"), served_serial(&b, "one.test"));
    std::thread::sleep(Duration::from_secs(3));
    let later = (served_serial(&a, "one.test"), served_serial(&b, "one.test"));
    assert_eq!(first.0, first.1, "members disagree: {first:?}");
    assert_eq!(
        first,
        later,
        "the serial kept moving\n{}\n{}",
        a.log(),
        b.log()
    );
}
