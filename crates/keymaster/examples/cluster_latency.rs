//! Measures two latencies of signed cluster zones on loopback, with a
//! private etcd and three `keymaster serve` members (ns-a, ns-b, ns-c) in
//! a temporary folder. `scripts/bench-cluster` builds and runs it.
//!
//! Usage: `cluster_latency [seize|import|all] [REPETITIONS]`
//!
//! `seize`: the Key Master ns-a of a signed cluster zone is killed with
//! SIGKILL in the middle of a ZSK rollover, right after the new ZSK is
//! published. Once ns-c sees ns-a offline and the rollover's next step is
//! due, `keymaster role seize ZONE ns-c` is sent to ns-c. The benchmark
//! watches etcd and times, from the moment the command is started, the
//! role record's write and the first write under `keys/` or `engine/`
//! after it: the new Key Master's first key-management action. Each
//! repetition runs in a fresh cluster.
//!
//! `import`: `keymaster zone import ZONE FILE` on ns-a with one changed A
//! record, for a zone of tens of records and one of a few thousand. From
//! the moment the command is started, every member is asked for the
//! changed name (A, DO bit set) and the SOA every 10 ms, until it answers
//! the new address with an RRSIG over it and the new serial. The
//! reference is a signed file zone of the same records on ns-a alone:
//! the same change by editing its file and `keymaster zone reload`.
//!
//! REPETITIONS defaults to 5. The keymaster binary is `KEYMASTER`, or
//! `keymaster` in the folder above this program's. Every wait is bounded
//! and every process is stopped by process id when the run ends.

#![allow(clippy::print_stdout)]

use std::io::Read;
use std::net::{Ipv4Addr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use domain::base::iana::{Class, Rtype};
use domain::base::{Message, MessageBuilder, ParsedName};
use domain::rdata::{Rrsig, Soa, A};
use keymaster_testutil::etcd::Etcd;
use keymaster_testutil::member::Member;
use keymaster_testutil::{output_text, run, wait_until, ChildGuard};
use keymaster_zone::{parse_name, Name};

/// Lease of the members: a killed Key Master shows offline after this.
const LEASE_TTL: &str = "2s";

/// `fast` rolls keys within seconds, so that the seizure benchmark finds a
/// rollover step due; `bench` has the default timings. Neither queries a
/// parent server, because the DS is confirmed by hand.
const POLICIES: &str = "
[policy.fast]
dnskey_ttl = \"2s\"
max_zone_ttl = \"2s\"
zone_propagation_delay = \"1s\"
parent_ds_ttl = \"2s\"
parent_propagation_delay = \"1s\"
publish_safety = \"1s\"
retire_safety = \"1s\"
signature_validity = \"1d\"
signature_validity_dnskey = \"1d\"
signature_refresh = \"12h\"
signature_jitter = \"1h\"
signature_inception_offset = \"1m\"
parent_ds_check = \"manual\"

[policy.bench]
parent_ds_check = \"manual\"
";

/// The zone of the seizure benchmark, with TTLs within `fast`'s limit.
const SEIZE_ZONE: &str = "$TTL 2\n@ SOA ns hostmaster 5 7200 3600 1209600 2\n@ NS ns\n\
                          ns A 192.0.2.53\nwww A 192.0.2.80\n";

/// Maximum wait for keys to change state or a member to notice a change.
const STATE_TIMEOUT: Duration = Duration::from_secs(90);

/// Maximum wait for every member to serve an imported version.
const SERVE_TIMEOUT: Duration = Duration::from_secs(120);

/// Interval between two rounds of queries.
const POLL_INTERVAL: Duration = Duration::from_millis(10);

/// The time a rollover step waits after a new ZSK is published in `fast`
/// (DNSKEY TTL, propagation delay, publish safety), with a margin: the
/// seizure is sent no earlier, so the new Key Master finds the step due.
const STEP_DUE_AFTER: Duration = Duration::from_secs(8);

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mode = args.first().map_or("all", String::as_str);
    let repetitions: usize = match args.get(1) {
        Some(text) => text
            .parse()
            .with_context(|| format!("REPETITIONS {text:?} is not a number"))?,
        None => 5,
    };
    if !(1..=50).contains(&repetitions) {
        bail!("REPETITIONS must be between 1 and 50, not {repetitions}");
    }
    let program = program()?;
    match mode {
        "seize" => seize_benchmark(&program, repetitions),
        "import" => import_benchmark(&program, repetitions),
        "all" => {
            seize_benchmark(&program, repetitions)?;
            import_benchmark(&program, repetitions)
        }
        other => bail!("unknown benchmark {other:?}: use seize, import or all"),
    }
}

/// Returns the keymaster binary: `KEYMASTER`, or the one Cargo built
/// beside this example.
fn program() -> anyhow::Result<PathBuf> {
    let path = match std::env::var_os("KEYMASTER") {
        Some(path) => PathBuf::from(path),
        None => {
            let me = std::env::current_exe()?;
            let examples = me.parent().context("this program has no folder")?;
            examples.join("../keymaster")
        }
    };
    if !path.is_file() {
        bail!(
            "no keymaster binary at {}: build it with `cargo build --release -p keymaster` or set KEYMASTER",
            path.display()
        );
    }
    Ok(path)
}

/// A private etcd and three members with one cluster key.
struct Cluster {
    // Members first: they are stopped before etcd.
    a: Option<Member>,
    b: Member,
    c: Member,
    _etcd: Etcd,
    endpoint: String,
}

impl Cluster {
    /// Starts etcd and the members in `dir`; `extra_a` is appended to
    /// ns-a's configuration only.
    fn start(program: &Path, dir: &Path, extra_a: &str) -> anyhow::Result<Self> {
        let Some(etcd) = Etcd::start("cluster_latency", &dir.join("etcd")) else {
            bail!("etcd is not installed (Debian package etcd-server)");
        };
        let key = dir.join("cluster.key");
        check(
            &run(Command::new(program)
                .args(["cluster", "new-key", "-o"])
                .arg(&key)),
            "keymaster cluster new-key",
        )?;
        let endpoint = etcd.endpoint();
        let start = |name: &str, extra: &str| {
            let member = Member::start_with(
                program,
                dir,
                name,
                &endpoint,
                Some(&key),
                LEASE_TTL,
                &format!("{POLICIES}{extra}"),
            );
            member.wait_joined(Duration::from_secs(20));
            member
        };
        let a = start("ns-a", extra_a);
        let b = start("ns-b", "");
        let c = start("ns-c", "");
        Ok(Self {
            a: Some(a),
            b,
            c,
            endpoint: endpoint.clone(),
            _etcd: etcd,
        })
    }

    fn a(&self) -> &Member {
        self.a.as_ref().expect("ns-a was killed")
    }
}

/// Fails with the command's output unless it succeeded.
fn check(output: &Output, what: &str) -> anyhow::Result<()> {
    if !output.status.success() {
        bail!("{what} failed: {}", output_text(output));
    }
    Ok(())
}

/// Runs the CLI on `member` and fails with its output and the member's
/// log unless it succeeds.
fn ok(member: &Member, args: &[&str]) -> anyhow::Result<Output> {
    let output = member.cli(args);
    if !output.status.success() {
        bail!(
            "{} {args:?} failed: {}\n{}",
            member.name,
            output_text(&output),
            member.log()
        );
    }
    Ok(output)
}

fn json(output: &Output) -> anyhow::Result<serde_json::Value> {
    serde_json::from_slice(&output.stdout)
        .with_context(|| format!("not JSON: {}", output_text(output)))
}

fn keys(member: &Member, zone: &str) -> anyhow::Result<Vec<serde_json::Value>> {
    let list = json(&ok(member, &["key", "list", zone, "--json"])?)?;
    Ok(list.as_array().cloned().unwrap_or_default())
}

/// Returns whether a zone has exactly one KSK and one ZSK, each fully in
/// the zone.
fn established(keys: &[serde_json::Value]) -> bool {
    keys.len() == 2
        && keys.iter().all(|key| {
            let wanted: &[&str] = if key["role"] == "zsk" {
                &["dnskey_state", "zrrsig_state"]
            } else {
                &["dnskey_state", "krrsig_state"]
            };
            wanted.iter().all(|state| key[*state] == "omnipresent")
        })
}

/// Waits for `check` up to `timeout`, failing with `what` when it never
/// returns true or returns an error.
fn wait_for(
    timeout: Duration,
    what: &str,
    mut check: impl FnMut() -> anyhow::Result<bool>,
) -> anyhow::Result<()> {
    let mut error = None;
    let passed = wait_until(timeout, || match check() {
        Ok(passed) => passed,
        Err(failure) => {
            error = Some(failure);
            true
        }
    });
    if let Some(error) = error {
        return Err(error.context(what.to_string()));
    }
    if !passed {
        bail!("{what}: not within {} s", timeout.as_secs());
    }
    Ok(())
}

// ---------------------------------------------------------------------
// Seizure

/// Durations of one seizure, from the moment the command was started.
struct Seizure {
    /// Until the role record was written.
    role_written: Duration,
    /// Until the command returned.
    command_done: Duration,
    /// Until the first write under `keys/` or `engine/` after the role.
    first_action: Duration,
    /// The keys of that first key-management transaction.
    action_keys: Vec<String>,
}

fn seize_benchmark(program: &Path, repetitions: usize) -> anyhow::Result<()> {
    println!(
        "== seizure to first key-management action ({repetitions} repetitions, fresh cluster each)"
    );
    let mut results = Vec::new();
    for repetition in 1..=repetitions {
        let seizure =
            seize_once(program).with_context(|| format!("seizure repetition {repetition}"))?;
        println!(
            "seize {repetition}: role record {:.1} ms, command returned {:.1} ms, first key-management write {:.1} ms ({})",
            ms(seizure.role_written),
            ms(seizure.command_done),
            ms(seizure.first_action),
            seizure.action_keys.join(" ")
        );
        results.push(seizure);
    }
    summary(
        "role record written",
        results.iter().map(|s| s.role_written),
    );
    summary(
        "seize command returned",
        results.iter().map(|s| s.command_done),
    );
    summary(
        "first key-management write",
        results.iter().map(|s| s.first_action),
    );
    summary(
        "role record to first key-management write",
        results.iter().map(|s| s.first_action - s.role_written),
    );
    Ok(())
}

fn seize_once(program: &Path) -> anyhow::Result<Seizure> {
    let zone = "seize.test.";
    let dir = tempfile::tempdir()?;
    let mut cluster = Cluster::start(program, dir.path(), "")?;
    let file = dir.path().join("seize.zone");
    std::fs::write(&file, SEIZE_ZONE)?;
    let path = file.to_str().context("temporary path is not UTF-8")?;
    ok(
        cluster.a(),
        &["zone", "add", zone, "--cluster", "--from-file", path],
    )?;
    ok(
        cluster.a(),
        &[
            "zone",
            "sign",
            zone,
            "--policy",
            "fast",
            "--key-master",
            "ns-a",
        ],
    )?;
    wait_for(STATE_TIMEOUT, "the first keys become omnipresent", || {
        Ok(established(&keys(cluster.a(), zone)?))
    })?;

    // A ZSK rollover starts; ns-a dies once the new ZSK is published.
    let zsk = keys(cluster.a(), zone)?
        .into_iter()
        .find(|key| key["role"] == "zsk")
        .context("no ZSK")?;
    let old = zsk["id"].as_str().context("ZSK without id")?.to_string();
    let tag = zsk["key_tag"].as_u64().context("ZSK without tag")?;
    ok(cluster.a(), &["key", "rollover", zone, &tag.to_string()])?;
    wait_for(STATE_TIMEOUT, "a new ZSK is published", || {
        Ok(keys(cluster.a(), zone)?.iter().any(|key| {
            key["role"] == "zsk" && key["id"] != old.as_str() && key["dnskey_state"] == "rumoured"
        }))
    })?;
    let published = Instant::now();
    // Lets ns-a serve the version with the new ZSK before it dies.
    std::thread::sleep(Duration::from_secs(1));
    cluster.a.take().context("ns-a already killed")?.kill();
    wait_for(Duration::from_secs(30), "ns-c sees ns-a offline", || {
        let servers = json(&ok(&cluster.c, &["server", "list", "--json"])?)?;
        Ok(servers
            .as_array()
            .into_iter()
            .flatten()
            .any(|server| server["name"] == "ns-a" && server["online"] == false))
    })?;
    if let Some(rest) = STEP_DUE_AFTER.checked_sub(published.elapsed()) {
        std::thread::sleep(rest);
    }

    let watch = Watch::start(&cluster.endpoint)?;
    let sent = Instant::now();
    let seized = json(&ok(&cluster.c, &["role", "seize", zone, "ns-c", "--json"])?)?;
    let command_done = sent.elapsed();
    if seized["key_master"] != "ns-c" {
        bail!("the seizure did not name ns-c: {seized}");
    }
    let role_key = format!("/keymaster/roles/{zone}");
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut role = None;
    let mut action: Option<(Instant, i64)> = None;
    let mut action_keys = Vec::new();
    while Instant::now() < deadline {
        let Ok(event) = watch.events.recv_timeout(Duration::from_millis(500)) else {
            continue;
        };
        if role.is_none() {
            if event.key == role_key {
                role = Some((event.seen, event.revision));
            }
            continue;
        }
        if let Some((_, revision)) = action {
            if event.revision != revision {
                break;
            }
            action_keys.push(event.key);
            continue;
        }
        let managed = ["/keymaster/keys/", "/keymaster/engine/"]
            .iter()
            .any(|prefix| event.key.starts_with(prefix));
        if managed {
            action = Some((event.seen, event.revision));
            action_keys.push(event.key);
        }
    }
    let Some((role_seen, _)) = role else {
        bail!("the watch never reported the role record");
    };
    let Some((action_seen, _)) = action else {
        bail!(
            "ns-c wrote nothing under keys/ or engine/ within 60 s: {}",
            cluster.c.log()
        );
    };
    Ok(Seizure {
        role_written: role_seen - sent,
        command_done,
        first_action: action_seen - sent,
        action_keys: action_keys
            .iter()
            .map(|key| key.trim_start_matches("/keymaster/").to_string())
            .collect(),
    })
}

/// One key put or deleted, as the watch reported it.
struct WatchEvent {
    seen: Instant,
    revision: i64,
    key: String,
}

/// Watches every key under `/keymaster/` from the current revision on,
/// in a thread of its own, for at most two minutes.
struct Watch {
    events: mpsc::Receiver<WatchEvent>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Watch {
    /// Starts the watch and returns once etcd has confirmed it.
    fn start(endpoint: &str) -> anyhow::Result<Self> {
        let (events, received) = mpsc::channel();
        let (ready, confirmed) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let endpoint = endpoint.to_string();
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(error) => {
                    let _ = ready.send(Err(anyhow::Error::from(error)));
                    return;
                }
            };
            runtime.block_on(async move {
                let connected = async {
                    let mut client = etcd_client::Client::connect([endpoint], None).await?;
                    let options = etcd_client::WatchOptions::new().with_prefix();
                    let stream = client.watch("/keymaster/", Some(options)).await?;
                    Ok::<_, etcd_client::Error>((client, stream))
                };
                let (_client, mut stream) =
                    match tokio::time::timeout(Duration::from_secs(10), connected).await {
                        Ok(Ok((client, stream))) => (client, stream),
                        Ok(Err(error)) => {
                            let _ = ready.send(Err(error.into()));
                            return;
                        }
                        Err(_) => {
                            let _ = ready.send(Err(anyhow::anyhow!("etcd watch timed out")));
                            return;
                        }
                    };
                let _ = ready.send(Ok(()));
                let started = Instant::now();
                while !stopped.load(Ordering::SeqCst)
                    && started.elapsed() < Duration::from_secs(120)
                {
                    let message =
                        match tokio::time::timeout(Duration::from_millis(200), stream.message())
                            .await
                        {
                            Ok(Ok(Some(message))) => message,
                            Ok(_) => return,
                            Err(_) => continue,
                        };
                    let seen = Instant::now();
                    for event in message.events() {
                        if let Some(kv) = event.kv() {
                            let sent = events.send(WatchEvent {
                                seen,
                                revision: kv.mod_revision(),
                                key: String::from_utf8_lossy(kv.key()).into_owned(),
                            });
                            if sent.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        });
        match confirmed.recv_timeout(Duration::from_secs(15)) {
            Ok(Ok(())) => {}
            Ok(Err(error)) => return Err(error.context("cannot watch etcd")),
            Err(_) => bail!("the etcd watch did not start within 15 s"),
        }
        Ok(Self {
            events: received,
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

// ---------------------------------------------------------------------
// Import

/// One size of zone: a cluster zone and the file zone it is compared to.
struct Sized {
    hosts: usize,
    cluster_zone: String,
    file_zone: String,
    /// Master file of the file zone, which ns-a reads.
    file_path: PathBuf,
    /// The file `zone import` reads.
    import_path: PathBuf,
}

impl Sized {
    fn new(dir: &Path, hosts: usize) -> Self {
        Self {
            hosts,
            cluster_zone: format!("c{hosts}.test."),
            file_zone: format!("f{hosts}.test."),
            file_path: dir.join(format!("f{hosts}.zone")),
            import_path: dir.join(format!("c{hosts}.zone")),
        }
    }
}

/// The records of a benchmark zone: HOSTS hosts with an A record, every
/// second with an AAAA and every tenth with a TXT, as `scripts/bench-zone`
/// makes them, plus `probe`, whose address changes from one version to
/// the next.
fn zone_text(hosts: usize, serial: u32, probe: Ipv4Addr) -> String {
    let mut text = format!(
        "$TTL 300\n@ SOA ns1 hostmaster {serial} 7200 3600 1209600 300\n@ NS ns1\n\
         ns1 A 192.0.2.1\nprobe A {probe}\n"
    );
    for i in 0..hosts {
        let (a, b, c) = ((i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff);
        text.push_str(&format!("h{i} A 10.{a}.{b}.{c}\n"));
        if i % 2 == 0 {
            text.push_str(&format!(
                "h{i} AAAA 2001:db8::{:x}:{:x}\n",
                i >> 16,
                i & 0xffff
            ));
        }
        if i % 10 == 0 {
            text.push_str(&format!("h{i} TXT \"host {i} of the benchmark zone\"\n"));
        }
    }
    text
}

/// Returns the number of records `zone_text` writes.
fn record_count(hosts: usize) -> usize {
    4 + hosts + hosts.div_ceil(2) + hosts.div_ceil(10)
}

/// Returns the probe address of version `version`.
fn probe(version: usize) -> Ipv4Addr {
    Ipv4Addr::new(198, 51, 100, (version % 250) as u8 + 1)
}

fn import_benchmark(program: &Path, repetitions: usize) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let sizes = [Sized::new(dir.path(), 20), Sized::new(dir.path(), 2000)];
    let mut extra_a = String::new();
    for size in &sizes {
        std::fs::write(&size.file_path, zone_text(size.hosts, 1, probe(0)))?;
        extra_a.push_str(&format!(
            "\n[[zone]]\nname = \"{}\"\nfile = \"{}\"\nsign = true\npolicy = \"bench\"\n",
            size.file_zone,
            size.file_path.display()
        ));
    }
    let cluster = Cluster::start(program, dir.path(), &extra_a)?;
    let members = [cluster.a(), &cluster.b, &cluster.c];

    for size in &sizes {
        println!(
            "== {}: record change to signed answer, {} records ({repetitions} repetitions)",
            size.cluster_zone,
            record_count(size.hosts)
        );
        std::fs::write(&size.import_path, zone_text(size.hosts, 1, probe(0)))?;
        let path = size.import_path.to_str().context("path is not UTF-8")?;
        let zone = size.cluster_zone.as_str();
        ok(
            cluster.a(),
            &["zone", "add", zone, "--cluster", "--from-file", path],
        )?;
        ok(
            cluster.a(),
            &[
                "zone",
                "sign",
                zone,
                "--policy",
                "bench",
                "--key-master",
                "ns-a",
            ],
        )?;
        for member in members {
            wait_for(SERVE_TIMEOUT, "the first signed version is served", || {
                Ok(signed_answer(member.dns_port, zone, probe(0))?.is_some())
            })?;
        }
        wait_for(SERVE_TIMEOUT, "the file zone is served signed", || {
            Ok(signed_answer(cluster.a().dns_port, &size.file_zone, probe(0))?.is_some())
        })?;

        let mut cluster_times: Vec<[Duration; 4]> = Vec::new();
        let mut file_times: Vec<[Duration; 2]> = Vec::new();
        for version in 1..=repetitions {
            let address = probe(version);
            let serial = 1 + version as u32;

            // The cluster zone: one changed record, imported on ns-a.
            std::fs::write(&size.import_path, zone_text(size.hosts, serial, address))?;
            let import = ["zone", "import", zone, path, "--json"];
            let served = change_and_wait(program, &members, &import, zone, address)?;
            println!(
                "{zone} import {version}: serial {}, command {:.0} ms, ns-a {:.0} ms, ns-b {:.0} ms, ns-c {:.0} ms, both others {:.0} ms",
                served.serial,
                ms(served.command),
                ms(served.members[0]),
                ms(served.members[1]),
                ms(served.members[2]),
                ms(served.members[1].max(served.members[2]))
            );
            cluster_times.push([
                served.command,
                served.members[0],
                served.members[1],
                served.members[1].max(served.members[2]),
            ]);

            // The file zone: the same change, reloaded on ns-a alone.
            std::fs::write(&size.file_path, zone_text(size.hosts, serial, address))?;
            let reload = ["zone", "reload", size.file_zone.as_str(), "--json"];
            let served =
                change_and_wait(program, &[cluster.a()], &reload, &size.file_zone, address)?;
            println!(
                "{} reload {version}: serial {}, command {:.0} ms, ns-a {:.0} ms",
                size.file_zone,
                served.serial,
                ms(served.command),
                ms(served.members[0])
            );
            file_times.push([served.command, served.members[0]]);
            std::thread::sleep(Duration::from_millis(500));
        }
        summary(
            &format!("{zone} import command returned"),
            cluster_times.iter().map(|t| t[0]),
        );
        summary(
            &format!("{zone} served by ns-a (importing member)"),
            cluster_times.iter().map(|t| t[1]),
        );
        summary(
            &format!("{zone} served by both ns-b and ns-c"),
            cluster_times.iter().map(|t| t[3]),
        );
        summary(
            &format!("{} reload command returned", size.file_zone),
            file_times.iter().map(|t| t[0]),
        );
        summary(
            &format!("{} served by ns-a after reload", size.file_zone),
            file_times.iter().map(|t| t[1]),
        );
        let ratios: Vec<f64> = cluster_times
            .iter()
            .zip(&file_times)
            .map(|(cluster, file)| cluster[3].as_secs_f64() / file[1].as_secs_f64())
            .collect();
        let (median, low, high) = spread(ratios);
        println!(
            "ratio cluster (both others) / file reload, same repetition: median {median:.2}, min {low:.2}, max {high:.2}"
        );
    }
    Ok(())
}

/// Durations of one change, from the moment its command was started.
struct Served {
    /// The serial the command reported.
    serial: u64,
    /// Until the command returned.
    command: Duration,
    /// Until each member answered the new address, signed.
    members: Vec<Duration>,
}

/// Starts the CLI with `args` on the first of `members` and, while it
/// runs and after, queries each member for `probe.ZONE` A every 10 ms until
/// it answers `address` with an RRSIG over it. Fails unless the SOA
/// serial each member served then is the one the command reports.
fn change_and_wait(
    program: &Path,
    members: &[&Member],
    args: &[&str],
    zone: &str,
    address: Ipv4Addr,
) -> anyhow::Result<Served> {
    let sent = Instant::now();
    let mut child = ChildGuard::spawn(
        "keymaster CLI",
        Command::new(program)
            .arg("--data-dir")
            .arg(&members[0].data_dir)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    let mut command = None;
    let mut done: Vec<Option<(Duration, u64)>> = vec![None; members.len()];
    let deadline = sent + SERVE_TIMEOUT;
    while command.is_none() || done.iter().any(Option::is_none) {
        if Instant::now() > deadline {
            bail!(
                "{zone}: {args:?} and the answers of every member took over {} s: {done:?}",
                SERVE_TIMEOUT.as_secs()
            );
        }
        if command.is_none() {
            if let Some(status) = child.child.try_wait()? {
                if !status.success() {
                    let mut error = String::new();
                    if let Some(mut stderr) = child.child.stderr.take() {
                        stderr.read_to_string(&mut error)?;
                    }
                    bail!("{args:?} failed: {error}\n{}", members[0].log());
                }
                command = Some(sent.elapsed());
            }
        }
        for (member, done) in members.iter().zip(done.iter_mut()) {
            if done.is_none() {
                if let Some(serial) = signed_answer(member.dns_port, zone, address)? {
                    *done = Some((sent.elapsed(), serial));
                }
            }
        }
        std::thread::sleep(POLL_INTERVAL);
    }
    let mut output = String::new();
    if let Some(mut stdout) = child.child.stdout.take() {
        stdout.read_to_string(&mut output)?;
    }
    let info: serde_json::Value = serde_json::from_str(&output)
        .with_context(|| format!("{args:?} printed no JSON: {output}"))?;
    let serial = info["serial"]
        .as_u64()
        .with_context(|| format!("{args:?} printed no serial: {info}"))?;
    let mut members_done = Vec::new();
    for (member, done) in members.iter().zip(done) {
        let (time, served) = done.context("a member never answered")?;
        if served != serial {
            bail!(
                "{} answered the new address of {zone} with serial {served}, not {serial}",
                member.name
            );
        }
        members_done.push(time);
    }
    Ok(Served {
        serial,
        command: command.context("the command never ended")?,
        members: members_done,
    })
}

/// Queries the server on `port` for `probe.ZONE` A. When the response
/// contains `address` and an RRSIG over the A RRset, queries the SOA and returns
/// its serial; otherwise `None`.
fn signed_answer(port: u16, zone: &str, address: Ipv4Addr) -> anyhow::Result<Option<u64>> {
    let Some(answer) = query(port, &format!("probe.{zone}"), Rtype::A)? else {
        return Ok(None);
    };
    let message = Message::from_octets(answer.as_slice())?;
    let mut has_address = false;
    let mut has_rrsig = false;
    for record in message.answer()? {
        let record = record?;
        if let Some(a) = record.to_record::<A>()? {
            has_address |= a.data().addr() == address;
        } else if let Some(rrsig) = record.to_record::<Rrsig<&[u8], ParsedName<&[u8]>>>()? {
            has_rrsig |= rrsig.data().type_covered() == Rtype::A;
        }
    }
    if !(has_address && has_rrsig) {
        return Ok(None);
    }
    let Some(answer) = query(port, zone, Rtype::SOA)? else {
        return Ok(None);
    };
    let message = Message::from_octets(answer.as_slice())?;
    for record in message.answer()? {
        if let Some(soa) = record?.to_record::<Soa<ParsedName<&[u8]>>>()? {
            return Ok(Some(u64::from(soa.data().serial().into_int())));
        }
    }
    Ok(None)
}

/// Sends one query with the DO bit to 127.0.0.1:`port` and returns the
/// response, or `None` when none came within 200 ms.
fn query(port: u16, name: &str, rtype: Rtype) -> anyhow::Result<Option<Vec<u8>>> {
    let name: Name = parse_name(name, &Name::root())?;
    let id = rand::random::<u16>();
    let mut builder = MessageBuilder::new_vec();
    builder.header_mut().set_id(id);
    let mut question = builder.question();
    question.push((
        domain::base::Name::from_slice(name.as_wire())?,
        rtype,
        Class::IN,
    ))?;
    let mut additional = question.additional();
    additional.opt(|opt| {
        opt.set_udp_payload_size(1232);
        opt.set_dnssec_ok(true);
        Ok(())
    })?;
    let wire = additional.finish();
    let socket = UdpSocket::bind("127.0.0.1:0")?;
    socket.connect(("127.0.0.1", port))?;
    socket.set_read_timeout(Some(Duration::from_millis(200)))?;
    socket.send(&wire)?;
    let mut buffer = vec![0; 65535];
    // A few stray datagrams at most; then the query counts as unanswered.
    for _ in 0..4 {
        let Ok(length) = socket.recv(&mut buffer) else {
            return Ok(None);
        };
        buffer.truncate(length);
        if length >= 2 && buffer[..2] == id.to_be_bytes() {
            return Ok(Some(buffer));
        }
        buffer.resize(65535, 0);
    }
    Ok(None)
}

// ---------------------------------------------------------------------
// Figures

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// Returns the median, minimum and maximum.
fn spread(mut values: Vec<f64>) -> (f64, f64, f64) {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    let median = if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    };
    (median, values[0], values[n - 1])
}

fn summary(what: &str, durations: impl Iterator<Item = Duration>) {
    let (median, low, high) = spread(durations.map(ms).collect());
    println!("{what}: median {median:.1} ms, min {low:.1} ms, max {high:.1} ms");
}
