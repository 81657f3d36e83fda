//! Writes records and zones in master-file format.

use std::fmt::Write as _;
use std::io::{self, Write};

use crate::rdata::text::write_rtype;
use crate::rdata::{has_text_format, write_generic, write_rdata};
use domain::base::iana::Rtype;

use crate::name::Name;
use crate::record::Record;
use crate::zone::{Node, Zone};

/// Returns one record as a master-file line without line break:
/// `owner TTL class type data`, with the RFC 3597 forms `TYPEnnn` and
/// `\# length hex` for types that have no presentation format here.
pub fn record_to_string(record: &Record) -> String {
    let mut line = String::with_capacity(64 + record.rdata.len() * 2);
    write_record(&mut line, record);
    line
}

fn write_record(line: &mut String, record: &Record) {
    let _ = write!(line, "{} {} {} ", record.owner, record.ttl, record.class);
    if has_text_format(record.rtype) {
        write_rtype(line, record.rtype);
        line.push(' ');
        write_rdata(line, record.rtype, &record.rdata);
    } else {
        let _ = write!(line, "TYPE{} ", record.rtype.to_int());
        write_generic(line, &record.rdata);
    }
}

/// Writes `zone` as a master file: SOA first, then every RRset in
/// canonical order, each followed by its RRSIGs.
pub fn write_zone(zone: &Zone, out: impl Write) -> io::Result<()> {
    let mut out = io::BufWriter::new(out);
    let mut text = String::with_capacity(4096);
    for node in zone.nodes() {
        text.clear();
        node_to_text(node, zone.origin(), &mut text);
        out.write_all(text.as_bytes())?;
    }
    out.flush()
}

/// Appends the master-file lines of `node` to `text`, one record per line:
/// each RRset in type order followed by its RRSIGs, and at the apex `apex`
/// the SOA RRset first. Written node after node in canonical order, the
/// lines make the master file [`write_zone`] writes.
pub fn node_to_text(node: &Node, apex: &Name, text: &mut String) {
    let at_apex = node.name == *apex;
    let soa = at_apex.then(|| node.rrset(Rtype::SOA)).flatten();
    let others = node
        .rrsets
        .iter()
        .filter(|rrset| !(at_apex && rrset.rtype == Rtype::SOA));
    for rrset in soa.into_iter().chain(others) {
        for record in rrset.records().chain(rrset.signature_records()) {
            write_record(text, &record);
            text.push('\n');
        }
    }
}
