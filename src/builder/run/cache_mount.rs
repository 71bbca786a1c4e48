//! Cache mount dirs under the store's `cache/mounts/`: one per id (and,
//! with `from`, per `from` tree), created with the mount's owner and mode or
//! seeded from the `from` tree, locked for `sharing=private|locked`.
//!
//! Invariants: a dir appears whole (a seeded one by rename) and is never
//! re-seeded once it exists; its content never reaches a cache key.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::oci::{Digest, Store};
use crate::store::Layout;

use super::{ioerr, materialise, CopyError, RunError, Source, Temps};

/// An exclusive lock on a cache dir (a `.lock` file beside it), waiting for
/// other holders.
pub(super) fn lock_cache(dir: &Path) -> Result<fs::File, RunError> {
    use fs2::FileExt;
    let path = dir.with_extension("lock");
    let f = fs::File::create(&path).map_err(ioerr("creating", &path))?;
    f.lock_exclusive().map_err(ioerr("locking", &path))?;
    Ok(f)
}

/// The cache dir of a mount with `from`: keyed by its id and the `from`
/// tree, and on creation a copy of `source` in that tree.
// COMPAT(buildkit): the cache ref is looked up by `id + ":" + ref.ID()` of the
// `from` state and, when new, made as a mutable snapshot on top of it, which
// the mount shows at `source`. kiln names the tree by its layer chain (the
// snapshot dirs are named by diff_id) and copies `source` only. BuildKit's
// `/cache` dir made for uid/gid/mode with source=/ is not reproduced: the
// seed keeps the owner and mode of `source`.
pub(super) fn seeded_cache_dir(
    store: &Store,
    id: &str,
    src: &Source,
    source: &str,
    target: &str,
    temps: &mut Temps,
) -> Result<PathBuf, RunError> {
    let mut chain = String::new();
    for l in src.rootfs().layers() {
        chain.push_str(&l.file_name().unwrap_or_default().to_string_lossy());
        chain.push('/');
    }
    let key = format!("{id}:{}", Digest::of(chain.as_bytes()).hex());
    let dir = Layout::of(store).cache_mount(&key);
    if dir.is_dir() {
        return Ok(dir);
    }
    let seed_err = |e| RunError::CacheSeed {
        target: target.into(),
        source_path: source.into(),
        source: Box::new(e),
    };
    let node = src
        .lookup(source, true)
        .map_err(|e| seed_err(CopyError::Source(e)))?;
    let meta = match node {
        Some(n) if n.meta.is_dir() => n.meta,
        Some(_) => {
            return Err(RunError::CacheSeedNotDir {
                source_path: source.into(),
            })
        }
        None => {
            return Err(RunError::CacheSeedMissing {
                source_path: source.into(),
            })
        }
    };
    let seed = materialise(store, src, source, target, temps).map_err(|e| match e {
        RunError::BindSource { source, .. } => seed_err(*source),
        other => other,
    })?;
    {
        use std::os::unix::fs::MetadataExt;
        std::os::unix::fs::chown(&seed, Some(meta.uid()), Some(meta.gid()))
            .map_err(ioerr("changing owner of", &seed))?;
        fs::set_permissions(&seed, fs::Permissions::from_mode(meta.mode() & 0o7777))
            .map_err(ioerr("setting the mode of", &seed))?;
    }
    if let Some(parent) = dir.parent() {
        fs::create_dir_all(parent).map_err(ioerr("creating", parent))?;
    }
    // Whole or not at all: a build seeding the same cache at the same time
    // loses the rename and uses the winner's copy.
    match fs::rename(&seed, &dir) {
        Ok(()) => Ok(dir),
        Err(_) if dir.is_dir() => Ok(dir),
        Err(e) => Err(ioerr("creating cache mount", &dir)(e)),
    }
}

/// `cache/mounts/<sha256 of id>`, created with the mount's mode and owner.
pub(super) fn cache_dir(
    store: &Store,
    id: &str,
    mode: u32,
    uid: u32,
    gid: u32,
) -> Result<PathBuf, RunError> {
    let dir = Layout::of(store).cache_mount(id);
    if !dir.is_dir() {
        fs::create_dir_all(&dir).map_err(ioerr("creating cache mount", &dir))?;
        std::os::unix::fs::chown(&dir, Some(uid), Some(gid))
            .map_err(ioerr("changing owner of", &dir))?;
        fs::set_permissions(&dir, fs::Permissions::from_mode(mode))
            .map_err(ioerr("setting the mode of", &dir))?;
    }
    Ok(dir)
}
