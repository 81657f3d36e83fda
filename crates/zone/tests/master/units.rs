//! Directives, escapes, defaults and error messages, checked against wire
//! octets written out by hand.

use std::fs;

use keymaster_zone::{
    load_zone_file, load_zone_str, rdata_from_text, rdata_to_text, record_to_string, CheckError,
    LoadErrorKind, LoadOptions, Rtype, WarningKind,
};

use crate::name;

const SOA: &str = "@ 3600 IN SOA ns hostmaster 1 7200 3600 1209600 300\n@ NS ns\n";

fn load(text: &str) -> keymaster_zone::LoadedZone {
    load_zone_str(text, &name("example."), &LoadOptions::default()).expect("zone loads")
}

fn load_error(text: &str) -> keymaster_zone::LoadError {
    load_zone_str(text, &name("example."), &LoadOptions::default()).expect_err("zone fails")
}

#[test]
fn generate_expands_owner_and_data() {
    let text = format!("$TTL 60\n{SOA}$GENERATE 1-3/2 host${{0,2,d}} A 192.0.2.$\n");
    let zone = load(&text).zone;
    let a1 = zone
        .rrset(&name("host01.example."), Rtype::A)
        .expect("host01");
    assert_eq!(a1.rdatas[0].as_ref(), &[192, 0, 2, 1]);
    let a3 = zone
        .rrset(&name("host03.example."), Rtype::A)
        .expect("host03");
    assert_eq!(a3.rdatas[0].as_ref(), &[192, 0, 2, 3]);
    assert!(zone.get(&name("host02.example.")).is_none());
}

#[test]
fn generate_nibble_owner_for_ip6_arpa() {
    let text = format!("$TTL 60\n{SOA}$GENERATE 10-10 ${{0,5,n}} PTR host$\n");
    let zone = load(&text).zone;
    let ptr = zone
        .rrset(&name("a.0.0.example."), Rtype::PTR)
        .expect("nibble owner");
    assert_eq!(ptr.rdatas[0].as_ref(), b"\x06host10\x07example\x00");
}

#[test]
fn ttl_units_and_inheritance() {
    let text = "@ 1h30m IN SOA ns hostmaster 1 2 3 4 5\n@ NS ns\nns A 192.0.2.1\n\
                $TTL 1w2D\nb A 192.0.2.2\n";
    let zone = load(text).zone;
    assert_eq!(zone.soa().expect("SOA").ttl, 5400);
    // Without $TTL a record takes the last TTL given (RFC 1035 section 5.1).
    assert_eq!(
        zone.rrset(&name("ns.example."), Rtype::A).expect("ns").ttl,
        5400
    );
    let b = zone.rrset(&name("b.example."), Rtype::A).expect("b");
    assert_eq!(b.ttl, 9 * 86400);
}

#[test]
fn soa_minimum_used_without_any_ttl() {
    let loaded = load("@ IN SOA ns hostmaster 1 2 3 4 300\n@ NS ns\n");
    assert_eq!(loaded.zone.soa().expect("SOA").ttl, 300);
    assert!(loaded
        .warnings
        .iter()
        .any(|w| w.kind == WarningKind::TtlFromSoaMinimum { ttl: 300 }));
}

#[test]
fn escapes_in_names_and_strings() {
    let text = format!("$TTL 60\n{SOA}a\\.b\\032c TXT \"x; y\" \"q\\\"\\255\"\n");
    let zone = load(&text).zone;
    let owner = keymaster_zone::Name::from_wire(&b"\x05a.b c\x07example\x00"[..]).expect("wire");
    let txt = zone.rrset(&owner, Rtype::TXT).expect("escaped owner");
    assert_eq!(txt.rdatas[0].as_ref(), b"\x04x; y\x03q\"\xff");
}

#[test]
fn at_sign_in_rdata_is_origin() {
    let text = format!("$TTL 60\n{SOA}www CNAME @\nmail MX 10 @\n");
    let zone = load(&text).zone;
    let cname = zone
        .rrset(&name("www.example."), Rtype::CNAME)
        .expect("CNAME");
    assert_eq!(cname.rdatas[0].as_ref(), b"\x07example\x00");
    let mx = zone.rrset(&name("mail.example."), Rtype::MX).expect("MX");
    assert_eq!(mx.rdatas[0].as_ref(), b"\x00\x0a\x07example\x00");
}

#[test]
fn class_and_ttl_in_either_order() {
    let text = format!("$TTL 60\n{SOA}a IN 100 A 192.0.2.1\nb 200 IN A 192.0.2.2\n");
    let zone = load(&text).zone;
    assert_eq!(
        zone.rrset(&name("a.example."), Rtype::A).expect("a").ttl,
        100
    );
    assert_eq!(
        zone.rrset(&name("b.example."), Rtype::A).expect("b").ttl,
        200
    );
}

#[test]
fn include_inherits_origin_and_ttl() {
    let folder = tempfile::tempdir().expect("temporary folder");
    let sub = folder.path().join("sub");
    fs::create_dir(&sub).expect("sub folder");
    fs::write(sub.join("part.db"), "host A 192.0.2.7\n").expect("write include");
    fs::write(
        sub.join("other.db"),
        "host A 192.0.2.8\n$TTL 5\nlater A 192.0.2.9\n",
    )
    .expect("write include");
    let top = folder.path().join("zone.db");
    fs::write(
        &top,
        format!(
            "$TTL 77\n{SOA}$ORIGIN in.example.\n$INCLUDE sub/part.db\n\
             $INCLUDE sub/other.db other.example.\nafter A 192.0.2.10\n"
        ),
    )
    .expect("write zone");
    let zone = load_zone_file(&top, &name("example."), &LoadOptions::default())
        .expect("zone loads")
        .zone;
    let host = zone
        .rrset(&name("host.in.example."), Rtype::A)
        .expect("inherited origin");
    assert_eq!(host.ttl, 77);
    let other = zone
        .rrset(&name("host.other.example."), Rtype::A)
        .expect("given origin");
    assert_eq!(other.ttl, 77);
    assert_eq!(
        zone.rrset(&name("later.other.example."), Rtype::A)
            .expect("later")
            .ttl,
        5
    );
    // The including file keeps its own origin and TTL after the include.
    let after = zone
        .rrset(&name("after.in.example."), Rtype::A)
        .expect("after");
    assert_eq!(after.ttl, 77);
}

#[test]
fn include_loop_is_rejected() {
    let folder = tempfile::tempdir().expect("temporary folder");
    let top = folder.path().join("loop.db");
    fs::write(&top, format!("$TTL 60\n{SOA}$INCLUDE loop.db\n")).expect("write zone");
    let error =
        load_zone_file(&top, &name("example."), &LoadOptions::default()).expect_err("loop fails");
    assert!(
        matches!(error.reason, LoadErrorKind::IncludeLoop),
        "{error}"
    );
    assert_eq!(error.line(), 4);
}

#[test]
fn include_fan_out_is_bounded() {
    // Each level includes the next ten times: 10^6 reads without a bound.
    let folder = tempfile::tempdir().expect("temporary folder");
    for level in 0..6 {
        let include = format!("$INCLUDE level{}.db\n", level + 1).repeat(10);
        fs::write(folder.path().join(format!("level{level}.db")), include).expect("write level");
    }
    fs::write(folder.path().join("level6.db"), "x A 192.0.2.1\n").expect("write leaf");
    let top = folder.path().join("top.db");
    fs::write(&top, format!("$TTL 60\n{SOA}$INCLUDE level0.db\n")).expect("write zone");
    let error = load_zone_file(&top, &name("example."), &LoadOptions::default())
        .expect_err("fan-out fails");
    assert!(
        matches!(error.reason, LoadErrorKind::TooManyIncludes(1000)),
        "{error}"
    );
}

#[test]
fn generate_total_is_bounded() {
    let directive = "$GENERATE 0-65535 h$ A 192.0.2.1\n";
    let text = format!("$TTL 60\n{SOA}{}", directive.repeat(17));
    let error = load_error(&text);
    assert!(
        matches!(
            error.reason,
            LoadErrorKind::Generate(keymaster_zone::master::GenerateError::TooMany(1_048_576))
        ),
        "{error:?}"
    );
    assert_eq!(error.line(), 20);
}

#[test]
fn error_names_file_line_and_text() {
    let folder = tempfile::tempdir().expect("temporary folder");
    let top = folder.path().join("bad.db");
    fs::write(&top, format!("$TTL 60\n{SOA}\nwww A 192.0.2.300\n")).expect("write zone");
    let error = load_zone_file(&top, &name("example."), &LoadOptions::default())
        .expect_err("bad address fails");
    let message = error.to_string();
    let expected = format!("{}:5: 192.0.2.300: invalid record data", top.display());
    assert_eq!(message, expected);
    assert_eq!(error.line(), 5);
    assert_eq!(error.path(), Some(top.as_path()));
}

#[test]
fn semantic_errors_are_rejected() {
    let cases = [
        ("a CNAME x\na A 192.0.2.1\n", "CNAME and other data"),
        ("a A 192.0.2.1\na CNAME x\n", "CNAME and other data"),
        ("a CNAME x\na CNAME y\n", "more than one CNAME"),
        ("a DNAME x\na DNAME y\n", "more than one DNAME"),
        ("a DNAME x\nb.a A 192.0.2.1\n", "DNAME and names below"),
        ("a DNAME x\na NS ns\n", "NS and DNAME"),
        (
            "@ DS 1 8 1 00112233445566778899AABBCCDDEEFF00112233\n",
            "DS record at the zone apex",
        ),
        ("www.example.org. A 192.0.2.1\n", "outside the zone"),
        ("a CH TXT x\n", "class CH differs"),
        ("@ SOA ns h 2 2 3 4 5\n", "more than one SOA"),
        ("a SOA ns h 2 2 3 4 5\n", "not the zone apex"),
    ];
    for (records, expected) in cases {
        let error = load_error(&format!("$TTL 60\n{SOA}{records}"));
        assert!(
            matches!(error.reason, LoadErrorKind::Check(_)),
            "{records}: {error}"
        );
        assert!(error.to_string().contains(expected), "{records}: {error}");
    }
    let missing = load_error("$TTL 60\n@ NS ns\n");
    assert!(matches!(
        missing.reason,
        LoadErrorKind::Check(CheckError::NoSoa(_))
    ));
}

#[test]
fn signatures_beside_cname_are_allowed() {
    let text = format!(
        "$TTL 60\n{SOA}a CNAME x\na NSEC b A RRSIG NSEC\n\
         a RRSIG CNAME 8 2 60 20230101000000 20220101000000 1 example. AAAA\n"
    );
    let zone = load(&text).zone;
    let cname = zone
        .rrset(&name("a.example."), Rtype::CNAME)
        .expect("CNAME");
    assert_eq!(cname.signatures.len(), 1);
}

#[test]
fn strip_dnssec_counts_dropped_records() {
    let text = format!(
        "$TTL 60\n{SOA}@ DNSKEY 257 3 8 AwEAAQ==\n@ NSEC3PARAM 1 0 0 -\n\
         a A 192.0.2.1\na RRSIG A 8 2 60 20230101000000 20220101000000 1 example. AAAA\n"
    );
    let options = LoadOptions {
        strip_dnssec: true,
        ..LoadOptions::default()
    };
    let loaded = load_zone_str(&text, &name("example."), &options).expect("zone loads");
    assert_eq!(loaded.zone.record_count(), 3);
    let counts: Vec<_> = loaded
        .warnings
        .iter()
        .filter_map(|w| match w.kind {
            WarningKind::DnssecStripped { count } => Some(count),
            _ => None,
        })
        .collect();
    assert_eq!(counts, vec![3]);
}

#[test]
fn differing_ttls_warn_once_per_rrset() {
    let text = format!("$TTL 60\n{SOA}a 300 A 192.0.2.1\na 100 A 192.0.2.2\na 50 A 192.0.2.3\n");
    let loaded = load(&text);
    assert_eq!(
        loaded
            .zone
            .rrset(&name("a.example."), Rtype::A)
            .expect("a")
            .ttl,
        50
    );
    let adjusted = loaded
        .warnings
        .iter()
        .filter(|w| matches!(w.kind, WarningKind::TtlAdjusted { .. }))
        .count();
    assert_eq!(adjusted, 1);
}

#[test]
fn unknown_type_uses_rfc3597_form() {
    let origin = name("example.");
    let rdata = rdata_from_text(Rtype::from_int(65000), "\\# 3 abcdef", &origin).expect("generic");
    assert_eq!(rdata.as_ref(), &[0xab, 0xcd, 0xef]);
    let record = keymaster_zone::Record {
        owner: name("a.example."),
        class: keymaster_zone::Class::IN,
        ttl: 60,
        rtype: Rtype::from_int(65000),
        rdata,
    };
    assert_eq!(
        record_to_string(&record),
        "a.example. 60 IN TYPE65000 \\# 3 ABCDEF"
    );
}

#[test]
fn generic_data_of_known_type_is_checked() {
    let origin = name("example.");
    let a = rdata_from_text(Rtype::A, "\\# 4 C0000201", &origin).expect("generic A");
    assert_eq!(a.as_ref(), &[192, 0, 2, 1]);
    assert!(rdata_from_text(Rtype::A, "\\# 3 C00002", &origin).is_err());
    assert!(rdata_from_text(Rtype::A, "\\# 4 C00002", &origin).is_err());
    assert!(rdata_from_text(Rtype::MX, "\\# 3 000A00", &origin).is_ok());
    assert!(rdata_from_text(Rtype::MX, "\\# 3 000A05", &origin).is_err());
}

#[test]
fn svcb_keys_are_sorted_on_wire() {
    // RFC 9460 appendix D.2, figure 9: keys out of order in text.
    let origin = name("example.");
    let text = "16 foo.example.org. (alpn=h2,h3-19 mandatory=ipv4hint,alpn ipv4hint=192.0.2.1)";
    let rdata = rdata_from_text(Rtype::SVCB, text, &origin).expect("SVCB");
    let expected: &[u8] = b"\x00\x10\x03foo\x07example\x03org\x00\
        \x00\x00\x00\x04\x00\x01\x00\x04\
        \x00\x01\x00\x09\x02h2\x05h3-19\
        \x00\x04\x00\x04\xc0\x00\x02\x01";
    assert_eq!(rdata.as_ref(), expected);
    assert_eq!(
        rdata_to_text(Rtype::SVCB, &rdata),
        "16 foo.example.org. mandatory=alpn,ipv4hint alpn=\"h2,h3-19\" ipv4hint=192.0.2.1"
    );
}

#[test]
fn svcb_invalid_values_fail() {
    let origin = name("example.");
    for text in [
        "1 . alpn=",
        "1 . alpn=\\,abc",
        "1 . alpn=a,,b",
        "1 . port=65536",
        "1 . mandatory=port",
        "1 . mandatory=mandatory",
        "1 . port=1 port=2",
        "1 . key65535=x",
        "1 . unknown=x",
        "1 . ipv4hint=::1",
    ] {
        assert!(
            rdata_from_text(Rtype::SVCB, text, &origin).is_err(),
            "{text}"
        );
    }
}

#[test]
fn loc_maximal_values() {
    // Expected octets from Knot's zscanner suite, case 42_LOC.
    let text = "90 59 59.999 S 180 59 59.999 W 42849672.95m 90000000.00m 90000000.00m 90000000.00m";
    let rdata = rdata_from_text(Rtype::LOC, text, &name(".")).expect("LOC");
    let expected = "009999996C79388159295F81FFFFFFFF";
    assert_eq!(data_encoding::HEXUPPER.encode(&rdata), expected);
    assert_eq!(
        rdata_to_text(Rtype::LOC, &rdata),
        "90 59 59.999 S 180 59 59.999 W 42849672.95m 90000000.00m 90000000.00m 90000000.00m"
    );
}
