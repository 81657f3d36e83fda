//! System tests: the real `keymaster` binary, its offline signer and its
//! server, checked by independent tools (BIND's dnssec-verify and delv,
//! ldns-verify-zone, Knot's kzonecheck and kdig, and unbound).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use keymaster_testutil::{free_port, output_text, run, testdata, tool, wait_until, ChildGuard};

fn keymaster() -> Command {
    Command::new(env!("CARGO_BIN_EXE_keymaster"))
}

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

/// Signs `input` offline and returns the output path.
fn sign_offline(dir: &Path, input: &Path, origin: &str, policy: Option<&str>) -> PathBuf {
    let output = dir.join(format!(
        "{}.signed",
        input.file_name().unwrap().to_string_lossy()
    ));
    let keys = dir.join(format!("keys-{}", policy.map(|p| p.len()).unwrap_or(0)));
    std::fs::create_dir_all(&keys).unwrap();
    let mut command = keymaster();
    command
        .arg("sign")
        .arg(input)
        .arg("--origin")
        .arg(origin)
        .arg("-o")
        .arg(&output)
        .arg("--keys")
        .arg(&keys);
    if let Some(policy) = policy {
        let path = dir.join("policy.toml");
        std::fs::write(&path, policy).unwrap();
        command.arg("--policy").arg(path);
    }
    let result = run(&mut command);
    assert!(
        result.status.success(),
        "keymaster sign failed: {}",
        output_text(&result)
    );
    output
}

/// Checks a signed file with every validator installed.
fn check_with_validators(test: &str, file: &Path, origin: &str) {
    check_with_validators_csk(test, file, origin, false);
}

/// Checks a signed file. With `csk`, dnssec-verify gets `-z`, because it
/// otherwise reports a zone that one key signs entirely as missing a ZSK.
fn check_with_validators_csk(test: &str, file: &Path, origin: &str, csk: bool) {
    let verify = run(keymaster()
        .arg("verify")
        .arg(file)
        .arg("--origin")
        .arg(origin));
    assert!(
        verify.status.success(),
        "keymaster verify rejected {}: {}",
        file.display(),
        output_text(&verify)
    );
    if let Some(dnssec_verify) = tool(test, "dnssec-verify") {
        let mut command = Command::new(dnssec_verify);
        if csk {
            command.arg("-z");
        }
        let result = run(command.arg("-o").arg(origin).arg(file));
        assert!(
            result.status.success(),
            "dnssec-verify rejected {}: {}",
            file.display(),
            output_text(&result)
        );
    }
    if let Some(ldns) = tool(test, "ldns-verify-zone") {
        let result = run(Command::new(ldns).arg(file));
        assert!(
            result.status.success(),
            "ldns-verify-zone rejected {}: {}",
            file.display(),
            output_text(&result)
        );
    }
    if let Some(kzonecheck) = tool(test, "kzonecheck") {
        let result = run(Command::new(kzonecheck).arg("-o").arg(origin).arg(file));
        assert!(
            result.status.success(),
            "kzonecheck rejected {}: {}",
            file.display(),
            output_text(&result)
        );
    }
}

#[test]
fn offline_sign_root_zone_nsec3() {
    let Some(data) = testdata("offline_sign_root_zone_nsec3") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let input = data.join("zones/real/root-2023051100.zone");
    let signed = sign_offline(dir.path(), &input, ".", None);
    check_with_validators("offline_sign_root_zone_nsec3", &signed, ".");
}

#[test]
fn offline_sign_unsigned_root_nsec_ed25519() {
    let Some(data) = testdata("offline_sign_unsigned_root_nsec_ed25519") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let input = data.join("vectors/zonemd-verisign/45-root-zone/root.zone.unsigned");
    let policy = "algorithm = \"ED25519\"\ndenial = \"nsec\"\n";
    let signed = sign_offline(dir.path(), &input, ".", Some(policy));
    check_with_validators("offline_sign_unsigned_root_nsec_ed25519", &signed, ".");
}

#[test]
fn offline_sign_example_zones() {
    let dir = tempfile::tempdir().unwrap();
    let forward = sign_offline(
        dir.path(),
        &examples().join("example.com.zone"),
        "example.com",
        None,
    );
    check_with_validators("offline_sign_example_zones", &forward, "example.com.");
    let policy = "algorithm = \"RSASHA256\"\nkeys = \"csk\"\ndenial = \"nsec\"\n";
    let reverse = sign_offline(
        dir.path(),
        &examples().join("2.0.192.in-addr.arpa.zone"),
        "2.0.192.in-addr.arpa",
        Some(policy),
    );
    check_with_validators_csk(
        "offline_sign_example_zones",
        &reverse,
        "2.0.192.in-addr.arpa.",
        true,
    );
}

#[test]
fn offline_sign_reuses_bind_keys() {
    let dir = tempfile::tempdir().unwrap();
    let input = examples().join("example.com.zone");
    let keys = dir.path().join("keys-0");
    std::fs::create_dir_all(&keys).unwrap();
    let Some(keygen) = tool("offline_sign_reuses_bind_keys", "dnssec-keygen") else {
        return;
    };
    for extra in [&["-f", "KSK"][..], &[][..]] {
        let result = run(Command::new(&keygen)
            .args(["-q", "-a", "ECDSAP256SHA256", "-K"])
            .arg(&keys)
            .args(extra)
            .arg("example.com"));
        assert!(
            result.status.success(),
            "dnssec-keygen failed: {}",
            output_text(&result)
        );
    }
    let signed = sign_offline(dir.path(), &input, "example.com", None);
    let content = std::fs::read_to_string(&signed).unwrap();
    for entry in std::fs::read_dir(&keys).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().to_string();
        if let Some(stem) = name.strip_suffix(".key") {
            let tag: u16 = stem.rsplit('+').next().unwrap().parse().unwrap();
            assert!(
                content.contains(&format!(" {tag} example.com.")),
                "no RRSIG by BIND key {tag} in the signed zone"
            );
        }
    }
    check_with_validators("offline_sign_reuses_bind_keys", &signed, "example.com.");
}

#[test]
fn offline_sign_writes_nothing_invalid() {
    // The delegation's in-zone name server has no address record, which
    // the validator rejects once the whole zone has been signed and
    // written out batch by batch.
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("noglue.zone");
    let mut zone = String::from("$TTL 3600\n@ SOA ns hostmaster 1 7200 3600 1209600 3600\n");
    zone.push_str("@ NS ns\nns A 192.0.2.1\nsub NS ns.sub\n");
    for host in 0..10_000 {
        zone.push_str(&format!("h{host} A 10.0.{}.{}\n", host / 256, host % 256));
    }
    std::fs::write(&input, zone).unwrap();
    let output = dir.path().join("noglue.signed");
    let result = run(keymaster()
        .arg("sign")
        .arg(&input)
        .args(["--origin", "example", "--keys"])
        .arg(dir.path())
        .arg("-o")
        .arg(&output));
    assert!(!result.status.success(), "{}", output_text(&result));
    assert!(
        output_text(&result).contains("missing glue"),
        "{}",
        output_text(&result)
    );
    assert!(!output.exists(), "an invalid version was written");
    let leftovers: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().to_string())
        .filter(|name| name.contains("tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

#[test]
fn verify_accepts_rfc_example_zones_in_window() {
    let Some(data) = testdata("verify_accepts_rfc_example_zones_in_window") else {
        return;
    };
    let cases = [
        (
            "vectors/rfc4035-appendix-A.signed.zone",
            "example.",
            "20040420000000",
        ),
        (
            "vectors/rfc5155-appendix-A.signed.zone",
            "example.",
            "20100101000000",
        ),
    ];
    for (file, origin, inside) in cases {
        let path = data.join(file);
        let good = run(keymaster()
            .arg("verify")
            .arg(&path)
            .arg("--origin")
            .arg(origin)
            .arg("--time")
            .arg(inside));
        assert!(
            good.status.success(),
            "{file} rejected inside its window: {}",
            output_text(&good)
        );
        let late = run(keymaster()
            .arg("verify")
            .arg(&path)
            .arg("--origin")
            .arg(origin)
            .arg("--time")
            .arg("20300101000000"));
        assert!(
            !late.status.success(),
            "{file} accepted after its signatures expired"
        );
    }
}

#[test]
fn verify_rejects_broken_zone_with_location() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.zone");
    std::fs::write(
        &path,
        "$TTL 1h\n@ SOA ns hostmaster 1 2 3 4 5\n@ NS ns\nns A 192.0.2.300\n",
    )
    .unwrap();
    let result = run(keymaster()
        .arg("verify")
        .arg(&path)
        .arg("--origin")
        .arg("example"));
    assert!(!result.status.success());
    let message = output_text(&result);
    assert!(
        message.contains("broken.zone:4"),
        "error does not name file and line: {message}"
    );
    assert!(
        message.contains("192.0.2.300"),
        "error does not quote the offending text: {message}"
    );
}

/// A running `keymaster serve` on free loopback ports.
struct Daemon {
    _child: ChildGuard,
    data_dir: PathBuf,
    dns_port: u16,
}

impl Daemon {
    fn start(dir: &Path, zones: &[(&str, &Path)]) -> Self {
        let dns_port = free_port();
        let control_port = free_port();
        let data_dir = dir.join("data");
        let mut command = keymaster();
        command
            .arg("serve")
            .arg("--name")
            .arg("test1")
            .arg("--listen")
            .arg(format!("127.0.0.1:{dns_port}"))
            .arg("--control")
            .arg(format!("127.0.0.1:{control_port}"))
            .arg("--data-dir")
            .arg(&data_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("serve.log")).unwrap());
        for (name, path) in zones {
            command
                .arg("--zone")
                .arg(format!("{name}={}", path.display()));
        }
        let child = ChildGuard::spawn("keymaster serve", &mut command);
        let daemon = Self {
            _child: child,
            data_dir,
            dns_port,
        };
        let log = dir.join("serve.log");
        let ready = wait_until(Duration::from_secs(60), || {
            daemon.cli(&["zone", "list"]).status.success()
                && zones.iter().all(|(name, _)| {
                    let show = daemon.cli(&["zone", "show", name, "--json"]);
                    show.status.success()
                        && serde_json::from_slice::<serde_json::Value>(&show.stdout)
                            .is_ok_and(|v| v["serial"].is_u64())
                })
        });
        assert!(
            ready,
            "server did not publish its zones: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        daemon
    }

    fn cli(&self, args: &[&str]) -> Output {
        run(keymaster().arg("--data-dir").arg(&self.data_dir).args(args))
    }

    fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut full = args.to_vec();
        full.push("--json");
        let output = self.cli(&full);
        assert!(
            output.status.success(),
            "keymaster {args:?} failed: {}",
            output_text(&output)
        );
        serde_json::from_slice(&output.stdout).expect("JSON output")
    }
}

/// Runs dig and returns its output if it got a response.
fn try_dig(test: &str, port: u16, args: &[&str]) -> Option<String> {
    let dig = tool(test, "dig")?;
    let output = run(Command::new(dig)
        .arg("@127.0.0.1")
        .arg("-p")
        .arg(port.to_string())
        .args(["+time=2", "+tries=1"])
        .args(args));
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).to_string())
}

/// Runs dig, which must get a response; `None` if dig is not installed.
fn dig(test: &str, port: u16, args: &[&str]) -> Option<String> {
    tool(test, "dig")?;
    let answer = try_dig(test, port, args);
    assert!(
        answer.is_some(),
        "dig {args:?} on port {port} got no response"
    );
    answer
}

#[test]
fn serve_example_zone_answers_and_validates() {
    let test = "serve_example_zone_answers_and_validates";
    let dir = tempfile::tempdir().unwrap();
    let zone = examples().join("example.com.zone");
    let daemon = Daemon::start(dir.path(), &[("example.com", &zone)]);
    let port = daemon.dns_port;

    let show = daemon.json(&["zone", "show", "example.com"]);
    assert_eq!(show["key_master_server"], "test1");
    assert_eq!(show["is_key_master"], true);
    assert_eq!(show["is_signed"], true);
    assert_eq!(show["denial_of_existence"], "nsec3");
    let keys = daemon.json(&["key", "list", "example.com"]);
    assert_eq!(keys.as_array().map(Vec::len), Some(2), "{keys}");

    let Some(answer) = dig(test, port, &["+dnssec", "+norec", "www.example.com", "A"]) else {
        return;
    };
    assert!(answer.contains("status: NOERROR"), "{answer}");
    assert!(
        answer.contains(" aa"),
        "answer is not authoritative: {answer}"
    );
    assert!(answer.contains("RRSIG"), "no RRSIG with DO set: {answer}");
    let plain = dig(test, port, &["+norec", "www.example.com", "A"]).unwrap();
    assert!(!plain.contains("RRSIG"), "RRSIG without DO: {plain}");
    let missing = dig(test, port, &["+dnssec", "nosuch.example.com", "A"]).unwrap();
    assert!(
        missing.contains("status: NXDOMAIN") && missing.contains("NSEC3"),
        "{missing}"
    );
    let nodata = dig(test, port, &["+dnssec", "mail.example.com", "MX"]).unwrap();
    assert!(
        nodata.contains("status: NOERROR")
            && nodata.contains("ANSWER: 0")
            && nodata.contains("NSEC3"),
        "{nodata}"
    );
    let wildcard = dig(test, port, &["+dnssec", "anything.apps.example.com", "A"]).unwrap();
    assert!(
        wildcard.contains("192.0.2.80") && wildcard.contains("NSEC3"),
        "{wildcard}"
    );
    let secure = dig(
        test,
        port,
        &["+dnssec", "+norec", "host.secure.example.com", "A"],
    )
    .unwrap();
    assert!(
        secure.contains("IN\tDS\t12345") || secure.contains("DS\t12345"),
        "referral lacks DS: {secure}"
    );
    let insecure = dig(
        test,
        port,
        &["+dnssec", "+norec", "host.insecure.example.com", "A"],
    )
    .unwrap();
    assert!(
        insecure.contains("ns.insecure.example.com") && insecure.contains("NSEC3"),
        "{insecure}"
    );
    let refused = dig(test, port, &["example.org", "A"]).unwrap();
    assert!(refused.contains("status: REFUSED"), "{refused}");
    let case = dig(test, port, &["WwW.ExAmPlE.CoM", "A"]).unwrap();
    assert!(
        case.contains("WwW.ExAmPlE.CoM"),
        "query name case not echoed: {case}"
    );
    let truncated = dig(
        test,
        port,
        &[
            "+dnssec",
            "+bufsize=512",
            "+ignore",
            "nosuch.example.com",
            "A",
        ],
    )
    .unwrap();
    assert!(
        truncated.contains(" tc"),
        "large answer not truncated over UDP: {truncated}"
    );
    let tcp = dig(
        test,
        port,
        &["+dnssec", "+bufsize=512", "nosuch.example.com", "A"],
    )
    .unwrap();
    assert!(
        tcp.contains("(TCP)") && tcp.contains("status: NXDOMAIN") && tcp.contains("NSEC3"),
        "no full answer over TCP: {tcp}"
    );

    let questions: Questions = &[
        ("www.example.com", "A", "NOERROR"),
        ("nosuch.example.com", "A", "NXDOMAIN"),
        ("mail.example.com", "MX", "NOERROR"),
        ("x.apps.example.com", "A", "NOERROR"),
        // DS questions are answered by the parent side of each delegation,
        // so a resolver never needs the child's (unreachable) name servers.
        ("secure.example.com", "DS", "NOERROR"),
        ("insecure.example.com", "DS", "NOERROR"),
    ];
    validate_with_delv(test, &daemon, "example.com.", questions);
    validate_with_unbound(test, &daemon, "example.com.", questions);
}

/// Questions for the validators: name, type and expected response code.
type Questions<'a> = &'a [(&'a str, &'a str, &'a str)];

/// Returns the zone's first DS record from `keymaster ds` as text fields.
fn first_ds(daemon: &Daemon, zone: &str) -> Vec<String> {
    let ds = daemon.cli(&["ds", zone]);
    assert!(
        ds.status.success(),
        "keymaster ds failed: {}",
        output_text(&ds)
    );
    let line = String::from_utf8_lossy(&ds.stdout)
        .lines()
        .next()
        .unwrap_or_default()
        .to_string();
    assert!(
        line.contains(" DS "),
        "keymaster ds printed no DS record: {line}"
    );
    line.split_whitespace().map(str::to_string).collect()
}

/// Checks responses with delv, anchored at the zone's DS from `keymaster ds`.
fn validate_with_delv(test: &str, daemon: &Daemon, zone: &str, questions: Questions) {
    let Some(delv) = tool(test, "delv") else {
        return;
    };
    let fields = first_ds(daemon, zone);
    let position = fields.iter().position(|f| f == "DS").expect("DS record");
    let anchor = format!(
        "trust-anchors {{ \"{}\" static-ds {} {} {} \"{}\"; }};\n",
        fields[0],
        fields[position + 1],
        fields[position + 2],
        fields[position + 3],
        fields[position + 4..].join("")
    );
    let anchor_file = daemon.data_dir.join("anchor.conf");
    std::fs::write(&anchor_file, anchor).unwrap();
    for (qname, qtype, _) in questions {
        let output = run(Command::new(&delv)
            .arg("@127.0.0.1")
            .arg("-p")
            .arg(daemon.dns_port.to_string())
            .arg("-a")
            .arg(&anchor_file)
            .arg(format!("+root={zone}"))
            .arg(qname)
            .arg(qtype));
        let out = output_text(&output);
        let validated =
            out.contains("; fully validated") || out.contains("negative response, fully validated");
        assert!(validated, "delv did not validate {qname} {qtype}: {out}");
        assert!(
            !out.contains("bogus") && !out.contains("insecurity proof failed"),
            "delv: {out}"
        );
    }
}

/// Runs a private unbound with the zone's DS as trust anchor and checks
/// that it validates the server's responses. Every query unbound makes goes
/// to the server under test: the zone and the root are stub zones pointing
/// at it, and unbound may send only from 127.0.0.1.
fn validate_with_unbound(test: &str, daemon: &Daemon, zone: &str, questions: Questions) {
    let Some(unbound) = tool(test, "unbound") else {
        return;
    };
    let ds_line = first_ds(daemon, zone).join(" ");
    let port = free_port();
    let dir = daemon.data_dir.join("unbound");
    std::fs::create_dir_all(&dir).unwrap();
    let mut stubs = format!(
        "stub-zone:\n  name: \"{zone}\"\n  stub-addr: 127.0.0.1@{}\n",
        daemon.dns_port
    );
    if zone != "." {
        stubs.push_str(&format!(
            "stub-zone:\n  name: \".\"\n  stub-addr: 127.0.0.1@{}\n",
            daemon.dns_port
        ));
    }
    let config = format!(
        "server:\n  interface: 127.0.0.1\n  port: {port}\n  do-ip6: no\n  use-syslog: no\n  chroot: \"\"\n  \
         username: \"\"\n  directory: \"{dir}\"\n  pidfile: \"\"\n  do-not-query-localhost: no\n  \
         module-config: \"validator iterator\"\n  trust-anchor: \"{ds_line}\"\n  val-log-level: 2\n  \
         logfile: \"{dir}/unbound.log\"\n  verbosity: 1\n  outgoing-interface: 127.0.0.1\n{stubs}",
        dir = dir.display(),
    );
    let config_path = dir.join("unbound.conf");
    std::fs::write(&config_path, config).unwrap();
    let _guard = ChildGuard::spawn(
        "unbound",
        Command::new(unbound)
            .arg("-d")
            .arg("-c")
            .arg(&config_path)
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    let up = wait_until(Duration::from_secs(10), || {
        try_dig(test, port, &["+norec", "version.bind", "CH", "TXT"])
            .is_some_and(|a| a.contains("status:"))
    });
    assert!(up, "unbound did not start");
    for (qname, qtype, status) in questions {
        let answer = dig(test, port, &["+dnssec", qname, qtype]).unwrap();
        assert!(
            answer.contains(&format!("status: {status}")),
            "unbound {qname} {qtype}: {answer}"
        );
        assert!(
            answer.contains(" ad"),
            "unbound did not validate {qname} {qtype}: {answer}"
        );
    }
    let log = std::fs::read_to_string(dir.join("unbound.log")).unwrap_or_default();
    assert!(
        !log.contains("validation failure"),
        "unbound reported bogus data: {log}"
    );
}

#[test]
fn control_api_rejects_missing_token() {
    let dir = tempfile::tempdir().unwrap();
    let zone = examples().join("2.0.192.in-addr.arpa.zone");
    let daemon = Daemon::start(dir.path(), &[("2.0.192.in-addr.arpa", &zone)]);
    let wrong = dir.path().join("wrong.token");
    std::fs::write(&wrong, "0000").unwrap();
    let result = run(keymaster()
        .arg("--data-dir")
        .arg(&daemon.data_dir)
        .arg("--token-file")
        .arg(&wrong)
        .args(["zone", "list"]));
    assert!(!result.status.success());
    assert!(
        output_text(&result).contains("invalid bearer token"),
        "{}",
        output_text(&result)
    );
}

#[test]
fn file_zone_role_commands() {
    let dir = tempfile::tempdir().unwrap();
    let zone = examples().join("2.0.192.in-addr.arpa.zone");
    let daemon = Daemon::start(dir.path(), &[("2.0.192.in-addr.arpa", &zone)]);
    let name = "2.0.192.in-addr.arpa";

    for action in [
        &["role", "transfer", name, "other"][..],
        &["role", "seize", name][..],
    ] {
        let result = daemon.cli(action);
        assert!(
            !result.status.success(),
            "{action:?} succeeded on a file-backed zone"
        );
        let message = output_text(&result);
        assert!(message.contains("single primary"), "{message}");
        assert_eq!(
            message.trim().lines().count(),
            1,
            "reason is not one line: {message}"
        );
    }

    // The parent may hold a DS: the zone stays signed and asks for its removal.
    let pending = daemon.json(&["zone", "unsign", name]);
    assert_eq!(pending["is_signed"], true, "{pending}");
    let show = daemon.json(&["zone", "show", name]);
    assert!(
        show["key_waits"].to_string().contains("parent"),
        "no wait for the parent: {show}"
    );
    let unsigned = daemon.json(&["zone", "unsign", name, "--no-parent-ds"]);
    assert_eq!(unsigned["is_signed"], false);
    assert_eq!(unsigned["key_master_server"], "test1");
    let role = daemon.json(&["role", "show", name]);
    assert_eq!(role["key_master"], "test1");
    let again = daemon.cli(&["role", "assign", name, "test1"]);
    assert!(
        !again.status.success(),
        "assign over an existing Key Master succeeded"
    );
    let signed = daemon.json(&["zone", "sign", name]);
    assert_eq!(signed["is_signed"], true);
    assert_eq!(signed["key_master_server"], "test1");
    let elsewhere = daemon.cli(&["zone", "sign", name, "--key-master", "other"]);
    assert!(!elsewhere.status.success());
}

#[test]
fn role_assign_survives_unsign_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let zone = examples().join("example.com.zone");
    let name = "example.com";
    {
        let daemon = Daemon::start(dir.path(), &[]);
        let added = daemon.json(&["zone", "add", name, "--file", zone.to_str().unwrap()]);
        assert_eq!(added["is_signed"], false);
        assert_eq!(added["key_master_server"], serde_json::Value::Null);
        let assigned = daemon.json(&["role", "assign", name, "test1"]);
        assert_eq!(assigned["key_master"], "test1");
        assert_eq!(assigned["epoch"], 1);
        let elsewhere = daemon.cli(&["role", "assign", "2.0.192.in-addr.arpa", "other"]);
        assert!(!elsewhere.status.success());
        let signed = daemon.json(&["zone", "sign", name]);
        assert_eq!(signed["is_signed"], true);
        let unsigned = daemon.json(&["zone", "unsign", name, "--no-parent-ds"]);
        assert_eq!(unsigned["is_signed"], false);
        assert_eq!(unsigned["key_master_server"], "test1");
    }
    let daemon = Daemon::start(dir.path(), &[]);
    let ready = wait_until(Duration::from_secs(30), || {
        let show = daemon.cli(&["zone", "show", name, "--json"]);
        show.status.success() && String::from_utf8_lossy(&show.stdout).contains("\"serial\": ")
    });
    assert!(
        ready,
        "zone added at run time was not loaded after a restart"
    );
    let show = daemon.json(&["zone", "show", name]);
    assert_eq!(show["key_master_server"], "test1");
    assert_eq!(show["is_signed"], false);
    assert_eq!(show["key_master_epoch"], 1);
}

/// Returns a delegated name in the root zone file that has no DS record.
fn insecure_tld(zone_text: &str) -> Option<String> {
    let owners = |rtype: &str| -> std::collections::BTreeSet<String> {
        zone_text
            .lines()
            .filter_map(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                (fields.len() > 4 && fields[3] == rtype && fields[0] != ".")
                    .then(|| fields[0].to_lowercase())
            })
            .collect()
    };
    let with_ds = owners("DS");
    owners("NS")
        .into_iter()
        .find(|owner| !with_ds.contains(owner))
}

#[test]
fn serve_root_zone_answers_and_validates() {
    let test = "serve_root_zone_answers_and_validates";
    let Some(data) = testdata(test) else { return };
    let dir = tempfile::tempdir().unwrap();
    let zone_path = data.join("zones/real/root-2023051100.zone");
    let zone_text = std::fs::read_to_string(&zone_path).unwrap();
    let insecure = insecure_tld(&zone_text).expect("the root zone has a delegation without DS");
    let daemon = Daemon::start(dir.path(), &[(".", &zone_path)]);
    let port = daemon.dns_port;

    let Some(soa) = dig(test, port, &["+dnssec", "+norec", ".", "SOA"]) else {
        return;
    };
    assert!(
        soa.contains("status: NOERROR") && soa.contains("RRSIG\tSOA"),
        "{soa}"
    );
    let missing = dig(test, port, &["+dnssec", "nosuch-tld-for-test.", "A"]).unwrap();
    assert!(
        missing.contains("status: NXDOMAIN") && missing.contains("NSEC3"),
        "{missing}"
    );
    let nodata = dig(test, port, &["+dnssec", ".", "MX"]).unwrap();
    assert!(
        nodata.contains("ANSWER: 0") && nodata.contains("NSEC3"),
        "{nodata}"
    );
    let secure = dig(test, port, &["+dnssec", "+norec", "www.example.com.", "A"]).unwrap();
    assert!(
        secure.contains("com.\t\t\t172800\tIN\tNS") || secure.contains("\tNS\t"),
        "{secure}"
    );
    assert!(
        secure.contains("\tDS\t"),
        "referral to com. lacks DS: {secure}"
    );
    assert!(
        !secure.contains(" aa"),
        "referral is marked authoritative: {secure}"
    );
    let unsigned = dig(
        test,
        port,
        &["+dnssec", "+norec", &format!("www.{insecure}"), "A"],
    )
    .unwrap();
    assert!(
        !unsigned.contains("\tDS\t") && unsigned.contains("NSEC3"),
        "referral to {insecure} lacks its no-DS proof: {unsigned}"
    );
    let fallback = dig(
        test,
        port,
        &["+dnssec", "+bufsize=512", "nosuch-tld-for-test.", "A"],
    )
    .unwrap();
    assert!(
        fallback.contains("(TCP)") && fallback.contains("NSEC3"),
        "no TCP fallback: {fallback}"
    );

    if let Some(kdig) = tool(test, "kdig") {
        let output = run(Command::new(kdig).arg(format!("@127.0.0.1:{port}")).args([
            "+dnssec",
            "+tcp",
            "+timeout=2",
            "org.",
            "DS",
        ]));
        let out = output_text(&output);
        assert!(
            output.status.success() && out.contains("NOERROR") && out.contains("RRSIG"),
            "kdig: {out}"
        );
    }

    let questions: Questions = &[
        (".", "SOA", "NOERROR"),
        (".", "MX", "NOERROR"),
        ("nosuch-tld-for-test.", "A", "NXDOMAIN"),
        ("com.", "DS", "NOERROR"),
        (&insecure.to_string(), "DS", "NOERROR"),
    ];
    validate_with_delv(test, &daemon, ".", questions);
    validate_with_unbound(test, &daemon, ".", questions);
}

#[test]
fn bind_keys_import_and_export() {
    let test = "bind_keys_import_and_export";
    let Some(keygen) = tool(test, "dnssec-keygen") else {
        return;
    };
    let Some(signzone) = tool(test, "dnssec-signzone") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let zone = examples().join("example.com.zone");
    let daemon = Daemon::start(dir.path(), &[("example.com", &zone)]);

    let bind_dir = dir.path().join("bind-keys");
    std::fs::create_dir_all(&bind_dir).unwrap();
    let keygen_for = |algorithm: &str| {
        let generated = run(Command::new(&keygen)
            .args(["-q", "-a", algorithm, "-K"])
            .arg(&bind_dir)
            .arg("example.com"));
        assert!(
            generated.status.success(),
            "dnssec-keygen: {}",
            output_text(&generated)
        );
        String::from_utf8_lossy(&generated.stdout)
            .trim()
            .to_string()
    };
    // A ZSK of an algorithm no KSK has would fail BIND's completeness check.
    let lone = keygen_for("ED25519");
    let refused = daemon.cli(&[
        "key",
        "import",
        "example.com",
        bind_dir.join(&lone).to_str().unwrap(),
    ]);
    assert!(!refused.status.success(), "lone Ed25519 ZSK was imported");
    assert!(
        output_text(&refused).contains("algorithm 15"),
        "{}",
        output_text(&refused)
    );
    std::fs::remove_file(bind_dir.join(format!("{lone}.key"))).unwrap();
    std::fs::remove_file(bind_dir.join(format!("{lone}.private"))).unwrap();
    let stem = keygen_for("ECDSAP256SHA256");
    let tag: u16 = stem.rsplit('+').next().unwrap().parse().unwrap();
    let imported = daemon.json(&[
        "key",
        "import",
        "example.com",
        bind_dir.join(&stem).to_str().unwrap(),
    ]);
    assert_eq!(imported[0]["key_tag"], tag);
    assert_eq!(imported[0]["role"], "zsk");
    // The imported key waits as the successor of the current ZSK.
    let dnskeys = dig(
        test,
        daemon.dns_port,
        &["+dnssec", "+norec", "example.com", "DNSKEY"],
    )
    .unwrap();
    assert_eq!(
        dnskeys.matches("DNSKEY\t256 3 13").count(),
        1,
        "imported key published before its turn: {dnskeys}"
    );
    let current = daemon
        .json(&["key", "list", "example.com"])
        .as_array()
        .unwrap()
        .iter()
        .find(|key| key["role"] == "zsk" && key["key_tag"] != tag)
        .map(|key| key["id"].as_str().unwrap().to_string())
        .expect("the current ZSK");
    let rollover = daemon.cli(&["key", "rollover", "example.com", &current]);
    assert!(
        rollover.status.success(),
        "key rollover: {}",
        output_text(&rollover)
    );
    // The rollover takes the imported key as successor: no key is generated
    // and its DNSKEY is published first.
    let published = wait_until(Duration::from_secs(30), || {
        dig(test, daemon.dns_port, &["+norec", "example.com", "DNSKEY"])
            .is_some_and(|answer| answer.matches("DNSKEY\t256 3 13").count() == 2)
    });
    let keys = daemon.json(&["key", "list", "example.com"]);
    assert!(
        published,
        "imported key not published by the rollover: {keys}"
    );
    assert_eq!(
        keys.as_array().map(Vec::len),
        Some(3),
        "a key was generated: {keys}"
    );

    let export_dir = dir.path().join("exported");
    let exported = daemon.cli(&[
        "key",
        "export",
        "example.com",
        "-o",
        export_dir.to_str().unwrap(),
    ]);
    assert!(
        exported.status.success(),
        "key export: {}",
        output_text(&exported)
    );
    let files: Vec<String> = std::fs::read_dir(&export_dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    assert_eq!(
        files.iter().filter(|f| f.ends_with(".private")).count(),
        3,
        "{files:?}"
    );
    assert!(files.contains(&format!("{stem}.private")), "{files:?}");

    // BIND signs the zone with the exported keys and accepts the result.
    let signed_path = dir.path().join("example.com.bind-signed");
    // `-d` keeps the dsset file in the test folder.
    let signing = run(Command::new(&signzone)
        .args(["-S", "-K"])
        .arg(&export_dir)
        .arg("-d")
        .arg(dir.path())
        .arg("-o")
        .arg("example.com")
        .arg("-f")
        .arg(&signed_path)
        .arg(&zone));
    assert!(
        signing.status.success(),
        "dnssec-signzone with exported keys: {}",
        output_text(&signing)
    );
    check_with_validators(test, &signed_path, "example.com.");
}

#[test]
fn unreadable_keys_keep_last_version() {
    let test = "unreadable_keys_keep_last_version";
    let dir = tempfile::tempdir().unwrap();
    let zone = examples().join("example.com.zone");
    let (serial, tags) = {
        let daemon = Daemon::start(dir.path(), &[("example.com", &zone)]);
        let show = daemon.json(&["zone", "show", "example.com"]);
        let keys = daemon.json(&["key", "list", "example.com"]);
        let tags: Vec<u64> = keys
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["key_tag"].as_u64().unwrap())
            .collect();
        (show["serial"].as_u64().unwrap(), tags)
    };

    // Another key-encryption key: every sealed private key now fails to open.
    use std::os::unix::fs::PermissionsExt;
    let kek = dir.path().join("data/kek.key");
    std::fs::write(&kek, [7u8; 32]).unwrap();
    std::fs::set_permissions(&kek, std::fs::Permissions::from_mode(0o600)).unwrap();

    let daemon = Daemon::start(dir.path(), &[("example.com", &zone)]);
    let show = daemon.json(&["zone", "show", "example.com"]);
    assert_eq!(
        show["serial"].as_u64(),
        Some(serial),
        "the saved version is not served: {show}"
    );
    let error = show["error"].as_str().unwrap_or_default().to_string();
    assert!(
        tags.iter().any(|tag| error.contains(&format!("key {tag}"))),
        "error does not name the key: {error}"
    );
    let keys = daemon.json(&["key", "list", "example.com"]);
    assert_eq!(
        keys.as_array().map(Vec::len),
        Some(2),
        "replacement keys were generated: {keys}"
    );

    for _ in 0..2 {
        let reload = daemon.cli(&["zone", "reload", "example.com"]);
        assert!(
            !reload.status.success(),
            "reload signed without readable keys"
        );
    }
    if let Some(answer) = dig(
        test,
        daemon.dns_port,
        &["+dnssec", "+norec", "www.example.com", "A"],
    ) {
        assert!(
            answer.contains("status: NOERROR") && answer.contains("RRSIG"),
            "{answer}"
        );
    }
    let log = std::fs::read_to_string(dir.path().join("serve.log")).unwrap();
    let reports = log
        .lines()
        .filter(|line| line.contains("cannot be read"))
        .count();
    assert_eq!(
        reports, 1,
        "the key error was not logged exactly once: {log}"
    );
}

#[test]
fn zone_add_never_quotes_a_file_that_is_not_zone_text() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let zone = examples().join("2.0.192.in-addr.arpa.zone");
    let daemon = Daemon::start(dir.path(), &[("2.0.192.in-addr.arpa", &zone)]);

    let secret_line = "admin:$6$Zm9vYmFyc2VjcmV0:19000:0:99999:7:::";
    let secret = dir.path().join("secret");
    std::fs::write(&secret, format!("{secret_line}\nsecond line\n")).unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    let result = daemon.cli(&[
        "zone",
        "add",
        "leak.test",
        "--file",
        secret.to_str().unwrap(),
    ]);
    let message = output_text(&result);
    assert!(!result.status.success(), "{message}");
    assert!(message.contains(":1:"), "no file:line: {message}");
    assert!(
        !message.contains("admin"),
        "the secret line is quoted: {message}"
    );
    assert!(
        !message.contains("Zm9v"),
        "the secret line is quoted: {message}"
    );
}

#[test]
fn zone_add_refuses_fifo_and_device_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let zone = examples().join("2.0.192.in-addr.arpa.zone");
    let daemon = Daemon::start(dir.path(), &[("2.0.192.in-addr.arpa", &zone)]);
    let fifo = dir.path().join("fifo");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success(), "mkfifo failed");

    for (name, path) in [
        ("fifo.test", fifo.as_path()),
        ("zero.test", Path::new("/dev/zero")),
    ] {
        let started = std::time::Instant::now();
        let result = keymaster()
            .arg("--data-dir")
            .arg(&daemon.data_dir)
            .args(["--timeout", "20", "zone", "add", name, "--file"])
            .arg(path)
            .output()
            .unwrap();
        let message = output_text(&result);
        assert!(!result.status.success(), "{name} was added: {message}");
        assert!(message.contains("not a regular file"), "{message}");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{name} took {:?}",
            started.elapsed()
        );
    }
}

#[test]
fn cli_gives_up_on_a_stopped_server() {
    let dir = tempfile::tempdir().unwrap();
    let zone = examples().join("2.0.192.in-addr.arpa.zone");
    let daemon = Daemon::start(dir.path(), &[("2.0.192.in-addr.arpa", &zone)]);
    let pid = daemon._child.pid().to_string();
    let signal = |name: &str| {
        let sent = Command::new("kill").args([name, &pid]).status().unwrap();
        assert!(sent.success(), "kill {name} {pid} failed");
    };
    signal("-STOP");
    let started = std::time::Instant::now();
    let result = keymaster()
        .arg("--data-dir")
        .arg(&daemon.data_dir)
        .args(["zone", "list"])
        .env("KEYMASTER_TIMEOUT", "2")
        .output()
        .unwrap();
    let elapsed = started.elapsed();
    signal("-CONT");
    let message = output_text(&result);
    assert!(!result.status.success(), "{message}");
    assert!(
        elapsed < Duration::from_secs(15),
        "took {elapsed:?}: {message}"
    );
    assert!(message.contains("timed out after 2 s"), "{message}");
    assert!(message.contains("http://127.0.0.1:"), "no URL: {message}");
}
