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
use std::path::{Path, PathBuf};

use crate::builder::copyup::{copy_up, diff, PreState};
use crate::builder::write_watch::WriteWatch;
use crate::exec::{self, MountKind, RunSpec};
use crate::layer::MergedFs;
use crate::plan::{NetworkMode, RunMount, RunOp, Sharing};

use super::cache_mount::lock_cache;
use super::mounts::{files_mount, prepare_mount};
use super::{collect, hosts_file, resolv_conf, RunContext, RunError, Temps, Vertex, HOSTNAME};
use crate::builder::snapshot::{remove_tree, staging_dir};

mod place;
use place::{place_all, restore, Content};

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
    let wanted = wanted(cx, op, &mut env, &mut temps)?;
    let root = staging_dir(cx.store, "root-")?;
    temps.dirs.push(root.clone());
    let aside = staging_dir(cx.store, "aside-")?;
    temps.dirs.push(aside.clone());
    let lower = MergedFs::new(cx.lower.clone());
    let started = std::time::Instant::now();
    copy_up(&lower, &root)?;
    tracing::debug!(elapsed = ?started.elapsed(), root = %root.display(), "copied the step's root up");
    let mut placed = Vec::new();
    let placing = place_all(&root, &aside, wanted, &mut placed).map(|refused| {
        if !refused.is_empty() {
            vertex.warn_once("chroot-devices", || {
                format!(
                    "RUN steps in the chroot have no /dev/{}: the kernel refuses to make device \
                     nodes here (EPERM: no CAP_MKNOD, or a user namespace) and nothing can be \
                     mounted, so a RUN sees only what the image has in /dev",
                    refused.join(", /dev/")
                )
            });
        }
    });
    let skip: HashSet<PathBuf> = placed
        .iter()
        .filter_map(|p| p.host.strip_prefix(&root).ok().map(Path::to_path_buf))
        .collect();
    let outcome = placing.and_then(|()| {
        let pre = PreState::record(&root, &skip)?;
        pre.wait_past();
        tracing::debug!(elapsed = ?started.elapsed(), "recorded the root's pre-state");
        let watch = WriteWatch::start(&root, pre.dirs());
        let spec = chroot_spec(cx, op, env);
        let ran = collect(cx, op, vertex, |out| {
            exec::run_chroot(&root, &spec, cx.exe, out)
        });
        let written = watch.map(WriteWatch::finish).unwrap_or_default();
        ran?;
        tracing::debug!(elapsed = ?started.elapsed(), "the command exited");
        Ok((pre, written))
    });
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

/// What the run puts into its root, in order: the generated /etc/hosts and
/// /etc/resolv.conf, then each mount's content (prepared as for the sandbox) at its
/// target, then the heredoc scripts.
fn wanted(
    cx: &RunContext<'_>,
    op: &RunOp,
    env: &mut Vec<String>,
    temps: &mut Temps,
) -> Result<Vec<(String, Content)>, RunError> {
    let mut wanted = Vec::new();
    for (m, src) in op.mounts.iter().zip(&cx.mount_sources) {
        let Some(mount) = prepare_mount(cx, m, src.as_ref(), env, temps)? else {
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
        let files = files_mount(cx.store, op, temps)?;
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
        (hosts_file(cx, temps)?, "/etc/hosts"),
        (resolv_conf(cx, op.network, temps)?, "/etc/resolv.conf"),
    ] {
        let content = Content::Move {
            from: file,
            back: None,
        };
        wanted.insert(0, (name.to_string(), content));
    }
    Ok(wanted)
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
        ports: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_targets_are_taken_from_the_workdir() {
        assert_eq!(absolute("/a", "/w"), "/a");
        assert_eq!(absolute("c", "/w/"), "/w/c");
    }
}
