//! Tests of the parent DS check against private BIND `named` instances and
//! hand-written responders on 127.0.0.1, and of the DS command runner.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use keymaster::parent::{
    check_parent, find_parent_servers, query_ds, run_ds_command, DsCommandError, DsRecord,
    ParentError, ParentView,
};
use keymaster_keys::{ds_rdata, Algorithm, DigestType, KeyPair};
use keymaster_lifecycle::ParentDs;
use keymaster_testutil::named::{loopback_options, Named};
use keymaster_testutil::{free_port, tool};
use keymaster_zone::{parse_name, Name};

const TIMEOUT: Duration = Duration::from_secs(3);

fn name(text: &str) -> Name {
    parse_name(text, &Name::root()).unwrap()
}

fn child() -> Name {
    name("child.test.")
}

/// A KSK of `child.test.` with its id, DNSKEY RDATA and SHA-256 DS record.
struct Ksk {
    id: String,
    dnskey: Vec<u8>,
    ds: DsRecord,
}

impl Ksk {
    fn generate(id: &str) -> Self {
        let pair = KeyPair::generate(Algorithm::EcdsaP256Sha256, None).unwrap();
        let dnskey = pair.dnskey_rdata(257).to_vec();
        Self {
            id: id.to_owned(),
            ds: ds_record(&dnskey, DigestType::Sha256),
            dnskey,
        }
    }

    /// Returns the DS line for a master file or `nsupdate`.
    fn ds_line(&self, ttl: u32) -> String {
        format!("child.test. {ttl} IN DS {}", self.ds)
    }
}

fn ds_record(dnskey: &[u8], digest: DigestType) -> DsRecord {
    let rdata = ds_rdata(&child(), dnskey, digest);
    DsRecord {
        key_tag: u16::from_be_bytes([rdata[0], rdata[1]]),
        algorithm: rdata[2],
        digest_type: rdata[3],
        digest: rdata[4..].to_vec(),
    }
}

fn key_list(keys: &[&Ksk]) -> Vec<(String, Vec<u8>)> {
    keys.iter()
        .map(|key| (key.id.clone(), key.dnskey.clone()))
        .collect()
}

/// Returns the parent zone `test.`: a delegation to `child.test.` with `ds_lines`,
/// and name server records for [`find_parent_servers`] that point at
/// documentation addresses, which no test queries.
fn parent_zone(ds_lines: &[String]) -> String {
    let mut text = String::from(
        "$TTL 300\n\
         @ SOA ns1.test. hostmaster.test. 1 3600 600 86400 300\n\
         @ NS ns1.test.\n\
         @ NS ns2.test.\n\
         ns1 A 192.0.2.1\n\
         ns1 AAAA 2001:db8::1\n\
         ns2 A 192.0.2.2\n\
         child NS ns.child.test.\n\
         ns.child A 192.0.2.53\n\
         a.b.c NS ns.child.test.\n",
    );
    for line in ds_lines {
        text.push_str(line);
        text.push('\n');
    }
    text
}

/// Starts `named` serving `zone_text` as the dynamic zone `test.`.
fn start_parent(test: &str, dir: &Path, zone_text: &str) -> Option<Named> {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("test.zone"), zone_text).unwrap();
    let conf = loopback_options("")
        + "zone \"test.\" { type primary; file \"test.zone\"; allow-update { 127.0.0.1; }; };\n";
    Named::start(test, dir, &conf)
}

/// Sends `commands` to `named` with `nsupdate` and asserts that it succeeded.
fn nsupdate(nsupdate: &Path, named: &Named, commands: &[String]) {
    let mut script = format!("server 127.0.0.1 {}\nzone test.\n", named.port());
    for command in commands {
        script.push_str(command);
        script.push('\n');
    }
    script.push_str("send\n");
    let mut child = Command::new(nsupdate)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "nsupdate failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Returns a loopback address where nothing listens right now.
fn closed_port() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], free_port()))
}

#[test]
fn query_ds_reads_bind_answers() {
    let test = "query_ds_reads_bind_answers";
    let temp = tempfile::tempdir().unwrap();
    let (first, second) = (Ksk::generate("first"), Ksk::generate("second"));
    let sha384 = ds_record(&first.dnskey, DigestType::Sha384);
    let lines = [
        first.ds_line(3600),
        second.ds_line(3600),
        format!("child.test. 3600 IN DS {sha384}"),
    ];
    let Some(named) = start_parent(test, temp.path(), &parent_zone(&lines)) else {
        return;
    };

    let rrset = query_ds(&child(), named.addr(), TIMEOUT).unwrap();
    let mut expected = vec![first.ds.clone(), second.ds.clone(), sha384];
    expected.sort();
    assert_eq!(rrset.records, expected);
    assert_eq!(rrset.ttl, Some(3600));

    // Upper case in the zone name does not matter.
    let upper = query_ds(&name("CHILD.Test."), named.addr(), TIMEOUT).unwrap();
    assert_eq!(upper.records, expected);
}

#[test]
fn query_ds_errors_from_bind() {
    let test = "query_ds_errors_from_bind";
    let temp = tempfile::tempdir().unwrap();
    let Some(named) = start_parent(test, temp.path(), &parent_zone(&[])) else {
        return;
    };

    let unsigned = query_ds(&child(), named.addr(), TIMEOUT).unwrap();
    assert!(unsigned.records.is_empty());
    assert_eq!(unsigned.ttl, None);

    let missing = query_ds(&name("missing.test."), named.addr(), TIMEOUT).unwrap_err();
    assert!(matches!(missing, ParentError::NxDomain { .. }), "{missing}");

    // BIND refuses queries for zones it does not serve.
    let elsewhere = query_ds(&name("child.example."), named.addr(), TIMEOUT).unwrap_err();
    assert!(
        matches!(elsewhere, ParentError::Rcode { .. }),
        "{elsewhere}"
    );

    let down = closed_port();
    let error = query_ds(&child(), down, TIMEOUT).unwrap_err();
    assert!(matches!(error, ParentError::Io { .. }), "{error}");
    assert!(error.to_string().contains(&down.to_string()), "{error}");
}

#[test]
fn check_parent_follows_bind_updates() {
    let test = "check_parent_follows_bind_updates";
    let Some(nsupdate_path) = tool(test, "nsupdate") else {
        return;
    };
    let temp = tempfile::tempdir().unwrap();
    let (old, new, retired) = (
        Ksk::generate("old"),
        Ksk::generate("new"),
        Ksk::generate("retired"),
    );
    let stray = Ksk::generate("stray");

    // Server one serves old and new, server two new and a DS of no key.
    let one_lines = [old.ds_line(3600), new.ds_line(3600)];
    let two_lines = [new.ds_line(7200), stray.ds_line(7200)];
    let Some(one) = start_parent(test, &temp.path().join("one"), &parent_zone(&one_lines)) else {
        return;
    };
    let Some(two) = start_parent(test, &temp.path().join("two"), &parent_zone(&two_lines)) else {
        return;
    };
    let keys = key_list(&[&old, &new, &retired]);
    let servers = [one.addr(), two.addr()];

    let view = check_parent(&child(), &servers, &keys, TIMEOUT);
    assert!(view.errors.is_empty(), "{:?}", view.errors);
    assert_eq!(view.per_key.get("old"), Some(&ParentDs::Mixed));
    assert_eq!(view.per_key.get("new"), Some(&ParentDs::AtAllServers));
    assert_eq!(view.per_key.get("retired"), Some(&ParentDs::Gone));
    assert_eq!(view.per_key.len(), 3);
    assert_eq!(view.unknown_tags, vec![stray.ds.key_tag]);
    assert_eq!(view.secure_delegation, Some(true));
    assert_eq!(view.ds_ttl, Some(7200));
    assert_eq!(view.servers.len(), 2);
    assert_eq!(view.servers[0].0, one.addr());
    assert!(
        view.servers[1].1.contains("(unknown key)"),
        "{}",
        view.servers[1].1
    );

    // Server two gets the old DS and loses the stray one.
    nsupdate(
        &nsupdate_path,
        &two,
        &[
            format!("update add {}", old.ds_line(7200)),
            format!("update delete child.test. IN DS {}", stray.ds),
        ],
    );
    let view = check_parent(&child(), &servers, &keys, TIMEOUT);
    assert!(view.errors.is_empty(), "{:?}", view.errors);
    assert_eq!(view.per_key.get("old"), Some(&ParentDs::AtAllServers));
    assert_eq!(view.per_key.get("new"), Some(&ParentDs::AtAllServers));
    assert_eq!(view.per_key.get("retired"), Some(&ParentDs::Gone));
    assert!(view.unknown_tags.is_empty(), "{:?}", view.unknown_tags);

    // Both servers drop every DS record: the delegation becomes insecure.
    for server in [&one, &two] {
        nsupdate(
            &nsupdate_path,
            server,
            &["update delete child.test. IN DS".to_owned()],
        );
    }
    let view = check_parent(&child(), &servers, &keys, TIMEOUT);
    assert!(view.errors.is_empty(), "{:?}", view.errors);
    assert_eq!(view.per_key.get("old"), Some(&ParentDs::Gone));
    assert_eq!(view.per_key.get("new"), Some(&ParentDs::Gone));
    assert_eq!(view.secure_delegation, Some(false));
    assert_eq!(view.ds_ttl, None);
}

#[test]
fn check_parent_with_server_down() {
    let test = "check_parent_with_server_down";
    let temp = tempfile::tempdir().unwrap();
    let (old, new) = (Ksk::generate("old"), Ksk::generate("new"));
    let retired = Ksk::generate("retired");
    let one_lines = [old.ds_line(3600), new.ds_line(3600)];
    let two_lines = [new.ds_line(3600)];
    let Some(one) = start_parent(test, &temp.path().join("one"), &parent_zone(&one_lines)) else {
        return;
    };
    let Some(two) = start_parent(test, &temp.path().join("two"), &parent_zone(&two_lines)) else {
        return;
    };
    let down = closed_port();
    let keys = key_list(&[&old, &new, &retired]);

    let view = check_parent(&child(), &[one.addr(), down, two.addr()], &keys, TIMEOUT);
    // The servers that answered disagree on old, so it is Mixed anyway. New
    // and retired are unknown while a server is down.
    assert_eq!(view.per_key.get("old"), Some(&ParentDs::Mixed));
    assert_eq!(view.per_key.get("new"), None);
    assert_eq!(view.per_key.get("retired"), None);
    assert_eq!(view.secure_delegation, None);
    assert_eq!(view.ds_ttl, Some(3600));
    assert_eq!(view.errors.len(), 1);
    assert!(
        view.errors[0].to_string().contains(&down.to_string()),
        "{}",
        view.errors[0]
    );
    let summary = &view.servers[1];
    assert_eq!(summary.0, down);
    assert!(summary.1.starts_with("error: "), "{}", summary.1);

    // The same address twice is queried once.
    let view = check_parent(&child(), &[one.addr(), one.addr()], &keys, TIMEOUT);
    assert_eq!(view.servers.len(), 1);
    assert_eq!(view.per_key.get("old"), Some(&ParentDs::AtAllServers));

    let view: ParentView = check_parent(&child(), &[], &keys, TIMEOUT);
    assert!(view.per_key.is_empty());
    assert!(matches!(view.errors[..], [ParentError::NoServers { .. }]));
}

#[test]
fn find_parent_servers_through_bind() {
    let test = "find_parent_servers_through_bind";
    let temp = tempfile::tempdir().unwrap();
    // `named` answers recursive queries for the zone it serves, which is
    // all this walk needs from a resolver.
    let Some(named) = start_parent(test, temp.path(), &parent_zone(&[])) else {
        return;
    };
    let expected: Vec<SocketAddr> = vec![
        "192.0.2.1:53".parse().unwrap(),
        "[2001:db8::1]:53".parse().unwrap(),
        "192.0.2.2:53".parse().unwrap(),
    ];

    // The parent name itself is the parent zone's apex.
    let found = find_parent_servers(&child(), named.addr(), TIMEOUT).unwrap();
    assert_eq!(found, expected);

    // `b.c.test.` is an empty non-terminal and `x.test.` does not exist.
    // The SOA records of the negative responses lead to `test.`.
    let found = find_parent_servers(&name("a.b.c.test."), named.addr(), TIMEOUT).unwrap();
    assert_eq!(found, expected);
    let found = find_parent_servers(&name("deep.x.test."), named.addr(), TIMEOUT).unwrap();
    assert_eq!(found, expected);

    let root = find_parent_servers(&Name::root(), named.addr(), TIMEOUT).unwrap_err();
    assert!(matches!(root, ParentError::NoParent { .. }), "{root}");

    // The parent of `test.` is the root, which this server refuses.
    let refused = find_parent_servers(&name("test."), named.addr(), TIMEOUT).unwrap_err();
    assert!(matches!(refused, ParentError::Rcode { .. }), "{refused}");
}

/// How a hand-written responder treats each query.
#[derive(Clone, Copy)]
enum Behaviour {
    /// Replies with the ID changed.
    WrongId,
    /// Replies with the ID changed, then with a correct response.
    WrongIdThenRight,
    /// Replies from another socket, then with a correct response.
    OtherSourceThenRight,
    /// Replies over UDP with the TC bit and no records, and correctly over TCP.
    Truncated,
    /// Replies over UDP with the TC bit, and with another ID over TCP.
    TruncatedThenWrongTcpId,
    /// Replies with 40 random octets.
    Garbage,
    /// Replies with a correct header and question and random octets after.
    GarbageAfterQuestion,
    /// Replies with a correct header and question and a record cut short.
    CutRecord,
}

/// Builds a DS response to `query` carrying `records`.
fn ds_response(query: &[u8], id: u16, flags: u16, records: &[DsRecord]) -> Vec<u8> {
    let question_end = 12
        + Name::from_wire(question_name(query))
            .unwrap()
            .as_wire()
            .len()
        + 4;
    let mut wire = id.to_be_bytes().to_vec();
    wire.extend_from_slice(&flags.to_be_bytes());
    wire.extend_from_slice(&[0, 1]);
    wire.extend_from_slice(&(records.len() as u16).to_be_bytes());
    wire.extend_from_slice(&[0, 0, 0, 0]);
    wire.extend_from_slice(&query[12..question_end]);
    for record in records {
        let mut rdata = record.key_tag.to_be_bytes().to_vec();
        rdata.extend_from_slice(&[record.algorithm, record.digest_type]);
        rdata.extend_from_slice(&record.digest);
        wire.extend_from_slice(&[0xc0, 12]); // owner: the question name
        wire.extend_from_slice(&[0, 43, 0, 1]); // DS, IN
        wire.extend_from_slice(&900u32.to_be_bytes());
        wire.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        wire.extend_from_slice(&rdata);
    }
    wire
}

/// Returns the uncompressed question name of a query.
fn question_name(query: &[u8]) -> Vec<u8> {
    let mut end = 12;
    while query[end] != 0 {
        end += 1 + usize::from(query[end]);
    }
    query[12..=end].to_vec()
}

const QR_AA: u16 = 0x8400;
const QR_AA_TC: u16 = 0x8600;

/// A responder on 127.0.0.1 that answers `queries` UDP queries, and as
/// many TCP connections for the truncating behaviours, and stops after 10
/// seconds at the latest.
struct Responder {
    addr: SocketAddr,
    thread: Option<JoinHandle<()>>,
}

impl Responder {
    fn start(behaviour: Behaviour, records: Vec<DsRecord>, queries: usize) -> Self {
        let (udp, tcp) = bind_pair();
        let addr = udp.local_addr().unwrap();
        udp.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        tcp.set_nonblocking(true).unwrap();
        let truncating = matches!(
            behaviour,
            Behaviour::Truncated | Behaviour::TruncatedThenWrongTcpId
        );
        let events = if truncating { 2 * queries } else { queries };
        let thread = std::thread::spawn(move || {
            let stop = Instant::now() + Duration::from_secs(10);
            let mut handled = 0;
            let mut buffer = [0u8; 4096];
            while handled < events && Instant::now() < stop {
                if let Ok((len, peer)) = udp.recv_from(&mut buffer) {
                    answer_udp(&udp, peer, &buffer[..len], behaviour, &records);
                    handled += 1;
                }
                if let Ok((stream, _)) = tcp.accept() {
                    answer_tcp(stream, behaviour, &records);
                    handled += 1;
                }
            }
        });
        Self {
            addr,
            thread: Some(thread),
        }
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Binds a UDP socket and a TCP listener to the same free loopback port.
fn bind_pair() -> (UdpSocket, TcpListener) {
    for _ in 0..64 {
        let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = tcp.local_addr().unwrap().port();
        if let Ok(udp) = UdpSocket::bind(("127.0.0.1", port)) {
            return (udp, tcp);
        }
    }
    panic!("no loopback port free for both UDP and TCP after 64 tries");
}

fn answer_udp(
    socket: &UdpSocket,
    peer: SocketAddr,
    query: &[u8],
    behaviour: Behaviour,
    records: &[DsRecord],
) {
    let id = u16::from_be_bytes([query[0], query[1]]);
    let good = ds_response(query, id, QR_AA, records);
    let replies: Vec<Vec<u8>> = match behaviour {
        Behaviour::WrongId => vec![ds_response(query, id ^ 1, QR_AA, records)],
        Behaviour::WrongIdThenRight => vec![ds_response(query, id ^ 1, QR_AA, records), good],
        Behaviour::OtherSourceThenRight => {
            let other = UdpSocket::bind("127.0.0.1:0").unwrap();
            other.send_to(&good, peer).unwrap();
            vec![good]
        }
        Behaviour::Truncated | Behaviour::TruncatedThenWrongTcpId => {
            vec![ds_response(query, id, QR_AA_TC, &[])]
        }
        Behaviour::Garbage => vec![(0..40).map(|_| rand::random::<u8>()).collect()],
        Behaviour::GarbageAfterQuestion => {
            let mut reply = ds_response(query, id, QR_AA, &[]);
            reply[7] = 5; // five answer records follow
            reply.extend((0..40).map(|_| rand::random::<u8>()));
            vec![reply]
        }
        Behaviour::CutRecord => {
            let mut reply = good;
            reply.truncate(reply.len() - 3);
            vec![reply]
        }
    };
    for reply in replies {
        socket.send_to(&reply, peer).unwrap();
    }
}

fn answer_tcp(mut stream: std::net::TcpStream, behaviour: Behaviour, records: &[DsRecord]) {
    stream.set_nonblocking(false).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let mut prefix = [0u8; 2];
    if stream.read_exact(&mut prefix).is_err() {
        return;
    }
    let mut query = vec![0u8; usize::from(u16::from_be_bytes(prefix))];
    if stream.read_exact(&mut query).is_err() {
        return;
    }
    let mut id = u16::from_be_bytes([query[0], query[1]]);
    if matches!(behaviour, Behaviour::TruncatedThenWrongTcpId) {
        id ^= 1;
    }
    let reply = ds_response(&query, id, QR_AA, records);
    let mut framed = (reply.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&reply);
    let _ = stream.write_all(&framed);
}

fn some_records() -> Vec<DsRecord> {
    let key = Ksk::generate("k");
    vec![key.ds, ds_record(&key.dnskey, DigestType::Sha384)]
}

#[test]
fn responder_wrong_id_times_out() {
    let responder = Responder::start(Behaviour::WrongId, some_records(), 1);
    let error = query_ds(&child(), responder.addr, Duration::from_millis(500)).unwrap_err();
    match error {
        ParentError::Timeout { ignored, .. } => assert_eq!(ignored, 1),
        other => panic!("expected Timeout, got {other}"),
    }
}

#[test]
fn responder_wrong_id_then_right_is_read() {
    let records = some_records();
    let responder = Responder::start(Behaviour::WrongIdThenRight, records.clone(), 1);
    let rrset = query_ds(&child(), responder.addr, TIMEOUT).unwrap();
    let mut expected = records;
    expected.sort();
    assert_eq!(rrset.records, expected);
    assert_eq!(rrset.ttl, Some(900));
}

#[test]
fn responder_other_source_is_ignored() {
    let records = some_records();
    let responder = Responder::start(Behaviour::OtherSourceThenRight, records.clone(), 1);
    let rrset = query_ds(&child(), responder.addr, TIMEOUT).unwrap();
    assert_eq!(rrset.records.len(), records.len());
}

#[test]
fn responder_truncated_retries_over_tcp() {
    let records = some_records();
    let responder = Responder::start(Behaviour::Truncated, records.clone(), 1);
    let rrset = query_ds(&child(), responder.addr, TIMEOUT).unwrap();
    let mut expected = records;
    expected.sort();
    assert_eq!(rrset.records, expected);
}

#[test]
fn responder_tcp_mismatch_is_error() {
    let responder = Responder::start(Behaviour::TruncatedThenWrongTcpId, some_records(), 1);
    let error = query_ds(&child(), responder.addr, TIMEOUT).unwrap_err();
    assert!(matches!(error, ParentError::Mismatch { .. }), "{error}");
}

#[test]
fn responder_truncated_without_tcp_is_error() {
    // The UDP socket sends a truncated response, and nothing accepts TCP
    // connections on that port.
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = udp.local_addr().unwrap();
    let thread = std::thread::spawn(move || {
        udp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buffer = [0u8; 4096];
        if let Ok((len, peer)) = udp.recv_from(&mut buffer) {
            let id = u16::from_be_bytes([buffer[0], buffer[1]]);
            let reply = ds_response(&buffer[..len], id, QR_AA_TC, &[]);
            udp.send_to(&reply, peer).unwrap();
        }
    });
    let error = query_ds(&child(), addr, TIMEOUT).unwrap_err();
    thread.join().unwrap();
    match error {
        ParentError::Io { transport, .. } | ParentError::Timeout { transport, .. } => {
            assert_eq!(transport.to_string(), "TCP")
        }
        other => panic!("expected a TCP error, got {other}"),
    }
}

#[test]
fn responder_garbage_is_ignored() {
    let responder = Responder::start(Behaviour::Garbage, some_records(), 1);
    let error = query_ds(&child(), responder.addr, Duration::from_millis(500)).unwrap_err();
    assert!(
        matches!(error, ParentError::Timeout { ignored: 1, .. }),
        "{error}"
    );
}

#[test]
fn responder_garbage_after_question_is_malformed() {
    let responder = Responder::start(Behaviour::GarbageAfterQuestion, some_records(), 1);
    let error = query_ds(&child(), responder.addr, TIMEOUT).unwrap_err();
    assert!(
        matches!(
            error,
            ParentError::Parse { .. } | ParentError::Malformed { .. }
        ),
        "{error}"
    );
}

#[test]
fn responder_cut_record_is_malformed() {
    let responder = Responder::start(Behaviour::CutRecord, some_records(), 1);
    let error = query_ds(&child(), responder.addr, TIMEOUT).unwrap_err();
    assert!(matches!(error, ParentError::Parse { .. }), "{error}");
}

#[test]
fn responder_failure_leaves_keys_unknown() {
    let key = Ksk::generate("k");
    let good = Responder::start(Behaviour::Truncated, vec![key.ds.clone()], 1);
    let bad = Responder::start(Behaviour::CutRecord, vec![key.ds.clone()], 1);
    let view = check_parent(
        &child(),
        &[good.addr, bad.addr],
        &key_list(&[&key]),
        TIMEOUT,
    );
    assert_eq!(view.per_key.get("k"), None);
    assert_eq!(view.errors.len(), 1);
    assert_eq!(view.secure_delegation, None);
    assert_eq!(view.ds_ttl, Some(900));
}

/// Writes an executable shell script into `dir`.
fn script(dir: &Path, file: &str, body: &str) -> String {
    let path = dir.join(file);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    let status = Command::new("chmod")
        .arg("755")
        .arg(&path)
        .status()
        .unwrap();
    assert!(status.success());
    path.display().to_string()
}

#[test]
fn ds_command_gets_arguments_and_records() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    let program = script(
        dir,
        "publish-ds",
        &format!(
            "printf '%s\\n' \"$@\" > {0}/arguments\ncat > {0}/records",
            dir.display()
        ),
    );
    let records = "child.test. 3600 IN DS 1 13 2 AB\nchild.test. 3600 IN DS 2 13 2 CD\n";
    let command = vec![program, "--registrar".to_owned(), "example".to_owned()];
    run_ds_command(&command, "child.test.", records, TIMEOUT).unwrap();

    let arguments = std::fs::read_to_string(dir.join("arguments")).unwrap();
    assert_eq!(arguments, "--registrar\nexample\nchild.test.\n");
    let received = std::fs::read_to_string(dir.join("records")).unwrap();
    assert_eq!(received, records);
}

#[test]
fn ds_command_failure_reports_stderr() {
    let temp = tempfile::tempdir().unwrap();
    let program = script(
        temp.path(),
        "reject-ds",
        "echo 'registrar rejected the DS' >&2\necho 'second line' >&2\nexit 3",
    );
    let error = run_ds_command(&[program], "child.test.", "", TIMEOUT).unwrap_err();
    match &error {
        DsCommandError::Failed { status, stderr, .. } => {
            assert_eq!(status.code(), Some(3));
            assert_eq!(stderr, "registrar rejected the DS");
        }
        other => panic!("expected Failed, got {other}"),
    }
    assert!(
        error.to_string().contains("registrar rejected the DS"),
        "{error}"
    );
}

#[test]
fn ds_command_hanging_is_killed() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    // The script starts a helper and waits for it, so killing only the
    // shell would leave the helper running.
    let program = script(
        dir,
        "hang",
        &format!("sleep 30 &\necho $! > {}/helper.pid\nwait", dir.display()),
    );
    let started = Instant::now();
    let error =
        run_ds_command(&[program], "child.test.", "", Duration::from_millis(500)).unwrap_err();
    assert!(matches!(error, DsCommandError::TimedOut { .. }), "{error}");
    assert!(started.elapsed() < Duration::from_secs(10));

    let helper = std::fs::read_to_string(dir.join("helper.pid")).unwrap();
    let stat = format!("/proc/{}/stat", helper.trim());
    // Killed and reaped, or killed and waiting for its new parent to reap it.
    let gone = keymaster_testutil::wait_until(Duration::from_secs(5), || {
        match std::fs::read_to_string(&stat) {
            Err(_) => true,
            Ok(text) => text
                .rsplit(')')
                .next()
                .is_some_and(|rest| rest.trim_start().starts_with('Z')),
        }
    });
    assert!(gone, "the helper process {} still runs", helper.trim());
}

#[test]
fn ds_command_start_errors() {
    let error = run_ds_command(&[], "child.test.", "", TIMEOUT).unwrap_err();
    assert!(matches!(error, DsCommandError::Empty), "{error}");
    let missing = vec!["/nonexistent/publish-ds".to_owned()];
    let error = run_ds_command(&missing, "child.test.", "", TIMEOUT).unwrap_err();
    assert!(matches!(error, DsCommandError::Spawn { .. }), "{error}");
}
