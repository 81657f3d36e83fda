//! A private Unbound resolver on loopback.
//!
//! [`Unbound::start`] writes `unbound.conf` into a folder, runs `unbound -d`
//! on a free port of 127.0.0.1 and waits until it responds to a query. Unbound
//! sends queries only from 127.0.0.1 and only to the stub zones the caller
//! names. When the caller gives no stub for the root zone, one is added that
//! points at the first stub's server, so unbound never uses its built-in
//! root hints. Unbound's own answers for special-use names such as `test.`
//! are turned off for the stub zones. The process is killed by process id when the value is
//! dropped.

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::{free_port, tool, wait_until, ChildGuard};

/// How long [`Unbound::start`] waits for the first response.
const START_TIMEOUT: Duration = Duration::from_secs(15);

/// A running private unbound.
pub struct Unbound {
    child: ChildGuard,
    port: u16,
    dir: PathBuf,
}

/// A stub zone: queries for names at or below `zone` go to 127.0.0.1 at `port`.
#[derive(Clone, Debug)]
pub struct Stub {
    pub zone: String,
    pub port: u16,
}

impl Stub {
    /// Creates a stub for `zone` served on 127.0.0.1 at `port`.
    pub fn new(zone: &str, port: u16) -> Self {
        Self {
            zone: zone.to_string(),
            port,
        }
    }
}

impl Unbound {
    /// Starts unbound with its files in `dir`.
    ///
    /// `server_options` contains extra lines for the `server:` clause, such as
    /// `trust-anchor:` or `auto-trust-anchor-file:`, each indented by two
    /// spaces. Unbound logs to `dir/unbound.log`. Returns `None` after
    /// printing a skip notice when unbound is not installed. Panics when
    /// `stubs` is empty or unbound does not answer within 15 seconds; the
    /// panic message contains the log.
    pub fn start(test: &str, dir: &Path, stubs: &[Stub], server_options: &str) -> Option<Self> {
        let program = tool(test, "unbound")?;
        assert!(
            !stubs.is_empty(),
            "unbound needs at least one stub zone, or it would query the real root servers"
        );

        std::fs::create_dir_all(dir)
            .unwrap_or_else(|e| panic!("create unbound folder {}: {e}", dir.display()));
        let port = free_port();
        let config = config_text(dir, port, stubs, server_options);
        let config_path = dir.join("unbound.conf");
        std::fs::write(&config_path, config)
            .unwrap_or_else(|e| panic!("write {}: {e}", config_path.display()));

        let child = ChildGuard::spawn(
            "unbound",
            Command::new(&program)
                .arg("-d")
                .arg("-c")
                .arg(&config_path)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        );
        let unbound = Self {
            child,
            port,
            dir: dir.to_path_buf(),
        };

        let address = unbound.address();
        let up = wait_until(START_TIMEOUT, || responds(address));
        assert!(
            up,
            "unbound on {address} did not respond within {} s; log:\n{}",
            START_TIMEOUT.as_secs(),
            unbound.log()
        );
        Some(unbound)
    }

    /// Returns the port unbound listens on (UDP and TCP) at 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Returns the address unbound listens on.
    pub fn address(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Returns the process id.
    pub fn pid(&self) -> u32 {
        self.child.pid()
    }

    /// Returns the folder with the configuration, the log and any
    /// trust-anchor files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Returns the log so far, or an empty string when there is none yet.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("unbound.log")).unwrap_or_default()
    }
}

/// Builds the configuration: loopback only, validator and iterator, no
/// chroot, no privilege drop, and the stub zones.
fn config_text(dir: &Path, port: u16, stubs: &[Stub], server_options: &str) -> String {
    let dir = dir.display();
    let mut text = format!(
        "server:\n  interface: 127.0.0.1\n  port: {port}\n  do-ip6: no\n  \
         outgoing-interface: 127.0.0.1\n  do-not-query-localhost: no\n  \
         access-control: 127.0.0.0/8 allow\n  num-threads: 1\n  chroot: \"\"\n  \
         username: \"\"\n  directory: \"{dir}\"\n  pidfile: \"\"\n  use-syslog: no\n  \
         logfile: \"{dir}/unbound.log\"\n  module-config: \"validator iterator\"\n"
    );

    let mut stubs = stubs.to_vec();
    if !stubs
        .iter()
        .any(|stub| stub.zone == "." || stub.zone.is_empty())
    {
        stubs.push(Stub::new(".", stubs[0].port));
    }
    // Unbound serves its own local data for some special-use names, such as
    // `test.` and `invalid.` (RFC 6761), unless their default local zone is removed.
    for stub in stubs
        .iter()
        .filter(|stub| stub.zone != "." && !stub.zone.is_empty())
    {
        text.push_str(&format!("  local-zone: \"{}\" nodefault\n", stub.zone));
    }
    text.push_str(server_options);
    if !server_options.ends_with('\n') {
        text.push('\n');
    }

    for stub in &stubs {
        text.push_str(&format!(
            "stub-zone:\n  name: \"{}\"\n  stub-addr: 127.0.0.1@{}\n",
            stub.zone, stub.port
        ));
    }
    text
}

/// Sends `version.server. CH TXT` and returns true when a response with
/// the query's ID arrives within one second.
fn responds(address: SocketAddr) -> bool {
    const ID: [u8; 2] = [0x4b, 0x4d];
    let mut query = Vec::with_capacity(32);
    query.extend_from_slice(&ID);
    // Flags 0 (recursion not desired), one question, no other records.
    query.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in ["version", "server"] {
        query.push(label.len() as u8);
        query.extend_from_slice(label.as_bytes());
    }
    // Root label, type TXT (16), class CH (3).
    query.extend_from_slice(&[0, 0, 16, 0, 3]);
    let Ok(socket) = UdpSocket::bind("127.0.0.1:0") else {
        return false;
    };
    if socket
        .set_read_timeout(Some(Duration::from_secs(1)))
        .is_err()
        || socket.send_to(&query, address).is_err()
    {
        return false;
    }
    let mut buffer = [0u8; 512];
    matches!(socket.recv_from(&mut buffer), Ok((length, _)) if length >= 12 && buffer[..2] == ID)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_adds_root_stub_at_first_server() {
        let text = config_text(
            Path::new("/tmp/x"),
            5300,
            &[Stub::new("test.", 5301), Stub::new("child.test.", 5302)],
            "  val-log-level: 2",
        );
        assert!(text.contains("  port: 5300\n"), "{text}");
        assert!(text.contains("  val-log-level: 2\n"), "{text}");
        assert!(
            text.contains("name: \".\"\n  stub-addr: 127.0.0.1@5301\n"),
            "{text}"
        );
        assert!(
            text.contains("name: \"child.test.\"\n  stub-addr: 127.0.0.1@5302\n"),
            "{text}"
        );
        assert!(
            text.contains("  local-zone: \"test.\" nodefault\n"),
            "{text}"
        );
        assert!(!text.contains("local-zone: \".\""), "{text}");
    }

    #[test]
    fn unbound_responds_and_stops() {
        let dir = std::env::temp_dir().join(format!("keymaster-unbound-{}", std::process::id()));
        // The stub's port has no server, so unbound never receives a
        // response from upstream, but it still responds to `version.server`.
        let stubs = [Stub::new("test.", free_port())];
        let Some(unbound) = Unbound::start("unbound_responds_and_stops", &dir, &stubs, "") else {
            return;
        };
        let pid = unbound.pid();
        assert!(responds(unbound.address()));
        let config = std::fs::read_to_string(dir.join("unbound.conf")).unwrap();
        assert!(
            config.contains(&format!("port: {}\n", unbound.port())),
            "{config}"
        );
        drop(unbound);
        assert!(!Path::new(&format!("/proc/{pid}")).exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn config_keeps_caller_root_stub() {
        let text = config_text(
            Path::new("/tmp/x"),
            5300,
            &[Stub::new("test.", 5301), Stub::new(".", 5309)],
            "",
        );
        assert_eq!(text.matches("name: \".\"").count(), 1, "{text}");
        assert!(text.contains("stub-addr: 127.0.0.1@5309"), "{text}");
    }
}
