//! `validate`: the invariant checker every test that makes an image calls.
//! It reads an image from a store or an OCI layout dir and checks what a
//! registry, `docker load` or a runtime would trip over: every blob present
//! with its descriptor's size and digest, consistent media types, a config
//! that parses and whose `rootfs.diff_ids` match the decompressed layers, a
//! history that agrees with the layers, and a platform.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

mod error;

pub use error::ValidateError;

use super::compression::Compression;
use super::{media_type, DiffId, Digest, DigestWriter, ImageConfig, Index, Manifest, Store};

/// Where `validate` reads blobs from.
pub trait BlobSource {
    /// Opens the blob `digest`; `NotFound` when absent.
    fn open_blob(&self, digest: &Digest) -> io::Result<Box<dyn Read + '_>>;
}

impl BlobSource for Store {
    fn open_blob(&self, digest: &Digest) -> io::Result<Box<dyn Read + '_>> {
        Ok(Box::new(File::open(self.blob_path(digest))?))
    }
}

/// An OCI image layout directory (`oci-layout`, `index.json`, `blobs/`).
#[derive(Debug, Clone)]
pub struct LayoutDir(pub PathBuf);

impl BlobSource for LayoutDir {
    fn open_blob(&self, digest: &Digest) -> io::Result<Box<dyn Read + '_>> {
        let p = self.0.join("blobs/sha256").join(digest.hex());
        Ok(Box::new(File::open(p)?))
    }
}

/// Checks the image (manifest or index) `manifest` in `source`.
pub fn validate(
    source: &dyn BlobSource,
    manifest: &super::Descriptor,
) -> Result<(), ValidateError> {
    match manifest.media_type.as_str() {
        media_type::OCI_INDEX | media_type::DOCKER_MANIFEST_LIST => {
            let bytes = read_verified(source, &manifest.digest, manifest.size)?;
            let index: Index = parse("index", &manifest.digest, &bytes)?;
            check_self_type("index", manifest, index.media_type.as_deref())?;
            index.manifests.iter().try_for_each(|child| {
                if child.is_attestation() {
                    validate_attestation(source, child, &index)
                } else {
                    validate(source, child)
                }
            })
        }
        media_type::OCI_MANIFEST | media_type::DOCKER_MANIFEST => {
            validate_manifest(source, manifest)
        }
        other => Err(ValidateError::MediaType {
            what: "manifest",
            digest: manifest.digest,
            media_type: other.to_string(),
            expected: format!("{} or {}", media_type::OCI_MANIFEST, media_type::OCI_INDEX),
        }),
    }
}

/// Checks every image an OCI layout dir's `index.json` lists.
pub fn validate_layout(dir: &Path) -> Result<(), ValidateError> {
    let path = dir.join("index.json");
    let bytes = std::fs::read(&path).map_err(|source| ValidateError::ReadLayout {
        path: path.clone(),
        source,
    })?;
    let index: Index = serde_json::from_slice(&bytes)
        .map_err(|source| ValidateError::ParseLayout { path, source })?;
    let layout = LayoutDir(dir.to_path_buf());
    index
        .manifests
        .iter()
        .try_for_each(|m| validate(&layout, m))
}

fn validate_manifest(
    source: &dyn BlobSource,
    desc: &super::Descriptor,
) -> Result<(), ValidateError> {
    let bytes = read_verified(source, &desc.digest, desc.size)?;
    let m: Manifest = parse("manifest", &desc.digest, &bytes)?;
    check_self_type("manifest", desc, m.media_type.as_deref())?;
    let docker = desc.media_type == media_type::DOCKER_MANIFEST;
    let want_config = if docker {
        media_type::DOCKER_CONFIG
    } else {
        media_type::OCI_CONFIG
    };
    if m.config.media_type != want_config {
        return Err(ValidateError::MediaType {
            what: "config",
            digest: m.config.digest,
            media_type: m.config.media_type.clone(),
            expected: want_config.to_string(),
        });
    }
    let config_bytes = read_verified(source, &m.config.digest, m.config.size)?;
    let config: ImageConfig = parse("config", &m.config.digest, &config_bytes)?;
    check_config(&m, &config)?;
    for (i, layer) in m.layers.iter().enumerate() {
        check_layer_type(layer, docker)?;
        let actual = layer_diff_id(source, layer)?;
        let expected = config.rootfs.diff_ids[i];
        if actual != expected {
            return Err(ValidateError::DiffId {
                index: i,
                digest: layer.digest,
                expected,
                actual,
            });
        }
    }
    Ok(())
}

/// An attestation manifest (BuildKit's layout): its reference digest names
/// a sibling manifest, each layer is an in-toto statement whose predicate
/// type is its annotation's and whose subjects are that manifest.
fn validate_attestation(
    source: &dyn BlobSource,
    desc: &super::Descriptor,
    index: &Index,
) -> Result<(), ValidateError> {
    let subject = desc
        .annotations
        .get(super::spec::ANNOTATION_REFERENCE_DIGEST)
        .and_then(|d| Digest::parse(d).ok())
        .filter(|d| {
            index
                .manifests
                .iter()
                .any(|m| m.digest == *d && !m.is_attestation())
        })
        .ok_or(ValidateError::AttestationReference {
            digest: desc.digest,
        })?;
    let bytes = read_verified(source, &desc.digest, desc.size)?;
    let m: Manifest = parse("manifest", &desc.digest, &bytes)?;
    check_self_type("manifest", desc, m.media_type.as_deref())?;
    let config_bytes = read_verified(source, &m.config.digest, m.config.size)?;
    if m.config.media_type != media_type::OCI_EMPTY {
        let _: ImageConfig = parse("config", &m.config.digest, &config_bytes)?;
    }
    // The OCI artifact form (BuildKit's oci-artifact=true) names the image
    // manifest as its subject too.
    #[derive(serde::Deserialize)]
    struct Subject {
        subject: Option<super::Descriptor>,
    }
    let s: Subject = parse("manifest", &desc.digest, &bytes)?;
    if s.subject.is_some_and(|d| d.digest != subject) {
        return Err(ValidateError::AttestationReference {
            digest: desc.digest,
        });
    }
    #[derive(serde::Deserialize)]
    struct Statement {
        #[serde(rename = "_type")]
        _type: String,
        #[serde(rename = "predicateType")]
        predicate_type: String,
        subject: Vec<StatementSubject>,
        #[serde(rename = "predicate")]
        _predicate: serde_json::Value,
    }
    #[derive(serde::Deserialize)]
    struct StatementSubject {
        digest: std::collections::BTreeMap<String, String>,
    }
    for layer in &m.layers {
        let bad = |why| ValidateError::Statement {
            digest: layer.digest,
            why,
        };
        if layer.media_type != media_type::IN_TOTO {
            return Err(bad("media type is not application/vnd.in-toto+json"));
        }
        let bytes = read_verified(source, &layer.digest, layer.size)?;
        let stmt: Statement = parse("in-toto statement", &layer.digest, &bytes)?;
        let annotated = layer
            .annotations
            .get(super::spec::ANNOTATION_PREDICATE_TYPE);
        if annotated != Some(&stmt.predicate_type) {
            return Err(bad(
                "in-toto.io/predicate-type differs from the predicateType",
            ));
        }
        let hex = subject.hex();
        if stmt
            .subject
            .iter()
            .any(|s| s.digest.get("sha256") != Some(&hex))
        {
            return Err(bad("a subject is not the image manifest"));
        }
    }
    Ok(())
}

fn check_config(m: &Manifest, config: &ImageConfig) -> Result<(), ValidateError> {
    for (field, value) in [("os", &config.os), ("architecture", &config.architecture)] {
        if value.is_empty() {
            return Err(ValidateError::MissingPlatform {
                digest: m.config.digest,
                field,
            });
        }
    }
    if config.rootfs.diff_ids.len() != m.layers.len() {
        return Err(ValidateError::DiffIdCount {
            layers: m.layers.len(),
            diff_ids: config.rootfs.diff_ids.len(),
        });
    }
    // COMPAT(buildkit): history is optional in the spec; only check it when present.
    let non_empty = config.history.iter().filter(|h| !h.empty_layer).count();
    if !config.history.is_empty() && non_empty != m.layers.len() {
        return Err(ValidateError::HistoryCount {
            layers: m.layers.len(),
            non_empty,
        });
    }
    Ok(())
}

fn check_self_type(
    what: &'static str,
    desc: &super::Descriptor,
    declared: Option<&str>,
) -> Result<(), ValidateError> {
    match declared {
        Some(t) if t != desc.media_type => Err(ValidateError::MediaType {
            what,
            digest: desc.digest,
            media_type: t.to_string(),
            expected: desc.media_type.clone(),
        }),
        _ => Ok(()),
    }
}

fn check_layer_type(layer: &super::Descriptor, docker: bool) -> Result<(), ValidateError> {
    let ok: &[&str] = if docker {
        &[media_type::DOCKER_LAYER, media_type::DOCKER_LAYER_GZIP]
    } else {
        &[
            media_type::OCI_LAYER,
            media_type::OCI_LAYER_GZIP,
            media_type::OCI_LAYER_ZSTD,
        ]
    };
    if ok.contains(&layer.media_type.as_str()) {
        return Ok(());
    }
    Err(ValidateError::MediaType {
        what: "layer",
        digest: layer.digest,
        media_type: layer.media_type.clone(),
        expected: ok.join(" or "),
    })
}

/// Streams a layer once: checks its digest and size and returns the sha256
/// of its decompressed bytes.
fn layer_diff_id(
    source: &dyn BlobSource,
    layer: &super::Descriptor,
) -> Result<DiffId, ValidateError> {
    let codec = Compression::from_media_type(&layer.media_type).map_err(|source| {
        ValidateError::LayerMediaType {
            digest: layer.digest,
            source,
        }
    })?;
    let raw = open(source, &layer.digest)?;
    let mut tee = HashingReader::new(raw);
    let mut decoded = DigestWriter::new(io::sink());
    let decompress = |source| ValidateError::Decompress {
        digest: layer.digest,
        source,
    };
    let mut dec = codec.decoder(&mut tee).map_err(decompress)?;
    io::copy(&mut dec, &mut decoded).map_err(decompress)?;
    drop(dec);
    // Trailing bytes after the compressed stream still belong to the blob.
    io::copy(&mut tee, &mut io::sink()).map_err(|source| ValidateError::ReadBlob {
        digest: layer.digest,
        source,
    })?;
    let (actual, size) = tee.finish();
    check_blob(&layer.digest, layer.size, actual, size)?;
    Ok(DiffId::from_bytes(decoded.finish().1))
}

fn open<'a>(
    source: &'a dyn BlobSource,
    digest: &Digest,
) -> Result<Box<dyn Read + 'a>, ValidateError> {
    source.open_blob(digest).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => ValidateError::MissingBlob { digest: *digest },
        _ => ValidateError::ReadBlob {
            digest: *digest,
            source: e,
        },
    })
}

fn read_verified(
    source: &dyn BlobSource,
    digest: &Digest,
    size: u64,
) -> Result<Vec<u8>, ValidateError> {
    let mut bytes = Vec::new();
    open(source, digest)?
        .read_to_end(&mut bytes)
        .map_err(|source| ValidateError::ReadBlob {
            digest: *digest,
            source,
        })?;
    check_blob(digest, size, Digest::of(&bytes), bytes.len() as u64)?;
    Ok(bytes)
}

fn check_blob(digest: &Digest, size: u64, actual: Digest, len: u64) -> Result<(), ValidateError> {
    if actual != *digest {
        return Err(ValidateError::DigestMismatch {
            expected: *digest,
            actual,
        });
    }
    if len != size {
        return Err(ValidateError::SizeMismatch {
            digest: *digest,
            expected: size,
            actual: len,
        });
    }
    Ok(())
}

fn parse<T: serde::de::DeserializeOwned>(
    what: &'static str,
    digest: &Digest,
    bytes: &[u8],
) -> Result<T, ValidateError> {
    serde_json::from_slice(bytes).map_err(|source| ValidateError::Parse {
        what,
        digest: *digest,
        source,
    })
}

/// A reader that hashes and counts what passes through it.
struct HashingReader<R> {
    inner: R,
    hasher: super::Hasher,
    read: u64,
}

impl<R: Read> HashingReader<R> {
    fn new(inner: R) -> Self {
        Self {
            inner,
            hasher: super::Hasher::new(),
            read: 0,
        }
    }
    fn finish(self) -> (Digest, u64) {
        (Digest::from_bytes(self.hasher.finish()), self.read)
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.read += n as u64;
        Ok(n)
    }
}
