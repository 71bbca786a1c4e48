use std::fs;
use std::os::unix::fs::PermissionsExt;

use super::*;
use crate::oci::{media_type, ContainerConfig, Descriptor, DiffId, ImageConfig, Manifest, RootFs};

/// A store holding one image `app:latest` with one (fake) layer.
fn store_with_image() -> (tempfile::TempDir, Store, Manifest) {
    let dir = tempfile::tempdir().unwrap();
    let store = crate::store::open(dir.path()).unwrap();
    let layer_bytes = b"not really a tar, fsck does not unpack layers";
    let (ld, ls) = store.put_blob(layer_bytes).unwrap();
    let config = ImageConfig {
        architecture: "amd64".into(),
        os: "linux".into(),
        config: ContainerConfig::default(),
        rootfs: RootFs {
            diff_ids: vec![DiffId::of(layer_bytes)],
            ..Default::default()
        },
        ..Default::default()
    };
    let c = store.put_json(media_type::OCI_CONFIG, &config).unwrap();
    let m = Manifest {
        schema_version: 2,
        media_type: Some(media_type::OCI_MANIFEST.into()),
        config: c,
        layers: vec![Descriptor::new(media_type::OCI_LAYER_GZIP, ld, ls)],
        annotations: Default::default(),
    };
    let md = store.put_json(media_type::OCI_MANIFEST, &m).unwrap();
    store.tag("app", &md).unwrap();
    (dir, store, m)
}

fn lines(report: &FsckReport) -> Vec<String> {
    report.problems.iter().map(ToString::to_string).collect()
}

#[test]
fn a_fresh_store_with_an_image_is_clean() {
    let (_dir, store, _) = store_with_image();
    fs::create_dir(Layout::of(&store).snapshots().join("a".repeat(64))).unwrap();
    fs::set_permissions(
        Layout::of(&store).snapshots().join("a".repeat(64)),
        fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let report = fsck(&store, false).unwrap();
    assert!(report.problems.is_empty(), "{:?}", lines(&report));
    assert_eq!((report.blobs, report.images, report.snapshots), (3, 1, 1));
    assert!(report.healthy());
}

#[test]
fn a_corrupt_layer_is_found_and_repair_removes_only_it() {
    let (_dir, store, m) = store_with_image();
    let layer = m.layers[0].digest;
    fs::write(
        store.blob_path(&layer),
        b"not really a tar, fsck does not unpack LAYERS",
    )
    .unwrap();
    let report = fsck(&store, false).unwrap();
    let found = lines(&report);
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(
        found[0].starts_with(&format!("blob {layer} is corrupt")),
        "{found:?}"
    );
    assert_eq!(
        found[1],
        format!("image app:latest: layer {layer} is corrupt")
    );
    assert!(!report.healthy());

    let report = fsck(&store, true).unwrap();
    assert_eq!(report.repairs, vec![Repair::RemovedBlob(layer)]);
    assert!(!store.has_blob(&layer));
    assert!(store.has_blob(&m.config.digest), "a valid blob was removed");
    // The image still lacks its layer: repair cannot make that healthy.
    assert!(!report.healthy());
    let after = lines(&fsck(&store, false).unwrap());
    assert_eq!(
        after,
        [format!("image app:latest: layer {layer} is missing")]
    );
}

#[test]
fn a_truncated_config_is_a_size_mismatch() {
    let (_dir, store, m) = store_with_image();
    let path = store.blob_path(&m.config.digest);
    let bytes = fs::read(&path).unwrap();
    fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let found = lines(&fsck(&store, false).unwrap());
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(found[1].contains(&format!(
        "config {} is {} bytes, its descriptor says {}",
        m.config.digest,
        bytes.len() / 2,
        bytes.len()
    )));
}

#[test]
fn broken_snapshots_and_records_are_problems_and_tmp_leftovers_notes() {
    let (_dir, store, _) = store_with_image();
    let snaps = Layout::of(&store).snapshots();
    fs::write(snaps.join("b".repeat(64)), b"a file, not a dir").unwrap();
    let unknown = [
        snaps.join("not-a-diff-id"),
        snaps.join(format!("{}.lock", "c".repeat(64))),
    ];
    fs::create_dir(&unknown[0]).unwrap();
    fs::write(&unknown[1], b"").unwrap();
    let half = store.tmp_dir().join("snap-half");
    fs::create_dir_all(half.join("usr/bin")).unwrap();
    let steps = Layout::of(&store).step_records().join("ab");
    fs::create_dir_all(&steps).unwrap();
    fs::write(steps.join("good"), br#"{"layer":"x"}"#).unwrap();
    fs::write(steps.join("bad"), br#"{"layer":"#).unwrap();
    let report = fsck(&store, false).unwrap();
    assert_eq!(report.problems.len(), 2, "{:?}", lines(&report));
    assert_eq!((report.snapshots, report.cache_records), (1, 2));
    let unknown_notes = |r: &FsckReport| {
        r.notes
            .iter()
            .filter_map(|n| match n {
                Note::UnknownSnapshotEntry { path } => Some(path.clone()),
                _ => None,
            })
            .collect::<BTreeSet<_>>()
    };
    assert_eq!(unknown_notes(&report), unknown.iter().cloned().collect());
    assert!(report
        .notes
        .iter()
        .any(|n| matches!(n, Note::TmpLeftover { path, .. } if *path == half)));
    assert!(!report.healthy());

    let report = fsck(&store, true).unwrap();
    assert!(report.healthy(), "{:?}", lines(&report));
    assert_eq!(report.repairs.len(), 3, "{:?}", report.repairs);
    assert!(!half.exists() && !steps.join("bad").exists());
    assert!(steps.join("good").exists());
    assert!(
        unknown.iter().all(|p| p.exists()),
        "repair removed what is not a snapshot"
    );
    let again = fsck(&store, false).unwrap();
    assert!(again.problems.is_empty(), "{:?}", lines(&again));
    assert_eq!(again.notes.len(), 2, "{:?}", again.notes);
}

#[test]
fn a_missing_manifest_is_reported_under_its_name() {
    let (_dir, store, _) = store_with_image();
    let desc = store.resolve("app").unwrap();
    fs::remove_file(store.blob_path(&desc.digest)).unwrap();
    let found = lines(&fsck(&store, false).unwrap());
    assert_eq!(
        found,
        [format!(
            "image app:latest: manifest {} is missing",
            desc.digest
        )]
    );
}
