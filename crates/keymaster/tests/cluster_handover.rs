//! The Key Master role of a signed cluster zone moves in the middle of a
//! rollover: by `role transfer` while a new ZSK is being published, and by
//! `role seize` from a frozen Key Master in the middle of a double-KSK
//! rollover. The new Key Master finishes the rollover, the former one
//! writes nothing more, and a validator querying every member never gets
//! a failure.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use keymaster_testutil::cli::{json, key_of_role, keys_established, keys_json, ok};
use keymaster_testutil::dns::{delv_validates, static_ds_entries};
use keymaster_testutil::etcd::{start_etcd, Etcd};
use keymaster_testutil::history::History;
use keymaster_testutil::member::{cluster_key, large_zone, Member, FAST_POLICY, FAST_ZONE};
use keymaster_testutil::tools::Tools;
use keymaster_testutil::{lines_with, output_text, wait_until};

/// How long a member may take to notice a change made on another one.
const CHANGE_TIMEOUT: Duration = Duration::from_secs(10);

/// Maximum wait for a rollover to go from one state to the next.
const ROLLOVER_TIMEOUT: Duration = Duration::from_secs(90);

fn program() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_keymaster"))
}

/// The parent's DS RRset of a zone as a delv trust-anchor file, replaced
/// atomically when the test "changes the DS at the parent".
struct Anchor {
    path: PathBuf,
}

impl Anchor {
    /// Writes the DS records `keymaster ds` prints on `member` for the KSK
    /// with tag `tag`.
    fn set(&self, member: &Member, zone: &str, tag: u64) {
        let output = member.cli(&["ds", zone]);
        let text = output_text(&output);
        assert!(output.status.success(), "keymaster ds {zone}: {text}");
        let anchors: String = static_ds_entries(&text)
            .into_iter()
            .filter(|(key_tag, _)| *key_tag == tag.to_string())
            .map(|(_, entry)| entry + "\n")
            .collect();
        assert!(!anchors.is_empty(), "no DS record for tag {tag}: {text}");
        let staged = self.path.with_extension("new");
        std::fs::write(&staged, format!("trust-anchors {{\n{anchors}}};\n")).unwrap();
        std::fs::rename(&staged, &self.path).unwrap();
    }
}

/// A member the background validator asks, and whether it is frozen.
struct Target {
    name: String,
    port: u16,
    frozen: AtomicBool,
}

/// Asks every member for a signed name with delv in a background thread,
/// until stopped or for at most five minutes and 3000 questions. A member
/// is skipped while frozen, and an answer that overlapped a freeze or a
/// thaw is not counted.
struct Validator {
    targets: Arc<Vec<Target>>,
    /// Goes up with every freeze and thaw.
    changes: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<Report>>,
}

#[derive(Debug, Default)]
struct Report {
    /// Validated answers by member.
    validated: std::collections::BTreeMap<String, usize>,
    /// Every answer that did not validate, with the member and the time.
    failures: Vec<String>,
}

impl Validator {
    fn start(delv: &Path, members: &[&Member], anchor: &Path, zone: &str) -> Self {
        let targets: Arc<Vec<Target>> = Arc::new(
            members
                .iter()
                .map(|member| Target {
                    name: member.name.clone(),
                    port: member.dns_port,
                    frozen: AtomicBool::new(false),
                })
                .collect(),
        );
        let changes = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (delv, anchor) = (delv.to_path_buf(), anchor.to_path_buf());
        let (zone, name) = (zone.to_string(), format!("www.{zone}"));
        let thread = {
            let (targets, changes, stop) = (targets.clone(), changes.clone(), stop.clone());
            std::thread::spawn(move || {
                let started = Instant::now();
                let mut report = Report::default();
                let mut asked = 0;
                while !stop.load(Ordering::SeqCst)
                    && asked < 3000
                    && started.elapsed() < Duration::from_secs(300)
                {
                    for target in targets.iter() {
                        let before = changes.load(Ordering::SeqCst);
                        if target.frozen.load(Ordering::SeqCst) {
                            continue;
                        }
                        asked += 1;
                        match delv_validates(&delv, target.port, &anchor, &zone, &name, "A") {
                            Ok(()) => {
                                *report.validated.entry(target.name.clone()).or_default() += 1;
                            }
                            Err(text) if changes.load(Ordering::SeqCst) == before => {
                                report.failures.push(format!(
                                    "{} at {:.1} s: {text}",
                                    target.name,
                                    started.elapsed().as_secs_f64()
                                ));
                            }
                            Err(_) => {}
                        }
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
                report
            })
        };
        Self {
            targets,
            changes,
            stop,
            thread: Some(thread),
        }
    }

    /// Stops asking `name` before it is frozen.
    fn freeze(&self, name: &str) {
        self.set_frozen(name, true);
    }

    /// Asks `name` again once it runs.
    fn thaw(&self, name: &str) {
        self.set_frozen(name, false);
    }

    fn set_frozen(&self, name: &str, frozen: bool) {
        let target = self.targets.iter().find(|target| target.name == name);
        target.unwrap().frozen.store(frozen, Ordering::SeqCst);
        self.changes.fetch_add(1, Ordering::SeqCst);
    }

    /// Stops the thread and returns what it saw.
    fn finish(mut self) -> Report {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.take().unwrap().join().unwrap()
    }
}

impl Drop for Validator {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Asserts that the validator saw no failure and validated answers from
/// every member.
fn assert_always_valid(report: &Report, members: &[&Member]) {
    assert!(
        report.failures.is_empty(),
        "answers that did not validate:\n{}",
        report.failures.join("\n")
    );
    for member in members {
        let count = report.validated.get(&member.name).copied().unwrap_or(0);
        assert!(
            count >= 3,
            "only {count} validated answers from {}: {report:?}",
            member.name
        );
    }
}

/// Starts members A, B and C with the cluster key and the fast policy.
fn start_members(dir: &Path, etcd: &Etcd) -> (Member, Member, Member) {
    let key = cluster_key(program(), dir);
    let start = |name: &str| {
        Member::join(
            program(),
            dir,
            name,
            &etcd.endpoint(),
            Some(&key),
            FAST_POLICY,
        )
    };
    (start("ns-a"), start("ns-b"), start("ns-c"))
}

/// Adds and signs the cluster zone on `on`, with `key_master` as its Key
/// Master, waits until its first keys are established, and confirms the
/// first DS by hand on the Key Master. Returns the first KSK's tag.
fn sign_zone(on: &Member, key_master: &Member, zone: &str, dir: &Path) -> u64 {
    let file = dir.join("zone.db");
    std::fs::write(&file, FAST_ZONE).unwrap();
    ok(
        on,
        &[
            "zone",
            "add",
            zone,
            "--cluster",
            "--from-file",
            file.to_str().unwrap(),
        ],
    );
    ok(
        on,
        &[
            "zone",
            "sign",
            zone,
            "--policy",
            "fast",
            "--key-master",
            &key_master.name,
        ],
    );
    let ready = wait_until(ROLLOVER_TIMEOUT, || {
        keys_established(&keys_json(key_master, zone))
    });
    assert!(
        ready,
        "the first keys never became omnipresent: {:?}\n{}",
        keys_json(key_master, zone),
        key_master.log()
    );
    // The parent publishes the first DS.
    let (_, ksk_tag) = key_of_role(&keys_json(key_master, zone), "ksk");
    ok(key_master, &["key", "step", zone, &ksk_tag.to_string()]);
    let confirmed = wait_until(ROLLOVER_TIMEOUT, || {
        keys_json(key_master, zone)
            .iter()
            .any(|key| key["role"] == "ksk" && key["ds_state"] == "omnipresent")
    });
    assert!(confirmed, "the first DS never became omnipresent");
    ksk_tag
}

/// Whether `key` is written by key management: role, keys, key states
/// and signing records.
fn key_management(key: &str) -> bool {
    ["roles/", "keys/", "engine/", "signing/"]
        .iter()
        .any(|dir| key.starts_with(&format!("/keymaster/{dir}")))
}

/// Waits until a rollover finished on `member`: `old` is gone and one key
/// of each role is established. Meanwhile compares the members' AXFRs and
/// returns the serials found identical.
fn wait_rollover_done(
    tools: &Tools,
    member: &Member,
    all: &[&Member],
    zone: &str,
    old: &str,
    dir: &Path,
) -> Vec<u32> {
    let mut serials = Vec::new();
    let finished = wait_until(ROLLOVER_TIMEOUT, || {
        if let Some(serial) = tools.identical(all, zone, dir) {
            if serials.last() != Some(&serial) {
                serials.push(serial);
            }
        }
        let keys = keys_json(member, zone);
        keys.iter().all(|key| key["id"] != old) && keys_established(&keys)
    });
    assert!(
        finished,
        "the rollover did not finish on {}: {:?}\n{}",
        member.name,
        keys_json(member, zone),
        member.log()
    );
    serials
}

#[test]
fn transfer_during_zsk_rollover() {
    let test = "transfer_during_zsk_rollover";
    let zone = "handover.test.";
    let dir = tempfile::tempdir().unwrap();
    let Some(tools) = Tools::find(test) else {
        return;
    };
    let Some(etcd) = start_etcd(test, dir.path()) else {
        return;
    };
    let (a, b, c) = start_members(dir.path(), &etcd);
    let all = [&a, &b, &c];
    let ksk_tag = sign_zone(&a, &a, zone, dir.path());
    let first = tools.wait_one_version(&all, zone, dir.path());
    let anchor = Anchor {
        path: dir.path().join("anchor.conf"),
    };
    anchor.set(&a, zone, ksk_tag);
    let validator = Validator::start(&tools.delv, &all, &anchor.path, zone);

    // The ZSK rollover starts on A; while the new ZSK is rumoured, the
    // transfer is sent to C, which forwards it to A.
    let (old_zsk, old_tag) = key_of_role(&keys_json(&a, zone), "zsk");
    ok(&a, &["key", "rollover", zone, &old_tag.to_string()]);
    let rumoured = wait_until(CHANGE_TIMEOUT, || {
        keys_json(&a, zone).iter().any(|key| {
            key["role"] == "zsk"
                && key["id"] != old_zsk.as_str()
                && key["dnskey_state"] == "rumoured"
        })
    });
    assert!(
        rumoured,
        "no new ZSK was published: {:?}",
        keys_json(&a, zone)
    );
    let moved = json(&ok(&c, &["role", "transfer", zone, "ns-b", "--json"]));
    assert_eq!(moved["key_master"], "ns-b", "{moved}");
    assert_eq!(moved["epoch"], 2, "{moved}");
    let history = History::connect(&etcd.endpoint());
    let transfer = history.mod_revision(&format!("/keymaster/roles/{zone}"));
    assert!(
        keys_json(&b, zone)
            .iter()
            .any(|key| key["id"] == old_zsk.as_str()),
        "the rollover finished before the transfer"
    );
    for member in all {
        let agreed = wait_until(CHANGE_TIMEOUT, || {
            let role = json(&ok(member, &["role", "show", zone, "--json"]));
            role["key_master"] == "ns-b" && role["epoch"] == 2
        });
        assert!(agreed, "{} does not see ns-b at epoch 2", member.name);
    }

    // B finishes the rollover; every version on the way is alike on all.
    let serials = wait_rollover_done(&tools, &b, &all, zone, &old_zsk, dir.path());
    let (new_zsk, _) = key_of_role(&keys_json(&b, zone), "zsk");
    assert_ne!(new_zsk, old_zsk);
    let last = tools.wait_one_version(&all, zone, dir.path());
    assert!(
        serials.len() >= 2 && last != first,
        "too few versions compared during the rollover: {serials:?}, last {last}"
    );

    // A handed over once, lost nothing by surprise, and managed no key
    // after the transfer; B removed the old ZSK.
    let log_a = a.log();
    assert_eq!(
        lines_with(&log_a, "transferred from ns-a to ns-b at epoch 2").len(),
        1,
        "{log_a}"
    );
    assert!(
        lines_with(&log_a, "lost the Key Master role").is_empty(),
        "{log_a}"
    );
    let after: Vec<&str> = log_a
        .lines()
        .skip_while(|line| !line.contains("transferred from ns-a to ns-b"))
        .collect();
    for action in ["generated", "has left the zone", "REVOKE", "fenced"] {
        assert!(
            lines_with(&after.join("\n"), action).is_empty(),
            "A logged {action:?} after the transfer: {log_a}"
        );
    }
    let log_b = b.log();
    assert!(
        log_b.contains("ns-b is now its Key Master at epoch 2"),
        "{log_b}"
    );
    assert!(
        lines_with(&log_b, "has left the zone and is deleted")
            .iter()
            .any(|line| line.contains(&old_zsk)),
        "B did not remove the old ZSK: {log_b}"
    );
    let written = history.keys_written_after(transfer);
    let managed: BTreeSet<&String> = written.iter().filter(|key| key_management(key)).collect();
    assert!(
        !managed
            .iter()
            .any(|key| key.starts_with("/keymaster/roles/")),
        "the role moved again after revision {transfer}: {written:?}"
    );
    assert!(
        managed.contains(&format!("/keymaster/keys/{zone}/{old_zsk}"))
            && managed.contains(&format!("/keymaster/engine/{zone}")),
        "no key management after revision {transfer}: {written:?}"
    );

    let report = validator.finish();
    assert_always_valid(&report, &all);
}

#[test]
fn seize_during_ksk_rollover() {
    let test = "seize_during_ksk_rollover";
    let zone = "seized.test.";
    let dir = tempfile::tempdir().unwrap();
    let Some(tools) = Tools::find(test) else {
        return;
    };
    let Some(etcd) = start_etcd(test, dir.path()) else {
        return;
    };
    let (a, b, c) = start_members(dir.path(), &etcd);
    let all = [&a, &b, &c];
    let old_tag = sign_zone(&a, &b, zone, dir.path());
    tools.wait_one_version(&all, zone, dir.path());
    let anchor = Anchor {
        path: dir.path().join("anchor.conf"),
    };
    anchor.set(&b, zone, old_tag);
    let validator = Validator::start(&tools.delv, &all, &anchor.path, zone);

    // A double-KSK rollover on B; B is frozen once the new KSK is
    // published, and C seizes the role when B's lease has run out.
    let (old_ksk, _) = key_of_role(&keys_json(&b, zone), "ksk");
    ok(&b, &["key", "rollover", zone, &old_ksk]);
    let new_ksk = |member: &Member| {
        keys_json(member, zone)
            .into_iter()
            .find(|key| key["role"] == "ksk" && key["id"] != old_ksk.as_str())
    };
    let published = wait_until(CHANGE_TIMEOUT, || {
        new_ksk(&b).is_some_and(|key| key["dnskey_state"] == "rumoured")
    });
    assert!(
        published,
        "no new KSK was published: {:?}",
        keys_json(&b, zone)
    );
    validator.freeze("ns-b");
    b.pause();
    let offline = wait_until(Duration::from_secs(20), || {
        let servers = json(&ok(&c, &["server", "list", "--json"]));
        servers
            .as_array()
            .into_iter()
            .flatten()
            .any(|server| server["name"] == "ns-b" && server["online"] == false)
    });
    assert!(offline, "C never saw B offline");
    let seized = json(&ok(&c, &["role", "seize", zone, "ns-c", "--json"]));
    assert_eq!(seized["key_master"], "ns-c", "{seized}");
    assert_eq!(seized["epoch"], 2, "{seized}");
    let history = History::connect(&etcd.endpoint());
    let seizure = history.mod_revision(&format!("/keymaster/roles/{zone}"));

    // B runs again while C is frozen for a moment: every key-management
    // write in that window would be B's.
    validator.freeze("ns-c");
    c.pause();
    let thawed = history.current_revision();
    b.resume();
    validator.thaw("ns-b");
    let lost_line = format!("lost the Key Master role of {zone} to ns-c at epoch 2");
    let lost = wait_until(Duration::from_millis(1500), || b.log().contains(&lost_line));
    let window_end = history.current_revision();
    c.resume();
    validator.thaw("ns-c");
    assert!(
        lost || wait_until(CHANGE_TIMEOUT, || b.log().contains(&lost_line)),
        "{}",
        b.log()
    );
    let in_window = history.keys_written_between(thawed, window_end);
    assert!(
        !in_window.iter().any(|key| key_management(key)),
        "key management while only B ran: {in_window:?}"
    );

    // C asks for the new DS; the parent publishes it, and C is told so.
    let requested = wait_until(ROLLOVER_TIMEOUT, || {
        new_ksk(&c).is_some_and(|key| key["ds_state"] == "rumoured")
    });
    assert!(
        requested,
        "C never asked for the new DS: {:?}\n{}",
        keys_json(&c, zone),
        c.log()
    );
    let new_tag = new_ksk(&c).unwrap()["key_tag"].as_u64().unwrap();
    tools.wait_one_version(&all, zone, dir.path());
    anchor.set(&c, zone, new_tag);
    ok(&c, &["key", "step", zone, &old_ksk]);
    let serials = wait_rollover_done(&tools, &c, &all, zone, &old_ksk, dir.path());
    assert!(
        !serials.is_empty(),
        "no version compared after the DS change"
    );
    tools.wait_one_version(&all, zone, dir.path());

    // B lost the role once and wrote nothing after the seizure.
    std::thread::sleep(Duration::from_secs(1));
    let log_b = b.log();
    assert_eq!(
        lines_with(&log_b, "lost the Key Master role").len(),
        1,
        "{log_b}"
    );
    let after: Vec<&str> = log_b
        .lines()
        .skip_while(|line| !line.contains("lost the Key Master role"))
        .collect();
    for action in ["generated", "has left the zone", "REVOKE"] {
        assert!(
            lines_with(&after.join("\n"), action).is_empty(),
            "B logged {action:?} after it lost the role: {log_b}"
        );
    }
    let written = history.keys_written_after(seizure);
    assert!(
        !written
            .iter()
            .any(|key| key.starts_with("/keymaster/roles/")),
        "the role moved again after revision {seizure}: {written:?}"
    );
    assert!(
        written.contains(&format!("/keymaster/keys/{zone}/{old_ksk}")),
        "C did not remove the old KSK after revision {seizure}: {written:?}"
    );
    assert!(
        lines_with(&c.log(), "has left the zone and is deleted")
            .iter()
            .any(|line| line.contains(&old_ksk)),
        "{}",
        c.log()
    );

    let report = validator.finish();
    assert_always_valid(&report, &all);
}

#[test]
fn frozen_key_master_write_is_fenced() {
    let test = "frozen_key_master_write_is_fenced";
    let zone = "fenced.test.";
    let dir = tempfile::tempdir().unwrap();
    let Some(etcd) = start_etcd(test, dir.path()) else {
        return;
    };
    let key = cluster_key(program(), dir.path());
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
    // C's lease outlives a freeze by 30 seconds, so that C still counts
    // as online while it is frozen.
    let c = Member::start_with(
        program(),
        dir.path(),
        "ns-c",
        &etcd.endpoint(),
        Some(&key),
        "30s",
        FAST_POLICY,
    );
    c.wait_joined(Duration::from_secs(20));

    // A zone large enough that signing a new version takes a while, so
    // that A can be frozen between a rollover step and its last write.
    let file = dir.path().join("fenced.db");
    std::fs::write(&file, large_zone(12_000)).unwrap();
    let path = file.to_str().unwrap();
    ok(&a, &["zone", "add", zone, "--cluster", "--from-file", path]);
    ok(&a, &["zone", "sign", zone, "--policy", "fast"]);
    let ready = wait_until(ROLLOVER_TIMEOUT, || keys_established(&keys_json(&a, zone)));
    assert!(
        ready,
        "the first keys never became omnipresent\n{}",
        a.log()
    );

    // A ZSK rollover: A generates the new key, commits the step, reads the
    // role again, signs the new version and then records it as published.
    // A is frozen while it signs. B then forces the role onto C, which is
    // frozen too, so that no new Key Master writes a newer version before
    // A writes again.
    let (old_zsk, _) = key_of_role(&keys_json(&a, zone), "zsk");
    let before = a.log().len();
    ok(&a, &["key", "rollover", zone, &old_zsk]);
    let generated = wait_until(CHANGE_TIMEOUT, || {
        a.log()
            .get(before..)
            .is_some_and(|new| new.contains("generated Zsk"))
    });
    std::thread::sleep(Duration::from_millis(300));
    a.pause();
    assert!(generated, "A generated no new ZSK\n{}", a.log());
    let published_line = format!("zone {zone} published with serial");
    let published_before = lines_with(&a.log()[before..], &published_line).len();
    c.pause();
    let seized = json(&ok(
        &b,
        &["role", "seize", zone, "ns-c", "--force", "--json"],
    ));
    assert_eq!(seized["key_master"], "ns-c", "{seized}");
    assert_eq!(seized["epoch"], 2, "{seized}");
    let history = History::connect(&etcd.endpoint());
    let seizure = history.mod_revision(&format!("/keymaster/roles/{zone}"));
    a.resume();

    // A's next key-management write finds the role moved: it stores
    // nothing, reports the loss once, and stops key management. When the
    // watch shows A the new role before that write, A never tries it.
    // Either way, nothing is written while C is still frozen.
    let stopped = wait_until(ROLLOVER_TIMEOUT, || {
        a.log().contains("performs no more key management")
    });
    let window_end = history.current_revision();
    c.resume();
    assert_eq!(
        published_before, 0,
        "A published the rollover's version before it was frozen, so its last write was not fenced"
    );
    assert!(
        stopped,
        "A never noticed that it lost the role\n{}",
        a.log()
    );
    let in_window = history.keys_written_between(seizure, window_end);
    assert!(
        !in_window.iter().any(|key| key_management(key)),
        "key management while only A ran: {in_window:?}\n{}",
        a.log()
    );
    std::thread::sleep(Duration::from_secs(1));
    let log = a.log();
    assert_eq!(
        lines_with(&log, "lost the Key Master role").len(),
        1,
        "{log}"
    );
    let role = json(&ok(&a, &["role", "show", zone, "--json"]));
    assert_eq!(role["key_master"], "ns-c", "{role}");
    assert_eq!(role["is_key_master"], false, "{role}");
}
