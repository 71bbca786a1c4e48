//! `--debug-cache`'s listing of the context files a step's key read: for
//! each selected file or symlink its own content digest (type, mode, size,
//! content or target), for each directory its mode — so `kiln cache explain`
//! can name the files that changed instead of "the context digest changed".
//!
//! Invariant: only built with `--debug-cache` (it hashes each file on its
//! own, which the stat cache makes cheap but not free); it never changes a
//! key, it only describes one.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::cache::{CacheError, ContextHasher, InputListing};

type Filter<'a> = dyn Fn(&Path, bool) -> bool + Sync + 'a;

/// Adds every entry under `rel` (each a path the step selected) that
/// `filter` keeps to `out`, each name after `prefix` (empty for the build
/// context, `[context NAME] ` for a named one, so the two never mix).
pub fn list_inputs(
    hasher: &ContextHasher,
    rel: &[PathBuf],
    filter: &Filter<'_>,
    chmod: Option<u32>,
    prefix: &str,
    out: &mut InputListing,
) -> Result<(), CacheError> {
    let root = hasher.root();
    for top in rel {
        let walk = walkdir::WalkDir::new(root.join(top))
            .follow_links(false)
            .sort_by_file_name()
            .into_iter()
            .filter_entry(|e| {
                let Ok(p) = e.path().strip_prefix(root) else {
                    return false;
                };
                e.depth() == 0 || filter(p, e.file_type().is_dir())
            });
        for entry in walk {
            let entry = entry.map_err(|e| CacheError::StatContext {
                path: e.path().map_or_else(|| root.join(top), Path::to_path_buf),
                source: e.into(),
            })?;
            let Ok(p) = entry.path().strip_prefix(root) else {
                continue;
            };
            let name = p.to_string_lossy().into_owned();
            let what = if entry.file_type().is_dir() {
                let mode = entry.metadata().map(|m| m.mode() & 0o7777).unwrap_or(0);
                format!("dir {mode:o}")
            } else {
                let d = hasher.digest_paths_chmod(&[p.to_path_buf()], filter, chmod)?;
                d.to_string()
            };
            let name = if name.is_empty() { "." } else { &name };
            out.insert(format!("{prefix}{name}"), what);
        }
    }
    Ok(())
}
