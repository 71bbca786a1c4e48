//! An OCI or docker archive that kiln wrote and that already holds the
//! image is kept on a rebuild (same inode, same mtime, the vertex CACHED);
//! anything else at the destination (another image, another type, a file
//! the user touched, replaced or truncated) is rewritten.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use super::Env;
use crate::common::run as tool;

/// (inode, mtime ns, ctime ns) of `p`.
fn sig(p: &Path) -> (u64, i64, i64) {
    let m = fs::metadata(p).unwrap();
    (
        m.ino(),
        m.mtime() * 1_000_000_000 + m.mtime_nsec(),
        m.ctime() * 1_000_000_000 + m.ctime_nsec(),
    )
}

/// Builds `ctx` with `-o SPEC`; returns whether the output was kept.
fn build(env: &Env, ctx: &Path, spec: &str) -> bool {
    let out = env.kiln(
        &[
            "build",
            "--progress",
            "plain",
            "-o",
            spec,
            ctx.to_str().unwrap(),
        ],
        None,
    );
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{spec}: {err}");
    let lines: Vec<&str> = err.lines().collect();
    let at = lines.iter().position(|l| l.contains("archive unchanged"));
    if let Some(i) = at {
        // The exporting vertex is the one shown CACHED.
        assert!(lines[i + 1].ends_with("CACHED"), "{err}");
    }
    at.is_some()
}

fn context(env: &Env, content: &str) -> std::path::PathBuf {
    env.context(
        "ctx",
        &[
            ("hello.txt", content),
            ("Dockerfile", "FROM scratch\nCOPY hello.txt /hello.txt\n"),
        ],
    )
}

fn inspect(spec: &str) -> serde_json::Value {
    serde_json::from_str(&tool(Command::new("skopeo").args(["inspect", spec]))).unwrap()
}

#[test]
fn an_unchanged_archive_is_kept_and_still_loads() {
    let env = Env::new();
    let ctx = context(&env, "hello\n");
    for (kind, tool_kind) in [("oci", "oci-archive"), ("docker", "docker-archive")] {
        let tar = env.path(&format!("{kind}.tar"));
        let spec = format!("type={kind},dest={}", tar.display());
        assert!(!build(&env, &ctx, &spec), "{kind}: first build writes");
        let first = sig(&tar);
        let bytes = fs::read(&tar).unwrap();
        assert!(build(&env, &ctx, &spec), "{kind}: the no-op keeps it");
        assert_eq!(sig(&tar), first, "{kind}: not rewritten");
        assert_eq!(fs::read(&tar).unwrap(), bytes);
        let v = inspect(&format!("{tool_kind}:{}", tar.display()));
        assert!(v["Layers"].as_array().is_some_and(|l| l.len() == 1), "{v}");
    }
}

#[test]
fn a_changed_image_rewrites_the_archive() {
    let env = Env::new();
    let ctx = context(&env, "one\n");
    let tar = env.path("img.tar");
    let spec = format!("type=oci,dest={}", tar.display());
    build(&env, &ctx, &spec);
    let first = inspect(&format!("oci-archive:{}", tar.display()));
    fs::write(ctx.join("hello.txt"), "two\n").unwrap();
    assert!(!build(&env, &ctx, &spec));
    let second = inspect(&format!("oci-archive:{}", tar.display()));
    assert_ne!(first["Digest"], second["Digest"]);
    // Back to the first content: the archive holds the second, so it is
    // written again, and then kept.
    fs::write(ctx.join("hello.txt"), "one\n").unwrap();
    assert!(!build(&env, &ctx, &spec));
    assert_eq!(
        inspect(&format!("oci-archive:{}", tar.display()))["Digest"],
        first["Digest"]
    );
    assert!(build(&env, &ctx, &spec));
}

#[test]
fn a_file_the_user_touched_replaced_or_truncated_is_rewritten() {
    let env = Env::new();
    let ctx = context(&env, "hello\n");
    let tar = env.path("img.tar");
    let spec = format!("type=oci,dest={}", tar.display());
    build(&env, &ctx, &spec);
    let bytes = fs::read(&tar).unwrap();
    let copy = env.path("copy.tar");
    fs::write(&copy, &bytes).unwrap();

    // Touched, then its mtime restored (`touch -r`): ctime still tells.
    tool(Command::new("touch").arg(&tar));
    tool(Command::new("touch").arg("-r").arg(&copy).arg(&tar));
    assert!(!build(&env, &ctx, &spec), "touched");
    assert_eq!(fs::read(&tar).unwrap(), bytes);
    assert!(build(&env, &ctx, &spec));

    // Rewritten in place with the same bytes.
    fs::write(&tar, &bytes).unwrap();
    assert!(!build(&env, &ctx, &spec), "rewritten in place");
    assert!(build(&env, &ctx, &spec));

    // Replaced by another file with the same bytes.
    fs::copy(&tar, &copy).unwrap();
    fs::rename(&copy, &tar).unwrap();
    assert!(!build(&env, &ctx, &spec), "replaced");
    assert!(build(&env, &ctx, &spec));

    // Replaced by something else entirely.
    fs::write(&tar, b"not an archive").unwrap();
    assert!(!build(&env, &ctx, &spec), "clobbered");
    assert_eq!(fs::read(&tar).unwrap(), bytes);

    // Truncated.
    let f = fs::OpenOptions::new().write(true).open(&tar).unwrap();
    f.set_len(bytes.len() as u64 / 2).unwrap();
    drop(f);
    assert!(!build(&env, &ctx, &spec), "truncated");
    assert_eq!(fs::read(&tar).unwrap(), bytes);
    inspect(&format!("oci-archive:{}", tar.display()));
}

#[test]
fn another_type_or_another_path_is_written() {
    let env = Env::new();
    let ctx = context(&env, "hello\n");
    let tar = env.path("img.tar");
    let oci = format!("type=oci,dest={}", tar.display());
    let docker = format!("type=docker,dest={}", tar.display());
    build(&env, &ctx, &oci);
    assert!(!build(&env, &ctx, &docker), "another type at the same path");
    inspect(&format!("docker-archive:{}", tar.display()));
    assert!(build(&env, &ctx, &docker));
    assert!(!build(&env, &ctx, &oci));
    assert!(build(&env, &ctx, &oci));

    // Another path: written, and both are kept afterwards.
    let other = env.path("other.tar");
    let other_spec = format!("type=oci,dest={}", other.display());
    assert!(!build(&env, &ctx, &other_spec));
    assert_eq!(fs::read(&other).unwrap(), fs::read(&tar).unwrap());
    assert!(build(&env, &ctx, &oci));
    assert!(build(&env, &ctx, &other_spec));
    // A name given with name= changes the bytes.
    assert!(!build(&env, &ctx, &format!("{oci},name=app:2")));

    // A stdout output is always written, and records nothing.
    let records = || {
        fs::read_dir(env.root().join("cache/exports"))
            .unwrap()
            .count()
    };
    let before = records();
    let out = env.kiln(
        &[
            "build",
            "-q",
            "-o",
            "type=oci,dest=-",
            ctx.to_str().unwrap(),
        ],
        None,
    );
    assert!(out.status.success());
    assert!(!out.stdout.is_empty());
    assert_eq!(records(), before);
}

#[test]
fn a_layout_dir_rewrites_only_what_changed() {
    let env = Env::new();
    let ctx = context(&env, "hello\n");
    let dir = env.path("layout");
    let spec = format!("type=oci,dest={},tar=false", dir.display());
    let files = || -> Vec<(String, (u64, i64, i64))> {
        let mut v: Vec<_> = walk(&dir)
            .into_iter()
            .map(|p| {
                let s = sig(&p);
                (p.strip_prefix(&dir).unwrap().display().to_string(), s)
            })
            .collect();
        v.sort();
        v
    };
    build(&env, &ctx, &spec);
    let first = files();
    build(&env, &ctx, &spec);
    assert_eq!(files(), first, "a no-op rewrites nothing");
    kiln::oci::validate_layout(&dir).unwrap();

    fs::write(ctx.join("hello.txt"), "changed\n").unwrap();
    build(&env, &ctx, &spec);
    let second = files();
    let index = second.iter().find(|(p, _)| p == "index.json").unwrap();
    assert_ne!(Some(index), first.iter().find(|(p, _)| p == "index.json"));
    // Blobs already there are kept; no temp file is left behind.
    for f in &first {
        if f.0.starts_with("blobs/") {
            assert!(second.contains(f), "{f:?}");
        }
    }
    assert!(
        second.iter().all(|(p, _)| !p.contains("kiln-tmp")),
        "{second:?}"
    );
    kiln::oci::validate_layout(&dir).unwrap();
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// Regression: a metadata instruction before a stage's first layer step
/// was stamped with each build's clock, so without SOURCE_DATE_EPOCH a
/// no-op rebuild made another image and the archive was always rewritten.
#[test]
fn a_leading_env_does_not_make_a_no_op_a_new_image() {
    let env = Env::new();
    let ctx = env.context(
        "ctx",
        &[
            ("hello.txt", "hello\n"),
            (
                "Dockerfile",
                "FROM scratch\nENV A=b\nLABEL l=1\nCOPY hello.txt /hello.txt\nCMD [\"x\"]\n",
            ),
        ],
    );
    let tar = env.path("img.tar");
    let spec = format!("type=oci,dest={}", tar.display());
    assert!(!build(&env, &ctx, &spec));
    let first = inspect(&format!("oci-archive:{}", tar.display()));
    assert!(build(&env, &ctx, &spec), "the same image: kept");
    let second = inspect(&format!("oci-archive:{}", tar.display()));
    assert_eq!(first["Digest"], second["Digest"]);
}
