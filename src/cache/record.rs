//! Step records: `cache/steps/<ab>/<hex>` maps a [`StepKey`] to the layer the
//! step produced (or none, for a step that changed nothing).
//!
//! Invariants:
//! - a record is written whole or not at all (temp file in the store's
//!   `tmp/`, fsync, rename, directory fsync), so a process killed mid-write
//!   leaves either the old state or the new record, never a torn one;
//!   anything in the records tree that is not named `<64 hex>` is ignored.
//! - a record is filed under the key it holds (checked on read).
//! - `last_used` is the record file's mtime: a hit costs one `utimensat`,
//!   not a rewrite and fsync of the record.
//! - a record names blobs; it does not keep them alive by itself: `prune`
//!   returns the layers records still use (every encoding), for the store's
//!   `prune` to keep.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use filetime::FileTime;
use serde::{Deserialize, Serialize};

use crate::oci::{DiffId, Digest, Store};

use super::{CacheError, StepKey};

/// Format version inside each record file.
const RECORD_VERSION: u32 = 1;

/// The layer a cached step produced.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerRef {
    /// The compressed blob's digest (in `blobs/sha256/`).
    pub digest: Digest,
    /// The uncompressed tar's digest (`rootfs.diff_ids`, `snapshots/<diff_id>`).
    pub diff_id: DiffId,
    /// The blob's size in bytes.
    pub size: u64,
    /// The blob's media type.
    pub media_type: String,
    /// The same tar in other compressions, re-encoded when a build asked for
    /// one (`--compression` is an output property: the step stays cached).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub other_encodings: Vec<Encoding>,
}

/// One stored encoding of a layer's tar.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Encoding {
    /// The blob's digest.
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
    /// Its media type (which says the compression).
    pub media_type: String,
}

impl LayerRef {
    /// Every encoding the record knows, the one the step first made first.
    pub fn encodings(&self) -> impl Iterator<Item = Encoding> + '_ {
        let first = Encoding {
            digest: self.digest,
            size: self.size,
            media_type: self.media_type.clone(),
        };
        std::iter::once(first).chain(self.other_encodings.iter().cloned())
    }

    /// The encoding with `media_type`, if known.
    pub fn encoding(&self, media_type: &str) -> Option<Encoding> {
        self.encodings().find(|e| e.media_type == media_type)
    }

    /// Records `e` (replacing a known encoding of the same media type).
    pub fn add_encoding(&mut self, e: Encoding) {
        if e.media_type == self.media_type {
            (self.digest, self.size) = (e.digest, e.size);
            return;
        }
        self.other_encodings
            .retain(|o| o.media_type != e.media_type);
        self.other_encodings.push(e);
        self.other_encodings
            .sort_by(|a, b| a.media_type.cmp(&b.media_type));
    }

    /// The same layer with only the encodings `keep` says yes to; `None` when
    /// that leaves none (the first kept one becomes the primary).
    pub fn retain_encodings(&self, mut keep: impl FnMut(&Encoding) -> bool) -> Option<LayerRef> {
        let mut kept = self.encodings().filter(|e| keep(e));
        let first = kept.next()?;
        Some(LayerRef {
            digest: first.digest,
            diff_id: self.diff_id,
            size: first.size,
            media_type: first.media_type,
            other_encodings: kept.collect(),
        })
    }
}

/// What the cache knows about one step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheRecord {
    /// The step's key.
    pub key: StepKey,
    /// Its layer; `None` for a step that made no filesystem change.
    pub layer: Option<LayerRef>,
    /// When it was first stored (unix seconds).
    pub created: i64,
    /// When it was last stored or hit (unix seconds).
    pub last_used: i64,
}

impl CacheRecord {
    /// A record made now.
    pub fn new(key: StepKey, layer: Option<LayerRef>) -> Self {
        let now = unix_now();
        Self {
            key,
            layer,
            created: now,
            last_used: now,
        }
    }
}

/// The on-disk form: `last_used` lives in the file's mtime instead.
#[derive(Serialize, Deserialize)]
struct RecordFile {
    v: u32,
    key: StepKey,
    layer: Option<LayerRef>,
    created: i64,
}

/// The step cache of one store. Cheap to clone; several processes may share
/// one store (every write is an atomic replace of one file).
#[derive(Clone, Debug)]
pub struct StepCache {
    pub(super) store: Store,
    pub(super) dir: PathBuf,
}

pub(crate) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

impl StepCache {
    /// Opens (creating when needed) the store at `store_root` and its step cache.
    pub fn open(store_root: &Path) -> Result<Self, CacheError> {
        let store = crate::store::open(store_root).map_err(|source| CacheError::OpenStore {
            path: store_root.to_path_buf(),
            source,
        })?;
        Self::with_store(store)
    }

    /// The step cache of an already opened store.
    pub fn with_store(store: Store) -> Result<Self, CacheError> {
        let dir = crate::store::Layout::of(&store).step_records();
        fs::create_dir_all(&dir).map_err(|source| CacheError::CreateDir {
            path: dir.clone(),
            source,
        })?;
        Ok(Self { store, dir })
    }

    /// `cache/steps/<ab>/<hex>`.
    pub fn record_path(&self, key: &StepKey) -> PathBuf {
        let hex = key.hex();
        self.dir.join(&hex[..2]).join(hex)
    }

    fn preimage_path(&self, key: &StepKey) -> PathBuf {
        self.record_path(key).with_extension("preimage")
    }

    /// The record for `key`, if any; a hit marks it used now. A record
    /// none of whose layer blobs is in the store any more (pruned, or never
    /// committed) is a miss: the step runs again and `put` replaces it.
    /// Encodings whose blob is gone are dropped from the returned record.
    pub fn get(&self, key: &StepKey) -> Result<Option<CacheRecord>, CacheError> {
        let path = self.record_path(key);
        let Some(mut rec) = read_record(&path)? else {
            return Ok(None);
        };
        if rec.key != *key {
            return Err(CacheError::KeyMismatch {
                path,
                found: rec.key,
            });
        }
        if let Some(l) = &rec.layer {
            match l.retain_encodings(|e| self.store.has_blob(&e.digest)) {
                Some(present) => rec.layer = Some(present),
                None => return Ok(None),
            }
        }
        // Full precision: LRU order holds between uses within one second.
        let now = FileTime::now();
        filetime::set_file_mtime(&path, now)
            .map_err(|source| CacheError::Touch { path, source })?;
        rec.last_used = now.unix_seconds();
        Ok(Some(rec))
    }

    /// Stores `rec` (replacing any record under its key) and, when given, the
    /// key's pre-image beside it (`--debug-cache`).
    pub fn put(&self, rec: &CacheRecord, preimage: Option<&[u8]>) -> Result<(), CacheError> {
        let path = self.record_path(&rec.key);
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(|source| CacheError::CreateDir {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        if let Some(pre) = preimage {
            // The pre-image first: a record never points at a missing one
            // for longer than a crash between two renames.
            self.write(&self.preimage_path(&rec.key), pre)?;
        }
        let file = RecordFile {
            v: RECORD_VERSION,
            key: rec.key,
            layer: rec.layer.clone(),
            created: rec.created,
        };
        let bytes = serde_json::to_vec(&file).map_err(|source| CacheError::Encode {
            what: "cache record",
            source,
        })?;
        self.write(&path, &bytes)?;
        // A record used now gets the precise time (LRU order within a
        // second); an older `last_used` (an import, a test) is kept as given.
        let now = FileTime::now();
        let t = if rec.last_used >= now.unix_seconds() {
            now
        } else {
            FileTime::from_unix_time(rec.last_used, 0)
        };
        filetime::set_file_mtime(&path, t).map_err(|source| CacheError::Touch { path, source })
    }

    fn write(&self, path: &Path, bytes: &[u8]) -> Result<(), CacheError> {
        self.store
            .write_file_atomic(path, bytes)
            .map_err(|source| CacheError::Write {
                path: path.to_path_buf(),
                source,
            })
    }

    /// The pre-image stored for `key`, if `--debug-cache` stored one.
    pub fn preimage(&self, key: &StepKey) -> Result<Option<Vec<u8>>, CacheError> {
        let path = self.preimage_path(key);
        match fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(CacheError::Read { path, source }),
        }
    }

    /// Every record, in no particular order.
    pub fn records(&self) -> Result<Vec<CacheRecord>, CacheError> {
        let mut out = Vec::new();
        for path in self.record_files()? {
            if let Some(rec) = read_record(&path)? {
                out.push(rec);
            }
        }
        Ok(out)
    }

    /// Paths of every file named like a record (temp files and pre-images skipped).
    pub(crate) fn record_files(&self) -> Result<Vec<PathBuf>, CacheError> {
        let mut out = Vec::new();
        for bucket in list_dir(&self.dir)? {
            if bucket.is_dir() {
                out.extend(list_dir(&bucket)?.into_iter().filter(|p| is_record_name(p)));
            }
        }
        Ok(out)
    }

    /// Removes a record and its pre-image; already gone is fine.
    pub(crate) fn remove(&self, record: &Path) -> Result<(), CacheError> {
        let extra = ["preimage", "inputs"].map(|x| record.with_extension(x));
        for path in std::iter::once(record.to_path_buf()).chain(extra) {
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(source) => return Err(CacheError::Remove { path, source }),
            }
        }
        Ok(())
    }
}

fn is_record_name(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.len() == 64 && n.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
}

fn list_dir(dir: &Path) -> Result<Vec<PathBuf>, CacheError> {
    let err = |source| CacheError::List {
        path: dir.to_path_buf(),
        source,
    };
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(err)? {
        out.push(entry.map_err(err)?.path());
    }
    Ok(out)
}

/// Reads one record file; `None` when it does not exist.
pub(crate) fn read_record(path: &Path) -> Result<Option<CacheRecord>, CacheError> {
    let read_err = |source| CacheError::Read {
        path: path.to_path_buf(),
        source,
    };
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(read_err(e)),
    };
    let mtime = fs::metadata(path)
        .map_err(read_err)?
        .modified()
        .map_err(read_err)?;
    let file: RecordFile = serde_json::from_slice(&bytes).map_err(|source| CacheError::Parse {
        path: path.to_path_buf(),
        source,
    })?;
    if file.v != RECORD_VERSION {
        // Another format's record is a miss; the next put replaces it.
        return Ok(None);
    }
    Ok(Some(CacheRecord {
        key: file.key,
        layer: file.layer,
        created: file.created,
        last_used: FileTime::from_system_time(mtime).unix_seconds(),
    }))
}
