//! The image model: digests, spec types, the content-addressed blob store
//! (itself an OCI layout), layout directories, archives and `validate`.
//! Nothing here knows about Dockerfiles.

pub mod digest;
pub mod spec;

pub use digest::{DiffId, Digest, DigestError, DigestWriter, Hasher};
pub use spec::{
    canonical_json, media_type, ContainerConfig, Descriptor, Empty, HealthConfig, History,
    ImageConfig, Index, Manifest, Platform, RootFs,
};
