//! Answers from zones built in code, one protocol case per test.

use std::sync::Arc;

use keymaster_server::{answer, Transport, ZoneSet};
use keymaster_zone::{Class, Rtype};

use crate::common::*;

const ZONE: &str = include_str!("zone.txt");

const CHILD: &str = "$TTL 600
@ IN SOA ns.sub.example.com. hostmaster.sub.example.com. 7 3600 600 86400 60
@ NS ns.sub.example.com.
@ A 192.0.2.7
";

fn zones() -> ZoneSet {
    let zones = ZoneSet::new();
    zones.publish(published("example.com.", ZONE));
    zones
}

#[test]
fn exact_answer_is_authoritative() {
    let response = ask(&zones(), &query("host.example.com.", Rtype::A, None));
    assert_eq!(response.id, 0xbeef);
    assert_eq!(response.rcode(), 0);
    assert!(response.aa());
    assert!(!response.tc());
    assert_eq!(
        response.answer_text(),
        ["host.example.com. 3600 IN A 192.0.2.3"]
    );
    assert!(response.authority.is_empty());
    assert!(response.opt.is_none());
}

#[test]
fn question_case_is_echoed() {
    let message = query("HoSt.ExAmPlE.cOm.", Rtype::A, None);
    let response = ask(&zones(), &message);
    assert_eq!(response.question, message[12..]);
    assert_eq!(response.answer.len(), 1);
}

#[test]
fn names_are_compressed() {
    let response = ask(&zones(), &query("example.com.", Rtype::MX, None));
    assert_eq!(
        response.answer_text(),
        ["example.com. 3600 IN MX 10 mail.example.com."]
    );
    // Header 12, question 17; MX 2+10+9 with the owner and the
    // "example.com" suffix as pointers; A 2+10+4 and AAAA 2+10+16 with
    // the owner pointing into the MX RDATA.
    assert_eq!(response.size, 12 + 17 + 21 + 16 + 28);
}

#[test]
fn mx_target_addresses_in_additional() {
    let response = ask(&zones(), &query("example.com.", Rtype::MX, None));
    assert_eq!(
        response.additional_text(),
        [
            "mail.example.com. 3600 IN A 192.0.2.2",
            "mail.example.com. 3600 IN AAAA 2001:db8::2"
        ]
    );
}

#[test]
fn cname_chain_is_followed() {
    let response = ask(&zones(), &query("www.example.com.", Rtype::A, None));
    assert_eq!(response.rcode(), 0);
    assert!(response.aa());
    assert_eq!(
        response.answer_text(),
        [
            "host.example.com. 3600 IN A 192.0.2.3",
            "web.example.com. 3600 IN CNAME host.example.com.",
            "www.example.com. 3600 IN CNAME web.example.com.",
        ]
    );
}

#[test]
fn cname_query_returns_cname_only() {
    let response = ask(&zones(), &query("www.example.com.", Rtype::CNAME, None));
    assert_eq!(
        response.answer_text(),
        ["www.example.com. 3600 IN CNAME web.example.com."]
    );
}

#[test]
fn cname_loop_ends() {
    let response = ask(&zones(), &query("loop1.example.com.", Rtype::A, None));
    assert_eq!(response.rcode(), 0);
    assert_eq!(
        response.answer_text(),
        [
            "loop1.example.com. 3600 IN CNAME loop2.example.com.",
            "loop2.example.com. 3600 IN CNAME loop1.example.com.",
        ]
    );
}

#[test]
fn cname_out_of_zone_stops() {
    let response = ask(&zones(), &query("out.example.com.", Rtype::A, None));
    assert_eq!(response.rcode(), 0);
    assert_eq!(
        response.answer_text(),
        ["out.example.com. 3600 IN CNAME www.example.net."]
    );
    assert!(response.authority.is_empty());
}

#[test]
fn nxdomain_has_soa_with_minimum_ttl() {
    let response = ask(&zones(), &query("nothing.example.com.", Rtype::A, None));
    assert_eq!(response.rcode(), 3);
    assert!(response.aa());
    assert!(response.answer.is_empty());
    // RFC 2308: TTL is min(3600, MINIMUM 300).
    assert_eq!(
        response.authority_text(),
        ["example.com. 300 IN SOA ns1.example.com. hostmaster.example.com. 1 7200 900 1209600 300"]
    );
}

#[test]
fn nodata_has_soa() {
    let response = ask(&zones(), &query("host.example.com.", Rtype::AAAA, None));
    assert_eq!(response.rcode(), 0);
    assert!(response.aa());
    assert!(response.answer.is_empty());
    assert_eq!(response.authority.len(), 1);
    assert_eq!(response.authority[0].rtype, Rtype::SOA);
}

#[test]
fn empty_non_terminal_is_nodata() {
    for qname in ["b.ent.example.com.", "ent.example.com."] {
        let response = ask(&zones(), &query(qname, Rtype::A, None));
        assert_eq!(response.rcode(), 0, "{qname}");
        assert!(response.answer.is_empty(), "{qname}");
        assert_eq!(response.authority[0].rtype, Rtype::SOA, "{qname}");
    }
}

#[test]
fn mixed_case_owners_are_found() {
    let zones = ZoneSet::new();
    let text = "$TTL 300
@ SOA ns hostmaster 1 7200 900 1209600 300
@ NS ns
ns A 192.0.2.1
HoSt A 192.0.2.3
x.EnT A 192.0.2.5
";
    zones.publish(published("Mixed.Example.", text));
    for qname in ["host.mixed.example.", "HOST.MIXED.EXAMPLE."] {
        let response = ask(&zones, &query(qname, Rtype::A, None));
        assert_eq!(response.rcode(), 0, "{qname}");
        assert_eq!(
            response.answer_text(),
            ["host.mixed.example. 300 IN A 192.0.2.3"],
            "{qname}"
        );
    }
    // An empty non-terminal loaded in mixed case exists in any case.
    let response = ask(&zones, &query("ent.mixed.example.", Rtype::A, None));
    assert_eq!(response.rcode(), 0);
    assert!(response.answer.is_empty());
    assert_eq!(response.authority[0].rtype, Rtype::SOA);
}

#[test]
fn wildcard_rewrites_owner() {
    let response = ask(&zones(), &query("a.b.wild.example.com.", Rtype::TXT, None));
    assert_eq!(response.rcode(), 0);
    assert!(response.aa());
    assert_eq!(
        response.answer_text(),
        ["a.b.wild.example.com. 3600 IN TXT \"wild\""]
    );
}

#[test]
fn wildcard_nodata() {
    let response = ask(&zones(), &query("x.wild.example.com.", Rtype::MX, None));
    assert_eq!(response.rcode(), 0);
    assert!(response.answer.is_empty());
    assert_eq!(response.authority[0].rtype, Rtype::SOA);
}

#[test]
fn wildcard_cname_is_followed() {
    let response = ask(&zones(), &query("q.alias.example.com.", Rtype::A, None));
    assert_eq!(
        response.answer_text(),
        [
            "host.example.com. 3600 IN A 192.0.2.3",
            "q.alias.example.com. 3600 IN CNAME host.example.com.",
        ]
    );
}

#[test]
fn wildcard_owner_itself_matches() {
    let response = ask(&zones(), &query("*.wild.example.com.", Rtype::A, None));
    assert_eq!(
        response.answer_text(),
        ["*.wild.example.com. 3600 IN A 192.0.2.4"]
    );
}

#[test]
fn referral_has_ns_and_glue() {
    let response = ask(&zones(), &query("www.sub.example.com.", Rtype::A, None));
    assert_eq!(response.rcode(), 0);
    assert!(!response.aa());
    assert!(response.answer.is_empty());
    assert_eq!(
        response.authority_text(),
        ["sub.example.com. 3600 IN NS ns.sub.example.com."]
    );
    assert_eq!(
        response.additional_text(),
        ["ns.sub.example.com. 3600 IN A 192.0.2.6"]
    );
}

#[test]
fn referral_at_cut_itself() {
    let response = ask(&zones(), &query("sub.example.com.", Rtype::A, None));
    assert!(!response.aa());
    assert_eq!(response.authority.len(), 1);
    assert_eq!(response.authority[0].rtype, Rtype::NS);
}

#[test]
fn referral_with_do_carries_ds() {
    // The zone is unsigned, so the DS comes without RRSIG.
    let response = ask(
        &zones(),
        &query("www.sub.example.com.", Rtype::A, Some((1232, 0, true))),
    );
    let types: Vec<Rtype> = response.authority.iter().map(|r| r.rtype).collect();
    assert_eq!(types, [Rtype::NS, Rtype::DS]);
}

#[test]
fn ds_at_cut_comes_from_parent() {
    let response = ask(&zones(), &query("sub.example.com.", Rtype::DS, None));
    assert!(response.aa());
    assert_eq!(response.answer.len(), 1);
    assert_eq!(response.answer[0].rtype, Rtype::DS);
}

#[test]
fn ds_for_child_apex_goes_to_parent_zone() {
    let zones = zones();
    zones.publish(published("sub.example.com.", CHILD));
    let response = ask(&zones, &query("sub.example.com.", Rtype::DS, None));
    assert!(response.aa());
    assert_eq!(response.answer.len(), 1);
    assert_eq!(response.answer[0].rtype, Rtype::DS);
    // Other types at that name come from the child zone.
    let response = ask(&zones, &query("sub.example.com.", Rtype::A, None));
    assert!(response.aa());
    assert_eq!(
        response.answer_text(),
        ["sub.example.com. 600 IN A 192.0.2.7"]
    );
}

#[test]
fn dname_synthesizes_cname() {
    let response = ask(&zones(), &query("host.dn.example.com.", Rtype::A, None));
    assert_eq!(response.rcode(), 0);
    assert_eq!(
        response.answer_text(),
        [
            "dn.example.com. 3600 IN DNAME target.example.com.",
            "host.dn.example.com. 3600 IN CNAME host.target.example.com.",
            "host.target.example.com. 3600 IN A 192.0.2.9",
        ]
    );
}

#[test]
fn dname_owner_answers_dname() {
    let response = ask(&zones(), &query("dn.example.com.", Rtype::DNAME, None));
    assert_eq!(
        response.answer_text(),
        ["dn.example.com. 3600 IN DNAME target.example.com."]
    );
}

#[test]
fn dname_overflow_is_yxdomain() {
    let qname = format!("{}.long.example.com.", "p".repeat(60));
    let response = ask(&zones(), &query(&qname, Rtype::A, None));
    assert_eq!(response.rcode(), 6);
    assert_eq!(response.answer.len(), 1);
    assert_eq!(response.answer[0].rtype, Rtype::DNAME);
}

#[test]
fn any_is_answered_minimally() {
    let response = ask(&zones(), &query("mail.example.com.", Rtype::ANY, None));
    assert_eq!(
        response.answer_text(),
        ["mail.example.com. 3600 IN A 192.0.2.2"]
    );
}

#[test]
fn outside_zones_is_refused() {
    let response = ask(&zones(), &query("www.example.org.", Rtype::A, None));
    assert_eq!(response.rcode(), 5);
    assert!(!response.aa());
    assert!(response.answer.is_empty());
}

#[test]
fn chaos_class_is_refused() {
    let message = query_class("version.bind.", Rtype::TXT, Class::CH, None);
    assert_eq!(ask(&zones(), &message).rcode(), 5);
    let message = query_class("www.example.com.", Rtype::A, Class::CH, None);
    assert_eq!(ask(&zones(), &message).rcode(), 5);
}

#[test]
fn zone_transfer_is_notimp() {
    for qtype in [Rtype::AXFR, Rtype::IXFR] {
        let response = ask(&zones(), &query("example.com.", qtype, None));
        assert_eq!(response.rcode(), 4, "{qtype}");
    }
}

#[test]
fn other_opcode_is_notimp() {
    let mut message = query("example.com.", Rtype::SOA, None);
    message[2] = 2 << 3; // STATUS
    let response = ask(&zones(), &message);
    assert_eq!(response.rcode(), 4);
    assert_eq!(response.flags & 0x7800, 2 << 11);
}

#[test]
fn malformed_question_is_formerr() {
    let mut message = query("example.com.", Rtype::SOA, None);
    message.truncate(message.len() - 3);
    let response = ask(&zones(), &message);
    assert_eq!(response.rcode(), 1);
    assert_eq!(response.id, 0xbeef);
}

#[test]
fn two_questions_are_formerr() {
    let mut message = query("example.com.", Rtype::SOA, None);
    message[5] = 2;
    assert_eq!(ask(&zones(), &message).rcode(), 1);
}

#[test]
fn short_or_response_messages_are_dropped() {
    let peer = PEER.parse().unwrap();
    let zones = zones();
    assert!(answer(&zones, &[0u8; 11], udp(1232), peer).is_none());
    let mut message = query("example.com.", Rtype::SOA, None);
    message[2] |= 0x80;
    assert!(answer(&zones, &message, udp(1232), peer).is_none());
}

#[test]
fn edns_is_echoed_with_our_payload() {
    let response = ask(
        &zones(),
        &query("host.example.com.", Rtype::A, Some((4096, 0, true))),
    );
    let (payload, ttl) = response.opt.expect("OPT in the response");
    assert_eq!(payload, 1232);
    assert_eq!(ttl, 0x8000, "DO echoed, version 0, no extended rcode");
    let response = ask(
        &zones(),
        &query("host.example.com.", Rtype::A, Some((4096, 0, false))),
    );
    assert_eq!(response.opt.unwrap().1, 0);
}

#[test]
fn edns_version_1_is_badvers() {
    let response = ask(
        &zones(),
        &query("host.example.com.", Rtype::A, Some((1232, 1, false))),
    );
    assert_eq!(response.rcode(), 16);
    assert_eq!(response.flags & 0x0f, 0);
    assert!(response.answer.is_empty());
}

#[test]
fn rrsig_only_with_do() {
    let zones = ZoneSet::new();
    zones.publish(rfc4035_zone());
    let plain = ask(&zones, &query("x.w.example.", Rtype::MX, None));
    assert!(plain.answer.iter().all(|r| r.rtype != Rtype::RRSIG));
    let signed = ask(
        &zones,
        &query("x.w.example.", Rtype::MX, Some((1232, 0, true))),
    );
    assert!(signed.answer.iter().any(|r| r.rtype == Rtype::RRSIG));
}

fn rfc4035_zone() -> Arc<keymaster_server::PublishedZone> {
    let Some(data) = keymaster_testutil::testdata("rrsig_only_with_do") else {
        panic!("test data is required for this test");
    };
    let text =
        std::fs::read_to_string(data.join("vectors/rfc4035-appendix-A.signed.zone")).unwrap();
    published("example.", &text)
}

#[test]
fn udp_without_edns_is_limited_to_512() {
    let response = ask(&zones(), &query("big.example.com.", Rtype::TXT, None));
    assert!(response.tc());
    assert!(response.answer.is_empty());
    assert!(response.size <= 512);
}

#[test]
fn udp_limit_follows_client_payload() {
    // 20 TXT records of about 115 octets: 2.3 KB.
    let small = ask(
        &zones(),
        &query("big.example.com.", Rtype::TXT, Some((1000, 0, false))),
    );
    assert!(small.tc());
    assert!(small.opt.is_some(), "OPT stays in a truncated response");
    let over = ask_over(
        &zones(),
        &query("big.example.com.", Rtype::TXT, Some((4096, 0, false))),
        udp(4096),
    );
    assert!(!over.tc());
    assert_eq!(over.answer.len(), 20);
    // Our configured maximum caps a larger client payload.
    let capped = ask(
        &zones(),
        &query("big.example.com.", Rtype::TXT, Some((4096, 0, false))),
    );
    assert!(capped.tc());
    // Payload values below 512 count as 512.
    let tiny = ask(
        &zones(),
        &query("host.example.com.", Rtype::A, Some((100, 0, false))),
    );
    assert!(!tiny.tc());
}

#[test]
fn tcp_carries_the_full_answer() {
    let message = query("big.example.com.", Rtype::TXT, None);
    let response = ask_over(&zones(), &message, Transport::tcp(1232));
    assert!(!response.tc());
    assert_eq!(response.answer.len(), 20);
}

#[test]
fn withdrawn_zone_is_refused() {
    let zones = zones();
    let removed = zones.withdraw(&name("EXAMPLE.com."));
    assert!(removed.is_some());
    let response = ask(&zones, &query("host.example.com.", Rtype::A, None));
    assert_eq!(response.rcode(), 5);
}

#[test]
fn zone_set_finds_closest_enclosing_zone() {
    let zones = zones();
    zones.publish(published("sub.example.com.", CHILD));
    let found = zones.find(&name("a.b.SUB.example.com.")).unwrap();
    assert_eq!(found.origin(), &name("sub.example.com."));
    let found = zones.find(&name("b.example.com.")).unwrap();
    assert_eq!(found.origin(), &name("example.com."));
    assert!(zones.find(&name("com.")).is_none());
    assert_eq!(
        zones.apexes(),
        [name("example.com."), name("sub.example.com.")]
    );
}
