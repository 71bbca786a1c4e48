//! Base images: `FROM busybox` resolves the name (docker's normalization:
//! `busybox` → `busybox:latest`) to a manifest in the local store and reads
//! its config. A name the store lacks is pulled from its registry (docker's
//! default); `--pull` (always) pulls even when the store has the name, so a
//! moved tag is seen; `--pull=never` (or no registry client) keeps to the store.
//!
//! With a [`RemoteBlobs`] (every build that has a registry client), pulling
//! stores the manifest and config only: the layers are fetched when a step
//! needs the filesystem, or an output the bytes (see `oci::registry::lazy`
//! for the invariants: the name is tagged only once every blob is in).
//! Without one, a pull fetches every layer now, as `kiln pull` does.

use std::collections::BTreeMap;
use std::error::Error;

use crate::oci::registry::{self, Client, RegistryError, RemoteBlobs};
use crate::oci::{platform_matches, Platform, PlatformMatcher, Reference, Store, StoreError};
use crate::plan::{ImageResolver, ResolvedImage};

use super::contexts::{self, ContextSource};

/// When a base image is pulled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PullPolicy {
    /// Only when the store lacks the name (docker's default).
    #[default]
    Missing,
    /// Always ask the registry (`--pull`), so a tag that moved is seen.
    Always,
    /// Never: the store only.
    Never,
}

/// Why a base image could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// Not in the store, and not to be pulled.
    #[error("image {reference} is not in the local store (pulling is off: `kiln pull` or `kiln load -i IMAGE.tar` first)")]
    NotInStore {
        /// The reference.
        reference: String,
        /// The store's answer.
        #[source]
        source: StoreError,
    },
    /// Pulling from its registry failed.
    #[error("pulling base image {reference}")]
    Pull {
        /// The reference.
        reference: String,
        /// The cause.
        #[source]
        source: Box<RegistryError>,
    },
    /// In the store but unreadable.
    #[error("reading image {reference} from the store")]
    Load {
        /// The reference.
        reference: String,
        /// The cause.
        #[source]
        source: StoreError,
    },
    /// Built for another platform.
    #[error("image {reference} is for {found}, not {wanted}")]
    Platform {
        /// The reference.
        reference: String,
        /// The image's platform.
        found: String,
        /// The build's platform.
        wanted: String,
    },
}

/// An [`ImageResolver`] over the local store, pulling through `registry`.
pub struct StoreResolver<'a> {
    /// The store.
    pub store: &'a Store,
    /// The registry client; `None` keeps to the store.
    pub registry: Option<&'a Client>,
    /// When to pull.
    pub pull: PullPolicy,
    /// Where a pull shows as a vertex (`[internal] pulling …`).
    pub progress: Option<&'a crate::builder::Progress>,
    /// Pull lazily: manifest and config now, layers through this on demand.
    pub lazy: Option<&'a RemoteBlobs>,
    /// `--build-context`s, for the image ones.
    pub contexts: &'a BTreeMap<String, ContextSource>,
}

impl StoreResolver<'_> {
    fn pull(
        &self,
        client: &Client,
        reference: &str,
        platform: &Platform,
    ) -> Result<crate::oci::Descriptor, ResolveError> {
        let err = |source| ResolveError::Pull {
            reference: reference.into(),
            source: Box::new(source),
        };
        let r = Reference::parse(reference).map_err(|e| err(e.into()))?;
        let vertex = self
            .progress
            .map(|p| p.start(format!("[internal] pulling {}", r.qualified()), None));
        let pulled = match self.lazy {
            Some(lazy) => lazy.resolve(self.store, &r, platform).map(|l| {
                let line = match l.complete {
                    true => format!("all blobs already present: {}\n", l.manifest.digest),
                    false => format!(
                        "manifest and config resolved, layers fetched when needed: {}\n",
                        l.manifest.digest
                    ),
                };
                (l.manifest, line)
            }),
            None => registry::pull(client, self.store, &r, platform).map(|p| {
                let line = format!(
                    "{} blobs downloaded, {} already present: {}\n",
                    p.fetched.len(),
                    p.present.len(),
                    p.manifest.digest
                );
                (p.manifest, line)
            }),
        };
        match pulled {
            Ok((manifest, line)) => {
                if let Some(v) = vertex {
                    v.log(crate::builder::Stream::Stdout, line.as_bytes());
                    v.done();
                }
                Ok(manifest)
            }
            Err(e) => {
                if let Some(v) = vertex {
                    v.failed(e.to_string());
                }
                Err(err(e))
            }
        }
    }

    fn manifest(
        &self,
        reference: &str,
        platform: &Platform,
    ) -> Result<crate::oci::Descriptor, ResolveError> {
        let client = self.registry.filter(|_| self.pull != PullPolicy::Never);
        // A digest names content that never changes: once its image is in
        // the store, no registry needs asking, even with --pull.
        let pinned = Reference::parse(reference)
            .ok()
            .and_then(|r| registry::resolve_local(self.store, &r, platform));
        if let Some(m) = pinned {
            return Ok(m);
        }
        if let (Some(c), PullPolicy::Always) = (client, self.pull) {
            return self.pull(c, reference, platform);
        }
        match (self.store.resolve(reference), client) {
            (Ok(m), _) => Ok(m),
            (Err(StoreError::NotFound { .. }), Some(c)) => self.pull(c, reference, platform),
            (Err(source), _) => Err(ResolveError::NotInStore {
                reference: reference.into(),
                source,
            }),
        }
    }
}

impl ImageResolver for StoreResolver<'_> {
    fn resolve(
        &self,
        reference: &str,
        platform: &Platform,
    ) -> Result<ResolvedImage, Box<dyn Error + Send + Sync>> {
        let load = |source| ResolveError::Load {
            reference: reference.into(),
            source,
        };
        let mut manifest = self.manifest(reference, platform)?;
        // A stored index serves another platform than the host's through
        // that platform's entry: the stage's key and layers are its. For
        // the host the index stays the base (its digest the FROM key, as
        // before kiln built for other platforms: existing keys still hit).
        if PlatformMatcher::only(&Platform::host()).rank(platform) != Some(0) {
            manifest = self
                .store
                .load_manifest_for(&manifest, platform)
                .map_err(load)?
                .1;
        }
        let (_, config) = self.store.load_image(&manifest).map_err(load)?;
        let found = Platform {
            os: config.os.clone(),
            architecture: config.architecture.clone(),
            variant: config.variant.clone(),
            os_version: None,
        };
        // The rule the store and a pull choose index entries by.
        if !config.os.is_empty() && !platform_matches(&found, platform) {
            return Err(Box::new(ResolveError::Platform {
                reference: reference.into(),
                found: found.to_specifier(),
                wanted: platform.to_specifier(),
            }));
        }
        Ok(ResolvedImage {
            reference: reference.into(),
            manifest,
            config,
        })
    }

    fn resolve_context(
        &self,
        name: &str,
        platform: &Platform,
    ) -> Result<ResolvedImage, Box<dyn Error + Send + Sync>> {
        let source = self.contexts.get(name);
        contexts::resolve_image(self.store, source, name, platform, |r| {
            self.resolve(r, platform)
        })
    }
}
