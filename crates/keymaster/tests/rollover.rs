//! End-to-end key rollovers: `keymaster serve` signs `child.test.` below a
//! parent zone `test.` that a private BIND `named` signs, while two private
//! Unbound resolvers validate every response.
//!
//! The "parent-anchored" resolver trusts the parent's KSK and reaches the
//! child through the DS RRset at the parent. The "rfc5011" resolver trusts
//! the child's KSK directly and follows KSK changes by RFC 5011 automated
//! trust-anchor updates with hold-downs of a few seconds. The test acts as
//! the registrar: when the child's CDS RRset differs from the parent's DS
//! RRset, it waits a few seconds on purpose and then replaces the DS RRset
//! with `nsupdate`. Background threads query both resolvers continuously
//! and save every signed version the daemon writes, and `dnssec-verify`
//! checks each saved version.
//!
//! Everything runs on 127.0.0.1 with free ports in temporary folders, every
//! loop is bounded in count and time, and every process is stopped by
//! process id. The tests skip with a notice when named, unbound, nsupdate
//! or dnssec-verify is missing.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use data_encoding::{BASE64, HEXUPPER};
use keymaster_testutil::named::{loopback_options, Named};
use keymaster_testutil::unbound::{Stub, Unbound};
use keymaster_testutil::{free_port, output_text, run, tool, wait_until, ChildGuard};
use rand::{Rng, SeedableRng};
use serde_json::Value;

/// The child zone's name as the CLI takes it.
const CHILD: &str = "child.test";

/// TTL of every record in both zones, and of the DS records the registrar
/// writes, in seconds. The policy's DNSKEY TTL, maximum zone TTL and parent
/// DS TTL are the same.
const TTL: u32 = 2;

/// RFC 5011 add and remove hold-down of the policy and of the "rfc5011"
/// resolver, in seconds.
const HOLD_DOWN: u64 = 10;

/// How long the registrar waits after it first finds a CDS RRset that
/// differs from the parent's DS RRset before it updates the parent.
const REGISTRAR_DELAY: Duration = Duration::from_secs(3);

/// Time allowed for one rollover, from the `key rollover` command until the
/// old key is gone.
const ROLLOVER_DEADLINE: Duration = Duration::from_secs(240);

/// Upper bound on a whole test, after which every background loop stops.
const TEST_DEADLINE: Duration = Duration::from_secs(600);

/// Time the resolvers keep being queried after a rollover completed, so
/// that responses cached during the rollover expire and are fetched again.
const SETTLE: Duration = Duration::from_secs(6);

/// Time after a restarted daemon serves the zone again during which a
/// SERVFAIL without a DNSSEC extended error still counts as caused by the
/// restart.
const RESTART_GRACE: Duration = Duration::from_secs(3);

/// Timeout of one DNS query made by the test.
const QUERY_TIMEOUT: Duration = Duration::from_secs(5);

const CHILD_ZONE: &str = "$TTL 2
@       SOA  ns.child.test. hostmaster.child.test. 1 60 30 600 2
@       NS   ns.child.test.
ns      A    127.0.0.1
www     A    192.0.2.1
www     AAAA 2001:db8::1
mail    MX   10 www.child.test.
text    TXT  \"keymaster rollover test\"
";

const PARENT_ZONE: &str = "$TTL 2
@           SOA  ns.test. hostmaster.test. 1 60 30 600 2
@           NS   ns.test.
ns          A    127.0.0.1
child       NS   ns.child.test.
ns.child    A    127.0.0.1
";

/// BIND signs the parent with one CSK that never rolls, so the
/// "parent-anchored" resolver's trust anchor stays valid.
const PARENT_POLICY: &str = r#"
dnssec-policy "fast" {
    keys { csk key-directory lifetime unlimited algorithm ecdsap256sha256; };
    dnskey-ttl 2;
    max-zone-ttl 10;
    zone-propagation-delay 1;
    publish-safety 1;
    retire-safety 1;
    signatures-validity 1d;
    signatures-validity-dnskey 1d;
    signatures-refresh 12h;
    parent-ds-ttl 2;
    parent-propagation-delay 1;
};
zone "test" {
    type primary;
    file "test.db";
    dnssec-policy "fast";
    allow-update { 127.0.0.1; };
};
"#;

/// The daemon's configuration; `{dns}`, `{control}` and `{parent}` are ports.
const CHILD_CONFIG: &str = r#"version = 1

[server]
name = "km1"
listen = ["127.0.0.1:{dns}"]
control = "127.0.0.1:{control}"

[[zone]]
name = "child.test"
file = "child.test.zone"
policy = "fast"
parent_servers = ["127.0.0.1:{parent}"]

[policy.fast]
algorithm = "ECDSAP256SHA256"
keys = "ksk-zsk"
ksk_lifetime = "unlimited"
zsk_lifetime = "unlimited"
dnskey_ttl = "2s"
max_zone_ttl = "2s"
zone_propagation_delay = "1s"
parent_ds_ttl = "2s"
parent_propagation_delay = "1s"
publish_safety = "1s"
retire_safety = "1s"
signature_validity = "1d"
signature_validity_dnskey = "1d"
signature_refresh = "12h"
signature_jitter = "1h"
denial = "nsec3"
ksk_rollover = "double-ksk"
zsk_rollover = "pre-publication"
cds_publish = "rollover"
rfc5011 = true
rfc5011_add_hold_down = "10s"
rfc5011_remove_hold_down = "10s"
parent_ds_check = "all-parent-servers"
parent_ds_check_interval = "1s"
post_sign_verify = "all"
"#;

/// A minimal DNS client: enough to read response codes, flags, extended
/// DNS errors and the RDATA of answers.
mod dns {
    use std::io::{self, Read, Write};
    use std::net::{SocketAddr, TcpStream, UdpSocket};
    use std::time::{Duration, Instant};

    pub(super) const A: u16 = 1;
    pub(super) const SOA: u16 = 6;
    pub(super) const DS: u16 = 43;
    pub(super) const RRSIG: u16 = 46;
    pub(super) const DNSKEY: u16 = 48;
    pub(super) const CDS: u16 = 59;
    const OPT: u16 = 41;
    /// EDNS option code of Extended DNS Errors (RFC 8914).
    const EDE_OPTION: u16 = 15;

    pub(super) const NOERROR: u8 = 0;
    pub(super) const SERVFAIL: u8 = 2;
    pub(super) const NXDOMAIN: u8 = 3;

    /// Length of the OPT record at the end of every query.
    const OPT_RECORD_LEN: usize = 11;

    /// One record of the answer section.
    pub(super) struct Record {
        pub(super) rtype: u16,
        pub(super) rdata: Vec<u8>,
    }

    pub(super) struct Response {
        pub(super) rcode: u8,
        /// The AA bit.
        pub(super) authoritative: bool,
        /// The AD bit.
        pub(super) authenticated: bool,
        pub(super) answers: Vec<Record>,
        /// INFO-CODEs of the Extended DNS Error options (RFC 8914).
        pub(super) extended_errors: Vec<u16>,
    }

    impl Response {
        /// Returns the RDATA of the answers of type `rtype`.
        pub(super) fn rdata_of(&self, rtype: u16) -> impl Iterator<Item = &[u8]> {
            self.answers
                .iter()
                .filter(move |record| record.rtype == rtype)
                .map(|record| record.rdata.as_slice())
        }
    }

    /// Sends a query with EDNS and the DO bit over UDP, and over TCP when
    /// the UDP response is truncated.
    pub(super) fn query(
        server: SocketAddr,
        name: &str,
        rtype: u16,
        recursion: bool,
        timeout: Duration,
    ) -> io::Result<Response> {
        let id: u16 = rand::random();
        let message = build_query(id, name, rtype, recursion);
        let question = &message[12..message.len() - OPT_RECORD_LEN];
        let datagram = exchange_udp(server, &message, id, timeout)?;
        let (response, truncated) = parse(&datagram, id, question)?;
        if !truncated {
            return Ok(response);
        }
        let stream = exchange_tcp(server, &message, timeout)?;
        parse(&stream, id, question).map(|(response, _)| response)
    }

    fn build_query(id: u16, name: &str, rtype: u16, recursion: bool) -> Vec<u8> {
        let mut message = Vec::with_capacity(64);
        message.extend_from_slice(&id.to_be_bytes());
        message.push(if recursion { 0x01 } else { 0 });
        message.push(0);
        // One question and one additional record (the OPT record).
        message.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 1]);
        for label in name.split('.').filter(|label| !label.is_empty()) {
            message.push(label.len() as u8);
            message.extend_from_slice(label.as_bytes());
        }
        message.push(0);
        message.extend_from_slice(&rtype.to_be_bytes());
        message.extend_from_slice(&1u16.to_be_bytes());
        // OPT: root owner, UDP payload 1232, extended RCODE 0, version 0,
        // the DO bit, no options.
        message.push(0);
        message.extend_from_slice(&OPT.to_be_bytes());
        message.extend_from_slice(&1232u16.to_be_bytes());
        message.extend_from_slice(&[0, 0, 0x80, 0, 0, 0]);
        message
    }

    fn exchange_udp(
        server: SocketAddr,
        message: &[u8],
        id: u16,
        timeout: Duration,
    ) -> io::Result<Vec<u8>> {
        let socket = UdpSocket::bind("127.0.0.1:0")?;
        socket.connect(server)?;
        socket.send(message)?;
        let deadline = Instant::now() + timeout;
        let mut buffer = vec![0u8; 65535];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "no response"));
            }
            socket.set_read_timeout(Some(left))?;
            let length = socket.recv(&mut buffer).map_err(|error| {
                if error.kind() == io::ErrorKind::WouldBlock {
                    io::Error::new(io::ErrorKind::TimedOut, "no response")
                } else {
                    error
                }
            })?;
            // A datagram with another ID answers an earlier query: skip it.
            if length >= 2 && buffer[..2] == id.to_be_bytes() {
                buffer.truncate(length);
                return Ok(buffer);
            }
        }
    }

    fn exchange_tcp(server: SocketAddr, message: &[u8], timeout: Duration) -> io::Result<Vec<u8>> {
        let mut stream = TcpStream::connect_timeout(&server, timeout)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        let mut framed = (message.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(message);
        stream.write_all(&framed)?;
        let mut length = [0u8; 2];
        stream.read_exact(&mut length)?;
        let mut response = vec![0u8; u16::from_be_bytes(length) as usize];
        stream.read_exact(&mut response)?;
        Ok(response)
    }

    /// Parses a response to the query with `id` and `question`; the flag
    /// is the TC bit.
    fn parse(bytes: &[u8], id: u16, question: &[u8]) -> io::Result<(Response, bool)> {
        let invalid = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_string());
        if bytes.len() < 12 || bytes[..2] != id.to_be_bytes() || bytes[2] & 0x80 == 0 {
            return Err(invalid("not a response to the query"));
        }
        let count = |at: usize| usize::from(u16::from_be_bytes([bytes[at], bytes[at + 1]]));
        let question_end = 12 + question.len();
        let same_question = bytes
            .get(12..question_end)
            .is_some_and(|echoed| echoed.eq_ignore_ascii_case(question));
        if count(4) != 1 || !same_question {
            return Err(invalid("the response's question differs from the query's"));
        }
        let mut response = Response {
            rcode: bytes[3] & 0x0f,
            authoritative: bytes[2] & 0x04 != 0,
            authenticated: bytes[3] & 0x20 != 0,
            answers: Vec::new(),
            extended_errors: Vec::new(),
        };
        let truncated = bytes[2] & 0x02 != 0;
        let mut position = question_end;
        for section in 0..3 {
            for _ in 0..count(6 + 2 * section) {
                position = skip_name(bytes, position).ok_or_else(|| invalid("truncated name"))?;
                let header = bytes
                    .get(position..position + 10)
                    .ok_or_else(|| invalid("truncated record"))?;
                let rtype = u16::from_be_bytes([header[0], header[1]]);
                let length = usize::from(u16::from_be_bytes([header[8], header[9]]));
                let rdata = bytes
                    .get(position + 10..position + 10 + length)
                    .ok_or_else(|| invalid("truncated RDATA"))?;
                position += 10 + length;
                match (section, rtype) {
                    (0, _) => response.answers.push(Record {
                        rtype,
                        rdata: rdata.to_vec(),
                    }),
                    (2, OPT) => response.extended_errors.extend(extended_errors(rdata)),
                    _ => {}
                }
            }
        }
        Ok((response, truncated))
    }

    /// Returns the position after the (possibly compressed) name at `position`.
    fn skip_name(bytes: &[u8], mut position: usize) -> Option<usize> {
        // A name has at most 127 labels.
        for _ in 0..128 {
            let length = usize::from(*bytes.get(position)?);
            match length {
                0 => return Some(position + 1),
                pointer if pointer & 0xc0 == 0xc0 => return Some(position + 2),
                label => position += 1 + label,
            }
        }
        None
    }

    fn extended_errors(mut options: &[u8]) -> Vec<u16> {
        let mut codes = Vec::new();
        while options.len() >= 4 {
            let code = u16::from_be_bytes([options[0], options[1]]);
            let length = usize::from(u16::from_be_bytes([options[2], options[3]]));
            let Some(value) = options.get(4..4 + length) else {
                break;
            };
            if code == EDE_OPTION && value.len() >= 2 {
                codes.push(u16::from_be_bytes([value[0], value[1]]));
            }
            options = &options[4 + length..];
        }
        codes
    }

    /// Returns the serial of SOA RDATA.
    pub(super) fn soa_serial(rdata: &[u8]) -> Option<u32> {
        let after_mname = skip_name(rdata, 0)?;
        let after_rname = skip_name(rdata, after_mname)?;
        let serial = rdata.get(after_rname..after_rname + 4)?;
        Some(u32::from_be_bytes([
            serial[0], serial[1], serial[2], serial[3],
        ]))
    }
}

/// Returns true for the Extended DNS Error codes that report a DNSSEC
/// validation problem (RFC 8914 section 4: 1 to 12).
fn is_dnssec_error(code: u16) -> bool {
    (1..=12).contains(&code)
}

/// A DS or CDS record.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct DsRecord {
    key_tag: u16,
    algorithm: u8,
    digest_type: u8,
    digest: Vec<u8>,
}

impl DsRecord {
    fn from_rdata(rdata: &[u8]) -> Option<Self> {
        (rdata.len() >= 5).then(|| Self {
            key_tag: u16::from_be_bytes([rdata[0], rdata[1]]),
            algorithm: rdata[2],
            digest_type: rdata[3],
            digest: rdata[4..].to_vec(),
        })
    }

    /// Parses the fields after the type in presentation format; the digest
    /// may be split into several fields.
    fn from_fields(fields: &[&str]) -> Option<Self> {
        let digest = HEXUPPER
            .decode(fields.get(3..)?.concat().to_ascii_uppercase().as_bytes())
            .ok()?;
        Some(Self {
            key_tag: fields[0].parse().ok()?,
            algorithm: fields[1].parse().ok()?,
            digest_type: fields[2].parse().ok()?,
            digest,
        })
    }

    /// Returns true for the CDS delete form `0 0 0 00` (RFC 8078 section 4).
    fn is_delete(&self) -> bool {
        self.algorithm == 0
    }
}

impl fmt::Display for DsRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} {}",
            self.key_tag,
            self.algorithm,
            self.digest_type,
            HEXUPPER.encode(&self.digest)
        )
    }
}

fn ds_tags(records: &BTreeSet<DsRecord>) -> Vec<u16> {
    records.iter().map(|record| record.key_tag).collect()
}

/// Computes the key tag of DNSKEY RDATA (RFC 4034 appendix B).
fn key_tag(rdata: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for (index, byte) in rdata.iter().enumerate() {
        sum += if index % 2 == 0 {
            u32::from(*byte) << 8
        } else {
            u32::from(*byte)
        };
    }
    sum += (sum >> 16) & 0xffff;
    (sum & 0xffff) as u16
}

/// Flag bits of a DNSKEY record (RFC 4034 section 2.1.1, RFC 5011 section 7).
const SEP_FLAG: u16 = 0x0001;
const REVOKE_FLAG: u16 = 0x0080;

/// Seconds since the test started, shared by every thread's notes.
#[derive(Clone)]
struct Timeline {
    start: Instant,
    notes: Arc<Mutex<Vec<(f64, String)>>>,
}

impl Timeline {
    fn new() -> Self {
        Self {
            start: Instant::now(),
            notes: Arc::new(Mutex::new(Vec::new())),
        }
    }

    fn now(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    fn note(&self, text: impl Into<String>) {
        let at = self.now();
        self.notes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((at, text.into()));
    }

    fn text(&self) -> String {
        let mut notes = self.notes.lock().unwrap_or_else(|p| p.into_inner()).clone();
        notes.sort_by(|a, b| a.0.total_cmp(&b.0));
        notes
            .iter()
            .map(|(at, text)| format!("{at:8.2} s  {text}\n"))
            .collect()
    }
}

fn keymaster() -> Command {
    Command::new(env!("CARGO_BIN_EXE_keymaster"))
}

/// External programs the tests need besides `named` and `unbound`, which
/// their starters find.
struct Tools {
    nsupdate: PathBuf,
    dnssec_verify: PathBuf,
}

impl Tools {
    /// Returns the tools, or `None` after a skip notice when one is missing.
    fn find(test: &str) -> Option<Self> {
        tool(test, "named")?;
        tool(test, "unbound")?;
        Some(Self {
            nsupdate: tool(test, "nsupdate")?,
            dnssec_verify: tool(test, "dnssec-verify")?,
        })
    }
}

/// The parent zone `test.`, served and signed by BIND.
struct Parent {
    /// Kept so that `named` stops when the parent is dropped.
    _named: Named,
    client: ParentClient,
}

/// Queries and updates of the parent zone. Threads get this part only, so
/// `named` stops when the test drops [`Parent`], even if a thread outlives
/// the test.
#[derive(Clone)]
struct ParentClient {
    address: SocketAddr,
    nsupdate: PathBuf,
}

impl Parent {
    /// Starts `named` and waits until it serves `test.` signed.
    fn start(test: &str, dir: &Path, nsupdate: &Path) -> Option<Self> {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("test.db"), PARENT_ZONE).unwrap();
        let conf = loopback_options("allow-transfer { none; };") + PARENT_POLICY;
        let named = Named::start(test, dir, &conf)?;
        let client = ParentClient {
            address: named.addr(),
            nsupdate: nsupdate.to_path_buf(),
        };
        let signed = wait_until(Duration::from_secs(30), || {
            [dns::SOA, dns::DNSKEY].iter().all(|rtype| {
                client
                    .query("test.", *rtype)
                    .is_ok_and(|response| response.rdata_of(dns::RRSIG).next().is_some())
            })
        });
        assert!(
            signed,
            "BIND did not sign test. within 30 s; log:\n{}",
            named.log()
        );
        Some(Self {
            _named: named,
            client,
        })
    }

    fn address(&self) -> SocketAddr {
        self.client.address
    }
}

impl ParentClient {
    fn query(&self, name: &str, rtype: u16) -> std::io::Result<dns::Response> {
        dns::query(self.address, name, rtype, false, QUERY_TIMEOUT)
    }

    /// Returns the parent's KSK as an unbound `trust-anchor:` value.
    fn trust_anchor(&self) -> String {
        let response = self.query("test.", dns::DNSKEY).expect("DNSKEY of test.");
        let ksk = response
            .rdata_of(dns::DNSKEY)
            .find(|rdata| {
                rdata.len() > 4 && u16::from_be_bytes([rdata[0], rdata[1]]) & SEP_FLAG != 0
            })
            .expect("test. has a DNSKEY with the SEP flag");
        format!(
            "test. DNSKEY {} {} {} {}",
            u16::from_be_bytes([ksk[0], ksk[1]]),
            ksk[2],
            ksk[3],
            BASE64.encode(&ksk[4..])
        )
    }

    /// Returns the DS RRset of `child.test.` at the parent.
    fn ds_set(&self) -> Result<BTreeSet<DsRecord>, String> {
        let response = self
            .query("child.test.", dns::DS)
            .map_err(|error| format!("DS query to the parent failed: {error}"))?;
        if response.rcode != dns::NOERROR || !response.authoritative {
            return Err(format!(
                "the parent answered the DS query with RCODE {} (AA {})",
                response.rcode, response.authoritative
            ));
        }
        Ok(response
            .rdata_of(dns::DS)
            .filter_map(DsRecord::from_rdata)
            .collect())
    }

    /// Replaces the DS RRset of `child.test.` with `records` by a dynamic
    /// update.
    fn replace_ds(&self, records: &BTreeSet<DsRecord>) -> Result<(), String> {
        let mut script = format!(
            "server 127.0.0.1 {}\nzone test.\nupdate delete child.test. DS\n",
            self.address.port()
        );
        for record in records {
            script.push_str(&format!("update add child.test. {TTL} IN DS {record}\n"));
        }
        script.push_str("send\n");
        let mut child = Command::new(&self.nsupdate)
            .args(["-t", "10"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|error| format!("cannot start nsupdate: {error}"))?;
        child
            .stdin
            .take()
            .expect("piped standard input")
            .write_all(script.as_bytes())
            .map_err(|error| format!("cannot write to nsupdate: {error}"))?;
        let output = child
            .wait_with_output()
            .map_err(|error| format!("nsupdate failed: {error}"))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(format!("nsupdate failed: {}", output_text(&output)))
        }
    }
}

/// `keymaster serve` for `child.test.`, which can be killed and restarted
/// on the same data directory and ports.
struct Child {
    dir: PathBuf,
    data_dir: PathBuf,
    config: PathBuf,
    dns_port: u16,
    process: Option<ChildGuard>,
    starts: usize,
}

impl Child {
    fn new(dir: &Path, parent_port: u16) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let dns_port = free_port();
        let config = CHILD_CONFIG
            .replace("{dns}", &dns_port.to_string())
            .replace("{control}", &free_port().to_string())
            .replace("{parent}", &parent_port.to_string());
        std::fs::write(dir.join("child.test.zone"), CHILD_ZONE).unwrap();
        std::fs::write(dir.join("keymaster.toml"), config).unwrap();
        Self {
            dir: dir.to_path_buf(),
            data_dir: dir.join("data"),
            config: dir.join("keymaster.toml"),
            dns_port,
            process: None,
            starts: 0,
        }
    }

    fn address(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.dns_port))
    }

    fn log_path(&self, start: usize) -> PathBuf {
        self.dir.join(format!("serve-{start}.log"))
    }

    /// Starts the daemon and waits until it serves the zone, with a log
    /// file per start.
    fn start(&mut self) {
        assert!(self.process.is_none(), "the daemon is already running");
        self.starts += 1;
        let log = std::fs::File::create(self.log_path(self.starts)).unwrap();
        let mut command = keymaster();
        command
            .arg("serve")
            .arg("--config")
            .arg(&self.config)
            .arg("--data-dir")
            .arg(&self.data_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        self.process = Some(ChildGuard::spawn("keymaster serve", &mut command));
        let ready = wait_until(Duration::from_secs(60), || {
            let exited = self
                .process
                .as_mut()
                .is_some_and(|guard| !matches!(guard.child.try_wait(), Ok(None)));
            exited || self.serves_zone()
        });
        let exited = self
            .process
            .as_mut()
            .is_some_and(|guard| !matches!(guard.child.try_wait(), Ok(None)));
        assert!(
            ready && !exited,
            "keymaster serve did not serve {CHILD} within 60 s (exited: {exited}); log:\n{}",
            self.log(self.starts)
        );
    }

    /// Returns true when the daemon answers the zone's SOA query with
    /// authority.
    fn serves_zone(&self) -> bool {
        dns::query(
            self.address(),
            "child.test.",
            dns::SOA,
            false,
            Duration::from_millis(500),
        )
        .is_ok_and(|response| {
            response.rcode == dns::NOERROR
                && response.authoritative
                && response.rdata_of(dns::SOA).next().is_some()
        })
    }

    /// Kills the daemon with SIGKILL and waits for it to exit.
    fn kill(&mut self) {
        let mut guard = self.process.take().expect("the daemon is running");
        guard.child.kill().expect("send SIGKILL to keymaster serve");
        let status = guard.child.wait().expect("wait for keymaster serve");
        assert!(!status.success(), "keymaster serve exited with {status}");
    }

    fn cli(&self, args: &[&str]) -> Output {
        run(keymaster().arg("--data-dir").arg(&self.data_dir).args(args))
    }

    /// Returns the output of `keymaster ... --json`, or the error text.
    fn json(&self, args: &[&str]) -> Result<Value, String> {
        let mut full = args.to_vec();
        full.push("--json");
        let output = self.cli(&full);
        if !output.status.success() {
            return Err(format!(
                "keymaster {full:?} failed: {}",
                output_text(&output)
            ));
        }
        serde_json::from_slice(&output.stdout)
            .map_err(|error| format!("keymaster {full:?} printed invalid JSON: {error}"))
    }

    /// Returns the zone's keys from `key list`.
    fn keys(&self) -> Result<Vec<Value>, String> {
        match self.json(&["key", "list", CHILD])? {
            Value::Array(keys) => Ok(keys),
            other => Err(format!("key list printed no array: {other}")),
        }
    }

    fn log(&self, start: usize) -> String {
        std::fs::read_to_string(self.log_path(start)).unwrap_or_default()
    }

    /// Returns the serials each start logged as published, in order.
    fn published_serials(&self) -> Vec<Published> {
        let mut serials = Vec::new();
        for start in 1..=self.starts {
            for line in self.log(start).lines() {
                let Some((_, rest)) = line.split_once("zone child.test. published with serial ")
                else {
                    continue;
                };
                let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                if let Ok(serial) = digits.parse() {
                    serials.push((start, serial));
                }
            }
        }
        serials
    }

    /// Returns the log lines of every start at warning level or above.
    fn warnings(&self) -> Vec<String> {
        (1..=self.starts)
            .flat_map(|start| {
                self.log(start)
                    .lines()
                    .filter(|line| line.contains(" WARN ") || line.contains(" ERROR "))
                    .map(|line| format!("start {start}: {line}"))
                    .collect::<Vec<_>>()
            })
            .collect()
    }
}

/// A published serial and the number of the daemon start that published it.
type Published = (usize, u32);

/// Parses the DS records printed by `keymaster ds --json` and the DNSKEY
/// records of its key-signing keys.
fn child_ds_and_dnskeys(child: &Child) -> (BTreeSet<DsRecord>, Vec<String>) {
    let info = child
        .json(&["ds", CHILD])
        .unwrap_or_else(|error| panic!("{error}"));
    let ds = info["ds"]
        .as_array()
        .expect("ds list")
        .iter()
        .filter_map(|line| {
            let fields: Vec<&str> = line.as_str()?.split_whitespace().collect();
            let at = fields.iter().position(|field| *field == "DS")?;
            DsRecord::from_fields(&fields[at + 1..])
        })
        .collect::<BTreeSet<_>>();
    let dnskeys = info["dnskey"]
        .as_array()
        .expect("dnskey list")
        .iter()
        .filter_map(|line| line.as_str().map(str::to_string))
        .collect();
    assert!(!ds.is_empty(), "keymaster ds printed no DS record: {info}");
    (ds, dnskeys)
}

/// One DNSKEY record of a saved signed version.
#[derive(Clone, Debug)]
struct ZoneKey {
    flags: u16,
    key_tag: u16,
    /// Base64 of the public key, which the REVOKE flag does not change.
    public_key: String,
}

/// What the checks need from one saved signed version.
#[derive(Clone, Debug)]
struct SignedVersion {
    serial: u32,
    path: PathBuf,
    keys: Vec<ZoneKey>,
    /// Key tags of the RRSIGs per covered type.
    signers: BTreeMap<String, BTreeSet<u16>>,
    cds: BTreeSet<DsRecord>,
}

impl SignedVersion {
    fn parse(path: &Path, text: &str) -> Option<Self> {
        let mut serial = None;
        let mut keys = Vec::new();
        let mut signers: BTreeMap<String, BTreeSet<u16>> = BTreeMap::new();
        let mut cds = BTreeSet::new();
        for line in text.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let Some(at) = fields
                .iter()
                .take(5)
                .position(|field| matches!(*field, "SOA" | "DNSKEY" | "RRSIG" | "CDS"))
            else {
                continue;
            };
            let rdata = &fields[at + 1..];
            match fields[at] {
                "SOA" if rdata.len() >= 3 => serial = rdata[2].parse().ok(),
                "DNSKEY" if rdata.len() >= 4 => {
                    let flags: u16 = rdata[0].parse().ok()?;
                    let public_key = rdata[3..].concat();
                    let mut wire = flags.to_be_bytes().to_vec();
                    wire.push(rdata[1].parse().ok()?);
                    wire.push(rdata[2].parse().ok()?);
                    wire.extend(BASE64.decode(public_key.as_bytes()).ok()?);
                    keys.push(ZoneKey {
                        flags,
                        key_tag: key_tag(&wire),
                        public_key,
                    });
                }
                "CDS" => {
                    cds.insert(DsRecord::from_fields(rdata)?);
                }
                "RRSIG" if rdata.len() >= 7 => {
                    signers
                        .entry(rdata[0].to_string())
                        .or_default()
                        .insert(rdata[6].parse().ok()?);
                }
                _ => {}
            }
        }
        Some(Self {
            serial: serial?,
            path: path.to_path_buf(),
            keys,
            signers,
            cds,
        })
    }

    fn describe(&self) -> String {
        let keys: Vec<String> = self
            .keys
            .iter()
            .map(|key| format!("{}/{}", key.key_tag, key.flags))
            .collect();
        let zone_signers = self.signers.get("SOA").cloned().unwrap_or_default();
        let key_signers = self.signers.get("DNSKEY").cloned().unwrap_or_default();
        format!(
            "serial {}: DNSKEY {keys:?}, SOA signed by {zone_signers:?}, DNSKEY signed by \
             {key_signers:?}, CDS {:?}",
            self.serial,
            ds_tags(&self.cds)
        )
    }
}

/// Every signed version the watcher saw in the daemon's `signed/` folder,
/// and every serial the daemon served in SOA responses.
#[derive(Default)]
struct Versions {
    saved: Vec<SignedVersion>,
    served: BTreeSet<u32>,
    /// Serials saved twice with different contents.
    rewritten: Vec<u32>,
}

/// Copies every new content of the daemon's saved signed zone into
/// `out_dir` and notes every serial served, until `stop` is set.
fn watch_versions(
    saved_file: PathBuf,
    child: SocketAddr,
    out_dir: PathBuf,
    stop: Arc<AtomicBool>,
    timeline: Timeline,
) -> Versions {
    std::fs::create_dir_all(&out_dir).unwrap();
    let mut versions = Versions::default();
    let mut last = Vec::new();
    let deadline = Instant::now() + TEST_DEADLINE;
    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
        if let Ok(content) = std::fs::read(&saved_file) {
            if content != last {
                save_version(&content, &out_dir, &mut versions, &timeline);
                last = content;
            }
        }
        if let Ok(response) = dns::query(
            child,
            "child.test.",
            dns::SOA,
            false,
            Duration::from_millis(300),
        ) {
            if let Some(serial) = response.rdata_of(dns::SOA).find_map(dns::soa_serial) {
                if versions.served.insert(serial) {
                    timeline.note(format!("child serves serial {serial}"));
                }
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    versions
}

fn save_version(content: &[u8], out_dir: &Path, versions: &mut Versions, timeline: &Timeline) {
    let text = String::from_utf8_lossy(content);
    let index = versions.saved.len();
    let path = out_dir.join(format!("{index:03}.zone"));
    std::fs::write(&path, content).unwrap();
    let Some(version) = SignedVersion::parse(&path, &text) else {
        timeline.note(format!("saved zone {} has no SOA serial", path.display()));
        return;
    };
    if versions
        .saved
        .iter()
        .any(|saved| saved.serial == version.serial)
    {
        versions.rewritten.push(version.serial);
    }
    timeline.note(format!("saved {}", version.describe()));
    versions.saved.push(version);
}

/// Runs `dnssec-verify` on every saved version and returns the failures.
fn verify_versions(dnssec_verify: &Path, versions: &Versions) -> Vec<String> {
    let mut failures = Vec::new();
    for version in &versions.saved {
        let output = run(Command::new(dnssec_verify)
            .args(["-o", "child.test"])
            .arg(&version.path));
        if !output.status.success() {
            failures.push(format!(
                "dnssec-verify rejected serial {} ({}): {}",
                version.serial,
                version.path.display(),
                output_text(&output)
            ));
        }
    }
    failures
}

/// The registrar: copies the child's CDS RRset to the parent's DS RRset,
/// `REGISTRAR_DELAY` after it first sees a difference, until `stop` is set.
fn run_registrar(
    parent: ParentClient,
    child: SocketAddr,
    stop: Arc<AtomicBool>,
    timeline: Timeline,
) -> Vec<String> {
    let mut errors = Vec::new();
    let mut pending: Option<(BTreeSet<DsRecord>, Instant)> = None;
    let deadline = Instant::now() + TEST_DEADLINE;
    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        // The daemon may be down in the restart test: try again later.
        let Ok(response) = dns::query(child, "child.test.", dns::CDS, false, QUERY_TIMEOUT) else {
            continue;
        };
        if response.rcode != dns::NOERROR || !response.authoritative {
            continue;
        }
        let cds: BTreeSet<DsRecord> = response
            .rdata_of(dns::CDS)
            .filter_map(DsRecord::from_rdata)
            .collect();
        // No CDS RRset means no change is requested (RFC 7344 section 4.1).
        if cds.is_empty() {
            pending = None;
            continue;
        }
        let requested = if cds.iter().any(DsRecord::is_delete) {
            BTreeSet::new()
        } else {
            cds
        };
        let at_parent = match parent.ds_set() {
            Ok(records) => records,
            Err(error) => {
                errors.push(error);
                continue;
            }
        };
        if requested == at_parent {
            pending = None;
            continue;
        }
        match &pending {
            Some((records, since)) if *records == requested => {
                if since.elapsed() < REGISTRAR_DELAY {
                    continue;
                }
                match parent.replace_ds(&requested) {
                    Ok(()) => timeline.note(format!(
                        "registrar replaced the parent's DS {:?} with {:?}",
                        ds_tags(&at_parent),
                        ds_tags(&requested)
                    )),
                    Err(error) => errors.push(error),
                }
                pending = None;
            }
            _ => {
                timeline.note(format!(
                    "registrar sees CDS {:?} while the parent has DS {:?}",
                    ds_tags(&requested),
                    ds_tags(&at_parent)
                ));
                pending = Some((requested, Instant::now()));
            }
        }
    }
    errors
}

/// A question the querier sends to one resolver, with the expected response.
struct Question {
    name: String,
    rtype: u16,
    rcode: u8,
    /// The answer section must contain a record of this type.
    answer_type: Option<u16>,
}

/// A response that was not the expected validated one.
#[derive(Clone, Debug)]
struct BadResponse {
    at: f64,
    resolver: &'static str,
    question: String,
    problem: String,
    rcode: Option<u8>,
    extended_errors: Vec<u16>,
}

impl BadResponse {
    /// Returns the text without the time, for the timeline.
    fn describe(&self) -> String {
        format!(
            "{} {}: {} (extended errors {:?})",
            self.resolver, self.question, self.problem, self.extended_errors
        )
    }
}

impl fmt::Display for BadResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:8.2} s {}", self.at, self.describe())
    }
}

#[derive(Default)]
struct QueryReport {
    /// Queries sent, per resolver.
    sent: BTreeMap<&'static str, usize>,
    servfails: Vec<BadResponse>,
    /// Responses without the AD bit, with an unexpected RCODE or without
    /// the expected records, and queries without a response.
    other: Vec<BadResponse>,
}

/// Queries both resolvers in rounds until `stop` is set: an existing name,
/// a new nonexistent name each round (an NSEC3 proof) and the DNSKEY
/// RRset, and at the parent-anchored resolver also the child's DS RRset.
fn run_querier(
    resolvers: Vec<(&'static str, SocketAddr)>,
    stop: Arc<AtomicBool>,
    timeline: Timeline,
) -> QueryReport {
    const MAX_ROUNDS: usize = 100_000;
    let mut report = QueryReport::default();
    let deadline = Instant::now() + TEST_DEADLINE;
    for round in 0..MAX_ROUNDS {
        if stop.load(Ordering::Relaxed) || Instant::now() >= deadline {
            break;
        }
        for (resolver, address) in &resolvers {
            let mut questions = vec![
                Question {
                    name: "www.child.test.".to_string(),
                    rtype: dns::A,
                    rcode: dns::NOERROR,
                    answer_type: Some(dns::A),
                },
                Question {
                    name: format!("nosuch-{round}.child.test."),
                    rtype: dns::A,
                    rcode: dns::NXDOMAIN,
                    answer_type: None,
                },
                Question {
                    name: "child.test.".to_string(),
                    rtype: dns::DNSKEY,
                    rcode: dns::NOERROR,
                    answer_type: Some(dns::DNSKEY),
                },
            ];
            if *resolver == PARENT_ANCHORED {
                questions.push(Question {
                    name: "child.test.".to_string(),
                    rtype: dns::DS,
                    rcode: dns::NOERROR,
                    answer_type: Some(dns::DS),
                });
            }
            for question in &questions {
                *report.sent.entry(resolver).or_default() += 1;
                ask(resolver, *address, question, &timeline, &mut report);
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    report
}

fn ask(
    resolver: &'static str,
    address: SocketAddr,
    question: &Question,
    timeline: &Timeline,
    report: &mut QueryReport,
) {
    let result = dns::query(address, &question.name, question.rtype, true, QUERY_TIMEOUT);
    let mut bad = BadResponse {
        at: timeline.now(),
        resolver,
        question: format!("{} type {}", question.name, question.rtype),
        problem: String::new(),
        rcode: None,
        extended_errors: Vec::new(),
    };
    let response = match result {
        Ok(response) => response,
        Err(error) => {
            bad.problem = format!("no response: {error}");
            report.other.push(bad);
            return;
        }
    };
    bad.rcode = Some(response.rcode);
    bad.extended_errors = response.extended_errors.clone();
    if response.rcode == dns::SERVFAIL {
        bad.problem = "SERVFAIL".to_string();
        timeline.note(bad.describe());
        report.servfails.push(bad);
        return;
    }
    let problem = if response.rcode != question.rcode {
        format!("RCODE {} instead of {}", response.rcode, question.rcode)
    } else if !response.authenticated {
        "no AD bit".to_string()
    } else if question
        .answer_type
        .is_some_and(|rtype| response.rdata_of(rtype).next().is_none())
    {
        "no answer record".to_string()
    } else {
        return;
    };
    bad.problem = problem;
    timeline.note(bad.describe());
    report.other.push(bad);
}

const PARENT_ANCHORED: &str = "parent-anchored";
const RFC5011: &str = "rfc5011";

/// A time span during which the daemon was down: from the kill until it
/// served the zone again.
#[derive(Clone, Copy, Debug)]
struct Outage {
    from: f64,
    until: f64,
}

/// The parent, the child, both resolvers and the background threads.
struct Harness {
    test: &'static str,
    _dir: tempfile::TempDir,
    root: PathBuf,
    timeline: Timeline,
    tools: Tools,
    parent: Parent,
    child: Child,
    resolvers: Vec<Unbound>,
    stop: Arc<AtomicBool>,
    querier: Option<JoinHandle<QueryReport>>,
    registrar: Option<JoinHandle<Vec<String>>>,
    watcher: Option<JoinHandle<Versions>>,
    outages: Vec<Outage>,
}

/// What the background threads found, collected by [`Harness::finish`].
struct Findings {
    queries: QueryReport,
    registrar_errors: Vec<String>,
    versions: Versions,
    verify_failures: Vec<String>,
    published: Vec<Published>,
    resolver_logs: Vec<(&'static str, String)>,
}

impl Harness {
    /// Starts everything and checks that both resolvers validate the child
    /// before any key moves.
    fn start(test: &'static str) -> Option<Self> {
        let tools = Tools::find(test)?;
        let mut dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        if std::env::var_os("KEYMASTER_E2E_KEEP").is_some() {
            dir.disable_cleanup(true);
            eprintln!("{test}: files are kept in {}", root.display());
        }
        let timeline = Timeline::new();
        let parent = Parent::start(test, &root.join("parent"), &tools.nsupdate)?;
        timeline.note(format!("parent test. signed on {}", parent.address()));

        let mut child = Child::new(&root.join("child"), parent.address().port());
        child.start();
        timeline.note(format!("child {CHILD}. served on {}", child.address()));
        let (ds, dnskeys) = child_ds_and_dnskeys(&child);
        parent
            .client
            .replace_ds(&ds)
            .unwrap_or_else(|error| panic!("{error}"));
        let delegated = wait_until(Duration::from_secs(10), || {
            parent.client.ds_set().is_ok_and(|records| records == ds)
        });
        assert!(delegated, "the parent does not serve the DS records {ds:?}");
        timeline.note(format!("registrar added the first DS {:?}", ds_tags(&ds)));

        let mut harness = Self {
            test,
            _dir: dir,
            root,
            timeline,
            tools,
            parent,
            child,
            resolvers: Vec::new(),
            stop: Arc::new(AtomicBool::new(false)),
            querier: None,
            registrar: None,
            watcher: None,
            outages: Vec::new(),
        };
        harness.start_watcher();
        harness.start_resolvers(&dnskeys)?;
        harness.check_resolvers_validate();
        harness.start_querier_and_registrar();
        Some(harness)
    }

    fn start_watcher(&mut self) {
        let saved = self.child.data_dir.join("signed").join("child.test.zone");
        let child = self.child.address();
        let out_dir = self.root.join("versions");
        let stop = self.stop.clone();
        let timeline = self.timeline.clone();
        self.watcher = Some(std::thread::spawn(move || {
            watch_versions(saved, child, out_dir, stop, timeline)
        }));
    }

    /// Starts the parent-anchored resolver and the RFC 5011 resolver,
    /// whose trust-anchor file starts with the child's KSK.
    fn start_resolvers(&mut self, child_dnskeys: &[String]) -> Option<()> {
        let stubs = [
            Stub::new("test.", self.parent.address().port()),
            Stub::new("child.test.", self.child.dns_port),
        ];
        let common = "  verbosity: 1\n  val-log-level: 2\n  ede: yes\n  \
                      trust-anchor-signaling: no\n  infra-keep-probing: yes\n  \
                      infra-host-ttl: 2\n";
        let anchored = format!(
            "{common}  trust-anchor: \"{}\"\n",
            self.parent.client.trust_anchor()
        );
        let parent_dir = self.root.join("unbound-parent-anchored");
        self.resolvers
            .push(Unbound::start(self.test, &parent_dir, &stubs, &anchored)?);

        let rfc5011_dir = self.root.join("unbound-rfc5011");
        std::fs::create_dir_all(&rfc5011_dir).unwrap();
        let anchor_file = rfc5011_dir.join("child.test.anchor");
        let ksks: Vec<&String> = child_dnskeys
            .iter()
            .filter(|line| line.split_whitespace().any(|field| field == "257"))
            .collect();
        assert!(
            !ksks.is_empty(),
            "keymaster ds printed no KSK DNSKEY: {child_dnskeys:?}"
        );
        let anchor_text: String = ksks.iter().map(|line| format!("{line}\n")).collect();
        std::fs::write(&anchor_file, anchor_text).unwrap();
        let rfc5011 = format!(
            "{common}  auto-trust-anchor-file: \"{}\"\n  add-holddown: {HOLD_DOWN}\n  \
             del-holddown: {HOLD_DOWN}\n  permit-small-holddown: yes\n",
            anchor_file.display()
        );
        self.resolvers
            .push(Unbound::start(self.test, &rfc5011_dir, &stubs, &rfc5011)?);
        Some(())
    }

    fn resolver_addresses(&self) -> Vec<(&'static str, SocketAddr)> {
        vec![
            (PARENT_ANCHORED, self.resolvers[0].address()),
            (RFC5011, self.resolvers[1].address()),
        ]
    }

    /// Asserts that both resolvers return `www.child.test.` validated.
    fn check_resolvers_validate(&self) {
        for (name, address) in self.resolver_addresses() {
            let validated = wait_until(Duration::from_secs(20), || {
                dns::query(address, "www.child.test.", dns::A, true, QUERY_TIMEOUT).is_ok_and(
                    |response| {
                        response.rcode == dns::NOERROR
                            && response.authenticated
                            && response.rdata_of(dns::A).next().is_some()
                    },
                )
            });
            let log = self.resolvers.iter().map(Unbound::log).collect::<Vec<_>>();
            assert!(
                validated,
                "resolver {name} does not validate www.child.test. before any rollover; logs:\n{}",
                log.join("\n----\n")
            );
            self.timeline
                .note(format!("resolver {name} validates www.child.test."));
        }
    }

    fn start_querier_and_registrar(&mut self) {
        let resolvers = self.resolver_addresses();
        let stop = self.stop.clone();
        let timeline = self.timeline.clone();
        self.querier = Some(std::thread::spawn(move || {
            run_querier(resolvers, stop, timeline)
        }));
        let parent = self.parent.client.clone();
        let child = self.child.address();
        let stop = self.stop.clone();
        let timeline = self.timeline.clone();
        self.registrar = Some(std::thread::spawn(move || {
            run_registrar(parent, child, stop, timeline)
        }));
    }

    /// Kills the daemon with SIGKILL, restarts it on the same data
    /// directory and records the outage.
    fn kill_and_restart(&mut self) {
        let from = self.timeline.now();
        self.child.kill();
        self.timeline.note("killed keymaster serve with SIGKILL");
        self.child.start();
        let until = self.timeline.now();
        self.timeline.note(format!(
            "restarted keymaster serve (start {}), serving again after {:.2} s",
            self.child.starts,
            until - from
        ));
        self.outages.push(Outage { from, until });
    }

    /// Stops the background threads and collects what they found.
    fn finish(&mut self) -> Findings {
        std::thread::sleep(SETTLE);
        self.stop.store(true, Ordering::Relaxed);
        let queries = self
            .querier
            .take()
            .map(|handle| handle.join().expect("querier thread"))
            .unwrap_or_default();
        let registrar_errors = self
            .registrar
            .take()
            .map(|handle| handle.join().expect("registrar thread"))
            .unwrap_or_default();
        let versions = self
            .watcher
            .take()
            .map(|handle| handle.join().expect("watcher thread"))
            .unwrap_or_default();
        let verify_failures = verify_versions(&self.tools.dnssec_verify, &versions);
        let resolver_logs = vec![
            (PARENT_ANCHORED, self.resolvers[0].log()),
            (RFC5011, self.resolvers[1].log()),
        ];
        Findings {
            queries,
            registrar_errors,
            versions,
            verify_failures,
            published: self.child.published_serials(),
            resolver_logs,
        }
    }

    /// Returns true when `at` falls between a kill and `RESTART_GRACE`
    /// after the restarted daemon served the zone again.
    fn in_outage(&self, at: f64) -> bool {
        let grace = RESTART_GRACE.as_secs_f64();
        self.outages
            .iter()
            .any(|outage| at >= outage.from && at <= outage.until + grace)
    }

    /// Splits bad responses into those the outages explain and the rest.
    /// A response is explained when it came during an outage and `excused`
    /// accepts it.
    fn split_by_outage<'a>(
        &self,
        responses: &'a [BadResponse],
        excused: impl Fn(&BadResponse) -> bool,
    ) -> (Vec<&'a BadResponse>, Vec<&'a BadResponse>) {
        responses
            .iter()
            .partition(|bad| self.in_outage(bad.at) && excused(bad))
    }

    /// Returns the published serials that were never saved, split into
    /// those a kill explains and the rest. The daemon serves a version
    /// before it saves it, so the last version published by a start that
    /// was killed may never reach the file, and it cannot be verified.
    fn unsaved_serials(&self, findings: &Findings) -> (Vec<Published>, Vec<Published>) {
        let saved: BTreeSet<u32> = findings.versions.saved.iter().map(|v| v.serial).collect();
        let killed_starts = 1..=self.outages.len();
        let last_of_start = |start: usize| {
            findings
                .published
                .iter()
                .rfind(|(other, _)| *other == start)
                .map(|(_, serial)| *serial)
        };
        findings
            .published
            .iter()
            .filter(|(_, serial)| !saved.contains(serial))
            .partition(|(start, serial)| {
                killed_starts.contains(start) && last_of_start(*start) == Some(*serial)
            })
    }

    /// Prints the timeline and a summary, then asserts that no resolver
    /// returned SERVFAIL or an unvalidated response (other than during an
    /// outage, when the child's only name server was down), that neither
    /// resolver logged a validation failure, and that every published
    /// serial was saved and accepted by `dnssec-verify`.
    fn check(&self, findings: &Findings) {
        eprintln!("=== {} timeline ===\n{}", self.test, self.timeline.text());
        let queries = &findings.queries;
        // While the daemon is down a resolver with an expired cache has no
        // server to ask, but a DNSSEC extended error would still be a bug.
        let (servfails_in_outage, servfails) = self.split_by_outage(&queries.servfails, |bad| {
            !bad.extended_errors
                .iter()
                .any(|code| is_dnssec_error(*code))
        });
        let (others_in_outage, others) =
            self.split_by_outage(&queries.other, |bad| bad.rcode.is_none());
        let (unsaved_killed, unsaved) = self.unsaved_serials(findings);
        let published: BTreeSet<u32> = findings.published.iter().map(|(_, s)| *s).collect();
        let saved: BTreeSet<u32> = findings.versions.saved.iter().map(|v| v.serial).collect();
        eprintln!(
            "=== {} summary ===\nqueries sent: {:?}\n\
             SERVFAIL: {} ({} while the daemon was down)\n\
             other bad responses: {} ({} while the daemon was down)\n\
             published serials: {published:?}\nsaved and verified: {saved:?}\n\
             served: {:?}\nrewritten serials: {:?}\n\
             published by a killed start but never saved: {unsaved_killed:?}\n\
             daemon warnings and errors: {:#?}",
            self.test,
            queries.sent,
            queries.servfails.len(),
            servfails_in_outage.len(),
            queries.other.len(),
            others_in_outage.len(),
            findings.versions.served,
            findings.versions.rewritten,
            self.child.warnings(),
        );

        for (name, log) in &findings.resolver_logs {
            let failures: Vec<&str> = log
                .lines()
                .filter(|line| line.contains("validation failure"))
                .collect();
            assert!(
                failures.is_empty(),
                "resolver {name} logged validation failures:\n{}",
                failures.join("\n")
            );
        }
        assert!(
            servfails.is_empty(),
            "{} SERVFAIL responses:\n{}",
            servfails.len(),
            list_responses(&servfails)
        );
        assert!(
            others.is_empty(),
            "{} unexpected responses:\n{}",
            others.len(),
            list_responses(&others)
        );
        for (name, sent) in &queries.sent {
            assert!(*sent > 100, "only {sent} queries reached resolver {name}");
        }
        assert!(
            findings.registrar_errors.is_empty(),
            "registrar errors: {:#?}",
            findings.registrar_errors
        );

        assert!(
            findings.verify_failures.is_empty(),
            "{}",
            findings.verify_failures.join("\n")
        );
        assert!(
            findings.versions.rewritten.is_empty(),
            "serials saved twice with different contents: {:?}",
            findings.versions.rewritten
        );
        assert!(
            unsaved.is_empty(),
            "published serials never saved to signed/child.test.zone, so not verified: {unsaved:?}"
        );
    }
}

fn list_responses(responses: &[&BadResponse]) -> String {
    responses
        .iter()
        .map(|bad| bad.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

impl Drop for Harness {
    /// Stops the background threads and waits for them, which takes at
    /// most a few query timeouts. The guards then stop the processes.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(handle) = self.querier.take() {
            let _ = handle.join();
        }
        if let Some(handle) = self.registrar.take() {
            let _ = handle.join();
        }
        if let Some(handle) = self.watcher.take() {
            let _ = handle.join();
        }
    }
}

fn state<'a>(key: &'a Value, record: &str) -> &'a str {
    key[format!("{record}_state")].as_str().unwrap_or("?")
}

fn key_id(key: &Value) -> String {
    match &key["id"] {
        Value::String(id) => id.clone(),
        other => other.to_string(),
    }
}

fn key_tag_of(key: &Value) -> u16 {
    key["key_tag"]
        .as_u64()
        .and_then(|tag| u16::try_from(tag).ok())
        .unwrap_or(0)
}

fn keys_with_role<'a>(keys: &'a [Value], role: &str) -> Vec<&'a Value> {
    keys.iter().filter(|key| key["role"] == role).collect()
}

/// Returns true when the key is no longer listed or none of its records
/// is in the zone or at the parent.
fn is_gone(keys: &[Value], id: &str) -> bool {
    keys.iter().filter(|key| key_id(key) == id).all(|key| {
        ["dnskey", "krrsig", "zrrsig", "ds"]
            .iter()
            .all(|record| state(key, record) == "hidden")
    })
}

/// Returns one line per key: tag, role and the four record states.
fn describe_keys(keys: &[Value]) -> String {
    keys.iter()
        .map(|key| {
            format!(
                "{} {} id {}: dnskey {} krrsig {} zrrsig {} ds {}",
                key_tag_of(key),
                key["role"].as_str().unwrap_or("?"),
                key_id(key),
                state(key, "dnskey"),
                state(key, "krrsig"),
                state(key, "zrrsig"),
                state(key, "ds")
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Polls `key list` every half second, notes every change of the key
/// states, and returns the list once `done` accepts it. Panics with the key
/// list and the timeline after `ROLLOVER_DEADLINE`.
fn wait_for_keys(harness: &Harness, what: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + ROLLOVER_DEADLINE;
    let mut last = String::new();
    let mut last_error = String::new();
    while Instant::now() < deadline {
        match harness.child.keys() {
            Ok(keys) => {
                let summary = describe_keys(&keys);
                if summary != last {
                    harness.timeline.note(format!("keys: {summary}"));
                    last = summary;
                }
                if done(&keys) {
                    return keys;
                }
            }
            Err(error) => last_error = error,
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let zone = harness
        .child
        .json(&["zone", "show", CHILD])
        .unwrap_or_else(Value::String);
    let log = harness.child.log(harness.child.starts);
    let log_tail: Vec<&str> = log.lines().rev().take(60).collect();
    panic!(
        "{what} did not finish within {} s; last key list: {last}; last CLI error: {last_error}\n\
         zone show: {zone:#}\ntimeline:\n{}\nend of the daemon's log:\n{}",
        ROLLOVER_DEADLINE.as_secs(),
        harness.timeline.text(),
        log_tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    );
}

/// Waits until the first KSK and ZSK are fully in place: both DNSKEYs and
/// their signatures omnipresent, and the KSK's DS seen at the parent.
fn wait_for_first_keys(harness: &Harness) {
    wait_for_keys(harness, "the introduction of the first keys", |keys| {
        let ksks = keys_with_role(keys, "ksk");
        let zsks = keys_with_role(keys, "zsk");
        let ready = |key: &Value, records: &[&str]| {
            records
                .iter()
                .all(|record| state(key, record) == "omnipresent")
        };
        ksks.len() == 1
            && zsks.len() == 1
            && ready(ksks[0], &["dnskey", "krrsig", "ds"])
            && ready(zsks[0], &["dnskey", "zrrsig"])
    });
}

/// Returns the id and tag of the only key with `role`.
fn only_key(keys: &[Value], role: &str) -> (String, u16) {
    let found = keys_with_role(keys, role);
    assert_eq!(
        found.len(),
        1,
        "expected one {role}: {}",
        describe_keys(keys)
    );
    (key_id(found[0]), key_tag_of(found[0]))
}

fn start_rollover(harness: &Harness, id: &str) {
    let output = harness.child.cli(&["key", "rollover", CHILD, id]);
    assert!(
        output.status.success(),
        "keymaster key rollover {CHILD} {id} failed: {}",
        output_text(&output)
    );
    harness
        .timeline
        .note(format!("requested the rollover of key {id}"));
}

/// Returns true when a new key of `role` has taken over from `old_id`:
/// the old key is gone and the only key of the role has the listed
/// records omnipresent.
fn replaced(keys: &[Value], role: &str, old_id: &str, records: &[&str]) -> bool {
    let current = keys_with_role(keys, role)
        .into_iter()
        .filter(|key| !is_gone(keys, &key_id(key)))
        .collect::<Vec<_>>();
    is_gone(keys, old_id)
        && current.len() == 1
        && key_id(current[0]) != old_id
        && records
            .iter()
            .all(|record| state(current[0], record) == "omnipresent")
}

/// Runs a KSK rollover to its end, calling `during` after the request
/// with the old key's id.
fn roll_ksk(harness: &mut Harness, during: impl FnOnce(&mut Harness, &str)) -> (u16, u16) {
    let keys = harness
        .child
        .keys()
        .unwrap_or_else(|error| panic!("{error}"));
    let (old_id, old_tag) = only_key(&keys, "ksk");
    start_rollover(harness, &old_id);
    during(harness, &old_id);
    let keys = wait_for_keys(harness, "the KSK rollover", |keys| {
        replaced(keys, "ksk", &old_id, &["dnskey", "krrsig", "ds"])
    });
    let (_, new_tag) = only_key(&keys, "ksk");
    harness
        .timeline
        .note(format!("KSK rollover {old_tag} -> {new_tag} finished"));
    (old_tag, new_tag)
}

/// Asserts what a finished KSK rollover leaves behind. The parent serves
/// only the new KSK's DS, and a saved version published the old KSK with
/// the REVOKE flag. The last version has no trace of the old key, and the
/// RFC 5011 resolver trusts the new KSK.
fn check_ksk_rollover(harness: &Harness, findings: &Findings, old_tag: u16, new_tag: u16) {
    let at_parent = harness
        .parent
        .client
        .ds_set()
        .unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(
        ds_tags(&at_parent),
        vec![new_tag],
        "the parent's DS RRset after the KSK rollover"
    );

    let versions = &findings.versions.saved;
    let old_key = versions
        .iter()
        .flat_map(|version| version.keys.iter())
        .find(|key| key.key_tag == old_tag && key.flags & REVOKE_FLAG == 0)
        .unwrap_or_else(|| panic!("no saved version has the old KSK {old_tag}"))
        .clone();
    let revoked = versions.iter().find(|version| {
        version
            .keys
            .iter()
            .any(|key| key.public_key == old_key.public_key && key.flags & REVOKE_FLAG != 0)
    });
    let revoked = revoked.unwrap_or_else(|| {
        panic!("no saved version published the old KSK {old_tag} with the REVOKE flag")
    });
    let revoked_tag = revoked
        .keys
        .iter()
        .find(|key| key.public_key == old_key.public_key)
        .map(|key| key.key_tag)
        .unwrap_or_default();
    assert!(
        revoked
            .signers
            .get("DNSKEY")
            .is_some_and(|signers| signers.contains(&revoked_tag)),
        "the revoked KSK does not sign the DNSKEY RRset in serial {} (RFC 5011 section 2.1)",
        revoked.serial
    );

    let last = versions.last().expect("saved versions");
    assert!(
        last.keys
            .iter()
            .all(|key| key.public_key != old_key.public_key),
        "the last saved version still has the old KSK: {}",
        last.describe()
    );

    let anchors = std::fs::read_to_string(harness.resolvers[1].dir().join("child.test.anchor"))
        .unwrap_or_default();
    let trusted = anchors
        .lines()
        .any(|line| line.contains(&format!("id = {new_tag} (ksk)")) && line.contains("VALID"));
    assert!(
        trusted,
        "the RFC 5011 resolver does not hold the new KSK {new_tag} as VALID:\n{anchors}"
    );
    let still_trusted = anchors
        .lines()
        .any(|line| line.contains(&format!("id = {old_tag} (ksk)")) && line.contains("VALID"));
    assert!(
        !still_trusted,
        "the RFC 5011 resolver still trusts the old KSK {old_tag}:\n{anchors}"
    );
}

#[test]
fn child_validates_through_bind_parent() {
    let test = "child_validates_through_bind_parent";
    let Some(mut harness) = Harness::start(test) else {
        return;
    };
    // Without a rollover the keys stay, and the registrar changes nothing
    // because any CDS RRset requests the DS the parent already has.
    std::thread::sleep(SETTLE);
    let findings = harness.finish();
    harness.check(&findings);
    let keys = harness
        .child
        .keys()
        .unwrap_or_else(|error| panic!("{error}"));
    let (_, ksk_tag) = only_key(&keys, "ksk");
    only_key(&keys, "zsk");
    let at_parent = harness
        .parent
        .client
        .ds_set()
        .unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(ds_tags(&at_parent), vec![ksk_tag], "the parent's DS RRset");
    let versions = &findings.versions.saved;
    assert!(!versions.is_empty(), "no signed version was saved");
    for version in versions {
        assert!(
            version.cds.is_empty() || version.cds == at_parent,
            "serial {} has CDS {:?} while the parent has DS {:?}",
            version.serial,
            ds_tags(&version.cds),
            ds_tags(&at_parent)
        );
    }
}

#[test]
fn zsk_and_ksk_rollovers_with_bind_parent_and_unbound() {
    let test = "zsk_and_ksk_rollovers_with_bind_parent_and_unbound";
    let Some(mut harness) = Harness::start(test) else {
        return;
    };

    wait_for_first_keys(&harness);

    // ZSK rollover by pre-publication.
    let keys = harness
        .child
        .keys()
        .unwrap_or_else(|error| panic!("{error}"));
    let (old_zsk, old_zsk_tag) = only_key(&keys, "zsk");
    start_rollover(&harness, &old_zsk);
    let keys = wait_for_keys(&harness, "the ZSK rollover", |keys| {
        replaced(keys, "zsk", &old_zsk, &["dnskey", "zrrsig"])
    });
    let (_, new_zsk_tag) = only_key(&keys, "zsk");
    harness.timeline.note(format!(
        "ZSK rollover {old_zsk_tag} -> {new_zsk_tag} finished"
    ));
    std::thread::sleep(SETTLE);

    // KSK rollover by double-KSK with RFC 5011 revocation.
    let (old_ksk_tag, new_ksk_tag) = roll_ksk(&mut harness, |_, _| {});
    let findings = harness.finish();
    harness.check(&findings);

    let last = findings.versions.saved.last().expect("saved versions");
    let zone_signers = last.signers.get("SOA").cloned().unwrap_or_default();
    assert_eq!(
        zone_signers,
        BTreeSet::from([new_zsk_tag]),
        "zone data of the last version must be signed by the new ZSK only: {}",
        last.describe()
    );
    assert!(
        last.keys.iter().all(|key| key.key_tag != old_zsk_tag),
        "the last version still publishes the old ZSK: {}",
        last.describe()
    );
    check_ksk_rollover(&harness, &findings, old_ksk_tag, new_ksk_tag);
}

#[test]
fn rollover_survives_kill_9() {
    let test = "rollover_survives_kill_9";
    let seed = std::env::var("KEYMASTER_E2E_SEED")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|elapsed| elapsed.as_secs())
                .unwrap_or_default()
        });
    eprintln!("{test}: seed {seed} (set KEYMASTER_E2E_SEED to repeat it)");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    // Each kill comes 0.5 to 8 s after the previous start, so all three
    // fall within the rollover, which waits for two hold-downs.
    let delays: Vec<Duration> = (0..3)
        .map(|_| Duration::from_millis(rng.gen_range(500..=8000)))
        .collect();
    eprintln!("{test}: kills {delays:?} after each start");
    let Some(mut harness) = Harness::start(test) else {
        return;
    };
    wait_for_first_keys(&harness);

    let (old_tag, new_tag) = roll_ksk(&mut harness, |harness, old_id| {
        for delay in &delays {
            std::thread::sleep(*delay);
            let keys = harness
                .child
                .keys()
                .unwrap_or_else(|error| panic!("{error}"));
            harness
                .timeline
                .note(format!("keys before the kill: {}", describe_keys(&keys)));
            assert!(
                !is_gone(&keys, old_id),
                "the rollover finished before the kill after {delay:?}; seed {seed}"
            );
            harness.kill_and_restart();
        }
    });
    let findings = harness.finish();
    eprintln!("{test}: seed {seed}, kills {delays:?} after each start");
    harness.check(&findings);
    check_ksk_rollover(&harness, &findings, old_tag, new_tag);
}
