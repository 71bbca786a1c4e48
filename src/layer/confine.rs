//! Keeping extraction inside its destination. Every archive path goes through
//! [`normalize`] (no `..`, leading `/` stripped as tar does) and every parent directory
//! through [`Confined::parent`], which walks it one component at a time with `lstat` and
//! refuses symlinks, so no write ever follows a link out of the tree.

use std::ffi::OsStr;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::LayerError;

/// How [`normalize`] treats `..`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum DotDot {
    /// Refused anywhere: a layer has no reason to write one.
    Refuse,
    /// Cleaned lexically (`a/../b` is `b`, `/../b` is `/b`); refused only when it climbs
    /// above the destination.
    // COMPAT(buildkit): docker's untar (moby `pkg/archive` Unpack) runs
    // `filepath.Clean` on each name and fails with "… is outside of …" only when the
    // result leaves the destination.
    Clean,
}

/// Splits an archive path into its components: leading `/`, empty and `.` components are
/// dropped; `..` as `dotdot` says. An empty result is the root itself.
pub(super) fn normalize<'a>(
    raw: &'a [u8],
    entry: &str,
    dotdot: DotDot,
) -> Result<Vec<&'a OsStr>, LayerError> {
    let rooted = raw.starts_with(b"/");
    let mut out = Vec::new();
    for comp in raw.split(|&b| b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." if dotdot == DotDot::Refuse => {
                return Err(unsafe_entry(entry, "its path contains `..`"))
            }
            b".." => {
                // `/..` is `/`, as `filepath.Clean` has it; a relative path that climbs
                // above its start leaves the destination.
                if out.pop().is_none() && !rooted {
                    return Err(unsafe_entry(entry, "it is outside of the destination"));
                }
            }
            c => out.push(OsStr::from_bytes(c)),
        }
    }
    Ok(out)
}

pub(super) fn unsafe_entry(entry: &str, reason: &'static str) -> LayerError {
    LayerError::UnsafeEntry {
        entry: entry.to_string(),
        reason,
    }
}

/// The destination directory extraction is confined to.
pub(super) struct Confined<'a> {
    pub root: &'a Path,
    /// How entry and hard-link paths treat `..`.
    pub dotdot: DotDot,
}

impl Confined<'_> {
    /// The real directory holding `components` (all but the entry's own name), checked to
    /// be a chain of real directories under the root. Missing ones are created (mode 0755)
    /// when `create`, else `None` is returned.
    pub fn parent(
        &self,
        components: &[&OsStr],
        entry: &str,
        create: bool,
    ) -> Result<Option<PathBuf>, LayerError> {
        let mut cur = self.root.to_path_buf();
        for comp in components {
            cur.push(comp);
            match fs::symlink_metadata(&cur) {
                Ok(m) if m.is_dir() => {}
                Ok(m) if m.file_type().is_symlink() => {
                    return Err(unsafe_entry(entry, "a parent directory is a symlink"))
                }
                Ok(_) => return Err(unsafe_entry(entry, "a parent is not a directory")),
                Err(e) if e.kind() == io::ErrorKind::NotFound && create => {
                    fs::create_dir(&cur)
                        .and_then(|()| fs::set_permissions(&cur, fs::Permissions::from_mode(0o755)))
                        .map_err(|source| extract(entry, "creating a parent directory", source))?;
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
                Err(source) => return Err(extract(entry, "inspecting a parent directory", source)),
            }
        }
        Ok(Some(cur))
    }

    /// The in-tree path a hard link points at; it must exist, through real directories,
    /// and not be a directory.
    pub fn link_target(&self, raw: &[u8], entry: &str) -> Result<PathBuf, LayerError> {
        let comps = normalize(raw, entry, self.dotdot)?;
        let Some((name, parents)) = comps.split_last() else {
            return Err(unsafe_entry(entry, "its hard link points at the root"));
        };
        let missing = || unsafe_entry(entry, "its hard link target is not in the layer tree");
        let target = self
            .parent(parents, entry, false)?
            .ok_or_else(missing)?
            .join(name);
        match fs::symlink_metadata(&target) {
            Ok(m) if m.is_dir() => Err(unsafe_entry(entry, "its hard link points at a directory")),
            Ok(_) => Ok(target),
            Err(_) => Err(missing()),
        }
    }
}

pub(super) fn extract(entry: &str, step: &'static str, source: io::Error) -> LayerError {
    LayerError::Extract {
        entry: entry.to_string(),
        step,
        source,
    }
}

/// Makes room at `path` for a new entry: a directory stays when the new entry is one too
/// (its contents merge); anything else there is removed, never followed.
pub(super) fn clear_for(path: &Path, new_is_dir: bool) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
        Ok(m) if m.is_dir() && new_is_dir => Ok(()),
        Ok(m) if m.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn components(s: &str, dotdot: DotDot) -> Result<Vec<String>, LayerError> {
        normalize(s.as_bytes(), s, dotdot)
            .map(|v| v.iter().map(|c| c.to_string_lossy().into_owned()).collect())
    }

    #[test]
    fn normalize_strips_roots_and_refuses_dotdot() {
        let n = |s: &str| components(s, DotDot::Refuse);
        assert_eq!(n("/etc//./passwd").unwrap(), ["etc", "passwd"]);
        assert_eq!(n("./").unwrap(), Vec::<String>::new());
        assert!(n("a/../../b").is_err());
        assert!(n("..").is_err());
        let err = n("x/..").unwrap_err().to_string();
        assert_eq!(
            err,
            "refusing archive entry \"x/..\": its path contains `..`"
        );
    }

    #[test]
    fn archive_paths_are_cleaned_like_docker_untar() {
        let n = |s: &str| components(s, DotDot::Clean);
        assert_eq!(n("a/../b").unwrap(), ["b"]);
        assert_eq!(n("/../etc/x").unwrap(), ["etc", "x"]);
        assert_eq!(n("a/b/..").unwrap(), ["a"]);
        for bad in ["../x", "a/../../x", "..", "./../x"] {
            let err = n(bad).unwrap_err().to_string();
            assert!(err.contains("outside of the destination"), "{bad}: {err}");
            assert!(err.contains(bad), "{err}");
        }
    }

    #[test]
    fn parents_through_symlinks_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/tmp", dir.path().join("link")).unwrap();
        let c = Confined {
            root: dir.path(),
            dotdot: DotDot::Refuse,
        };
        let err = c
            .parent(&[OsStr::new("link"), OsStr::new("x")], "link/x/y", true)
            .unwrap_err();
        assert!(err.to_string().contains("symlink"), "{err}");
        let made = c
            .parent(&[OsStr::new("a"), OsStr::new("b")], "a/b/c", true)
            .unwrap()
            .unwrap();
        assert!(made.is_dir() && made.starts_with(dir.path()));
        assert!(c
            .parent(&[OsStr::new("zz")], "zz/y", false)
            .unwrap()
            .is_none());
    }
}
