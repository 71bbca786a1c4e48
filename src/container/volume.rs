//! Volumes: `volumes/<name>/_data` in the store, bound into containers. A named
//! volume (`-v NAME:/path`, `--mount type=volume`, `kiln volume create`) lives until
//! `kiln volume rm`; an anonymous one (`-v /path`, an image's VOLUME not covered by
//! another mount) has a 64-hex-digit name and the marker file `anonymous`, and goes
//! with its container when that is `--rm` or removed by `kiln rm -v`.
//!
//! Invariants:
//! - A volume appears whole or not at all: it is made in `tmp/` (with its marker) and
//!   renamed into `volumes/`; removing renames it back to `tmp/` first.
//! - Seeding (docker's copy of the image's content at the mount point into an empty
//!   volume) is copied into `tmp/` and renamed over the empty `_data`, so a kill
//!   leaves the volume empty or seeded, never half of it; rename(2) refuses a
//!   non-empty target, so of two seeders one wins.
//! - A foreground container holds a shared `flock` on each of its volumes' dirs while
//!   it runs (a stored one is found through its config), so `volume rm` without `-f`
//!   never removes a volume from under a running `kiln run --rm`.

use std::fs;
use std::io;

use fs2::FileExt;
use std::path::{Path, PathBuf};

use crate::builder::{copy_up_at, remove_tree, staging_dir};
use crate::layer::MergedFs;
use crate::oci::Store;
use crate::store::Layout;

use super::stored;

/// Why a volume operation failed.
#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    /// A name outside docker's `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
    // COMPAT(docker): the daemon's wording.
    #[error("{0:?} includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path")]
    BadName(String),
    /// No such volume.
    #[error("get {0}: no such volume")]
    NotFound(String),
    /// `volume rm` of a volume a stored container mounts.
    // COMPAT(docker): "remove NAME: volume is in use - [IDS]".
    #[error("remove {name}: volume is in use - [{}]", ids.join(", "))]
    InUse {
        /// The volume.
        name: String,
        /// The containers that mount it.
        ids: Vec<String>,
    },
    /// Reading the stored containers.
    #[error(transparent)]
    Stored(#[from] stored::StoredError),
    /// A filesystem call.
    #[error("{step} {path}: {message}")]
    Io {
        /// What was being done.
        step: &'static str,
        /// The path.
        path: PathBuf,
        /// The cause.
        message: String,
    },
}

fn io_err<'a, E: std::fmt::Display>(
    step: &'static str,
    path: &'a Path,
) -> impl FnOnce(E) -> VolumeError + 'a {
    move |e| VolumeError::Io {
        step,
        path: path.into(),
        message: e.to_string(),
    }
}

/// Checks a volume name as docker does: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub fn validate_name(name: &str) -> Result<(), VolumeError> {
    let mut chars = name.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name.len() >= 2
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(())
    } else {
        Err(VolumeError::BadName(name.into()))
    }
}

/// A volume in the store.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Volume {
    /// Its name.
    pub name: String,
    /// Its `_data` dir: what containers mount.
    pub mountpoint: PathBuf,
    /// Made for one container (`-v /path`, an image VOLUME).
    #[serde(skip)]
    pub anonymous: bool,
    /// When it was made, RFC 3339.
    pub created_at: String,
}

impl Volume {
    fn load(store: &Store, name: &str) -> Result<Option<Self>, VolumeError> {
        let layout = Layout::of(store);
        let dir = layout.volume(name);
        let meta = match fs::metadata(&dir) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err("reading", &dir)(e)),
        };
        let created = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs() as i64);
        Ok(Some(Self {
            name: name.into(),
            mountpoint: layout.volume_data(name),
            anonymous: dir.join("anonymous").exists(),
            created_at: crate::oci::time::rfc3339(created, 0),
        }))
    }
}

/// The volume `name` (created when missing; `anonymous` marks a new one so): returns
/// its `_data` dir.
pub fn ensure(store: &Store, name: &str, anonymous: bool) -> Result<PathBuf, VolumeError> {
    validate_name(name)?;
    let layout = Layout::of(store);
    let dir = layout.volume(name);
    if dir.is_dir() {
        return Ok(layout.volume_data(name));
    }
    let volumes = layout.volumes();
    fs::create_dir_all(&volumes).map_err(io_err("creating", &volumes))?;
    let staging = staging_dir(store, "volume-").map_err(io_err("staging", &volumes))?;
    let data = staging.join("_data");
    fs::create_dir(&data).map_err(io_err("creating", &data))?;
    if anonymous {
        let marker = staging.join("anonymous");
        fs::write(&marker, b"").map_err(io_err("writing", &marker))?;
    }
    sync_dir(&staging)?;
    match fs::rename(&staging, &dir) {
        Ok(()) => sync_dir(&volumes)?,
        // Another kiln made it first: theirs is the volume.
        Err(_) if dir.is_dir() => {
            let _ = remove_tree(&staging);
        }
        Err(e) => return Err(io_err("moving into place", &dir)(e)),
    }
    Ok(layout.volume_data(name))
}

fn sync_dir(dir: &Path) -> Result<(), VolumeError> {
    fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(io_err("syncing", dir))
}

/// Seeds the volume whose `_data` is `data` from `image`'s content at `path`, when
/// the volume is empty and the image has a directory there (docker's copy on first
/// use).
pub fn seed(store: &Store, data: &Path, image: &MergedFs, path: &str) -> Result<(), VolumeError> {
    let empty = fs::read_dir(data)
        .map_err(io_err("reading", data))?
        .next()
        .is_none();
    if !empty {
        return Ok(());
    }
    let has_content = match image.children(path) {
        Ok(c) => !c.is_empty(),
        Err(_) => false,
    };
    if !has_content {
        return Ok(());
    }
    let staging = staging_dir(store, "seed-").map_err(io_err("staging", data))?;
    let root = staging.join("_data");
    let result = (|| {
        fs::create_dir(&root).map_err(io_err("creating", &root))?;
        copy_up_at(image, path, &root).map_err(|e| VolumeError::Io {
            step: "seeding",
            path: data.into(),
            message: format!("{:#}", anyhow::Error::new(e)),
        })?;
        sync_dir(&root)?;
        // Replaces `_data` only while it is empty: a volume someone wrote to (or
        // seeded) first is theirs.
        match fs::rename(&root, data) {
            Ok(()) => Ok(()),
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOTEMPTY | libc::EEXIST)) => Ok(()),
            Err(e) => Err(io_err("moving into place", data)(e)),
        }
    })();
    let _ = remove_tree(&staging);
    result
}

/// Every volume, by name.
pub fn list(store: &Store) -> Result<Vec<Volume>, VolumeError> {
    let dir = Layout::of(store).volumes();
    let entries = match fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err("reading", &dir)(e)),
    };
    let mut out = Vec::new();
    for e in entries {
        let e = e.map_err(io_err("reading", &dir))?;
        let Some(name) = e.file_name().to_str().map(str::to_string) else {
            continue;
        };
        if validate_name(&name).is_err() {
            continue;
        }
        out.extend(Volume::load(store, &name)?);
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// The volume `name`.
pub fn get(store: &Store, name: &str) -> Result<Volume, VolumeError> {
    validate_name(name).map_err(|_| VolumeError::NotFound(name.into()))?;
    Volume::load(store, name)?.ok_or_else(|| VolumeError::NotFound(name.into()))
}

/// The volumes (names) a container's mounts use.
pub fn used_by(store: &Store, spec: &crate::exec::RunSpec) -> Vec<String> {
    let volumes = Layout::of(store).volumes();
    spec.mounts
        .iter()
        .filter_map(|m| match &m.kind {
            crate::exec::MountKind::Bind { source, .. } => {
                let rest = source.strip_prefix(&volumes).ok()?;
                let mut parts = rest.components();
                let name = parts.next()?.as_os_str().to_str()?.to_string();
                (parts.next()?.as_os_str() == "_data" && parts.next().is_none()).then_some(name)
            }
            _ => None,
        })
        .collect()
}

/// Holds the volumes `names` in use (a shared `flock` on each one's dir) while the
/// returned files are open.
pub fn hold(store: &Store, names: &[String]) -> Result<Vec<fs::File>, VolumeError> {
    names
        .iter()
        .map(|n| {
            let dir = Layout::of(store).volume(n);
            let f = fs::File::open(&dir).map_err(io_err("opening", &dir))?;
            FileExt::lock_shared(&f).map_err(io_err("locking", &dir))?;
            Ok(f)
        })
        .collect()
}

/// Removes the volume `name`; unless `force`, refuses one a container mounts (a
/// stored one, or a foreground one that [`hold`]s it).
pub fn remove(store: &Store, name: &str, force: bool) -> Result<(), VolumeError> {
    get(store, name)?;
    let dir = Layout::of(store).volume(name);
    // Held until the volume is moved away, so no container takes it meanwhile
    // (`hold` then fails to open it, or blocks until it is gone).
    let held = fs::File::open(&dir).map_err(io_err("opening", &dir))?;
    if !force {
        if FileExt::try_lock_exclusive(&held).is_err() {
            return Err(VolumeError::InUse {
                name: name.into(),
                ids: vec!["a running kiln run".into()],
            });
        }
        let ids: Vec<String> = stored::list(store)?
            .into_iter()
            .filter(|c| used_by(store, &c.config.spec).iter().any(|v| v == name))
            .map(|c| c.config.id.clone())
            .collect();
        if !ids.is_empty() {
            return Err(VolumeError::InUse {
                name: name.into(),
                ids,
            });
        }
    }
    let tmp = staging_dir(store, "rmvol-").map_err(io_err("staging", &dir))?;
    let moved = tmp.join("v");
    match fs::rename(&dir, &moved) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err("moving away", &dir)(e)),
    }
    drop(held);
    remove_tree(&tmp).map_err(io_err("removing", &tmp))
}

/// Removes the anonymous volumes among `names` (a removed container's).
pub fn remove_anonymous(store: &Store, names: &[String]) -> Result<(), VolumeError> {
    for name in names {
        if Volume::load(store, name)?.is_some_and(|v| v.anonymous) {
            remove(store, name, true)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_dockers() {
        for ok in ["data", "a1", "my_vol.2-x", "0a"] {
            assert!(validate_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a", "-a", "_a", "a/b", "a:b", "..", ".a", "a b"] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
    }
}
