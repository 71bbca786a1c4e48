//! Context hashing: the Merkle [`ContentDigest`] of exactly the paths a COPY
//! (or a bind mount) selects, with a stat cache so a no-op rebuild reads no
//! file contents.
//!
//! What reaches the digest: each source path as given and where it resolved
//! (with the symlink targets followed on the way); inside it, for every entry
//! the filter keeps, its name, file type, permission bits (a file's replaced
//! by `--chmod` when given), size and content for regular files, link target
//! for symlinks, device number for devices. Never mtime, uid/gid, inode or
//! anything the filter leaves out.
//!
//! Invariants: the digest depends only on what COPY would copy (see above),
//! so two checkouts of the same tree hash equal; a stat-cache entry is
//! trusted only under the rules of [`super::statcache`]; contents are hashed
//! in parallel (rayon) and nothing is held in memory beyond one buffer per
//! thread and the tree's metadata.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::oci::{Hasher, Store};

use super::statcache::StatCache;
use super::walk::{put_bytes, put_len, resolve, Walker};
use super::{CacheError, ContentDigest};

/// Version tag of the Merkle encoding.
const CONTEXT_VERSION: &[u8] = b"kiln-context-v1";

/// Hashes context paths, remembering content digests across runs.
#[derive(Debug)]
pub struct ContextHasher {
    store: Store,
    root: PathBuf,
    cache: RwLock<StatCache>,
    content_reads: AtomicU64,
}

impl ContextHasher {
    /// Opens the stat cache of `context_root` in the store at `store_root`.
    pub fn open(store_root: &Path, context_root: &Path) -> Result<Self, CacheError> {
        let store = crate::store::open(store_root).map_err(|source| CacheError::OpenStore {
            path: store_root.to_path_buf(),
            source,
        })?;
        Self::with_store(store, context_root)
    }

    /// As [`ContextHasher::open`], on an already opened store.
    pub fn with_store(store: Store, context_root: &Path) -> Result<Self, CacheError> {
        let root = std::path::absolute(context_root).map_err(|source| CacheError::StatContext {
            path: context_root.to_path_buf(),
            source,
        })?;
        let cache = StatCache::load(&store, &root)?;
        Ok(Self {
            store,
            root,
            cache: RwLock::new(cache),
            content_reads: AtomicU64::new(0),
        })
    }

    /// The Merkle digest of `rel_paths` (relative to the context, in the order
    /// given; `.` or empty is the whole context). Directories recurse;
    /// `filter(rel_path, is_dir)` is asked about every entry below a given
    /// path, and `false` leaves the entry and everything under it out (for
    /// `.dockerignore`, keep a directory that `dir_may_have_exceptions`).
    /// The given paths themselves are not filtered: the caller selected them.
    pub fn digest_paths(
        &self,
        rel_paths: &[PathBuf],
        filter: &(dyn Fn(&Path, bool) -> bool + Sync),
    ) -> Result<ContentDigest, CacheError> {
        self.digest_paths_chmod(rel_paths, filter, None)
    }

    /// As [`ContextHasher::digest_paths`], for `COPY --chmod=MODE`: regular
    /// files count with `mode` instead of their own permission bits (so a
    /// chmod in the context alone is not a miss). Directories keep theirs.
    pub fn digest_paths_chmod(
        &self,
        rel_paths: &[PathBuf],
        filter: &(dyn Fn(&Path, bool) -> bool + Sync),
        chmod: Option<u32>,
    ) -> Result<ContentDigest, CacheError> {
        let start_ns = now_ns();
        let mut h = Hasher::new();
        h.update(CONTEXT_VERSION);
        put_len(&mut h, rel_paths.len());
        let fresh = {
            let cache = self.cache.read().unwrap_or_else(|p| p.into_inner());
            let walker = Walker {
                root: &self.root,
                cache: &cache,
                filter,
                chmod,
                fresh: Mutex::new(Vec::new()),
                reads: AtomicU64::new(0),
            };
            for rel in rel_paths {
                let resolved = resolve(&self.root, rel)?;
                put_bytes(&mut h, rel.as_os_str().as_bytes());
                put_bytes(&mut h, resolved.rel.as_os_str().as_bytes());
                put_len(&mut h, resolved.links.len());
                for link in &resolved.links {
                    put_bytes(&mut h, link.as_bytes());
                }
                h.update(&walker.node(&resolved.rel, &resolved.meta)?);
            }
            self.content_reads
                .fetch_add(walker.reads.into_inner(), Ordering::Relaxed);
            walker.fresh.into_inner().unwrap_or_else(|p| p.into_inner())
        };
        if !fresh.is_empty() {
            let mut cache = self.cache.write().unwrap_or_else(|p| p.into_inner());
            for f in fresh {
                cache.record(&f.rel, f.stat, f.digest, start_ns);
            }
        }
        Ok(ContentDigest::from_bytes(h.finish()))
    }

    /// Writes the stat cache (atomically, and only if it changed).
    pub fn save(&self) -> Result<(), CacheError> {
        // A panic while holding the lock leaves a map that is still
        // consistent (every update is one insert or remove): keep using it.
        self.cache
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .save(&self.store, &self.root)
    }

    /// How many files' contents this hasher has read: 0 on a no-op rebuild.
    pub fn content_reads(&self) -> u64 {
        self.content_reads.load(Ordering::Relaxed)
    }

    /// How many files the stat cache vouches for.
    pub fn cached_files(&self) -> usize {
        self.cache.read().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// The context root (absolute).
    pub fn root(&self) -> &Path {
        &self.root
    }
}

fn now_ns() -> i128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128)
}
