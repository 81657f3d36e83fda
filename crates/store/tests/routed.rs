//! The routed store: file zones in SQLite, cluster zones in a private etcd
//! on loopback, checked by reading each backend directly.

use std::sync::Arc;
use std::time::Duration;

use keymaster_api::{KeyRole, RecordState, Storage};
use keymaster_store::etcd::EtcdOptions;
use keymaster_store::{
    EtcdStore, Fence, Operation, PrivateKey, RoleRecord, RoutedStore, SqliteStore, Store,
    StoreError, StoredKey, Transaction, ZoneRecord, MAX_ZONE_CONTENT,
};
use keymaster_testutil::etcd::Etcd;
use tempfile::TempDir;

/// Both backends, the routed store over them, and the etcd they share.
struct Setup {
    _dir: TempDir,
    _etcd: Etcd,
    local: Arc<SqliteStore>,
    cluster: Arc<EtcdStore>,
    routed: RoutedStore,
}

fn setup(test: &str) -> Option<Setup> {
    let dir = tempfile::tempdir().unwrap();
    let etcd = Etcd::start(test, &dir.path().join("etcd"))?;
    let local = Arc::new(SqliteStore::open(&dir.path().join("state.db")).unwrap());
    let mut options = EtcdOptions::new(vec![etcd.endpoint()]);
    options.prefix = "/routed-test/".to_string();
    options.timeout = Duration::from_secs(2);
    let cluster = Arc::new(EtcdStore::connect(&options).unwrap());
    let routed = RoutedStore::new(local.clone());
    Some(Setup {
        _dir: dir,
        _etcd: etcd,
        local,
        cluster,
        routed,
    })
}

fn zone(name: &str, storage: Storage) -> ZoneRecord {
    ZoneRecord {
        name: name.to_string(),
        storage,
        file: (storage == Storage::File).then(|| format!("/zones/{name}zone")),
        signed: false,
        policy: "default".to_string(),
        last_serial: None,
        last_signed: None,
        parent_has_ds: None,
        from_config: false,
        policy_definition: None,
    }
}

fn key(zone: &str, id: &str) -> StoredKey {
    StoredKey {
        zone: zone.to_string(),
        id: id.to_string(),
        key_tag: 1,
        role: KeyRole::Zsk,
        algorithm: 13,
        bits: 256,
        dnskey: vec![1, 0, 3, 13],
        private: PrivateKey::EncryptedFile {
            sealed: vec![1, 2, 3],
        },
        created: 1,
        published: None,
        active: None,
        retired: None,
        removed: None,
        dnskey_state: RecordState::Hidden,
        krrsig_state: RecordState::Hidden,
        zrrsig_state: RecordState::Hidden,
        ds_state: RecordState::Hidden,
    }
}

fn put(operation: Operation) -> Transaction {
    Transaction::new().push(operation)
}

fn role_op(zone: &str, server: &str) -> Operation {
    Operation::PutRole {
        role: RoleRecord {
            zone: zone.to_string(),
            key_master: server.to_string(),
            epoch: 1,
            changed: 1,
        },
        expected_epoch: None,
    }
}

#[test]
fn routed_store_keeps_each_zone_in_its_backend() {
    let Some(s) = setup("routed_store_keeps_each_zone_in_its_backend") else {
        return;
    };
    // Without the cluster store, a cluster zone cannot be written.
    let error = s
        .routed
        .commit(put(Operation::PutZone(zone("c.test.", Storage::Cluster))))
        .unwrap_err();
    assert!(
        matches!(&error, StoreError::ClusterUnavailable { zone } if zone == "c.test."),
        "{error}"
    );
    s.routed.attach_cluster(s.cluster.clone());

    // A zone record and the records that follow it go to one backend each.
    for (name, storage) in [("f.test.", Storage::File), ("c.test.", Storage::Cluster)] {
        let transaction = put(Operation::PutZone(zone(name, storage)))
            .push(role_op(name, "ns1"))
            .push(Operation::PutKey(key(name, "k1")));
        s.routed.commit(transaction).unwrap();
        s.routed
            .commit(put(Operation::PutEngineState {
                zone: name.to_string(),
                state: format!("state of {name}"),
            }))
            .unwrap();
    }
    assert!(s.local.zone("f.test.").unwrap().is_some());
    assert!(s.local.zone("c.test.").unwrap().is_none());
    assert!(s.cluster.zone("c.test.").unwrap().is_some());
    assert!(s.cluster.zone("f.test.").unwrap().is_none());
    assert_eq!(s.local.keys("f.test.").unwrap().len(), 1);
    assert!(s.local.keys("c.test.").unwrap().is_empty());
    assert_eq!(s.cluster.keys("c.test.").unwrap().len(), 1);
    assert!(s.cluster.role("f.test.").unwrap().is_none());
    assert_eq!(
        s.cluster.engine_state("c.test.").unwrap().as_deref(),
        Some("state of c.test.")
    );

    // Reads through the routed store find both.
    let names: Vec<String> = s
        .routed
        .zones()
        .unwrap()
        .into_iter()
        .map(|z| z.name)
        .collect();
    assert_eq!(names, ["c.test.", "f.test."]);
    for name in ["c.test.", "f.test."] {
        assert_eq!(s.routed.keys(name).unwrap().len(), 1, "{name}");
        assert_eq!(s.routed.role(name).unwrap().unwrap().key_master, "ns1");
    }

    // Settings stay local.
    s.routed.set_meta("server", "ns1").unwrap();
    assert_eq!(s.local.meta("server").unwrap().as_deref(), Some("ns1"));
    assert_eq!(s.cluster.meta("server").unwrap(), None);

    // A fence on a cluster zone is checked by the cluster store.
    let fenced = Transaction::fenced(Fence {
        zone: "c.test.".to_string(),
        key_master: "ns2".to_string(),
        epoch: 1,
    })
    .push(Operation::PutKey(key("c.test.", "k2")));
    let error = s.routed.commit(fenced).unwrap_err();
    assert!(matches!(error, StoreError::Fenced { .. }), "{error}");
}

#[test]
fn routed_store_rejects_transactions_across_backends() {
    let Some(s) = setup("routed_store_rejects_transactions_across_backends") else {
        return;
    };
    s.routed.attach_cluster(s.cluster.clone());
    s.routed
        .commit(put(Operation::PutZone(zone("f.test.", Storage::File))))
        .unwrap();
    s.routed
        .commit(put(Operation::PutZone(zone("c.test.", Storage::Cluster))))
        .unwrap();

    let mixed =
        put(Operation::PutKey(key("f.test.", "k1"))).push(Operation::PutKey(key("c.test.", "k1")));
    let error = s.routed.commit(mixed).unwrap_err();
    let message = error.to_string();
    assert!(
        matches!(&error, StoreError::MixedStores { local, cluster } if local == "f.test." && cluster == "c.test."),
        "{message}"
    );
    assert!(message.contains("separately"), "{message}");
    // Nothing of it landed.
    assert!(s.local.keys("f.test.").unwrap().is_empty());
    assert!(s.cluster.keys("c.test.").unwrap().is_empty());

    // A new cluster zone with a file zone in one transaction is refused too.
    let mixed = put(Operation::PutZone(zone("n.test.", Storage::Cluster)))
        .push(Operation::PutZone(zone("m.test.", Storage::File)));
    assert!(matches!(
        s.routed.commit(mixed),
        Err(StoreError::MixedStores { .. })
    ));
    assert!(s.routed.zone("n.test.").unwrap().is_none());
    assert!(s.routed.zone("m.test.").unwrap().is_none());
}

#[test]
fn routed_store_keeps_cluster_zone_content_in_etcd() {
    let Some(s) = setup("routed_store_keeps_cluster_zone_content_in_etcd") else {
        return;
    };
    s.routed.attach_cluster(s.cluster.clone());
    let text = "c.test. 3600 IN SOA ns.c.test. h.c.test. 1 2 3 4 5\n";
    let transaction = put(Operation::PutZone(zone("c.test.", Storage::Cluster))).push(
        Operation::PutZoneContent {
            zone: "c.test.".to_string(),
            text: text.to_string(),
        },
    );
    s.routed.commit(transaction).unwrap();
    assert_eq!(
        s.cluster.zone_content("c.test.").unwrap().as_deref(),
        Some(text)
    );
    assert_eq!(
        s.routed.zone_content("c.test.").unwrap().as_deref(),
        Some(text)
    );

    // The local store keeps no content.
    s.routed
        .commit(put(Operation::PutZone(zone("f.test.", Storage::File))))
        .unwrap();
    let error = s
        .routed
        .commit(put(Operation::PutZoneContent {
            zone: "f.test.".to_string(),
            text: text.to_string(),
        }))
        .unwrap_err();
    assert!(matches!(error, StoreError::Unsupported { .. }), "{error}");
    assert!(s.local.zone_content("f.test.").is_err());

    // Content over the limit is refused whole with the sizes.
    let large = "x".repeat(MAX_ZONE_CONTENT + 1);
    let error = s
        .routed
        .commit(put(Operation::PutZoneContent {
            zone: "c.test.".to_string(),
            text: large,
        }))
        .unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, StoreError::TooLarge { .. }), "{message}");
    assert!(
        message.contains(&(MAX_ZONE_CONTENT + 1).to_string()),
        "{message}"
    );
    assert_eq!(
        s.cluster.zone_content("c.test.").unwrap().as_deref(),
        Some(text)
    );

    // Deleting the zone deletes its content.
    s.routed
        .commit(put(Operation::DeleteZone("c.test.".to_string())))
        .unwrap();
    assert_eq!(s.cluster.zone_content("c.test.").unwrap(), None);
}
