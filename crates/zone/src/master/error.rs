//! Errors and warnings of master-file loading.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use domain::base::iana::{Class, Rtype};

use super::generate::GenerateError;
use super::lexer::LexError;
use crate::name::Name;
use crate::rdata::text::rtype_to_string;
use crate::rdata::{NameTextError, RdataError};

/// Source of an entry: a file (or `None` for text) and a line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    /// The file, or `None` for text given directly.
    pub path: Option<Arc<Path>>,
    /// Line number, counting from 1; 0 for a problem of the whole zone.
    pub line: u32,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.path {
            Some(path) => write!(f, "{}", path.display())?,
            None => f.write_str("<text>")?,
        }
        if self.line > 0 {
            write!(f, ":{}", self.line)?;
        }
        Ok(())
    }
}

/// A master file (or zone text) that could not be loaded.
///
/// Displays as `file:line: offending text: reason`, followed by a hint
/// where one helps.
#[derive(Debug, thiserror::Error)]
pub struct LoadError {
    /// The file and line of the offending entry.
    pub location: Location,
    /// The offending token or entry, as written; may be empty.
    pub text: String,
    /// Reason for the error.
    #[source]
    pub reason: LoadErrorKind,
}

impl LoadError {
    /// Returns the file, if the text came from one.
    pub fn path(&self) -> Option<&Path> {
        self.location.path.as_deref()
    }

    /// Returns the line number (0 for a problem of the whole zone).
    pub fn line(&self) -> u32 {
        self.location.line
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.location)?;
        if !self.text.is_empty() {
            write!(f, "{}: ", self.text)?;
        }
        write!(f, "{}", self.reason)?;
        if let Some(hint) = self.reason.hint() {
            write!(f, " ({hint})")?;
        }
        Ok(())
    }
}

/// The reason a load failed.
#[derive(Debug, thiserror::Error)]
pub enum LoadErrorKind {
    #[error("cannot read the file")]
    Io(#[source] std::io::Error),
    #[error("{0}")]
    Lex(#[source] LexError),
    #[error("invalid owner name")]
    Owner(#[source] NameTextError),
    #[error("no owner name: the first record starts with white space")]
    MissingOwner,
    #[error("unknown record type or missing record data")]
    UnknownType,
    #[error("record type {} cannot appear in a zone", rtype_to_string(*.0))]
    MetaType(Rtype),
    #[error("class {0} cannot appear in a zone")]
    MetaClass(Class),
    #[error("no TTL given and no $TTL or earlier TTL to inherit")]
    MissingTtl,
    #[error("invalid record data")]
    Rdata(#[source] RdataError),
    #[error("unknown directive")]
    UnknownDirective,
    #[error("invalid or missing {0} argument")]
    DirectiveArgument(&'static str),
    #[error("invalid origin")]
    Origin(#[source] NameTextError),
    #[error("$INCLUDE is not allowed here")]
    IncludeNotAllowed,
    #[error("$INCLUDE nests deeper than {0} files")]
    IncludeDepth(usize),
    #[error("more than {0} $INCLUDE directives in one zone")]
    TooManyIncludes(usize),
    #[error("$INCLUDE loop: the file includes itself")]
    IncludeLoop,
    #[error("not a regular file (a device, FIFO or folder); give a master file")]
    NotRegularFile,
    #[error("the file is larger than the limit of {0} octets")]
    TooLarge(u64),
    #[error("invalid $GENERATE")]
    Generate(#[source] GenerateError),
    #[error("{0}")]
    Check(#[source] CheckError),
}

impl LoadErrorKind {
    /// Returns advice for the operator, where there is some to give.
    fn hint(&self) -> Option<&'static str> {
        match self {
            Self::MissingTtl => Some("add a $TTL line at the top of the file"),
            Self::UnknownType => {
                Some("write unknown types as TYPEnnn with data as \\# length hex (RFC 3597)")
            }
            Self::MissingOwner => Some("start the first record in the first column"),
            Self::Check(CheckError::OutOfZone { .. }) => {
                Some("check $ORIGIN and names without a trailing dot")
            }
            _ => None,
        }
    }
}

/// A zone that breaks a rule of RFC 1034, 2181, 4035 or 6672.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckError {
    #[error("no SOA record at the zone apex {0}")]
    NoSoa(Name),
    #[error("SOA record at {owner}, which is not the zone apex {apex}")]
    SoaNotAtApex { owner: Name, apex: Name },
    #[error("more than one SOA record at {0}")]
    MultipleSoa(Name),
    #[error("{0} has a CNAME and other data")]
    CnameAndOtherData(Name),
    #[error("{0} has more than one CNAME record")]
    MultipleCnames(Name),
    #[error("{0} has more than one DNAME record")]
    MultipleDnames(Name),
    #[error("{0} has a DNAME and names below it")]
    DnameWithDescendants(Name),
    #[error("{0} has both NS and DNAME records below the apex")]
    NsBesideDname(Name),
    #[error("DS record at the zone apex {0}")]
    DsAtApex(Name),
    #[error("DS record at {0}, which is not a delegation: add its NS records or remove the DS")]
    DsWithoutDelegation(Name),
    #[error("{owner} is outside the zone {origin}")]
    OutOfZone { owner: Name, origin: Name },
    #[error("class {found} differs from the zone's class {expected}")]
    ClassMismatch { expected: Class, found: Class },
}

/// Something a load accepted but an operator should know about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadWarning {
    /// Place of the warning, with line 0 for the whole zone.
    pub location: Location,
    /// What happened.
    pub kind: WarningKind,
}

/// The kinds of [`LoadWarning`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WarningKind {
    /// Records of one RRset had different TTLs; all now use the smallest.
    TtlAdjusted { owner: Name, rtype: Rtype, ttl: u32 },
    /// DNSSEC records were dropped because the zone is to be signed.
    DnssecStripped { count: usize },
    /// No TTL and no $TTL was given, so the SOA MINIMUM field was used.
    TtlFromSoaMinimum { ttl: u32 },
}

impl fmt::Display for LoadWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.location)?;
        match &self.kind {
            WarningKind::TtlAdjusted { owner, rtype, ttl } => write!(
                f,
                "{owner} {}: records have different TTLs; all now use the smallest, {ttl}",
                rtype_to_string(*rtype)
            ),
            WarningKind::DnssecStripped { count } => write!(
                f,
                "dropped {count} DNSSEC records (DNSKEY, RRSIG, NSEC, NSEC3, NSEC3PARAM, CDS, \
                 CDNSKEY) because the zone is to be signed"
            ),
            WarningKind::TtlFromSoaMinimum { ttl } => write!(
                f,
                "no TTL and no $TTL given; using the SOA MINIMUM field, {ttl}"
            ),
        }
    }
}

/// Builds a [`Location`] for `path` and `line`.
pub(crate) fn location(path: Option<&Arc<Path>>, line: u32) -> Location {
    Location {
        path: path.cloned(),
        line,
    }
}

/// Turns an owned path into the shared form used in locations.
pub(crate) fn shared_path(path: &Path) -> Arc<Path> {
    Arc::from(PathBuf::from(path).into_boxed_path())
}
