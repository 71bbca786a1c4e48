//! Artifacts: any OCI manifest whose blobs are in the store (the step cache,
//! for one), pushed and pulled without the image rules (no platform, no
//! config schema). The same blob and manifest steps as images.
//!
//! Invariant: `pull_artifact` returns only once the manifest matches the
//! digest it was fetched by and every blob it lists (config included) is in
//! the store, verified.

use super::manifest::{get_manifest, is_manifest, put_manifest};
use super::pull::{fetch_blob, for_each_parallel};
use super::push::push_blob;
use super::{Client, RegistryError};
use crate::oci::{Descriptor, Digest, Manifest, Reference, Store};

/// An artifact fetched into the store.
#[derive(Debug, Clone)]
pub struct PulledArtifact {
    /// The manifest's descriptor.
    pub descriptor: Descriptor,
    /// Its exact bytes.
    pub bytes: Vec<u8>,
    /// It, parsed.
    pub manifest: Manifest,
}

/// Pushes the manifest `manifest_bytes` (of `media_type`) and every blob it
/// lists (all in `store`) to `target`; returns the manifest's digest.
pub fn push_artifact(
    client: &Client,
    store: &Store,
    target: &Reference,
    media_type: &str,
    manifest_bytes: &[u8],
) -> Result<Digest, RegistryError> {
    let digest = Digest::of(manifest_bytes);
    let manifest: Manifest =
        serde_json::from_slice(manifest_bytes).map_err(|source| RegistryError::ParseManifest {
            what: "manifest",
            digest,
            url: String::new(),
            source,
        })?;
    let blobs: Vec<Descriptor> = manifest.blobs().cloned().collect();
    for_each_parallel(&blobs, client.options().parallel, |b| {
        push_blob(client, store, &target.registry, &target.repository, b, None).map(drop)
    })?;
    let at = target.tag.clone().unwrap_or_else(|| digest.to_string());
    put_manifest(
        client,
        &target.registry,
        &target.repository,
        &at,
        media_type,
        manifest_bytes,
    )
}

/// Fetches the manifest `reference` names and every blob it lists into `store`.
pub fn pull_artifact(
    client: &Client,
    store: &Store,
    reference: &Reference,
) -> Result<PulledArtifact, RegistryError> {
    let remote = get_manifest(client, reference)?;
    if !is_manifest(&remote.descriptor.media_type) {
        return Err(RegistryError::MediaType {
            media_type: remote.descriptor.media_type,
            reference: reference.familiar(),
        });
    }
    let manifest: Manifest =
        serde_json::from_slice(&remote.bytes).map_err(|source| RegistryError::ParseManifest {
            what: "manifest",
            digest: remote.descriptor.digest,
            url: reference.familiar(),
            source,
        })?;
    let blobs: Vec<Descriptor> = manifest.blobs().cloned().collect();
    for_each_parallel(&blobs, client.options().parallel, |b| {
        fetch_blob(client, store, &reference.registry, &reference.repository, b).map(drop)
    })?;
    Ok(PulledArtifact {
        descriptor: remote.descriptor,
        bytes: remote.bytes,
        manifest,
    })
}
