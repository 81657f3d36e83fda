//! Master files (RFC 1035 section 5): reading them into zones and writing
//! zones back out.
//!
//! Reading supports `$ORIGIN`, `$TTL`, `$INCLUDE` (relative to the folder
//! of the including file, limited in depth, loops rejected) and BIND's
//! `$GENERATE`; TTL units (`1h30m`); `\DDD` and `\X` escapes; quoted
//! strings; parentheses; `@`; TTL and class in either order; RFC 3597
//! unknown types and generic data. Loading is all-or-nothing: the first
//! error ends it and no zone is returned.
//!
//! Writing puts one record per line with absolute owner names, each RRset
//! followed by its RRSIGs, in a form that BIND, Knot and ldns read back.
//!
//! Every file, the top one and each `$INCLUDE` target, is opened without
//! blocking, must be a regular file, and must be no larger than
//! [`LoadOptions::max_file_size`], checked before it is read. An error
//! quotes the offending text only once an earlier entry of the same file
//! was read, and only from a line of plain text of at most
//! [`MAX_QUOTED_LINE`] characters, so that a file which is not a zone file
//! never has its contents repeated in a message.
//!
//! Limitations: text given as a string has no folder, so relative
//! `$INCLUDE` paths in it start from the process's working directory; set
//! [`LoadOptions::allow_include`] to false for text from untrusted sources.

pub mod error;
pub(crate) mod generate;
pub(crate) mod lexer;
pub(crate) mod reader;
mod writer;

use std::path::Path;

use crate::check::ZoneBuilder;
use crate::name::Name;
use crate::record::Record;
use crate::zone::Zone;
use error::{shared_path, Location};
pub use error::{CheckError, LoadError, LoadErrorKind, LoadWarning, WarningKind};
pub use generate::GenerateError;
pub use lexer::LexError;
use reader::{Limits, Located, Reader};
pub use writer::{node_to_text, record_to_string, write_zone};

/// Default of [`LoadOptions::max_file_size`]: 1 GiB.
pub const DEFAULT_MAX_FILE_SIZE: u64 = 1 << 30;

/// Longest line, in characters, whose text an error may quote.
pub const MAX_QUOTED_LINE: usize = 256;

/// Options for loading a zone.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// Drop DNSKEY, RRSIG, NSEC, NSEC3, NSEC3PARAM, CDS and CDNSKEY records,
    /// for input that is to be signed. One warning counts them.
    pub strip_dnssec: bool,
    /// Follow `$INCLUDE`; when false, the directive is an error.
    pub allow_include: bool,
    /// Maximum nesting of `$INCLUDE` files.
    pub max_include_depth: usize,
    /// Maximum number of records all `$GENERATE` directives of one load
    /// may produce together.
    pub max_generate: u64,
    /// Maximum number of `$INCLUDE` directives followed in one load, which
    /// bounds files that include others many times over.
    pub max_includes: usize,
    /// Largest file, in octets, that is read, for the top file and for
    /// each `$INCLUDE` target alike.
    pub max_file_size: u64,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            strip_dnssec: false,
            allow_include: true,
            max_include_depth: 16,
            max_generate: 1 << 20,
            max_includes: 1000,
            max_file_size: DEFAULT_MAX_FILE_SIZE,
        }
    }
}

impl LoadOptions {
    fn limits(&self) -> Limits {
        Limits {
            allow_include: self.allow_include,
            max_include_depth: self.max_include_depth,
            max_generate: self.max_generate,
            max_includes: self.max_includes,
            max_file_size: self.max_file_size,
        }
    }
}

/// A zone read from a master file, with the warnings raised on the way.
#[derive(Clone, Debug)]
pub struct LoadedZone {
    pub zone: Zone,
    pub warnings: Vec<LoadWarning>,
}

/// Loads and checks the zone `origin` from the master file at `path`.
pub fn load_zone_file(
    path: &Path,
    origin: &Name,
    options: &LoadOptions,
) -> Result<LoadedZone, LoadError> {
    let top = Location {
        path: Some(shared_path(path)),
        line: 0,
    };
    build(origin, options, top, |reader| {
        reader.read_file(path, origin)
    })
}

/// Loads and checks the zone `origin` from master-file text.
pub fn load_zone_str(
    text: &str,
    origin: &Name,
    options: &LoadOptions,
) -> Result<LoadedZone, LoadError> {
    let top = Location {
        path: None,
        line: 0,
    };
    build(origin, options, top, |reader| {
        reader.read_str(text.as_bytes(), origin, None)
    })
}

/// Runs `read` and feeds its records through the semantic checks.
fn build(
    origin: &Name,
    options: &LoadOptions,
    top: Location,
    read: impl FnOnce(&mut Reader<'_, '_>),
) -> Result<LoadedZone, LoadError> {
    let mut builder = ZoneBuilder::new(origin.clone(), options.strip_dnssec, top);
    let mut failure = None;
    let mut sink = |result: Result<Located, LoadError>| match result
        .and_then(|located| builder.add(located))
    {
        Ok(()) => true,
        Err(error) => {
            failure = Some(error);
            false
        }
    };
    let mut reader = Reader::new(options.limits(), &mut sink);
    read(&mut reader);
    drop(reader);
    if let Some(error) = failure {
        return Err(error);
    }
    builder.finish()
}

/// Reads the records of a master file without semantic checks; the first
/// syntax error ends the read.
pub fn read_records_file(path: &Path, origin: &Name) -> Result<Vec<Record>, LoadError> {
    let mut records = Vec::new();
    let mut failure = None;
    let mut sink = |result: Result<Located, LoadError>| match result {
        Ok(located) => {
            records.push(located.record);
            true
        }
        Err(error) => {
            failure = Some(error);
            false
        }
    };
    let mut reader = Reader::new(LoadOptions::default().limits(), &mut sink);
    reader.read_file(path, origin);
    drop(reader);
    match failure {
        Some(error) => Err(error),
        None => Ok(records),
    }
}

/// Reads master-file text entry by entry, passing each record or error to
/// `each`, which returns false to stop. Unlike the loaders, reading goes
/// on after an error in one entry. `file` is where the text came from: it
/// is named in errors and relative `$INCLUDE` paths start from its folder.
pub fn scan_records(
    text: &str,
    origin: &Name,
    file: Option<&Path>,
    mut each: impl FnMut(Result<Record, LoadError>) -> bool,
) {
    let mut sink = |result: Result<Located, LoadError>| each(result.map(|located| located.record));
    let mut reader = Reader::new(LoadOptions::default().limits(), &mut sink);
    reader.read_str(text.as_bytes(), origin, file);
}
