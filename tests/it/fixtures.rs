//! Test fixtures: the busybox base image, built from the host's static
//! busybox (Debian's busybox-static) so tests need no registry and no tool
//! beyond `/bin/busybox`. Also compiled into `examples/make-busybox-image.rs`
//! (`scripts/make-busybox-image OUT.tar`).
//!
//! Invariant: deterministic: the same `/bin/busybox` gives the same digests
//! (sorted entries, mtime 0, root-owned, no user names, fixed gzip header).

#![allow(dead_code)]

use std::io::Write;
use std::path::Path;
use std::process::Command;

use kiln::oci::{
    media_type, Descriptor, DiffId, Digest, History, ImageConfig, Manifest, NamedImage, Platform,
    RootFs, Store,
};

/// Where the static busybox is.
pub const BUSYBOX: &str = "/bin/busybox";

const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
user:x:1000:1000:user:/home/user:/bin/sh\n\
nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";
const GROUP: &str = "root:x:0:\nuser:x:1000:\nnogroup:x:65534:\n";

enum Node {
    Dir(u32, u64),
    File(u32, Vec<u8>),
    Link(String),
}

/// The root filesystem of the image, sorted by path.
fn rootfs() -> std::collections::BTreeMap<String, Node> {
    let bb = std::fs::read(BUSYBOX).expect("reading /bin/busybox (apt-get install busybox-static)");
    rootfs_with(bb)
}

/// The root filesystem around the busybox binary `bb`; its applets are the
/// host busybox's (the same Debian version for every architecture).
fn rootfs_with(bb: Vec<u8>) -> std::collections::BTreeMap<String, Node> {
    let mut fs = std::collections::BTreeMap::new();
    for d in [
        "bin", "etc", "home", "root", "sbin", "tmp", "usr", "usr/bin", "usr/sbin",
    ] {
        fs.insert(d.to_string(), Node::Dir(0o755, 0));
    }
    fs.insert("root".into(), Node::Dir(0o700, 0));
    fs.insert("tmp".into(), Node::Dir(0o1777, 0));
    fs.insert("home/user".into(), Node::Dir(0o755, 1000));
    fs.insert("bin/busybox".into(), Node::File(0o755, bb));
    fs.insert("etc/passwd".into(), Node::File(0o644, PASSWD.into()));
    fs.insert("etc/group".into(), Node::File(0o644, GROUP.into()));
    let out = Command::new(BUSYBOX)
        .arg("--list-full")
        .output()
        .expect("running busybox --list-full");
    assert!(out.status.success(), "busybox --list-full failed");
    for applet in String::from_utf8(out.stdout).unwrap().lines() {
        let applet = applet.trim();
        if !applet.is_empty() && !fs.contains_key(applet) {
            fs.insert(applet.to_string(), Node::Link("/bin/busybox".into()));
        }
    }
    fs
}

/// The layer: (gzip bytes, diff_id).
fn layer() -> (Vec<u8>, DiffId) {
    layer_of(rootfs())
}

fn layer_of(fs: std::collections::BTreeMap<String, Node>) -> (Vec<u8>, DiffId) {
    let mut tar = tar::Builder::new(Vec::new());
    for (path, node) in fs {
        let mut h = tar::Header::new_ustar();
        h.set_mtime(0);
        // A ustar header's numeric fields start as NULs, which readers refuse.
        h.set_uid(0);
        h.set_gid(0);
        match node {
            Node::Dir(mode, owner) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(mode);
                h.set_uid(owner);
                h.set_gid(owner);
                h.set_size(0);
                tar.append_data(&mut h, format!("{path}/"), std::io::empty())
                    .unwrap();
            }
            Node::File(mode, bytes) => {
                h.set_mode(mode);
                h.set_size(bytes.len() as u64);
                tar.append_data(&mut h, &path, &bytes[..]).unwrap();
            }
            Node::Link(target) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_mode(0o777);
                h.set_size(0);
                tar.append_link(&mut h, &path, &target).unwrap();
            }
        }
    }
    let raw = tar.into_inner().unwrap();
    let diff_id = DiffId::of(&raw);
    let mut gz = flate2::GzBuilder::new()
        .mtime(0)
        .operating_system(255)
        .write(Vec::new(), flate2::Compression::default());
    gz.write_all(&raw).unwrap();
    (gz.finish().unwrap(), diff_id)
}

/// Builds the busybox image into `store`, tags it `busybox:latest` and
/// returns its manifest descriptor.
pub fn busybox_image(store: &Store) -> Descriptor {
    let desc = image_of(store, layer(), &Platform::host());
    store.tag("busybox:latest", &desc).unwrap();
    desc
}

/// Stores the busybox image of `layer` for `platform`; returns its manifest.
fn image_of(store: &Store, (gz, diff_id): (Vec<u8>, DiffId), platform: &Platform) -> Descriptor {
    let (digest, size) = store.put_blob(&gz).unwrap();
    assert_eq!(digest, Digest::of(&gz));
    let mut config = ImageConfig {
        created: Some("1970-01-01T00:00:00Z".into()),
        architecture: platform.architecture.clone(),
        os: platform.os.clone(),
        variant: platform.variant.clone(),
        rootfs: RootFs {
            diff_ids: vec![diff_id],
            ..Default::default()
        },
        history: vec![History {
            created: Some("1970-01-01T00:00:00Z".into()),
            created_by: Some("kiln fixture: busybox-static".into()),
            ..Default::default()
        }],
        ..Default::default()
    };
    config.config.env =
        vec!["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into()];
    config.config.cmd = Some(vec!["sh".into()]);
    let config = store.put_json(media_type::OCI_CONFIG, &config).unwrap();
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(media_type::OCI_MANIFEST.into()),
        config,
        layers: vec![Descriptor::new(media_type::OCI_LAYER_GZIP, digest, size)],
        annotations: Default::default(),
    };
    let desc = store.put_json(media_type::OCI_MANIFEST, &manifest).unwrap();
    kiln::oci::validate(store, &desc).expect("busybox fixture fails validate");
    desc
}

/// Where the arm64 `busybox-static` .deb is cached:
/// `$KILN_ARM64_BUSYBOX_DEB`, else the one `.deb` under
/// `target/test-fixtures/` (scripts/test downloads it there with
/// `apt-get download busybox-static:arm64`).
pub fn arm64_busybox_deb() -> std::path::PathBuf {
    if let Some(p) = std::env::var_os("KILN_ARM64_BUSYBOX_DEB") {
        return p.into();
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-fixtures");
    let found = std::fs::read_dir(&dir).ok().and_then(|d| {
        d.filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| p.to_string_lossy().ends_with("_arm64.deb"))
    });
    found.unwrap_or_else(|| {
        panic!(
            "no arm64 busybox-static .deb in {} (run scripts/test, or: dpkg --add-architecture arm64 && apt-get update && cd {} && apt-get download busybox-static:arm64)",
            dir.display(),
            dir.display()
        )
    })
}

/// Tags `busybox:latest` as an index of two busybox images: the host's
/// (linux/amd64 on this machine) and linux/arm64, the latter from Debian's
/// arm64 `busybox-static` unpacked with `dpkg -x`. Returns the index.
pub fn busybox_index(store: &Store) -> Descriptor {
    let host = Platform::host();
    let arm64 = Platform {
        architecture: "arm64".into(),
        os: "linux".into(),
        variant: None,
        os_version: None,
    };
    assert_ne!(
        host.architecture, "arm64",
        "the multi-platform fixture expects a non-arm64 host"
    );
    let unpacked = tempfile::tempdir().unwrap();
    let status = Command::new("dpkg")
        .arg("-x")
        .arg(arm64_busybox_deb())
        .arg(unpacked.path())
        .status()
        .expect("running dpkg -x");
    assert!(
        status.success(),
        "dpkg -x of the arm64 busybox-static failed"
    );
    let bb = std::fs::read(unpacked.path().join("bin/busybox")).unwrap();
    assert_eq!(&bb[18..20], &[0xb7, 0x00], "not an aarch64 ELF");
    let mut manifests = Vec::new();
    for (layer, platform) in [(layer(), host), (layer_of(rootfs_with(bb)), arm64)] {
        let mut d = image_of(store, layer, &platform);
        d.platform = Some(platform);
        manifests.push(d);
    }
    let index = kiln::oci::Index {
        schema_version: 2,
        media_type: Some(media_type::OCI_INDEX.into()),
        manifests,
        annotations: Default::default(),
    };
    let desc = store.put_json(media_type::OCI_INDEX, &index).unwrap();
    kiln::oci::validate(store, &desc).expect("busybox index fails validate");
    store.tag("busybox:latest", &desc).unwrap();
    desc
}

/// Writes the busybox image as an OCI archive (named `busybox:latest`) to `out`.
pub fn write_busybox_archive(out: &Path) {
    write_archive_of(out, busybox_image);
}

/// Writes the two-platform busybox index ([`busybox_index`]) as an OCI
/// archive (named `busybox:latest`) to `out`.
pub fn write_busybox_index_archive(out: &Path) {
    write_archive_of(out, busybox_index);
}

fn write_archive_of(out: &Path, make: fn(&Store) -> Descriptor) {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let desc = make(&store);
    let file = std::fs::File::create(out).unwrap();
    let image = NamedImage {
        name: Some("busybox:latest".into()),
        descriptor: desc,
    };
    let file = kiln::oci::write_oci_archive(&store, &[image], file).unwrap();
    file.sync_all().unwrap();
}
