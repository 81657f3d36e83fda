//! UDP and TCP listeners that feed queries to [`answer_into`](crate::answer_into).
//!
//! Every listen address gets several UDP sockets bound with SO_REUSEPORT,
//! one per core by default, so that the kernel spreads queries over them.
//! Each UDP socket is served by its own OS thread with blocking
//! `recv_from` and `send_to`, outside the tokio runtime: a query then
//! costs two system calls and no reactor round trip. TCP connections carry
//! messages with a two-octet length prefix (RFC 1035 section 4.2.2, RFC
//! 7766). A connection may send many queries. It is closed after
//! `tcp_idle_timeout` without a complete message, and at most
//! `max_tcp_connections` are open per listen address. Zone transfer
//! requests go to [`transfer`](crate::transfer) first; over TCP their
//! response is a stream of messages, each built on a blocking thread and
//! written as soon as it is built. At most
//! [`max_transfers`](ServerConfig::max_transfers) transfers run at once.
//!
//! Limitations: with more than one UDP socket per address, SO_REUSEPORT
//! also lets another process of the same user bind the same port, so such a
//! conflict is not reported. TCP queries on one connection are answered one
//! after the other, not pipelined in parallel. UDP threads notice a
//! shutdown within [`UDP_STOP_POLL`], and a UDP thread that panics is not
//! restarted.
//!
//! Messages are received and sent one per system call. Batches of up to
//! 32 through `recvmmsg` and `sendmmsg` (from the nix and rustix crates)
//! cut system calls about 27-fold but were no faster, and mostly slower,
//! in `scripts/bench-query`, where dnsperf runs on the same two cores.
//! NOTE: that was measured with client and server sharing two cores. On
//! a server whose cores serve only DNS, batching may still pay off.
//!
//! The same benchmark was fastest with one UDP socket per core, ahead of
//! one socket in all and of four sockets on two cores. One socket per
//! core also fits a dedicated server: every core reads its own socket
//! and no thread waits for another.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use socket2::{Domain, Socket, Type};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::answer::{Protocol, Transport, DEFAULT_UDP_PAYLOAD};
use crate::transfer::{self, Start, TransferAccess, ZoneStream};
use crate::zoneset::ZoneSet;

/// Size of the socket receive buffer requested for UDP sockets. The kernel
/// may grant less, which only costs drops under bursts.
const UDP_RECEIVE_BUFFER: usize = 4 << 20;

/// Backlog of pending TCP connections per listener.
const TCP_BACKLOG: i32 = 1024;

/// Pause after a failed `accept`, so that running out of file descriptors
/// does not spin the task.
const ACCEPT_RETRY: Duration = Duration::from_millis(50);

/// The default of [`ServerConfig::max_transfers`].
pub const DEFAULT_MAX_TRANSFERS: usize = 32;

/// Receive timeout of the UDP sockets: how long a UDP thread may wait in
/// `recv_from` before it checks whether the server is stopping.
const UDP_STOP_POLL: Duration = Duration::from_millis(200);

/// Runtime settings of the DNS listeners.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerConfig {
    /// Addresses to listen on; each gets UDP and TCP. A port of 0 picks a
    /// free port, the same one for UDP and TCP.
    pub listen: Vec<SocketAddr>,
    /// Largest UDP response in octets, also advertised in OPT. Values below
    /// 512 are raised to 512.
    pub max_udp_payload: u16,
    /// How long a TCP connection may wait for its next complete message.
    pub tcp_idle_timeout: Duration,
    /// Maximum number of open TCP connections per listen address; further
    /// connections are closed as soon as they are accepted.
    pub max_tcp_connections: usize,
    /// UDP sockets per listen address; 0 means one per available core.
    pub udp_sockets_per_address: usize,
    /// Who may transfer zones with AXFR and IXFR.
    pub transfer: TransferAccess,
    /// The most zone transfers sent at once, over all listen addresses.
    /// Each holds one published version of its zone and keeps a blocking
    /// thread busy while it builds a message. A request beyond the limit
    /// gets SERVFAIL, a transient failure after which the secondary
    /// retries, rather than REFUSED, which reads as a denial of access.
    pub max_transfers: usize,
}

impl Default for ServerConfig {
    /// No listen addresses, 1232-octet UDP responses, a 10-second TCP idle
    /// timeout, 256 TCP connections, one UDP socket per core, zone
    /// transfers from loopback only and 32 of them at once.
    fn default() -> Self {
        Self {
            listen: Vec::new(),
            max_udp_payload: DEFAULT_UDP_PAYLOAD,
            tcp_idle_timeout: Duration::from_secs(10),
            max_tcp_connections: 256,
            udp_sockets_per_address: 0,
            transfer: TransferAccess::default(),
            max_transfers: DEFAULT_MAX_TRANSFERS,
        }
    }
}

/// Error from [`Server::bind`].
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error("no listen address is configured")]
    NoListenAddress,
    #[error("failed to bind a UDP socket to {address}")]
    Udp {
        address: SocketAddr,
        #[source]
        source: io::Error,
    },
    #[error("failed to listen for TCP on {address}")]
    Tcp {
        address: SocketAddr,
        #[source]
        source: io::Error,
    },
}

/// Bound DNS listeners, ready to [`run`](Server::run).
#[derive(Debug)]
pub struct Server {
    config: ServerConfig,
    zones: Arc<ZoneSet>,
    udp: Vec<std::net::UdpSocket>,
    tcp: Vec<std::net::TcpListener>,
}

impl Server {
    /// Binds UDP and TCP sockets on every configured address.
    ///
    /// Binding happens here, outside the runtime, so that a caller can bind
    /// first and then drop privileges before serving.
    pub fn bind(config: ServerConfig, zones: Arc<ZoneSet>) -> Result<Self, BindError> {
        if config.listen.is_empty() {
            return Err(BindError::NoListenAddress);
        }
        let per_address = match config.udp_sockets_per_address {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            count => count,
        };
        let mut udp = Vec::new();
        let mut tcp = Vec::new();
        for &requested in &config.listen {
            let first = bind_udp(requested, per_address > 1).map_err(|source| BindError::Udp {
                address: requested,
                source,
            })?;
            // With port 0 the kernel picked a port; use it for the rest.
            let address = first.local_addr().map_err(|source| BindError::Udp {
                address: requested,
                source,
            })?;
            udp.push(first);
            for _ in 1..per_address {
                let socket =
                    bind_udp(address, true).map_err(|source| BindError::Udp { address, source })?;
                udp.push(socket);
            }
            let listener =
                bind_tcp(address).map_err(|source| BindError::Tcp { address, source })?;
            tcp.push(listener);
            tracing::info!(%address, udp_sockets = per_address, "listening for DNS on UDP and TCP");
        }
        Ok(Self {
            config,
            zones,
            udp,
            tcp,
        })
    }

    /// Returns the bound addresses, one per configured address, with the
    /// ports the kernel picked for port 0.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        let addresses = self
            .tcp
            .iter()
            .filter_map(|listener| listener.local_addr().ok());
        addresses.collect()
    }

    /// Serves queries until `shutdown` completes, then closes all sockets
    /// and connections.
    ///
    /// Must be called inside a tokio runtime with I/O and timers enabled.
    /// Returns an error if a socket cannot be registered with the runtime
    /// or a UDP thread cannot be started.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> io::Result<()> {
        let transport = Transport::udp(self.config.max_udp_payload);
        let access = Arc::new(self.config.transfer.clone());
        let transfers = Arc::new(Semaphore::new(self.config.max_transfers));
        let stop = Arc::new(AtomicBool::new(false));
        let mut udp_threads = Vec::new();
        for (index, socket) in self.udp.into_iter().enumerate() {
            let shared = Shared {
                zones: self.zones.clone(),
                access: access.clone(),
                transfers: transfers.clone(),
            };
            match spawn_udp_thread(index, socket, shared, transport, stop.clone()) {
                Ok(thread) => udp_threads.push(thread),
                Err(error) => {
                    stop_udp_threads(&stop, udp_threads).await;
                    return Err(error);
                }
            }
        }
        let mut tasks = JoinSet::new();
        for listener in self.tcp {
            let listener = TcpListener::from_std(listener)?;
            let settings = TcpSettings {
                transport: Transport::tcp(self.config.max_udp_payload),
                idle_timeout: self.config.tcp_idle_timeout,
                connections: Arc::new(Semaphore::new(self.config.max_tcp_connections)),
            };
            let shared = Shared {
                zones: self.zones.clone(),
                access: access.clone(),
                transfers: transfers.clone(),
            };
            tasks.spawn(serve_tcp(listener, shared, settings));
        }

        tokio::pin!(shutdown);
        tokio::select! {
            () = &mut shutdown => {}
            Some(ended) = tasks.join_next() => {
                tracing::error!(?ended, "a DNS listener task ended unexpectedly; stopping the server");
            }
        }
        // Dropping the TCP tasks also drops their connection sets.
        tasks.shutdown().await;
        stop_udp_threads(&stop, udp_threads).await;
        tracing::info!("stopped the DNS listeners");
        Ok(())
    }
}

/// Creates a non-blocking UDP socket bound to `address`.
fn bind_udp(address: SocketAddr, reuse_port: bool) -> io::Result<std::net::UdpSocket> {
    let socket = Socket::new(Domain::for_address(address), Type::DGRAM, None)?;
    if address.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    // A smaller buffer than requested is not an error.
    let _ = socket.set_recv_buffer_size(UDP_RECEIVE_BUFFER);
    socket.set_nonblocking(true)?;
    socket.bind(&address.into())?;
    Ok(socket.into())
}

/// Creates a non-blocking TCP listener bound to `address`.
fn bind_tcp(address: SocketAddr) -> io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(address), Type::STREAM, None)?;
    if address.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&address.into())?;
    socket.listen(TCP_BACKLOG)?;
    Ok(socket.into())
}

/// What every listener reads: the zones, who may transfer them, and the
/// permits for running transfers.
#[derive(Clone)]
struct Shared {
    zones: Arc<ZoneSet>,
    access: Arc<TransferAccess>,
    transfers: Arc<Semaphore>,
}

/// Starts the thread that serves one UDP socket until `stop` is set.
fn spawn_udp_thread(
    index: usize,
    socket: std::net::UdpSocket,
    shared: Shared,
    transport: Transport,
    stop: Arc<AtomicBool>,
) -> io::Result<JoinHandle<()>> {
    socket.set_nonblocking(false)?;
    socket.set_read_timeout(Some(UDP_STOP_POLL))?;
    std::thread::Builder::new()
        .name(format!("dns-udp-{index}"))
        .spawn(move || serve_udp(&socket, &shared, transport, &stop))
}

/// Tells the UDP threads to stop and waits for them without blocking the
/// runtime.
async fn stop_udp_threads(stop: &AtomicBool, threads: Vec<JoinHandle<()>>) {
    stop.store(true, Ordering::Relaxed);
    let joined = tokio::task::spawn_blocking(move || {
        for thread in threads {
            if thread.join().is_err() {
                tracing::error!("a UDP listener thread panicked");
            }
        }
    });
    let _ = joined.await;
}

/// Receives queries on one blocking UDP socket and sends the responses,
/// until `stop` is set.
fn serve_udp(
    socket: &std::net::UdpSocket,
    shared: &Shared,
    transport: Transport,
    stop: &AtomicBool,
) {
    let zones = &shared.zones;
    let mut query = vec![0u8; usize::from(u16::MAX)];
    let mut response = Vec::with_capacity(usize::from(transport.max_udp_payload));
    while !stop.load(Ordering::Relaxed) {
        let (len, peer) = match socket.recv_from(&mut query) {
            Ok(received) => received,
            // The receive timeout expired: look at `stop` again.
            Err(error)
                if matches!(
                    error.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) =>
            {
                continue
            }
            Err(error) => {
                tracing::debug!(%error, "failed to receive a UDP message");
                continue;
            }
        };
        let message = &query[..len];
        match transfer::start(
            zones,
            &shared.access,
            message,
            Protocol::Udp,
            peer,
            &mut response,
        ) {
            Start::NotTransfer => {
                let access = &shared.access;
                if !transfer::answer_query(zones, access, message, transport, peer, &mut response) {
                    continue;
                }
            }
            Start::Reply => {}
            // A transfer stream is only started over TCP.
            Start::Stream(_) => continue,
        }
        if let Err(error) = socket.send_to(&response, peer) {
            tracing::debug!(%error, %peer, "failed to send a UDP response");
        }
    }
}

/// Settings shared by the connections of one TCP listener.
#[derive(Clone)]
struct TcpSettings {
    transport: Transport,
    idle_timeout: Duration,
    connections: Arc<Semaphore>,
}

/// Accepts TCP connections and serves each in its own task.
async fn serve_tcp(listener: TcpListener, shared: Shared, settings: TcpSettings) {
    let mut connections = JoinSet::new();
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(%error, "failed to accept a TCP connection");
                tokio::time::sleep(ACCEPT_RETRY).await;
                continue;
            }
        };
        while connections.try_join_next().is_some() {}
        let Ok(permit) = settings.connections.clone().try_acquire_owned() else {
            tracing::debug!(%peer, "closed a TCP connection: too many connections are open");
            continue;
        };
        let shared = shared.clone();
        let settings = settings.clone();
        connections.spawn(async move {
            let _permit = permit;
            serve_connection(stream, peer, &shared, &settings).await;
        });
    }
}

/// Answers the queries of one TCP connection until it closes, sends a
/// zero-length message, or stays idle for the timeout.
async fn serve_connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    shared: &Shared,
    settings: &TcpSettings,
) {
    let _ = stream.set_nodelay(true);
    let zones = &shared.zones;
    let mut query = Vec::new();
    let mut response = Vec::new();
    let mut framed = Vec::new();
    let idle = settings.idle_timeout;
    loop {
        let mut length = [0u8; 2];
        if !matches!(
            tokio::time::timeout(idle, stream.read_exact(&mut length)).await,
            Ok(Ok(_))
        ) {
            return;
        }
        let length = usize::from(u16::from_be_bytes(length));
        if length == 0 {
            return;
        }
        query.resize(length, 0);
        if !matches!(
            tokio::time::timeout(idle, stream.read_exact(&mut query)).await,
            Ok(Ok(_))
        ) {
            return;
        }
        match transfer::start(
            zones,
            &shared.access,
            &query,
            Protocol::Tcp,
            peer,
            &mut response,
        ) {
            Start::NotTransfer => {
                let (access, transport) = (&shared.access, settings.transport);
                if !transfer::answer_query(zones, access, &query, transport, peer, &mut response) {
                    continue;
                }
            }
            Start::Reply => {}
            Start::Stream(transfer) => {
                let Ok(permit) = shared.transfers.clone().try_acquire_owned() else {
                    tracing::info!(%peer,
                        "answered a zone transfer request with SERVFAIL: the most transfers \
                         allowed at once are running");
                    transfer.write_busy(&mut response);
                    if !send_framed(&mut stream, peer, &response, idle, &mut framed).await {
                        return;
                    }
                    continue;
                };
                let sent = send_transfer(&mut stream, peer, transfer, idle).await;
                drop(permit);
                if !sent {
                    return;
                }
                continue;
            }
        }
        if !send_framed(&mut stream, peer, &response, idle, &mut framed).await {
            return;
        }
    }
}

/// Sends one message with its length prefix. Returns false if the
/// connection failed or timed out and must be closed.
async fn send_framed(
    stream: &mut TcpStream,
    peer: SocketAddr,
    message: &[u8],
    idle: Duration,
    framed: &mut Vec<u8>,
) -> bool {
    // Messages over TCP are at most 65535 octets (the answer limit).
    let Ok(len) = u16::try_from(message.len()) else {
        return false;
    };
    framed.clear();
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(message);
    match tokio::time::timeout(idle, stream.write_all(framed)).await {
        Ok(Ok(())) => true,
        Ok(Err(error)) => {
            tracing::debug!(%error, %peer, "failed to send a TCP response");
            false
        }
        Err(_) => false,
    }
}

/// Sends every message of a zone transfer. Returns false if the
/// connection must be closed.
///
/// Each message is built on a blocking thread: name compression and the
/// MAC of a 64 KiB message take long enough that a transfer built on the
/// async worker would hold up the other connections it serves, for as
/// long as the client keeps reading.
async fn send_transfer(
    stream: &mut TcpStream,
    peer: SocketAddr,
    mut transfer: Box<ZoneStream>,
    idle: Duration,
) -> bool {
    let mut framed = Vec::new();
    let mut message = Vec::new();
    loop {
        let built = tokio::task::spawn_blocking(move || {
            let result = transfer.next_message(&mut message);
            (transfer, message, result)
        })
        .await;
        let result;
        (transfer, message, result) = match built {
            Ok(built) => built,
            Err(error) => {
                tracing::error!(%error, %peer, "stopped a zone transfer: building a message failed");
                return false;
            }
        };
        match result {
            Ok(true) => {}
            Ok(false) => return true,
            Err(error) => {
                tracing::error!(%error, %peer, "stopped a zone transfer");
                return false;
            }
        }
        if !send_framed(stream, peer, &message, idle, &mut framed).await {
            tracing::info!(%peer, "a zone transfer ended early: the client closed the connection or stopped reading");
            return false;
        }
    }
}
