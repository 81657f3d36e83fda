//! A signed cluster zone through an etcd outage, and what etcd contains
//! of its keys.
//!
//! Three members with the cluster key keep answering signed queries while
//! etcd is killed for 30 seconds, log the outage a bounded number of
//! times, answer control requests that need etcd within a bounded time,
//! and follow the cluster again once etcd is back. A second test reads
//! every key and value under the prefix straight from etcd and looks for
//! the private keys, exported in clear with `keymaster key export`, in
//! every encoding a careless writer could use.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use data_encoding::{BASE64, BASE64_NOPAD, HEXLOWER, HEXUPPER};
use keymaster_testutil::cli::{keys_established, keys_json, ok};
use keymaster_testutil::dns::serial_newer;
use keymaster_testutil::etcd::{start_etcd, Etcd};
use keymaster_testutil::history::History;
use keymaster_testutil::member::{cluster_key, Member, FAST_POLICY, FAST_ZONE};
use keymaster_testutil::tools::Tools;
use keymaster_testutil::{output_text, wait_until};

/// How long etcd stays away.
const OUTAGE: Duration = Duration::from_secs(30);

/// Maximum time a control request may take while etcd is away.
const CONTROL_LIMIT: Duration = Duration::from_secs(15);

/// Maximum number of log lines a member may write about the unreachable cluster store
/// during the outage: a few, not one per second.
const OUTAGE_LINES: usize = 4;

/// How long the members may take to follow the cluster again after etcd
/// returned.
const RETURN_TIMEOUT: Duration = Duration::from_secs(30);

/// Maximum wait for the first keys to be established or a rollover step.
const KEY_TIMEOUT: Duration = Duration::from_secs(90);

fn program() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_keymaster"))
}

/// Starts member `name` with the cluster key and the fast policy, and
/// waits until it joined.
fn start(dir: &Path, name: &str, etcd: &Etcd, key: &Path) -> Member {
    Member::join(
        program(),
        dir,
        name,
        &etcd.endpoint(),
        Some(key),
        FAST_POLICY,
    )
}

/// Adds cluster zone `zone` on `member` from [`FAST_ZONE`], signs it with the
/// fast policy with `member` as Key Master, and waits until its first keys
/// are established.
fn sign_zone(member: &Member, zone: &str, dir: &Path) {
    let file = dir.join(format!("{zone}zone"));
    std::fs::write(&file, FAST_ZONE).unwrap();
    let path = file.to_str().unwrap();
    ok(
        member,
        &["zone", "add", zone, "--cluster", "--from-file", path],
    );
    ok(member, &["zone", "sign", zone, "--policy", "fast"]);
    let ready = wait_until(KEY_TIMEOUT, || keys_established(&keys_json(member, zone)));
    assert!(
        ready,
        "the first keys never became omnipresent: {:?}\n{}",
        keys_json(member, zone),
        member.log()
    );
}

/// Returns whether `member` lists `count` servers, every one online.
fn all_online(member: &Member, count: usize) -> bool {
    member.servers().is_some_and(|servers| {
        servers.len() == count && servers.iter().all(|server| server["online"] == true)
    })
}

/// Runs `args` on `member` while etcd is away. Asserts that it ends within
/// [`CONTROL_LIMIT`], and that a failure names the cluster store.
fn control_during_outage(member: &Member, args: &[&str]) {
    let started = Instant::now();
    let output = member.cli(args);
    let took = started.elapsed();
    let text = output_text(&output);
    assert!(
        took <= CONTROL_LIMIT,
        "{} {args:?} took {took:?} while etcd was away: {text}",
        member.name
    );
    if !output.status.success() {
        assert!(
            text.contains("cluster store") && text.contains("127.0.0.1"),
            "{} {args:?} failed without naming the cluster store: {text}",
            member.name
        );
    }
}

/// Returns the lines of `log` that warn or err about the cluster store.
fn outage_lines(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|line| line.contains(" WARN ") || line.contains(" ERROR "))
        .filter(|line| line.contains("cluster store"))
        .collect()
}

#[test]
fn etcd_outage_keeps_members_serving() {
    let test = "etcd_outage_keeps_members_serving";
    let zone = "outage.test.";
    let dir = tempfile::tempdir().unwrap();
    let Some(tools) = Tools::find(test) else {
        return;
    };
    let Some(mut etcd) = start_etcd(test, dir.path()) else {
        return;
    };
    let key = cluster_key(program(), dir.path());
    let a = start(dir.path(), "ns-a", &etcd, &key);
    let b = start(dir.path(), "ns-b", &etcd, &key);
    let c = start(dir.path(), "ns-c", &etcd, &key);
    let all = [&a, &b, &c];
    sign_zone(&a, zone, dir.path());
    let first =
        tools.wait_identical_where(&all, zone, dir.path(), Duration::from_secs(20), |_, _| true);
    let first = first.unwrap_or_else(|| panic!("no common signed version: {}", a.log()));
    let anchor = tools.anchor(&a, zone, dir.path());
    for member in all {
        tools.signed_answer(member, "www.outage.test").unwrap();
        tools
            .validates(member, &anchor, zone, "www.outage.test", "A")
            .unwrap();
    }

    // etcd goes away, and every member keeps serving signed responses.
    let logged_before: Vec<usize> = all.iter().map(|member| member.log().len()).collect();
    etcd.kill();
    let killed = Instant::now();
    let mut failures = Vec::new();
    let mut rounds = 0;
    while killed.elapsed() < OUTAGE && rounds < 200 {
        rounds += 1;
        for member in all {
            failures.extend(tools.signed_answer(member, "www.outage.test").err());
            if rounds % 5 == 1 {
                failures.extend(
                    tools
                        .validates(member, &anchor, zone, "www.outage.test", "A")
                        .err(),
                );
            }
        }
        // Once the members noticed, the control requests that need etcd
        // end within a bounded time, failing with the reason.
        if rounds == 3 {
            control_during_outage(&a, &["zone", "show", zone, "--json"]);
            control_during_outage(&b, &["server", "list", "--json"]);
            control_during_outage(&c, &["key", "list", zone, "--json"]);
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(
        failures.is_empty(),
        "answers during the outage:\n{}",
        failures.join("\n")
    );
    assert!(rounds >= 5, "only {rounds} rounds of queries in the outage");
    for (member, before) in all.iter().zip(&logged_before) {
        let log = member.log();
        let lines = outage_lines(&log[*before..]);
        assert!(
            !lines.is_empty() && lines.len() <= OUTAGE_LINES,
            "{} wrote {} lines about the outage, expected 1 to {OUTAGE_LINES}:\n{}",
            member.name,
            lines.len(),
            &log[*before..]
        );
    }

    // etcd returns: every member is listed online again, and an import on
    // B after the return is served alike by all three.
    etcd.restart();
    for member in all {
        let back = wait_until(RETURN_TIMEOUT, || all_online(member, 3));
        assert!(
            back,
            "{} does not list every member online after etcd returned: {}\n{}",
            member.name,
            output_text(&member.cli(&["server", "list"])),
            member.log()
        );
    }
    let changed = dir.path().join("changed.zone");
    std::fs::write(&changed, format!("{FAST_ZONE}www2 A 192.0.2.81\n")).unwrap();
    let imported = Instant::now();
    let import = ["zone", "import", zone, changed.to_str().unwrap()];
    let accepted = wait_until(RETURN_TIMEOUT, || b.cli(&import).status.success());
    assert!(accepted, "{}\n{}", output_text(&b.cli(&import)), b.log());
    let second =
        tools.wait_identical_where(&all, zone, dir.path(), RETURN_TIMEOUT, |serial, lines| {
            serial_newer(serial, first)
                && lines
                    .iter()
                    .any(|line| line.starts_with("www2.outage.test."))
        });
    assert!(
        second.is_some(),
        "the import is not served alike {:?} after etcd returned:\n{}\n{}\n{}",
        imported.elapsed(),
        a.log(),
        b.log(),
        c.log()
    );
    for member in all {
        tools
            .validates(member, &anchor, zone, "www2.outage.test", "A")
            .unwrap();
        tools
            .validates(member, &anchor, zone, "www.outage.test", "A")
            .unwrap();
    }

    // The return is logged once, like the outage.
    for (member, before) in all.iter().zip(&logged_before) {
        let again = format!(
            "{} reaches the cluster store at {} again",
            member.name,
            etcd.endpoint()
        );
        wait_until(Duration::from_secs(10), || {
            member.log()[*before..].contains(&again)
        });
        let log = member.log();
        assert_eq!(
            log[*before..].matches(&again).count(),
            1,
            "{} did not log the return of etcd once:\n{}",
            member.name,
            &log[*before..]
        );
    }
}

/// A key exported in clear: its private octets in every form to look for,
/// and its public key.
struct ClearKey {
    file: PathBuf,
    /// The forms of the private key, named.
    secrets: Vec<(String, Vec<u8>)>,
    /// The forms of the public key.
    public: Vec<(String, Vec<u8>)>,
}

/// Returns `octets` as raw bytes, lower and upper hex, base64 with and
/// without padding, and a JSON array of numbers, each named after `what`.
fn encodings(what: &str, octets: &[u8]) -> Vec<(String, Vec<u8>)> {
    let numbers: Vec<String> = octets.iter().map(u8::to_string).collect();
    vec![
        (format!("{what} raw"), octets.to_vec()),
        (format!("{what} hex"), HEXLOWER.encode(octets).into_bytes()),
        (format!("{what} HEX"), HEXUPPER.encode(octets).into_bytes()),
        (format!("{what} base64"), BASE64.encode(octets).into_bytes()),
        (
            format!("{what} base64 unpadded"),
            BASE64_NOPAD.encode(octets).into_bytes(),
        ),
        (format!("{what} numbers"), numbers.join(",").into_bytes()),
    ]
}

/// Reads the keys `key export` wrote to `dir`: the private scalar from
/// each `.private` file's `PrivateKey:` field, the PKCS #8 form through
/// the BIND key reader, and the public key from the `.key` file.
fn exported_keys(dir: &Path) -> Vec<ClearKey> {
    let mut keys = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("private") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let field = |name: &str| {
            text.lines()
                .find_map(|line| line.strip_prefix(name))
                .map(|value| value.trim().to_string())
                .unwrap_or_else(|| panic!("no {name} in {}: {text}", path.display()))
        };
        assert!(
            field("Algorithm:").starts_with("13 "),
            "{}: not ECDSA P-256: {text}",
            path.display()
        );
        let scalar = BASE64.decode(field("PrivateKey:").as_bytes()).unwrap();
        assert_eq!(scalar.len(), 32, "{}", path.display());
        let pkcs8 = keymaster_keys::bind::read(&path).unwrap().key.to_pkcs8();
        assert!(
            pkcs8.windows(scalar.len()).any(|w| w == &scalar[..]),
            "the PKCS #8 form of {} does not hold its scalar",
            path.display()
        );

        let public_text = std::fs::read_to_string(path.with_extension("key")).unwrap();
        let record = public_text
            .lines()
            .find(|line| !line.starts_with(';') && line.contains("DNSKEY"))
            .unwrap_or_else(|| panic!("no DNSKEY in {}: {public_text}", path.display()));
        let fields: Vec<&str> = record.split_whitespace().collect();
        let at = fields.iter().position(|field| *field == "DNSKEY").unwrap();
        let public = BASE64.decode(fields[at + 4..].concat().as_bytes()).unwrap();

        let mut secrets = encodings("private scalar", &scalar);
        secrets.extend(encodings("PKCS #8", &pkcs8));
        keys.push(ClearKey {
            file: path,
            secrets,
            public: encodings("public key", &public),
        });
    }
    keys
}

/// Reads every key and value under the default prefix from etcd.
fn etcd_contents(endpoint: &str) -> Vec<(String, Vec<u8>)> {
    History::connect(endpoint)
        .contents("/keymaster/")
        .into_iter()
        .map(|(key, value, _)| (key, value))
        .collect()
}

/// Returns the etcd entries whose key or value contains `needle`.
fn holding<'a>(contents: &'a [(String, Vec<u8>)], needle: &[u8]) -> Vec<&'a str> {
    contents
        .iter()
        .filter(|(key, value)| {
            [key.as_bytes(), &value[..]]
                .iter()
                .any(|haystack| haystack.windows(needle.len()).any(|w| w == needle))
        })
        .map(|(key, _)| key.as_str())
        .collect()
}

#[test]
fn etcd_holds_no_private_key_in_clear() {
    let test = "etcd_holds_no_private_key_in_clear";
    let zone = "secret.test.";
    let dir = tempfile::tempdir().unwrap();
    let Some(etcd) = start_etcd(test, dir.path()) else {
        return;
    };
    let key = cluster_key(program(), dir.path());
    let a = start(dir.path(), "ns-a", &etcd, &key);
    sign_zone(&a, zone, dir.path());

    // A ZSK rollover: its successor joins the KSK and the old ZSK.
    let list = keys_json(&a, zone);
    let zsk = list.iter().find(|key| key["role"] == "zsk").unwrap();
    ok(&a, &["key", "rollover", zone, &zsk["key_tag"].to_string()]);
    let three = wait_until(KEY_TIMEOUT, || keys_json(&a, zone).len() == 3);
    assert!(
        three,
        "no successor ZSK: {:?}\n{}",
        keys_json(&a, zone),
        a.log()
    );

    // The product's own export gives each private key in clear.
    let exported = dir.path().join("exported");
    let config = dir.path().join("ns-a").join("keymaster.toml");
    ok(
        &a,
        &[
            "key",
            "export",
            zone,
            "-o",
            exported.to_str().unwrap(),
            "--config",
            config.to_str().unwrap(),
            "--etcd",
            &etcd.endpoint(),
            "--cluster-key",
            key.to_str().unwrap(),
        ],
    );
    let clear = exported_keys(&exported);
    assert_eq!(clear.len(), 3, "{:?}", keys_json(&a, zone));

    // Without the cluster key, the export names what is missing.
    let denied = a.cli(&[
        "key",
        "export",
        zone,
        "-o",
        dir.path().join("denied").to_str().unwrap(),
        "--etcd",
        &etcd.endpoint(),
    ]);
    let message = output_text(&denied);
    assert!(!denied.status.success(), "{message}");
    assert!(message.contains("--cluster-key"), "{message}");

    // Every value under the prefix holds each public key, and no form of
    // any private key.
    let contents = etcd_contents(&etcd.endpoint());
    assert!(
        contents
            .iter()
            .any(|(key, _)| key.starts_with("/keymaster/keys/")),
        "no keys in etcd: {:?}",
        contents.iter().map(|(key, _)| key).collect::<Vec<_>>()
    );
    for key in &clear {
        let found: Vec<&str> = key
            .public
            .iter()
            .flat_map(|(_, needle)| holding(&contents, needle))
            .collect();
        assert!(
            !found.is_empty(),
            "the scan does not find the public key of {} in etcd",
            key.file.display()
        );
        for (form, needle) in &key.secrets {
            let found = holding(&contents, needle);
            assert!(
                found.is_empty(),
                "the {form} of {} is in etcd, in {found:?}",
                key.file.display()
            );
        }
    }
}
