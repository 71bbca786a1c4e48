//! Text → AST. Logical lines, parser directives, heredoc bodies, nom
//! instruction parsers, spans, shell-word expansion and `.dockerignore`
//! patterns. Pure: no I/O beyond the bytes it is given.

pub mod ast;

pub use ast::{Directive, Dockerfile, Heredoc, Instruction, Position, Span, Warning};
pub mod ignore;
pub mod pattern;
pub mod shell;
