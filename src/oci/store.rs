//! The blob store: content-addressed blobs and named images in an OCI
//! `index.json` (an OCI image layout), plus the `tmp/` it stages writes in.
//! kiln's store at `$KILN_ROOT` is this layout with kiln's own folders
//! beside it; `crate::store` owns that whole layout, opens it and holds its
//! lock.
//!
//! Invariants:
//! - `blobs/sha256/<hex>` always holds bytes whose sha256 is `<hex>`: blobs are
//!   written to `tmp/`, hashed while written, fsynced, then renamed into place
//!   and never modified.
//! - every file the store replaces (index.json) is written temp + fsync +
//!   rename + directory fsync, so a process killed at any point leaves a store
//!   the next one uses without repair; leftovers in `tmp/` are ignored and
//!   removed once stale.
//! - `index.json` is only rewritten under an exclusive `flock` on
//!   `index.json.lock`, so several processes may share one store.
//! - the store root is itself a valid OCI image layout.

mod error;
mod gc;
mod names;

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;

use super::{canonical_json, Descriptor, Digest, DigestWriter};

pub use error::StoreError;
pub use gc::GcReport;
pub use names::ImageEntry;

/// The `oci-layout` file every layout carries.
pub const OCI_LAYOUT_JSON: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

/// A handle on a store directory. Cheap to clone; safe to share across
/// threads and with other processes using the same root.
#[derive(Debug, Clone)]
pub struct Store {
    root: Arc<PathBuf>,
}

impl Store {
    /// Opens (creating when needed) the blob store at `root`: `blobs/`,
    /// `tmp/`, `oci-layout` and `index.json`. kiln's whole store (its other
    /// folders, stale temp entries removed) is opened with `store::open`.
    pub fn open(root: &Path) -> Result<Store, StoreError> {
        let store = Store {
            root: Arc::new(root.to_path_buf()),
        };
        for dir in [store.blobs_dir(), store.tmp_dir()] {
            fs::create_dir_all(&dir)
                .map_err(|source| StoreError::CreateDir { path: dir, source })?;
        }
        store.ensure_file("oci-layout", OCI_LAYOUT_JSON)?;
        store.ensure_index()?;
        Ok(store)
    }

    /// The store's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `tmp/`: on the same filesystem as the blobs, so renames are atomic.
    /// Entries untouched for a day are removed by `store::open` and
    /// `store::prune`.
    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// `blobs/sha256/`: one file per blob, named by its hex digest.
    pub fn blobs_dir(&self) -> PathBuf {
        self.root.join("blobs").join("sha256")
    }

    /// Where the blob `digest` lives (whether or not it exists).
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.blobs_dir().join(digest.hex())
    }

    /// Whether the blob is stored.
    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    /// Starts writing a blob into `tmp/`; it is hashed as it is written.
    pub fn begin_blob(&self) -> Result<BlobWriter, StoreError> {
        let dir = self.tmp_dir();
        let file = tempfile::Builder::new()
            .prefix("blob-")
            .tempfile_in(&dir)
            .map_err(|source| StoreError::WriteBlob { path: dir, source })?;
        Ok(BlobWriter {
            store: self.clone(),
            inner_file_path: file.path().to_path_buf(),
            inner: DigestWriter::new(file),
        })
    }

    /// Stores `bytes` as a blob.
    pub fn put_blob(&self, bytes: &[u8]) -> Result<(Digest, u64), StoreError> {
        let mut w = self.begin_blob()?;
        w.write_all(bytes).map_err(|source| StoreError::WriteBlob {
            path: w.inner_path(),
            source,
        })?;
        w.commit()
    }

    /// Serializes `value` as canonical JSON, stores it and describes it.
    pub fn put_json<T: Serialize>(
        &self,
        media_type: &str,
        value: &T,
    ) -> Result<Descriptor, StoreError> {
        let bytes = canonical_json(value).map_err(|source| StoreError::Serialize {
            what: "blob json",
            source,
        })?;
        let (digest, size) = self.put_blob(&bytes)?;
        Ok(Descriptor::new(media_type, digest, size))
    }

    /// Opens a stored blob for streaming (not verified; see [`Store::read_blob`]).
    pub fn open_blob(&self, digest: &Digest) -> Result<File, StoreError> {
        File::open(self.blob_path(digest)).map_err(|source| StoreError::ReadBlob {
            digest: *digest,
            source,
        })
    }

    /// Reads a whole blob and checks that it hashes to `digest`.
    pub fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>, StoreError> {
        let mut bytes = Vec::new();
        self.open_blob(digest)?
            .read_to_end(&mut bytes)
            .map_err(|source| StoreError::ReadBlob {
                digest: *digest,
                source,
            })?;
        let actual = Digest::of(&bytes);
        if actual != *digest {
            return Err(StoreError::DigestMismatch {
                expected: *digest,
                actual,
            });
        }
        Ok(bytes)
    }

    /// Replaces `dest` with `bytes` atomically: temp file in `tmp/`, fsync,
    /// rename, fsync of the parent directory. For any file under the root.
    pub fn write_file_atomic(&self, dest: &Path, bytes: &[u8]) -> Result<(), StoreError> {
        let err = |source| StoreError::WriteFile {
            path: dest.to_path_buf(),
            source,
        };
        let mut tmp = tempfile::Builder::new()
            .prefix("file-")
            .tempfile_in(self.tmp_dir())
            .map_err(err)?;
        tmp.write_all(bytes).map_err(err)?;
        tmp.as_file().sync_all().map_err(err)?;
        tmp.persist(dest).map_err(|e| err(e.error))?;
        sync_parent(dest).map_err(err)
    }

    fn ensure_file(&self, name: &str, bytes: &[u8]) -> Result<(), StoreError> {
        let path = self.root.join(name);
        if path.exists() {
            return Ok(());
        }
        self.write_file_atomic(&path, bytes)
    }
}

/// fsyncs the directory holding `path`, so a rename into it is durable.
pub(crate) fn sync_parent(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(dir) => File::open(dir)?.sync_all(),
        None => Ok(()),
    }
}

/// A blob being written into `tmp/`. Dropped without [`BlobWriter::commit`],
/// its temp file is removed.
pub struct BlobWriter {
    store: Store,
    inner_file_path: PathBuf,
    inner: DigestWriter<tempfile::NamedTempFile>,
}

impl BlobWriter {
    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.inner.written()
    }

    fn inner_path(&self) -> PathBuf {
        self.inner_file_path.clone()
    }

    /// fsyncs the blob and renames it to `blobs/sha256/<hex>`; a blob already
    /// stored under that digest is kept (it has the same bytes).
    pub fn commit(self) -> Result<(Digest, u64), StoreError> {
        let (file, sum, size) = self.inner.finish();
        let digest = Digest::from_bytes(sum);
        persist_blob(&self.store, file, digest)?;
        Ok((digest, size))
    }

    /// Like [`BlobWriter::commit`], but refuses (and discards) the blob unless
    /// it has the expected digest and size: for copying from untrusted sources.
    pub fn commit_verified(self, expected: &Digest, size: u64) -> Result<(), StoreError> {
        let (file, sum, written) = self.inner.finish();
        let actual = Digest::from_bytes(sum);
        if actual != *expected {
            return Err(StoreError::DigestMismatch {
                expected: *expected,
                actual,
            });
        }
        if written != size {
            return Err(StoreError::SizeMismatch {
                digest: *expected,
                expected: size,
                actual: written,
            });
        }
        persist_blob(&self.store, file, actual)
    }
}

fn persist_blob(
    store: &Store,
    file: tempfile::NamedTempFile,
    digest: Digest,
) -> Result<(), StoreError> {
    let err = |source| StoreError::CommitBlob { digest, source };
    let dest = store.blob_path(&digest);
    if dest.is_file() {
        return Ok(());
    }
    file.as_file().sync_all().map_err(err)?;
    file.persist(&dest).map_err(|e| err(e.error))?;
    sync_parent(&dest).map_err(err)
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_is_shareable_across_threads() {
        fn shareable<T: Clone + Send + Sync + 'static>() {}
        shareable::<Store>();
    }

    #[test]
    fn blobs_round_trip_and_verify() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert!(dir.path().join("oci-layout").is_file());
        let (d, n) = store.put_blob(b"hello").unwrap();
        assert_eq!((d, n), (Digest::of(b"hello"), 5));
        assert_eq!(store.read_blob(&d).unwrap(), b"hello");
        // Same bytes again: fine, one blob.
        assert_eq!(store.put_blob(b"hello").unwrap().0, d);
        std::fs::write(store.blob_path(&d), b"HELLO").unwrap();
        assert!(matches!(
            store.read_blob(&d),
            Err(StoreError::DigestMismatch { .. })
        ));
        assert_eq!(std::fs::read_dir(store.tmp_dir()).unwrap().count(), 0);
    }

    #[test]
    fn commit_verified_refuses_wrong_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut w = store.begin_blob().unwrap();
        w.write_all(b"abc").unwrap();
        let err = w.commit_verified(&Digest::of(b"abd"), 3).unwrap_err();
        assert!(matches!(err, StoreError::DigestMismatch { .. }));
        assert!(!store.has_blob(&Digest::of(b"abc")));
        assert_eq!(std::fs::read_dir(store.tmp_dir()).unwrap().count(), 0);
    }
}
