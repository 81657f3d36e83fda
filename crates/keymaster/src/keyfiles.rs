//! `keymaster key export`: a zone's keys as BIND key files.
//!
//! Export reads the data directory directly, not through the control API,
//! so private keys never travel in an API response. It needs read access
//! to `state.db` and `kek.key`, which only the server's user has.

use std::path::Path;

use anyhow::{bail, Context};
use keymaster_keys::bind::{self, BindKey, Timing};
use keymaster_keys::kek::KeyEncryptionKey;
use keymaster_store::{SqliteStore, Store};

use crate::client::write_stdout;
use crate::daemon::keyring::unseal_pair;
use crate::daemon::zones::zone_name;
use crate::daemon::{DATABASE_FILE, KEK_FILE};

/// Writes every key of `zone` that is not removed to `output`.
pub fn export(data_dir: &Path, zone: &str, output: &Path) -> anyhow::Result<()> {
    let (name, origin) = zone_name(zone)?;
    let kek_path = data_dir.join(KEK_FILE);
    let database = data_dir.join(DATABASE_FILE);
    if !kek_path.is_file() || !database.is_file() {
        bail!(
            "{} is not a keymaster data directory: {KEK_FILE} or {DATABASE_FILE} is missing; pass --data-dir DIR",
            data_dir.display()
        );
    }
    let kek = KeyEncryptionKey::load_or_create(&kek_path)?;
    let store = SqliteStore::open(&database)?;
    let keys = store.keys(&name)?;
    if keys.is_empty() {
        bail!("zone {name} has no keys in {}", data_dir.display());
    }
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
