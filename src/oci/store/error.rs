//! The store's error enum: one variant per step that can fail, each keeping
//! its cause.

use std::io;
use std::path::PathBuf;

use crate::oci::reference::ReferenceError;
use crate::oci::Digest;

/// Errors from the store; each variant names the step that failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Creating one of the store's directories or marker files.
    #[error("creating store directory {path}")]
    CreateDir {
        /// The directory or file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Writing a blob into `tmp/`.
    #[error("writing blob to {path}")]
    WriteBlob {
        /// The temp file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Moving a finished blob into `blobs/`.
    #[error("committing blob {digest}")]
    CommitBlob {
        /// The blob.
        digest: Digest,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A blob's bytes did not hash to what was expected.
    #[error("blob digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        /// What the descriptor said.
        expected: Digest,
        /// What the bytes hash to.
        actual: Digest,
    },
    /// A blob's size did not match its descriptor.
    #[error("blob {digest} size mismatch: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        /// The blob.
        digest: Digest,
        /// What the descriptor said.
        expected: u64,
        /// What was read.
        actual: u64,
    },
    /// Opening or reading a stored blob.
    #[error("reading blob {digest}")]
    ReadBlob {
        /// The blob.
        digest: Digest,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Replacing a file atomically (temp + fsync + rename).
    #[error("writing {path}")]
    WriteFile {
        /// The destination.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Taking the `index.json` lock.
    #[error("locking {path}")]
    Lock {
        /// The lock file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Reading `index.json`.
    #[error("reading {path}")]
    ReadIndex {
        /// The index file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// `index.json` is not a valid OCI index.
    #[error("parsing {path}")]
    ParseIndex {
        /// The index file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// Serializing JSON for the store.
    #[error("serializing {what}")]
    Serialize {
        /// What was being serialized.
        what: &'static str,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// A stored manifest, index or config blob is not valid JSON of its kind.
    #[error("parsing {what} {digest}")]
    ParseBlob {
        /// `manifest`, `index` or `config`.
        what: &'static str,
        /// The blob.
        digest: Digest,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// A reference that does not parse.
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    /// No image matches the reference.
    #[error("no such image: {reference}")]
    NotFound {
        /// The reference as given.
        reference: String,
    },
    /// A short ID matches several images.
    #[error("image ID prefix {reference} is ambiguous ({count} images match)")]
    Ambiguous {
        /// The prefix.
        reference: String,
        /// How many matched.
        count: usize,
    },
    /// Tagging a manifest whose blob is not in the store.
    #[error("manifest {digest} is not in the store")]
    MissingManifest {
        /// The manifest.
        digest: Digest,
    },
    /// A descriptor's media type is not one `load_image` understands.
    #[error("unsupported media type {media_type:?} for {digest}")]
    UnsupportedMediaType {
        /// The media type.
        media_type: String,
        /// The blob.
        digest: Digest,
    },
    /// An index lists no manifest for this host's platform.
    #[error("index {digest} has no manifest for platform {platform}")]
    NoPlatform {
        /// The index.
        digest: Digest,
        /// The wanted platform.
        platform: String,
    },
    /// Removing unreachable blobs or stale temp files.
    #[error("pruning {path}")]
    Prune {
        /// What was being removed.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
}
