//! `kiln build --platform linux/amd64,linux/arm64`: one index with a
//! manifest per platform, built from a base index of the host's busybox
//! and Debian's arm64 busybox-static; a native `FROM
//! --platform=$BUILDPLATFORM` stage built once for both; the arm64 RUN run
//! under QEMU (a registered binfmt_misc handler: scripts/test registers
//! Debian's qemu-user-static); pushed to the loopback registry and copied
//! back with `skopeo copy --all`.

use std::path::Path;

use kiln::oci::{Index, Platform, Store};

use super::server::{Auth, Registry};
use super::skopeo;
use crate::build::Env;

const DOCKERFILE: &str = r#"FROM --platform=$BUILDPLATFORM busybox AS build
ARG BUILDARCH
# Cross-"compiles" for every target at once: runs once, natively.
RUN --mount=type=cache,id=native-runs,target=/runs \
    echo "$BUILDARCH" >> /runs/log && mkdir /out && \
    for a in amd64 arm64; do echo "built on $(uname -m) for $a" > /out/$a; done
FROM busybox
ARG TARGETARCH TARGETPLATFORM
COPY --from=build /out/$TARGETARCH /built-for
RUN echo "$TARGETPLATFORM $(uname -m)" > /uname
"#;

fn arm64() -> Platform {
    kiln::oci::parse_platform("linux/arm64").unwrap()
}

/// The index's image manifests by platform (`linux/amd64` …), attestation
/// manifests left out.
fn platforms(store: &Store, index: &kiln::oci::Descriptor) -> Vec<String> {
    let idx: Index = serde_json::from_slice(&store.read_blob(&index.digest).unwrap()).unwrap();
    idx.manifests
        .iter()
        .filter(|d| !d.is_attestation())
        .map(|d| d.platform.as_ref().unwrap().to_specifier())
        .collect()
}

/// A file of `platform`'s root filesystem in the image `index`.
fn read_in(env: &Env, index: &kiln::oci::Descriptor, platform: &Platform, file: &str) -> String {
    let store = env.store();
    let (m, desc) = store.load_manifest_for(index, platform).unwrap();
    let (_, config) = store.load_image(&desc).unwrap();
    assert_eq!(config.architecture, platform.architecture);
    let img = kiln::builder::BuiltImage {
        manifest: desc,
        config_digest: m.config.digest,
        layers: kiln::oci::LayerBlob::of_image(&m, &config),
        config,
        remote: None,
        attestations: Vec::new(),
        index: None,
        others: Vec::new(),
        target: None,
    };
    let out = tempfile::tempdir().unwrap();
    kiln::builder::flatten(&store, &img, out.path()).unwrap();
    std::fs::read_to_string(out.path().join(file)).unwrap()
}

/// Lines the native stage's RUN appended to its cache mount: one per run.
fn native_runs(root: &Path) -> usize {
    let mounts = root.join("cache/mounts");
    std::fs::read_dir(&mounts)
        .unwrap()
        .filter_map(|e| std::fs::read_to_string(e.unwrap().path().join("log")).ok())
        .map(|s| s.lines().count())
        .sum()
}

#[test]
fn two_platform_build_pushes_one_index_with_the_native_stage_built_once() {
    let reg = Registry::start(false, Auth::None);
    let env = Env::new();
    crate::fixtures::busybox_index(&env.store());
    let ctx = env.context("ctx", &[("Dockerfile", DOCKERFILE)]);
    let ctx = ctx.to_str().unwrap();
    let name = format!("{}/app:1", reg.host);
    let archive = env.path("app.tar");
    let local = env.path("local");
    let cache = env.path("cache");
    let out = env.kiln(
        &[
            "build",
            "--progress",
            "plain",
            "--platform",
            "linux/amd64,linux/arm64",
            "--reproducible",
            "-t",
            &name,
            "--push",
            "-o",
            &format!("type=oci,dest={}", archive.display()),
            "-o",
            &format!("type=local,dest={}", local.display()),
            "--cache-to",
            &format!("type=local,dest={},mode=max", cache.display()),
            ctx,
        ],
        None,
    );
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    // Each step's vertex names its platform, as BuildKit's do.
    assert!(log.contains("[linux/arm64 stage-1 3/3] RUN echo"), "{log}");
    // The native stage ran in the first pass and was a hit in the second.
    assert_eq!(native_runs(&env.root()), 1, "{log}");

    let store = env.store();
    let index = store.resolve(&name).unwrap();
    kiln::oci::validate(&store, &index).unwrap();
    assert_eq!(platforms(&store, &index), ["linux/amd64", "linux/arm64"]);
    let host = Platform::host();
    assert_eq!(
        read_in(&env, &index, &host, "uname"),
        "linux/amd64 x86_64\n"
    );
    // The arm64 RUN really ran as aarch64 (under QEMU).
    assert_eq!(
        read_in(&env, &index, &arm64(), "uname"),
        "linux/arm64 aarch64\n"
    );
    // Both copied the native stage's output, made on the host.
    assert_eq!(
        read_in(&env, &index, &arm64(), "built-for"),
        "built on x86_64 for arm64\n"
    );
    // type=local: a directory per platform, as buildx writes.
    let uname = std::fs::read_to_string(local.join("linux_arm64/uname")).unwrap();
    assert_eq!(uname, "linux/arm64 aarch64\n");
    assert!(local.join("linux_amd64/built-for").is_file());

    // The OCI archive and the registry hold the same index: two image
    // manifests, each with its platform, and their attestation manifests.
    let raw = skopeo(&[
        "inspect",
        "--raw",
        &format!("oci-archive:{}", archive.display()),
    ]);
    let from_archive: Index = serde_json::from_str(&raw).unwrap();
    let digest = kiln::oci::Digest::of(raw.as_bytes());
    assert_eq!(digest, index.digest);
    assert_eq!(from_archive.manifests.len(), 4, "{raw}");
    let remote = skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{name}"),
    ]);
    assert_eq!(kiln::oci::Digest::of(remote.as_bytes()), index.digest);
    // skopeo copies every platform back out of the registry.
    let copied = env.path("copied");
    skopeo(&[
        "copy",
        "--all",
        "--src-tls-verify=false",
        &format!("docker://{name}"),
        &format!("oci:{}:app", copied.display()),
    ]);
    let layout = std::fs::read_to_string(copied.join("index.json")).unwrap();
    assert!(layout.contains(&index.digest.to_string()), "{layout}");

    // `kiln load` takes the archive's index whole; `kiln images` lists its
    // platforms; `kiln save` writes the same index back.
    let loaded = Env::new();
    crate::common::ok(loaded.kiln(&["load", "-i", archive.to_str().unwrap()], None));
    let images = crate::common::ok(loaded.kiln(&["images"], None));
    assert!(images.contains("linux/amd64,linux/arm64"), "{images}");
    assert_eq!(loaded.store().resolve(&name).unwrap().digest, index.digest);
    // `kiln run --platform` runs that platform's image (arm64 under QEMU);
    // without it, the host's.
    for (flag, want) in [
        (None, "linux/amd64 x86_64"),
        (Some("linux/arm64"), "linux/arm64 aarch64"),
    ] {
        let mut args = vec!["run", "--rm", "--network", "none"];
        args.extend(flag.map(|p| ["--platform", p]).into_iter().flatten());
        args.extend([name.as_str(), "sh", "-c", "cat /uname; uname -m"]);
        let out = crate::common::ok(loaded.kiln(&args, None));
        let arch = want.split(' ').nth(1).unwrap();
        assert_eq!(out, format!("{want}\n{arch}\n"), "{args:?}");
    }
    // `kiln inspect` shows the index and the manifest and config of the
    // platform asked for (the host's by default).
    for (flag, arch) in [(None, "amd64"), (Some("linux/arm64"), "arm64")] {
        let mut args = vec!["inspect", name.as_str()];
        args.extend(flag.map(|p| ["--platform", p]).into_iter().flatten());
        let out = crate::common::ok(loaded.kiln(&args, None));
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(
            v[0]["Descriptor"]["digest"],
            index.digest.to_string(),
            "{out}"
        );
        assert_eq!(v[0]["Config"]["architecture"], arch, "{out}");
        assert_eq!(
            v[0]["ManifestDescriptor"]["platform"]["architecture"], arch,
            "{out}"
        );
        assert!(
            v[0]["Index"]["manifests"].as_array().unwrap().len() >= 2,
            "{out}"
        );
    }
    let saved = loaded.path("saved.tar");
    crate::common::ok(loaded.kiln(&["save", &name, "-o", saved.to_str().unwrap()], None));
    let raw = skopeo(&[
        "inspect",
        "--raw",
        &format!("oci-archive:{}", saved.display()),
    ]);
    assert_eq!(kiln::oci::Digest::of(raw.as_bytes()), index.digest);

    // --cache-to carries both platforms' records: a store that imports them
    // builds the index with no RUN at all.
    let cached = Env::new();
    crate::fixtures::busybox_index(&cached.store());
    let out = cached.kiln(
        &[
            "build",
            "--progress",
            "plain",
            "--platform",
            "linux/amd64,linux/arm64",
            "--reproducible",
            "--cache-from",
            &format!("type=local,src={}", cache.display()),
            ctx,
        ],
        None,
    );
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    let runs: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("] RUN "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(runs.len(), 4, "{log}");
    for id in runs {
        assert!(
            log.lines().any(|l| l == format!("{id} CACHED")),
            "{id}: {log}"
        );
    }

    // --reproducible: a second store builds the same index, byte for byte.
    let again = Env::new();
    crate::fixtures::busybox_index(&again.store());
    again.build(&[
        "--platform",
        "linux/amd64,linux/arm64",
        "--reproducible",
        "-t",
        &name,
        ctx,
    ]);
    assert_eq!(again.store().resolve(&name).unwrap().digest, index.digest);

    // A RUN that fails on one platform says which.
    let failing = env.context(
        "failing",
        &[(
            "Dockerfile",
            "FROM busybox\nRUN [ \"$(uname -m)\" = x86_64 ]\n",
        )],
    );
    let out = env.kiln(
        &[
            "build",
            "--platform",
            "linux/amd64,linux/arm64",
            failing.to_str().unwrap(),
        ],
        None,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("did not complete successfully on linux/arm64: exit code: 1"),
        "{err}"
    );
    // A stage with no RUN needs no emulator: COPY onto scratch for s390x
    // builds whatever binfmt_misc holds; its RUN needs QEMU, and without a
    // registered handler the error names the package and the command.
    let s390x = env.context(
        "s390x",
        &[
            ("Dockerfile", "FROM scratch\nCOPY a /a\n"),
            ("run/Dockerfile", "FROM scratch\nCOPY a /a\nRUN [\"/a\"]\n"),
            ("a", "a\n"),
            ("run/a", "a\n"),
        ],
    );
    env.build(&[
        "--platform",
        "linux/s390x",
        "-t",
        "s390x:1",
        s390x.to_str().unwrap(),
    ]);
    let images = crate::common::ok(env.kiln(&["images", "s390x"], None));
    assert!(images.contains("linux/s390x"), "{images}");
    if !Path::new("/proc/sys/fs/binfmt_misc/qemu-s390x").exists() {
        let out = env.kiln(
            &[
                "build",
                "--platform",
                "linux/s390x",
                s390x.join("run").to_str().unwrap(),
            ],
            None,
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(
            err.contains("RUN on linux/s390x needs QEMU user emulation"),
            "{err}"
        );
        assert!(err.contains("apt-get install qemu-user-static"), "{err}");
    }
    // The checks run in every pass; their findings are printed once.
    let warned = env.context(
        "warned",
        &[("Dockerfile", "from busybox as Base\nRUN true\n")],
    );
    let warnings = |platforms: &str| {
        let out = env.kiln(
            &[
                "build",
                "--progress",
                "plain",
                "--platform",
                platforms,
                warned.to_str().unwrap(),
            ],
            None,
        );
        let log = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(out.status.success(), "{log}");
        log.matches("StageNameCasing").count()
    };
    let once = warnings("linux/amd64");
    assert!(once > 0);
    assert_eq!(warnings("linux/amd64,linux/arm64"), once);
    // A final stage for the build platform is each pass's image: the index
    // and the local output still name every target (BuildKit's entries).
    let native = env.context(
        "native",
        &[(
            "Dockerfile",
            "FROM --platform=$BUILDPLATFORM busybox\nCOPY Dockerfile /\n",
        )],
    );
    let dirs = env.path("native-out");
    env.build(&[
        "--platform",
        "linux/amd64,linux/arm64",
        "-t",
        "native:1",
        "-o",
        &format!("type=local,dest={}", dirs.display()),
        native.to_str().unwrap(),
    ]);
    let native_index = env.store().resolve("native:1").unwrap();
    assert_eq!(
        platforms(&env.store(), &native_index),
        ["linux/amd64", "linux/arm64"]
    );
    assert!(dirs.join("linux_arm64/Dockerfile").is_file());
    assert!(dirs.join("linux_amd64/Dockerfile").is_file());
    // docker's archive takes one platform: refused before anything is built.
    let out = env.kiln(
        &[
            "build",
            "--platform",
            "linux/amd64,linux/arm64",
            "-o",
            &format!("type=docker,dest={}", env.path("d.tar").display()),
            failing.to_str().unwrap(),
        ],
        None,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("type=docker output cannot hold a multi-platform image"),
        "{err}"
    );
}
