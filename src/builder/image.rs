//! Assembling the image a stage ends with: its config (rootfs, history,
//! created, platform, docker's default PATH) and its OCI manifest, stored as
//! canonical JSON blobs.
//!
//! Invariants: `rootfs.diff_ids` and the manifest's layers are the same
//! layers in the same order, and history has exactly one non-empty entry per
//! layer; the same inputs give the same bytes (sorted keys, `created` from
//! `SOURCE_DATE_EPOCH` when it is set).

use std::time::{SystemTime, UNIX_EPOCH};

use crate::oci::{
    media_type, Descriptor, Digest, History, ImageConfig, LayerBlob, Manifest, Platform, Store,
    StoreError,
};

use crate::cache::StepKey;
use crate::oci::registry::RemoteBlobs;

use super::error::StepError;
use super::snapshot::ensure_snapshots;
use crate::layer::MergedFs;

/// Docker's default PATH for Linux images.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// BuildKit's history comment.
pub const HISTORY_COMMENT: &str = "buildkit.dockerfile.v0";

/// An image written to the store.
#[derive(Debug, Clone)]
pub struct BuiltImage {
    /// The manifest's descriptor (what names and outputs point at).
    pub manifest: Descriptor,
    /// The config digest: the image ID, as docker shows it.
    pub config_digest: Digest,
    /// The config as stored.
    pub config: ImageConfig,
    /// The layers, base first.
    pub layers: Vec<LayerBlob>,
    /// Where the layers of a lazily resolved base image are, until fetched:
    /// an image with it may lack some layer blobs (its manifest is stored but
    /// unnamed; naming or writing it out fetches them first).
    pub remote: Option<std::sync::Arc<crate::oci::registry::RemoteBlobs>>,
    /// The attestations the build made (provenance), not yet attached.
    pub attestations: Vec<crate::attest::Attestation>,
    /// The image index holding `manifest` and its attestation manifest,
    /// once [`Build::execute`](super::Build::execute) attached them; in a
    /// multi-platform build, every platform's manifest (and attestations).
    pub index: Option<Descriptor>,
    /// A multi-platform build's other platforms' images, in `--platform`
    /// order (this image is the first platform's); empty for one platform.
    pub others: Vec<BuiltImage>,
    /// In a multi-platform build, the target platform of the pass that
    /// made it: its index entry and output directory are named after it,
    /// whatever its config says (a final stage `FROM
    /// --platform=$BUILDPLATFORM` is the build platform's image in every
    /// pass; COMPAT(buildkit): the entry still names the target).
    pub target: Option<Platform>,
}

impl BuiltImage {
    /// What names and image outputs point at: the index when the image has
    /// attestations, else the manifest.
    pub fn descriptor(&self) -> &Descriptor {
        self.index.as_ref().unwrap_or(&self.manifest)
    }

    /// Every platform's image, this one first.
    pub fn per_platform(&self) -> impl Iterator<Item = &BuiltImage> {
        std::iter::once(self).chain(&self.others)
    }

    /// Its platform: the pass's target in a multi-platform build, else
    /// the one its config names.
    pub fn platform(&self) -> Platform {
        if let Some(t) = &self.target {
            return t.clone();
        }
        Platform {
            architecture: self.config.architecture.clone(),
            os: self.config.os.clone(),
            variant: self.config.variant.clone(),
            os_version: None,
        }
    }

    /// The ID buildx prints (`-q`) and writes (`--iidfile`): the config
    /// digest, or the index digest when there is an index.
    // COMPAT(buildkit): with an index BuildKit's response has no config
    // digest, and buildx falls back on `containerimage.digest`.
    pub fn id(&self) -> Digest {
        match &self.index {
            Some(index) => index.digest,
            None => self.config_digest,
        }
    }
}

pub use crate::oci::time::{parse_rfc3339, rfc3339};

/// The `created` time of a build: `SOURCE_DATE_EPOCH` when given, else now.
pub fn created_time(source_date_epoch: Option<i64>) -> String {
    match source_date_epoch {
        Some(epoch) => rfc3339(epoch, 0),
        None => {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
            rfc3339(now.as_secs() as i64, now.subsec_nanos())
        }
    }
}

/// A history entry for one step.
pub fn history(created: &str, created_by: &str, empty_layer: bool) -> History {
    History {
        created: Some(created.to_string()),
        created_by: Some(created_by.to_string()),
        author: None,
        comment: Some(HISTORY_COMMENT.to_string()),
        empty_layer,
    }
}

/// Completes `config` (platform, PATH, rootfs, history, created) for
/// `layers`, stores config and manifest (with `annotations`, buildx's
/// `--annotation manifest:K=V`), and returns the image.
pub fn store_image(
    store: &Store,
    mut config: ImageConfig,
    layers: Vec<LayerBlob>,
    history: Vec<History>,
    platform: &Platform,
    created: &str,
    annotations: &std::collections::BTreeMap<String, String>,
) -> Result<BuiltImage, StoreError> {
    if config.os.is_empty() || config.architecture.is_empty() {
        config.os = platform.os.clone();
        config.architecture = platform.architecture.clone();
        config.variant = platform.variant.clone();
    }
    if config.config.env_get("PATH").is_none() {
        // COMPAT(buildkit): every Linux image gets docker's default PATH.
        config.config.env.insert(0, format!("PATH={DEFAULT_PATH}"));
    }
    config.rootfs.diff_ids = layers.iter().map(|l| l.diff_id).collect();
    config.history = history;
    config.created = Some(created.to_string());
    let config_desc = store.put_json(media_type::OCI_CONFIG, &config)?;
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(media_type::OCI_MANIFEST.to_string()),
        config: config_desc.clone(),
        layers: layers.iter().map(|l| l.descriptor.clone()).collect(),
        annotations: annotations.clone(),
    };
    let manifest_desc = store.put_json(media_type::OCI_MANIFEST, &manifest)?;
    Ok(BuiltImage {
        manifest: manifest_desc,
        config_digest: config_desc.digest,
        config,
        layers,
        remote: None,
        attestations: Vec::new(),
        index: None,
        others: Vec::new(),
        target: None,
    })
}

/// What a finished stage hands to stages that use it and to the image.
#[derive(Debug, Clone)]
pub struct StageOutput {
    /// Layers, base first.
    pub layers: Vec<LayerBlob>,
    /// History, base first.
    pub history: Vec<History>,
    /// The final config (rootfs and history not yet filled in).
    pub config: ImageConfig,
    /// The stage's platform.
    pub platform: Platform,
    /// The cache key of its last step (`None`: the empty filesystem).
    pub key: Option<StepKey>,
    /// When its newest step's result was made (unix seconds; `None`: no step).
    pub time: Option<i64>,
}

impl StageOutput {
    /// The merged filesystem, unpacking any layer not yet in `snapshots/`
    /// (after fetching, through `remote`, the blobs of a lazily resolved base).
    pub fn rootfs(
        &self,
        store: &Store,
        remote: Option<&RemoteBlobs>,
    ) -> Result<MergedFs, StepError> {
        let mut dirs = ensure_snapshots(store, &self.layers, remote)?;
        dirs.reverse();
        Ok(MergedFs::new(dirs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_a_valid_scratch_image() {
        let root = tempfile::tempdir().unwrap();
        let store = crate::store::open(root.path()).unwrap();
        let created = created_time(Some(1_700_000_000));
        let hist = vec![history(&created, "ENV A=b", true)];
        let img = store_image(
            &store,
            ImageConfig::default(),
            vec![],
            hist,
            &Platform::host(),
            &created,
            &Default::default(),
        )
        .unwrap();
        crate::oci::validate(&store, &img.manifest).unwrap();
        let (_, cfg) = store.load_image(&img.manifest).unwrap();
        assert_eq!(cfg.created.as_deref(), Some("2023-11-14T22:13:20Z"));
        assert_eq!(cfg.config.env_get("PATH"), Some(DEFAULT_PATH));
        assert_eq!(cfg.os, "linux");
    }
}
