//! Writing a built image where `-o` says: OCI archive or layout dir, docker
//! archive, the flattened root filesystem as a directory or a tar, or names
//! in the store, or a push to a registry (`type=registry`, `--push`,
//! `type=image,push=true`) to every name given.
//!
//! Invariants: archives come from the oci module's deterministic writers,
//! are written beside the destination and renamed over it (a failed or
//! killed export leaves the old file whole), and an archive kiln wrote that
//! already holds the same bytes is kept untouched (`kept.rs`); a
//! flattened filesystem applies the layers base first with whiteouts
//! honoured (`layer::unpack` in `Apply` mode), exactly what a container sees.
//! An image built on a lazily resolved base may lack its base layers: every
//! output that reads or names the image fetches them first
//! ([`fetch_layers`]), so a name never points at an incomplete image; a push
//! fetches only a layer the registry neither has nor can mount.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::layer::{self, Compression, LayerError, PackOptions, SourceKind, UnpackMode};
use crate::oci::registry::{self, Client, RegistryError};
use crate::oci::{
    normalize_name, platform_dir_name, write_layout, ArchiveError, ArchivePlan, LayoutError,
    NamedImage, Reference, ReferenceError, Store, StoreError,
};

use super::image::BuiltImage;
use super::output::OutputSpec;
use super::snapshot::{remove_tree, staging_dir, SnapshotError};

/// Why an output could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// Creating or writing the destination.
    #[error("writing {path}")]
    Write {
        /// The destination.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// An OCI or docker archive.
    #[error("writing archive {path}")]
    Archive {
        /// The destination.
        path: PathBuf,
        /// The cause.
        #[source]
        source: Box<ArchiveError>,
    },
    /// An OCI layout dir.
    #[error("writing OCI layout {path}")]
    Layout {
        /// The destination.
        path: PathBuf,
        /// The cause.
        #[source]
        source: Box<LayoutError>,
    },
    /// Applying a layer onto the flattened tree.
    #[error("applying layer {digest}")]
    Apply {
        /// The layer.
        digest: crate::oci::Digest,
        /// The cause.
        #[source]
        source: LayerError,
    },
    /// Packing the flattened tree as a tar.
    #[error("packing the root filesystem")]
    Pack(#[source] LayerError),
    /// A name given with `-t` or `name=`.
    #[error("invalid image name {name:?}")]
    Name {
        /// The name.
        name: String,
        /// The cause.
        #[source]
        source: ReferenceError,
    },
    /// Reading from or naming in the store.
    #[error("store")]
    Store(#[from] StoreError),
    /// Temp dirs.
    #[error("temp dir")]
    Temp(#[from] SnapshotError),
    /// A registry output with no name to push to.
    #[error("pushing to a registry needs a name (-t NAME or type=registry,name=NAME)")]
    PushName,
    /// A registry output, but the caller gave no registry client.
    #[error("pushing {name}: no registry client was configured")]
    NoRegistry {
        /// The name.
        name: String,
    },
    /// Downloading the base image layers an output needs.
    #[error("fetching base image layers")]
    Fetch(#[source] Box<RegistryError>),
    /// Pushing to a registry.
    #[error("pushing {name}")]
    Push {
        /// The name pushed to.
        name: String,
        /// The cause.
        #[source]
        source: Box<RegistryError>,
    },
}

/// Normalizes `name` as docker shows it (`app` → `app:latest`).
pub fn image_name(name: &str) -> Result<String, ExportError> {
    normalize_name(name).map_err(|source| ExportError::Name {
        name: name.into(),
        source,
    })
}

/// What an output did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exported {
    /// The output was written (or pushed, or named).
    Written,
    /// An archive at the destination already held exactly these bytes,
    /// written there by kiln and untouched since: it was left alone.
    Unchanged,
}

/// Writes `img` to `spec`; `tags` are the `-t` names (the first one names
/// the image inside archives unless the spec has `name=`). Registry outputs
/// push through `registry`. With `keep`, an OCI or docker archive that
/// kiln wrote and that already holds these bytes is kept (see `kept.rs`);
/// without it (a staged `dest=-`), archives are always written and never
/// recorded.
pub fn export(
    store: &Store,
    img: &BuiltImage,
    spec: &OutputSpec,
    tags: &[String],
    registry: Option<&Client>,
    keep: bool,
) -> Result<Exported, ExportError> {
    let named = |name: &Option<String>| -> Result<NamedImage, ExportError> {
        let name = match name.as_ref().or(tags.first()) {
            Some(n) => Some(image_name(n)?),
            None => None,
        };
        Ok(NamedImage {
            name,
            descriptor: img.descriptor().clone(),
        })
    };
    // A push fetches a lazy base's layer only when the registry lacks it,
    // through the first platform's remote; other platforms' are fetched now.
    if !matches!(spec, OutputSpec::Registry { .. }) || !img.others.is_empty() {
        fetch_layers(store, img)?;
    }
    match spec {
        OutputSpec::Oci {
            dest,
            tar: true,
            name,
            ..
        } => {
            let plan = ArchivePlan::oci(store, &[named(name)?]).map_err(aerr(dest))?;
            write_archive(store, dest, plan, keep)
        }
        OutputSpec::Oci {
            dest,
            tar: false,
            name,
            ..
        } => write_layout(store, &[named(name)?], dest)
            .map(|()| Exported::Written)
            .map_err(|source| ExportError::Layout {
                path: dest.clone(),
                source: Box::new(source),
            }),
        OutputSpec::Docker { dest, name } => {
            // COMPAT(buildkit): a docker-archive holds one image manifest;
            // the default attestations are left out of it (an explicit
            // request was refused before the build).
            let mut n = named(name)?;
            n.descriptor = img.manifest.clone();
            let plan = ArchivePlan::docker(store, &[n]).map_err(aerr(dest))?;
            write_archive(store, dest, plan, keep)
        }
        OutputSpec::Local { dest } if !img.others.is_empty() => {
            // COMPAT(buildkit): a directory per platform, `linux_arm64/`.
            for i in img.per_platform() {
                export_local(store, i, &dest.join(platform_dir_name(&i.platform())))?;
            }
            Ok(Exported::Written)
        }
        OutputSpec::Local { dest } => export_local(store, img, dest).map(|()| Exported::Written),
        OutputSpec::Tar { dest } => rootfs_tar(store, img, dest).map(|()| Exported::Written),
        OutputSpec::Image { names, push, .. } => {
            for n in names.iter().chain(tags) {
                store.tag(&image_name(n)?, img.descriptor())?;
            }
            if *push {
                push_all(store, img, names, tags, registry)?;
            }
            Ok(Exported::Written)
        }
        OutputSpec::Registry { names, .. } => {
            push_all(store, img, names, tags, registry).map(|()| Exported::Written)
        }
    }
}

/// Makes every layer of `img` present in the store: those of a lazily
/// resolved base are downloaded (all at once) when missing.
pub fn fetch_layers(store: &Store, img: &BuiltImage) -> Result<(), ExportError> {
    for i in img.per_platform() {
        let Some(remote) = &i.remote else {
            continue;
        };
        let digests: Vec<_> = i.layers.iter().map(|l| l.descriptor.digest).collect();
        remote
            .fetch(store, &digests)
            .map_err(|e| ExportError::Fetch(Box::new(e)))?;
    }
    Ok(())
}

/// Pushes `img` to each of `names` and `tags` (at least one).
fn push_all(
    store: &Store,
    img: &BuiltImage,
    names: &[String],
    tags: &[String],
    client: Option<&Client>,
) -> Result<(), ExportError> {
    if names.is_empty() && tags.is_empty() {
        return Err(ExportError::PushName);
    }
    for name in names.iter().chain(tags) {
        let target = Reference::parse(name).map_err(|source| ExportError::Name {
            name: name.clone(),
            source,
        })?;
        let client = client.ok_or_else(|| ExportError::NoRegistry { name: name.clone() })?;
        let from = mount_source(store, img, &target);
        // A layer the registry neither has nor can mount is downloaded
        // from the base's registry just before its upload.
        let fetch = |d: &crate::oci::Descriptor| -> Result<(), RegistryError> {
            if let Some(r) = &img.remote {
                r.fetch(store, &[d.digest])?;
            }
            Ok(())
        };
        registry::push_fetching(
            client,
            store,
            img.descriptor(),
            &target,
            from.as_deref(),
            Some(&fetch),
        )
        .map_err(|source| ExportError::Push {
            name: target.familiar(),
            source: Box::new(source),
        })?;
    }
    Ok(())
}

/// A repository on `target`'s registry that the built image's base layer
/// came from (the lazily resolved base's repository, else a stored image's:
/// pulled images are named after their registry): its blobs are mounted
/// instead of uploaded, as BuildKit does.
fn mount_source(store: &Store, img: &BuiltImage, target: &Reference) -> Option<String> {
    let base = img.layers.first()?.descriptor.digest;
    let origin = img.remote.as_ref().and_then(|r| r.origin(&base));
    if let Some(o) = origin.filter(|o| o.registry == target.registry) {
        if o.repository != target.repository {
            return Some(o.repository);
        }
    }
    store.images().ok()?.into_iter().find_map(|e| {
        let r = Reference::parse(&e.name).ok()?;
        if r.registry != target.registry || r.repository == target.repository {
            return None;
        }
        let (m, _) = store.load_manifest(&e.descriptor).ok()?;
        m.layers
            .iter()
            .any(|l| l.digest == base)
            .then_some(r.repository)
    })
}

fn aerr(dest: &Path) -> impl Fn(ArchiveError) -> ExportError + '_ {
    move |source| ExportError::Archive {
        path: dest.into(),
        source: Box::new(source),
    }
}

/// Writes the archive `plan` to `dest`, or keeps the file there when kiln
/// wrote these very bytes to it and nothing touched it since (with `keep`).
/// A regular file (or a missing one) is replaced atomically: the archive is
/// written beside it and renamed over it, so a failed or killed export
/// leaves the old file whole; a symlink is followed. Anything else (a
/// device, a fifo) is written through in place, as `>` would, and never
/// kept.
fn write_archive(
    store: &Store,
    dest: &Path,
    plan: ArchivePlan,
    keep: bool,
) -> Result<Exported, ExportError> {
    let werr = |source| ExportError::Write {
        path: dest.into(),
        source,
    };
    let target = match fs::metadata(dest) {
        Ok(m) if !m.is_file() => {
            let mut f = BufWriter::new(File::create(dest).map_err(werr)?);
            plan.write(store, &mut f).map_err(aerr(dest))?;
            f.flush().map_err(werr)?;
            return Ok(Exported::Written);
        }
        Ok(_) => fs::canonicalize(dest).map_err(werr)?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let name = dest.file_name().ok_or_else(|| {
                werr(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "the destination names no file",
                ))
            })?;
            let parent = match dest.parent() {
                Some(p) if !p.as_os_str().is_empty() => p,
                _ => Path::new("."),
            };
            fs::canonicalize(parent).map_err(werr)?.join(name)
        }
        Err(e) => return Err(werr(e)),
    };
    let content = plan.fingerprint();
    if keep && super::kept::unchanged(store, &target, &content) {
        return Ok(Exported::Unchanged);
    }
    let dir = target.parent().unwrap_or(Path::new("/"));
    let prefix = format!(
        ".{}.",
        target.file_name().unwrap_or_default().to_string_lossy()
    );
    // A new file gets 0666 less the umask, as File::create gave it.
    let tmp = tempfile::Builder::new()
        .prefix(&prefix)
        .suffix(".kiln-tmp")
        .permissions(fs::Permissions::from_mode(0o666))
        .tempfile_in(dir)
        .map_err(werr)?;
    if let Ok(old) = fs::metadata(&target) {
        // An existing archive keeps its mode.
        fs::set_permissions(tmp.path(), old.permissions()).map_err(werr)?;
    }
    let mut f = BufWriter::new(tmp);
    plan.write(store, &mut f).map_err(aerr(dest))?;
    let tmp = f.into_inner().map_err(|e| werr(e.into_error()))?;
    tmp.as_file().sync_all().map_err(werr)?;
    let meta = tmp.as_file().metadata().map_err(werr)?;
    tmp.persist(&target).map_err(|e| werr(e.error))?;
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    if keep {
        super::kept::record(store, &target, (meta.dev(), meta.ino()), &content);
    }
    Ok(Exported::Written)
}

/// Applies every layer, base first, onto `dest` (created when missing).
pub fn flatten(store: &Store, img: &BuiltImage, dest: &Path) -> Result<(), ExportError> {
    fs::create_dir_all(dest).map_err(|source| ExportError::Write {
        path: dest.into(),
        source,
    })?;
    for l in &img.layers {
        let blob = store.open_blob(&l.descriptor.digest)?;
        let got =
            layer::unpack(io::BufReader::new(blob), dest, UnpackMode::Apply).map_err(|source| {
                ExportError::Apply {
                    digest: l.descriptor.digest,
                    source,
                }
            })?;
        if got != l.diff_id {
            return Err(ExportError::Apply {
                digest: l.descriptor.digest,
                source: LayerError::DiffIdMismatch {
                    expected: l.diff_id,
                    actual: got,
                },
            });
        }
    }
    Ok(())
}

/// `type=local`: an empty or missing `dest` gets the layers applied in
/// place; into a directory that has files the image is flattened aside and
/// merged over it, so a whiteout or opaque dir of the image can never
/// delete files the user had there.
fn export_local(store: &Store, img: &BuiltImage, dest: &Path) -> Result<(), ExportError> {
    let werr = |source| ExportError::Write {
        path: dest.into(),
        source,
    };
    let has_files = match fs::read_dir(dest) {
        Ok(mut d) => d.next().is_some(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => false,
        Err(e) => return Err(werr(e)),
    };
    if !has_files {
        return flatten(store, img, dest);
    }
    let dir = staging_dir(store, "local-")?;
    let res = flatten(store, img, &dir).and_then(|()| merge(&dir, dest).map_err(werr));
    remove_tree(&dir)?;
    res
}

/// Moves every entry of `from` over `to`, directories merged, anything
/// else replaced; copies when a rename cannot cross filesystems.
fn merge(from: &Path, to: &Path) -> io::Result<()> {
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let m = fs::symlink_metadata(&src)?;
        let dst_dir = fs::symlink_metadata(&dst).is_ok_and(|d| d.is_dir());
        if m.is_dir() && dst_dir {
            merge(&src, &dst)?;
            continue;
        }
        match fs::symlink_metadata(&dst) {
            Ok(d) if d.is_dir() => fs::remove_dir_all(&dst)?,
            Ok(_) => fs::remove_file(&dst)?,
            Err(_) => {}
        }
        if fs::rename(&src, &dst).is_ok() {
            continue;
        }
        if m.is_dir() {
            fs::create_dir(&dst)?;
            merge(&src, &dst)?;
        } else if m.file_type().is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(&src)?, &dst)?;
        } else if m.is_file() {
            fs::copy(&src, &dst)?;
        } else {
            // Devices and fifos: recreate the node, never read from it.
            let kind = nix::sys::stat::SFlag::from_bits_truncate(m.mode() & libc::S_IFMT);
            let perm = nix::sys::stat::Mode::from_bits_truncate(m.mode() & 0o7777);
            nix::sys::stat::mknod(&dst, kind, perm, m.rdev()).map_err(io::Error::from)?;
        }
        std::os::unix::fs::lchown(&dst, Some(m.uid()), Some(m.gid()))?;
        if !m.file_type().is_symlink() {
            fs::set_permissions(&dst, m.permissions())?;
        }
    }
    Ok(())
}

/// `type=tar`: the flattened root filesystem as one tar; with several
/// platforms, each under its own directory (`linux_arm64/`), as buildx.
fn rootfs_tar(store: &Store, img: &BuiltImage, dest: &Path) -> Result<(), ExportError> {
    let dir = staging_dir(store, "rootfs-")?;
    let flattened = match img.others.is_empty() {
        true => flatten(store, img, &dir),
        false => img
            .per_platform()
            .try_for_each(|i| flatten(store, i, &dir.join(platform_dir_name(&i.platform())))),
    };
    let res = flattened.and_then(|()| {
        let werr = |source| ExportError::Write {
            path: dest.into(),
            source,
        };
        let mut f = BufWriter::new(File::create(dest).map_err(werr)?);
        let opts = PackOptions {
            compression: Compression::None,
            source_date_epoch: None,
            level: None,
        };
        layer::pack(&dir, SourceKind::Plain, &opts, &mut f).map_err(ExportError::Pack)?;
        f.flush().map_err(werr)
    });
    remove_tree(&dir)?;
    res
}
