//! The parent DS check: which DS records the parent zone serves for a zone.
//!
//! During a KSK rollover the Key Master must not retire the old KSK until
//! the parent zone serves the new DS record at every address of every
//! parent name server, and none of them serves the old one. This module
//! queries each of those addresses directly and reports, per key, whether its
//! DS is served everywhere ([`ParentDs::AtAllServers`]), nowhere
//! ([`ParentDs::Gone`]) or at some servers only ([`ParentDs::Mixed`]).
//!
//! Terms: the *parent zone* is the zone that contains the delegation point
//! (the zone cut) of the zone. Its DS RRset at that point holds one DS
//! record per KSK the parent trusts (RFC 4034 section 5). An answer is
//! *authoritative* when the server sets the AA bit. A *referral* hands the
//! query to other servers without the AA bit, and a *lame* server answers
//! from a zone other than the parent zone.
//!
//! Every query is non-recursive, carries EDNS with the DO bit, goes over
//! UDP first and over TCP when the UDP response is truncated. Responses
//! whose ID, QR bit or question do not match the query are ignored. A
//! server that times out, returns an error code, a referral, a lame or a
//! malformed response is an error for that server, and while any server
//! fails no key is reported as served everywhere or gone.
//!
//! Everything here blocks (std sockets with timeouts); callers in async
//! code run it on a blocking thread.
//!
//! Limitations: answers are not validated with DNSSEC and queries carry no
//! TSIG, so the check trusts the path to the parent servers. The check is
//! strict by design, and each of these makes a server fail until it is
//! fixed, which holds rollovers back: an address this host cannot reach
//! (an IPv6 address without IPv6 routing, say), and a NODATA answer
//! without an SOA record, which RFC 2308 allows but which does not show
//! which zone answered.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, UdpSocket};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use domain::base::iana::{Class, OptRcode, Rtype};
use domain::base::name::ToName;
use domain::base::wire::ParseError;
use domain::base::{Message, MessageBuilder, ParsedName};
use domain::rdata::{Aaaa, Cname, Ds, Ns, Rrsig, Soa, A};
use keymaster_keys::{ds_rdata, DigestType};
use keymaster_lifecycle::{Observations, ParentDs};
use keymaster_zone::Name;

/// EDNS UDP payload size offered in queries, the value DNS Flag Day 2020
/// recommends to avoid IP fragmentation.
const UDP_PAYLOAD_SIZE: u16 = 1232;

/// Maximum number of non-matching UDP datagrams read for one query before
/// the query fails, so a flood of stray packets cannot keep it busy.
const MAX_IGNORED: usize = 64;

/// Maximum CNAME records followed when resolving a name server's address.
const MAX_CNAME_CHAIN: usize = 16;

/// Bytes of a DS command's standard error kept for the error message.
const MAX_STDERR: usize = 4096;

/// One DS record (RFC 4034 section 5.1).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DsRecord {
    /// Key tag of the DNSKEY the record refers to.
    pub key_tag: u16,
    /// DNSSEC algorithm number of that DNSKEY.
    pub algorithm: u8,
    /// Digest type number (1 SHA-1, 2 SHA-256, 4 SHA-384).
    pub digest_type: u8,
    /// Digest of the owner name and DNSKEY RDATA.
    pub digest: Vec<u8>,
}

impl fmt::Display for DsRecord {
    /// Writes the RDATA in presentation format, digest in upper-case hex.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} {}",
            self.key_tag,
            self.algorithm,
            self.digest_type,
            data_encoding::HEXUPPER.encode(&self.digest)
        )
    }
}

/// The DS RRset one parent server returned for a zone.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DsRrset {
    /// The records, sorted and without duplicates. Empty when the server
    /// returned an authoritative NODATA response.
    pub records: Vec<DsRecord>,
    /// The largest TTL of the records, `None` when there are none.
    pub ttl: Option<u32>,
}

/// Transport protocol of a query.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// UDP, tried first.
    Udp,
    /// TCP, used after a truncated UDP response.
    Tcp,
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Udp => "UDP",
            Self::Tcp => "TCP",
        })
    }
}

/// Error of a query to a parent server or to the resolver.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ParentError {
    /// A socket operation failed, for example because nothing listens.
    #[error("query {qname} {qtype} to {server} over {transport} failed: {source}")]
    Io {
        server: SocketAddr,
        qname: Name,
        qtype: Rtype,
        transport: Transport,
        #[source]
        source: io::Error,
    },
    /// No matching response arrived in time, or 64 non-matching ones
    /// arrived first.
    #[error(
        "query {qname} {qtype} to {server} over {transport} timed out after {timeout:?} \
         ({ignored} non-matching responses ignored)"
    )]
    Timeout {
        server: SocketAddr,
        qname: Name,
        qtype: Rtype,
        transport: Transport,
        timeout: Duration,
        ignored: usize,
    },
    /// The TCP response has another ID, no QR bit or another question.
    #[error("response from {server} over TCP does not match the query {qname} {qtype}")]
    Mismatch {
        server: SocketAddr,
        qname: Name,
        qtype: Rtype,
    },
    /// The response could not be parsed.
    #[error("malformed response from {server} to {qname} {qtype}: {source}")]
    Parse {
        server: SocketAddr,
        qname: Name,
        qtype: Rtype,
        #[source]
        source: ParseError,
    },
    /// The response parsed but breaks the protocol.
    #[error("malformed response from {server} to {qname} {qtype}: {reason}")]
    Malformed {
        server: SocketAddr,
        qname: Name,
        qtype: Rtype,
        reason: &'static str,
    },
    /// The response code is neither NOERROR nor, where allowed, NXDOMAIN.
    #[error("{server} returned {rcode} to {qname} {qtype}")]
    Rcode {
        server: SocketAddr,
        qname: Name,
        qtype: Rtype,
        rcode: OptRcode,
    },
    /// The parent server returned NXDOMAIN for the zone name: it has no
    /// delegation for the zone.
    #[error("{server} returned NXDOMAIN to {zone} DS: the parent zone has no delegation to it")]
    NxDomain { server: SocketAddr, zone: Name },
    /// The server referred the query elsewhere, so it does not serve the
    /// parent zone.
    #[error(
        "{server} returned a referral to {zone} DS: it is not authoritative for the parent zone"
    )]
    Referral { server: SocketAddr, zone: Name },
    /// The response has the AA bit clear.
    #[error("{server} returned a non-authoritative response (AA bit clear) to {zone} DS")]
    NotAuthoritative { server: SocketAddr, zone: Name },
    /// The response came from a zone that is not above the zone, such as
    /// the child zone itself or an unrelated zone.
    #[error(
        "{server} answered {zone} DS from zone {answered_by}, not from the parent zone (lame)"
    )]
    Lame {
        server: SocketAddr,
        zone: Name,
        answered_by: Name,
    },
    /// A NODATA response without SOA record, so its zone is unknown.
    #[error("{server} returned no DS for {zone} without an SOA record, so the answering zone is unknown")]
    NoSoa { server: SocketAddr, zone: Name },
    /// The answer section contains a record other than the zone's DS
    /// RRset and its signatures.
    #[error("{server} answered {zone} DS with an unexpected {owner} {rtype} record")]
    UnexpectedAnswer {
        server: SocketAddr,
        zone: Name,
        owner: Name,
        rtype: Rtype,
    },
    /// The check was given no parent server to ask.
    #[error("no parent servers to query for {zone} DS: set parent_servers or a resolver")]
    NoServers { zone: Name },
    /// The zone is the root zone.
    #[error("{zone} has no parent zone")]
    NoParent { zone: Name },
    /// The resolver returned no NS RRset for any ancestor of the zone.
    #[error("the resolver at {resolver} found no parent zone name servers for {zone}")]
    NoNameServers { resolver: SocketAddr, zone: Name },
    /// None of the parent's name servers has an address.
    #[error(
        "the resolver at {resolver} found no address for any name server of {parent}, \
         the parent zone of {zone}"
    )]
    NoAddresses {
        resolver: SocketAddr,
        zone: Name,
        parent: Name,
    },
}

/// The DS records the parent zone's servers serve for a zone, in the
/// lifecycle engine's terms.
#[derive(Debug, Default)]
pub struct ParentView {
    /// DS state per key id. A key is missing when its state is unknown
    /// because a server failed and the others agree.
    pub per_key: BTreeMap<String, ParentDs>,
    /// Key tags of DS records, at any server, that match no given key.
    pub unknown_tags: Vec<u16>,
    /// `Some(true)` when every server answered and at least one DS record
    /// exists, `Some(false)` when every server answered without DS records,
    /// `None` when a server failed.
    pub secure_delegation: Option<bool>,
    /// The largest DS TTL seen at any server.
    pub ds_ttl: Option<u64>,
    /// One error per failed server, or [`ParentError::NoServers`] when
    /// there was no server to ask.
    pub errors: Vec<ParentError>,
    /// A one-line summary per server, in query order, for logs and status.
    pub servers: Vec<(SocketAddr, String)>,
}

impl ParentView {
    /// Copies the parent facts into the engine's observations. The operator
    /// requests and the key store state are left alone.
    pub fn apply_to(&self, observations: &mut Observations) {
        observations.parent_ds = self.per_key.clone();
        observations.unknown_ds_tags = self.unknown_tags.clone();
        observations.secure_delegation = self.secure_delegation;
        observations.parent_ds_ttl = self.ds_ttl;
    }
}

/// Queries `server` for the DS RRset of `zone`.
///
/// `timeout` applies to the UDP exchange and again to the TCP exchange
/// after a truncated UDP response.
pub fn query_ds(
    zone: &Name,
    server: SocketAddr,
    timeout: Duration,
) -> Result<DsRrset, ParentError> {
    let query = Query::new(zone, Rtype::DS, false);
    let bytes = exchange(&query, server, timeout)?;
    let response = Response::parse(&bytes).map_err(|e| query.error(server, e))?;
    ds_from_response(zone, server, &query, &response)
}

/// Queries every server in `servers` in parallel and matches their DS
/// records against `keys`, pairs of key id and DNSKEY RDATA (without the
/// REVOKE flag).
pub fn check_parent(
    zone: &Name,
    servers: &[SocketAddr],
    keys: &[(String, Vec<u8>)],
    timeout: Duration,
) -> ParentView {
    let mut unique = Vec::with_capacity(servers.len());
    for server in servers {
        if !unique.contains(server) {
            unique.push(*server);
        }
    }
    let results = std::thread::scope(|scope| {
        let handles: Vec<_> = unique
            .iter()
            .map(|&server| scope.spawn(move || (server, query_ds(zone, server, timeout))))
            .collect();
        let mut results = Vec::with_capacity(handles.len());
        for handle in handles {
            match handle.join() {
                Ok(result) => results.push(result),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        results
    });
    summarize(zone, keys, results)
}

/// Finds the addresses (port 53) of the name servers of the parent zone of
/// `zone`, asking the recursive resolver at `resolver`. The addresses come
/// per name server in canonical name order, A before AAAA.
///
/// The search walks up from the zone's parent name, asking for NS records
/// until an NS RRset is found. The SOA record in the authority section of
/// a negative answer names the enclosing zone, so the walk jumps to it.
/// Each name server's A and AAAA records are then resolved. A name server
/// without addresses is skipped. Any failed lookup is an error, because a
/// missing server could hide a stale DS record.
pub fn find_parent_servers(
    zone: &Name,
    resolver: SocketAddr,
    timeout: Duration,
) -> Result<Vec<SocketAddr>, ParentError> {
    let (parent, hosts) = find_parent_zone(zone, resolver, timeout)?;
    let mut addresses = Vec::new();
    for host in &hosts {
        for qtype in [Rtype::A, Rtype::AAAA] {
            for ip in resolve_addresses(host, qtype, resolver, timeout)? {
                let address = SocketAddr::new(ip, 53);
                if !addresses.contains(&address) {
                    addresses.push(address);
                }
            }
        }
    }
    if addresses.is_empty() {
        return Err(ParentError::NoAddresses {
            resolver,
            zone: zone.clone(),
            parent,
        });
    }
    Ok(addresses)
}

/// Error of [`run_ds_command`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DsCommandError {
    /// The command has no program.
    #[error("the DS command is empty: set the policy's parent_ds_command to a program and its arguments")]
    Empty,
    /// The program could not be started.
    #[error("failed to start DS command {program}: {source}")]
    Spawn {
        program: String,
        #[source]
        source: io::Error,
    },
    /// Waiting for the program failed.
    #[error("failed to wait for DS command {program}: {source}")]
    Wait {
        program: String,
        #[source]
        source: io::Error,
    },
    /// The program ran longer than the timeout and was killed.
    #[error("DS command {program} timed out after {timeout:?} and was killed")]
    TimedOut { program: String, timeout: Duration },
    /// The program exited unsuccessfully.
    #[error("DS command {program} failed ({status}): {}", first_line_or_none(.stderr))]
    Failed {
        program: String,
        status: ExitStatus,
        /// The first line of its standard error, possibly empty.
        stderr: String,
    },
}

/// Runs the operator's DS command for `zone`.
///
/// The program in `command[0]` gets the other elements of `command` and then
/// the zone name as arguments, and `ds_records` (presentation format, one
/// per line) on standard input. Its standard output is discarded. It runs in
/// its own process group, which is killed when it runs longer than
/// `timeout`, so helpers it started do not outlive it.
pub fn run_ds_command(
    command: &[String],
    zone: &str,
    ds_records: &str,
    timeout: Duration,
) -> Result<(), DsCommandError> {
    let (program, arguments) = command.split_first().ok_or(DsCommandError::Empty)?;
    let mut child = Command::new(program)
        .args(arguments)
        .arg(zone)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|source| DsCommandError::Spawn {
            program: program.clone(),
            source,
        })?;

    // Feed standard input and read standard error on their own threads, so
    // a program that ignores either pipe cannot block this one.
    if let Some(mut stdin) = child.stdin.take() {
        let input = ds_records.to_owned();
        std::thread::spawn(move || {
            // A program may exit without reading its input.
            let _ = stdin.write_all(input.as_bytes());
        });
    }
    let stderr = child.stderr.take().map(read_limited);

    let status = match wait_with_timeout(&mut child, timeout) {
        Ok(Some(status)) => status,
        Ok(None) => {
            kill_group(&mut child);
            return Err(DsCommandError::TimedOut {
                program: program.clone(),
                timeout,
            });
        }
        Err(source) => {
            kill_group(&mut child);
            return Err(DsCommandError::Wait {
                program: program.clone(),
                source,
            });
        }
    };
    if status.success() {
        return Ok(());
    }
    // The pipe closes when the program exits, unless a helper it started
    // keeps it open. Wait briefly and then report without its output.
    let text = stderr
        .and_then(|receiver| receiver.recv_timeout(Duration::from_secs(1)).ok())
        .unwrap_or_default();
    Err(DsCommandError::Failed {
        program: program.clone(),
        status,
        stderr: text.lines().next().unwrap_or("").trim().to_owned(),
    })
}

/// Returns `stderr`, or a note that it was empty.
fn first_line_or_none(stderr: &str) -> &str {
    if stderr.is_empty() {
        "no error output"
    } else {
        stderr
    }
}

/// Polls `child` until it exits or `timeout` passes. Returns `None` on
/// timeout.
fn wait_with_timeout(child: &mut Child, timeout: Duration) -> io::Result<Option<ExitStatus>> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(None);
        }
        std::thread::sleep((deadline - now).min(Duration::from_millis(20)));
    }
}

/// Kills the process group `child` leads, then the child, and reaps it.
fn kill_group(child: &mut Child) {
    let group = rustix::process::Pid::from_child(child);
    // The child may have exited already, and then the group may be empty.
    let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
    let _ = child.kill();
    let _ = child.wait();
}

/// Reads a pipe to its end on a new thread and sends the first
/// `MAX_STDERR` bytes, as lossy UTF-8, when it closes.
fn read_limited(mut pipe: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        let mut kept = Vec::new();
        let mut chunk = [0u8; 1024];
        // Ends at end of file or on a read error. Each pass reads data.
        while let Ok(read) = pipe.read(&mut chunk) {
            if read == 0 {
                break;
            }
            let room = MAX_STDERR.saturating_sub(kept.len());
            kept.extend_from_slice(&chunk[..read.min(room)]);
        }
        let _ = sender.send(String::from_utf8_lossy(&kept).into_owned());
    });
    receiver
}

/// Walks up from the zone's parent name to the nearest name with an NS
/// RRset and returns it with its name server names in canonical order.
fn find_parent_zone(
    zone: &Name,
    resolver: SocketAddr,
    timeout: Duration,
) -> Result<(Name, Vec<Name>), ParentError> {
    let mut candidate = zone
        .parent()
        .ok_or_else(|| ParentError::NoParent { zone: zone.clone() })?;
    // Every pass moves to a strictly shorter name, so the walk ends at the
    // root after at most 127 passes.
    loop {
        let response = resolve(&candidate, Rtype::NS, resolver, timeout)?;
        // A set, because servers rotate the order of an RRset's records.
        let hosts: BTreeSet<Name> = response
            .answer
            .iter()
            .filter(|record| record.owner == candidate)
            .filter_map(|record| match &record.data {
                RecordData::Ns(host) => Some(host.clone()),
                _ => None,
            })
            .collect();
        if !hosts.is_empty() {
            return Ok((candidate, hosts.into_iter().collect()));
        }

        // A negative answer's SOA names the zone that contains the name.
        let enclosing = response
            .authority
            .iter()
            .find(|record| record.rtype == Rtype::SOA && candidate.is_below(&record.owner))
            .map(|record| record.owner.clone());
        candidate = match enclosing.or_else(|| candidate.parent()) {
            Some(next) => next,
            None => {
                return Err(ParentError::NoNameServers {
                    resolver,
                    zone: zone.clone(),
                })
            }
        };
    }
}

/// Returns the addresses of type `qtype` (A or AAAA) of `host`, following
/// CNAME records in the answer. The list is empty when the name or the
/// type does not exist.
fn resolve_addresses(
    host: &Name,
    qtype: Rtype,
    resolver: SocketAddr,
    timeout: Duration,
) -> Result<Vec<IpAddr>, ParentError> {
    let response = resolve(host, qtype, resolver, timeout)?;
    let mut name = host.clone();
    for _ in 0..MAX_CNAME_CHAIN {
        let target = response
            .answer
            .iter()
            .find_map(|record| match &record.data {
                RecordData::Cname(target) if record.owner == name => Some(target.clone()),
                _ => None,
            });
        match target {
            Some(target) => name = target,
            None => break,
        }
    }
    let addresses = response
        .answer
        .iter()
        .filter(|record| record.owner == name)
        .filter_map(|record| match record.data {
            RecordData::A(ip) if qtype == Rtype::A => Some(IpAddr::V4(ip)),
            RecordData::Aaaa(ip) if qtype == Rtype::AAAA => Some(IpAddr::V6(ip)),
            _ => None,
        })
        .collect();
    Ok(addresses)
}

/// Sends a recursive query to the resolver. NOERROR and NXDOMAIN responses
/// are returned, and other response codes are errors.
fn resolve(
    qname: &Name,
    qtype: Rtype,
    resolver: SocketAddr,
    timeout: Duration,
) -> Result<Response, ParentError> {
    let query = Query::new(qname, qtype, true);
    let bytes = exchange(&query, resolver, timeout)?;
    let response = Response::parse(&bytes).map_err(|e| query.error(resolver, e))?;
    if response.rcode != OptRcode::NOERROR && response.rcode != OptRcode::NXDOMAIN {
        return Err(ParentError::Rcode {
            server: resolver,
            qname: qname.clone(),
            qtype,
            rcode: response.rcode,
        });
    }
    Ok(response)
}

/// Reads the DS RRset for `zone` out of a parent server's response.
fn ds_from_response(
    zone: &Name,
    server: SocketAddr,
    query: &Query,
    response: &Response,
) -> Result<DsRrset, ParentError> {
    if response.rcode == OptRcode::NXDOMAIN {
        return Err(ParentError::NxDomain {
            server,
            zone: zone.clone(),
        });
    }
    if response.rcode != OptRcode::NOERROR {
        return Err(ParentError::Rcode {
            server,
            qname: query.qname.clone(),
            qtype: query.qtype,
            rcode: response.rcode,
        });
    }

    // Collect the DS records and check that the parent zone signed them.
    let mut records = BTreeSet::new();
    let mut ttl = None;
    for record in response.answer.iter().filter(|r| r.owner == *zone) {
        match &record.data {
            RecordData::Ds(ds) => {
                records.insert(ds.clone());
                ttl = ttl.max(Some(record.ttl));
            }
            RecordData::Rrsig {
                type_covered,
                signer,
            } if *type_covered == Rtype::DS => {
                if !zone.is_below(signer) {
                    return Err(ParentError::Lame {
                        server,
                        zone: zone.clone(),
                        answered_by: signer.clone(),
                    });
                }
            }
            _ => {
                return Err(ParentError::UnexpectedAnswer {
                    server,
                    zone: zone.clone(),
                    owner: record.owner.clone(),
                    rtype: record.rtype,
                })
            }
        }
    }
    if !records.is_empty() {
        if !response.authoritative {
            return Err(ParentError::NotAuthoritative {
                server,
                zone: zone.clone(),
            });
        }
        return Ok(DsRrset {
            records: records.into_iter().collect(),
            ttl,
        });
    }
    nodata_from_response(zone, server, response)
}

/// Checks a response without DS records. Only an authoritative NODATA
/// response from a zone above `zone` means the parent has no DS for it.
fn nodata_from_response(
    zone: &Name,
    server: SocketAddr,
    response: &Response,
) -> Result<DsRrset, ParentError> {
    let zone = zone.clone();
    if let Some(record) = response.answer.first() {
        return Err(ParentError::UnexpectedAnswer {
            server,
            zone,
            owner: record.owner.clone(),
            rtype: record.rtype,
        });
    }
    if !response.authoritative {
        let referral = response.authority.iter().any(|r| r.rtype == Rtype::NS);
        return Err(if referral {
            ParentError::Referral { server, zone }
        } else {
            ParentError::NotAuthoritative { server, zone }
        });
    }
    match response.authority.iter().find(|r| r.rtype == Rtype::SOA) {
        Some(soa) if zone.is_below(&soa.owner) => Ok(DsRrset::default()),
        Some(soa) => Err(ParentError::Lame {
            server,
            zone,
            answered_by: soa.owner.clone(),
        }),
        None => Err(ParentError::NoSoa { server, zone }),
    }
}

/// A key to match against DS records, with its DS RDATA for each
/// supported digest type.
struct KeyDigests<'a> {
    id: &'a str,
    ds: Vec<Bytes>,
}

impl<'a> KeyDigests<'a> {
    fn new(zone: &Name, id: &'a str, dnskey_rdata: &[u8]) -> Self {
        let ds = [DigestType::Sha1, DigestType::Sha256, DigestType::Sha384]
            .into_iter()
            .map(|digest| ds_rdata(zone, dnskey_rdata, digest))
            .collect();
        Self { id, ds }
    }

    /// Returns true if `record` has this key's tag, algorithm and digest.
    /// A record with an unsupported digest type matches no key.
    fn matches(&self, record: &DsRecord) -> bool {
        self.ds.iter().any(|ds| {
            ds[..2] == record.key_tag.to_be_bytes()
                && ds[2] == record.algorithm
                && ds[3] == record.digest_type
                && ds[4..] == record.digest[..]
        })
    }
}

/// Per-key counts of servers that have and lack the key's DS record.
#[derive(Default)]
struct Presence {
    present: usize,
    absent: usize,
}

/// Builds the view from each server's result.
fn summarize(
    zone: &Name,
    keys: &[(String, Vec<u8>)],
    results: Vec<(SocketAddr, Result<DsRrset, ParentError>)>,
) -> ParentView {
    let keys: Vec<KeyDigests<'_>> = keys
        .iter()
        .map(|(id, rdata)| KeyDigests::new(zone, id, rdata))
        .collect();
    let mut view = ParentView::default();
    let mut presence: BTreeMap<&str, Presence> = BTreeMap::new();
    let mut unknown_tags = BTreeSet::new();
    let mut any_ds = false;

    for (server, result) in results {
        let rrset = match result {
            Ok(rrset) => rrset,
            Err(error) => {
                tracing::debug!(zone = %zone, %server, %error, "parent DS query failed");
                view.servers.push((server, format!("error: {error}")));
                view.errors.push(error);
                continue;
            }
        };
        for key in &keys {
            let counts = presence.entry(key.id).or_default();
            if rrset.records.iter().any(|record| key.matches(record)) {
                counts.present += 1;
            } else {
                counts.absent += 1;
            }
        }
        let mut described = Vec::with_capacity(rrset.records.len());
        for record in &rrset.records {
            let owners: Vec<&str> = keys
                .iter()
                .filter(|k| k.matches(record))
                .map(|k| k.id)
                .collect();
            if owners.is_empty() {
                unknown_tags.insert(record.key_tag);
            }
            described.push(describe_ds(record, &owners));
        }
        any_ds |= !rrset.records.is_empty();
        view.ds_ttl = view.ds_ttl.max(rrset.ttl.map(u64::from));
        let summary = match rrset.ttl {
            Some(ttl) => format!("DS {} (TTL {ttl})", described.join(", ")),
            None => "no DS".to_owned(),
        };
        tracing::debug!(zone = %zone, %server, %summary, "parent server returned the DS RRset");
        view.servers.push((server, summary));
    }

    // A key's state is certain only when every server answered, except that
    // disagreement among the servers that did answer is already Mixed.
    let failed = !view.errors.is_empty();
    for (id, counts) in presence {
        let state = match (counts.present, counts.absent) {
            (p, a) if p > 0 && a > 0 => ParentDs::Mixed,
            _ if failed => continue,
            (_, 0) => ParentDs::AtAllServers,
            _ => ParentDs::Gone,
        };
        view.per_key.insert(id.to_owned(), state);
    }
    if view.servers.is_empty() {
        view.errors
            .push(ParentError::NoServers { zone: zone.clone() });
    }
    view.secure_delegation = (!failed && !view.servers.is_empty()).then_some(any_ds);
    view.unknown_tags = unknown_tags.into_iter().collect();
    view
}

/// Formats a DS record for a server summary: tag, algorithm, digest type
/// and the ids of the keys it matches.
fn describe_ds(record: &DsRecord, owners: &[&str]) -> String {
    let owner = if owners.is_empty() {
        "unknown key".to_owned()
    } else {
        owners.join(" ")
    };
    format!(
        "{}/{}/{} ({owner})",
        record.key_tag, record.algorithm, record.digest_type
    )
}

/// A query in wire format with what its response must echo.
struct Query {
    id: u16,
    qname: Name,
    qtype: Rtype,
    wire: Vec<u8>,
}

impl Query {
    /// Builds a query for `qname` `qtype` IN with a random ID and EDNS with
    /// the DO bit.
    fn new(qname: &Name, qtype: Rtype, recursion_desired: bool) -> Self {
        let id = rand::random::<u16>();
        let mut builder = MessageBuilder::new_vec();
        builder.header_mut().set_id(id);
        builder.header_mut().set_rd(recursion_desired);
        let mut question = builder.question();
        let name = domain_name(qname);
        // A Vec grows as needed and one question with one OPT record stays
        // far below the 65,535-octet message limit, so the pushes succeed.
        question
            .push((name, qtype, Class::IN))
            .expect("one question fits in a message");
        let mut additional = question.additional();
        additional
            .opt(|opt| {
                opt.set_udp_payload_size(UDP_PAYLOAD_SIZE);
                opt.set_dnssec_ok(true);
                Ok(())
            })
            .expect("one OPT record fits in a message");
        Self {
            id,
            qname: qname.clone(),
            qtype,
            wire: additional.finish(),
        }
    }

    /// Returns true if `bytes` is a response to this query: same ID, the QR
    /// bit set and the same single question.
    fn is_answered_by(&self, bytes: &[u8]) -> bool {
        let Ok(message) = Message::from_slice(bytes) else {
            return false;
        };
        let header = message.header();
        if header.id() != self.id || !header.qr() || message.header_counts().qdcount() != 1 {
            return false;
        }
        let Some(question) = message.first_question() else {
            return false;
        };
        question.qtype() == self.qtype
            && question.qclass() == Class::IN
            && question.qname().name_eq(domain_name(&self.qname))
    }

    /// Wraps a problem with a response to this query from `server`.
    fn error(&self, server: SocketAddr, problem: ResponseProblem) -> ParentError {
        let (qname, qtype) = (self.qname.clone(), self.qtype);
        match problem {
            ResponseProblem::Parse(source) => ParentError::Parse {
                server,
                qname,
                qtype,
                source,
            },
            ResponseProblem::Invalid(reason) => ParentError::Malformed {
                server,
                qname,
                qtype,
                reason,
            },
        }
    }

    fn timeout(
        &self,
        server: SocketAddr,
        transport: Transport,
        timeout: Duration,
        ignored: usize,
    ) -> ParentError {
        ParentError::Timeout {
            server,
            qname: self.qname.clone(),
            qtype: self.qtype,
            transport,
            timeout,
            ignored,
        }
    }

    fn io_error(&self, server: SocketAddr, transport: Transport, source: io::Error) -> ParentError {
        ParentError::Io {
            server,
            qname: self.qname.clone(),
            qtype: self.qtype,
            transport,
            source,
        }
    }
}

/// Converts a keymaster name to the `domain` crate's type for comparisons.
fn domain_name(name: &Name) -> &domain::base::Name<[u8]> {
    domain::base::Name::from_slice(name.as_wire())
        .expect("a keymaster Name is a valid uncompressed name")
}

/// Sends `query` over UDP and, when the response is truncated, over TCP.
/// Returns the matching response.
fn exchange(query: &Query, server: SocketAddr, timeout: Duration) -> Result<Vec<u8>, ParentError> {
    let response = exchange_udp(query, server, timeout)?;
    // `is_answered_by` checked the 12-octet header, so index 2 exists.
    let truncated = response[2] & 0x02 != 0;
    if !truncated {
        return Ok(response);
    }
    tracing::trace!(%server, qname = %query.qname, "response truncated, retrying over TCP");
    exchange_tcp(query, server, timeout)
}

/// Sends `query` once over UDP and waits up to `timeout` for a matching
/// response, ignoring up to `MAX_IGNORED` datagrams that do not match.
fn exchange_udp(
    query: &Query,
    server: SocketAddr,
    timeout: Duration,
) -> Result<Vec<u8>, ParentError> {
    let io_error = |e| query.io_error(server, Transport::Udp, e);
    let local: SocketAddr = match server {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    // A connected socket receives datagrams from `server` only.
    let socket = UdpSocket::bind(local).map_err(io_error)?;
    socket.connect(server).map_err(io_error)?;
    socket.send(&query.wire).map_err(io_error)?;

    let deadline = Instant::now() + timeout;
    let mut buffer = vec![0u8; 65_535];
    let mut ignored = 0;
    while ignored < MAX_IGNORED {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            break;
        }
        socket.set_read_timeout(Some(remaining)).map_err(io_error)?;
        let len = match socket.recv(&mut buffer) {
            Ok(len) => len,
            Err(e) if is_timeout(&e) => break,
            Err(e) => return Err(io_error(e)),
        };
        if query.is_answered_by(&buffer[..len]) {
            buffer.truncate(len);
            return Ok(buffer);
        }
        tracing::trace!(%server, len, "ignored a datagram that does not match the query");
        ignored += 1;
    }
    Err(query.timeout(server, Transport::Udp, timeout, ignored))
}

/// Sends `query` over a new TCP connection and reads one response, all
/// within `timeout`.
fn exchange_tcp(
    query: &Query,
    server: SocketAddr,
    timeout: Duration,
) -> Result<Vec<u8>, ParentError> {
    let deadline = Instant::now() + timeout;
    let failed = |e: io::Error| {
        if is_timeout(&e) {
            query.timeout(server, Transport::Tcp, timeout, 0)
        } else {
            query.io_error(server, Transport::Tcp, e)
        }
    };
    let mut stream = TcpStream::connect_timeout(&server, timeout).map_err(failed)?;
    let len = u16::try_from(query.wire.len()).expect("a query is shorter than 65,536 octets");
    let mut framed = Vec::with_capacity(2 + query.wire.len());
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(&query.wire);
    stream
        .set_write_timeout(Some(timeout))
        .and_then(|()| stream.write_all(&framed))
        .map_err(failed)?;

    let mut prefix = [0u8; 2];
    read_until(&mut stream, &mut prefix, deadline).map_err(failed)?;
    let mut response = vec![0u8; usize::from(u16::from_be_bytes(prefix))];
    read_until(&mut stream, &mut response, deadline).map_err(failed)?;
    if !query.is_answered_by(&response) {
        return Err(ParentError::Mismatch {
            server,
            qname: query.qname.clone(),
            qtype: query.qtype,
        });
    }
    if response[2] & 0x02 != 0 {
        return Err(query.error(server, ResponseProblem::Invalid("truncated over TCP")));
    }
    Ok(response)
}

/// Fills `buffer` from `stream`, failing with `TimedOut` at `deadline` even
/// when the peer sends a few octets at a time.
fn read_until(stream: &mut TcpStream, buffer: &mut [u8], deadline: Instant) -> io::Result<()> {
    let mut filled = 0;
    while filled < buffer.len() {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        stream.set_read_timeout(Some(remaining))?;
        match stream.read(&mut buffer[filled..])? {
            0 => return Err(io::ErrorKind::UnexpectedEof.into()),
            read => filled += read,
        }
    }
    Ok(())
}

/// Returns true for the error kinds a socket read timeout produces.
fn is_timeout(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// A problem with a response that matched its query.
enum ResponseProblem {
    Parse(ParseError),
    Invalid(&'static str),
}

impl From<ParseError> for ResponseProblem {
    fn from(error: ParseError) -> Self {
        Self::Parse(error)
    }
}

/// The parts of a response the check uses.
struct Response {
    rcode: OptRcode,
    authoritative: bool,
    answer: Vec<ParsedRecord>,
    authority: Vec<ParsedRecord>,
}

/// One record of a response with the data the check reads.
struct ParsedRecord {
    owner: Name,
    rtype: Rtype,
    ttl: u32,
    data: RecordData,
}

/// Record data of the types the check reads.
enum RecordData {
    Ds(DsRecord),
    Rrsig { type_covered: Rtype, signer: Name },
    Ns(Name),
    Cname(Name),
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    Other,
}

impl Response {
    /// Parses every section. Any malformed record fails the whole response.
    fn parse(bytes: &[u8]) -> Result<Self, ResponseProblem> {
        let message = Message::from_slice(bytes)
            .map_err(|_| ResponseProblem::Invalid("shorter than a header"))?;
        // Sections are cheap copies that each start at their first record.
        let answer_section = message.answer()?;
        let authority_section = answer_section
            .next_section()?
            .ok_or(ResponseProblem::Invalid("missing authority section"))?;
        let additional_section = authority_section
            .next_section()?
            .ok_or(ResponseProblem::Invalid("missing additional section"))?;
        let answer = parse_records(answer_section, false)?;
        let authority = parse_records(authority_section, false)?;
        parse_records(additional_section, true)?;
        Ok(Self {
            rcode: message.opt_rcode(),
            authoritative: message.header().aa(),
            answer,
            authority,
        })
    }
}

/// Parses the records of one section. Records of classes other than IN
/// are dropped, except OPT in the additional section.
fn parse_records(
    section: domain::base::message::RecordSection<'_, [u8]>,
    additional: bool,
) -> Result<Vec<ParsedRecord>, ResponseProblem> {
    let mut records = Vec::new();
    for item in section {
        let record = item?;
        let rtype = record.rtype();
        if rtype == Rtype::OPT {
            if !additional {
                return Err(ResponseProblem::Invalid(
                    "OPT record outside the additional section",
                ));
            }
            continue;
        }
        let owner = wire_name(&record.owner())?;
        let data = parse_data(&record)?;
        if record.class() != Class::IN {
            continue;
        }
        records.push(ParsedRecord {
            owner,
            rtype,
            ttl: record.ttl().as_secs(),
            data,
        });
    }
    Ok(records)
}

/// Parses the RDATA of the types the check reads.
fn parse_data(
    record: &domain::base::ParsedRecord<'_, [u8]>,
) -> Result<RecordData, ResponseProblem> {
    let data = match record.rtype() {
        Rtype::DS => {
            let ds = parsed::<Ds<&[u8]>>(record)?;
            RecordData::Ds(DsRecord {
                key_tag: ds.key_tag(),
                algorithm: ds.algorithm().to_int(),
                digest_type: ds.digest_type().to_int(),
                digest: ds.digest().to_vec(),
            })
        }
        Rtype::RRSIG => {
            let rrsig = parsed::<Rrsig<&[u8], ParsedName<&[u8]>>>(record)?;
            RecordData::Rrsig {
                type_covered: rrsig.type_covered(),
                signer: wire_name(rrsig.signer_name())?,
            }
        }
        Rtype::NS => RecordData::Ns(wire_name(
            parsed::<Ns<ParsedName<&[u8]>>>(record)?.nsdname(),
        )?),
        Rtype::CNAME => RecordData::Cname(wire_name(
            parsed::<Cname<ParsedName<&[u8]>>>(record)?.cname(),
        )?),
        Rtype::A => RecordData::A(parsed::<A>(record)?.addr()),
        Rtype::AAAA => RecordData::Aaaa(parsed::<Aaaa>(record)?.addr()),
        Rtype::SOA => {
            parsed::<Soa<ParsedName<&[u8]>>>(record)?;
            RecordData::Other
        }
        _ => RecordData::Other,
    };
    Ok(data)
}

/// Parses the RDATA of `record` as `Data`.
fn parsed<'a, Data>(record: &domain::base::ParsedRecord<'a, [u8]>) -> Result<Data, ResponseProblem>
where
    Data: domain::base::rdata::ParseRecordData<'a, [u8]>,
{
    match record.to_record::<Data>()? {
        Some(record) => Ok(record.into_data()),
        None => Err(ResponseProblem::Invalid(
            "record data of an unexpected type",
        )),
    }
}

/// Converts a name parsed from a message to a keymaster name.
fn wire_name(name: &impl ToName) -> Result<Name, ResponseProblem> {
    let wire = name.to_vec().into_octets();
    Name::from_wire(Bytes::from(wire)).map_err(|_| ResponseProblem::Invalid("invalid domain name"))
}

#[cfg(test)]
mod tests {
    use keymaster_keys::{Algorithm, KeyPair};
    use keymaster_zone::parse_name;

    use super::*;

    const SERVER: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 5300);

    fn name(text: &str) -> Name {
        parse_name(text, &Name::root()).unwrap()
    }

    /// A record for a hand-built response: owner, type, TTL and RDATA.
    struct Rr(Name, Rtype, u32, Vec<u8>);

    fn soa(owner: &str) -> Rr {
        let mut rdata = name(&format!("ns.{owner}")).as_wire().to_vec();
        rdata.extend_from_slice(name(&format!("hostmaster.{owner}")).as_wire());
        for value in [1u32, 3600, 600, 86400, 300] {
            rdata.extend_from_slice(&value.to_be_bytes());
        }
        Rr(name(owner), Rtype::SOA, 300, rdata)
    }

    fn ns(owner: &str, host: &str) -> Rr {
        Rr(name(owner), Rtype::NS, 300, name(host).as_wire().to_vec())
    }

    fn rrsig_ds(owner: &str, signer: &str) -> Rr {
        let mut rdata = Rtype::DS.to_int().to_be_bytes().to_vec();
        rdata.extend_from_slice(&[13, 2, 0, 0, 14, 16]);
        rdata.extend_from_slice(&[0x70, 0, 0, 0, 0x60, 0, 0, 0, 0x12, 0x34]);
        rdata.extend_from_slice(name(signer).as_wire());
        rdata.extend_from_slice(&[0xab; 64]);
        Rr(name(owner), Rtype::RRSIG, 3600, rdata)
    }

    fn ds(owner: &str, record: &DsRecord, ttl: u32) -> Rr {
        let mut rdata = record.key_tag.to_be_bytes().to_vec();
        rdata.extend_from_slice(&[record.algorithm, record.digest_type]);
        rdata.extend_from_slice(&record.digest);
        Rr(name(owner), Rtype::DS, ttl, rdata)
    }

    /// Builds a response to `query` with uncompressed names.
    fn response(query: &Query, flags: u16, answer: &[Rr], authority: &[Rr]) -> Vec<u8> {
        let mut wire = query.id.to_be_bytes().to_vec();
        wire.extend_from_slice(&(0x8000 | flags).to_be_bytes());
        for count in [1, answer.len(), authority.len(), 0] {
            wire.extend_from_slice(&(count as u16).to_be_bytes());
        }
        wire.extend_from_slice(query.qname.as_wire());
        wire.extend_from_slice(&query.qtype.to_int().to_be_bytes());
        wire.extend_from_slice(&1u16.to_be_bytes());
        for Rr(owner, rtype, ttl, rdata) in answer.iter().chain(authority) {
            wire.extend_from_slice(owner.as_wire());
            wire.extend_from_slice(&rtype.to_int().to_be_bytes());
            wire.extend_from_slice(&1u16.to_be_bytes());
            wire.extend_from_slice(&ttl.to_be_bytes());
            wire.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
            wire.extend_from_slice(rdata);
        }
        wire
    }

    const AA: u16 = 0x0400;
    const NXDOMAIN: u16 = 3;
    const REFUSED: u16 = 5;

    fn check(flags: u16, answer: &[Rr], authority: &[Rr]) -> Result<DsRrset, ParentError> {
        let zone = name("child.test.");
        let query = Query::new(&zone, Rtype::DS, false);
        let bytes = response(&query, flags, answer, authority);
        assert!(query.is_answered_by(&bytes));
        let parsed = Response::parse(&bytes).map_err(|e| query.error(SERVER, e))?;
        ds_from_response(&zone, SERVER, &query, &parsed)
    }

    fn key(flags: u16) -> Vec<u8> {
        KeyPair::generate(Algorithm::EcdsaP256Sha256, None)
            .unwrap()
            .dnskey_rdata(flags)
            .to_vec()
    }

    fn ds_of(zone: &str, dnskey: &[u8], digest: DigestType) -> DsRecord {
        let rdata = ds_rdata(&name(zone), dnskey, digest);
        DsRecord {
            key_tag: u16::from_be_bytes([rdata[0], rdata[1]]),
            algorithm: rdata[2],
            digest_type: rdata[3],
            digest: rdata[4..].to_vec(),
        }
    }

    #[test]
    fn ds_answer_with_aa_is_read() {
        let dnskey = key(257);
        let first = ds_of("child.test.", &dnskey, DigestType::Sha256);
        let second = ds_of("child.test.", &dnskey, DigestType::Sha384);
        let answer = [
            ds("child.test.", &second, 600),
            ds("child.test.", &first, 3600),
            ds("child.test.", &first, 3600),
            rrsig_ds("child.test.", "test."),
        ];
        let rrset = check(AA, &answer, &[]).unwrap();
        assert_eq!(rrset.records, vec![first, second]);
        assert_eq!(rrset.ttl, Some(3600));
    }

    #[test]
    fn ds_answer_without_aa_is_error() {
        let record = ds_of("child.test.", &key(257), DigestType::Sha256);
        let error = check(0, &[ds("child.test.", &record, 3600)], &[]).unwrap_err();
        assert!(
            matches!(error, ParentError::NotAuthoritative { .. }),
            "{error}"
        );
    }

    #[test]
    fn ds_signed_by_child_is_lame() {
        let record = ds_of("child.test.", &key(257), DigestType::Sha256);
        let answer = [
            ds("child.test.", &record, 3600),
            rrsig_ds("child.test.", "child.test."),
        ];
        match check(AA, &answer, &[]).unwrap_err() {
            ParentError::Lame { answered_by, .. } => assert_eq!(answered_by, name("child.test.")),
            other => panic!("expected Lame, got {other}"),
        }
    }

    #[test]
    fn nodata_from_parent_means_no_ds() {
        let rrset = check(AA, &[], &[soa("test.")]).unwrap();
        assert_eq!(rrset, DsRrset::default());
    }

    #[test]
    fn nodata_from_child_is_lame() {
        match check(AA, &[], &[soa("child.test.")]).unwrap_err() {
            ParentError::Lame { answered_by, .. } => assert_eq!(answered_by, name("child.test.")),
            other => panic!("expected Lame, got {other}"),
        }
    }

    #[test]
    fn nodata_from_unrelated_zone_is_lame() {
        let error = check(AA, &[], &[soa("other.")]).unwrap_err();
        assert!(matches!(error, ParentError::Lame { .. }), "{error}");
    }

    #[test]
    fn nodata_without_soa_is_error() {
        let error = check(AA, &[], &[]).unwrap_err();
        assert!(matches!(error, ParentError::NoSoa { .. }), "{error}");
    }

    #[test]
    fn referral_is_error() {
        let error = check(0, &[], &[ns("test.", "ns.test.")]).unwrap_err();
        assert!(matches!(error, ParentError::Referral { .. }), "{error}");
    }

    #[test]
    fn nodata_without_aa_is_error() {
        let error = check(0, &[], &[soa("test.")]).unwrap_err();
        assert!(
            matches!(error, ParentError::NotAuthoritative { .. }),
            "{error}"
        );
    }

    #[test]
    fn nxdomain_is_error() {
        let error = check(AA | NXDOMAIN, &[], &[soa("test.")]).unwrap_err();
        assert!(matches!(error, ParentError::NxDomain { .. }), "{error}");
    }

    #[test]
    fn refused_is_error() {
        match check(REFUSED, &[], &[]).unwrap_err() {
            ParentError::Rcode { rcode, .. } => assert_eq!(rcode, OptRcode::REFUSED),
            other => panic!("expected Rcode, got {other}"),
        }
    }

    #[test]
    fn cname_answer_is_error() {
        let cname = Rr(
            name("child.test."),
            Rtype::CNAME,
            300,
            name("x.test.").as_wire().to_vec(),
        );
        match check(AA, &[cname], &[]).unwrap_err() {
            ParentError::UnexpectedAnswer { rtype, .. } => assert_eq!(rtype, Rtype::CNAME),
            other => panic!("expected UnexpectedAnswer, got {other}"),
        }
    }

    #[test]
    fn ds_of_other_name_is_error() {
        let record = ds_of("other.test.", &key(257), DigestType::Sha256);
        match check(AA, &[ds("other.test.", &record, 3600)], &[]).unwrap_err() {
            ParentError::UnexpectedAnswer { owner, rtype, .. } => {
                assert_eq!(owner, name("other.test."));
                assert_eq!(rtype, Rtype::DS);
            }
            other => panic!("expected UnexpectedAnswer, got {other}"),
        }
    }

    #[test]
    fn short_ds_rdata_is_malformed() {
        let short = Rr(name("child.test."), Rtype::DS, 300, vec![0x12]);
        let error = check(AA, &[short], &[]).unwrap_err();
        assert!(matches!(error, ParentError::Parse { .. }), "{error}");
    }

    #[test]
    fn every_truncation_is_error_not_panic() {
        let zone = name("child.test.");
        let query = Query::new(&zone, Rtype::DS, false);
        let record = ds_of("child.test.", &key(257), DigestType::Sha256);
        let answer = [
            ds("child.test.", &record, 3600),
            rrsig_ds("child.test.", "test."),
        ];
        let bytes = response(&query, AA, &answer, &[soa("test.")]);
        assert!(Response::parse(&bytes).is_ok());
        for len in 0..bytes.len() {
            let cut = &bytes[..len];
            // The header counts records that a cut removes, so no prefix
            // may parse.
            assert!(
                Response::parse(cut).is_err(),
                "a prefix of {len} octets parsed"
            );
        }
    }

    #[test]
    fn response_matching_checks_id_qr_and_question() {
        let zone = name("child.test.");
        let query = Query::new(&zone, Rtype::DS, false);
        let good = response(&query, AA, &[], &[soa("test.")]);
        assert!(query.is_answered_by(&good));

        let mut wrong_id = good.clone();
        wrong_id[1] ^= 0xff;
        assert!(!query.is_answered_by(&wrong_id));

        let mut no_qr = good.clone();
        no_qr[2] &= 0x7f;
        assert!(!query.is_answered_by(&no_qr));

        let other = Query {
            id: query.id,
            qname: name("other.test."),
            qtype: Rtype::DS,
            wire: Vec::new(),
        };
        assert!(!query.is_answered_by(&response(&other, AA, &[], &[])));

        let other_type = Query {
            id: query.id,
            qname: zone.clone(),
            qtype: Rtype::NS,
            wire: Vec::new(),
        };
        assert!(!query.is_answered_by(&response(&other_type, AA, &[], &[])));

        let upper = Query {
            id: query.id,
            qname: name("CHILD.Test."),
            qtype: Rtype::DS,
            wire: Vec::new(),
        };
        assert!(query.is_answered_by(&response(&upper, AA, &[], &[])));
        assert!(!query.is_answered_by(&good[..11]));
    }

    #[test]
    fn query_is_non_recursive_with_do_bit() {
        let query = Query::new(&name("child.test."), Rtype::DS, false);
        let message = Message::from_slice(&query.wire).unwrap();
        assert!(!message.header().rd());
        assert!(!message.header().qr());
        let opt = message.opt().expect("an OPT record");
        assert!(opt.dnssec_ok());
        assert_eq!(opt.udp_payload_size(), UDP_PAYLOAD_SIZE);

        let recursive = Query::new(&name("test."), Rtype::NS, true);
        assert!(Message::from_slice(&recursive.wire).unwrap().header().rd());
    }

    #[test]
    fn key_matches_by_tag_algorithm_and_digest() {
        let dnskey = key(257);
        let keys = [KeyDigests::new(&name("child.test."), "a", &dnskey)];
        for digest in [DigestType::Sha1, DigestType::Sha256, DigestType::Sha384] {
            assert!(
                keys[0].matches(&ds_of("child.test.", &dnskey, digest)),
                "{digest}"
            );
        }

        let good = ds_of("child.test.", &dnskey, DigestType::Sha256);
        let mut unknown_type = good.clone();
        unknown_type.digest_type = 3;
        assert!(!keys[0].matches(&unknown_type));
        let mut other_algorithm = good.clone();
        other_algorithm.algorithm = 8;
        assert!(!keys[0].matches(&other_algorithm));
        let mut other_tag = good.clone();
        other_tag.key_tag ^= 1;
        assert!(!keys[0].matches(&other_tag));
        let mut other_digest = good.clone();
        other_digest.digest[0] ^= 1;
        assert!(!keys[0].matches(&other_digest));
        assert!(!keys[0].matches(&ds_of("other.test.", &dnskey, DigestType::Sha256)));
    }

    /// Generates ECDSA KSKs until two share a key tag. Among 5,000 random
    /// 16-bit tags a repeat is all but certain (birthday bound).
    fn keys_with_equal_tags() -> (Vec<u8>, Vec<u8>) {
        let mut seen: BTreeMap<u16, Vec<u8>> = BTreeMap::new();
        for _ in 0..5000 {
            let dnskey = key(257);
            let tag = keymaster_keys::key_tag(&dnskey);
            if let Some(first) = seen.insert(tag, dnskey.clone()) {
                return (first, dnskey);
            }
        }
        panic!("no two of 5,000 generated keys share a key tag");
    }

    #[test]
    fn keys_sharing_a_tag_match_by_digest() {
        let (first, second) = keys_with_equal_tags();
        let zone = name("child.test.");
        let keys = vec![
            ("first".to_owned(), first.clone()),
            ("second".to_owned(), second.clone()),
        ];
        let first_ds = ds_of("child.test.", &first, DigestType::Sha256);
        let second_ds = ds_of("child.test.", &second, DigestType::Sha256);
        assert_eq!(first_ds.key_tag, second_ds.key_tag);

        let view = summarize(&zone, &keys, vec![(server(1), rrset(&[&second_ds], 3600))]);
        assert_eq!(view.per_key.get("first"), Some(&ParentDs::Gone));
        assert_eq!(view.per_key.get("second"), Some(&ParentDs::AtAllServers));
        assert!(view.unknown_tags.is_empty());
    }

    fn server(last_octet: u8) -> SocketAddr {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, last_octet)), 53)
    }

    fn rrset(records: &[&DsRecord], ttl: u32) -> Result<DsRrset, ParentError> {
        Ok(DsRrset {
            records: records.iter().map(|r| (*r).clone()).collect(),
            ttl: (!records.is_empty()).then_some(ttl),
        })
    }

    fn refused(last_octet: u8) -> Result<DsRrset, ParentError> {
        Err(ParentError::Rcode {
            server: server(last_octet),
            qname: name("child.test."),
            qtype: Rtype::DS,
            rcode: OptRcode::REFUSED,
        })
    }

    #[test]
    fn summary_states_per_key() {
        let zone = name("child.test.");
        let (old, new, gone) = (key(257), key(257), key(257));
        let keys = vec![
            ("old".to_owned(), old.clone()),
            ("new".to_owned(), new.clone()),
            ("gone".to_owned(), gone),
        ];
        let old_ds = ds_of("child.test.", &old, DigestType::Sha256);
        let new_ds = ds_of("child.test.", &new, DigestType::Sha256);
        let mut stray = ds_of("child.test.", &key(257), DigestType::Sha256);
        stray.key_tag = 4242;
        let results = vec![
            (server(1), rrset(&[&old_ds, &new_ds], 3600)),
            (server(2), rrset(&[&new_ds, &stray], 7200)),
        ];
        let view = summarize(&zone, &keys, results);
        assert_eq!(view.per_key.get("old"), Some(&ParentDs::Mixed));
        assert_eq!(view.per_key.get("new"), Some(&ParentDs::AtAllServers));
        assert_eq!(view.per_key.get("gone"), Some(&ParentDs::Gone));
        assert_eq!(view.unknown_tags, vec![4242]);
        assert_eq!(view.secure_delegation, Some(true));
        assert_eq!(view.ds_ttl, Some(7200));
        assert!(view.errors.is_empty());
        assert_eq!(view.servers.len(), 2);
        assert!(
            view.servers[1].1.contains("4242/13/2 (unknown key)"),
            "{}",
            view.servers[1].1
        );
    }

    #[test]
    fn summary_with_failed_server_is_unknown() {
        let zone = name("child.test.");
        let (old, new) = (key(257), key(257));
        let keys = vec![
            ("old".to_owned(), old.clone()),
            ("new".to_owned(), new.clone()),
        ];
        let old_ds = ds_of("child.test.", &old, DigestType::Sha256);
        let new_ds = ds_of("child.test.", &new, DigestType::Sha256);
        let results = vec![
            (server(1), rrset(&[&old_ds, &new_ds], 3600)),
            (server(2), rrset(&[&new_ds], 3600)),
            (server(3), refused(3)),
        ];
        let view = summarize(&zone, &keys, results);
        assert_eq!(view.per_key.get("old"), Some(&ParentDs::Mixed));
        assert_eq!(view.per_key.get("new"), None);
        assert_eq!(view.secure_delegation, None);
        assert_eq!(view.errors.len(), 1);
        assert!(
            view.errors[0].to_string().contains("127.0.0.3:53"),
            "{}",
            view.errors[0]
        );
        assert!(
            view.servers[2].1.starts_with("error: "),
            "{}",
            view.servers[2].1
        );
    }

    #[test]
    fn summary_without_ds_is_insecure() {
        let zone = name("child.test.");
        let keys = vec![("ksk".to_owned(), key(257))];
        let results = vec![(server(1), rrset(&[], 0)), (server(2), rrset(&[], 0))];
        let view = summarize(&zone, &keys, results);
        assert_eq!(view.per_key.get("ksk"), Some(&ParentDs::Gone));
        assert_eq!(view.secure_delegation, Some(false));
        assert_eq!(view.ds_ttl, None);
        assert_eq!(view.servers[0].1, "no DS");
    }

    #[test]
    fn summary_without_servers_is_error() {
        let keys = vec![("ksk".to_owned(), key(257))];
        let view = summarize(&name("child.test."), &keys, Vec::new());
        assert!(view.per_key.is_empty());
        assert_eq!(view.secure_delegation, None);
        assert!(matches!(view.errors[..], [ParentError::NoServers { .. }]));
    }

    #[test]
    fn view_fills_observations() {
        let view = ParentView {
            per_key: BTreeMap::from([("k".to_owned(), ParentDs::Gone)]),
            unknown_tags: vec![7],
            secure_delegation: Some(false),
            ds_ttl: Some(60),
            ..ParentView::default()
        };
        let mut observations = Observations::default();
        view.apply_to(&mut observations);
        assert_eq!(observations.parent_ds, view.per_key);
        assert_eq!(observations.unknown_ds_tags, vec![7]);
        assert_eq!(observations.secure_delegation, Some(false));
        assert_eq!(observations.parent_ds_ttl, Some(60));
        assert!(observations.key_store_readable);
    }

    #[test]
    fn ds_record_presentation_format() {
        let record = DsRecord {
            key_tag: 60485,
            algorithm: 13,
            digest_type: 2,
            digest: vec![0xab, 0x01],
        };
        assert_eq!(record.to_string(), "60485 13 2 AB01");
    }
}
