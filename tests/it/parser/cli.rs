//! Diagnostic goldens (`testdata/parser/*.err`) and the `kiln parse` CLI.

use super::{assert_no_failures, read};
use kiln::dockerfile::{check_instruction_names, dump, parse};
use serde_json::Value;
use std::path::Path;

/// `testdata/parser/<case>.Dockerfile` rendered (parse, then the name
/// check) must equal `<case>.err`. `KILN_BLESS=1` rewrites the goldens.
#[test]
fn diagnostics_match_goldens() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/parser");
    let bless = std::env::var_os("KILN_BLESS").is_some();
    let mut cases = 0;
    let mut failures = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("Dockerfile") {
            continue;
        }
        cases += 1;
        let src = read(&path);
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let err = match parse(&src) {
            Err(e) => e,
            Ok(df) => match check_instruction_names(&df) {
                Err(e) => e,
                Ok(()) => {
                    failures.push(format!("{name}: accepted"));
                    continue;
                }
            },
        };
        let got = err.render(&src, "Dockerfile");
        let golden = path.with_extension("err");
        if bless {
            std::fs::write(&golden, &got).unwrap();
        }
        let want = std::fs::read_to_string(&golden).unwrap_or_default();
        if got != want {
            failures.push(format!("{name}:\n--- got\n{got}--- want\n{want}"));
        }
    }
    assert!(cases >= 8, "only {cases} golden cases");
    assert_no_failures("diagnostic goldens", cases, &failures);
}

fn kiln_parse(args: &[&str], stdin: &[u8]) -> (i32, String, String) {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .arg("parse")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
    (
        out.status.code().unwrap_or(-1),
        text(out.stdout),
        text(out.stderr),
    )
}

#[test]
fn cli_prints_dump_json_and_diagnostics() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/Dockerfile.example");
    let (code, out, _) = kiln_parse(&[example.to_str().unwrap()], b"");
    assert_eq!(code, 0);
    assert_eq!(out, dump(&parse(&read(&example)).unwrap()));
    assert!(
        out.starts_with("(arg ") && out.contains("\n(from "),
        "{out}"
    );

    let (code, out, _) = kiln_parse(&["--json", "-"], b"FROM a\nRUN <<EOF\nx\nEOF\n");
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["children"][1]["heredocs"][0]["content"], "x\n");

    let (code, out, err) = kiln_parse(&["-"], b"FROM a\nENV PATH\n");
    assert_eq!((code, out.as_str()), (2, ""));
    assert!(
        err.contains("ENV must have two arguments") && err.contains("--> <stdin>:2:1"),
        "{err}"
    );

    let (code, out, _) = kiln_parse(&["--json"], b"");
    assert_eq!(code, 2);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (v["ok"].as_bool(), v["error"].as_str()),
        (Some(false), Some("file with no instructions"))
    );

    let (code, _, err) = kiln_parse(&["/nonexistent/Dockerfile"], b"");
    assert_eq!(code, 3, "{err}");
}
