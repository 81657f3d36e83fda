//! Just enough of the DNS presentation format to turn the test vectors into
//! wire-format records and RRSIG signature data.

use data_encoding::{BASE64, HEXLOWER_PERMISSIVE};
use keymaster_zone::{canonical_rdata, Name, Rtype};

/// Parses an absolute name such as `www.example.net.`.
pub(crate) fn name(text: &str) -> Name {
    let text = text.trim_end_matches('.');
    if text.is_empty() {
        return Name::root();
    }
    Name::from_labels(text.split('.').map(str::as_bytes)).expect("valid test name")
}

/// Decodes base64 that may be split by white space.
pub(crate) fn base64(text: &str) -> Vec<u8> {
    let joined: String = text.split_whitespace().collect();
    BASE64.decode(joined.as_bytes()).expect("valid base64")
}

/// Decodes hex that may be split by white space, in either case.
pub(crate) fn hex(text: &str) -> Vec<u8> {
    let joined: String = text.split_whitespace().collect();
    HEXLOWER_PERMISSIVE
        .decode(joined.as_bytes())
        .expect("valid hex")
}

/// One record of a vector file.
#[derive(Clone, Debug)]
pub(crate) struct TextRecord {
    pub(crate) owner: Name,
    pub(crate) rtype: String,
    /// RDATA fields, with quoted strings kept whole and without quotes.
    pub(crate) fields: Vec<String>,
}

/// Splits record text into fields: drops comments and parentheses and keeps
/// quoted strings together.
pub(crate) fn tokens(text: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                if quoted {
                    tokens.push(std::mem::take(&mut current));
                }
                quoted = !quoted;
            }
            _ if quoted => current.push(c),
            ';' => {
                // Skip the comment up to the end of the line.
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
                if !current.is_empty() {
                    tokens.push(std::mem::take(&mut current));
                }
            }
            '(' | ')' | ' ' | '\t' | '\n' | '\r' => {
                if !current.is_empty() {
                    tokens.push(std::mem::take(&mut current));
                }
            }
            _ => current.push(c),
        }
    }
    if !current.is_empty() {
        tokens.push(current);
    }
    tokens
}

/// Parses one record `owner [ttl] [IN] TYPE rdata...`, skipping the TTL.
pub(crate) fn record(text: &str) -> TextRecord {
    let tokens = tokens(text);
    let mut tokens = tokens.into_iter();
    let owner = name(&tokens.next().expect("owner"));
    let mut next = tokens.next().expect("type");
    while next == "IN" || next.parse::<u32>().is_ok() {
        next = tokens.next().expect("type");
    }
    TextRecord {
        owner,
        rtype: next,
        fields: tokens.collect(),
    }
}

/// Returns the type number of a mnemonic.
pub(crate) fn rtype_number(mnemonic: &str) -> u16 {
    match mnemonic {
        "A" => 1,
        "NS" => 2,
        "AAAA" => 28,
        "NSEC" => 47,
        "SOA" => 6,
        "MX" => 15,
        "HINFO" => 13,
        "DS" => 43,
        "RRSIG" => 46,
        "DNSKEY" => 48,
        other => panic!("type {other} is not used by the vectors"),
    }
}

/// Encodes the RDATA of the record types the vectors use.
pub(crate) fn rdata(record: &TextRecord) -> Vec<u8> {
    let f = &record.fields;
    let mut out = Vec::new();
    match record.rtype.as_str() {
        "A" => {
            for part in f[0].split('.') {
                out.push(part.parse::<u8>().expect("IPv4 octet"));
            }
        }
        "AAAA" => {
            let address: std::net::Ipv6Addr = f[0].parse().expect("IPv6 address");
            out.extend_from_slice(&address.octets());
        }
        "NS" => out.extend_from_slice(name(&f[0]).as_wire()),
        "NSEC" => {
            out.extend_from_slice(name(&f[0]).as_wire());
            out.extend_from_slice(&type_bitmap(&f[1..]));
        }
        "MX" => {
            out.extend_from_slice(&f[0].parse::<u16>().expect("preference").to_be_bytes());
            out.extend_from_slice(name(&f[1]).as_wire());
        }
        "SOA" => {
            out.extend_from_slice(name(&f[0]).as_wire());
            out.extend_from_slice(name(&f[1]).as_wire());
            for value in &f[2..7] {
                out.extend_from_slice(&value.parse::<u32>().expect("SOA number").to_be_bytes());
            }
        }
        "HINFO" => {
            for string in &f[0..2] {
                out.push(string.len() as u8);
                out.extend_from_slice(string.as_bytes());
            }
        }
        "DNSKEY" => {
            out.extend_from_slice(&f[0].parse::<u16>().expect("flags").to_be_bytes());
            out.push(f[1].parse().expect("protocol"));
            out.push(f[2].parse().expect("algorithm"));
            out.extend_from_slice(&base64(&f[3..].join("")));
        }
        "DS" => {
            out.extend_from_slice(&f[0].parse::<u16>().expect("key tag").to_be_bytes());
            out.push(algorithm_number(&f[1]));
            out.push(f[2].parse().expect("digest type"));
            out.extend_from_slice(&hex(&f[3..].join("")));
        }
        other => panic!("type {other} is not used by the vectors"),
    }
    out
}

/// Encodes an NSEC type bitmap (RFC 4034 section 4.1.2).
fn type_bitmap(types: &[String]) -> Vec<u8> {
    let mut windows = std::collections::BTreeMap::<u8, [u8; 32]>::new();
    for mnemonic in types {
        let number = rtype_number(mnemonic);
        let window = windows.entry((number >> 8) as u8).or_insert([0; 32]);
        let low = usize::from(number as u8);
        window[low / 8] |= 0x80 >> (low % 8);
    }
    let mut out = Vec::new();
    for (window, bits) in windows {
        let len = bits.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
        out.push(window);
        out.push(len as u8);
        out.extend_from_slice(&bits[..len]);
    }
    out
}

fn algorithm_number(text: &str) -> u8 {
    match text {
        "RSASHA1" => 5,
        _ => text.parse().expect("algorithm number"),
    }
}

/// The fields of an RRSIG record.
#[derive(Clone, Debug)]
pub(crate) struct Rrsig {
    pub(crate) type_covered: u16,
    pub(crate) algorithm: u8,
    pub(crate) labels: u8,
    pub(crate) original_ttl: u32,
    pub(crate) expiration: u32,
    pub(crate) inception: u32,
    pub(crate) key_tag: u16,
    pub(crate) signer: Name,
    pub(crate) signature: Vec<u8>,
}

impl Rrsig {
    /// Reads the RDATA fields of an RRSIG record.
    pub(crate) fn from_record(record: &TextRecord) -> Self {
        let f = &record.fields;
        Self {
            type_covered: rtype_number(&f[0]),
            algorithm: f[1].parse().expect("algorithm"),
            labels: f[2].parse().expect("labels"),
            original_ttl: f[3].parse().expect("original TTL"),
            expiration: time(&f[4]),
            inception: time(&f[5]),
            key_tag: f[6].parse().expect("key tag"),
            signer: name(&f[7]),
            signature: base64(&f[8..].join("")),
        }
    }

    /// Builds the data an RRSIG signs (RFC 4034 section 3.1.8.1): the RRSIG
    /// RDATA without the signature, then each record of the RRset in
    /// canonical form and order.
    pub(crate) fn signed_data(&self, owner: &Name, rdatas: &[Vec<u8>]) -> Vec<u8> {
        let mut data = Vec::new();
        data.extend_from_slice(&self.type_covered.to_be_bytes());
        data.push(self.algorithm);
        data.push(self.labels);
        data.extend_from_slice(&self.original_ttl.to_be_bytes());
        data.extend_from_slice(&self.expiration.to_be_bytes());
        data.extend_from_slice(&self.inception.to_be_bytes());
        data.extend_from_slice(&self.key_tag.to_be_bytes());
        data.extend_from_slice(self.signer.to_lowercase().as_wire());

        let rtype = Rtype::from_int(self.type_covered);
        let mut canonical: Vec<Vec<u8>> = rdatas
            .iter()
            .map(|rdata| canonical_rdata(rtype, &bytes::Bytes::copy_from_slice(rdata)).to_vec())
            .collect();
        canonical.sort();
        canonical.dedup();
        for rdata in canonical {
            data.extend_from_slice(owner.to_lowercase().as_wire());
            data.extend_from_slice(&self.type_covered.to_be_bytes());
            data.extend_from_slice(&1u16.to_be_bytes());
            data.extend_from_slice(&self.original_ttl.to_be_bytes());
            data.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
            data.extend_from_slice(&rdata);
        }
        data
    }
}

/// Parses an RRSIG time, either `YYYYMMDDHHMMSS` or decimal seconds.
pub(crate) fn time(text: &str) -> u32 {
    if text.len() != 14 {
        return text.parse().expect("RRSIG time in seconds");
    }
    let field = |range: std::ops::Range<usize>| text[range].parse::<i64>().expect("digits");
    let (year, month, day) = (field(0..4), field(4..6), field(6..8));
    // Days from 1970-01-01, counting years from March (leap day last).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y / 400;
    let year_of_era = y - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    let days = era * 146_097 + day_of_era - 719_468;
    let seconds = days * 86_400 + field(8..10) * 3600 + field(10..12) * 60 + field(12..14);
    seconds as u32
}

#[test]
fn time_matches_known_epochs() {
    // Values printed in RFC 8080 section 6 in both forms.
    assert_eq!(time("20150819220000"), 1_440_021_600);
    assert_eq!(time("20150729220000"), 1_438_207_200);
    assert_eq!(time("1440021600"), 1_440_021_600);
}
