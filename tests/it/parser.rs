//! Parser conformance against BuildKit's corpus (`common::conformance_dir()`),
//! CRLF/BOM invariance, robustness on mutated input, diagnostic goldens and
//! the `kiln parse` CLI. Every corpus test collects all failures first and
//! asserts once, so one run shows everything that is wrong.

use crate::common::conformance_dir;
use kiln::dockerfile::{ast_json, check_instruction_names, dump, parse};
use serde_json::Value;
use std::path::{Path, PathBuf};

mod bytes;
mod cli;
mod robustness;

/// Folders holding a `Dockerfile` and `result` that must parse.
fn positive_cases() -> Vec<PathBuf> {
    let root = conformance_dir();
    let mut dirs = Vec::new();
    for group in ["buildkit-parser/testfiles", "buildkit-parser/derived"] {
        dirs.extend(subdirs(&root.join(group)));
    }
    dirs.push(root.join("buildkit-parser/testfile-line"));
    for repo in subdirs(&root.join("real-world")) {
        dirs.extend(subdirs(&repo));
    }
    dirs.retain(|d| d.join("Dockerfile").is_file() && d.join("result").is_file());
    dirs
}

fn real_world_cases() -> Vec<PathBuf> {
    let root = conformance_dir().join("real-world");
    positive_cases()
        .into_iter()
        .filter(|d| d.starts_with(&root))
        .collect()
}

fn subdirs(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    out.sort();
    out
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn dump_of(src: &[u8]) -> Result<String, String> {
    parse(src).map(|df| dump(&df)).map_err(|e| e.to_string())
}

fn assert_no_failures(what: &str, total: usize, failures: &[String]) {
    assert!(
        failures.is_empty(),
        "{} of {total} {what} failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn dumps_match_buildkit_results() {
    let cases = positive_cases();
    assert!(
        cases.len() >= 33 + 3 + 1 + 231,
        "corpus incomplete: {} cases",
        cases.len()
    );
    let mut failures = Vec::new();
    for dir in &cases {
        let expected = String::from_utf8_lossy(&read(&dir.join("result"))).into_owned();
        match dump_of(&read(&dir.join("Dockerfile"))) {
            Ok(got) if got == expected => {}
            Ok(got) => failures.push(format!(
                "{}: dump differs:\n{}",
                dir.display(),
                first_diff(&got, &expected)
            )),
            Err(e) => failures.push(format!("{}: rejected: {e}", dir.display())),
        }
    }
    assert_no_failures("dumps", cases.len(), &failures);
}

fn first_diff(got: &str, want: &str) -> String {
    let (g, w): (Vec<&str>, Vec<&str>) = (got.lines().collect(), want.lines().collect());
    for i in 0..g.len().max(w.len()) {
        if g.get(i) != w.get(i) {
            return format!(
                "  line {}: got  {:?}\n  line {}: want {:?}",
                i + 1,
                g.get(i),
                i + 1,
                w.get(i)
            );
        }
    }
    "  (trailing newline differs)".into()
}

#[test]
fn negative_cases_are_rejected() {
    let dirs = subdirs(&conformance_dir().join("buildkit-parser/testfiles-negative"));
    assert_eq!(dirs.len(), 4);
    let accepted: Vec<String> = dirs
        .iter()
        .filter(|d| parse(&read(&d.join("Dockerfile"))).is_ok())
        .map(|d| d.display().to_string())
        .collect();
    assert_no_failures("negative cases", dirs.len(), &accepted);
}

#[test]
fn testfile_line_numbers() {
    let src = read(&conformance_dir().join("buildkit-parser/testfile-line/Dockerfile"));
    let df = parse(&src).unwrap();
    let spans: Vec<(usize, usize)> = df
        .instructions
        .iter()
        .map(|i| (i.span.start_line, i.span.end_line))
        .collect();
    assert_eq!(spans, vec![(5, 5), (11, 12), (17, 31)]);
    let json = ast_json(&df);
    assert_eq!(
        (json["start_line"].as_u64(), json["end_line"].as_u64()),
        (Some(5), Some(31))
    );
}

/// Fields of `ast.json` that must match exactly (README §2).
const CHILD_FIELDS: [&str; 8] = [
    "cmd",
    "flags",
    "json_form",
    "args",
    "start_line",
    "end_line",
    "heredocs",
    "comments",
];

fn compare_child(got: &Value, want: &Value, path: &str, out: &mut Vec<String>) {
    for field in CHILD_FIELDS.iter().chain(["original"].iter()) {
        if got[field] != want[field] {
            out.push(format!(
                "{path}.{field}: got {} want {}",
                got[field], want[field]
            ));
        }
    }
    match (got.get("sub"), want.get("sub")) {
        (None, None) => {}
        (Some(g), Some(w)) => compare_child(g, w, &format!("{path}.sub"), out),
        (g, w) => out.push(format!("{path}.sub: got {g:?} want {w:?}")),
    }
}

fn compare_ast(got: &Value, want: &Value, out: &mut Vec<String>) {
    for field in ["ok", "escape_token", "start_line", "end_line", "warnings"] {
        if got.get(field) != want.get(field) {
            out.push(format!(
                "{field}: got {:?} want {:?}",
                got.get(field),
                want.get(field)
            ));
        }
    }
    let (g, w) = (got["children"].as_array(), want["children"].as_array());
    let (Some(g), Some(w)) = (g, w) else {
        return out.push("children missing".into());
    };
    if g.len() != w.len() {
        out.push(format!("children: got {} want {}", g.len(), w.len()));
    }
    for (i, (gc, wc)) in g.iter().zip(w).enumerate() {
        compare_child(gc, wc, &format!("children[{i}]"), out);
    }
}

#[test]
fn ast_json_matches_reference() {
    let cases: Vec<PathBuf> = positive_cases()
        .into_iter()
        .filter(|d| d.join("ast.json").is_file())
        .collect();
    assert!(cases.len() >= 231, "only {} ast.json files", cases.len());
    let mut failures = Vec::new();
    for dir in &cases {
        let want: Value = serde_json::from_slice(&read(&dir.join("ast.json"))).unwrap();
        let got = match parse(&read(&dir.join("Dockerfile"))) {
            Ok(df) => ast_json(&df),
            Err(e) => {
                failures.push(format!("{}: rejected: {e}", dir.display()));
                continue;
            }
        };
        let mut diffs = Vec::new();
        compare_ast(&got, &want, &mut diffs);
        if !diffs.is_empty() {
            failures.push(format!("{}:\n  {}", dir.display(), diffs.join("\n  ")));
        }
    }
    assert_no_failures("ast.json files", cases.len(), &failures);
}

fn to_crlf(src: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(src.len() + src.len() / 20);
    for &b in src {
        if b == b'\n' {
            out.push(b'\r');
        }
        out.push(b);
    }
    out
}

#[test]
fn crlf_and_bom_give_identical_dumps() {
    let cases = positive_cases();
    let mut failures = Vec::new();
    for dir in &cases {
        let src = read(&dir.join("Dockerfile"));
        let want = dump_of(&src);
        let crlf = to_crlf(&src);
        let mut bom = b"\xef\xbb\xbf".to_vec();
        bom.extend_from_slice(&src);
        let mut bom_crlf = b"\xef\xbb\xbf".to_vec();
        bom_crlf.extend_from_slice(&crlf);
        for (variant, bytes) in [("crlf", crlf), ("bom", bom), ("bom+crlf", bom_crlf)] {
            if dump_of(&bytes) != want {
                failures.push(format!("{} ({variant})", dir.display()));
            }
        }
    }
    assert_no_failures("CRLF/BOM variants", cases.len() * 3, &failures);
}

#[test]
fn crlf_heredoc_content_keeps_carriage_returns() {
    let df = parse(b"FROM a\r\nRUN <<EOF\r\necho hi\r\nEOF\r\n").unwrap();
    assert_eq!(df.instructions[1].heredocs[0].content, "echo hi\r\n");
    assert_eq!(df.instructions[1].span.end_line, 4);
}

#[test]
fn bom_before_escape_directive_is_ignored() {
    let df = parse(b"\xef\xbb\xbf# escape=`\nFROM a\nRUN a `\n  b\n").unwrap();
    assert_eq!(df.escape, '`');
    assert_eq!(dump(&df), "(from \"a\")\n(run \"a   b\")\n");
}

#[test]
fn real_world_files_pass_the_instruction_name_check() {
    let mut failures = Vec::new();
    for dir in real_world_cases() {
        let df = parse(&read(&dir.join("Dockerfile"))).unwrap();
        if let Err(e) = check_instruction_names(&df) {
            failures.push(format!("{}: {e}", dir.display()));
        }
    }
    assert_no_failures("real-world name checks", 231, &failures);
}
