//! What `fsck` finds: problems (the store is damaged: exit 1), notes
//! (harmless leftovers), and the repairs it made. Each renders as one line.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

use crate::oci::Digest;

/// Why an image's blob is not usable.
#[derive(Debug)]
pub enum BlobFault {
    /// The blob is not in the store.
    Missing,
    /// Its size on disk differs from its descriptor's.
    Size {
        /// What the descriptor says.
        expected: u64,
        /// What is on disk.
        actual: u64,
    },
    /// Its bytes do not hash to its digest.
    Corrupt,
    /// It is not the JSON its media type promises.
    Unparsable(serde_json::Error),
    /// Its config lists a different number of diff_ids than the manifest has layers.
    LayerCount {
        /// Layers in the manifest.
        layers: usize,
        /// `rootfs.diff_ids` in the config.
        diff_ids: usize,
    },
    /// Its media type is not one fsck knows how to descend into.
    MediaType(String),
    /// Indexes nest deeper than fsck follows (a cycle, or a hostile index).
    TooDeep,
}

/// A defect: the store (or an image in it) is not what its invariants promise.
#[derive(Debug)]
pub enum Problem {
    /// `blobs/sha256/<hex>` does not hash to `<hex>`.
    CorruptBlob {
        /// The name it is stored under.
        digest: Digest,
        /// What its bytes hash to.
        actual: Digest,
    },
    /// A blob that could not be read at all.
    UnreadableBlob {
        /// The blob.
        digest: Digest,
        /// The cause.
        source: io::Error,
    },
    /// `index.json` cannot be read or parsed: no image can be checked.
    Index(crate::oci::StoreError),
    /// A named image reaches a blob that is missing, the wrong size, corrupt
    /// or unparsable.
    BrokenImage {
        /// The image's name (or its digest when unnamed).
        image: String,
        /// `manifest`, `index`, `config` or `layer`.
        role: &'static str,
        /// The blob.
        digest: Digest,
        /// What is wrong with it.
        fault: BlobFault,
    },
    /// An entry of `snapshots/` that cannot be a complete snapshot.
    BrokenSnapshot {
        /// The entry.
        path: PathBuf,
        /// Why.
        reason: &'static str,
    },
    /// A step cache record that is not valid JSON.
    BadCacheRecord {
        /// The record.
        path: PathBuf,
        /// The parse error.
        source: serde_json::Error,
    },
}

impl Problem {
    /// Whether `--repair` removes what this problem is about.
    pub fn repairable(&self) -> bool {
        matches!(
            self,
            Problem::CorruptBlob { .. }
                | Problem::BrokenSnapshot { .. }
                | Problem::BadCacheRecord { .. }
        )
    }
}

impl fmt::Display for BlobFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BlobFault::Missing => write!(f, "is missing"),
            BlobFault::Size { expected, actual } => {
                write!(f, "is {actual} bytes, its descriptor says {expected}")
            }
            BlobFault::Corrupt => write!(f, "is corrupt"),
            BlobFault::Unparsable(e) => write!(f, "does not parse: {e}"),
            BlobFault::LayerCount { layers, diff_ids } => write!(
                f,
                "lists {diff_ids} diff_ids for the manifest's {layers} layers"
            ),
            BlobFault::MediaType(m) => write!(f, "has unknown media type {m:?}"),
            BlobFault::TooDeep => write!(f, "nests indexes too deeply"),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::CorruptBlob { digest, actual } => {
                write!(f, "blob {digest} is corrupt: its bytes hash to {actual}")
            }
            Problem::UnreadableBlob { digest, source } => {
                write!(f, "blob {digest} cannot be read: {source}")
            }
            Problem::Index(e) => {
                write!(f, "{e}")?;
                let mut cause = std::error::Error::source(e);
                while let Some(c) = cause {
                    write!(f, ": {c}")?;
                    cause = c.source();
                }
                Ok(())
            }
            Problem::BrokenImage {
                image,
                role,
                digest,
                fault,
            } => write!(f, "image {image}: {role} {digest} {fault}"),
            Problem::BrokenSnapshot { path, reason } => {
                write!(f, "snapshot {}: {reason}", path.display())
            }
            Problem::BadCacheRecord { path, source } => {
                write!(
                    f,
                    "cache record {} is not valid JSON: {source}",
                    path.display()
                )
            }
        }
    }
}

/// Something worth saying that does not make the store unhealthy.
#[derive(Debug)]
pub enum Note {
    /// An entry of `tmp/`: what a killed process left (a partial blob, a
    /// staging dir, a half-unpacked snapshot). Nothing reads another
    /// process's temp entries, so it only takes space.
    TmpLeftover {
        /// The entry.
        path: PathBuf,
        /// Time since it was last modified.
        age: Duration,
    },
    /// A file in `blobs/sha256/` whose name is not a digest: not kiln's, left alone.
    StrayBlobFile {
        /// The file.
        path: PathBuf,
    },
    /// An entry of `snapshots/` not named by a diff_id: not a snapshot
    /// (e.g. what a newer module keeps beside them), left alone.
    UnknownSnapshotEntry {
        /// The entry.
        path: PathBuf,
    },
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Note::TmpLeftover { path, age } => write!(
                f,
                "{} is left from an interrupted process ({}s old; harmless, removed by \
                 --repair, or by prune once a day old)",
                path.display(),
                age.as_secs()
            ),
            Note::StrayBlobFile { path } => {
                write!(f, "{} is not named like a blob; left alone", path.display())
            }
            Note::UnknownSnapshotEntry { path } => write!(
                f,
                "{} is not named by a diff_id, so not a snapshot; left alone",
                path.display()
            ),
        }
    }
}

/// What `--repair` removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Repair {
    /// A corrupt blob.
    RemovedBlob(Digest),
    /// A broken snapshot entry.
    RemovedSnapshot(PathBuf),
    /// An unparsable cache record.
    RemovedCacheRecord(PathBuf),
    /// A `tmp/` leftover.
    RemovedTmp(PathBuf),
}

impl fmt::Display for Repair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Repair::RemovedBlob(d) => write!(f, "removed corrupt blob {d}"),
            Repair::RemovedSnapshot(p) => write!(f, "removed broken snapshot {}", p.display()),
            Repair::RemovedCacheRecord(p) => {
                write!(f, "removed unparsable cache record {}", p.display())
            }
            Repair::RemovedTmp(p) => write!(f, "removed {}", p.display()),
        }
    }
}
