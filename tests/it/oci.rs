//! The image model end to end: the store, validate and prune here; archives,
//! layouts and load in `archive`; the CLI and multi-process use in `cli`.

mod archive;
mod cli;

use std::process::Command;

pub use crate::common::run;

use kiln::oci::{
    media_type, validate, validate_layout, Descriptor, DiffId, Manifest, NamedImage, Store,
    StoreError, ValidateError,
};

use crate::fixtures::busybox_image;

pub fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = kiln::store::open(&dir.path().join("root")).unwrap();
    (dir, store)
}

pub fn named(desc: &Descriptor) -> Vec<NamedImage> {
    vec![NamedImage {
        name: Some("busybox:latest".into()),
        descriptor: desc.clone(),
    }]
}

#[test]
fn store_round_trip() {
    let (_d, store) = store();
    let desc = busybox_image(&store);
    assert_eq!(store.resolve("busybox").unwrap(), desc);
    assert_eq!(
        store.resolve("docker.io/library/busybox:latest").unwrap(),
        desc
    );
    let (m, config) = store.load_image(&desc).unwrap();
    assert_eq!(m.layers.len(), 1);
    assert_eq!(config.rootfs.diff_ids.len(), 1);
    assert_eq!(config.config.cmd.as_deref(), Some(&["sh".to_string()][..]));
    // The store is itself an OCI layout, which skopeo reads by name.
    validate_layout(store.root()).unwrap();
    let inspect = run(Command::new("skopeo")
        .arg("inspect")
        .arg(format!("oci:{}:busybox:latest", store.root().display())));
    let v: serde_json::Value = serde_json::from_str(&inspect).unwrap();
    assert_eq!(v["Digest"], desc.digest.to_string());
    // Reopening sees the same names.
    let again = Store::open(store.root()).unwrap();
    assert_eq!(again.images().unwrap()[0].name, "busybox:latest");
}

#[test]
fn leftover_tmp_files_are_ignored_then_cleaned() {
    let (_d, store) = store();
    let stale = store.tmp_dir().join("blob-killed");
    std::fs::write(&stale, b"half a blob").unwrap();
    let two_days_ago =
        filetime::FileTime::from_unix_time(filetime::FileTime::now().unix_seconds() - 2 * 86400, 0);
    filetime::set_file_mtime(&stale, two_days_ago).unwrap();
    let fresh = store.tmp_dir().join("blob-in-flight");
    std::fs::write(&fresh, b"another process").unwrap();
    // A writer dropped mid-way (as on an error path) leaves nothing behind.
    let mut w = store.begin_blob().unwrap();
    std::io::Write::write_all(&mut w, b"partial").unwrap();
    drop(w);
    let desc = busybox_image(&store);
    validate(&store, &desc).unwrap();
    let reopened = kiln::store::open(store.root()).unwrap();
    assert!(!stale.exists(), "stale tmp file was not cleaned");
    assert!(
        fresh.exists(),
        "a recent tmp file (maybe in use) was removed"
    );
    assert_eq!(reopened.resolve("busybox").unwrap(), desc);
}

#[test]
fn concurrent_tags_from_threads_all_land() {
    let (_d, store) = store();
    let desc = busybox_image(&store);
    let handles: Vec<_> = (0..16)
        .map(|i| {
            let (s, d) = (store.clone(), desc.clone());
            std::thread::spawn(move || {
                for j in 0..5 {
                    s.tag(&format!("t{i}:v{j}"), &d).unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let names: Vec<String> = store
        .images()
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(names.len(), 16 * 5 + 1, "{names:?}");
    assert!(names.contains(&"t15:v4".to_string()));
}
#[test]
fn validate_catches_a_corrupted_blob() {
    let (_d, store) = store();
    let desc = busybox_image(&store);
    let (m, _) = store.load_manifest(&desc).unwrap();
    let path = store.blob_path(&m.layers[0].digest);
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    let err = validate(&store, &desc).unwrap_err();
    assert!(
        matches!(
            err,
            ValidateError::DigestMismatch { .. } | ValidateError::Decompress { .. }
        ),
        "{err:?}"
    );
    std::fs::remove_file(&path).unwrap();
    let err = validate(&store, &desc).unwrap_err();
    assert!(matches!(err, ValidateError::MissingBlob { .. }), "{err:?}");
}

#[test]
fn validate_catches_a_wrong_diff_id() {
    let (_d, store) = store();
    let desc = busybox_image(&store);
    let (mut m, mut config) = store.load_image(&desc).unwrap();
    config.rootfs.diff_ids[0] = DiffId::of(b"not the layer");
    m.config = store.put_json(media_type::OCI_CONFIG, &config).unwrap();
    let bad = store.put_json(media_type::OCI_MANIFEST, &m).unwrap();
    let err = validate(&store, &bad).unwrap_err();
    assert!(
        matches!(err, ValidateError::DiffId { index: 0, .. }),
        "{err:?}"
    );
    // And a layer count mismatch.
    let mut m2: Manifest = m.clone();
    m2.layers.push(m2.layers[0].clone());
    let bad = store.put_json(media_type::OCI_MANIFEST, &m2).unwrap();
    let err = validate(&store, &bad).unwrap_err();
    assert!(
        matches!(
            err,
            ValidateError::DiffIdCount {
                layers: 2,
                diff_ids: 1
            }
        ),
        "{err:?}"
    );
}

#[test]
fn prune_drops_only_unreachable_blobs() {
    let (_d, store) = store();
    let desc = busybox_image(&store);
    let (orphan, _) = store.put_blob(b"nobody points here").unwrap();
    let (kept, _) = store.put_blob(b"the cache points here").unwrap();
    let report = kiln::store::prune(&store, &[kept]).unwrap();
    assert_eq!(report.removed, vec![orphan]);
    assert!(store.has_blob(&kept));
    validate(&store, &desc).unwrap();
    assert_eq!(store.untag("busybox").unwrap(), ["busybox:latest"]);
    let report = kiln::store::prune(&store, &[]).unwrap();
    assert_eq!(report.removed.len(), 4, "{report:?}");
    assert!(matches!(
        store.resolve("busybox"),
        Err(StoreError::NotFound { .. })
    ));
}
#[test]
fn validate_accepts_zstd_and_plain_layers_and_checks_history_and_platform() {
    use std::io::Read;
    let (_d, store) = store();
    let desc = busybox_image(&store);
    let (m, config) = store.load_image(&desc).unwrap();
    let mut raw = Vec::new();
    flate2::read::GzDecoder::new(store.open_blob(&m.layers[0].digest).unwrap())
        .read_to_end(&mut raw)
        .unwrap();
    let zst = zstd::encode_all(&raw[..], 3).unwrap();
    for (bytes, mt) in [
        (raw.clone(), media_type::OCI_LAYER),
        (zst, media_type::OCI_LAYER_ZSTD),
    ] {
        let (digest, size) = store.put_blob(&bytes).unwrap();
        let mut m2 = m.clone();
        m2.layers = vec![Descriptor::new(mt, digest, size)];
        let d2 = store.put_json(media_type::OCI_MANIFEST, &m2).unwrap();
        validate(&store, &d2).unwrap_or_else(|e| panic!("{mt}: {e:?}"));
        // A layer typed with the wrong codec is caught.
        m2.layers[0].media_type = media_type::OCI_LAYER_GZIP.into();
        let d3 = store.put_json(media_type::OCI_MANIFEST, &m2).unwrap();
        assert!(validate(&store, &d3).is_err(), "{mt} passed as gzip");
    }
    let with_config = |c: &kiln::oci::ImageConfig| {
        let mut m2 = m.clone();
        m2.config = store.put_json(media_type::OCI_CONFIG, c).unwrap();
        store.put_json(media_type::OCI_MANIFEST, &m2).unwrap()
    };
    let mut c = config.clone();
    c.history[0].empty_layer = true;
    let err = validate(&store, &with_config(&c)).unwrap_err();
    assert!(
        matches!(
            err,
            ValidateError::HistoryCount {
                layers: 1,
                non_empty: 0
            }
        ),
        "{err:?}"
    );
    let mut c = config.clone();
    c.os.clear();
    let err = validate(&store, &with_config(&c)).unwrap_err();
    assert!(
        matches!(err, ValidateError::MissingPlatform { field: "os", .. }),
        "{err:?}"
    );
    let mut bad = desc.clone();
    bad.media_type = media_type::DOCKER_MANIFEST.into();
    assert!(matches!(
        validate(&store, &bad),
        Err(ValidateError::MediaType { .. })
    ));
}

/// An index of several variants of the host's architecture (and others): the
/// store picks the entry a pull would, by containerd's rule, not the first of
/// the right OS and architecture. Each entry but the host's own is a manifest
/// with a different (bogus) config, so the pick shows in the config digest.
#[test]
fn load_manifest_picks_the_host_variant_from_an_index() {
    use kiln::oci::{Index, Platform};
    let (_d, store) = store();
    let image = busybox_image(&store);
    let (real, _) = store.load_manifest(&image).unwrap();
    let host = Platform::host();
    let other = |variant: &str| {
        let mut m = real.clone();
        m.config = store
            .put_json(
                media_type::OCI_CONFIG,
                &serde_json::json!({ "variant": variant }),
            )
            .unwrap();
        store.put_json(media_type::OCI_MANIFEST, &m).unwrap()
    };
    let (newer, older_arch) = match host.architecture.as_str() {
        "arm64" => ("v8.2", "arm"),
        "arm" => ("v8", "arm64"),
        _ => ("v3", "arm64"),
    };
    let entry = |mut d: Descriptor, arch: &str, variant: Option<&str>| {
        d.platform = Some(Platform {
            os: "linux".into(),
            architecture: arch.into(),
            variant: variant.map(str::to_string),
            os_version: None,
        });
        d
    };
    let index = Index {
        schema_version: 2,
        media_type: Some(media_type::OCI_INDEX.into()),
        manifests: vec![
            entry(other("newer"), &host.architecture, Some(newer)),
            entry(other("arch"), older_arch, None),
            entry(image.clone(), &host.architecture, host.variant.as_deref()),
        ],
        annotations: Default::default(),
    };
    let index = store.put_json(media_type::OCI_INDEX, &index).unwrap();
    let (m, desc) = store.load_manifest(&index).unwrap();
    assert_eq!(desc.digest, image.digest);
    assert_eq!(m.config.digest, real.config.digest);
    // Only a newer variant: no manifest for this host.
    let only_newer = Index {
        schema_version: 2,
        media_type: Some(media_type::OCI_INDEX.into()),
        manifests: vec![entry(other("newer"), &host.architecture, Some(newer))],
        annotations: Default::default(),
    };
    let only_newer = store.put_json(media_type::OCI_INDEX, &only_newer).unwrap();
    let err = store.load_manifest(&only_newer).unwrap_err();
    assert!(matches!(err, StoreError::NoPlatform { .. }), "{err:?}");
}
