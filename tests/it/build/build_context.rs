//! `--build-context NAME=VALUE` (buildx's named contexts): a second local
//! directory for `COPY --from` / `RUN --mount=from` / `FROM`, an image from
//! the store (`docker-image://`) or from an OCI layout dir (`oci-layout://`)
//! that replaces an image or a stage of that name, the kinds kiln refuses,
//! and the cache keys of what a named directory gives.

use std::fs;

use super::cache::build as cached_steps;
use super::{attrs, Env};

/// The store's busybox image digest and its first layer's digest.
fn busybox_layer(env: &Env) -> kiln::oci::Digest {
    env.image("busybox:latest").1.layers[0].digest
}

fn extra(env: &Env) -> std::path::PathBuf {
    env.context(
        "extra",
        &[
            ("f.txt", "from extra\n"),
            ("sub/g.txt", "g\n"),
            ("secret.key", "ignored by extra's .dockerignore\n"),
            (".dockerignore", "secret.key\n"),
        ],
    )
}

fn arg(name: &str, p: &std::path::Path) -> String {
    format!("{name}={}", p.display())
}

/// Builds `ctx` with one `--build-context`, as `tag`, pulling nothing: an
/// image not in the store can only come from the context.
fn build_tagged(env: &Env, ctx: &std::path::Path, context: &str, tag: &str) {
    let c = ctx.to_str().unwrap();
    env.build(&["--pull=never", "--build-context", context, "-t", tag, c]);
}

#[test]
fn copy_from_a_dir_context_reads_it_with_its_own_dockerignore() {
    let env = Env::new();
    let extra = extra(&env);
    let ctx = env.context(
        "ctx",
        &[
            (
                "Dockerfile",
                "FROM scratch\nCOPY --from=extra f.txt /f.txt\nCOPY --from=extra . /all/\n",
            ),
            // The main context's .dockerignore does not apply to `extra`.
            (".dockerignore", "f.txt\n"),
        ],
    );
    build_tagged(&env, &ctx, &arg("extra", &extra), "ctx:1");
    let root = env.rootfs("ctx:1");
    assert_eq!(
        fs::read_to_string(root.join("f.txt")).unwrap(),
        "from extra\n"
    );
    assert_eq!(
        fs::read_to_string(root.join("all/sub/g.txt")).unwrap(),
        "g\n"
    );
    assert!(
        !root.join("all/secret.key").exists(),
        "extra's .dockerignore applies"
    );
    // Files from a named directory are root-owned, as from the context.
    assert_eq!(attrs(&root.join("all/f.txt")).1, 0);
}

#[test]
fn a_stage_name_wins_over_a_dir_context_only_when_no_context_replaces_it() {
    let env = Env::new();
    let extra = extra(&env);
    let ctx = env.context(
        "ctx",
        &[
            ("Dockerfile", "FROM scratch AS extra\nCOPY own /f.txt\nFROM scratch\nCOPY --from=extra f.txt /f.txt\n"),
            ("own", "from the stage\n"),
        ],
    );
    // COMPAT(buildkit): a named context with a stage's name replaces the stage.
    build_tagged(&env, &ctx, &arg("extra", &extra), "r:1");
    assert_eq!(
        fs::read_to_string(env.rootfs("r:1").join("f.txt")).unwrap(),
        "from extra\n"
    );
    env.build(&["-t", "r:2", ctx.to_str().unwrap()]);
    assert_eq!(
        fs::read_to_string(env.rootfs("r:2").join("f.txt")).unwrap(),
        "from the stage\n"
    );
}

#[test]
fn from_a_dir_context_starts_from_its_files() {
    let env = Env::new();
    let extra = extra(&env);
    let ctx = env.context(
        "ctx",
        &[("Dockerfile", "FROM extra\nCOPY a /a\n"), ("a", "a")],
    );
    build_tagged(&env, &ctx, &arg("extra", &extra), "d:1");
    let root = env.rootfs("d:1");
    assert_eq!(fs::read_to_string(root.join("sub/g.txt")).unwrap(), "g\n");
    assert_eq!(fs::read_to_string(root.join("a")).unwrap(), "a");
    assert!(!root.join("secret.key").exists());
    assert_eq!(env.image("d:1").1.layers.len(), 2);
}

#[test]
fn run_mount_from_a_dir_context() {
    let env = Env::new();
    env.busybox();
    let extra = extra(&env);
    let ctx = env.context(
        "ctx",
        &[(
            "Dockerfile",
            "FROM busybox\nRUN --mount=from=extra,target=/x cat /x/f.txt /x/sub/g.txt > /out && test ! -e /x/secret.key\n",
        )],
    );
    build_tagged(&env, &ctx, &arg("extra", &extra), "m:1");
    let out = fs::read_to_string(env.rootfs("m:1").join("out")).unwrap();
    assert_eq!(out, "from extra\ng\n");
}

#[test]
fn a_docker_image_context_replaces_the_base_image_everywhere_it_is_named() {
    let env = Env::new();
    env.busybox();
    let ctx = env.context(
        "ctx",
        &[
            (
                "Dockerfile",
                "FROM alpine\nCOPY --from=docker.io/library/alpine:latest /bin/busybox /copied\nCOPY a /a\n",
            ),
            ("a", "a"),
        ],
    );
    // alpine is not in the store and --pull=never: only the context can answer.
    build_tagged(&env, &ctx, "alpine=docker-image://busybox:latest", "img:1");
    let (_, m, _) = env.image("img:1");
    assert_eq!(m.layers[0].digest, busybox_layer(&env));
    let root = env.rootfs("img:1");
    assert!(root.join("bin/busybox").exists() && root.join("copied").exists());
    // Without the context, alpine is looked up (and not found).
    let out = env.kiln(
        &[
            "build",
            "--pull=never",
            "--progress",
            "plain",
            ctx.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn an_image_context_replaces_a_stage_whose_steps_never_run() {
    let env = Env::new();
    env.busybox();
    let ctx = env.context(
        "ctx",
        &[
            (
                "Dockerfile",
                "FROM scratch AS base\nRUN false\nFROM base\nCOPY a /a\n",
            ),
            ("a", "a"),
        ],
    );
    build_tagged(&env, &ctx, "base=docker-image://busybox", "st:1");
    let (_, m, _) = env.image("st:1");
    assert_eq!(m.layers.len(), 2);
    assert_eq!(m.layers[0].digest, busybox_layer(&env));
}

#[test]
fn an_oci_layout_context_by_tag_or_digest() {
    // The layout comes from another store: this one never had busybox.
    let src = Env::new();
    src.busybox();
    let (desc, m, _) = src.image("busybox:latest");
    let layout = src.path("layout");
    let image = kiln::oci::NamedImage {
        name: Some("busybox:latest".into()),
        descriptor: desc.clone(),
    };
    kiln::oci::write_layout(&src.store(), &[image], &layout).unwrap();

    let env = Env::new();
    let ctx = env.context(
        "ctx",
        &[(
            "Dockerfile",
            "FROM base\nCOPY --from=base /bin/busybox /copied\n",
        )],
    );
    let by_tag = format!("base=oci-layout://{}:latest", layout.display());
    let by_digest = format!("base=oci-layout://{}@{}", layout.display(), desc.digest);
    for (i, spec) in [by_tag, by_digest].iter().enumerate() {
        let tag = format!("oci:{i}");
        build_tagged(&env, &ctx, spec, &tag);
        let (_, got, _) = env.image(&tag);
        assert_eq!(got.layers[0].digest, m.layers[0].digest, "{spec}");
        assert!(env.rootfs(&tag).join("copied").exists());
    }
    let missing = format!("base=oci-layout://{}:nope", layout.display());
    // One image in the layout: buildx falls back to it for an unknown tag.
    env.build(&[
        "--pull=never",
        "--build-context",
        &missing,
        ctx.to_str().unwrap(),
    ]);
}

#[test]
fn refused_kinds_and_bad_values_are_usage_errors() {
    let env = Env::new();
    let ctx = env.context("ctx", &[("Dockerfile", "FROM scratch\n")]);
    let cases: &[(&str, &str)] = &[
        (
            "src=https://github.com/o/r.git",
            "git contexts are not supported by kiln",
        ),
        (
            "src=git@github.com:o/r.git",
            "git contexts are not supported by kiln",
        ),
        (
            "src=https://example.com/ctx.tar",
            "HTTP contexts are not supported by kiln",
        ),
        (
            "src=target:other",
            "bake target contexts are not supported by kiln",
        ),
        (
            "src=input:x",
            "frontend input contexts are not supported by kiln",
        ),
        ("novalue", "expected NAME=VALUE"),
        ("Bad=.", "invalid context name \"Bad\""),
        ("scratch=.", "invalid context name \"scratch\""),
        ("src=/nonexistent/dir", "is not a directory"),
        ("src=docker-image://", "empty image reference"),
        ("src=oci-layout:///nonexistent", "is not a directory"),
        ("src=oci-layout://.", "is not an OCI layout (no index.json)"),
    ];
    for (spec, want) in cases {
        let out = env.kiln(
            &["build", "--build-context", spec, ctx.to_str().unwrap()],
            None,
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{spec}: {err}");
        assert!(err.contains(want), "{spec}: {err}");
    }
}

#[test]
fn unused_contexts_are_fine() {
    let env = Env::new();
    let extra = extra(&env);
    let ctx = env.context(
        "ctx",
        &[("Dockerfile", "FROM scratch\nCOPY a /a\n"), ("a", "a")],
    );
    env.build(&[
        "--build-context",
        &arg("extra", &extra),
        "--build-context",
        "img=docker-image://not-in-any-store:1",
        ctx.to_str().unwrap(),
    ]);
}

#[test]
fn changing_a_file_of_a_dir_context_reruns_the_copy() {
    let env = Env::new();
    let extra = extra(&env);
    let ctx = env.context(
        "ctx",
        &[
            ("Dockerfile", "FROM scratch\nCOPY a /a\nCOPY --from=extra sub /sub\nCOPY --from=extra f.txt /f.txt\n"),
            ("a", "a"),
        ],
    );
    let c = ctx.to_str().unwrap();
    let flag = arg("extra", &extra);
    assert_eq!(
        cached_steps(&env, &["--build-context", &flag, c]),
        [false; 3]
    );
    assert_eq!(
        cached_steps(&env, &["--build-context", &flag, c]),
        [true; 3]
    );
    fs::write(extra.join("f.txt"), "changed\n").unwrap();
    assert_eq!(
        cached_steps(&env, &["--build-context", &flag, c]),
        [true, true, false]
    );
    // An ignored file is not an input.
    fs::write(extra.join("secret.key"), "changed too\n").unwrap();
    assert_eq!(
        cached_steps(&env, &["--build-context", &flag, c]),
        [true, true, true]
    );
}

#[test]
fn a_symlink_in_a_dir_context_cannot_reach_the_host() {
    let env = Env::new();
    let extra = env.context(
        "extra",
        &[("escape", "->/etc"), ("up", "->../../../../etc")],
    );
    for src in ["escape/passwd", "up/passwd"] {
        let df = format!("FROM scratch\nCOPY --from=extra {src} /p\n");
        let ctx = env.context("ctx", &[("Dockerfile", &df)]);
        let flag = arg("extra", &extra);
        let out = env.kiln(
            &["build", "--build-context", &flag, ctx.to_str().unwrap()],
            None,
        );
        let err = String::from_utf8_lossy(&out.stderr);
        // Resolved inside the context's root, where there is no etc/passwd.
        assert_eq!(out.status.code(), Some(1), "{src}: {err}");
        assert!(err.contains("passwd"), "{src}: {err}");
    }
}

#[test]
fn cache_explain_names_the_changed_file_of_a_dir_context() {
    let env = Env::new();
    let extra = extra(&env);
    let ctx = env.context(
        "ctx",
        &[(
            "Dockerfile",
            "FROM scratch\nCOPY --from=extra f.txt /f.txt\n",
        )],
    );
    let (c, flag) = (ctx.to_str().unwrap(), arg("extra", &extra));
    let args = ["--debug-cache", "--build-context", &flag, c];
    assert_eq!(cached_steps(&env, &args), [false]);
    fs::write(extra.join("f.txt"), "changed\n").unwrap();
    assert_eq!(cached_steps(&env, &args), [false]);
    let out = env.kiln(&["cache", "explain"], None);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("context files: [context extra] f.txt changed"),
        "{text}"
    );
}
