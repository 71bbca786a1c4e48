//! Layers in and out of the store: packing a staged directory into a blob
//! (and keeping the directory as that layer's snapshot), and unpacking a
//! stored layer once into `snapshots/<diff_id hex>` so later steps can read
//! it or use it as an overlay lower dir.
//!
//! Invariants: a snapshot dir appears only complete (unpacked into `tmp/`,
//! then renamed); its root is mode 0755 owned by root; two builds racing for
//! the same snapshot both succeed (the loser drops its copy).

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::layer::{self, LayerError, PackOptions, SourceKind, UnpackMode};
use crate::oci::registry::RemoteBlobs;
use crate::oci::{Descriptor, DiffId, LayerBlob, Store, StoreError};
use crate::store::Layout;

/// Why a layer could not be stored or unpacked.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// Packing the staged directory.
    #[error("packing layer from {dir}")]
    Pack {
        /// The directory.
        dir: PathBuf,
        /// The cause.
        #[source]
        source: LayerError,
    },
    /// Writing or reading the blob.
    #[error("storing layer blob")]
    Store(#[from] StoreError),
    /// Unpacking a stored layer.
    #[error("unpacking layer {digest}")]
    Unpack {
        /// The blob.
        digest: crate::oci::Digest,
        /// The cause.
        #[source]
        source: LayerError,
    },
    /// Re-encoding a cached layer in the build's compression.
    #[error("re-encoding layer {digest}")]
    Reencode {
        /// The blob read.
        digest: crate::oci::Digest,
        /// The cause.
        #[source]
        source: LayerError,
    },
    /// Downloading the blobs of a lazily resolved base image.
    #[error("fetching base image layers")]
    Fetch(#[source] Box<crate::oci::registry::RegistryError>),
    /// A filesystem step on the snapshot dirs.
    #[error("{step} {path}")]
    Io {
        /// What was being done.
        step: &'static str,
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

fn io_err<'a>(step: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> SnapshotError + 'a {
    move |source| SnapshotError::Io {
        step,
        path: path.into(),
        source,
    }
}

/// A step's staging dir under `tmp/`, removed when dropped: whatever way a
/// step leaves (a failed ADD, a layer that cannot be packed, a panic), no
/// `tmp/copy-*` is left for `fsck` to call interrupted. Once committed the
/// dir has moved to `snapshots/` and the drop finds nothing to remove.
pub struct Staging(PathBuf);

impl Staging {
    /// Takes charge of `dir`.
    pub fn adopt(dir: PathBuf) -> Self {
        Self(dir)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        // Nothing to report to: the step's own error (if any) is the one that
        // matters, and a dir left over here is only disk, found by `prune`.
        let _ = remove_tree(&self.0);
    }
}

/// A fresh empty directory under the store's `tmp/`, for staging a layer.
pub fn staging_dir(store: &Store, prefix: &str) -> Result<PathBuf, SnapshotError> {
    let tmp = store.tmp_dir();
    let dir = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(&tmp)
        .map_err(io_err("creating a staging dir in", &tmp))?;
    let path = dir.keep();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755))
        .map_err(io_err("setting the mode of", &path))?;
    Ok(path)
}

/// Packs `dir` into a blob in the store, then moves `dir` to become the
/// layer's snapshot (it is one already: a plain staging dir has no
/// whiteouts, an overlay upper dir has overlay's own).
pub fn commit_dir(
    store: &Store,
    dir: &Path,
    kind: SourceKind,
    opts: &PackOptions,
) -> Result<LayerBlob, SnapshotError> {
    let mut w = store.begin_blob()?;
    let packed = layer::pack(dir, kind, opts, &mut w).map_err(|source| SnapshotError::Pack {
        dir: dir.into(),
        source,
    })?;
    let (digest, size) = w.commit()?;
    let snap = Layout::of(store).snapshot(&packed.diff_id);
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755))
        .map_err(io_err("setting the mode of", dir))?;
    place(dir, &snap)?;
    Ok(LayerBlob {
        descriptor: Descriptor::new(opts.compression.media_type(), digest, size),
        diff_id: packed.diff_id,
    })
}

/// The layer of a step that changed nothing: the empty tar ([`layer::EMPTY_TAR`])
/// in `opts.compression`, one blob shared by every such step (the same bytes
/// every time: packing is deterministic and the store content-addressed).
// COMPAT(buildkit): BuildKit 0.25 writes this layer for a RUN or WORKDIR that
// leaves the filesystem as it was (history without `empty_layer`); it does
// not drop the step from `rootfs.diff_ids`.
pub fn empty_layer(store: &Store, opts: &PackOptions) -> Result<LayerBlob, SnapshotError> {
    let dir = Staging::adopt(staging_dir(store, "empty-")?);
    commit_dir(store, dir.path(), SourceKind::Plain, opts)
}

/// Stores `from` (a blob of the layer `diff_id`) again in `opts.compression`,
/// from its own tar stream, and returns the new blob. The tar is checked to
/// be `diff_id`'s: a blob that does not match is an error, never an alias.
pub fn reencode(
    store: &Store,
    from: &Descriptor,
    diff_id: DiffId,
    opts: &PackOptions,
) -> Result<LayerBlob, SnapshotError> {
    let err = |source| SnapshotError::Reencode {
        digest: from.digest,
        source,
    };
    let blob = io::BufReader::new(store.open_blob(&from.digest)?);
    let mut w = store.begin_blob()?;
    let packed = layer::recompress(blob, opts, &mut w).map_err(err)?;
    if packed.diff_id != diff_id {
        return Err(err(LayerError::DiffIdMismatch {
            expected: diff_id,
            actual: packed.diff_id,
        }));
    }
    let (digest, size) = w.commit()?;
    Ok(LayerBlob {
        descriptor: Descriptor::new(opts.compression.media_type(), digest, size),
        diff_id,
    })
}

/// Renames `from` to `to` unless `to` exists, in which case `from` is dropped.
fn place(from: &Path, to: &Path) -> Result<(), SnapshotError> {
    if to.exists() {
        return remove_tree(from);
    }
    if let Some(parent) = to.parent() {
        fs::create_dir_all(parent).map_err(io_err("creating", parent))?;
    }
    match fs::rename(from, to) {
        Ok(()) => Ok(()),
        // Another build placed the same snapshot first: ours is identical.
        Err(_) if to.exists() => remove_tree(from),
        Err(e) => Err(io_err("moving a snapshot to", to)(e)),
    }
}

/// Removes a staging tree (best effort is not enough: a leftover dir under
/// `tmp/` is harmless, but a failure here means the disk is in trouble).
pub fn remove_tree(dir: &Path) -> Result<(), SnapshotError> {
    match fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err("removing", dir)(e)),
    }
}

/// Whether `layer` is unpacked already (its blob is then not needed).
pub fn has_snapshot(store: &Store, layer: &LayerBlob) -> bool {
    Layout::of(store).snapshot(&layer.diff_id).is_dir()
}

/// Snapshot dirs for `layers` (in their order), downloading first, all at
/// once, the blobs of those not unpacked yet that the store lacks and
/// `remote` can fetch (a lazily resolved base's layers). Empty layers have
/// none: they add nothing to the merged tree, and overlayfs refuses one lower
/// dir given twice.
pub fn ensure_snapshots(
    store: &Store,
    layers: &[LayerBlob],
    remote: Option<&RemoteBlobs>,
) -> Result<Vec<PathBuf>, SnapshotError> {
    let empty = layer::empty_tar_diff_id();
    let layers: Vec<&LayerBlob> = layers.iter().filter(|l| l.diff_id != empty).collect();
    if let Some(r) = remote {
        let missing: Vec<_> = layers
            .iter()
            .filter(|l| !has_snapshot(store, l))
            .map(|l| l.descriptor.digest)
            .collect();
        r.fetch(store, &missing)
            .map_err(|e| SnapshotError::Fetch(Box::new(e)))?;
    }
    layers
        .into_iter()
        .map(|l| ensure_snapshot(store, l))
        .collect()
}

/// The snapshot dir of `layer`, unpacking the blob when it is not there yet.
pub fn ensure_snapshot(store: &Store, layer: &LayerBlob) -> Result<PathBuf, SnapshotError> {
    let snap = Layout::of(store).snapshot(&layer.diff_id);
    if snap.is_dir() {
        return Ok(snap);
    }
    let tmp = staging_dir(store, "snap-")?;
    let blob = store.open_blob(&layer.descriptor.digest)?;
    let res = layer::unpack_verified(
        io::BufReader::new(blob),
        &tmp,
        UnpackMode::Snapshot,
        layer.diff_id,
    );
    if let Err(source) = res {
        // The partial tree is untrusted; the unpack error is what matters.
        let _ = remove_tree(&tmp);
        return Err(SnapshotError::Unpack {
            digest: layer.descriptor.digest,
            source,
        });
    }
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o755))
        .map_err(io_err("setting the mode of", &tmp))?;
    place(&tmp, &snap)?;
    Ok(snap)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_then_snapshot_round_trips() {
        let root = tempfile::tempdir().unwrap();
        let store = crate::store::open(root.path()).unwrap();
        let dir = staging_dir(&store, "t-").unwrap();
        fs::create_dir_all(dir.join("app")).unwrap();
        fs::write(dir.join("app/hello"), "hi").unwrap();
        let opts = PackOptions::default();
        let layer = commit_dir(&store, &dir, SourceKind::Plain, &opts).unwrap();
        assert!(!dir.exists(), "the staging dir became the snapshot");
        let snap = ensure_snapshot(&store, &layer).unwrap();
        assert_eq!(fs::read(snap.join("app/hello")).unwrap(), b"hi");
        // Without the snapshot, it is unpacked again from the blob.
        fs::remove_dir_all(&snap).unwrap();
        let again = ensure_snapshot(&store, &layer).unwrap();
        assert_eq!(fs::read(again.join("app/hello")).unwrap(), b"hi");
        let mode = fs::metadata(&again).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o755);
    }

    #[test]
    fn empty_layers_are_one_blob_and_no_lower_dir() {
        let root = tempfile::tempdir().unwrap();
        let store = Store::open(root.path()).unwrap();
        let opts = PackOptions::default();
        let a = empty_layer(&store, &opts).unwrap();
        let b = empty_layer(&store, &opts).unwrap();
        assert_eq!(a, b, "every empty layer is the same blob");
        assert_eq!(a.diff_id, layer::empty_tar_diff_id());
        let dir = staging_dir(&store, "t-").unwrap();
        fs::write(dir.join("f"), "x").unwrap();
        let full = commit_dir(&store, &dir, SourceKind::Plain, &opts).unwrap();
        let dirs = ensure_snapshots(&store, &[a.clone(), full.clone(), b], None).unwrap();
        assert_eq!(dirs, vec![ensure_snapshot(&store, &full).unwrap()]);
    }
}
