//! Shell-word expansion with BuildKit's lexer semantics
//! (`frontend/dockerfile/shell/lex.go`, as the `buildkit-shell` tables encode them).
//!
//! Owns: `$name`, `${name}` and its modifiers (`:-` `-` `:+` `+` `:?` `?` `#` `##`
//! `%` `%%` `/` `//`), quotes, the escape character (`\` or `` ` ``) and word
//! splitting. Invariants: unset variables expand to the empty string (unless
//! `skip_unset_env`), every name looked up lands in exactly one of
//! `Expanded::matched` / `Expanded::unmatched`, and word splitting never yields an
//! empty word. Pure: no I/O, no process environment.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use regex::Regex;

/// Where variable values come from.
pub trait VarLookup {
    /// The value of `name`, or `None` when it is not set (set-but-empty is `Some("")`).
    fn lookup(&self, name: &str) -> Option<&str>;
}

impl VarLookup for HashMap<String, String> {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.get(name).map(String::as_str)
    }
}

impl VarLookup for BTreeMap<String, String> {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.get(name).map(String::as_str)
    }
}

/// An ordered environment; the LAST pair with the name wins, as when ENV lines accumulate.
impl VarLookup for [(String, String)] {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

impl VarLookup for Vec<(String, String)> {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.as_slice().lookup(name)
    }
}

/// One expanded word and the variable names its expansion looked up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expanded {
    /// The word with quotes removed and variables substituted.
    pub value: String,
    /// Names looked up that were set (possibly to the empty string).
    pub matched: BTreeSet<String>,
    /// Names looked up that were not set.
    pub unmatched: BTreeSet<String>,
}

/// Why a word could not be expanded. `word` is the whole input; `offset` is the
/// byte offset in it of the construct that failed.
#[derive(Debug, thiserror::Error)]
pub enum ShellError {
    /// A `'` or `"` without its closing partner.
    #[error("expanding {word:?}: unterminated {quote} quote starting at byte {offset}")]
    UnterminatedQuote {
        word: String,
        offset: usize,
        quote: char,
    },
    /// `${` without its closing `}`.
    #[error(
        "expanding {word:?}: syntax error: missing '}}' for the substitution at byte {offset}"
    )]
    MissingBrace { word: String, offset: usize },
    /// `${}`, `${{…`, `${:…`.
    #[error("expanding {word:?}: syntax error: bad substitution at byte {offset}")]
    BadSubstitution { word: String, offset: usize },
    /// `${name/pattern}` without the `/` that starts the replacement.
    #[error("expanding {word:?}: syntax error: missing '/' in ${{}} at byte {offset}")]
    MissingSlash { word: String, offset: usize },
    /// `${name:=w}`, `${name=w}`, `${name:#p}`, … (BuildKit supports none of them).
    #[error(
        "expanding {word:?}: unsupported modifier ({modifier}) in substitution at byte {offset}"
    )]
    UnsupportedModifier {
        word: String,
        offset: usize,
        modifier: String,
    },
    /// `${name?message}` / `${name:?message}` on an unset (or empty) variable.
    #[error("expanding {word:?}: {name}: {message}")]
    Required {
        word: String,
        name: String,
        message: String,
    },
    /// A `#`/`%`/`/` pattern with `\` before a character that cannot be escaped.
    #[error("expanding {word:?}: invalid pattern ({pattern}) in substitution: invalid escape '\\{found}'")]
    InvalidPatternEscape {
        word: String,
        pattern: String,
        found: String,
    },
    /// A pattern the regex engine refused (only a huge one can be).
    #[error("expanding {word:?}: compiling pattern ({pattern}) in substitution")]
    PatternTooLarge {
        word: String,
        pattern: String,
        source: regex::Error,
    },
}

/// A configured lexer. Cheap to build; holds no per-word state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lexer {
    escape: char,
    raw_quotes: bool,
    raw_escapes: bool,
    skip_process_quotes: bool,
    skip_unset_env: bool,
}

impl Lexer {
    /// A lexer with escape character `escape` (`\` or `` ` ``) and BuildKit's defaults.
    pub fn new(escape: char) -> Self {
        Lexer {
            escape,
            raw_quotes: false,
            raw_escapes: false,
            skip_process_quotes: false,
            skip_unset_env: false,
        }
    }

    /// Keep quote characters in the output (BuildKit `RawQuotes`).
    pub fn raw_quotes(mut self, on: bool) -> Self {
        self.raw_quotes = on;
        self
    }

    /// Keep escape characters in the output (BuildKit `RawEscapes`).
    pub fn raw_escapes(mut self, on: bool) -> Self {
        self.raw_escapes = on;
        self
    }

    /// Treat `'` and `"` as ordinary characters (BuildKit `SkipProcessQuotes`).
    pub fn skip_process_quotes(mut self, on: bool) -> Self {
        self.skip_process_quotes = on;
        self
    }

    /// Leave references to unset variables as written (BuildKit `SkipUnsetEnv`).
    pub fn skip_unset_env(mut self, on: bool) -> Self {
        self.skip_unset_env = on;
        self
    }

    /// One word: quotes removed, no splitting (ENV values, WORKDIR, USER, LABEL…).
    pub fn expand_word(
        &self,
        word: &str,
        env: &(impl VarLookup + ?Sized),
    ) -> Result<Expanded, ShellError> {
        let mut scan = Scan::new(self, word, env);
        let (value, _) = scan.top()?;
        Ok(Expanded {
            value,
            matched: scan.matched,
            unmatched: scan.unmatched,
        })
    }

    /// Expand and split into words (COPY/ADD sources, EXPOSE, VOLUME…).
    pub fn expand_words(
        &self,
        word: &str,
        env: &(impl VarLookup + ?Sized),
    ) -> Result<Vec<String>, ShellError> {
        let mut scan = Scan::new(self, word, env);
        let (_, words) = scan.top()?;
        Ok(words)
    }
}

/// Word-splitting state: text from quotes, escapes and literal characters is
/// "raw" (never splits); the value of an unquoted `$` expansion splits at whitespace.
#[derive(Default)]
struct Words {
    word: String,
    words: Vec<String>,
    in_word: bool,
}

impl Words {
    fn add_char(&mut self, ch: char) {
        if !ch.is_whitespace() {
            self.add_raw_char(ch);
        } else if self.in_word && !self.word.is_empty() {
            self.words.push(std::mem::take(&mut self.word));
            self.in_word = false;
        }
    }

    fn add_raw_char(&mut self, ch: char) {
        self.word.push(ch);
        self.in_word = true;
    }

    fn add_str(&mut self, s: &str) {
        s.chars().for_each(|c| self.add_char(c));
    }

    fn add_raw_str(&mut self, s: &str) {
        self.word.push_str(s);
        self.in_word = true;
    }

    fn finish(mut self) -> Vec<String> {
        if !self.word.is_empty() {
            self.words.push(self.word);
        }
        self.words
    }
}

/// The per-word cursor: characters with their byte offsets, and the names seen.
struct Scan<'a, E: VarLookup + ?Sized> {
    lexer: &'a Lexer,
    src: &'a str,
    chars: Vec<(usize, char)>,
    pos: usize,
    env: &'a E,
    raw_escapes: bool,
    matched: BTreeSet<String>,
    unmatched: BTreeSet<String>,
}

/// What `stop_on` produced: the text, its split words, or the end of input
/// reached before the stop character.
enum Stopped {
    At(String, Words),
    Eof,
}

impl<'a, E: VarLookup + ?Sized> Scan<'a, E> {
    fn new(lexer: &'a Lexer, src: &'a str, env: &'a E) -> Self {
        Scan {
            lexer,
            src,
            chars: src.char_indices().collect(),
            pos: 0,
            env,
            raw_escapes: lexer.raw_escapes,
            matched: BTreeSet::new(),
            unmatched: BTreeSet::new(),
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).map(|&(_, c)| c)
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        self.pos += usize::from(c.is_some());
        c
    }

    /// Byte offset of the current position (the input length at the end).
    fn offset(&self) -> usize {
        self.chars.get(self.pos).map_or(self.src.len(), |&(o, _)| o)
    }

    fn word(&self) -> String {
        self.src.to_owned()
    }

    fn top(&mut self) -> Result<(String, Vec<String>), ShellError> {
        match self.stop_on(None, self.lexer.raw_escapes)? {
            Stopped::At(value, words) => Ok((value, words.finish())),
            Stopped::Eof => Ok((String::new(), Vec::new())),
        }
    }

    fn get_env(&mut self, name: &str) -> Option<String> {
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
                let v = self.dollar()?;
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

    fn single_quote(&mut self) -> Result<String, ShellError> {
        let start = self.offset();
        let mut result = String::new();
        let open = self.next();
        if self.lexer.raw_quotes {
            result.extend(open);
        }
        loop {
            match self.next() {
                None => return Err(self.unterminated(start, '\'')),
                Some('\'') => {
                    if self.lexer.raw_quotes {
                        result.push('\'');
                    }
                    return Ok(result);
                }
                Some(c) => result.push(c),
            }
        }
    }

    fn double_quote(&mut self) -> Result<String, ShellError> {
        let start = self.offset();
        let mut result = String::new();
        let open = self.next();
        if self.lexer.raw_quotes {
            result.extend(open);
        }
        loop {
            match self.peek() {
                None => return Err(self.unterminated(start, '"')),
                Some('"') => {
                    self.pos += 1;
                    if self.lexer.raw_quotes {
                        result.push('"');
                    }
                    return Ok(result);
                }
                Some('$') => result.push_str(&self.dollar()?),
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
        if self.peek() != Some('{') {
            let name = self.name();
            if name.is_empty() {
                return Ok("$".to_owned());
            }
            return Ok(match self.get_env(&name) {
                Some(v) => v,
                None if self.lexer.skip_unset_env => format!("${name}"),
                None => String::new(),
            });
        }
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
    fn arg_until(&mut self, stop: char, raw: bool, start: usize) -> Result<String, ShellError> {
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
            Err(_) if self.peek().is_none() => Err(missing(self)),
            Err(e) => Err(e),
        }
    }

    /// `${name<op>word}` and `${name:<op>word}`; the cursor is after `op`.
    fn modifier(
        &mut self,
        start: usize,
        name: String,
        colon: bool,
        op: Option<char>,
    ) -> Result<String, ShellError> {
        let op_text = format!(
            "{}{}",
            if colon { ":" } else { "" },
            op.map(String::from).unwrap_or_default()
        );
        let raw = matches!(op, Some('#' | '%'));
        let word = self.arg_until('}', raw, start)?;
        let value = self.get_env(&name);
        if self.lexer.skip_unset_env && value.is_none() {
            return Ok(format!("${{{name}{op_text}{word}}}"));
        }
        let empty_is_unset =
            |v: &Option<String>| v.is_none() || (colon && v.as_deref() == Some(""));
        match op {
            Some('-') if empty_is_unset(&value) => Ok(word),
            Some('-') => Ok(value.unwrap_or_default()),
            Some('+') if empty_is_unset(&value) => Ok(String::new()),
            Some('+') => Ok(word),
            Some('?') => match value {
                None => Err(self.required(name, word, "is not allowed to be unset")),
                Some(v) if colon && v.is_empty() => {
                    Err(self.required(name, word, "is not allowed to be empty"))
                }
                Some(v) => Ok(v),
            },
            Some(op @ ('#' | '%')) if !colon => {
                let (longest, pattern) = match word.strip_prefix(op) {
                    Some(rest) => (true, rest),
                    None => (false, word.as_str()),
                };
                self.trim(&value.unwrap_or_default(), pattern, longest, op == '#')
            }
            _ => Err(ShellError::UnsupportedModifier {
                word: self.word(),
                offset: start,
                modifier: op_text,
            }),
        }
    }

    fn required(&self, name: String, message: String, default: &str) -> ShellError {
        let message = if message.is_empty() {
            default.to_owned()
        } else {
            message
        };
        ShellError::Required {
            word: self.word(),
            name,
            message,
        }
    }

    /// `${name#p}` / `${name%p}`: drop the shortest (or longest) matching prefix / suffix.
    fn trim(
        &self,
        value: &str,
        pattern: &str,
        longest: bool,
        prefix: bool,
    ) -> Result<String, ShellError> {
        let toks = self.glob(pattern)?;
        if prefix {
            let re = self.regex(pattern, &toks, longest, true)?;
            return Ok(re
                .find(value)
                .map_or(value, |m| &value[m.end()..])
                .to_owned());
        }
        // Regexes find leftmost matches only, so a suffix is searched for as a
        // prefix of the reversed value with the reversed pattern.
        let rev_value: String = value.chars().rev().collect();
        let rev_toks: Vec<Tok> = toks.into_iter().rev().collect();
        let re = self.regex(pattern, &rev_toks, longest, true)?;
        Ok(match re.find(&rev_value) {
            Some(m) => rev_value[m.end()..].chars().rev().collect(),
            None => value.to_owned(),
        })
    }

    /// `${name/p/r}` and `${name//p/r}`; the cursor is after the first `/`.
    fn replace(&mut self, start: usize, name: String) -> Result<String, ShellError> {
        let all = self.peek() == Some('/');
        self.pos += usize::from(all);
        let pattern = self.arg_until('/', true, start)?;
        let replacement = self.arg_until('}', true, start)?;
        let value = self.get_env(&name);
        let Some(value) = value else {
            if self.lexer.skip_unset_env {
                let slash = if all { "//" } else { "/" };
                return Ok(format!("${{{name}{slash}{pattern}/{replacement}}}"));
            }
            return Ok(String::new());
        };
        let re = self.regex(&pattern, &self.glob(&pattern)?, true, false)?;
        Ok(if all {
            // COMPAT(buildkit): Go's ReplaceAllString expands `$0`, `${n}` and `$$` in the
            // replacement; the regex crate's replace_all does the same.
            re.replace_all(&value, replacement.as_str()).into_owned()
        } else {
            match re.find(&value) {
                Some(m) => format!("{}{replacement}{}", &value[..m.start()], &value[m.end()..]),
                None => value,
            }
        })
    }

    fn regex(
        &self,
        pattern: &str,
        toks: &[Tok],
        greedy: bool,
        anchored: bool,
    ) -> Result<Regex, ShellError> {
        glob_regex(toks, greedy, anchored).map_err(|source| ShellError::PatternTooLarge {
            word: self.word(),
            pattern: pattern.to_owned(),
            source,
        })
    }

    fn glob(&self, pattern: &str) -> Result<Vec<Tok>, ShellError> {
        parse_glob(pattern).map_err(|found| ShellError::InvalidPatternEscape {
            word: self.word(),
            pattern: pattern.to_owned(),
            found: found.map(String::from).unwrap_or_default(),
        })
    }
}

/// One element of a substitution pattern (`*`, `?`, a literal; no `[...]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok {
    Star,
    Any,
    Lit(char),
}

/// Parse a `#`/`%`/`/` pattern. `\` escapes `*`, `?` and `\`; before `}` or `/` it is
/// dropped (it only kept them from ending the substitution). Err holds the bad char.
fn parse_glob(pattern: &str) -> Result<Vec<Tok>, Option<char>> {
    let mut out = Vec::new();
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(match c {
            '*' => Tok::Star,
            '?' => Tok::Any,
            '\\' if matches!(chars.peek(), Some('}' | '/')) => continue,
            '\\' => match chars.next() {
                Some(e @ ('*' | '?' | '\\')) => Tok::Lit(e),
                other => return Err(other),
            },
            c => Tok::Lit(c),
        });
    }
    Ok(out)
}

/// The pattern as a regex, as Go's `convertShellPatternToRegex` builds it: `*` is
/// `.*` (greedy) or `.*?`, `?` is `.`. Like Go's regexp, `.` does not match a
/// newline, which BuildKit inherits.
fn glob_regex(toks: &[Tok], greedy: bool, anchored: bool) -> Result<Regex, regex::Error> {
    let mut re = String::from(if anchored { "^" } else { "" });
    for t in toks {
        match t {
            Tok::Star if greedy => re.push_str(".*"),
            Tok::Star => re.push_str(".*?"),
            Tok::Any => re.push('.'),
            Tok::Lit(c) => re.push_str(&regex::escape(c.encode_utf8(&mut [0; 4]))),
        }
    }
    Regex::new(&re)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn word(lexer: &Lexer, w: &str, e: &[(&str, &str)]) -> String {
        lexer.expand_word(w, &env(e)).unwrap().value
    }

    #[test]
    fn backtick_escape_makes_backslash_ordinary() {
        let l = Lexer::new('`');
        assert_eq!(word(&l, r"C:\go\bin", &[]), r"C:\go\bin");
        assert_eq!(word(&l, "a`$b", &[("b", "x")]), "a$b");
        assert_eq!(word(&l, "a`tb", &[]), "atb");
        assert_eq!(word(&l, "hello`", &[]), "hello");
        assert_eq!(word(&l, r#""a`"b""#, &[]), "a\"b");
        assert_eq!(word(&l, r#""a`tb""#, &[]), "a`tb");
        assert_eq!(
            word(&l, r##""a\""##, &[]),
            "a\\",
            "backslash before the closing quote is literal"
        );
        assert_eq!(l.expand_words("a` b c", &env(&[])).unwrap(), ["a b", "c"]);
    }

    #[test]
    fn backtick_escape_in_patterns() {
        let l = Lexer::new('`');
        // The pattern escape stays `\` whatever the lexer's escape is (lex.go does the same).
        assert_eq!(word(&l, r"${v#\*}", &[("v", "*x")]), "x");
        // COMPAT(buildkit): the kept "`" then is a literal of the pattern, so `}` is not trimmed.
        assert_eq!(word(&l, "${v%`}}", &[("v", "a}")]), "a}");
        assert_eq!(word(&l, "${v%`}}", &[("v", "a`}")]), "a");
    }

    #[test]
    fn later_pairs_win_in_ordered_env() {
        let l = Lexer::new('\\');
        assert_eq!(word(&l, "$A", &[("A", "1"), ("A", "2")]), "2");
    }

    #[test]
    fn options_keep_quotes_and_unset_references() {
        let raw = Lexer::new('\\').raw_quotes(true);
        assert_eq!(word(&raw, r#"'a'"b""#, &[]), r#"'a'"b""#);
        let keep = Lexer::new('\\').skip_unset_env(true);
        assert_eq!(
            word(&keep, "$X ${Y} ${Z:-d} $S", &[("S", "s")]),
            "$X ${Y} ${Z:-d} s"
        );
        let noquotes = Lexer::new('\\').skip_process_quotes(true);
        assert_eq!(word(&noquotes, r#"'$S'"#, &[("S", "s")]), "'s'");
        let esc = Lexer::new('\\').raw_escapes(true);
        assert_eq!(word(&esc, r"a\$b", &[]), r"a\$b");
    }

    #[test]
    fn replace_all_handles_empty_pattern_and_unicode() {
        let l = Lexer::new('\\');
        assert_eq!(word(&l, "${v//$e/-}", &[("v", "한a"), ("e", "")]), "-한-a-");
        assert_eq!(word(&l, "${v//?/x}", &[("v", "한국")]), "xx");
        assert_eq!(word(&l, "${v%%?}", &[("v", "한국")]), "한");
    }

    #[test]
    fn errors_carry_offsets() {
        let l = Lexer::new('\\');
        let err = l.expand_word("ab'cd", &env(&[])).unwrap_err();
        assert!(
            matches!(
                err,
                ShellError::UnterminatedQuote {
                    offset: 2,
                    quote: '\'',
                    ..
                }
            ),
            "{err:?}"
        );
        let err = l.expand_word("x${A:=1}", &env(&[])).unwrap_err();
        assert!(
            matches!(err, ShellError::UnsupportedModifier { offset: 1, ref modifier, .. } if modifier == ":=")
        );
        let err = l.expand_word("${A#\\x}", &env(&[("A", "1")])).unwrap_err();
        assert!(
            matches!(err, ShellError::InvalidPatternEscape { .. }),
            "{err:?}"
        );
        assert_eq!(
            l.expand_word("${A:?}", &env(&[("A", "")]))
                .unwrap_err()
                .to_string(),
            "expanding \"${A:?}\": A: is not allowed to be empty"
        );
    }
}
