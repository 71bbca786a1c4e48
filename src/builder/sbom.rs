//! The SBOMs of one build (`--sbom=true`): the built image's layers as
//! snapshot dirs (a lazily resolved base's layers fetched and unpacked
//! first, as a step reading them would), scanned by [`crate::sbom`] and
//! wrapped as an SPDX attestation for [`crate::attest::attach`]; then, as
//! BuildKit does for `BUILDKIT_SBOM_SCAN_STAGE`, one more per other stage
//! the arg enables.
//!
//! Invariants: the document is a function of the image alone: `created` is
//! `SOURCE_DATE_EPOCH`, else the image config's `created` (never the
//! clock), the namespace is made from the image manifest's digest (and the
//! stage's name). `BUILDKIT_SBOM_SCAN_CONTEXT` is refused by name when it
//! would take effect, never ignored.

use crate::attest::options::parse_go_bool;
use crate::attest::{Attestation, PREDICATE_SPDX};
use crate::oci::{LayerBlob, Store};
use crate::plan::BuildGraph;
use crate::sbom::DocumentParams;

use super::error::BuildError;
use super::event::{Progress, Stream};
use super::image::{parse_rfc3339, BuiltImage};
use super::snapshot::ensure_snapshots;

/// BuildKit's build arg that adds the build context to the scan.
pub const SCAN_CONTEXT_ARG: &str = "BUILDKIT_SBOM_SCAN_CONTEXT";
/// BuildKit's build arg that adds other stages to the scan.
pub const SCAN_STAGE_ARG: &str = "BUILDKIT_SBOM_SCAN_STAGE";

/// BuildKit's `isEnabledForStage`: a Go boolean, or a comma-separated list
/// of stage names.
fn enabled_for(stage: &str, value: &str) -> bool {
    match parse_go_bool(value) {
        Some(b) => b,
        None => value.split(',').any(|s| s == stage),
    }
}

/// Whether `arg` is on for the stage `index` of `graph`, as BuildKit's
/// Dockerfile frontend decides: the global ARG's value (build arg applied),
/// then the stage's own ARG declarations, the last one with a value winning.
fn scan_arg(graph: &BuildGraph, index: usize, arg: &str) -> bool {
    let Some(stage) = graph.stages.get(index) else {
        return false;
    };
    let name = stage.name.as_deref().unwrap_or("");
    let mut on = false;
    if let Some(v) = graph
        .global_args
        .iter()
        .rev()
        .find(|a| a.name == arg)
        .and_then(|a| a.value.as_deref())
    {
        on = enabled_for(name, v);
    }
    for a in stage.args.iter().filter(|a| a.name == arg) {
        if let Some(v) = &a.value {
            on = enabled_for(name, v);
        }
    }
    on
}

/// Refuses, before anything is built, a scan of the build context
/// (`BUILDKIT_SBOM_SCAN_CONTEXT` on for the target): BuildKit adds the
/// context, with its `.dockerignore` applied, as an extra SBOM; kiln's
/// scanner reads filesystem trees, not a filtered context. Without `--sbom`
/// the arg does nothing, in BuildKit and here.
pub fn check_scan_args(graph: &BuildGraph) -> Result<(), BuildError> {
    if scan_arg(graph, graph.target.0, SCAN_CONTEXT_ARG) {
        return Err(BuildError::SbomScanArg {
            arg: SCAN_CONTEXT_ARG,
            what: "the build context",
        });
    }
    Ok(())
}

/// The stages besides the target that `BUILDKIT_SBOM_SCAN_STAGE` adds to
/// the scan, as (stage index, name), sorted by name as BuildKit orders its
/// extra SBOMs (`sbom-<stage>.spdx.json`). Only reached stages: BuildKit
/// never scans a stage it did not build.
pub fn scanned_stages(graph: &BuildGraph) -> Vec<(usize, String)> {
    let target = graph.target.0;
    let mut out: Vec<(usize, String)> = graph
        .stages
        .iter()
        .filter(|s| s.reached && s.id.0 != target && scan_arg(graph, s.id.0, SCAN_STAGE_ARG))
        .map(|s| (s.id.0, s.name.clone().unwrap_or_else(|| s.id.0.to_string())))
        .collect();
    out.sort_by(|a, b| a.1.cmp(&b.1));
    out
}

/// The SPDX attestations of `img`: its own filesystem first, then each of
/// `stages` (name and layers, from [`scanned_stages`]), each scanned under
/// its own progress vertex (the scan's warnings are its log).
pub fn of_image(
    store: &Store,
    img: &BuiltImage,
    stages: &[(String, Vec<LayerBlob>)],
    source_date_epoch: Option<i64>,
    progress: &Progress,
) -> Result<Vec<Attestation>, BuildError> {
    let created = source_date_epoch
        .or_else(|| img.config.created.as_deref().and_then(parse_rfc3339))
        .unwrap_or(0);
    let digest = img.manifest.digest.to_string();
    // COMPAT(buildkit): its vertex is "[linux/amd64] generating sbom using <generator image>".
    let platform = format!("{}/{}", img.config.os, img.config.architecture);
    let remote = img.remote.as_deref();
    let mut out = Vec::new();
    let targets = std::iter::once((None, &img.layers))
        .chain(stages.iter().map(|(n, l)| (Some(n.as_str()), l)));
    for (stage, layers) in targets {
        let (title, name) = match stage {
            None => (format!("[{platform}] generating sbom"), "image".to_string()),
            Some(n) => (
                format!("[{platform}] generating sbom of stage {n}"),
                format!("stage {n}"),
            ),
        };
        let v = progress.start(title, None);
        let scanned = ensure_snapshots(store, layers, remote)
            .map_err(BuildError::SbomLayers)
            .and_then(|dirs| crate::sbom::scan_layers(&dirs).map_err(BuildError::Sbom));
        let scan = match scanned {
            Ok(s) => s,
            Err(e) => {
                v.failed(e.to_string());
                return Err(e);
            }
        };
        for w in &scan.warnings {
            v.log(Stream::Stderr, format!("skipped {w}\n").as_bytes());
        }
        // The image's names are the outputs' (known only when the
        // attestations are attached); the digest identifies the image.
        let params = DocumentParams {
            name: &name,
            digest: &digest,
            created,
        };
        let found = format!("{} packages found\n", scan.packages.len());
        v.log(Stream::Stdout, found.as_bytes());
        v.done();
        out.push(Attestation {
            predicate_type: PREDICATE_SPDX.into(),
            predicate: crate::sbom::spdx_document(&scan, &params),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enabled_like_buildkit() {
        assert!(enabled_for("", "true"));
        assert!(enabled_for("x", "1"));
        assert!(!enabled_for("x", "false"));
        assert!(enabled_for("build", "x,build"));
        assert!(!enabled_for("build", "x,y"));
        assert!(!enabled_for("", "x"));
    }
}
