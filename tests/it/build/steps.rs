//! Instructions and their effects: COPY rules, WORKDIR, ENV/ARG expansion,
//! metadata, multi-stage, .dockerignore, chown/chmod, ADD, RUN.

use std::fs;

use super::{attrs, created_by, Env};

#[test]
fn scratch_copy_workdir_and_metadata() {
    let env = Env::new();
    let ctx = env.context(
        "ctx",
        &[
            ("app/main.txt", "main"),
            ("app/sub/deep.txt", "deep"),
            ("app/ln", "->sub/deep.txt"),
            ("one.txt", "one"),
            ("two.txt", "two"),
            ("link", "->one.txt"),
            (
                "Dockerfile",
                "FROM scratch\nARG DIR=srv\nENV HOME=/home/app\nWORKDIR /$DIR\n\
                 COPY app ./app/\nCOPY *.txt $HOME/\nCOPY link /l\nCOPY one.txt rel\n\
                 LABEL org.example=yes\nEXPOSE 80 8000-8001/udp\nENTRYPOINT [\"/bin/app\"]\n\
                 CMD [\"--help\"]\nUSER 1000:1000\nSTOPSIGNAL SIGTERM\n",
            ),
        ],
    );
    env.build(&["-t", "meta", "--label", "cli=1", ctx.to_str().unwrap()]);
    let (_, m, c) = env.image("meta");
    assert_eq!(m.layers.len(), 5, "WORKDIR and four COPYs make layers");
    let cfg = &c.config;
    assert_eq!(cfg.working_dir.as_deref(), Some("/srv"));
    assert_eq!(cfg.env_get("HOME"), Some("/home/app"));
    assert!(cfg.env_get("PATH").is_some());
    assert_eq!(
        cfg.labels.get("org.example").map(String::as_str),
        Some("yes")
    );
    assert_eq!(cfg.labels.get("cli").map(String::as_str), Some("1"));
    let ports: Vec<&String> = cfg.exposed_ports.keys().collect();
    assert_eq!(ports, ["80/tcp", "8000/udp", "8001/udp"]);
    assert_eq!(
        cfg.entrypoint.as_deref(),
        Some(&["/bin/app".to_string()][..])
    );
    assert_eq!(cfg.cmd.as_deref(), Some(&["--help".to_string()][..]));
    assert_eq!(cfg.user.as_deref(), Some("1000:1000"));
    let hist = created_by(&c);
    assert_eq!(hist.iter().filter(|h| !h.1).count(), 5);
    assert!(
        hist.iter().any(|h| h.0 == "WORKDIR /srv" && !h.1),
        "{hist:?}"
    );
    let fs_ = env.rootfs("meta");
    assert_eq!(
        fs::read_to_string(fs_.join("srv/app/main.txt")).unwrap(),
        "main"
    );
    assert_eq!(
        fs::read_to_string(fs_.join("srv/app/sub/deep.txt")).unwrap(),
        "deep"
    );
    assert_eq!(
        fs::read_to_string(fs_.join("home/app/two.txt")).unwrap(),
        "two"
    );
    assert_eq!(fs::read_to_string(fs_.join("srv/rel")).unwrap(), "one");
    // Inside a copied directory, symlinks stay symlinks with their targets.
    let ln = fs_.join("srv/app/ln");
    assert!(fs::symlink_metadata(&ln).unwrap().file_type().is_symlink());
    assert_eq!(
        fs::read_link(&ln).unwrap(),
        std::path::Path::new("sub/deep.txt")
    );
    assert_eq!(attrs(&fs_.join("srv/app/sub")).0, 0o755);
    // A symlink source is followed (BuildKit's FollowSymlinks for sources).
    assert_eq!(fs::read_to_string(fs_.join("l")).unwrap(), "one");
    assert_eq!(
        attrs(&fs_.join("srv/app/main.txt")).1,
        0,
        "context files are root-owned"
    );
}

#[test]
fn multi_stage_builds_only_what_the_target_reaches() {
    let env = Env::new();
    let ctx = env.context(
        "ctx",
        &[
            ("a", "A"),
            ("b", "B"),
            (
                "Dockerfile",
                "FROM scratch AS one\nCOPY a /a\n\
                 FROM scratch AS two\nCOPY b /b\n\
                 FROM scratch AS never\nCOPY does-not-exist /x\n\
                 FROM one\nCOPY --from=two /b /from-two\nCOPY --from=1 /b /from-index\n",
            ),
        ],
    );
    let out = env.kiln(
        &[
            "build",
            "--progress",
            "rawjson",
            "-t",
            "ms",
            ctx.to_str().unwrap(),
        ],
        None,
    );
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success(), "{stderr}");
    let started: Vec<serde_json::Value> = stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["event"] == "started")
        .collect();
    let stages: Vec<u64> = started
        .iter()
        .filter_map(|v| v["step"]["stage"].as_u64())
        .collect();
    assert!(
        !stages.contains(&2),
        "stage `never` must not run: {stages:?}"
    );
    assert!(stages.contains(&0) && stages.contains(&1) && stages.contains(&3));
    let fs_ = env.rootfs("ms");
    assert_eq!(fs::read_to_string(fs_.join("a")).unwrap(), "A");
    assert_eq!(fs::read_to_string(fs_.join("from-two")).unwrap(), "B");
    assert_eq!(fs::read_to_string(fs_.join("from-index")).unwrap(), "B");
    assert!(!fs_.join("b").exists());
    // Targeting the failing stage does build it, and fails.
    let bad = env.kiln(&["build", "--target", "never", ctx.to_str().unwrap()], None);
    assert_eq!(bad.status.code(), Some(1));
}

#[test]
fn dockerignore_and_dockerfile_specific_ignore() {
    let env = Env::new();
    let ctx = env.context(
        "ctx",
        &[
            ("keep.txt", "k"),
            ("drop.log", "d"),
            ("docs/keep.md", "m"),
            ("docs/other.md", "o"),
            (".dockerignore", "*.log\ndocs\n!docs/keep.md\n"),
            ("Dockerfile", "FROM scratch\nCOPY . /ctx/\n"),
            ("alt.Dockerfile", "FROM scratch\nCOPY . /ctx/\n"),
            ("alt.Dockerfile.dockerignore", "keep.txt\n"),
        ],
    );
    env.build(&["-t", "ig", ctx.to_str().unwrap()]);
    let fs_ = env.rootfs("ig");
    assert!(fs_.join("ctx/keep.txt").exists());
    assert!(!fs_.join("ctx/drop.log").exists());
    assert!(fs_.join("ctx/docs/keep.md").exists());
    assert!(!fs_.join("ctx/docs/other.md").exists());
    let alt = ctx.join("alt.Dockerfile");
    env.build(&[
        "-t",
        "ig2",
        "-f",
        alt.to_str().unwrap(),
        ctx.to_str().unwrap(),
    ]);
    let fs2 = env.rootfs("ig2");
    assert!(
        !fs2.join("ctx/keep.txt").exists(),
        "alt.Dockerfile.dockerignore wins"
    );
    assert!(fs2.join("ctx/drop.log").exists());
}

#[test]
fn chown_chmod_with_names_from_the_target_stage() {
    let env = Env::new();
    env.busybox();
    let ctx = env.context(
        "ctx",
        &[
            ("f", "f"),
            ("d/x", "x"),
            (
                "Dockerfile",
                "FROM busybox\nCOPY --chown=user:staff --chmod=640 f /data/f\n\
                 COPY --chown=1000 --chmod=700 d /opt/d\nCOPY f /bin/viaslink\n",
            ),
        ],
    );
    env.build(&["-t", "perm", ctx.to_str().unwrap()]);
    let fs_ = env.rootfs("perm");
    assert_eq!(attrs(&fs_.join("data/f")), (0o640, 1000, 50));
    assert_eq!(attrs(&fs_.join("opt/d/x")), (0o700, 1000, 1000));
    // COMPAT(buildkit): a created parent gets the owner, and an octal
    // --chmod as its mode (conformance case copy-chmod-dirs).
    assert_eq!(
        attrs(&fs_.join("data")),
        (0o640, 1000, 50),
        "created parent gets the owner and the mode"
    );
    assert_eq!(
        attrs(&fs_.join("tmp")).0,
        0o1777,
        "base dirs keep their mode"
    );
    let bad = env.context(
        "bad",
        &[
            ("f", "f"),
            ("Dockerfile", "FROM busybox\nCOPY --chown=ghost f /f\n"),
        ],
    );
    let out = env.kiln(&["build", bad.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unable to find user ghost"));
}

/// A one-shot HTTP server on loopback answering every request with `body`.
fn serve(body: &'static [u8], requests: usize) -> (String, std::thread::JoinHandle<()>) {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let h = std::thread::spawn(move || {
        for _ in 0..requests {
            let (mut s, _) = l.accept().unwrap();
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\
                 Last-Modified: Tue, 14 Nov 2023 22:13:20 GMT\r\n\r\n",
                body.len()
            );
            s.write_all(head.as_bytes()).unwrap();
            s.write_all(body).unwrap();
        }
    });
    (url, h)
}

#[test]
fn add_extracts_local_archives_and_fetches_urls() {
    let env = Env::new();
    let ctx = env.context("ctx", &[]);
    let st = tempfile::tempdir().unwrap();
    fs::create_dir_all(st.path().join("pkg")).unwrap();
    fs::write(st.path().join("pkg/inside.txt"), "inside").unwrap();
    let tgz = ctx.join("pkg.tar.gz");
    let ok = std::process::Command::new("tar")
        .args([
            "-czf",
            tgz.to_str().unwrap(),
            "-C",
            st.path().to_str().unwrap(),
            "pkg",
        ])
        .status()
        .unwrap();
    assert!(ok.success());
    let body: &'static [u8] = b"downloaded\n";
    let sum = kiln::oci::Digest::of(body);
    let (url, server) = serve(body, 2);
    let df = format!(
        "FROM scratch\nADD pkg.tar.gz /x/\nADD --checksum={sum} {url}/files/dl.txt /dl/\n\
         ADD {url}/files/dl.txt /named\nCOPY pkg.tar.gz /copied.tgz\n"
    );
    fs::write(ctx.join("Dockerfile"), df).unwrap();
    env.build(&["-t", "add", ctx.to_str().unwrap()]);
    server.join().unwrap();
    let fs_ = env.rootfs("add");
    assert_eq!(
        fs::read_to_string(fs_.join("x/pkg/inside.txt")).unwrap(),
        "inside"
    );
    assert_eq!(
        fs::read_to_string(fs_.join("dl/dl.txt")).unwrap(),
        "downloaded\n"
    );
    assert_eq!(attrs(&fs_.join("dl/dl.txt")).0, 0o600);
    let mtime = fs::metadata(fs_.join("dl/dl.txt"))
        .unwrap()
        .modified()
        .unwrap();
    let secs = mtime
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert_eq!(
        secs, 1_700_000_000,
        "Last-Modified becomes the file's mtime"
    );
    assert!(fs_.join("named").is_file());
    assert!(fs_.join("copied.tgz").is_file(), "COPY never extracts");
    // A wrong checksum fails the step.
    let (url, server) = serve(body, 1);
    let bad = env.context(
        "bad",
        &[(
            "Dockerfile",
            &*format!(
                "FROM scratch\nADD --checksum=sha256:{} {url}/f /f\n",
                "0".repeat(64)
            ),
        )],
    );
    let out = env.kiln(&["build", bad.to_str().unwrap()], None);
    server.join().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("digest mismatch"));
    let git = env.context(
        "git",
        &[(
            "Dockerfile",
            "FROM scratch\nADD https://example.invalid/r.git /src\n",
        )],
    );
    let out = env.kiln(&["build", git.to_str().unwrap()], None);
    assert!(String::from_utf8_lossy(&out.stderr).contains("git repository"));
    assert_ne!(out.status.code(), Some(0));
}

#[test]
fn run_writes_layers_whiteouts_and_streams_output() {
    let env = Env::new();
    env.busybox();
    let ctx = env.context(
        "ctx",
        &[(
            "Dockerfile",
            "FROM busybox\nRUN echo built-by-run && mkdir /made && echo x > /made/y && rm /etc/group\n\
             USER user\nWORKDIR /home/user/w\nRUN id -u > me && touch /tmp/t\n\
             RUN --mount=type=cache,target=/cache,uid=1000 echo hit >> /cache/log && cat /cache/log\n",
        )],
    );
    let out = env.kiln(
        &[
            "build",
            "--progress",
            "plain",
            "-t",
            "run",
            ctx.to_str().unwrap(),
        ],
        None,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains(" built-by-run"), "{stderr}");
    let fs_ = env.rootfs("run");
    assert_eq!(fs::read_to_string(fs_.join("made/y")).unwrap(), "x\n");
    assert!(!fs_.join("etc/group").exists(), "the whiteout deleted it");
    assert_eq!(
        fs::read_to_string(fs_.join("home/user/w/me")).unwrap(),
        "1000\n"
    );
    assert_eq!(
        attrs(&fs_.join("home/user/w")).1,
        1000,
        "WORKDIR dirs belong to USER"
    );
    assert!(
        !fs_.join("cache").join("log").exists(),
        "cache mounts stay out of layers"
    );
    // The cache mount persists across builds.
    let again = env.kiln(
        &[
            "build",
            "--no-cache",
            "--progress",
            "plain",
            ctx.to_str().unwrap(),
        ],
        None,
    );
    let hits = String::from_utf8_lossy(&again.stderr)
        .lines()
        .filter(|l| l.ends_with(" hit"))
        .count();
    assert_eq!(
        hits, 2,
        "the second build sees the first build's cache entry"
    );
}

#[test]
fn copy_flags_exclude_parents_link_and_from_image() {
    let env = Env::new();
    env.busybox();
    let ctx = env.context(
        "ctx",
        &[
            ("src/a/one.txt", "1"),
            ("src/a/skip.log", "s"),
            ("src/b/two.txt", "2"),
            (
                "Dockerfile",
                "FROM busybox\nCOPY --exclude=**/*.log src /ex/\n\
                 COPY --parents src/a/one.txt src/b/two.txt /par/\n\
                 COPY --link src/b/two.txt /bin/linked\n\
                 COPY --from=busybox /etc/passwd /from-image\n",
            ),
        ],
    );
    env.build(&["-t", "flags", ctx.to_str().unwrap()]);
    let fs_ = env.rootfs("flags");
    assert!(fs_.join("ex/a/one.txt").is_file());
    assert!(!fs_.join("ex/a/skip.log").exists());
    assert_eq!(
        fs::read_to_string(fs_.join("par/src/a/one.txt")).unwrap(),
        "1"
    );
    assert_eq!(
        fs::read_to_string(fs_.join("par/src/b/two.txt")).unwrap(),
        "2"
    );
    assert_eq!(fs::read_to_string(fs_.join("bin/linked")).unwrap(), "2");
    assert!(fs::read_to_string(fs_.join("from-image"))
        .unwrap()
        .contains("user:x:1000"));
    // The busybox applets under /bin are untouched by the --link layer.
    assert!(fs::symlink_metadata(fs_.join("bin/sh"))
        .unwrap()
        .file_type()
        .is_symlink());
}

// Regression: the first vertex always said "from Dockerfile", and a stage on
// another stage (or on scratch) numbered its steps from 2, as if it had a FROM
// step of its own; BuildKit prints `[final 1/1]`.
#[test]
fn progress_names_the_file_and_numbers_each_stage_from_its_first_step() {
    let env = Env::new();
    let ctx = env.context(
        "ctx",
        &[
            ("a", "a"),
            (
                "Containerfile",
                "FROM scratch AS base\nCOPY a /a\nFROM base AS final\nCOPY a /b\n",
            ),
        ],
    );
    let file = ctx.join("Containerfile");
    let out = env.kiln(
        &[
            "build",
            "--progress",
            "plain",
            "-f",
            file.to_str().unwrap(),
            ctx.to_str().unwrap(),
        ],
        None,
    );
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(
        log.contains("load build definition from Containerfile"),
        "{log}"
    );
    assert!(log.contains("[base 1/1] COPY a /a"), "{log}");
    assert!(log.contains("[final 1/1] COPY a /b"), "{log}");
}

// COMPAT(buildkit): BuildKit 0.25 writes an empty tar for a RUN or WORKDIR
// that changes nothing (conformance cases run-empty, user-workdir).
#[test]
fn a_step_that_changes_nothing_gets_the_shared_empty_layer() {
    let env = Env::new();
    env.busybox();
    let ctx = env.context(
        "ctx",
        &[(
            "Dockerfile",
            "FROM busybox\nRUN true\nWORKDIR /tmp\n\
             RUN --mount=type=cache,target=/c touch /c/x\nRUN echo x > /x\n",
        )],
    );
    env.build(&["-t", "empty", ctx.to_str().unwrap()]);
    let (_, m, c) = env.image("empty");
    let (_, base, _) = env.image("busybox");
    let added = &m.layers[base.layers.len()..];
    let ids = &c.rootfs.diff_ids[base.layers.len()..];
    assert_eq!(added.len(), 4, "every RUN and WORKDIR makes a layer");
    let empty = "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef";
    for i in 0..3 {
        assert_eq!(ids[i].to_string(), empty, "step {i} changed nothing");
        assert_eq!(added[i], added[0], "one shared blob");
    }
    assert_ne!(ids[3].to_string(), empty);
    let history = created_by(&c);
    assert!(
        history[history.len() - 4..].iter().all(|(_, e)| !e),
        "no empty_layer on a step that wrote a layer: {history:?}"
    );
    // The step on top of three empty layers saw the filesystem, and a rebuild
    // (every step a hit) gives the same image.
    assert_eq!(
        fs::read_to_string(env.rootfs("empty").join("x")).unwrap(),
        "x\n"
    );
    env.build(&["-t", "again", ctx.to_str().unwrap()]);
    assert_eq!(env.manifest_digest("again"), env.manifest_digest("empty"));
}
