//! Measures the raw ECDSA signing rates, the ceiling for a zone signer:
//! every thread signs the same number of 120-octet messages (about the size
//! of the signed data of one A RRset) with one shared key.
//!
//! Usage: `cargo run --release -p keymaster-keys --example sign_rate --
//! [THREADS [SIGNATURES_PER_THREAD]]`. Defaults: one thread per core and
//! 100,000 signatures per thread. Prints the P-256 rates of aws-lc-rs
//! called directly, of [`KeyPair::sign`], which the zone signer uses, and
//! of [`KeyPair::sign_deterministic`] (RFC 6979 through RustCrypto), which
//! it uses in deterministic mode. Prints the last two for P-384 as well.
//! Then prints
//! the P-256 verification rates of aws-lc-rs with the public key parsed
//! for every signature (as [`keymaster_keys::verify`] does) and parsed
//! once, because a signer that checks its own output verifies as many
//! signatures as it makes.

// The report on standard output is this program's whole purpose.
#![allow(clippy::print_stdout)]

use std::time::Instant;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    EcdsaKeyPair, KeyPair as _, ParsedPublicKey, UnparsedPublicKey, ECDSA_P256_SHA256_FIXED,
    ECDSA_P256_SHA256_FIXED_SIGNING,
};
use keymaster_keys::{Algorithm, KeyPair};

/// Size of each signed message in octets.
const MESSAGE_LEN: usize = 120;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let threads = match args.next() {
        Some(text) => text.parse()?,
        None => std::thread::available_parallelism().map_or(1, usize::from),
    };
    let per_thread: usize = match args.next() {
        Some(text) => text.parse()?,
        None => 100_000,
    };

    let rng = SystemRandom::new();
    let document = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)?;
    let raw = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, document.as_ref())?;
    let rate = measure(threads, per_thread, |message| {
        raw.sign(&SystemRandom::new(), message).is_ok()
    });
    println!("aws-lc-rs EcdsaKeyPair::sign: {threads} threads, {rate:.0} signatures/s");

    let pair = KeyPair::generate(Algorithm::EcdsaP256Sha256, None)?;
    let rate = measure(threads, per_thread, |message| pair.sign(message).is_ok());
    println!("keymaster KeyPair::sign:      {threads} threads, {rate:.0} signatures/s");
    let rate = measure(threads, per_thread, |message| {
        pair.sign_deterministic(message).is_ok()
    });
    println!("KeyPair::sign_deterministic:  {threads} threads, {rate:.0} signatures/s");

    let pair = KeyPair::generate(Algorithm::EcdsaP384Sha384, None)?;
    let rate = measure(threads, per_thread, |message| pair.sign(message).is_ok());
    println!("P-384 KeyPair::sign:          {threads} threads, {rate:.0} signatures/s");
    let rate = measure(threads, per_thread, |message| {
        pair.sign_deterministic(message).is_ok()
    });
    println!("P-384 sign_deterministic:     {threads} threads, {rate:.0} signatures/s");

    // Every thread verifies the same signature over the same message.
    let message = [7u8; MESSAGE_LEN];
    let signature = raw.sign(&rng, &message)?;
    let public = raw.public_key().as_ref().to_vec();
    let rate = measure(threads, per_thread / 2, |_| {
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &public)
            .verify(&message, signature.as_ref())
            .is_ok()
    });
    println!("verify, key parsed each time: {threads} threads, {rate:.0} signatures/s");
    let parsed = ParsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &public)?;
    let rate = measure(threads, per_thread / 2, |_| {
        parsed.verify_sig(&message, signature.as_ref()).is_ok()
    });
    println!("verify, key parsed once:      {threads} threads, {rate:.0} signatures/s");
    Ok(())
}

/// Runs `sign` `per_thread` times on each of `threads` threads and returns
/// the signatures per second over all threads.
fn measure(threads: usize, per_thread: usize, sign: impl Fn(&[u8]) -> bool + Sync) -> f64 {
    let start = Instant::now();
    let failures: usize = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|thread| {
                let sign = &sign;
                scope.spawn(move || {
                    let mut message = [thread as u8; MESSAGE_LEN];
                    let mut failures = 0;
                    for round in 0..per_thread {
                        message[..8].copy_from_slice(&(round as u64).to_be_bytes());
                        failures += usize::from(!sign(&message));
                    }
                    failures
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|worker| worker.join().unwrap_or(per_thread))
            .sum()
    });
    let seconds = start.elapsed().as_secs_f64();
    assert_eq!(failures, 0, "signing failed");
    (threads * per_thread) as f64 / seconds
}
