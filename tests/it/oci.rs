//! The image model end to end: store, archives and layouts read back by
//! skopeo and umoci, load of all three formats, validate, prune.

use std::path::Path;
use std::process::Command;

use kiln::oci::{
    load, media_type, validate, validate_layout, write_docker_archive, write_layout,
    write_oci_archive, Descriptor, DiffId, Digest, Manifest, NamedImage, Store, StoreError,
    ValidateError,
};

use crate::fixtures::busybox_image;

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("root")).unwrap();
    (dir, store)
}

fn named(desc: &Descriptor) -> Vec<NamedImage> {
    vec![NamedImage {
        name: Some("busybox:latest".into()),
        descriptor: desc.clone(),
    }]
}

fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
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
    let reopened = Store::open(store.root()).unwrap();
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
fn oci_archive_is_read_by_skopeo_and_is_deterministic() {
    let (d, store) = store();
    let desc = busybox_image(&store);
    let tar = d.path().join("img.tar");
    write_oci_archive(&store, &named(&desc), std::fs::File::create(&tar).unwrap()).unwrap();
    let again = write_oci_archive(&store, &named(&desc), Vec::new()).unwrap();
    assert_eq!(std::fs::read(&tar).unwrap(), again, "archive bytes differ");
    let inspect = run(Command::new("skopeo")
        .arg("inspect")
        .arg(format!("oci-archive:{}", tar.display())));
    let v: serde_json::Value = serde_json::from_str(&inspect).unwrap();
    assert_eq!(v["Digest"], desc.digest.to_string());
    let dir = d.path().join("copied");
    run(Command::new("skopeo")
        .args(["copy", "--quiet"])
        .arg(format!("oci-archive:{}", tar.display()))
        .arg(format!("dir:{}", dir.display())));
    assert!(dir.join("manifest.json").is_file());
    // It also carries docker's manifest.json, which skopeo reads as a docker-archive.
    let inspect = run(Command::new("skopeo")
        .arg("inspect")
        .arg(format!("docker-archive:{}", tar.display())));
    assert!(
        inspect.contains("busybox") || inspect.contains("Layers"),
        "{inspect}"
    );
}

#[test]
fn layout_is_unpacked_by_umoci() {
    let (d, store) = store();
    let desc = busybox_image(&store);
    let layout = d.path().join("layout");
    write_layout(&store, &named(&desc), &layout).unwrap();
    validate_layout(&layout).unwrap();
    let bundle = d.path().join("bundle");
    run(Command::new("umoci")
        .args(["unpack", "--rootless", "--image"])
        .arg(format!("{}:latest", layout.display()))
        .arg(&bundle));
    let sh = bundle.join("rootfs/bin/sh");
    assert_eq!(std::fs::read_link(&sh).unwrap(), Path::new("/bin/busybox"));
    assert!(bundle.join("rootfs/bin/busybox").is_file());
}

#[test]
fn docker_archive_is_read_by_skopeo() {
    let (d, store) = store();
    let desc = busybox_image(&store);
    let tar = d.path().join("docker.tar");
    write_docker_archive(&store, &named(&desc), std::fs::File::create(&tar).unwrap()).unwrap();
    let inspect = run(Command::new("skopeo")
        .arg("inspect")
        .arg(format!("docker-archive:{}", tar.display())));
    let v: serde_json::Value = serde_json::from_str(&inspect).unwrap();
    let (_, config) = store.load_image(&desc).unwrap();
    assert_eq!(v["Layers"].as_array().unwrap().len(), 1);
    assert_eq!(v["Layers"][0], config.rootfs.diff_ids[0].to_string());
}

/// Loads `tarball` into a fresh store and checks it is the same image: same
/// name, same config digest (the image ID), valid.
fn load_check(tarball: &Path, want_config: &Digest) {
    let (_d, fresh) = store();
    let loaded = load(&fresh, tarball, None).unwrap();
    assert_eq!(loaded.len(), 1);
    assert_eq!(loaded[0].names, ["busybox:latest"]);
    let got = fresh.resolve("busybox:latest").unwrap();
    validate(&fresh, &got).unwrap();
    assert_eq!(&fresh.config_digest(&got).unwrap(), want_config);
}

#[test]
fn load_reads_all_three_formats_and_keeps_names() {
    let (d, store) = store();
    let desc = busybox_image(&store);
    let config = store.config_digest(&desc).unwrap();
    let oci = d.path().join("oci.tar");
    write_oci_archive(&store, &named(&desc), std::fs::File::create(&oci).unwrap()).unwrap();
    load_check(&oci, &config);
    let layout = d.path().join("layout");
    write_layout(&store, &named(&desc), &layout).unwrap();
    load_check(&layout, &config);
    let docker = d.path().join("docker.tar");
    write_docker_archive(
        &store,
        &named(&desc),
        std::fs::File::create(&docker).unwrap(),
    )
    .unwrap();
    load_check(&docker, &config);
    // A docker-archive written by skopeo, not by kiln.
    let foreign = d.path().join("skopeo.tar");
    run(Command::new("skopeo")
        .args(["copy", "--quiet"])
        .arg(format!("oci-archive:{}", oci.display()))
        .arg(format!(
            "docker-archive:{}:busybox:latest",
            foreign.display()
        )));
    load_check(&foreign, &config);
    // A gzip-compressed archive loads too.
    let gz = d.path().join("oci.tar.gz");
    run(Command::new("sh")
        .arg("-c")
        .arg(format!("gzip -c {} > {}", oci.display(), gz.display())));
    load_check(&gz, &config);
    // An OCI layout written by skopeo names the image by ref.name alone.
    let skopeo_layout = d.path().join("skopeo-layout");
    run(Command::new("skopeo")
        .args(["copy", "--quiet"])
        .arg(format!("oci-archive:{}", oci.display()))
        .arg(format!("oci:{}:mine/bb:v2", skopeo_layout.display())));
    let (_z, fresh) = self::store();
    let loaded = load(&fresh, &skopeo_layout, None).unwrap();
    assert_eq!(loaded[0].names, ["mine/bb:v2"]);
    // The OCI archive round trip keeps the manifest digest itself.
    let (_x, fresh) = self::store();
    load(&fresh, &oci, None).unwrap();
    assert_eq!(fresh.resolve("busybox").unwrap().digest, desc.digest);
    // --tag renames the single image.
    let (_y, fresh) = self::store();
    let loaded = load(&fresh, &docker, Some("mine/bb:1")).unwrap();
    assert_eq!(loaded[0].names, ["mine/bb:1"]);
    fresh.resolve("mine/bb:1").unwrap();
    // --tag replaces the carried name rather than adding to it.
    assert!(fresh.resolve("busybox").is_err());
}

#[test]
fn load_refuses_a_corrupted_blob() {
    let (d, store) = store();
    let desc = busybox_image(&store);
    let layout = d.path().join("layout");
    write_layout(&store, &named(&desc), &layout).unwrap();
    let (m, _) = store.load_manifest(&desc).unwrap();
    let layer = layout.join("blobs/sha256").join(m.layers[0].digest.hex());
    let mut bytes = std::fs::read(&layer).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&layer, &bytes).unwrap();
    let (_x, fresh) = self::store();
    let err = load(&fresh, &layout, None).unwrap_err();
    assert!(format!("{:?}", err).contains("DigestMismatch"), "{err:?}");
    assert!(!fresh.has_blob(&m.layers[0].digest));
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
    let report = store.prune(&[kept]).unwrap();
    assert_eq!(report.removed, vec![orphan]);
    assert!(store.has_blob(&kept));
    validate(&store, &desc).unwrap();
    assert_eq!(store.untag("busybox").unwrap(), ["busybox:latest"]);
    let report = store.prune(&[]).unwrap();
    assert_eq!(report.removed.len(), 4, "{report:?}");
    assert!(matches!(
        store.resolve("busybox"),
        Err(StoreError::NotFound { .. })
    ));
}

fn kiln(root: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_kiln"))
        .arg("--root")
        .arg(root)
        .args(args)
        .output()
        .unwrap()
}

fn stdout_ok(out: std::process::Output) -> String {
    assert!(
        out.status.success(),
        "kiln failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn cli_load_images_inspect_save_rmi_prune() {
    let d = tempfile::tempdir().unwrap();
    let archive = d.path().join("bb.tar");
    crate::fixtures::write_busybox_archive(&archive);
    let root = d.path().join("root");
    let a = archive.to_str().unwrap();
    assert_eq!(
        stdout_ok(kiln(&root, &["load", "-i", a])),
        "Loaded image: busybox:latest\n"
    );
    let store = Store::open(&root).unwrap();
    let desc = store.resolve("busybox").unwrap();
    let id = store.config_digest(&desc).unwrap();
    let table = stdout_ok(kiln(&root, &["images"]));
    let mut lines = table.lines();
    assert!(lines
        .next()
        .unwrap()
        .starts_with("REPOSITORY   TAG      IMAGE ID       CREATED"));
    let row: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(&row[..3], ["busybox", "latest", &id.hex()[..12]]);
    let json: serde_json::Value =
        serde_json::from_str(&stdout_ok(kiln(&root, &["inspect", &id.hex()[..8]]))).unwrap();
    assert_eq!(json[0]["Id"], id.to_string());
    assert_eq!(json[0]["Manifest"]["layers"].as_array().unwrap().len(), 1);
    assert_eq!(json[0]["RepoTags"][0], "busybox:latest");
    let saved = d.path().join("saved.tar");
    let s = saved.to_str().unwrap();
    stdout_ok(kiln(
        &root,
        &["save", "busybox", "-o", s, "--format", "docker"],
    ));
    run(Command::new("skopeo")
        .arg("inspect")
        .arg(format!("docker-archive:{s}")));
    let unknown = kiln(&root, &["rmi", "nope"]);
    assert_eq!(unknown.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&unknown.stderr);
    assert!(
        stderr.starts_with("error: removing image nope\ncaused by: no such image: nope"),
        "{stderr}"
    );
    assert_eq!(
        stdout_ok(kiln(&root, &["rmi", "busybox"])),
        "Untagged: busybox:latest\n"
    );
    let pruned = stdout_ok(kiln(&root, &["prune"]));
    assert_eq!(pruned.matches("Deleted: sha256:").count(), 3, "{pruned}");
    assert!(!store.has_blob(&desc.digest));
    // Loading back what was saved restores the same image ID.
    stdout_ok(kiln(&root, &["load", "-i", s, "--tag", "again"]));
    assert_eq!(
        store
            .config_digest(&store.resolve("again").unwrap())
            .unwrap(),
        id
    );
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

#[test]
fn killed_loads_leave_a_usable_store() {
    let d = tempfile::tempdir().unwrap();
    let archive = d.path().join("bb.tar");
    crate::fixtures::write_busybox_archive(&archive);
    let root = d.path().join("root");
    for i in 0..12u64 {
        let mut child = Command::new(env!("CARGO_BIN_EXE_kiln"))
            .arg("--root")
            .arg(&root)
            .args(["load", "-q", "-i"])
            .arg(&archive)
            .args(["--tag", &format!("t{i}")])
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(i * 7));
        let _ = child.kill(); // SIGKILL; it may have finished already
        child.wait().unwrap();
    }
    // Whatever survived is whole: index.json parses and every named image validates.
    let store = Store::open(&root).unwrap();
    for e in store.images().unwrap() {
        validate(&store, &e.descriptor).unwrap_or_else(|err| panic!("{}: {err:?}", e.name));
    }
    // And the store keeps working.
    stdout_ok(kiln(
        &root,
        &[
            "load",
            "-q",
            "-i",
            archive.to_str().unwrap(),
            "--tag",
            "after",
        ],
    ));
    validate(&store, &store.resolve("after").unwrap()).unwrap();
    for entry in std::fs::read_dir(store.root().join("blobs/sha256")).unwrap() {
        let path = entry.unwrap().path();
        let hex = path.file_name().unwrap().to_str().unwrap().to_string();
        assert_eq!(
            Digest::of(&std::fs::read(&path).unwrap()).hex(),
            hex,
            "torn blob"
        );
    }
}

#[test]
fn parallel_processes_share_a_fresh_store() {
    let d = tempfile::tempdir().unwrap();
    let archive = d.path().join("bb.tar");
    crate::fixtures::write_busybox_archive(&archive);
    let root = d.path().join("root");
    let children: Vec<_> = (0..6)
        .map(|i| {
            Command::new(env!("CARGO_BIN_EXE_kiln"))
                .arg("--root")
                .arg(&root)
                .args(["load", "-q", "-i"])
                .arg(&archive)
                .args(["--tag", &format!("p{i}")])
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let store = Store::open(&root).unwrap();
    let names: Vec<String> = store
        .images()
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(
        names,
        [
            "p0:latest",
            "p1:latest",
            "p2:latest",
            "p3:latest",
            "p4:latest",
            "p5:latest"
        ]
    );
}
