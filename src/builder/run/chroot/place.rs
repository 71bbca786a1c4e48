//! Putting a chroot RUN's own files into its root and taking them out again: each
//! target's parents resolved inside the root (created when missing), what the image
//! had there moved aside, the content moved, copied or written in; afterwards, in
//! reverse order, a cache dir moved back to the store, the rest removed, the image's
//! entry put back, created parents removed when empty, and the times of the first
//! directory whose entries changed restored (so the diff sees it unchanged).

use std::fs;
use std::io;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use filetime::FileTime;
use nix::sys::stat::{makedev, mknod, Mode, SFlag};

use crate::builder::copyup::copy_up;
use crate::builder::snapshot::remove_tree;
use crate::layer::MergedFs;

use super::super::{ioerr, RunError};

/// The devices a RUN finds in the sandbox's /dev, made as nodes where kiln may
/// (CAP_MKNOD, which Docker grants): (name, major, minor).
const DEVICES: [(&str, u64, u64); 6] = [
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];

/// What goes at a target for the run.
pub(super) enum Content {
    /// A host dir or file of the run's own (or a cache dir), moved in; moved back to
    /// `back` afterwards when set, else removed.
    Move {
        from: PathBuf,
        back: Option<PathBuf>,
    },
    /// A copy of a host dir (a read-only cache mount), removed afterwards.
    Copy(PathBuf),
    /// A file with these bytes, owner and mode.
    Bytes {
        data: Vec<u8>,
        mode: u32,
        uid: u32,
        gid: u32,
    },
    /// An empty dir with this mode (a tmpfs mount's).
    EmptyDir(u32),
    /// A character device.
    Device(u64, u64),
}

/// One target placed in the root, and how to undo it.
pub(super) struct Placed {
    /// The host path in the root.
    pub(super) host: PathBuf,
    /// Where what the image had there waits.
    aside: Option<PathBuf>,
    /// Parents created for it, outermost first.
    created: Vec<PathBuf>,
    /// The directory whose entries changed first, with its times before.
    times: Option<(PathBuf, FileTime, FileTime)>,
    /// A cache dir the content goes back to.
    back: Option<PathBuf>,
}

/// Places the devices, then every wanted target in order (a later target may sit
/// inside an earlier one, as a later mount over an earlier one). `placed` holds what
/// was done even when a step fails, so the caller can undo it. Returns the devices
/// the kernel refused to make (`/dev/null`, …), for the caller to announce.
pub(super) fn place_all(
    root: &Path,
    aside: &Path,
    wanted: Vec<(String, Content)>,
    placed: &mut Vec<Placed>,
) -> Result<Vec<&'static str>, RunError> {
    let mut refused = Vec::new();
    for (name, major, minor) in DEVICES {
        let target = format!("/dev/{name}");
        match place(
            root,
            aside,
            placed.len(),
            &target,
            Content::Device(major, minor),
        ) {
            Ok(p) => placed.push(p),
            // Without CAP_MKNOD, or in a user namespace (where the kernel refuses
            // device nodes to every process), the RUN sees the image's own /dev.
            Err(RunError::Io { source, .. }) if source.raw_os_error() == Some(libc::EPERM) => {
                tracing::debug!(device = %target, "cannot make the device node in the chroot");
                refused.push(name);
            }
            Err(e) => return Err(e),
        }
    }
    for (target, content) in wanted {
        let p = place(root, aside, placed.len(), &target, content)?;
        placed.push(p);
    }
    Ok(refused)
}

/// Puts `content` at image path `target` in `root`, resolving the parents inside the
/// root (symlinks followed as the image sees them) and creating missing ones; what
/// was at the target waits in `aside`.
fn place(
    root: &Path,
    aside: &Path,
    n: usize,
    target: &str,
    content: Content,
) -> Result<Placed, RunError> {
    let view = MergedFs::new(vec![root.to_path_buf()]);
    let comps: Vec<&str> = target
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    let Some((last, parents)) = comps.split_last().filter(|(l, _)| **l != "..") else {
        return Err(RunError::ChrootRefuses {
            what: format!("a mount at {target}"),
            why: "its target must name a path below /",
        });
    };
    let mut p = Placed {
        host: PathBuf::new(),
        aside: None,
        created: Vec::new(),
        times: None,
        back: None,
    };
    let mut cur = String::from("/");
    let host_of = |image: &str| root.join(image.trim_start_matches('/'));
    for c in parents {
        let next = if cur == "/" {
            format!("/{c}")
        } else {
            format!("{cur}/{c}")
        };
        match view
            .resolve(&next, true)
            .map_err(|e| copyup_err(e.into()))?
        {
            Some(node) if node.meta.is_dir() => cur = node.path,
            Some(_) => {
                return Err(RunError::ChrootRefuses {
                    what: format!("a mount at {target}"),
                    why: "a parent of its target is not a directory in the image",
                })
            }
            None if *c == ".." => cur = node_parent(&cur),
            None => {
                let dir = host_of(&next);
                if p.times.is_none() {
                    p.times = Some(times_of(&host_of(&cur))?);
                }
                fs::create_dir(&dir).map_err(ioerr("creating", &dir))?;
                p.created.push(dir);
                cur = next;
            }
        }
    }
    let parent = host_of(&cur);
    if p.times.is_none() {
        p.times = Some(times_of(&parent)?);
    }
    let host = parent.join(last);
    if fs::symlink_metadata(&host).is_ok() {
        let a = aside.join(n.to_string());
        fs::rename(&host, &a).map_err(ioerr("moving aside", &host))?;
        p.aside = Some(a);
    }
    p.host = host.clone();
    if let Err(e) = put(&host, content, &mut p.back) {
        // Nothing of this placement may stay: a parent made for it (/dev for a device
        // node a user namespace refuses) would otherwise end up in the layer.
        undo(&p)?;
        return Err(e);
    }
    Ok(p)
}

fn node_parent(cur: &str) -> String {
    match cur.rfind('/') {
        Some(0) | None => "/".into(),
        Some(i) => cur[..i].into(),
    }
}

fn put(host: &Path, content: Content, back: &mut Option<PathBuf>) -> Result<(), RunError> {
    match content {
        Content::Move { from, back: b } => {
            fs::rename(&from, host).map_err(ioerr("moving into the root", &from))?;
            *back = b;
        }
        Content::Copy(from) => {
            fs::create_dir(host).map_err(ioerr("creating", host))?;
            copy_up(&MergedFs::new(vec![from]), host)?;
        }
        Content::Bytes {
            data,
            mode,
            uid,
            gid,
        } => {
            use std::io::Write;
            let mut f = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(host)
                .map_err(ioerr("creating", host))?;
            f.write_all(&data).map_err(ioerr("writing", host))?;
            std::os::unix::fs::fchown(&f, Some(uid), Some(gid))
                .map_err(ioerr("changing owner of", host))?;
            f.set_permissions(fs::Permissions::from_mode(mode))
                .map_err(ioerr("setting the mode of", host))?;
        }
        Content::EmptyDir(mode) => {
            fs::create_dir(host).map_err(ioerr("creating", host))?;
            fs::set_permissions(host, fs::Permissions::from_mode(mode))
                .map_err(ioerr("setting the mode of", host))?;
        }
        Content::Device(major, minor) => {
            mknod(
                host,
                SFlag::S_IFCHR,
                Mode::from_bits_truncate(0o666),
                makedev(major, minor),
            )
            .map_err(|e| ioerr("creating the device", host)(io::Error::from(e)))?;
            fs::set_permissions(host, fs::Permissions::from_mode(0o666))
                .map_err(ioerr("setting the mode of", host))?;
        }
    }
    Ok(())
}

fn times_of(dir: &Path) -> Result<(PathBuf, FileTime, FileTime), RunError> {
    let m = fs::symlink_metadata(dir).map_err(ioerr("reading", dir))?;
    Ok((
        dir.to_path_buf(),
        FileTime::from_last_access_time(&m),
        FileTime::from_last_modification_time(&m),
    ))
}

/// Undoes the placements, last first: a cache dir goes back to the store, anything
/// else placed is removed, what the image had is put back, created parents are
/// removed when empty, and the first changed directory gets its times back. Every
/// placement is undone even when one fails; the first error is returned.
pub(super) fn restore(placed: Vec<Placed>) -> Result<(), RunError> {
    let mut first = Ok(());
    for p in placed.into_iter().rev() {
        let r = undo(&p);
        if first.is_ok() {
            first = r;
        }
    }
    first
}

fn undo(p: &Placed) -> Result<(), RunError> {
    let present = fs::symlink_metadata(&p.host).ok();
    match (&p.back, present) {
        (Some(back), Some(_)) => {
            // An empty dir another step made at the cache's path meanwhile gives way.
            match fs::remove_dir(back) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => {
                    return Err(ioerr("putting back the cache dir", back)(e))
                }
                _ => {}
            }
            fs::rename(&p.host, back).map_err(ioerr("putting back the cache dir", back))?;
        }
        (None, Some(m)) if m.is_dir() => remove_tree(&p.host)?,
        (None, Some(_)) => fs::remove_file(&p.host).map_err(ioerr("removing", &p.host))?,
        (_, None) => {}
    }
    if let Some(a) = &p.aside {
        fs::rename(a, &p.host).map_err(ioerr("putting back", &p.host))?;
    }
    for d in p.created.iter().rev() {
        // A parent the command wrote into stays, as the sandbox's would.
        let _ = fs::remove_dir(d);
    }
    if let Some((dir, atime, mtime)) = &p.times {
        if dir.exists() {
            filetime::set_symlink_file_times(dir, *atime, *mtime)
                .map_err(ioerr("restoring the times of", dir))?;
        }
    }
    Ok(())
}

fn copyup_err(e: crate::builder::copyup::CopyUpError) -> RunError {
    RunError::CopyUp(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parents_of_image_paths_stop_at_the_root() {
        assert_eq!(node_parent("/a/b"), "/a");
        assert_eq!(node_parent("/a"), "/");
    }
}
