//! The example responses of RFC 4035 Appendix B (NSEC) and RFC 5155
//! Appendix B (NSEC3), replayed with DO against the signed example zones.
//!
//! The RFCs predate minimal responses: their positive answers also carry
//! the apex NS RRset in the authority section and the addresses of those
//! name servers in the additional section. This server leaves both out,
//! so for answers with records the test removes them from the expected
//! sections and compares the rest record for record.

use std::collections::BTreeSet;
use std::path::Path;

use keymaster_server::ZoneSet;
use keymaster_zone::{scan_records, Rtype};

use crate::common::*;

/// One example: the question, the expected header and the sections.
#[derive(Debug)]
struct Example {
    title: String,
    qname: String,
    qtype: Rtype,
    authoritative: bool,
    rcode: u16,
    answer: Vec<String>,
    authority: Vec<String>,
    additional: Vec<String>,
}

#[test]
fn rfc4035_appendix_b_responses() {
    let Some(data) = keymaster_testutil::testdata("rfc4035_appendix_b_responses") else {
        return;
    };
    let checked = replay(
        &data.join("vectors/rfc4035-appendix-A.signed.zone"),
        &data.join("vectors/rfc4035-appendix-B.responses.txt"),
        "",
    );
    assert_eq!(checked, 8);
}

#[test]
fn rfc5155_appendix_b_responses() {
    let Some(data) = keymaster_testutil::testdata("rfc5155_appendix_b_responses") else {
        return;
    };
    // The RFC's records omit TTLs, which are all 3600 in the zone.
    let checked = replay(
        &data.join("vectors/rfc5155-appendix-A.signed.zone"),
        &data.join("vectors/rfc5155-appendix-B.responses.txt"),
        "$TTL 3600\n",
    );
    assert_eq!(checked, 7);
}

/// Replays every example of `responses` against `zone_file`; returns the
/// number of examples compared.
fn replay(zone_file: &Path, responses: &Path, prelude: &str) -> usize {
    let zones = ZoneSet::new();
    let zone_text = std::fs::read_to_string(zone_file).unwrap();
    zones.publish(published("example.", &zone_text));
    let text = std::fs::read_to_string(responses).unwrap();
    let examples = parse_examples(&text, prelude);
    for example in &examples {
        let message = query(&example.qname, example.qtype, Some((4096, 0, true)));
        let response = ask_over(&zones, &message, udp(4096));
        let title = &example.title;
        assert_eq!(response.rcode(), example.rcode, "{title}: RCODE");
        assert_eq!(response.aa(), example.authoritative, "{title}: AA");
        assert!(!response.tc(), "{title}: TC");

        let (authority, additional) = if example.answer.is_empty() {
            (example.authority.clone(), example.additional.clone())
        } else {
            without_apex_ns(&example.authority, &example.additional)
        };
        assert_eq!(response.answer_text(), example.answer, "{title}: answer");
        assert_eq!(response.authority_text(), authority, "{title}: authority");
        assert_eq!(
            response.additional_text(),
            additional,
            "{title}: additional"
        );
    }
    examples.len()
}

/// Removes the apex NS RRset and its RRSIG from `authority`, and the
/// addresses of the apex name servers from `additional`.
fn without_apex_ns(authority: &[String], additional: &[String]) -> (Vec<String>, Vec<String>) {
    let authority = authority
        .iter()
        .filter(|line| {
            !line.starts_with("example. 3600 IN NS ")
                && !line.starts_with("example. 3600 IN RRSIG NS ")
        })
        .cloned()
        .collect();
    let additional = additional
        .iter()
        .filter(|line| !line.starts_with("ns1.example. ") && !line.starts_with("ns2.example. "))
        .cloned()
        .collect();
    (authority, additional)
}

/// Splits the response text into examples at the "B.n" headings.
fn parse_examples(text: &str, prelude: &str) -> Vec<Example> {
    // RFC 5155 B.6 lacks the opening parenthesis of its last RRSIG.
    let text = text.replace(
        "RRSIG NSEC3 7 2 3600\n                       20150420235959",
        "RRSIG NSEC3 7 2 3600 (\n                       20150420235959",
    );
    let mut blocks: Vec<Vec<&str>> = Vec::new();
    for line in text.lines() {
        if line.starts_with("B.") {
            blocks.push(Vec::new());
        }
        if let Some(block) = blocks.last_mut() {
            block.push(line);
        }
    }
    blocks
        .iter()
        .map(|block| parse_example(block, prelude))
        .collect()
}

fn parse_example(lines: &[&str], prelude: &str) -> Example {
    let title = lines[0].trim().to_string();
    let marker = |name: &str| {
        lines
            .iter()
            .position(|line| line.trim() == format!(";; {name}"))
            .unwrap_or_else(|| panic!("{title}: no {name} marker"))
    };
    let header = lines
        .iter()
        .find(|line| line.trim().starts_with(";; Header:"))
        .unwrap_or_else(|| panic!("{title}: no header"));
    let rcode: u16 = header
        .rsplit("RCODE=")
        .next()
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let authoritative = header.contains(" AA ");

    let question = lines[marker("Question") + 1]
        .split_whitespace()
        .collect::<Vec<_>>();
    let qname = question[0].to_string();
    let qtype = question[2].parse::<Rtype>().unwrap();

    let (answer, authority, additional) =
        (marker("Answer"), marker("Authority"), marker("Additional"));
    Example {
        answer: records(&lines[answer..authority], prelude, &title),
        authority: records(&lines[authority..additional], prelude, &title),
        additional: records(&section_until_blank(&lines[additional..]), prelude, &title),
        title,
        qname,
        qtype,
        authoritative,
        rcode,
    }
}

/// Returns the lines of the last section up to the first blank line
/// outside parentheses, which separates it from the RFC's explanation.
fn section_until_blank<'a>(lines: &[&'a str]) -> Vec<&'a str> {
    let mut depth = 0i32;
    let mut kept = Vec::new();
    for line in lines {
        if line.trim().is_empty() && depth == 0 && kept.len() > 1 {
            break;
        }
        let code = line.split(';').next().unwrap();
        depth += code.matches('(').count() as i32 - code.matches(')').count() as i32;
        kept.push(*line);
    }
    kept
}

/// Reads the records of one section. The first line is the section
/// marker; its indentation is the column where records with an owner
/// start, and deeper lines continue or inherit the owner.
fn records(lines: &[&str], prelude: &str, title: &str) -> Vec<String> {
    let indent = lines[0].len() - lines[0].trim_start().len();
    let mut text = String::from(prelude);
    for line in &lines[1..] {
        let own = line.len() - line.trim_start().len();
        text.push_str(if own >= indent {
            &line[indent..]
        } else {
            line.trim_start()
        });
        text.push('\n');
    }
    let mut found = Vec::new();
    scan_records(&text, &name("example."), None, |record| {
        found.push(record.unwrap_or_else(|error| panic!("{title}: {error}\n{text}")));
        true
    });
    let unique: BTreeSet<String> = texts(&found).into_iter().collect();
    unique.into_iter().collect()
}
