//! `.dockerignore` matching through the public API: moby/patternmatcher's test
//! table (read with `MatchesOrParentMatches` semantics) and docker's documented
//! examples. Failures are collected, then asserted empty.

use kiln::dockerfile::ignore::IgnorePatterns;

/// (patterns, path, excluded) — from patternmatcher's `TestMatches`, where both
/// "exact" and "inexact" rows count as matches under parent matching.
const PATTERNMATCHER_TABLE: &[(&str, &str, bool)] = &[
    ("**", "file", true),
    ("**", "file/", true),
    ("**/", "file", true),
    ("**/", "file/", true),
    ("**", "dir/file", true),
    ("**/", "dir/file", true),
    ("**", "dir/file/", true),
    ("**/", "dir/file/", true),
    ("**/**", "dir/file", true),
    ("**/**", "dir/file/", true),
    ("dir/**", "dir/file", true),
    ("dir/**", "dir/file/", true),
    ("dir/**", "dir/dir2/file", true),
    ("dir/**", "dir/dir2/file/", true),
    ("**/dir", "dir", true),
    ("**/dir", "dir/file", true),
    ("**/dir2/*", "dir/dir2/file", true),
    ("**/dir2/*", "dir/dir2/file/", true),
    ("**/dir2/**", "dir/dir2/dir3/file", true),
    ("**/dir2/**", "dir/dir2/dir3/file/", true),
    ("**file", "file", true),
    ("**file", "dir/file", true),
    ("**/file", "dir/file", true),
    ("**file", "dir/dir/file", true),
    ("**/file", "dir/dir/file", true),
    ("**/file*", "dir/dir/file", true),
    ("**/file*", "dir/dir/file.txt", true),
    ("**/file*txt", "dir/dir/file.txt", true),
    ("**/file*.txt", "dir/dir/file.txt", true),
    ("**/file*.txt*", "dir/dir/file.txt", true),
    ("**/**/*.txt", "dir/dir/file.txt", true),
    ("**/**/*.txt2", "dir/dir/file.txt", false),
    ("**/*.txt", "file.txt", true),
    ("**/**/*.txt", "file.txt", true),
    ("a**/*.txt", "a/file.txt", true),
    ("a**/*.txt", "a/dir/file.txt", true),
    ("a**/*.txt", "a/dir/dir/file.txt", true),
    ("a/*.txt", "a/dir/file.txt", false),
    ("a/*.txt", "a/file.txt", true),
    ("a/*.txt**", "a/file.txt", true),
    ("a[b-d]e", "ae", false),
    ("a[b-d]e", "ace", true),
    ("a[b-d]e", "aae", false),
    ("a[^b-d]e", "aze", true),
    (".*", ".foo", true),
    (".*", "foo", false),
    ("abc.def", "abcdef", false),
    ("abc.def", "abc.def", true),
    ("abc.def", "abcZdef", false),
    ("abc?def", "abcZdef", true),
    ("abc?def", "abcdef", false),
    ("**/foo/bar", "foo/bar", true),
    ("**/foo/bar", "dir/foo/bar", true),
    ("**/foo/bar", "dir/dir2/foo/bar", true),
    ("abc/**", "abc", false),
    ("abc/**", "abc/def", true),
    ("abc/**", "abc/def/ghi", true),
    ("**/.foo", ".foo", true),
    ("**/.foo", "bar.foo", false),
    ("a(b)c/def", "a(b)c/def", true),
    ("a(b)c/def", "a(b)c/xyz", false),
    ("a.|)$(}+{bc", "a.|)$(}+{bc", true),
    (
        "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
        "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
        true,
    ),
    (
        "dist/*.whl",
        "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
        true,
    ),
    ("a\\\\", "a\\", true),
    ("a\\*b", "a*b", true),
    // Multi-pattern rows and the single-test functions of patternmatcher_test.go.
    ("**\n!util/docker/web", "util/docker/web/foo", false),
    (
        "**\n!util/docker/web\nutil/docker/web/foo",
        "util/docker/web/foo",
        true,
    ),
    (
        "**\n!dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
        "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
        false,
    ),
    (
        "**\n!dist/*.whl",
        "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
        false,
    ),
    ("*", "fileutils.go", true),
    ("*.go", "fileutils.go", true),
    ("!fileutils.go\n*.go", "fileutils.go", true),
    ("docs\n!docs/README.md", "docs/README.md", false),
    ("docs/\n!docs/README.md", "docs/README.md", false),
    ("docs/*\n!docs/README.md", "docs/README.md", false),
    ("*.go\n!fileutils.go", "fileutils.go", false),
    ("*.go", ".", false),
    ("", "/any/path/there", false),
    ("docs\n  !docs/README.md  ", "docs/README.md", false),
];

/// Docker's documented `.dockerignore` examples: (file, path, excluded).
const DOCKER_DOCS: &[(&str, &str, bool)] = &[
    (
        "# comment\n*/temp*\n*/*/temp*\ntemp?",
        "somedir/temporary.txt",
        true,
    ),
    ("# comment\n*/temp*\n*/*/temp*\ntemp?", "somedir/temp", true),
    (
        "# comment\n*/temp*\n*/*/temp*\ntemp?",
        "somedir/temp/inner.c",
        true,
    ),
    (
        "# comment\n*/temp*\n*/*/temp*\ntemp?",
        "somedir/subdir/temporary.txt",
        true,
    ),
    ("# comment\n*/temp*\n*/*/temp*\ntemp?", "tempa", true),
    ("# comment\n*/temp*\n*/*/temp*\ntemp?", "tempb/x", true),
    ("# comment\n*/temp*\n*/*/temp*\ntemp?", "temp.txt", false),
    ("# comment\n*/temp*\n*/*/temp*\ntemp?", "temp", false),
    (
        "# comment\n*/temp*\n*/*/temp*\ntemp?",
        "a/b/c/temp.txt",
        false,
    ),
    ("# comment\n*/temp*\n*/*/temp*\ntemp?", "comment", false),
    ("**/*.go", "main.go", true),
    ("**/*.go", "cmd/kiln/main.go", true),
    ("**/*.go", "go.mod", false),
    ("*.md\n!README.md", "README.md", false),
    ("*.md\n!README.md", "CHANGELOG.md", true),
    ("*.md\n!README.md", "docs/guide.md", false),
    (
        "*.md\n!README*.md\nREADME-secret.md",
        "README-secret.md",
        true,
    ),
    (
        "*.md\n!README*.md\nREADME-secret.md",
        "README-public.md",
        false,
    ),
    ("docs\n!docs/keep", "docs/keep", false),
    ("docs\n!docs/keep", "docs/keep/a.txt", false),
    ("docs\n!docs/keep", "docs/other.txt", true),
    ("docs\n!docs/keep", "docs", true),
    ("/abs/path\n./rel/../other", "abs/path/x", true),
    ("/abs/path\n./rel/../other", "other", true),
    ("/abs/path\n./rel/../other", "rel", false),
];

fn check(table: &[(&str, &str, bool)]) -> Vec<String> {
    let mut failures = Vec::new();
    for &(file, path, want) in table {
        match IgnorePatterns::parse(file) {
            Ok(p) if p.is_excluded(path) == want => {}
            Ok(_) => failures.push(format!("{file:?}: {path:?} excluded should be {want}")),
            Err(e) => failures.push(format!("{file:?}: parse failed: {e}")),
        }
    }
    failures
}

#[test]
fn patternmatcher_table() {
    let failures = check(PATTERNMATCHER_TABLE);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn docker_documented_examples() {
    let failures = check(DOCKER_DOCS);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn malformed_patterns_are_rejected() {
    for bad in ["[", "!", "a\\", "[]a]", "x\n[^bc"] {
        assert!(
            IgnorePatterns::parse(bad).is_err(),
            "{bad:?} should not parse"
        );
    }
}

#[test]
fn walker_may_prune_only_when_no_exception_reaches_below() {
    let p = IgnorePatterns::parse("node_modules\n!node_modules/keep.js\ntarget\n").unwrap();
    assert!(p.is_excluded("node_modules/x/y.js"));
    assert!(!p.is_excluded("node_modules/keep.js"));
    assert!(p.dir_may_have_exceptions("node_modules"));
    assert!(p.is_excluded("target"));
    assert!(!p.dir_may_have_exceptions("target"));
}
