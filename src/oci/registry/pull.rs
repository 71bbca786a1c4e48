//! Pulling: a reference → the platform's manifest → its config and layers,
//! each streamed into the store and verified while written, several at once.
//!
//! Invariants: a blob is only kept when its bytes hash to its descriptor's
//! digest and have its size (`BlobWriter::commit_verified`); a dropped
//! connection resumes with `Range:` from the bytes already written (or starts
//! over when the registry ignores the range), a bounded number of times; the
//! manifest is stored as the registry sent it, so its digest is the
//! registry's, and the name is tagged only once every blob is in the store.
//! `fetch_head` is the part before the layers, shared with the lazy
//! resolution of base images (`lazy`), which fetches layers on demand.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use super::client::Request;
use super::manifest::{get_manifest, get_manifest_at, pull_scope, select_platform};
use super::{Client, RegistryError, RemoteManifest};
use crate::oci::{Descriptor, Digest, Index, Manifest, Platform, Reference, Store};

/// What [`pull`] stored.
#[derive(Debug, Clone)]
pub struct PulledImage {
    /// The platform's image manifest, as stored and tagged.
    pub manifest: Descriptor,
    /// The index it was chosen from, when the reference named one.
    pub index: Option<Descriptor>,
    /// The familiar name it was tagged as.
    pub name: String,
    /// Blobs downloaded.
    pub fetched: Vec<Digest>,
    /// Blobs the store already had.
    pub present: Vec<Digest>,
}

/// A reference resolved to one platform's image manifest, nothing downloaded
/// beyond manifests.
#[derive(Debug, Clone)]
pub struct ResolvedImage {
    /// The image manifest, as the registry sent it.
    pub manifest: RemoteManifest,
    /// It, parsed.
    pub parsed: Manifest,
    /// The index it was chosen from, if any, as the registry sent it.
    pub index: Option<RemoteManifest>,
}

/// Resolves `reference` to the image manifest for `platform`, descending
/// through an index (OCI index or docker manifest list).
pub fn resolve(
    client: &Client,
    reference: &Reference,
    platform: &Platform,
) -> Result<ResolvedImage, RegistryError> {
    let top = get_manifest(client, reference)?;
    let (manifest, index) = if top.is_index() {
        let idx: Index = parse(&top, "index")?;
        let child = select_platform(&idx, platform).ok_or_else(|| {
            let available: Vec<String> = idx
                .manifests
                .iter()
                .filter_map(|d| d.platform.as_ref().map(Platform::to_specifier))
                .collect();
            RegistryError::NoPlatform {
                reference: reference.familiar(),
                platform: platform.to_specifier(),
                available: available.join(", "),
            }
        })?;
        let m = get_manifest_at(
            client,
            &reference.registry,
            &reference.repository,
            &child.digest.to_string(),
            Some(child.digest),
        )?;
        if m.is_index() {
            return Err(RegistryError::MediaType {
                media_type: m.descriptor.media_type,
                reference: format!("{}@{}", reference.familiar(), child.digest),
            });
        }
        (m, Some(top))
    } else {
        (top, None)
    };
    let parsed = parse(&manifest, "manifest")?;
    Ok(ResolvedImage {
        manifest,
        parsed,
        index,
    })
}

fn parse<T: serde::de::DeserializeOwned>(
    m: &RemoteManifest,
    what: &'static str,
) -> Result<T, RegistryError> {
    serde_json::from_slice(&m.bytes).map_err(|source| RegistryError::ParseManifest {
        what,
        digest: m.descriptor.digest,
        url: String::new(),
        source,
    })
}

/// Pulls `reference` for `platform` into `store` and tags it with the
/// reference's familiar name.
pub fn pull(
    client: &Client,
    store: &Store,
    reference: &Reference,
    platform: &Platform,
) -> Result<PulledImage, RegistryError> {
    let (resolved, config_fetched) = fetch_head(client, store, reference, platform)?;
    let fetched = Mutex::new(Vec::new());
    let present = Mutex::new(Vec::new());
    let config = resolved.parsed.config.digest;
    let list = if config_fetched { &fetched } else { &present };
    list.lock().unwrap_or_else(|e| e.into_inner()).push(config);
    let blobs = &resolved.parsed.layers;
    for_each_parallel(blobs, client.options().parallel, |desc| {
        let got = fetch_blob(
            client,
            store,
            &reference.registry,
            &reference.repository,
            desc,
        )?;
        let list = if got { &fetched } else { &present };
        list.lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(desc.digest);
        Ok(())
    })?;
    let m = &resolved.manifest;
    let name = reference.familiar();
    store.tag(&name, &m.descriptor)?;
    Ok(PulledImage {
        manifest: m.descriptor.clone(),
        index: resolved.index.map(|i| i.descriptor),
        name,
        fetched: fetched.into_inner().unwrap_or_else(|e| e.into_inner()),
        present: present.into_inner().unwrap_or_else(|e| e.into_inner()),
    })
}

/// Resolves `reference` and stores what a build needs before any layer:
/// the config (checked against `platform`), the manifest and the index it
/// came from. Names nothing. Returns the resolution and whether the config
/// was downloaded.
pub(super) fn fetch_head(
    client: &Client,
    store: &Store,
    reference: &Reference,
    platform: &Platform,
) -> Result<(ResolvedImage, bool), RegistryError> {
    let resolved = resolve(client, reference, platform)?;
    // The config first: a single-platform image for another platform is
    // refused before its layers are downloaded.
    let config = &resolved.parsed.config;
    let got = fetch_blob(
        client,
        store,
        &reference.registry,
        &reference.repository,
        config,
    )?;
    check_platform(store, reference, config, platform)?;
    // The index too: a digest-pinned reference then resolves offline
    // (`resolve_local`) on the next build.
    // `get_manifest_at` already checked the bytes against their digest.
    for manifest in std::iter::once(&resolved.manifest).chain(&resolved.index) {
        store.put_blob(&manifest.bytes)?;
    }
    Ok((resolved, got))
}

/// The image a digest-pinned `reference` names for `platform`, from the
/// store alone: its manifest (or its index and the platform's manifest) and
/// every blob they list must be there. Content under a digest never changes,
/// so no registry needs asking.
pub fn resolve_local(
    store: &Store,
    reference: &Reference,
    platform: &Platform,
) -> Option<Descriptor> {
    #[derive(serde::Deserialize)]
    struct Probe {
        #[serde(rename = "mediaType")]
        media_type: Option<String>,
        manifests: Option<Vec<Descriptor>>,
    }
    let digest = reference.digest?;
    let bytes = store.read_blob(&digest).ok()?;
    let probe: Probe = serde_json::from_slice(&bytes).ok()?;
    // A manifest named directly is the blob just read: not read twice.
    let (desc, bytes) = match probe.manifests {
        Some(manifests) => {
            let index = Index {
                schema_version: 2,
                media_type: probe.media_type,
                manifests,
                annotations: Default::default(),
            };
            let desc = select_platform(&index, platform)?.clone();
            let bytes = store.read_blob(&desc.digest).ok()?;
            (desc, bytes)
        }
        None => {
            let mt = probe
                .media_type
                .unwrap_or_else(|| crate::oci::media_type::OCI_MANIFEST.to_string());
            (Descriptor::new(mt, digest, bytes.len() as u64), bytes)
        }
    };
    let m: Manifest = serde_json::from_slice(&bytes).ok()?;
    let complete = m.blobs().all(|b| store.has_blob(&b.digest));
    complete.then(|| Descriptor::new(desc.media_type, desc.digest, desc.size))
}

/// Refuses an image whose config names another OS or architecture (or,
/// when both name one, another variant) than `wanted`.
fn check_platform(
    store: &Store,
    reference: &Reference,
    config: &Descriptor,
    wanted: &Platform,
) -> Result<(), RegistryError> {
    #[derive(serde::Deserialize)]
    struct ConfigPlatform {
        #[serde(default)]
        os: String,
        #[serde(default)]
        architecture: String,
        #[serde(default)]
        variant: Option<String>,
    }
    let bytes = store.read_blob(&config.digest)?;
    // An artifact config without a platform is not this check's business.
    let Ok(c) = serde_json::from_slice::<ConfigPlatform>(&bytes) else {
        return Ok(());
    };
    let actual = Platform {
        os: c.os,
        architecture: c.architecture,
        variant: c.variant,
        os_version: None,
    };
    if actual.os.is_empty() || crate::oci::platform_matches(&actual, wanted) {
        return Ok(());
    }
    Err(RegistryError::PlatformMismatch {
        reference: reference.familiar(),
        wanted: wanted.to_specifier(),
        actual: actual.to_specifier(),
    })
}

/// Downloads the blob `desc` of `repository` into `store` unless it is
/// there; returns whether it downloaded. Resumes dropped transfers.
pub fn fetch_blob(
    client: &Client,
    store: &Store,
    registry: &str,
    repository: &str,
    desc: &Descriptor,
) -> Result<bool, RegistryError> {
    if store.has_blob(&desc.digest) {
        return Ok(false);
    }
    let wrap = |e: RegistryError| RegistryError::PullBlob {
        digest: desc.digest,
        repository: format!("{registry}/{repository}"),
        source: Box::new(e),
    };
    let url = client
        .url(registry, &format!("v2/{repository}/blobs/{}", desc.digest))
        .map_err(wrap)?;
    let mut w = store.begin_blob()?;
    let mut failures = 0;
    loop {
        let offset = w.written();
        let mut req = Request::new("GET", url.clone(), vec![pull_scope(repository)]);
        if offset > 0 {
            req = req.header("Range", format!("bytes={offset}-"));
        }
        let resp = match client.send(registry, &req) {
            Ok(r) => r,
            // A registry that cannot serve the range: start over, once per failure.
            Err(RegistryError::Status { status: 416, .. })
                if offset > 0 && failures < client.options().retries =>
            {
                failures += 1;
                w = store.begin_blob()?;
                continue;
            }
            Err(e) => return Err(wrap(e)),
        };
        let resumed = resp.status() == 206
            && resp
                .header("content-range")
                .is_some_and(|r| r.starts_with(&format!("bytes {offset}-")));
        if offset > 0 && !resumed {
            tracing::debug!("{url}: range ignored, downloading {} again", desc.digest);
            w = store.begin_blob()?;
        }
        match copy_capped(&mut resp.into_reader(), &mut w, desc, store).map_err(wrap)? {
            Ok(()) if w.written() == desc.size => break,
            // A short body is a dropped connection too.
            Ok(()) if failures < client.options().retries => failures += 1,
            Err(e) if failures < client.options().retries => {
                tracing::debug!("{url}: {e}; resuming at {}", w.written());
                failures += 1;
            }
            Ok(()) => {
                return Err(wrap(RegistryError::Truncated {
                    url: url.to_string(),
                    expected: desc.size,
                    actual: w.written(),
                }))
            }
            Err(source) => {
                return Err(wrap(RegistryError::Body {
                    method: "GET".into(),
                    url: url.to_string(),
                    source,
                }))
            }
        }
    }
    w.commit_verified(&desc.digest, desc.size)
        .map_err(|e| wrap(e.into()))?;
    Ok(true)
}

/// Copies until EOF; the outer error is fatal (store write, oversize), the
/// inner one a read failure worth resuming after.
fn copy_capped(
    from: &mut dyn Read,
    to: &mut crate::oci::BlobWriter,
    desc: &Descriptor,
    store: &Store,
) -> Result<Result<(), std::io::Error>, RegistryError> {
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => return Ok(Ok(())),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Ok(Err(e)),
        };
        if to.written() + n as u64 > desc.size {
            return Err(RegistryError::Oversized {
                digest: desc.digest,
                size: desc.size,
            });
        }
        to.write_all(&buf[..n])
            .map_err(|source| crate::oci::StoreError::WriteBlob {
                path: store.tmp_dir(),
                source,
            })?;
    }
}

/// Runs `f` on every item with at most `workers` threads; the first error
/// stops the others from starting new items and is returned.
pub(crate) fn for_each_parallel<T: Sync>(
    items: &[T],
    workers: usize,
    f: impl Fn(&T) -> Result<(), RegistryError> + Sync,
) -> Result<(), RegistryError> {
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let first_error = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..workers.clamp(1, items.len().max(1)) {
            s.spawn(|| {
                while !failed.load(Ordering::Relaxed) {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(i) else { break };
                    if let Err(e) = f(item) {
                        failed.store(true, Ordering::Relaxed);
                        let mut slot = first_error.lock().unwrap_or_else(|e| e.into_inner());
                        slot.get_or_insert(e);
                    }
                }
            });
        }
    });
    match first_error.into_inner().unwrap_or_else(|e| e.into_inner()) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
