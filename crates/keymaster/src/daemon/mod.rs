//! `keymaster serve`: the daemon that loads zones, acts as Key Master for
//! the zones it owns, publishes signed versions to the DNS server and
//! answers the control API.
//!
//! Each zone moves through: load the master file (all or nothing), make
//! sure it has a Key Master and, if this server is that Key Master, keys;
//! sign and validate a new version; publish it. A failure at any step
//! leaves the last published version in service and is recorded on the
//! zone, where `zone show` reports it.
//!
//! The maintenance task sleeps until the earliest moment anything is due
//! (an engine step, a parent DS check, a signature refresh) or until an
//! operator request wakes it, and at most a minute.

pub mod cluster;
pub mod cluster_fetch;
pub mod cluster_signing;
pub mod control;
pub mod keyring;
pub mod lifecycle;
pub mod reloads;
pub mod role;
pub mod zones;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use keymaster_keys::kek::KeyEncryptionKey;
use keymaster_server::{Server, ServerConfig, ZoneSet};
use keymaster_store::{RoutedStore, SqliteStore, Store};
use tokio::sync::watch;

use crate::config::Config;
pub use zones::ZoneError;

/// File in the data directory holding the control API URL.
pub const CONTROL_FILE: &str = "control.url";
/// File in the data directory holding the control API bearer token.
pub const TOKEN_FILE: &str = "control.token";
/// File in the data directory holding the key-encryption key.
pub const KEK_FILE: &str = "kek.key";
/// The state database in the data directory.
pub const DATABASE_FILE: &str = "state.db";

/// Longest sleep of the maintenance task, so that a clock jump or a missed
/// wake-up is caught within a minute.
const MAINTENANCE_INTERVAL: Duration = Duration::from_secs(60);

/// Seconds before a failed engine step of a zone is tried again.
pub const RETRY_INTERVAL: u64 = 30;

/// Returns the current UNIX time in seconds.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The running daemon, shared by the maintenance task and the control API.
pub struct Daemon {
    pub config: Config,
    pub store: Arc<dyn Store>,
    pub kek: KeyEncryptionKey,
    /// The link to the cluster store, when a cluster is configured.
    pub cluster: Option<cluster::ClusterLink>,
    pub published: Arc<ZoneSet>,
    pub started: u64,
    /// Runtime state of each zone, by normalized name.
    pub zones: Mutex<BTreeMap<String, zones::ZoneRuntime>>,
    /// Wakes the maintenance task when an operator request is queued.
    pub wake: tokio::sync::Notify,
    /// The last difference logged between a cluster zone's stored policy
    /// and this server's own definition of it, by zone, so it is logged
    /// once per change.
    pub policy_notes: Mutex<BTreeMap<String, String>>,
}

/// Creates the data directory with mode 0700 if it does not exist.
pub fn prepare_data_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("cannot create data directory {}", dir.display()))?;
    }
    Ok(())
}

/// File in the data directory that one running daemon holds locked.
pub const LOCK_FILE: &str = "serve.lock";

/// Takes the data directory's lock, so that two daemons never share one
/// state database and control token. The lock lasts as long as the file.
pub fn lock_data_dir(dir: &Path) -> anyhow::Result<std::fs::File> {
    use std::io::{Read, Seek, Write};
    let path = dir.join(LOCK_FILE);
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| format!("cannot open lock file {}", path.display()))?;
    if file.try_lock().is_err() {
        let mut holder = String::new();
        let _ = file.read_to_string(&mut holder);
        anyhow::bail!(
            "data directory {} is in use by another keymaster (pid {}); stop it or pass another --data-dir",
            dir.display(),
            holder.trim()
        );
    }
    file.set_len(0)?;
    file.rewind()?;
    write!(file, "{}", std::process::id())?;
    Ok(file)
}

/// Refuses to start when the key-encryption key and the state database do
/// not belong together: a missing file means lost state, and starting
/// afresh would generate new keys behind the parent's DS.
fn check_state_files(dir: &Path) -> anyhow::Result<()> {
    let kek = dir.join(KEK_FILE).exists();
    let database = dir.join(DATABASE_FILE);
    if kek && !database.exists() {
        anyhow::bail!(
            "{} exists but the state database {} is missing, so the zones' keys are lost; \
             restore {DATABASE_FILE} from a backup, or move {KEK_FILE} away to start with new keys",
            dir.join(KEK_FILE).display(),
            database.display()
        );
    }
    if !kek && database.exists() {
        let store = SqliteStore::open(&database)?;
        let mut sealed = 0;
        for zone in store.zones()? {
            sealed += store.keys(&zone.name)?.len();
        }
        if sealed > 0 {
            anyhow::bail!(
                "the key-encryption key {} is missing but {} holds {sealed} keys sealed under it; \
                 restore {KEK_FILE} from a backup",
                dir.join(KEK_FILE).display(),
                database.display()
            );
        }
    }
    Ok(())
}

/// Writes `contents` to `path` atomically with `mode`: a temporary file,
/// fsync, rename, fsync of the directory.
pub fn write_file_atomically(path: &Path, contents: &[u8], mode: u32) -> std::io::Result<()> {
    write_file_atomically_with(path, mode, |out| out.write_all(contents))
}

/// Writes a file atomically like [`write_file_atomically`], with the
/// contents streamed by `write` through a buffer.
pub fn write_file_atomically_with(
    path: &Path,
    mode: u32,
    write: impl FnOnce(&mut dyn std::io::Write) -> std::io::Result<()>,
) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let temporary = dir.join(format!(
        ".{}.tmp{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file"),
        std::process::id()
    ));
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&temporary)?;
    let mut buffered = std::io::BufWriter::with_capacity(1 << 20, file);
    let written = write(&mut buffered)
        .and_then(|()| buffered.flush())
        .and_then(|()| buffered.get_ref().sync_all());
    if let Err(error) = written {
        drop(buffered);
        // The partial file is useless; the error that matters is the first.
        let _ = std::fs::remove_file(&temporary);
        return Err(error);
    }
    std::fs::rename(&temporary, path)?;
    std::fs::File::open(dir)?.sync_all()
}

/// Runs the daemon until SIGTERM or SIGINT.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    prepare_data_dir(&config.data_dir)?;
    let _lock = lock_data_dir(&config.data_dir)?;
    check_state_files(&config.data_dir)?;
    let local: Arc<dyn Store> = Arc::new(SqliteStore::open(&config.data_dir.join(DATABASE_FILE))?);
    let routed = Arc::new(RoutedStore::new(local));
    let store: Arc<dyn Store> = routed.clone();
    let kek = KeyEncryptionKey::load_or_create(&config.data_dir.join(KEK_FILE))?;
    let cluster = match &config.cluster {
        Some(settings) => {
            let key = match &settings.cluster_key {
                Some(path) => Some(crate::cluster::load_key(path)?),
                None => None,
            };
            Some(cluster::ClusterLink::new(settings.clone(), key, routed))
        }
        None => None,
    };
    let published = Arc::new(ZoneSet::new());

    // Bind every socket before any slow work, so a taken port fails fast.
    let server_config = ServerConfig {
        listen: config.listen.clone(),
        max_udp_payload: config.max_udp_payload,
        transfer: config.transfer.clone(),
        ..ServerConfig::default()
    };
    let server =
        Server::bind(server_config, published.clone()).context("cannot start the DNS server")?;
    let control = tokio::net::TcpListener::bind(config.control)
        .await
        .with_context(|| format!("cannot listen for the control API on {}", config.control))?;

    let daemon = Arc::new(Daemon {
        config,
        store,
        kek,
        cluster,
        published,
        started: unix_now(),
        zones: Mutex::new(BTreeMap::new()),
        wake: tokio::sync::Notify::new(),
        policy_notes: Mutex::new(BTreeMap::new()),
    });
    let token = control::write_endpoint(&daemon.config.data_dir, daemon.config.control)?;
    tracing::info!(
        server = %daemon.config.name,
        listen = ?daemon.config.listen,
        control = %daemon.config.control,
        "keymaster started"
    );

    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let mut dns_shutdown = shutdown_rx.clone();
    let dns = tokio::spawn(server.run(async move {
        let _ = dns_shutdown.changed().await;
    }));
    let api = tokio::spawn(control::run(
        daemon.clone(),
        control,
        token,
        shutdown_rx.clone(),
    ));

    if daemon.cluster.is_some() {
        cluster::spawn_join(daemon.clone(), shutdown_rx.clone())
            .context("cannot start the cluster thread")?;
    }
    let startup = daemon.clone();
    tokio::task::spawn_blocking(move || startup.load_all()).await?;
    let maintenance = tokio::spawn(maintain(daemon.clone(), shutdown_rx));

    wait_for_signal().await;
    tracing::info!("shutting down");
    let _ = shutdown_tx.send(true);
    let leaving = daemon.clone();
    let _ = tokio::task::spawn_blocking(move || {
        if let Some(link) = &leaving.cluster {
            link.leave();
        }
    })
    .await;
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        let _ = dns.await;
        let _ = api.await;
        let _ = maintenance.await;
    })
    .await;
    let _ = std::fs::remove_file(daemon.config.data_dir.join(CONTROL_FILE));
    tracing::info!("keymaster stopped");
    Ok(())
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut terminate = match signal(SignalKind::terminate()) {
        Ok(stream) => stream,
        Err(error) => {
            tracing::error!(%error, "cannot watch for SIGTERM; stop with Ctrl-C");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = terminate.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

/// Runs engine steps, parent checks and signature refreshes when they are
/// due, sleeping in between.
async fn maintain(daemon: Arc<Daemon>, mut shutdown: watch::Receiver<bool>) {
    // The first pass runs at once, for what the startup steps left due.
    let mut next: Option<u64> = Some(0);
    loop {
        let sleep = match next {
            Some(at) => {
                Duration::from_secs(at.saturating_sub(unix_now())).min(MAINTENANCE_INTERVAL)
            }
            None => MAINTENANCE_INTERVAL,
        };
        tokio::select! {
            _ = tokio::time::sleep(sleep) => {}
            _ = daemon.wake.notified() => {}
            _ = shutdown.changed() => return,
        }
        let database = daemon.config.data_dir.join(DATABASE_FILE);
        if !database.exists() {
            tracing::error!(path = %database.display(), "the state database was deleted while running; \
                key changes are lost at the next restart: restore it from a backup and restart");
        }
        let worker = daemon.clone();
        match tokio::task::spawn_blocking(move || worker.maintain_due()).await {
            Ok(due) => next = due,
            Err(error) => {
                tracing::error!(%error, "zone maintenance task failed");
                next = None;
            }
        }
        // Never spin: a zone due in the past is handled on the next pass.
        if next.is_some_and(|at| at <= unix_now()) {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}
