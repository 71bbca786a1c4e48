//! Parser directives (`# syntax=`, `# escape=`, `# check=`), grammar §2.
//!
//! Invariant: directives are only recognised in the unbroken block of
//! directive lines at the top of the file; the first line that is not one
//! (comment, blank line, instruction, unknown name) closes the block for
//! good. Repeating a directive and an escape other than `\` or `` ` `` are
//! errors.

use super::ast::Directive;
use super::error::ParseError;
use nom::bytes::complete::{take_while, take_while1};
use nom::character::complete::{char, satisfy};
use nom::combinator::recognize;
use nom::sequence::{pair, preceded};
use nom::IResult;

/// Directive names BuildKit recognises.
const KNOWN: [&str; 3] = ["syntax", "escape", "check"];

/// The directive block's state while the top of the file is read.
#[derive(Debug)]
pub(crate) struct Directives {
    done: bool,
    escape: char,
    found: Vec<Directive>,
}

impl Directives {
    pub(crate) fn new() -> Self {
        Directives {
            done: false,
            escape: '\\',
            found: Vec::new(),
        }
    }

    /// The effective escape character.
    pub(crate) fn escape(&self) -> char {
        self.escape
    }

    /// Directives found so far, in order.
    pub(crate) fn into_found(self) -> Vec<Directive> {
        self.found
    }

    /// Looks at one line (newline and leading whitespace already removed).
    /// Returns true if it was a directive.
    pub(crate) fn observe(&mut self, line: &str, line_no: usize) -> Result<bool, ParseError> {
        if self.done {
            return Ok(false);
        }
        let Some((name, value)) = split_directive(line) else {
            self.done = true;
            return Ok(false);
        };
        let name = name.to_ascii_lowercase();
        if !KNOWN.contains(&name.as_str()) {
            self.done = true;
            return Ok(false);
        }
        if self.found.iter().any(|d| d.name == name) {
            return Err(ParseError::DuplicateDirective {
                name,
                line: line_no,
            });
        }
        if name == "escape" {
            self.escape = match value.as_str() {
                "\\" => '\\',
                "`" => '`',
                _ => {
                    return Err(ParseError::InvalidEscape {
                        value,
                        line: line_no,
                    })
                }
            };
        }
        self.found.push(Directive {
            name,
            value,
            line: line_no,
        });
        Ok(true)
    }
}

/// Go's RE2 `\s`: no vertical tab.
fn is_re_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\x0c' | '\r')
}

fn name(input: &str) -> IResult<&str, &str> {
    recognize(pair(
        satisfy(|c| c.is_ascii_alphabetic()),
        take_while(|c: char| c.is_ascii_alphanumeric()),
    ))(input)
}

/// `#` ws* NAME \s* `=` \s* VALUE (grammar §2), value trimmed of `\s`.
fn split_directive(line: &str) -> Option<(String, String)> {
    let rest = line.strip_prefix('#')?.trim_start();
    let parsed: IResult<&str, (&str, char)> =
        pair(name, preceded(take_while(is_re_space), char('=')))(rest);
    let (after_eq, (name, _)) = parsed.ok()?;
    let value = after_eq.trim_matches(is_re_space);
    if !value.is_empty() {
        return Some((name.to_string(), value.to_string()));
    }
    // COMPAT(buildkit): `\s*=\s*(.+?)\s*$` on an all-blank value still
    // matches by giving `(.+?)` the last blank character.
    let (_, last) = take_while1::<_, &str, ()>(is_re_space)(after_eq).ok()?;
    let c = last.chars().last()?;
    Some((name.to_string(), c.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directive_forms() {
        assert_eq!(
            split_directive("# escape = `"),
            Some(("escape".into(), "`".into()))
        );
        assert_eq!(
            split_directive("#syntax=docker/dockerfile:1  "),
            Some(("syntax".into(), "docker/dockerfile:1".into()))
        );
        assert_eq!(split_directive("# not a directive"), None);
        assert_eq!(
            split_directive("# syntax=  \t"),
            Some(("syntax".into(), "\t".into()))
        );
        assert_eq!(split_directive("# syntax="), None);
        assert_eq!(split_directive("# a-b=c"), None);
        assert_eq!(split_directive("FROM x"), None);
    }

    #[test]
    fn block_closes_at_first_other_line() {
        let mut d = Directives::new();
        assert!(!d.observe("# comment", 1).unwrap());
        assert!(!d.observe("# escape=`", 2).unwrap());
        assert_eq!(d.escape(), '\\');
    }

    #[test]
    fn duplicate_and_bad_escape_are_errors() {
        let mut d = Directives::new();
        assert!(d.observe("# escape=`", 1).unwrap());
        assert!(matches!(
            d.observe("# ESCAPE=\\", 2),
            Err(ParseError::DuplicateDirective { .. })
        ));
        let mut d = Directives::new();
        assert!(matches!(
            d.observe("# escape=x", 1),
            Err(ParseError::InvalidEscape { .. })
        ));
    }
}
