//! Every real-world Dockerfile of the conformance corpus lowers, with a
//! resolver that knows every image: no panics, and only the errors BuildKit
//! would give too (or that name a feature kiln refuses).

use std::path::Path;

use super::*;
use crate::common::conformance_dir;

/// Resolves any reference to a minimal image.
struct Anything;

impl ImageResolver for Anything {
    fn resolve(
        &self,
        reference: &str,
        _platform: &Platform,
    ) -> Result<ResolvedImage, Box<dyn Error + Send + Sync>> {
        Ok(ResolvedImage {
            reference: reference.into(),
            manifest: Descriptor::new(
                media_type::OCI_MANIFEST,
                Digest::of(reference.as_bytes()),
                1,
            ),
            config: image(|c| c.env = vec!["PATH=/bin".into()]),
        })
    }
}

fn dockerfiles(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("corpus dir readable") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            dockerfiles(&path, out);
        } else if path.file_name().is_some_and(|n| n == "Dockerfile") {
            out.push(path);
        }
    }
}

/// Files that must fail, and a phrase of their error.
const EXPECTED: [(&str, &str); 5] = [
    // `ARG image` with no default; kaniko's test passes it as a build arg.
    ("Dockerfile_test_scratch/Dockerfile", "should not be blank"),
    (
        "docker__buildx/hack__dockerfiles__lint.Dockerfile/Dockerfile",
        "ADD from a git repository is not supported",
    ),
    (
        "moby__buildkit/Dockerfile/Dockerfile",
        "ADD from a git repository is not supported",
    ),
    // `ADD https://…/x.git?ref=…`: git since the query form (BuildKit 0.13); the
    // plan used to miss it and fail only when the step ran.
    (
        "moby__moby/Dockerfile/Dockerfile",
        "ADD from a git repository is not supported",
    ),
    (
        "moby__moby/hack__dockerfiles__govulncheck.Dockerfile/Dockerfile",
        "ADD from a git repository is not supported",
    ),
];

#[test]
fn real_world_dockerfiles_lower() {
    let mut files = Vec::new();
    dockerfiles(&conformance_dir().join("real-world"), &mut files);
    assert!(files.len() > 200, "corpus has {} Dockerfiles", files.len());
    let mut failures = Vec::new();
    for f in &files {
        let src = std::fs::read(f).expect("Dockerfile readable");
        let Ok(df) = parse(&src) else { continue };
        let expected = EXPECTED
            .iter()
            .find(|(suffix, _)| f.to_string_lossy().ends_with(suffix));
        match (lower(&df, &PlanOptions::default(), &Anything), expected) {
            (Ok(g), None) => {
                // --call=outline reads the plan: it must not panic either.
                let o = kiln::lint::outline(&df, &g);
                let _ = kiln::lint::render_outline_text(&o);
                let _ = kiln::lint::render_outline_json(&o, &src);
            }
            (Err(e), Some((_, phrase))) if e.to_string().contains(phrase) => {}
            (Ok(_), Some(_)) => {
                failures.push(format!("{}: lowered, expected an error", f.display()))
            }
            (Err(e), _) => failures.push(format!("{}: {e}", f.display())),
        }
    }
    assert!(
        failures.is_empty(),
        "{} failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn real_world_dockerfiles_lower_for_every_named_target() {
    let mut files = Vec::new();
    dockerfiles(&conformance_dir().join("real-world"), &mut files);
    let (mut lowered, mut failures) = (0, Vec::new());
    for f in &files {
        let src = std::fs::read(f).expect("Dockerfile readable");
        let Ok(df) = parse(&src) else { continue };
        let names = df
            .instructions
            .iter()
            .filter(|i| i.command() == "from")
            .filter_map(|i| match i.args.as_slice() {
                [_, kw, name] if kw.eq_ignore_ascii_case("as") => Some(name.clone()),
                _ => None,
            });
        for name in names {
            let opts = PlanOptions {
                target: Some(name.clone()),
                ..Default::default()
            };
            match lower(&df, &opts, &Anything) {
                Ok(g) => {
                    assert!(g.target_stage().reached);
                    lowered += 1;
                }
                Err(e) if e.to_string().contains("git repository") => {}
                Err(e) => failures.push(format!("{} --target {name}: {e}", f.display())),
            }
        }
    }
    assert!(lowered > 300, "only {lowered} targets lowered");
    assert!(
        failures.is_empty(),
        "{} failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
