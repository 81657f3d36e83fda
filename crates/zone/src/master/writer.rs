//! Writes records and zones in master-file format.

use std::fmt::Write as _;
use std::io::{self, Write};

use crate::rdata::text::write_rtype;
use crate::rdata::{has_text_format, write_generic, write_rdata};
use crate::record::Record;
use crate::zone::Zone;

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
    let mut line = String::with_capacity(512);
    if let Some(soa) = zone.soa() {
        for record in soa.records().chain(soa.signature_records()) {
            write_line(&mut out, &mut line, &record)?;
        }
    }
    for node in zone.nodes() {
        let at_apex = node.name == *zone.origin();
        for rrset in &node.rrsets {
            if at_apex && rrset.rtype == domain::base::iana::Rtype::SOA {
                continue;
            }
            for record in rrset.records().chain(rrset.signature_records()) {
                write_line(&mut out, &mut line, &record)?;
            }
        }
    }
    out.flush()
}

fn write_line(out: &mut impl Write, line: &mut String, record: &Record) -> io::Result<()> {
    line.clear();
    write_record(line, record);
    line.push('\n');
    out.write_all(line.as_bytes())
}
