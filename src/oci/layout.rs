//! OCI image layout directories (`oci-layout`, `index.json`, `blobs/`):
//! writing images from the store into one, and importing one into the store.
//!
//! Invariants: an import copies every blob through a verifying writer (a blob
//! whose bytes do not match its descriptor never enters the store) and runs
//! `validate` on each image before naming it; an export lists images in the
//! order given, so the same images give the same `index.json` bytes.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use super::reference::normalize_name;
use super::spec::ANNOTATION_REF_NAME;
use super::store::OCI_LAYOUT_JSON;
use super::{
    canonical_json, media_type, validate, Descriptor, Digest, Index, Manifest, Reference,
    ReferenceError, Store, StoreError, ValidateError,
};

/// containerd's (and docker 25's) annotation for the full image name.
pub const ANNOTATION_CONTAINERD_NAME: &str = "io.containerd.image.name";

/// An image with the name it is exported or was loaded under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedImage {
    /// The familiar name (`busybox:latest`), when it has one.
    pub name: Option<String>,
    /// The manifest or index.
    pub descriptor: Descriptor,
}

/// Errors writing or importing a layout dir.
#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    /// A store operation.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Writing into the destination directory.
    #[error("writing {path}")]
    Write {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Reading from the source layout.
    #[error("reading {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A layout's `index.json` or a manifest in it does not parse.
    #[error("parsing {path}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// A name annotation is not a valid reference.
    #[error("image name annotation {name:?}")]
    Name {
        /// The annotation's value.
        name: String,
        /// The cause.
        #[source]
        source: ReferenceError,
    },
    /// An imported image failed `validate`.
    #[error("validating image {digest}")]
    Invalid {
        /// The manifest.
        digest: Digest,
        /// The cause.
        #[source]
        source: Box<ValidateError>,
    },
    /// Serializing `index.json`.
    #[error("serializing index.json")]
    Serialize(#[source] serde_json::Error),
    /// The layout lists no image by that tag (and not exactly one image).
    #[error("no image tagged {tag:?} in {path} (and it lists {count} images, not one)")]
    NoTag {
        /// The layout's `index.json`.
        path: PathBuf,
        /// The tag asked for.
        tag: String,
        /// How many images it lists.
        count: usize,
    },
}

/// The descriptors of every blob the image needs (itself first, then for
/// each manifest its config and layers), without duplicates.
pub fn image_blobs(store: &Store, image: &Descriptor) -> Result<Vec<Descriptor>, StoreError> {
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    collect(store, image, &mut out, &mut seen)?;
    Ok(out)
}

fn collect(
    store: &Store,
    d: &Descriptor,
    out: &mut Vec<Descriptor>,
    seen: &mut BTreeSet<Digest>,
) -> Result<(), StoreError> {
    if !seen.insert(d.digest) {
        return Ok(());
    }
    out.push(Descriptor::new(d.media_type.clone(), d.digest, d.size));
    match d.media_type.as_str() {
        media_type::OCI_INDEX | media_type::DOCKER_MANIFEST_LIST => {
            let bytes = store.read_blob(&d.digest)?;
            let index: Index =
                serde_json::from_slice(&bytes).map_err(|source| StoreError::ParseBlob {
                    what: "index",
                    digest: d.digest,
                    source,
                })?;
            for child in &index.manifests {
                collect(store, child, out, seen)?;
            }
        }
        _ => {
            let (m, _) = store.load_manifest(d)?;
            for blob in m.blobs() {
                if seen.insert(blob.digest) {
                    out.push(blob.clone());
                }
            }
        }
    }
    Ok(())
}

/// The `index.json` of a layout holding `images`.
// COMPAT(buildkit): like BuildKit and docker 25, the ref.name annotation is
// the tag and io.containerd.image.name the full name, so `umoci --image
// dir:latest` and `skopeo oci:dir:latest` find it.
pub fn layout_index(images: &[NamedImage]) -> Result<Index, LayoutError> {
    let mut manifests = Vec::new();
    for img in images {
        let mut d = img.descriptor.clone();
        d.annotations.clear();
        if let Some(name) = &img.name {
            let r = Reference::parse(name).map_err(|source| LayoutError::Name {
                name: name.clone(),
                source,
            })?;
            d.annotations
                .insert(ANNOTATION_CONTAINERD_NAME.into(), r.qualified());
            if let Some(tag) = r.tag {
                d.annotations.insert(ANNOTATION_REF_NAME.into(), tag);
            }
        }
        manifests.push(d);
    }
    Ok(Index {
        schema_version: 2,
        media_type: Some(media_type::OCI_INDEX.into()),
        manifests,
        annotations: Default::default(),
    })
}

/// Writes `images` from the store into the layout dir `dest` (created when
/// absent; its `index.json` is replaced, existing blobs are kept). Every
/// file is written to a temp file in `dest` and renamed into place, so a
/// killed export never leaves a partial blob under its digest; a blob
/// already present with its size is kept (blobs are content-addressed),
/// and `index.json`/`oci-layout` are left alone when they hold the bytes
/// wanted, so a no-op export rewrites nothing.
pub fn write_layout(store: &Store, images: &[NamedImage], dest: &Path) -> Result<(), LayoutError> {
    let blobs = dest.join("blobs/sha256");
    fs::create_dir_all(&blobs).map_err(|source| LayoutError::Write {
        path: blobs.clone(),
        source,
    })?;
    for img in images {
        for b in image_blobs(store, &img.descriptor)? {
            let to = blobs.join(b.digest.hex());
            if fs::metadata(&to).is_ok_and(|m| m.len() == b.size) {
                continue;
            }
            replace(dest, &to, |f| {
                io::copy(&mut File::open(store.blob_path(&b.digest))?, f).map(drop)
            })?;
        }
    }
    let index = layout_index(images)?;
    let index_bytes = canonical_json(&index).map_err(LayoutError::Serialize)?;
    for (name, bytes) in [
        ("oci-layout", OCI_LAYOUT_JSON),
        ("index.json", &index_bytes),
    ] {
        let path = dest.join(name);
        if fs::read(&path).is_ok_and(|b| b == bytes) {
            continue;
        }
        replace(dest, &path, |f| io::Write::write_all(f, bytes))?;
    }
    Ok(())
}

/// Writes `path` through a temp file in `dir` (same file system) renamed
/// over it.
fn replace(
    dir: &Path,
    path: &Path,
    write: impl FnOnce(&mut File) -> io::Result<()>,
) -> Result<(), LayoutError> {
    let err = |source| LayoutError::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".kiln-tmp-")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))
        .tempfile_in(dir)
        .map_err(err)?;
    write(tmp.as_file_mut()).map_err(err)?;
    tmp.persist(path).map_err(|e| err(e.error))?;
    Ok(())
}

/// Copies every image a layout dir lists into the store and validates each.
/// Returns the images found, in index order, with the names their
/// annotations carry; naming them in the store is the caller's choice.
pub fn import_layout(store: &Store, dir: &Path) -> Result<Vec<NamedImage>, LayoutError> {
    let (_, index) = read_index(dir)?;
    let mut out = Vec::new();
    for d in &index.manifests {
        copy_tree(store, dir, d)?;
        validate(store, d).map_err(|source| LayoutError::Invalid {
            digest: d.digest,
            source: Box::new(source),
        })?;
        let name = entry_name(d)?;
        let mut descriptor = d.clone();
        descriptor.annotations.clear();
        out.push(NamedImage { name, descriptor });
    }
    Ok(out)
}

/// Copies one image of a layout dir into the store and validates it, as
/// buildx picks it for `oci-layout://DIR[:TAG][@DIGEST]`: the blob `digest`
/// when given (listed in `index.json` or not), else the entry whose
/// `io.containerd.image.name` or `org.opencontainers.image.ref.name` is
/// `tag`, else the only entry. Returns its descriptor (a manifest or an
/// index), not named in the store.
pub fn import_layout_image(
    store: &Store,
    dir: &Path,
    tag: &str,
    digest: Option<&Digest>,
) -> Result<Descriptor, LayoutError> {
    let (path, index) = read_index(dir)?;
    let tagged = |d: &&Descriptor| {
        d.annotations
            .get(ANNOTATION_CONTAINERD_NAME)
            .map(String::as_str)
            == Some(tag)
            || d.annotations.get(ANNOTATION_REF_NAME).map(String::as_str) == Some(tag)
    };
    let mut d = match digest {
        Some(dg) => match index.manifests.iter().find(|d| d.digest == *dg) {
            Some(d) => d.clone(),
            None => blob_descriptor(dir, dg)?,
        },
        None => match (index.manifests.iter().find(tagged), &index.manifests[..]) {
            (Some(d), _) | (None, [d]) => d.clone(),
            (None, all) => {
                return Err(LayoutError::NoTag {
                    path,
                    tag: tag.to_string(),
                    count: all.len(),
                })
            }
        },
    };
    d.annotations.clear();
    copy_tree(store, dir, &d)?;
    validate(store, &d).map_err(|source| LayoutError::Invalid {
        digest: d.digest,
        source: Box::new(source),
    })?;
    Ok(d)
}

/// A layout's `index.json`, parsed, and its path.
fn read_index(dir: &Path) -> Result<(PathBuf, Index), LayoutError> {
    let path = dir.join("index.json");
    let bytes = fs::read(&path).map_err(|source| LayoutError::Read {
        path: path.clone(),
        source,
    })?;
    match serde_json::from_slice(&bytes) {
        Ok(index) => Ok((path, index)),
        Err(source) => Err(LayoutError::Parse { path, source }),
    }
}

/// The descriptor of a manifest or index blob of the layout that
/// `index.json` does not list (its media type read from the blob).
fn blob_descriptor(dir: &Path, digest: &Digest) -> Result<Descriptor, LayoutError> {
    #[derive(serde::Deserialize)]
    struct Probe {
        #[serde(rename = "mediaType")]
        media_type: Option<String>,
        manifests: Option<serde_json::Value>,
    }
    let path = dir.join("blobs/sha256").join(digest.hex());
    let bytes = fs::read(&path).map_err(|source| LayoutError::Read {
        path: path.clone(),
        source,
    })?;
    let probe: Probe =
        serde_json::from_slice(&bytes).map_err(|source| LayoutError::Parse { path, source })?;
    let media_type = probe.media_type.unwrap_or_else(|| {
        match probe.manifests {
            Some(_) => media_type::OCI_INDEX,
            None => media_type::OCI_MANIFEST,
        }
        .to_string()
    });
    Ok(Descriptor::new(media_type, *digest, bytes.len() as u64))
}

/// The image name an index entry carries, if any.
// COMPAT(buildkit): a bare ref.name ("latest") is only a tag, not a name;
// io.containerd.image.name wins when present.
fn entry_name(d: &Descriptor) -> Result<Option<String>, LayoutError> {
    let raw = match (
        d.annotations.get(ANNOTATION_CONTAINERD_NAME),
        d.annotations.get(ANNOTATION_REF_NAME),
    ) {
        (Some(n), _) => n,
        (None, Some(r)) if r.contains(':') || r.contains('/') => r,
        _ => return Ok(None),
    };
    normalize_name(raw)
        .map(Some)
        .map_err(|source| LayoutError::Name {
            name: raw.clone(),
            source,
        })
}

/// Copies `d` and everything it references from the layout into the store.
fn copy_tree(store: &Store, dir: &Path, d: &Descriptor) -> Result<(), LayoutError> {
    copy_blob(store, dir, d)?;
    let path = dir.join("blobs/sha256").join(d.digest.hex());
    let parse_err = |source| LayoutError::Parse {
        path: path.clone(),
        source,
    };
    match d.media_type.as_str() {
        media_type::OCI_INDEX | media_type::DOCKER_MANIFEST_LIST => {
            let index: Index =
                serde_json::from_slice(&store.read_blob(&d.digest)?).map_err(parse_err)?;
            index
                .manifests
                .iter()
                .try_for_each(|c| copy_tree(store, dir, c))
        }
        media_type::OCI_MANIFEST | media_type::DOCKER_MANIFEST => {
            let m: Manifest =
                serde_json::from_slice(&store.read_blob(&d.digest)?).map_err(parse_err)?;
            let copied = m.blobs().try_for_each(|b| copy_blob(store, dir, b));
            copied
        }
        // validate names the unsupported media type.
        _ => Ok(()),
    }
}

/// Copies one blob into the store through a verifying writer.
pub(crate) fn copy_blob(store: &Store, dir: &Path, d: &Descriptor) -> Result<(), LayoutError> {
    if store.has_blob(&d.digest) {
        return Ok(());
    }
    let path = dir.join("blobs/sha256").join(d.digest.hex());
    let read_err = |source| LayoutError::Read {
        path: path.clone(),
        source,
    };
    let mut src = File::open(&path).map_err(read_err)?;
    let mut w = store.begin_blob()?;
    io::copy(&mut src, &mut w).map_err(read_err)?;
    w.commit_verified(&d.digest, d.size)?;
    Ok(())
}
