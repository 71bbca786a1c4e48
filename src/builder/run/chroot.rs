//! A RUN with `--isolation=chroot`: the stage's snapshots copied up into a real root
//! (`super::super::copyup`), the run's own files put in place for the command (what
//! the sandbox would mount: cache dirs, bind sources, tmpfs dirs, secrets, heredoc
//! scripts, /etc/hosts, /etc/resolv.conf, the standard devices), the command run in a
//! chroot of it (`exec::run_chroot`), the run's files taken out again (a cache dir
//! back to the store's `cache/mounts/`, whatever the image had at a target put back,
//! the times of the directories that held them restored) and the rest diffed into an
//! upper dir in overlay form.
//!
//! Invariants: a placed file never reaches the layer (its path is left out of the
//! diff, and everything it displaced is put back); a secret is written into the root
//! (there is no tmpfs without mount(2)) and removed before the diff, and the root is
//! removed with the run's temps whatever happens; a cache dir is moved in and out,
//! never copied (a kill mid-run loses that cache's content, never the store's
//! integrity). What the sandbox gives and a chroot cannot (`--network=none`, ssh
//! agent sockets, a tmpfs size, `--shm-size`) is refused by name.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use filetime::FileTime;
use nix::sys::stat::{makedev, mknod, Mode, SFlag};

use crate::builder::copyup::{copy_up, diff, PreState};
use crate::builder::write_watch::WriteWatch;
use crate::exec::{self, MountKind, RunSpec};
use crate::layer::MergedFs;
use crate::plan::{NetworkMode, RunMount, RunOp, Sharing};

use super::cache_mount::lock_cache;
use super::mounts::{files_mount, prepare_mount};
use super::{
    collect, hosts_file, ioerr, resolv_conf, RunContext, RunError, Temps, Vertex, HOSTNAME,
};
use crate::builder::snapshot::{remove_tree, staging_dir};

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
enum Content {
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
struct Placed {
    /// The host path in the root.
    host: PathBuf,
    /// Where what the image had there waits.
    aside: Option<PathBuf>,
    /// Parents created for it, outermost first.
    created: Vec<PathBuf>,
    /// The directory whose entries changed first, with its times before.
    times: Option<(PathBuf, FileTime, FileTime)>,
    /// A cache dir the content goes back to.
    back: Option<PathBuf>,
}

/// Runs `op` in a chroot; returns the upper dir of its changes (the caller's).
pub(super) fn run_step(
    cx: &RunContext<'_>,
    op: &RunOp,
    vertex: &Vertex,
) -> Result<PathBuf, RunError> {
    refuse_unsupported(cx, op)?;
    let mut temps = Temps::default();
    let mut env = op.env.clone();
    env.extend(op.proxy_env.iter().cloned());
    let mut wanted = Vec::new();
    for (m, src) in op.mounts.iter().zip(&cx.mount_sources) {
        let Some(mount) = prepare_mount(cx, m, src.as_ref(), &mut env, &mut temps)? else {
            continue;
        };
        let content = match (m, mount.kind) {
            (RunMount::Cache { sharing, ro, .. }, MountKind::Bind { source, .. }) => {
                // Moved away for the run: no other step may use it meanwhile.
                if *sharing == Sharing::Shared {
                    temps.locks.push(lock_cache(&source)?);
                }
                if *ro {
                    Content::Copy(source)
                } else {
                    Content::Move {
                        back: Some(source.clone()),
                        from: source,
                    }
                }
            }
            (_, MountKind::Bind { source, .. } | MountKind::BindDiscardWrites { source, .. }) => {
                Content::Move {
                    from: source,
                    back: None,
                }
            }
            (
                _,
                MountKind::Secret {
                    data,
                    mode,
                    uid,
                    gid,
                },
            ) => Content::Bytes {
                data,
                mode,
                uid,
                gid,
            },
            (_, MountKind::Tmpfs { .. }) => Content::EmptyDir(0o1777),
        };
        wanted.push((absolute(&mount.target, &op.workdir), content));
    }
    if !op.files.is_empty() {
        let files = files_mount(cx.store, op, &mut temps)?;
        if let MountKind::Bind { source, .. } = files.kind {
            wanted.push((
                files.target,
                Content::Move {
                    from: source,
                    back: None,
                },
            ));
        }
    }
    for (file, name) in [
        (hosts_file(cx, &mut temps)?, "/etc/hosts"),
        (resolv_conf(cx, op.network, &mut temps)?, "/etc/resolv.conf"),
    ] {
        let content = Content::Move {
            from: file,
            back: None,
        };
        wanted.insert(0, (name.to_string(), content));
    }
    let root = staging_dir(cx.store, "root-")?;
    temps.dirs.push(root.clone());
    let aside = staging_dir(cx.store, "aside-")?;
    temps.dirs.push(aside.clone());
    let lower = MergedFs::new(cx.lower.clone());
    let started = std::time::Instant::now();
    copy_up(&lower, &root)?;
    tracing::debug!(elapsed = ?started.elapsed(), root = %root.display(), "copied the step's root up");
    let mut placed = Vec::new();
    let outcome = place_all(&root, &aside, wanted, &mut placed).and_then(|()| {
        let pre = PreState::record(&root)?;
        pre.wait_past();
        tracing::debug!(elapsed = ?started.elapsed(), "recorded the root's pre-state");
        let watch = WriteWatch::start(&root, pre.dirs());
        let spec = chroot_spec(cx, op, env);
        let ran = collect(op, vertex, |out| {
            exec::run_chroot(&root, &spec, cx.exe, out)
        });
        let written = watch.map(WriteWatch::finish).unwrap_or_default();
        ran?;
        tracing::debug!(elapsed = ?started.elapsed(), "the command exited");
        Ok((pre, written))
    });
    let skip: HashSet<PathBuf> = placed
        .iter()
        .filter_map(|p| p.host.strip_prefix(&root).ok().map(Path::to_path_buf))
        .collect();
    let restored = restore(placed);
    let (pre, written) = outcome?;
    restored?;
    let upper = staging_dir(cx.store, "upper-")?;
    if let Err(e) = diff(&root, &lower, &pre, &skip, &written, &upper) {
        let _ = remove_tree(&upper);
        return Err(e.into());
    }
    tracing::debug!(elapsed = ?started.elapsed(), "diffed the root into the upper dir");
    Ok(upper)
}

/// What the sandbox would give and a chroot cannot, refused by name before any work.
fn refuse_unsupported(cx: &RunContext<'_>, op: &RunOp) -> Result<(), RunError> {
    let refuse = |what: &str, why| {
        Err(RunError::ChrootRefuses {
            what: what.into(),
            why,
        })
    };
    if op.network == NetworkMode::None {
        return refuse(
            "RUN --network=none",
            "a chroot shares the network of the container kiln runs in (no network namespace can be made); drop --network=none or use the namespace sandbox",
        );
    }
    if cx.sandbox.shm_size.is_some() {
        return refuse(
            "--shm-size",
            "a chroot has no /dev/shm of its own (nothing can be mounted); drop the flag",
        );
    }
    for m in &op.mounts {
        match m {
            RunMount::Ssh { .. } => {
                return refuse(
                    "RUN --mount=type=ssh",
                    "the agent's socket cannot be bound into a chroot; fetch with a secret instead",
                )
            }
            RunMount::Tmpfs { size: Some(_), .. } => {
                return refuse(
                    "RUN --mount=type=tmpfs,size=…",
                    "the target is a plain directory of the root (no tmpfs can be mounted), which no size limits; drop size=",
                )
            }
            _ => {}
        }
    }
    Ok(())
}

fn absolute(target: &str, workdir: &str) -> String {
    if target.starts_with('/') {
        target.to_string()
    } else {
        format!("{}/{target}", workdir.trim_end_matches('/'))
    }
}

fn chroot_spec(cx: &RunContext<'_>, op: &RunOp, env: Vec<String>) -> RunSpec {
    RunSpec {
        lower_dirs: Vec::new(),
        upper_dir: PathBuf::new(),
        work_dir: PathBuf::new(),
        argv: op.argv.clone(),
        env,
        cwd: op.workdir.clone(),
        user: op.user.clone(),
        hostname: HOSTNAME.into(),
        network: exec::Network::Host,
        mounts: Vec::new(),
        stdin: None,
        privileged: false,
        hosts_file: None,
        resolv_conf: None,
        ulimits: cx.sandbox.ulimits.clone(),
        shm_size: None,
        capabilities: None,
        read_only_root: false,
        foreground: None,
    }
}

/// Places the devices, then every wanted target in order (a later target may sit
/// inside an earlier one, as a later mount over an earlier one). `placed` holds what
/// was done even when a step fails, so the caller can undo it.
fn place_all(
    root: &Path,
    aside: &Path,
    wanted: Vec<(String, Content)>,
    placed: &mut Vec<Placed>,
) -> Result<(), RunError> {
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
            // Without CAP_MKNOD the RUN sees the image's own /dev (documented).
            Err(RunError::Io { source, .. }) if source.raw_os_error() == Some(libc::EPERM) => {
                tracing::debug!(device = %target, "cannot make the device node in the chroot");
            }
            Err(e) => return Err(e),
        }
    }
    for (target, content) in wanted {
        let p = place(root, aside, placed.len(), &target, content)?;
        placed.push(p);
    }
    Ok(())
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
    put(&host, content, &mut p.back)?;
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
fn restore(placed: Vec<Placed>) -> Result<(), RunError> {
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
    fn relative_targets_are_taken_from_the_workdir() {
        assert_eq!(absolute("/a", "/w"), "/a");
        assert_eq!(absolute("c", "/w/"), "/w/c");
        assert_eq!(node_parent("/a/b"), "/a");
        assert_eq!(node_parent("/a"), "/");
    }
}
