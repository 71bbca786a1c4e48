//! Layer packing and unpacking against real trees: determinism, round trips, overlayfs
//! whiteouts, hostile archives, and what gzip/zstd/tar make of the blobs.

mod hostile;
mod interop;
mod overlay;

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use kiln::layer::{
    pack, unpack, unpack_verified, Compression, LayerError, PackOptions, SourceKind, UnpackMode,
};
use kiln::oci::DiffId;
use nix::sys::stat::{makedev, mknod, Mode, SFlag};

const ALL: [Compression; 3] = [Compression::Gzip, Compression::Zstd, Compression::None];

fn opts(compression: Compression, epoch: Option<i64>) -> PackOptions {
    PackOptions {
        compression,
        source_date_epoch: epoch,
        level: None,
    }
}

fn pack_to_vec(src: &Path, kind: SourceKind, o: &PackOptions) -> (Vec<u8>, DiffId) {
    let mut blob = Vec::new();
    let packed = pack(src, kind, o, &mut blob).expect("pack");
    (blob, packed.diff_id)
}

fn write(path: &Path, data: &[u8], mode: u32) {
    fs::write(path, data).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// A tree with one of everything a layer must carry.
fn make_tree(root: &Path) {
    fs::create_dir_all(root.join("bin")).unwrap();
    fs::create_dir_all(root.join("etc/deep/er")).unwrap();
    fs::create_dir(root.join("tmp")).unwrap();
    fs::set_permissions(root.join("tmp"), fs::Permissions::from_mode(0o1777)).unwrap();
    write(&root.join("bin/su"), b"#!/bin/sh\necho su\n", 0o4755);
    write(&root.join("bin/wall"), b"wall", 0o2711);
    write(&root.join("etc/hosts"), b"127.0.0.1 localhost\n", 0o644);
    write(&root.join("etc/deep/er/secret"), &vec![7u8; 70_000], 0o600);
    fs::hard_link(root.join("etc/hosts"), root.join("etc/hosts.link")).unwrap();
    fs::hard_link(root.join("etc/hosts"), root.join("bin/hosts-too")).unwrap();
    symlink("../etc/hosts", root.join("bin/hosts")).unwrap();
    symlink("/nonexistent/absolute", root.join("bin/dangling")).unwrap();
    let long_name = format!("{}/{}", "n".repeat(120), "f".repeat(140));
    fs::create_dir_all(root.join(&long_name).parent().unwrap()).unwrap();
    write(&root.join(&long_name), b"long", 0o640);
    mknod(
        &root.join("tmp/fifo"),
        SFlag::S_IFIFO,
        Mode::from_bits_truncate(0o620),
        0,
    )
    .unwrap();
    mknod(
        &root.join("tmp/null"),
        SFlag::S_IFCHR,
        Mode::from_bits_truncate(0o666),
        makedev(1, 3),
    )
    .unwrap();
    std::os::unix::fs::chown(root.join("etc/hosts"), Some(1000), Some(2000)).unwrap();
    std::os::unix::fs::lchown(root.join("bin/hosts"), Some(33), Some(33)).unwrap();
    xattr::set(root.join("etc/hosts"), "user.kiln.note", b"hello\0binary").unwrap();
    xattr::set(root.join("bin"), "trusted.kiln", b"dir attr").unwrap();
    fs::set_permissions(root.join("bin/su"), fs::Permissions::from_mode(0o4755)).unwrap();
}

/// Everything observable about a tree, keyed by relative path. Hard links are recorded
/// as the first path (in sorted order) sharing the inode.
fn describe(root: &Path) -> BTreeMap<String, String> {
    let mut first_by_inode: HashMap<u64, String> = HashMap::new();
    let mut out = BTreeMap::new();
    for entry in walkdir::WalkDir::new(root).min_depth(1).sort_by_file_name() {
        let entry = entry.unwrap();
        let rel = entry
            .path()
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let m = entry.path().symlink_metadata().unwrap();
        let link = first_by_inode
            .entry(m.ino())
            .or_insert_with(|| rel.clone())
            .clone();
        let content = if m.is_file() {
            format!("{:?}", DiffId::of(&fs::read(entry.path()).unwrap()))
        } else {
            String::new()
        };
        let target = fs::read_link(entry.path()).map(|t| t.display().to_string());
        let mut attrs: Vec<String> = xattr::list(entry.path())
            .unwrap()
            .filter(|n| n != "security.selinux")
            .map(|n| {
                let v = xattr::get(entry.path(), &n).unwrap().unwrap_or_default();
                format!("{}={:?}", n.to_string_lossy(), v)
            })
            .collect();
        attrs.sort();
        out.insert(
            rel,
            format!(
                "mode={:o} uid={} gid={} mtime={} rdev={} link={link} content={content} target={:?} xattrs={attrs:?}",
                m.mode(),
                m.uid(),
                m.gid(),
                m.mtime(),
                m.rdev(),
                target.ok()
            ),
        );
    }
    out
}

fn tar_listing(blob: &[u8]) -> Vec<String> {
    let mut ar = tar::Archive::new(blob);
    ar.entries()
        .unwrap()
        .map(|e| String::from_utf8_lossy(&e.unwrap().path_bytes()).into_owned())
        .collect()
}

#[test]
fn same_tree_in_two_places_packs_to_the_same_bytes() {
    let a = tempfile::tempdir().unwrap();
    make_tree(a.path());
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let b = tempfile::tempdir().unwrap();
    make_tree(b.path());
    let epoch = Some(1_000_000_000);
    for c in ALL {
        let (blob_a, id_a) = pack_to_vec(a.path(), SourceKind::Plain, &opts(c, epoch));
        let (blob_b, id_b) = pack_to_vec(b.path(), SourceKind::Plain, &opts(c, epoch));
        assert_eq!(id_a, id_b, "{c:?}");
        assert!(blob_a == blob_b, "{c:?}: blobs differ");
    }
    // Without the epoch the trees' different mtimes must show.
    let (_, id_a) = pack_to_vec(a.path(), SourceKind::Plain, &opts(Compression::None, None));
    let (_, id_b) = pack_to_vec(b.path(), SourceKind::Plain, &opts(Compression::None, None));
    assert_ne!(id_a, id_b);
}

#[test]
fn entries_are_sorted_with_directories_first_and_no_names() {
    let a = tempfile::tempdir().unwrap();
    make_tree(a.path());
    let (blob, _) = pack_to_vec(a.path(), SourceKind::Plain, &opts(Compression::None, None));
    let names = tar_listing(&blob);
    assert_eq!(
        names[..4],
        ["bin/", "bin/dangling", "bin/hosts", "bin/hosts-too"]
    );
    let pos = |n: &str| names.iter().position(|x| x == n).unwrap();
    assert!(pos("etc/") < pos("etc/deep/") && pos("etc/deep/er/secret") < pos("etc/hosts"));
    let mut ar = tar::Archive::new(&blob[..]);
    for e in ar.entries().unwrap() {
        let e = e.unwrap();
        let h = e.header();
        assert_eq!(h.as_ustar().map(|u| &u.magic), Some(b"ustar\0"));
        assert_eq!(h.username_bytes(), Some(&b""[..]));
        assert_eq!(h.groupname_bytes(), Some(&b""[..]));
    }
    // "bin/hosts-too" comes first in walk order, so it is the file and the rest link to it.
    let mut ar = tar::Archive::new(&blob[..]);
    let links: Vec<(String, String)> = ar
        .entries()
        .unwrap()
        .filter_map(|e| {
            let e = e.unwrap();
            (e.header().entry_type() == tar::EntryType::Link).then(|| {
                let target = e.link_name().unwrap().unwrap().display().to_string();
                (e.path().unwrap().display().to_string(), target)
            })
        })
        .collect();
    assert_eq!(
        links,
        [
            ("etc/hosts".to_string(), "bin/hosts-too".to_string()),
            ("etc/hosts.link".to_string(), "bin/hosts-too".to_string())
        ]
    );
}

#[test]
fn pack_unpack_round_trip_keeps_everything() {
    let src = tempfile::tempdir().unwrap();
    make_tree(src.path());
    let want = describe(src.path());
    for c in ALL {
        let (blob, diff_id) = pack_to_vec(src.path(), SourceKind::Plain, &opts(c, None));
        let dest = tempfile::tempdir().unwrap();
        let got_id = unpack(&blob[..], dest.path(), UnpackMode::Snapshot).unwrap();
        assert_eq!(got_id, diff_id, "{c:?}");
        assert_eq!(describe(dest.path()), want, "{c:?}");
        // And the unpacked tree packs back to the very same blob.
        let (again, _) = pack_to_vec(dest.path(), SourceKind::Plain, &opts(c, None));
        assert!(again == blob, "{c:?}: repacked blob differs");
    }
    let su = fs::metadata(src.path().join("bin/su")).unwrap();
    assert_eq!(
        su.mode() & 0o7777,
        0o4755,
        "the fixture itself keeps setuid"
    );
}

#[test]
fn unpack_verified_refuses_a_wrong_diff_id() {
    let src = tempfile::tempdir().unwrap();
    fs::write(src.path().join("f"), b"x").unwrap();
    let (blob, diff_id) = pack_to_vec(
        src.path(),
        SourceKind::Plain,
        &opts(Compression::Gzip, None),
    );
    let dest = tempfile::tempdir().unwrap();
    unpack_verified(&blob[..], dest.path(), UnpackMode::Apply, diff_id).unwrap();
    let wrong = DiffId::of(b"something else");
    let err = unpack_verified(&blob[..], dest.path(), UnpackMode::Apply, wrong).unwrap_err();
    assert!(matches!(err, LayerError::DiffIdMismatch { .. }), "{err}");
}

#[test]
fn plain_sources_refuse_reserved_whiteout_names() {
    let src = tempfile::tempdir().unwrap();
    fs::write(src.path().join(".wh.sneaky"), b"").unwrap();
    let err = pack(
        src.path(),
        SourceKind::Plain,
        &opts(Compression::None, None),
        std::io::sink(),
    )
    .unwrap_err();
    assert!(err.to_string().contains(".wh.sneaky"), "{err}");
}
