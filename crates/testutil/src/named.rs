//! A private BIND `named` for tests.
//!
//! [`Named::start`] writes the caller's `named.conf` into a directory the
//! caller owns, starts `/usr/sbin/named` in the foreground (`-g`, so it logs
//! to standard error, which goes to `named.log` in that directory), waits
//! until it has loaded its zones and responds to a query on 127.0.0.1, and stops
//! it by process id when dropped.
//!
//! The configuration text may contain two placeholders: `@PORT@` becomes the
//! free loopback port chosen for this instance and `@DIR@` the directory.
//! [`loopback_options`] returns an `options` block that keeps the server on
//! 127.0.0.1 and stops it from sending any query or NOTIFY elsewhere; a
//! caller writing its own block must keep those settings.
//!
//! Limitations: there is no `rndc`. Reloading uses SIGHUP (see
//! [`Named::reload`]), and dynamic zones can be changed with `nsupdate`.

use std::fs::File;
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::{free_port, tool, wait_until, ChildGuard};

/// How long `named` may take to load its zones and respond to a query.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// How long `named` may take to exit after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// Ports tried when the first free port is taken before `named` binds it.
const START_ATTEMPTS: usize = 3;

/// Returns an `options` block and `server` statements for a test instance.
///
/// The server listens on 127.0.0.1 port `@PORT@` only, does not recurse or
/// validate, sends no NOTIFY, and treats every remote server as bogus, so it
/// never queries the root servers or any other address. `extra` is inserted
/// inside the `options` block (for example `"allow-transfer { any; };"`).
pub fn loopback_options(extra: &str) -> String {
    format!(
        r#"options {{
    directory "@DIR@";
    pid-file none;
    session-keyfile none;
    managed-keys-directory "@DIR@";
    listen-on port @PORT@ {{ 127.0.0.1; }};
    listen-on-v6 {{ none; }};
    recursion no;
    dnssec-validation no;
    notify no;
    {extra}
}};
server 0.0.0.0/0 {{ bogus yes; }};
server ::/0 {{ bogus yes; }};
controls {{ }};
"#
    )
}

/// A running `named` process, stopped by process id when dropped.
pub struct Named {
    child: ChildGuard,
    port: u16,
    dir: PathBuf,
}

impl Named {
    /// Starts `named` with `conf` (placeholders replaced) in `dir`.
    ///
    /// Zone files the configuration names must already be in `dir`. Returns
    /// `None` after printing a skip notice when `named` is not installed.
    /// Panics with the end of `named`'s log when it exits or does not respond
    /// within 30 seconds.
    pub fn start(test: &str, dir: &Path, conf: &str) -> Option<Self> {
        let program = tool(test, "named")?;
        for attempt in 1..=START_ATTEMPTS {
            let port = free_port();
            let text = conf
                .replace("@PORT@", &port.to_string())
                .replace("@DIR@", &dir.display().to_string());
            let conf_path = dir.join("named.conf");
            std::fs::write(&conf_path, text)
                .unwrap_or_else(|e| panic!("write {}: {e}", conf_path.display()));
            let log = File::create(dir.join("named.log")).expect("create named.log");

            let mut command = Command::new(&program);
            command
                .args(["-g", "-4", "-n", "1", "-c"])
                .arg(&conf_path)
                .current_dir(dir)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log);
            let mut named = Self {
                child: ChildGuard::spawn("named", &mut command),
                port,
                dir: dir.to_path_buf(),
            };
            match named.wait_ready() {
                Ok(()) => return Some(named),
                Err(reason) => {
                    let log = named.log();
                    drop(named);
                    if attempt < START_ATTEMPTS && log.contains("address in use") {
                        continue;
                    }
                    panic!("named {reason}. End of its log:\n{}", tail(&log, 40));
                }
            }
        }
        unreachable!("the last attempt returns or panics")
    }

    /// Returns the loopback port `named` listens on (UDP and TCP).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Returns 127.0.0.1 with [`Named::port`].
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Returns the directory containing `named.conf`, zone files and the log.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Returns the process id.
    pub fn pid(&self) -> u32 {
        self.child.pid()
    }

    /// Returns everything `named` has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("named.log")).unwrap_or_default()
    }

    /// Waits until the log contains `needle`, or returns false after `timeout`.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> bool {
        wait_until(timeout, || self.log().contains(needle))
    }

    /// Sends SIGHUP, which makes `named` reread its configuration and any
    /// zone file that changed.
    pub fn reload(&self) {
        signal(self.pid(), "-HUP");
    }

    /// Waits until the log shows the server is running and a query on its
    /// port gets a response.
    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + START_TIMEOUT;
        let mut running = false;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.child.try_wait() {
                return Err(format!("exited with {status}"));
            }
            running = running || self.log().lines().any(|line| line.ends_with(" running"));
            if running && responds(self.addr()) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(format!(
            "did not answer on {} within {START_TIMEOUT:?}",
            self.addr()
        ))
    }
}

impl Drop for Named {
    /// Sends SIGTERM and waits up to 5 seconds for a clean exit. Then the
    /// `ChildGuard` kills the process if it is still running.
    fn drop(&mut self) {
        if let Ok(None) = self.child.child.try_wait() {
            signal(self.pid(), "-TERM");
            wait_until(STOP_TIMEOUT, || {
                !matches!(self.child.child.try_wait(), Ok(None))
            });
        }
    }
}

/// Sends a signal to one process with `kill`.
fn signal(pid: u32, signal: &str) {
    let _ = Command::new("kill")
        .arg(signal)
        .arg(pid.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Sends one non-recursive SOA query for the root over UDP and reports
/// whether a response with the same ID came back within 200 ms.
fn responds(addr: SocketAddr) -> bool {
    const ID: [u8; 2] = [0x4b, 0x4d];
    let mut query = Vec::with_capacity(17);
    query.extend_from_slice(&ID);
    query.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0, 0]); // flags, QD=1
    query.extend_from_slice(&[0, 0, 6, 0, 1]); // root name, type SOA, class IN

    let Ok(socket) = UdpSocket::bind("127.0.0.1:0") else {
        return false;
    };
    if socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .is_err()
        || socket.send_to(&query, addr).is_err()
    {
        return false;
    }
    let mut buffer = [0u8; 512];
    match socket.recv_from(&mut buffer) {
        Ok((len, from)) => from == addr && len >= 12 && buffer[..2] == ID && buffer[2] & 0x80 != 0,
        Err(_) => false,
    }
}

/// Returns the last `count` lines of `text`.
fn tail(text: &str, count: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(count)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_answers_and_stops() {
        let dir = std::env::temp_dir().join(format!("keymaster-named-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("test.zone"),
            "$TTL 300\n@ SOA ns.test. host.test. 7 3600 600 86400 300\n@ NS ns.test.\nns A 127.0.0.1\n",
        )
        .unwrap();
        let conf = loopback_options("") + "zone \"test.\" { type primary; file \"test.zone\"; };\n";
        let Some(named) = Named::start("named_answers_and_stops", &dir, &conf) else {
            return;
        };
        let pid = named.pid();
        assert!(responds(named.addr()));
        assert!(named.log().contains("zone test/IN: loaded serial 7"));
        assert!(std::fs::read_to_string(dir.join("named.conf"))
            .unwrap()
            .contains(&format!("port {}", named.port())));

        drop(named);
        assert!(!Path::new(&format!("/proc/{pid}")).exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
