//! The search for language packages: one walk of the merged filesystem,
//! in name order, that hands each `site-packages`/`dist-packages` and each
//! `node_modules` dir's entries to the Python and npm readers.
//!
//! The walk never descends through a symlink (a link to `/etc` or to a dir
//! seen elsewhere is not walked again), stops at [`MAX_WALK_DEPTH`] and
//! after [`MAX_WALK_ENTRIES`] entries, each with a warning.

use super::{npm, python, Scan, MAX_WALK_DEPTH, MAX_WALK_ENTRIES};
use crate::layer::MergedFs;

/// Dirs whose contents are no package's: the kernel's and the runtime's
/// mount points, empty in an image but large in a live root.
const SKIP_TOP: [&str; 3] = ["proc", "sys", "dev"];

pub(super) fn scan(fs: &MergedFs, scan: &mut Scan) {
    let mut visited = 0usize;
    let mut todo: Vec<Vec<String>> = vec![Vec::new()];
    while let Some(dir) = todo.pop() {
        let path = format!("/{}", dir.join("/"));
        let entries = match fs.children(&path) {
            Ok(e) => e,
            Err(e) => {
                scan.warn(&path, super::error_chain(&e));
                continue;
            }
        };
        visited += entries.len();
        if visited > MAX_WALK_ENTRIES {
            scan.warn(
                &path,
                format!("more than {MAX_WALK_ENTRIES} entries: search stopped"),
            );
            return;
        }
        let parent = dir.last().map(String::as_str).unwrap_or("");
        let base = if dir.is_empty() { "" } else { path.as_str() };
        for e in &entries {
            if python::is_packages_dir(parent) {
                python::visit(fs, base, e, scan);
            } else if parent == "node_modules" {
                npm::visit(fs, base, e, scan);
            }
        }
        // Pushed in reverse so names pop in order (warnings read in order).
        for e in entries.iter().rev() {
            if !e.meta.is_dir() || (dir.is_empty() && SKIP_TOP.contains(&e.name.as_str())) {
                continue;
            }
            // A distribution's own dir holds no other distribution.
            if e.name.ends_with(".dist-info") || e.name.ends_with(".egg-info") {
                continue;
            }
            if dir.len() + 1 > MAX_WALK_DEPTH {
                scan.warn(
                    &format!("{base}/{}", e.name),
                    format!("deeper than {MAX_WALK_DEPTH} dirs: not searched"),
                );
                continue;
            }
            let mut child = dir.clone();
            child.push(e.name.clone());
            todo.push(child);
        }
    }
}
