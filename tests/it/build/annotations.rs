//! `--annotation`: buildx's syntax, on the image manifest (the default
//! level), read back with skopeo; levels kiln has no place for are refused.

use std::process::Command;

use super::Env;
use crate::common::run as tool;

#[test]
fn annotations_go_on_the_manifest() {
    let env = Env::new();
    let ctx = env.context(
        "ctx",
        &[("Dockerfile", "FROM scratch\nCOPY a /a\n"), ("a", "a")],
    );
    let tar = env.path("img.tar");
    let host = kiln::oci::Platform::host().to_specifier();
    let typed = format!("manifest[{host}]:com.example.typed=yes");
    env.build(&[
        // The manifest's annotations, read as the archive's top manifest:
        // no index (the attestation index takes no annotations).
        "--provenance=false",
        "--annotation",
        "org.opencontainers.image.source=https://example.com/x",
        "--annotation",
        &typed,
        "-t",
        "ann:1",
        "-o",
        &format!("type=oci,dest={}", tar.display()),
        ctx.to_str().unwrap(),
    ]);
    let raw = tool(Command::new("skopeo").args([
        "inspect",
        "--raw",
        &format!("oci-archive:{}", tar.display()),
    ]));
    let m: serde_json::Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(
        m["annotations"]["org.opencontainers.image.source"],
        "https://example.com/x"
    );
    assert_eq!(m["annotations"]["com.example.typed"], "yes");
    // The store's image is the same manifest.
    let (_, manifest, _) = env.image("ann:1");
    assert_eq!(manifest.annotations["com.example.typed"], "yes");
}

#[test]
fn annotation_levels_without_a_place_are_refused() {
    let env = Env::new();
    let ctx = env.context("ctx", &[("Dockerfile", "FROM scratch\n")]);
    for (v, want) in [
        ("index:a=b", "kiln does not support index annotations"),
        (
            "index-descriptor:a=b",
            "kiln does not support index-descriptor annotations",
        ),
        (
            "manifest-descriptor:a=b",
            "kiln does not support manifest-descriptor annotations",
        ),
        (
            "manifest[plan9/mips]:a=b",
            "may name only the host platform",
        ),
        ("bogus:a=b", "unknown annotation type"),
        ("novalue", "expected key=value"),
    ] {
        let out = env.kiln(&["build", "--annotation", v, ctx.to_str().unwrap()], None);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{v}: {err}");
        assert!(err.contains(want), "{v}: {err}");
    }
}
