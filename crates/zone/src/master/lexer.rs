//! Splits master-file text into entries and tokens (RFC 1035 section 5.1).
//!
//! An *entry* is one logical line: a directive or a record, continued over
//! line breaks inside parentheses. A *token* is a run of characters ended by
//! white space, a parenthesis, a comment or a line break, or a quoted
//! string. Escapes stay in the token text; whoever reads a token decides
//! what they mean, because names and character strings treat `.` apart.
//!
//! Limitations: parentheses do not nest (as in Knot and BIND).

/// One token of an entry, borrowed from the source text.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Token<'a> {
    /// Raw octets, escapes kept; for a quoted token, without the quotes.
    pub(crate) text: &'a [u8],
    /// True if the token was a quoted string.
    pub(crate) quoted: bool,
    /// Line number, counting from 1.
    pub(crate) line: u32,
}

impl Token<'_> {
    /// Returns true for an unquoted token with exactly `text`, ignoring case.
    pub(crate) fn is(&self, text: &[u8]) -> bool {
        !self.quoted && self.text.eq_ignore_ascii_case(text)
    }
}

/// Reason lexing ended with an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LexError {
    #[error("parentheses cannot nest")]
    NestedParenthesis,
    #[error("closing parenthesis without an opening one")]
    UnopenedParenthesis,
    #[error("missing closing parenthesis before the end of the file")]
    UnclosedParenthesis,
    #[error("missing closing quote before the end of the file")]
    UnclosedQuote,
    #[error("backslash at the end of the file")]
    DanglingBackslash,
}

/// The start of an entry returned by [`Lexer::next_entry`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct EntryHead {
    /// Line of the first token.
    pub(crate) line: u32,
    /// True if the physical line starts with white space, so the entry
    /// has no owner and takes the previous one.
    pub(crate) blank_owner: bool,
}

/// A lexer over the whole text of one file.
pub(crate) struct Lexer<'a> {
    src: &'a [u8],
    pos: usize,
    line: u32,
    line_start: usize,
}

impl<'a> Lexer<'a> {
    /// Creates a lexer; line numbers start at `first_line`.
    pub(crate) fn new(src: &'a [u8], first_line: u32) -> Self {
        Self {
            src,
            pos: 0,
            line: first_line,
            line_start: 0,
        }
    }

    /// Returns the current line number.
    pub(crate) fn line(&self) -> u32 {
        self.line
    }

    /// Fills `tokens` with the next entry; `Ok(None)` at the end of the text.
    pub(crate) fn next_entry(
        &mut self,
        tokens: &mut Vec<Token<'a>>,
    ) -> Result<Option<EntryHead>, LexError> {
        tokens.clear();
        let mut head = EntryHead {
            line: self.line,
            blank_owner: false,
        };
        let mut in_parens = false;
        while self.pos < self.src.len() {
            match self.src[self.pos] {
                b' ' | b'\t' | b'\r' => self.pos += 1,
                b'\n' => {
                    self.pos += 1;
                    self.line += 1;
                    self.line_start = self.pos;
                    if !in_parens && !tokens.is_empty() {
                        return Ok(Some(head));
                    }
                }
                b';' => {
                    while self.pos < self.src.len() && self.src[self.pos] != b'\n' {
                        self.pos += 1;
                    }
                }
                b'(' => {
                    if in_parens {
                        return Err(LexError::NestedParenthesis);
                    }
                    in_parens = true;
                    self.pos += 1;
                }
                b')' => {
                    if !in_parens {
                        return Err(LexError::UnopenedParenthesis);
                    }
                    in_parens = false;
                    self.pos += 1;
                }
                _ => {
                    if tokens.is_empty() {
                        head = EntryHead {
                            line: self.line,
                            blank_owner: self.pos > self.line_start
                                && matches!(self.src[self.line_start], b' ' | b'\t'),
                        };
                    }
                    let token = self.token()?;
                    tokens.push(token);
                }
            }
        }
        if in_parens {
            return Err(LexError::UnclosedParenthesis);
        }
        Ok(if tokens.is_empty() { None } else { Some(head) })
    }

    /// Reads one token starting at the current position.
    fn token(&mut self) -> Result<Token<'a>, LexError> {
        let line = self.line;
        if self.src[self.pos] == b'"' {
            let start = self.pos + 1;
            let end = self.quoted_end(start)?;
            self.pos = end + 1;
            return Ok(Token {
                text: &self.src[start..end],
                quoted: true,
                line,
            });
        }
        let start = self.pos;
        while self.pos < self.src.len() {
            match self.src[self.pos] {
                b' ' | b'\t' | b'\r' | b'\n' | b';' | b'(' | b')' => break,
                b'\\' => {
                    if self.pos + 1 >= self.src.len() {
                        return Err(LexError::DanglingBackslash);
                    }
                    if self.src[self.pos + 1] == b'\n' {
                        self.line += 1;
                    }
                    self.pos += 2;
                }
                // `key="value"` in SVCB parameters keeps its quoted value
                // inside the token.
                b'"' if self.pos > start && self.src[self.pos - 1] == b'=' => {
                    let end = self.quoted_end(self.pos + 1)?;
                    self.pos = end + 1;
                }
                b'"' => break,
                _ => self.pos += 1,
            }
        }
        Ok(Token {
            text: &self.src[start..self.pos],
            quoted: false,
            line,
        })
    }

    /// Returns the position of the quote that closes a string opened
    /// before `start`, counting the line breaks inside it.
    fn quoted_end(&mut self, start: usize) -> Result<usize, LexError> {
        let mut pos = start;
        while pos < self.src.len() {
            match self.src[pos] {
                b'"' => return Ok(pos),
                b'\\' => pos += 2,
                b'\n' => {
                    self.line += 1;
                    pos += 1;
                }
                _ => pos += 1,
            }
        }
        Err(LexError::UnclosedQuote)
    }
}

/// Splits a text that contains exactly one entry into tokens.
pub(crate) fn tokenize(text: &[u8]) -> Result<Vec<Token<'_>>, LexError> {
    let mut lexer = Lexer::new(text, 1);
    let mut all = Vec::new();
    let mut tokens = Vec::new();
    while lexer.next_entry(&mut tokens)?.is_some() {
        all.append(&mut tokens);
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(text: &str) -> Vec<(u32, bool, Vec<String>)> {
        let mut lexer = Lexer::new(text.as_bytes(), 1);
        let mut tokens = Vec::new();
        let mut out = Vec::new();
        while let Some(head) = lexer.next_entry(&mut tokens).unwrap() {
            let texts = tokens
                .iter()
                .map(|t| String::from_utf8_lossy(t.text).into_owned())
                .collect();
            out.push((head.line, head.blank_owner, texts));
        }
        out
    }

    #[test]
    fn parentheses_join_lines() {
        let found = entries("a NS ( x\n ; note\n y ) ; done\n\n b A 1\n");
        assert_eq!(found.len(), 2);
        assert_eq!(
            found[0],
            (
                1,
                false,
                vec!["a".into(), "NS".into(), "x".into(), "y".into()]
            )
        );
        assert_eq!(
            found[1],
            (5, true, vec!["b".into(), "A".into(), "1".into()])
        );
    }

    #[test]
    fn quotes_keep_semicolons_and_spaces() {
        let found = entries("a TXT \"x; y\" \"q\\\"\"\n");
        assert_eq!(found[0].2, vec!["a", "TXT", "x; y", "q\\\""]);
    }

    #[test]
    fn escaped_delimiters_stay_in_token() {
        let found = entries("a\\ b\\;c\\(d TXT x\n");
        assert_eq!(found[0].2[0], "a\\ b\\;c\\(d");
    }

    #[test]
    fn nested_parentheses_fail() {
        let mut lexer = Lexer::new(b"a NS ((x))\n", 1);
        let mut tokens = Vec::new();
        assert_eq!(
            lexer.next_entry(&mut tokens).unwrap_err(),
            LexError::NestedParenthesis
        );
    }
}
