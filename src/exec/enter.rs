//! `kiln exec`: a command in a running container's namespaces. The calling kiln
//! (single-threaded: it checks, as the helper does) opens the container init's
//! `/proc/<pid>/ns/*` first (after it joins the mount namespace, /proc is the
//! container's), joins its IPC, UTS, network, PID and mount namespaces with `setns`,
//! and forks: the child, PID N of the container, takes the container's limits,
//! capability bounding set and seccomp filter (unless privileged), drops to the user
//! and execs the command. Its setup failure comes back as a typed [`ExecError`] over a
//! close-on-exec pipe, as the sandbox init's does.
//!
//! Invariant: the command never runs with more than the container's command had:
//! the same bounding set, the same filter, the same user resolution (the container's
//! /etc/passwd, read after the mount namespace is joined).

use std::fs::File;
use std::os::fd::AsFd;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sched::CloneFlags;
use nix::unistd::{fork, pipe2, ForkResult};

use super::command::{become_user, child_basics, exec, helper_err, set_ulimits};
use super::protocol::{self, InitMsg};
use super::{caps, seccomp, ExecError, RunSpec};

/// The namespaces joined, in order: the mount namespace last, since /proc paths
/// are the host's only until then (they are all opened before any is joined).
const NAMESPACES: [(&str, CloneFlags); 5] = [
    ("ipc", CloneFlags::CLONE_NEWIPC),
    ("uts", CloneFlags::CLONE_NEWUTS),
    ("net", CloneFlags::CLONE_NEWNET),
    ("pid", CloneFlags::CLONE_NEWPID),
    ("mnt", CloneFlags::CLONE_NEWNS),
];

/// Runs `spec.argv` (with `spec`'s env, cwd, user, limits, capabilities and
/// privilege; its mounts and root are the running container's) in the namespaces of
/// `init_pid`, the container's init as this process sees it, with this process's
/// stdio (`stdin`: else /dev/null). Returns its exit status (128 + N for signal N).
/// This process stays in the container's namespaces afterwards: call it last.
pub fn enter(init_pid: i32, spec: &RunSpec, stdin: bool) -> Result<i32, ExecError> {
    super::parent::check_command(spec)?;
    let threads = super::userns::thread_count();
    if threads != 1 {
        return Err(ExecError::NotSingleThreaded { threads });
    }
    let same = |ns: &str| {
        use std::os::unix::fs::MetadataExt;
        let a = std::fs::metadata(format!("/proc/{init_pid}/ns/{ns}")).map(|m| m.ino());
        let b = std::fs::metadata(format!("/proc/self/ns/{ns}")).map(|m| m.ino());
        matches!((a, b), (Ok(a), Ok(b)) if a == b)
    };
    if !same("user") {
        return Err(helper_err(
            "joining a container of another user namespace (kiln exec into a rootless kiln's container is not implemented yet)",
            Errno::EPERM,
        ));
    }
    let mut fds = Vec::new();
    for (name, flag) in NAMESPACES {
        let path = format!("/proc/{init_pid}/ns/{name}");
        let f = File::open(&path)
            .map_err(|e| helper_err(&format!("opening {path}"), ExecError::errno_of(&e)))?;
        fds.push((f, flag, name));
    }
    for (f, flag, name) in &fds {
        nix::sched::setns(f.as_fd(), *flag)
            .map_err(|e| helper_err(&format!("joining the container's {name} namespace"), e))?;
    }
    drop(fds);
    let (r, w) = pipe2(OFlag::O_CLOEXEC).map_err(|e| helper_err("creating the exec pipe", e))?;
    // SAFETY: this process is single-threaded (checked above), so the child may run
    // arbitrary code after the fork.
    let child = match unsafe { fork() }.map_err(|e| helper_err("forking the command", e))? {
        ForkResult::Child => {
            drop(r);
            let mut pipe = File::from(w);
            let err = match setup(spec, stdin) {
                Ok(never) => match never {},
                Err(err) => err,
            };
            let _ = protocol::send(&mut pipe, &InitMsg::Failed(err));
            // SAFETY: _exit skips the parent's atexit handlers and buffered state.
            unsafe { libc::_exit(127) }
        }
        ForkResult::Parent { child } => child,
    };
    drop(w);
    let (bytes, status) = super::command::messages_and_status(r, child)?;
    for msg in protocol::decode_lines::<InitMsg>(&bytes, "exec message")? {
        if let InitMsg::Failed(err) = msg {
            return Err(err);
        }
    }
    Ok(status)
}

/// The child: what the sandbox init does after its root is built.
fn setup(spec: &RunSpec, stdin: bool) -> Result<std::convert::Infallible, ExecError> {
    child_basics()?;
    if !stdin {
        super::helper::redirect_stdin(None)?;
    }
    set_ulimits(&spec.ulimits)?;
    if !spec.privileged {
        caps::keep(spec.capabilities.as_deref().unwrap_or(&caps::DEFAULT))?;
        seccomp::install()?;
    }
    let home = become_user(spec)?;
    exec(spec, &home)
}
