//! The image half of fsck: every `index.json` entry walked down to its
//! layers, each blob checked present, the size its descriptor says, not
//! corrupt, and (manifests, indexes, configs) parseable.

use std::collections::BTreeSet;
use std::fs;

use super::{BlobFault, FsckReport, Problem};
use crate::oci::{media_type, Descriptor, Digest, ImageConfig, Index, Manifest, Store};

/// Manifests, indexes and configs larger than this are not parsed.
const JSON_LIMIT: u64 = 4 << 20;

/// How deep image indexes may nest.
const MAX_DEPTH: usize = 8;

/// Walks every `index.json` entry down to its layers.
pub(super) fn check_images(store: &Store, corrupt: &BTreeSet<Digest>, report: &mut FsckReport) {
    let index = match store.read_index() {
        Ok(i) => i,
        Err(e) => {
            report.problems.push(Problem::Index(e));
            return;
        }
    };
    for desc in &index.manifests {
        report.images += 1;
        let name = desc
            .annotations
            .get(crate::oci::spec::ANNOTATION_REF_NAME)
            .cloned()
            .unwrap_or_else(|| desc.digest.to_string());
        let mut walk = ImageWalk {
            store,
            corrupt,
            image: &name,
            problems: &mut report.problems,
        };
        walk.descriptor(desc, 0);
    }
}

/// One image's walk: reports every fault under the image's name.
struct ImageWalk<'a> {
    store: &'a Store,
    corrupt: &'a BTreeSet<Digest>,
    image: &'a str,
    problems: &'a mut Vec<Problem>,
}

impl ImageWalk<'_> {
    fn fault(&mut self, role: &'static str, digest: Digest, fault: BlobFault) {
        self.problems.push(Problem::BrokenImage {
            image: self.image.to_string(),
            role,
            digest,
            fault,
        });
    }

    /// Present, the right size and not corrupt; `false` after reporting why not.
    fn present(&mut self, role: &'static str, desc: &Descriptor) -> bool {
        let Ok(meta) = fs::metadata(self.store.blob_path(&desc.digest)) else {
            self.fault(role, desc.digest, BlobFault::Missing);
            return false;
        };
        if meta.len() != desc.size {
            let (expected, actual) = (desc.size, meta.len());
            self.fault(role, desc.digest, BlobFault::Size { expected, actual });
            return false;
        }
        if self.corrupt.contains(&desc.digest) {
            self.fault(role, desc.digest, BlobFault::Corrupt);
            return false;
        }
        true
    }

    /// Parses a (present, verified) JSON blob of at most [`JSON_LIMIT`] bytes.
    fn parse<T: serde::de::DeserializeOwned>(
        &mut self,
        role: &'static str,
        desc: &Descriptor,
    ) -> Option<T> {
        if desc.size > JSON_LIMIT {
            return None;
        }
        let bytes = fs::read(self.store.blob_path(&desc.digest)).ok()?;
        match serde_json::from_slice(&bytes) {
            Ok(v) => Some(v),
            Err(e) => {
                self.fault(role, desc.digest, BlobFault::Unparsable(e));
                None
            }
        }
    }

    fn descriptor(&mut self, desc: &Descriptor, depth: usize) {
        let m = desc.media_type.as_str();
        if m == media_type::OCI_INDEX || m == media_type::DOCKER_MANIFEST_LIST {
            if depth >= MAX_DEPTH {
                return self.fault("index", desc.digest, BlobFault::TooDeep);
            }
            if !self.present("index", desc) {
                return;
            }
            if let Some(index) = self.parse::<Index>("index", desc) {
                for child in &index.manifests {
                    self.descriptor(child, depth + 1);
                }
            }
        } else if m == media_type::OCI_MANIFEST || m == media_type::DOCKER_MANIFEST {
            if self.present("manifest", desc) {
                if let Some(manifest) = self.parse::<Manifest>("manifest", desc) {
                    self.manifest(&manifest);
                }
            }
        } else {
            self.fault("manifest", desc.digest, BlobFault::MediaType(m.to_string()));
        }
    }

    fn manifest(&mut self, manifest: &Manifest) {
        for layer in &manifest.layers {
            self.present("layer", layer);
        }
        if !self.present("config", &manifest.config) {
            return;
        }
        // An OCI artifact's empty config (an attestation manifest's with
        // oci-artifact=true) is no image config.
        if manifest.config.media_type == media_type::OCI_EMPTY {
            return;
        }
        if let Some(config) = self.parse::<ImageConfig>("config", &manifest.config) {
            let (layers, diff_ids) = (manifest.layers.len(), config.rootfs.diff_ids.len());
            if layers != diff_ids {
                let fault = BlobFault::LayerCount { layers, diff_ids };
                self.fault("config", manifest.config.digest, fault);
            }
        }
    }
}
