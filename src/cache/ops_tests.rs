//! Which fields move which keys: every field that must matter changes the
//! key, and what must not matter (undeclared proxies, cache-mount and secret
//! contents) leaves it alone; and keys computed before the recipe read the
//! plan's ops stay what they were.

use std::convert::Infallible;

use super::*;
use crate::oci::{Descriptor, ImageConfig};
use crate::plan::{Chmod, Chown, CopySource, Excludes, FilesFrom, ResolvedImage, StageId};

/// A named edit of an op, for tables of "this change must move the key".
type Change<T> = (&'static str, Box<dyn Fn(&mut T)>);

/// What the build would resolve a mount's `from` to: the context to the
/// digest of `ctx`, any stage to one key, an image to its manifest digest.
fn sources(
    ctx: &'static [u8],
) -> impl FnMut(&FilesFrom, &str) -> Result<Option<SourceKey>, Infallible> {
    move |from, _path| {
        Ok(Some(match from {
            FilesFrom::Context | FilesFrom::NamedContext(_) => {
                SourceKey::Context(ContentDigest::of(ctx))
            }
            FilesFrom::Stage(_) => SourceKey::Stage(StepKey::of(b"stage")),
            FilesFrom::Image(img) => SourceKey::Image(img.manifest.digest),
        }))
    }
}

fn rkey(parent: Option<&StepKey>, op: &RunOp) -> (StepKey, Vec<u8>) {
    run_key(parent, op, sources(b"ctx")).unwrap().unwrap()
}

fn image(tag: &[u8]) -> ResolvedImage {
    ResolvedImage {
        reference: "img".into(),
        manifest: Descriptor::new("m", Digest::of(tag), 1),
        config: ImageConfig::default(),
    }
}

fn inline(name: &str, content: &str, mode: u32) -> InlineFile {
    InlineFile {
        name: name.into(),
        content: content.into(),
        mode,
    }
}

fn bind_context(target: &str) -> RunMount {
    RunMount::Bind {
        target: target.into(),
        source: "/".into(),
        from: FilesFrom::Context,
        rw: false,
    }
}

fn run() -> RunOp {
    RunOp {
        argv: vec!["/bin/sh".into(), "-c".into(), "make".into()],
        env: vec!["PATH=/usr/bin:/bin".into()],
        proxy_env: vec!["HTTP_PROXY=http://p:3128".into()],
        user: String::new(),
        workdir: "/src".into(),
        network: NetworkMode::Default,
        security: Security::Sandbox,
        mounts: vec![
            RunMount::Cache {
                id: "go".into(),
                target: "/root/.cache".into(),
                ro: false,
                sharing: Sharing::Shared,
                from: None,
                source: String::new(),
                mode: 0o755,
                uid: 0,
                gid: 0,
            },
            RunMount::Secret {
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

fn copy() -> CopyOp {
    CopyOp {
        from: FilesFrom::Context,
        sources: vec![CopySource::Path("src/".into())],
        heredocs: vec![],
        dest: "/app/".into(),
        chown: None,
        chmod: None,
        link: false,
        parents: false,
        excludes: Excludes::default(),
        add: None,
        dest_is_dir_hint: true,
    }
}

fn ctx(tag: &[u8]) -> SourceKey {
    SourceKey::Context(ContentDigest::of(tag))
}

#[test]
fn run_key_moves_with_every_field_that_matters() {
    let parent = StepKey::of(b"parent");
    let base = rkey(Some(&parent), &run()).0;
    let changes: Vec<Change<RunOp>> = vec![
        ("argv", Box::new(|r| r.argv[2] = "make all".into())),
        ("env", Box::new(|r| r.env.push("A=1".into()))),
        ("env value", Box::new(|r| r.env[0] = "PATH=/bin".into())),
        ("user", Box::new(|r| r.user = "nobody".into())),
        ("workdir", Box::new(|r| r.workdir = "/".into())),
        ("network", Box::new(|r| r.network = NetworkMode::None)),
        ("security", Box::new(|r| r.security = Security::Insecure)),
        ("cache id", Box::new(|r| r.mounts.truncate(1))),
        ("stdin", Box::new(|r| r.stdin = Some("y\n".into()))),
        (
            "declared proxy",
            Box::new(|r| r.env.push("HTTP_PROXY=http://p:3128".into())),
        ),
        (
            "inline file",
            Box::new(|r| r.files.push(inline("EOF", "echo", 0o755))),
        ),
        (
            "bind source content",
            Box::new(|r| r.mounts.push(bind_context("/m"))),
        ),
    ];
    for (what, change) in changes {
        let mut r = run();
        change(&mut r);
        assert_ne!(
            rkey(Some(&parent), &r).0,
            base,
            "{what} must change the key"
        );
    }
    assert_ne!(rkey(None, &run()).0, base, "the parent must change the key");
}

#[test]
fn bind_mount_content_matters_but_not_its_absence_of_change() {
    let with = |d: &'static [u8]| {
        let mut r = run();
        r.mounts.push(bind_context("/m"));
        run_key(None, &r, sources(d)).unwrap().unwrap().0
    };
    assert_eq!(with(b"a"), with(b"a"));
    assert_ne!(with(b"a"), with(b"b"));
}

#[test]
fn a_mount_source_that_selects_nothing_leaves_the_step_unkeyed() {
    let mut r = run();
    r.mounts.push(bind_context("/m"));
    let none = |_: &FilesFrom, _: &str| Ok::<_, Infallible>(None);
    assert!(run_key(None, &r, none).unwrap().is_none());
}

#[test]
fn undeclared_proxy_values_do_not_matter() {
    let mut other = run();
    other.proxy_env = vec!["HTTP_PROXY=http://elsewhere:8080".into()];
    assert_eq!(rkey(None, &run()).0, rkey(None, &other).0);
    other.proxy_env.clear();
    assert_eq!(rkey(None, &run()).0, rkey(None, &other).0);
}

#[test]
fn the_preimage_never_mentions_cache_or_secret_contents() {
    let (_, pre) = rkey(None, &run());
    let text = String::from_utf8(pre).unwrap();
    assert!(text.contains(r#""id":"go""#));
    assert!(text.contains(r#""id":"tok""#));
    assert!(!text.contains("proxy"));
    assert!(!text.contains("http://p:3128"));
}

#[test]
fn copy_key_moves_with_sources_and_every_flag() {
    let base = copy_key(None, &copy(), &ctx(b"ctx"), &[]).0;
    let froms = [
        ("context", ctx(b"x")),
        ("stage", SourceKey::Stage(StepKey::of(b"s"))),
        ("image", SourceKey::Image(Digest::of(b"i"))),
    ];
    for (what, from) in froms {
        assert_ne!(copy_key(None, &copy(), &from, &[]).0, base, "{what}");
    }
    let changes: Vec<Change<CopyOp>> = vec![
        (
            "sources",
            Box::new(|c| c.sources[0] = CopySource::Path("src/*".into())),
        ),
        ("dest", Box::new(|c| c.dest = "/opt/".into())),
        ("dest_is_dir", Box::new(|c| c.dest_is_dir_hint = false)),
        ("chown", Box::new(|c| c.chown = Some(Chown::parse("1:1")))),
        (
            "chmod",
            Box::new(|c| c.chmod = Some(Chmod::parse("755").unwrap())),
        ),
        ("link", Box::new(|c| c.link = true)),
        ("parents", Box::new(|c| c.parents = true)),
        (
            "excludes",
            Box::new(|c| c.excludes = Excludes::compile(vec!["*.o".into()]).unwrap()),
        ),
        ("add", Box::new(|c| c.add = Some(AddOptions::default()))),
        (
            "heredoc",
            Box::new(|c| c.heredocs.push(inline("f", "x", 0o644))),
        ),
    ];
    for (what, change) in changes {
        let mut c = copy();
        change(&mut c);
        let k = copy_key(None, &c, &ctx(b"ctx"), &[]).0;
        assert_ne!(k, base, "{what} must change the key");
    }
}

#[test]
fn add_url_content_decides_not_only_the_url() {
    let with = |d: &[u8]| {
        let mut c = copy();
        c.sources = vec![CopySource::Url("https://example.com/a.tgz".into())];
        c.add = Some(AddOptions::default());
        copy_key(None, &c, &ctx(b"ctx"), &[ContentDigest::of(d)]).0
    };
    assert_eq!(with(b"v1"), with(b"v1"));
    assert_ne!(with(b"v1"), with(b"v2"));
}

fn workdir(path: &str, user: &str) -> WorkdirOp {
    WorkdirOp {
        path: path.into(),
        user: user.into(),
    }
}

#[test]
fn from_and_workdir_keys() {
    let a = from_key(&Digest::of(b"m1")).0;
    assert_eq!(a, from_key(&Digest::of(b"m1")).0);
    assert_ne!(a, from_key(&Digest::of(b"m2")).0);
    let w = workdir_key(Some(&a), &workdir("/app", "")).0;
    assert_ne!(w, workdir_key(Some(&a), &workdir("/app", "nobody")).0);
    assert_ne!(w, workdir_key(Some(&a), &workdir("/srv", "")).0);
    assert_ne!(w, workdir_key(None, &workdir("/app", "")).0);
}

/// The ops whose keys were computed before the recipe was moved onto the
/// plan's ops (from the mirror structs it had then, field for field).
mod pinned {
    use super::*;

    pub(super) fn every_mount() -> RunOp {
        let mut r = run();
        r.env.push("HTTP_PROXY=http://declared:1".into());
        r.user = "1000:1000".into();
        r.network = NetworkMode::None;
        r.security = Security::Insecure;
        r.files.push(inline("EOF", "#!/bin/sh\necho hi\n", 0o755));
        r.stdin = Some("y\n".into());
        r.mounts = vec![
            RunMount::Bind {
                target: "/ctx".into(),
                source: "/src".into(),
                from: FilesFrom::Context,
                rw: true,
            },
            RunMount::Bind {
                target: "/st".into(),
                source: "/".into(),
                from: FilesFrom::Stage(StageId(0)),
                rw: false,
            },
            RunMount::Cache {
                id: "go".into(),
                target: "/root/.cache".into(),
                ro: true,
                sharing: Sharing::Locked,
                from: Some(FilesFrom::Image(image(b"image"))),
                source: "/seed".into(),
                mode: 0o700,
                uid: 1,
                gid: 2,
            },
            RunMount::Cache {
                id: "/var/cache".into(),
                target: "/var/cache".into(),
                ro: false,
                sharing: Sharing::Private,
                from: None,
                source: "/".into(),
                mode: 0o755,
                uid: 0,
                gid: 0,
            },
            RunMount::Tmpfs {
                target: "/tmp".into(),
                size: Some(1 << 20),
            },
            RunMount::Tmpfs {
                target: "/t2".into(),
                size: None,
            },
            RunMount::Secret {
                id: "tok".into(),
                target: Some("/run/secrets/tok".into()),
                env: Some("TOK".into()),
                required: true,
                mode: 0o400,
                uid: 0,
                gid: 0,
            },
            RunMount::Ssh {
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

    pub(super) fn copy_every_flag() -> CopyOp {
        let mut c = copy();
        c.sources = vec![
            CopySource::Path("a".into()),
            CopySource::Path("b/*.rs".into()),
        ];
        c.heredocs.push(inline("f", "x\n", 0o644));
        c.chown = Some(Chown::parse("1:2"));
        c.chmod = Some(Chmod::parse("0640").unwrap());
        c.link = true;
        c.parents = true;
        c.excludes = Excludes::compile(vec!["*.o".into()]).unwrap();
        c
    }

    pub(super) fn add_every_flag() -> CopyOp {
        let mut c = copy();
        c.from = FilesFrom::Stage(StageId(0));
        c.sources = vec![CopySource::Url("https://example.com/a.tgz".into())];
        c.dest = "/opt/a.tgz".into();
        c.dest_is_dir_hint = false;
        c.add = Some(AddOptions {
            checksum: Some(Digest::of(b"a")),
            keep_git_dir: true,
            unpack: Some(false),
        });
        c
    }
}

#[test]
fn pinned_keys_do_not_move() {
    let parent = StepKey::of(b"parent");
    let stage = SourceKey::Stage(StepKey::of(b"stage"));
    let url = [ContentDigest::of(b"a")];
    let keys = [
        ("run", rkey(Some(&parent), &pinned::every_mount()).0),
        (
            "copy",
            copy_key(Some(&parent), &pinned::copy_every_flag(), &ctx(b"ctx"), &[]).0,
        ),
        (
            "add",
            copy_key(Some(&parent), &pinned::add_every_flag(), &stage, &url).0,
        ),
        (
            "workdir",
            workdir_key(Some(&parent), &workdir("/app", "nobody")).0,
        ),
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
