//! Mount points inside the root: resolving a container path under the root the way the
//! container will see it (an image's absolute symlink never leads to a host path), and
//! creating what is missing. Invariant: everything created is recorded in
//! [`MountPoints`], so it can be removed from the upper dir after the run.

use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use serde::{Deserialize, Serialize};

use super::sys::{Kind, Sys};
use super::ExecError;

/// Paths (relative to the root) the setup created only as mount points, in creation
/// order, and the existing directories they were created in (which overlay copied up).
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountPoints {
    /// Created mount points and the missing parents made for them.
    pub created: Vec<PathBuf>,
    /// Existing directories a mount point was created in.
    pub parents: Vec<PathBuf>,
}

/// Resolves `path` (absolute in the container) inside `root`, creating what is missing
/// (parents as dirs, the last as a dir or an empty file), and returns the host path.
pub fn ensure_point(
    sys: &mut dyn Sys,
    root: &Path,
    path: &str,
    dir: bool,
    points: &mut MountPoints,
) -> Result<PathBuf, ExecError> {
    let (existing, missing) = resolve_in_root(sys, root, path)?;
    if !missing.is_empty() && !existing.as_os_str().is_empty() {
        points.parents.push(existing.clone());
    }
    let mut rel = existing;
    for (i, part) in missing.iter().enumerate() {
        rel.push(part);
        let host = root.join(&rel);
        let made = if dir || i + 1 < missing.len() {
            sys.mkdir(&host)
        } else {
            sys.create_file(&host)
        };
        made.map_err(|source| create_err(&host, source))?;
        points.created.push(rel.clone());
    }
    Ok(root.join(rel))
}

/// Follows `path` component by component under `root`, treating symlinks as if `root`
/// were `/`. Returns the resolved existing part (relative to `root`) and the names that
/// do not exist yet below it.
pub fn resolve_in_root(
    sys: &mut dyn Sys,
    root: &Path,
    path: &str,
) -> Result<(PathBuf, Vec<OsString>), ExecError> {
    let mut todo: Vec<OsString> = components(Path::new(path)).into_iter().rev().collect();
    let mut resolved = PathBuf::new();
    let mut missing: Vec<OsString> = Vec::new();
    let mut hops = 0;
    while let Some(part) = todo.pop() {
        if part == ".." {
            if missing.pop().is_none() {
                resolved.pop();
            }
            continue;
        }
        if !missing.is_empty() {
            missing.push(part);
            continue;
        }
        let host = root.join(&resolved).join(&part);
        match sys
            .kind(&host)
            .map_err(|source| resolve_err(path, source))?
        {
            Kind::Missing => missing.push(part),
            Kind::Symlink => {
                hops += 1;
                if hops > 40 {
                    return Err(resolve_err(path, Errno::ELOOP));
                }
                let target = sys
                    .read_link(&host)
                    .map_err(|source| resolve_err(path, source))?;
                if target.is_absolute() {
                    resolved = PathBuf::new();
                }
                todo.extend(components(&target).into_iter().rev());
            }
            Kind::Dir | Kind::Other => resolved.push(part),
        }
    }
    Ok((resolved, missing))
}

fn components(path: &Path) -> Vec<OsString> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect()
}

pub fn create_err(path: &Path, source: Errno) -> ExecError {
    ExecError::Create {
        path: path.to_path_buf(),
        source,
    }
}

pub fn resolve_err(path: &str, source: Errno) -> ExecError {
    ExecError::Resolve {
        path: path.to_string(),
        source,
    }
}
