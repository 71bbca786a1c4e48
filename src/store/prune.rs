//! `kiln prune` on the store as a whole: blobs no named image nor a
//! caller-given root reaches (`oci::Store::remove_unreachable`), then temp
//! entries left by killed processes.
//!
//! Invariant: its caller holds the store lock exclusive ([`super::StoreLock`]),
//! so no build has blobs it has not named yet nor a live `tmp/` entry; a
//! `tmp/` entry younger than a day is kept even so.

use std::fs;
use std::path::Path;
use std::time::{Duration, SystemTime};

use super::RootError;
use crate::oci::{Digest, Store};

/// Temp entries untouched this long belong to a dead process.
const TMP_GRACE: Duration = Duration::from_secs(24 * 60 * 60);

/// What [`prune`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// The blobs removed.
    pub removed: Vec<Digest>,
    /// Their total size in bytes.
    pub reclaimed: u64,
    /// Stale temp entries removed.
    pub tmp_removed: usize,
}

/// Removes every blob not reachable from a named image or `extra_roots`
/// (a root that is a manifest or index keeps what it lists), then stale
/// temp entries.
pub fn prune(store: &Store, extra_roots: &[Digest]) -> Result<PruneReport, RootError> {
    let gc = store.remove_unreachable(extra_roots)?;
    Ok(PruneReport {
        removed: gc.removed,
        reclaimed: gc.reclaimed,
        tmp_removed: clean_stale_tmp(store)?,
    })
}

/// Removes entries of `tmp/` untouched for a day (left by killed
/// processes); returns how many.
pub(super) fn clean_stale_tmp(store: &Store) -> Result<usize, RootError> {
    let dir = store.tmp_dir();
    let now = SystemTime::now();
    let mut removed = 0;
    for entry in fs::read_dir(&dir).map_err(|source| prune_err(&dir, source))? {
        let entry = entry.map_err(|source| prune_err(&dir, source))?;
        let Ok(meta) = entry.path().symlink_metadata() else {
            continue; // removed by its owner meanwhile
        };
        let age = meta
            .modified()
            .ok()
            .and_then(|m| now.duration_since(m).ok())
            .unwrap_or_default();
        if age < TMP_GRACE {
            continue;
        }
        let path = entry.path();
        let res = if meta.is_dir() {
            fs::remove_dir_all(&path)
        } else {
            fs::remove_file(&path)
        };
        match res {
            Ok(()) => removed += 1,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(prune_err(&path, source)),
        }
    }
    Ok(removed)
}

fn prune_err(path: &Path, source: std::io::Error) -> RootError {
    RootError::Prune {
        path: path.to_path_buf(),
        source,
    }
}
