//! `kiln push` and `kiln pull` end to end through the binary.

use crate::common::ok;
use std::path::Path;
use std::process::{Command, Output};

use kiln::oci::{validate, Store};

use super::server::{Auth, Registry};

fn kiln(root: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kiln"))
        .arg("--root")
        .arg(root)
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn kiln_push_then_kiln_pull() {
    let reg = Registry::start(false, Auth::None);
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let src = Store::open(&a).unwrap();
    let img = crate::fixtures::busybox_image(&src);
    let name = format!("{}/tools/busybox:1", reg.host);
    let out = ok(kiln(&a, &["push", "busybox", &name]));
    assert!(out.ends_with(&format!("Digest: {}\n", img.digest)), "{out}");
    assert!(out.contains("2 blobs uploaded"), "{out}");

    let out = ok(kiln(&b, &["pull", &name]));
    assert!(out.contains(&format!("Digest: {}", img.digest)), "{out}");
    let dst = Store::open(&b).unwrap();
    let pulled = dst.resolve(&name).unwrap();
    assert_eq!(pulled.digest, img.digest);
    validate(&dst, &pulled).unwrap();
    let images = ok(kiln(&b, &["images"]));
    assert!(
        images.contains(&format!("{}/tools/busybox", reg.host)),
        "{images}"
    );

    // A missing tag: the registry's code reaches the user, exit code 3.
    let out = kiln(&b, &["pull", &format!("{}/tools/busybox:nope", reg.host)]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("MANIFEST_UNKNOWN"), "{err}");

    // A bad reference or a platform the image lacks is a usage error.
    assert_eq!(kiln(&b, &["pull", "Bad/Name"]).status.code(), Some(2));
    let out = kiln(&b, &["pull", "--platform", "linux/s390x", &name]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("not the wanted platform linux/s390x"), "{err}");
}
