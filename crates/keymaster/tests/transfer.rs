//! Zone transfer tests: `keymaster serve` sends its signed zones to dig,
//! kdig and a BIND secondary over loopback, with and without TSIG, and
//! the transferred zones are checked by dnssec-verify and ldns-verify-zone
//! and compared with the signed version keymaster saved.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use keymaster_testutil::dns::canonical_records;
use keymaster_testutil::named::{loopback_options, Named};
use keymaster_testutil::{free_port, output_text, run, tool, wait_until, ChildGuard};

/// A TSIG secret for the tests (32 octets in base64).
const SECRET: &str = "pRP5FapFoJ95JEL06sv4PQ2mVQeq/pqW8nxSPlvFHAo=";
/// The same length, another secret.
const WRONG_SECRET: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
const KEY_NAME: &str = "transfer-key";

fn keymaster() -> Command {
    Command::new(env!("CARGO_BIN_EXE_keymaster"))
}

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

/// A running `keymaster serve`, stopped by process id when dropped.
struct Daemon {
    _child: ChildGuard,
    data_dir: PathBuf,
    port: u16,
}

impl Daemon {
    /// Starts the daemon with `allow_transfer` and one TSIG key, serving
    /// `zone` from `file`, and waits until the zone is published.
    fn start(dir: &Path, allow_transfer: &str, zone: &str, file: &Path) -> Self {
        let port = free_port();
        let data_dir = dir.join("data");
        let config = format!(
            "version = 1\n[server]\nname = \"test1\"\nlisten = [\"127.0.0.1:{port}\"]\n\
             control = \"127.0.0.1:{control}\"\ndata_dir = \"{data}\"\n\
             allow_transfer = {allow_transfer}\n\n\
             [[tsig_key]]\nname = \"{KEY_NAME}\"\nalgorithm = \"hmac-sha256\"\nsecret = \"{SECRET}\"\n\n\
             [[zone]]\nname = \"{zone}\"\nfile = \"{file}\"\n",
            control = free_port(),
            data = data_dir.display(),
            file = file.display(),
        );
        let config_path = dir.join("keymaster.toml");
        std::fs::write(&config_path, config).unwrap();
        let log = dir.join("serve.log");
        let mut command = keymaster();
        command
            .arg("serve")
            .arg("--config")
            .arg(&config_path)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        let daemon = Self {
            _child: ChildGuard::spawn("keymaster serve", &mut command),
            data_dir,
            port,
        };
        let ready = wait_until(Duration::from_secs(60), || {
            daemon.saved_zone(zone).is_some()
        });
        assert!(
            ready,
            "keymaster did not publish {zone}: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        daemon
    }

    /// Returns the signed version keymaster saved for `zone`.
    fn saved_zone(&self, zone: &str) -> Option<PathBuf> {
        let entries = std::fs::read_dir(self.data_dir.join("signed")).ok()?;
        entries
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .find(|path| {
                let name = path.file_name().unwrap().to_string_lossy().to_string();
                name.starts_with(zone.trim_end_matches('.')) && name.ends_with(".zone")
            })
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    fn log(&self) -> String {
        let dir = self.data_dir.parent().unwrap();
        std::fs::read_to_string(dir.join("serve.log")).unwrap_or_default()
    }
}

/// Runs dig against the daemon and returns its output.
fn dig(test: &str, port: u16, args: &[&str]) -> Option<String> {
    let dig = tool(test, "dig")?;
    let output = run(Command::new(dig)
        .args(["@127.0.0.1", "-p", &port.to_string(), "+time=5", "+tries=1"])
        .args(args));
    Some(output_text(&output))
}

/// Runs kdig against the daemon and returns its output.
fn kdig(test: &str, port: u16, args: &[&str]) -> Option<String> {
    let kdig = tool(test, "kdig")?;
    let output = run(Command::new(kdig)
        .args(["@127.0.0.1", "-p", &port.to_string(), "+time=5", "+retry=0"])
        .args(args));
    Some(output_text(&output))
}

/// Checks a zone file with dnssec-verify and ldns-verify-zone.
fn verify_signed(test: &str, zone: &str, file: &Path) {
    if let Some(verify) = tool(test, "dnssec-verify") {
        let result = run(Command::new(verify).arg("-o").arg(zone).arg(file));
        assert!(
            result.status.success(),
            "dnssec-verify rejected the transferred zone: {}",
            output_text(&result)
        );
    }
    if let Some(ldns) = tool(test, "ldns-verify-zone") {
        let result = run(Command::new(ldns).arg(file));
        assert!(
            result.status.success(),
            "ldns-verify-zone rejected the transferred zone: {}",
            output_text(&result)
        );
    }
}

/// Transfers `zone` with dig, writes it to `dir`, and checks it against the
/// saved signed version and the validators. Returns dig's output.
fn transfer_and_compare(test: &str, daemon: &Daemon, dir: &Path, zone: &str) -> Option<String> {
    let text = dig(test, daemon.port, &["+onesoa", "+nocmd", zone, "AXFR"])?;
    assert!(!text.contains("Transfer failed"), "{text}");
    let transferred = dir.join("transferred.zone");
    std::fs::write(&transferred, &text).unwrap();
    verify_signed(test, zone, &transferred);

    let saved = daemon.saved_zone(zone).expect("a saved signed zone");
    let compile = tool(test, "named-compilezone")?;
    let got = canonical_records(&compile, zone, &transferred);
    let expected = canonical_records(&compile, zone, &saved);
    assert_eq!(got.len(), expected.len(), "record counts differ");
    for (got, expected) in got.iter().zip(&expected) {
        assert_eq!(got, expected);
    }
    Some(text)
}

/// Returns the number in dig's "XFR size: N records (messages M, ...)".
fn xfr_messages(dig_output: &str) -> usize {
    let line = dig_output
        .lines()
        .find(|line| line.contains("XFR size"))
        .unwrap_or_else(|| panic!("no XFR size line: {dig_output}"));
    let after = line.split("messages ").nth(1).unwrap();
    after.split(',').next().unwrap().trim().parse().unwrap()
}

#[test]
fn axfr_from_loopback_matches_signed_zone() {
    let test = "axfr_from_loopback_matches_signed_zone";
    let dir = tempfile::tempdir().unwrap();
    let zone = examples().join("example.com.zone");
    let daemon = Daemon::start(dir.path(), "[\"127.0.0.0/8\"]", "example.com", &zone);
    let Some(text) = transfer_and_compare(test, &daemon, dir.path(), "example.com.") else {
        return;
    };
    // CDS and CDNSKEY appear only when the policy publishes them, and the
    // comparison above covers them when they do.
    for rtype in ["RRSIG", "NSEC3", "NSEC3PARAM", "DNSKEY"] {
        let present = text
            .lines()
            .any(|line| line.split_whitespace().nth(3) == Some(rtype));
        assert!(present, "no {rtype} in the transfer: {text}");
    }
    let log = daemon.log();
    assert!(
        log.contains("sent zone example.com. serial"),
        "no transfer log line: {log}"
    );
}

#[test]
fn axfr_of_large_zone_spans_messages() {
    let test = "axfr_of_large_zone_spans_messages";
    let dir = tempfile::tempdir().unwrap();
    let zone = dir.path().join("big.zone");
    let mut text = String::from("$TTL 3600\n@ SOA ns hostmaster 1 7200 3600 1209600 3600\n");
    text.push_str("@ NS ns\nns A 192.0.2.1\nsub NS ns.sub\nns.sub A 192.0.2.2\n");
    for host in 0..4000 {
        text.push_str(&format!("h{host} A 10.0.{}.{}\n", host / 256, host % 256));
        text.push_str(&format!("h{host} TXT \"host number {host}\"\n"));
    }
    std::fs::write(&zone, text).unwrap();
    let daemon = Daemon::start(dir.path(), "[\"127.0.0.1/32\", \"::1\"]", "big.test", &zone);
    let Some(output) = transfer_and_compare(test, &daemon, dir.path(), "big.test.") else {
        return;
    };
    assert!(xfr_messages(&output) > 5, "{}", xfr_messages(&output));
}

#[test]
fn tsig_allows_transfer_outside_networks() {
    let test = "tsig_allows_transfer_outside_networks";
    let dir = tempfile::tempdir().unwrap();
    let zone = examples().join("example.com.zone");
    let daemon = Daemon::start(dir.path(), "[]", "example.com", &zone);
    let port = daemon.port;

    let key = format!("hmac-sha256:{KEY_NAME}:{SECRET}");
    let Some(signed) = kdig(test, port, &["-y", &key, "example.com", "AXFR"]) else {
        return;
    };
    assert!(signed.contains("DNSKEY"), "{signed}");
    assert!(signed.contains("RRSIG"), "{signed}");
    assert!(!signed.contains(";; WARNING"), "{signed}");
    assert!(!signed.contains(";; ERROR"), "{signed}");
    let tsig = signed.lines().find(|line| line.contains("TSIG"));
    assert!(
        tsig.is_some_and(|line| line.contains("NOERROR")),
        "{signed}"
    );
    assert!(
        daemon.log().contains("key=transfer-key."),
        "the transfer log line lacks the key name: {}",
        daemon.log()
    );

    let unsigned = kdig(test, port, &["example.com", "AXFR"]).unwrap();
    assert!(unsigned.contains("REFUSED"), "{unsigned}");
    assert!(!unsigned.contains("DNSKEY"), "{unsigned}");

    let wrong = format!("hmac-sha256:{KEY_NAME}:{WRONG_SECRET}");
    let bad = dig(test, port, &["-y", &wrong, "example.com", "AXFR"]).unwrap();
    assert!(!bad.contains("DNSKEY"), "{bad}");
    let bad = kdig(test, port, &["-y", &wrong, "example.com", "AXFR"]).unwrap();
    assert!(!bad.contains("DNSKEY"), "{bad}");
    assert!(bad.contains("error 'BADSIG'"), "{bad}");
    let bad = dig(test, port, &["-y", &wrong, "example.com", "SOA"]).unwrap();
    assert!(bad.contains("status: NOTAUTH"), "{bad}");
    let unknown = format!("hmac-sha256:other-key:{SECRET}");
    let bad = kdig(test, port, &["-y", &unknown, "example.com", "AXFR"]).unwrap();
    assert!(!bad.contains("DNSKEY"), "{bad}");
    assert!(bad.contains("error 'BADKEY'"), "{bad}");

    let log = daemon.log();
    assert!(log.contains("refused a zone transfer"), "{log}");
    assert!(!log.contains(SECRET), "the log shows the secret");
}

/// Sends one message over UDP and returns the response.
fn exchange_udp(server: SocketAddr, message: &[u8]) -> Option<Vec<u8>> {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    socket.send_to(message, server).unwrap();
    let mut buffer = vec![0u8; 65535];
    let (len, _) = socket.recv_from(&mut buffer).ok()?;
    buffer.truncate(len);
    Some(buffer)
}

/// Sends raw octets with a length prefix over TCP and returns the first
/// response, if one comes.
fn exchange_tcp(server: SocketAddr, message: &[u8]) -> Option<Vec<u8>> {
    let mut stream = TcpStream::connect(server).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let mut framed = (message.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(message);
    stream.write_all(&framed).ok()?;
    let mut length = [0u8; 2];
    stream.read_exact(&mut length).ok()?;
    let mut response = vec![0u8; usize::from(u16::from_be_bytes(length))];
    stream.read_exact(&mut response).ok()?;
    Some(response)
}

/// Builds a query with one question for example.com.
fn query(qtype: u16, class: u16) -> Vec<u8> {
    let mut message = vec![0x5a, 0x5a, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    message.extend_from_slice(b"\x07example\x03com\x00");
    message.extend_from_slice(&qtype.to_be_bytes());
    message.extend_from_slice(&class.to_be_bytes());
    message
}

#[test]
fn udp_and_malformed_transfer_requests() {
    let test = "udp_and_malformed_transfer_requests";
    let dir = tempfile::tempdir().unwrap();
    let zone = examples().join("example.com.zone");
    let daemon = Daemon::start(dir.path(), "[\"127.0.0.0/8\"]", "example.com", &zone);
    let server = daemon.addr();

    // AXFR over UDP: NOTIMP (RCODE 4).
    let response = exchange_udp(server, &query(252, 1)).expect("a UDP response");
    assert_eq!(response[3] & 0x0f, 4, "{response:?}");

    // IXFR over UDP from the current serial: the SOA alone.
    let Some(soa) = dig(test, daemon.port, &["+short", "example.com", "SOA"]) else {
        return;
    };
    let serial: u32 = soa.split_whitespace().nth(2).unwrap().parse().unwrap();
    let current = dig(
        test,
        daemon.port,
        &["+notcp", &format!("IXFR={serial}"), "example.com"],
    )
    .unwrap();
    let records = |text: &str| {
        let lines = text
            .lines()
            .filter(|line| !line.starts_with(';') && !line.is_empty());
        lines.map(str::to_string).collect::<Vec<_>>()
    };
    assert!(current.contains("(UDP)"), "{current}");
    assert_eq!(records(&current).len(), 1, "{current}");
    assert!(records(&current)[0].contains("SOA"), "{current}");
    // From an older serial over UDP: the SOA with TC set, so that the
    // client retries over TCP.
    let mut ixfr = query(251, 1);
    ixfr[9] = 1;
    ixfr.extend_from_slice(&[0xc0, 12, 0, 6, 0, 1, 0, 0, 0, 0, 0, 22, 0, 0]);
    ixfr.extend_from_slice(&(serial - 1).to_be_bytes());
    ixfr.extend_from_slice(&[0; 16]);
    let older = exchange_udp(server, &ixfr).expect("a UDP response");
    assert_eq!(older[2] & 0x02, 0x02, "no TC flag: {older:?}");
    assert_eq!(older[3] & 0x0f, 0, "{older:?}");
    assert_eq!(&older[6..8], &[0, 1], "ANCOUNT is not 1: {older:?}");

    // Malformed requests: cut short, two questions, class CH.
    let axfr = query(252, 1);
    for len in [1, 11, 12, 15, axfr.len() - 1] {
        let _ = exchange_tcp(server, &axfr[..len]);
        let _ = exchange_udp(server, &axfr[..len]);
    }
    let mut two = axfr.clone();
    two[5] = 2;
    two.extend_from_slice(&axfr[12..]);
    let response = exchange_tcp(server, &two).expect("a response to two questions");
    assert_eq!(response[3] & 0x0f, 1, "FORMERR expected: {response:?}");
    let response = exchange_tcp(server, &query(252, 3)).expect("a response to class CH");
    assert_eq!(response[3] & 0x0f, 5, "REFUSED expected: {response:?}");

    // The server still transfers the zone afterwards.
    let after = dig(test, daemon.port, &["+onesoa", "example.com", "AXFR"]).unwrap();
    assert!(after.contains("DNSKEY"), "{after}");
}

#[test]
fn bind_secondary_transfers_with_tsig() {
    let test = "bind_secondary_transfers_with_tsig";
    let dir = tempfile::tempdir().unwrap();
    let zone = examples().join("example.com.zone");
    let daemon = Daemon::start(dir.path(), "[]", "example.com", &zone);

    let named_dir = dir.path().join("named");
    std::fs::create_dir_all(&named_dir).unwrap();
    let conf = format!(
        "{options}\
         key \"{KEY_NAME}\" {{ algorithm hmac-sha256; secret \"{SECRET}\"; }};\n\
         server 127.0.0.1/32 {{ keys {{ \"{KEY_NAME}\"; }}; }};\n\
         zone \"example.com\" {{\n  type secondary;\n  file \"example.com.db\";\n  \
         primaries port {port} {{ 127.0.0.1 key \"{KEY_NAME}\"; }};\n}};\n",
        options = loopback_options(""),
        port = daemon.port,
    );
    let Some(named) = Named::start(test, &named_dir, &conf) else {
        return;
    };
    let done = named.wait_for_log("Transfer completed", Duration::from_secs(30));
    assert!(done, "named did not transfer the zone: {}", named.log());

    let query = [
        "+dnssec",
        "+norec",
        "+nocmd",
        "+noall",
        "+answer",
        "www.example.com",
        "A",
    ];
    let Some(ours) = dig(test, daemon.port, &query) else {
        return;
    };
    let theirs = dig(test, named.port(), &query).unwrap();
    let rrsig = |text: &str| -> Vec<String> {
        let mut lines: Vec<String> = text
            .lines()
            .filter(|line| line.contains("RRSIG"))
            .map(|line| line.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        lines.sort();
        lines
    };
    assert!(!rrsig(&ours).is_empty(), "{ours}");
    assert_eq!(rrsig(&ours), rrsig(&theirs));
}
