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
