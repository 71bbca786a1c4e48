//! `kiln prune --keep-storage`: drop step records least recently used first
//! until the layers the rest use fit the budget.
//!
//! Invariant: the kept records are exactly the most recently used prefix
//! that fits (strict LRU: an older record is never kept while a newer one
//! goes); the layers they name are returned, so the store's blob prune keeps
//! them as extra roots.

use std::collections::BTreeSet;

use crate::oci::Digest;

use super::record::read_record;
use super::{CacheError, StepCache, StepKey};

/// What [`StepCache::prune`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CachePruneReport {
    /// Keys whose records were removed.
    pub removed: Vec<StepKey>,
    /// Record files that could not be parsed, removed as well.
    pub unreadable_removed: usize,
    /// Layers the kept records still name: pass them to the store's prune as roots.
    pub kept_layers: Vec<Digest>,
    /// Total size of `kept_layers` (each blob counted once).
    pub kept_bytes: u64,
}

/// A record's last use with the file's full mtime precision (0 when the
/// file vanished meanwhile: it sorts as the oldest).
fn precise_mtime(path: &std::path::Path) -> i128 {
    std::fs::metadata(path)
        .ok()
        .and_then(|m| m.modified().ok())
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as i128)
}

impl StepCache {
    /// Keeps the most recently used records whose layers (each distinct blob
    /// counted once) fit in `keep_bytes`, removes the rest with their
    /// pre-images. Ties in `last_used` keep the newer `created` first.
    pub fn prune(&self, keep_bytes: u64) -> Result<CachePruneReport, CacheError> {
        let mut report = CachePruneReport::default();
        let mut recs = Vec::new();
        for path in self.record_files()? {
            match read_record(&path) {
                Ok(Some(rec)) => {
                    let used = precise_mtime(&path);
                    recs.push((rec, path, used));
                }
                Ok(None) => {}
                Err(CacheError::Parse { .. }) => {
                    self.remove(&path)?;
                    report.unreadable_removed += 1;
                }
                Err(e) => return Err(e),
            }
        }
        recs.sort_by(|(a, _, au), (b, _, bu)| {
            (bu, b.last_used, b.created, b.key).cmp(&(au, a.last_used, a.created, a.key))
        });
        let mut kept: BTreeSet<Digest> = BTreeSet::new();
        let mut full = false;
        for (rec, path, _) in recs {
            let extra: u64 = rec
                .encodings()
                .filter(|e| !kept.contains(&e.digest))
                .map(|e| e.size)
                .sum();
            full = full || report.kept_bytes.saturating_add(extra) > keep_bytes;
            if full {
                self.remove(&path)?;
                report.removed.push(rec.key);
                continue;
            }
            kept.extend(rec.encodings().map(|e| e.digest));
            report.kept_bytes += extra;
        }
        report.kept_layers = kept.into_iter().collect();
        Ok(report)
    }
}
