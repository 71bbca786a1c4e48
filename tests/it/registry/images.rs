//! Tiny images made in-process for the registry tests: layers of
//! incompressible bytes (so sizes are what the test asks for), one image per
//! platform, and an index over several.

use std::collections::BTreeMap;
use std::sync::Arc;

use kiln::oci::registry::{Client, ClientOptions, Credential, CredentialSource};
use kiln::oci::{
    media_type, validate, Descriptor, DiffId, Digest, History, ImageConfig, Index, Manifest,
    Platform, RootFs, Store,
};

/// `len` bytes that do not compress: sha256 in counter mode over `seed`.
pub fn noise(seed: &str, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 32);
    let mut i = 0u64;
    while out.len() < len {
        out.extend_from_slice(Digest::of(format!("{seed}/{i}").as_bytes()).bytes());
        i += 1;
    }
    out.truncate(len);
    out
}

/// An uncompressed tar layer holding one file of `size` noise bytes.
fn layer(seed: &str, size: usize) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_size(size as u64);
    tar.append_data(&mut h, format!("data/{seed}"), &noise(seed, size)[..])
        .unwrap();
    tar.into_inner().unwrap()
}

pub fn platform(arch: &str, variant: Option<&str>) -> Platform {
    Platform {
        architecture: arch.into(),
        os: "linux".into(),
        variant: variant.map(str::to_string),
        os_version: None,
    }
}

/// Stores an image with one layer per size, for `platform`; validated.
pub fn image(store: &Store, seed: &str, sizes: &[usize], platform: &Platform) -> Descriptor {
    let mut layers = Vec::new();
    let mut diff_ids = Vec::new();
    for (i, size) in sizes.iter().enumerate() {
        let bytes = layer(&format!("{seed}-{i}"), *size);
        let (digest, n) = store.put_blob(&bytes).unwrap();
        diff_ids.push(DiffId::from_bytes(*digest.bytes()));
        layers.push(Descriptor::new(media_type::OCI_LAYER, digest, n));
    }
    let mut config = ImageConfig {
        architecture: platform.architecture.clone(),
        os: platform.os.clone(),
        variant: platform.variant.clone(),
        history: sizes
            .iter()
            .map(|_| History {
                created_by: Some(format!("test layer of {seed}")),
                ..Default::default()
            })
            .collect(),
        rootfs: RootFs {
            diff_ids,
            ..Default::default()
        },
        ..Default::default()
    };
    config.config.labels.insert("seed".into(), seed.into());
    let config = store.put_json(media_type::OCI_CONFIG, &config).unwrap();
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(media_type::OCI_MANIFEST.into()),
        config,
        layers,
        annotations: BTreeMap::new(),
    };
    let desc = store.put_json(media_type::OCI_MANIFEST, &manifest).unwrap();
    validate(store, &desc).expect("test image fails validate");
    desc
}

/// An index over `images`, each with its platform.
pub fn index(store: &Store, images: &[(Descriptor, Platform)]) -> Descriptor {
    let manifests = images
        .iter()
        .map(|(d, p)| {
            let mut d = d.clone();
            d.platform = Some(p.clone());
            d
        })
        .collect();
    let index = Index {
        schema_version: 2,
        media_type: Some(media_type::OCI_INDEX.into()),
        manifests,
        annotations: BTreeMap::new(),
    };
    store.put_json(media_type::OCI_INDEX, &index).unwrap()
}

/// A credential source that always answers the same.
pub struct Fixed(pub Option<Credential>);

impl CredentialSource for Fixed {
    fn credential(
        &self,
        _registry: &str,
    ) -> Result<Option<Credential>, Box<dyn std::error::Error + Send + Sync>> {
        Ok(self.0.clone())
    }
}

pub fn basic(user: &str, password: &str) -> Option<Credential> {
    Some(Credential::Basic {
        username: user.into(),
        password: password.into(),
    })
}

/// A client that never reads the host's certs.d.
pub fn client_with(credential: Option<Credential>, options: ClientOptions) -> Client {
    Client::new(Arc::new(Fixed(credential)), options)
}

pub fn options(certs_d: Option<&std::path::Path>) -> ClientOptions {
    ClientOptions {
        certs_d: certs_d.map_or_else(
            || std::path::PathBuf::from("/nonexistent/kiln-test/certs.d"),
            std::path::Path::to_path_buf,
        ),
        ..ClientOptions::default()
    }
}

pub fn client(credential: Option<Credential>) -> Client {
    client_with(credential, options(None))
}
