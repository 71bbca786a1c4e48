//! `.dockerignore` files with moby/patternmatcher semantics (what BuildKit uses).
//!
//! Owns: reading the file's text into patterns (lines trimmed, `#` comments, `!`
//! exceptions, patterns cleaned like Go's `filepath.Clean` with a leading `/`
//! dropped) and deciding whether a context-relative path is excluded: patterns
//! are anchored at the context root, `**` spans directories, `*`/`?` stay inside
//! one, the last matching pattern wins, and a path is excluded when one of its
//! parent directories is (`MatchesOrParentMatches`). Invariants: every pattern is
//! validated and compiled in `parse`, so matching cannot fail; the context root
//! itself is never excluded. Pure: the caller reads the file.

use std::path::{Path, PathBuf};

use regex::Regex;

use super::pattern::{self, PatternError};

/// Why a `.dockerignore` could not be used. `line` is 1-based.
#[derive(Debug, thiserror::Error)]
pub enum IgnoreError {
    /// A line that is only `!`.
    #[error(".dockerignore line {line}: illegal exclusion pattern: \"!\"")]
    LoneExclamation {
        /// The 1-based line number.
        line: usize,
    },
    /// A pattern Go's `filepath.Match` rejects.
    #[error(".dockerignore line {line}: checking pattern {pattern:?}")]
    BadPattern {
        /// The 1-based line number.
        line: usize,
        /// The pattern, path-cleaned, without its `!` or leading `/`.
        pattern: String,
        /// Why `filepath.Match` rejects it.
        source: PatternError,
    },
    /// A pattern whose translation the regex engine rejects (e.g. `\y`).
    #[error(".dockerignore line {line}: compiling pattern {pattern:?}")]
    Compile {
        /// The 1-based line number.
        line: usize,
        /// The pattern, path-cleaned, without its `!` or leading `/`.
        pattern: String,
        /// The regex engine's refusal.
        source: regex::Error,
    },
}

/// The parsed patterns of one `.dockerignore`, in file order.
#[derive(Debug, Clone, Default)]
pub struct IgnorePatterns {
    patterns: Vec<IgnorePattern>,
}

#[derive(Debug, Clone)]
struct IgnorePattern {
    /// The cleaned pattern without its `!`.
    text: String,
    /// A `!` pattern: re-includes what it matches.
    exception: bool,
    how: Match,
}

/// patternmatcher's match types: plain strings need no regex.
#[derive(Debug, Clone)]
enum Match {
    Exact,
    /// `dir/**`: the text before the `**`.
    Prefix(String),
    /// `**/name`: the text after the `**`.
    Suffix(String),
    Regex(Regex),
}

impl IgnorePatterns {
    /// Parse the contents of a `.dockerignore`.
    pub fn parse(text: &str) -> Result<Self, IgnoreError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut patterns = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            if let Some(p) = IgnorePattern::from_line(raw, i + 1)? {
                patterns.push(p);
            }
        }
        Ok(IgnorePatterns { patterns })
    }

    /// Compile patterns given one by one (`COPY --exclude`): no comment lines,
    /// as patternmatcher's `New` reads them (`--exclude=#x` is a pattern);
    /// blank ones are skipped. An error's `line` is the pattern's 1-based index.
    pub fn from_patterns<S: AsRef<str>>(patterns: &[S]) -> Result<Self, IgnoreError> {
        let mut out = Vec::new();
        for (i, raw) in patterns.iter().enumerate() {
            if let Some(p) = IgnorePattern::from_pattern(raw.as_ref(), i + 1)? {
                out.push(p);
            }
        }
        Ok(IgnorePatterns { patterns: out })
    }

    /// True when there are no patterns (nothing is excluded).
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// True when a `!` pattern re-includes something (BuildKit's `Exclusions()`).
    pub fn has_exceptions(&self) -> bool {
        self.patterns.iter().any(|p| p.exception)
    }

    /// True when a pattern (`*`, `**`, `**/*`) excludes every entry of the root.
    pub fn excludes_everything(&self) -> bool {
        self.patterns
            .iter()
            .any(|p| !p.exception && matches!(p.text.as_str(), "*" | "**" | "**/*"))
    }

    /// Whether `rel_path` ("a/b/c", relative to the context, '/'-separated) is excluded.
    pub fn is_excluded(&self, rel_path: &str) -> bool {
        let file = clean(rel_path);
        let file = file.trim_start_matches('/');
        if file.is_empty() || file == "." {
            // COMPAT(buildkit): the context root itself is never excluded.
            return false;
        }
        // Every ancestor directory, as a prefix of `file` (no allocation per pattern).
        let parents: Vec<&str> = file.match_indices('/').map(|(i, _)| &file[..i]).collect();
        let mut excluded = false;
        for p in &self.patterns {
            // An exclusion pattern only matters while not yet excluded, an exception only after.
            if p.exception != excluded {
                continue;
            }
            let hit = p.matches(file) || parents.iter().any(|d| p.matches(d));
            if hit {
                excluded = !p.exception;
            }
        }
        excluded
    }

    /// True when an excluded directory may still contain re-included paths (a later `!`
    /// pattern could match below it), so a walker must not prune it.
    pub fn dir_may_have_exceptions(&self, rel_dir: &str) -> bool {
        let dir = clean(rel_dir);
        let dir = dir.trim_start_matches('/');
        let dir_parts: Vec<&str> = match dir {
            "" | "." => Vec::new(),
            d => d.split('/').collect(),
        };
        self.patterns
            .iter()
            .filter(|p| p.exception)
            .any(|p| may_match_below(&p.text, &dir_parts))
    }
}

impl IgnorePattern {
    /// One line of the file; `None` for comments and blank lines.
    fn from_line(raw: &str, line: usize) -> Result<Option<Self>, IgnoreError> {
        // Comments are recognised before trimming, as moby's ignorefile reader does.
        if raw.starts_with('#') {
            return Ok(None);
        }
        Self::from_pattern(raw, line)
    }

    /// One pattern; `None` when blank.
    fn from_pattern(raw: &str, line: usize) -> Result<Option<Self>, IgnoreError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Ok(None);
        }
        let (exception, body) = match trimmed.strip_prefix('!') {
            Some(rest) => (true, rest.trim()),
            None => (false, trimmed),
        };
        if body.is_empty() {
            return Err(IgnoreError::LoneExclamation { line });
        }
        let cleaned = clean(body);
        let text = match cleaned.strip_prefix('/') {
            Some(rest) if !rest.is_empty() => rest.to_owned(),
            _ => cleaned,
        };
        // Validate with filepath.Match's rules, as patternmatcher does.
        pattern::matches(&text, ".").map_err(|source| IgnoreError::BadPattern {
            line,
            pattern: text.clone(),
            source,
        })?;
        let how = compile(&text).map_err(|source| IgnoreError::Compile {
            line,
            pattern: text.clone(),
            source,
        })?;
        Ok(Some(IgnorePattern {
            text,
            exception,
            how,
        }))
    }

    fn matches(&self, path: &str) -> bool {
        match &self.how {
            Match::Exact => path == self.text,
            Match::Prefix(prefix) => path.starts_with(prefix.as_str()),
            Match::Suffix(suffix) => {
                // `**/foo` also matches `foo` at the root.
                path.ends_with(suffix.as_str()) || suffix.strip_prefix('/') == Some(path)
            }
            Match::Regex(re) => re.is_match(path),
        }
    }
}

/// Translate a cleaned pattern the way patternmatcher's `compile` does, choosing the
/// cheapest match type that is exact.
fn compile(pattern: &str) -> Result<Match, regex::Error> {
    #[derive(PartialEq)]
    enum Kind {
        Exact,
        Prefix,
        Suffix,
        Regex,
    }
    let mut re = String::from("^");
    let mut kind = Kind::Exact;
    let mut chars = pattern.chars().peekable();
    let mut first = true;
    while let Some(ch) = chars.next() {
        match ch {
            '*' if chars.peek() == Some(&'*') => {
                chars.next();
                // `**/` is the same as `**`.
                chars.next_if_eq(&'/');
                if chars.peek().is_none() {
                    if kind == Kind::Exact {
                        kind = Kind::Prefix;
                    } else {
                        re.push_str(".*");
                        kind = Kind::Regex;
                    }
                } else {
                    re.push_str("(.*/)?");
                    kind = Kind::Regex;
                }
                if first {
                    kind = Kind::Suffix;
                }
            }
            '*' => {
                re.push_str("[^/]*");
                kind = Kind::Regex;
            }
            '?' => {
                re.push_str("[^/]");
                kind = Kind::Regex;
            }
            '.' | '+' | '(' | ')' | '|' | '{' | '}' | '$' => {
                re.push('\\');
                re.push(ch);
            }
            '\\' => match chars.next() {
                // COMPAT(buildkit): Go's regexp reads `\<punct>` as that literal; the regex
                // crate gives some (`\<`, `\>`) other meanings, so quote them ourselves.
                Some(e) if e.is_ascii_punctuation() => {
                    re.push_str(&regex::escape(e.encode_utf8(&mut [0; 4])));
                    kind = Kind::Regex;
                }
                Some(e) => {
                    re.push('\\');
                    re.push(e);
                    kind = Kind::Regex;
                }
                None => re.push_str(r"\\"),
            },
            '[' | ']' => {
                re.push(ch);
                kind = Kind::Regex;
            }
            _ => re.push(ch),
        }
        first = false;
    }
    Ok(match kind {
        Kind::Exact => Match::Exact,
        Kind::Prefix => Match::Prefix(pattern.strip_suffix("**").unwrap_or(pattern).to_owned()),
        Kind::Suffix => Match::Suffix(pattern.get(2..).unwrap_or_default().to_owned()),
        Kind::Regex => {
            re.push('$');
            Match::Regex(Regex::new(&re)?)
        }
    })
}

/// Could `pattern` match some path strictly below `dir`? Only a sure "no" answers
/// false: anything with `**`, a class (which may match `/`) or an escape is a maybe.
fn may_match_below(pattern: &str, dir: &[&str]) -> bool {
    if pattern.contains("**") || pattern.contains(['[', '\\']) {
        return true;
    }
    let parts: Vec<&str> = pattern.split('/').collect();
    // Without `**` every component matches exactly one path component.
    parts.len() > dir.len()
        && dir
            .iter()
            .zip(&parts)
            .all(|(d, p)| pattern::matches(p, d).unwrap_or(true))
}

/// Go's `path.Clean`: collapse `//`, drop `.`, resolve `..` lexically; "" becomes ".".
pub fn clean(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." if parts.last().is_some_and(|l| *l != "..") => {
                parts.pop();
            }
            ".." if rooted => {}
            p => parts.push(p),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_owned(),
        (false, false) => joined,
    }
}

/// Which ignore file applies: `<Dockerfile name>.dockerignore` beside the Dockerfile wins over
/// `<context>/.dockerignore` (BuildKit). Pure: returns candidate paths in priority order.
pub fn ignore_file_candidates(context: &Path, dockerfile: &Path) -> Vec<PathBuf> {
    let mut out = Vec::with_capacity(2);
    if let Some(name) = dockerfile.file_name() {
        let mut specific = name.to_os_string();
        specific.push(".dockerignore");
        out.push(dockerfile.with_file_name(specific));
    }
    let generic = context.join(".dockerignore");
    if !out.contains(&generic) {
        out.push(generic);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_matches_go() {
        for (input, want) in [
            ("", "."),
            ("a//b/./c/", "a/b/c"),
            ("a/../../b", "../b"),
            ("/../a", "/a"),
            ("/", "/"),
            ("./", "."),
            ("a/b/..", "a"),
            ("../../x/..", "../.."),
        ] {
            assert_eq!(clean(input), want, "clean({input:?})");
        }
    }

    #[test]
    fn compile_picks_patternmatchers_match_type() {
        let kind = |p: &str| match compile(p).unwrap() {
            Match::Exact => "exact".to_owned(),
            Match::Prefix(s) => format!("prefix:{s}"),
            Match::Suffix(s) => format!("suffix:{s}"),
            Match::Regex(r) => format!("regex:{}", r.as_str()),
        };
        assert_eq!(kind("a.b"), "exact");
        assert_eq!(kind("dir/**"), "prefix:dir/");
        assert_eq!(kind("**"), "suffix:");
        assert_eq!(kind("**/dir"), "suffix:/dir");
        assert_eq!(kind("**file"), "suffix:file");
        assert_eq!(kind("*"), "regex:^[^/]*$");
        assert_eq!(kind("a*/b"), "regex:^a[^/]*/b$");
        assert_eq!(kind("**/**"), "regex:^(.*/)?.*$");
        assert_eq!(kind("**/dir2/**"), "regex:^(.*/)?dir2/.*$");
        assert_eq!(kind("**/**/*.txt"), r"regex:^(.*/)?(.*/)?[^/]*\.txt$");
        assert_eq!(kind(".*"), r"regex:^\.[^/]*$");
        assert_eq!(kind("a[b-d]e"), "regex:^a[b-d]e$");
        assert_eq!(kind(r"a\<b"), "regex:^a<b$");
    }

    #[test]
    fn lines_are_trimmed_cleaned_and_commented() {
        let p =
            IgnorePatterns::parse("\u{feff}# c\r\n  /foo/../bar/  \r\n\n !  /baz\n #x\n").unwrap();
        let texts: Vec<(&str, bool)> = p
            .patterns
            .iter()
            .map(|p| (p.text.as_str(), p.exception))
            .collect();
        // A `#` after leading spaces is a pattern, not a comment.
        assert_eq!(texts, [("bar", false), ("baz", true), ("#x", false)]);
        assert!(IgnorePatterns::parse("").unwrap().is_empty());
    }

    #[test]
    fn bad_lines_are_errors_with_line_numbers() {
        let err = IgnorePatterns::parse("a\n  !  \n").unwrap_err();
        assert!(
            matches!(err, IgnoreError::LoneExclamation { line: 2 }),
            "{err:?}"
        );
        let err = IgnorePatterns::parse("ok\nx\nfoo[\n").unwrap_err();
        assert!(
            matches!(err, IgnoreError::BadPattern { line: 3, .. }),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            ".dockerignore line 3: checking pattern \"foo[\""
        );
    }

    #[test]
    fn exceptions_below_excluded_dirs() {
        let p = IgnorePatterns::parse("docs\n!docs/keep/file.md\nvendor\n!*.go\n").unwrap();
        assert!(p.dir_may_have_exceptions("docs"));
        assert!(p.dir_may_have_exceptions("docs/keep"));
        assert!(!p.dir_may_have_exceptions("docs/other"));
        // `*.go` has one component: it cannot match below `vendor` (parent matching
        // would have re-included `vendor` itself).
        assert!(!p.dir_may_have_exceptions("vendor"));
        let deep = IgnorePatterns::parse("build\n!**/*.keep\n").unwrap();
        assert!(deep.dir_may_have_exceptions("build/x"));
        let none = IgnorePatterns::parse("build\n").unwrap();
        assert!(!none.dir_may_have_exceptions("build"));
    }

    #[test]
    fn specific_ignore_file_comes_first() {
        let got = ignore_file_candidates(Path::new("/ctx"), Path::new("/ctx/build/app.Dockerfile"));
        assert_eq!(
            got,
            [
                PathBuf::from("/ctx/build/app.Dockerfile.dockerignore"),
                PathBuf::from("/ctx/.dockerignore")
            ]
        );
        let got = ignore_file_candidates(Path::new("."), Path::new("Dockerfile"));
        assert_eq!(
            got,
            [
                PathBuf::from("Dockerfile.dockerignore"),
                PathBuf::from("./.dockerignore")
            ]
        );
    }
}
