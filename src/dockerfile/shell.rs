//! Shell-word expansion with BuildKit's lexer semantics
//! (`frontend/dockerfile/shell/lex.go`, as the `buildkit-shell` tables encode them).
//!
//! Owns: `$name`, `${name}` and its modifiers (`:-` `-` `:+` `+` `:?` `?` `#` `##`
//! `%` `%%` `/` `//`), quotes, the escape character (`\` or `` ` ``) and word
//! splitting. Invariants: unset variables expand to the empty string (unless
//! `skip_unset_env`), every name looked up lands in exactly one of
//! `Expanded::matched` / `Expanded::unmatched`, and word splitting never yields an
//! empty word. Pure: no I/O, no process environment.

use std::collections::{BTreeMap, BTreeSet, HashMap};

mod scan;
mod subst;

use scan::Scan;
pub(crate) use scan::Words;

/// How deep `${…}` may nest inside `${…}` (each level is a frame of the recursive
/// lexer). BuildKit has no limit (Go stacks grow to 1 GB); real Dockerfiles nest two
/// or three levels, and 8,000 levels fit in one 48 KB line, which would exhaust a
/// Rust stack.
pub const MAX_NESTING: usize = 64;

/// The most bytes one word may expand to. `ENV A=${A}${A}` doubles per line, so
/// without a cap 40 lines reach 1.5 GB. 1 MiB is eight times what Linux passes as
/// one environment string to a process (`MAX_ARG_STRLEN`, 128 KiB).
pub const MAX_EXPANSION_LEN: usize = 1 << 20;

/// Where variable values come from.
pub trait VarLookup {
    /// The value of `name`, or `None` when it is not set (set-but-empty is `Some("")`).
    fn lookup(&self, name: &str) -> Option<&str>;
}

impl VarLookup for HashMap<String, String> {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.get(name).map(String::as_str)
    }
}

impl VarLookup for BTreeMap<String, String> {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.get(name).map(String::as_str)
    }
}

/// An ordered environment; the LAST pair with the name wins, as when ENV lines accumulate.
impl VarLookup for [(String, String)] {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

impl VarLookup for Vec<(String, String)> {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.as_slice().lookup(name)
    }
}

/// One expanded word and the variable names its expansion looked up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expanded {
    /// The word with quotes removed and variables substituted.
    pub value: String,
    /// Names looked up that were set (possibly to the empty string).
    pub matched: BTreeSet<String>,
    /// Names looked up that were not set.
    pub unmatched: BTreeSet<String>,
}

/// Why a word could not be expanded. `word` is the whole input; `offset` is the
/// byte offset in it of the construct that failed.
#[derive(Debug, thiserror::Error)]
pub enum ShellError {
    /// A `'` or `"` without its closing partner.
    #[error("expanding {word:?}: unterminated {quote} quote starting at byte {offset}")]
    UnterminatedQuote {
        /// The whole input word.
        word: String,
        /// Byte offset in `word` of the failing construct.
        offset: usize,
        /// The quote character, `'` or `"`.
        quote: char,
    },
    /// `${` without its closing `}`.
    #[error(
        "expanding {word:?}: syntax error: missing '}}' for the substitution at byte {offset}"
    )]
    MissingBrace {
        /// The whole input word.
        word: String,
        /// Byte offset in `word` of the failing construct.
        offset: usize,
    },
    /// `${}`, `${{…`, `${:…`.
    #[error("expanding {word:?}: syntax error: bad substitution at byte {offset}")]
    BadSubstitution {
        /// The whole input word.
        word: String,
        /// Byte offset in `word` of the failing construct.
        offset: usize,
    },
    /// `${name/pattern}` without the `/` that starts the replacement.
    #[error("expanding {word:?}: syntax error: missing '/' in ${{}} at byte {offset}")]
    MissingSlash {
        /// The whole input word.
        word: String,
        /// Byte offset in `word` of the failing construct.
        offset: usize,
    },
    /// `${name:=w}`, `${name=w}`, `${name:#p}`, … (BuildKit supports none of them).
    #[error(
        "expanding {word:?}: unsupported modifier ({modifier}) in substitution at byte {offset}"
    )]
    UnsupportedModifier {
        /// The whole input word.
        word: String,
        /// Byte offset in `word` of the failing construct.
        offset: usize,
        /// The modifier as written, e.g. `:=`.
        modifier: String,
    },
    /// `${name?message}` / `${name:?message}` on an unset (or empty) variable.
    #[error("expanding {word:?}: {name}: {message}")]
    Required {
        /// The whole input word.
        word: String,
        /// The variable's name.
        name: String,
        /// The word after `?`, or the default complaint when it is empty.
        message: String,
    },
    /// A `#`/`%`/`/` pattern with `\` before a character that cannot be escaped.
    #[error("expanding {word:?}: invalid pattern ({pattern}) in substitution: invalid escape '\\{found}'")]
    InvalidPatternEscape {
        /// The whole input word.
        word: String,
        /// The pattern, after expansion.
        pattern: String,
        /// The character after the `\`.
        found: String,
    },
    /// `${…}` nested deeper than [`MAX_NESTING`] levels.
    #[error("substitution at byte {offset} nested deeper than {limit} levels")]
    TooDeep {
        /// Byte offset in the word of the `${` that went one level too deep.
        offset: usize,
        /// The limit, [`MAX_NESTING`].
        limit: usize,
    },
    /// The expansion grew beyond [`MAX_EXPANSION_LEN`] bytes.
    #[error("expansion at byte {offset} grows beyond {limit} bytes")]
    TooLong {
        /// Byte offset in the word of the construct whose value overflowed.
        offset: usize,
        /// The limit, [`MAX_EXPANSION_LEN`].
        limit: usize,
    },
    /// A pattern the regex engine refused (only a huge one can be).
    #[error("expanding {word:?}: compiling pattern ({pattern}) in substitution")]
    PatternTooLarge {
        /// The whole input word.
        word: String,
        /// The pattern, after expansion.
        pattern: String,
        /// The regex engine's refusal.
        source: regex::Error,
    },
}

/// A configured lexer. Cheap to build; holds no per-word state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lexer {
    escape: char,
    raw_quotes: bool,
    raw_escapes: bool,
    skip_process_quotes: bool,
    skip_unset_env: bool,
}

impl Lexer {
    /// A lexer with escape character `escape` (`\` or `` ` ``) and BuildKit's defaults.
    pub fn new(escape: char) -> Self {
        Lexer {
            escape,
            raw_quotes: false,
            raw_escapes: false,
            skip_process_quotes: false,
            skip_unset_env: false,
        }
    }

    /// Keep quote characters in the output (BuildKit `RawQuotes`).
    pub fn raw_quotes(mut self, on: bool) -> Self {
        self.raw_quotes = on;
        self
    }

    /// Keep escape characters in the output (BuildKit `RawEscapes`).
    pub fn raw_escapes(mut self, on: bool) -> Self {
        self.raw_escapes = on;
        self
    }

    /// Treat `'` and `"` as ordinary characters (BuildKit `SkipProcessQuotes`).
    pub fn skip_process_quotes(mut self, on: bool) -> Self {
        self.skip_process_quotes = on;
        self
    }

    /// Leave references to unset variables as written (BuildKit `SkipUnsetEnv`).
    pub fn skip_unset_env(mut self, on: bool) -> Self {
        self.skip_unset_env = on;
        self
    }

    /// One word: quotes removed, no splitting (ENV values, WORKDIR, USER, LABEL…).
    pub fn expand_word(
        &self,
        word: &str,
        env: &(impl VarLookup + ?Sized),
    ) -> Result<Expanded, ShellError> {
        let mut scan = Scan::new(self, word, env);
        let (value, _) = scan.top()?;
        Ok(Expanded {
            value,
            matched: scan.matched,
            unmatched: scan.unmatched,
        })
    }

    /// Expand and split into words (COPY/ADD sources, EXPOSE, VOLUME…).
    pub fn expand_words(
        &self,
        word: &str,
        env: &(impl VarLookup + ?Sized),
    ) -> Result<Vec<String>, ShellError> {
        let mut scan = Scan::new(self, word, env);
        let (_, words) = scan.top()?;
        Ok(words)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn word(lexer: &Lexer, w: &str, e: &[(&str, &str)]) -> String {
        lexer.expand_word(w, &env(e)).unwrap().value
    }

    #[test]
    fn backtick_escape_makes_backslash_ordinary() {
        let l = Lexer::new('`');
        assert_eq!(word(&l, r"C:\go\bin", &[]), r"C:\go\bin");
        assert_eq!(word(&l, "a`$b", &[("b", "x")]), "a$b");
        assert_eq!(word(&l, "a`tb", &[]), "atb");
        assert_eq!(word(&l, "hello`", &[]), "hello");
        assert_eq!(word(&l, r#""a`"b""#, &[]), "a\"b");
        assert_eq!(word(&l, r#""a`tb""#, &[]), "a`tb");
        assert_eq!(
            word(&l, r##""a\""##, &[]),
            "a\\",
            "backslash before the closing quote is literal"
        );
        assert_eq!(l.expand_words("a` b c", &env(&[])).unwrap(), ["a b", "c"]);
    }

    #[test]
    fn backtick_escape_in_patterns() {
        let l = Lexer::new('`');
        // The pattern escape stays `\` whatever the lexer's escape is (lex.go does the same).
        assert_eq!(word(&l, r"${v#\*}", &[("v", "*x")]), "x");
        // COMPAT(buildkit): the kept "`" then is a literal of the pattern, so `}` is not trimmed.
        assert_eq!(word(&l, "${v%`}}", &[("v", "a}")]), "a}");
        assert_eq!(word(&l, "${v%`}}", &[("v", "a`}")]), "a");
    }

    #[test]
    fn later_pairs_win_in_ordered_env() {
        let l = Lexer::new('\\');
        assert_eq!(word(&l, "$A", &[("A", "1"), ("A", "2")]), "2");
    }

    #[test]
    fn options_keep_quotes_and_unset_references() {
        let raw = Lexer::new('\\').raw_quotes(true);
        assert_eq!(word(&raw, r#"'a'"b""#, &[]), r#"'a'"b""#);
        let keep = Lexer::new('\\').skip_unset_env(true);
        assert_eq!(
            word(&keep, "$X ${Y} ${Z:-d} $S", &[("S", "s")]),
            "$X ${Y} ${Z:-d} s"
        );
        let noquotes = Lexer::new('\\').skip_process_quotes(true);
        assert_eq!(word(&noquotes, r#"'$S'"#, &[("S", "s")]), "'s'");
        let esc = Lexer::new('\\').raw_escapes(true);
        assert_eq!(word(&esc, r"a\$b", &[]), r"a\$b");
    }

    #[test]
    fn replace_all_handles_empty_pattern_and_unicode() {
        let l = Lexer::new('\\');
        assert_eq!(word(&l, "${v//$e/-}", &[("v", "한a"), ("e", "")]), "-한-a-");
        assert_eq!(word(&l, "${v//?/x}", &[("v", "한국")]), "xx");
        assert_eq!(word(&l, "${v%%?}", &[("v", "한국")]), "한");
    }

    #[test]
    fn errors_carry_offsets() {
        let l = Lexer::new('\\');
        let err = l.expand_word("ab'cd", &env(&[])).unwrap_err();
        assert!(
            matches!(
                err,
                ShellError::UnterminatedQuote {
                    offset: 2,
                    quote: '\'',
                    ..
                }
            ),
            "{err:?}"
        );
        let err = l.expand_word("x${A:=1}", &env(&[])).unwrap_err();
        assert!(
            matches!(err, ShellError::UnsupportedModifier { offset: 1, ref modifier, .. } if modifier == ":=")
        );
        let err = l.expand_word("${A#\\x}", &env(&[("A", "1")])).unwrap_err();
        assert!(
            matches!(err, ShellError::InvalidPatternEscape { .. }),
            "{err:?}"
        );
        assert_eq!(
            l.expand_word("${A:?}", &env(&[("A", "")]))
                .unwrap_err()
                .to_string(),
            "expanding \"${A:?}\": A: is not allowed to be empty"
        );
    }
}
