//! The etcd cluster store against a private etcd on loopback.
//!
//! Each test starts its own etcd with `keymaster_testutil::etcd` and skips
//! when etcd is not installed. What the store wrote is checked by reading
//! every key under the prefix with the etcd client directly, and the
//! behaviour that both backends share is checked on the SQLite store too.

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use keymaster_api::{KeyRole, RecordState, Storage};
use keymaster_store::etcd::{Change, EtcdOptions, EtcdTls, Member, ZonePart};
use keymaster_store::{
    EtcdStore, Fence, Operation, PrivateKey, RoleRecord, SigningRecord, SqliteStore, Store,
    StoreError, StoredKey, Transaction, ZoneRecord,
};
use keymaster_testutil::etcd::Etcd;
use keymaster_testutil::history::History;
use keymaster_testutil::{wait_until, ChildGuard};
use tempfile::TempDir;

const PREFIX: &str = "/keymaster-test/";
const TIMEOUT: Duration = Duration::from_secs(2);

/// Environment variable that makes `member_child_process` register and wait.
const CHILD_ENDPOINT: &str = "KEYMASTER_TEST_ETCD_MEMBER_ENDPOINT";

fn start(test: &str) -> Option<(TempDir, Etcd)> {
    let dir = tempfile::tempdir().unwrap();
    let etcd = Etcd::start(test, dir.path())?;
    Some((dir, etcd))
}

fn connect_to(endpoint: &str) -> EtcdStore {
    let mut options = EtcdOptions::new(vec![endpoint.to_string()]);
    options.prefix = PREFIX.to_string();
    options.timeout = TIMEOUT;
    EtcdStore::connect(&options).unwrap_or_else(|e| panic!("connect to {endpoint}: {e}"))
}

fn connect(etcd: &Etcd) -> EtcdStore {
    connect_to(&etcd.endpoint())
}

fn sqlite(dir: &TempDir) -> SqliteStore {
    SqliteStore::open(&dir.path().join("state.db")).unwrap()
}

fn zone(name: &str, serial: u32) -> ZoneRecord {
    ZoneRecord {
        name: name.to_string(),
        storage: Storage::File,
        file: Some(format!("/zones/{name}zone")),
        signed: true,
        policy: "default".to_string(),
        last_serial: Some(serial),
        last_signed: Some(1_700_000_000),
        parent_has_ds: Some(true),
        from_config: false,
        policy_definition: None,
    }
}

fn key(zone: &str, id: &str, sealed: &[u8]) -> StoredKey {
    StoredKey {
        zone: zone.to_string(),
        id: id.to_string(),
        key_tag: 4242,
        role: KeyRole::Ksk,
        algorithm: 13,
        bits: 256,
        dnskey: vec![1, 1, 3, 13, 0xab, 0xcd],
        private: PrivateKey::EncryptedFile {
            sealed: sealed.to_vec(),
        },
        created: 1_700_000_000,
        published: Some(1_700_000_100),
        active: None,
        retired: None,
        removed: None,
        dnskey_state: RecordState::Omnipresent,
        krrsig_state: RecordState::Rumoured,
        zrrsig_state: RecordState::Hidden,
        ds_state: RecordState::Unretentive,
    }
}

fn role(zone: &str, server: &str, epoch: u64) -> RoleRecord {
    RoleRecord {
        zone: zone.to_string(),
        key_master: server.to_string(),
        epoch,
        changed: 1_700_000_000 + epoch,
    }
}

fn put_role(zone: &str, server: &str, epoch: u64, expected: Option<u64>) -> Transaction {
    Transaction::new().push(Operation::PutRole {
        role: role(zone, server, epoch),
        expected_epoch: expected,
    })
}

fn fence(zone: &str, server: &str, epoch: u64) -> Fence {
    Fence {
        zone: zone.to_string(),
        key_master: server.to_string(),
        epoch,
    }
}

fn member(name: &str) -> Member {
    Member {
        name: name.to_string(),
        dns_addresses: vec!["127.0.0.1:5353".to_string(), "[::1]:5353".to_string()],
        control: "http://127.0.0.1:8053".to_string(),
        version: "0.1.0".to_string(),
        can_sign: true,
    }
}

/// Reads every key, value and mod revision under the test prefix with the
/// etcd client directly.
fn scan(endpoint: &str) -> Vec<(String, Vec<u8>, i64)> {
    History::connect(endpoint).contents(PREFIX)
}

fn keys_of(scan: &[(String, Vec<u8>, i64)]) -> Vec<&str> {
    scan.iter().map(|(key, _, _)| key.as_str()).collect()
}

fn key_ids(store: &dyn Store, zone: &str) -> Vec<String> {
    store
        .keys(zone)
        .unwrap()
        .into_iter()
        .map(|key| key.id)
        .collect()
}

/// Writes and reads back every record kind; the same on both backends.
fn check_round_trip(store: &dyn Store) {
    let first = Transaction::new()
        .push(Operation::PutZone(zone("b.example.", 7)))
        .push(Operation::PutZone(zone("a.example.", 1)))
        .push(Operation::PutKey(key("a.example.", "k2", &[2; 40])))
        .push(Operation::PutRole {
            role: role("a.example.", "ns1", 1),
            expected_epoch: None,
        })
        .push(Operation::PutEngineState {
            zone: "a.example.".to_string(),
            state: r#"{"step":3}"#.to_string(),
        });
    store.commit(first).unwrap();
    // A later key lists after an earlier one whatever its id.
    store
        .commit(Transaction::new().push(Operation::PutKey(key("a.example.", "k1", &[1; 40]))))
        .unwrap();

    let names: Vec<String> = store.zones().unwrap().into_iter().map(|z| z.name).collect();
    assert_eq!(names, ["a.example.", "b.example."]);
    assert_eq!(
        store.zone("b.example.").unwrap(),
        Some(zone("b.example.", 7))
    );
    assert_eq!(store.zone("c.example.").unwrap(), None);
    assert_eq!(
        store.keys("a.example.").unwrap(),
        vec![
            key("a.example.", "k2", &[2; 40]),
            key("a.example.", "k1", &[1; 40])
        ]
    );
    assert!(store.keys("b.example.").unwrap().is_empty());
    assert_eq!(
        store.role("a.example.").unwrap(),
        Some(role("a.example.", "ns1", 1))
    );
    assert_eq!(store.role("b.example.").unwrap(), None);
    assert_eq!(
        store.engine_state("a.example.").unwrap().as_deref(),
        Some(r#"{"step":3}"#)
    );
    assert_eq!(store.engine_state("b.example.").unwrap(), None);

    // Settings.
    assert_eq!(store.meta("serial-base").unwrap(), None);
    store.set_meta("serial-base", "10").unwrap();
    store.set_meta("serial-base", "11").unwrap();
    assert_eq!(store.meta("serial-base").unwrap().as_deref(), Some("11"));

    // Updating a key keeps its place; deleting one removes only it.
    let mut updated = key("a.example.", "k2", &[2; 40]);
    updated.retired = Some(1_800_000_000);
    store
        .commit(Transaction::new().push(Operation::PutKey(updated.clone())))
        .unwrap();
    assert_eq!(store.keys("a.example.").unwrap()[0], updated);
    store
        .commit(Transaction::new().push(Operation::DeleteKey {
            zone: "a.example.".to_string(),
            id: "k1".to_string(),
        }))
        .unwrap();
    assert_eq!(key_ids(store, "a.example."), ["k2"]);

    // Deleting a zone takes its keys and engine state and leaves its role.
    store
        .commit(Transaction::new().push(Operation::DeleteZone("a.example.".to_string())))
        .unwrap();
    assert_eq!(store.zone("a.example.").unwrap(), None);
    assert!(store.keys("a.example.").unwrap().is_empty());
    assert_eq!(store.engine_state("a.example.").unwrap(), None);
    assert_eq!(
        store.role("a.example.").unwrap(),
        Some(role("a.example.", "ns1", 1))
    );
    assert_eq!(
        store.zone("b.example.").unwrap(),
        Some(zone("b.example.", 7))
    );
}

/// Checks that after `b` moves the role from `a`, `a`'s fenced write is
/// rejected.
fn check_fence(a: &dyn Store, b: &dyn Store) {
    a.commit(put_role("example.", "ns1", 1, None)).unwrap();
    let write = Transaction::fenced(fence("example.", "ns1", 1))
        .push(Operation::PutKey(key("example.", "k1", &[1; 40])));
    a.commit(write).unwrap();
    assert_eq!(key_ids(b, "example."), ["k1"]);

    b.commit(put_role("example.", "ns2", 2, Some(1))).unwrap();
    let stale = Transaction::fenced(fence("example.", "ns1", 1))
        .push(Operation::PutZone(zone("example.", 9)))
        .push(Operation::PutKey(key("example.", "k2", &[2; 40])))
        .push(Operation::DeleteKey {
            zone: "example.".to_string(),
            id: "k1".to_string(),
        })
        .push(Operation::PutEngineState {
            zone: "example.".to_string(),
            state: "{}".to_string(),
        });
    match a.commit(stale) {
        Err(StoreError::Fenced {
            zone,
            expected_server,
            expected_epoch,
            found,
        }) => {
            assert_eq!(
                (zone.as_str(), expected_server.as_str(), expected_epoch),
                ("example.", "ns1", 1)
            );
            assert_eq!(found, "ns2 at epoch 2");
        }
        other => panic!("expected Fenced, got {other:?}"),
    }
    assert_eq!(key_ids(a, "example."), ["k1"]);
    assert_eq!(a.zone("example.").unwrap(), None);
    assert_eq!(a.engine_state("example.").unwrap(), None);

    // A fence on a zone without a role record is refused too.
    let orphan =
        Transaction::fenced(fence("other.", "ns1", 1)).push(Operation::PutZone(zone("other.", 1)));
    assert!(matches!(
        a.commit(orphan),
        Err(StoreError::Fenced { found, .. }) if found == "no role record"
    ));
    // The new holder writes under its own fence.
    let fresh = Transaction::fenced(fence("example.", "ns2", 2))
        .push(Operation::PutKey(key("example.", "k3", &[3; 40])));
    b.commit(fresh).unwrap();
    assert_eq!(key_ids(a, "example."), ["k1", "k3"]);
}

/// Expected epochs: a stale or missing one is refused, and a failed
/// operation takes the whole transaction with it.
fn check_epochs(store: &dyn Store) {
    store.commit(put_role("example.", "ns1", 1, None)).unwrap();
    let again = store.commit(put_role("example.", "ns2", 1, None));
    assert!(
        matches!(
            again,
            Err(StoreError::EpochMismatch {
                expected: None,
                found: Some(1),
                ..
            })
        ),
        "{again:?}"
    );
    let mixed = Transaction::new()
        .push(Operation::PutZone(zone("example.", 3)))
        .push(Operation::PutKey(key("example.", "k1", &[1; 40])))
        .push(Operation::PutRole {
            role: role("example.", "ns2", 6),
            expected_epoch: Some(5),
        });
    let error = store.commit(mixed);
    assert!(
        matches!(
            error,
            Err(StoreError::EpochMismatch {
                expected: Some(5),
                found: Some(1),
                ..
            })
        ),
        "{error:?}"
    );
    assert_eq!(store.zone("example.").unwrap(), None);
    assert!(store.keys("example.").unwrap().is_empty());

    // Two role changes in one transaction: the second reads the first.
    let twice = Transaction::new()
        .push(Operation::PutRole {
            role: role("example.", "ns2", 2),
            expected_epoch: Some(1),
        })
        .push(Operation::PutRole {
            role: role("example.", "ns3", 3),
            expected_epoch: Some(2),
        });
    store.commit(twice).unwrap();
    assert_eq!(
        store.role("example.").unwrap(),
        Some(role("example.", "ns3", 3))
    );

    // Deleting a zone and adding a key to it in one transaction.
    store
        .commit(Transaction::new().push(Operation::PutKey(key("example.", "old", &[4; 40]))))
        .unwrap();
    let replace = Transaction::new()
        .push(Operation::DeleteZone("example.".to_string()))
        .push(Operation::PutZone(zone("example.", 4)))
        .push(Operation::PutKey(key("example.", "new", &[5; 40])));
    store.commit(replace).unwrap();
    assert_eq!(key_ids(store, "example."), ["new"]);
    assert_eq!(store.zone("example.").unwrap(), Some(zone("example.", 4)));
}

/// Checks that a replacement of a zone record lands only while the record
/// is still the one the writer read, and changes nothing otherwise.
fn check_replace_zone(store: &dyn Store) {
    let read = zone("c.example.", 3);
    store
        .commit(Transaction::new().push(Operation::PutZone(read.clone())))
        .unwrap();

    // Another writer changes the zone's policy after `read` was taken.
    let mut signed = read.clone();
    signed.policy = "other".to_string();
    store
        .commit(Transaction::new().push(Operation::PutZone(signed.clone())))
        .unwrap();

    let mut published = read.clone();
    published.last_serial = Some(4);
    let stale = Operation::ReplaceZone {
        record: published.clone(),
        expected: read,
    };
    let error = store.commit(Transaction::new().push(stale)).unwrap_err();
    assert!(
        matches!(&error, StoreError::ZoneMoved { zone } if zone == "c.example."),
        "{error}"
    );
    assert_eq!(store.zone("c.example.").unwrap(), Some(signed.clone()));

    let mut fresh = signed.clone();
    fresh.last_serial = Some(4);
    let current = Operation::ReplaceZone {
        record: fresh.clone(),
        expected: signed,
    };
    store.commit(Transaction::new().push(current)).unwrap();
    assert_eq!(store.zone("c.example.").unwrap(), Some(fresh));
}

#[test]
fn sqlite_store_meets_the_shared_contract() {
    for check in [check_round_trip, check_epochs, check_replace_zone] {
        let dir = tempfile::tempdir().unwrap();
        check(&sqlite(&dir));
    }
    let dir = tempfile::tempdir().unwrap();
    check_fence(&sqlite(&dir), &sqlite(&dir));
}

#[test]
fn every_record_kind_round_trips() {
    let Some((_dir, etcd)) = start("every_record_kind_round_trips") else {
        return;
    };
    let store = connect(&etcd);
    check_round_trip(&store);
    check_replace_zone(&store);

    // The layout under the prefix, as another client sees it.
    let scanned = scan(&etcd.endpoint());
    assert_eq!(
        keys_of(&scanned),
        [
            "/keymaster-test/meta/serial-base",
            "/keymaster-test/roles/a.example.",
            "/keymaster-test/zones/b.example.",
            "/keymaster-test/zones/c.example.",
        ]
    );
    let zone_json: serde_json::Value = serde_json::from_slice(&scanned[2].1).unwrap();
    assert_eq!(zone_json["name"], "b.example.");
    assert_eq!(zone_json["last_serial"], 7);
}

#[test]
fn fenced_commit_fails_after_role_moves() {
    let Some((_dir, etcd)) = start("fenced_commit_fails_after_role_moves") else {
        return;
    };
    let a = connect(&etcd);
    let b = connect(&etcd);

    // Run the contract up to the stale write, and check that the refused
    // transaction changed no key, value or revision.
    a.commit(put_role("example.", "ns1", 1, None)).unwrap();
    b.commit(put_role("example.", "ns2", 2, Some(1))).unwrap();
    let before = scan(&etcd.endpoint());
    let stale = Transaction::fenced(fence("example.", "ns1", 1))
        .push(Operation::PutZone(zone("example.", 9)))
        .push(Operation::PutKey(key("example.", "k2", &[2; 40])))
        .push(Operation::PutEngineState {
            zone: "example.".to_string(),
            state: "{}".to_string(),
        });
    assert!(matches!(a.commit(stale), Err(StoreError::Fenced { .. })));
    assert_eq!(scan(&etcd.endpoint()), before);

    // The whole contract on a fresh prefix state.
    let other = start("fenced_commit_fails_after_role_moves").unwrap();
    check_fence(&connect(&other.1), &connect(&other.1));
}

#[test]
fn put_role_races_have_one_winner() {
    let Some((_dir, etcd)) = start("put_role_races_have_one_winner") else {
        return;
    };
    let stores = [Arc::new(connect(&etcd)), Arc::new(connect(&etcd))];
    stores[0]
        .commit(put_role("example.", "ns0", 1, None))
        .unwrap();

    for epoch in 1..=5u64 {
        let contenders = 4;
        let barrier = Arc::new(Barrier::new(contenders));
        let results: Vec<Result<(), StoreError>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..contenders)
                .map(|i| {
                    let store = stores[i % 2].clone();
                    let barrier = barrier.clone();
                    scope.spawn(move || {
                        barrier.wait();
                        let server = format!("ns{i}");
                        store.commit(put_role("example.", &server, epoch + 1, Some(epoch)))
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let winners = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(winners, 1, "round {epoch}: {results:?}");
        for result in results.iter().filter(|r| r.is_err()) {
            assert!(
                matches!(
                    result,
                    Err(StoreError::EpochMismatch { expected: Some(e), found: Some(f), .. })
                        if *e == epoch && *f == epoch + 1
                ),
                "round {epoch}: {result:?}"
            );
        }
        assert_eq!(
            stores[1].role("example.").unwrap().unwrap().epoch,
            epoch + 1
        );
    }
}

fn put_signing(zone: &str, serial: u32, expected: Option<u32>) -> Transaction {
    Transaction::new().push(Operation::PutSigning {
        record: SigningRecord {
            zone: zone.to_string(),
            serial,
            time: 1_700_000_000 + u64::from(serial),
            nsec3_salt: "abcd".to_string(),
            reason: "test".to_string(),
        },
        expected_serial: expected,
    })
}

#[test]
fn signing_record_races_have_one_winner() {
    let Some((_dir, etcd)) = start("signing_record_races_have_one_winner") else {
        return;
    };
    let stores = [Arc::new(connect(&etcd)), Arc::new(connect(&etcd))];
    assert_eq!(stores[0].signing_record("example.").unwrap(), None);
    stores[0].commit(put_signing("example.", 10, None)).unwrap();
    // A second first record loses to the one stored.
    let again = stores[1].commit(put_signing("example.", 10, None));
    assert!(
        matches!(
            again,
            Err(StoreError::SigningMoved {
                found: Some(10),
                ..
            })
        ),
        "{again:?}"
    );

    for serial in 10..13u32 {
        let contenders = 4;
        let barrier = Arc::new(Barrier::new(contenders));
        let results: Vec<Result<(), StoreError>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..contenders)
                .map(|i| {
                    let store = stores[i % 2].clone();
                    let barrier = barrier.clone();
                    scope.spawn(move || {
                        barrier.wait();
                        store.commit(put_signing("example.", serial + 1, Some(serial)))
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let winners = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(winners, 1, "serial {serial}: {results:?}");
        let stored = stores[1].signing_record("example.").unwrap().unwrap();
        assert_eq!(stored.serial, serial + 1);
        assert_eq!(stored.nsec3_salt, "abcd");
    }
    // The zone's deletion takes its signing record along.
    stores[0]
        .commit(Transaction::new().push(Operation::DeleteZone("example.".to_string())))
        .unwrap();
    assert_eq!(stores[0].signing_record("example.").unwrap(), None);
    // The local store keeps no signing records.
    let dir = tempfile::tempdir().unwrap();
    let local = sqlite(&dir);
    let refused = local.commit(put_signing("example.", 1, None));
    assert!(
        matches!(refused, Err(StoreError::Unsupported { .. })),
        "{refused:?}"
    );
}

#[test]
fn create_once_keeps_the_first_value() {
    let Some((_dir, etcd)) = start("create_once_keeps_the_first_value") else {
        return;
    };
    let stores = [Arc::new(connect(&etcd)), Arc::new(connect(&etcd))];
    let contenders = 4;
    let barrier = Arc::new(Barrier::new(contenders));
    let results: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..contenders)
            .map(|i| {
                let store = stores[i % 2].clone();
                let barrier = barrier.clone();
                scope.spawn(move || {
                    barrier.wait();
                    store.create_once("shared", &format!("value {i}")).unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(results[0].starts_with("value "), "{results:?}");
    assert!(results.iter().all(|r| *r == results[0]), "{results:?}");
    // A later call reads it, and etcd contains that value alone.
    assert_eq!(
        stores[1].create_once("shared", "later").unwrap(),
        results[0]
    );
    let scanned = scan(&etcd.endpoint());
    assert_eq!(keys_of(&scanned), ["/keymaster-test/secrets/shared"]);
    assert_eq!(scanned[0].1, results[0].as_bytes());
}

#[test]
fn multi_operation_transactions_are_atomic() {
    let Some((_dir, etcd)) = start("multi_operation_transactions_are_atomic") else {
        return;
    };
    let store = connect(&etcd);
    check_epochs(&store);

    // A refused transaction leaves every key, value and revision alone.
    let before = scan(&etcd.endpoint());
    let refused = Transaction::new()
        .push(Operation::PutZone(zone("z.example.", 1)))
        .push(Operation::PutKey(key("z.example.", "a", &[1; 40])))
        .push(Operation::PutKey(key("z.example.", "b", &[2; 40])))
        .push(Operation::PutEngineState {
            zone: "z.example.".to_string(),
            state: "{}".to_string(),
        })
        .push(Operation::PutRole {
            role: role("example.", "ns9", 9),
            expected_epoch: Some(8),
        });
    assert!(matches!(
        store.commit(refused),
        Err(StoreError::EpochMismatch { .. })
    ));
    assert_eq!(scan(&etcd.endpoint()), before);

    // An accepted one lands in a single etcd revision.
    let accepted = Transaction::new()
        .push(Operation::PutZone(zone("z.example.", 1)))
        .push(Operation::PutKey(key("z.example.", "a", &[1; 40])))
        .push(Operation::PutKey(key("z.example.", "b", &[2; 40])))
        .push(Operation::PutEngineState {
            zone: "z.example.".to_string(),
            state: "{}".to_string(),
        });
    store.commit(accepted).unwrap();
    let after = scan(&etcd.endpoint());
    let written: Vec<i64> = after
        .iter()
        .filter(|(key, _, _)| key.contains("z.example."))
        .map(|(_, _, revision)| *revision)
        .collect();
    assert_eq!(written.len(), 4, "{:?}", keys_of(&after));
    assert!(written.iter().all(|r| *r == written[0]), "{written:?}");
}

/// Not a test of its own: registers a member and waits to be killed when
/// started by `members_show_online_until_their_lease_is_gone`.
#[test]
fn member_child_process() {
    let Ok(endpoint) = std::env::var(CHILD_ENDPOINT) else {
        return;
    };
    let store = connect_to(&endpoint);
    let _registration = store
        .register(&member("ns-child"), "", Duration::from_secs(2))
        .unwrap();
    std::thread::sleep(Duration::from_secs(60));
}

fn member_names(store: &EtcdStore) -> Vec<String> {
    let members = store.members().unwrap();
    members.into_iter().map(|(member, _)| member.name).collect()
}

fn online_state(store: &EtcdStore, name: &str) -> Option<bool> {
    store
        .members()
        .unwrap()
        .into_iter()
        .find(|(m, _)| m.name == name)
        .map(|(_, online)| online)
}

#[test]
fn members_show_online_until_their_lease_is_gone() {
    let Some((_dir, etcd)) = start("members_show_online_until_their_lease_is_gone") else {
        return;
    };
    let store = connect(&etcd);
    let observer = connect(&etcd);

    // A registered member is listed online and stays so past its TTL.
    let registration = store
        .register(&member("ns1"), "", Duration::from_secs(2))
        .unwrap();
    assert_eq!(observer.members().unwrap(), vec![(member("ns1"), true)]);
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(online_state(&observer, "ns1"), Some(true));
    assert!(observer.member_online("ns1").unwrap());

    // The role holder's online state follows its member.
    observer
        .commit(put_role("example.", "ns1", 1, None))
        .unwrap();
    assert_eq!(observer.role_holder_online("example.").unwrap(), Some(true));
    assert_eq!(observer.role_holder_online("other.").unwrap(), None);

    // Closing revokes the lease at once; the record stays.
    registration.close().unwrap();
    assert_eq!(online_state(&observer, "ns1"), Some(false));
    assert_eq!(
        observer.role_holder_online("example.").unwrap(),
        Some(false)
    );

    // A member whose process is killed goes offline when its lease expires.
    let program = std::env::current_exe().unwrap();
    let child = ChildGuard::spawn(
        "member child",
        std::process::Command::new(program)
            .args(["member_child_process", "--exact", "--nocapture"])
            .env(CHILD_ENDPOINT, etcd.endpoint())
            .stdout(std::process::Stdio::null()),
    );
    let online = wait_until(Duration::from_secs(20), || {
        online_state(&observer, "ns-child") == Some(true)
    });
    assert!(
        online,
        "the child never registered; etcd log:\n{}",
        etcd.log()
    );
    let killed = Instant::now();
    drop(child);
    let offline = wait_until(Duration::from_secs(10), || {
        online_state(&observer, "ns-child") == Some(false)
    });
    assert!(offline, "still online 10 s after its process was killed");
    assert!(
        killed.elapsed() >= Duration::from_millis(500),
        "went offline before the lease ran out"
    );
    assert_eq!(member_names(&observer), ["ns-child", "ns1"]);

    // An unreadable record is left out; the others are still listed.
    History::connect(&etcd.endpoint()).put(&format!("{PREFIX}members/broken"), b"{not json");
    assert_eq!(member_names(&observer), ["ns-child", "ns1"]);
}

fn expect_change(receiver: &std::sync::mpsc::Receiver<Change>, expected: Change) {
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match receiver.recv_timeout(left) {
            Ok(change) if change == expected => return,
            Ok(_) => continue,
            Err(error) => panic!("no {expected:?} within 1 s: {error}"),
        }
    }
}

fn zone_change(zone: &str, part: ZonePart) -> Change {
    Change::Zone {
        zone: zone.to_string(),
        part,
    }
}

#[test]
fn watch_reports_changes_by_another_server() {
    let Some((_dir, mut etcd)) = start("watch_reports_changes_by_another_server") else {
        return;
    };
    let watcher = connect(&etcd);
    let writer = connect(&etcd);
    let changes = watcher.watch().unwrap();

    writer
        .commit(Transaction::new().push(Operation::PutZone(zone("example.", 1))))
        .unwrap();
    expect_change(&changes, zone_change("example.", ZonePart::Zone));
    writer
        .commit(Transaction::new().push(Operation::PutKey(key("example.", "k1", &[1; 40]))))
        .unwrap();
    expect_change(&changes, zone_change("example.", ZonePart::Keys));
    writer.commit(put_role("example.", "ns1", 1, None)).unwrap();
    expect_change(&changes, zone_change("example.", ZonePart::Role));
    let state = Transaction::fenced(fence("example.", "ns1", 1)).push(Operation::PutEngineState {
        zone: "example.".to_string(),
        state: "{}".to_string(),
    });
    writer.commit(state).unwrap();
    expect_change(&changes, zone_change("example.", ZonePart::EngineState));
    let registration = writer
        .register(&member("ns1"), "", Duration::from_secs(2))
        .unwrap();
    expect_change(
        &changes,
        Change::Member {
            name: "ns1".to_string(),
        },
    );
    drop(registration);

    // The watch comes back after etcd restarts, and reports what changed
    // while it was away.
    etcd.restart();
    let written = wait_until(Duration::from_secs(15), || {
        writer
            .commit(Transaction::new().push(Operation::PutZone(zone("after.", 1))))
            .is_ok()
    });
    assert!(
        written,
        "no commit after the restart; etcd log:\n{}",
        etcd.log()
    );
    let back = Instant::now();
    let expected = zone_change("after.", ZonePart::Zone);
    let mut seen = false;
    while back.elapsed() < Duration::from_secs(10) && !seen {
        seen = changes.recv_timeout(Duration::from_millis(500)).ok() == Some(expected.clone());
    }
    assert!(
        seen,
        "the watch did not report the change after the restart"
    );
    writer
        .commit(Transaction::new().push(Operation::DeleteZone("after.".to_string())))
        .unwrap();
    expect_change(&changes, zone_change("after.", ZonePart::Zone));
}

fn assert_unreachable<T: std::fmt::Debug>(result: Result<T, StoreError>, endpoint: &str) {
    match result {
        Err(error @ StoreError::Unreachable { .. }) => {
            let text = error.to_string();
            assert!(text.contains(endpoint), "{text}");
            assert!(text.contains("timed out after 2 s"), "{text}");
        }
        other => panic!("expected Unreachable, got {other:?}"),
    }
}

#[test]
fn calls_time_out_then_recover() {
    let Some((_dir, mut etcd)) = start("calls_time_out_then_recover") else {
        return;
    };
    let endpoint = etcd.endpoint();
    let store = connect(&etcd);
    store.commit(put_role("example.", "ns1", 1, None)).unwrap();
    let limit = TIMEOUT + Duration::from_millis(1500);

    // Paused: connections stay open but nothing responds.
    etcd.pause();
    let started = Instant::now();
    assert_unreachable(store.zones(), &endpoint);
    let write = Transaction::fenced(fence("example.", "ns1", 1))
        .push(Operation::PutZone(zone("example.", 1)));
    assert_unreachable(store.commit(write.clone()), &endpoint);
    assert!(started.elapsed() < limit * 2, "{:?}", started.elapsed());
    etcd.resume();
    let back = wait_until(Duration::from_secs(15), || store.zones().is_ok());
    assert!(back, "no answer after resume; etcd log:\n{}", etcd.log());

    // Killed: every call fails within the timeout.
    etcd.kill();
    for _ in 0..3 {
        let started = Instant::now();
        assert_unreachable(store.role("example."), &endpoint);
        assert!(started.elapsed() < limit, "{:?}", started.elapsed());
    }
    let started = Instant::now();
    assert_unreachable(store.commit(write.clone()), &endpoint);
    assert!(started.elapsed() < limit, "{:?}", started.elapsed());

    // Restarted on the same port and data: the same store works again.
    etcd.restart();
    let back = wait_until(Duration::from_secs(15), || {
        store.commit(write.clone()).is_ok()
    });
    assert!(back, "no commit after restart; etcd log:\n{}", etcd.log());
    assert_eq!(store.zone("example.").unwrap(), Some(zone("example.", 1)));
    assert_eq!(
        store.role("example.").unwrap(),
        Some(role("example.", "ns1", 1))
    );
}

#[test]
fn connect_fails_in_time_without_etcd() {
    let endpoint = format!("http://127.0.0.1:{}", keymaster_testutil::free_port());
    let mut options = EtcdOptions::new(vec![endpoint.clone()]);
    options.timeout = TIMEOUT;
    let started = Instant::now();
    let result = EtcdStore::connect(&options);
    assert!(started.elapsed() < TIMEOUT + Duration::from_millis(1500));
    assert_unreachable(result, &endpoint);
}

#[test]
fn calls_work_inside_and_outside_a_tokio_runtime() {
    let Some((_dir, etcd)) = start("calls_work_inside_and_outside_a_tokio_runtime") else {
        return;
    };
    let store = Arc::new(connect(&etcd));
    store.set_meta("where", "outside").unwrap();

    let multi = tokio::runtime::Runtime::new().unwrap();
    let inside = store.clone();
    multi
        .block_on(async move {
            tokio::spawn(async move {
                inside.set_meta("where", "multi-thread").unwrap();
                inside.meta("where").unwrap()
            })
            .await
        })
        .map(|value| assert_eq!(value.as_deref(), Some("multi-thread")))
        .unwrap();

    let single = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let inside = store.clone();
    let endpoint = etcd.endpoint();
    single.block_on(async move {
        inside.set_meta("where", "current-thread").unwrap();
        // A store created and dropped inside a runtime does not panic.
        let own = connect_to(&endpoint);
        assert_eq!(
            own.meta("where").unwrap().as_deref(),
            Some("current-thread")
        );
        drop(own);
    });
    assert_eq!(
        store.meta("where").unwrap().as_deref(),
        Some("current-thread")
    );
}

#[test]
fn private_keys_are_stored_only_sealed() {
    use keymaster_keys::kek::{key_aad, KeyEncryptionKey};
    use keymaster_keys::{Algorithm, KeyPair};

    let Some((dir, etcd)) = start("private_keys_are_stored_only_sealed") else {
        return;
    };
    let kek = KeyEncryptionKey::load_or_create(&dir.path().join("kek.key")).unwrap();
    let pair = KeyPair::generate(Algorithm::EcdsaP256Sha256, None).unwrap();
    let pkcs8 = pair.to_pkcs8();
    let name = keymaster_zone::Name::from_labels([b"example".as_slice()]).unwrap();
    let sealed = kek.seal(&pkcs8, &key_aad(&name, "k1"));

    let store = connect(&etcd);
    store.commit(put_role("example.", "ns1", 1, None)).unwrap();
    let write = Transaction::fenced(fence("example.", "ns1", 1))
        .push(Operation::PutKey(key("example.", "k1", &sealed)));
    store.commit(write).unwrap();

    // What comes back opens to the same PKCS #8 document.
    let stored = store.keys("example.").unwrap().remove(0);
    let PrivateKey::EncryptedFile { sealed: read_back } = &stored.private else {
        panic!("unexpected private key kind {:?}", stored.private);
    };
    assert_eq!(read_back, &sealed);
    assert_eq!(*kek.open(read_back, &key_aad(&name, "k1")).unwrap(), *pkcs8);

    // Every value under the prefix contains the sealed form, never the clear one.
    let hex = |bytes: &[u8]| data_encoding::HEXLOWER.encode(bytes);
    let base64 = |bytes: &[u8]| data_encoding::BASE64.encode(bytes);
    // The private scalar: the 32-octet OCTET STRING after ECPrivateKey's
    // version 1 (RFC 5915).
    let at = pkcs8
        .windows(5)
        .position(|w| w == [0x02, 0x01, 0x01, 0x04, 0x20])
        .expect("ECPrivateKey in the PKCS #8 document")
        + 5;
    let secret = &pkcs8[at..at + 32];
    let values = scan(&etcd.endpoint());
    let all: Vec<u8> = values.iter().flat_map(|(_, v, _)| v.clone()).collect();
    let text = String::from_utf8_lossy(&all).to_lowercase();
    assert!(
        text.contains(&hex(&sealed)),
        "sealed key not found in the stored values"
    );
    for clear in [&pkcs8[..], secret] {
        assert!(
            !text.contains(&hex(clear)),
            "clear key material stored as hex"
        );
        assert!(!String::from_utf8_lossy(&all).contains(&base64(clear)));
        assert!(!all.windows(clear.len()).any(|w| w == clear));
    }
}

#[test]
fn tls_needs_client_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let Some(etcd) = Etcd::start_tls("tls_needs_client_certificate", dir.path()) else {
        return;
    };
    let files = etcd.tls().unwrap();
    let mut options = EtcdOptions::new(vec![etcd.endpoint()]);
    options.timeout = TIMEOUT;
    options.tls = Some(EtcdTls {
        ca_file: Some(files.ca.clone()),
        cert_file: Some(files.client_cert.clone()),
        key_file: Some(files.client_key.clone()),
    });
    let store = EtcdStore::connect(&options).unwrap();
    store.set_meta("transport", "tls").unwrap();
    assert_eq!(store.meta("transport").unwrap().as_deref(), Some("tls"));

    // Without a client certificate etcd rejects the handshake.
    let mut anonymous = options.clone();
    anonymous.tls = Some(EtcdTls {
        ca_file: Some(files.ca.clone()),
        ..EtcdTls::default()
    });
    let result = EtcdStore::connect(&anonymous);
    assert!(
        matches!(
            result,
            Err(StoreError::Etcd { .. } | StoreError::Unreachable { .. })
        ),
        "{result:?}"
    );

    // A missing file is named in the error.
    let mut missing = options.clone();
    let path = dir.path().join("no-such-ca.pem");
    missing.tls = Some(EtcdTls {
        ca_file: Some(path.clone()),
        ..EtcdTls::default()
    });
    let text = EtcdStore::connect(&missing).unwrap_err().to_string();
    assert!(text.contains(&path.display().to_string()), "{text}");
}
