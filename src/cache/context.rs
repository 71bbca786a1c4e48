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

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use rayon::prelude::*;

use crate::oci::{Hasher, Store};

use super::statcache::StatCache;
use super::walk::{resolve, Content, Job, Node, Walker};
use super::{CacheError, ContentDigest};

/// Version tag of the Merkle encoding.
const CONTEXT_VERSION: &[u8] = b"kiln-context-v1";

/// Read buffer for large files.
const CHUNK: usize = 1 << 20;

/// Hashes context paths, remembering content digests across runs.
#[derive(Debug)]
pub struct ContextHasher {
    store: Store,
    root: PathBuf,
    cache: Mutex<StatCache>,
    content_reads: AtomicU64,
}

impl ContextHasher {
    /// Opens the stat cache of `context_root` in the store at `store_root`.
    pub fn open(store_root: &Path, context_root: &Path) -> Result<Self, CacheError> {
        let store = Store::open(store_root).map_err(|source| CacheError::OpenStore {
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
            cache: Mutex::new(cache),
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
        filter: &dyn Fn(&Path, bool) -> bool,
    ) -> Result<ContentDigest, CacheError> {
        self.digest_paths_chmod(rel_paths, filter, None)
    }

    /// As [`ContextHasher::digest_paths`], for `COPY --chmod=MODE`: regular
    /// files count with `mode` instead of their own permission bits (so a
    /// chmod in the context alone is not a miss). Directories keep theirs.
    pub fn digest_paths_chmod(
        &self,
        rel_paths: &[PathBuf],
        filter: &dyn Fn(&Path, bool) -> bool,
        chmod: Option<u32>,
    ) -> Result<ContentDigest, CacheError> {
        let start_ns = now_ns();
        let mut roots = Vec::with_capacity(rel_paths.len());
        let jobs = {
            let cache = self.lock_cache();
            let mut walker = Walker {
                root: &self.root,
                cache: &cache,
                filter,
                chmod,
                jobs: Vec::new(),
            };
            for rel in rel_paths {
                let resolved = resolve(&self.root, rel)?;
                let node = walker.node(&resolved.rel, &resolved.meta)?;
                roots.push((rel, resolved, node));
            }
            walker.jobs
        };
        let digests = self.hash_jobs(&jobs)?;
        {
            let mut cache = self.lock_cache();
            for (job, digest) in jobs.iter().zip(&digests) {
                cache.record(&job.rel, job.stat, *digest, start_ns);
            }
        }
        let mut h = Hasher::new();
        h.update(CONTEXT_VERSION);
        put_len(&mut h, roots.len());
        for (rel, resolved, node) in &roots {
            put_bytes(&mut h, rel.as_os_str().as_bytes());
            put_bytes(&mut h, resolved.rel.as_os_str().as_bytes());
            put_len(&mut h, resolved.links.len());
            for link in &resolved.links {
                put_bytes(&mut h, link.as_bytes());
            }
            h.update(&node_digest(node, &digests));
        }
        Ok(ContentDigest::from_bytes(h.finish()))
    }

    /// Writes the stat cache (atomically, and only if it changed).
    pub fn save(&self) -> Result<(), CacheError> {
        self.lock_cache().save(&self.store)
    }

    /// How many files' contents this hasher has read: 0 on a no-op rebuild.
    pub fn content_reads(&self) -> u64 {
        self.content_reads.load(Ordering::Relaxed)
    }

    /// How many files the stat cache vouches for.
    pub fn cached_files(&self) -> usize {
        self.lock_cache().len()
    }

    /// The context root (absolute).
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, StatCache> {
        // A panic while holding the lock leaves a map that is still
        // consistent (every update is one insert or remove): keep using it.
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn hash_jobs(&self, jobs: &[Job]) -> Result<Vec<ContentDigest>, CacheError> {
        let out = jobs
            .par_iter()
            .map(|job| {
                hash_file(&job.abs, job.stat.size).map_err(|source| CacheError::HashContextFile {
                    path: job.abs.clone(),
                    source,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.content_reads
            .fetch_add(jobs.len() as u64, Ordering::Relaxed);
        Ok(out)
    }
}

fn now_ns() -> i128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128)
}

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

fn put_len(h: &mut Hasher, n: usize) {
    h.update(&(n as u64).to_le_bytes());
}

fn put_bytes(h: &mut Hasher, b: &[u8]) {
    put_len(h, b.len());
    h.update(b);
}

/// A node's digest: a type tag, then its fields, children by name.
fn node_digest(node: &Node, jobs: &[ContentDigest]) -> [u8; 32] {
    let mut h = Hasher::new();
    match node {
        Node::File {
            mode,
            size,
            content,
        } => {
            h.update(b"f");
            h.update(&mode.to_le_bytes());
            h.update(&size.to_le_bytes());
            let d = match content {
                Content::Known(d) => d,
                Content::Job(i) => &jobs[*i],
            };
            h.update(d.bytes());
        }
        Node::Dir { mode, children } => {
            h.update(b"d");
            h.update(&mode.to_le_bytes());
            put_len(&mut h, children.len());
            for (name, child) in children {
                put_bytes(&mut h, name.as_bytes());
                h.update(&node_digest(child, jobs));
            }
        }
        Node::Symlink { mode, target } => {
            h.update(b"l");
            h.update(&mode.to_le_bytes());
            put_bytes(&mut h, target.as_bytes());
        }
        Node::Other { st_mode, rdev } => {
            h.update(b"o");
            h.update(&st_mode.to_le_bytes());
            h.update(&rdev.to_le_bytes());
        }
    }
    h.finish()
}
