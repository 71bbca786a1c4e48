//! The parsed Dockerfile: BuildKit's node model (keyword, flags, argument
//! strings) with source spans beside it. Nothing is expanded here: `$VAR`,
//! quotes and escapes in `args` are exactly as written (see
//! `grammar/dockerfile.md`). Typed instructions are made later, in `plan`.

use serde::Serialize;

/// A 1-based position in the Dockerfile (columns count characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Position {
    /// 1-based physical line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
}

/// The physical lines an instruction consumed, inclusive, 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Span {
    /// First physical line.
    pub start_line: usize,
    /// Last physical line (last continuation line or last heredoc terminator).
    pub end_line: usize,
}

/// A whole parsed Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Dockerfile {
    /// The effective escape character: `\\` or `` ` ``.
    pub escape: char,
    /// Parser directives from the top of the file, in order.
    pub directives: Vec<Directive>,
    /// Instructions in file order.
    pub instructions: Vec<Instruction>,
    /// Non-fatal findings (BuildKit's empty-continuation-line warning).
    pub warnings: Vec<Warning>,
}

impl Dockerfile {
    /// The value of a parser directive (`syntax`, `escape`, `check`), if set.
    pub fn directive(&self, name: &str) -> Option<&str> {
        self.directives
            .iter()
            .find(|d| d.name.eq_ignore_ascii_case(name))
            .map(|d| d.value.as_str())
    }
}

/// A parser directive (`# syntax=…`, `# escape=…`, `# check=…`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Directive {
    /// Lower-cased name.
    pub name: String,
    /// Trimmed value.
    pub value: String,
    /// 1-based line.
    pub line: usize,
}

/// A non-fatal parser finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Warning {
    /// BuildKit's short text, e.g. `Empty continuation line found in: RUN …`.
    pub short: String,
    /// The line it refers to.
    pub line: usize,
}

/// One instruction (BuildKit's `Node` for a line).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Instruction {
    /// The keyword exactly as written (`FROM`, `From`, …).
    pub keyword: String,
    /// Leading `--flags`, quotes and escapes removed (`--chown=a b`).
    pub flags: Vec<String>,
    /// Argument strings as BuildKit's dump shows them (ENV/LABEL: key, value, separator triples).
    pub args: Vec<String>,
    /// True when the arguments came from a JSON array.
    pub json_form: bool,
    /// ONBUILD only: the wrapped instruction.
    pub sub: Option<Box<Instruction>>,
    /// The logical line after continuation joining.
    pub original: String,
    /// Physical lines consumed, heredoc bodies included (an ONBUILD's
    /// wrapped instruction has its ONBUILD's span).
    pub span: Span,
    /// Heredocs, in order of appearance (for ONBUILD they sit here, not on `sub`).
    pub heredocs: Vec<Heredoc>,
    /// Comment lines seen since the previous instruction (text after `#`, trimmed).
    pub comments: Vec<String>,
}

impl Instruction {
    /// The keyword in lower case, as used for dispatch (`from`, `run`, …).
    pub fn command(&self) -> String {
        self.keyword.to_ascii_lowercase()
    }
}

/// A heredoc body attached to RUN, COPY or ADD.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Heredoc {
    /// The delimiter word with quotes removed.
    pub name: String,
    /// The file descriptor prefix (`3<<EOF` → 3; 0 when absent).
    pub fd: u32,
    /// False when any part of the delimiter was quoted: no expansion.
    pub expand: bool,
    /// `<<-`: leading tabs are to be stripped by the builder.
    pub chomp: bool,
    /// The body, line endings kept, terminator excluded.
    pub content: String,
}
