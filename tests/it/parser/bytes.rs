//! Bytes that are not UTF-8 (issue 2): `kiln parse` dumps them as BuildKit
//! does (`\xHH`, Go's `%q`), `--json` has U+FFFD for each, as Go's
//! `json.Marshal` writes them, and the builder's AST is unchanged.

use super::read;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn case() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/parser-bytes/invalid-utf8")
}

fn kiln_parse(args: &[&str]) -> Vec<u8> {
    let out = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .arg("parse")
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn invalid_utf8_dumps_as_go_quotes_it() {
    let file = case().join("Dockerfile");
    let got = kiln_parse(&[file.to_str().unwrap()]);
    let want = read(&case().join("result"));
    assert_eq!(
        String::from_utf8(got).unwrap(),
        String::from_utf8(want).unwrap()
    );
}

#[test]
fn invalid_utf8_is_one_replacement_character_per_byte_in_json() {
    let file = case().join("Dockerfile");
    let out = kiln_parse(&["--json", file.to_str().unwrap()]);
    let v: Value = serde_json::from_slice(&out).expect("--json is not valid JSON");
    let c = &v["children"];
    assert_eq!(c[1]["args"][0], "echo \u{fffd}\u{fffd} ok");
    assert_eq!(c[1]["original"], "RUN echo \u{fffd}\u{fffd} ok");
    // A truncated 4-byte sequence is three bytes, so three U+FFFD (Rust's
    // lossy decoding would give one).
    assert_eq!(c[3]["args"][1], "\u{fffd}\u{fffd}\u{fffd} v");
    assert_eq!(c[5]["flags"][0], "--from=\u{ff}");
    assert_eq!(c[7]["args"][0], "CMD\u{fffd}");
    assert_eq!(c[8]["cmd"], "RUN\u{fffd}");
    assert_eq!(c[9]["comments"][0], "c \u{fffd}");
    assert_eq!(c[10]["heredocs"][0]["content"], "body \u{fffd}\n");
    assert_eq!(c[11]["args"][0], "echo \u{e9} \u{fffd}");
    assert!(
        !String::from_utf8(out)
            .unwrap()
            .chars()
            .any(|ch| ('\u{10fe80}'..='\u{10feff}').contains(&ch)),
        "a private-use carrier leaked into --json"
    );
}

#[test]
fn the_builders_ast_keeps_replacement_characters() {
    let df = kiln::dockerfile::parse(&read(&case().join("Dockerfile"))).unwrap();
    assert_eq!(df.instructions[1].args, ["echo \u{fffd}\u{fffd} ok"]);
    assert_eq!(df.instructions[10].heredocs[0].content, "body \u{fffd}\n");
}

/// Seeded byte flips of the case: the views never panic, never leak a
/// carrier into JSON, and a file that is valid UTF-8 dumps exactly as
/// `parse` does.
#[test]
fn mutated_files_keep_both_views_sound() {
    use kiln::dockerfile::{dump, parse, parse_source};
    let base = read(&case().join("Dockerfile"));
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..400 {
        let mut src = base.clone();
        for _ in 0..(next() % 6) {
            let at = (next() as usize) % src.len();
            src[at] = next() as u8;
        }
        if next() % 3 == 0 {
            src.retain(|b| b.is_ascii());
        }
        let (Ok(a), Ok(b)) = (parse_source(&src), parse(&src)) else {
            assert_eq!(parse_source(&src).is_ok(), parse(&src).is_ok());
            continue;
        };
        let json = a.ast_json().to_string();
        assert!(
            !json
                .chars()
                .any(|ch| ('\u{10fe80}'..='\u{10feff}').contains(&ch)),
            "{json}"
        );
        if std::str::from_utf8(&src).is_ok() {
            assert_eq!(a.dump(), dump(&b));
        }
    }
}

#[test]
fn errors_in_files_with_invalid_bytes_show_no_carriers() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("Dockerfile");
    std::fs::write(&file, b"FROM a\nENV k\xff=1 broken\xfe\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(["parse", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("can't find = in \"broken\u{fffd}\""), "{err}");
}
