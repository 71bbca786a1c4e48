//! The store commands through the `kiln` binary, including processes that
//! share a store and processes killed mid-load.

use crate::common::ok;
use std::path::Path;
use std::process::Command;

use kiln::oci::{validate, Digest, Store};

use super::run;

fn kiln(root: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_kiln"))
        .arg("--root")
        .arg(root)
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn cli_load_images_inspect_save_rmi_prune() {
    let d = tempfile::tempdir().unwrap();
    let archive = d.path().join("bb.tar");
    crate::fixtures::write_busybox_archive(&archive);
    let root = d.path().join("root");
    let a = archive.to_str().unwrap();
    assert_eq!(
        ok(kiln(&root, &["load", "-i", a])),
        "Loaded image: busybox:latest\n"
    );
    let store = Store::open(&root).unwrap();
    let desc = store.resolve("busybox").unwrap();
    let id = store.config_digest(&desc).unwrap();
    let table = ok(kiln(&root, &["images"]));
    let mut lines = table.lines();
    assert!(lines
        .next()
        .unwrap()
        .starts_with("REPOSITORY   TAG      IMAGE ID       CREATED"));
    let row: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(&row[..3], ["busybox", "latest", &id.hex()[..12]]);
    let json: serde_json::Value =
        serde_json::from_str(&ok(kiln(&root, &["inspect", &id.hex()[..8]]))).unwrap();
    assert_eq!(json[0]["Id"], id.to_string());
    assert_eq!(json[0]["Manifest"]["layers"].as_array().unwrap().len(), 1);
    assert_eq!(json[0]["RepoTags"][0], "busybox:latest");
    let saved = d.path().join("saved.tar");
    let s = saved.to_str().unwrap();
    ok(kiln(
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
        ok(kiln(&root, &["rmi", "busybox"])),
        "Untagged: busybox:latest\n"
    );
    let pruned = ok(kiln(&root, &["prune"]));
    assert_eq!(pruned.matches("Deleted: sha256:").count(), 3, "{pruned}");
    assert!(!store.has_blob(&desc.digest));
    // Loading back what was saved restores the same image ID.
    ok(kiln(&root, &["load", "-i", s, "--tag", "again"]));
    assert_eq!(
        store
            .config_digest(&store.resolve("again").unwrap())
            .unwrap(),
        id
    );
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
    ok(kiln(
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
