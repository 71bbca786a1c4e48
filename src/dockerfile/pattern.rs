//! Go's `path/filepath.Match` (Unix flavour) for COPY/ADD source wildcards.
//!
//! Owns: `*` (any run of characters except `/`), `?` (one character except `/`),
//! `[a-z]` / `[^x]` classes, `\` escapes, and Go's `ErrBadPattern` cases.
//! Invariants: a malformed pattern is an error whether or not the name matches
//! (Go ≥ 1.16 checks the rest of the pattern even after a mismatch), and matching
//! is anchored at both ends. Pure: names are compared as given, never looked up.

/// A pattern `filepath.Match` would reject with `ErrBadPattern`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    /// The pattern is malformed; `reason` says how.
    #[error("syntax error in pattern {pattern:?}: {reason}")]
    BadPattern {
        pattern: String,
        reason: BadPatternReason,
    },
}

/// What is wrong with a malformed pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BadPatternReason {
    /// A `\` with nothing after it.
    #[error("trailing backslash")]
    TrailingBackslash,
    /// A `[` class that is empty, unclosed, or has a range end missing (`[-x]`, `[x-]`, `[]`).
    #[error("malformed character class")]
    BadClass,
}

/// True when `name` matches `pattern` in full, with Go's `filepath.Match` rules.
pub fn matches(pattern: &str, name: &str) -> Result<bool, PatternError> {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    match_chars(&p, &n).map_err(|reason| PatternError::BadPattern {
        pattern: pattern.to_owned(),
        reason,
    })
}

/// True when `pattern` has any character `matches` treats specially (`*?[\`),
/// i.e. a COPY source must be globbed rather than taken literally.
pub fn has_meta(pattern: &str) -> bool {
    pattern.contains(['*', '?', '[', '\\'])
}

fn match_chars(mut pattern: &[char], mut name: &[char]) -> Result<bool, BadPatternReason> {
    'chunks: while !pattern.is_empty() {
        let (star, chunk, rest) = scan_chunk(pattern);
        pattern = rest;
        if star && chunk.is_empty() {
            // A trailing `*` matches the rest of the name unless it has a `/`.
            return Ok(!name.contains(&'/'));
        }
        // At the current position first; the last chunk must use up the name.
        if let Some(t) = match_chunk(chunk, name)? {
            if t.is_empty() || !pattern.is_empty() {
                name = t;
                continue;
            }
        }
        if star {
            // Let the star swallow 1..=k characters, never a `/`.
            for i in 0..name.len() {
                if name[i] == '/' {
                    break;
                }
                if let Some(t) = match_chunk(chunk, &name[i + 1..])? {
                    if pattern.is_empty() && !t.is_empty() {
                        continue;
                    }
                    name = t;
                    continue 'chunks;
                }
            }
        }
        // No match; still report a malformed remainder, as Go does.
        while !pattern.is_empty() {
            let (_, chunk, rest) = scan_chunk(pattern);
            pattern = rest;
            match_chunk(chunk, &[])?;
        }
        return Ok(false);
    }
    Ok(name.is_empty())
}

/// Split off leading stars and the literal/class run up to the next unbracketed `*`.
fn scan_chunk(mut pattern: &[char]) -> (bool, &[char], &[char]) {
    let mut star = false;
    while pattern.first() == Some(&'*') {
        pattern = &pattern[1..];
        star = true;
    }
    let (mut in_range, mut i) = (false, 0);
    while i < pattern.len() {
        match pattern[i] {
            '\\' if i + 1 < pattern.len() => i += 1,
            '[' => in_range = true,
            ']' => in_range = false,
            '*' if !in_range => break,
            _ => {}
        }
        i += 1;
    }
    (star, &pattern[..i], &pattern[i..])
}

/// Match `chunk` (no stars) at the start of `s`; `Some(rest)` on success. After a
/// mismatch the chunk is still walked so syntax errors surface.
fn match_chunk<'s>(
    mut chunk: &[char],
    mut s: &'s [char],
) -> Result<Option<&'s [char]>, BadPatternReason> {
    let mut failed = false;
    while let Some(&c) = chunk.first() {
        failed |= s.is_empty();
        chunk = &chunk[1..];
        match c {
            '[' => {
                let r = if failed { None } else { Some(s[0]) };
                s = if failed { s } else { &s[1..] };
                let (matched, negated, rest) = match_class(chunk, r)?;
                chunk = rest;
                failed |= matched == negated;
            }
            '?' => {
                if !failed {
                    failed = s[0] == '/';
                    s = &s[1..];
                }
            }
            _ => {
                let lit = if c == '\\' {
                    let Some(&e) = chunk.first() else {
                        return Err(BadPatternReason::TrailingBackslash);
                    };
                    chunk = &chunk[1..];
                    e
                } else {
                    c
                };
                if !failed {
                    failed = lit != s[0];
                    s = &s[1..];
                }
            }
        }
    }
    Ok(if failed { None } else { Some(s) })
}

/// A class body after `[`: returns (some range matched `r`, negated, rest after `]`).
fn match_class(
    mut chunk: &[char],
    r: Option<char>,
) -> Result<(bool, bool, &[char]), BadPatternReason> {
    let negated = chunk.first() == Some(&'^');
    if negated {
        chunk = &chunk[1..];
    }
    let (mut matched, mut ranges) = (false, 0);
    loop {
        if chunk.first() == Some(&']') && ranges > 0 {
            return Ok((matched, negated, &chunk[1..]));
        }
        let (lo, rest) = class_char(chunk)?;
        chunk = rest;
        let mut hi = lo;
        if chunk.first() == Some(&'-') {
            (hi, chunk) = class_char(&chunk[1..])?;
        }
        matched |= r.is_some_and(|r| lo <= r && r <= hi);
        ranges += 1;
    }
}

/// One (possibly escaped) class character; something must follow it.
fn class_char(chunk: &[char]) -> Result<(char, &[char]), BadPatternReason> {
    let chunk = match chunk.first() {
        None | Some('-' | ']') => return Err(BadPatternReason::BadClass),
        Some('\\') => &chunk[1..],
        Some(_) => chunk,
    };
    match chunk {
        [c, rest @ ..] if !rest.is_empty() => Ok((*c, rest)),
        _ => Err(BadPatternReason::BadClass),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Go's `path/filepath` match_test table (Unix rows): (pattern, name, match, bad pattern).
    const GO_TABLE: &[(&str, &str, bool, bool)] = &[
        ("abc", "abc", true, false),
        ("*", "abc", true, false),
        ("*c", "abc", true, false),
        ("a*", "a", true, false),
        ("a*", "abc", true, false),
        ("a*", "ab/c", false, false),
        ("a*/b", "abc/b", true, false),
        ("a*/b", "a/c/b", false, false),
        ("a*b*c*d*e*/f", "axbxcxdxe/f", true, false),
        ("a*b*c*d*e*/f", "axbxcxdxexxx/f", true, false),
        ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", false, false),
        ("a*b*c*d*e*/f", "axbxcxdxexxx/fff", false, false),
        ("a*b?c*x", "abxbbxdbxebxczzx", true, false),
        ("a*b?c*x", "abxbbxdbxebxczzy", false, false),
        ("ab[c]", "abc", true, false),
        ("ab[b-d]", "abc", true, false),
        ("ab[e-g]", "abc", false, false),
        ("ab[^c]", "abc", false, false),
        ("ab[^b-d]", "abc", false, false),
        ("ab[^e-g]", "abc", true, false),
        ("a\\*b", "a*b", true, false),
        ("a\\*b", "ab", false, false),
        ("a?b", "a☺b", true, false),
        ("a[^a]b", "a☺b", true, false),
        ("a???b", "a☺b", false, false),
        ("a[^a][^a][^a]b", "a☺b", false, false),
        ("[a-ζ]*", "α", true, false),
        ("*[a-ζ]", "A", false, false),
        ("a?b", "a/b", false, false),
        ("a*b", "a/b", false, false),
        ("[\\]a]", "]", true, false),
        ("[\\-]", "-", true, false),
        ("[x\\-]", "x", true, false),
        ("[x\\-]", "-", true, false),
        ("[x\\-]", "z", false, false),
        ("[\\-x]", "x", true, false),
        ("[\\-x]", "-", true, false),
        ("[\\-x]", "a", false, false),
        ("[]a]", "]", false, true),
        ("[-]", "-", false, true),
        ("[x-]", "x", false, true),
        ("[x-]", "-", false, true),
        ("[x-]", "z", false, true),
        ("[-x]", "x", false, true),
        ("[-x]", "-", false, true),
        ("[-x]", "a", false, true),
        ("\\", "a", false, true),
        ("[a-b-c]", "a", false, true),
        ("[", "a", false, true),
        ("[^", "a", false, true),
        ("[^bc", "a", false, true),
        ("a[", "a", false, true),
        ("a[", "ab", false, true),
        ("a[", "x", false, true),
        ("a/b[", "x", false, true),
        ("*x", "xxx", true, false),
    ];

    #[test]
    fn go_match_table() {
        let mut failures = Vec::new();
        for &(pattern, name, want, bad) in GO_TABLE {
            let got = matches(pattern, name);
            let ok = match &got {
                Ok(m) => !bad && *m == want,
                Err(PatternError::BadPattern { .. }) => bad,
            };
            if !ok {
                failures.push(format!(
                    "{pattern:?} vs {name:?}: got {got:?}, want {want} bad={bad}"
                ));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn copy_source_shapes() {
        assert!(matches("*.go", "main.go").unwrap());
        assert!(!matches("*.go", "cmd/main.go").unwrap());
        assert!(matches("cmd/*/main.go", "cmd/kiln/main.go").unwrap());
        assert!(matches("file[0-9].txt", "file7.txt").unwrap());
        assert!(!matches("file[^0-9].txt", "file7.txt").unwrap());
        assert!(matches("", "").unwrap());
        assert!(!matches("", "a").unwrap());
    }

    #[test]
    fn has_meta_finds_every_special_character() {
        for p in ["*.txt", "a?", "[ab]", "a\\b"] {
            assert!(has_meta(p), "{p}");
        }
        assert!(!has_meta("dir/file.txt"));
        assert!(!has_meta("a]b{c}"));
    }

    #[test]
    fn errors_name_the_pattern() {
        let err = matches("a\\", "a").unwrap_err();
        assert_eq!(
            err.to_string(),
            "syntax error in pattern \"a\\\\\": trailing backslash"
        );
    }
}
