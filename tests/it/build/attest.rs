//! Provenance attestations end to end: the image becomes an index with a
//! BuildKit-style attestation manifest, whose statement has the structure
//! BuildKit 0.25 writes (`testdata/attest`, recorded from it: same keys,
//! media types and annotations, equal values where comparable); the same
//! inputs give the same index digest; every output and the store still
//! work with the index; the flags are read as buildx reads them.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use super::Env;
use crate::common::ok;

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/attest")
}

fn json_file(p: &Path) -> Value {
    serde_json::from_slice(&fs::read(p).unwrap()).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// What an OCI layout holds for one attested image: the image index, the
/// attestation manifest, its config and its statements.
struct Attested {
    index_digest: String,
    index: Value,
    manifest: Value,
    config: Value,
    statements: Vec<Value>,
}

fn blob(dir: &Path, digest: &Value) -> Value {
    let d = digest.as_str().unwrap().strip_prefix("sha256:").unwrap();
    json_file(&dir.join("blobs/sha256").join(d))
}

fn attested(layout: &Path) -> Attested {
    kiln::oci::validate_layout(layout).unwrap();
    let top = json_file(&layout.join("index.json"));
    let desc = &top["manifests"][0];
    assert_eq!(desc["mediaType"], "application/vnd.oci.image.index.v1+json");
    let index = blob(layout, &desc["digest"]);
    let att = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["platform"]["os"] == "unknown")
        .expect("an attestation manifest")
        .clone();
    let manifest = blob(layout, &att["digest"]);
    let config = blob(layout, &manifest["config"]["digest"]);
    let statements = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| blob(layout, &l["digest"]))
        .collect();
    Attested {
        index_digest: desc["digest"].as_str().unwrap().to_string(),
        index,
        manifest,
        config,
        statements,
    }
}

/// BuildKit's recording for `mode` (`min`, `max`).
fn recorded(mode: &str) -> Attested {
    let dir = testdata().join(mode);
    Attested {
        index_digest: String::new(),
        index: json_file(&dir.join("index.json")),
        manifest: json_file(&dir.join("attestation-manifest.json")),
        config: json_file(&dir.join("attestation-config.json")),
        statements: vec![json_file(&dir.join("statement.json"))],
    }
}

/// Paths (`a.b.c`, `[]` for any array element) where kiln and BuildKit
/// differ on purpose; the README lists each. BuildKit-only: LLB data and
/// per-vertex layers; kiln-only: its plan steps.
const DIVERGENCES: &[&str] = &[
    "predicate.buildDefinition.internalParameters.buildConfig.llbDefinition",
    "predicate.buildDefinition.internalParameters.buildConfig.digestMapping",
    "predicate.buildDefinition.internalParameters.buildConfig.steps",
    "predicate.runDetails.metadata.buildkit_metadata.layers",
    "predicate.runDetails.metadata.buildkit_metadata.source.infos[].llbDefinition",
    "predicate.runDetails.metadata.buildkit_metadata.source.infos[].digestMapping",
    // Step ids are each builder's own (kiln numbers every instruction).
    "predicate.runDetails.metadata.buildkit_metadata.source.locations",
];

/// Same keys at every level (arrays: element by element, up to the shorter),
/// outside the listed divergences.
fn same_keys(kiln: &Value, bk: &Value, path: &str, diffs: &mut Vec<String>) {
    if DIVERGENCES.contains(&path) {
        return;
    }
    match (kiln, bk) {
        (Value::Object(k), Value::Object(b)) => {
            let ks: BTreeSet<&String> = k.keys().collect();
            let bs: BTreeSet<&String> = b.keys().collect();
            for key in ks.union(&bs) {
                let sub = if path.is_empty() {
                    key.to_string()
                } else {
                    format!("{path}.{key}")
                };
                match (k.get(*key), b.get(*key)) {
                    (Some(x), Some(y)) => same_keys(x, y, &sub, diffs),
                    _ if DIVERGENCES.contains(&sub.as_str()) => {}
                    (Some(_), None) => diffs.push(format!("only kiln has {sub}")),
                    (None, _) => diffs.push(format!("only BuildKit has {sub}")),
                }
            }
        }
        (Value::Array(k), Value::Array(b)) => {
            for (x, y) in k.iter().zip(b) {
                same_keys(x, y, &format!("{path}[]"), diffs);
            }
        }
        (x, y) if std::mem::discriminant(x) != std::mem::discriminant(y) => {
            diffs.push(format!("{path}: kiln {x}, BuildKit {y}"))
        }
        _ => {}
    }
}

fn host_purl_platform() -> String {
    kiln::oci::Platform::host()
        .to_specifier()
        .replace('/', "%2F")
}

/// Builds testdata/attest/ctx as BuildKit was recorded building it.
fn build_like_the_recording(env: &Env, mode: &str) -> Attested {
    let out = env.path(&format!("{mode}-layout"));
    let ctx = testdata().join("ctx");
    env.build(&[
        &format!("--provenance=mode={mode},version=v1"),
        "--build-arg",
        "GREETING=hi",
        // newbk.sh passes --network none to every build it records.
        // (In min mode the build arg is left out, by BuildKit and kiln.)
        "--network",
        "none",
        "--reproducible",
        "-o",
        &format!(
            "type=oci,dest={},tar=false,name=example.com/attest/app:1",
            out.display()
        ),
        ctx.to_str().unwrap(),
    ]);
    attested(&out)
}

#[test]
fn provenance_has_buildkits_structure_min_and_max() {
    let env = Env::new();
    env.busybox();
    for mode in ["min", "max"] {
        let kiln = build_like_the_recording(&env, mode);
        let bk = recorded(mode);
        let mut diffs = Vec::new();
        // Index: the image manifest, then the attestation manifest with
        // BuildKit's annotations and platform.
        same_keys(&kiln.index, &bk.index, "index", &mut diffs);
        let (ki, bi) = (&kiln.index["manifests"], &bk.index["manifests"]);
        assert_eq!(ki[1]["platform"], bi[1]["platform"]);
        assert_eq!(
            ki[1]["annotations"]["vnd.docker.reference.type"],
            bi[1]["annotations"]["vnd.docker.reference.type"]
        );
        assert_eq!(
            ki[1]["annotations"]["vnd.docker.reference.digest"],
            ki[0]["digest"]
        );
        for i in 0..2 {
            assert_eq!(ki[i]["mediaType"], bi[i]["mediaType"], "{mode}");
        }
        // Attestation manifest and config.
        same_keys(&kiln.manifest, &bk.manifest, "manifest", &mut diffs);
        let (kl, bl) = (&kiln.manifest["layers"][0], &bk.manifest["layers"][0]);
        assert_eq!(kl["mediaType"], bl["mediaType"]);
        assert_eq!(kl["annotations"], bl["annotations"]);
        assert_eq!(
            kiln.manifest["config"]["mediaType"],
            bk.manifest["config"]["mediaType"]
        );
        same_keys(&kiln.config, &bk.config, "config", &mut diffs);
        assert_eq!(kiln.config["architecture"], "unknown");
        assert_eq!(kiln.config["rootfs"]["diff_ids"][0], kl["digest"]);
        // The statement.
        let (k, b) = (&kiln.statements[0], &bk.statements[0]);
        same_keys(k, b, "", &mut diffs);
        assert!(diffs.is_empty(), "{mode}: {diffs:#?}");
        for key in ["_type", "predicateType"] {
            assert_eq!(k[key], b[key], "{mode} {key}");
        }
        let name = b["subject"][0]["name"]
            .as_str()
            .unwrap()
            .replace("linux%2Famd64", &host_purl_platform());
        assert_eq!(k["subject"][0]["name"], name.as_str());
        assert_eq!(
            format!(
                "sha256:{}",
                k["subject"][0]["digest"]["sha256"].as_str().unwrap()
            ),
            ki[0]["digest"].as_str().unwrap()
        );
        let (kd, bd) = (
            &k["predicate"]["buildDefinition"],
            &b["predicate"]["buildDefinition"],
        );
        assert_eq!(kd["buildType"], bd["buildType"]);
        assert_eq!(kd["externalParameters"], bd["externalParameters"], "{mode}");
        let (kdep, bdep) = (
            &kd["resolvedDependencies"][0],
            &bd["resolvedDependencies"][0],
        );
        assert_eq!(
            kdep["uri"].as_str().unwrap(),
            bdep["uri"]
                .as_str()
                .unwrap()
                .replace("linux%2Famd64", &host_purl_platform())
        );
        assert_eq!(kdep["digest"]["sha256"].as_str().unwrap().len(), 64);
        let (kr, br) = (&k["predicate"]["runDetails"], &b["predicate"]["runDetails"]);
        assert_eq!(kr["builder"], br["builder"]);
        let (km, bm) = (&kr["metadata"], &br["metadata"]);
        assert_eq!(km["buildkit_completeness"], bm["buildkit_completeness"]);
        // --reproducible: SOURCE_DATE_EPOCH=0 is the build's time.
        assert_eq!(km["startedOn"], "1970-01-01T00:00:00Z");
        assert_eq!(km["invocationId"].as_str().unwrap().len(), 64);
        if mode == "max" {
            let (ks, bs) = (
                &km["buildkit_metadata"]["source"],
                &bm["buildkit_metadata"]["source"],
            );
            for key in ["filename", "language", "data"] {
                assert_eq!(ks["infos"][0][key], bs["infos"][0][key], "{key}");
            }
            // Every line BuildKit locates a step at, kiln locates one at too.
            let lines = |v: &Value| -> BTreeSet<u64> {
                v["locations"]
                    .as_object()
                    .unwrap()
                    .values()
                    .flat_map(|l| l["locations"].as_array().cloned().unwrap_or_default())
                    .flat_map(|l| l["ranges"].as_array().cloned().unwrap())
                    .map(|r| r["start"]["line"].as_u64().unwrap())
                    .collect()
            };
            let (kl, bl) = (lines(ks), lines(bs));
            assert!(bl.is_subset(&kl), "{bl:?} ⊄ {kl:?}");
            let steps = kd["internalParameters"]["buildConfig"]["steps"]
                .as_array()
                .unwrap();
            assert!(steps.iter().any(|s| s["op"]["kind"] == "run"));
        } else {
            assert!(kd["internalParameters"].get("buildConfig").is_none());
            assert_eq!(km["buildkit_metadata"], bm["buildkit_metadata"]);
        }
    }
}

/// The index digest of a build (`containerimage.digest`).
fn metadata_digest(env: &Env, file: &str) -> String {
    let m: Value = serde_json::from_slice(&fs::read(env.path(file)).unwrap()).unwrap();
    m["containerimage.digest"].as_str().unwrap().to_string()
}

#[test]
fn same_inputs_same_index_digest() {
    let df = "FROM busybox\nARG A=1\nRUN echo $A > /a\nCOPY f /f\n";
    let mut digests = Vec::new();
    let mut archives = Vec::new();
    for round in 0..2 {
        // A fixed base in each store (Env::busybox dates its build now).
        let env = Env::new();
        crate::fixtures::busybox_image(&env.store());
        let ctx = env.context("ctx", &[("Dockerfile", df), ("f", "f\n")]);
        let tar = env.path("img.tar");
        env.build(&[
            "--provenance=mode=max",
            "--reproducible",
            "--metadata-file",
            env.path("meta.json").to_str().unwrap(),
            "-o",
            &format!("type=oci,dest={}", tar.display()),
            "-t",
            "repro:1",
            ctx.to_str().unwrap(),
        ]);
        digests.push(metadata_digest(&env, "meta.json"));
        archives.push(fs::read(&tar).unwrap());
        let (desc, _, _) = env.image("repro:1");
        assert_eq!(desc.media_type, "application/vnd.oci.image.index.v1+json");
        assert_eq!(desc.digest.to_string(), digests[round]);
        if round == 1 {
            // A second build in the same store (all cached) is the same too.
            env.build(&[
                "--provenance=mode=max",
                "--reproducible",
                "--metadata-file",
                env.path("meta2.json").to_str().unwrap(),
                "-t",
                "repro:1",
                ctx.to_str().unwrap(),
            ]);
            assert_eq!(metadata_digest(&env, "meta2.json"), digests[1]);
        }
    }
    assert_eq!(digests[0], digests[1]);
    assert!(archives[0] == archives[1], "the OCI archives differ");
}

#[test]
fn default_min_provenance_everywhere_the_image_goes() {
    let (env, ctx) = Env::busybox_dockerfile("FROM busybox\nRUN echo hi > /hi\n");
    let c = ctx.to_str().unwrap();
    let meta = env.path("meta.json");
    let iid = env.path("iid");
    env.build(&[
        "-t",
        "dflt:1",
        "--metadata-file",
        meta.to_str().unwrap(),
        "--iidfile",
        iid.to_str().unwrap(),
        c,
    ]);
    let (desc, m, _) = env.image("dflt:1");
    assert_eq!(desc.media_type, "application/vnd.oci.image.index.v1+json");
    // buildx's metadata with an index: its digest and descriptor, no config digest.
    let md: Value = serde_json::from_slice(&fs::read(&meta).unwrap()).unwrap();
    assert_eq!(
        md["containerimage.digest"],
        desc.digest.to_string().as_str()
    );
    assert_eq!(
        md["containerimage.descriptor"]["mediaType"],
        desc.media_type.as_str()
    );
    assert!(md.get("containerimage.config.digest").is_none(), "{md}");
    assert_eq!(fs::read_to_string(&iid).unwrap(), desc.digest.to_string());
    // The statement is min provenance without times (no SOURCE_DATE_EPOCH).
    let store = env.store();
    let index: kiln::oci::Index =
        serde_json::from_slice(&store.read_blob(&desc.digest).unwrap()).unwrap();
    let att: kiln::oci::Manifest =
        serde_json::from_slice(&store.read_blob(&index.manifests[1].digest).unwrap()).unwrap();
    let stmt: Value =
        serde_json::from_slice(&store.read_blob(&att.layers[0].digest).unwrap()).unwrap();
    assert_eq!(stmt["predicateType"], "https://slsa.dev/provenance/v1");
    assert_eq!(
        stmt["subject"][0]["name"],
        format!("pkg:docker/dflt@1?platform={}", host_purl_platform()).as_str()
    );
    let md = &stmt["predicate"]["runDetails"]["metadata"];
    assert!(md.get("startedOn").is_none(), "{md}");
    assert!(stmt["predicate"]["buildDefinition"]["internalParameters"]
        .get("buildConfig")
        .is_none());
    assert_eq!(
        index.manifests[0].digest,
        env.store().load_manifest(&desc).unwrap().1.digest
    );
    let _ = m;

    // `kiln images`, `inspect`, and a FROM of the attested image.
    let images = env.kiln(&["images"], None);
    assert!(String::from_utf8_lossy(&images.stdout).contains("dflt"));
    assert!(env.kiln(&["inspect", "dflt:1"], None).status.success());
    let child = env.context(
        "child",
        &[("Dockerfile", "FROM dflt:1\nRUN cat /hi > /hi2\n")],
    );
    env.build(&["-t", "child:1", child.to_str().unwrap()]);
    assert_eq!(
        fs::read_to_string(env.rootfs("child:1").join("hi2")).unwrap(),
        "hi\n"
    );
    // `kiln save` as an OCI archive keeps the index; fsck finds nothing wrong.
    let saved = env.path("saved.tar");
    ok(env.kiln(&["save", "dflt:1", "-o", saved.to_str().unwrap()], None));
    ok(env.kiln(&["fsck"], None));

    // --provenance=false and BUILDX_NO_DEFAULT_ATTESTATIONS give a bare manifest.
    env.build(&["--provenance=false", "-t", "bare:1", c]);
    assert_eq!(
        env.image("bare:1").0.media_type,
        "application/vnd.oci.image.manifest.v1+json"
    );
    ok(Command::new(env!("CARGO_BIN_EXE_kiln"))
        .arg("--root")
        .arg(env.root())
        .args(["build", "--progress", "quiet", "-t", "bare:2", c])
        .env("BUILDX_NO_DEFAULT_ATTESTATIONS", "1")
        .output()
        .unwrap());
    assert_eq!(
        env.image("bare:2").0.media_type,
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert_eq!(env.image("bare:2").0, env.image("bare:1").0);
}

#[test]
fn oci_archive_is_read_by_skopeo_and_umoci() {
    let (env, ctx) = Env::busybox_dockerfile("FROM busybox\nRUN echo hi > /hi\n");
    let tar = env.path("img.tar");
    env.build(&[
        "--provenance=mode=max",
        "-o",
        &format!("type=oci,dest={},name=tools:1", tar.display()),
        ctx.to_str().unwrap(),
    ]);
    let raw = crate::common::run(Command::new("skopeo").args([
        "inspect",
        "--raw",
        &format!("oci-archive:{}", tar.display()),
    ]));
    let index: Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(
        index["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    assert_eq!(
        index["manifests"][1]["annotations"]["vnd.docker.reference.type"],
        "attestation-manifest"
    );
    // skopeo copies the whole index (image and attestation manifest).
    let copied = env.path("copied");
    crate::common::run(Command::new("skopeo").args([
        "copy",
        "--all",
        &format!("oci-archive:{}", tar.display()),
        &format!("oci:{}:tools", copied.display()),
    ]));
    kiln::oci::validate_layout(&copied).unwrap();
    // umoci 0.4.7 refuses a tag naming an index with an attestation
    // manifest ("tag is ambiguous", BuildKit's too): skopeo copies this
    // platform's image out first, which umoci unpacks.
    let layout = env.path("layout");
    fs::create_dir_all(&layout).unwrap();
    crate::common::run(
        Command::new("tar")
            .arg("-xf")
            .arg(&tar)
            .arg("-C")
            .arg(&layout),
    );
    let out = Command::new("umoci")
        .args(["unpack", "--rootless", "--image"])
        .arg(format!("{}:1", layout.display()))
        .arg(env.path("refused"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let single = env.path("single");
    crate::common::run(Command::new("skopeo").args([
        "copy",
        &format!("oci-archive:{}", tar.display()),
        &format!("oci:{}:tools", single.display()),
    ]));
    let bundle = env.path("bundle");
    crate::common::run(
        Command::new("umoci")
            .args(["unpack", "--rootless", "--image"])
            .arg(format!("{}:tools", single.display()))
            .arg(&bundle),
    );
    assert_eq!(
        fs::read_to_string(bundle.join("rootfs/hi")).unwrap(),
        "hi\n"
    );
}

#[test]
fn docker_archive_drops_default_attestations_and_refuses_explicit_ones() {
    let (env, ctx) = Env::busybox_dockerfile("FROM busybox\nRUN echo hi > /hi\n");
    let c = ctx.to_str().unwrap();
    let tar = env.path("docker.tar");
    env.build(&[
        "-o",
        &format!("type=docker,dest={},name=d:1", tar.display()),
        c,
    ]);
    let listing = crate::common::run(Command::new("tar").arg("-tf").arg(&tar));
    assert!(listing.lines().any(|l| l == "manifest.json"), "{listing}");
    assert!(!listing.contains("index.json"), "{listing}");
    for (flags, want) in [
        (
            vec!["--provenance=true", "-o", "type=docker,dest=x.tar"],
            "type=docker output cannot carry attestations: docker exporter does not support exporting manifest lists",
        ),
        (
            vec!["--attest", "type=provenance,mode=max", "-o", "type=local,dest=out"],
            "cannot carry attestations",
        ),
    ] {
        let mut args = vec!["build", "--progress", "quiet"];
        args.extend(flags.iter().copied());
        args.push(c);
        let out = env.kiln(&args, None);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flags:?}: {err}");
        assert!(err.contains(want), "{flags:?}: {err}");
    }
    // A local output alone with the default provenance: no error, no attestation.
    let out = env.path("rootfs");
    env.build(&["-o", &format!("type=local,dest={}", out.display()), c]);
    assert_eq!(fs::read_to_string(out.join("hi")).unwrap(), "hi\n");
}

#[test]
fn builder_id_is_recorded() {
    let (env, ctx) = Env::busybox_dockerfile("FROM busybox\n");
    let layout = env.path("l");
    env.build(&[
        "--provenance=builder-id=https://ci.example/run/7",
        "-o",
        &format!("type=oci,dest={},tar=false", layout.display()),
        ctx.to_str().unwrap(),
    ]);
    let a = attested(&layout);
    assert_eq!(
        a.statements[0]["predicate"]["runDetails"]["builder"]["id"],
        "https://ci.example/run/7"
    );
    // No name: no subject, as BuildKit.
    assert_eq!(a.statements[0]["subject"], Value::Array(vec![]));
    assert!(!a.index_digest.is_empty());
}

#[test]
fn oci_artifact_shapes_the_attestation_manifest_as_buildkit() {
    let env = Env::new();
    env.busybox();
    let out = env.path("artifact-layout");
    env.build(&[
        "--build-arg",
        "GREETING=hi",
        "-o",
        &format!(
            "type=oci,dest={},tar=false,name=example.com/attest/app:1,oci-artifact=true",
            out.display()
        ),
        testdata().join("ctx").to_str().unwrap(),
    ]);
    let kiln = attested(&out);
    let bk = recorded("oci-artifact");
    let mut diffs = Vec::new();
    same_keys(&kiln.manifest, &bk.manifest, "manifest", &mut diffs);
    same_keys(&kiln.index, &bk.index, "index", &mut diffs);
    assert!(diffs.is_empty(), "{diffs:#?}");
    assert_eq!(kiln.manifest["artifactType"], bk.manifest["artifactType"]);
    assert_eq!(kiln.manifest["config"], bk.manifest["config"]);
    assert_eq!(kiln.config, bk.config);
    let mut image = kiln.index["manifests"][0].clone();
    image.as_object_mut().unwrap().remove("platform");
    assert_eq!(kiln.manifest["subject"], image);
    assert_eq!(
        kiln.manifest["layers"][0]["annotations"],
        bk.manifest["layers"][0]["annotations"]
    );
    // One attestation manifest per build: image outputs must agree.
    let out = env.kiln(
        &[
            "build",
            "--progress",
            "quiet",
            "-o",
            &format!(
                "type=oci,dest={},oci-artifact=true",
                env.path("a.tar").display()
            ),
            "-o",
            &format!("type=oci,dest={}", env.path("b.tar").display()),
            testdata().join("ctx").to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("oci-artifact must be the same"));
}

#[test]
fn max_provenance_lists_secret_ids_never_their_values() {
    let (env, ctx) = Env::busybox_dockerfile(
        "FROM busybox\n\
         RUN --mount=type=secret,id=tok cat /run/secrets/tok > /dev/null\n\
         RUN --mount=type=secret,id=must,required=true true\n\
         COPY --from=busybox:latest /bin/sh /sh2\n",
    );
    let secret = env.path("secret");
    fs::write(&secret, "s3cr3t-value-never-recorded").unwrap();
    let layout = env.path("l");
    env.build(&[
        "--provenance=mode=max",
        "--secret",
        &format!("id=tok,src={}", secret.display()),
        "--secret",
        &format!("id=must,src={}", secret.display()),
        "--label",
        "team=x",
        "-o",
        &format!("type=oci,dest={},tar=false", layout.display()),
        ctx.to_str().unwrap(),
    ]);
    let a = attested(&layout);
    let p = &a.statements[0]["predicate"];
    let request = &p["buildDefinition"]["externalParameters"]["request"];
    assert_eq!(
        request["secrets"],
        serde_json::json!([{"id": "must"}, {"id": "tok", "optional": true}])
    );
    assert_eq!(request["args"]["label:team"], "x");
    // The base and the COPY --from image are one dependency.
    let deps = p["buildDefinition"]["resolvedDependencies"]
        .as_array()
        .unwrap();
    assert_eq!(deps.len(), 1, "{deps:?}");
    let text = serde_json::to_string(&a.statements[0]).unwrap();
    assert!(
        !text.contains("s3cr3t"),
        "a secret's value reached the provenance"
    );
    // A bad BUILDX_NO_DEFAULT_ATTESTATIONS is a usage error, as in buildx.
    let out = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .arg("--root")
        .arg(env.root())
        .args(["build", "--progress", "quiet", ctx.to_str().unwrap()])
        .env("BUILDX_NO_DEFAULT_ATTESTATIONS", "yes")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid BUILDX_NO_DEFAULT_ATTESTATIONS"));
}
