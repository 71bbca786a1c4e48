//! The context stat cache: `cache/context/v1-<sha256 of the context path>.json`
//! maps a context-relative path to the (device, inode, size, mtime ns,
//! ctime ns) it had when its content was hashed, and that content digest.
//!
//! Invariants:
//! - an entry is used only when all five stat fields match exactly;
//! - an entry is never recorded for a file whose mtime or ctime lies within
//!   [`RACY_WINDOW_NS`] of the moment hashing started (or later): such a file
//!   could be changed again within the same timestamp tick without its stat
//!   changing (git's racy-git problem), so it is rehashed next time instead;
//! - the file is replaced atomically (store temp + fsync + rename), and only
//!   when an entry changed: a no-op rebuild writes nothing.
//! - paths that are not UTF-8 are never cached (always rehashed).

use std::collections::HashMap;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::oci::Store;

use super::{CacheError, ContentDigest};

/// A file changed this close (or closer) to the start of hashing is racy.
pub const RACY_WINDOW_NS: i128 = 1_000_000_000;

const STAT_CACHE_VERSION: u32 = 1;

/// The stat fields that must all match for a cached digest to be trusted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileStat {
    /// Device.
    pub dev: u64,
    /// Inode.
    pub ino: u64,
    /// Size in bytes.
    pub size: u64,
    /// mtime, nanoseconds since the epoch.
    pub mtime_ns: i64,
    /// ctime, nanoseconds since the epoch.
    pub ctime_ns: i64,
}

impl FileStat {
    /// The fields of an `lstat` result.
    pub fn of(meta: &fs::Metadata) -> Self {
        Self {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime_ns: meta.mtime() * 1_000_000_000 + meta.mtime_nsec(),
            ctime_ns: meta.ctime() * 1_000_000_000 + meta.ctime_nsec(),
        }
    }

    /// True when the file changed too close to `start_ns` (or after it) for
    /// its stat to vouch for the content read at `start_ns`.
    pub fn is_racy(&self, start_ns: i128) -> bool {
        let newest = i128::from(self.mtime_ns.max(self.ctime_ns));
        newest + RACY_WINDOW_NS > start_ns
    }
}

/// One entry on disk: a JSON array, so 10,000 entries stay small and fast to parse.
#[derive(Serialize, Deserialize)]
struct Row(u64, u64, u64, i64, i64, ContentDigest);

#[derive(Serialize, Deserialize)]
struct StatFile {
    v: u32,
    entries: HashMap<String, Row>,
}

/// The loaded stat cache of one context.
#[derive(Debug)]
pub(crate) struct StatCache {
    path: PathBuf,
    entries: HashMap<String, (FileStat, ContentDigest)>,
    dirty: bool,
}

impl StatCache {
    /// Loads the stat cache for `context_root` (absolute); missing or of
    /// another format version, it starts empty.
    pub(crate) fn load(store: &Store, context_root: &Path) -> Result<Self, CacheError> {
        let dir = crate::store::Layout::of(store).context_cache();
        fs::create_dir_all(&dir).map_err(|source| CacheError::CreateDir {
            path: dir.clone(),
            source,
        })?;
        let id = ContentDigest::of(context_root.as_os_str().as_encoded_bytes());
        let path = dir.join(format!("v{STAT_CACHE_VERSION}-{}.json", id.hex()));
        let entries = match fs::read(&path) {
            Ok(bytes) => {
                let file: StatFile =
                    serde_json::from_slice(&bytes).map_err(|source| CacheError::Parse {
                        path: path.clone(),
                        source,
                    })?;
                if file.v == STAT_CACHE_VERSION {
                    file.entries
                        .into_iter()
                        .map(|(path, Row(dev, ino, size, mtime_ns, ctime_ns, d))| {
                            let stat = FileStat {
                                dev,
                                ino,
                                size,
                                mtime_ns,
                                ctime_ns,
                            };
                            (path, (stat, d))
                        })
                        .collect()
                } else {
                    HashMap::new()
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => HashMap::new(),
            Err(source) => return Err(CacheError::Read { path, source }),
        };
        Ok(Self {
            path,
            entries,
            dirty: false,
        })
    }

    /// The cached digest of `rel` if its stat still matches exactly.
    pub(crate) fn lookup(&self, rel: &Path, stat: &FileStat) -> Option<ContentDigest> {
        let (cached, digest) = self.entries.get(rel.to_str()?)?;
        (cached == stat).then_some(*digest)
    }

    /// Records a freshly hashed file unless it is racy; a racy file's old
    /// entry is dropped so it can never be trusted.
    pub(crate) fn record(
        &mut self,
        rel: &Path,
        stat: FileStat,
        digest: ContentDigest,
        start_ns: i128,
    ) {
        let Some(rel) = rel.to_str() else { return };
        if stat.is_racy(start_ns) {
            self.dirty |= self.entries.remove(rel).is_some();
            return;
        }
        if self.entries.get(rel) != Some(&(stat, digest)) {
            self.entries.insert(rel.to_string(), (stat, digest));
            self.dirty = true;
        }
    }

    /// Number of entries.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Writes the cache when it changed, first forgetting files that no
    /// longer exist under `context_root` (so deleted files do not pile up;
    /// the extra lstat per entry is paid only on a run that hashed something).
    pub(crate) fn save(&mut self, store: &Store, context_root: &Path) -> Result<(), CacheError> {
        if !self.dirty {
            return Ok(());
        }
        self.entries
            .retain(|rel, _| fs::symlink_metadata(context_root.join(rel)).is_ok());
        let rows = self.entries.iter().map(|(path, (s, d))| {
            let row = Row(s.dev, s.ino, s.size, s.mtime_ns, s.ctime_ns, *d);
            (path.clone(), row)
        });
        let file = StatFile {
            v: STAT_CACHE_VERSION,
            entries: rows.collect(),
        };
        let bytes = serde_json::to_vec(&file).map_err(|source| CacheError::Encode {
            what: "context stat cache",
            source,
        })?;
        store
            .write_file_atomic(&self.path, &bytes)
            .map_err(|source| CacheError::Write {
                path: self.path.clone(),
                source,
            })?;
        self.dirty = false;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat(mtime_ns: i64, ctime_ns: i64) -> FileStat {
        FileStat {
            dev: 1,
            ino: 2,
            size: 3,
            mtime_ns,
            ctime_ns,
        }
    }

    #[test]
    fn racy_means_changed_within_a_second_of_hashing_or_later() {
        let start: i128 = 10_000_000_000;
        assert!(!stat(8_000_000_000, 8_999_999_999).is_racy(start));
        assert!(
            stat(9_000_000_001, 1).is_racy(start),
            "mtime within the window"
        );
        assert!(
            stat(1, 9_500_000_000).is_racy(start),
            "ctime within the window"
        );
        assert!(stat(11_000_000_000, 1).is_racy(start), "from the future");
    }

    #[test]
    fn lookup_needs_every_field_and_racy_entries_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut c = StatCache::load(&store, Path::new("/ctx")).unwrap();
        let s = stat(1, 1);
        let d = ContentDigest::of(b"x");
        c.record(Path::new("a"), s, d, 5_000_000_000);
        assert_eq!(c.lookup(Path::new("a"), &s), Some(d));
        for changed in [
            FileStat { dev: 9, ..s },
            FileStat { ino: 9, ..s },
            FileStat { size: 9, ..s },
            FileStat { mtime_ns: 2, ..s },
            FileStat { ctime_ns: 2, ..s },
        ] {
            assert_eq!(c.lookup(Path::new("a"), &changed), None);
        }
        c.record(Path::new("a"), stat(4_500_000_000, 1), d, 5_000_000_000);
        assert_eq!(
            c.lookup(Path::new("a"), &s),
            None,
            "a racy rehash forgets the old entry"
        );
        assert_eq!(c.len(), 0);
    }
}
