//! RUN through the sandbox: mounts (secret, bind from the context and from a
//! stage, tmpfs), heredoc scripts, `--network=none`, and that none of them
//! leaves a trace in the layers.

use std::fs;

use super::Env;

#[test]
fn run_mounts_heredocs_and_network_leave_no_trace() {
    let env = Env::new();
    env.busybox();
    let secret = env.path("secret.txt");
    fs::write(&secret, "s3cr3t\n").unwrap();
    let ctx = env.context(
        "ctx",
        &[
            ("c.txt", "from-context\n"),
            (
                "Dockerfile",
                "FROM busybox AS helper\nRUN echo from-stage > /h.txt\n\
                 FROM busybox\nRUN <<EOF\necho heredoc-run\nEOF\n\
                 RUN <<EOF2\n#!/bin/sh\necho shebang-script\nEOF2\n\
                 RUN --mount=type=secret,id=tok cat /run/secrets/tok\n\
                 RUN --mount=type=bind,source=c.txt,target=/mnt/c.txt cat /mnt/c.txt\n\
                 RUN --mount=type=bind,from=helper,source=/h.txt,target=/h cat /h\n\
                 RUN --mount=type=tmpfs,target=/t touch /t/x && ls /t\n\
                 RUN --network=none ls /sys/class/net > /nets\n\
                 RUN --mount=type=cache,target=/c,sharing=locked echo locked > /c/f && cat /c/f\n",
            ),
        ],
    );
    let secret_arg = format!("id=tok,src={}", secret.display());
    let out = env.kiln(
        &[
            "build",
            "--progress",
            "plain",
            "-t",
            "mounts",
            "--secret",
            &secret_arg,
            ctx.to_str().unwrap(),
        ],
        None,
    );
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    for expected in [
        " heredoc-run",
        " shebang-script",
        " s3cr3t",
        " from-context",
        " from-stage",
        " locked",
    ] {
        assert!(
            log.lines().any(|l| l.ends_with(expected)),
            "{expected:?} missing in\n{log}"
        );
    }
    let fs_ = env.rootfs("mounts");
    assert_eq!(fs::read_to_string(fs_.join("nets")).unwrap(), "lo\n");
    for gone in ["run", "mnt", "h", "t", "dev", "proc", "sys"] {
        assert!(!fs_.join(gone).exists(), "/{gone} leaked into the image");
    }
    // COMPAT(buildkit): a missing optional secret is not mounted, so the
    // command fails; a required one fails before running, naming the flag.
    let out = env.kiln(&["build", "--no-cache", ctx.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(1));
    let req = env.context(
        "req",
        &[(
            "Dockerfile",
            "FROM busybox
RUN --mount=type=secret,id=tok,required=true true
",
        )],
    );
    let out = env.kiln(&["build", req.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--secret id=tok"));
}

#[test]
fn independent_stages_run_in_parallel() {
    let env = Env::new();
    env.busybox();
    let ctx = env.context(
        "ctx",
        &[(
            "Dockerfile",
            "FROM busybox AS a\nRUN sleep 1 && echo a > /a\n\
             FROM busybox AS b\nRUN sleep 1 && echo b > /b\n\
             FROM scratch\nCOPY --from=a /a /a\nCOPY --from=b /b /b\n",
        )],
    );
    let t = std::time::Instant::now();
    env.build(&["-t", "par", ctx.to_str().unwrap()]);
    let took = t.elapsed();
    assert!(
        took < std::time::Duration::from_millis(1900),
        "stages ran one after the other: {took:?}"
    );
    let fs_ = env.rootfs("par");
    assert_eq!(fs::read_to_string(fs_.join("a")).unwrap(), "a\n");
    assert_eq!(fs::read_to_string(fs_.join("b")).unwrap(), "b\n");
}

#[test]
fn two_builds_share_one_store_at_once() {
    let env = Env::new();
    env.busybox();
    let ctx = env.context(
        "ctx",
        &[
            ("f", "same"),
            ("Dockerfile", "FROM busybox\nCOPY f /f\nRUN cat /f > /g\n"),
        ],
    );
    let ctx = ctx.to_str().unwrap().to_string();
    std::thread::scope(|s| {
        let a = s.spawn(|| env.build(&["-t", "x:a", &ctx]));
        let b = s.spawn(|| env.build(&["-t", "x:b", &ctx]));
        a.join().unwrap();
        b.join().unwrap();
    });
    for tag in ["x:a", "x:b"] {
        assert_eq!(
            fs::read_to_string(env.rootfs(tag).join("g")).unwrap(),
            "same"
        );
    }
}

/// Regression: `RUN --mount=type=bind,source=FILE,rw` failed ("discard-writes bind
/// source … is not a directory"): the discard overlay needs a directory. BuildKit
/// mounts the file read-write and drops the writes; so does kiln now, on its own copy,
/// and neither the context nor the next step sees the write.
#[test]
fn a_read_write_bind_of_a_file_discards_its_writes() {
    let env = Env::new();
    env.busybox();
    let ctx = env.context(
        "ctx",
        &[
            ("f.txt", "orig\n"),
            (
                "Dockerfile",
                "FROM busybox\n\
                 RUN --mount=type=bind,source=f.txt,target=/b/f.txt,rw \
                  echo changed > /b/f.txt && cat /b/f.txt > /seen\n\
                 RUN --mount=type=bind,source=f.txt,target=/b/f.txt cat /b/f.txt > /again\n",
            ),
        ],
    );
    let out = env.kiln(&["build", "-t", "bindrw", ctx.to_str().unwrap()], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let root = env.rootfs("bindrw");
    assert_eq!(fs::read_to_string(root.join("seen")).unwrap(), "changed\n");
    assert_eq!(fs::read_to_string(root.join("again")).unwrap(), "orig\n");
    assert_eq!(fs::read_to_string(ctx.join("f.txt")).unwrap(), "orig\n");
    assert!(
        !root.join("b/f.txt").exists(),
        "the mount point stays out of the image"
    );
}

#[test]
fn a_run_gets_sigpipe_with_its_default_action() {
    // kiln (Rust) ignores SIGPIPE; an ignored signal stays ignored across exec,
    // so without the sandbox restoring it, `yes | head` never ends (runc gives
    // the default action). Bit 13 of SigIgn is SIGPIPE.
    let (env, ctx) = Env::busybox_dockerfile(
        "FROM busybox\n\
         RUN grep SigIgn /proc/self/status > /sigign && timeout 20 yes | head -n1 > /yes\n",
    );
    let out = env.kiln(&["build", "-t", "pipe", ctx.to_str().unwrap()], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let root = env.rootfs("pipe");
    let line = fs::read_to_string(root.join("sigign")).unwrap();
    let mask = u64::from_str_radix(line.trim().trim_start_matches("SigIgn:").trim(), 16).unwrap();
    assert_eq!(mask & (1 << 12), 0, "SIGPIPE is ignored in the RUN: {line}");
    assert_eq!(fs::read_to_string(root.join("yes")).unwrap(), "y\n");
}
