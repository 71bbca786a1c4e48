//! Garbage collection of blobs: drops those that no named image (nor a
//! caller-given root, e.g. the step cache's layers) reaches. `store::prune`
//! runs it, with the store-wide lock held and temp files cleaned.
//!
//! Invariant: a blob reachable from `index.json` or from `extra_roots` is
//! never removed. The walk holds the index lock, so no tag lands mid-walk; a
//! build that has written blobs but not yet tagged them is protected by the
//! store lock: `kiln prune` holds it exclusive, builds hold it shared
//! (`store::StoreLock`). A caller without the lock must pass such blobs as
//! `extra_roots`.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use super::{Store, StoreError};
use crate::oci::{media_type, Digest, Index, Manifest};

/// Manifest/index blobs larger than this are not sniffed for children.
const SNIFF_LIMIT: u64 = 4 << 20;

/// What [`Store::remove_unreachable`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    /// The blobs removed.
    pub removed: Vec<Digest>,
    /// Their total size in bytes.
    pub reclaimed: u64,
}

impl Store {
    /// Removes every blob not reachable from a named image or `extra_roots`
    /// (a root that is a manifest or index keeps what it lists).
    pub fn remove_unreachable(&self, extra_roots: &[Digest]) -> Result<GcReport, StoreError> {
        let lock = self.lock_index()?;
        let index = self.read_index()?;
        let mut keep = BTreeSet::new();
        for d in &index.manifests {
            self.mark(&d.digest, Some(&d.media_type), &mut keep);
        }
        for d in extra_roots {
            self.mark(d, None, &mut keep);
        }
        let mut report = GcReport::default();
        let dir = self.blobs_dir();
        let entries = fs::read_dir(&dir).map_err(|source| prune_err(&dir, source))?;
        for entry in entries {
            let entry = entry.map_err(|source| prune_err(&dir, source))?;
            let name = entry.file_name();
            let Ok(digest) = Digest::parse(&format!("sha256:{}", name.to_string_lossy())) else {
                continue; // not a blob kiln wrote; leave it alone
            };
            if keep.contains(&digest) {
                continue;
            }
            let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
            fs::remove_file(entry.path()).map_err(|source| prune_err(&entry.path(), source))?;
            report.removed.push(digest);
            report.reclaimed += size;
        }
        drop(lock);
        Ok(report)
    }

    /// Adds `digest` and everything it references to `keep`. Unreadable or
    /// missing children are kept out of the walk, never an error: prune must
    /// still make progress on a store with a damaged image.
    fn mark(&self, digest: &Digest, media: Option<&str>, keep: &mut BTreeSet<Digest>) {
        if !keep.insert(*digest) {
            return;
        }
        let sniff = match media {
            Some(m) => is_manifest(m) || is_index(m),
            None => fs::metadata(self.blob_path(digest)).is_ok_and(|m| m.len() <= SNIFF_LIMIT),
        };
        if !sniff {
            return;
        }
        let Ok(bytes) = self.read_blob(digest) else {
            return;
        };
        if let Ok(m) = serde_json::from_slice::<Manifest>(&bytes) {
            keep.insert(m.config.digest);
            for l in &m.layers {
                keep.insert(l.digest);
            }
        } else if let Ok(i) = serde_json::from_slice::<Index>(&bytes) {
            for d in &i.manifests {
                self.mark(&d.digest, Some(&d.media_type), keep);
            }
        }
    }
}

fn is_manifest(m: &str) -> bool {
    m == media_type::OCI_MANIFEST || m == media_type::DOCKER_MANIFEST
}

fn is_index(m: &str) -> bool {
    m == media_type::OCI_INDEX || m == media_type::DOCKER_MANIFEST_LIST
}

fn prune_err(path: &Path, source: std::io::Error) -> StoreError {
    StoreError::Prune {
        path: path.to_path_buf(),
        source,
    }
}
