//! Helpers shared by the integration tests.

use std::path::PathBuf;

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
