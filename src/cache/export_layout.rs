//! The cache artifact as an OCI layout directory (`--cache-to type=local`,
//! `--cache-from type=local`): `oci-layout`, `index.json` listing the
//! artifact manifest, `blobs/sha256/…`. Invariant: every blob read from a
//! layout is checked against its digest before the store or the merge sees it.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::oci::{media_type, Descriptor, Digest, Index, Manifest, Store};

use super::{
    build_artifact, import_artifact, json, CacheError, ExportSpec, TransferReport, ARTIFACT_TYPE,
    MOUNT_MEDIA_TYPE,
};

/// Writes the artifact for `spec` as an OCI layout at `dir` (created when
/// absent; its `index.json` is replaced, blobs already there kept).
pub fn export_layout(
    store: &Store,
    spec: &ExportSpec,
    dir: &Path,
) -> Result<TransferReport, CacheError> {
    let art = build_artifact(store, spec)?;
    let blobs_dir = dir.join("blobs/sha256");
    let werr = |path: &Path| {
        let path = path.to_path_buf();
        move |source| CacheError::Layout { path, source }
    };
    fs::create_dir_all(&blobs_dir).map_err(werr(&blobs_dir))?;
    let mut report = TransferReport {
        records: spec.keys.len(),
        ..Default::default()
    };
    for d in art.blobs.iter().chain(std::iter::once(&art.manifest)) {
        let to = blobs_dir.join(d.digest.hex());
        if fs::metadata(&to).is_ok_and(|m| m.len() == d.size) {
            continue;
        }
        fs::copy(store.blob_path(&d.digest), &to).map_err(werr(&to))?;
        report.blobs += 1;
        report.mounts += usize::from(d.media_type == MOUNT_MEDIA_TYPE);
    }
    let config_to = blobs_dir.join(Digest::of(&art.config_bytes).hex());
    fs::write(&config_to, &art.config_bytes).map_err(werr(&config_to))?;
    let mut entry = art.manifest.clone();
    entry
        .annotations
        .insert("org.opencontainers.image.ref.name".into(), "cache".into());
    let index = Index {
        schema_version: 2,
        media_type: Some(media_type::OCI_INDEX.into()),
        manifests: vec![entry],
        annotations: Default::default(),
    };
    for (name, bytes) in [
        ("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec()),
        ("index.json", json(&index, "cache layout index")?),
    ] {
        let path = dir.join(name);
        fs::write(&path, bytes).map_err(werr(&path))?;
    }
    Ok(report)
}

/// Copies the kiln cache artifact(s) listed in the layout at `dir` into the
/// store (every blob verified against its digest) and merges them.
pub fn import_layout(store: &Store, dir: &Path) -> Result<TransferReport, CacheError> {
    let index_path = dir.join("index.json");
    let bytes = fs::read(&index_path).map_err(|source| CacheError::Layout {
        path: index_path.clone(),
        source,
    })?;
    let index: Index = serde_json::from_slice(&bytes).map_err(|source| CacheError::Parse {
        path: index_path,
        source,
    })?;
    let mut report = TransferReport::default();
    for m in &index.manifests {
        let manifest_bytes = read_verified(dir, m)?;
        let manifest: Manifest =
            serde_json::from_slice(&manifest_bytes).map_err(|_| CacheError::BadArtifact {
                what: "manifest is not json",
            })?;
        if manifest.config.media_type != ARTIFACT_TYPE {
            continue; // an image in the same layout: not ours
        }
        let config_bytes = read_verified(dir, &manifest.config)?;
        for d in &manifest.layers {
            if !store.has_blob(&d.digest) {
                copy_verified(store, dir, d)?;
                report.blobs += 1;
            }
        }
        let r = import_artifact(store, &manifest_bytes, &config_bytes)?;
        report.records += r.records;
        report.mounts += r.mounts;
    }
    Ok(report)
}

fn layout_blob(dir: &Path, d: &Descriptor) -> PathBuf {
    dir.join("blobs/sha256").join(d.digest.hex())
}

fn read_verified(dir: &Path, d: &Descriptor) -> Result<Vec<u8>, CacheError> {
    let path = layout_blob(dir, d);
    let bytes = fs::read(&path).map_err(|source| CacheError::Layout {
        path: path.clone(),
        source,
    })?;
    if Digest::of(&bytes) != d.digest || bytes.len() as u64 != d.size {
        return Err(CacheError::BlobMismatch { path });
    }
    Ok(bytes)
}

fn copy_verified(store: &Store, dir: &Path, d: &Descriptor) -> Result<(), CacheError> {
    let path = layout_blob(dir, d);
    let mut f = fs::File::open(&path).map_err(|source| CacheError::Layout {
        path: path.clone(),
        source,
    })?;
    let mut w = store.begin_blob().map_err(CacheError::Blob)?;
    io::copy(&mut f, &mut w).map_err(|source| CacheError::Layout {
        path: path.clone(),
        source,
    })?;
    w.commit_verified(&d.digest, d.size)
        .map_err(|source| CacheError::ImportBlob { path, source })
}
