//! The step cache in `kiln build`: which steps run again after which change
//! (issue 5's invalidation rules), read from the plain progress (`#N CACHED`
//! or `#N DONE` per step) — never from timings.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::Env;

/// Each Dockerfile step's progress name and whether it was CACHED, in order.
pub fn steps(stderr: &str) -> Vec<(String, bool)> {
    let mut names = std::collections::BTreeMap::new();
    let mut out = Vec::new();
    for line in stderr.lines() {
        let Some((id, rest)) = line.strip_prefix('#').and_then(|l| l.split_once(' ')) else {
            continue;
        };
        if rest.starts_with('[') && !rest.starts_with("[internal]") {
            names.insert(id.to_string(), rest.to_string());
        } else if rest == "CACHED" || rest.starts_with("DONE") {
            if let Some(name) = names.get(id) {
                if !name.contains(" FROM ") {
                    out.push((name.clone(), rest == "CACHED"));
                }
            }
        }
    }
    out
}

/// Builds (which must succeed) and returns each step's name and CACHED flag.
fn run_steps(env: &Env, args: &[&str]) -> Vec<(String, bool)> {
    let mut full = vec!["build", "--progress", "plain"];
    full.extend_from_slice(args);
    let out = env.kiln(&full, None);
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "kiln {full:?} failed:\n{log}");
    steps(&log)
}

/// Builds and returns which steps were CACHED (one flag per step, in order).
pub fn build(env: &Env, args: &[&str]) -> Vec<bool> {
    run_steps(env, args).into_iter().map(|s| s.1).collect()
}

/// As [`build`], for multi-stage files whose stages run in parallel: the
/// flags ordered by step name (`[a 2/2]`, `[b 2/2]`, `[stage-2 2/2]`).
pub fn build_sorted(env: &Env, args: &[&str]) -> Vec<bool> {
    let mut s = run_steps(env, args);
    s.sort();
    s.into_iter().map(|s| s.1).collect()
}

/// Builds `ctx` with `extra` flags; the CACHED flags and the image ID.
pub fn iid(env: &Env, ctx: &Path, extra: &[&str]) -> (Vec<bool>, String) {
    let file = env.path("iid");
    let mut args = vec!["--iidfile", file.to_str().unwrap()];
    args.extend_from_slice(extra);
    args.push(ctx.to_str().unwrap());
    let hits = build(env, &args);
    (hits, fs::read_to_string(file).unwrap())
}

#[test]
fn a_noop_rebuild_hits_every_step_and_gives_the_same_image() {
    let env = Env::new();
    env.busybox();
    let ctx = env.context(
        "ctx",
        &[
            ("a.txt", "a"),
            (
                "Dockerfile",
                "FROM busybox\nCOPY a.txt /a\nENV X=1\nWORKDIR /w\nRUN echo run > r\n\
                 USER user\nRUN id -u > /tmp/u\n",
            ),
        ],
    );
    let (first, id1) = iid(&env, &ctx, &[]);
    assert_eq!(first, [false; 4]);
    let (second, id2) = iid(&env, &ctx, &[]);
    assert_eq!(second, [true; 4]);
    assert_eq!(id1, id2, "an all-CACHED rebuild is the same image");
    // --no-cache runs everything, and still leaves records behind.
    let (nocache, _) = iid(&env, &ctx, &["--no-cache"]);
    assert_eq!(nocache, [false; 4]);
    assert_eq!(iid(&env, &ctx, &[]).0, [true; 4]);
}

#[test]
fn copy_keys_on_content_mode_and_selection_not_mtime_owner_or_ignored_files() {
    let env = Env::new();
    env.busybox();
    let ctx = env.context(
        "ctx",
        &[
            ("src/a.txt", "a"),
            ("src/b.txt", "b"),
            ("other.txt", "o"),
            (".dockerignore", "src/*.log\n"),
            (
                "Dockerfile",
                "FROM busybox\nCOPY src /src\nRUN echo after-copy > /r\n",
            ),
        ],
    );
    let c = ctx.to_str().unwrap();
    assert_eq!(build(&env, &[c]), [false, false]);
    let a = ctx.join("src/a.txt");
    // mtime only (same bytes), uid/gid only, ignored file, unselected file.
    let t = filetime::FileTime::from_unix_time(1_000_000, 0);
    filetime::set_file_mtime(&a, t).unwrap();
    assert_eq!(build(&env, &[c]), [true, true], "mtime-only touch");
    std::os::unix::fs::chown(&a, Some(1234), Some(4321)).unwrap();
    assert_eq!(build(&env, &[c]), [true, true], "uid/gid-only change");
    fs::write(ctx.join("src/debug.log"), "ignored").unwrap();
    assert_eq!(build(&env, &[c]), [true, true], "ignored file");
    fs::write(ctx.join("other.txt"), "not selected").unwrap();
    assert_eq!(build(&env, &[c]), [true, true], "unselected file");
    // Content, mode and a new file each run the COPY and what follows.
    fs::write(&a, "A").unwrap();
    assert_eq!(build(&env, &[c]), [false, false], "content");
    fs::set_permissions(&a, fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(build(&env, &[c]), [false, false], "mode");
    fs::write(ctx.join("src/new.txt"), "n").unwrap();
    assert_eq!(build(&env, &[c]), [false, false], "new file");
    assert_eq!(build(&env, &[c]), [true, true]);
}

#[test]
fn copy_keys_on_the_name_a_selected_symlink_gives_its_copy() {
    // Regression: the copy of a symlink matched by `*.txt` was named after the
    // link's target and the key read the target's path, so renaming the link
    // was a hit that reused a layer with the old name. Now the copy keeps the
    // link's name (as BuildKit) and the key reads the path as selected.
    let env = Env::new();
    let ctx = env.context(
        "ctx",
        &[
            ("target", "t"),
            ("Dockerfile", "FROM scratch\nCOPY *.txt /w/\n"),
        ],
    );
    std::os::unix::fs::symlink("target", ctx.join("a.txt")).unwrap();
    let c = ctx.to_str().unwrap();
    assert_eq!(build(&env, &[c]), [false]);
    assert_eq!(build(&env, &[c]), [true]);
    fs::rename(ctx.join("a.txt"), ctx.join("b.txt")).unwrap();
    assert_eq!(build(&env, &[c]), [false], "the link renamed");
    assert_eq!(build(&env, &[c]), [true]);
}

#[test]
fn copy_keys_on_the_source_modes_a_symbolic_chmod_reads() {
    // `u+x` keeps the other bits: a file's own mode changes what lands, so it
    // stays in the key (an octal mode replaces it and leaves it out).
    let env = Env::new();
    let ctx = env.context(
        "ctx",
        &[
            ("f", "f"),
            (
                "Dockerfile",
                "FROM scratch\nCOPY --chmod=755 f /g\nCOPY --chmod=u+x f /f\n",
            ),
        ],
    );
    let c = ctx.to_str().unwrap();
    assert_eq!(build(&env, &[c]), [false, false]);
    fs::set_permissions(ctx.join("f"), fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(build(&env, &[c]), [true, false], "own mode changed");
}

#[test]
fn run_keys_on_text_args_it_sees_and_env_user_workdir_before_it() {
    let env = Env::new();
    env.busybox();
    let df = |body: &str| format!("FROM busybox\nRUN echo early\nARG FOO\n{body}RUN echo $FOO\n");
    let ctx = env.context("ctx", &[("Dockerfile", &df(""))]);
    let c = ctx.to_str().unwrap();
    assert_eq!(build(&env, &["--build-arg", "FOO=1", c]), [false, false]);
    assert_eq!(build(&env, &["--build-arg", "FOO=1", c]), [true, true]);
    // The ARG is seen only by the RUN after its declaration.
    assert_eq!(build(&env, &["--build-arg", "FOO=2", c]), [true, false]);
    // An undeclared build arg is seen by nobody.
    let args = ["--build-arg", "FOO=2", "--build-arg", "BAR=x", c];
    assert_eq!(build(&env, &args), [true, true]);
    for (body, expect) in [
        ("ENV E=1\n", &[true, false][..]),
        ("ENV E=2\n", &[true, false]),
        ("USER user\n", &[true, false]),
        ("WORKDIR /tmp\n", &[true, false, false]),
        ("LABEL only=metadata\n", &[true, true]),
    ] {
        fs::write(ctx.join("Dockerfile"), df(body)).unwrap();
        let got = build(&env, &["--build-arg", "FOO=2", c]);
        assert_eq!(got, expect, "after {body:?}");
    }
    // The step's own text.
    fs::write(ctx.join("Dockerfile"), "FROM busybox\nRUN echo  early\n").unwrap();
    assert_eq!(build(&env, &[c]), [false]);
}

#[test]
fn bind_mount_content_counts_cache_mount_and_secret_contents_do_not() {
    let env = Env::new();
    env.busybox();
    let secret = env.path("secret");
    fs::write(&secret, "one").unwrap();
    let ctx = env.context(
        "ctx",
        &[
            ("b.txt", "b"),
            (
                "Dockerfile",
                "FROM busybox\n\
                 RUN --mount=type=cache,id=c,target=/c date >> /c/log\n\
                 RUN --mount=type=secret,id=s cat /run/secrets/s >/dev/null\n\
                 RUN --mount=type=bind,source=b.txt,target=/b cat /b\n",
            ),
        ],
    );
    let s = format!("id=s,src={}", secret.display());
    let args = ["--secret", s.as_str(), ctx.to_str().unwrap()];
    assert_eq!(build(&env, &args), [false, false, false]);
    let mounts = env.root().join("cache/mounts");
    assert!(
        fs::read_dir(&mounts).unwrap().count() > 0,
        "cache mount used"
    );
    fs::write(&secret, "two").unwrap();
    assert_eq!(build(&env, &args), [true, true, true], "secret contents");
    fs::write(ctx.join("b.txt"), "B").unwrap();
    assert_eq!(build(&env, &args), [true, true, false], "bind source");
}

#[test]
fn a_new_base_digest_misses_and_a_later_stage_still_hits() {
    let env = Env::new();
    env.busybox();
    let ctx = env.context(
        "ctx",
        &[
            ("a.txt", "a"),
            ("b.txt", "b"),
            (
                "Dockerfile",
                "FROM busybox AS a\nRUN echo stage-a > /a\n\
                 FROM scratch AS b\nCOPY b.txt /b\n\
                 FROM b\nCOPY --from=a /a /a\n",
            ),
        ],
    );
    let c = ctx.to_str().unwrap();
    assert_eq!(build_sorted(&env, &[c]), [false, false, false]);
    // Stage a is not looked up; its result is the same, so the COPY
    // --from=a after it hits: a miss does not end lookups.
    assert_eq!(
        build_sorted(&env, &["--no-cache-filter", "a", c]),
        [false, true, true]
    );
    // Filters skip lookups, they never change keys: the last stage hits.
    assert_eq!(
        build_sorted(&env, &["--no-cache-filter", "b,0", c]),
        [false, false, true]
    );
    // A base image that now resolves to another digest.
    let bb = env.context(
        "bb2",
        &[("Dockerfile", "FROM busybox\nRUN echo x > /motd\n")],
    );
    build(&env, &["-t", "busybox", bb.to_str().unwrap()]);
    assert_eq!(build_sorted(&env, &[c]), [false, true, false]);
}

pub fn stdout(env: &Env, args: &[&str]) -> String {
    let out = env.kiln(args, None);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "kiln {args:?}: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

#[test]
fn explain_names_the_changed_field_and_admits_what_it_cannot_know() {
    let env = Env::new();
    env.busybox();
    let ctx = env.context(
        "ctx",
        &[
            ("a.txt", "a"),
            (
                "Dockerfile",
                "FROM busybox\nARG FOO\nRUN echo $FOO\nCOPY a.txt /a\n",
            ),
        ],
    );
    let c = ctx.to_str().unwrap();
    build(&env, &["--debug-cache", "--build-arg", "FOO=1", c]);
    let text = stdout(&env, &["cache", "explain"]);
    assert!(
        text.contains("no earlier build of this step is logged"),
        "{text}"
    );
    build(&env, &["--build-arg", "FOO=1", c]);
    assert_eq!(
        stdout(&env, &["cache", "explain"]),
        "the build used the cache for every step\n"
    );
    fs::write(ctx.join("a.txt"), "b").unwrap();
    let hits = build(
        &env,
        &["--debug-cache", "-t", "two", "--build-arg", "FOO=2", c],
    );
    assert_eq!(hits, [false, false]);
    let text = stdout(&env, &["cache", "explain"]);
    assert!(text.contains("[2/3] RUN echo $FOO: missed"), "{text}");
    assert!(text.contains(r#": "FOO=1" -> "FOO=2""#), "{text}");
    assert!(text.contains("parent: "), "{text}");
    assert!(text.contains("(an earlier step changed)"), "{text}");
    assert!(
        text.contains("context files: a.txt changed\n")
            && text.contains("inputs[0]: ")
            && text.contains("(the content of the files it reads changed)"),
        "{text}"
    );
    // Two keys: how the second differs from the first.
    let keys: Vec<&str> = text
        .lines()
        .filter_map(|l| {
            l.trim()
                .strip_prefix("previous key: ")
                .or_else(|| l.trim().strip_prefix("key: "))
        })
        .take(2)
        .collect();
    let diff = stdout(&env, &["cache", "explain", keys[1], keys[0]]);
    assert!(diff.contains(r#""FOO=1" -> "FOO=2""#), "{diff}");
    // Without pre-images it says so instead of guessing.
    build(&env, &["--build-arg", "FOO=3", c]);
    let text = stdout(&env, &["cache", "explain"]);
    assert!(text.contains("cannot tell which field changed"), "{text}");
    // --no-cache: same key, record not used.
    build(&env, &["--no-cache", "--build-arg", "FOO=3", c]);
    let text = stdout(&env, &["cache", "explain"]);
    assert!(text.contains("same key as before"), "{text}");
    // By image: the (older) build that made it.
    let by_image = stdout(&env, &["cache", "explain", "two"]);
    assert!(by_image.contains(r#""FOO=1" -> "FOO=2""#), "{by_image}");
}

#[test]
fn exported_cache_makes_a_fresh_store_hit_everything_and_max_restores_cache_mounts() {
    let env = Env::new();
    env.busybox();
    let base = env.path("busybox.tar");
    stdout(&env, &["save", "-o", base.to_str().unwrap(), "busybox"]);
    let df = "FROM busybox AS tool\nRUN echo tool > /t\n\
              FROM busybox\nCOPY a.txt /a\n\
              RUN --mount=type=cache,id=m,target=/c echo kept > /c/data\n\
              COPY --from=tool /t /t\n";
    let ctx = env.context("ctx", &[("a.txt", "a"), ("Dockerfile", df)]);
    let (min_dir, max_dir) = (env.path("cache-min"), env.path("cache-max"));
    let to_min = format!("type=local,dest={}", min_dir.display());
    let to_max = format!("type=local,dest={},mode=max", max_dir.display());
    let (first, id1) = iid(&env, &ctx, &["--cache-to", &to_min, "--cache-to", &to_max]);
    assert_eq!(first, [false; 4]);
    assert!(min_dir.join("oci-layout").is_file() && max_dir.join("index.json").is_file());
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(max_dir.join("index.json")).unwrap()).unwrap();
    let mdigest = index["manifests"][0]["digest"].as_str().unwrap();
    let manifest: serde_json::Value = serde_json::from_slice(
        &fs::read(max_dir.join("blobs/sha256").join(&mdigest[7..])).unwrap(),
    )
    .unwrap();
    assert_eq!(
        manifest["artifactType"],
        "application/vnd.kiln.cache.v1+json"
    );
    // Sorted by name: [stage-1 2/4], [stage-1 3/4], [stage-1 4/4], [tool 2/2].
    // min carries the final image's steps only: the tool stage runs again,
    // and the COPY --from=tool still hits (its key is the tool stage's key).
    for (dir, hits) in [(&min_dir, [true, true, true, false]), (&max_dir, [true; 4])] {
        // A fresh store and a fresh checkout of the same context.
        let other = Env::new();
        stdout(
            &other,
            &["load", "-i", base.to_str().unwrap(), "-t", "busybox"],
        );
        let ctx2 = other.context("ctx", &[("a.txt", "a"), ("Dockerfile", df)]);
        let from = format!("type=local,src={}", dir.display());
        let got = build_sorted(&other, &["--cache-from", &from, ctx2.to_str().unwrap()]);
        assert_eq!(got, hits, "importing {}", dir.display());
        let (again, id2) = iid(&other, &ctx2, &[]);
        assert_eq!(again, [true; 4]);
        assert_eq!(id1, id2, "the same image from the imported cache");
        if dir == &max_dir {
            let mount = other
                .root()
                .join("cache/mounts")
                .join(kiln::oci::Digest::of(b"m").hex());
            assert_eq!(fs::read_to_string(mount.join("data")).unwrap(), "kept\n");
        }
    }
}
