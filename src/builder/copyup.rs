//! `--isolation=chroot`'s filesystem: without mount(2) a RUN's root must be a real
//! directory, so [`copy_up`] copies the step's merged lower snapshots (whiteouts and
//! opaque dirs applied, as overlayfs shows them) into one, [`PreState`] records every
//! entry's inode and ctime once the run's temporary files are in place, and [`diff`]
//! turns what the command changed into an upper dir in the form overlayfs leaves one
//! (changed and new entries, 0:0 character-device whiteouts, opaque dirs), so
//! `layer::pack` reads it as it reads the sandbox's and the layer has the same bytes
//! for the same change.
//!
//! Invariants:
//! - Snapshots are only read: every file is copied (`copy_file_range`, which
//!   filesystems with reflinks turn into a clone), never hard-linked, so nothing a
//!   command does in the root reaches the store.
//! - A changed entry is told by its inode and ctime, which no unprivileged command
//!   can set back: any write, chmod, chown, link or rename of a file changes its
//!   ctime, as any of them makes overlayfs copy the file up. [`PreState::wait_past`]
//!   lets the clock pass the newest recorded ctime first, so a change in the same
//!   clock tick as the copy still shows. A directory whose ctime moved is compared
//!   with its lower entry (mode, owner, mtime, xattrs): the caller puts back the
//!   times of directories it added its own files to.
//! - overlayfs's own xattrs (`trusted.overlay.*`, `user.overlay.*`) are never copied
//!   into the root, so only [`diff`] marks a directory opaque.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ffi::OsString;
use std::fs::{self, Metadata};
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use filetime::FileTime;
use nix::sys::stat::{makedev, mknod, Mode, SFlag};

use crate::layer::{MergedFs, MergedFsError};

/// Why copying a step's root or diffing it failed.
#[derive(Debug, thiserror::Error)]
pub enum CopyUpError {
    /// Reading the merged lower snapshots.
    #[error("reading the step's lower layers")]
    Lower(#[from] MergedFsError),
    /// A filesystem call on the root or the upper dir.
    #[error("{step} {path}")]
    Io {
        /// What was being done.
        step: &'static str,
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

fn ioerr<'a>(step: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> CopyUpError + 'a {
    move |source| CopyUpError::Io {
        step,
        path: path.into(),
        source,
    }
}

fn image_path(dir: &str, name: &str) -> String {
    if dir == "/" {
        format!("/{name}")
    } else {
        format!("{dir}/{name}")
    }
}

/// Copies the visible tree of `lower` into the empty directory `root`: each entry
/// with its type, content, link target, device number, owner, mode, xattrs and
/// times. Sockets are left out (a layer cannot hold them either).
pub fn copy_up(lower: &MergedFs, root: &Path) -> Result<(), CopyUpError> {
    copy_dir(lower, "/", root)?;
    match lower.resolve("/", false)? {
        Some(node) => apply_meta(root, &node.host, &node.meta),
        // scratch: a root anyone may enter, as an empty overlay's.
        None => fs::set_permissions(root, fs::Permissions::from_mode(0o755))
            .map_err(ioerr("setting the mode of", root)),
    }
}

/// Copies what `lower` shows under its directory `dir` into the empty directory
/// `root`, and gives `root` the owner, mode and times of `dir` (a volume seeded from
/// an image: docker copies the image's content at the mount point into an empty
/// volume). Nothing is copied when `dir` is not a directory in `lower`.
pub fn copy_up_at(lower: &MergedFs, dir: &str, root: &Path) -> Result<(), CopyUpError> {
    match lower.resolve(dir, true)? {
        Some(node) if node.meta.is_dir() => {
            copy_dir(lower, dir, root)?;
            apply_meta(root, &node.host, &node.meta)
        }
        _ => Ok(()),
    }
}

fn copy_dir(lower: &MergedFs, dir: &str, host: &Path) -> Result<(), CopyUpError> {
    for entry in lower.children(dir)? {
        let path = image_path(dir, &entry.name);
        let Some(node) = lower.resolve(&path, false)? else {
            continue;
        };
        let dst = host.join(&entry.name);
        let ft = node.meta.file_type();
        if ft.is_dir() {
            fs::create_dir(&dst).map_err(ioerr("creating", &dst))?;
            copy_dir(lower, &path, &dst)?;
        } else if ft.is_file() {
            fs::copy(&node.host, &dst).map_err(ioerr("copying into", &dst))?;
        } else if ft.is_symlink() {
            let target = fs::read_link(&node.host).map_err(ioerr("reading", &node.host))?;
            std::os::unix::fs::symlink(target, &dst).map_err(ioerr("creating", &dst))?;
        } else if ft.is_char_device() || ft.is_block_device() || ft.is_fifo() {
            let kind = if ft.is_char_device() {
                SFlag::S_IFCHR
            } else if ft.is_block_device() {
                SFlag::S_IFBLK
            } else {
                SFlag::S_IFIFO
            };
            mknod(
                &dst,
                kind,
                Mode::from_bits_truncate(0o600),
                node.meta.rdev(),
            )
            .map_err(|e| ioerr("creating", &dst)(e.into()))?;
        } else {
            continue;
        }
        apply_meta(&dst, &node.host, &node.meta)?;
    }
    Ok(())
}

/// Gives `dst` the owner, mode, xattrs (overlay's own left out) and times of `meta`,
/// whose xattrs are read from `xattr_src`. In that order: chown clears set-id bits and
/// file capabilities, and anything after the times would move them.
pub fn apply_meta(dst: &Path, xattr_src: &Path, meta: &Metadata) -> Result<(), CopyUpError> {
    std::os::unix::fs::lchown(dst, Some(meta.uid()), Some(meta.gid()))
        .map_err(ioerr("changing owner of", dst))?;
    if !meta.file_type().is_symlink() {
        fs::set_permissions(dst, fs::Permissions::from_mode(meta.mode() & 0o7777))
            .map_err(ioerr("setting the mode of", dst))?;
    }
    for (name, value) in xattrs(xattr_src)? {
        xattr::set(dst, &name, &value).map_err(ioerr("setting an xattr of", dst))?;
    }
    let atime = FileTime::from_last_access_time(meta);
    let mtime = FileTime::from_last_modification_time(meta);
    filetime::set_symlink_file_times(dst, atime, mtime).map_err(ioerr("setting times of", dst))
}

/// The xattrs of `path` that belong to the file, sorted: not overlayfs's own, not
/// SELinux's label (the layer leaves it out too).
fn xattrs(path: &Path) -> Result<BTreeMap<OsString, Vec<u8>>, CopyUpError> {
    let names = match xattr::list(path) {
        Ok(n) => n,
        Err(e) if e.raw_os_error() == Some(libc::ENOTSUP) => return Ok(BTreeMap::new()),
        Err(e) => return Err(ioerr("listing xattrs of", path)(e)),
    };
    let mut out = BTreeMap::new();
    for name in names {
        let bytes = name.as_encoded_bytes();
        if bytes.starts_with(b"trusted.overlay.")
            || bytes.starts_with(b"user.overlay.")
            || bytes == b"security.selinux"
        {
            continue;
        }
        if let Some(v) = xattr::get(path, &name).map_err(ioerr("reading an xattr of", path))? {
            out.insert(name, v);
        }
    }
    Ok(out)
}

/// An entry's identity: device, inode and birth time (inode numbers are reused at
/// once: `rm -rf d && mkdir d` may give the new `d` the old one's number; its birth
/// time tells them apart where the filesystem keeps one).
type Identity = (u64, u64, Option<std::time::SystemTime>);

fn identity(m: &Metadata) -> Identity {
    (m.dev(), m.ino(), m.created().ok())
}

/// Every entry of a root before the command ran: its identity and ctime.
pub struct PreState {
    entries: HashMap<PathBuf, (Identity, i64, i64)>,
    newest: (i64, i64),
    dirs: Vec<PathBuf>,
}

impl PreState {
    /// Records `root` (paths relative to it), but for the trees at `skip` (the run's
    /// own files, which [`diff`] leaves alone too).
    pub fn record(root: &Path, skip: &HashSet<PathBuf>) -> Result<Self, CopyUpError> {
        let mut entries = HashMap::new();
        let mut newest = (0, 0);
        let mut dirs = Vec::new();
        let walk = walkdir::WalkDir::new(root).min_depth(1).into_iter();
        let walk =
            walk.filter_entry(|e| !skip.contains(e.path().strip_prefix(root).unwrap_or(e.path())));
        for e in walk {
            let e = e.map_err(|e| {
                let path = e.path().unwrap_or(root).to_path_buf();
                CopyUpError::Io {
                    step: "reading",
                    path,
                    source: e.into(),
                }
            })?;
            let m = e.metadata().map_err(|err| CopyUpError::Io {
                step: "reading",
                path: e.path().into(),
                source: err.into(),
            })?;
            let rel = e
                .path()
                .strip_prefix(root)
                .unwrap_or(e.path())
                .to_path_buf();
            newest = newest.max((m.ctime(), m.ctime_nsec()));
            if m.is_dir() {
                dirs.push(rel.clone());
            }
            entries.insert(rel, (identity(&m), m.ctime(), m.ctime_nsec()));
        }
        Ok(Self {
            entries,
            newest,
            dirs,
        })
    }

    /// Returns once the coarse clock (what file timestamps are taken from) is past the
    /// newest recorded ctime: a change made after this gets a later ctime (and a new
    /// entry a later birth time). When the
    /// filesystem keeps whole seconds only, waits for the next second.
    pub fn wait_past(&self) {
        use nix::time::{clock_gettime, ClockId};
        let whole_seconds = self.newest.1 == 0;
        loop {
            let Ok(now) = clock_gettime(ClockId::CLOCK_REALTIME_COARSE) else {
                return;
            };
            let now = (now.tv_sec(), now.tv_nsec());
            let past = if whole_seconds {
                now.0 > self.newest.0
            } else {
                now > self.newest
            };
            if past {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }

    /// The directories (relative), for [`super::write_watch::WriteWatch`].
    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    fn same_inode(&self, rel: &Path, m: &Metadata) -> bool {
        self.entries
            .get(rel)
            .is_some_and(|(id, _, _)| *id == identity(m))
    }

    fn ctime_moved(&self, rel: &Path, m: &Metadata) -> bool {
        self.entries
            .get(rel)
            .is_none_or(|&(_, s, ns)| (s, ns) != (m.ctime(), m.ctime_nsec()))
    }
}

/// Moves what the command changed in `root` into the empty dir `upper`, in overlay
/// form: an entry that is new (or whose inode was replaced) moves whole, a new
/// directory over a lower one marked opaque; a file whose ctime moved moves; a
/// directory is recreated when something under it changed or its own metadata
/// differs from the lower one; a lower entry gone from the root becomes a whiteout.
/// Paths in `skip` (relative; the run's own temporary files) are neither diffed nor
/// whited out; files in `written` (opened for writing, maybe unchanged) move up as
/// overlayfs would have copied them up. `root` is left partly emptied: the caller
/// discards it.
pub fn diff(
    root: &Path,
    lower: &MergedFs,
    pre: &PreState,
    skip: &HashSet<PathBuf>,
    written: &HashSet<PathBuf>,
    upper: &Path,
) -> Result<(), CopyUpError> {
    let d = Differ {
        root,
        upper,
        lower,
        pre,
        skip,
        written,
    };
    d.dir(Path::new(""))?;
    Ok(())
}

struct Differ<'a> {
    root: &'a Path,
    upper: &'a Path,
    lower: &'a MergedFs,
    pre: &'a PreState,
    skip: &'a HashSet<PathBuf>,
    written: &'a HashSet<PathBuf>,
}

impl Differ<'_> {
    /// Diffs directory `rel`; true when it (and so its upper copy) is in the layer.
    fn dir(&self, rel: &Path) -> Result<bool, CopyUpError> {
        let here = self.root.join(rel);
        let meta = fs::symlink_metadata(&here).map_err(ioerr("reading", &here))?;
        let image = rel.to_str().map(|r| format!("/{r}"));
        // Lower entries by name, and whether each is a directory.
        let lower: BTreeMap<String, bool> = match &image {
            Some(dir) => self
                .lower
                .children(dir)?
                .into_iter()
                .map(|e| (e.name, e.meta.is_dir()))
                .collect(),
            None => BTreeMap::new(),
        };
        let mut names = Vec::new();
        for e in fs::read_dir(&here).map_err(ioerr("reading", &here))? {
            names.push(e.map_err(ioerr("reading", &here))?.file_name());
        }
        names.sort();
        let mut emitted = false;
        for name in &names {
            let child = rel.join(name);
            if self.skip.contains(&child) {
                continue;
            }
            let src = self.root.join(&child);
            let m = fs::symlink_metadata(&src).map_err(ioerr("reading", &src))?;
            let in_lower = name.to_str().and_then(|n| lower.get(n)).copied();
            let kept = in_lower.is_some() && self.pre.same_inode(&child, &m);
            if !kept {
                self.move_up(rel, &child)?;
                if m.is_dir() && in_lower == Some(true) {
                    set_opaque(&self.upper.join(&child))?;
                }
                emitted = true;
            } else if m.is_dir() {
                emitted |= self.dir(&child)?;
            } else if self.pre.ctime_moved(&child, &m) || self.written.contains(&child) {
                self.move_up(rel, &child)?;
                emitted = true;
            }
        }
        let present: HashSet<&str> = names.iter().filter_map(|n| n.to_str()).collect();
        for name in lower.keys() {
            let child = rel.join(name);
            if self.skip.contains(&child) || present.contains(name.as_str()) {
                continue;
            }
            self.ensure_upper(rel)?;
            let wh = self.upper.join(&child);
            mknod(&wh, SFlag::S_IFCHR, Mode::empty(), makedev(0, 0))
                .map_err(|e| ioerr("creating the whiteout", &wh)(e.into()))?;
            emitted = true;
        }
        if rel.as_os_str().is_empty() {
            return Ok(emitted);
        }
        let changed =
            self.pre.ctime_moved(rel, &meta) && self.meta_differs(&image, &here, &meta)?;
        if emitted || changed {
            self.ensure_upper(rel)?;
            apply_meta(&self.upper.join(rel), &here, &meta)?;
        }
        Ok(emitted || changed)
    }

    /// Whether directory `here` differs from its lower entry in what a layer records.
    fn meta_differs(
        &self,
        image: &Option<String>,
        here: &Path,
        m: &Metadata,
    ) -> Result<bool, CopyUpError> {
        let Some(node) = image
            .as_deref()
            .map(|p| self.lower.resolve(p, false))
            .transpose()?
            .flatten()
        else {
            return Ok(true);
        };
        let l = &node.meta;
        let same = (l.mode(), l.uid(), l.gid(), l.mtime(), l.mtime_nsec())
            == (m.mode(), m.uid(), m.gid(), m.mtime(), m.mtime_nsec());
        Ok(!same || xattrs(&node.host)? != xattrs(here)?)
    }

    fn ensure_upper(&self, rel: &Path) -> Result<(), CopyUpError> {
        let dir = self.upper.join(rel);
        fs::create_dir_all(&dir).map_err(ioerr("creating", &dir))
    }

    fn move_up(&self, parent: &Path, child: &Path) -> Result<(), CopyUpError> {
        self.ensure_upper(parent)?;
        let (from, to) = (self.root.join(child), self.upper.join(child));
        fs::rename(&from, &to).map_err(ioerr("moving into the upper dir", &from))
    }
}

/// Marks a directory of the upper dir opaque as overlayfs does: `trusted.overlay.opaque`,
/// or `user.overlay.opaque` where trusted xattrs are refused (no CAP_SYS_ADMIN);
/// `layer::walk` reads both.
fn set_opaque(dir: &Path) -> Result<(), CopyUpError> {
    match xattr::set(dir, "trusted.overlay.opaque", b"y") {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => {
            xattr::set(dir, "user.overlay.opaque", b"y").map_err(ioerr("marking opaque", dir))
        }
        Err(e) => Err(ioerr("marking opaque", dir)(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn is_whiteout(p: &Path) -> bool {
        fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_char_device() && m.rdev() == 0)
    }

    #[test]
    fn a_changed_root_diffs_into_overlay_form_and_the_lower_stays() {
        let dir = tempfile::tempdir().unwrap();
        let (lower_dir, root, upper) = (
            dir.path().join("l"),
            dir.path().join("r"),
            dir.path().join("u"),
        );
        for d in ["d", "e", "keep", "same"] {
            fs::create_dir_all(lower_dir.join(d)).unwrap();
        }
        for (f, body) in [
            ("a", "a"),
            ("d/x", "x"),
            ("e/y", "y"),
            ("keep/k", "k"),
            ("same/s", "s"),
        ] {
            fs::write(lower_dir.join(f), body).unwrap();
        }
        symlink("a", lower_dir.join("link")).unwrap();
        fs::create_dir_all(&root).unwrap();
        fs::create_dir_all(&upper).unwrap();
        let lower = MergedFs::new(vec![lower_dir.clone()]);
        copy_up(&lower, &root).unwrap();
        let pre = PreState::record(&root, &HashSet::new()).unwrap();
        pre.wait_past();

        fs::write(root.join("a"), "A").unwrap();
        fs::remove_dir_all(root.join("d")).unwrap();
        fs::create_dir(root.join("d")).unwrap();
        fs::write(root.join("d/z"), "z").unwrap();
        fs::remove_dir_all(root.join("e")).unwrap();
        fs::remove_file(root.join("link")).unwrap();
        fs::set_permissions(root.join("keep"), fs::Permissions::from_mode(0o700)).unwrap();
        xattr::set(root.join("keep"), "user.t", b"1").unwrap();
        fs::write(root.join("n"), "new").unwrap();
        let written: HashSet<PathBuf> = [PathBuf::from("same/s")].into();
        diff(&root, &lower, &pre, &HashSet::new(), &written, &upper).unwrap();

        assert_eq!(fs::read_to_string(upper.join("a")).unwrap(), "A");
        assert_eq!(fs::read_to_string(upper.join("d/z")).unwrap(), "z");
        assert!(!upper.join("d/x").exists());
        assert_eq!(
            xattr::get(upper.join("d"), "trusted.overlay.opaque").unwrap(),
            Some(b"y".to_vec()),
            "a dir replaced over a lower one is opaque"
        );
        assert!(is_whiteout(&upper.join("e")) && is_whiteout(&upper.join("link")));
        let keep = fs::metadata(upper.join("keep")).unwrap();
        assert_eq!(keep.mode() & 0o7777, 0o700);
        assert_eq!(
            xattr::get(upper.join("keep"), "user.t").unwrap(),
            Some(b"1".to_vec())
        );
        assert!(
            !upper.join("keep/k").exists(),
            "an unchanged file stays below"
        );
        assert_eq!(fs::read_to_string(upper.join("n")).unwrap(), "new");
        assert_eq!(
            fs::read_to_string(upper.join("same/s")).unwrap(),
            "s",
            "opened for writing: copied up"
        );
        assert_eq!(
            fs::read_to_string(lower_dir.join("a")).unwrap(),
            "a",
            "the snapshot is untouched"
        );
        assert_eq!(
            fs::read_dir(&upper).unwrap().count(),
            7,
            "a, d, e, keep, link, n, same"
        );
    }
}
