//! The image model: digests, spec types, the content-addressed blob store
//! (itself an OCI layout), layout directories, archives and `validate`.
//! Nothing here knows about Dockerfiles.

pub mod digest;
pub mod reference;
pub mod spec;
pub mod store;

pub use digest::{DiffId, Digest, DigestError, DigestWriter, Hasher};
pub use reference::{normalize_name, Reference, ReferenceError};
pub use spec::{
    canonical_json, media_type, ContainerConfig, Descriptor, Empty, HealthConfig, History,
    ImageConfig, Index, Manifest, Platform, RootFs,
};
pub use store::{BlobWriter, ImageEntry, PruneReport, Store, StoreError};
