//! The differential suite against BuildKit: every case under
//! `testdata/conformance/<case>/` is built with kiln and its image view
//! compared with `expected.json`, the view of BuildKit 0.25's image of the
//! same case (recorded by `scripts/conformance-record`, which runs this same
//! test with `KILN_CONFORMANCE_RECORD=1` against `../shared/peers/newbk.sh`).
//! One function, [`view::image_view`], makes both views, so they cannot drift.
//! Format, regeneration and how to add a case: `testdata/conformance/README.md`.

#[path = "conformance/view.rs"]
mod view;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::fixtures;

fn suite_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/conformance")
}

/// The cases, sorted; `KILN_CONFORMANCE_CASES=a,b` narrows them.
fn cases() -> Vec<String> {
    let only: Option<BTreeSet<String>> = std::env::var("KILN_CONFORMANCE_CASES")
        .ok()
        .filter(|s| !s.is_empty())
        .map(|s| s.split(',').map(str::to_string).collect());
    let mut out: Vec<String> = fs::read_dir(suite_dir())
        .unwrap()
        .flatten()
        .filter(|e| e.path().join("Dockerfile").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| only.as_ref().is_none_or(|o| o.contains(n)))
        .collect();
    out.sort();
    out
}

/// Files of a case that describe it rather than belong to its context.
const CASE_META: &[&str] = &["expected.json", "NOTE.md", "flags", "context.sh"];

/// Copies the case into `work/ctx` (all but [`CASE_META`]) and runs its
/// `context.sh` there; returns the context dir.
fn prepare(case: &str, work: &Path) -> PathBuf {
    let src = suite_dir().join(case);
    let ctx = work.join("ctx");
    fs::create_dir_all(&ctx).unwrap();
    for e in fs::read_dir(&src).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !CASE_META.contains(&name.as_str()) {
            crate::common::run(Command::new("cp").arg("-a").arg(e.path()).arg(&ctx));
        }
    }
    let script = src.join("context.sh");
    if script.is_file() {
        crate::common::run(
            Command::new("bash")
                .arg("-euo")
                .arg("pipefail")
                .arg(&script)
                .current_dir(&ctx)
                .env("LC_ALL", "C"),
        );
    }
    ctx
}

/// The case's extra build flags: `flags`, one argument a line, `#` comments.
fn flags(case: &str) -> Vec<String> {
    fs::read_to_string(suite_dir().join(case).join("flags"))
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

/// `KNOWN_DIVERGENCES`: `case<TAB>key<TAB>why`, keyed by case, the set of keys.
fn known_divergences() -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let text = fs::read_to_string(suite_dir().join("KNOWN_DIVERGENCES")).unwrap();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let mut parts = line.splitn(3, '\t');
        let (Some(case), Some(key), Some(why)) = (parts.next(), parts.next(), parts.next()) else {
            panic!("KNOWN_DIVERGENCES:{}: want case<TAB>key<TAB>why", n + 1);
        };
        assert!(
            !why.trim().is_empty(),
            "KNOWN_DIVERGENCES:{}: say why",
            n + 1
        );
        out.entry(case.to_string())
            .or_default()
            .insert(key.to_string());
    }
    out
}

/// The fixture base (`busybox:latest`) as an OCI archive in `dir`, and its diff_ids.
fn base_archive(dir: &Path) -> (PathBuf, Vec<String>) {
    let path = dir.join("base.tar");
    fixtures::write_busybox_archive(&path);
    let ids = view::diff_ids(&path);
    (path, ids)
}

#[test]
fn conformance_with_buildkit() {
    if std::env::var_os("KILN_CONFORMANCE_RECORD").is_some() {
        return record();
    }
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    let (base, base_ids) = base_archive(tmp.path());
    crate::common::run(
        Command::new(env!("CARGO_BIN_EXE_kiln"))
            .arg("--root")
            .arg(&root)
            .args(["load", "-i"])
            .arg(&base),
    );
    let known = known_divergences();
    let all = cases();
    assert!(all.len() >= 60 || std::env::var_os("KILN_CONFORMANCE_CASES").is_some());
    let mut failures = Vec::new();
    let mut wildcard_seen = BTreeSet::new();
    for case in &all {
        let work = tmp.path().join("cases").join(case);
        let ctx = prepare(case, &work);
        let out = work.join("image.tar");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_kiln"));
        cmd.arg("--root")
            .arg(&root)
            .args(["build", "--progress", "plain", "-o"])
            .arg(format!("type=oci,dest={}", out.display()))
            .args(flags(case))
            .arg(".")
            .current_dir(&ctx)
            .env_remove("SOURCE_DATE_EPOCH");
        let result = cmd.output().unwrap();
        let expected: Value = serde_json::from_str(
            &fs::read_to_string(suite_dir().join(case).join("expected.json"))
                .unwrap_or_else(|e| panic!("{case}/expected.json: {e}")),
        )
        .unwrap();
        let (keys, report) = if expected["build"] == "fails" {
            // BuildKit refuses this case: kiln must refuse it too.
            if result.status.success() {
                (
                    BTreeSet::from(["build".to_string()]),
                    "  BuildKit fails this build; kiln built it\n".to_string(),
                )
            } else {
                (BTreeSet::new(), String::new())
            }
        } else if result.status.success() {
            let got = view::image_view(&out, &base_ids);
            view::diff(&expected, &got)
        } else {
            let err = String::from_utf8_lossy(&result.stderr);
            let tail: Vec<&str> = err.lines().rev().take(6).collect();
            (
                BTreeSet::from(["build".to_string()]),
                format!(
                    "  kiln build failed ({}):\n    {}\n",
                    result.status,
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n    ")
                ),
            )
        };
        let mut listed = known.get(case).cloned().unwrap_or_default();
        // `*` entries: a key any case may differ in (stale when none does).
        let any = known.get("*").cloned().unwrap_or_default();
        let keys: BTreeSet<String> = keys
            .into_iter()
            .filter(|k| {
                let wild = any.contains(k) && !listed.contains(k);
                if wild {
                    wildcard_seen.insert(k.clone());
                }
                !wild
            })
            .collect();
        listed.retain(|k| k != "*");
        if keys != listed {
            let stale: Vec<_> = listed.difference(&keys).collect();
            let new: Vec<_> = keys.difference(&listed).collect();
            failures.push(format!(
                "== {case}: differs from BuildKit in {new:?}{}\n{report}",
                if stale.is_empty() {
                    String::new()
                } else {
                    format!("; listed in KNOWN_DIVERGENCES but now matches: {stale:?} (delete the entry)")
                }
            ));
        }
    }
    if std::env::var_os("KILN_CONFORMANCE_CASES").is_none() {
        for key in known.get("*").into_iter().flatten() {
            if !wildcard_seen.contains(key) {
                failures.push(format!("== KNOWN_DIVERGENCES: no case differs in {key} any more (delete the `*` entry)"));
            }
        }
    }
    for case in known.keys() {
        if case != "*"
            && !all.contains(case)
            && std::env::var_os("KILN_CONFORMANCE_CASES").is_none()
        {
            failures.push(format!(
                "== KNOWN_DIVERGENCES names {case}, which is no case"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} conformance cases differ from BuildKit:\n{}",
        failures.len(),
        all.len(),
        failures.join("\n")
    );
}

/// Record mode: build every case with the oracle and write its `expected.json`.
fn record() {
    let newbk = std::env::var_os("KILN_CONFORMANCE_NEWBK")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/peers/newbk.sh")
        });
    let tmp = tempfile::tempdir().unwrap();
    let (base, base_ids) = base_archive(tmp.path());
    crate::common::run(
        Command::new("bash")
            .arg(&newbk)
            .args(["docker", "load", "-q", "-i"])
            .arg(&base),
    );
    for case in cases() {
        let work = tmp.path().join("cases").join(&case);
        let ctx = prepare(&case, &work);
        let out = work.join("image.tar");
        let result = Command::new("bash")
            .arg(&newbk)
            .args(["build", "-q", "--no-cache", "-o"])
            .arg(format!("type=oci,dest={}", out.display()))
            .args(flags(&case))
            .arg(".")
            .current_dir(&ctx)
            .output()
            .unwrap();
        let got = if result.status.success() {
            view::image_view(&out, &base_ids)
        } else {
            let err = String::from_utf8_lossy(&result.stderr);
            eprintln!("BuildKit fails {case}:\n{err}");
            serde_json::json!({ "build": "fails", "buildkit_error": err.lines().rev().find(|l| l.contains("ERROR")).unwrap_or("") })
        };
        let text = serde_json::to_string_pretty(&got).unwrap() + "\n";
        fs::write(suite_dir().join(&case).join("expected.json"), text).unwrap();
        eprintln!("recorded {case}");
    }
}
