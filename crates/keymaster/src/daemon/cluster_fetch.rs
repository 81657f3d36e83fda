//! Signed cluster zones on a member without the cluster key: it transfers
//! each version from a member that signs, checks it, and serves it.
//!
//! A member without the cluster key cannot sign, but the members that
//! can all publish the same signed version for a serial (see
//! `daemon::cluster_signing`). So when the watch reports a new signing
//! record, the keyless member requests the zone from a signer with AXFR
//! (RFC 5936) over TCP: the Key Master first, then every other online
//! member with the cluster key, by name.
//!
//! # The transfer key
//!
//! Members sign their transfer requests with TSIG (RFC 8945) under the
//! *cluster transfer key*, an HMAC-SHA256 key of 32 random octets kept in
//! the cluster store under `secrets/transfer-tsig`. The first member that
//! joins writes it with a create-only transaction, so two members never
//! write different keys, and every member allows transfers of the cluster
//! zones it publishes to requests signed with it, from any address.
//!
//! The key sits in etcd in clear. That is acceptable: it only lets its
//! holder read signed zone data that anyone with access to etcd can
//! already read unsigned under `content/`, and it is no DNSSEC key, so it
//! cannot make a signature a resolver would accept. The responses' TSIG
//! records are not checked, because the data itself is checked next.
//!
//! # Acceptance
//!
//! A transferred version is served only when:
//!
//! - its SOA serial equals the serial of the zone's signing record, read
//!   again after the transfer;
//! - its DNSKEY RRset contains exactly the DNSKEY records of the stored keys
//!   that the signers publish, the keys whose DNSKEY state is rumoured or
//!   omnipresent;
//! - keymaster's validator finds no error in it, with every signature
//!   verified at the current time.
//!
//! A version that fails is not served, and the reason is logged once with
//! the member it came from. A version accepted is published as a signed
//! version is, and saved in `signed/`, so that a restart serves it while
//! its signatures are valid.
//!
//! # Limitations
//!
//! - The transfer runs on the thread that follows the cluster store, with
//!   the zone's lock held, so a slow signer delays the other zones' updates
//!   by up to [`Limits::total`] per member asked.
//! - Only the members' registered DNS addresses are tried; a member that
//!   listens on a wildcard address (`0.0.0.0`, `::`) is skipped, since its
//!   registration names no address another member could reach.
//! - The whole zone is transferred for every version: there is no IXFR
//!   client.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use bytes::Bytes;
use keymaster_server::{read_name_keeping_case, sign_request, TsigAlgorithm, TsigKey};
use keymaster_store::{SigningRecord, StoredKey};
use keymaster_zone::rdata::check_wire;
use keymaster_zone::{canonical_rdata, Class, Name, Record, Rtype, Zone};

use super::{unix_now, Daemon};
use crate::signing::serial_gt;

/// Name of the cluster transfer key's record in the cluster store.
pub const TRANSFER_KEY_RECORD: &str = "transfer-tsig";

/// TSIG name of the cluster transfer key.
pub const TRANSFER_KEY_NAME: &str = "keymaster-cluster-transfer.";

/// Pauses between the rounds of one fetch while the signers have not yet
/// published the signing record's serial; the last round has no pause.
const ROUND_PAUSES: [Duration; 4] = [
    Duration::from_millis(100),
    Duration::from_millis(200),
    Duration::from_millis(400),
    Duration::from_millis(800),
];

/// Maximum pause, in seconds, before a fetch that found nothing is tried
/// again.
pub const MAX_FETCH_BACKOFF: u64 = 60;

/// Bounds of one zone transfer.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Maximum wait for the TCP connection.
    pub connect: Duration,
    /// Maximum time for the whole transfer.
    pub total: Duration,
    /// Maximum number of message octets accepted.
    pub max_octets: u64,
}

impl Default for Limits {
    /// 5 s to connect, 30 s in all, 2 GiB.
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(5),
            total: Duration::from_secs(30),
            max_octets: 2 << 30,
        }
    }
}

/// Error of a zone transfer.
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    #[error("cannot connect to {address}: {source}")]
    Connect {
        address: SocketAddr,
        source: std::io::Error,
    },
    #[error("the transfer from {address} broke off: {source}")]
    Io {
        address: SocketAddr,
        source: std::io::Error,
    },
    #[error("the transfer from {address} took longer than {seconds} s")]
    TimedOut { address: SocketAddr, seconds: u64 },
    #[error("the transfer from {address} is larger than {limit} octets")]
    TooLarge { address: SocketAddr, limit: u64 },
    #[error("{address} refused the transfer with RCODE {rcode}")]
    Refused { address: SocketAddr, rcode: u16 },
    #[error("message {index} from {address} is malformed: {reason}")]
    Malformed {
        address: SocketAddr,
        index: usize,
        reason: String,
    },
}

/// Reason a transferred version is not served.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("it has serial {got}, but the zone's signing record names serial {expected}")]
    Serial { got: u32, expected: u32 },
    #[error("its DNSKEY RRset holds key tag {key_tag}, which is not a published key of the zone in the cluster store")]
    UnknownDnskey { key_tag: u16 },
    #[error("its DNSKEY RRset lacks key tag {key_tag}, a published key of the zone in the cluster store")]
    MissingDnskey { key_tag: u16 },
    #[error("the cluster store lists no published key for the zone")]
    NoPublishedKey,
    #[error("it does not validate: {0}")]
    Invalid(String),
}

/// Transfers the zone `origin` from `address` with AXFR over TCP, signing
/// the request with `key` when given, and returns its records.
pub fn transfer_zone(
    address: SocketAddr,
    origin: &Name,
    key: Option<&TsigKey>,
    limits: &Limits,
) -> Result<Zone, TransferError> {
    let deadline = Instant::now() + limits.total;
    let io = |source| TransferError::Io { address, source };
    let mut stream = TcpStream::connect_timeout(&address, limits.connect.min(limits.total))
        .map_err(|source| TransferError::Connect { address, source })?;
    let id = rand::random::<u16>();
    let mut query = axfr_query(id, origin);
    if let Some(key) = key {
        sign_request(key, &mut query, unix_now());
    }
    let mut framed = (query.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&query);
    stream
        .set_write_timeout(Some(remaining(deadline, address, limits)?))
        .map_err(io)?;
    stream.write_all(&framed).map_err(io)?;

    let mut reader = AxfrReader::new(address, origin.clone(), id);
    let mut received: u64 = 0;
    // Every message is at least a header long, so the size limit bounds the
    // number of messages, and the deadline bounds the time.
    loop {
        let mut length = [0u8; 2];
        read_exact(&mut stream, &mut length, deadline, address, limits)?;
        let length = usize::from(u16::from_be_bytes(length));
        received += 2 + length as u64;
        if received > limits.max_octets {
            return Err(TransferError::TooLarge {
                address,
                limit: limits.max_octets,
            });
        }
        let mut message = vec![0u8; length];
        read_exact(&mut stream, &mut message, deadline, address, limits)?;
        if reader.read_message(&message)? {
            return Ok(reader.zone);
        }
    }
}

/// Returns the time left before `deadline`, or the time-out error.
fn remaining(
    deadline: Instant,
    address: SocketAddr,
    limits: &Limits,
) -> Result<Duration, TransferError> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(TransferError::TimedOut {
            address,
            seconds: limits.total.as_secs(),
        });
    }
    Ok(left)
}

/// Fills `buf` from the stream before `deadline`.
fn read_exact(
    stream: &mut TcpStream,
    buf: &mut [u8],
    deadline: Instant,
    address: SocketAddr,
    limits: &Limits,
) -> Result<(), TransferError> {
    let mut filled = 0;
    while filled < buf.len() {
        let left = remaining(deadline, address, limits)?;
        stream
            .set_read_timeout(Some(left))
            .map_err(|source| TransferError::Io { address, source })?;
        match stream.read(&mut buf[filled..]) {
            Ok(0) => {
                return Err(TransferError::Io {
                    address,
                    source: std::io::ErrorKind::UnexpectedEof.into(),
                })
            }
            Ok(read) => filled += read,
            Err(error)
                if matches!(
                    error.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Err(TransferError::TimedOut {
                    address,
                    seconds: limits.total.as_secs(),
                })
            }
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
            Err(source) => return Err(TransferError::Io { address, source }),
        }
    }
    Ok(())
}

/// Returns an AXFR query for `origin` of class IN with ID `id`.
fn axfr_query(id: u16, origin: &Name) -> Vec<u8> {
    let mut query = Vec::with_capacity(12 + origin.as_wire().len() + 4);
    query.extend_from_slice(&id.to_be_bytes());
    // No flags, one question and no other records.
    query.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    query.extend_from_slice(origin.as_wire());
    query.extend_from_slice(&Rtype::AXFR.to_int().to_be_bytes());
    query.extend_from_slice(&Class::IN.to_int().to_be_bytes());
    query
}

/// Reads the messages of one AXFR response into a zone.
struct AxfrReader {
    address: SocketAddr,
    origin: Name,
    id: u16,
    zone: Zone,
    messages: usize,
    /// Whether the opening SOA was read.
    opened: bool,
}

impl AxfrReader {
    fn new(address: SocketAddr, origin: Name, id: u16) -> Self {
        Self {
            address,
            zone: Zone::new(origin.clone(), Class::IN),
            origin,
            id,
            messages: 0,
            opened: false,
        }
    }

    fn malformed(&self, reason: impl Into<String>) -> TransferError {
        TransferError::Malformed {
            address: self.address,
            index: self.messages,
            reason: reason.into(),
        }
    }

    /// Reads one message. Returns true when it contained the closing SOA.
    fn read_message(&mut self, message: &[u8]) -> Result<bool, TransferError> {
        self.messages += 1;
        let word = |at: usize| read_u16(message, at);
        let (Some(id), Some(flags), Some(qdcount), Some(ancount)) =
            (word(0), word(2), word(4), word(6))
        else {
            return Err(self.malformed("shorter than a header"));
        };
        if id != self.id || flags & 0x8000 == 0 {
            return Err(self.malformed("not a response to the request sent"));
        }
        let rcode = flags & 0x000f;
        if rcode != 0 {
            return Err(TransferError::Refused {
                address: self.address,
                rcode,
            });
        }
        let mut pos = 12;
        for _ in 0..qdcount {
            let (_, end) = read_name_keeping_case(message, pos)
                .ok_or_else(|| self.malformed("bad question"))?;
            pos = end + 4;
        }
        for _ in 0..ancount {
            let (record, end) =
                read_record(message, pos).map_err(|reason| self.malformed(reason))?;
            pos = end;
            if self.add(record)? {
                return Ok(true);
            }
        }
        if pos > message.len() {
            return Err(self.malformed("the question section is cut short"));
        }
        Ok(false)
    }

    /// Adds a record. Returns true for the closing SOA.
    fn add(&mut self, record: Record) -> Result<bool, TransferError> {
        let apex_soa = record.rtype == Rtype::SOA && record.owner == self.origin;
        if !self.opened {
            if !apex_soa {
                return Err(self.malformed("the first record is not the zone's SOA"));
            }
            self.opened = true;
        } else if apex_soa {
            return Ok(true);
        }
        if record.class != Class::IN {
            return Err(self.malformed(format!(
                "{} {} is not of class IN",
                record.owner, record.rtype
            )));
        }
        if !record.owner.ends_with(&self.origin) {
            return Err(self.malformed(format!("{} lies outside the zone", record.owner)));
        }
        if let Err(error) = check_wire(record.rtype, &record.rdata) {
            return Err(self.malformed(format!("{} {}: {error}", record.owner, record.rtype)));
        }
        self.zone.insert(record);
        Ok(false)
    }
}

fn read_u16(message: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([
        *message.get(at)?,
        *message.get(at + 1)?,
    ]))
}

/// Returns where the names sit in the RDATA of the types whose names a
/// server may compress (RFC 3597 section 4): the octets before the first
/// name and the number of names in a row.
fn compressed_names(rtype: Rtype) -> Option<(usize, usize)> {
    match rtype {
        Rtype::NS | Rtype::CNAME | Rtype::PTR | Rtype::MB | Rtype::MG | Rtype::MR => Some((0, 1)),
        Rtype::MD | Rtype::MF => Some((0, 1)),
        Rtype::SOA | Rtype::MINFO | Rtype::RP => Some((0, 2)),
        Rtype::MX | Rtype::AFSDB | Rtype::RT => Some((2, 1)),
        Rtype::PX => Some((2, 2)),
        _ => None,
    }
}

/// Reads the resource record at `start`, with the names in its RDATA
/// written out uncompressed. Returns it and the position after it.
fn read_record(message: &[u8], start: usize) -> Result<(Record, usize), String> {
    let (owner, pos) = read_name_keeping_case(message, start).ok_or("a bad owner name")?;
    let owner = Name::from_wire(owner).map_err(|error| format!("a bad owner name: {error}"))?;
    let field = |at: usize| read_u16(message, pos + at).ok_or("a record cut short");
    let rtype = Rtype::from_int(field(0)?);
    let class = Class::from_int(field(2)?);
    let ttl = u32::from(field(4)?) << 16 | u32::from(field(6)?);
    let rdlength = usize::from(field(8)?);

    let rdata_start = pos + 10;
    let rdata_end = rdata_start + rdlength;
    if rdata_end > message.len() {
        return Err(format!("{owner} {rtype}: its RDATA runs past the end"));
    }
    let rdata = match compressed_names(rtype) {
        None => Bytes::copy_from_slice(&message[rdata_start..rdata_end]),
        Some((prefix, names)) => {
            let mut rdata = Vec::with_capacity(rdlength + 64);
            let mut at = rdata_start + prefix;
            if at > rdata_end {
                return Err(format!("{owner} {rtype}: its RDATA is too short"));
            }
            rdata.extend_from_slice(&message[rdata_start..at]);
            for _ in 0..names {
                let (name, end) = read_name_keeping_case(message, at)
                    .filter(|(_, end)| *end <= rdata_end)
                    .ok_or_else(|| format!("{owner} {rtype}: a bad name in its RDATA"))?;
                rdata.extend_from_slice(&name);
                at = end;
            }
            rdata.extend_from_slice(&message[at..rdata_end]);
            Bytes::from(rdata)
        }
    };

    let record = Record {
        owner,
        class,
        ttl,
        rtype,
        rdata,
    };
    Ok((record, rdata_end))
}

/// Checks a transferred version before it is served: its serial against
/// `expected`, its DNSKEY RRset against `published` (the DNSKEY RDATA of
/// the keys the signers publish), and every signature at time `now`.
pub fn check_transferred(
    zone: &Zone,
    expected: u32,
    published: &[Vec<u8>],
    now: u64,
) -> Result<(), Rejection> {
    let got = zone.serial().unwrap_or(0);
    if got != expected {
        return Err(Rejection::Serial { got, expected });
    }
    if published.is_empty() {
        return Err(Rejection::NoPublishedKey);
    }
    let canonical = |rdata: &[u8]| canonical_rdata(Rtype::DNSKEY, rdata).into_owned();
    let wanted: BTreeSet<Vec<u8>> = published.iter().map(|rdata| canonical(rdata)).collect();
    let served: BTreeSet<Vec<u8>> = zone
        .rrset(zone.origin(), Rtype::DNSKEY)
        .map(|rrset| rrset.rdatas.iter().map(|rdata| canonical(rdata)).collect())
        .unwrap_or_default();
    if let Some(extra) = served.difference(&wanted).next() {
        return Err(Rejection::UnknownDnskey {
            key_tag: keymaster_keys::key_tag(extra),
        });
    }
    if let Some(missing) = wanted.difference(&served).next() {
        return Err(Rejection::MissingDnskey {
            key_tag: keymaster_keys::key_tag(missing),
        });
    }
    let report = keymaster_dnssec::verify_zone(zone, now as u32);
    if let Some(first) = report.errors.first() {
        let more = report.errors.len() - 1;
        let text = if more == 0 {
            first.to_string()
        } else {
            format!("{first} (and {more} more problems)")
        };
        return Err(Rejection::Invalid(text));
    }
    Ok(())
}

/// Returns the DNSKEY RDATA the signers publish from `keys`: those of keys
/// whose DNSKEY is rumoured or omnipresent, as the signer chooses them.
pub fn published_dnskeys(keys: &[StoredKey]) -> Vec<Vec<u8>> {
    keys.iter()
        .filter(|key| key.dnskey_state.in_zone())
        .map(|key| key.dnskey.clone())
        .collect()
}

/// Creates a cluster transfer key's text as stored: the algorithm and
/// the base64 secret of 32 random octets.
pub fn new_transfer_key_text() -> String {
    let secret: [u8; 32] = rand::random();
    format!(
        "{} {}",
        TsigAlgorithm::HmacSha256,
        data_encoding::BASE64.encode(&secret)
    )
}

/// Reads a cluster transfer key from its stored text.
pub fn parse_transfer_key(text: &str) -> Result<TsigKey, String> {
    let (algorithm, secret) = text
        .trim()
        .split_once(' ')
        .ok_or("expected an algorithm and a base64 secret")?;
    let algorithm: TsigAlgorithm = algorithm.parse().map_err(|error| format!("{error}"))?;
    let secret = data_encoding::BASE64
        .decode(secret.trim().as_bytes())
        .map_err(|error| format!("the secret is not base64: {error}"))?;
    if secret.len() < 16 {
        return Err(format!(
            "the secret has {} octets, fewer than 16",
            secret.len()
        ));
    }
    let name = keymaster_zone::parse_name(TRANSFER_KEY_NAME, &Name::root())
        .map_err(|error| error.to_string())?;
    Ok(TsigKey::new(name, algorithm, secret))
}

/// A transferred version that passed every check.
pub struct Fetched {
    pub zone: Zone,
    /// The signing record whose serial the version has.
    pub signing: SigningRecord,
    /// The member it came from.
    pub member: String,
}

impl Daemon {
    /// Returns the members to transfer `zone` from: the online members
    /// with the cluster key, the Key Master first, then the others by name.
    fn signers_to_ask(&self, zone: &str) -> Vec<(String, Vec<SocketAddr>)> {
        let Some(etcd) = self.cluster.as_ref().and_then(|link| link.etcd()) else {
            return Vec::new();
        };
        let members = match etcd.members() {
            Ok(members) => members,
            Err(error) => {
                tracing::debug!(zone = %zone, %error, "cannot list the members to transfer from");
                return Vec::new();
            }
        };
        let key_master = self
            .store
            .role(zone)
            .ok()
            .flatten()
            .map(|role| role.key_master);
        // `members` is sorted by name; a stable sort puts the Key Master first.
        let mut signers: Vec<_> = members
            .into_iter()
            .filter(|(member, online)| {
                *online && member.can_sign && member.name != self.config.name
            })
            .map(|(member, _)| member)
            .collect();
        signers.sort_by_key(|member| Some(&member.name) != key_master.as_ref());
        signers
            .into_iter()
            .map(|member| {
                let addresses = member
                    .dns_addresses
                    .iter()
                    .filter_map(|text| text.parse::<SocketAddr>().ok())
                    .filter(|address| !address.ip().is_unspecified())
                    .collect();
                (member.name, addresses)
            })
            .collect()
    }

    /// Transfers the version of the signing record `signing` of a signed
    /// cluster zone from a member that signs it, and returns it once it
    /// passes [`check_transferred`]. While no signer has published that
    /// serial yet, tries again a few times within about 1.5 s. Returns
    /// `None` when no version was accepted; rejected versions are logged
    /// once per reason. Called with the zone's lock held.
    pub(super) fn fetch_signed_version(
        &self,
        zone: &str,
        origin: &Name,
        signing: &SigningRecord,
    ) -> Option<Fetched> {
        // TODO: transfer without the zone's lock held. A slow signer holds
        // back this zone's control requests and the maintenance pass meanwhile.
        let key = self.cluster.as_ref().and_then(|link| link.transfer_key());
        let limits = Limits::default();
        let rounds = ROUND_PAUSES.len() + 1;
        for round in 0..rounds {
            let signers = self.signers_to_ask(zone);
            if signers.is_empty() {
                tracing::debug!(zone = %zone, "zone {zone}: no online member with the cluster key to transfer serial {} from", signing.serial);
                return None;
            }
            for (member, addresses) in &signers {
                for address in addresses {
                    match self.try_member(
                        zone,
                        origin,
                        signing,
                        member,
                        *address,
                        key.as_ref(),
                        &limits,
                    ) {
                        Attempt::Accepted(fetched) => return Some(fetched),
                        Attempt::NotYet | Attempt::Failed => {}
                    }
                }
            }
            if let Some(pause) = ROUND_PAUSES.get(round) {
                std::thread::sleep(*pause);
            }
        }
        None
    }

    /// Transfers the zone from one address of `member` and checks it.
    #[allow(clippy::too_many_arguments)]
    fn try_member(
        &self,
        zone: &str,
        origin: &Name,
        signing: &SigningRecord,
        member: &str,
        address: SocketAddr,
        key: Option<&TsigKey>,
        limits: &Limits,
    ) -> Attempt {
        let transferred = match transfer_zone(address, origin, key, limits) {
            Ok(transferred) => transferred,
            Err(error) => {
                self.report_fetch(
                    zone,
                    format!(
                        "zone {zone}: cannot transfer serial {} from member {member}: {error}",
                        signing.serial
                    ),
                );
                return Attempt::Failed;
            }
        };
        let got = transferred.serial().unwrap_or(0);
        // The signing record may have moved on during the transfer.
        let current = match self.store.signing_record(zone) {
            Ok(Some(current)) => current,
            _ => signing.clone(),
        };
        if serial_gt(current.serial, got) {
            tracing::debug!(zone = %zone, member, serial = got, wanted = current.serial,
                "zone {zone}: member {member} still serves serial {got}; serial {} is not signed there yet", current.serial);
            return Attempt::NotYet;
        }
        let published = match self.store.keys(zone) {
            Ok(keys) => published_dnskeys(&keys),
            Err(error) => {
                self.report_fetch(zone, format!("zone {zone}: cannot read its keys to check the version from member {member}: {error}"));
                return Attempt::Failed;
            }
        };
        match check_transferred(&transferred, current.serial, &published, unix_now()) {
            Ok(()) => Attempt::Accepted(Fetched {
                zone: transferred,
                signing: current,
                member: member.to_string(),
            }),
            Err(rejection) => {
                self.report_fetch(zone, format!(
                    "zone {zone}: the version with serial {got} transferred from member {member} is not served: {rejection}"
                ));
                Attempt::Failed
            }
        }
    }

    /// Logs a failed fetch as a warning the first time it happens, and at
    /// debug level while it repeats.
    fn report_fetch(&self, zone: &str, message: String) {
        let mut repeated = false;
        self.update_runtime(zone, |runtime| {
            repeated = runtime.fetch_error.as_deref() == Some(message.as_str());
            runtime.fetch_error = Some(message.clone());
        });
        if repeated {
            tracing::debug!(zone = %zone, "{message}");
        } else {
            tracing::warn!(zone = %zone, "{message}");
        }
    }
}

/// Outcome of a transfer from one member.
enum Attempt {
    Accepted(Fetched),
    /// The member serves an older serial: it has not signed the new one.
    NotYet,
    Failed,
}

#[cfg(test)]
mod tests {
    use super::*;
    use keymaster_zone::{load_zone_str, LoadOptions};

    fn name(text: &str) -> Name {
        keymaster_zone::parse_name(text, &Name::root()).unwrap()
    }

    #[test]
    fn compressed_rdata_names_expanded() {
        // Header, then "example." SOA with both names pointing at the owner,
        // and "example." MX 10 mail.example. with a pointer.
        let mut message = vec![0, 1, 0x84, 0, 0, 0, 0, 2, 0, 0, 0, 0];
        message.extend_from_slice(b"\x07example\x00");
        message.extend_from_slice(&[0, 6, 0, 1, 0, 0, 0, 60, 0, 27]);
        message.extend_from_slice(&[2, b'n', b's', 0xc0, 12, 0xc0, 12]);
        message.extend_from_slice(&[0, 0, 0, 5, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4]);
        message.extend_from_slice(&[0xc0, 12, 0, 15, 0, 1, 0, 0, 0, 60, 0, 9]);
        message.extend_from_slice(&[0, 10, 4, b'm', b'a', b'i', b'l', 0xc0, 12]);
        let (soa, end) = read_record(&message, 12).unwrap();
        assert_eq!(soa.rtype, Rtype::SOA);
        assert_eq!(&soa.rdata[..12], b"\x02ns\x07example\x00");
        assert_eq!(&soa.rdata[12..21], b"\x07example\x00");
        assert_eq!(soa.rdata.len(), 21 + 20);
        let (mx, end) = read_record(&message, end).unwrap();
        assert_eq!(&mx.rdata[..], b"\x00\x0a\x04mail\x07example\x00");
        assert_eq!(end, message.len());
    }

    #[test]
    fn forward_pointers_are_rejected() {
        let message = [0xc0, 2, 0xc0, 0];
        assert!(read_name_keeping_case(&message, 0).is_none());
        assert!(read_name_keeping_case(&message, 2).is_none());
    }

    #[test]
    fn transfer_key_text_round_trips() {
        let key = parse_transfer_key(&new_transfer_key_text()).unwrap();
        assert_eq!(key.name().to_string(), TRANSFER_KEY_NAME);
        assert_eq!(key.algorithm(), TsigAlgorithm::HmacSha256);
        assert!(parse_transfer_key("hmac-sha256 c2hvcnQ=").is_err());
        assert!(
            parse_transfer_key("hmac-md5 AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=").is_err()
        );
    }

    /// Signs a small zone with a new key and returns it with the DNSKEY
    /// RDATA it publishes.
    fn signed_zone(now: u64) -> (Zone, Vec<Vec<u8>>) {
        use keymaster_keys::{Algorithm, KeyPair};
        let origin = name("example.");
        let text = "$TTL 300\n@ SOA ns hostmaster 7 7200 3600 1209600 300\n@ NS ns\n\
                    ns A 192.0.2.53\nwww A 192.0.2.80\n";
        let zone = load_zone_str(text, &origin, &LoadOptions::default())
            .unwrap()
            .zone;
        let pair =
            std::sync::Arc::new(KeyPair::generate(Algorithm::EcdsaP256Sha256, None).unwrap());
        let dnskey = pair.dnskey_rdata(257).to_vec();
        let key = keymaster_dnssec::SigningKey {
            dnskey: Bytes::from(dnskey.clone()),
            key_tag: pair.key_tag(257),
            signs_keys: true,
            signs_zone: true,
            published: true,
            signer: pair,
        };
        let policy = keymaster_policy::Policy::default();
        let options =
            crate::signing::sign_options(&policy, now, Bytes::new(), Vec::new(), Vec::new());
        let signed = keymaster_dnssec::sign_zone(zone, &[key], &options, None).unwrap();
        (signed.zone, vec![dnskey])
    }

    #[test]
    fn acceptance_takes_valid_version() {
        let now = unix_now();
        let (zone, published) = signed_zone(now);
        assert_eq!(check_transferred(&zone, 7, &published, now), Ok(()));
    }

    #[test]
    fn acceptance_rejects_wrong_serial() {
        let now = unix_now();
        let (zone, published) = signed_zone(now);
        assert_eq!(
            check_transferred(&zone, 8, &published, now),
            Err(Rejection::Serial {
                got: 7,
                expected: 8
            })
        );
    }

    #[test]
    fn acceptance_rejects_altered_record() {
        let now = unix_now();
        let (mut zone, published) = signed_zone(now);
        let www = name("www.example.");
        let rrset = zone.get_mut(&www).unwrap().rrset_mut(Rtype::A).unwrap();
        rrset.rdatas[0] = Bytes::from_static(&[198, 51, 100, 1]);
        let rejection = check_transferred(&zone, 7, &published, now).unwrap_err();
        assert!(matches!(rejection, Rejection::Invalid(_)), "{rejection}");
    }

    #[test]
    fn acceptance_rejects_unlisted_key() {
        let now = unix_now();
        let (zone, _) = signed_zone(now);
        // The signer's key is not among the published keys: as if another
        // key signed the version.
        let (_, other) = signed_zone(now);
        let rejection = check_transferred(&zone, 7, &other, now).unwrap_err();
        assert!(
            matches!(rejection, Rejection::UnknownDnskey { .. }),
            "{rejection}"
        );
        assert_eq!(
            check_transferred(&zone, 7, &[], now),
            Err(Rejection::NoPublishedKey)
        );
    }

    #[test]
    fn acceptance_rejects_missing_key() {
        let now = unix_now();
        let (zone, mut published) = signed_zone(now);
        let (_, other) = signed_zone(now);
        published.extend(other);
        let rejection = check_transferred(&zone, 7, &published, now).unwrap_err();
        assert!(
            matches!(rejection, Rejection::MissingDnskey { .. }),
            "{rejection}"
        );
    }
}
