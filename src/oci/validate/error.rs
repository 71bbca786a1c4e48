//! `validate`'s error enum: one variant per check, naming the blob at fault.

use std::io;
use std::path::PathBuf;

use crate::oci::compression::UnsupportedMediaType;
use crate::oci::{DiffId, Digest};

/// What `validate` found wrong; each variant names the check that failed.
#[derive(Debug, thiserror::Error)]
pub enum ValidateError {
    /// A descriptor's blob is absent.
    #[error("blob {digest} is missing")]
    MissingBlob {
        /// The blob.
        digest: Digest,
    },
    /// Reading a blob failed.
    #[error("reading blob {digest}")]
    ReadBlob {
        /// The blob.
        digest: Digest,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A blob's bytes do not hash to its descriptor's digest.
    #[error("blob {expected} has digest {actual}")]
    DigestMismatch {
        /// The descriptor's digest.
        expected: Digest,
        /// The bytes' digest.
        actual: Digest,
    },
    /// A blob's size differs from its descriptor's.
    #[error("blob {digest} is {actual} bytes, its descriptor says {expected}")]
    SizeMismatch {
        /// The blob.
        digest: Digest,
        /// The descriptor's size.
        expected: u64,
        /// The real size.
        actual: u64,
    },
    /// A media type is not what its place requires.
    #[error("{what} {digest} has media type {media_type:?}, expected {expected}")]
    MediaType {
        /// `manifest`, `config` or `layer`.
        what: &'static str,
        /// The blob.
        digest: Digest,
        /// What it says.
        media_type: String,
        /// What would be consistent.
        expected: String,
    },
    /// A JSON blob does not parse as its kind.
    #[error("parsing {what} {digest}")]
    Parse {
        /// `manifest`, `index` or `config`.
        what: &'static str,
        /// The blob.
        digest: Digest,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// `rootfs.diff_ids` and `layers` differ in length.
    #[error("config lists {diff_ids} diff_ids for {layers} layers")]
    DiffIdCount {
        /// Layers in the manifest.
        layers: usize,
        /// diff_ids in the config.
        diff_ids: usize,
    },
    /// A layer decompresses to something other than its diff_id.
    #[error("layer {index} ({digest}) decompresses to {actual}, config says {expected}")]
    DiffId {
        /// Position in `layers`.
        index: usize,
        /// The layer blob.
        digest: Digest,
        /// `rootfs.diff_ids[index]`.
        expected: DiffId,
        /// What it hashes to.
        actual: DiffId,
    },
    /// A layer's media type names no codec kiln knows.
    #[error("layer {digest}")]
    LayerMediaType {
        /// The layer blob.
        digest: Digest,
        /// The cause.
        #[source]
        source: UnsupportedMediaType,
    },
    /// Decompressing a layer failed.
    #[error("decompressing layer {digest}")]
    Decompress {
        /// The layer blob.
        digest: Digest,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// History's non-empty entries do not match the layers.
    #[error("history has {non_empty} entries that made a layer, the manifest has {layers} layers")]
    HistoryCount {
        /// Layers in the manifest.
        layers: usize,
        /// History entries without `empty_layer`.
        non_empty: usize,
    },
    /// `os` or `architecture` is empty.
    #[error("config {digest} has no {field}")]
    MissingPlatform {
        /// The config blob.
        digest: Digest,
        /// `os` or `architecture`.
        field: &'static str,
    },
    /// Reading a layout's `index.json`.
    #[error("reading layout index {path}")]
    ReadLayout {
        /// The index file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A layout's `index.json` does not parse.
    #[error("parsing layout index {path}")]
    ParseLayout {
        /// The index file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// An attestation manifest whose `vnd.docker.reference.digest` is
    /// missing or names no image manifest of its index.
    #[error("attestation manifest {digest} refers to no image manifest of its index")]
    AttestationReference {
        /// The attestation manifest.
        digest: Digest,
    },
    /// An in-toto statement layer that is not what its manifest says.
    #[error("attestation layer {digest}: {why}")]
    Statement {
        /// The layer.
        digest: Digest,
        /// What is wrong.
        why: &'static str,
    },
}
