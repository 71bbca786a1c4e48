//! Lazy base images: a reference resolved to its manifest and config (both
//! stored, verified), with the layers left in the registry until something
//! needs their bytes: a snapshot to unpack, an output that writes them, or a
//! push that can neither skip nor mount them.
//!
//! [`RemoteBlobs`] is the lazy state of one build: which blob digests can be
//! fetched from which repository, and which resolved images are still waiting
//! for their layers. It lives in memory only; nothing about it is persisted.
//!
//! Invariants (the store's own, kept at every moment):
//! - a name in `index.json` never points at an image with a blob missing: a
//!   lazily resolved image is tagged only when its config and every layer
//!   are in the store (checked right after resolving, and after every fetch
//!   through [`RemoteBlobs::fetch`]); a build that never needs the layers
//!   (fully cached, `COPY --link` only, pushed where the registry has or
//!   mounts them) never names it;
//! - its manifest, index and config blobs are stored but unnamed until then:
//!   while the build runs, the shared store lock keeps `prune` away; after it,
//!   prune may drop them, and the next build resolves the tag again (manifest
//!   and config only, cheap);
//! - a name that pointed at another manifest (`--pull` saw the tag move) is
//!   removed when the new image is not complete, as docker leaves the old
//!   image unnamed: a later build must not take the stale image for the tag;
//! - an image built on such a base (`builder::BuiltImage::remote`) is stored
//!   unnamed too; `builder::export` fetches its missing layers before any
//!   output that names or writes it;
//! - the step cache is unaffected: its records hold a step's own layer, never
//!   a base layer, so no record depends on a blob that was not fetched (and a
//!   record whose own blob is gone is a miss, as before);
//! - every blob is fetched by [`fetch_blob`]: verified against its digest and
//!   size while written, committed by rename, so a killed build leaves either
//!   the whole blob or nothing, and two stages racing for one blob both win.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::pull::{fetch_blob, fetch_head, for_each_parallel};
use super::{Client, RegistryError};
use crate::oci::{Descriptor, Digest, Platform, Reference, Store};

/// Where a blob can be fetched from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The registry host (`docker.io`, `127.0.0.1:5000`).
    pub registry: String,
    /// The repository on it.
    pub repository: String,
}

/// What [`RemoteBlobs::resolve`] did.
#[derive(Debug, Clone)]
pub struct LazyImage {
    /// The platform's image manifest, stored (maybe not yet named).
    pub manifest: Descriptor,
    /// The familiar name it is tagged as once complete.
    pub name: String,
    /// Whether it is complete (and so named) already.
    pub complete: bool,
    /// Whether the config was downloaded (else the store had it).
    pub config_fetched: bool,
}

/// An image waiting for its blobs before it may be named.
#[derive(Debug)]
struct Pending {
    name: String,
    manifest: Descriptor,
    blobs: Vec<Digest>,
}

#[derive(Debug, Default)]
struct State {
    origins: HashMap<Digest, (Origin, Descriptor)>,
    pending: Vec<Pending>,
}

/// Told before a batch of blobs is downloaded (how many, how many bytes);
/// what it returns is called when the batch ends, with its error if any.
/// The build shows it as a progress vertex.
pub type FetchObserver =
    Box<dyn Fn(usize, u64) -> Box<dyn FnOnce(Option<&RegistryError>) + Send> + Send + Sync>;

/// The blobs of lazily resolved images, fetchable on demand through one client.
pub struct RemoteBlobs {
    client: Arc<Client>,
    state: Mutex<State>,
    observer: Mutex<Option<FetchObserver>>,
}

impl std::fmt::Debug for RemoteBlobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteBlobs")
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl RemoteBlobs {
    /// No image resolved yet; blobs are fetched through `client`.
    pub fn new(client: Arc<Client>) -> Self {
        Self {
            client,
            state: Mutex::new(State::default()),
            observer: Mutex::new(None),
        }
    }

    /// Reports each batch of downloads to `observer`.
    pub fn with_observer(self, observer: FetchObserver) -> Self {
        *self.observer.lock().unwrap_or_else(|e| e.into_inner()) = Some(observer);
        self
    }

    /// Drops the observer (and whatever it holds, e.g. a progress channel
    /// whose reader waits for every sender to go).
    pub fn stop_observing(&self) {
        self.observer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Resolves `reference` for `platform`: its manifest (and index) and
    /// config are stored, its layers only remembered. The name is tagged now
    /// if the store has every layer already, else when the last one arrives.
    pub fn resolve(
        &self,
        store: &Store,
        reference: &Reference,
        platform: &Platform,
    ) -> Result<LazyImage, RegistryError> {
        let (resolved, config_fetched) = fetch_head(&self.client, store, reference, platform)?;
        let origin = Origin {
            registry: reference.registry.clone(),
            repository: reference.repository.clone(),
        };
        let m = &resolved.parsed;
        let name = reference.familiar();
        let manifest = resolved.manifest.descriptor.clone();
        {
            let mut st = self.state();
            for b in m.blobs() {
                st.origins
                    .entry(b.digest)
                    .or_insert_with(|| (origin.clone(), b.clone()));
            }
            st.pending.push(Pending {
                name: name.clone(),
                manifest: manifest.clone(),
                blobs: m.blobs().map(|b| b.digest).collect(),
            });
        }
        self.name_complete(store)?;
        let complete = !self.state().pending.iter().any(|p| p.manifest == manifest);
        if !complete {
            store.untag_stale(&name, &manifest.digest)?;
        }
        Ok(LazyImage {
            manifest,
            name,
            complete,
            config_fetched,
        })
    }

    /// Where `digest` can be fetched from, when a resolved image lists it.
    pub fn origin(&self, digest: &Digest) -> Option<Origin> {
        self.state().origins.get(digest).map(|(o, _)| o.clone())
    }

    /// Downloads those of `blobs` the store lacks and a resolved image
    /// lists, several at once; blobs of unknown origin are left to the
    /// caller (whose read then fails as it would have). Names every image
    /// this completes. Returns the digests downloaded.
    pub fn fetch(&self, store: &Store, blobs: &[Digest]) -> Result<Vec<Digest>, RegistryError> {
        let todo: Vec<(Origin, Descriptor)> = {
            let st = self.state();
            let mut seen = std::collections::BTreeSet::new();
            blobs
                .iter()
                .filter(|d| seen.insert(**d) && !store.has_blob(d))
                .filter_map(|d| st.origins.get(d).cloned())
                .collect()
        };
        if todo.is_empty() {
            return Ok(Vec::new());
        }
        let bytes = todo.iter().map(|(_, d)| d.size).sum();
        let end = {
            let o = self.observer.lock().unwrap_or_else(|e| e.into_inner());
            o.as_ref().map(|o| o(todo.len(), bytes))
        };
        let fetched = Mutex::new(Vec::new());
        let res = for_each_parallel(&todo, self.client.options().parallel, |(o, desc)| {
            if fetch_blob(&self.client, store, &o.registry, &o.repository, desc)? {
                fetched
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(desc.digest);
            }
            Ok(())
        })
        .and_then(|()| self.name_complete(store));
        if let Some(end) = end {
            end(res.as_ref().err());
        }
        res?;
        Ok(fetched.into_inner().unwrap_or_else(|e| e.into_inner()))
    }

    /// Tags every pending image whose blobs are all in the store now.
    fn name_complete(&self, store: &Store) -> Result<(), RegistryError> {
        let mut st = self.state();
        let mut err = None;
        st.pending.retain(|p| {
            if err.is_some() || !p.blobs.iter().all(|d| store.has_blob(d)) {
                return true;
            }
            match store.tag(&p.name, &p.manifest) {
                Ok(()) => false,
                Err(e) => {
                    err = Some(e);
                    true
                }
            }
        });
        match err {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }
}
