//! Named images: the store's `index.json`, one descriptor per name carrying
//! the `org.opencontainers.image.ref.name` annotation (the familiar name,
//! e.g. `busybox:latest`). Every change is a locked read-modify-write; entries
//! are kept sorted by name so the file's bytes depend only on its content.

use std::fs::{File, OpenOptions};
use std::path::PathBuf;

use fs2::FileExt;

use super::{Store, StoreError};
use crate::oci::reference::{normalize_name, Reference};
use crate::oci::spec::ANNOTATION_REF_NAME;
use crate::oci::{
    canonical_json, media_type, Descriptor, Digest, ImageConfig, Index, Manifest, Platform,
    PlatformMatcher,
};

/// One named image in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageEntry {
    /// The familiar name, e.g. `busybox:latest`.
    pub name: String,
    /// The manifest (or index) it names, without the name annotation.
    pub descriptor: Descriptor,
}

/// Holds the exclusive `index.json` lock until dropped.
pub(super) struct IndexLock(File);

impl Drop for IndexLock {
    fn drop(&mut self) {
        // Unlocking also happens when the fd closes; an error here changes nothing.
        let _ = FileExt::unlock(&self.0);
    }
}

impl Store {
    fn index_path(&self) -> PathBuf {
        self.root.join("index.json")
    }

    pub(super) fn lock_index(&self) -> Result<IndexLock, StoreError> {
        let path = self.root.join("index.json.lock");
        let err = |source| StoreError::Lock {
            path: path.clone(),
            source,
        };
        let f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(err)?;
        f.lock_exclusive().map_err(err)?;
        Ok(IndexLock(f))
    }

    /// Creates an empty `index.json` unless one exists. Under the lock: a
    /// process that checked before another tagged must not write over it.
    pub(super) fn ensure_index(&self) -> Result<(), StoreError> {
        if self.index_path().is_file() {
            return Ok(());
        }
        let lock = self.lock_index()?;
        if self.index_path().is_file() {
            return Ok(());
        }
        let mut empty = Index {
            schema_version: 2,
            media_type: None,
            manifests: Vec::new(),
            annotations: Default::default(),
        };
        self.write_index(&mut empty, &lock)
    }

    /// Reads `index.json` (a snapshot: renames make every read whole).
    pub fn read_index(&self) -> Result<Index, StoreError> {
        let path = self.index_path();
        let bytes = std::fs::read(&path).map_err(|source| StoreError::ReadIndex {
            path: path.clone(),
            source,
        })?;
        serde_json::from_slice(&bytes).map_err(|source| StoreError::ParseIndex { path, source })
    }

    fn write_index(&self, index: &mut Index, _lock: &IndexLock) -> Result<(), StoreError> {
        index
            .manifests
            .sort_by(|a, b| ref_name(a).cmp(&ref_name(b)).then(a.digest.cmp(&b.digest)));
        index.media_type = Some(media_type::OCI_INDEX.to_string());
        let bytes = canonical_json(index).map_err(|source| StoreError::Serialize {
            what: "index.json",
            source,
        })?;
        self.write_file_atomic(&self.index_path(), &bytes)
    }

    /// Names `manifest` (a manifest or index already stored) as `name`,
    /// replacing whatever the name pointed to.
    pub fn tag(&self, name: &str, manifest: &Descriptor) -> Result<(), StoreError> {
        let name = normalize_name(name)?;
        if !self.has_blob(&manifest.digest) {
            return Err(StoreError::MissingManifest {
                digest: manifest.digest,
            });
        }
        let lock = self.lock_index()?;
        let mut index = self.read_index()?;
        index.manifests.retain(|d| ref_name(d) != Some(&name));
        let mut entry = manifest.clone();
        entry.annotations.insert(ANNOTATION_REF_NAME.into(), name);
        index.manifests.push(entry);
        self.write_index(&mut index, &lock)
    }

    /// Removes names: `reference` as a name removes that name; as a digest or
    /// ID prefix it removes every name of that image. Returns the names removed.
    pub fn untag(&self, reference: &str) -> Result<Vec<String>, StoreError> {
        let lock = self.lock_index()?;
        let mut index = self.read_index()?;
        let by_name = name_of(reference).filter(|n| {
            index
                .manifests
                .iter()
                .any(|d| ref_name(d) == Some(n.as_str()))
        });
        let drop: Box<dyn Fn(&Descriptor) -> bool> = match by_name {
            Some(n) => Box::new(move |d| ref_name(d) == Some(n.as_str())),
            None => {
                let target = self.resolve(reference)?.digest;
                Box::new(move |d| d.digest == target)
            }
        };
        let removed: Vec<String> = index
            .manifests
            .iter()
            .filter(|d| drop(d))
            .filter_map(|d| ref_name(d).map(str::to_string))
            .collect();
        index.manifests.retain(|d| !drop(d));
        self.write_index(&mut index, &lock)?;
        Ok(removed)
    }

    /// Removes the name `name` when it points at another manifest than
    /// `current` (a tag seen to have moved whose new image is not complete
    /// yet: the stale name must not outlive what the registry said). Checked
    /// and written under the index lock. Returns whether it was removed.
    pub fn untag_stale(&self, name: &str, current: &Digest) -> Result<bool, StoreError> {
        let name = normalize_name(name)?;
        let lock = self.lock_index()?;
        let mut index = self.read_index()?;
        let stale = |d: &Descriptor| ref_name(d) == Some(name.as_str()) && d.digest != *current;
        if !index.manifests.iter().any(stale) {
            return Ok(false);
        }
        index.manifests.retain(|d| !stale(d));
        self.write_index(&mut index, &lock)?;
        Ok(true)
    }

    /// Every named image, sorted by name.
    pub fn images(&self) -> Result<Vec<ImageEntry>, StoreError> {
        let index = self.read_index()?;
        Ok(index
            .manifests
            .into_iter()
            .filter_map(|d| {
                let name = ref_name(&d)?.to_string();
                Some(ImageEntry {
                    name,
                    descriptor: bare(d),
                })
            })
            .collect())
    }

    /// Finds an image by `name`, `name:tag`, `name@sha256:…`, `sha256:…`
    /// (manifest or config digest), or a short image-ID prefix (≥ 4 hex).
    pub fn resolve(&self, reference: &str) -> Result<Descriptor, StoreError> {
        let images = self.images()?;
        if let Some(name) = name_of(reference) {
            if let Some(e) = images.iter().find(|e| e.name == name) {
                return Ok(e.descriptor.clone());
            }
        }
        if reference.contains('@') {
            let digest = Reference::parse(reference)?
                .digest
                .ok_or_else(|| not_found(reference))?;
            return self.by_digest(&images, &digest, reference);
        }
        let hex = reference.strip_prefix("sha256:").unwrap_or(reference);
        let is_hex = hex.len() >= 4 && hex.bytes().all(|b| b.is_ascii_hexdigit());
        if !is_hex {
            Reference::parse(reference)?;
            return Err(not_found(reference));
        }
        let mut hits: Vec<&ImageEntry> = Vec::new();
        for e in &images {
            let config = self.config_digest(&e.descriptor).ok();
            let matches = e.descriptor.digest.hex().starts_with(hex)
                || config.is_some_and(|c| c.hex().starts_with(hex));
            if matches
                && !hits
                    .iter()
                    .any(|h| h.descriptor.digest == e.descriptor.digest)
            {
                hits.push(e);
            }
        }
        match hits.as_slice() {
            [one] => Ok(one.descriptor.clone()),
            [] => Err(not_found(reference)),
            many => Err(StoreError::Ambiguous {
                reference: reference.to_string(),
                count: many.len(),
            }),
        }
    }

    fn by_digest(
        &self,
        images: &[ImageEntry],
        digest: &Digest,
        reference: &str,
    ) -> Result<Descriptor, StoreError> {
        if let Some(e) = images.iter().find(|e| e.descriptor.digest == *digest) {
            return Ok(e.descriptor.clone());
        }
        Err(not_found(reference))
    }

    /// The image's config digest: its image ID, as docker shows it.
    pub fn config_digest(&self, manifest: &Descriptor) -> Result<Digest, StoreError> {
        let (m, _) = self.load_manifest(manifest)?;
        Ok(m.config.digest)
    }

    /// Reads a manifest, descending through an index to this host's platform.
    /// Returns the manifest and the descriptor it was read from.
    pub fn load_manifest(&self, desc: &Descriptor) -> Result<(Manifest, Descriptor), StoreError> {
        self.load_manifest_for(desc, &Platform::host())
    }

    /// Reads a manifest, descending through an index to `platform`'s entry
    /// (the matcher's best). Returns the manifest and its descriptor.
    pub fn load_manifest_for(
        &self,
        desc: &Descriptor,
        platform: &Platform,
    ) -> Result<(Manifest, Descriptor), StoreError> {
        let bytes = self.read_blob(&desc.digest)?;
        match desc.media_type.as_str() {
            media_type::OCI_MANIFEST | media_type::DOCKER_MANIFEST => {
                let m = serde_json::from_slice(&bytes).map_err(|source| StoreError::ParseBlob {
                    what: "manifest",
                    digest: desc.digest,
                    source,
                })?;
                Ok((m, desc.clone()))
            }
            media_type::OCI_INDEX | media_type::DOCKER_MANIFEST_LIST => {
                let index: Index =
                    serde_json::from_slice(&bytes).map_err(|source| StoreError::ParseBlob {
                        what: "index",
                        digest: desc.digest,
                        source,
                    })?;
                // The same choice a pull makes, variants included.
                let child = PlatformMatcher::only(platform)
                    .select(&index.manifests)
                    .ok_or_else(|| StoreError::NoPlatform {
                        digest: desc.digest,
                        platform: platform.to_specifier(),
                    })?;
                self.load_manifest_for(child, platform)
            }
            other => Err(StoreError::UnsupportedMediaType {
                media_type: other.to_string(),
                digest: desc.digest,
            }),
        }
    }

    /// Reads an image's manifest and config (verified against their digests).
    pub fn load_image(&self, manifest: &Descriptor) -> Result<(Manifest, ImageConfig), StoreError> {
        let (m, _) = self.load_manifest(manifest)?;
        let bytes = self.read_blob(&m.config.digest)?;
        let config = serde_json::from_slice(&bytes).map_err(|source| StoreError::ParseBlob {
            what: "config",
            digest: m.config.digest,
            source,
        })?;
        Ok((m, config))
    }
}

fn ref_name(d: &Descriptor) -> Option<&str> {
    d.annotations.get(ANNOTATION_REF_NAME).map(String::as_str)
}

/// `reference` as a store name, when it parses as a name (not a digest form).
fn name_of(reference: &str) -> Option<String> {
    if reference.contains('@') || reference.starts_with("sha256:") {
        return None;
    }
    normalize_name(reference).ok()
}

fn bare(mut d: Descriptor) -> Descriptor {
    d.annotations.remove(ANNOTATION_REF_NAME);
    d
}

fn not_found(reference: &str) -> StoreError {
    StoreError::NotFound {
        reference: reference.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::{ContainerConfig, RootFs};

    fn image(store: &Store, label: &str) -> Descriptor {
        let mut config = ImageConfig {
            architecture: "amd64".into(),
            os: "linux".into(),
            config: ContainerConfig::default(),
            rootfs: RootFs::default(),
            ..Default::default()
        };
        config.config.labels.insert("l".into(), label.into());
        let c = store.put_json(media_type::OCI_CONFIG, &config).unwrap();
        let m = Manifest {
            schema_version: 2,
            media_type: Some(media_type::OCI_MANIFEST.into()),
            config: c,
            layers: vec![],
            annotations: Default::default(),
        };
        store.put_json(media_type::OCI_MANIFEST, &m).unwrap()
    }

    #[test]
    fn untag_stale_removes_only_a_name_on_another_manifest() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let a = image(&store, "a");
        let b = image(&store, "b");
        store.tag("base:1", &a).unwrap();
        assert!(!store.untag_stale("base:1", &a.digest).unwrap());
        assert_eq!(store.resolve("base:1").unwrap(), a);
        assert!(store.untag_stale("base:1", &b.digest).unwrap());
        assert!(store.resolve("base:1").is_err());
        assert!(!store.untag_stale("base:1", &b.digest).unwrap());
    }

    #[test]
    fn tag_resolve_untag() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let a = image(&store, "a");
        let b = image(&store, "b");
        store.tag("app", &a).unwrap();
        store.tag("docker.io/library/app:2", &b).unwrap();
        assert_eq!(store.resolve("app:latest").unwrap(), a);
        assert_eq!(store.resolve("app:2").unwrap(), b);
        assert_eq!(store.resolve(&a.digest.to_string()).unwrap(), a);
        assert_eq!(store.resolve(&format!("app@{}", b.digest)).unwrap(), b);
        let id = store.config_digest(&b).unwrap().hex();
        assert_eq!(store.resolve(&id[..12]).unwrap(), b);
        assert!(matches!(
            store.resolve("nope"),
            Err(StoreError::NotFound { .. })
        ));
        store.tag("app", &b).unwrap();
        assert_eq!(store.resolve("app").unwrap(), b);
        assert_eq!(store.untag(&id).unwrap(), ["app:2", "app:latest"]);
        assert!(store.images().unwrap().is_empty());
        let (m, c) = store.load_image(&a).unwrap();
        assert_eq!(c.config.labels["l"], "a");
        assert!(m.layers.is_empty());
    }

    #[test]
    fn tag_refuses_missing_manifest() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let d = Descriptor::new(media_type::OCI_MANIFEST, Digest::of(b"x"), 1);
        assert!(matches!(
            store.tag("x", &d),
            Err(StoreError::MissingManifest { .. })
        ));
    }
}
