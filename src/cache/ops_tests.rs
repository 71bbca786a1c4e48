//! Which fields move which keys: every field that must matter changes the
//! key, and what must not matter (undeclared proxies, cache-mount and secret
//! contents) leaves it alone.

use super::*;

/// A named edit of an input, for tables of "this change must move the key".
type Change<T> = (&'static str, Box<dyn Fn(&mut T)>);

fn run() -> RunKeyInput {
    RunKeyInput {
        argv: vec!["/bin/sh".into(), "-c".into(), "make".into()],
        env: vec!["PATH=/usr/bin:/bin".into()],
        proxy_env: vec!["HTTP_PROXY=http://p:3128".into()],
        user: String::new(),
        workdir: "/src".into(),
        network: NetworkKey::Default,
        security: SecurityKey::Sandbox,
        mounts: vec![
            MountKeyInput::Cache {
                id: "go".into(),
                target: "/root/.cache".into(),
                ro: false,
                sharing: "shared".into(),
                from: None,
                source: String::new(),
                mode: 0o755,
                uid: 0,
                gid: 0,
            },
            MountKeyInput::Secret {
                id: "tok".into(),
                target: None,
                env: None,
                required: true,
                mode: 0o400,
                uid: 0,
                gid: 0,
            },
        ],
        files: vec![],
        stdin: None,
    }
}

fn copy() -> CopyKeyInput {
    CopyKeyInput {
        from: SourceKey::Context(ContentDigest::of(b"ctx")),
        sources: vec!["src/".into()],
        heredocs: vec![],
        dest: "/app/".into(),
        dest_is_dir: true,
        chown: None,
        chmod: None,
        link: false,
        parents: false,
        excludes: vec![],
        add: None,
    }
}

#[test]
fn run_key_moves_with_every_field_that_matters() {
    let parent = StepKey::of(b"parent");
    let base = run_key(Some(&parent), &run()).0;
    let changes: Vec<Change<RunKeyInput>> = vec![
        ("argv", Box::new(|r| r.argv[2] = "make all".into())),
        ("env", Box::new(|r| r.env.push("A=1".into()))),
        ("env value", Box::new(|r| r.env[0] = "PATH=/bin".into())),
        ("user", Box::new(|r| r.user = "nobody".into())),
        ("workdir", Box::new(|r| r.workdir = "/".into())),
        ("network", Box::new(|r| r.network = NetworkKey::None)),
        ("security", Box::new(|r| r.security = SecurityKey::Insecure)),
        ("cache id", Box::new(|r| r.mounts.truncate(1))),
        ("stdin", Box::new(|r| r.stdin = Some("y\n".into()))),
        (
            "declared proxy",
            Box::new(|r| r.env.push("HTTP_PROXY=http://p:3128".into())),
        ),
        (
            "inline file",
            Box::new(|r| {
                r.files.push(InlineFileKey {
                    name: "EOF".into(),
                    content: "echo".into(),
                    mode: 0o755,
                })
            }),
        ),
        (
            "bind source content",
            Box::new(|r| {
                r.mounts.push(MountKeyInput::Bind {
                    target: "/m".into(),
                    source: "/".into(),
                    from: SourceKey::Context(ContentDigest::of(b"v1")),
                    rw: false,
                })
            }),
        ),
    ];
    for (what, change) in changes {
        let mut r = run();
        change(&mut r);
        assert_ne!(
            run_key(Some(&parent), &r).0,
            base,
            "{what} must change the key"
        );
    }
    assert_ne!(
        run_key(None, &run()).0,
        base,
        "the parent must change the key"
    );
}

#[test]
fn bind_mount_content_matters_but_not_its_absence_of_change() {
    let with = |d: &[u8]| {
        let mut r = run();
        r.mounts.push(MountKeyInput::Bind {
            target: "/m".into(),
            source: "/".into(),
            from: SourceKey::Context(ContentDigest::of(d)),
            rw: false,
        });
        run_key(None, &r).0
    };
    assert_eq!(with(b"a"), with(b"a"));
    assert_ne!(with(b"a"), with(b"b"));
}

#[test]
fn undeclared_proxy_values_do_not_matter() {
    let mut other = run();
    other.proxy_env = vec!["HTTP_PROXY=http://elsewhere:8080".into()];
    assert_eq!(run_key(None, &run()).0, run_key(None, &other).0);
    other.proxy_env.clear();
    assert_eq!(run_key(None, &run()).0, run_key(None, &other).0);
}

#[test]
fn the_preimage_never_mentions_cache_or_secret_contents() {
    let (_, pre) = run_key(None, &run());
    let text = String::from_utf8(pre).unwrap();
    assert!(text.contains(r#""id":"go""#));
    assert!(text.contains(r#""id":"tok""#));
    assert!(!text.contains("proxy"));
    assert!(!text.contains("http://p:3128"));
}

#[test]
fn copy_key_moves_with_sources_and_every_flag() {
    let base = copy_key(None, &copy()).0;
    let changes: Vec<Change<CopyKeyInput>> = vec![
        (
            "context",
            Box::new(|c| c.from = SourceKey::Context(ContentDigest::of(b"x"))),
        ),
        (
            "stage",
            Box::new(|c| c.from = SourceKey::Stage(StepKey::of(b"s"))),
        ),
        (
            "image",
            Box::new(|c| c.from = SourceKey::Image(Digest::of(b"i"))),
        ),
        ("sources", Box::new(|c| c.sources[0] = "src/*".into())),
        ("dest", Box::new(|c| c.dest = "/opt/".into())),
        ("dest_is_dir", Box::new(|c| c.dest_is_dir = false)),
        ("chown", Box::new(|c| c.chown = Some("1:1".into()))),
        ("chmod", Box::new(|c| c.chmod = Some("755".into()))),
        ("link", Box::new(|c| c.link = true)),
        ("parents", Box::new(|c| c.parents = true)),
        ("excludes", Box::new(|c| c.excludes.push("*.o".into()))),
        ("add", Box::new(|c| c.add = Some(AddKeyInput::default()))),
        (
            "heredoc",
            Box::new(|c| {
                c.heredocs.push(InlineFileKey {
                    name: "f".into(),
                    content: "x".into(),
                    mode: 0o644,
                })
            }),
        ),
    ];
    for (what, change) in changes {
        let mut c = copy();
        change(&mut c);
        assert_ne!(copy_key(None, &c).0, base, "{what} must change the key");
    }
}

#[test]
fn add_url_content_decides_not_only_the_url() {
    let with = |d: &[u8]| {
        let mut c = copy();
        c.sources = vec!["https://example.com/a.tgz".into()];
        c.add = Some(AddKeyInput {
            url_contents: vec![ContentDigest::of(d)],
            ..AddKeyInput::default()
        });
        copy_key(None, &c).0
    };
    assert_eq!(with(b"v1"), with(b"v1"));
    assert_ne!(with(b"v1"), with(b"v2"));
}

#[test]
fn from_and_workdir_keys() {
    let a = from_key(&Digest::of(b"m1")).0;
    assert_eq!(a, from_key(&Digest::of(b"m1")).0);
    assert_ne!(a, from_key(&Digest::of(b"m2")).0);
    let w = workdir_key(Some(&a), "/app", "").0;
    assert_ne!(w, workdir_key(Some(&a), "/app", "nobody").0);
    assert_ne!(w, workdir_key(Some(&a), "/srv", "").0);
    assert_ne!(w, workdir_key(None, "/app", "").0);
}

/// Keys computed before the recipe was moved onto the plan's ops: existing
/// stores keep their hits only while these stay byte for byte the same.
mod pinned {
    use super::*;

    pub(super) fn every_mount() -> RunKeyInput {
        let mut r = run();
        r.env.push("HTTP_PROXY=http://declared:1".into());
        r.user = "1000:1000".into();
        r.network = NetworkKey::None;
        r.security = SecurityKey::Insecure;
        r.files.push(InlineFileKey {
            name: "EOF".into(),
            content: "#!/bin/sh\necho hi\n".into(),
            mode: 0o755,
        });
        r.stdin = Some("y\n".into());
        r.mounts = vec![
            MountKeyInput::Bind {
                target: "/ctx".into(),
                source: "/src".into(),
                from: SourceKey::Context(ContentDigest::of(b"ctx")),
                rw: true,
            },
            MountKeyInput::Bind {
                target: "/st".into(),
                source: "/".into(),
                from: SourceKey::Stage(StepKey::of(b"stage")),
                rw: false,
            },
            MountKeyInput::Cache {
                id: "go".into(),
                target: "/root/.cache".into(),
                ro: true,
                sharing: "locked".into(),
                from: Some(SourceKey::Image(Digest::of(b"image"))),
                source: "/seed".into(),
                mode: 0o700,
                uid: 1,
                gid: 2,
            },
            MountKeyInput::Cache {
                id: "/var/cache".into(),
                target: "/var/cache".into(),
                ro: false,
                sharing: "private".into(),
                from: None,
                source: "/".into(),
                mode: 0o755,
                uid: 0,
                gid: 0,
            },
            MountKeyInput::Tmpfs {
                target: "/tmp".into(),
                size: Some(1 << 20),
            },
            MountKeyInput::Tmpfs {
                target: "/t2".into(),
                size: None,
            },
            MountKeyInput::Secret {
                id: "tok".into(),
                target: Some("/run/secrets/tok".into()),
                env: Some("TOK".into()),
                required: true,
                mode: 0o400,
                uid: 0,
                gid: 0,
            },
            MountKeyInput::Ssh {
                id: "default".into(),
                target: "/run/buildkit/ssh_agent.0".into(),
                required: false,
                mode: 0o600,
                uid: 0,
                gid: 0,
            },
        ];
        r
    }

    pub(super) fn copy_every_flag() -> CopyKeyInput {
        let mut c = copy();
        c.sources = vec!["a".into(), "b/*.rs".into()];
        c.heredocs.push(InlineFileKey {
            name: "f".into(),
            content: "x\n".into(),
            mode: 0o644,
        });
        c.chown = Some("1:2".into());
        c.chmod = Some("0640".into());
        c.link = true;
        c.parents = true;
        c.excludes = vec!["*.o".into()];
        c
    }

    pub(super) fn add_every_flag() -> CopyKeyInput {
        let mut c = copy();
        c.from = SourceKey::Stage(StepKey::of(b"stage"));
        c.sources = vec!["https://example.com/a.tgz".into()];
        c.dest = "/opt/a.tgz".into();
        c.dest_is_dir = false;
        c.add = Some(AddKeyInput {
            checksum: Some(format!("{}", Digest::of(b"a"))),
            keep_git_dir: true,
            unpack: Some(false),
            url_contents: vec![ContentDigest::of(b"a")],
        });
        c
    }
}

#[test]
fn pinned_keys_do_not_move() {
    let parent = StepKey::of(b"parent");
    let keys = [
        ("run", run_key(Some(&parent), &pinned::every_mount()).0),
        (
            "copy",
            copy_key(Some(&parent), &pinned::copy_every_flag()).0,
        ),
        ("add", copy_key(Some(&parent), &pinned::add_every_flag()).0),
        ("workdir", workdir_key(Some(&parent), "/app", "nobody").0),
        ("from", from_key(&Digest::of(b"m1")).0),
    ];
    let got: Vec<String> = keys.iter().map(|(n, k)| format!("{n} {k}")).collect();
    let want = [
        "run sha256:53c0fe430a049131ab7fdc90ddc0b0828415a331bfb5abeef132b99545388bc2",
        "copy sha256:250f5811e960ba8c0be165930759dacf82e514dbd4642a05fad2aeba995ff2a9",
        "add sha256:c07f58aa5a440f09e88004615e8304f3737e2926ea860b1fd76457225a743530",
        "workdir sha256:20293873e9b7daff8f42539ecf4786806912d5caaf73ee458558a0d7b15ed4ca",
        "from sha256:ef1fd2c9f322220556ff457eaefbc310b595051bbd3b94326a8620fa19fc5b41",
    ];
    assert_eq!(got, want);
}
