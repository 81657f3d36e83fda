//! `keymaster key export`: a zone's keys as BIND key files.
//!
//! Export reads the stores directly, not through the control API, so
//! private keys never travel in an API response. A zone of the local store
//! needs read access to `state.db` and `kek.key`, which only the server's
//! user has. A cluster zone's keys are read from etcd through the same
//! [`RoutedStore`] the server uses and opened with the cluster key. The
//! cluster store and the key are named as for `serve`, by the
//! configuration file's `[cluster]` table or by `--etcd` and
//! `--cluster-key`.

use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context};
use keymaster_api::Storage;
use keymaster_keys::bind::{self, BindKey, Timing};
use keymaster_keys::kek::KeyEncryptionKey;
use keymaster_store::{EtcdStore, RoutedStore, SqliteStore, Store};

use crate::cli::ClusterArgs;
use crate::client::write_stdout;
use crate::config::{Config, ConfigFile, Overrides};
use crate::daemon::keyring::unseal_pair;
use crate::daemon::zones::zone_name;
use crate::daemon::{DATABASE_FILE, KEK_FILE};

/// Writes every key of `zone` that is not removed to `output`.
pub fn export(
    data_dir: &Path,
    zone: &str,
    output: &Path,
    cluster: &ClusterArgs,
) -> anyhow::Result<()> {
    let (name, origin) = zone_name(zone)?;
    let kek_path = data_dir.join(KEK_FILE);
    let database = data_dir.join(DATABASE_FILE);
    if !kek_path.is_file() || !database.is_file() {
        bail!(
            "{} is not a keymaster data directory: {KEK_FILE} or {DATABASE_FILE} is missing; pass --data-dir DIR",
            data_dir.display()
        );
    }
    let local: Arc<dyn Store> = Arc::new(SqliteStore::open(&database)?);
    let in_local = local.zone(&name)?.is_some();
    let store = RoutedStore::new(local);
    // A zone of the local store needs no cluster, even when one is named.
    let cluster_key = match in_local {
        true => None,
        false => attach_cluster(&store, cluster)?,
    };
    let storage = store.zone(&name)?.map(|record| record.storage);
    let keys = store.keys(&name)?;
    if keys.is_empty() {
        let place = match (&cluster_key, storage) {
            (_, Some(Storage::Cluster)) => "the cluster store".to_string(),
            (Some(_), _) => format!("{} or the cluster store", data_dir.display()),
            (None, _) => format!(
                "{}; for a cluster zone, name the cluster store and key as for `serve`: \
                 --config FILE, or --etcd URL and --cluster-key FILE",
                data_dir.display()
            ),
        };
        bail!("zone {name} has no keys in {place}");
    }
    let kek = match storage {
        Some(Storage::Cluster) => cluster_key.with_context(|| {
            format!(
                "zone {name} is a cluster zone, and its private keys are sealed under the \
                 cluster key: give --cluster-key FILE or cluster_key in [cluster]"
            )
        })?,
        _ => KeyEncryptionKey::load_or_create(&kek_path)?,
    };
    std::fs::create_dir_all(output)
        .with_context(|| format!("cannot create {}", output.display()))?;
    let mut written = String::new();
    for key in keys.iter().filter(|key| key.removed.is_none()) {
        let pair = unseal_pair(&kek, &origin, key)?;
        let flags = keymaster_keys::Dnskey::from_rdata(&key.dnskey)
            .with_context(|| format!("stored DNSKEY of key {} is malformed", key.key_tag))?
            .flags;
        // BIND's Inactive is when a key stops signing; a key chosen for
        // replacement that still signs is active for BIND.
        let signs = key.krrsig_state.in_zone() || key.zrrsig_state.in_zone();
        let timing = Timing {
            created: Some(key.created),
            publish: key.published,
            activate: key.active,
            inactive: if signs { None } else { key.retired },
            delete: key.removed,
            ..Timing::default()
        };
        let bind_key = BindKey {
            owner: origin.clone(),
            ttl: None,
            flags,
            key: pair,
            timing,
        };
        let (public, private) = bind::write(output, &bind_key)?;
        written.push_str(&format!("{}\n{}\n", public.display(), private.display()));
    }
    write_stdout(&written)
}

/// Connects `store` to the cluster store that `args` name, if any, and
/// returns the cluster key when one is given.
fn attach_cluster(
    store: &RoutedStore,
    args: &ClusterArgs,
) -> anyhow::Result<Option<KeyEncryptionKey>> {
    let file = match &args.config {
        Some(path) => Some((path.as_path(), ConfigFile::read(path)?)),
        None => None,
    };
    let overrides = Overrides {
        etcd: args.etcd.clone(),
        cluster_key: args.cluster_key.clone(),
        ..Overrides::default()
    };
    let Some(settings) = Config::build(file, &overrides)?.cluster else {
        return Ok(None);
    };
    let etcd = EtcdStore::connect(&crate::cluster::etcd_options(&settings))?;
    store.attach_cluster(Arc::new(etcd));
    settings
        .cluster_key
        .as_deref()
        .map(crate::cluster::load_key)
        .transpose()
}
