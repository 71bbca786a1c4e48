//! Heredoc detection (grammar §5): which words of a RUN/COPY/ADD line open
//! a heredoc, and the delimiter's name, fd, chomp and expand flags.
//!
//! BuildKit finds heredocs by lexing the whole line with its shell lexer
//! (quotes and escapes kept, unset variables kept) and matching every word
//! against `^(\d*)<<(-?)([^<]*)$`. This module carries the small slice of
//! that lexer the detection needs; the full expander lives in `shell.rs`.
//!
//! Invariants: a line the lexer rejects has no heredocs (BuildKit ignores
//! that error); lexing is bounded in depth, so no input can exhaust the stack.

use nom::bytes::complete::{tag, take_while};
use nom::combinator::opt;
use nom::sequence::tuple;
use nom::IResult;

/// A heredoc opener found on an instruction line; the body comes later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Opener {
    pub name: String,
    pub fd: u32,
    pub expand: bool,
    pub chomp: bool,
}

/// Why a delimiter word could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WordError {
    pub word: String,
    pub reason: String,
}

/// Nesting limit for `${…}` inside `${…}`; deeper input is a lexing error.
const MAX_DEPTH: usize = 32;

/// Whether an instruction keyword may carry heredocs (grammar §5.1).
pub(crate) fn keyword_allows(keyword: &str) -> bool {
    matches!(
        keyword.to_ascii_lowercase().as_str(),
        "run" | "copy" | "add"
    )
}

/// All heredoc openers on a logical line, in order of appearance.
pub(crate) fn openers(line: &str) -> Result<Vec<Opener>, WordError> {
    let lexer = Lexer {
        raw_quotes: true,
        raw_escapes: true,
    };
    // COMPAT(buildkit): a lexing error on the whole line means "no heredocs".
    let Ok(words) = lexer.words(line) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for word in words {
        if let Some(op) = opener(&word)? {
            out.push(op);
        }
    }
    Ok(out)
}

fn opener_parts(word: &str) -> IResult<&str, (&str, &str, Option<&str>)> {
    tuple((
        take_while(|c: char| c.is_ascii_digit()),
        tag("<<"),
        opt(tag("-")),
    ))(word)
}

/// Matches one word against the heredoc opener pattern.
fn opener(word: &str) -> Result<Option<Opener>, WordError> {
    let Ok((rest, (digits, _, dash))) = opener_parts(word) else {
        return Ok(None);
    };
    if rest.is_empty() || rest.contains('<') {
        return Ok(None);
    }
    let fail = |reason: String| WordError {
        word: word.to_string(),
        reason,
    };
    let cooked = Lexer {
        raw_quotes: false,
        raw_escapes: false,
    };
    let words = cooked.words(rest).map_err(fail)?;
    let [name] = words.as_slice() else {
        return Ok(None);
    };
    let raw = Lexer {
        raw_quotes: true,
        raw_escapes: false,
    };
    let raw_words = raw.words(rest).map_err(fail)?;
    let [raw_name] = raw_words.as_slice() else {
        return Err(fail(
            "internal lexing of heredoc produced inconsistent results".into(),
        ));
    };
    let quotes = |s: &str| s.chars().filter(|c| matches!(c, '\'' | '"')).count();
    // COMPAT(buildkit): digits beyond the range saturate instead of wrapping.
    let fd = if digits.is_empty() {
        0
    } else {
        digits.parse::<u32>().unwrap_or(u32::MAX)
    };
    Ok(Some(Opener {
        name: name.clone(),
        fd,
        expand: quotes(name) == quotes(raw_name),
        chomp: dash.is_some(),
    }))
}

/// BuildKit's shell lexer in "skip unset variables" mode with an empty
/// environment: `$x` and `${…}` stay as written.
struct Lexer {
    raw_quotes: bool,
    raw_escapes: bool,
}

/// Word accumulation with BuildKit's rules: unquoted whitespace splits,
/// empty words are never produced.
#[derive(Default)]
struct Words {
    word: String,
    words: Vec<String>,
    in_word: bool,
}

impl Words {
    fn add_char(&mut self, c: char) {
        if c.is_whitespace() {
            if self.in_word && !self.word.is_empty() {
                self.words.push(std::mem::take(&mut self.word));
                self.in_word = false;
            }
        } else {
            self.add_raw_char(c);
        }
    }
    fn add_raw_char(&mut self, c: char) {
        self.word.push(c);
        self.in_word = true;
    }
    fn add_string(&mut self, s: &str) {
        s.chars().for_each(|c| self.add_char(c));
    }
    fn add_raw_string(&mut self, s: &str) {
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

type Chars<'a> = std::iter::Peekable<std::str::Chars<'a>>;

impl Lexer {
    fn words(&self, input: &str) -> Result<Vec<String>, String> {
        let mut it = input.chars().peekable();
        let (_, words) = self.stop_on(&mut it, None, self.raw_escapes, 0)?;
        Ok(words.finish())
    }

    fn stop_on(
        &self,
        it: &mut Chars,
        stop: Option<char>,
        raw_escapes: bool,
        depth: usize,
    ) -> Result<(String, Words), String> {
        if depth > MAX_DEPTH {
            return Err("substitutions nested too deeply".into());
        }
        let mut result = String::new();
        let mut words = Words::default();
        while let Some(&c) = it.peek() {
            if Some(c) == stop {
                it.next();
                return Ok((result, words));
            }
            match c {
                '\'' | '"' | '$' | '<' => {
                    let tmp = match c {
                        '\'' => self.single_quote(it)?,
                        '"' => self.double_quote(it, depth)?,
                        '$' => self.dollar(it, depth)?,
                        _ => possible_heredoc(it),
                    };
                    result.push_str(&tmp);
                    if c == '$' {
                        words.add_string(&tmp);
                    } else {
                        words.add_raw_string(&tmp);
                    }
                }
                _ => {
                    it.next();
                    if c == '\\' {
                        if raw_escapes {
                            words.add_raw_char(c);
                            result.push(c);
                        }
                        let Some(next) = it.next() else { break };
                        words.add_raw_char(next);
                        result.push(next);
                    } else {
                        words.add_char(c);
                        result.push(c);
                    }
                }
            }
        }
        match stop {
            Some(s) => Err(format!(
                "unexpected end of statement while looking for matching {s}"
            )),
            None => Ok((result, words)),
        }
    }

    fn single_quote(&self, it: &mut Chars) -> Result<String, String> {
        let mut out = String::new();
        let open = it.next().unwrap_or('\'');
        if self.raw_quotes {
            out.push(open);
        }
        loop {
            match it.next() {
                None => {
                    return Err(
                        "unexpected end of statement while looking for matching single-quote"
                            .into(),
                    )
                }
                Some('\'') => {
                    if self.raw_quotes {
                        out.push('\'');
                    }
                    return Ok(out);
                }
                Some(c) => out.push(c),
            }
        }
    }

    fn double_quote(&self, it: &mut Chars, depth: usize) -> Result<String, String> {
        let mut out = String::new();
        let open = it.next().unwrap_or('"');
        if self.raw_quotes {
            out.push(open);
        }
        loop {
            match it.peek().copied() {
                None => {
                    return Err(
                        "unexpected end of statement while looking for matching double-quote"
                            .into(),
                    )
                }
                Some('"') => {
                    it.next();
                    if self.raw_quotes {
                        out.push('"');
                    }
                    return Ok(out);
                }
                Some('$') => out.push_str(&self.dollar(it, depth)?),
                Some(c) => {
                    it.next();
                    let mut c = c;
                    if c == '\\' {
                        if self.raw_escapes {
                            out.push(c);
                        }
                        match it.peek().copied() {
                            None => continue,
                            Some(n @ ('"' | '$' | '\\')) => {
                                it.next();
                                c = n;
                            }
                            Some(_) => {}
                        }
                    }
                    out.push(c);
                }
            }
        }
    }

    /// `$name` and `${…}` with every variable unset and kept as written.
    fn dollar(&self, it: &mut Chars, depth: usize) -> Result<String, String> {
        it.next();
        if it.peek() != Some(&'{') {
            let name = var_name(it);
            return Ok(format!("${name}"));
        }
        it.next();
        match it.peek().copied() {
            None => return Err("syntax error: missing '}'".into()),
            Some('{' | '}' | ':') => return Err("syntax error: bad substitution".into()),
            Some(_) => {}
        }
        let name = var_name(it);
        let mut op = String::new();
        match it.next() {
            Some('}') => return Ok(format!("${{{name}}}")),
            Some(':') => {
                op.push(':');
                let next = it.next();
                if matches!(next, Some('#' | '%')) {
                    return Err("unsupported modifier in substitution".into());
                }
                op.extend(next);
            }
            Some(c @ ('+' | '-' | '?' | '#' | '%')) => op.push(c),
            Some('/') => {
                if it.peek() == Some(&'/') {
                    it.next();
                }
                let (pattern, _) = self.stop_on(it, Some('/'), true, depth + 1)?;
                let (repl, _) = self.stop_on(it, Some('}'), true, depth + 1)?;
                return Ok(format!("${{{name}/{pattern}/{repl}}}"));
            }
            _ => return Err("unsupported modifier in substitution".into()),
        }
        let raw = op.ends_with('#') || op.ends_with('%');
        let (word, _) = self.stop_on(it, Some('}'), raw, depth + 1)?;
        Ok(format!("${{{name}{op}{word}}}"))
    }
}

/// A variable name: digits, one special parameter, or `[A-Za-z0-9_]` run.
fn var_name(it: &mut Chars) -> String {
    let mut name = String::new();
    while let Some(&c) = it.peek() {
        if name.is_empty() && c.is_numeric() {
            while let Some(&d) = it.peek() {
                if !d.is_numeric() {
                    break;
                }
                name.push(d);
                it.next();
            }
            return name;
        }
        if name.is_empty() && matches!(c, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0') {
            it.next();
            return c.to_string();
        }
        if !c.is_alphanumeric() && c != '_' {
            break;
        }
        name.push(c);
        it.next();
    }
    name
}

/// `<<` swallows the blanks after it, so `<<  EOF` stays one word.
fn possible_heredoc(it: &mut Chars) -> String {
    it.next();
    if it.peek() != Some(&'<') {
        return "<".into();
    }
    it.next();
    let mut out = String::from("<<");
    while let Some(&c) = it.peek() {
        if c != ' ' && c != '\t' {
            break;
        }
        out.push(c);
        it.next();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(line: &str) -> Vec<(String, u32, bool, bool)> {
        openers(line)
            .unwrap()
            .into_iter()
            .map(|o| (o.name, o.fd, o.expand, o.chomp))
            .collect()
    }

    #[test]
    fn openers_follow_buildkit() {
        assert_eq!(names("RUN <<EOF"), vec![("EOF".into(), 0, true, false)]);
        assert_eq!(names("RUN 3<<-X"), vec![("X".into(), 3, true, true)]);
        assert_eq!(names("RUN \"<<NO\""), vec![]);
        assert_eq!(names("RUN <<eo'f'"), vec![("eof".into(), 0, false, false)]);
        assert_eq!(names("RUN <<eo\\'f"), vec![("eo'f".into(), 0, true, false)]);
        assert_eq!(
            names("RUN <<'e'o\\'f"),
            vec![("eo'f".into(), 0, false, false)]
        );
        assert_eq!(
            names("RUN <<'one two'"),
            vec![("one two".into(), 0, false, false)]
        );
        assert_eq!(names("RUN <<$EOF"), vec![("$EOF".into(), 0, true, false)]);
        assert_eq!(
            names("RUN <<  EOF  > foo"),
            vec![("EOF".into(), 0, true, false)]
        );
        assert_eq!(
            names("COPY <<A <<B /d"),
            vec![("A".into(), 0, true, false), ("B".into(), 0, true, false)]
        );
    }

    #[test]
    fn unlexable_line_has_no_heredocs() {
        assert_eq!(names("RUN <<EOF 'unterminated"), vec![]);
        assert_eq!(names("RUN ${ <<EOF"), vec![]);
    }
}
