//! The lexer proper: a cursor over one word that handles quotes, escapes,
//! `$name`/`${name}` and word splitting, recording every name it looks up.
//! Modifiers inside `${…}` live in `subst`.

use std::collections::BTreeSet;

use super::{Lexer, ShellError, VarLookup, MAX_EXPANSION_LEN, MAX_NESTING};

/// Word-splitting state: text from quotes, escapes and literal characters is
/// "raw" (never splits); the value of an unquoted `$` expansion splits at whitespace.
/// Empty words are never produced. The parser's heredoc lexer shares it.
#[derive(Default)]
pub(crate) struct Words {
    word: String,
    words: Vec<String>,
    in_word: bool,
}

impl Words {
    pub(crate) fn add_char(&mut self, ch: char) {
        if !ch.is_whitespace() {
            self.add_raw_char(ch);
        } else if self.in_word && !self.word.is_empty() {
            self.words.push(std::mem::take(&mut self.word));
            self.in_word = false;
        }
    }

    pub(crate) fn add_raw_char(&mut self, ch: char) {
        self.word.push(ch);
        self.in_word = true;
    }

    pub(crate) fn add_str(&mut self, s: &str) {
        s.chars().for_each(|c| self.add_char(c));
    }

    pub(crate) fn add_raw_str(&mut self, s: &str) {
        self.word.push_str(s);
        self.in_word = true;
    }

    pub(crate) fn finish(mut self) -> Vec<String> {
        if !self.word.is_empty() {
            self.words.push(self.word);
        }
        self.words
    }
}

/// The per-word cursor: characters with their byte offsets, and the names seen.
pub(super) struct Scan<'a, E: VarLookup + ?Sized> {
    pub(super) lexer: &'a Lexer,
    pub(super) src: &'a str,
    pub(super) chars: Vec<(usize, char)>,
    pub(super) pos: usize,
    pub(super) env: &'a E,
    pub(super) raw_escapes: bool,
    /// How many `${…}` are open around the cursor (bounded by `MAX_NESTING`).
    depth: usize,
    pub(super) matched: BTreeSet<String>,
    pub(super) unmatched: BTreeSet<String>,
}

/// What `stop_on` produced: the text, its split words, or the end of input
/// reached before the stop character.
pub(super) enum Stopped {
    At(String, Words),
    Eof,
}

impl<'a, E: VarLookup + ?Sized> Scan<'a, E> {
    pub(super) fn new(lexer: &'a Lexer, src: &'a str, env: &'a E) -> Self {
        Scan {
            lexer,
            src,
            chars: src.char_indices().collect(),
            pos: 0,
            env,
            raw_escapes: lexer.raw_escapes,
            depth: 0,
            matched: BTreeSet::new(),
            unmatched: BTreeSet::new(),
        }
    }

    pub(super) fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).map(|&(_, c)| c)
    }

    pub(super) fn next(&mut self) -> Option<char> {
        let c = self.peek();
        self.pos += usize::from(c.is_some());
        c
    }

    /// Byte offset of the current position (the input length at the end).
    pub(super) fn offset(&self) -> usize {
        self.chars.get(self.pos).map_or(self.src.len(), |&(o, _)| o)
    }

    pub(super) fn word(&self) -> String {
        self.src.to_owned()
    }

    pub(super) fn top(&mut self) -> Result<(String, Vec<String>), ShellError> {
        match self.stop_on(None, self.lexer.raw_escapes)? {
            Stopped::At(value, words) => Ok((value, words.finish())),
            Stopped::Eof => Ok((String::new(), Vec::new())),
        }
    }

    /// Refuses text that grew beyond `MAX_EXPANSION_LEN`; `offset` names the construct
    /// whose value was just added.
    pub(super) fn check_len(&self, len: usize, offset: usize) -> Result<(), ShellError> {
        if len > MAX_EXPANSION_LEN {
            return Err(ShellError::TooLong {
                offset,
                limit: MAX_EXPANSION_LEN,
            });
        }
        Ok(())
    }

    pub(super) fn get_env(&mut self, name: &str) -> Option<String> {
        match self.env.lookup(name) {
            Some(v) => {
                self.matched.insert(name.to_owned());
                Some(v.to_owned())
            }
            None => {
                self.unmatched.insert(name.to_owned());
                None
            }
        }
    }

    /// Lex up to `stop` (consumed) or the end of input when `stop` is `None`.
    fn stop_on(&mut self, stop: Option<char>, raw_escapes: bool) -> Result<Stopped, ShellError> {
        let saved = std::mem::replace(&mut self.raw_escapes, raw_escapes);
        let out = self.stop_on_inner(stop);
        self.raw_escapes = saved;
        out
    }

    fn stop_on_inner(&mut self, stop: Option<char>) -> Result<Stopped, ShellError> {
        let mut result = String::new();
        let mut words = Words::default();
        let quotes = !self.lexer.skip_process_quotes;
        while let Some(ch) = self.peek() {
            if Some(ch) == stop {
                self.pos += 1;
                return Ok(Stopped::At(result, words));
            }
            if ch == '$' {
                let at = self.offset();
                let v = self.dollar()?;
                self.check_len(result.len() + v.len(), at)?;
                words.add_str(&v);
                result.push_str(&v);
            } else if quotes && (ch == '\'' || ch == '"') {
                let v = if ch == '\'' {
                    self.single_quote()?
                } else {
                    self.double_quote()?
                };
                words.add_raw_str(&v);
                result.push_str(&v);
            } else {
                self.pos += 1;
                if ch != self.lexer.escape {
                    words.add_char(ch);
                    result.push(ch);
                    continue;
                }
                if self.raw_escapes {
                    words.add_raw_char(ch);
                    result.push(ch);
                }
                // An escape as the very last character is dropped.
                let Some(escaped) = self.next() else { break };
                words.add_raw_char(escaped);
                result.push(escaped);
            }
        }
        Ok(match stop {
            Some(_) => Stopped::Eof,
            None => Stopped::At(result, words),
        })
    }

    /// Consumes the opening quote: its offset, and the text so far (the
    /// quote itself when quotes stay raw).
    fn open_quote(&mut self) -> (usize, String) {
        let start = self.offset();
        let open = self.next();
        let result = match open {
            Some(q) if self.lexer.raw_quotes => q.to_string(),
            _ => String::new(),
        };
        (start, result)
    }

    /// The closing `quote` has been consumed: keep it when quotes stay raw.
    fn close_quote(&self, mut result: String, quote: char) -> String {
        if self.lexer.raw_quotes {
            result.push(quote);
        }
        result
    }

    fn single_quote(&mut self) -> Result<String, ShellError> {
        let (start, mut result) = self.open_quote();
        loop {
            match self.next() {
                None => return Err(self.unterminated(start, '\'')),
                Some('\'') => return Ok(self.close_quote(result, '\'')),
                Some(c) => result.push(c),
            }
        }
    }

    fn double_quote(&mut self) -> Result<String, ShellError> {
        let (start, mut result) = self.open_quote();
        loop {
            match self.peek() {
                None => return Err(self.unterminated(start, '"')),
                Some('"') => {
                    self.pos += 1;
                    return Ok(self.close_quote(result, '"'));
                }
                Some('$') => {
                    let at = self.offset();
                    let v = self.dollar()?;
                    self.check_len(result.len() + v.len(), at)?;
                    result.push_str(&v);
                }
                Some(ch) => {
                    self.pos += 1;
                    if ch == self.lexer.escape {
                        self.double_quote_escape(&mut result);
                    } else {
                        result.push(ch);
                    }
                }
            }
        }
    }

    /// Inside `"…"` the escape character escapes only `"`, `$` and itself.
    fn double_quote_escape(&mut self, result: &mut String) {
        let escape = self.lexer.escape;
        if self.raw_escapes {
            result.push(escape);
        }
        match self.peek() {
            // An escape right before the end is ignored; the missing quote is reported next.
            None => {}
            Some(c) if c == '"' || c == '$' || c == escape => {
                self.pos += 1;
                result.push(c);
            }
            // COMPAT(buildkit): with raw escapes an escape before an ordinary
            // character is written twice, exactly as lex.go does.
            Some(_) => result.push(escape),
        }
    }

    fn unterminated(&self, offset: usize, quote: char) -> ShellError {
        ShellError::UnterminatedQuote {
            word: self.word(),
            offset,
            quote,
        }
    }

    /// `$name` or `${…}`; the cursor is on the `$`.
    fn dollar(&mut self) -> Result<String, ShellError> {
        let start = self.offset();
        self.pos += 1;
        if self.peek() == Some('{') {
            // The only way the lexer recurses is through a `${…}` argument, so
            // bounding these bounds the stack.
            if self.depth >= MAX_NESTING {
                return Err(ShellError::TooDeep {
                    offset: start,
                    limit: MAX_NESTING,
                });
            }
            self.depth += 1;
            let out = self.brace(start);
            self.depth -= 1;
            return out;
        }
        let name = self.name();
        if name.is_empty() {
            return Ok("$".to_owned());
        }
        Ok(match self.get_env(&name) {
            Some(v) => v,
            None if self.lexer.skip_unset_env => format!("${name}"),
            None => String::new(),
        })
    }

    /// `${…}`; the cursor is on the `{`.
    fn brace(&mut self, start: usize) -> Result<String, ShellError> {
        self.pos += 1;
        match self.peek() {
            None => {
                return Err(ShellError::MissingBrace {
                    word: self.word(),
                    offset: start,
                })
            }
            Some('{' | '}' | ':') => {
                return Err(ShellError::BadSubstitution {
                    word: self.word(),
                    offset: start,
                })
            }
            Some(_) => {}
        }
        let name = self.name();
        match self.next() {
            None => Err(ShellError::MissingBrace {
                word: self.word(),
                offset: start,
            }),
            Some('}') => Ok(match self.get_env(&name) {
                Some(v) => v,
                None if self.lexer.skip_unset_env => format!("${{{name}}}"),
                None => String::new(),
            }),
            Some(':') => {
                let op = self.next();
                self.modifier(start, name, true, op)
            }
            Some(op @ ('+' | '-' | '?' | '#' | '%')) => self.modifier(start, name, false, Some(op)),
            Some('/') => self.replace(start, name),
            Some(other) => Err(ShellError::UnsupportedModifier {
                word: self.word(),
                offset: start,
                modifier: other.to_string(),
            }),
        }
    }

    /// A name: letters, digits and `_`; a run of digits; or one special parameter.
    fn name(&mut self) -> String {
        let mut name = String::new();
        while let Some(ch) = self.peek() {
            if name.is_empty() && ch.is_ascii_digit() {
                while let Some(d) = self.peek().filter(char::is_ascii_digit) {
                    self.pos += 1;
                    name.push(d);
                }
                return name;
            }
            if name.is_empty() && matches!(ch, '@' | '*' | '#' | '?' | '-' | '$' | '!') {
                self.pos += 1;
                return ch.to_string();
            }
            if !ch.is_alphanumeric() && ch != '_' {
                break;
            }
            self.pos += 1;
            name.push(ch);
        }
        name
    }

    /// Lex the argument of a modifier up to `}`; end of input becomes "missing '}'".
    pub(super) fn arg_until(
        &mut self,
        stop: char,
        raw: bool,
        start: usize,
    ) -> Result<String, ShellError> {
        let missing = |s: &Self| match stop {
            '/' => ShellError::MissingSlash {
                word: s.word(),
                offset: start,
            },
            _ => ShellError::MissingBrace {
                word: s.word(),
                offset: start,
            },
        };
        match self.stop_on(Some(stop), raw) {
            Ok(Stopped::At(text, _)) => Ok(text),
            Ok(Stopped::Eof) => Err(missing(self)),
            // COMPAT(buildkit): any error that leaves the cursor at the end is reported
            // as the missing terminator, as lex.go does.
            Err(e)
                if self.peek().is_none()
                    && !matches!(e, ShellError::TooDeep { .. } | ShellError::TooLong { .. }) =>
            {
                Err(missing(self))
            }
            Err(e) => Err(e),
        }
    }
}
