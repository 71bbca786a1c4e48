//! Phase one (grammar §1): physical lines → logical lines.
//!
//! Owns the BOM, line endings, the 65535-byte line limit, the directive
//! block, comments, blank lines, continuation with the escape character and
//! the physical line table, and reads heredoc bodies when phase two asks.
//!
//! Invariants: `line` is always the number of the last physical line
//! consumed (1-based; 0 before the first); a body line is never seen by the
//! continuation logic and vice versa.

use super::ast::Span;
use super::directives::Directives;
use super::error::ParseError;

/// BuildKit's `bufio.Scanner` limit minus one for the newline.
const MAX_LINE: usize = 65535;

/// One joined instruction line and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LogicalLine {
    /// The joined text (continuations removed, comments dropped).
    pub text: String,
    /// First physical line.
    pub start_line: usize,
    /// Last physical line of the continuation.
    pub end_line: usize,
    /// 1-based column of the first character of the instruction.
    pub column: usize,
    /// Comment lines seen since the previous instruction.
    pub comments: Vec<String>,
    /// A blank line sat inside the continuation (BuildKit warns).
    pub empty_continuation: bool,
}

/// A cursor over the source's physical lines.
pub(crate) struct Reader<'a> {
    src: &'a [u8],
    pos: usize,
    line: usize,
    directives: Directives,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(src: &'a [u8]) -> Self {
        Reader {
            src,
            pos: 0,
            line: 0,
            directives: Directives::new(),
        }
    }

    /// The number of the last physical line consumed.
    pub(crate) fn line(&self) -> usize {
        self.line
    }

    /// The effective escape character (fixed once the directive block ends).
    pub(crate) fn escape(&self) -> char {
        self.directives.escape()
    }

    pub(crate) fn into_directives(self) -> Directives {
        self.directives
    }

    /// The next physical line, its `\n` kept, BOM dropped on line 1.
    fn next_raw(&mut self) -> Result<Option<String>, ParseError> {
        if self.pos >= self.src.len() {
            return Ok(None);
        }
        let rest = &self.src[self.pos..];
        let len = rest
            .iter()
            .position(|&b| b == b'\n')
            .map_or(rest.len(), |i| i + 1);
        let mut raw = &rest[..len];
        let content = raw.strip_suffix(b"\n").unwrap_or(raw);
        if content.len() > MAX_LINE {
            return Err(ParseError::LineTooLong {
                line: self.line + 1,
            });
        }
        if self.line == 0 {
            raw = raw.strip_prefix(b"\xef\xbb\xbf").unwrap_or(raw);
        }
        self.pos += len;
        self.line += 1;
        // Invalid UTF-8 becomes U+FFFD here, once (see grammar §7), or
        // carriers when `kiln parse` asked for them (`rawbytes`).
        Ok(Some(super::rawbytes::text_of(raw)))
    }

    /// The next logical line, or `None` at end of input.
    pub(crate) fn next_logical(&mut self) -> Result<Option<LogicalLine>, ParseError> {
        let mut comments = Vec::new();
        while let Some(raw) = self.next_raw()? {
            if is_comment(&raw) {
                let text = comment_text(&raw);
                if text.is_empty() {
                    comments.clear();
                } else {
                    comments.push(text);
                }
            }
            let trimmed = trim_newline(&raw).trim_start();
            if self.directives.observe(trimmed, self.line)? {
                // Directive lines never become comments of an instruction.
                comments.pop();
                continue;
            }
            if is_comment(trimmed) {
                continue;
            }
            let column = trim_newline(&raw).chars().count() - trimmed.chars().count() + 1;
            let start_line = self.line;
            let (first, mut at_end) = trim_continuation(trimmed, self.escape());
            if at_end && first.is_empty() {
                continue;
            }
            let mut text = first.to_string();
            let mut empty_continuation = false;
            while !at_end {
                let Some(raw) = self.next_raw()? else { break };
                if is_comment(&raw) {
                    continue;
                }
                let line = trim_newline(&raw);
                if line.trim_start().is_empty() {
                    empty_continuation = true;
                    continue;
                }
                let (part, end) = trim_continuation(line, self.escape());
                text.push_str(part);
                at_end = end;
            }
            return Ok(Some(LogicalLine {
                text,
                start_line,
                end_line: self.line,
                column,
                comments,
                empty_continuation,
            }));
        }
        Ok(None)
    }

    /// Reads one heredoc body up to its terminator line. `chomp` (`<<-`)
    /// ignores leading tabs of the terminator line only; the content keeps
    /// its raw line endings and tabs.
    pub(crate) fn heredoc_body(
        &mut self,
        name: &str,
        chomp: bool,
        start: (usize, usize),
    ) -> Result<String, ParseError> {
        let mut content = String::new();
        while let Some(raw) = self.next_raw()? {
            let mut candidate = trim_newline(&raw);
            if chomp {
                candidate = candidate.trim_start_matches('\t');
            }
            if candidate == name {
                return Ok(content);
            }
            content.push_str(&raw);
        }
        Err(ParseError::UnterminatedHeredoc {
            name: name.to_string(),
            span: Span {
                start_line: start.0,
                end_line: self.line,
            },
            column: start.1,
        })
    }
}

/// BuildKit's `trimNewline`: every trailing `\r` and `\n`.
fn trim_newline(line: &str) -> &str {
    line.trim_end_matches(['\r', '\n'])
}

/// A line whose first non-whitespace character is `#`.
pub(crate) fn is_comment(line: &str) -> bool {
    line.trim_start().starts_with('#')
}

/// COMPAT(buildkit): the comment text is the raw line minus its first
/// character, trimmed, so `  # x` records `# x`.
fn comment_text(raw: &str) -> String {
    let mut chars = raw.chars();
    chars.next();
    chars.as_str().trim().to_string()
}

/// Grammar §1.3: a line continues when, after trailing blanks, it ends in
/// the escape character that is alone or not itself escaped. Returns the
/// text before it and whether the logical line ends here.
fn trim_continuation(line: &str, escape: char) -> (&str, bool) {
    let body = line.trim_end_matches([' ', '\t']);
    if let Some(before) = body.strip_suffix(escape) {
        if !before.ends_with(escape) {
            return (before, false);
        }
    }
    (line, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logical(src: &str) -> Vec<(String, usize, usize)> {
        let mut r = Reader::new(src.as_bytes());
        let mut out = Vec::new();
        while let Some(l) = r.next_logical().unwrap() {
            out.push((l.text, l.start_line, l.end_line));
        }
        out
    }

    #[test]
    fn continuation_keeps_whitespace_before_escape() {
        assert_eq!(
            logical("RUN echo hello\\\n  world\n"),
            vec![("RUN echo hello  world".to_string(), 1, 2)]
        );
    }

    #[test]
    fn double_escape_is_not_a_continuation() {
        assert_eq!(trim_continuation("a\\\\", '\\'), ("a\\\\", true));
        assert_eq!(trim_continuation("\\  ", '\\'), ("", false));
        assert_eq!(trim_continuation("a \\ \t", '\\'), ("a ", false));
    }

    #[test]
    fn comments_and_blanks_inside_continuation() {
        let got = logical("RUN a \\\n# c \\\n\n  b\nFROM x");
        assert_eq!(
            got,
            vec![
                ("RUN a   b".to_string(), 1, 4),
                ("FROM x".to_string(), 5, 5)
            ]
        );
    }

    #[test]
    fn bom_and_crlf() {
        assert_eq!(
            logical("\u{feff}# escape=`\r\nRUN a `\r\n b\r\n"),
            vec![("RUN a  b".to_string(), 2, 3)]
        );
    }

    #[test]
    fn overlong_line_is_rejected() {
        let src = format!("RUN {}\n", "x".repeat(MAX_LINE));
        let mut r = Reader::new(src.as_bytes());
        assert!(matches!(
            r.next_logical(),
            Err(ParseError::LineTooLong { line: 1 })
        ));
        let ok = format!("RUN {}\n", "x".repeat(MAX_LINE - 4));
        assert!(Reader::new(ok.as_bytes()).next_logical().is_ok());
    }
}
