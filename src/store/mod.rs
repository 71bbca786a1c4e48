//! kiln's store at `$KILN_ROOT`: the one owner of its on-disk layout.
//!
//! ```text
//! blobs/sha256/<hex>        content-addressed blobs           } the blob store, `oci::Store`:
//! index.json(.lock)         named images                      } an OCI image layout, plus
//! oci-layout                the layout's version              } the tmp/ it stages writes in
//! tmp/                      staging, same filesystem as everything below (renames stay atomic)
//! snapshots/<diff_id>/      unpacked layers, overlay lower dirs      [`Layout::snapshot`]
//! cache/steps/<ab>/<key>    step cache records                       [`Layout::step_records`]
//! cache/mounts/<sha256>/    RUN --mount=type=cache directories       [`Layout::cache_mount`]
//! cache/context/            the context stat cache                   [`Layout::context_cache`]
//! cache/exports/            what kiln last wrote to each archive dest [`Layout::export_record`]
//! containers/<id>/          a stored container (`kiln run -d`): config.json, state.json,
//!                           <id>-json.log(.1, .2), lock, upper/, work/  [`Layout::container`]
//! containers/lock           held while a container is named (names are unique)
//! volumes/<name>/_data      a volume's content (+ `anonymous`)        [`Layout::volume_data`]
//! lock                      the store-wide lock                      [`lock`]
//! CACHEDIR.TAG              tells backup tools to skip the store
//! ```
//!
//! This module opens the whole store ([`open`]), says where each kiln
//! folder is ([`Layout`]: the builder and the cache ask it instead of
//! spelling a path), holds the store-wide lock, and checks ([`fsck()`]) and
//! prunes ([`prune()`]) the store as a whole. What lives in each folder is its
//! user's business: records are the cache's, snapshots the builder's.
//!
//! Invariants: the layout above is the only one (existing stores open
//! unchanged); [`open`] removes stale `tmp/` entries only while it can take
//! the lock exclusive without waiting, so never a live build's.

pub mod fsck;
pub mod lock;
mod prune;

use std::fs;
use std::path::{Path, PathBuf};

use crate::oci::{DiffId, Digest, Store, StoreError};

pub use fsck::{fsck, FsckError, FsckReport};
pub use lock::{LockMode, LockWait, StoreLock};
pub use prune::{prune, PruneReport};

const CACHEDIR_TAG: &[u8] = b"Signature: 8a477f597d28d172789f06886806bc55\n\
# This file is a cache directory tag created by kiln.\n\
# For information about cache directory tags, see https://bford.info/cachedir/\n";

/// Why the store could not be opened, locked or pruned.
#[derive(Debug, thiserror::Error)]
pub enum RootError {
    /// The blob store (blobs, names, tmp).
    #[error(transparent)]
    Blobs(#[from] StoreError),
    /// Creating one of kiln's folders.
    #[error("creating store directory {path}")]
    CreateDir {
        /// The folder.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Opening or locking `<root>/lock`.
    #[error("locking {path}")]
    Lock {
        /// The lock file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Removing a stale `tmp/` entry.
    #[error("pruning {path}")]
    Prune {
        /// What was being listed or removed.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// Opens (creating when needed) the store at `root`: the blob store, kiln's
/// folders and `CACHEDIR.TAG`; removes stale `tmp/` entries when no other
/// process holds the lock.
pub fn open(root: &Path) -> Result<Store, RootError> {
    let store = Store::open(root)?;
    let layout = Layout::of(&store);
    for dir in [layout.snapshots(), layout.cache()] {
        fs::create_dir_all(&dir).map_err(|source| RootError::CreateDir { path: dir, source })?;
    }
    let tag = root.join("CACHEDIR.TAG");
    if !tag.exists() {
        store.write_file_atomic(&tag, CACHEDIR_TAG)?;
    }
    // Only while no build, load or save holds the lock: one may be older than the grace.
    if let Some(_alone) = StoreLock::try_acquire(&store, LockMode::Exclusive)? {
        prune::clean_stale_tmp(&store)?;
    }
    Ok(store)
}

/// `$KILN_ROOT`, else `$XDG_DATA_HOME/kiln`, else `~/.local/share/kiln`.
pub fn default_root() -> PathBuf {
    let non_empty = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    if let Some(r) = non_empty("KILN_ROOT") {
        return PathBuf::from(r);
    }
    if let Some(x) = non_empty("XDG_DATA_HOME") {
        return PathBuf::from(x).join("kiln");
    }
    let home = non_empty("HOME").map_or_else(|| PathBuf::from("/root"), PathBuf::from);
    home.join(".local/share/kiln")
}

/// Where kiln's folders are in a store (whether or not they exist yet).
#[derive(Debug, Clone, Copy)]
pub struct Layout<'a> {
    root: &'a Path,
}

impl<'a> Layout<'a> {
    /// The layout of `store`.
    pub fn of(store: &'a Store) -> Self {
        Self { root: store.root() }
    }

    /// `snapshots/`: unpacked layers, one directory per diff_id.
    pub fn snapshots(&self) -> PathBuf {
        self.root.join("snapshots")
    }

    /// `snapshots/<hex>`: the unpacked layer `diff_id`.
    pub fn snapshot(&self, diff_id: &DiffId) -> PathBuf {
        self.snapshots().join(diff_id.hex())
    }

    /// `cache/`: step records, cache mounts, the context stat cache.
    pub fn cache(&self) -> PathBuf {
        self.root.join("cache")
    }

    /// `cache/steps/`: step records (`<ab>/<key hex>`, the cache's naming).
    pub fn step_records(&self) -> PathBuf {
        self.cache().join("steps")
    }

    /// `cache/mounts/`: every cache mount's directory.
    pub fn cache_mounts(&self) -> PathBuf {
        self.cache().join("mounts")
    }

    /// `cache/mounts/<sha256 of key>`: the directory of the cache mount
    /// `key` (its id, or its id and `from` tree).
    pub fn cache_mount(&self, key: &str) -> PathBuf {
        self.cache_mounts().join(Digest::of(key.as_bytes()).hex())
    }

    /// `cache/context/`: the context stat cache files.
    pub fn context_cache(&self) -> PathBuf {
        self.cache().join("context")
    }

    /// `cache/exports/`: one record per archive destination kiln wrote.
    pub fn export_records(&self) -> PathBuf {
        self.cache().join("exports")
    }

    /// `cache/exports/<sha256 of the path>.json`: the record of what kiln
    /// last wrote to the archive at `dest` (a canonical path).
    pub fn export_record(&self, dest: &Path) -> PathBuf {
        use std::os::unix::ffi::OsStrExt;
        let name = format!("{}.json", Digest::of(dest.as_os_str().as_bytes()).hex());
        self.export_records().join(name)
    }

    /// `containers/`: one directory per stored container.
    pub fn containers(&self) -> PathBuf {
        self.root.join("containers")
    }

    /// `containers/<id>`: the container `id` (64 hex digits): its config, state,
    /// log, lock and writable layer.
    pub fn container(&self, id: &str) -> PathBuf {
        self.containers().join(id)
    }

    /// `containers/lock`: taken exclusive while a container is created, so two
    /// `kiln run -d --name N` never both get the name.
    pub fn containers_lock(&self) -> PathBuf {
        self.containers().join("lock")
    }

    /// `volumes/`: one directory per volume, named or anonymous.
    pub fn volumes(&self) -> PathBuf {
        self.root.join("volumes")
    }

    /// `volumes/<name>`: the volume `name`: its `_data` dir (what containers mount)
    /// and, for an anonymous volume, the empty file `anonymous`.
    pub fn volume(&self, name: &str) -> PathBuf {
        self.volumes().join(name)
    }

    /// `volumes/<name>/_data`: what a container mounts for the volume `name`.
    pub fn volume_data(&self, name: &str) -> PathBuf {
        self.volume(name).join("_data")
    }

    /// `lock`: the store-wide lock file.
    pub fn lock_file(&self) -> PathBuf {
        self.root.join("lock")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_makes_the_whole_layout() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path()).unwrap();
        for f in ["oci-layout", "CACHEDIR.TAG", "index.json"] {
            assert!(dir.path().join(f).is_file(), "{f}");
        }
        for d in ["blobs/sha256", "snapshots", "cache", "tmp"] {
            assert!(dir.path().join(d).is_dir(), "{d}");
        }
        let layout = Layout::of(&store);
        assert_eq!(
            layout.cache_mount("x"),
            dir.path().join("cache/mounts").join(Digest::of(b"x").hex())
        );
    }
}
