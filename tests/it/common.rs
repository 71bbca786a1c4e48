//! Helpers shared by the integration tests.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The conformance corpus (`$KILN_CONFORMANCE_DIR`, else `../shared/conformance`).
/// Panics loudly when it is absent: a conformance test must never pass by finding nothing.
#[allow(dead_code)]
pub fn conformance_dir() -> PathBuf {
    let dir = std::env::var_os("KILN_CONFORMANCE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/conformance"));
    assert!(
        dir.join("README.md").is_file(),
        "conformance corpus not found at {} (set KILN_CONFORMANCE_DIR)",
        dir.display()
    );
    dir
}

/// Runs a tool, which must succeed; returns its stdout.
pub fn run(cmd: &mut Command) -> String {
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

/// The stdout of a kiln run that must have succeeded.
pub fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "kiln failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// What dpkg-query says is installed in `admindir`.
pub fn dpkg_query(admindir: &Path) -> BTreeSet<(String, String)> {
    let out = run(Command::new("dpkg-query")
        .arg(format!("--admindir={}", admindir.display()))
        .args(["-W", "-f", "${db:Status-Status}\t${Package}\t${Version}\n"]));
    out.lines()
        .filter_map(|l| {
            let mut f = l.split('\t');
            (f.next() == Some("installed"))
                .then(|| (f.next().unwrap().into(), f.next().unwrap().into()))
        })
        .collect()
}
