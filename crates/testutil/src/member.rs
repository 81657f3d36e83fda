//! A `keymaster serve` cluster member on loopback.
//!
//! [`Member::start`] runs the keymaster binary given by the test
//! (`env!("CARGO_BIN_EXE_keymaster")` in integration tests) as a cluster
//! member named `name`, in `dir/name`. The member listens on free ports of
//! 127.0.0.1, serves a file zone `NAME.file.test` of its own, and uses the
//! private etcd at `etcd` and, if given, a cluster key. `start` returns once
//! the member serves its file zone. The member's log goes to
//! `dir/name/serve.log`; panic messages quote it. The process is killed by
//! process id when the value is dropped, and [`Member::kill`],
//! [`Member::pause`] and [`Member::resume`] let a test kill or freeze it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::{free_port, output_text, run, wait_until, ChildGuard};

/// A small zone each member serves from its own master file.
const FILE_ZONE: &str =
    "$TTL 300\n@ SOA ns hostmaster 1 7200 3600 1209600 300\n@ NS ns\nns A 192.0.2.1\n";

/// How long [`Member::start`] waits for the file zone to be served.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// How long [`Member::join`] waits for the member to join the cluster.
const JOIN_TIMEOUT: Duration = Duration::from_secs(20);

/// Lease of the test members: a killed or frozen member shows offline this
/// long after it stopped, at most.
pub const LEASE_TTL: &str = "2s";

/// Policy `fast`, to append to a member's configuration: keys roll within
/// seconds, signatures last a day, and the parent's DS is confirmed by hand
/// with `key step` (`parent_ds_check = "manual"`), so a test plays the parent.
pub const FAST_POLICY: &str = "
[policy.fast]
dnskey_ttl = \"2s\"
max_zone_ttl = \"2s\"
zone_propagation_delay = \"1s\"
parent_ds_ttl = \"2s\"
parent_propagation_delay = \"1s\"
publish_safety = \"1s\"
retire_safety = \"1s\"
signature_validity = \"1d\"
signature_validity_dnskey = \"1d\"
signature_refresh = \"12h\"
signature_jitter = \"1h\"
signature_inception_offset = \"1m\"
zsk_rollover = \"pre-publication\"
ksk_rollover = \"double-ksk\"
parent_ds_check = \"manual\"
";

/// A zone whose TTLs stay within the `max_zone_ttl` of [`FAST_POLICY`].
pub const FAST_ZONE: &str = "$TTL 2\n@ SOA ns hostmaster 5 7200 3600 1209600 2\n@ NS ns\n\
                    ns A 192.0.2.53\nwww A 192.0.2.80\n";

/// Returns [`FAST_ZONE`] with `hosts` more A records, a zone whose
/// signing takes a noticeable time.
pub fn large_zone(hosts: u32) -> String {
    let mut content = FAST_ZONE.to_string();
    for host in 0..hosts {
        content.push_str(&format!("h{host} A 10.1.{}.{}\n", host / 250, host % 250));
    }
    content
}

/// A running `keymaster serve` that is a cluster member.
pub struct Member {
    pub name: String,
    program: PathBuf,
    child: Option<ChildGuard>,
    pub data_dir: PathBuf,
    pub dns_port: u16,
    /// The control API's URL, `http://127.0.0.1:PORT`.
    pub control_url: String,
    log: PathBuf,
}

impl Member {
    /// Starts member `name` with `lease_ttl` (such as `"2s"`) and waits
    /// until it serves its file zone. Panics with the log when it does not
    /// within a minute.
    pub fn start(
        program: &Path,
        dir: &Path,
        name: &str,
        etcd: &str,
        key: Option<&Path>,
        lease_ttl: &str,
    ) -> Self {
        Self::start_with(program, dir, name, etcd, key, lease_ttl, "")
    }

    /// Starts a member as [`Member::start`] does, with `extra` (such as
    /// `[policy.NAME]` tables) appended to its configuration file.
    pub fn start_with(
        program: &Path,
        dir: &Path,
        name: &str,
        etcd: &str,
        key: Option<&Path>,
        lease_ttl: &str,
        extra: &str,
    ) -> Self {
        let home = dir.join(name);
        std::fs::create_dir_all(&home).unwrap();
        std::fs::write(home.join("file.zone"), FILE_ZONE).unwrap();
        let config = home.join("keymaster.toml");
        std::fs::write(
            &config,
            format!(
                "version = 1\n[[zone]]\nname = \"{name}.file.test\"\nfile = \"file.zone\"\nsign = false\n\
                 [cluster]\nendpoints = [\"http://127.0.0.1:1\"]\nlease_ttl = \"{lease_ttl}\"\n{extra}"
            ),
        )
        .unwrap();
        let dns_port = free_port();
        let control_port = free_port();
        let data_dir = home.join("data");
        let log = home.join("serve.log");
        let mut command = Command::new(program);
        command
            .arg("serve")
            .arg("--config")
            .arg(&config)
            .args(["--name", name])
            .arg("--listen")
            .arg(format!("127.0.0.1:{dns_port}"))
            .arg("--control")
            .arg(format!("127.0.0.1:{control_port}"))
            .arg("--data-dir")
            .arg(&data_dir)
            // The flag replaces the file's endpoint, which nothing serves.
            .args(["--etcd", etcd])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        if let Some(key) = key {
            command.arg("--cluster-key").arg(key);
        }

        let member = Self {
            name: name.to_string(),
            program: program.to_path_buf(),
            child: Some(ChildGuard::spawn("keymaster serve", &mut command)),
            data_dir,
            dns_port,
            control_url: format!("http://127.0.0.1:{control_port}"),
            log,
        };

        let zone = format!("{name}.file.test");
        let ready = wait_until(START_TIMEOUT, || {
            let show = member.cli(&["zone", "show", &zone, "--json"]);
            show.status.success()
                && serde_json::from_slice::<serde_json::Value>(&show.stdout)
                    .is_ok_and(|info| info["serial"].is_u64())
        });
        assert!(
            ready,
            "{name} did not serve its file zone: {}",
            member.log()
        );
        member
    }

    /// Starts a member with [`LEASE_TTL`] and `extra` appended to its
    /// configuration, as [`Member::start_with`] does. Then waits until it
    /// joined the cluster, and panics with the log when it does not within
    /// 20 s.
    pub fn join(
        program: &Path,
        dir: &Path,
        name: &str,
        etcd: &str,
        key: Option<&Path>,
        extra: &str,
    ) -> Self {
        let member = Self::start_with(program, dir, name, etcd, key, LEASE_TTL, extra);
        member.wait_joined(JOIN_TIMEOUT);
        member
    }

    /// Runs the CLI against this member's data directory.
    pub fn cli(&self, args: &[&str]) -> Output {
        run(Command::new(&self.program)
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(args))
    }

    /// Returns the member's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits up to `timeout` for the member to log that it joined the
    /// cluster; panics with the log otherwise.
    pub fn wait_joined(&self, timeout: Duration) {
        let joined = wait_until(timeout, || self.log().contains("joined the cluster"));
        assert!(joined, "{} did not join: {}", self.name, self.log());
    }

    /// Returns `server list --json`, one value a server, or `None` when the
    /// command fails or prints no JSON list.
    pub fn servers(&self) -> Option<Vec<serde_json::Value>> {
        let output = self.cli(&["server", "list", "--json"]);
        if !output.status.success() {
            return None;
        }
        serde_json::from_slice(&output.stdout).ok()
    }

    /// Returns the process id while the member runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(ChildGuard::pid)
    }

    /// Kills the process with SIGKILL, so that it cannot revoke its lease.
    pub fn kill(&mut self) {
        self.child = None;
    }

    /// Freezes the process with SIGSTOP: its sockets stay open, nothing runs.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Lets a paused member run again with SIGCONT.
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let pid = self.pid().expect("the member is not running");
        let output = run(Command::new("kill").arg(signal).arg(pid.to_string()));
        assert!(
            output.status.success(),
            "kill {signal} {pid}: {}",
            output_text(&output)
        );
    }
}

/// Returns the entry of server `name` in a [`Member::servers`] list.
pub fn server<'a>(servers: &'a [serde_json::Value], name: &str) -> Option<&'a serde_json::Value> {
    servers.iter().find(|server| server["name"] == name)
}

/// Writes a new cluster key to `dir/cluster.key` with `keymaster cluster
/// new-key` (`program`) and returns its path; panics when the command fails.
pub fn cluster_key(program: &Path, dir: &Path) -> PathBuf {
    let path = dir.join("cluster.key");
    let output = run(Command::new(program)
        .args(["cluster", "new-key", "-o"])
        .arg(&path));
    assert!(output.status.success(), "{}", output_text(&output));
    path
}
