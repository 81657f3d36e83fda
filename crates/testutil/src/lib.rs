//! Helpers shared by keymaster's tests.
//!
//! Test data lives in a `shared/testdata` folder beside the repository
//! checkout. Tests that need it call [`testdata`] and return early when it
//! is absent; the skip is printed loudly so that a green run without the
//! data is not mistaken for a full one.

pub mod cli;
pub mod dns;
pub mod etcd;
#[cfg(feature = "history")]
pub mod history;
pub mod member;
pub mod named;
pub mod tools;
pub mod unbound;

use std::collections::BTreeSet;
use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Returns the test data folder, or prints a skip notice and returns `None`.
pub fn testdata(test: &str) -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/testdata");
    match root.canonicalize() {
        Ok(path) if path.is_dir() => Some(path),
        _ => {
            eprintln!(
                "\n*** SKIPPED {test}: test data folder {} is missing ***\n",
                root.display()
            );
            None
        }
    }
}

/// Returns the path of an external tool, or prints a skip notice.
pub fn tool(test: &str, name: &str) -> Option<PathBuf> {
    for dir in ["/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin"] {
        let path = Path::new(dir).join(name);
        if path.is_file() {
            return Some(path);
        }
    }
    eprintln!("\n*** SKIPPED {test}: {name} is not installed ***\n");
    None
}

/// Returns a loopback port that is free for both UDP and TCP right now.
///
/// The kernel may hand the same ephemeral port to two binds in a row once
/// the first socket is closed, so a port is never returned twice within
/// one test process.
pub fn free_port() -> u16 {
    static HANDED_OUT: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    let mut handed_out = HANDED_OUT
        .lock()
        .unwrap_or_else(|poison| poison.into_inner());
    for _ in 0..256 {
        let tcp = TcpListener::bind("127.0.0.1:0").expect("bind a loopback TCP socket");
        let port = tcp.local_addr().expect("local address").port();
        if handed_out.contains(&port) {
            continue;
        }
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            handed_out.insert(port);
            return port;
        }
    }
    panic!("no new loopback port free for both UDP and TCP after 256 tries");
}

/// A child process that is killed (by process id) when dropped.
pub struct ChildGuard {
    pub child: Child,
    pub name: String,
}

impl ChildGuard {
    /// Starts `command` and wraps the child.
    pub fn spawn(name: &str, command: &mut Command) -> Self {
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("start {name}: {e}"));
        Self {
            child,
            name: name.to_string(),
        }
    }

    /// Returns the process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `check` every 50 ms until it returns true or `timeout` passes.
pub fn wait_until(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    check()
}

/// Runs `command` to its end with standard input closed.
///
/// Panics when the program cannot be started.
pub fn run(command: &mut Command) -> Output {
    command
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|error| panic!("failed to run {command:?}: {error}"))
}

/// Returns a finished command's standard output followed by its standard
/// error, as text for assertion messages.
pub fn output_text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Returns the lines of `log` that contain `text`.
pub fn lines_with<'a>(log: &'a str, text: &str) -> Vec<&'a str> {
    log.lines().filter(|line| line.contains(text)).collect()
}
