//! The plan's RUN mounts made real for one run: bind sources materialised
//! from the context, a stage or an image; cache dirs; tmpfs; secrets as
//! files or env; SSH agent relays; heredoc scripts as files.
//!
//! Invariant: everything made here lives in the run's [`Temps`] (removed
//! when the run ends) or in the store's cache dirs, never in the upper dir.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use crate::exec::{Mount, MountKind};
use crate::oci::Store;
use crate::plan::{CopyOp, CopySource, Excludes, FilesFrom, RunMount, RunOp, Sharing};

use super::cache_mount::{cache_dir, lock_cache, seeded_cache_dir};
use super::{ioerr, RunContext, RunError, SecretSource, Temps};
use crate::builder::copy::{stage_copy, CopyError};
use crate::builder::snapshot::staging_dir;
use crate::builder::source::Source;
use crate::builder::ssh::AgentRelay;
use crate::layer::MergedFs;
/// Heredoc scripts, read-only at [`RunOp::FILES_DIR`].
pub(super) fn files_mount(store: &Store, op: &RunOp, temps: &mut Temps) -> Result<Mount, RunError> {
    let dir = staging_dir(store, "files-")?;
    temps.dirs.push(dir.clone());
    for f in &op.files {
        let p = dir.join(&f.name);
        fs::write(&p, &f.content).map_err(ioerr("writing", &p))?;
        fs::set_permissions(&p, fs::Permissions::from_mode(f.mode))
            .map_err(ioerr("setting the mode of", &p))?;
    }
    Ok(Mount {
        target: RunOp::FILES_DIR.into(),
        kind: MountKind::Bind {
            source: dir,
            readonly: true,
        },
    })
}

pub(super) fn prepare_mount(
    cx: &RunContext<'_>,
    m: &RunMount,
    src: Option<&Source>,
    env: &mut Vec<String>,
    temps: &mut Temps,
) -> Result<Option<Mount>, RunError> {
    let (target, kind) = match m {
        RunMount::Tmpfs { target, size } => (target.clone(), MountKind::Tmpfs { size: *size }),
        RunMount::Cache {
            id,
            target,
            ro,
            from,
            source,
            mode,
            uid,
            gid,
            sharing,
        } => {
            let dir = match (from, src) {
                (Some(_), Some(src)) => seeded_cache_dir(cx.store, id, src, source, target, temps)?,
                (Some(_), None) => {
                    return Err(RunError::Unsupported {
                        what: format!("RUN --mount=type=cache at {target} without its from tree"),
                    })
                }
                (None, _) => cache_dir(cx.store, id, *mode, *uid, *gid)?,
            };
            // COMPAT(buildkit): `locked` waits for other writers; kiln gives
            // `private` the same exclusive access instead of a second copy.
            if *sharing != Sharing::Shared {
                temps.locks.push(lock_cache(&dir)?);
            }
            let kind = MountKind::Bind {
                source: dir,
                readonly: *ro,
            };
            (target.clone(), kind)
        }
        RunMount::Bind {
            target, source, rw, ..
        } => (
            target.clone(),
            bind_mount(cx, src, source, target, *rw, temps)?,
        ),
        RunMount::Secret { .. } => match secret_mount(cx, m, env)? {
            Some(x) => x,
            None => return Ok(None),
        },
        RunMount::Ssh {
            id,
            target,
            required,
            mode,
            uid,
            gid,
        } => {
            let Some(agent) = cx.ssh.get(id) else {
                // COMPAT(buildkit): an optional agent that was not given is
                // not mounted (SSH_AUTH_SOCK still names the target).
                if *required {
                    return Err(RunError::MissingSsh { id: id.clone() });
                }
                return Ok(None);
            };
            let relay_err = |source| RunError::SshRelay {
                id: id.clone(),
                target: target.clone(),
                source,
            };
            let dir = socket_dir(cx.store, temps)?;
            let relay = AgentRelay::start(&dir, agent, *uid, *gid, *mode).map_err(relay_err)?;
            let kind = MountKind::Bind {
                source: relay.socket().to_path_buf(),
                // A socket on a read-only mount still connects; rw as BuildKit's rbind.
                readonly: false,
            };
            temps.relays.push(relay);
            (target.clone(), kind)
        }
    };
    Ok(Some(Mount { target, kind }))
}

pub(super) fn bind_mount(
    cx: &RunContext<'_>,
    src: Option<&Source>,
    source: &str,
    target: &str,
    rw: bool,
    temps: &mut Temps,
) -> Result<MountKind, RunError> {
    let Some(src) = src else {
        return Err(RunError::Unsupported {
            what: format!("RUN --mount=type=bind at {target} without a source tree"),
        });
    };
    let host = materialise(cx.store, src, source, target, temps)?;
    // A file source (`source=f.txt,rw`) cannot be an overlay's lower dir; `host` is this
    // run's own copy (materialise copied it into a fresh staging dir, removed with the
    // run's temps), so binding that copy read-write discards the writes just the same.
    // COMPAT(buildkit): a read-write bind of a file works and its writes are dropped.
    if !rw || !host.is_dir() {
        return Ok(MountKind::Bind {
            source: host,
            readonly: !rw,
        });
    }
    let scratch = staging_dir(cx.store, "bindrw-")?;
    temps.dirs.push(scratch.clone());
    Ok(MountKind::BindDiscardWrites {
        source: host,
        scratch,
    })
}

/// A secret as a read-only file (and/or an env var); `None` when an
/// optional secret was not given (its env var, if any, is set empty), or it
/// goes only into the environment.
pub(super) fn secret_mount(
    cx: &RunContext<'_>,
    m: &RunMount,
    env: &mut Vec<String>,
) -> Result<Option<(String, MountKind)>, RunError> {
    let RunMount::Secret {
        id,
        target,
        env: var,
        required,
        mode,
        uid,
        gid,
    } = m
    else {
        return Ok(None);
    };
    let value = match cx.secrets.get(id) {
        Some(SecretSource::File(p)) => fs::read(p).map_err(|source| RunError::ReadSecret {
            id: id.clone(),
            source,
        })?,
        Some(SecretSource::Env(v)) => v.clone().into_bytes(),
        None if *required => return Err(RunError::MissingSecret { id: id.clone() }),
        None => {
            // COMPAT(buildkit): `loadSecretEnv` still sets the variable of an
            // optional secret that was not given, to the empty string.
            if let Some(var) = var {
                env.push(format!("{var}="));
            }
            return Ok(None);
        }
    };
    if let Some(var) = var {
        env.push(format!("{var}={}", String::from_utf8_lossy(&value)));
        if target.is_none() {
            return Ok(None);
        }
    }
    let at = target
        .clone()
        .unwrap_or_else(|| format!("/run/secrets/{id}"));
    // The bytes go to the sandbox in the spec (a pipe), which puts them on a tmpfs.
    let kind = MountKind::Secret {
        data: value,
        mode: *mode,
        uid: *uid,
        gid: *gid,
    };
    Ok(Some((at, kind)))
}

/// A fresh dir for a relay socket: under the store's `tmp/` when the socket
/// path fits in `sun_path` (108 bytes with its NUL), else in the system's
/// temp dir.
pub(super) fn socket_dir(store: &Store, temps: &mut Temps) -> Result<PathBuf, RunError> {
    let dir = staging_dir(store, "ssh-")?;
    temps.dirs.push(dir.clone());
    // The relay's socket is `dir/SOCKET_NAME`.
    if dir.as_os_str().len() + 1 + crate::builder::ssh::SOCKET_NAME.len() < 108 {
        return Ok(dir);
    }
    let tmp = std::env::temp_dir();
    let short = tempfile::Builder::new()
        .prefix("kiln-ssh-")
        .tempdir_in(&tmp)
        .map_err(ioerr("creating a socket dir in", &tmp))?
        .keep();
    temps.dirs.push(short.clone());
    Ok(short)
}

/// Copies `source` of `src` into a temp dir (merged layers cannot be bind
/// mounted as one directory) and returns the host path to mount.
pub(super) fn materialise(
    store: &Store,
    src: &Source,
    source: &str,
    target: &str,
    temps: &mut Temps,
) -> Result<PathBuf, RunError> {
    let err = |source| RunError::BindSource {
        target: target.into(),
        source: Box::new(source),
    };
    let dir = staging_dir(store, "bind-")?;
    temps.dirs.push(dir.clone());
    let op = CopyOp {
        from: FilesFrom::Context,
        sources: vec![CopySource::Path(source.into())],
        heredocs: vec![],
        dest: "/".into(),
        chown: None,
        chmod: None,
        link: true,
        parents: false,
        excludes: Excludes::default(),
        add: None,
        dest_is_dir_hint: true,
    };
    stage_copy(&op, src, &MergedFs::default(), &dir).map_err(err)?;
    let node = src
        .lookup(source, true)
        .map_err(|e| err(CopyError::Source(e)))?;
    Ok(match node {
        Some(n) if !n.meta.is_dir() => dir.join(n.path.rsplit('/').next().unwrap_or("")),
        _ => dir,
    })
}
