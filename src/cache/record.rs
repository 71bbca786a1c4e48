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

use crate::oci::{Descriptor, DiffId, Digest, LayerBlob, Store};

use super::{CacheError, StepKey};

/// Format version inside each record file.
const RECORD_VERSION: u32 = 1;

/// What the cache knows about one step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheRecord {
    /// The step's key.
    pub key: StepKey,
    /// Its layer, in the compression the step first made it; `None` for a
    /// step that made no filesystem change.
    pub layer: Option<LayerBlob>,
    /// The same tar in other compressions (same diff_id), re-encoded when a
    /// build asked for one (`--compression` is an output property: the step
    /// stays cached); sorted by media type, none equal to `layer`'s. Always
    /// empty when `layer` is `None`.
    pub other_encodings: Vec<Descriptor>,
    /// When it was first stored (unix seconds).
    pub created: i64,
    /// When it was last stored or hit (unix seconds).
    pub last_used: i64,
}

impl CacheRecord {
    /// A record made now.
    pub fn new(key: StepKey, layer: Option<LayerBlob>) -> Self {
        let now = unix_now();
        Self {
            key,
            layer,
            other_encodings: Vec::new(),
            created: now,
            last_used: now,
        }
    }

    /// Every blob of the record's layer, the one the step first made first.
    pub fn encodings(&self) -> impl Iterator<Item = &Descriptor> + '_ {
        let first = self.layer.iter().map(|l| &l.descriptor);
        first.chain(self.other_encodings.iter())
    }

    /// The record's layer as the blob of `media_type`, if known.
    pub fn layer_as(&self, media_type: &str) -> Option<LayerBlob> {
        let diff_id = self.layer.as_ref()?.diff_id;
        let d = self.encodings().find(|e| e.media_type == media_type)?;
        Some(LayerBlob {
            descriptor: d.clone(),
            diff_id,
        })
    }

    /// Records `e`, another blob of the same tar (replacing a known blob of
    /// the same media type); ignored on a record without a layer.
    pub fn add_encoding(&mut self, e: Descriptor) {
        let Some(layer) = &mut self.layer else {
            return;
        };
        if e.media_type == layer.descriptor.media_type {
            layer.descriptor = e;
            return;
        }
        self.other_encodings
            .retain(|o| o.media_type != e.media_type);
        self.other_encodings.push(e);
        self.other_encodings
            .sort_by(|a, b| a.media_type.cmp(&b.media_type));
    }

    /// Keeps only the encodings `keep` says yes to (the first kept one
    /// becomes the layer's blob); false when that leaves none of a layer.
    pub fn retain_encodings(&mut self, mut keep: impl FnMut(&Descriptor) -> bool) -> bool {
        let Some(layer) = &mut self.layer else {
            return true;
        };
        let mut kept = std::iter::once(layer.descriptor.clone())
            .chain(self.other_encodings.drain(..))
            .filter(|e| keep(e));
        let Some(first) = kept.next() else {
            return false;
        };
        let rest = kept.collect();
        layer.descriptor = first;
        self.other_encodings = rest;
        true
    }
}

/// A record's layer as record files and cache artifacts spell it (the
/// format predates [`LayerBlob`]: existing stores and exports stay readable,
/// and an older kiln still reads what this one writes).
#[derive(Serialize, Deserialize)]
pub(super) struct LayerFile {
    digest: Digest,
    diff_id: DiffId,
    size: u64,
    media_type: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    other_encodings: Vec<EncodingFile>,
}

/// One more blob of a [`LayerFile`]'s tar.
#[derive(Serialize, Deserialize)]
struct EncodingFile {
    digest: Digest,
    size: u64,
    media_type: String,
}

impl EncodingFile {
    fn of(d: &Descriptor) -> Self {
        Self {
            digest: d.digest,
            size: d.size,
            media_type: d.media_type.clone(),
        }
    }

    fn descriptor(self) -> Descriptor {
        Descriptor::new(self.media_type, self.digest, self.size)
    }
}

impl LayerFile {
    /// `rec`'s layer and its other encodings, as written.
    pub(super) fn of(rec: &CacheRecord) -> Option<Self> {
        let l = rec.layer.as_ref()?;
        let first = EncodingFile::of(&l.descriptor);
        Some(Self {
            digest: first.digest,
            diff_id: l.diff_id,
            size: first.size,
            media_type: first.media_type,
            other_encodings: rec.other_encodings.iter().map(EncodingFile::of).collect(),
        })
    }

    /// The layer and its other encodings.
    pub(super) fn read(file: Option<Self>) -> (Option<LayerBlob>, Vec<Descriptor>) {
        let Some(f) = file else {
            return (None, Vec::new());
        };
        let layer = LayerBlob {
            descriptor: Descriptor::new(f.media_type, f.digest, f.size),
            diff_id: f.diff_id,
        };
        let others = f
            .other_encodings
            .into_iter()
            .map(EncodingFile::descriptor)
            .collect();
        (Some(layer), others)
    }
}

/// The on-disk form: `last_used` lives in the file's mtime instead.
#[derive(Serialize, Deserialize)]
struct RecordFile {
    v: u32,
    key: StepKey,
    layer: Option<LayerFile>,
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
        if !rec.retain_encodings(|e| self.store.has_blob(&e.digest)) {
            return Ok(None);
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
            layer: LayerFile::of(rec),
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
    let (layer, other_encodings) = LayerFile::read(file.layer);
    Ok(Some(CacheRecord {
        key: file.key,
        layer,
        other_encodings,
        created: file.created,
        last_used: FileTime::from_system_time(mtime).unix_seconds(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
    const ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";

    /// A record file as kiln wrote it before records held a `LayerBlob`.
    fn old_record(key: StepKey, blob: Digest, other: Digest) -> String {
        format!(
            r#"{{"v":1,"key":"{key}","layer":{{"digest":"{blob}","diff_id":"{}","size":3,"media_type":"{GZIP}","other_encodings":[{{"digest":"{other}","size":4,"media_type":"{ZSTD}"}}]}},"created":7}}"#,
            DiffId::of(b"tar"),
        )
    }

    #[test]
    fn records_written_before_layer_blob_still_hit_and_are_written_alike() {
        let root = tempfile::tempdir().unwrap();
        let cache = StepCache::open(root.path()).unwrap();
        let (blob, _) = cache.store.put_blob(b"gz!").unwrap();
        let (other, _) = cache.store.put_blob(b"zst!").unwrap();
        let key = StepKey::of(b"k");
        let text = old_record(key, blob, other);
        let path = cache.record_path(&key);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, &text).unwrap();

        let rec = cache.get(&key).unwrap().expect("an old record is a hit");
        let layer = rec.layer.clone().unwrap();
        assert_eq!(layer.descriptor, Descriptor::new(GZIP, blob, 3));
        assert_eq!(layer.diff_id, DiffId::of(b"tar"));
        assert_eq!(rec.other_encodings, vec![Descriptor::new(ZSTD, other, 4)]);
        assert_eq!(rec.layer_as(ZSTD).unwrap().descriptor.digest, other);
        assert_eq!(rec.created, 7);

        // Written back, it is the same bytes: an older kiln reads it too.
        fs::remove_file(&path).unwrap();
        cache.put(&rec, None).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), text);
    }

    #[test]
    fn encodings_are_added_replaced_and_dropped_by_media_type() {
        let d = |m: &str, b: &[u8]| Descriptor::new(m, Digest::of(b), b.len() as u64);
        let layer = LayerBlob {
            descriptor: d(GZIP, b"g"),
            diff_id: DiffId::of(b"t"),
        };
        let mut rec = CacheRecord::new(StepKey::of(b"k"), Some(layer));
        rec.add_encoding(d(ZSTD, b"z"));
        rec.add_encoding(d(ZSTD, b"z2"));
        assert_eq!(rec.other_encodings, vec![d(ZSTD, b"z2")]);
        rec.add_encoding(d(GZIP, b"g2"));
        assert_eq!(rec.layer.as_ref().unwrap().descriptor, d(GZIP, b"g2"));
        // Without its first blob, the zstd one becomes the layer's.
        assert!(rec.retain_encodings(|e| e.media_type == ZSTD));
        assert_eq!(rec.layer.as_ref().unwrap().descriptor, d(ZSTD, b"z2"));
        assert!(rec.other_encodings.is_empty());
        assert!(!rec.retain_encodings(|_| false));
        let mut none = CacheRecord::new(StepKey::of(b"n"), None);
        none.add_encoding(d(ZSTD, b"z"));
        assert!(none.other_encodings.is_empty() && none.retain_encodings(|_| false));
    }
}
