//! Keeping extraction inside its destination. Every archive path goes through
//! [`normalize`] (no `..`, leading `/` stripped as tar does) and every parent directory
//! through [`Confined::parent`], which walks it one component at a time with `lstat` and
//! refuses symlinks, so no write ever follows a link out of the tree. A symlink in the
//! read-only tree *beneath* the destination ([`Lower`], ADD's image) is never opened: its
//! target is spliced into the path as text and resolved inside the destination.

use std::ffi::{OsStr, OsString};
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

/// What the tree an archive is extracted over (for ADD, the image beneath the staging
/// directory) has at a path the extraction has not written itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LowerEntry {
    /// Nothing there.
    Missing,
    /// A directory: an entry inside it is written into a copy of it with these
    /// attributes, so the layer does not change them.
    Dir {
        /// Permission bits with setuid/setgid/sticky.
        mode: u32,
        /// Owner.
        uid: u32,
        /// Group.
        gid: u32,
    },
    /// A symlink, and its target as written.
    Symlink(PathBuf),
    /// Anything else (a file, a device, a fifo).
    Other,
}

/// The read-only tree beneath an extraction. Only its symlinks to directories are
/// followed, and only as path text resolved inside the destination: the unpacker never
/// opens anything through them.
pub trait Lower {
    /// What is at `components` below the destination (already resolved: none of them
    /// is a symlink beneath), without following a symlink at the last one.
    fn lookup(&self, components: &[&OsStr]) -> io::Result<LowerEntry>;
}

/// How many symlinks beneath the tree one entry's parents may go through (Linux's
/// `MAXSYMLINKS`).
const MAX_LOWER_HOPS: usize = 40;

/// The destination directory extraction is confined to.
pub(super) struct Confined<'a> {
    pub root: &'a Path,
    /// How entry and hard-link paths treat `..`.
    pub dotdot: DotDot,
    /// The tree beneath the destination, whose symlinked parents are followed.
    pub lower: Option<&'a dyn Lower>,
}

impl Confined<'_> {
    /// The real directory holding `components` (all but the entry's own name), checked to
    /// be a chain of real directories under the root. Missing ones are created when
    /// `create` (with the attributes of the directory beneath, else mode 0755), else
    /// `None` is returned. A symlink in the tree itself (one the archive made) is
    /// refused; a symlink beneath it is followed inside the root, as BuildKit's untar
    /// does: an absolute target starts again at the root, and `..` above the root is
    /// refused.
    // COMPAT(buildkit): moby's untar runs chrooted at the destination and writes
    // through the image's symlinks: `lib/x` over merged-usr `/lib -> usr/lib` lands in
    // `/usr/lib/x`, `/lib -> /usr/lib` in the destination's `usr/lib`, and a link
    // climbing out fails ("path escapes from parent").
    pub fn parent(
        &self,
        components: &[&OsStr],
        entry: &str,
        create: bool,
    ) -> Result<Option<PathBuf>, LayerError> {
        let mut todo: Vec<OsString> = components.iter().rev().map(|c| c.into()).collect();
        let mut done: Vec<OsString> = Vec::new();
        let mut hops = 0;
        while let Some(comp) = todo.pop() {
            match comp.as_bytes() {
                b"" | b"." => continue,
                // Only a symlink beneath puts `..` here: `normalize` removed the archive's.
                b".." => {
                    if done.pop().is_none() {
                        return Err(unsafe_entry(
                            entry,
                            "a symlink beneath it points outside of the destination",
                        ));
                    }
                    continue;
                }
                _ => done.push(comp),
            }
            let cur = self.root.join(done.iter().collect::<PathBuf>());
            match fs::symlink_metadata(&cur) {
                Ok(m) if m.is_dir() => {}
                Ok(m) if m.file_type().is_symlink() => {
                    return Err(unsafe_entry(entry, "a parent directory is a symlink"))
                }
                Ok(_) => return Err(unsafe_entry(entry, "a parent is not a directory")),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    let beneath = match self.lower {
                        Some(lower) => {
                            let comps: Vec<&OsStr> = done.iter().map(OsString::as_os_str).collect();
                            lower.lookup(&comps).map_err(|source| {
                                extract(
                                    entry,
                                    "looking up a parent beneath the destination",
                                    source,
                                )
                            })?
                        }
                        None => LowerEntry::Missing,
                    };
                    match beneath {
                        LowerEntry::Symlink(target) => {
                            hops += 1;
                            if hops > MAX_LOWER_HOPS {
                                return Err(unsafe_entry(
                                    entry,
                                    "too many levels of symbolic links beneath it",
                                ));
                            }
                            done.pop();
                            let target = target.as_os_str().as_bytes();
                            if target.starts_with(b"/") {
                                done.clear();
                            }
                            let parts = target.split(|&b| b == b'/').rev();
                            todo.extend(parts.map(|c| OsStr::from_bytes(c).to_os_string()));
                        }
                        LowerEntry::Other => {
                            return Err(unsafe_entry(entry, "a parent is not a directory"))
                        }
                        _ if !create => return Ok(None),
                        LowerEntry::Dir { mode, uid, gid } => {
                            make_parent(&cur, mode, Some((uid, gid)), entry)?
                        }
                        LowerEntry::Missing => make_parent(&cur, 0o755, None, entry)?,
                    }
                }
                Err(source) => return Err(extract(entry, "inspecting a parent directory", source)),
            }
        }
        Ok(Some(self.root.join(done.iter().collect::<PathBuf>())))
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

/// Creates a parent directory the archive did not hold: `mode` after the owner (chown
/// clears setgid).
fn make_parent(
    path: &Path,
    mode: u32,
    owner: Option<(u32, u32)>,
    entry: &str,
) -> Result<(), LayerError> {
    let ex = |source| extract(entry, "creating a parent directory", source);
    fs::create_dir(path).map_err(ex)?;
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::lchown(path, Some(uid), Some(gid)).map_err(ex)?;
    }
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(ex)
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
            lower: None,
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

    /// A tree beneath: `lib -> usr/lib`, `abs -> /usr/lib`, `up -> ../x`, `f` a file,
    /// `usr/lib` a 0700 directory owned 7:8.
    struct Beneath;

    impl Lower for Beneath {
        fn lookup(&self, components: &[&OsStr]) -> io::Result<LowerEntry> {
            let p: Vec<_> = components.iter().map(|c| c.to_str().unwrap()).collect();
            Ok(match p.join("/").as_str() {
                "lib" => LowerEntry::Symlink("usr/lib".into()),
                "abs" => LowerEntry::Symlink("/usr/lib".into()),
                "up" => LowerEntry::Symlink("../x".into()),
                "f" => LowerEntry::Other,
                "usr" => LowerEntry::Dir {
                    mode: 0o755,
                    uid: 0,
                    gid: 0,
                },
                "usr/lib" => LowerEntry::Dir {
                    mode: 0o700,
                    uid: 7,
                    gid: 8,
                },
                _ => LowerEntry::Missing,
            })
        }
    }

    #[test]
    fn parents_follow_symlinks_beneath_inside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let c = Confined {
            root: dir.path(),
            dotdot: DotDot::Clean,
            lower: Some(&Beneath),
        };
        let parent = |comps: &[&str]| {
            let comps: Vec<&OsStr> = comps.iter().map(OsStr::new).collect();
            c.parent(&comps, "entry", true)
        };
        let usr_lib = dir.path().join("usr/lib");
        assert_eq!(parent(&["lib"]).unwrap().unwrap(), usr_lib);
        assert_eq!(
            parent(&["abs", "sub"]).unwrap().unwrap(),
            usr_lib.join("sub")
        );
        // The staged copy of a directory beneath keeps its attributes.
        let m = fs::symlink_metadata(&usr_lib).unwrap();
        use std::os::unix::fs::MetadataExt;
        assert_eq!((m.mode() & 0o7777, m.uid(), m.gid()), (0o700, 7, 8));
        assert!(fs::symlink_metadata(dir.path().join("lib")).is_err());
        let err = parent(&["up"]).unwrap_err().to_string();
        assert!(err.contains("outside of the destination"), "{err}");
        let err = parent(&["f", "x"]).unwrap_err().to_string();
        assert!(err.contains("not a directory"), "{err}");
        // A symlink in the tree itself (the archive's) is still refused.
        std::os::unix::fs::symlink("usr", dir.path().join("own")).unwrap();
        let err = parent(&["own", "lib"]).unwrap_err().to_string();
        assert!(err.contains("a parent directory is a symlink"), "{err}");
        // A directory the tree has replaces the link beneath: nothing is followed.
        fs::create_dir(dir.path().join("lib")).unwrap();
        assert_eq!(parent(&["lib"]).unwrap().unwrap(), dir.path().join("lib"));
    }
}
