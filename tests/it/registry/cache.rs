//! The step cache as an OCI artifact in a registry: one runner builds and
//! pushes its cache, a fresh one pulls it and hits every step.

use kiln::cache::export::{build_artifact, import_artifact, ExportSpec, Mode, ARTIFACT_TYPE};
use kiln::cache::StepCache;
use kiln::oci::media_type;
use kiln::oci::registry::{pull_artifact, push_artifact};

use super::images::client;
use super::reference;
use super::server::{Auth, Registry};
use crate::build::Env;

const DOCKERFILE: &str = "FROM scratch\nCOPY a.txt /a\nCOPY b.txt /b\n";

/// (step, CACHED) from a plain-progress build log.
fn cached_steps(stderr: &str) -> Vec<bool> {
    let mut names = std::collections::BTreeMap::new();
    let mut out = Vec::new();
    for line in stderr.lines() {
        let Some((id, rest)) = line.strip_prefix('#').and_then(|l| l.split_once(' ')) else {
            continue;
        };
        if rest.starts_with('[') && !rest.starts_with("[internal]") {
            names.insert(id.to_string(), rest.to_string());
        } else if (rest == "CACHED" || rest.starts_with("DONE"))
            && names.get(id).is_some_and(|n| !n.contains(" FROM "))
        {
            out.push(rest == "CACHED");
        }
    }
    out
}

fn build(env: &Env) -> Vec<bool> {
    let ctx = env.context(
        "ctx",
        &[("a.txt", "a"), ("b.txt", "b"), ("Dockerfile", DOCKERFILE)],
    );
    let out = env.kiln(
        &["build", "--progress", "plain", ctx.to_str().unwrap()],
        None,
    );
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    cached_steps(&log)
}

#[test]
fn step_cache_round_trips_through_a_registry() {
    let reg = Registry::start(false, Auth::None);
    let first = Env::new();
    assert_eq!(build(&first), [false, false]);
    let store = first.store();
    let steps = StepCache::with_store(store.clone()).unwrap();
    let spec = ExportSpec::latest(&steps, Mode::Max).unwrap();
    let art = build_artifact(&store, &spec).unwrap();
    let r = reference(&reg, "ci/cache:main");
    let digest = push_artifact(
        &client(None),
        &store,
        &r,
        media_type::OCI_MANIFEST,
        &art.manifest_bytes,
    )
    .unwrap();
    assert_eq!(digest, art.manifest.digest);

    let second = Env::new();
    let store = second.store();
    let pulled = pull_artifact(&client(None), &store, &r).unwrap();
    assert_eq!(pulled.descriptor.digest, digest);
    assert_eq!(pulled.manifest.config.media_type, ARTIFACT_TYPE);
    let config = store.read_blob(&pulled.manifest.config.digest).unwrap();
    let report = import_artifact(&store, &pulled.bytes, &config).unwrap();
    assert_eq!(report.records, 2);
    assert_eq!(build(&second), [true, true], "the pulled cache hits");
}

fn build_with(env: &Env, flags: &[&str]) -> Vec<bool> {
    let ctx = env.context(
        "ctx",
        &[("a.txt", "a"), ("b.txt", "b"), ("Dockerfile", DOCKERFILE)],
    );
    let mut args = vec!["build", "--progress", "plain"];
    args.extend_from_slice(flags);
    args.push(ctx.to_str().unwrap());
    let out = env.kiln(&args, None);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    cached_steps(&log)
}

#[test]
fn cache_to_and_from_a_registry_on_the_command_line() {
    let reg = Registry::start(false, Auth::None);
    let at = format!("{}/ci/cache:cli", reg.host);
    let to = format!("type=registry,ref={at},mode=max");
    let from = format!("type=registry,ref={at}");
    assert_eq!(
        build_with(&Env::new(), &["--cache-to", &to]),
        [false, false]
    );
    assert_eq!(
        build_with(&Env::new(), &["--cache-from", &from]),
        [true, true]
    );

    // A cache ref not pushed yet (a first CI run) is a warning, as in BuildKit.
    let env = Env::new();
    let missing = format!("type=registry,ref={}/ci/cache:nope", reg.host);
    let ctx = env.context(
        "ctx",
        &[("a.txt", "a"), ("b.txt", "b"), ("Dockerfile", DOCKERFILE)],
    );
    let c = ctx.to_str().unwrap();
    let out = env.kiln(
        &["build", "--progress", "plain", "--cache-from", &missing, c],
        None,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("importing cache") && err.contains("not found"),
        "{err}"
    );
    // A registry that is not there at all fails the build.
    let gone = "type=registry,ref=127.0.0.1:1/ci/cache:x";
    let out = env.kiln(&["build", "--cache-from", gone, c], None);
    assert!(!out.status.success());
}

/// The kaniko-style one-liner of docs/ci.md, as written there (the registry
/// and the context replaced): a first runner builds, pushes the image and its
/// cache; a second, with an empty store, takes every step from that cache.
#[test]
fn the_one_liner_in_docs_ci_md_pushes_and_shares_its_cache() {
    let doc = include_str!("../../../docs/ci.md");
    let line = doc
        .lines()
        .find(|l| l.starts_with("kiln build --file /workspace/Dockerfile"))
        .expect("docs/ci.md has lost its one-liner");
    let reg = Registry::start(false, Auth::None);
    let run_it = |env: &Env| {
        let ctx = env.context(
            "ctx",
            &[("a.txt", "a"), ("b.txt", "b"), ("Dockerfile", DOCKERFILE)],
        );
        let line = line
            .replace("registry.example.com", &reg.host)
            .replace("/workspace", ctx.to_str().unwrap());
        let mut args: Vec<&str> = line.split_whitespace().skip(1).collect();
        args.insert(1, "--progress=plain");
        let out = env.kiln(&args, None);
        let log = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{line}\n{log}");
        cached_steps(&log)
    };
    assert_eq!(run_it(&Env::new()), [false, false]);
    assert_eq!(run_it(&Env::new()), [true, true]);
    let pushed = crate::common::run(
        std::process::Command::new("skopeo")
            .args(["inspect", "--tls-verify=false", "--raw"])
            .arg(format!("docker://{}/team/app:1.0", reg.host)),
    );
    assert!(pushed.contains("schemaVersion"), "{pushed}");
}
