//! RUN (mounts, heredocs) and COPY/ADD.

use super::*;
use kiln::plan::IdOrName;

#[test]
fn run_mounts_are_typed_with_buildkit_defaults() {
    let src = "FROM busybox AS builder\nFROM busybox\nWORKDIR /src\n\
               RUN --mount=type=cache,target=/root/.cache,sharing=locked \
               --mount=type=secret,id=tok --mount=from=builder,source=out,target=o,rw \
               --mount=type=tmpfs,target=/t,size=64m --mount=type=ssh make\n";
    let g = plan(src).unwrap();
    let m = &runs(&g)[0].mounts;
    assert!(
        matches!(&m[0], RunMount::Cache { id, target, sharing: Sharing::Locked, mode: 0o755, ro: false, .. }
        if id == "/root/.cache" && target == "/root/.cache")
    );
    assert!(
        matches!(&m[1], RunMount::Secret { id, target: Some(t), mode: 0o400, required: false, .. }
        if id == "tok" && t == "/run/secrets/tok")
    );
    assert!(
        matches!(&m[2], RunMount::Bind { target, source, from: FilesFrom::Stage(StageId(0)), rw: true }
        if target == "/src/o" && source == "/out")
    );
    assert!(matches!(&m[3], RunMount::Tmpfs { size: Some(s), .. } if *s == 64 << 20));
    assert!(
        matches!(&m[4], RunMount::Ssh { id, target, mode: 0o600, .. }
        if id == "default" && target == "/run/buildkit/ssh_agent.0")
    );
}

#[test]
fn ssh_mounts_point_ssh_auth_sock_at_the_first_target_unless_env_has_it() {
    let env_of = |src: &str| {
        let g = plan(src).unwrap();
        let r = runs(&g)[0];
        r.env
            .iter()
            .filter(|e| e.starts_with("SSH_AUTH_SOCK="))
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(
        env_of("FROM busybox\nRUN --mount=type=ssh,id=a,target=/a.sock --mount=type=ssh true\n"),
        ["SSH_AUTH_SOCK=/a.sock"]
    );
    let g = plan(
        "FROM busybox\nRUN --mount=type=ssh,id=a,target=/a.sock --mount=type=ssh,uid=5 true\n",
    )
    .unwrap();
    assert!(
        matches!(&runs(&g)[0].mounts[1], RunMount::Ssh { id, target, uid: 5, mode: 0o600, .. }
        if id == "default" && target == "/run/buildkit/ssh_agent.1")
    );
    assert_eq!(
        env_of("FROM busybox\nRUN --mount=type=ssh true\n"),
        ["SSH_AUTH_SOCK=/run/buildkit/ssh_agent.0"]
    );
    assert_eq!(
        env_of("FROM busybox\nENV SSH_AUTH_SOCK=/mine\nRUN --mount=type=ssh true\n"),
        ["SSH_AUTH_SOCK=/mine"]
    );
    assert_eq!(
        env_of("FROM busybox\nARG SSH_AUTH_SOCK=/arg\nRUN --mount=type=ssh true\n"),
        ["SSH_AUTH_SOCK=/arg"]
    );
    assert!(env_of("FROM busybox\nRUN --mount=type=tmpfs,target=/t true\n").is_empty());
    let err = plan("FROM busybox\nRUN --mount=type=ssh,source=x true\n").unwrap_err();
    assert!(
        matches!(&err, PlanError::Mount { key, .. } if key == "source"),
        "{err}"
    );
}

#[test]
fn run_mount_errors_name_the_key() {
    for (mount, key) in [
        ("type=tmpfs,target=/t,mode=0700", "mode"),
        ("type=bogus,target=/t", "type"),
        ("type=bind,target=/t,size=1m", "size"),
        ("type=cache,target=/t,sharing=sometimes", "sharing"),
        ("type=cache", "target"),
        ("target=/t,colour=red", "colour"),
        ("type=cache,target=/t,uid=me", "uid"),
    ] {
        let err = plan(&format!("FROM busybox\nRUN --mount={mount} true\n")).unwrap_err();
        match &err {
            PlanError::Mount { key: k, .. } => assert_eq!(k, key, "{mount}: {err}"),
            other => panic!("{mount}: expected a mount error, got {other}"),
        }
        assert_eq!(err.span().unwrap().start_line, 2);
    }
}

#[test]
fn run_heredoc_forms_follow_dispatch_run() {
    let g = plan("FROM busybox\nRUN <<EOF\necho a\necho b\nEOF\n").unwrap();
    let r = runs(&g)[0];
    assert_eq!(r.argv, ["/bin/sh", "-c", "echo a\necho b\n"]);
    assert!(r.files.is_empty());
    assert_eq!(g.target_stage().steps[0].display, "RUN <<EOF (echo a...)");

    let g = plan("FROM busybox\nRUN <<EOF\n#!/bin/busybox sh\necho hi\nEOF\n").unwrap();
    let r = runs(&g)[0];
    assert_eq!(r.argv, ["/bin/sh", "-c", "/dev/pipes/EOF"]);
    assert_eq!(r.files[0].name, "EOF");
    assert_eq!(r.files[0].mode, 0o755);
    assert_eq!(r.files[0].content, "#!/bin/busybox sh\necho hi\n");

    let g = plan("FROM busybox\nRUN cat <<EOF > /greeting\nhello $X\nEOF\n").unwrap();
    assert_eq!(runs(&g)[0].argv[2], "cat <<EOF > /greeting\nhello $X\nEOF");
}

#[test]
fn copy_resolves_dest_against_workdir_and_expands_heredocs() {
    let src = "FROM busybox AS a\nFROM busybox\nWORKDIR /app\nENV N=world\n\
               COPY --from=a --exclude=*.md src/ .\nCOPY <<EOF <<'RAW' conf/\nhello \"$N\"\nEOF\n$N\nRAW\n";
    let g = plan(src).unwrap();
    let copies: Vec<_> = g
        .target_stage()
        .steps
        .iter()
        .filter_map(|s| match &s.op {
            Op::Copy(c) => Some(c),
            _ => None,
        })
        .collect();
    assert!(matches!(copies[0].from, FilesFrom::Stage(StageId(0))));
    assert_eq!(copies[0].dest, "/app/");
    assert!(copies[0].dest_is_dir_hint);
    assert_eq!(copies[0].excludes.patterns(), ["*.md"]);
    assert_eq!(copies[1].dest, "/app/conf/");
    assert_eq!(copies[1].heredocs[0].content, "hello \"world\"\n");
    assert_eq!(copies[1].heredocs[1].content, "$N\n");
    assert_eq!(
        g.target_stage().steps[3].created_by,
        "COPY <<EOF <<RAW conf/ # buildkit"
    );
}

#[test]
fn chmod_is_parsed_once_at_planning() {
    // Symbolic modes (Dockerfile 1.14+) plan, expanded first, and keep their
    // text for the history and the step key.
    let g = plan("FROM busybox\nARG M=rX\nCOPY --chmod=u=rwX,go=$M a /x\n").unwrap();
    let Op::Copy(c) = &g.target_stage().steps[1].op else {
        panic!("COPY is a copy op")
    };
    let chmod = c.chmod.as_ref().unwrap();
    assert_eq!((chmod.text(), chmod.octal()), ("u=rwX,go=rX", None));
    assert_eq!(
        g.target_stage().steps[1].created_by,
        "COPY --chmod=u=rwX,go=rX a /x # buildkit"
    );
    // Refused at planning, on the instruction's line, naming flag and value.
    for (mode, why) in [
        ("999", "octal"),
        ("17777", "octal"),
        ("u+q", "invalid syntax"),
        ("u+x,", "invalid syntax"),
    ] {
        let err = plan(&format!("FROM busybox\n\nADD --chmod={mode} a /x\n")).unwrap_err();
        assert_eq!(err.span().unwrap().start_line, 3, "{mode}");
        let msg = err.to_string();
        assert!(
            msg.contains("--chmod") && msg.contains(mode) && msg.contains(why),
            "{msg}"
        );
    }
}

#[test]
fn chown_is_parsed_once_at_planning() {
    let g = plan("FROM busybox\nARG G=staff\nCOPY --chown=app:$G a /x\n").unwrap();
    let Op::Copy(c) = &g.target_stage().steps[1].op else {
        panic!("COPY is a copy op")
    };
    let chown = c.chown.as_ref().unwrap();
    assert_eq!(chown.text(), "app:staff");
    assert!(chown.needs_lookup());
    assert_eq!(
        g.target_stage().steps[1].created_by,
        "COPY --chown=app:staff a /x # buildkit"
    );
    // Regression: an empty user or group was refused at planning; BuildKit 0.25 takes
    // it as id 0 (conformance case copy-chown-empty-parts), and an empty value as no
    // --chown at all.
    for (value, user, group) in [
        (":1", IdOrName::Id(0), IdOrName::Id(1)),
        ("1:", IdOrName::Id(1), IdOrName::Id(0)),
        (":", IdOrName::Id(0), IdOrName::Id(0)),
    ] {
        let g = plan(&format!("FROM busybox\nCOPY --chown={value} a /x\n")).unwrap();
        let Op::Copy(c) = &g.target_stage().steps[0].op else {
            panic!("COPY is a copy op")
        };
        let chown = c.chown.as_ref().unwrap();
        assert_eq!(
            (chown.user(), chown.group()),
            (&user, Some(&group)),
            "{value}"
        );
    }
    let g = plan("FROM busybox\nARG E\nCOPY --chown=$E a /x\n").unwrap();
    let Op::Copy(c) = &g.target_stage().steps[1].op else {
        panic!("COPY is a copy op")
    };
    assert!(c.chown.is_none());
}

#[test]
fn copy_and_add_source_rules() {
    let err = plan("FROM busybox\nCOPY https://example.com/x /x\n").unwrap_err();
    assert!(err.to_string().contains("can't be a URL"), "{err}");
    let err = plan("FROM busybox\nADD --checksum=sha256:abc a b /x/\n").unwrap_err();
    assert!(err.to_string().contains("multiple sources"), "{err}");
    // Regression: a bad --checksum passed planning and failed only when the step ran,
    // after every step before it.
    let err =
        plan("FROM busybox\nADD --checksum=sha256:abc https://example.com/a /a\n").unwrap_err();
    assert!(err.to_string().contains("invalid checksum digest"), "{err}");
    let sum = format!("sha256:{}", "ab".repeat(32));
    let g = plan(&format!(
        "FROM busybox\nADD --checksum={sum} https://example.com/a /a\n"
    ))
    .unwrap();
    let Op::Copy(c) = &g.target_stage().steps[0].op else {
        panic!("ADD is a copy op")
    };
    assert_eq!(c.add.as_ref().unwrap().checksum.unwrap().to_string(), sum);
    let err = plan("FROM busybox\nCOPY --chmod=999 a /x\n").unwrap_err();
    assert!(err.to_string().contains("--chmod"), "{err}");
    let g = plan("FROM busybox\nADD --unpack=false https://example.com/a.tgz /x/\n").unwrap();
    let Op::Copy(c) = &g.target_stage().steps[0].op else {
        panic!("ADD is a copy op")
    };
    assert_eq!(c.add.as_ref().unwrap().unpack, Some(false));
    // Sources are classified once, here: the builder matches on the kind.
    let g = plan("FROM busybox\nADD a https://example.com/b.tgz /x/\n").unwrap();
    let Op::Copy(c) = &g.target_stage().steps[0].op else {
        panic!("ADD is a copy op")
    };
    assert_eq!(
        c.sources,
        [
            CopySource::Path("a".into()),
            CopySource::Url("https://example.com/b.tgz".into())
        ]
    );
    // A bad --exclude fails at planning, on its line, naming the pattern
    // (it failed only when the step ran).
    for (pat, why) in [("[a", "syntax error"), ("!", "illegal exclusion")] {
        let err = plan(&format!(
            "FROM busybox\n\nCOPY --exclude=ok --exclude={pat} a /x\n"
        ))
        .unwrap_err();
        assert_eq!(err.span().unwrap().start_line, 3, "{pat}");
        let msg = err.to_string();
        assert!(
            msg.contains("--exclude") && msg.contains(pat) && msg.contains(why),
            "{msg}"
        );
    }
    let err = plan("FROM busybox\nADD https://github.com/a/b.git /src\n").unwrap_err();
    assert!(matches!(err, PlanError::Unsupported { .. }), "{err}");
    // Regression: ssh:// passed planning (plan and builder classified sources
    // differently) and failed only when the step ran.
    for src in ["ssh://git@host/repo.git", "git://host/repo", "git@host:a/b"] {
        let err = plan(&format!("FROM busybox\nADD {src} /src\n")).unwrap_err();
        assert!(matches!(err, PlanError::Unsupported { .. }), "{src}: {err}");
    }
}

#[test]
fn a_directory_mount_without_target_is_the_workdir() {
    let g = plan("FROM busybox AS src\nFROM busybox\nWORKDIR /usr/src/x\nRUN --mount=from=src,src=/x,rw make\n").unwrap();
    assert!(
        matches!(&runs(&g)[0].mounts[0], RunMount::Bind { target, rw: true, .. } if target == "/usr/src/x")
    );
    let err = plan("FROM busybox\nRUN --mount=type=cache true\n").unwrap_err();
    assert!(err.to_string().contains("invalid mount target"), "{err}");
}
