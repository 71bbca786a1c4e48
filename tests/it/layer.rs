//! Layer packing and unpacking against real trees: determinism, round trips, overlayfs
//! whiteouts, hostile archives, and what gzip/zstd/tar make of the blobs.

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

/// An overlay mount that unmounts when dropped.
struct Overlay {
    dir: tempfile::TempDir,
}

impl Overlay {
    fn mount(lower: &Path) -> Overlay {
        let dir = tempfile::tempdir().unwrap();
        for d in ["upper", "work", "merged"] {
            fs::create_dir(dir.path().join(d)).unwrap();
        }
        let data = format!(
            "lowerdir={},upperdir={},workdir={}",
            lower.display(),
            dir.path().join("upper").display(),
            dir.path().join("work").display()
        );
        nix::mount::mount(
            Some("overlay"),
            &dir.path().join("merged"),
            Some("overlay"),
            nix::mount::MsFlags::empty(),
            Some(data.as_str()),
        )
        .expect("mounting overlayfs (tests run as root)");
        Overlay { dir }
    }
    fn merged(&self) -> PathBuf {
        self.dir.path().join("merged")
    }
    fn upper(&self) -> PathBuf {
        self.dir.path().join("upper")
    }
}

impl Drop for Overlay {
    fn drop(&mut self) {
        let _ = nix::mount::umount(&self.merged());
    }
}

fn lower_tree(root: &Path) {
    fs::create_dir_all(root.join("d/sub")).unwrap();
    fs::write(root.join("d/old"), b"old").unwrap();
    fs::write(root.join("d/sub/older"), b"older").unwrap();
    fs::write(root.join("gone"), b"bye").unwrap();
    fs::write(root.join("keep"), b"keep").unwrap();
}

#[test]
fn overlay_whiteouts_pack_and_unpack_both_ways() {
    let lower = tempfile::tempdir().unwrap();
    lower_tree(lower.path());
    let ov = Overlay::mount(lower.path());
    fs::remove_file(ov.merged().join("gone")).unwrap();
    fs::remove_dir_all(ov.merged().join("d")).unwrap();
    fs::create_dir(ov.merged().join("d")).unwrap();
    fs::write(ov.merged().join("d/new"), b"new").unwrap();
    nix::mount::umount(&ov.merged()).unwrap();

    let (blob, diff_id) = pack_to_vec(
        &ov.upper(),
        SourceKind::OverlayUpper,
        &opts(Compression::Gzip, None),
    );
    let mut plain = Vec::new();
    std::io::Read::read_to_end(
        &mut flate2::read::MultiGzDecoder::new(&blob[..]),
        &mut plain,
    )
    .unwrap();
    assert_eq!(
        tar_listing(&plain),
        [".wh.gone", "d/", "d/.wh..wh..opq", "d/new"]
    );
    let mut ar = tar::Archive::new(&plain[..]);
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let no_overlay_attrs = e
            .pax_extensions()
            .unwrap()
            .is_none_or(|mut p| p.all(|x| !x.unwrap().key().unwrap().contains("overlay")));
        assert!(no_overlay_attrs, "overlay xattrs leaked into the layer");
    }

    // Snapshot: whiteouts become overlay's own markers, and work as a lower dir.
    let snap = tempfile::tempdir().unwrap();
    assert_eq!(
        unpack(&blob[..], snap.path(), UnpackMode::Snapshot).unwrap(),
        diff_id
    );
    let wh = fs::symlink_metadata(snap.path().join("gone")).unwrap();
    assert!(std::os::unix::fs::FileTypeExt::is_char_device(
        &wh.file_type()
    ));
    assert_eq!(wh.rdev(), 0);
    assert_eq!(
        xattr::get(snap.path().join("d"), "trusted.overlay.opaque").unwrap(),
        Some(b"y".to_vec())
    );
    let both = format!("{}:{}", snap.path().display(), lower.path().display());
    let view = tempfile::tempdir().unwrap();
    let v = view.path();
    nix::mount::mount(
        Some("overlay"),
        v,
        Some("overlay"),
        nix::mount::MsFlags::MS_RDONLY,
        Some(format!("lowerdir={both}").as_str()),
    )
    .unwrap();
    let names = |p: &Path| {
        let mut n: Vec<String> = fs::read_dir(p)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        n.sort();
        n
    };
    let (top, d) = (names(v), names(&v.join("d")));
    nix::mount::umount(v).unwrap();
    assert_eq!(top, ["d", "keep"]);
    assert_eq!(d, ["new"]);

    // Apply: onto a copy of the lower tree, whiteouts delete and opaque clears.
    let flat = tempfile::tempdir().unwrap();
    lower_tree(flat.path());
    unpack(&blob[..], flat.path(), UnpackMode::Apply).unwrap();
    assert_eq!(names(flat.path()), ["d", "keep"]);
    assert_eq!(names(&flat.path().join("d")), ["new"]);
    assert_eq!(fs::read(flat.path().join("d/new")).unwrap(), b"new");
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

/// Raw archive entries, written byte for byte so hostile names survive.
enum Raw<'a> {
    File(&'a str, &'a [u8]),
    Dir(&'a str),
    Symlink(&'a str, &'a str),
    Link(&'a str, &'a str),
}

fn raw_tar(entries: &[Raw]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_ustar();
        let (name, link, ty, data): (&str, &str, _, &[u8]) = match e {
            Raw::File(n, d) => (n, "", tar::EntryType::Regular, d),
            Raw::Dir(n) => (n, "", tar::EntryType::Directory, b""),
            Raw::Symlink(n, t) => (n, t, tar::EntryType::Symlink, b""),
            Raw::Link(n, t) => (n, t, tar::EntryType::Link, b""),
        };
        let old = h.as_old_mut();
        old.name[..name.len()].copy_from_slice(name.as_bytes());
        old.linkname[..link.len()].copy_from_slice(link.as_bytes());
        h.set_entry_type(ty);
        h.set_size(data.len() as u64);
        h.set_mode(0o755);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1);
        h.set_cksum();
        b.append(&h, data).unwrap();
    }
    b.into_inner().unwrap()
}

/// A destination with a sibling `outside` dir holding `secret`; returns (root, dest).
fn arena() -> (tempfile::TempDir, PathBuf) {
    let root = tempfile::tempdir().unwrap();
    fs::create_dir(root.path().join("dest")).unwrap();
    fs::create_dir(root.path().join("outside")).unwrap();
    fs::write(root.path().join("outside/secret"), b"secret").unwrap();
    let dest = root.path().join("dest");
    (root, dest)
}

fn assert_outside_untouched(root: &Path) {
    let names: Vec<_> = fs::read_dir(root.join("outside"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["secret"], "something was written outside dest");
    let secret = root.join("outside/secret");
    assert_eq!(fs::read(&secret).unwrap(), b"secret");
    assert_eq!(
        fs::metadata(&secret).unwrap().nlink(),
        1,
        "outside file was hard linked"
    );
    let mut top: Vec<_> = fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    top.sort();
    assert_eq!(
        top,
        ["dest", "outside"],
        "something was written next to dest"
    );
}

#[test]
fn hostile_archives_are_refused_naming_the_entry() {
    let probe = arena();
    let outside = probe.0.path().join("outside");
    let out_secret = outside.join("secret").display().to_string();
    let out_dir = outside.display().to_string();
    let cases: Vec<(Vec<Raw>, &str, &str)> = vec![
        (vec![Raw::File("../escape", b"x")], "../escape", "`..`"),
        (
            vec![Raw::File("a/../../escape", b"x")],
            "a/../../escape",
            "`..`",
        ),
        (
            vec![
                Raw::Symlink("link", &out_dir),
                Raw::File("link/pwned", b"x"),
            ],
            "link/pwned",
            "symlink",
        ),
        (
            vec![Raw::Symlink("up", ".."), Raw::File("up/pwned", b"x")],
            "up/pwned",
            "symlink",
        ),
        (
            vec![Raw::Symlink("up", ".."), Raw::Dir("up/d/")],
            "up/d/",
            "symlink",
        ),
        (vec![Raw::Link("h", "../outside/secret")], "h", "`..`"),
        (
            vec![Raw::Link("h", &out_secret)],
            "h",
            "not in the layer tree",
        ),
        (
            vec![
                Raw::Symlink("link", &out_dir),
                Raw::Link("h", "link/secret"),
            ],
            "h",
            "symlink",
        ),
        (
            vec![Raw::File("f", b"x"), Raw::File("f/g", b"x")],
            "f/g",
            "not a directory",
        ),
    ];
    for (entries, entry, reason) in cases {
        let (root, dest) = arena();
        let blob = raw_tar(&entries);
        for mode in [UnpackMode::Snapshot, UnpackMode::Apply] {
            let err = unpack(&blob[..], &dest, mode).unwrap_err();
            let msg = err.to_string();
            assert!(
                matches!(err, LayerError::UnsafeEntry { .. }),
                "{entry}: {msg}"
            );
            assert!(
                msg.contains(&format!("{entry:?}")) && msg.contains(reason),
                "{entry}: {msg}"
            );
            assert_outside_untouched(root.path());
        }
    }
}

#[test]
fn absolute_paths_and_replaced_symlinks_stay_inside() {
    let (root, dest) = arena();
    let secret = root.path().join("outside/secret").display().to_string();
    let out_dir = root.path().join("outside").display().to_string();
    let blob = raw_tar(&[
        Raw::File("/abs/file", b"inside"),
        Raw::Symlink("s", &out_dir),
        Raw::Dir("s/"),
        Raw::File("s/secret", b"mine"),
        Raw::Symlink("x", &secret),
        Raw::File("x", b"overwritten"),
        Raw::File("./dot/./f", b"dot"),
    ]);
    unpack(&blob[..], &dest, UnpackMode::Apply).unwrap();
    assert_eq!(fs::read(dest.join("abs/file")).unwrap(), b"inside");
    assert!(fs::symlink_metadata(dest.join("s")).unwrap().is_dir());
    assert_eq!(fs::read(dest.join("s/secret")).unwrap(), b"mine");
    assert!(fs::symlink_metadata(dest.join("x")).unwrap().is_file());
    assert_eq!(fs::read(dest.join("dot/f")).unwrap(), b"dot");
    assert_outside_untouched(root.path());
}

/// A tree big enough for several gzip members, with incompressible bytes.
fn noisy_tree(root: &Path, len: usize) {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let data: Vec<u8> = (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    fs::create_dir(root.join("d")).unwrap();
    fs::write(root.join("d/noise"), &data).unwrap();
    fs::write(root.join("d/small"), b"small").unwrap();
}

fn tool(cmd: &str, args: &[&str]) -> std::process::Output {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {cmd}: {e}"));
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn gzip_blobs_are_multi_member_and_read_by_gzip_and_tar() {
    let src = tempfile::tempdir().unwrap();
    noisy_tree(src.path(), 3 << 20);
    let blob_file = tempfile::NamedTempFile::new().unwrap();
    let packed = pack(
        src.path(),
        SourceKind::Plain,
        &opts(Compression::Gzip, None),
        blob_file.as_file(),
    )
    .unwrap();
    let path = blob_file.path().to_str().unwrap();
    tool("gzip", &["-t", path]);
    let listing = tool("tar", &["-tzf", path]);
    assert_eq!(
        String::from_utf8_lossy(&listing.stdout),
        "d/\nd/noise\nd/small\n"
    );
    // A single-member reader stops at the first member; the whole stream is longer.
    let blob = fs::read(path).unwrap();
    let mut first = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&blob[..]), &mut first).unwrap();
    assert_eq!(first.len(), 1 << 20);
    assert!(packed.uncompressed_size > 3 << 20);
    let zcat = tool("gzip", &["-dc", path]);
    assert_eq!(DiffId::of(&zcat.stdout), packed.diff_id);
    assert_eq!(zcat.stdout.len() as u64, packed.uncompressed_size);
}

#[test]
fn zstd_blobs_are_read_by_zstd_and_tar() {
    if Command::new("zstd").arg("--version").output().is_err() {
        eprintln!("zstd is not installed; the zstd CLI check is skipped");
        return;
    }
    let src = tempfile::tempdir().unwrap();
    noisy_tree(src.path(), 1 << 20);
    let blob_file = tempfile::NamedTempFile::new().unwrap();
    let packed = pack(
        src.path(),
        SourceKind::Plain,
        &opts(Compression::Zstd, Some(19)),
        blob_file.as_file(),
    )
    .unwrap();
    let path = blob_file.path().to_str().unwrap();
    tool("zstd", &["-t", path]);
    let plain = tool("zstd", &["-dc", path]);
    assert_eq!(DiffId::of(&plain.stdout), packed.diff_id);
    let listing = tool("tar", &["--zstd", "-tf", path]);
    assert_eq!(
        String::from_utf8_lossy(&listing.stdout),
        "d/\nd/noise\nd/small\n"
    );
}

#[test]
fn tars_made_by_gnu_tar_unpack_with_metadata() {
    let src = tempfile::tempdir().unwrap();
    make_tree(src.path());
    let want = describe(src.path());
    let blob = tempfile::NamedTempFile::new().unwrap();
    let (s, b) = (src.path().to_str().unwrap(), blob.path().to_str().unwrap());
    tool(
        "tar",
        &[
            "--xattrs",
            "--xattrs-include=*",
            "--numeric-owner",
            "-C",
            s,
            "-czf",
            b,
            ".",
        ],
    );
    let dest = tempfile::tempdir().unwrap();
    let diff_id = unpack(fs::File::open(b).unwrap(), dest.path(), UnpackMode::Apply).unwrap();
    let plain = tool("gzip", &["-dc", b]);
    assert_eq!(diff_id, DiffId::of(&plain.stdout));
    assert_eq!(describe(dest.path()), want);
}

fn vm_hwm_kib() -> u64 {
    let status = fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Packs a 200 MB tree in a child process (this same test, re-run alone) and reads the
/// child's peak resident memory, so other tests' allocations cannot blur it.
#[test]
fn a_200_mb_tree_packs_in_bounded_memory() {
    const CHILD: &str = "KILN_LAYER_MEMORY_CHILD";
    if let Some(dir) = std::env::var_os(CHILD) {
        let before = vm_hwm_kib();
        let packed = pack(
            Path::new(&dir),
            SourceKind::Plain,
            &opts(Compression::Gzip, None),
            std::io::sink(),
        )
        .unwrap();
        assert!(packed.uncompressed_size > 200_000_000);
        println!("hwm-before={before} hwm-after={}", vm_hwm_kib());
        return;
    }
    let src = tempfile::tempdir().unwrap();
    for i in 0..4 {
        // Sparse: 200 MB to read and compress without 200 MB of disk.
        let f = fs::File::create(src.path().join(format!("big{i}"))).unwrap();
        f.set_len(50_000_000).unwrap();
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "layer::a_200_mb_tree_packs_in_bounded_memory",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, src.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let field = |name: &str| -> u64 {
        let at = stdout
            .find(name)
            .unwrap_or_else(|| panic!("no {name} in {stdout}"))
            + name.len();
        stdout[at..]
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    let (before, after) = (field("hwm-before="), field("hwm-after="));
    // The gzip queue holds a few 1 MiB chunks per core; a whole layer would be 200 MB.
    assert!(
        after - before < 48 * 1024,
        "peak memory grew by {} KiB",
        after - before
    );
}
