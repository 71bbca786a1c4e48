//! `--cache-to type=registry,ref=REF[,mode=min|max]` and `--cache-from
//! type=registry,ref=REF`: the step cache artifact (`cache::export`'s
//! manifest, records config and layer blobs) pushed to and pulled from a
//! registry, so CI runners share one cache.
//!
//! Invariant: import merges only once every blob the artifact lists is in
//! the store, verified (`registry::pull_artifact`); a missing cache tag on
//! import is a clear error, as buildx reports it.

use crate::cache::{self, StepCache};
use crate::oci::registry::{self, Client, RegistryError};
use crate::oci::{media_type, Reference, Store};

/// Why a cache transfer failed.
#[derive(Debug, thiserror::Error)]
pub enum CacheTransferError {
    /// Building, writing or merging the cache.
    #[error(transparent)]
    Cache(#[from] cache::CacheError),
    /// A `ref=` that is not an image reference.
    #[error("cache ref {reference:?}")]
    Reference {
        /// The ref as given.
        reference: String,
        /// The cause.
        #[source]
        source: crate::oci::ReferenceError,
    },
    /// Talking to the registry.
    #[error("{what} cache {reference}")]
    Registry {
        /// `exporting` or `importing`.
        what: &'static str,
        /// The ref.
        reference: String,
        /// The cause.
        #[source]
        source: Box<RegistryError>,
    },
    /// The build has no registry client to push or pull with.
    #[error("{what} cache {reference}: no registry client was configured")]
    NoRegistry {
        /// `exporting` or `importing`.
        what: &'static str,
        /// The ref.
        reference: String,
    },
}

impl CacheTransferError {
    /// Whether the registry said the cache ref does not exist (404).
    pub fn is_not_found(&self) -> bool {
        let CacheTransferError::Registry { source, .. } = self else {
            return false;
        };
        matches!(**source, RegistryError::Status { status: 404, .. })
    }
}

/// The parsed `reference` and the client to reach it with.
fn target<'c>(
    what: &'static str,
    reference: &str,
    client: Option<&'c Client>,
) -> Result<(Reference, &'c Client), CacheTransferError> {
    let client = client.ok_or_else(|| CacheTransferError::NoRegistry {
        what,
        reference: reference.into(),
    })?;
    let r = Reference::parse(reference).map_err(|source| CacheTransferError::Reference {
        reference: reference.into(),
        source,
    })?;
    Ok((r, client))
}

/// Pushes the cache (`mode`) of the latest `builds` builds (one per
/// platform of the last `kiln build`) to `reference`.
pub fn export(
    store: &Store,
    client: Option<&Client>,
    reference: &str,
    mode: cache::export::Mode,
    builds: usize,
) -> Result<(), CacheTransferError> {
    let (r, client) = target("exporting", reference, client)?;
    let steps = StepCache::with_store(store.clone())?;
    let spec = cache::export::ExportSpec::latest_builds(&steps, mode, builds)?;
    let art = cache::export::build_artifact(store, &spec)?;
    registry::push_artifact(
        client,
        store,
        &r,
        media_type::OCI_MANIFEST,
        &art.manifest_bytes,
    )
    .map_err(|source| CacheTransferError::Registry {
        what: "exporting",
        reference: reference.into(),
        source: Box::new(source),
    })?;
    Ok(())
}

/// Pulls the cache artifact at `reference` and merges it into the store.
pub fn import(
    store: &Store,
    client: Option<&Client>,
    reference: &str,
) -> Result<cache::export::TransferReport, CacheTransferError> {
    let (r, client) = target("importing", reference, client)?;
    let err = |source| CacheTransferError::Registry {
        what: "importing",
        reference: reference.into(),
        source: Box::new(source),
    };
    let pulled = registry::pull_artifact(client, store, &r).map_err(err)?;
    let config = store
        .read_blob(&pulled.manifest.config.digest)
        .map_err(|e| err(e.into()))?;
    Ok(cache::export::import_artifact(
        store,
        &pulled.bytes,
        &config,
    )?)
}
