//! Resource records and RRsets with record data kept in wire format.
//!
//! Record data (RDATA) is stored as the uncompressed wire octets read from
//! the master file or the network. Names inside RDATA keep their case; the
//! canonical form of RFC 4034 section 6.2 is produced on demand by
//! [`canonical_rdata`] when signing or comparing.

use std::borrow::Cow;

use bytes::Bytes;
use domain::base::iana::{Class, Rtype};

use crate::name::Name;

/// One resource record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub owner: Name,
    pub class: Class,
    pub ttl: u32,
    pub rtype: Rtype,
    /// Uncompressed wire-format RDATA.
    pub rdata: Bytes,
}

/// All records of one owner, class and type, with the RRSIGs that cover them.
///
/// `rdatas` is kept sorted in canonical RDATA order (RFC 4034 section 6.3)
/// and free of duplicates, so the RRset's wire form for signing is a simple
/// concatenation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rrset {
    pub owner: Name,
    pub class: Class,
    pub rtype: Rtype,
    pub ttl: u32,
    pub rdatas: Vec<Bytes>,
    /// RDATA of the RRSIG records covering this RRset, each with `ttl`.
    pub signatures: Vec<Bytes>,
}

impl Rrset {
    /// Creates an empty RRset.
    pub fn new(owner: Name, class: Class, rtype: Rtype, ttl: u32) -> Self {
        Self {
            owner,
            class,
            rtype,
            ttl,
            rdatas: Vec::new(),
            signatures: Vec::new(),
        }
    }

    /// Adds the RDATA of an RRSIG record covering this RRset.
    pub fn push_signature(&mut self, rdata: Bytes) {
        reserve_one(&mut self.signatures);
        self.signatures.push(rdata);
    }

    /// Adds `rdata` in canonical position; returns false if it was already present.
    pub fn insert(&mut self, rdata: Bytes) -> bool {
        let key = canonical_rdata(self.rtype, &rdata);
        let found = self.rdatas.binary_search_by(|probe| {
            canonical_rdata(self.rtype, probe)
                .as_ref()
                .cmp(key.as_ref())
        });
        match found {
            Ok(_) => false,
            Err(pos) => {
                reserve_one(&mut self.rdatas);
                self.rdatas.insert(pos, rdata);
                true
            }
        }
    }

    /// Returns the records of this RRset, without signatures.
    pub fn records(&self) -> impl Iterator<Item = Record> + '_ {
        self.rdatas.iter().map(|rdata| Record {
            owner: self.owner.clone(),
            class: self.class,
            ttl: self.ttl,
            rtype: self.rtype,
            rdata: rdata.clone(),
        })
    }

    /// Returns the RRSIG records covering this RRset.
    pub fn signature_records(&self) -> impl Iterator<Item = Record> + '_ {
        self.signatures.iter().map(|rdata| Record {
            owner: self.owner.clone(),
            class: self.class,
            ttl: self.ttl,
            rtype: Rtype::RRSIG,
            rdata: rdata.clone(),
        })
    }
}

/// Makes room for one more element. A vector grows one slot at a time up
/// to four and doubles after that. Most names own one or two RRsets and
/// most RRsets contain one or two records, so the default first allocation
/// of four slots would leave much of a large zone's memory unused.
pub fn reserve_one<T>(vec: &mut Vec<T>) {
    if vec.len() == vec.capacity() {
        let extra = if vec.len() < 4 { 1 } else { vec.len() };
        vec.reserve_exact(extra);
    }
}

/// Returns where the names sit in the RDATA of types whose embedded names
/// are folded to lower case in canonical form: the list of RFC 4034
/// section 6.2 as corrected by RFC 6840 section 5.1, which keeps RRSIG in
/// the list and takes NSEC and HINFO out.
fn names_in_canonical_rdata(rtype: Rtype) -> Option<&'static [Field]> {
    use Field::*;
    let layout: &'static [Field] = match rtype {
        Rtype::NS
        | Rtype::MD
        | Rtype::MF
        | Rtype::CNAME
        | Rtype::MB
        | Rtype::MG
        | Rtype::MR
        | Rtype::PTR
        | Rtype::DNAME => &[Name],
        Rtype::SOA => &[Name, Name],
        Rtype::MINFO | Rtype::RP => &[Name, Name],
        Rtype::MX | Rtype::AFSDB | Rtype::RT | Rtype::KX => &[Fixed(2), Name],
        Rtype::PX => &[Fixed(2), Name, Name],
        Rtype::SRV => &[Fixed(6), Name],
        Rtype::RRSIG | Rtype::SIG => &[Fixed(18), Name],
        Rtype::NXT => &[Name],
        Rtype::NAPTR => &[Fixed(4), CharStr, CharStr, CharStr, Name],
        _ => return None,
    };
    Some(layout)
}

#[derive(Clone, Copy)]
enum Field {
    Name,
    Fixed(usize),
    CharStr,
}

/// Returns RDATA in canonical form, with the embedded names of the types
/// listed in RFC 4034 section 6.2 (as corrected by RFC 6840 section 5.1)
/// folded to lower case. Other types, and malformed RDATA, come back as they are.
pub fn canonical_rdata(rtype: Rtype, rdata: &[u8]) -> Cow<'_, [u8]> {
    let unchanged = Cow::Borrowed(rdata);
    let Some(layout) = names_in_canonical_rdata(rtype) else {
        return unchanged;
    };
    if !rdata.iter().any(u8::is_ascii_uppercase) {
        return unchanged;
    }
    let mut out = rdata.to_vec();
    let mut pos = 0;
    for field in layout {
        match field {
            Field::Fixed(len) => pos += len,
            Field::CharStr => match out.get(pos) {
                Some(&len) => pos += 1 + len as usize,
                None => return unchanged,
            },
            Field::Name => {
                let Ok(len) = crate::name::wire_name_len(out.get(pos..).unwrap_or_default()) else {
                    return unchanged;
                };
                out[pos..pos + len].make_ascii_lowercase();
                pos += len;
            }
        }
    }
    Cow::Owned(out)
}
