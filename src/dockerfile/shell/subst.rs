//! `${name<op>word}` modifiers: defaults, alternatives, required values, and the
//! `#`/`%`/`/` pattern operations with BuildKit's shell-pattern-to-regex rules.

use regex::Regex;

use super::scan::Scan;
use super::{ShellError, VarLookup};

impl<E: VarLookup + ?Sized> Scan<'_, E> {
    /// `${name<op>word}` and `${name:<op>word}`; the cursor is after `op`.
    pub(super) fn modifier(
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
    pub(super) fn replace(&mut self, start: usize, name: String) -> Result<String, ShellError> {
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
            self.replace_all(&re, &value, &replacement, start)?
        } else {
            match re.find(&value) {
                Some(m) => format!("{}{replacement}{}", &value[..m.start()], &value[m.end()..]),
                None => value,
            }
        })
    }

    /// `re` replaced everywhere in `value`, refused as soon as the result outgrows
    /// `MAX_EXPANSION_LEN` (`${v//?/$big}` multiplies `big` by the length of `v`).
    fn replace_all(
        &self,
        re: &Regex,
        value: &str,
        replacement: &str,
        start: usize,
    ) -> Result<String, ShellError> {
        // COMPAT(buildkit): Go's ReplaceAllString expands `$0`, `${n}` and `$$` in the
        // replacement; `Captures::expand` does the same, as the regex crate's
        // replace_all would.
        let mut out = String::new();
        let mut last = 0;
        for caps in re.captures_iter(value) {
            let m = caps.get(0).expect("group 0 always matches");
            out.push_str(&value[last..m.start()]);
            caps.expand(replacement, &mut out);
            last = m.end();
            self.check_len(out.len(), start)?;
        }
        out.push_str(&value[last..]);
        Ok(out)
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
