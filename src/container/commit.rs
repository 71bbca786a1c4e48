//! `kiln commit CONTAINER NAME`: a new image from a stopped container's changes, as
//! docker commit: the image's layers plus one packed from the container's writable
//! layer (an overlay upper dir: whiteouts and opaque dirs become their OCI forms),
//! the image's config with the new diff_id and a history entry.
//!
//! Invariant: only a container that does not run is committed: kiln cannot pause
//! one (docker freezes its cgroup), and a running container's upper dir holds the
//! sandbox's mount points, which it removes when the command ends.

use crate::layer::{self, LayerError, PackOptions, SourceKind};
use crate::oci::{media_type, Descriptor, History, Store, StoreError};

use super::stored::{now, Container};

/// Why a commit failed.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    /// The container runs.
    #[error(
        "container {0} is running: stop it first (kiln cannot pause a container to commit it)"
    )]
    Running(String),
    /// The container's image is no longer in the store.
    #[error("the container's image {image} ({digest}) is no longer in the store")]
    Image {
        /// As named at `run`.
        image: String,
        /// Its manifest digest.
        digest: String,
        /// The cause.
        #[source]
        source: Box<StoreError>,
    },
    /// Writing blobs or the name.
    #[error("writing the image")]
    Store(#[from] StoreError),
    /// Packing the writable layer.
    #[error("packing the container's writable layer")]
    Pack(#[from] LayerError),
}

/// Commits `c` as the image `name`; returns its manifest descriptor.
pub fn commit(store: &Store, c: &Container, name: &str) -> Result<Descriptor, CommitError> {
    if c.is_running() {
        return Err(CommitError::Running(c.config.name.clone()));
    }
    let image_err = |source| CommitError::Image {
        image: c.config.image.clone(),
        digest: c.config.image_digest.clone(),
        source: Box::new(source),
    };
    let desc = store.resolve(&c.config.image_digest).map_err(image_err)?;
    let (mut manifest, mut config) = store.load_image(&desc).map_err(image_err)?;
    let opts = PackOptions::default();
    let mut w = store.begin_blob()?;
    let packed = layer::pack(
        &c.config.spec.upper_dir,
        SourceKind::OverlayUpper,
        &opts,
        &mut w,
    )?;
    let (digest, size) = w.commit()?;
    let created = crate::oci::time::rfc3339(now(), 0);
    config.rootfs.diff_ids.push(packed.diff_id);
    config.history.push(History {
        created: Some(created.clone()),
        created_by: Some(format!("kiln commit {}", c.config.name)),
        comment: Some(format!("from container {}", c.config.id)),
        ..Default::default()
    });
    config.created = Some(created);
    // The new layer and config take the manifest's own family of media types.
    let docker = manifest.media_type.as_deref() == Some(media_type::DOCKER_MANIFEST);
    let (manifest_type, config_type, layer_type) = if docker {
        let t = media_type::DOCKER_MANIFEST;
        (t, media_type::DOCKER_CONFIG, media_type::DOCKER_LAYER_GZIP)
    } else {
        let t = media_type::OCI_MANIFEST;
        (t, media_type::OCI_CONFIG, opts.compression.media_type())
    };
    manifest.config = store.put_json(config_type, &config)?;
    manifest.media_type = Some(manifest_type.into());
    manifest
        .layers
        .push(Descriptor::new(layer_type, digest, size));
    let new = store.put_json(manifest_type, &manifest)?;
    store.tag(name, &new)?;
    Ok(new)
}
