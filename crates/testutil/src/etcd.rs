//! A private single-member etcd on loopback.
//!
//! [`Etcd::start`] runs Debian's `etcd` with its client and peer URLs on
//! free ports of 127.0.0.1 and its data in `dir/etcd-data`, and waits until
//! `/health` responds. Its log goes to `dir/etcd.log`, which panic messages
//! quote. The process is killed by process id when the value is dropped;
//! [`Etcd::kill`] and [`Etcd::restart`] let a test take the cluster away and
//! bring it back with the same ports and data, and [`Etcd::pause`] freezes
//! it without closing its sockets. [`Etcd::start_tls`] serves clients over
//! TLS and requires a client certificate, with a CA, server and client
//! certificate made by `openssl` in `dir/tls`. Health is checked on a
//! separate plain-HTTP metrics port in both cases.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::{free_port, run, tool, wait_until, ChildGuard};

/// How long starting or restarting waits for `/health` to respond.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A running private etcd.
pub struct Etcd {
    program: PathBuf,
    child: Option<ChildGuard>,
    client_port: u16,
    peer_port: u16,
    metrics_port: u16,
    dir: PathBuf,
    tls: Option<TlsFiles>,
}

/// PEM files for an etcd started with [`Etcd::start_tls`].
#[derive(Clone, Debug)]
pub struct TlsFiles {
    /// The CA that signed the server and client certificates.
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    /// A certificate that etcd accepts from clients.
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

impl Etcd {
    /// Starts etcd with its data and log in `dir`.
    ///
    /// Returns `None` after printing a skip notice when etcd is not
    /// installed. Panics when it does not become healthy within 20 seconds;
    /// the message contains the log.
    pub fn start(test: &str, dir: &Path) -> Option<Self> {
        Self::start_with(test, dir, None)
    }

    /// Starts etcd like [`Etcd::start`], serving clients over TLS only and
    /// requiring a client certificate signed by the CA in [`Etcd::tls`].
    /// Also returns `None` when `openssl` is not installed.
    pub fn start_tls(test: &str, dir: &Path) -> Option<Self> {
        let openssl = tool(test, "openssl")?;
        let tls = make_certificates(&openssl, &dir.join("tls"));
        Self::start_with(test, dir, Some(tls))
    }

    fn start_with(test: &str, dir: &Path, tls: Option<TlsFiles>) -> Option<Self> {
        let program = tool(test, "etcd")?;
        std::fs::create_dir_all(dir)
            .unwrap_or_else(|e| panic!("create etcd folder {}: {e}", dir.display()));
        let mut ports = vec![free_port()];
        while ports.len() < 3 {
            let port = free_port();
            if !ports.contains(&port) {
                ports.push(port);
            }
        }
        let mut etcd = Self {
            program,
            child: None,
            client_port: ports[0],
            peer_port: ports[1],
            metrics_port: ports[2],
            dir: dir.to_path_buf(),
            tls,
        };
        etcd.launch();
        Some(etcd)
    }

    /// Returns the client URL, `http://127.0.0.1:PORT` (`https` with TLS).
    pub fn endpoint(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.client_port)
    }

    /// Returns the certificate files of an etcd started with TLS.
    pub fn tls(&self) -> Option<&TlsFiles> {
        self.tls.as_ref()
    }

    /// Returns the process id, or `None` after [`Etcd::kill`].
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(ChildGuard::pid)
    }

    /// Returns the folder with the data directory and the log.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Returns the log so far, or an empty string when there is none yet.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Kills etcd with SIGKILL and waits for it to exit.
    pub fn kill(&mut self) {
        // Dropping the guard kills the process by id and reaps it.
        self.child = None;
    }

    /// Kills etcd if it runs, then starts it again on the same ports with
    /// the same data, and waits until it is healthy.
    pub fn restart(&mut self) {
        self.kill();
        self.launch();
    }

    /// Stops etcd with SIGSTOP: its sockets stay open but nothing responds.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Lets a paused etcd run again with SIGCONT.
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let pid = self.pid().expect("etcd is not running");
        let output = run(Command::new("kill").arg(signal).arg(pid.to_string()));
        assert!(
            output.status.success(),
            "kill {signal} {pid}: {}",
            crate::output_text(&output)
        );
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join("etcd.log")
    }

    /// Starts the process and waits until `/health` reports healthy.
    fn launch(&mut self) {
        let log_path = self.log_path();
        let log = File::options()
            .create(true)
            .append(true)
            .open(&log_path)
            .unwrap_or_else(|e| panic!("open {}: {e}", log_path.display()));
        let log_err = log
            .try_clone()
            .unwrap_or_else(|e| panic!("open {}: {e}", log_path.display()));
        let client = self.endpoint();
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let mut command = Command::new(&self.program);
        if let Some(tls) = &self.tls {
            command
                .arg(format!("--cert-file={}", tls.server_cert.display()))
                .arg(format!("--key-file={}", tls.server_key.display()))
                .arg(format!("--trusted-ca-file={}", tls.ca.display()))
                .arg("--client-cert-auth");
        }
        let child = ChildGuard::spawn(
            "etcd",
            command
                .arg("--name=keymaster-test")
                .arg(format!(
                    "--data-dir={}",
                    self.dir.join("etcd-data").display()
                ))
                .arg(format!("--listen-client-urls={client}"))
                .arg(format!("--advertise-client-urls={client}"))
                .arg(format!("--listen-peer-urls={peer}"))
                .arg(format!("--initial-advertise-peer-urls={peer}"))
                .arg(format!("--initial-cluster=keymaster-test={peer}"))
                .arg("--initial-cluster-state=new")
                .arg(format!(
                    "--listen-metrics-urls=http://127.0.0.1:{}",
                    self.metrics_port
                ))
                .arg("--logger=zap")
                .arg("--log-outputs=stderr")
                .stdin(Stdio::null())
                .stdout(log)
                .stderr(log_err),
        );
        self.child = Some(child);

        let address = SocketAddr::from(([127, 0, 0, 1], self.metrics_port));
        let healthy = wait_until(START_TIMEOUT, || is_healthy(address));
        assert!(
            healthy,
            "etcd on {address} was not healthy within {} s; log {}:\n{}",
            START_TIMEOUT.as_secs(),
            log_path.display(),
            self.log()
        );
    }
}

/// Starts a private etcd in `dir/etcd` as [`Etcd::start`] does, or prints
/// a skip notice for `test` and returns `None` when etcd is not installed.
pub fn start_etcd(test: &str, dir: &Path) -> Option<Etcd> {
    Etcd::start(test, &dir.join("etcd"))
}

/// Makes a CA, a server certificate for IP address 127.0.0.1 and a client
/// certificate, all ECDSA P-256, valid for two days.
fn make_certificates(openssl: &Path, dir: &Path) -> TlsFiles {
    std::fs::create_dir_all(dir)
        .unwrap_or_else(|e| panic!("create TLS folder {}: {e}", dir.display()));
    let files = TlsFiles {
        ca: dir.join("ca.pem"),
        server_cert: dir.join("server.pem"),
        server_key: dir.join("server.key"),
        client_cert: dir.join("client.pem"),
        client_key: dir.join("client.key"),
    };
    let openssl_run = |args: &[&str]| {
        let output = run(Command::new(openssl).current_dir(dir).args(args));
        assert!(
            output.status.success(),
            "openssl {}: {}",
            args.join(" "),
            crate::output_text(&output)
        );
    };
    let new_key = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];

    // The CA signs both leaf certificates.
    let ca_subject = ["-subj", "/CN=keymaster test CA", "-days", "2"];
    let ca_out = ["-keyout", "ca.key", "-out", "ca.pem"];
    openssl_run(&[&["req", "-x509"][..], &new_key, &ca_out, &ca_subject].concat());
    for (name, subject, usage) in [
        (
            "server",
            "/CN=127.0.0.1",
            "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth",
        ),
        (
            "client",
            "/CN=keymaster test client",
            "extendedKeyUsage=clientAuth",
        ),
    ] {
        let (key, csr, pem, ext) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.pem"),
            format!("{name}.ext"),
        );
        std::fs::write(dir.join(&ext), usage).unwrap_or_else(|e| panic!("write {ext}: {e}"));
        let request = ["-keyout", &key, "-out", &csr, "-subj", subject];
        openssl_run(&[&["req"][..], &new_key, &request].concat());
        openssl_run(&[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            &pem,
            "-days",
            "2",
            "-extfile",
            &ext,
        ]);
    }
    files
}

/// Sends `GET /health` and returns true when the response reports healthy.
fn is_healthy(address: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&address, Duration::from_secs(1)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response.starts_with("HTTP/1.1 200") && response.contains("\"health\":\"true\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etcd_starts_restarts_and_stops() {
        let dir = std::env::temp_dir().join(format!("keymaster-etcd-{}", std::process::id()));
        let Some(mut etcd) = Etcd::start("etcd_starts_restarts_and_stops", &dir) else {
            return;
        };
        let address: SocketAddr = etcd.endpoint()["http://".len()..].parse().unwrap();
        assert!(is_healthy(address));

        let first = etcd.pid().unwrap();
        etcd.kill();
        assert!(!Path::new(&format!("/proc/{first}")).exists());
        assert!(!is_healthy(address));

        etcd.restart();
        assert!(is_healthy(address));
        let second = etcd.pid().unwrap();
        drop(etcd);
        assert!(!Path::new(&format!("/proc/{second}")).exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
