//! `sbom DIR...`: prints the SPDX 2.3 document of an image filesystem given
//! as one root dir or as layer dirs, lowest first (warnings on stderr).
//! A way to look at what `kiln::sbom` finds before `--sbom` is wired.

use std::path::PathBuf;

fn main() {
    let dirs: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    if dirs.is_empty() {
        eprintln!("usage: sbom DIR... (one root dir, or layer dirs lowest first)");
        std::process::exit(2);
    }
    let scan = match kiln::sbom::scan_layers(&dirs) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(3);
        }
    };
    for w in &scan.warnings {
        eprintln!("warning: {w}");
    }
    let params = kiln::sbom::DocumentParams {
        name: "example",
        digest: "sha256:0000000000000000000000000000000000000000000000000000000000000000",
        created: 0,
    };
    let doc = kiln::sbom::spdx_document(&scan, &params);
    println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
}
