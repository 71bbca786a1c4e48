//! The command's own process, in the sandbox init and in a chroot run alike: its
//! basics (death with its parent, SIGPIPE, umask), its resource limits, its user
//! (resolved in the root it runs in), its working directory, and the exec itself.

use std::ffi::CString;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::unistd::{Gid, Uid};

use super::{user, ExecError, Resource, RunSpec, Ulimit};

/// In the command's root: creates the working directory, takes the spec's user (its
/// supplementary groups, gid and uid, resolved in the root's /etc/passwd and
/// /etc/group) and enters the directory. Returns the user's home for `HOME`.
pub(super) fn become_user(spec: &RunSpec) -> Result<String, ExecError> {
    let passwd = read_id_file("/etc/passwd")?;
    let group = read_id_file("/etc/group")?;
    let ids = user::resolve(&spec.user, &passwd, &group)?;
    let chdir_err = |source| ExecError::Chdir {
        cwd: spec.cwd.clone(),
        source,
    };
    // COMPAT(buildkit): a missing working directory is created, owned by root.
    std::fs::create_dir_all(&spec.cwd).map_err(|e| chdir_err(ExecError::errno_of(&e)))?;
    let user_err = |source| ExecError::SetUser {
        user: spec.user.clone(),
        uid: ids.uid,
        gid: ids.gid,
        source,
    };
    let groups: Vec<Gid> = ids.groups.iter().map(|g| Gid::from_raw(*g)).collect();
    let unmapped = || ExecError::UnmappedUser {
        user: spec.user.clone(),
        uid: ids.uid,
        gid: ids.gid,
    };
    match nix::unistd::setgroups(&groups) {
        // A single-ID rootless namespace denies setgroups: only gid 0 exists there,
        // and the groups stay what kiln's user had (unmapped: they show as nogroup).
        Err(nix::errno::Errno::EPERM) if setgroups_denied() => {
            if ids.groups.iter().any(|g| *g != 0) {
                return Err(unmapped());
            }
        }
        other => other.map_err(user_err)?,
    }
    let unmapped = |source| match source {
        // The id does not exist in kiln's user namespace (single-ID rootless mapping).
        nix::errno::Errno::EINVAL if super::userns::single_id_mapping() => unmapped(),
        source => user_err(source),
    };
    if spec.foreground.is_some_and(|f| f.tty) {
        // COMPAT(runc): the console belongs to the command's user, so that it can
        // reopen it by name (`tty`'s path) as well as use the open fds. Best effort, as
        // the fds work either way: a --cap-drop CHOWN or an unmapped uid leaves it root's.
        let _ = nix::unistd::fchown(0, Some(Uid::from_raw(ids.uid)), None);
    }
    nix::unistd::setgid(Gid::from_raw(ids.gid)).map_err(unmapped)?;
    nix::unistd::setuid(Uid::from_raw(ids.uid)).map_err(unmapped)?;
    nix::unistd::chdir(spec.cwd.as_str()).map_err(chdir_err)?;
    Ok(ids.home)
}

/// Whether this process's user namespace denies setgroups (a single-ID rootless map).
fn setgroups_denied() -> bool {
    std::fs::read_to_string("/proc/self/setgroups").is_ok_and(|s| s.trim() == "deny")
}

/// What every command's process sets first: death with its parent, SIGPIPE's default
/// disposition, umask 0022.
pub(super) fn child_basics() -> Result<(), ExecError> {
    // The sandbox dies with the helper.
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
        .map_err(|e| helper_err("setting the parent-death signal", e))?;
    // Rust ignores SIGPIPE in kiln; an ignored signal stays ignored across exec, and
    // the command must die of a closed pipe as it would under runc (`yes | head`).
    // SAFETY: setting a default disposition runs no code of ours in a handler.
    unsafe {
        nix::sys::signal::signal(
            nix::sys::signal::Signal::SIGPIPE,
            nix::sys::signal::SigHandler::SigDfl,
        )
    }
    .map_err(|e| helper_err("restoring SIGPIPE", e))?;
    // COMPAT(buildkit): runc runs steps with umask 0022; inheriting the caller's would
    // make a RUN layer's modes depend on who ran the build.
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
    Ok(())
}

/// `--ulimit`: each limit, in order.
pub(super) fn set_ulimits(limits: &[Ulimit]) -> Result<(), ExecError> {
    for l in limits {
        let resource = match l.resource {
            Resource::Core => libc::RLIMIT_CORE,
            Resource::Cpu => libc::RLIMIT_CPU,
            Resource::Data => libc::RLIMIT_DATA,
            Resource::Fsize => libc::RLIMIT_FSIZE,
            Resource::Locks => libc::RLIMIT_LOCKS,
            Resource::Memlock => libc::RLIMIT_MEMLOCK,
            Resource::Msgqueue => libc::RLIMIT_MSGQUEUE,
            Resource::Nice => libc::RLIMIT_NICE,
            Resource::Nofile => libc::RLIMIT_NOFILE,
            Resource::Nproc => libc::RLIMIT_NPROC,
            Resource::Rss => libc::RLIMIT_RSS,
            Resource::Rtprio => libc::RLIMIT_RTPRIO,
            Resource::Rttime => libc::RLIMIT_RTTIME,
            Resource::Sigpending => libc::RLIMIT_SIGPENDING,
            Resource::Stack => libc::RLIMIT_STACK,
        };
        let lim = libc::rlimit {
            rlim_cur: l.soft as libc::rlim_t,
            rlim_max: l.hard as libc::rlim_t,
        };
        // SAFETY: setrlimit only reads the rlimit struct, which lives across the call.
        if unsafe { libc::setrlimit(resource, &lim) } != 0 {
            return Err(helper_err(
                &format!("setting ulimit {}", l.resource.name()),
                Errno::last(),
            ));
        }
    }
    Ok(())
}

/// Execs the command with the spec's env, plus `HOME` when the env has none.
pub(super) fn exec(spec: &RunSpec, home: &str) -> Result<std::convert::Infallible, ExecError> {
    let argv0 = spec.argv.first().cloned().unwrap_or_default();
    let exec_err = |source| ExecError::Exec {
        argv0: argv0.clone(),
        source,
    };
    let cstr = |s: &str| CString::new(s).map_err(|_| exec_err(Errno::EINVAL));
    let argv = spec
        .argv
        .iter()
        .map(|a| cstr(a))
        .collect::<Result<Vec<_>, _>>()?;
    // COMPAT(buildkit): runc sets HOME from the user's passwd entry unless the
    // environment (ENV HOME) already has it.
    let home = format!("HOME={home}");
    let has_home = spec.env.iter().any(|e| e.starts_with("HOME="));
    let env = spec
        .env
        .iter()
        .chain((!has_home).then_some(&home))
        .map(|e| cstr(e))
        .collect::<Result<Vec<_>, _>>()?;
    let program = find_program(&argv0, &spec.env).ok_or_else(|| exec_err(Errno::ENOENT))?;
    let program = cstr(&program.to_string_lossy())?;
    nix::unistd::execve(&program, &argv, &env).map_err(exec_err)
}

/// `argv0` as given when it has a `/`, else the first executable file of that name in
/// the `PATH` of `env` (Docker's default `PATH` when it has none).
fn find_program(argv0: &str, env: &[String]) -> Option<PathBuf> {
    if argv0.contains('/') {
        return Some(PathBuf::from(argv0));
    }
    if argv0.is_empty() {
        return None;
    }
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    path.split(':')
        .map(|dir| Path::new(dir).join(argv0))
        .find(|p| nix::unistd::access(p, nix::unistd::AccessFlags::X_OK).is_ok() && p.is_file())
}

fn read_id_file(file: &str) -> Result<String, ExecError> {
    match std::fs::read(file) {
        Ok(bytes) => Ok(String::from_utf8_lossy(&bytes).into_owned()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(ExecError::ReadIdFile {
            file: file.into(),
            source: ExecError::errno_of(&e),
        }),
    }
}

pub(super) fn helper_err(step: &str, source: Errno) -> ExecError {
    ExecError::Helper {
        step: step.into(),
        source,
    }
}

/// Waits for `child` to end: its exit code, or 128 + N when signal N killed it, as a
/// shell reports it. `step` names the wait in an error.
pub(super) fn wait_status(child: nix::unistd::Pid, step: &str) -> Result<i32, ExecError> {
    use nix::sys::wait::{waitpid, WaitStatus};
    loop {
        match waitpid(child, None) {
            Ok(WaitStatus::Exited(_, code)) => return Ok(code),
            Ok(WaitStatus::Signaled(_, sig, _)) => return Ok(128 + sig as i32),
            Ok(_) | Err(Errno::EINTR) => continue,
            Err(e) => return Err(helper_err(step, e)),
        }
    }
}

/// Reads all a forked command reports on `r` (its setup messages; end of file once it
/// has exec'd or exited), then waits for it: the messages and its status.
pub(super) fn messages_and_status(
    r: std::os::fd::OwnedFd,
    child: nix::unistd::Pid,
) -> Result<(Vec<u8>, i32), ExecError> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::from(r)
        .read_to_end(&mut bytes)
        .map_err(|e| helper_err("reading from the command", ExecError::errno_of(&e)))?;
    let status = wait_status(child, "waiting for the command")?;
    Ok((bytes, status))
}
