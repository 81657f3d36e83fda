//! Cluster tests: the cluster key, the `[cluster]` configuration, and real
//! `keymaster serve` members sharing a private etcd on loopback.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use keymaster_testutil::{output_text, run};

fn keymaster() -> Command {
    Command::new(env!("CARGO_BIN_EXE_keymaster"))
}

fn new_key(path: &Path) -> std::process::Output {
    run(keymaster().args(["cluster", "new-key", "-o"]).arg(path))
}

#[test]
fn cluster_new_key_writes_mode_0600_and_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cluster.key");
    let output = new_key(&path);
    assert!(output.status.success(), "{}", output_text(&output));
    let metadata = std::fs::metadata(&path).unwrap();
    assert_eq!(metadata.permissions().mode() & 0o7777, 0o600);
    assert_eq!(metadata.len(), 32);
    let first = std::fs::read(&path).unwrap();

    // A second key differs from the first.
    let other = dir.path().join("other.key");
    assert!(new_key(&other).status.success());
    assert_ne!(std::fs::read(&other).unwrap(), first);

    let again = new_key(&path);
    assert!(!again.status.success(), "an existing key was overwritten");
    let message = output_text(&again);
    assert!(message.contains("already exists"), "{message}");
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert_eq!(std::fs::read(&path).unwrap(), first, "the key changed");

    let missing_dir = dir.path().join("no/such/dir/cluster.key");
    let failed = new_key(&missing_dir);
    assert!(!failed.status.success());
    assert!(
        output_text(&failed).contains(&missing_dir.display().to_string()),
        "{}",
        output_text(&failed)
    );
}

/// Runs `keymaster serve --config FILE --check-config` on `text`.
fn check_config(dir: &Path, text: &str) -> std::process::Output {
    let path = dir.join("keymaster.toml");
    std::fs::write(&path, text).unwrap();
    run(keymaster()
        .arg("serve")
        .arg("--config")
        .arg(&path)
        .arg("--check-config"))
}

#[test]
fn cluster_config_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("cluster.key");
    assert!(new_key(&key).status.success());
    let config = dir.path().join("keymaster.toml");

    // A valid section, with and without the cluster key.
    let valid = "version = 1\n[cluster]\nendpoints = [\"http://127.0.0.1:2379\"]\n\
                 cluster_key = \"cluster.key\"\nlease_ttl = \"3s\"\n";
    let output = check_config(dir.path(), valid);
    assert!(output.status.success(), "{}", output_text(&output));
    assert!(
        output_text(&output).contains("cluster store http://127.0.0.1:2379 (can sign)"),
        "{}",
        output_text(&output)
    );
    let output = check_config(
        dir.path(),
        "version = 1\n[cluster]\nendpoints = [\"http://127.0.0.1:2379\"]\n",
    );
    assert!(
        output_text(&output).contains("cannot sign"),
        "{}",
        output_text(&output)
    );

    // An unknown key names itself and the file.
    let output = check_config(
        dir.path(),
        "version = 1\n[cluster]\nendpoints = [\"http://127.0.0.1:2379\"]\nleas_ttl = \"3s\"\n",
    );
    assert!(!output.status.success());
    let message = output_text(&output);
    assert!(message.contains("leas_ttl"), "{message}");
    assert!(message.contains(&config.display().to_string()), "{message}");

    // A bad value names the file, the key and the value.
    let output = check_config(
        dir.path(),
        "version = 1\n[cluster]\nendpoints = [\"etcd1:2379\"]\n",
    );
    assert!(!output.status.success());
    let message = output_text(&output);
    assert!(message.contains(&config.display().to_string()), "{message}");
    assert!(message.contains("endpoints = \"etcd1:2379\""), "{message}");

    // A cluster key that others may read is refused, and so is a missing one.
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let output = check_config(dir.path(), valid);
    assert!(!output.status.success());
    let message = output_text(&output);
    assert!(message.contains(&key.display().to_string()), "{message}");
    assert!(message.contains("chmod 600"), "{message}");
    std::fs::remove_file(&key).unwrap();
    let output = check_config(dir.path(), valid);
    assert!(!output.status.success());
    assert!(
        output_text(&output).contains(&key.display().to_string()),
        "{}",
        output_text(&output)
    );

    // The flags alone make a cluster configuration, and override the file.
    let output = run(keymaster()
        .args(["serve", "--check-config", "--etcd", "http://127.0.0.1:1"])
        .arg("--cluster-key")
        .arg(dir.path().join("absent.key")));
    assert!(!output.status.success());
    assert!(
        output_text(&output).contains("absent.key"),
        "{}",
        output_text(&output)
    );
    let output = run(keymaster().args(["serve", "--check-config", "--cluster-key", "x.key"]));
    assert!(!output.status.success());
    assert!(
        output_text(&output).contains("--etcd"),
        "{}",
        output_text(&output)
    );
}
