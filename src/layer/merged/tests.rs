//! Unit tests of the merged view: overlay and tar whiteouts, opaque dirs,
//! shadowing, symlinks kept inside the root, bounded reads.

use super::*;
use std::fs;
use std::os::unix::fs::symlink;

fn whiteout_device(p: &Path) {
    nix::sys::stat::mknod(
        p,
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::from_bits_truncate(0),
        0,
    )
    .expect("mknod needs root");
}

fn names(fs: &MergedFs, dir: &str) -> Vec<String> {
    fs.children(dir)
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect()
}

fn layers() -> (tempfile::TempDir, MergedFs) {
    let t = tempfile::tempdir().unwrap();
    let (lo, mid, top) = (
        t.path().join("lo"),
        t.path().join("mid"),
        t.path().join("top"),
    );
    fs::create_dir_all(lo.join("etc")).unwrap();
    fs::write(lo.join("etc/passwd"), "root:x:0:0::/:/bin/sh\n").unwrap();
    fs::write(lo.join("etc/gone"), "x").unwrap();
    fs::create_dir_all(lo.join("opq/old")).unwrap();
    fs::write(lo.join("opq/old/f"), "x").unwrap();
    fs::write(lo.join("shadowed"), "x").unwrap();
    fs::create_dir_all(lo.join("shadow/sub")).unwrap();
    fs::create_dir_all(mid.join("etc")).unwrap();
    fs::write(mid.join("etc/hosts"), "127.0.0.1 localhost\n").unwrap();
    whiteout_device(&mid.join("etc/gone"));
    fs::create_dir_all(mid.join("opq")).unwrap();
    xattr::set(mid.join("opq"), "trusted.overlay.opaque", b"y").unwrap();
    fs::write(mid.join("opq/new"), "n").unwrap();
    fs::create_dir_all(top.join("usr/bin")).unwrap();
    symlink("usr/bin", top.join("bin")).unwrap();
    symlink("/etc/passwd", top.join("usr/bin/pw")).unwrap();
    symlink("../../../../etc/hosts", top.join("usr/bin/up")).unwrap();
    symlink("loop", top.join("loop")).unwrap();
    fs::create_dir_all(top.join("shadowed")).unwrap();
    fs::write(top.join("shadow"), "file now").unwrap();
    (t, MergedFs::new(vec![top, mid, lo]))
}

#[test]
fn merges_layers_with_whiteouts_and_opaque_dirs() {
    let (_t, fs) = layers();
    assert_eq!(names(&fs, "/etc"), ["hosts", "passwd"]);
    assert_eq!(names(&fs, "/opq"), ["new"]);
    assert!(fs.resolve("/etc/gone", false).unwrap().is_none());
    assert!(fs.resolve("/opq/old/f", false).unwrap().is_none());
    assert!(fs
        .resolve("/shadowed", false)
        .unwrap()
        .unwrap()
        .meta
        .is_dir());
    // A file in an upper layer hides a lower dir and all under it.
    assert!(fs.resolve("/shadow/sub", false).unwrap().is_none());
    assert!(fs.resolve("/shadow", true).unwrap().unwrap().meta.is_file());
    assert_eq!(
        names(&fs, "/"),
        ["bin", "etc", "loop", "opq", "shadow", "shadowed", "usr"]
    );
}

/// Every entry a listing gives is the node a lookup of its path gives (same
/// host path in the same layer, same lstat): the builder's tree walks use the
/// listing alone.
#[test]
fn listed_entries_are_what_resolve_finds() {
    fn check(fs: &MergedFs, dir: &str) -> usize {
        let mut seen = 0;
        for e in fs.children(dir).unwrap() {
            let path = format!("{}/{}", dir.trim_end_matches('/'), e.name);
            let n = fs.resolve(&path, false).unwrap().unwrap();
            assert_eq!((&n.host, n.meta.ino()), (&e.host, e.meta.ino()), "{path}");
            seen += 1;
            if e.meta.is_dir() {
                seen += check(fs, &path);
            }
        }
        seen
    }
    let (_t, fs) = layers();
    assert_eq!(check(&fs, "/"), 13);
    let (_t, fs) = layers();
    assert!(check(&fs.with_tar_whiteouts(), "/") > 0);
}

/// Tar whiteouts are read only when asked for: in a snapshot or a build
/// context a `.wh.` name is an ordinary file.
#[test]
fn tar_whiteouts_only_when_asked() {
    let t = tempfile::tempdir().unwrap();
    let (lo, top) = (t.path().join("lo"), t.path().join("top"));
    // Empty files, and dirs where the name ends in `/`.
    for (layer, paths) in [
        (&lo, &["etc/keep", "etc/gone-tar", "opq-tar/old/"]),
        (
            &top,
            &["etc/.wh.gone-tar", "opq-tar/.wh..wh..opq", "opq-tar/"],
        ),
    ] {
        for p in paths {
            if let Some(dir) = p.strip_suffix('/') {
                fs::create_dir_all(layer.join(dir)).unwrap();
            } else {
                fs::create_dir_all(layer.join(p).parent().unwrap()).unwrap();
                fs::write(layer.join(p), "").unwrap();
            }
        }
    }
    let plain = MergedFs::new(vec![top, lo]);
    let tar = plain.clone().with_tar_whiteouts();

    assert_eq!(names(&tar, "/etc"), ["keep"]);
    assert!(names(&tar, "/opq-tar").is_empty());
    assert!(tar.resolve("/etc/gone-tar", true).unwrap().is_none());
    assert!(tar.resolve("/opq-tar/old", true).unwrap().is_none());
    assert_eq!(names(&tar, "/"), ["etc", "opq-tar"]);

    assert_eq!(names(&plain, "/etc"), [".wh.gone-tar", "gone-tar", "keep"]);
    assert_eq!(names(&plain, "/opq-tar"), [".wh..wh..opq", "old"]);
    assert!(plain.resolve("/etc/gone-tar", true).unwrap().is_some());
}

#[test]
fn follows_symlinks_inside_the_root() {
    let (_t, fs) = layers();
    let pw = fs.read_file("/bin/pw").unwrap().unwrap();
    assert_eq!(pw, b"root:x:0:0::/:/bin/sh\n");
    let n = fs.resolve("/bin/pw", false).unwrap().unwrap();
    assert_eq!(n.path, "/usr/bin/pw");
    assert!(n.meta.file_type().is_symlink());
    // `..` past the root stays at the root.
    let up = fs.read_file("/usr/bin/up").unwrap().unwrap();
    assert_eq!(up, b"127.0.0.1 localhost\n");
    assert!(matches!(
        fs.resolve("/loop", true),
        Err(MergedFsError::SymlinkLoop { .. })
    ));
    assert!(matches!(
        fs.read_whole("/loop", 10),
        Err(MergedFsError::SymlinkLoop { .. })
    ));
    assert!(fs.resolve("/etc/passwd/x", true).unwrap().is_none());
}

#[test]
fn symlinks_resolve_inside_the_root_never_on_the_host() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("root");
    fs::create_dir_all(root.join("usr/lib")).unwrap();
    fs::create_dir_all(root.join("etc")).unwrap();
    fs::write(root.join("etc/hostname"), "image").unwrap();
    symlink("/etc", root.join("usr/lib/abs")).unwrap();
    symlink("../../../../../etc", root.join("usr/lib/up")).unwrap();
    let fs = MergedFs::new(vec![root]);
    let via = |p| fs.read_whole(p, 100).unwrap().unwrap();
    assert_eq!(via("/usr/lib/abs/hostname"), b"image");
    assert_eq!(via("/usr/lib/up/hostname"), b"image");
    // The host's /etc/os-release exists; the image's does not.
    assert!(fs
        .read_whole("/usr/lib/abs/os-release", 1 << 20)
        .unwrap()
        .is_none());
}

#[test]
fn reads_are_bounded() {
    let t = tempfile::tempdir().unwrap();
    fs::write(t.path().join("big"), vec![b'x'; 100]).unwrap();
    let fs = MergedFs::new(vec![t.path().to_path_buf()]);
    let (b, more) = fs.read_prefix("/big", 10).unwrap().unwrap();
    assert_eq!((b.len(), more), (10, true));
    assert!(matches!(
        fs.read_whole("/big", 99),
        Err(MergedFsError::TooLarge { limit: 99, .. })
    ));
    assert_eq!(fs.read_whole("/big", 100).unwrap().unwrap().len(), 100);
}

#[test]
fn scratch_is_empty() {
    let fs = MergedFs::default();
    assert!(fs.resolve("/etc/passwd", true).unwrap().is_none());
    assert!(fs.children("/").unwrap().is_empty());
}
