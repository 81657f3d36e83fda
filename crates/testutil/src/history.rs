//! Reads what was written to a private etcd, to see who wrote what after a
//! role change.
//!
//! etcd numbers every change of its key space with a revision. [`History`]
//! reads the revision a key was last written at and, through a watch that
//! starts at an old revision, every key put or deleted under `/keymaster/`
//! since. Each watch waits at most 10 s for the next event.
//!
//! Limitations: etcd keeps the history only until it is compacted.
//! Automatic compaction is off by default, and [`crate::etcd::Etcd`] does
//! not turn it on.

use std::time::Duration;

use etcd_client::{Client, GetOptions, WatchOptions};
use tokio::runtime::Runtime;

/// The prefix every keymaster key in etcd starts with.
const PREFIX: &str = "/keymaster/";

/// How long a watch waits for the next event.
const EVENT_TIMEOUT: Duration = Duration::from_secs(10);

/// A client of a private etcd with its own single-thread runtime.
pub struct History {
    runtime: Runtime,
    client: Client,
}

impl History {
    /// Connects to the etcd at `endpoint`; panics when it cannot.
    pub fn connect(endpoint: &str) -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("build a single-thread runtime");
        let client = runtime
            .block_on(Client::connect([endpoint], None))
            .unwrap_or_else(|e| panic!("connect to etcd at {endpoint}: {e}"));
        Self { runtime, client }
    }

    /// Returns the revision `key` was last written at; panics when the key
    /// does not exist.
    pub fn mod_revision(&self, key: &str) -> i64 {
        let mut client = self.client.clone();
        let response = self.runtime.block_on(client.get(key, None)).unwrap();
        let kv = response.kvs().first();
        kv.unwrap_or_else(|| panic!("key {key} not found in etcd"))
            .mod_revision()
    }

    /// Returns every key under `prefix` with its value and the revision it
    /// was last written at, in key order.
    pub fn contents(&self, prefix: &str) -> Vec<(String, Vec<u8>, i64)> {
        let mut client = self.client.clone();
        let options = GetOptions::new().with_prefix();
        let response = self
            .runtime
            .block_on(client.get(prefix, Some(options)))
            .unwrap();
        response
            .kvs()
            .iter()
            .map(|kv| {
                let key = kv.key_str().unwrap().to_string();
                (key, kv.value().to_vec(), kv.mod_revision())
            })
            .collect()
    }

    /// Writes `value` under `key`, bypassing keymaster, as a damaged or
    /// hostile store would hold it.
    pub fn put(&self, key: &str, value: &[u8]) {
        let mut client = self.client.clone();
        self.runtime.block_on(client.put(key, value, None)).unwrap();
    }

    /// Returns true if `key` exists now.
    pub fn exists(&self, key: &str) -> bool {
        let mut client = self.client.clone();
        let response = self.runtime.block_on(client.get(key, None)).unwrap();
        !response.kvs().is_empty()
    }

    /// Returns the store's current revision.
    pub fn current_revision(&self) -> i64 {
        let mut client = self.client.clone();
        let options = GetOptions::new().with_prefix().with_keys_only();
        let response = self
            .runtime
            .block_on(client.get(PREFIX, Some(options)))
            .unwrap();
        response.header().expect("a response header").revision()
    }

    /// Returns every key put or deleted after `revision`, in order, up to
    /// the current revision.
    pub fn keys_written_after(&self, revision: i64) -> Vec<String> {
        self.keys_written_between(revision, self.current_revision())
    }

    /// Returns every key put or deleted after revision `from` up to and
    /// including revision `to`, in order.
    pub fn keys_written_between(&self, from: i64, to: i64) -> Vec<String> {
        let mut client = self.client.clone();
        self.runtime.block_on(async move {
            let options = WatchOptions::new()
                .with_prefix()
                .with_start_revision(from + 1);
            let mut stream = client.watch(PREFIX, Some(options)).await.unwrap();
            let mut keys = Vec::new();
            let mut seen = from;
            while seen < to {
                let message = tokio::time::timeout(EVENT_TIMEOUT, stream.message())
                    .await
                    .unwrap_or_else(|_| panic!("no etcd history after revision {seen} of {to}"))
                    .unwrap()
                    .expect("the watch ended");
                for event in message.events() {
                    if let Some(kv) = event.kv() {
                        seen = seen.max(kv.mod_revision());
                        if kv.mod_revision() <= to {
                            keys.push(kv.key_str().unwrap().to_string());
                        }
                    }
                }
            }
            keys
        })
    }
}
