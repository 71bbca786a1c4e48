//! Unit tests of COPY staging against a context tree and a target view.

use super::*;
use crate::plan::{AddOptions, Chown, Excludes, FilesFrom, InlineFile};
use std::fs;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};

struct Fixture {
    _t: tempfile::TempDir,
    ctx: PathBuf,
    target: MergedFs,
    staging: PathBuf,
}

fn fixture() -> Fixture {
    let t = tempfile::tempdir().unwrap();
    let ctx = t.path().join("ctx");
    for d in ["dir/sub", "logs"] {
        fs::create_dir_all(ctx.join(d)).unwrap();
    }
    for f in [
        "a.txt",
        "b.txt",
        "dir/x",
        "dir/sub/y",
        "dir/skip.log",
        "logs/l",
    ] {
        fs::write(ctx.join(f), f).unwrap();
    }
    fs::set_permissions(ctx.join("a.txt"), fs::Permissions::from_mode(0o640)).unwrap();
    let img = t.path().join("img");
    fs::create_dir_all(img.join("etc")).unwrap();
    fs::create_dir_all(img.join("usr/bin")).unwrap();
    fs::create_dir_all(img.join("opt")).unwrap();
    fs::set_permissions(img.join("opt"), fs::Permissions::from_mode(0o700)).unwrap();
    std::os::unix::fs::lchown(img.join("opt"), Some(5), Some(6)).unwrap();
    symlink("usr/bin", img.join("bin")).unwrap();
    fs::write(
        img.join("etc/passwd"),
        "root:x:0:0::/:/bin/sh\napp:x:1000:1001::/:/bin/sh\n",
    )
    .unwrap();
    fs::write(img.join("etc/group"), "root:x:0:\napp:x:1001:\n").unwrap();
    let staging = t.path().join("stage");
    fs::create_dir(&staging).unwrap();
    Fixture {
        ctx,
        target: MergedFs::new(vec![img]),
        staging,
        _t: t,
    }
}

fn op(sources: &[&str], dest: &str) -> CopyOp {
    CopyOp {
        from: FilesFrom::Context,
        sources: sources
            .iter()
            .map(|s| CopySource::Path(s.to_string()))
            .collect(),
        heredocs: vec![],
        dest: dest.into(),
        chown: None,
        chmod: None,
        link: false,
        parents: false,
        excludes: Excludes::default(),
        add: None,
        dest_is_dir_hint: dest.ends_with('/'),
    }
}

fn run(f: &Fixture, op: &CopyOp) -> Result<(), CopyError> {
    let src = Source::context(f.ctx.clone(), None);
    stage_copy(op, &src, &f.target, &f.staging)
}

fn read(f: &Fixture, p: &str) -> String {
    fs::read_to_string(f.staging.join(p)).unwrap()
}

#[test]
fn file_to_file_and_into_dirs() {
    let f = fixture();
    run(&f, &op(&["a.txt"], "/dst")).unwrap();
    assert_eq!(read(&f, "dst"), "a.txt");
    let m = fs::metadata(f.staging.join("dst")).unwrap();
    assert_eq!((m.mode() & 0o7777, m.uid(), m.gid()), (0o640, 0, 0));
    run(&f, &op(&["a.txt", "b.txt"], "/d/")).unwrap();
    assert_eq!(read(&f, "d/b.txt"), "b.txt");
    assert!(matches!(
        run(&f, &op(&["a.txt", "b.txt"], "/d")),
        Err(CopyError::DestNotDir)
    ));
    // /opt is a directory in the target: the file lands inside it, and the
    // staged /opt keeps the target's mode and owner.
    run(&f, &op(&["a.txt"], "/opt")).unwrap();
    assert_eq!(read(&f, "opt/a.txt"), "a.txt");
    let m = fs::metadata(f.staging.join("opt")).unwrap();
    assert_eq!((m.mode() & 0o7777, m.uid(), m.gid()), (0o700, 5, 6));
}

#[test]
fn directory_copies_contents_and_dest_follows_target_symlinks() {
    let f = fixture();
    fs::hard_link(f.ctx.join("dir/x"), f.ctx.join("dir/x-link")).unwrap();
    run(&f, &op(&["dir"], "/out")).unwrap();
    assert_eq!(read(&f, "out/x"), "dir/x");
    assert_eq!(read(&f, "out/sub/y"), "dir/sub/y");
    assert!(!f.staging.join("out/dir").exists());
    let (a, b) = (
        fs::metadata(f.staging.join("out/x")).unwrap(),
        fs::metadata(f.staging.join("out/x-link")).unwrap(),
    );
    assert_eq!(a.ino(), b.ino(), "hard links stay linked");
    run(&f, &op(&["b.txt"], "/bin/")).unwrap();
    assert_eq!(read(&f, "usr/bin/b.txt"), "b.txt");
    assert!(fs::symlink_metadata(f.staging.join("bin")).is_err());
}

#[test]
fn chown_chmod_exclude_and_missing() {
    let f = fixture();
    let mut o = op(&["dir"], "/app/");
    o.chown = Some(Chown::parse("app"));
    o.chmod = Some(crate::plan::Chmod::parse("u+x,go=").unwrap());
    o.excludes = Excludes::compile(vec!["*.log".into()]).unwrap();
    run(&f, &o).unwrap();
    let m = fs::metadata(f.staging.join("app/x")).unwrap();
    assert_eq!((m.mode() & 0o7777, m.uid(), m.gid()), (0o700, 1000, 1001));
    assert!(!f.staging.join("app/skip.log").exists());
    // The created destination belongs to the --chown user.
    assert_eq!(fs::metadata(f.staging.join("app")).unwrap().uid(), 1000);
    assert!(matches!(
        run(&f, &op(&["nope"], "/x")),
        Err(CopyError::NotFound { .. })
    ));
    let mut ghost = op(&["a.txt"], "/x");
    ghost.chown = Some(Chown::parse("ghost"));
    assert!(matches!(run(&f, &ghost), Err(CopyError::Perms(_))));
    // A destination below a file of the target is refused, not shadowed.
    assert!(matches!(
        run(&f, &op(&["a.txt"], "/etc/passwd/x")),
        Err(CopyError::NotADirectory { .. })
    ));
    // A wildcard that matches nothing is not an error.
    run(&f, &op(&["*.none"], "/y/")).unwrap();
}

#[test]
fn heredoc_parents_and_add_without_urls() {
    let f = fixture();
    let mut o = op(&[], "/etc/motd");
    o.heredocs = vec![InlineFile {
        name: "EOF".into(),
        content: "hello\n".into(),
        mode: 0o644,
    }];
    run(&f, &o).unwrap();
    assert_eq!(read(&f, "etc/motd"), "hello\n");
    let mut p = op(&["dir/sub/y", "logs/l"], "/p/");
    p.parents = true;
    run(&f, &p).unwrap();
    assert_eq!(read(&f, "p/dir/sub/y"), "dir/sub/y");
    assert_eq!(read(&f, "p/logs/l"), "logs/l");
    let mut c = op(&["a.txt"], "/c");
    c.add = Some(AddOptions {
        checksum: Some(crate::oci::Digest::of(b"x")),
        ..Default::default()
    });
    assert!(matches!(run(&f, &c), Err(CopyError::ChecksumNotUrl)));
}

#[test]
fn only_copy_link_without_a_chown_name_skips_the_target() {
    let mut o = op(&["a"], "/a");
    assert!(reads_target(&o));
    o.link = true;
    assert!(!reads_target(&o));
    o.chown = Some(Chown::parse("1:2"));
    assert!(!reads_target(&o), "ids need no /etc/passwd");
    o.chown = Some(Chown::parse("app"));
    assert!(reads_target(&o), "a name is looked up in the target");
}

#[test]
fn a_directory_onto_a_target_symlink_fails_naming_it_unless_link() {
    let f = fixture();
    fs::create_dir_all(f.ctx.join("tree/bin")).unwrap();
    fs::write(f.ctx.join("tree/bin/t"), "t").unwrap();
    // The target has `bin -> usr/bin`: BuildKit's copier refuses to merge into it.
    let err = run(&f, &op(&["tree/"], "/")).unwrap_err();
    assert!(
        matches!(&err, CopyError::DirOntoNonDir { path, kind: "symlink" } if path == "/bin"),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "cannot copy to non-directory: /bin is a symlink in the image"
    );
    // The named destination itself is resolved through the link.
    run(&f, &op(&["tree/bin"], "/bin/")).unwrap();
    assert_eq!(read(&f, "usr/bin/t"), "t");
    // --link copies onto an empty tree: nothing to refuse.
    let mut link = op(&["tree/"], "/");
    link.link = true;
    run(&f, &link).unwrap();
    assert_eq!(read(&f, "bin/t"), "t");
    // A directory onto a file of the target, named as the destination.
    let err = run(&f, &op(&["tree/bin"], "/etc/passwd")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot copy to non-directory: /etc/passwd is a file in the image"
    );
}

#[test]
fn a_dangling_destination_symlink_is_followed_to_where_it_points() {
    let f = fixture();
    let img = f.target.layers()[0].clone();
    symlink("gone", img.join("l")).unwrap();
    symlink("../../x/y", img.join("up")).unwrap();
    symlink("l", img.join("chain")).unwrap();
    run(&f, &op(&["a.txt"], "/chain")).unwrap();
    assert_eq!(read(&f, "gone"), "a.txt");
    run(&f, &op(&["dir"], "/up")).unwrap();
    assert_eq!(read(&f, "x/y/x"), "dir/x");
    assert!(fs::symlink_metadata(f.staging.join("l")).is_err());
    symlink("loop", img.join("loop")).unwrap();
    let err = run(&f, &op(&["a.txt"], "/loop")).unwrap_err();
    assert!(matches!(err, CopyError::Target(_)), "{err}");
}
