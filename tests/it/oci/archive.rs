//! Archives and layouts written from the store and read back by skopeo,
//! umoci and `load`.

use std::path::Path;
use std::process::Command;

use kiln::oci::{
    load, validate, validate_layout, write_docker_archive, write_layout, write_oci_archive, Digest,
};

use super::{named, run, store};
use crate::fixtures::busybox_image;

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
    let (_d, fresh) = super::store();
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
    // An oci-archive written by skopeo (no docker manifest.json in it) loads too.
    let foreign_oci = d.path().join("skopeo-oci.tar");
    run(Command::new("skopeo")
        .args(["copy", "--quiet"])
        .arg(format!("oci-archive:{}", oci.display()))
        .arg(format!(
            "oci-archive:{}:busybox:latest",
            foreign_oci.display()
        )));
    load_check(&foreign_oci, &config);
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
    let (_z, fresh) = super::store();
    let loaded = load(&fresh, &skopeo_layout, None).unwrap();
    assert_eq!(loaded[0].names, ["mine/bb:v2"]);
    // The OCI archive round trip keeps the manifest digest itself.
    let (_x, fresh) = super::store();
    load(&fresh, &oci, None).unwrap();
    assert_eq!(fresh.resolve("busybox").unwrap().digest, desc.digest);
    // --tag renames the single image.
    let (_y, fresh) = super::store();
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
    let (_x, fresh) = super::store();
    let err = load(&fresh, &layout, None).unwrap_err();
    assert!(format!("{:?}", err).contains("DigestMismatch"), "{err:?}");
    assert!(!fresh.has_blob(&m.layers[0].digest));
}
