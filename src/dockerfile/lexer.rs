//! The slice of BuildKit's shell lexer that heredoc detection needs
//! (grammar §5.2): word splitting with quotes and escapes optionally kept,
//! and every variable unset and kept as written ("skip unset" mode). The
//! expander proper, with values, lives in `shell.rs`.
//!
//! Invariant: nesting of `${…}` is bounded, so no input exhausts the stack.

use thiserror::Error;

/// Nesting limit for `${…}` inside `${…}`; deeper input is a lexing error.
const MAX_DEPTH: usize = 32;

/// Why the lexer rejected its input (BuildKit's messages).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LexError {
    /// A quote or `${…}` was still open at the end.
    #[error("unexpected end of statement while looking for matching {0}")]
    Unterminated(&'static str),
    /// `${` at the very end.
    #[error("syntax error: missing '}}'")]
    MissingBrace,
    /// `${}`, `${{…}`, `${:…}`.
    #[error("syntax error: bad substitution")]
    BadSubstitution,
    /// A modifier other than `:- - :+ + :? ? # ## % %% / //`.
    #[error("unsupported modifier in substitution")]
    UnsupportedModifier,
    /// The delimiter split differently with and without quotes kept.
    #[error("internal lexing of heredoc produced inconsistent results")]
    Inconsistent,
    /// `${…}` nested deeper than the lexer follows.
    #[error("substitutions nested deeper than {MAX_DEPTH} levels")]
    TooDeep,
}

/// BuildKit's shell lexer in "skip unset variables" mode with an empty
/// environment: `$x` and `${…}` stay as written.
pub(crate) struct Lexer {
    /// Keep quote characters in the words.
    pub raw_quotes: bool,
    /// Keep escape characters in the words.
    pub raw_escapes: bool,
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
    /// Splits `input` into words.
    pub(crate) fn words(&self, input: &str) -> Result<Vec<String>, LexError> {
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
    ) -> Result<(String, Words), LexError> {
        if depth > MAX_DEPTH {
            return Err(LexError::TooDeep);
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
            Some('/') => Err(LexError::Unterminated("/")),
            Some(_) => Err(LexError::Unterminated("}")),
            None => Ok((result, words)),
        }
    }

    fn single_quote(&self, it: &mut Chars) -> Result<String, LexError> {
        let mut out = String::new();
        let open = it.next().unwrap_or('\'');
        if self.raw_quotes {
            out.push(open);
        }
        loop {
            match it.next() {
                None => return Err(LexError::Unterminated("single-quote")),
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

    fn double_quote(&self, it: &mut Chars, depth: usize) -> Result<String, LexError> {
        let mut out = String::new();
        let open = it.next().unwrap_or('"');
        if self.raw_quotes {
            out.push(open);
        }
        loop {
            match it.peek().copied() {
                None => return Err(LexError::Unterminated("double-quote")),
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
    fn dollar(&self, it: &mut Chars, depth: usize) -> Result<String, LexError> {
        it.next();
        if it.peek() != Some(&'{') {
            let name = var_name(it);
            return Ok(format!("${name}"));
        }
        it.next();
        match it.peek().copied() {
            None => return Err(LexError::MissingBrace),
            Some('{' | '}' | ':') => return Err(LexError::BadSubstitution),
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
                    return Err(LexError::UnsupportedModifier);
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
            _ => return Err(LexError::UnsupportedModifier),
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

    const RAW: Lexer = Lexer {
        raw_quotes: true,
        raw_escapes: true,
    };
    const COOKED: Lexer = Lexer {
        raw_quotes: false,
        raw_escapes: false,
    };

    #[test]
    fn raw_mode_keeps_quotes_escapes_and_variables() {
        assert_eq!(
            RAW.words("a 'b c' \"d\\\"e\" f\\ g $X ${Y:-z w}").unwrap(),
            vec!["a", "'b c'", "\"d\\\"e\"", "f\\ g", "$X", "${Y:-z", "w}"]
        );
        assert_eq!(RAW.words("x <<  EOF y").unwrap(), vec!["x", "<<  EOF", "y"]);
    }

    #[test]
    fn cooked_mode_removes_quotes_and_drops_empty_words() {
        assert_eq!(
            COOKED.words("'a b'c \"\" d\\'").unwrap(),
            vec!["a bc", "d'"]
        );
        assert_eq!(COOKED.words("${a/b/c}").unwrap(), vec!["${a/b/c}"]);
    }

    #[test]
    fn errors() {
        assert_eq!(RAW.words("'x"), Err(LexError::Unterminated("single-quote")));
        assert_eq!(
            RAW.words("\"x"),
            Err(LexError::Unterminated("double-quote"))
        );
        assert_eq!(RAW.words("${"), Err(LexError::MissingBrace));
        assert_eq!(RAW.words("${}"), Err(LexError::BadSubstitution));
        assert_eq!(RAW.words("${a=b}"), Err(LexError::UnsupportedModifier));
        assert_eq!(RAW.words("${a:-b"), Err(LexError::Unterminated("}")));
        let deep = "${a:-".repeat(100);
        assert_eq!(RAW.words(&deep), Err(LexError::TooDeep));
    }
}
