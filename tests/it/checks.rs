//! `kiln build --check` against what BuildKit 0.25 printed for the same
//! Dockerfiles (`testdata/checks/<case>/`, recorded with
//! `newbk.sh build --check` and `--call=check,format=json`): the text report
//! byte for byte, the exit code, and the JSON's warnings, sources (without
//! BuildKit's LLB definition, which kiln has no equivalent of) and build error.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn cases() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/checks")
}

fn kiln_check(store: &Path, dir: &Path, case: &str, call: &str) -> (String, i32) {
    let out = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .current_dir(dir)
        .args([
            "--root",
            store.to_str().unwrap(),
            "build",
            "--pull=never",
            call,
            case,
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    (stdout, out.status.code().unwrap_or(-1))
}

/// The JSON parts kiln must agree on; warnings sorted (BuildKit's order in
/// the JSON is its emission order, which follows its stage dispatch).
fn comparable(mut v: Value) -> Value {
    if let Some(w) = v.get_mut("warnings").and_then(Value::as_array_mut) {
        w.sort_by_key(|w| w.to_string());
    }
    if let Some(sources) = v.get_mut("sources").and_then(Value::as_array_mut) {
        for s in sources {
            if let Some(o) = s.as_object_mut() {
                o.remove("definition");
            }
        }
    }
    v
}

#[test]
fn checks_match_buildkit() {
    let dir = cases();
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(names.len() >= 20, "cases missing in {}", dir.display());
    // BuildKit's lint resolves the base images (their ENV counts for
    // UndefinedVar); the fixture busybox has the real one's PATH.
    let store = tempfile::tempdir().unwrap();
    crate::fixtures::busybox_image(&kiln::oci::Store::open(store.path()).unwrap());
    let mut failures = Vec::new();
    for case in &names {
        let want = std::fs::read_to_string(dir.join(case).join("expected.txt")).unwrap();
        let want_rc: i32 = std::fs::read_to_string(dir.join(case).join("expected.rc"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let (got, rc) = kiln_check(store.path(), &dir, case, "--check");
        if got != want || rc != want_rc {
            failures.push(format!(
                "{case}: exit {rc} (want {want_rc})\n--- want\n{want}--- got\n{got}"
            ));
        }
        let want: Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join(case).join("expected.json")).unwrap(),
        )
        .unwrap();
        let (got, _) = kiln_check(store.path(), &dir, case, "--call=check,format=json");
        let got: Value = serde_json::from_str(&got)
            .unwrap_or_else(|e| panic!("{case}: kiln's JSON does not parse: {e}\n{got}"));
        if comparable(got.clone()) != comparable(want.clone()) {
            failures.push(format!(
                "{case} (json):\n--- want\n{want:#}\n--- got\n{got:#}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Every rule over every Dockerfile of the conformance corpus (real-world
/// projects and BuildKit's parser cases), kiln's portability rule against
/// docker/dockerfile:1.0 included: no rule panics, and each finding points
/// at a line of its file.
#[test]
fn no_rule_panics_on_the_corpus() {
    let root = crate::common::conformance_dir();
    let mut files = Vec::new();
    let mut todo = vec![root];
    while let Some(dir) = todo.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else if p.file_name().is_some_and(|n| n == "Dockerfile") {
                files.push(p);
            }
        }
    }
    assert!(files.len() > 200, "{} Dockerfiles", files.len());
    let mut findings = 0;
    for f in &files {
        let src = std::fs::read(f).unwrap();
        let Ok(df) = kiln::dockerfile::parse(&src) else {
            continue;
        };
        // FrontendVersionPortability at its strictest too.
        let inputs = kiln::lint::Inputs {
            all_stages: true,
            frontend_version: kiln::lint::FrontendVersion::parse("1.0").ok(),
            ..Default::default()
        };
        let Ok(report) = kiln::lint::check(&df, &inputs) else {
            continue;
        };
        let lines = src.split(|b| *b == b'\n').count();
        for w in &report.findings {
            assert!(
                w.start_line >= 1 && w.end_line <= lines,
                "{}: {w:?}",
                f.display()
            );
        }
        findings += report.findings.len();
        let _ = kiln::lint::render_text(&report.findings, "Dockerfile", &src);
    }
    assert!(findings > 0);
}

/// `--call=targets` and `--call=targets,format=json` against BuildKit 0.25's
/// output for `testdata/targets/<case>/`.
#[test]
fn targets_match_buildkit() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/targets");
    let store = tempfile::tempdir().unwrap();
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let case = e.unwrap().file_name().to_string_lossy().into_owned();
        let want = std::fs::read_to_string(dir.join(&case).join("expected.txt")).unwrap();
        let (got, rc) = kiln_check(store.path(), &dir, &case, "--call=targets");
        assert_eq!((got.as_str(), rc), (want.as_str(), 0), "{case}");
        let want: Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join(&case).join("expected.json")).unwrap(),
        )
        .unwrap();
        let (got, _) = kiln_check(store.path(), &dir, &case, "--call=targets,format=json");
        let got: Value = serde_json::from_str(&got).unwrap();
        assert_eq!(got, want, "{case}");
        n += 1;
    }
    assert!(n >= 3);
}

/// `--call=outline` and `--call=outline,format=json` against what buildx
/// 0.29 printed with BuildKit 0.25 for `testdata/outline/<case>/` (extra
/// arguments, one a line, in the case's `args`), byte for byte.
#[test]
fn outline_matches_buildkit() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/outline");
    let store = tempfile::tempdir().unwrap();
    crate::fixtures::busybox_image(&kiln::oci::Store::open(store.path()).unwrap());
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(names.len() >= 7, "cases missing in {}", dir.display());
    let mut failures = Vec::new();
    for case in &names {
        let extra = std::fs::read_to_string(dir.join(case).join("args")).unwrap_or_default();
        for (call, file) in [
            ("--call=outline", "expected.txt"),
            ("--call=outline,format=json", "expected.json"),
        ] {
            let want = std::fs::read_to_string(dir.join(case).join(file)).unwrap();
            let out = Command::new(env!("CARGO_BIN_EXE_kiln"))
                .current_dir(&dir)
                .args(["--root", store.path().to_str().unwrap(), "build"])
                .args(["--pull=never", call])
                .args(extra.lines())
                .arg(case)
                .output()
                .unwrap();
            let got = String::from_utf8_lossy(&out.stdout);
            if got != want || out.status.code() != Some(0) {
                failures.push(format!(
                    "{case} {call}: {}\n--- want\n{want}--- got\n{got}--- stderr\n{}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// `--call=outline` with a target the file does not have fails as a build
/// would (exit 2, the error on stderr, nothing on stdout).
#[test]
fn outline_of_an_unknown_target_fails() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/outline");
    let store = tempfile::tempdir().unwrap();
    crate::fixtures::busybox_image(&kiln::oci::Store::open(store.path()).unwrap());
    let out = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .current_dir(&dir)
        .args(["--root", store.path().to_str().unwrap(), "build"])
        .args([
            "--pull=never",
            "--call=outline",
            "--target",
            "nope",
            "target",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("nope"), "{err}");
    assert!(out.stdout.is_empty());
}
