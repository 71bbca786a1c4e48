//! `builder::Build::execute`, the one call `kiln build` makes, called as
//! another program would: no CLI, a progress channel read here, the image
//! named, written as an OCI archive, the cache exported, the id and
//! metadata files written; and a failing step returned as the build's error
//! with nothing named.

use std::fs;
use std::sync::mpsc;

use kiln::builder::{build_specs, Build, BuildOptions, Event, ExecuteError, OutputSpec, Progress};

use super::Env;

#[test]
fn execute_builds_names_writes_outputs_cache_and_metadata() {
    let env = Env::new();
    let ctx = env.context(
        "ctx",
        &[("Dockerfile", "FROM scratch\nCOPY a /a\n"), ("a", "hello")],
    );
    let store = env.store();
    let mut build = Build::new(BuildOptions::new(
        &ctx,
        fs::read(ctx.join("Dockerfile")).unwrap(),
    ));
    let archive = env.path("img.tar");
    let cache_dir = env.path("cache");
    build.tags = vec!["lib:1".into()];
    build.outputs = vec![
        OutputSpec::parse(&format!("type=oci,dest={}", archive.display())).unwrap(),
        OutputSpec::Image {
            names: vec![],
            push: false,
            oci_artifact: false,
        },
    ];
    build.cache = build_specs(&[format!("type=local,dest={}", cache_dir.display())], &[]).unwrap();
    build.iidfile = Some(env.path("iid"));
    build.metadata_file = Some(env.path("meta.json"));
    let (tx, rx) = mpsc::channel();
    let img = build.execute(&store, &Progress::new(tx)).unwrap();
    let names: Vec<String> = rx
        .try_iter()
        .filter_map(|e| match e {
            Event::Started { name, .. } => Some(name),
            _ => None,
        })
        .collect();
    let exporting: Vec<&String> = names
        .iter()
        .filter(|n| n.starts_with("exporting"))
        .collect();
    assert_eq!(
        exporting,
        [
            &format!("exporting cache to {}", cache_dir.display()),
            &format!("exporting to oci image format {}", archive.display()),
            &"exporting to image".to_string(),
        ],
        "{names:?}"
    );
    // Min provenance by default: names point at the index, which lists the manifest.
    let (desc, _, _) = env.image("lib:1");
    let index = img
        .index
        .as_ref()
        .expect("an index with the attestation manifest");
    assert_eq!(desc.digest, index.digest);
    assert_eq!(
        store.load_manifest(&desc).unwrap().1.digest,
        img.manifest.digest
    );
    assert!(archive.is_file());
    assert!(cache_dir.join("index.json").is_file());
    // COMPAT(buildkit): with an index, buildx's ID file holds its digest.
    assert_eq!(
        fs::read_to_string(env.path("iid")).unwrap(),
        index.digest.to_string()
    );
    let meta: serde_json::Value =
        serde_json::from_slice(&fs::read(env.path("meta.json")).unwrap()).unwrap();
    assert_eq!(meta["containerimage.digest"], index.digest.to_string());
    assert!(meta.get("containerimage.config.digest").is_none());
    assert_eq!(meta["image.name"], "docker.io/library/lib:1");
}

#[test]
fn a_failing_step_is_the_error_and_nothing_is_written() {
    let env = Env::new();
    let ctx = env.context("ctx", &[("Dockerfile", "FROM scratch\nCOPY missing /x\n")]);
    let store = env.store();
    let mut build = Build::new(BuildOptions::new(
        &ctx,
        fs::read(ctx.join("Dockerfile")).unwrap(),
    ));
    build.tags = vec!["never:1".into()];
    build.outputs = vec![OutputSpec::Image {
        names: vec![],
        push: false,
        oci_artifact: false,
    }];
    build.iidfile = Some(env.path("iid"));
    let (tx, _rx) = mpsc::channel();
    let err = build.execute(&store, &Progress::new(tx)).unwrap_err();
    assert!(matches!(err, ExecuteError::Build(_)), "{err:?}");
    assert_eq!(err.exit_code(), 1);
    assert!(store.resolve("never:1").is_err());
    assert!(!env.path("iid").exists());
}
