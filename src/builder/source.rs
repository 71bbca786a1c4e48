//! Where COPY reads from: the build context (after `.dockerignore`) or the
//! filesystem of an earlier stage or image, both seen through [`MergedFs`], and
//! the selection of source paths (literal, or Go-`filepath.Match` wildcards
//! per path component).
//!
//! Invariants: a path is resolved inside its root (symlinks followed within
//! it, `..` stops at the root), so a source can never name a host file
//! outside the context or the snapshots; an ignored path is invisible.

use std::path::PathBuf;

use crate::dockerfile::ignore::IgnorePatterns;
use crate::dockerfile::pattern::{self, PatternError};

use crate::layer::{MergedFs, MergedFsError, Node};

/// Why a source could not be read or selected.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// Reading the tree.
    #[error(transparent)]
    Read(#[from] MergedFsError),
    /// A wildcard Go's `filepath.Match` rejects.
    #[error("source {source_path:?}")]
    Pattern {
        /// The source as written.
        source_path: String,
        /// The matcher's error.
        #[source]
        source: PatternError,
    },
}

/// A tree COPY can read.
#[derive(Debug, Clone)]
pub struct Source {
    fs: MergedFs,
    ignore: Option<IgnorePatterns>,
    keep_owner: bool,
}

/// Cleans a source path lexically into components relative to the root:
/// `.`/empty parts dropped, `..` stops at the root.
pub fn clean(path: &str) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out
}

impl Source {
    /// The build context at `root`; files read from it become root-owned.
    pub fn context(root: PathBuf, ignore: Option<IgnorePatterns>) -> Self {
        Self {
            fs: MergedFs::new(vec![root]),
            ignore: ignore.filter(|i| !i.is_empty()),
            keep_owner: false,
        }
    }

    /// A stage's or image's filesystem; files keep their owners.
    pub fn image(fs: MergedFs) -> Self {
        Self {
            fs,
            ignore: None,
            keep_owner: true,
        }
    }

    /// True when copies keep the source's uid/gid (not for the context).
    pub fn keeps_owner(&self) -> bool {
        self.keep_owner
    }

    fn visible(&self, node: &Node) -> bool {
        let rel = node.path.trim_start_matches('/');
        match &self.ignore {
            None => true,
            _ if rel.is_empty() => true,
            Some(ig) => {
                !ig.is_excluded(rel) || (node.meta.is_dir() && ig.dir_may_have_exceptions(rel))
            }
        }
    }

    /// The merged tree it reads (one dir for the context).
    pub fn rootfs(&self) -> &MergedFs {
        &self.fs
    }

    /// The node at `path`, following symlinks (the last one when
    /// `follow_last`); `None` when absent or ignored.
    pub fn lookup(&self, path: &str, follow_last: bool) -> Result<Option<Node>, SourceError> {
        Ok(self
            .fs
            .resolve(path, follow_last)?
            .filter(|n| self.visible(n)))
    }

    /// The visible entries of directory `dir` (a canonical path), sorted by
    /// name, symlinks not followed.
    pub fn children(&self, dir: &str) -> Result<Vec<Node>, SourceError> {
        // The listing already says where each entry is and what it is: no
        // lookup from the root per entry (that costs an lstat per path
        // component per layer, and a COPY of a deep tree over several
        // layers spent most of its time there).
        let mut out = Vec::new();
        for entry in self.fs.children(dir)? {
            let node = Node {
                path: format!("{}/{}", dir.trim_end_matches('/'), entry.name),
                host: entry.host,
                meta: entry.meta,
            };
            if self.visible(&node) {
                out.push(node);
            }
        }
        Ok(out)
    }

    /// The nodes a COPY source selects: one for a literal path that exists,
    /// every match of a wildcard pattern (each component matched against the
    /// directory's entries), sorted. Symlinks among them are followed; each
    /// comes with the path it was selected by, whose last name is the one
    /// the copy takes.
    pub fn select(&self, source: &str) -> Result<Vec<Selected>, SourceError> {
        let comps = clean(source);
        if !comps.iter().any(|c| pattern::has_meta(c)) {
            let path = format!("/{}", comps.join("/"));
            let node = self.lookup(&path, true)?;
            return Ok(node
                .map(|node| Selected { path, node })
                .into_iter()
                .collect());
        }
        let mut current = vec![String::from("/")];
        for comp in comps {
            let mut next = Vec::new();
            for dir in &current {
                if pattern::has_meta(comp) {
                    for child in self.children(dir)? {
                        let name = child.path.rsplit('/').next().unwrap_or("");
                        let hit =
                            pattern::matches(comp, name).map_err(|source| SourceError::Pattern {
                                source_path: source_str(&source),
                                source,
                            });
                        if hit? {
                            next.push(child.path);
                        }
                    }
                } else if let Some(n) =
                    self.lookup(&format!("{}/{comp}", dir.trim_end_matches('/')), true)?
                {
                    next.push(n.path);
                }
            }
            current = next;
        }
        let mut out = Vec::new();
        for path in current {
            if let Some(node) = self.lookup(&path, true)? {
                out.push(Selected { path, node });
            }
        }
        Ok(out)
    }
}

/// A node a COPY source selects.
#[derive(Debug, Clone)]
pub struct Selected {
    /// The path it was selected by, symlinks in its last component not
    /// followed: `/link.txt` for `COPY link.txt` or `COPY *.txt` where
    /// `link.txt -> target.txt`.
    pub path: String,
    /// What it resolves to (symlinks followed).
    pub node: Node,
}

impl Selected {
    /// The name a copy into a directory gives it.
    // COMPAT(buildkit): fsutil names the copy after the source as matched
    // (`filepath.Base(src)`), not after the link's target.
    pub fn name(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or("")
    }
}

fn source_str(e: &PatternError) -> String {
    match e {
        PatternError::BadPattern { pattern, .. } => pattern.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn tree() -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        fs::create_dir_all(r.join("src/sub")).unwrap();
        fs::create_dir_all(r.join("docs")).unwrap();
        for f in [
            "a.txt",
            "b.txt",
            "c.md",
            "src/x.rs",
            "src/sub/y.rs",
            "docs/keep",
            "docs/drop",
        ] {
            fs::write(r.join(f), f).unwrap();
        }
        std::os::unix::fs::symlink("../../etc", r.join("src/escape")).unwrap();
        t
    }

    fn names(nodes: Vec<Node>) -> Vec<String> {
        nodes.into_iter().map(|n| n.path).collect()
    }

    fn selected(s: &Source, source: &str) -> Vec<String> {
        s.select(source)
            .unwrap()
            .into_iter()
            .map(|n| n.node.path)
            .collect()
    }

    #[test]
    fn selects_literal_and_wildcard_sources() {
        let t = tree();
        let s = Source::context(t.path().into(), None);
        assert_eq!(selected(&s, "a.txt"), ["/a.txt"]);
        assert_eq!(selected(&s, "./src/../a.txt"), ["/a.txt"]);
        assert_eq!(selected(&s, "*.txt"), ["/a.txt", "/b.txt"]);
        assert_eq!(selected(&s, "src/*/*.rs"), ["/src/sub/y.rs"]);
        assert_eq!(selected(&s, "."), ["/"]);
        assert!(s.select("nope*").unwrap().is_empty());
        assert!(s.select("nope").unwrap().is_empty());
        assert!(matches!(s.select("[a"), Err(SourceError::Pattern { .. })));
        // A symlink pointing out of the context resolves inside it.
        assert!(s.select("src/escape/passwd").unwrap().is_empty());
    }

    #[test]
    fn a_selected_symlink_keeps_its_own_name() {
        let t = tree();
        std::os::unix::fs::symlink("a.txt", t.path().join("ln.txt")).unwrap();
        let s = Source::context(t.path().into(), None);
        let sel = |src: &str| -> Vec<(String, String)> {
            s.select(src)
                .unwrap()
                .into_iter()
                .map(|n| (n.name().to_string(), n.node.path))
                .collect()
        };
        let ln = [("ln.txt".to_string(), "/a.txt".to_string())];
        assert_eq!(sel("ln.txt"), ln);
        assert_eq!(sel("./src/../ln.txt"), ln);
        assert_eq!(sel("l*"), ln);
    }

    #[test]
    fn dockerignore_hides_paths_but_keeps_exceptions() {
        let t = tree();
        let ig = IgnorePatterns::parse("*.md\ndocs\n!docs/keep\n").unwrap();
        let s = Source::context(t.path().into(), Some(ig));
        assert!(s.select("c.md").unwrap().is_empty());
        let docs = s.lookup("docs", true).unwrap().unwrap();
        assert_eq!(names(s.children(&docs.path).unwrap()), ["/docs/keep"]);
        let root: Vec<String> = names(s.children("/").unwrap());
        assert_eq!(root, ["/a.txt", "/b.txt", "/docs", "/src"]);
    }
}
