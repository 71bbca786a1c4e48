//! Crafted archives that try to write outside the destination, or that carry what
//! unpack does not handle.

use super::*;

/// Raw archive entries, written byte for byte so hostile names survive.
enum Raw<'a> {
    File(&'a str, &'a [u8]),
    Dir(&'a str),
    Symlink(&'a str, &'a str),
    Link(&'a str, &'a str),
    Typed(&'a str, tar::EntryType),
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
            Raw::Typed(n, ty) => (n, "", *ty, b""),
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
        (vec![Raw::File(".wh...", b"")], ".wh...", "`..`"),
        (
            vec![Raw::Dir("d/"), Raw::File("d/.wh..", b"")],
            "d/.wh..",
            "`.`",
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

#[test]
fn unsupported_entry_types_are_refused_before_touching_the_tree() {
    let (_root, dest) = arena();
    fs::write(dest.join("x"), b"lower").unwrap();
    let blob = raw_tar(&[Raw::Typed("x", tar::EntryType::new(b'V'))]);
    let err = unpack(&blob[..], &dest, UnpackMode::Apply).unwrap_err();
    assert_eq!(
        err.to_string(),
        "layer entry \"x\": tar entry type 'V' is not supported"
    );
    assert_eq!(fs::read(dest.join("x")).unwrap(), b"lower");
}
