//! Reads records from master-file text: directives, owners, TTLs, classes,
//! types and record data.
//!
//! The reader keeps a *scope* per file: the origin, the default TTL set by
//! `$TTL`, the last TTL and owner written, and the class. An included file
//! starts with a copy of the including file's scope (and the origin given
//! on the `$INCLUDE` line, if any); when it ends, the including file goes
//! on with its own scope unchanged.
//!
//! A record without TTL takes `$TTL`; without `$TTL`, the last TTL given
//! (RFC 1035 section 5.1); for the first SOA record without either, its
//! MINIMUM field (as BIND does, with a warning).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use domain::base::iana::{Class, Rtype};

use super::error::{location, shared_path, LoadError, LoadErrorKind, Location};
use super::generate::{self, GenerateError, Range};
use super::lexer::{EntryHead, Lexer, Token};
use super::MAX_QUOTED_LINE;
use crate::name::Name;
use crate::rdata::text::{parse_name_bytes, parse_rtype, parse_ttl_bytes, unescape_into};
use crate::rdata::{encode_tokens, Tokens};
use crate::record::Record;
use crate::zone::soa_minimum;

/// Settings that bound what a read may do.
#[derive(Clone, Debug)]
pub(crate) struct Limits {
    pub(crate) allow_include: bool,
    pub(crate) max_include_depth: usize,
    pub(crate) max_generate: u64,
    pub(crate) max_includes: usize,
    pub(crate) max_file_size: u64,
}

/// A record with the place it was read from.
#[derive(Clone, Debug)]
pub(crate) struct Located {
    pub(crate) record: Record,
    pub(crate) location: Location,
    /// True if the TTL came from the SOA MINIMUM field.
    pub(crate) ttl_from_soa: bool,
}

/// A consumer of records and errors; it returns false to stop the read.
pub(crate) type Sink<'s> = dyn FnMut(Result<Located, LoadError>) -> bool + 's;

/// The per-file reading state.
#[derive(Clone, Debug)]
struct Scope {
    origin: Name,
    default_ttl: Option<u32>,
    last_ttl: Option<u32>,
    last_owner: Option<Name>,
    last_class: Option<Class>,
}

/// Reads master files and passes each record (or error) to a sink.
pub(crate) struct Reader<'s, 'k> {
    limits: Limits,
    /// Canonical paths of the files being read, outermost first.
    open_files: Vec<PathBuf>,
    sink: &'k mut Sink<'s>,
    stopped: bool,
    rdata: Vec<u8>,
    /// Records produced by `$GENERATE` so far in this load.
    generated: u64,
    /// `$INCLUDE` directives followed so far in this load.
    includes: usize,
    /// Whether an entry of the file being read was accepted, which makes
    /// the file plausible zone text whose entries errors may quote.
    accepted_in_file: bool,
}

impl<'s, 'k> Reader<'s, 'k> {
    pub(crate) fn new(limits: Limits, sink: &'k mut Sink<'s>) -> Self {
        Self {
            limits,
            open_files: Vec::new(),
            sink,
            stopped: false,
            rdata: Vec::with_capacity(512),
            generated: 0,
            includes: 0,
            accepted_in_file: false,
        }
    }

    /// Reads a whole file.
    pub(crate) fn read_file(&mut self, path: &Path, origin: &Name) {
        let mut scope = Scope::new(origin.clone());
        let shared = shared_path(path);
        match read_regular_file(path, self.limits.max_file_size) {
            Ok(text) => {
                if let Ok(canonical) = path.canonicalize() {
                    self.open_files.push(canonical);
                }
                self.read_text(&text, Some(&shared), &mut scope);
            }
            Err(reason) => {
                self.emit(Err(LoadError {
                    location: location(Some(&shared), 0),
                    text: String::new(),
                    reason,
                }));
            }
        }
    }

    /// Reads text that did not come from a file; `base` names the file
    /// whose folder relative `$INCLUDE` paths start from.
    pub(crate) fn read_str(&mut self, text: &[u8], origin: &Name, base: Option<&Path>) {
        let mut scope = Scope::new(origin.clone());
        let shared = base.map(shared_path);
        self.read_text(text, shared.as_ref(), &mut scope);
    }

    /// Passes a result on; returns false once the sink wants no more.
    fn emit(&mut self, result: Result<Located, LoadError>) -> bool {
        if !self.stopped && !(self.sink)(result) {
            self.stopped = true;
        }
        !self.stopped
    }

    fn read_text(&mut self, text: &[u8], path: Option<&Arc<Path>>, scope: &mut Scope) {
        let outer_accepted = std::mem::replace(&mut self.accepted_in_file, false);
        self.read_entries(text, path, scope);
        self.accepted_in_file = outer_accepted;
    }

    fn read_entries(&mut self, text: &[u8], path: Option<&Arc<Path>>, scope: &mut Scope) {
        let mut lexer = Lexer::new(text, 1);
        let mut tokens: Vec<Token<'_>> = Vec::with_capacity(16);
        while !self.stopped {
            let head = match lexer.next_entry(&mut tokens) {
                Ok(Some(head)) => head,
                Ok(None) => break,
                Err(error) => {
                    // The lexer cannot find the next entry after this.
                    self.emit(Err(LoadError {
                        location: location(path, lexer.line()),
                        text: String::new(),
                        reason: LoadErrorKind::Lex(error),
                    }));
                    break;
                }
            };
            let is_directive =
                !head.blank_owner && !tokens[0].quoted && tokens[0].text.first() == Some(&b'$');
            if is_directive {
                match self.directive(&tokens, path, text, scope) {
                    Ok(()) => self.accepted_in_file = true,
                    Err((kind, at)) => {
                        let quote = self.accepted_in_file && quotable(text, &tokens, at);
                        self.emit(Err(entry_error(path, head, &tokens, at, kind, quote)));
                    }
                }
                continue;
            }
            let result = self
                .record(head, &tokens, scope)
                .map(|(record, ttl_from_soa)| Located {
                    record,
                    location: location(path, head.line),
                    ttl_from_soa,
                })
                .map_err(|(kind, at)| {
                    let quote = self.accepted_in_file && quotable(text, &tokens, at);
                    entry_error(path, head, &tokens, at, kind, quote)
                });
            if result.is_ok() {
                self.accepted_in_file = true;
            }
            self.emit(result);
        }
    }

    /// Handles `$ORIGIN`, `$TTL`, `$INCLUDE` and `$GENERATE`.
    fn directive(
        &mut self,
        tokens: &[Token<'_>],
        path: Option<&Arc<Path>>,
        file_text: &[u8],
        scope: &mut Scope,
    ) -> Result<(), (LoadErrorKind, usize)> {
        let name = tokens[0];
        if name.is(b"$ORIGIN") {
            let text = tokens
                .get(1)
                .ok_or((LoadErrorKind::DirectiveArgument("$ORIGIN"), 0))?;
            scope.origin = parse_name_bytes(text.text, &scope.origin)
                .map_err(|error| (LoadErrorKind::Origin(error), 1))?;
            extra_arguments(tokens, 2)
        } else if name.is(b"$TTL") {
            let text = tokens
                .get(1)
                .ok_or((LoadErrorKind::DirectiveArgument("$TTL"), 0))?;
            let ttl =
                parse_ttl_bytes(text.text).ok_or((LoadErrorKind::DirectiveArgument("$TTL"), 1))?;
            scope.default_ttl = Some(ttl);
            scope.last_ttl = Some(ttl);
            extra_arguments(tokens, 2)
        } else if name.is(b"$INCLUDE") {
            self.include(tokens, path, scope)
        } else if name.is(b"$GENERATE") {
            self.generate(tokens, path, file_text, scope)
        } else {
            Err((LoadErrorKind::UnknownDirective, 0))
        }
    }

    fn include(
        &mut self,
        tokens: &[Token<'_>],
        path: Option<&Arc<Path>>,
        scope: &Scope,
    ) -> Result<(), (LoadErrorKind, usize)> {
        if !self.limits.allow_include {
            return Err((LoadErrorKind::IncludeNotAllowed, 0));
        }
        let file = tokens
            .get(1)
            .ok_or((LoadErrorKind::DirectiveArgument("$INCLUDE"), 0))?;
        let mut file_name = Vec::new();
        unescape_into(file.text, &mut file_name)
            .map_err(|_| (LoadErrorKind::DirectiveArgument("$INCLUDE file"), 1))?;
        let file_name = PathBuf::from(String::from_utf8_lossy(&file_name).into_owned());
        let target = match path.and_then(|path| path.parent()) {
            Some(folder) if file_name.is_relative() => folder.join(&file_name),
            _ => file_name,
        };
        let mut child = scope.clone();
        if let Some(origin) = tokens.get(2) {
            child.origin = parse_name_bytes(origin.text, &scope.origin)
                .map_err(|error| (LoadErrorKind::Origin(error), 2))?;
        }
        extra_arguments(tokens, 3)?;
        self.includes += 1;
        if self.includes > self.limits.max_includes {
            return Err((LoadErrorKind::TooManyIncludes(self.limits.max_includes), 1));
        }
        if self.open_files.len() > self.limits.max_include_depth {
            return Err((
                LoadErrorKind::IncludeDepth(self.limits.max_include_depth),
                1,
            ));
        }
        let canonical = target
            .canonicalize()
            .map_err(|error| (LoadErrorKind::Io(error), 1))?;
        if self.open_files.contains(&canonical) {
            return Err((LoadErrorKind::IncludeLoop, 1));
        }
        let text = read_regular_file(&canonical, self.limits.max_file_size)
            .map_err(|reason| (reason, 1))?;
        self.open_files.push(canonical);
        self.read_text(&text, Some(&shared_path(&target)), &mut child);
        self.open_files.pop();
        Ok(())
    }

    fn generate(
        &mut self,
        tokens: &[Token<'_>],
        path: Option<&Arc<Path>>,
        file_text: &[u8],
        scope: &mut Scope,
    ) -> Result<(), (LoadErrorKind, usize)> {
        let fail = |error: GenerateError, at: usize| (LoadErrorKind::Generate(error), at);
        let range_token = tokens.get(1).ok_or(fail(GenerateError::Range, 0))?;
        let range = Range::parse(range_token.text).map_err(|error| fail(error, 1))?;
        self.generated = self.generated.saturating_add(range.count());
        if self.generated > self.limits.max_generate {
            return Err(fail(GenerateError::TooMany(self.limits.max_generate), 1));
        }
        if tokens.len() < 5 {
            return Err(fail(GenerateError::Missing, 0));
        }
        let owner_template = tokens[2].text;
        generate::check_template(owner_template).map_err(|error| fail(error, 2))?;
        // TTL, class and type are copied; everything after the type is
        // the data template, one quoted string or several tokens.
        let type_index = (3..tokens.len() - 1)
            .find(|&index| parse_rtype(tokens[index].text).is_some())
            .ok_or(fail(GenerateError::Missing, 0))?;
        let middle = &tokens[3..=type_index];
        let mut data_template = Vec::new();
        match &tokens[type_index + 1..] {
            [single] => data_template.extend_from_slice(single.text),
            several => generate::join_tokens(several, &mut data_template),
        }
        generate::check_template(&data_template).map_err(|error| fail(error, tokens.len() - 1))?;

        let line = range_token.line;
        let mut text = Vec::with_capacity(128);
        for value in range.values() {
            text.clear();
            generate::expand(owner_template, value, &mut text).map_err(|error| fail(error, 2))?;
            text.push(b' ');
            generate::join_tokens(middle, &mut text);
            text.push(b' ');
            generate::expand(&data_template, value, &mut text).map_err(|error| fail(error, 0))?;
            text.push(b'\n');
            let mut lexer = Lexer::new(&text, line);
            let mut generated = Vec::with_capacity(8);
            let head = match lexer.next_entry(&mut generated) {
                Ok(Some(head)) => head,
                Ok(None) => return Err(fail(GenerateError::Missing, 0)),
                Err(error) => return Err((LoadErrorKind::Lex(error), 0)),
            };
            let result = self
                .record(head, &generated, scope)
                .map(|(record, ttl_from_soa)| Located {
                    record,
                    location: location(path, line),
                    ttl_from_soa,
                })
                .map_err(|(kind, at)| {
                    let quote = self.accepted_in_file && plain_line(file_text, line);
                    entry_error(path, head, &generated, at, kind, quote)
                });
            if !self.emit(result) {
                break;
            }
        }
        Ok(())
    }

    /// Parses one record entry.
    fn record(
        &mut self,
        head: EntryHead,
        tokens: &[Token<'_>],
        scope: &mut Scope,
    ) -> Result<(Record, bool), (LoadErrorKind, usize)> {
        let mut index = 0;
        let owner = if head.blank_owner {
            scope
                .last_owner
                .clone()
                .ok_or((LoadErrorKind::MissingOwner, 0))?
        } else {
            index = 1;
            parse_name_bytes(tokens[0].text, &scope.origin)
                .map_err(|error| (LoadErrorKind::Owner(error), 0))?
        };
        scope.last_owner = Some(owner.clone());

        // TTL and class come in either order, each at most once.
        let mut ttl = None;
        let mut class = None;
        while index < tokens.len() && (ttl.is_none() || class.is_none()) {
            let token = &tokens[index];
            if class.is_none() {
                if let Some(found) = parse_class(token) {
                    class = Some(found);
                    index += 1;
                    continue;
                }
            }
            if ttl.is_none() && token.text.first().is_some_and(u8::is_ascii_digit) {
                ttl = Some(
                    parse_ttl_bytes(token.text)
                        .ok_or((LoadErrorKind::DirectiveArgument("TTL"), index))?,
                );
                index += 1;
                continue;
            }
            break;
        }
        let class = class.or(scope.last_class).unwrap_or(Class::IN);
        if class == Class::ANY || class == Class::NONE {
            return Err((LoadErrorKind::MetaClass(class), index.saturating_sub(1)));
        }
        scope.last_class = Some(class);

        let type_token = tokens.get(index).ok_or((LoadErrorKind::UnknownType, 0))?;
        let rtype = parse_rtype(type_token.text).ok_or((LoadErrorKind::UnknownType, index))?;
        if is_meta_type(rtype) {
            return Err((LoadErrorKind::MetaType(rtype), index));
        }
        let data_start = index + 1;
        let mut cursor = Tokens::new(&tokens[data_start..]);
        encode_tokens(rtype, &mut cursor, &scope.origin, &mut self.rdata)
            .map_err(|error| (LoadErrorKind::Rdata(error), data_start + cursor.position()))?;

        let mut ttl_from_soa = false;
        let ttl = match ttl.or(scope.default_ttl).or(scope.last_ttl) {
            Some(ttl) => ttl,
            None if rtype == Rtype::SOA => {
                ttl_from_soa = true;
                soa_minimum(&self.rdata).ok_or((LoadErrorKind::MissingTtl, 0))?
            }
            None => return Err((LoadErrorKind::MissingTtl, 0)),
        };
        scope.last_ttl = Some(ttl);
        let record = Record {
            owner,
            class,
            ttl,
            rtype,
            rdata: Bytes::copy_from_slice(&self.rdata),
        };
        Ok((record, ttl_from_soa))
    }
}

impl Scope {
    fn new(origin: Name) -> Self {
        Self {
            origin,
            default_ttl: None,
            last_ttl: None,
            last_owner: None,
            last_class: None,
        }
    }
}

/// Rejects arguments from `from` on.
fn extra_arguments(tokens: &[Token<'_>], from: usize) -> Result<(), (LoadErrorKind, usize)> {
    if tokens.len() > from {
        return Err((LoadErrorKind::DirectiveArgument("extra"), from));
    }
    Ok(())
}

/// Parses a class mnemonic or `CLASSnnn`.
fn parse_class(token: &Token<'_>) -> Option<Class> {
    if token.quoted {
        return None;
    }
    let text = token.text;
    if text.len() > 5 && text[..5].eq_ignore_ascii_case(b"CLASS") {
        let value = crate::rdata::text::parse_decimal(&text[5..])?;
        return u16::try_from(value).ok().map(Class::from_int);
    }
    Class::from_mnemonic(text)
}

/// Returns true for types that only exist in queries or transfers.
fn is_meta_type(rtype: Rtype) -> bool {
    matches!(rtype.to_int(), 0 | 41 | 249..=255)
}

/// Builds the error for an entry, quoting the token at `at`.
/// Opens `path` without blocking, checks that the open file is a regular
/// file no larger than `limit` octets, and reads it.
fn read_regular_file(path: &Path, limit: u64) -> Result<Vec<u8>, LoadErrorKind> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;

    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(LoadErrorKind::Io)?;
    // The checks apply to what was opened, not to what the path named
    // before: the file may have been replaced in between.
    let metadata = file.metadata().map_err(LoadErrorKind::Io)?;
    if !metadata.is_file() {
        return Err(LoadErrorKind::NotRegularFile);
    }
    if metadata.len() > limit {
        return Err(LoadErrorKind::TooLarge(limit));
    }
    let mut text = Vec::with_capacity(metadata.len() as usize);
    // A file that grows while it is read stops one octet past the limit.
    file.take(limit.saturating_add(1))
        .read_to_end(&mut text)
        .map_err(LoadErrorKind::Io)?;
    if text.len() as u64 > limit {
        return Err(LoadErrorKind::TooLarge(limit));
    }
    Ok(text)
}

/// Returns true if line `line` (counting from 1) of `text` is valid UTF-8
/// without control characters other than tab and carriage return, and at
/// most [`MAX_QUOTED_LINE`] characters long.
fn plain_line(text: &[u8], line: u32) -> bool {
    let Some(bytes) = text
        .split(|&byte| byte == b'\n')
        .nth(line.saturating_sub(1) as usize)
    else {
        return false;
    };
    match std::str::from_utf8(bytes) {
        Ok(line) => {
            line.chars().count() <= MAX_QUOTED_LINE
                && !line
                    .chars()
                    .any(|c| c.is_control() && c != '\t' && c != '\r')
        }
        Err(_) => false,
    }
}

/// Returns true if an error at token `at` may quote it: its line is plain
/// text.
fn quotable(text: &[u8], tokens: &[Token<'_>], at: usize) -> bool {
    tokens
        .get(at)
        .is_some_and(|token| plain_line(text, token.line))
}

fn entry_error(
    path: Option<&Arc<Path>>,
    head: EntryHead,
    tokens: &[Token<'_>],
    at: usize,
    reason: LoadErrorKind,
    quote: bool,
) -> LoadError {
    let (text, line) = match tokens.get(at) {
        Some(token) if quote => (String::from_utf8_lossy(token.text).into_owned(), token.line),
        Some(token) => (String::new(), token.line),
        None => (String::new(), head.line),
    };
    LoadError {
        location: location(path, line),
        text,
        reason,
    }
}
