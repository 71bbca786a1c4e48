//! kiln's own image (`dist/Dockerfile`), built by `scripts/image` with kiln:
//! read back by skopeo, loaded into a store and run with `kiln run --rm`; and
//! its debug target, whose shell CI systems run job scripts with
//! (`tests/it/container.rs` also builds a Dockerfile in it, as a CI job would).
//! The test's kiln is dynamically linked, so the script copies its libraries
//! into the image beside it; the release image uses the static build instead.

use std::path::Path;
use std::process::Command;

use crate::build::Env;
use crate::common::{ok, run};

#[test]
fn kilns_image_is_read_by_skopeo_and_its_entrypoint_runs_kiln() {
    let env = Env::new();
    let tar = env.path("kiln.tar");
    scripts_image(&[], &tar, &[]);
    let config = run(Command::new("skopeo")
        .args(["inspect", "--config"])
        .arg(format!("oci-archive:{}", tar.display())));
    let config: serde_json::Value = serde_json::from_str(&config).unwrap();
    let config = &config["config"];
    assert_eq!(
        config["Entrypoint"],
        serde_json::json!(["/usr/local/bin/kiln"])
    );
    assert_eq!(config["User"], "root");
    assert_eq!(config["WorkingDir"], "/workspace");

    let version = env!("CARGO_PKG_VERSION");
    let tar = tar.to_str().unwrap();
    let loaded = ok(env.kiln(&["load", "-i", tar], None));
    assert!(loaded.contains(&format!("kiln:{version}")), "{loaded}");
    let image = format!("kiln:{version}");
    let out = ok(env.kiln(&["run", "--rm", &image, "--version"], None));
    assert_eq!(out, format!("kiln {version}\n"));
    // The non-root user of the user-namespace mode is in the image's passwd.
    let out = ok(env.kiln(&["run", "--rm", "-u", "kiln", &image, "--version"], None));
    assert_eq!(out, format!("kiln {version}\n"));

    // The debug target: kiln on the PATH of a busybox shell.
    let debug = env.path("kiln-debug.tar");
    scripts_image(&["--debug"], &debug, &[]);
    ok(env.kiln(&["load", "-i", debug.to_str().unwrap()], None));
    let image = format!("kiln:{version}-debug");
    let script = "kiln --version && which tail";
    let entrypoint = ["run", "--rm", "--entrypoint", "/busybox/sh"];
    let out = ok(env.kiln(&[&entrypoint[..], &[&image, "-c", script]].concat(), None));
    assert_eq!(out, format!("kiln {version}\n/busybox/tail\n"));
}

/// `scripts/image FLAGS OUT BUILD_FLAGS` with the test's kiln. Its layers are
/// left uncompressed: the test's kiln is 160 MB of debug build, and gzip is
/// not what is tested here.
pub fn scripts_image(flags: &[&str], out: &Path, build_flags: &[&str]) {
    run(
        Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/image"))
            .arg("--kiln")
            .arg(env!("CARGO_BIN_EXE_kiln"))
            .args(flags)
            .arg(out)
            .args(["--compression", "uncompressed"])
            .args(build_flags),
    );
}
