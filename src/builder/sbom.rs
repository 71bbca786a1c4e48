//! The SBOM of one build (`--sbom=true`): the built image's layers as
//! snapshot dirs (a lazily resolved base's layers fetched and unpacked
//! first, as a step reading them would), scanned by [`crate::sbom`] and
//! wrapped as an SPDX attestation for [`crate::attest::attach`].
//!
//! Invariants: the document is a function of the image alone: `created` is
//! `SOURCE_DATE_EPOCH`, else the image config's `created` (never the
//! clock), the namespace is made from the image manifest's digest. The
//! BuildKit build args that widen the scan (`BUILDKIT_SBOM_SCAN_CONTEXT`,
//! `BUILDKIT_SBOM_SCAN_STAGE`) are refused by name when they would take
//! effect, never ignored.

use crate::attest::options::parse_go_bool;
use crate::attest::{Attestation, PREDICATE_SPDX};
use crate::oci::Store;
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

/// Refuses, before anything is built, a scan of the build context or of
/// other stages: BuildKit adds them as extra SBOMs; kiln scans the image
/// only. Without `--sbom` the args do nothing, in BuildKit and here.
pub fn check_scan_args(graph: &BuildGraph) -> Result<(), BuildError> {
    let target = graph.target.0;
    if scan_arg(graph, target, SCAN_CONTEXT_ARG) {
        return Err(BuildError::SbomScanArg {
            arg: SCAN_CONTEXT_ARG,
            what: "the build context",
        });
    }
    let other = graph
        .stages
        .iter()
        .filter(|s| s.reached && s.id.0 != target)
        .any(|s| scan_arg(graph, s.id.0, SCAN_STAGE_ARG));
    if other {
        return Err(BuildError::SbomScanArg {
            arg: SCAN_STAGE_ARG,
            what: "other stages",
        });
    }
    Ok(())
}

/// The SPDX attestation of `img`'s filesystem, under a progress vertex
/// (the scan's warnings are its log).
pub fn of_image(
    store: &Store,
    img: &BuiltImage,
    source_date_epoch: Option<i64>,
    progress: &Progress,
) -> Result<Attestation, BuildError> {
    // COMPAT(buildkit): its vertex is "[linux/amd64] generating sbom using <generator image>".
    let platform = format!("{}/{}", img.config.os, img.config.architecture);
    let v = progress.start(format!("[{platform}] generating sbom"), None);
    let scanned = ensure_snapshots(store, &img.layers, img.remote.as_deref())
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
    let created = source_date_epoch
        .or_else(|| img.config.created.as_deref().and_then(parse_rfc3339))
        .unwrap_or(0);
    let digest = img.manifest.digest.to_string();
    let doc = crate::sbom::spdx_document(
        &scan,
        &DocumentParams {
            // The image's names are the outputs' (known only when the
            // attestations are attached); the digest identifies it.
            name: "image",
            digest: &digest,
            created,
        },
    );
    v.log(
        Stream::Stdout,
        format!("{} packages found\n", scan.packages.len()).as_bytes(),
    );
    v.done();
    Ok(Attestation {
        predicate_type: PREDICATE_SPDX.into(),
        predicate: doc,
    })
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
