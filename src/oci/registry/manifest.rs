//! Manifests on a registry: fetching one by tag or digest (keeping the bytes
//! the registry sent, so their digest is the one it named), choosing the
//! platform's manifest from an index, and putting one.
//!
//! Invariant: a manifest is only returned once its bytes hash to the digest
//! that was asked for (or, by tag, to the `Docker-Content-Digest` the
//! registry announced).

use std::io::Read;

use super::client::{Body, Request};
use super::{Client, RegistryError};
use crate::oci::{media_type, Descriptor, Digest, Index, Platform, PlatformMatcher, Reference};

/// What a manifest GET accepts: OCI and docker v2 schema 2, images and indexes.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, \
application/vnd.oci.image.index.v1+json, \
application/vnd.docker.distribution.manifest.v2+json, \
application/vnd.docker.distribution.manifest.list.v2+json";

/// The largest manifest kiln reads (the distribution spec's limit is 4 MiB).
const MAX_MANIFEST: u64 = 4 << 20;

/// A manifest (or index) as the registry sent it.
#[derive(Debug, Clone)]
pub struct RemoteManifest {
    /// Its media type, digest and size.
    pub descriptor: Descriptor,
    /// Its exact bytes.
    pub bytes: Vec<u8>,
}

impl RemoteManifest {
    /// Whether it is an index (OCI index or docker manifest list).
    pub fn is_index(&self) -> bool {
        is_index(&self.descriptor.media_type)
    }
}

/// Whether `mt` names an index type.
pub fn is_index(mt: &str) -> bool {
    mt == media_type::OCI_INDEX || mt == media_type::DOCKER_MANIFEST_LIST
}

/// Whether `mt` names an image manifest type.
pub fn is_manifest(mt: &str) -> bool {
    mt == media_type::OCI_MANIFEST || mt == media_type::DOCKER_MANIFEST
}

/// The token scope to read `repository`.
pub fn pull_scope(repository: &str) -> String {
    format!("repository:{repository}:pull")
}

/// The token scope to write `repository`.
pub fn push_scope(repository: &str) -> String {
    format!("repository:{repository}:pull,push")
}

/// Fetches the manifest `reference` names (by digest when it has one).
pub fn get_manifest(
    client: &Client,
    reference: &Reference,
) -> Result<RemoteManifest, RegistryError> {
    let at = match (&reference.digest, &reference.tag) {
        (Some(d), _) => d.to_string(),
        (None, Some(t)) => t.clone(),
        (None, None) => "latest".to_string(),
    };
    get_manifest_at(
        client,
        &reference.registry,
        &reference.repository,
        &at,
        reference.digest,
    )
}

/// Fetches `v2/<repository>/manifests/<at>` and checks its digest.
pub fn get_manifest_at(
    client: &Client,
    registry: &str,
    repository: &str,
    at: &str,
    expected: Option<Digest>,
) -> Result<RemoteManifest, RegistryError> {
    let url = client.url(registry, &format!("v2/{repository}/manifests/{at}"))?;
    let req = Request::new("GET", url.clone(), vec![pull_scope(repository)])
        .header("Accept", MANIFEST_ACCEPT);
    let resp = client.send(registry, &req)?;
    let announced = announced_digest(&resp);
    let content_type = resp
        .header("content-type")
        .map(|c| c.split(';').next().unwrap_or("").trim().to_string());
    let mut bytes = Vec::new();
    resp.into_reader()
        .take(MAX_MANIFEST + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| RegistryError::Body {
            method: "GET".into(),
            url: url.to_string(),
            source,
        })?;
    if bytes.len() as u64 > MAX_MANIFEST {
        return Err(RegistryError::ManifestTooLarge {
            url: url.to_string(),
            limit: MAX_MANIFEST,
        });
    }
    let actual = Digest::of(&bytes);
    if let Some(expected) = expected.or(announced) {
        if expected != actual {
            return Err(RegistryError::ManifestDigest {
                url: url.to_string(),
                expected,
                actual,
            });
        }
    }
    let media_type = match content_type {
        Some(ct) if is_index(&ct) || is_manifest(&ct) => ct,
        // Some registries answer `application/json`: the body says what it is.
        _ => media_type_field(&bytes).unwrap_or_default(),
    };
    if !is_index(&media_type) && !is_manifest(&media_type) {
        return Err(RegistryError::MediaType {
            media_type,
            reference: format!("{registry}/{repository}:{at}"),
        });
    }
    let size = bytes.len() as u64;
    Ok(RemoteManifest {
        descriptor: Descriptor::new(media_type, actual, size),
        bytes,
    })
}

/// The digest a response's `Docker-Content-Digest` announces, if it parses.
fn announced_digest(resp: &ureq::Response) -> Option<Digest> {
    Digest::parse(resp.header("docker-content-digest")?).ok()
}

fn media_type_field(bytes: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Probe {
        #[serde(rename = "mediaType")]
        media_type: Option<String>,
        manifests: Option<serde_json::Value>,
    }
    let p: Probe = serde_json::from_slice(bytes).ok()?;
    p.media_type.or_else(|| {
        // An OCI index may omit mediaType; `manifests` gives it away.
        p.manifests
            .map(|_| media_type::OCI_INDEX.to_string())
            .or_else(|| Some(media_type::OCI_MANIFEST.to_string()))
    })
}

/// The entry of `index` for `platform`: the best-ranked manifest entry
/// (see [`PlatformMatcher`]).
pub fn select_platform<'a>(index: &'a Index, platform: &Platform) -> Option<&'a Descriptor> {
    PlatformMatcher::only(platform).select(
        index
            .manifests
            .iter()
            .filter(|d| is_manifest(&d.media_type)),
    )
}

/// Puts `bytes` as the manifest `at` (a tag or its digest) of `repository`;
/// returns its digest.
pub fn put_manifest(
    client: &Client,
    registry: &str,
    repository: &str,
    at: &str,
    media_type: &str,
    bytes: &[u8],
) -> Result<Digest, RegistryError> {
    let url = client.url(registry, &format!("v2/{repository}/manifests/{at}"))?;
    let mut req = Request::new("PUT", url, vec![push_scope(repository)])
        .header("Content-Type", media_type)
        .body(Body::Bytes(bytes.to_vec()));
    // Putting the same bytes twice names the same manifest: safe to resend.
    req.idempotent = true;
    let resp = client.send(registry, &req)?;
    let digest = Digest::of(bytes);
    // A registry that rewrote the manifest would make the digest kiln prints a lie.
    if let Some(announced) = announced_digest(&resp).filter(|d| *d != digest) {
        return Err(RegistryError::ManifestDigest {
            url: req.url.to_string(),
            expected: digest,
            actual: announced,
        });
    }
    Ok(digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_type_from_body() {
        assert_eq!(
            media_type_field(br#"{"schemaVersion":2,"manifests":[]}"#).as_deref(),
            Some(media_type::OCI_INDEX)
        );
    }
}
