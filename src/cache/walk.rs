//! Walking the selected context paths into Merkle digests, bottom-up and in
//! parallel (rayon, one task per directory entry): regular files whose stat
//! matches the stat cache take their digest from it, the others are read and
//! reported as fresh entries for the cache.
//!
//! Invariants: nothing outside the context root is ever read (a source path
//! is resolved component by component, symlinks followed inside the root and
//! `..` stopping at it, as COPY resolves it); inside a directory, symlinks are
//! nodes, never followed; children are visited in byte order of their names.

use std::ffi::OsString;
use std::fs::{self, File, Metadata};
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use rayon::prelude::*;

use crate::oci::Hasher;

use super::statcache::{FileStat, StatCache};
use super::{CacheError, ContentDigest};

/// Symlinks followed before resolution gives up (Linux's own limit).
const MAX_LINKS: usize = 40;

/// A file whose content was read: what the stat cache should learn.
#[derive(Debug)]
pub(crate) struct Fresh {
    pub rel: PathBuf,
    pub stat: FileStat,
    pub digest: ContentDigest,
}

/// A source path resolved inside the context.
#[derive(Debug)]
pub(crate) struct Resolved {
    pub rel: PathBuf,
    pub links: Vec<OsString>,
    pub meta: Metadata,
}

/// One walk: shared by the rayon tasks that visit directories in parallel.
pub(crate) struct Walker<'a> {
    pub root: &'a Path,
    pub cache: &'a StatCache,
    pub filter: &'a (dyn Fn(&Path, bool) -> bool + Sync),
    pub chmod: Option<u32>,
    pub fresh: Mutex<Vec<Fresh>>,
    pub reads: AtomicU64,
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
    /// The Merkle digest of `rel` (context-relative) whose lstat is `meta`:
    /// a type tag, then its fields; a directory's children by name.
    pub(crate) fn node(&self, rel: &Path, meta: &Metadata) -> Result<[u8; 32], CacheError> {
        let ft = meta.file_type();
        let perm = meta.permissions().mode() & 0o7777;
        let mut h = Hasher::new();
        if ft.is_file() {
            h.update(b"f");
            h.update(&self.chmod.unwrap_or(perm).to_le_bytes());
            h.update(&meta.len().to_le_bytes());
            h.update(self.content(rel, meta)?.bytes());
        } else if ft.is_dir() {
            h.update(b"d");
            h.update(&perm.to_le_bytes());
            for (name, digest) in self.children(rel)? {
                put_bytes(&mut h, name.as_bytes());
                h.update(&digest);
            }
        } else if ft.is_symlink() {
            let abs = self.root.join(rel);
            let target = fs::read_link(&abs)
                .map_err(|source| CacheError::StatContext { path: abs, source })?;
            h.update(b"l");
            h.update(&perm.to_le_bytes());
            put_bytes(&mut h, target.as_os_str().as_bytes());
        } else {
            h.update(b"o");
            h.update(&meta.mode().to_le_bytes());
            h.update(&meta.rdev().to_le_bytes());
        }
        Ok(h.finish())
    }

    /// A regular file's content digest: from the stat cache, else read.
    fn content(&self, rel: &Path, meta: &Metadata) -> Result<ContentDigest, CacheError> {
        let stat = FileStat::of(meta);
        if let Some(d) = self.cache.lookup(rel, &stat) {
            return Ok(d);
        }
        let abs = self.root.join(rel);
        let digest = hash_file(&abs, stat.size)
            .map_err(|source| CacheError::HashContextFile { path: abs, source })?;
        self.reads.fetch_add(1, Ordering::Relaxed);
        let fresh = Fresh {
            rel: rel.to_path_buf(),
            stat,
            digest,
        };
        self.fresh
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(fresh);
        Ok(digest)
    }

    /// The kept children of directory `rel` with their digests, in byte
    /// order of their names; visited in parallel.
    fn children(&self, rel: &Path) -> Result<Vec<(OsString, [u8; 32])>, CacheError> {
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
            let child = rel.join(entry.file_name());
            if (self.filter)(&child, meta.is_dir()) {
                entries.push((entry.file_name(), child, meta));
            }
        }
        entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        let digests = entries
            .par_iter()
            .map(|(_, child, meta)| self.node(child, meta))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(entries.into_iter().map(|e| e.0).zip(digests).collect())
    }
}

/// Read buffer for large files.
const CHUNK: usize = 1 << 20;

fn hash_file(path: &Path, size_hint: u64) -> io::Result<ContentDigest> {
    let mut file = File::open(path)?;
    let mut h = Hasher::new();
    if size_hint <= CHUNK as u64 {
        let mut buf = Vec::with_capacity(size_hint as usize + 1);
        file.read_to_end(&mut buf)?;
        h.update(&buf);
    } else {
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
    }
    Ok(ContentDigest::from_bytes(h.finish()))
}

pub(crate) fn put_len(h: &mut Hasher, n: usize) {
    h.update(&(n as u64).to_le_bytes());
}

pub(crate) fn put_bytes(h: &mut Hasher, b: &[u8]) {
    put_len(h, b.len());
    h.update(b);
}
