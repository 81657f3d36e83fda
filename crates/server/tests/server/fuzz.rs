//! Random and mutated messages must never panic `answer`.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use keymaster_server::{answer, Transport, ZoneSet};
use keymaster_zone::Rtype;

use crate::common::*;

const ROUNDS: usize = 100_000;

#[test]
fn random_and_mutated_packets_do_not_panic() {
    let zones = ZoneSet::new();
    zones.publish(published("example.com.", include_str!("zone.txt")));
    let seeds = [
        query("host.example.com.", Rtype::A, Some((1232, 0, true))),
        query("a.b.wild.example.com.", Rtype::TXT, None),
        query("x.sub.example.com.", Rtype::A, Some((512, 0, true))),
        query("q.dn.example.com.", Rtype::A, None),
        query("nothing.example.com.", Rtype::ANY, Some((4096, 0, true))),
    ];
    let peer = PEER.parse().unwrap();
    let mut rng = StdRng::seed_from_u64(0x6b65_796d);
    let mut answered = 0usize;
    for round in 0..ROUNDS {
        let message = if round % 4 == 0 {
            let len = rng.gen_range(0..600);
            (0..len).map(|_| rng.gen()).collect::<Vec<u8>>()
        } else {
            let mut message = seeds[round % seeds.len()].clone();
            for _ in 0..rng.gen_range(1..6) {
                mutate(&mut message, &mut rng);
            }
            message
        };
        let transport = if round % 2 == 0 {
            Transport::udp(1232)
        } else {
            Transport::tcp(1232)
        };
        if let Some(response) = answer(&zones, &message, transport, peer) {
            assert!(response.len() >= 12);
            answered += 1;
        }
    }
    // Most mutated queries keep a readable header and get a response.
    assert!(
        answered > ROUNDS / 2,
        "only {answered} of {ROUNDS} answered"
    );
}

fn mutate(message: &mut Vec<u8>, rng: &mut StdRng) {
    if message.is_empty() {
        message.push(rng.gen());
        return;
    }
    let pos = rng.gen_range(0..message.len());
    match rng.gen_range(0..5) {
        0 => message[pos] = rng.gen(),
        1 => message[pos] ^= 1 << rng.gen_range(0..8),
        2 => message.truncate(pos),
        3 => message.insert(pos, rng.gen()),
        // A compression pointer to a random earlier or later offset.
        _ => {
            let target: u16 = rng.gen_range(0..message.len() as u16 + 4);
            message.splice(pos..pos, (0xc000 | target).to_be_bytes());
        }
    }
}
