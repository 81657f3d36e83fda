//! The local backend: one SQLite database in the data directory.
//!
//! The database runs in WAL mode with `synchronous = FULL`, so a
//! transaction reported committed survives a crash or power loss. Records
//! are stored as JSON so that new fields need no schema migration; a
//! missing field takes its serde default.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{params, Connection, OptionalExtension};

use crate::{Operation, RoleRecord, Store, StoreError, StoredKey, Transaction, ZoneRecord};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS zones (name TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS keys (
    zone TEXT NOT NULL, id TEXT NOT NULL, seq INTEGER NOT NULL, data TEXT NOT NULL,
    PRIMARY KEY (zone, id));
CREATE TABLE IF NOT EXISTS roles (zone TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS engine (zone TEXT PRIMARY KEY, state TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
";

/// The SQLite state database.
pub struct SqliteStore {
    path: PathBuf,
    connection: Mutex<Connection>,
}

impl SqliteStore {
    /// Opens or creates the database at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let display = path.display().to_string();
        let wrap = |operation: &'static str| {
            let path = display.clone();
            move |source| StoreError::Database {
                path,
                operation,
                source,
            }
        };
        let connection = Connection::open(path).map_err(wrap("open"))?;
        connection
            .execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;")
            .map_err(wrap("configure"))?;
        connection
            .execute_batch(SCHEMA)
            .map_err(wrap("create tables"))?;
        Ok(Self {
            path: path.to_path_buf(),
            connection: Mutex::new(connection),
        })
    }

    fn database_error(
        &self,
        operation: &'static str,
    ) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        move |source| StoreError::Database {
            path: self.path.display().to_string(),
            operation,
            source,
        }
    }

    fn decode<T: serde::de::DeserializeOwned>(
        &self,
        what: &str,
        json: &str,
    ) -> Result<T, StoreError> {
        serde_json::from_str(json).map_err(|source| StoreError::Corrupt {
            path: self.path.display().to_string(),
            what: what.to_string(),
            source,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves SQLite itself consistent,
        // so a poisoned lock is still safe to use.
        self.connection
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn read_role(
        &self,
        connection: &Connection,
        zone: &str,
    ) -> Result<Option<RoleRecord>, StoreError> {
        let json: Option<String> = connection
            .query_row("SELECT data FROM roles WHERE zone = ?1", [zone], |row| {
                row.get(0)
            })
            .optional()
            .map_err(self.database_error("read role"))?;
        json.map(|json| self.decode(&format!("role of {zone}"), &json))
            .transpose()
    }

    fn apply(&self, connection: &Connection, operation: Operation) -> Result<(), StoreError> {
        let encode = |value: &dyn erased::Json| value.to_json();
        match operation {
            Operation::PutZone(zone) => {
                connection
                    .execute(
                        "INSERT INTO zones (name, data) VALUES (?1, ?2)
                         ON CONFLICT(name) DO UPDATE SET data = excluded.data",
                        params![zone.name, encode(&zone)],
                    )
                    .map_err(self.database_error("write zone"))?;
            }
            Operation::ReplaceZone { record, expected } => {
                let json: Option<String> = connection
                    .query_row(
                        "SELECT data FROM zones WHERE name = ?1",
                        [&record.name],
                        |row| row.get(0),
                    )
                    .optional()
                    .map_err(self.database_error("read zone"))?;
                let found: Option<ZoneRecord> = json
                    .map(|json| self.decode(&format!("zone {}", record.name), &json))
                    .transpose()?;
                if found.as_ref() != Some(&expected) {
                    return Err(StoreError::ZoneMoved { zone: record.name });
                }
                return self.apply(connection, Operation::PutZone(record));
            }
            Operation::DeleteZone(name) => {
                for table in ["zones WHERE name", "keys WHERE zone", "engine WHERE zone"] {
                    connection
                        .execute(&format!("DELETE FROM {table} = ?1"), [&name])
                        .map_err(self.database_error("delete zone"))?;
                }
            }
            Operation::PutKey(key) => {
                connection
                    .execute(
                        "INSERT INTO keys (zone, id, seq, data)
                         VALUES (?1, ?2, (SELECT COALESCE(MAX(seq), 0) + 1 FROM keys), ?3)
                         ON CONFLICT(zone, id) DO UPDATE SET data = excluded.data",
                        params![key.zone, key.id, encode(&key)],
                    )
                    .map_err(self.database_error("write key"))?;
            }
            Operation::DeleteKey { zone, id } => {
                connection
                    .execute("DELETE FROM keys WHERE zone = ?1 AND id = ?2", [&zone, &id])
                    .map_err(self.database_error("delete key"))?;
            }
            Operation::PutRole {
                role,
                expected_epoch,
            } => {
                let found = self.read_role(connection, &role.zone)?.map(|r| r.epoch);
                if found != expected_epoch {
                    return Err(StoreError::EpochMismatch {
                        zone: role.zone,
                        expected: expected_epoch,
                        found,
                    });
                }
                connection
                    .execute(
                        "INSERT INTO roles (zone, data) VALUES (?1, ?2)
                         ON CONFLICT(zone) DO UPDATE SET data = excluded.data",
                        params![role.zone, encode(&role)],
                    )
                    .map_err(self.database_error("write role"))?;
            }
            Operation::PutEngineState { zone, state } => {
                connection
                    .execute(
                        "INSERT INTO engine (zone, state) VALUES (?1, ?2)
                         ON CONFLICT(zone) DO UPDATE SET state = excluded.state",
                        params![zone, state],
                    )
                    .map_err(self.database_error("write engine state"))?;
            }
            Operation::PutZoneContent { .. } => {
                // A file zone's records are its master file.
                return Err(StoreError::Unsupported {
                    backend: "local state database",
                    what: "zone content",
                });
            }
            Operation::PutSigning { .. } => {
                // A file zone has one primary, which signs from its own clock.
                return Err(StoreError::Unsupported {
                    backend: "local state database",
                    what: "signing records",
                });
            }
        }
        Ok(())
    }

    fn list<T: serde::de::DeserializeOwned>(
        &self,
        sql: &str,
        arg: Option<&str>,
        what: &str,
    ) -> Result<Vec<T>, StoreError> {
        let connection = self.lock();
        let mut statement = connection
            .prepare(sql)
            .map_err(self.database_error("prepare query"))?;
        let args: Vec<&str> = arg.into_iter().collect();
        let rows = statement
            .query_map(rusqlite::params_from_iter(args), |row| {
                row.get::<_, String>(0)
            })
            .map_err(self.database_error("query"))?;
        let mut items = Vec::new();
        for json in rows {
            let json = json.map_err(self.database_error("read row"))?;
            items.push(self.decode(what, &json)?);
        }
        Ok(items)
    }
}

/// Serialisation of the record types, which cannot fail because they
/// contain only strings, numbers, byte strings and enums.
mod erased {
    pub(super) trait Json {
        fn to_json(&self) -> String;
    }

    impl<T: serde::Serialize> Json for T {
        fn to_json(&self) -> String {
            serde_json::to_string(self).unwrap_or_default()
        }
    }
}

impl Store for SqliteStore {
    fn zones(&self) -> Result<Vec<ZoneRecord>, StoreError> {
        self.list("SELECT data FROM zones ORDER BY name", None, "zone")
    }

    fn zone(&self, name: &str) -> Result<Option<ZoneRecord>, StoreError> {
        let zones: Vec<ZoneRecord> =
            self.list("SELECT data FROM zones WHERE name = ?1", Some(name), "zone")?;
        Ok(zones.into_iter().next())
    }

    fn keys(&self, zone: &str) -> Result<Vec<StoredKey>, StoreError> {
        self.list(
            "SELECT data FROM keys WHERE zone = ?1 ORDER BY seq",
            Some(zone),
            "key",
        )
    }

    fn role(&self, zone: &str) -> Result<Option<RoleRecord>, StoreError> {
        self.read_role(&self.lock(), zone)
    }

    fn engine_state(&self, zone: &str) -> Result<Option<String>, StoreError> {
        self.lock()
            .query_row("SELECT state FROM engine WHERE zone = ?1", [zone], |row| {
                row.get(0)
            })
            .optional()
            .map_err(self.database_error("read engine state"))
    }

    fn commit(&self, transaction: Transaction) -> Result<(), StoreError> {
        let mut connection = self.lock();
        let sql = connection
            .transaction()
            .map_err(self.database_error("begin transaction"))?;
        if let Some(fence) = &transaction.fence {
            let role = self.read_role(&sql, &fence.zone)?;
            let holds = role
                .as_ref()
                .is_some_and(|r| r.key_master == fence.key_master && r.epoch == fence.epoch);
            if !holds {
                let found = match role {
                    Some(r) => format!("{} at epoch {}", r.key_master, r.epoch),
                    None => "no role record".to_string(),
                };
                return Err(StoreError::Fenced {
                    zone: fence.zone.clone(),
                    expected_server: fence.key_master.clone(),
                    expected_epoch: fence.epoch,
                    found,
                });
            }
        }
        for operation in transaction.operations {
            self.apply(&sql, operation)?;
        }
        sql.commit()
            .map_err(self.database_error("commit transaction"))
    }

    fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.lock()
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |row| {
                row.get(0)
            })
            .optional()
            .map_err(self.database_error("read setting"))
    }

    fn set_meta(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.lock()
            .execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2)
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                [key, value],
            )
            .map(drop)
            .map_err(self.database_error("write setting"))
    }
}

#[cfg(test)]
mod tests {
    use keymaster_api::{KeyRole, RecordState, Storage};

    use super::*;
    use crate::{Fence, PrivateKey};

    fn zone(name: &str) -> ZoneRecord {
        ZoneRecord {
            name: name.to_string(),
            storage: Storage::File,
            file: Some("/tmp/z".to_string()),
            signed: true,
            policy: "default".to_string(),
            last_serial: Some(7),
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
            key_tag: 12345,
            role: KeyRole::Zsk,
            algorithm: 13,
            bits: 256,
            dnskey: vec![1, 0, 3, 13, 0xaa],
            private: PrivateKey::EncryptedFile {
                sealed: vec![9, 8, 7],
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

    fn role(zone: &str, server: &str, epoch: u64) -> RoleRecord {
        RoleRecord {
            zone: zone.to_string(),
            key_master: server.to_string(),
            epoch,
            changed: 0,
        }
    }

    fn open() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("state.db")).unwrap();
        (dir, store)
    }

    #[test]
    fn records_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        {
            let store = SqliteStore::open(&path).unwrap();
            let txn = Transaction::new()
                .push(Operation::PutZone(zone("example.")))
                .push(Operation::PutKey(key("example.", "a")))
                .push(Operation::PutKey(key("example.", "b")))
                .push(Operation::PutRole {
                    role: role("example.", "ns1", 1),
                    expected_epoch: None,
                });
            store.commit(txn).unwrap();
        }
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(store.zone("example.").unwrap(), Some(zone("example.")));
        let ids: Vec<String> = store
            .keys("example.")
            .unwrap()
            .into_iter()
            .map(|k| k.id)
            .collect();
        assert_eq!(ids, vec!["a", "b"]);
        assert_eq!(
            store.role("example.").unwrap(),
            Some(role("example.", "ns1", 1))
        );
    }

    #[test]
    fn failed_operation_rolls_back_whole_transaction() {
        let (_dir, store) = open();
        store
            .commit(Transaction::new().push(Operation::PutRole {
                role: role("example.", "ns1", 1),
                expected_epoch: None,
            }))
            .unwrap();
        let txn = Transaction::new()
            .push(Operation::PutZone(zone("example.")))
            .push(Operation::PutRole {
                role: role("example.", "ns2", 2),
                expected_epoch: Some(5),
            });
        let error = store.commit(txn).unwrap_err();
        assert!(matches!(error, StoreError::EpochMismatch { .. }), "{error}");
        assert_eq!(store.zone("example.").unwrap(), None);
    }

    #[test]
    fn fence_rejects_former_key_master() {
        let (_dir, store) = open();
        store
            .commit(Transaction::new().push(Operation::PutRole {
                role: role("example.", "ns1", 1),
                expected_epoch: None,
            }))
            .unwrap();
        let moved = Operation::PutRole {
            role: role("example.", "ns2", 2),
            expected_epoch: Some(1),
        };
        store.commit(Transaction::new().push(moved)).unwrap();
        let fence = Fence {
            zone: "example.".to_string(),
            key_master: "ns1".to_string(),
            epoch: 1,
        };
        let stale = Transaction::fenced(fence).push(Operation::PutKey(key("example.", "c")));
        let error = store.commit(stale).unwrap_err();
        assert!(matches!(error, StoreError::Fenced { .. }), "{error}");
        assert!(store.keys("example.").unwrap().is_empty());
    }

    #[test]
    fn private_key_debug_hides_bytes() {
        let text = format!(
            "{:?}",
            PrivateKey::EncryptedFile {
                sealed: vec![0x42; 4]
            }
        );
        assert_eq!(text, "EncryptedFile(4 octets sealed)");
    }
}
