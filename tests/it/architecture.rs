//! The module rules of ARCHITECTURE.md, checked on the sources: which
//! top-level module may use which, and no import cycle between the files
//! of a module. A new `use crate::…` that breaks a rule fails here, naming
//! the file and the rule.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// ARCHITECTURE.md's table: each top-level module and the ones it may use.
const ALLOWED: &[(&str, &[&str])] = &[
    ("dockerfile", &[]),
    ("oci", &[]),
    ("exec", &[]),
    ("layer", &["oci"]),
    ("store", &["oci"]),
    ("plan", &["dockerfile", "oci"]),
    // Filesystem in, SPDX JSON out: it reads the layer dirs through
    // layer's merged view (`layer::MergedFs`), the builder's too.
    ("sbom", &["layer", "oci"]),
    // The checks read the AST and, for the rules about expansion, the plan.
    ("lint", &["dockerfile", "plan", "oci"]),
    // Provenance reads the plan (its steps, base images and spans).
    ("attest", &["dockerfile", "plan", "oci"]),
    // The key recipe reads plan's ops; the cache artifact packs cache
    // mounts as layer tars.
    ("cache", &["plan", "oci", "store", "layer"]),
    (
        "builder",
        &[
            "attest",
            "dockerfile",
            "plan",
            "lint",
            "cache",
            "exec",
            "layer",
            "oci",
            "sbom",
            "store",
        ],
    ),
    // `kiln run`: an image's root prepared as the builder prepares a RUN's
    // (snapshots, temp dirs), run in the sandbox; stored containers live in
    // the store's `containers/` (`store::Layout`).
    // `kiln commit` packs the writable layer (`layer::pack`).
    ("container", &["builder", "exec", "layer", "oci", "store"]),
    // cli: builder for `build`; the others for the subcommands that are
    // thin over them (parse, cache, fsck/prune, images) and for errors.
    (
        "cli",
        &[
            "attest",
            "builder",
            "cache",
            "container",
            "dockerfile",
            "exec",
            "lint",
            "oci",
            "plan",
            "store",
        ],
    ),
];

/// Modules as paths (`["plan", "copy"]`) to their source text, test
/// modules cut off, line comments removed.
fn sources() -> BTreeMap<Vec<String>, (PathBuf, String)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = BTreeMap::new();
    for e in walkdir::WalkDir::new(&src) {
        let e = e.unwrap();
        let p = e.path();
        if p.extension().is_none_or(|x| x != "rs") {
            continue;
        }
        let rel = p.strip_prefix(&src).unwrap().with_extension("");
        let mut m: Vec<String> = rel.iter().map(|c| c.to_string_lossy().into()).collect();
        if m.last().is_some_and(|l| l == "mod") {
            m.pop();
        }
        let text = fs::read_to_string(p).unwrap();
        let code: String = text
            .lines()
            .map(|l| l.split("//").next().unwrap())
            .collect::<Vec<_>>()
            .join("\n");
        out.insert(m, (p.to_path_buf(), without_test_modules(&code)));
    }
    out
}

/// `code` without its `#[cfg(test)]` items (a `mod tests { … }` block up to
/// its matching brace, or a `mod tests;` line): tests may use anything.
fn without_test_modules(code: &str) -> String {
    let mut out = String::new();
    let mut rest = code;
    while let Some(i) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..i]);
        let after = &rest[i..];
        let end = match (after.find('{'), after.find(';')) {
            (Some(b), semi) if semi.is_none_or(|s| b < s) => {
                let mut depth = 0;
                let mut end = after.len();
                for (j, c) in after[b..].char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                end = b + j + 1;
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                end
            }
            (_, Some(semi)) => semi + 1,
            _ => after.len(),
        };
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// Every `crate::a::b…` and `super::…` path in `code`, resolved to the
/// longest module of `mods` it names, seen from module `at`.
fn references(at: &[String], code: &str, mods: &BTreeSet<Vec<String>>) -> BTreeSet<Vec<String>> {
    let mut out = BTreeSet::new();
    let bytes = code.as_bytes();
    for start in ["crate::", "super::"] {
        let mut from = 0;
        while let Some(i) = code[from..].find(start) {
            let i = from + i;
            from = i + start.len();
            if i > 0 && (bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_') {
                continue;
            }
            let mut base: Vec<String> = if start == "crate::" {
                Vec::new()
            } else {
                // `super` of a.rs and of a/mod.rs is a's parent.
                at[..at.len().saturating_sub(1)].to_vec()
            };
            let rest = &code[from..];
            let path: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            for seg in path.split("::").filter(|s| !s.is_empty()) {
                let mut next = base.clone();
                next.push(seg.to_string());
                if mods.contains(&next) {
                    base = next;
                } else {
                    break;
                }
            }
            if !base.is_empty() {
                out.insert(base);
            }
        }
    }
    out
}

#[test]
fn top_level_modules_use_only_what_the_table_allows() {
    let allowed: BTreeMap<&str, BTreeSet<&str>> = ALLOWED
        .iter()
        .map(|(m, a)| (*m, a.iter().copied().collect()))
        .collect();
    let srcs = sources();
    let mods: BTreeSet<Vec<String>> = srcs.keys().cloned().collect();
    let mut bad = Vec::new();
    for (m, (path, code)) in &srcs {
        let Some(top) = m.first() else { continue };
        if top == "lib" || top == "main" {
            continue;
        }
        let Some(ok) = allowed.get(top.as_str()) else {
            bad.push(format!(
                "{}: module `{top}` is not in the table",
                path.display()
            ));
            continue;
        };
        for r in references(m, code, &mods) {
            let used = r[0].as_str();
            if used != top && !ok.contains(used) {
                bad.push(format!(
                    "{}: `{top}` uses `{}`, which the table does not allow",
                    path.display(),
                    r.join("::")
                ));
            }
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[test]
fn no_import_cycle_between_the_files_of_a_module() {
    let srcs = sources();
    let mods: BTreeSet<Vec<String>> = srcs.keys().cloned().collect();
    let mut edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    for (m, (_, code)) in &srcs {
        for r in references(m, code, &mods) {
            // A module and its own ancestors or descendants are one unit
            // (a parent re-exports its children; a child uses its parent).
            let related = r.starts_with(m) || m.starts_with(&r);
            if !related {
                edges.entry(m.clone()).or_default().insert(r);
            }
        }
    }
    // A cycle is a path back to where it started; report the first found.
    fn visit(
        v: &Vec<String>,
        edges: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        state: &mut BTreeMap<Vec<String>, u8>,
        stack: &mut Vec<Vec<String>>,
    ) -> Option<Vec<Vec<String>>> {
        state.insert(v.clone(), 1);
        stack.push(v.clone());
        for w in edges.get(v).into_iter().flatten() {
            match state.get(w).copied().unwrap_or(0) {
                0 => {
                    if let Some(c) = visit(w, edges, state, stack) {
                        return Some(c);
                    }
                }
                1 => {
                    let at = stack.iter().position(|s| s == w).unwrap();
                    let mut c = stack[at..].to_vec();
                    c.push(w.clone());
                    return Some(c);
                }
                _ => {}
            }
        }
        stack.pop();
        state.insert(v.clone(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for m in &mods {
        if state.get(m).copied().unwrap_or(0) == 0 {
            if let Some(c) = visit(m, &edges, &mut state, &mut Vec::new()) {
                let names: Vec<String> = c.iter().map(|m| m.join("::")).collect();
                panic!("import cycle: {}", names.join(" -> "));
            }
        }
    }
}
