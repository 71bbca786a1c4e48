//! Whiteouts from a real overlayfs upper dir, and back into overlay and flat trees.

use super::*;

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
