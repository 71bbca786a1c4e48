//! Image archives written from the store: an OCI archive (an OCI layout in a
//! tar that also carries docker's `manifest.json`, as docker 25+ `save`
//! writes, so `docker load`, `podman load`, `skopeo copy oci-archive:` and
//! `umoci` all accept it) and a classic docker-archive (`manifest.json`,
//! `<config hex>.json`, `<diff_id hex>/layer.tar`).
//!
//! Invariant: archives are deterministic: entries sorted by path, mode
//! 0644/0755, uid/gid 0, no user names, mtime `SOURCE_DATE_EPOCH` or 0.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Seek, Write};

use serde::{Deserialize, Serialize};

use super::compression::{Compression, UnsupportedMediaType};
use super::layout::{image_blobs, layout_index, LayoutError, NamedImage};
use super::store::OCI_LAYOUT_JSON;
use super::{canonical_json, DiffId, Digest, DigestWriter, Store, StoreError};

/// One entry of docker's `manifest.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DockerArchiveEntry {
    /// Path of the config JSON inside the archive.
    pub config: String,
    /// Names, e.g. `busybox:latest` (docker writes `null` for none).
    #[serde(default)]
    pub repo_tags: Option<Vec<String>>,
    /// Paths of the layer tars, base first.
    pub layers: Vec<String>,
}

/// Errors writing an archive.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// Reading from the store.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Building the layout index.
    #[error(transparent)]
    Layout(#[from] LayoutError),
    /// Writing the tar stream.
    #[error("writing archive entry {path}")]
    Write {
        /// The entry.
        path: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Decompressing a layer for a docker-archive.
    #[error("decompressing layer {digest}")]
    Decompress {
        /// The layer.
        digest: Digest,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A layer's media type names no known codec.
    #[error("layer {digest}")]
    LayerMediaType {
        /// The layer.
        digest: Digest,
        /// The cause.
        #[source]
        source: UnsupportedMediaType,
    },
    /// A stored layer does not decompress to its diff_id.
    #[error("layer {digest} decompresses to {actual}, config says {expected}")]
    DiffId {
        /// The layer.
        digest: Digest,
        /// The config's diff_id.
        expected: DiffId,
        /// What it hashes to.
        actual: DiffId,
    },
    /// Serializing JSON.
    #[error("serializing {what}")]
    Serialize {
        /// Which file.
        what: &'static str,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
}

/// What an archive entry's bytes come from.
enum Source {
    Dir,
    Bytes(Vec<u8>),
    Blob(Digest, u64),
    /// A stored layer, decompressed (and checked against its diff_id) when written.
    Layer(Box<super::Descriptor>, DiffId),
}

/// Bumped whenever the bytes [`ArchivePlan::write`] makes for the same
/// entries change, so a [`ArchivePlan::fingerprint`] recorded by an older
/// writer never vouches for a newer writer's bytes.
const ARCHIVE_FORMAT: &str = "kiln-archive-v1";

/// An archive's entries, decided but not yet written: what [`write_oci_archive`]
/// and [`write_docker_archive`] write, and what a caller can fingerprint to
/// know whether a file already holds these bytes without rereading it.
pub struct ArchivePlan {
    entries: BTreeMap<String, Source>,
    mtime: u64,
}

impl ArchivePlan {
    /// The entries of an OCI archive of `images` (with `manifest.json`).
    pub fn oci(store: &Store, images: &[NamedImage]) -> Result<Self, ArchiveError> {
        Ok(Self {
            entries: oci_entries(store, images)?,
            mtime: archive_mtime(),
        })
    }

    /// The entries of a docker-archive of `images`.
    pub fn docker(store: &Store, images: &[NamedImage]) -> Result<Self, ArchiveError> {
        Ok(Self {
            entries: docker_entries(store, images)?,
            mtime: archive_mtime(),
        })
    }

    /// A digest of everything the archive's bytes depend on: the writer's
    /// format, the entries' mtime, every path and what fills it (small
    /// files by content, blobs by digest and size, docker layers by their
    /// compressed digest and diff_id). The writer is deterministic, so
    /// equal fingerprints mean byte-equal archives (given the store's
    /// blobs, which are content-addressed).
    pub fn fingerprint(&self) -> Digest {
        let mut h = super::digest::Hasher::new();
        let mut put = |b: &[u8]| {
            // Length-prefixed, so no two sequences of fields hash alike.
            h.update(&(b.len() as u64).to_le_bytes());
            h.update(b);
        };
        put(ARCHIVE_FORMAT.as_bytes());
        put(&self.mtime.to_le_bytes());
        for (path, source) in &self.entries {
            put(path.as_bytes());
            match source {
                Source::Dir => put(b"dir"),
                Source::Bytes(b) => {
                    put(b"bytes");
                    put(Digest::of(b).to_string().as_bytes());
                }
                Source::Blob(d, size) => {
                    put(b"blob");
                    put(d.to_string().as_bytes());
                    put(&size.to_le_bytes());
                }
                Source::Layer(l, diff_id) => {
                    put(b"layer");
                    put(l.digest.to_string().as_bytes());
                    put(diff_id.to_string().as_bytes());
                }
            }
        }
        Digest::from_bytes(h.finish())
    }

    /// Writes the archive to `out`.
    pub fn write<W: Write>(self, store: &Store, out: W) -> Result<W, ArchiveError> {
        write_entries(store, self.entries, self.mtime, out)
    }
}

/// Writes `images` as an OCI archive that also carries `manifest.json`.
pub fn write_oci_archive<W: Write>(
    store: &Store,
    images: &[NamedImage],
    out: W,
) -> Result<W, ArchiveError> {
    ArchivePlan::oci(store, images)?.write(store, out)
}

fn oci_entries(
    store: &Store,
    images: &[NamedImage],
) -> Result<BTreeMap<String, Source>, ArchiveError> {
    let mut entries = BTreeMap::new();
    entries.insert("blobs/".to_string(), Source::Dir);
    entries.insert("blobs/sha256/".to_string(), Source::Dir);
    for img in images {
        for b in image_blobs(store, &img.descriptor)? {
            let path = format!("blobs/sha256/{}", b.digest.hex());
            entries.insert(path, Source::Blob(b.digest, b.size));
        }
    }
    let index = layout_index(images)?;
    entries.insert(
        "index.json".into(),
        Source::Bytes(json("index.json", &index)?),
    );
    entries.insert("oci-layout".into(), Source::Bytes(OCI_LAYOUT_JSON.to_vec()));
    let path = |d: &Digest| format!("blobs/sha256/{}", d.hex());
    let mut docker = Vec::new();
    for img in images {
        let (m, _) = store.load_manifest(&img.descriptor)?;
        docker.push(DockerArchiveEntry {
            config: path(&m.config.digest),
            repo_tags: Some(img.name.iter().cloned().collect()),
            layers: m.layers.iter().map(|l| path(&l.digest)).collect(),
        });
    }
    entries.insert(
        "manifest.json".into(),
        Source::Bytes(json("manifest.json", &docker)?),
    );
    Ok(entries)
}

/// Writes `images` as a classic docker-archive: uncompressed layers, so any
/// docker, podman or skopeo reads it.
pub fn write_docker_archive<W: Write>(
    store: &Store,
    images: &[NamedImage],
    out: W,
) -> Result<W, ArchiveError> {
    ArchivePlan::docker(store, images)?.write(store, out)
}

fn docker_entries(
    store: &Store,
    images: &[NamedImage],
) -> Result<BTreeMap<String, Source>, ArchiveError> {
    let mut entries = BTreeMap::new();
    let mut docker = Vec::new();
    for img in images {
        let (m, config) = store.load_image(&img.descriptor)?;
        let config_path = format!("{}.json", m.config.digest.hex());
        let bytes = store.read_blob(&m.config.digest)?;
        entries.insert(config_path.clone(), Source::Bytes(bytes));
        let mut layers = Vec::new();
        for (layer, diff_id) in m.layers.iter().zip(&config.rootfs.diff_ids) {
            let dir = format!("{}/", diff_id.hex());
            let path = format!("{dir}layer.tar");
            if !entries.contains_key(&path) {
                entries.insert(dir.clone(), Source::Dir);
                entries.insert(format!("{dir}VERSION"), Source::Bytes(b"1.0".to_vec()));
                let layer = Box::new(layer.clone());
                entries.insert(path.clone(), Source::Layer(layer, *diff_id));
            }
            layers.push(path);
        }
        docker.push(DockerArchiveEntry {
            config: config_path,
            repo_tags: Some(img.name.iter().cloned().collect()),
            layers,
        });
    }
    entries.insert(
        "manifest.json".into(),
        Source::Bytes(json("manifest.json", &docker)?),
    );
    Ok(entries)
}

/// Decompresses a stored layer into an anonymous temp file, checking that
/// it hashes to `diff_id`.
fn decompressed_layer(
    store: &Store,
    layer: &super::Descriptor,
    diff_id: &DiffId,
) -> Result<(File, u64), ArchiveError> {
    let codec = Compression::from_media_type(&layer.media_type).map_err(|source| {
        ArchiveError::LayerMediaType {
            digest: layer.digest,
            source,
        }
    })?;
    let err = |source| ArchiveError::Decompress {
        digest: layer.digest,
        source,
    };
    let tmp = tempfile::tempfile_in(store.tmp_dir()).map_err(err)?;
    let mut w = DigestWriter::new(tmp);
    let mut dec = codec
        .decoder(store.open_blob(&layer.digest)?)
        .map_err(err)?;
    io::copy(&mut dec, &mut w).map_err(err)?;
    let (mut file, sum, size) = w.finish();
    let actual = DiffId::from_bytes(sum);
    if actual != *diff_id {
        return Err(ArchiveError::DiffId {
            digest: layer.digest,
            expected: *diff_id,
            actual,
        });
    }
    file.rewind().map_err(err)?;
    Ok((file, size))
}

fn json<T: Serialize>(what: &'static str, v: &T) -> Result<Vec<u8>, ArchiveError> {
    canonical_json(v).map_err(|source| ArchiveError::Serialize { what, source })
}

/// The mtime archives carry: `SOURCE_DATE_EPOCH` when set, else 0.
pub fn archive_mtime() -> u64 {
    std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

fn write_entries<W: Write>(
    store: &Store,
    entries: BTreeMap<String, Source>,
    mtime: u64,
    out: W,
) -> Result<W, ArchiveError> {
    let mut tar = tar::Builder::new(out);
    for (path, source) in entries {
        let err = |source| ArchiveError::Write {
            path: path.clone(),
            source,
        };
        let mut h = tar::Header::new_ustar();
        h.set_mtime(mtime);
        h.set_uid(0);
        h.set_gid(0);
        match source {
            Source::Dir => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                tar.append_data(&mut h, &path, io::empty()).map_err(err)?;
            }
            Source::Bytes(b) => {
                h.set_mode(0o644);
                h.set_size(b.len() as u64);
                tar.append_data(&mut h, &path, &b[..]).map_err(err)?;
            }
            Source::Blob(d, size) => {
                h.set_mode(0o644);
                h.set_size(size);
                tar.append_data(&mut h, &path, store.open_blob(&d)?)
                    .map_err(err)?;
            }
            Source::Layer(layer, diff_id) => {
                let (f, size) = decompressed_layer(store, &layer, &diff_id)?;
                h.set_mode(0o644);
                h.set_size(size);
                tar.append_data(&mut h, &path, f).map_err(err)?;
            }
        }
    }
    tar.into_inner().map_err(|source| ArchiveError::Write {
        path: "end of archive".into(),
        source,
    })
}
