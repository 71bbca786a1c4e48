//! Pushing: an image (manifest or index) from the store to a repository.
//! Blobs first, several at once, each skipped when the registry has it
//! (HEAD), mounted from another repository of the same registry when the
//! caller names one, else uploaded: in one PUT up to
//! [`ClientOptions::monolithic_max`](super::ClientOptions), in PATCH chunks
//! of [`ClientOptions::chunk_size`](super::ClientOptions) above it. Manifests
//! last (an index after its children), so a registry never holds a manifest
//! whose blobs are missing.
//!
//! A blob the store lacks (a layer of a lazily resolved base image) is
//! downloaded through the caller's [`FetchBlob`] only when the registry has
//! neither it nor a mount for it: a push of an image built on a base from the
//! same registry reads no base layer.

use std::sync::Mutex;

use url::Url;

use super::client::{Body, Request};
use super::manifest::{is_index, pull_scope, push_scope, put_manifest};
use super::pull::for_each_parallel;
use super::{Client, RegistryError};
use crate::oci::{Descriptor, Digest, Index, Manifest, Reference, Store};

/// What happened to one blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobPush {
    /// The registry had it.
    Existing,
    /// Mounted from another repository.
    Mounted,
    /// Uploaded.
    Uploaded,
}

/// What [`push`] did.
#[derive(Debug, Clone, Default)]
pub struct PushedImage {
    /// The top manifest's digest, as the registry now names it.
    pub digest: Option<Digest>,
    /// Blobs uploaded.
    pub uploaded: Vec<Digest>,
    /// Blobs the registry already had.
    pub existing: Vec<Digest>,
    /// Blobs mounted from another repository.
    pub mounted: Vec<Digest>,
}

/// Makes a blob the store lacks present in it (or fails saying why).
pub type FetchBlob<'a> = &'a (dyn Fn(&Descriptor) -> Result<(), RegistryError> + Sync);

/// Pushes the stored image `image` (manifest or index) to `target` (tagged
/// with its tag, else put by digest). `mount_from` names a repository on the
/// same registry to mount missing blobs from.
pub fn push(
    client: &Client,
    store: &Store,
    image: &Descriptor,
    target: &Reference,
    mount_from: Option<&str>,
) -> Result<PushedImage, RegistryError> {
    push_fetching(client, store, image, target, mount_from, None)
}

/// [`push`], for an image whose manifests are stored but some of whose
/// blobs may not be: `fetch` brings one in when the registry needs its bytes.
pub fn push_fetching(
    client: &Client,
    store: &Store,
    image: &Descriptor,
    target: &Reference,
    mount_from: Option<&str>,
    fetch: Option<FetchBlob<'_>>,
) -> Result<PushedImage, RegistryError> {
    if let Some(d) = target.digest.filter(|d| *d != image.digest) {
        return Err(RegistryError::PushDigest {
            reference: target.familiar(),
            digest: d,
            image: image.digest,
        });
    }
    let report = Mutex::new(PushedImage::default());
    let to = Target {
        reference: target,
        mount_from,
        fetch,
    };
    push_tree(client, store, image, &to, &report, true)?;
    let mut report = report.into_inner().unwrap_or_else(|e| e.into_inner());
    report.digest = Some(image.digest);
    Ok(report)
}

/// Where a push goes and how it finds blobs it lacks.
struct Target<'a> {
    reference: &'a Reference,
    mount_from: Option<&'a str>,
    fetch: Option<FetchBlob<'a>>,
}

fn push_tree(
    client: &Client,
    store: &Store,
    desc: &Descriptor,
    to: &Target<'_>,
    report: &Mutex<PushedImage>,
    top: bool,
) -> Result<(), RegistryError> {
    let target = to.reference;
    let bytes = store.read_blob(&desc.digest)?;
    let parse_err = |what, source| RegistryError::ParseManifest {
        what,
        digest: desc.digest,
        url: String::new(),
        source,
    };
    if is_index(&desc.media_type) {
        let index: Index = serde_json::from_slice(&bytes).map_err(|e| parse_err("index", e))?;
        for child in &index.manifests {
            push_tree(client, store, child, to, report, false)?;
        }
    } else {
        let m: Manifest = serde_json::from_slice(&bytes).map_err(|e| parse_err("manifest", e))?;
        let blobs: Vec<Descriptor> = m.blobs().cloned().collect();
        for_each_parallel(&blobs, client.options().parallel, |b| {
            let r = push_blob_fetching(
                client,
                store,
                (&target.registry, &target.repository),
                b,
                to.mount_from,
                to.fetch,
            )?;
            let mut rep = report.lock().unwrap_or_else(|e| e.into_inner());
            match r {
                BlobPush::Existing => rep.existing.push(b.digest),
                BlobPush::Mounted => rep.mounted.push(b.digest),
                BlobPush::Uploaded => rep.uploaded.push(b.digest),
            }
            Ok(())
        })?;
    }
    let at = match (&target.tag, top) {
        (Some(t), true) => t.clone(),
        _ => desc.digest.to_string(),
    };
    put_manifest(
        client,
        &target.registry,
        &target.repository,
        &at,
        &desc.media_type,
        &bytes,
    )?;
    Ok(())
}

/// Makes sure `repository` has the stored blob `desc`: skips it when the
/// registry has it, mounts it from `mount_from` when that works, else uploads.
pub fn push_blob(
    client: &Client,
    store: &Store,
    registry: &str,
    repository: &str,
    desc: &Descriptor,
    mount_from: Option<&str>,
) -> Result<BlobPush, RegistryError> {
    push_blob_fetching(
        client,
        store,
        (registry, repository),
        desc,
        mount_from,
        None,
    )
}

/// [`push_blob`]; a blob the store lacks is mounted when `mount_from` has
/// it, else brought in by `fetch` and uploaded.
fn push_blob_fetching(
    client: &Client,
    store: &Store,
    (registry, repository): (&str, &str),
    desc: &Descriptor,
    mut mount_from: Option<&str>,
    fetch: Option<FetchBlob<'_>>,
) -> Result<BlobPush, RegistryError> {
    let wrap = |e: RegistryError| RegistryError::PushBlob {
        digest: desc.digest,
        repository: format!("{registry}/{repository}"),
        source: Box::new(e),
    };
    let scopes = vec![push_scope(repository)];
    let head = client
        .url(registry, &format!("v2/{repository}/blobs/{}", desc.digest))
        .map_err(wrap)?;
    match client.send(registry, &Request::new("HEAD", head, scopes.clone())) {
        Ok(_) => return Ok(BlobPush::Existing),
        Err(RegistryError::Status { status: 404, .. }) => {}
        Err(e) => return Err(wrap(e)),
    }
    let path = store.blob_path(&desc.digest);
    if !path.is_file() {
        let Some(fetch) = fetch else {
            return Err(wrap(RegistryError::ReadBlob {
                digest: desc.digest,
                source: std::io::ErrorKind::NotFound.into(),
            }));
        };
        if let Some(from) = mount_from.filter(|f| *f != repository) {
            if mount(client, registry, repository, desc, from).map_err(wrap)? {
                return Ok(BlobPush::Mounted);
            }
            // Refused: it would be refused again in `upload`.
            mount_from = None;
        }
        fetch(desc).map_err(wrap)?;
    }
    let mut attempt = 0;
    loop {
        match upload(client, registry, repository, desc, mount_from, &path) {
            // A dropped connection, or a registry that failed on its side
            // (it logs a cut upload as a 500): a new upload session.
            Err(RegistryError::Transport { .. } | RegistryError::Status { status: 500.., .. })
                if attempt < client.options().retries =>
            {
                attempt += 1;
            }
            other => return other.map_err(wrap),
        }
    }
}

/// Asks the registry to mount `desc` from `from`; `false` when it opened an
/// upload session instead (which is cancelled: nothing is sent to it).
fn mount(
    client: &Client,
    registry: &str,
    repository: &str,
    desc: &Descriptor,
    from: &str,
) -> Result<bool, RegistryError> {
    let (start, scopes) = upload_start(client, registry, repository, desc, Some(from))?;
    let resp = client.send(registry, &Request::new("POST", start, scopes.clone()))?;
    if resp.status() == 201 {
        return Ok(true);
    }
    // An abandoned session expires on its own; cancelling is a courtesy.
    if let Ok(session) = location(&resp, "POST") {
        let _ = client.send(registry, &Request::new("DELETE", session, scopes));
    }
    Ok(false)
}

/// The URL that opens an upload session (asking to mount `desc` from
/// `mount_from` when that is another repository) and the scopes it needs.
fn upload_start(
    client: &Client,
    registry: &str,
    repository: &str,
    desc: &Descriptor,
    mount_from: Option<&str>,
) -> Result<(Url, Vec<String>), RegistryError> {
    let mut scopes = vec![push_scope(repository)];
    let mut start = client.url(registry, &format!("v2/{repository}/blobs/uploads/"))?;
    if let Some(from) = mount_from.filter(|f| *f != repository) {
        start
            .query_pairs_mut()
            .append_pair("mount", &desc.digest.to_string())
            .append_pair("from", from);
        scopes.push(pull_scope(from));
    }
    Ok((start, scopes))
}

fn upload(
    client: &Client,
    registry: &str,
    repository: &str,
    desc: &Descriptor,
    mount_from: Option<&str>,
    path: &std::path::Path,
) -> Result<BlobPush, RegistryError> {
    let (start, scopes) = upload_start(client, registry, repository, desc, mount_from)?;
    let resp = client.send(registry, &Request::new("POST", start, scopes.clone()))?;
    if resp.status() == 201 {
        return Ok(BlobPush::Mounted);
    }
    let mut location = location(&resp, "POST")?;
    let opts = client.options();
    let mut offset = 0;
    if desc.size > opts.monolithic_max {
        while offset < desc.size {
            let len = opts.chunk_size.min(desc.size - offset);
            let req = Request::new("PATCH", location.clone(), scopes.clone())
                .header("Content-Type", "application/octet-stream")
                .header("Content-Range", format!("{}-{}", offset, offset + len - 1))
                .body(Body::File {
                    path: path.to_path_buf(),
                    offset,
                    len,
                });
            // A dropped connection mid-chunk fails the upload and
            // `push_blob` starts it over: asking the registry what it kept
            // races with the registry still writing the broken chunk
            // (docker-registry then refuses the resumed upload).
            let resp = client.send(registry, &req)?;
            location = location_of(&resp, "PATCH", &location)?;
            // `Range: 0-<last>` says what the registry holds; resend from there.
            offset = received(&resp).unwrap_or(offset + len);
        }
    }
    location
        .query_pairs_mut()
        .append_pair("digest", &desc.digest.to_string());
    let body = if offset < desc.size {
        Body::File {
            path: path.to_path_buf(),
            offset: 0,
            len: desc.size,
        }
    } else {
        Body::Empty
    };
    let req = Request::new("PUT", location, scopes)
        .header("Content-Type", "application/octet-stream")
        .body(body);
    client.send(registry, &req)?;
    Ok(BlobPush::Uploaded)
}

/// The byte count a `Range: 0-<last>` header reports.
fn received(resp: &ureq::Response) -> Option<u64> {
    let r = resp.header("range")?;
    let last = r
        .trim()
        .strip_prefix("bytes=")
        .unwrap_or(r)
        .split_once('-')?
        .1;
    last.trim().parse::<u64>().ok().map(|l| l + 1)
}

/// The upload URL a response's `Location` names, resolved against the
/// request's URL (registries send it relative or absolute).
fn location(resp: &ureq::Response, method: &str) -> Result<Url, RegistryError> {
    let base = Url::parse(resp.get_url()).map_err(|source| RegistryError::Url {
        url: resp.get_url().to_string(),
        source,
    })?;
    location_of(resp, method, &base)
}

fn location_of(resp: &ureq::Response, method: &str, base: &Url) -> Result<Url, RegistryError> {
    let loc = resp
        .header("location")
        .ok_or_else(|| RegistryError::MissingHeader {
            method: method.to_string(),
            url: super::error::redact(resp.get_url()),
            header: "Location",
        })?;
    base.join(loc).map_err(|source| RegistryError::Url {
        url: loc.to_string(),
        source,
    })
}
