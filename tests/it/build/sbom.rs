//! SBOM attestations end to end (`--sbom=true`, `--attest type=sbom`): a
//! kiln build whose image holds this host's dpkg database, read back from
//! the OCI archive by skopeo, carries an SPDX statement listing what
//! `dpkg-query` lists, checked by the SPDX project's validator; a package
//! deleted in a later layer is gone; the statement comes before the
//! provenance as BuildKit orders them; the bytes are reproducible; the
//! flags are read (and refused) as the README says.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use super::Env;
use crate::common::{dpkg_query, run};

const SPDX: &str = "https://spdx.dev/Document";
const SLSA: &str = "https://slsa.dev/provenance/v1";

fn json_file(p: &Path) -> Value {
    serde_json::from_slice(&fs::read(p).unwrap()).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn blob(dir: &Path, digest: &Value) -> Value {
    let d = digest.as_str().unwrap().strip_prefix("sha256:").unwrap();
    json_file(&dir.join("blobs/sha256").join(d))
}

/// An attested image in an OCI layout: its index, the image manifest
/// digest, and the attestation manifest's layers as (predicate type
/// annotation, statement), in order.
struct Attested {
    index_digest: String,
    image_digest: String,
    image_config: Value,
    statements: Vec<(String, Value)>,
}

fn attested(layout: &Path) -> Attested {
    kiln::oci::validate_layout(layout).unwrap();
    let top = json_file(&layout.join("index.json"));
    let desc = &top["manifests"][0];
    let index = blob(layout, &desc["digest"]);
    let ms = index["manifests"].as_array().unwrap();
    let image = ms
        .iter()
        .find(|m| m["platform"]["os"] != "unknown")
        .unwrap();
    let image_config = blob(layout, &blob(layout, &image["digest"])["config"]["digest"]);
    let statements = match ms.iter().find(|m| m["platform"]["os"] == "unknown") {
        None => Vec::new(),
        Some(att) => blob(layout, &att["digest"])["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                let t = l["annotations"]["in-toto.io/predicate-type"]
                    .as_str()
                    .unwrap();
                (t.to_string(), blob(layout, &l["digest"]))
            })
            .collect(),
    };
    Attested {
        index_digest: desc["digest"].as_str().unwrap().to_string(),
        image_digest: image["digest"].as_str().unwrap().to_string(),
        image_config,
        statements,
    }
}

impl Attested {
    fn types(&self) -> Vec<&str> {
        self.statements.iter().map(|(t, _)| t.as_str()).collect()
    }

    /// The predicate of the `n`th SPDX statement.
    fn sbom(&self, n: usize) -> &Value {
        &self
            .statements
            .iter()
            .filter(|(t, _)| t == SPDX)
            .nth(n)
            .expect("an SBOM statement")
            .1["predicate"]
    }
}

/// `(name, version)` of the document's packages whose purl starts `pkg:<kind>/`.
fn packages(doc: &Value, kind: &str) -> BTreeSet<(String, String)> {
    doc["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| {
            p["externalRefs"][0]["referenceLocator"]
                .as_str()
                .is_some_and(|l| l.starts_with(&format!("pkg:{kind}/")))
        })
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_string(),
                p["versionInfo"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// A context holding this host's dpkg status (`dpkg/status`), its
/// os-release, and two Python distributions (`site/`), with `dockerfile`.
fn debian_context(env: &Env, dockerfile: &str) -> PathBuf {
    let meta = |n: &str, v: &str| format!("Metadata-Version: 2.1\nName: {n}\nVersion: {v}\n");
    let ctx = env.context(
        "ctx",
        &[
            ("Dockerfile", dockerfile),
            ("site/keep-2.0.dist-info/METADATA", &meta("keep", "2.0")),
            ("site/gone-1.0.dist-info/METADATA", &meta("gone", "1.0")),
        ],
    );
    fs::create_dir_all(ctx.join("dpkg")).unwrap();
    fs::copy("/var/lib/dpkg/status", ctx.join("dpkg/status")).expect("this host's dpkg status");
    fs::copy("/etc/os-release", ctx.join("os-release")).unwrap();
    ctx
}

const DEBIAN_DOCKERFILE: &str = "FROM busybox\n\
COPY dpkg/status /var/lib/dpkg/status\n\
COPY os-release /etc/os-release\n\
COPY site/ /usr/lib/python3/dist-packages/\n\
RUN rm -rf /usr/lib/python3/dist-packages/gone-1.0.dist-info\n";

/// The SPDX project's validator (pyspdxtools, from PyPI's spdx-tools,
/// which scripts/test installs) on `doc`.
fn assert_valid_spdx(env: &Env, doc: &Value) {
    let file = env.path("sbom.spdx.json");
    fs::write(&file, serde_json::to_vec(doc).unwrap()).unwrap();
    let out = Command::new("pyspdxtools")
        .arg("-i")
        .arg(&file)
        .output()
        .unwrap_or_else(|e| panic!("pyspdxtools (pip install spdx-tools): {e}"));
    assert!(
        out.status.success(),
        "pyspdxtools rejects the document: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn sbom_of_a_debian_image_matches_dpkg_query_and_drops_deleted_packages() {
    let env = Env::new();
    env.busybox();
    let ctx = debian_context(&env, DEBIAN_DOCKERFILE);
    let tar = env.path("img.tar");
    env.build(&[
        "--sbom=true",
        "-o",
        &format!(
            "type=oci,dest={},name=example.com/sbom/app:1",
            tar.display()
        ),
        ctx.to_str().unwrap(),
    ]);
    // Read back as skopeo copies it (every manifest and blob of the index).
    let layout = env.path("copied");
    run(Command::new("skopeo").args([
        "copy",
        "--all",
        &format!("oci-archive:{}", tar.display()),
        &format!("oci:{}:app", layout.display()),
    ]));
    let a = attested(&layout);
    // COMPAT(buildkit): the SBOM layer first, then the provenance.
    assert_eq!(a.types(), [SPDX, SLSA]);
    let (_, stmt) = &a.statements[0];
    assert_eq!(stmt["_type"], "https://in-toto.io/Statement/v0.1");
    assert_eq!(stmt["predicateType"], SPDX);
    assert_eq!(stmt["subject"], a.statements[1].1["subject"]);
    assert_eq!(
        format!(
            "sha256:{}",
            stmt["subject"][0]["digest"]["sha256"].as_str().unwrap()
        ),
        a.image_digest
    );
    assert!(stmt["subject"][0]["name"]
        .as_str()
        .unwrap()
        .starts_with("pkg:docker/example.com/sbom/app@1?platform="));

    let doc = a.sbom(0);
    assert_eq!(doc["spdxVersion"], "SPDX-2.3");
    let want = dpkg_query(&ctx.join("dpkg"));
    assert!(
        want.len() > 50,
        "the host's dpkg database is too small to test with"
    );
    assert_eq!(packages(doc, "deb"), want);
    // The distribution the RUN deleted (a whiteout in its layer) is gone;
    // the one beside it is there.
    assert_eq!(
        packages(doc, "pypi"),
        BTreeSet::from([("keep".to_string(), "2.0".to_string())])
    );
    assert!(doc["documentNamespace"]
        .as_str()
        .unwrap()
        .contains(a.image_digest.strip_prefix("sha256:").unwrap()));
    // No SOURCE_DATE_EPOCH: the document is dated as the image config is.
    let created = a.image_config["created"].as_str().unwrap();
    assert_eq!(
        doc["creationInfo"]["created"].as_str().unwrap(),
        format!("{}Z", &created[..19])
    );
    assert_valid_spdx(&env, doc);
}

#[test]
fn reproducible_sbom_builds_are_byte_identical() {
    let mut digests = Vec::new();
    let mut archives = Vec::new();
    for _ in 0..2 {
        // A fixed base in each store (Env::busybox dates its build now).
        let env = Env::new();
        crate::fixtures::busybox_image(&env.store());
        let ctx = debian_context(&env, DEBIAN_DOCKERFILE);
        let tar = env.path("img.tar");
        env.build(&[
            "--sbom=true",
            "--reproducible",
            "-o",
            &format!("type=oci,dest={},name=repro:1", tar.display()),
            ctx.to_str().unwrap(),
        ]);
        let layout = env.path("layout");
        fs::create_dir_all(&layout).unwrap();
        run(Command::new("tar")
            .arg("-xf")
            .arg(&tar)
            .arg("-C")
            .arg(&layout));
        let a = attested(&layout);
        assert_eq!(a.types(), [SPDX, SLSA]);
        assert_eq!(a.sbom(0)["creationInfo"]["created"], "1970-01-01T00:00:00Z");
        assert!(!packages(a.sbom(0), "deb").is_empty());
        digests.push(a.index_digest);
        archives.push(fs::read(&tar).unwrap());
    }
    assert_eq!(digests[0], digests[1]);
    assert!(archives[0] == archives[1], "the OCI archives differ");
}

/// The predicate types of a build's attestations (empty: no index).
fn types_of(env: &Env, ctx: &Path, flags: &[&str]) -> Vec<String> {
    let layout = tempfile::tempdir_in(env.dir.path()).unwrap().keep();
    let mut args = flags.to_vec();
    let out = format!("type=oci,dest={},tar=false", layout.display());
    args.extend(["-o", &out, ctx.to_str().unwrap()]);
    env.build(&args);
    attested(&layout)
        .types()
        .iter()
        .map(|s| s.to_string())
        .collect()
}

#[test]
fn sbom_flags_as_buildx_reads_them() {
    let (env, ctx) = Env::busybox_dockerfile("FROM busybox\nRUN echo hi > /hi\n");
    // Off by default, as BuildKit.
    assert_eq!(types_of(&env, &ctx, &[]), [SLSA]);
    assert_eq!(types_of(&env, &ctx, &["--sbom=false"]), [SLSA]);
    assert_eq!(
        types_of(&env, &ctx, &["--attest", "type=sbom,disabled=true"]),
        [SLSA]
    );
    assert_eq!(
        types_of(
            &env,
            &ctx,
            &["--sbom=true", "--attest", "type=sbom,disabled=true"]
        ),
        [SLSA]
    );
    assert_eq!(
        types_of(&env, &ctx, &["--attest", "type=sbom"]),
        [SPDX, SLSA]
    );
    assert_eq!(types_of(&env, &ctx, &["--sbom"]), [SPDX, SLSA]);
    assert_eq!(
        types_of(&env, &ctx, &["--sbom=1", "--provenance=false"]),
        [SPDX]
    );
    // busybox has no package database: an SBOM of the image alone.
    let layout = env.path("empty");
    env.build(&[
        "--sbom=true",
        "-o",
        &format!("type=oci,dest={},tar=false", layout.display()),
        ctx.to_str().unwrap(),
    ]);
    let doc = attested(&layout).sbom(0).clone();
    assert_eq!(doc["packages"].as_array().unwrap().len(), 1);
    assert_valid_spdx(&env, &doc);
}

#[test]
fn what_kiln_does_not_implement_exits_2_naming_it() {
    let (env, ctx) = Env::busybox_dockerfile("FROM busybox\n");
    let c = ctx.to_str().unwrap();
    let context_arg = env.context(
        "scan-context",
        &[(
            "Dockerfile",
            "FROM busybox\nARG BUILDKIT_SBOM_SCAN_CONTEXT=true\n",
        )],
    );
    let sc = context_arg.to_str().unwrap();
    for (flags, want) in [
        (
            vec![
                "--attest",
                "type=sbom,generator=docker/buildkit-syft-scanner:stable-1",
                c,
            ],
            "generator=docker/buildkit-syft-scanner:stable-1 is not supported by kiln",
        ),
        (
            vec!["--sbom=generator=x/y", c],
            "generator=x/y is not supported",
        ),
        (
            vec!["--attest", "type=sbom,scan-stage=true", c],
            "scan-stage is not supported",
        ),
        (
            vec!["--attest", "type=sbom,mode=max", c],
            "mode is not supported",
        ),
        (
            vec!["--attest", "type=sbom,disabled=maybe", c],
            "invalid value \"maybe\" for disabled",
        ),
        (
            vec!["--sbom=true", sc],
            "BUILDKIT_SBOM_SCAN_CONTEXT is not supported by kiln",
        ),
        (
            vec![
                "--sbom=true",
                "--build-arg",
                "BUILDKIT_SBOM_SCAN_CONTEXT=1",
                sc,
            ],
            "BUILDKIT_SBOM_SCAN_CONTEXT is not supported by kiln",
        ),
        (
            vec!["--sbom=true", "-o", "type=docker,dest=x.tar", c],
            "type=docker output cannot carry attestations",
        ),
        (
            vec![
                "--sbom=true",
                "--provenance=false",
                "-o",
                "type=local,dest=out",
                c,
            ],
            "cannot carry attestations",
        ),
    ] {
        let mut args = vec!["build", "--progress", "quiet"];
        args.extend(flags.iter().copied());
        let out = env.kiln(&args, None);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flags:?}: {err}");
        assert!(err.contains(want), "{flags:?}: {err}");
    }
    // Without --sbom the scan args do nothing (as in BuildKit); set to
    // false they are no request.
    env.build(&[sc]);
    env.build(&[
        "--sbom=true",
        "--build-arg",
        "BUILDKIT_SBOM_SCAN_CONTEXT=false",
        sc,
    ]);
}

#[test]
fn scan_stage_adds_one_sbom_per_enabled_stage() {
    let env = Env::new();
    env.busybox();
    let ctx = debian_context(
        &env,
        "FROM busybox AS build\n\
         ARG BUILDKIT_SBOM_SCAN_STAGE=true\n\
         COPY site/ /usr/lib/python3/dist-packages/\n\
         FROM busybox AS unused\n\
         ARG BUILDKIT_SBOM_SCAN_STAGE=true\n\
         COPY dpkg/status /var/lib/dpkg/status\n\
         FROM busybox\n\
         COPY --from=build /usr/lib/python3/dist-packages/keep-2.0.dist-info/METADATA /m\n",
    );
    let layout = |name: &str, extra: &[&str]| {
        let l = env.path(name);
        let mut args = extra.to_vec();
        let out = format!("type=oci,dest={},tar=false", l.display());
        args.extend(["--sbom=true", "-o", &out, ctx.to_str().unwrap()]);
        env.build(&args);
        attested(&l)
    };
    // COMPAT(buildkit): the image's SBOM, then the stages' (by name), then
    // the provenance; a stage the target does not reach is never scanned.
    let a = layout("on", &[]);
    assert_eq!(a.types(), [SPDX, SPDX, SLSA]);
    assert!(packages(a.sbom(0), "pypi").is_empty());
    let stage = a.sbom(1);
    assert_eq!(stage["name"], "stage build");
    assert_eq!(
        packages(stage, "pypi"),
        BTreeSet::from([
            ("gone".to_string(), "1.0".to_string()),
            ("keep".to_string(), "2.0".to_string())
        ])
    );
    assert_ne!(a.sbom(0)["documentNamespace"], stage["documentNamespace"]);
    assert_valid_spdx(&env, stage);
    // A build arg overrides the ARG's default: off, or a list of other names.
    for v in ["false", "unused,other"] {
        let arg = format!("BUILDKIT_SBOM_SCAN_STAGE={v}");
        let a = layout(
            &format!("off-{}", v.replace(',', "-")),
            &["--build-arg", &arg],
        );
        assert_eq!(a.types(), [SPDX, SLSA], "{v}");
    }
    let a = layout(
        "named",
        &["--build-arg", "BUILDKIT_SBOM_SCAN_STAGE=x,build"],
    );
    assert_eq!(a.types(), [SPDX, SPDX, SLSA]);
}
