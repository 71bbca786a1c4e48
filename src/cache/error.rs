//! The one error type of the cache module. Each variant names the step that
//! failed and the file it was working on, and keeps its cause.

use std::io;
use std::path::PathBuf;

use crate::oci::StoreError;

use super::StepKey;

/// Why a cache or context-hashing operation failed.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// Opening (creating) the store the cache lives in.
    #[error("opening the store at {path}")]
    OpenStore {
        /// The store root.
        path: PathBuf,
        /// The store's error.
        #[source]
        source: crate::store::RootError,
    },
    /// Creating a cache directory.
    #[error("creating cache directory {path}")]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Encoding a record or the stat cache as JSON.
    #[error("encoding {what} as json")]
    Encode {
        /// What was being encoded.
        what: &'static str,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// Replacing a cache file atomically.
    #[error("writing {path}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The store's atomic-write error.
        #[source]
        source: StoreError,
    },
    /// Reading a cache file.
    #[error("reading {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A cache file that is not the JSON kiln writes.
    #[error("parsing {path}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// A record filed under one key that names another.
    #[error("cache record {path} holds key {found}, not the key it is filed under")]
    KeyMismatch {
        /// The record file.
        path: PathBuf,
        /// The key inside it.
        found: StepKey,
    },
    /// Setting a record's last-used time.
    #[error("marking cache record {path} as used")]
    Touch {
        /// The record file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Listing the records directory.
    #[error("listing cache records in {path}")]
    List {
        /// The directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Removing a record while pruning.
    #[error("removing cache record {path}")]
    Remove {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// `explain` needs pre-images, which only `--debug-cache` stores.
    #[error("no pre-image stored for {key} (build with --debug-cache to record one)")]
    NoPreimage {
        /// The key without one.
        key: StepKey,
    },
    /// Reading the metadata of a context path.
    #[error("reading context path {path}")]
    StatContext {
        /// The path (absolute).
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Listing a context directory.
    #[error("listing context directory {path}")]
    ReadContextDir {
        /// The directory (absolute).
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Reading a context file's contents.
    #[error("hashing context file {path}")]
    HashContextFile {
        /// The file (absolute).
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A symlink chain that does not end.
    #[error("too many levels of symbolic links resolving context path {path}")]
    SymlinkLoop {
        /// The path as given (relative to the context).
        path: PathBuf,
    },
    /// `--cache-to …,mode=` that is neither `min` nor `max`.
    #[error("cache export mode {mode:?}: expected min or max")]
    BadMode {
        /// What was given.
        mode: String,
    },
    /// Exporting the latest build's cache when no build was logged.
    #[error("no build is logged in this store: build first, then export its cache")]
    NoBuildLogged,
    /// Reading or writing a blob of the store.
    #[error("cache blob in the store")]
    Blob(#[source] StoreError),
    /// Packing a cache mount's directory for `mode=max`.
    #[error("packing cache mount {path}")]
    PackMount {
        /// The directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: crate::layer::LayerError,
    },
    /// Restoring a cache mount's contents on import.
    #[error("unpacking cache mount blob {digest}")]
    UnpackMount {
        /// The blob.
        digest: crate::oci::Digest,
        /// The cause.
        #[source]
        source: crate::layer::LayerError,
    },
    /// An artifact that is not a kiln cache as this version writes it.
    #[error("not a kiln cache artifact: {what}")]
    BadArtifact {
        /// What is wrong.
        what: &'static str,
    },
    /// Reading or writing a file of a cache layout directory.
    #[error("cache layout file {path}")]
    Layout {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A layout blob whose bytes do not match its digest or size.
    #[error("cache layout blob {path} does not match its digest")]
    BlobMismatch {
        /// The file.
        path: PathBuf,
    },
    /// Copying a layout blob into the store (digest verified on commit).
    #[error("importing cache blob {path}")]
    ImportBlob {
        /// The file.
        path: PathBuf,
        /// The cause (a digest mismatch or an I/O error).
        #[source]
        source: StoreError,
    },
}
