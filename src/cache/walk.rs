//! Walking the selected context paths into a tree of nodes, without reading
//! file contents: regular files whose stat matches the stat cache get their
//! digest from it, the others become hashing jobs.
//!
//! Invariants: nothing outside the context root is ever read (a source path
//! is resolved component by component, symlinks followed inside the root and
//! `..` stopping at it, as COPY resolves it); inside a directory, symlinks are
//! nodes, never followed; children are visited in byte order of their names.

use std::ffi::OsString;
use std::fs::{self, Metadata};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use super::statcache::{FileStat, StatCache};
use super::{CacheError, ContentDigest};

/// Symlinks followed before resolution gives up (Linux's own limit).
const MAX_LINKS: usize = 40;

/// The content of a regular file: known from the stat cache or to be hashed.
#[derive(Debug)]
pub(crate) enum Content {
    Known(ContentDigest),
    Job(usize),
}

/// One entry of the selected tree.
#[derive(Debug)]
pub(crate) enum Node {
    File {
        mode: u32,
        size: u64,
        content: Content,
    },
    Dir {
        mode: u32,
        children: Vec<(OsString, Node)>,
    },
    Symlink {
        mode: u32,
        target: OsString,
    },
    /// FIFO, socket or device: type bits, permissions and device number.
    Other {
        st_mode: u32,
        rdev: u64,
    },
}

/// A file whose content must be read.
#[derive(Debug)]
pub(crate) struct Job {
    pub rel: PathBuf,
    pub abs: PathBuf,
    pub stat: FileStat,
}

/// A source path resolved inside the context.
#[derive(Debug)]
pub(crate) struct Resolved {
    pub rel: PathBuf,
    pub links: Vec<OsString>,
    pub meta: Metadata,
}

pub(crate) struct Walker<'a> {
    pub root: &'a Path,
    pub cache: &'a StatCache,
    pub filter: &'a dyn Fn(&Path, bool) -> bool,
    pub chmod: Option<u32>,
    pub jobs: Vec<Job>,
}

/// Resolves `rel` inside `root`, following every symlink (the last one too)
/// within the root; the link targets met are returned so they reach the digest.
pub(crate) fn resolve(root: &Path, rel: &Path) -> Result<Resolved, CacheError> {
    let mut pending: Vec<OsString> = components(rel);
    pending.reverse();
    let mut resolved = PathBuf::new();
    let mut links = Vec::new();
    while let Some(c) = pending.pop() {
        if c == ".." {
            resolved.pop();
            continue;
        }
        let candidate = resolved.join(&c);
        let abs = root.join(&candidate);
        let meta = lstat(&abs)?;
        if !meta.file_type().is_symlink() {
            resolved = candidate;
            continue;
        }
        if links.len() == MAX_LINKS {
            return Err(CacheError::SymlinkLoop {
                path: rel.to_path_buf(),
            });
        }
        let target = fs::read_link(&abs).map_err(|source| CacheError::StatContext {
            path: abs.clone(),
            source,
        })?;
        if target.is_absolute() {
            resolved = PathBuf::new();
        }
        pending.extend(components(&target).into_iter().rev());
        links.push(target.into_os_string());
    }
    let meta = fs::metadata(root.join(&resolved)).map_err(|source| CacheError::StatContext {
        path: root.join(&resolved),
        source,
    })?;
    Ok(Resolved {
        rel: resolved,
        links,
        meta,
    })
}

/// Normal components and `..`; `/`, `.` and empty parts dropped.
fn components(p: &Path) -> Vec<OsString> {
    p.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some(OsString::from("..")),
            _ => None,
        })
        .collect()
}

fn lstat(abs: &Path) -> Result<Metadata, CacheError> {
    fs::symlink_metadata(abs).map_err(|source| CacheError::StatContext {
        path: abs.to_path_buf(),
        source,
    })
}

impl Walker<'_> {
    /// The node for `rel` (context-relative) whose metadata is `meta`.
    pub(crate) fn node(&mut self, rel: &Path, meta: &Metadata) -> Result<Node, CacheError> {
        let ft = meta.file_type();
        let perm = meta.permissions().mode() & 0o7777;
        if ft.is_file() {
            let stat = FileStat::of(meta);
            let content = match self.cache.lookup(rel, &stat) {
                Some(d) => Content::Known(d),
                None => {
                    self.jobs.push(Job {
                        rel: rel.to_path_buf(),
                        abs: self.root.join(rel),
                        stat,
                    });
                    Content::Job(self.jobs.len() - 1)
                }
            };
            return Ok(Node::File {
                mode: self.chmod.unwrap_or(perm),
                size: meta.len(),
                content,
            });
        }
        if ft.is_dir() {
            return self.dir(rel, perm);
        }
        if ft.is_symlink() {
            let abs = self.root.join(rel);
            let target = fs::read_link(&abs)
                .map_err(|source| CacheError::StatContext { path: abs, source })?;
            return Ok(Node::Symlink {
                mode: perm,
                target: target.into_os_string(),
            });
        }
        Ok(Node::Other {
            st_mode: meta.mode(),
            rdev: meta.rdev(),
        })
    }

    fn dir(&mut self, rel: &Path, mode: u32) -> Result<Node, CacheError> {
        let abs = self.root.join(rel);
        let err = |source| CacheError::ReadContextDir {
            path: abs.clone(),
            source,
        };
        let mut entries = Vec::new();
        for entry in fs::read_dir(&abs).map_err(err)? {
            let entry = entry.map_err(err)?;
            // DirEntry::metadata is an lstat (fstatat without following).
            let meta = entry.metadata().map_err(|source| CacheError::StatContext {
                path: entry.path(),
                source,
            })?;
            entries.push((entry.file_name(), meta));
        }
        entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        let mut children = Vec::with_capacity(entries.len());
        for (name, meta) in entries {
            let child_rel = rel.join(&name);
            if !(self.filter)(&child_rel, meta.is_dir()) {
                continue;
            }
            let node = self.node(&child_rel, &meta)?;
            children.push((name, node));
        }
        Ok(Node::Dir { mode, children })
    }
}
