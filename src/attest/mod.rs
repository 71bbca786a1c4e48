//! Attestations attached to a built image, stored as BuildKit stores them:
//! the image becomes an OCI image index holding the platform's image
//! manifest and one attestation manifest (platform `unknown/unknown`,
//! annotated `vnd.docker.reference.type=attestation-manifest` and
//! `vnd.docker.reference.digest=<image manifest digest>`) whose layers are
//! in-toto statements (`application/vnd.in-toto+json`, each annotated with
//! its `in-toto.io/predicate-type`).
//!
//! The machinery takes a list of [`Attestation`]s (a predicate type and a
//! predicate; [`provenance`] makes the SLSA v1 provenance one, an SBOM
//! scanner makes its own) and [`attach`] wraps each in a [`Statement`] whose
//! subjects are the image manifest under each of the image's names, stores
//! the statements, the attestation manifest and the index.
//!
//! Producers push onto `builder::BuiltImage::attestations` in
//! `builder::build`, where the image's layers are at hand: the SBOMs
//! (`builder::sbom`, [`PREDICATE_SPDX`], when [`AttestOptions::sbom`]) first,
//! then the provenance, as BuildKit's exporter orders them.
//! `Build::execute` hands the whole list to [`attach`], which writes one
//! in-toto layer per attestation, in order, in the same attestation
//! manifest.
//!
//! Invariants: the same attestations, names and image give the same bytes
//! (canonical JSON, statements in the order given, subjects sorted); no
//! wall-clock time or random id reaches a blob (the provenance module takes
//! times only from `SOURCE_DATE_EPOCH`); the image manifest is listed first,
//! so a reader that takes the first manifest for the platform finds it.

pub mod options;
pub mod provenance;
mod purl;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::oci::{
    media_type, Descriptor, Digest, ImageConfig, Index, Manifest, Platform, Reference, Store,
    StoreError,
};

pub use options::{AttestOptions, OptionsError, ProvenanceMode, ProvenanceOptions};
pub use purl::docker_purl;

/// The media type of an in-toto statement layer.
pub const MEDIA_TYPE_IN_TOTO: &str = media_type::IN_TOTO;
pub use crate::oci::spec::{
    ANNOTATION_PREDICATE_TYPE, ANNOTATION_REFERENCE_DIGEST, ANNOTATION_REFERENCE_TYPE,
    REFERENCE_TYPE_ATTESTATION,
};
/// The statement type BuildKit 0.25 writes.
// COMPAT(buildkit): BuildKit 0.25 still writes in-toto Statement v0.1.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v0.1";
/// The SLSA v1 provenance predicate type.
pub const PREDICATE_SLSA_PROVENANCE_V1: &str = "https://slsa.dev/provenance/v1";
/// The SPDX predicate type (what an SBOM attestation carries).
pub const PREDICATE_SPDX: &str = "https://spdx.dev/Document";

/// One attestation before it is attached: what a producer (provenance, an
/// SBOM scanner) hands to [`attach`]. The subject is filled in there.
#[derive(Debug, Clone, PartialEq)]
pub struct Attestation {
    /// The in-toto predicate type, e.g. [`PREDICATE_SLSA_PROVENANCE_V1`].
    pub predicate_type: String,
    /// The predicate, any JSON (serialized with sorted keys).
    pub predicate: serde_json::Value,
}

/// An in-toto statement as stored in an attestation manifest's layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Statement {
    /// [`STATEMENT_TYPE`].
    #[serde(rename = "_type")]
    pub statement_type: String,
    /// The predicate type.
    #[serde(rename = "predicateType")]
    pub predicate_type: String,
    /// What is attested: the image manifest, once per name.
    pub subject: Vec<Subject>,
    /// The predicate.
    pub predicate: serde_json::Value,
}

/// A statement's subject.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Subject {
    /// `pkg:docker/<name>@<tag>?platform=<os>%2F<arch>`, as BuildKit names it.
    pub name: String,
    /// `{"sha256": "<hex>"}`.
    pub digest: BTreeMap<String, String>,
}

/// Why attestations could not be attached.
#[derive(Debug, thiserror::Error)]
pub enum AttestError {
    /// Writing a statement, the attestation manifest or the index.
    #[error("storing the attestations")]
    Store(#[from] StoreError),
    /// A name the image is given does not parse.
    #[error("naming the attestation subject {name:?}")]
    Name {
        /// The name.
        name: String,
        /// The cause.
        #[source]
        source: crate::oci::ReferenceError,
    },
}

/// The subjects of `image` (the platform manifest) under `names`: one per
/// name, sorted, duplicates removed. No name, no subject (as BuildKit does
/// for an image exported without a name).
pub fn subjects(
    image: &Digest,
    platform: &Platform,
    names: &[String],
) -> Result<Vec<Subject>, AttestError> {
    let mut out = Vec::new();
    for n in names {
        let r = Reference::parse(n).map_err(|source| AttestError::Name {
            name: n.clone(),
            source,
        })?;
        out.push(Subject {
            name: docker_purl(&r, Some(platform)),
            digest: sha256_map(image),
        });
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// `{"sha256": "<hex>"}`, in-toto's digest set.
pub fn sha256_map(d: &Digest) -> BTreeMap<String, String> {
    BTreeMap::from([("sha256".to_string(), d.hex())])
}

/// The artifact type of an attestation manifest in [`ManifestForm::OciArtifact`].
pub const ARTIFACT_TYPE_ATTESTATION: &str = "application/vnd.docker.attestation.manifest.v1+json";
/// The OCI empty descriptor's media type (an artifact's config).
pub const MEDIA_TYPE_EMPTY: &str = media_type::OCI_EMPTY;

/// How the attestation manifest is shaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ManifestForm {
    /// BuildKit's default: an image manifest with an `unknown/unknown`
    /// image config.
    #[default]
    Image,
    /// BuildKit's `oci-artifact=true`: an OCI 1.1 artifact manifest
    /// (`artifactType`, the empty config, `subject` = the image manifest),
    /// which a registry with the referrers API lists as a referrer of the
    /// image. Still listed in the index, as BuildKit does.
    OciArtifact,
}

/// Wraps each attestation in a statement about `image` (the platform
/// manifest, with `platform`) under `names`, stores the statements, one
/// attestation manifest (shaped as `form` says) and the index holding both
/// manifests; returns the index's descriptor. `attestations` must not be
/// empty.
pub fn attach(
    store: &Store,
    image: &Descriptor,
    platform: &Platform,
    names: &[String],
    attestations: &[Attestation],
    form: ManifestForm,
) -> Result<Descriptor, AttestError> {
    let one = PlatformImage {
        manifest: image,
        platform,
        attestations,
    };
    attach_all(store, &[one], names, form)
}

/// One platform's image manifest and the attestations about it, for
/// [`attach_all`].
#[derive(Debug, Clone, Copy)]
pub struct PlatformImage<'a> {
    /// The platform's image manifest.
    pub manifest: &'a Descriptor,
    /// Its platform, as the index entry names it.
    pub platform: &'a Platform,
    /// Its attestations (maybe none).
    pub attestations: &'a [Attestation],
}

/// The index of a multi-platform image: every platform's manifest (with
/// its platform), in the order given, then the attestation manifest of each
/// platform that has attestations, as BuildKit's image exporter orders
/// them. With one platform this is [`attach`]'s index.
pub fn attach_all(
    store: &Store,
    images: &[PlatformImage<'_>],
    names: &[String],
    form: ManifestForm,
) -> Result<Descriptor, AttestError> {
    let mut manifests = Vec::with_capacity(images.len() * 2);
    let mut attestation_manifests = Vec::new();
    for i in images {
        let mut img = Descriptor::new(
            i.manifest.media_type.clone(),
            i.manifest.digest,
            i.manifest.size,
        );
        img.platform = Some(i.platform.clone());
        manifests.push(img);
        if !i.attestations.is_empty() {
            let att =
                attestation_manifest(store, i.manifest, i.platform, names, i.attestations, form)?;
            attestation_manifests.push(att);
        }
    }
    manifests.extend(attestation_manifests);
    let index = Index {
        schema_version: 2,
        media_type: Some(media_type::OCI_INDEX.into()),
        manifests,
        annotations: BTreeMap::new(),
    };
    Ok(store.put_json(media_type::OCI_INDEX, &index)?)
}

/// Stores the statements about `image` and the attestation manifest
/// holding them; returns its index entry.
fn attestation_manifest(
    store: &Store,
    image: &Descriptor,
    platform: &Platform,
    names: &[String],
    attestations: &[Attestation],
    form: ManifestForm,
) -> Result<Descriptor, AttestError> {
    let subject = subjects(&image.digest, platform, names)?;
    let mut layers = Vec::new();
    for a in attestations {
        let stmt = Statement {
            statement_type: STATEMENT_TYPE.into(),
            predicate_type: a.predicate_type.clone(),
            subject: subject.clone(),
            predicate: a.predicate.clone(),
        };
        let mut d = store.put_json(MEDIA_TYPE_IN_TOTO, &stmt)?;
        d.annotations
            .insert(ANNOTATION_PREDICATE_TYPE.into(), a.predicate_type.clone());
        layers.push(d);
    }
    let mut att = match form {
        ManifestForm::Image => image_form(store, layers)?,
        ManifestForm::OciArtifact => artifact_form(store, image, layers)?,
    };
    att.annotations
        .insert(ANNOTATION_REFERENCE_DIGEST.into(), image.digest.to_string());
    att.annotations.insert(
        ANNOTATION_REFERENCE_TYPE.into(),
        REFERENCE_TYPE_ATTESTATION.into(),
    );
    att.platform = Some(unknown_platform());
    Ok(att)
}

/// The attestation manifest as BuildKit writes it by default.
fn image_form(store: &Store, layers: Vec<Descriptor>) -> Result<Descriptor, AttestError> {
    // COMPAT(buildkit): the config says unknown/unknown and lists the
    // statements' digests as diff_ids (they are not compressed).
    let mut config = ImageConfig {
        architecture: "unknown".into(),
        os: "unknown".into(),
        ..Default::default()
    };
    config.rootfs.diff_ids = layers
        .iter()
        .map(|l| crate::oci::DiffId::from_bytes(*l.digest.bytes()))
        .collect();
    let config = store.put_json(media_type::OCI_CONFIG, &config)?;
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(media_type::OCI_MANIFEST.into()),
        config,
        layers,
        annotations: BTreeMap::new(),
    };
    Ok(store.put_json(media_type::OCI_MANIFEST, &manifest)?)
}

/// The attestation manifest as BuildKit writes it with `oci-artifact=true`
/// (the fields kiln's `Manifest` type does not have are added as JSON).
fn artifact_form(
    store: &Store,
    image: &Descriptor,
    layers: Vec<Descriptor>,
) -> Result<Descriptor, AttestError> {
    let (empty, size) = store.put_blob(b"{}")?;
    let config = serde_json::json!({
        "mediaType": MEDIA_TYPE_EMPTY,
        "digest": empty.to_string(),
        "size": size,
        "data": "e30=",
    });
    let subject = Descriptor::new(image.media_type.clone(), image.digest, image.size);
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": media_type::OCI_MANIFEST,
        "artifactType": ARTIFACT_TYPE_ATTESTATION,
        "config": config,
        "layers": layers,
        "subject": subject,
    });
    Ok(store.put_json(media_type::OCI_MANIFEST, &manifest)?)
}

/// `unknown/unknown`: the platform of an attestation manifest.
pub fn unknown_platform() -> Platform {
    Platform {
        architecture: "unknown".into(),
        os: "unknown".into(),
        variant: None,
        os_version: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attaches_an_index_with_the_attestation_manifest() {
        let root = tempfile::tempdir().unwrap();
        let store = Store::open(root.path()).unwrap();
        let (d, n) = store.put_blob(b"{}").unwrap();
        let image = Descriptor::new(media_type::OCI_MANIFEST, d, n);
        let p = Platform::host();
        let atts = vec![
            Attestation {
                predicate_type: PREDICATE_SLSA_PROVENANCE_V1.into(),
                predicate: serde_json::json!({"b": 1, "a": 2}),
            },
            Attestation {
                predicate_type: PREDICATE_SPDX.into(),
                predicate: serde_json::json!({"spdxVersion": "SPDX-2.3"}),
            },
        ];
        let names = vec!["app:1".to_string(), "example.com/x/y".to_string()];
        let form = ManifestForm::Image;
        let idx = attach(&store, &image, &p, &names, &atts, form).unwrap();
        assert_eq!(
            idx,
            attach(&store, &image, &p, &names, &atts, form).unwrap()
        );
        let index: Index = serde_json::from_slice(&store.read_blob(&idx.digest).unwrap()).unwrap();
        assert_eq!(index.manifests[0].digest, d);
        assert!(index.manifests[1].is_attestation());
        let m: Manifest =
            serde_json::from_slice(&store.read_blob(&index.manifests[1].digest).unwrap()).unwrap();
        assert_eq!(m.layers.len(), 2);
        assert_eq!(
            m.layers[1].annotations[ANNOTATION_PREDICATE_TYPE],
            PREDICATE_SPDX
        );
        let s: Statement =
            serde_json::from_slice(&store.read_blob(&m.layers[0].digest).unwrap()).unwrap();
        assert_eq!(s.statement_type, STATEMENT_TYPE);
        let plat = p.to_specifier().replace('/', "%2F");
        assert_eq!(
            s.subject[0].name,
            format!("pkg:docker/app@1?platform={plat}")
        );
        assert_eq!(
            s.subject[1].name,
            format!("pkg:docker/example.com/x/y@latest?platform={plat}")
        );
        assert_eq!(s.subject[0].digest["sha256"], d.hex());
    }

    #[test]
    fn oci_artifact_form_has_buildkits_shape() {
        let root = tempfile::tempdir().unwrap();
        let store = Store::open(root.path()).unwrap();
        let (d, n) = store.put_blob(b"{\"x\":1}").unwrap();
        let image = Descriptor::new(media_type::OCI_MANIFEST, d, n);
        let atts = vec![Attestation {
            predicate_type: PREDICATE_SLSA_PROVENANCE_V1.into(),
            predicate: serde_json::json!({}),
        }];
        let p = Platform::host();
        let idx = attach(&store, &image, &p, &[], &atts, ManifestForm::OciArtifact).unwrap();
        crate::oci::validate(&store, &idx).unwrap_err(); // the image itself is no image
        let index: Index = serde_json::from_slice(&store.read_blob(&idx.digest).unwrap()).unwrap();
        let m: serde_json::Value =
            serde_json::from_slice(&store.read_blob(&index.manifests[1].digest).unwrap()).unwrap();
        assert_eq!(m["artifactType"], ARTIFACT_TYPE_ATTESTATION);
        assert_eq!(m["config"]["mediaType"], MEDIA_TYPE_EMPTY);
        assert_eq!(
            m["config"]["digest"],
            "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
        assert_eq!(m["config"]["data"], "e30=");
        assert_eq!(m["subject"]["digest"], d.to_string());
        assert_eq!(m["subject"]["size"], n);
        assert_eq!(m["layers"][0]["mediaType"], MEDIA_TYPE_IN_TOTO);
    }
}
