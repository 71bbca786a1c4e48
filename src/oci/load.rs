//! Loading images into the store from an OCI layout dir, an OCI archive (with
//! or without docker's `manifest.json`) or a docker-archive, keeping the names
//! they carry.
//!
//! Invariants: every blob is verified against its digest while it is copied
//! into the store; every loaded image passes `validate` before it is named.
//! A docker-archive's layers are stored as they are: an uncompressed tar
//! becomes an `application/vnd.oci.image.layer.v1.tar` layer (gzip and zstd
//! tars keep their codec), under a fresh OCI manifest.

use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Component, Path, PathBuf};

use super::archive::DockerArchiveEntry;
use super::compression::Compression;
use super::layout::{import_layout, LayoutError};
use super::{
    media_type, validate, Descriptor, Digest, ImageConfig, Manifest, Store, StoreError,
    ValidateError,
};

/// Errors loading an image.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A store operation.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Importing an OCI layout.
    #[error("importing OCI layout")]
    Layout(#[from] LayoutError),
    /// Opening or reading the input.
    #[error("reading {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Unpacking the archive into the store's tmp dir.
    #[error("unpacking archive {path}")]
    Unpack {
        /// The archive.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The input is neither an OCI layout nor a docker-archive.
    #[error("{path} is not an OCI layout, OCI archive or docker-archive (no index.json or manifest.json)")]
    UnknownFormat {
        /// The input.
        path: PathBuf,
    },
    /// `manifest.json` or a config in a docker-archive does not parse.
    #[error("parsing {path}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// A path inside `manifest.json` leaves the archive.
    #[error("archive path {path:?} escapes the archive")]
    UnsafePath {
        /// The path as written.
        path: String,
    },
    /// A loaded image failed `validate`.
    #[error("validating image {digest}")]
    Invalid {
        /// The manifest.
        digest: Digest,
        /// The cause.
        #[source]
        source: Box<ValidateError>,
    },
    /// `--tag` was given for an input holding several images.
    #[error("--tag needs an input with one image, this one has {count}")]
    TagMany {
        /// Images in the input.
        count: usize,
    },
}

/// An image `load` brought into the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedImage {
    /// The names it was tagged with (familiar form); empty when it has none.
    pub names: Vec<String>,
    /// The manifest or index.
    pub descriptor: Descriptor,
}

/// Loads every image in `input` (a layout dir or an archive file, optionally
/// gzip-compressed) into the store and names it. `tag`, when given, names
/// the single image instead of the names the input carries.
pub fn load(store: &Store, input: &Path, tag: Option<&str>) -> Result<Vec<LoadedImage>, LoadError> {
    let mut images = if input.is_dir() {
        load_dir(store, input)?
    } else {
        let tmp = tempfile::Builder::new()
            .prefix("load-")
            .tempdir_in(store.tmp_dir())
            .map_err(|source| LoadError::Unpack {
                path: input.to_path_buf(),
                source,
            })?;
        unpack(input, tmp.path())?;
        load_dir(store, tmp.path())?
    };
    if let Some(t) = tag {
        match images.as_mut_slice() {
            [one] => one.names = vec![t.to_string()],
            many => return Err(LoadError::TagMany { count: many.len() }),
        }
    }
    for img in &mut images {
        for name in &mut img.names {
            store.tag(name, &img.descriptor)?;
            *name = super::normalize_name(name).map_err(StoreError::from)?;
        }
    }
    Ok(images)
}

fn unpack(input: &Path, dest: &Path) -> Result<(), LoadError> {
    let read_err = |source| LoadError::Read {
        path: input.to_path_buf(),
        source,
    };
    let mut file = BufReader::new(File::open(input).map_err(read_err)?);
    let head = file.fill_buf().map_err(read_err)?.to_vec();
    let reader: Box<dyn Read> = Compression::sniff(&head).decoder(file).map_err(read_err)?;
    // tar's unpack_in refuses `..`, absolute paths and writes through symlinks.
    let mut archive = tar::Archive::new(reader);
    let entries = archive.entries().map_err(|source| LoadError::Unpack {
        path: input.to_path_buf(),
        source,
    })?;
    for entry in entries {
        let unpack_err = |source| LoadError::Unpack {
            path: input.to_path_buf(),
            source,
        };
        entry
            .map_err(unpack_err)?
            .unpack_in(dest)
            .map_err(unpack_err)?;
    }
    Ok(())
}

fn load_dir(store: &Store, dir: &Path) -> Result<Vec<LoadedImage>, LoadError> {
    let manifest_json = dir.join("manifest.json");
    let docker = if manifest_json.is_file() {
        let bytes = fs::read(&manifest_json).map_err(|source| LoadError::Read {
            path: manifest_json.clone(),
            source,
        })?;
        let entries: Vec<DockerArchiveEntry> =
            serde_json::from_slice(&bytes).map_err(|source| LoadError::Parse {
                path: manifest_json.clone(),
                source,
            })?;
        Some(entries)
    } else {
        None
    };
    match (dir.join("index.json").is_file(), docker) {
        (true, docker) => {
            let mut images: Vec<LoadedImage> = import_layout(store, dir)?
                .into_iter()
                .map(|i| LoadedImage {
                    names: i.name.into_iter().collect(),
                    descriptor: i.descriptor,
                })
                .collect();
            if let Some(entries) = docker {
                name_from_repo_tags(store, &mut images, &entries)?;
            }
            Ok(images)
        }
        (false, Some(entries)) => entries
            .iter()
            .map(|e| load_docker_entry(store, dir, e))
            .collect(),
        (false, None) => Err(LoadError::UnknownFormat {
            path: dir.to_path_buf(),
        }),
    }
}

/// Names layout images from docker's `RepoTags` when the layout's index
/// gave them none (a docker 25 archive names images in both places).
fn name_from_repo_tags(
    store: &Store,
    images: &mut [LoadedImage],
    entries: &[DockerArchiveEntry],
) -> Result<(), LoadError> {
    for img in images.iter_mut().filter(|i| i.names.is_empty()) {
        let config = store.config_digest(&img.descriptor)?;
        let hit = entries
            .iter()
            .find(|e| e.config.trim_end_matches(".json").ends_with(&config.hex()));
        img.names = hit.and_then(|e| e.repo_tags.clone()).unwrap_or_default();
    }
    Ok(())
}

fn load_docker_entry(
    store: &Store,
    dir: &Path,
    entry: &DockerArchiveEntry,
) -> Result<LoadedImage, LoadError> {
    let config_path = inside(dir, &entry.config)?;
    let config_bytes = fs::read(&config_path).map_err(|source| LoadError::Read {
        path: config_path.clone(),
        source,
    })?;
    // Parsed only to refuse garbage early; the bytes are stored verbatim so
    // the image ID (config digest) stays the one docker showed.
    let _: ImageConfig =
        serde_json::from_slice(&config_bytes).map_err(|source| LoadError::Parse {
            path: config_path,
            source,
        })?;
    let (cd, cs) = store.put_blob(&config_bytes)?;
    let mut layers = Vec::new();
    for l in &entry.layers {
        layers.push(store_layer(store, &inside(dir, l)?)?);
    }
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(media_type::OCI_MANIFEST.into()),
        config: Descriptor::new(media_type::OCI_CONFIG, cd, cs),
        layers,
        annotations: Default::default(),
    };
    let desc = store.put_json(media_type::OCI_MANIFEST, &manifest)?;
    validate(store, &desc).map_err(|source| LoadError::Invalid {
        digest: desc.digest,
        source: Box::new(source),
    })?;
    Ok(LoadedImage {
        names: entry.repo_tags.clone().unwrap_or_default(),
        descriptor: desc,
    })
}

/// Copies a layer file into the store as it is, typed by its magic bytes.
fn store_layer(store: &Store, path: &Path) -> Result<Descriptor, LoadError> {
    let read_err = |source| LoadError::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut src = BufReader::new(File::open(path).map_err(read_err)?);
    let codec = Compression::sniff(src.fill_buf().map_err(read_err)?);
    let mut w = store.begin_blob()?;
    io::copy(&mut src, &mut w).map_err(read_err)?;
    let (digest, size) = w.commit()?;
    Ok(Descriptor::new(codec.oci_media_type(), digest, size))
}

/// `rel` joined under `dir`, refusing absolute paths, `..` and symlinks
/// that lead out of `dir`.
fn inside(dir: &Path, rel: &str) -> Result<PathBuf, LoadError> {
    let unsafe_path = || LoadError::UnsafePath {
        path: rel.to_string(),
    };
    let p = Path::new(rel);
    if !p
        .components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err(unsafe_path());
    }
    let joined = dir.join(p);
    let read_err = |source| LoadError::Read {
        path: joined.clone(),
        source,
    };
    let real = joined.canonicalize().map_err(read_err)?;
    let root = dir.canonicalize().map_err(read_err)?;
    if real.starts_with(&root) {
        Ok(real)
    } else {
        Err(unsafe_path())
    }
}
