//! Heredoc detection (grammar §5): which words of a RUN/COPY/ADD line open
//! a heredoc, and the delimiter's name, fd, chomp and expand flags.
//!
//! BuildKit finds heredocs by lexing the whole line with its shell lexer
//! (quotes and escapes kept, unset variables kept) and matching every word
//! against `^(\d*)<<(-?)([^<]*)$` (the lexer slice is in `lexer.rs`).
//!
//! Invariant: a line the lexer rejects has no heredocs (BuildKit ignores
//! that error).

use super::lexer::{LexError, Lexer};
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
    pub cause: LexError,
}

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
    let fail = |cause: LexError| WordError {
        word: word.to_string(),
        cause,
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
        return Err(fail(LexError::Inconsistent));
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
