//! Base images come from the local store: `FROM busybox` resolves the name
//! (docker's normalization: `busybox` → `busybox:latest`) to a manifest and
//! reads its config. Pulling from a registry is a later issue, so a missing
//! image says how to get it into the store.

use std::error::Error;

use crate::oci::{Platform, Store, StoreError};
use crate::plan::{ImageResolver, ResolvedImage};

/// Why a base image could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// Not in the store.
    #[error("image {reference} is not in the local store (pulling is not supported yet: `kiln load -i IMAGE.tar` first)")]
    NotInStore {
        /// The reference.
        reference: String,
        /// The store's answer.
        #[source]
        source: StoreError,
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

/// An [`ImageResolver`] over the local store.
pub struct StoreResolver<'a> {
    /// The store.
    pub store: &'a Store,
}

impl ImageResolver for StoreResolver<'_> {
    fn resolve(
        &self,
        reference: &str,
        platform: &Platform,
    ) -> Result<ResolvedImage, Box<dyn Error + Send + Sync>> {
        let manifest =
            self.store
                .resolve(reference)
                .map_err(|source| ResolveError::NotInStore {
                    reference: reference.into(),
                    source,
                })?;
        let (_, config) =
            self.store
                .load_image(&manifest)
                .map_err(|source| ResolveError::Load {
                    reference: reference.into(),
                    source,
                })?;
        if !config.os.is_empty()
            && (config.os != platform.os || config.architecture != platform.architecture)
        {
            return Err(Box::new(ResolveError::Platform {
                reference: reference.into(),
                found: format!("{}/{}", config.os, config.architecture),
                wanted: platform.to_specifier(),
            }));
        }
        Ok(ResolvedImage {
            reference: reference.into(),
            manifest,
            config,
        })
    }
}
