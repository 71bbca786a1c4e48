//! Cache export and import without a daemon: the step records of a build
//! (and, with `mode=max`, the contents of `RUN --mount=type=cache`
//! directories) as one OCI artifact, in an OCI layout directory or — through
//! [`build_artifact`] / [`import_artifact`] — any registry.
//!
//! The artifact is an OCI image manifest whose `artifactType` and config
//! media type are [`ARTIFACT_TYPE`]; the config blob is the records list
//! (`{"v":1,"records":[{key, layer, created}]}`, a record file each without
//! its `v`); `layers` are the records' layer blobs, then one gzip
//! tar per cache mount ([`MOUNT_MEDIA_TYPE`], annotated with its directory
//! name). Invariants: import verifies every blob's digest before it is in
//! the store, and writes a record only after its layer blob is there; an
//! existing record or cache-mount directory is never replaced.

use std::fs;
use std::io;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::layer::{self, PackOptions, SourceKind, UnpackMode};
use crate::oci::{canonical_json, media_type, Descriptor, Digest, Manifest, Store};

use super::record::LayerFile;
use super::{CacheError, CacheRecord, StepCache, StepKey};

#[path = "export_layout.rs"]
mod layout;
pub use layout::{export_layout, import_layout};

/// `artifactType` of the manifest and media type of its config.
pub const ARTIFACT_TYPE: &str = "application/vnd.kiln.cache.v1+json";
/// Media type of a cache mount's contents (a gzip tar).
pub const MOUNT_MEDIA_TYPE: &str = "application/vnd.kiln.cache.mount.v1.tar+gzip";
/// Annotation naming a cache mount's directory (`sha256` hex of its id).
pub const MOUNT_ANNOTATION: &str = "dev.kiln.cache.mount";

/// `mode=` of `--cache-to`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// The records of the final image's steps.
    Min,
    /// Every step of every built stage, and the cache mounts' contents.
    Max,
}

impl Mode {
    /// Parses `min` or `max`.
    pub fn parse(s: &str) -> Result<Self, CacheError> {
        match s {
            "min" => Ok(Self::Min),
            "max" => Ok(Self::Max),
            other => Err(CacheError::BadMode {
                mode: other.to_string(),
            }),
        }
    }
}

/// What to export.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportSpec {
    /// The mode (decides whether cache mounts go along).
    pub mode: Mode,
    /// The step keys whose records go along.
    pub keys: Vec<StepKey>,
}

impl ExportSpec {
    /// The steps of the newest logged build, as `mode` selects them.
    pub fn latest(steps: &StepCache, mode: Mode) -> Result<Self, CacheError> {
        Self::latest_builds(steps, mode, 1)
    }

    /// The steps of the `builds` newest logged builds (a multi-platform
    /// build logs one per platform), each key once, oldest build first.
    pub fn latest_builds(steps: &StepCache, mode: Mode, builds: usize) -> Result<Self, CacheError> {
        let logs = steps.logs()?;
        if logs.is_empty() {
            return Err(CacheError::NoBuildLogged);
        }
        let mut keys = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        for log in &logs[logs.len().saturating_sub(builds.max(1))..] {
            let these = match mode {
                Mode::Min => log.final_image_keys(),
                Mode::Max => log.steps.iter().map(|s| s.key).collect(),
            };
            keys.extend(these.into_iter().filter(|k| seen.insert(*k)));
        }
        Ok(Self { mode, keys })
    }
}

/// One record as the artifact carries it (a record file without `v`).
#[derive(Serialize, Deserialize)]
struct RecordEntry {
    key: StepKey,
    layer: Option<LayerFile>,
    created: i64,
}

/// The artifact's config blob.
#[derive(Serialize, Deserialize)]
struct RecordsBlob {
    /// Format version (1).
    v: u32,
    records: Vec<RecordEntry>,
}

/// The artifact: push `blobs` (all in the store), then `config_bytes`, then
/// `manifest_bytes` (media type [`media_type::OCI_MANIFEST`]).
#[derive(Clone, Debug)]
pub struct CacheArtifact {
    /// The manifest's canonical JSON.
    pub manifest_bytes: Vec<u8>,
    /// Its descriptor (digest of `manifest_bytes`).
    pub manifest: Descriptor,
    /// The config blob (the records list), also written to the store.
    pub config_bytes: Vec<u8>,
    /// The layer and cache-mount blobs, all in the store.
    pub blobs: Vec<Descriptor>,
}

/// What an export or import moved.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TransferReport {
    /// Records written (import) or carried (export).
    pub records: usize,
    /// Blobs copied.
    pub blobs: usize,
    /// Cache mounts restored (import) or carried (export).
    pub mounts: usize,
}

fn mounts_dir(store: &Store) -> PathBuf {
    crate::store::Layout::of(store).cache_mounts()
}

/// Builds the artifact for `spec` from the store (packing cache mounts into
/// store blobs for `mode=max`). Records whose blob is gone are left out.
pub fn build_artifact(store: &Store, spec: &ExportSpec) -> Result<CacheArtifact, CacheError> {
    let steps = StepCache::with_store(store.clone())?;
    let mut records = vec![];
    let mut blobs: Vec<Descriptor> = vec![];
    for key in &spec.keys {
        let Some(rec) = steps.get(key)? else { continue };
        if records.iter().any(|r: &RecordEntry| r.key == rec.key) {
            continue;
        }
        // Every encoding the store holds travels: an importer building in
        // another compression then hits without re-encoding.
        for e in rec.encodings() {
            if !blobs.iter().any(|b| b.digest == e.digest) {
                blobs.push(Descriptor::new(e.media_type.clone(), e.digest, e.size));
            }
        }
        records.push(RecordEntry {
            key: rec.key,
            layer: LayerFile::of(&rec),
            created: rec.created,
        });
    }
    if spec.mode == Mode::Max {
        blobs.extend(pack_mounts(store)?);
    }
    let config_bytes = json(&RecordsBlob { v: 1, records }, "cache records")?;
    let (cdigest, csize) = store.put_blob(&config_bytes).map_err(CacheError::Blob)?;
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(media_type::OCI_MANIFEST.into()),
        config: Descriptor::new(ARTIFACT_TYPE, cdigest, csize),
        layers: blobs.clone(),
        annotations: Default::default(),
    };
    let mut value = serde_json::to_value(&manifest).map_err(|source| CacheError::Encode {
        what: "cache manifest",
        source,
    })?;
    if let serde_json::Value::Object(m) = &mut value {
        m.insert("artifactType".into(), ARTIFACT_TYPE.into());
    }
    let manifest_bytes = json(&value, "cache manifest")?;
    let (digest, size) = store.put_blob(&manifest_bytes).map_err(CacheError::Blob)?;
    Ok(CacheArtifact {
        manifest: Descriptor::new(media_type::OCI_MANIFEST, digest, size),
        manifest_bytes,
        config_bytes,
        blobs,
    })
}

fn json<T: Serialize>(v: &T, what: &'static str) -> Result<Vec<u8>, CacheError> {
    canonical_json(v).map_err(|source| CacheError::Encode { what, source })
}

/// Each cache-mount directory as a gzip tar blob in the store.
fn pack_mounts(store: &Store) -> Result<Vec<Descriptor>, CacheError> {
    let dir = mounts_dir(store);
    let mut out = vec![];
    let entries = match fs::read_dir(&dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
        Err(source) => return Err(CacheError::List { path: dir, source }),
    };
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    for path in dirs {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        let Some(name) = name else { continue };
        let mut w = store.begin_blob().map_err(CacheError::Blob)?;
        layer::pack(&path, SourceKind::Plain, &PackOptions::default(), &mut w).map_err(
            |source| CacheError::PackMount {
                path: path.clone(),
                source,
            },
        )?;
        let (digest, size) = w.commit().map_err(CacheError::Blob)?;
        let mut d = Descriptor::new(MOUNT_MEDIA_TYPE, digest, size);
        d.annotations.insert(MOUNT_ANNOTATION.into(), name);
        out.push(d);
    }
    Ok(out)
}

/// Merges an artifact whose blobs are already in the store (verified by
/// whoever put them there): writes the records that are not there yet and
/// restores cache mounts that do not exist yet.
pub fn import_artifact(
    store: &Store,
    manifest_bytes: &[u8],
    config_bytes: &[u8],
) -> Result<TransferReport, CacheError> {
    let bad = |what: &'static str| CacheError::BadArtifact { what };
    let manifest: Manifest =
        serde_json::from_slice(manifest_bytes).map_err(|_| bad("manifest is not json"))?;
    if manifest.config.media_type != ARTIFACT_TYPE {
        return Err(bad("config media type is not a kiln cache"));
    }
    if Digest::of(config_bytes) != manifest.config.digest {
        return Err(bad("config digest does not match the manifest"));
    }
    let blob: RecordsBlob =
        serde_json::from_slice(config_bytes).map_err(|_| bad("records are not json"))?;
    let steps = StepCache::with_store(store.clone())?;
    let mut report = TransferReport::default();
    for r in blob.records {
        let (layer, other_encodings) = LayerFile::read(r.layer);
        let mut theirs = CacheRecord {
            other_encodings,
            created: r.created,
            ..CacheRecord::new(r.key, layer)
        };
        if !theirs.retain_encodings(|e| store.has_blob(&e.digest)) {
            return Err(bad("a record's layer blob is missing"));
        }
        if let Some(mut have) = steps.get(&r.key)? {
            // Known already: keep it, learning the encodings it lacked.
            let same_tar = matches!((&have.layer, &theirs.layer), (Some(a), Some(b)) if a.diff_id == b.diff_id);
            if same_tar {
                let before = have.clone();
                for e in theirs.encodings() {
                    if have.layer_as(&e.media_type).is_none() {
                        have.add_encoding(e.clone());
                    }
                }
                if have != before {
                    steps.put(&have, None)?;
                }
            }
            continue;
        }
        steps.put(&theirs, None)?;
        report.records += 1;
    }
    for d in manifest
        .layers
        .iter()
        .filter(|d| d.media_type == MOUNT_MEDIA_TYPE)
    {
        let Some(name) = d.annotations.get(MOUNT_ANNOTATION) else {
            return Err(bad("a cache mount without its name"));
        };
        if name.len() != 64 || !name.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad("a cache mount name that is not a sha256 hex"));
        }
        if restore_mount(store, d, name)? {
            report.mounts += 1;
        }
    }
    Ok(report)
}

/// Unpacks a cache-mount blob into `cache/mounts/<name>` unless it exists.
fn restore_mount(store: &Store, d: &Descriptor, name: &str) -> Result<bool, CacheError> {
    let dest = mounts_dir(store).join(name);
    if dest.exists() {
        return Ok(false);
    }
    let tmp = tempfile::Builder::new()
        .prefix("mount-")
        .tempdir_in(store.tmp_dir())
        .map_err(|source| CacheError::CreateDir {
            path: store.tmp_dir(),
            source,
        })?;
    let blob = store.open_blob(&d.digest).map_err(CacheError::Blob)?;
    let unpack_err = |source| CacheError::UnpackMount {
        digest: d.digest,
        source,
    };
    layer::unpack(blob, tmp.path(), UnpackMode::Apply).map_err(unpack_err)?;
    let parent = mounts_dir(store);
    fs::create_dir_all(&parent).map_err(|source| CacheError::CreateDir {
        path: parent.clone(),
        source,
    })?;
    let staged = tmp.keep();
    match fs::rename(&staged, &dest) {
        Ok(()) => Ok(true),
        // A build created the mount meanwhile: its contents win.
        Err(_) if dest.exists() => {
            let _ = fs::remove_dir_all(&staged);
            Ok(false)
        }
        Err(source) => Err(CacheError::CreateDir { path: dest, source }),
    }
}
