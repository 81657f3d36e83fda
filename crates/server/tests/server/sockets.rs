//! The server on real loopback sockets, queried by dig, kdig and raw
//! packets.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use keymaster_server::{Server, ServerConfig, ZoneSet};
use keymaster_testutil::{free_port, testdata, tool};
use keymaster_zone::Rtype;
use tokio::sync::oneshot;

use crate::common::*;

/// A server running on its own runtime thread; stopped on drop.
struct Running {
    address: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn start(zones: ZoneSet) -> Running {
    let config = ServerConfig {
        tcp_idle_timeout: Duration::from_secs(3),
        ..ServerConfig::default()
    };
    start_with(zones, config)
}

/// Starts a server on a free port with the settings of `config` other
/// than the listen address, and two UDP sockets.
fn start_with(zones: ZoneSet, config: ServerConfig) -> Running {
    let address = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let config = ServerConfig {
        listen: vec![address],
        udp_sockets_per_address: 2,
        ..config
    };
    let server = Server::bind(config, Arc::new(zones)).expect("bind the test server");
    assert_eq!(server.local_addrs(), [address]);
    let (stop, stopped) = oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("build a runtime");
        runtime
            .block_on(server.run(async {
                let _ = stopped.await;
            }))
            .expect("server runs");
    });
    Running {
        address,
        stop: Some(stop),
        thread: Some(thread),
    }
}

fn test_zones(data: &Path) -> ZoneSet {
    let zones = ZoneSet::new();
    zones.publish(published("example.com.", include_str!("zone.txt")));
    let signed = std::fs::read_to_string(data.join("vectors/rfc4035-appendix-A.signed.zone"));
    zones.publish(published("example.", &signed.unwrap()));
    zones
}

/// Runs a query tool and returns its output with whitespace runs folded.
fn run(program: &Path, address: SocketAddr, args: &[&str]) -> String {
    let output = Command::new(program)
        .arg(format!("@{}", address.ip()))
        .arg("-p")
        .arg(address.port().to_string())
        .args(args)
        .output()
        .expect("run the query tool");
    let text = String::from_utf8_lossy(&output.stdout);
    text.lines()
        .map(|line| line.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn dig_queries_over_udp_and_tcp() {
    let (Some(data), Some(dig)) = (testdata("dig_queries"), tool("dig_queries", "dig")) else {
        return;
    };
    let server = start(test_zones(&data));
    let common = ["+norec", "+time=2", "+tries=1"];
    for transport in ["+notcp", "+tcp"] {
        let out = run(
            &dig,
            server.address,
            &[&common[..], &[transport, "host.example.com", "A"]].concat(),
        );
        assert!(out.contains("status: NOERROR"), "{transport}: {out}");
        assert!(out.contains("flags: qr aa;"), "{transport}: {out}");
        assert!(
            out.contains("host.example.com. 3600 IN A 192.0.2.3"),
            "{transport}: {out}"
        );
    }

    let out = run(
        &dig,
        server.address,
        &[&common[..], &["+dnssec", "x.w.example", "MX"]].concat(),
    );
    assert!(out.contains("flags: do;"), "{out}");
    assert!(
        out.contains("x.w.example. 3600 IN RRSIG MX 5 3 3600"),
        "{out}"
    );

    // A 512-octet buffer truncates the 2.3 KB TXT RRset; dig retries over TCP.
    let args = [
        &common[..],
        &["+bufsize=512", "+ignore", "big.example.com", "TXT"],
    ]
    .concat();
    let out = run(&dig, server.address, &args);
    assert!(out.contains("flags: qr aa tc;"), "{out}");
    let args = [&common[..], &["+bufsize=512", "big.example.com", "TXT"]].concat();
    let out = run(&dig, server.address, &args);
    assert!(out.contains("Truncated, retrying in TCP mode"), "{out}");
    assert!(out.contains("ANSWER: 20,"), "{out}");

    let out = run(
        &dig,
        server.address,
        &[&common[..], &["nothing.example.org", "A"]].concat(),
    );
    assert!(out.contains("status: REFUSED"), "{out}");
}

#[test]
fn kdig_queries_over_udp_and_tcp() {
    let (Some(data), Some(kdig)) = (testdata("kdig_queries"), tool("kdig_queries", "kdig")) else {
        return;
    };
    let server = start(test_zones(&data));
    let common = ["+norec", "+time=2", "+retry=0"];
    for transport in ["+notcp", "+tcp"] {
        let args = [&common[..], &[transport, "+dnssec", "ml.example", "A"]].concat();
        let out = run(&kdig, server.address, &args);
        assert!(out.contains("status: NXDOMAIN"), "{transport}: {out}");
        assert!(
            out.contains("b.example. 3600 IN NSEC ns1.example. NS RRSIG NSEC"),
            "{out}"
        );
    }
    let args = [&common[..], &["+bufsize=512", "big.example.com", "TXT"]].concat();
    let out = run(&kdig, server.address, &args);
    assert!(out.contains("TC"), "{out}");
    let args = [&common[..], &["+tcp", "big.example.com", "TXT"]].concat();
    let out = run(&kdig, server.address, &args);
    assert!(out.contains("ANSWER: 20;"), "{out}");
}

/// Builds a query whose question name is a compression pointer to itself.
fn label_loop() -> Vec<u8> {
    let mut message = vec![0x0b, 0xad, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    message.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
    message
}

const GARBAGE: &[u8] = b"\x13\x37\x00\x00\xff\xff\xff\xff garbage that is no DNS message";

#[test]
fn malformed_packets_do_not_stop_the_server() {
    let Some(data) = testdata("malformed_packets") else {
        return;
    };
    let server = start(test_zones(&data));

    // UDP: a short header gets no response, garbage with a readable header
    // and a label loop get FORMERR, and a normal query afterwards is
    // answered.
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    socket.connect(server.address).unwrap();
    socket.send(GARBAGE).unwrap();
    socket.send(&[0x12, 0x34, 0, 0, 0]).unwrap();
    socket.send(&label_loop()).unwrap();
    socket
        .send(&query("host.example.com.", Rtype::A, None))
        .unwrap();
    let mut buf = [0u8; 2048];
    let mut responses = Vec::new();
    while responses.len() < 3 {
        let Ok(len) = socket.recv(&mut buf) else {
            break;
        };
        responses.push(decode(&buf[..len]));
    }
    let formerr = responses
        .iter()
        .find(|r| r.id == 0x0bad)
        .expect("FORMERR for the label loop");
    assert_eq!(formerr.rcode(), 1);
    assert!(responses.iter().any(|r| r.id == 0x1337 && r.rcode() == 1));
    let answered = responses
        .iter()
        .find(|r| r.id == 0xbeef)
        .expect("answer after the garbage");
    assert_eq!(
        answered.answer_text(),
        ["host.example.com. 3600 IN A 192.0.2.3"]
    );

    // TCP, all on one connection.
    let mut stream = TcpStream::connect(server.address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    for message in [&[0x12, 0x34, 0, 0, 0][..], GARBAGE, &label_loop()] {
        stream
            .write_all(&(message.len() as u16).to_be_bytes())
            .unwrap();
        stream.write_all(message).unwrap();
    }
    // The short message gets no response; the garbage has a readable
    // header, so it gets FORMERR like the label loop.
    let garbage = read_framed(&mut stream);
    assert_eq!(garbage.id, 0x1337);
    assert_eq!(garbage.rcode(), 1);
    let formerr = read_framed(&mut stream);
    assert_eq!(formerr.id, 0x0bad);
    assert_eq!(formerr.rcode(), 1);
    let message = query("www.example.com.", Rtype::A, None);
    stream
        .write_all(&(message.len() as u16).to_be_bytes())
        .unwrap();
    stream.write_all(&message).unwrap();
    let answered = read_framed(&mut stream);
    assert_eq!(answered.id, 0xbeef);
    assert_eq!(answered.answer.len(), 3);
}

fn read_framed(stream: &mut TcpStream) -> Decoded {
    let mut length = [0u8; 2];
    stream.read_exact(&mut length).unwrap();
    let mut message = vec![0u8; usize::from(u16::from_be_bytes(length))];
    stream.read_exact(&mut message).unwrap();
    decode(&message)
}

/// Writes one message with its length prefix.
fn write_framed(stream: &mut TcpStream, message: &[u8]) {
    stream
        .write_all(&(message.len() as u16).to_be_bytes())
        .unwrap();
    stream.write_all(message).unwrap();
}

/// Returns a zone of `hosts` names with a TXT record of about 750 octets
/// each, so that its transfer spans many messages.
fn large_zone(hosts: usize) -> ZoneSet {
    let mut text = String::from("$TTL 300\n@ SOA ns hostmaster 1 3600 900 604800 300\n");
    text.push_str("@ NS ns\nns A 192.0.2.1\n");
    let filler = "x".repeat(250);
    for host in 0..hosts {
        text.push_str(&format!(
            "host{host} TXT \"{host}\" \"{filler}\" \"{filler}\" \"{filler}\"\n"
        ));
    }
    let zones = ZoneSet::new();
    zones.publish(published("big.test.", &text));
    zones
}

/// Connects with a small receive buffer, sends an AXFR request for
/// big.test and returns the stream with the first response message.
fn request_transfer(address: SocketAddr) -> (TcpStream, Decoded) {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.connect(&address.into()).unwrap();
    let mut stream: TcpStream = socket.into();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    write_framed(&mut stream, &query("big.test.", Rtype::AXFR, None));
    let first = read_framed(&mut stream);
    (stream, first)
}

/// Reads a whole transfer whose first message is `first`. Returns the
/// number of answer records, or None if the stream ended early.
fn read_transfer(stream: &mut TcpStream, first: Decoded) -> Option<usize> {
    let mut records = first.answer.len();
    let mut soas = first
        .answer
        .iter()
        .filter(|r| r.rtype == Rtype::SOA)
        .count();
    for _ in 0..10_000 {
        if soas >= 2 {
            return Some(records);
        }
        let mut length = [0u8; 2];
        stream.read_exact(&mut length).ok()?;
        let mut message = vec![0u8; usize::from(u16::from_be_bytes(length))];
        stream.read_exact(&mut message).ok()?;
        let message = decode(&message);
        records += message.answer.len();
        soas += message
            .answer
            .iter()
            .filter(|r| r.rtype == Rtype::SOA)
            .count();
    }
    None
}

/// Sends an SOA query on a new TCP connection and returns the response.
fn tcp_soa_query(address: SocketAddr) -> Decoded {
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write_framed(&mut stream, &query("big.test.", Rtype::SOA, None));
    read_framed(&mut stream)
}

#[test]
fn transfers_are_limited_and_queries_still_answered() {
    // About 9 MB, more than the kernel buffers on both ends of a loopback
    // connection hold, so that a transfer to a client that stops reading
    // stays in flight.
    let hosts = 12_000;
    let limit = 2;
    let config = ServerConfig {
        tcp_idle_timeout: Duration::from_secs(60),
        max_transfers: limit,
        ..ServerConfig::default()
    };
    let server = start_with(large_zone(hosts), config);
    let address = server.address;

    // Clients that read the first message and then stop hold every
    // transfer permit.
    let holders: Vec<TcpStream> = (0..limit)
        .map(|_| {
            let (stream, first) = request_transfer(address);
            assert_eq!(first.rcode(), 0);
            assert!(!first.answer.is_empty());
            stream
        })
        .collect();

    // One more transfer request gets SERVFAIL; a query is answered.
    let (_, busy) = request_transfer(address);
    assert_eq!(busy.rcode(), 2, "SERVFAIL expected beyond the limit");
    assert!(busy.answer.is_empty());
    assert_eq!(busy.question, query("big.test.", Rtype::AXFR, None)[12..]);
    let soa = tcp_soa_query(address);
    assert_eq!(soa.rcode(), 0);
    assert_eq!(soa.answer.len(), 1);

    // Closing the held connections frees their permits. Then transfers to
    // clients that read as fast as they can run beside queries on new
    // connections, which are all answered.
    drop(holders);
    let readers: Vec<_> = (0..limit)
        .map(|_| {
            std::thread::spawn(move || {
                for _ in 0..100 {
                    let (mut stream, first) = request_transfer(address);
                    if first.rcode() == 0 {
                        return read_transfer(&mut stream, first);
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
                None
            })
        })
        .collect();
    for _ in 0..5 {
        let soa = tcp_soa_query(address);
        assert_eq!(soa.rcode(), 0);
        assert_eq!(soa.answer.len(), 1);
    }
    for reader in readers {
        let records = reader.join().unwrap();
        // The SOA twice, the NS and A records, and one TXT per host.
        assert_eq!(records, Some(hosts + 4));
    }
}
