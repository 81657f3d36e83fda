//! The cluster key and the link from the configuration to the etcd store.
//!
//! The *cluster key* is 32 random octets in a file of mode 0600, in the
//! format of the key-encryption key (`keymaster_keys::kek`). Every member
//! that signs cluster zones has a copy of the same file. The private keys of
//! cluster zones are sealed under it (AES-256-GCM) before they go to etcd,
//! so etcd never stores a private key in clear. A member without the file
//! still joins the cluster and serves, but cannot sign.

use std::io;
use std::path::Path;

use anyhow::Context;
use keymaster_keys::kek::{KekError, KeyEncryptionKey};

use keymaster_store::etcd::{EtcdOptions, Member};

use crate::config::{ClusterConfig, Config};

/// Runs `keymaster cluster new-key -o FILE`: writes a fresh cluster key
/// with mode 0600 and refuses to replace an existing file.
pub fn new_key(output: &Path) -> anyhow::Result<()> {
    match KeyEncryptionKey::create_new(output) {
        Ok(_) => crate::client::write_stdout(&format!(
            "wrote a new cluster key to {} (mode 0600); copy it to every member that signs, \
             as `--cluster-key FILE` or `cluster_key` in [cluster]",
            output.display()
        )),
        Err(KekError::Create { source, .. }) if source.kind() == io::ErrorKind::AlreadyExists => {
            anyhow::bail!(
                "{} already exists; a cluster key is never overwritten, because the keys sealed \
                 under it could not be opened again: choose another file name",
                output.display()
            )
        }
        Err(error) => {
            Err(error).with_context(|| format!("cannot write cluster key {}", output.display()))
        }
    }
}

/// Loads the cluster key at `path`, which must exist with mode 0600.
pub fn load_key(path: &Path) -> anyhow::Result<KeyEncryptionKey> {
    match KeyEncryptionKey::open_existing(path) {
        Ok(key) => Ok(key),
        Err(KekError::Read { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
            anyhow::bail!(
                "cluster key {} does not exist; copy the cluster's key there, or write a new \
                 cluster's first key with `keymaster cluster new-key -o FILE`",
                path.display()
            )
        }
        Err(error) => Err(error).with_context(|| format!("cluster key {}", path.display())),
    }
}

/// Checks that the files a cluster configuration names can be used: the
/// cluster key (mode 0600, 32 octets) and the TLS files.
pub fn check_files(cluster: &ClusterConfig) -> anyhow::Result<()> {
    if let Some(path) = &cluster.cluster_key {
        load_key(path)?;
    }
    if let Some(tls) = &cluster.tls {
        let files = [
            ("ca_file", &tls.ca_file),
            ("cert_file", &tls.cert_file),
            ("key_file", &tls.key_file),
        ];
        for (key, path) in files {
            if let Some(path) = path {
                std::fs::File::open(path).with_context(|| {
                    format!(
                        "[cluster] {key} = {:?} cannot be read",
                        path.display().to_string()
                    )
                })?;
            }
        }
    }
    Ok(())
}
/// Returns the etcd client options of a cluster configuration.
pub fn etcd_options(cluster: &ClusterConfig) -> EtcdOptions {
    let mut options = EtcdOptions::new(cluster.endpoints.clone());
    options.prefix = cluster.prefix.clone();
    options.tls = cluster.tls.clone();
    options
}

/// Returns the member record this server registers.
pub fn member(config: &Config, can_sign: bool) -> Member {
    Member {
        name: config.name.clone(),
        dns_addresses: config.listen.iter().map(ToString::to_string).collect(),
        control: format!("http://{}", config.control),
        version: env!("CARGO_PKG_VERSION").to_string(),
        can_sign,
    }
}
