//! Parse diagnostics: the one error enum of the Dockerfile parser and the
//! excerpt renderer that later stages reuse for plan and build errors.
//!
//! Invariants: every variant knows the physical line(s) it refers to, so
//! `position()` never guesses; rendering never panics, whatever the source
//! bytes or spans (out-of-range lines are simply not printed).

use super::ast::{Position, Span};
use super::lexer::LexError;
use thiserror::Error;

/// Why a Dockerfile was rejected. Messages follow BuildKit's wording where a
/// user may search for it, lower-cased per house style.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParseError {
    /// A physical line is longer than BuildKit's scanner accepts.
    #[error("dockerfile line greater than max allowed size of 65535")]
    LineTooLong {
        /// The offending line.
        line: usize,
    },
    /// The same parser directive appears twice at the top of the file.
    #[error("only one {name} parser directive can be used")]
    DuplicateDirective {
        /// Lower-cased directive name.
        name: String,
        /// Line of the second occurrence.
        line: usize,
    },
    /// `# escape=` names something other than `\` or `` ` ``.
    #[error("invalid escape token '{value}' does not match ` or \\")]
    InvalidEscape {
        /// The rejected value.
        value: String,
        /// Line of the directive.
        line: usize,
    },
    /// Only comments, directives and blank lines.
    #[error("file with no instructions")]
    NoInstructions {
        /// Last line of the file (0 for an empty file).
        line: usize,
    },
    /// ENV/LABEL legacy form (`ENV PATH`) without a value.
    #[error("{keyword} must have two arguments")]
    MissingValue {
        /// `ENV` or `LABEL`.
        keyword: &'static str,
        /// The instruction's lines.
        span: Span,
        /// Column of the keyword.
        column: usize,
    },
    /// ENV/LABEL `k=v` form with a word lacking `=`.
    #[error("syntax error - can't find = in {word:?}. must be of the form: name=value")]
    MissingEquals {
        /// The word without `=`.
        word: String,
        /// The instruction's lines.
        span: Span,
        /// Column of the keyword.
        column: usize,
    },
    /// A JSON array whose elements are not all strings.
    #[error("when using JSON array syntax, arrays must be comprised of strings only")]
    JsonNotStrings {
        /// The instruction's lines.
        span: Span,
        /// Column of the keyword.
        column: usize,
    },
    /// ONBUILD wrapped in ONBUILD beyond any sane depth.
    #[error("onbuild nesting deeper than {limit} levels")]
    OnbuildTooDeep {
        /// The depth limit.
        limit: usize,
        /// The instruction's lines.
        span: Span,
        /// Column of the keyword.
        column: usize,
    },
    /// A heredoc delimiter word that the shell lexer cannot read.
    #[error("reading heredoc delimiter {word:?}")]
    HeredocWord {
        /// The delimiter word as written.
        word: String,
        /// What the lexer objected to.
        #[source]
        cause: LexError,
        /// The instruction's lines.
        span: Span,
        /// Column of the keyword.
        column: usize,
    },
    /// End of file before a heredoc's terminator line.
    #[error("unterminated heredoc {name}")]
    UnterminatedHeredoc {
        /// The delimiter that never appeared.
        name: String,
        /// From the instruction's first line to the end of the file.
        span: Span,
        /// Column of the keyword.
        column: usize,
    },
    /// An instruction keyword BuildKit's dispatcher does not know (reported
    /// by [`super::check_instruction_names`], never by `parse`).
    #[error("unknown instruction: {keyword}{}", suggestion_text(.suggestion))]
    UnknownInstruction {
        /// The keyword as written.
        keyword: String,
        /// The closest known instruction, if any is close.
        suggestion: Option<&'static str>,
        /// The instruction's lines.
        span: Span,
    },
}

fn suggestion_text(s: &Option<&'static str>) -> String {
    match s {
        Some(name) => format!(" (did you mean {name}?)"),
        None => String::new(),
    }
}

impl ParseError {
    /// The physical lines the error refers to.
    pub fn span(&self) -> Span {
        let one = |line: usize| Span {
            start_line: line,
            end_line: line,
        };
        match self {
            ParseError::LineTooLong { line }
            | ParseError::DuplicateDirective { line, .. }
            | ParseError::InvalidEscape { line, .. } => one(*line),
            // The whole file is the problem.
            ParseError::NoInstructions { line } => Span {
                start_line: 1,
                end_line: (*line).max(1),
            },
            ParseError::MissingValue { span, .. }
            | ParseError::MissingEquals { span, .. }
            | ParseError::JsonNotStrings { span, .. }
            | ParseError::OnbuildTooDeep { span, .. }
            | ParseError::HeredocWord { span, .. }
            | ParseError::UnterminatedHeredoc { span, .. }
            | ParseError::UnknownInstruction { span, .. } => *span,
        }
    }

    /// Line and column (1-based) where the problem starts.
    pub fn position(&self) -> Position {
        let column = match self {
            ParseError::MissingValue { column, .. }
            | ParseError::MissingEquals { column, .. }
            | ParseError::JsonNotStrings { column, .. }
            | ParseError::OnbuildTooDeep { column, .. }
            | ParseError::HeredocWord { column, .. }
            | ParseError::UnterminatedHeredoc { column, .. } => *column,
            _ => 1,
        };
        Position {
            line: self.span().start_line,
            column,
        }
    }

    /// A human diagnostic: the message, `--> file:line:col`, and the
    /// Dockerfile lines involved with the instruction marked.
    pub fn render(&self, src: &[u8], filename: &str) -> String {
        let keyword = match self {
            // Only the misspelt word is wrong, so only it is marked.
            ParseError::UnknownInstruction { keyword, .. } => Some(keyword.as_str()),
            _ => None,
        };
        let mut out = excerpt(src, filename, self.span(), &self.to_string(), keyword);
        let mut cause = std::error::Error::source(self);
        while let Some(c) = cause {
            out.push_str(&format!("caused by: {c}\n"));
            cause = c.source();
        }
        out
    }

    /// The message with its causes, `: `-separated (for one-line reports
    /// such as `kiln parse --json`).
    pub fn full_message(&self) -> String {
        let mut out = self.to_string();
        let mut cause = std::error::Error::source(self);
        while let Some(c) = cause {
            out.push_str(": ");
            out.push_str(&c.to_string());
            cause = c.source();
        }
        out
    }
}

/// How many lines of a long span are shown before eliding the middle.
const MAX_EXCERPT_LINES: usize = 8;

/// Renders `error: message`, a `--> file:line:col` pointer and the source
/// lines of `span` (long spans elided in the middle), the first one marked
/// under its text. Later stages call this with
/// an instruction's span to show which instruction failed.
pub fn render_excerpt(src: &[u8], filename: &str, span: Span, message: &str) -> String {
    excerpt(src, filename, span, message, None)
}

/// `render_excerpt`, optionally marking only `keyword` on the first line.
fn excerpt(src: &[u8], filename: &str, span: Span, message: &str, keyword: Option<&str>) -> String {
    let text = String::from_utf8_lossy(src);
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let lines: Vec<&str> = text.split('\n').collect();
    let start = span.start_line.max(1);
    let end = span.end_line.max(start);
    let width = end.to_string().len();
    let first = lines.get(start - 1).map(|l| trim_cr(l)).unwrap_or("");
    // The marked keyword may sit after ONBUILD; without one, the text starts
    // after the indentation.
    let mark_at = keyword
        .and_then(|k| first.find(k))
        .map_or(leading_ws_chars(first), |at| first[..at].chars().count());
    let column = mark_at + 1;
    let pad = " ".repeat(width);
    let mut out = format!("error: {message}\n{pad}--> {filename}:{start}:{column}\n{pad} |\n");
    let shown: Vec<usize> = if end - start < MAX_EXCERPT_LINES {
        (start..=end).collect()
    } else {
        let head = start..start + MAX_EXCERPT_LINES / 2;
        let tail = end + 1 - MAX_EXCERPT_LINES / 2..=end;
        head.chain(tail).collect()
    };
    let mut prev = None;
    for n in shown {
        let Some(line) = lines.get(n - 1).map(|l| trim_cr(l)) else {
            break;
        };
        if prev.is_some_and(|p: usize| p + 1 != n) {
            out.push_str(&format!("{pad} ...\n"));
        }
        prev = Some(n);
        let shown_line = line.replace('\t', "    ");
        out.push_str(&format!("{n:>width$} | {shown_line}\n"));
        let (lead, marked) = match keyword {
            Some(k) if n == start => {
                let before = &line[..byte_at(line, mark_at)];
                (expanded_width(before), k.chars().count())
            }
            // Continuation and heredoc lines are shown, not marked: the
            // carets point at where the instruction starts.
            Some(_) => (0, 0),
            None if n != start => (0, 0),
            None => (
                leading_ws_chars(&shown_line),
                shown_line.trim().chars().count(),
            ),
        };
        if marked > 0 {
            let marks = "^".repeat(marked);
            out.push_str(&format!("{pad} | {}{marks}\n", " ".repeat(lead)));
        }
    }
    out
}

/// Byte offset of the `chars`-th character (or the end).
fn byte_at(line: &str, chars: usize) -> usize {
    line.char_indices()
        .nth(chars)
        .map_or(line.len(), |(i, _)| i)
}

/// Width of `text` once tabs are shown as four spaces.
fn expanded_width(text: &str) -> usize {
    text.chars().map(|c| if c == '\t' { 4 } else { 1 }).sum()
}

fn trim_cr(line: &str) -> &str {
    line.trim_end_matches('\r')
}

fn leading_ws_chars(line: &str) -> usize {
    line.chars().take_while(|c| c.is_whitespace()).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpt_marks_the_instruction_text() {
        let src = b"FROM a\n\n  RNU echo hi\n";
        let span = Span {
            start_line: 3,
            end_line: 3,
        };
        let got = render_excerpt(src, "Dockerfile", span, "boom");
        assert_eq!(
            got,
            "error: boom\n --> Dockerfile:3:3\n  |\n3 |   RNU echo hi\n  |   ^^^^^^^^^^^\n"
        );
    }

    #[test]
    fn excerpt_survives_spans_past_the_end() {
        let span = Span {
            start_line: 40,
            end_line: 90,
        };
        let got = render_excerpt(b"FROM a", "D", span, "x");
        assert!(got.starts_with("error: x\n"));
    }

    #[test]
    fn unknown_instruction_message_has_hint() {
        let e = ParseError::UnknownInstruction {
            keyword: "RNU".into(),
            suggestion: Some("RUN"),
            span: Span {
                start_line: 3,
                end_line: 3,
            },
        };
        assert_eq!(
            e.to_string(),
            "unknown instruction: RNU (did you mean RUN?)"
        );
        assert_eq!(e.position(), Position { line: 3, column: 1 });
    }

    #[test]
    fn render_lists_causes() {
        let e = ParseError::HeredocWord {
            word: "<<${".into(),
            cause: LexError::MissingBrace,
            span: Span {
                start_line: 1,
                end_line: 1,
            },
            column: 1,
        };
        assert!(e
            .render(b"RUN <<${", "D")
            .ends_with("caused by: syntax error: missing '}'\n"));
        assert_eq!(
            e.full_message(),
            "reading heredoc delimiter \"<<${\": syntax error: missing '}'"
        );
    }
}
