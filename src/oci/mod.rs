//! The image model: digests, spec types, the content-addressed blob store
//! (itself an OCI layout), layout directories, archives, the registry
//! client and `validate`. Nothing here knows about Dockerfiles, nor about
//! the folders kiln keeps beside the blobs (`crate::store` owns those).

pub mod archive;
pub mod compression;
pub mod digest;
pub mod layout;
pub mod load;
pub mod platform;
pub mod reference;
pub mod registry;
pub mod spec;
pub mod store;
pub mod time;
pub mod validate;

pub use archive::{
    write_docker_archive, write_oci_archive, ArchiveError, ArchivePlan, DockerArchiveEntry,
};
pub use digest::{DiffId, Digest, DigestError, DigestWriter, Hasher};
pub use layout::{import_layout, import_layout_image, write_layout, LayoutError, NamedImage};
pub use load::{load, LoadError, LoadedImage};
pub use platform::{
    parse_platform, platform_dir_name, platform_matches, PlatformMatcher, PlatformParseError,
};
pub use reference::{normalize_name, Reference, ReferenceError};
pub use spec::{
    canonical_json, media_type, ContainerConfig, Descriptor, Empty, HealthConfig, History,
    ImageConfig, Index, LayerBlob, Manifest, Platform, RootFs,
};
pub use store::{BlobWriter, GcReport, ImageEntry, Store, StoreError};
pub use validate::{validate, validate_layout, BlobSource, LayoutDir, ValidateError};
