//! Measures the query rate of [`answer_into`] on one thread, without
//! sockets, for the query mix of `scripts/bench-query`.
//!
//! Usage: `answer_rate SIGNED_FILE [ROUNDS [HOSTS [DELEGATIONS]]]`
//!
//! `SIGNED_FILE` is a signed `bench.test.` zone made from
//! `scripts/bench-zone HOSTS DELEGATIONS`. Every round answers the same
//! 100,000 queries with the DO bit set: 40% A and 20% AAAA for existing
//! hosts, 20% names that do not exist and 20% names below delegations.
//! ROUNDS defaults to 10, HOSTS to 200,000 and DELEGATIONS to 10,000.
//! The run prints the rate, the total response size and an FNV-1a digest
//! of all responses, which must not change between builds that answer
//! the same way.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context};
use keymaster_server::{answer_into, PublishedZone, Transport, ZoneSet};
use keymaster_zone::{load_zone_file, parse_name, LoadOptions, Name, Rtype};

/// Number of queries in one round, as in `scripts/bench-query`.
const QUERIES_PER_ROUND: u64 = 100_000;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(path) = args.first() else {
        bail!("usage: answer_rate SIGNED_FILE [ROUNDS [HOSTS [DELEGATIONS]]]");
    };
    let rounds: u64 = parse_arg(&args, 1, 10)?;
    let hosts: u64 = parse_arg(&args, 2, 200_000)?;
    let delegations: u64 = parse_arg(&args, 3, 10_000)?;
    if rounds == 0 || hosts == 0 || delegations == 0 {
        bail!("ROUNDS, HOSTS and DELEGATIONS must be above 0");
    }

    let origin = parse_name("bench.test.", &Name::root())?;
    let started = Instant::now();
    let loaded = load_zone_file(Path::new(path), &origin, &LoadOptions::default())
        .with_context(|| format!("failed to load {path}"))?;
    let zones = ZoneSet::new();
    zones.publish(Arc::new(PublishedZone::new(loaded.zone)?));
    eprintln!("loaded and indexed {path} in {:.1?}", started.elapsed());

    let queries = query_mix(&origin, hosts, delegations)?;
    let transport = Transport::udp(1232);
    let peer: SocketAddr = "127.0.0.1:5300".parse()?;
    let mut response = Vec::with_capacity(1232);
    // One untimed round for the digest, then the timed rounds.
    let mut octets = 0u64;
    let mut digest = FNV_OFFSET;
    for query in &queries {
        if answer_into(&zones, query, transport, peer, &mut response) {
            octets += response.len() as u64;
            digest = fnv1a(digest, &response);
        }
    }
    eprintln!("one round: {octets} response octets, digest {digest:016x}");

    let started = Instant::now();
    let mut answered = 0u64;
    for _ in 0..rounds {
        for query in &queries {
            answered += u64::from(answer_into(&zones, query, transport, peer, &mut response));
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    eprintln!(
        "{answered} responses in {elapsed:.2} s: {:.0} queries/s on one thread",
        answered as f64 / elapsed
    );
    Ok(())
}

/// FNV-1a 64-bit offset basis and prime.
const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// Continues an FNV-1a digest over `octets`.
fn fnv1a(mut digest: u64, octets: &[u8]) -> u64 {
    for &octet in octets {
        digest = (digest ^ u64::from(octet)).wrapping_mul(FNV_PRIME);
    }
    digest
}

/// Returns argument `index` parsed as a number, or `default` when absent.
fn parse_arg(args: &[String], index: usize, default: u64) -> anyhow::Result<u64> {
    match args.get(index) {
        Some(text) => text
            .parse()
            .with_context(|| format!("invalid number {text:?}")),
        None => Ok(default),
    }
}

/// Builds the query messages of `scripts/bench-query`, in its order, each
/// with an OPT record for a 4096-octet payload and the DO bit.
fn query_mix(origin: &Name, hosts: u64, delegations: u64) -> anyhow::Result<Vec<Vec<u8>>> {
    let mut queries = Vec::new();
    for i in 0..QUERIES_PER_ROUND {
        let host = (i * 7919) % hosts;
        let (label, rtype) = match i % 10 {
            0..=3 => (format!("h{host}"), Rtype::A),
            4 | 5 => (format!("h{}", host - host % 2), Rtype::AAAA),
            6 | 7 => (format!("nx{host}"), Rtype::A),
            _ => (format!("www.d{}", host % delegations), Rtype::A),
        };
        let qname = parse_name(&label, origin)?;
        let id = (i % 65536) as u16;
        let mut message = id.to_be_bytes().to_vec();
        message.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0, 1]);
        message.extend_from_slice(qname.as_wire());
        message.extend_from_slice(&rtype.to_int().to_be_bytes());
        message.extend_from_slice(&1u16.to_be_bytes());
        // OPT: root owner, type 41, payload 4096, version 0, DO set.
        message.extend_from_slice(&[0, 0, 41, 0x10, 0x00, 0, 0, 0x80, 0, 0, 0]);
        queries.push(message);
    }
    Ok(queries)
}
