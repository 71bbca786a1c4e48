//! The `buildkit-shell` conformance tables against `kiln::dockerfile::shell`.
//! Each test collects every failing line, then asserts the list is empty, so one
//! run shows all mismatches.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;

use kiln::dockerfile::shell::{Lexer, ShellError};

use crate::common::conformance_dir;

fn read(rel: &str) -> String {
    let path = conformance_dir().join("buildkit-shell").join(rel);
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn env_of(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn report(failures: &[String], checked: usize, at_least: usize) {
    assert!(
        checked >= at_least,
        "only {checked} cases were checked, expected at least {at_least}"
    );
    assert!(
        failures.is_empty(),
        "{} of {checked} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn env_var_test_table() {
    let env = env_of(&[
        ("PWD", "/home"),
        ("SHELL", "bash"),
        ("KOREAN", "한국어"),
        ("NULL", ""),
    ]);
    let lexer = Lexer::new('\\');
    let (mut failures, mut checked) = (Vec::new(), 0);
    for (n, line) in read("envVarTest").lines().enumerate() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.trim().split('|').map(str::trim).collect();
        assert_eq!(fields.len(), 3, "envVarTest line {}: malformed", n + 1);
        let (platform, input, expected) = (fields[0], fields[1], fields[2]);
        match platform {
            "A" | "U" => {}
            "W" => continue,
            other => panic!("envVarTest line {}: unknown platform {other:?}", n + 1),
        }
        checked += 1;
        let got = lexer.expand_word(input, &env).map(|e| e.value);
        let ok = match (&got, expected) {
            (Err(_), "error") => true,
            (Ok(v), e) => v == e,
            (Err(_), _) => false,
        };
        if !ok {
            failures.push(format!(
                "line {}: {input:?} → {got:?}, want {expected:?}",
                n + 1
            ));
        }
    }
    report(&failures, checked, 200);
}

#[test]
fn words_test_table() {
    let lexer = Lexer::new('\\');
    let mut env: Vec<(String, String)> = Vec::new();
    let (mut failures, mut checked) = (Vec::new(), 0);
    for (n, line) in read("wordsTest").lines().enumerate() {
        if line.starts_with('#') {
            continue;
        }
        if let Some(def) = line.strip_prefix("ENV ") {
            let def = def.trim_start_matches(' ');
            let (k, v) = def.split_once('=').expect("ENV line has '='");
            env.push((k.to_string(), v.to_string()));
            continue;
        }
        let (input, expected) = line.split_once('|').expect("table line has '|'");
        let (input, expected) = (input.trim(), expected.trim_start_matches(' '));
        let want: Vec<&str> = expected.split(',').collect();
        checked += 1;
        let got = lexer.expand_words(input, &env);
        let ok = match &got {
            Err(_) => want == ["error"],
            Ok(words) => words == &want,
        };
        if !ok {
            failures.push(format!(
                "line {}: {input:?} → {got:?}, want {want:?}",
                n + 1
            ));
        }
    }
    report(&failures, checked, 24);
}

#[derive(serde::Deserialize)]
struct Case {
    input: String,
    env: BTreeMap<String, String>,
    expect_error: bool,
    expected: Option<String>,
    matched: BTreeSet<String>,
    unmatched: BTreeSet<String>,
    error_text: Option<String>,
}

#[test]
fn process_word_cases() {
    let cases: Vec<Case> = serde_json::from_str(&read("derived/process-word-cases.json")).unwrap();
    assert_eq!(cases.len(), 56, "process-word-cases.json changed size");
    let lexer = Lexer::new('\\');
    let mut failures = Vec::new();
    for (i, c) in cases.iter().enumerate() {
        let got = lexer.expand_word(&c.input, &c.env);
        let ok = match &got {
            Ok(e) => {
                !c.expect_error
                    && Some(&e.value) == c.expected.as_ref()
                    && e.matched == c.matched
                    && e.unmatched == c.unmatched
            }
            Err(e) => c.expect_error && same_error(e, c.error_text.as_deref().unwrap_or("")),
        };
        if !ok {
            failures.push(format!(
                "case {i}: {:?} env {:?} → {got:?}, want {:?} matched {:?} unmatched {:?} error {:?}",
                c.input, c.env, c.expected, c.matched, c.unmatched, c.error_text
            ));
        }
    }
    report(&failures, cases.len(), 56);
}

/// Our messages are phrased differently from Go's but must name the same failure:
/// the reference's tail after `failed to process "<word>": ` must appear in ours,
/// ignoring the byte-offset suffix we add.
fn same_error(got: &ShellError, reference: &str) -> bool {
    let tail = reference.split_once("\": ").map_or(reference, |(_, t)| t);
    let ours = got.to_string();
    let core = tail
        .trim_end_matches(" in substitution")
        .trim_end_matches(" in ${}");
    ours.contains(core)
}
