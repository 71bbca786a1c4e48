//! Text → AST. Logical lines, parser directives, heredoc bodies, nom
//! instruction parsers, spans, shell-word expansion and `.dockerignore`
//! patterns. Pure: no I/O beyond the bytes it is given.
//!
//! Parsing follows BuildKit's two phases (see `grammar/dockerfile.md`):
//! `lines` turns physical lines into logical lines (directives, comments,
//! continuations, the line table), `parse` turns each logical
//! line into an [`Instruction`], and heredoc bodies are read back from the
//! line reader right after the instruction that opens them.
//!
//! Invariants: `parse` accepts and splits exactly what BuildKit's parser
//! accepts and splits (the conformance corpus checks it), never expands
//! variables, and never panics on any input.

pub mod ast;
mod astjson;
mod directives;
mod dump;
mod error;
mod heredoc;
mod json;
mod lexer;
mod lines;
mod names;
mod parse;
mod rawbytes;
mod words;

pub mod ignore;
pub mod pattern;
pub mod shell;

pub use ast::{Directive, Dockerfile, Heredoc, Instruction, Position, Span, Warning};
pub use astjson::{ast_json, ast_json_error};
pub(crate) use dump::push_go_escaped;
pub use dump::{dump, dump_instruction, go_quote};
pub use error::{render_excerpt, ParseError};
pub use lexer::LexError;
pub use names::{check_instruction_names, KNOWN_INSTRUCTIONS};

use lines::{LogicalLine, Reader};
use parse::RuleError;

/// Parses a Dockerfile. Accepts exactly what BuildKit's parser accepts.
/// Bytes that are not UTF-8 become U+FFFD.
pub fn parse(src: &[u8]) -> Result<Dockerfile, ParseError> {
    parse_from(Reader::new(src))
}

/// A parse for `kiln parse`'s two views, which show bytes that are not
/// UTF-8 as BuildKit does: `\xHH` in the dump, U+FFFD in `ast.json`.
/// (Its AST holds such bytes as private-use carriers, so it is not handed
/// out: the builder gets [`parse`]'s.)
#[derive(Debug)]
pub struct ParsedSource {
    df: Dockerfile,
    carriers: bool,
}

impl ParsedSource {
    /// BuildKit's dump.
    pub fn dump(&self) -> String {
        rawbytes::active(self.carriers, || dump(&self.df))
    }

    /// The `ast.json` view; Go's `json.Marshal` makes each invalid byte U+FFFD.
    pub fn ast_json(&self) -> serde_json::Value {
        rawbytes::active(self.carriers, || {
            let mut v = ast_json(&self.df);
            rawbytes::replace_in_json(&mut v);
            v
        })
    }
}

/// Parses `src` for [`ParsedSource`]'s views. Accepts and rejects exactly
/// what [`parse`] does, with [`parse`]'s error.
pub fn parse_source(src: &[u8]) -> Result<ParsedSource, ParseError> {
    let carriers = rawbytes::wants_carriers(src);
    match rawbytes::active(carriers, || parse_from(Reader::new(src))) {
        Ok(df) => Ok(ParsedSource { df, carriers }),
        // The error from the U+FFFD reading: its text must not hold carriers.
        Err(_) => parse(src).map(|df| ParsedSource {
            df,
            carriers: false,
        }),
    }
}

fn parse_from(mut reader: Reader) -> Result<Dockerfile, ParseError> {
    let mut instructions = Vec::new();
    let mut warnings = Vec::new();
    while let Some(line) = reader.next_logical()? {
        if line.empty_continuation {
            warnings.push(Warning {
                short: format!("Empty continuation line found in: {}", line.text),
                line: line.end_line,
            });
        }
        instructions.push(instruction(&mut reader, line)?);
    }
    if instructions.is_empty() {
        return Err(ParseError::NoInstructions {
            line: reader.line(),
        });
    }
    let escape = reader.escape();
    Ok(Dockerfile {
        escape,
        directives: reader.into_directives().into_found(),
        instructions,
        warnings,
    })
}

/// Phase two for one logical line, then its heredoc bodies (grammar §5).
fn instruction(reader: &mut Reader, line: LogicalLine) -> Result<Instruction, ParseError> {
    let span = Span {
        start_line: line.start_line,
        end_line: line.end_line,
    };
    let column = line.column;
    let mut ins = parse::instruction(&line.text, reader.escape()).map_err(|e| match e {
        RuleError::MissingValue(keyword) => ParseError::MissingValue {
            keyword,
            span,
            column,
        },
        RuleError::MissingEquals(word) => ParseError::MissingEquals { word, span, column },
        RuleError::JsonNotStrings => ParseError::JsonNotStrings { span, column },
        RuleError::OnbuildTooDeep => ParseError::OnbuildTooDeep {
            limit: parse::MAX_ONBUILD_DEPTH,
            span,
            column,
        },
    })?;
    if can_contain_heredoc(&ins) && line.text.contains("<<") {
        let openers = heredoc::openers(&line.text).map_err(|e| ParseError::HeredocWord {
            word: e.word,
            cause: e.cause,
            span,
            column,
        })?;
        for op in openers {
            let content = reader.heredoc_body(&op.name, op.chomp, (span.start_line, column))?;
            ins.heredocs.push(Heredoc {
                name: op.name,
                fd: op.fd,
                expand: op.expand,
                chomp: op.chomp,
                content,
            });
        }
    }
    let full = Span {
        start_line: span.start_line,
        end_line: reader.line(),
    };
    // Wrapped instructions share the ONBUILD's lines, so an error in a
    // trigger can still be shown in place (ast.json reports them as 0..0).
    let mut cur = Some(&mut ins);
    while let Some(i) = cur {
        i.span = full;
        cur = i.sub.as_deref_mut();
    }
    ins.comments = line.comments;
    Ok(ins)
}

/// RUN/COPY/ADD in shell form, also when wrapped by ONBUILD (grammar §5.1).
fn can_contain_heredoc(ins: &Instruction) -> bool {
    let target = match &ins.sub {
        Some(sub) if ins.keyword.eq_ignore_ascii_case("onbuild") => sub,
        _ => ins,
    };
    heredoc::keyword_allows(&target.keyword) && !target.json_form
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn onbuild_heredoc_attaches_to_onbuild_and_sub_shares_span() {
        let df = parse(b"FROM a\nONBUILD RUN <<EOF\nx\nEOF\nRUN y\n").unwrap();
        let ob = &df.instructions[1];
        assert_eq!(ob.heredocs.len(), 1);
        assert_eq!((ob.span.start_line, ob.span.end_line), (2, 4));
        assert_eq!(ob.sub.as_ref().unwrap().span, ob.span);
        assert_eq!(df.instructions[2].span.start_line, 5);
    }

    #[test]
    fn errors_carry_the_instruction_lines() {
        let err = parse(b"FROM a\n  ENV a=b \\\n  c\n").unwrap_err();
        assert_eq!(err.position(), Position { line: 2, column: 3 });
        assert_eq!(err.span().end_line, 3);
        let err = parse(b"FROM a\nRUN <<EOF\nbody\n").unwrap_err();
        assert!(matches!(err, ParseError::UnterminatedHeredoc { ref name, .. } if name == "EOF"));
        assert_eq!(err.span().end_line, 3);
    }

    #[test]
    fn json_form_is_never_a_heredoc() {
        let df = parse(b"FROM a\nRUN [\"<<EOF\"]\nEOF\n").unwrap();
        assert_eq!(dump(&df), "(from \"a\")\n(run \"<<EOF\")\n(eof \"\")\n");
    }

    #[test]
    fn directives_are_recorded() {
        let df = parse(b"# syntax=docker/dockerfile:1\n# CHECK=skip=all\nFROM a\n").unwrap();
        assert_eq!(df.directive("syntax"), Some("docker/dockerfile:1"));
        assert_eq!(df.directive("check"), Some("skip=all"));
        assert_eq!(df.directive("escape"), None);
        assert!(df.instructions[0].comments.is_empty());
    }

    #[test]
    fn whitespace_only_line_inside_continuation_is_an_empty_continuation() {
        let df = parse(b"RUN a \\\n  \t\n b\nFROM x\n").unwrap();
        assert_eq!(dump(&df), "(run \"a  b\")\n(from \"x\")\n");
        assert_eq!(df.warnings.len(), 1);
        assert_eq!(
            df.warnings[0].short,
            "Empty continuation line found in: RUN a  b"
        );
        assert_eq!(df.warnings[0].line, 3);
    }
}
