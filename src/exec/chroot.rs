//! `--isolation=chroot`: a command run in a chroot of a directory the caller prepared,
//! with no namespace and no mount, for where none can be made (an unprivileged
//! container whose seccomp profile refuses `unshare` and `mount`), as kaniko and
//! buildah's chroot isolation run theirs.
//!
//! kiln's side ([`run_chroot`]) sends the helper a [`ChrootRequest`]; the helper
//! (single-threaded, so it may fork) becomes a child subreaper and forks the command's
//! process, which chroots into the root, sets the limits, takes the user (resolved in
//! the root's /etc/passwd) and execs. When the command exits, the helper kills
//! whatever it left behind (orphans are reparented to the subreaper), so the output
//! pipes close and no process of a step outlives it.
//!
//! What this does NOT give, by construction: the command shares the caller's PID,
//! network, IPC and UTS namespaces, sees its devices as far as it can make nodes, keeps
//! the caller's capabilities (no bounding-set cut, no seccomp filter of kiln's own), and
//! a root command can leave a chroot. The caller's container is the isolation.

use std::fs::File;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{fork, pipe2, ForkResult, Pid};

use super::command::{become_user, child_basics, exec, helper_err, set_ulimits};
use super::parent::{check_command, launch};
use super::protocol::{self, ChrootRequest, InitMsg};
use super::{ExecError, Output, RunResult, RunSpec};

/// Runs `spec`'s command in a chroot of `root` by re-executing `exe` as the helper;
/// output reaches `on_output` as with [`super::run`]. `root` must be an absolute
/// directory holding the whole filesystem the command sees (nothing is mounted);
/// `spec`'s overlay dirs are unused and its mounts must be empty.
pub fn run_chroot(
    root: &Path,
    spec: &RunSpec,
    exe: &Path,
    on_output: &mut dyn FnMut(Output<'_>),
) -> Result<RunResult, ExecError> {
    check_command(spec)?;
    if !spec.mounts.is_empty() {
        return Err(ExecError::NotForChroot {
            what: "extra mounts".into(),
        });
    }
    if spec.foreground.is_some() {
        return Err(ExecError::NotForChroot {
            what: "a foreground container".into(),
        });
    }
    let req = ChrootRequest {
        chroot_root: root.to_path_buf(),
        spec: spec.clone(),
    };
    let json = serde_json::to_vec(&req).map_err(|source| ExecError::Protocol {
        what: "run spec".into(),
        source,
    })?;
    launch(spec, &json, exe, on_output)
}

/// The helper's side: forks the command, waits for it, then kills and reaps what it
/// left. Returns its status (128 + N when signal N killed it).
pub(super) fn run_helper(req: &ChrootRequest) -> Result<i32, ExecError> {
    // SAFETY: prctl(PR_SET_CHILD_SUBREAPER) takes integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
        return Err(helper_err("becoming a child subreaper", Errno::last()));
    }
    let (r, w) = pipe2(OFlag::O_CLOEXEC).map_err(|e| helper_err("creating the init pipe", e))?;
    // SAFETY: the helper checked it is single-threaded before reading its request, so
    // the child may run arbitrary code after the fork.
    let child = match unsafe { fork() }.map_err(|e| helper_err("forking the command", e))? {
        ForkResult::Child => {
            drop(r);
            child_main(req, w)
        }
        ForkResult::Parent { child } => child,
    };
    drop(w);
    let (bytes, status) = super::command::messages_and_status(r, child)?;
    kill_leftovers();
    for msg in protocol::decode_lines::<InitMsg>(&bytes, "chroot command message")? {
        if let InitMsg::Failed(err) = msg {
            return Err(err);
        }
    }
    Ok(status)
}

fn child_main(req: &ChrootRequest, pipe: OwnedFd) -> ! {
    let mut pipe = File::from(pipe);
    let err = match child_setup(req) {
        Ok(never) => match never {},
        Err(err) => err,
    };
    let _ = protocol::send(&mut pipe, &InitMsg::Failed(err));
    let _ = pipe.flush();
    // SAFETY: _exit skips the parent's atexit handlers and buffered state, which a
    // forked child must not run twice.
    unsafe { libc::_exit(127) }
}

fn child_setup(req: &ChrootRequest) -> Result<std::convert::Infallible, ExecError> {
    let spec = &req.spec;
    child_basics()?;
    let root = &req.chroot_root;
    let chroot_err = |source| ExecError::Chroot {
        root: root.clone(),
        source,
    };
    nix::unistd::chroot(root.as_path()).map_err(chroot_err)?;
    nix::unistd::chdir("/").map_err(chroot_err)?;
    set_ulimits(&spec.ulimits)?;
    let home = become_user(spec)?;
    // setuid cleared the parent-death signal; the command still dies with the helper.
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)
        .map_err(|e| helper_err("setting the parent-death signal", e))?;
    exec(spec, &home)
}

/// SIGKILLs and reaps every process the command left (reparented to this subreaper),
/// until none is left; bounded, so a fork bomb cannot keep the helper here forever.
fn kill_leftovers() {
    let me = std::process::id() as i32;
    for _ in 0..1000 {
        let kids = children_of(me);
        if kids.is_empty() {
            break;
        }
        for k in &kids {
            let _ = kill(*k, Signal::SIGKILL);
        }
        for k in kids {
            let _ = waitpid(k, None);
        }
    }
    // Zombies of children that exited on their own.
    while let Ok(s) = waitpid(None, Some(WaitPidFlag::WNOHANG)) {
        if s == WaitStatus::StillAlive {
            break;
        }
    }
}

/// The pids whose parent is `parent`, from /proc/*/stat.
fn children_of(parent: i32) -> Vec<Pid> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|s| ppid_of(&s))
                == Some(parent)
        })
        .map(Pid::from_raw)
        .collect()
}

/// The parent pid in a /proc/PID/stat line: the 2nd field after the command's `)`.
fn ppid_of(stat: &str) -> Option<i32> {
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ppid_is_read_past_a_command_with_spaces_and_parens() {
        assert_eq!(ppid_of("42 (a b) c) S 7 42 42 0"), Some(7));
        assert_eq!(ppid_of("garbage"), None);
    }

    #[test]
    fn requests_round_trip_and_plain_specs_stay_sandbox_runs() {
        let spec: RunSpec = serde_json::from_str(
            r#"{"lower_dirs":[],"upper_dir":"/u","work_dir":"/w","argv":["true"],"env":[],
                "cwd":"/","user":"","hostname":"h","network":"Host","mounts":[],"stdin":null}"#,
        )
        .unwrap();
        let plain = serde_json::to_vec(&spec).unwrap();
        assert!(matches!(
            protocol::decode_request(&plain).unwrap(),
            protocol::Request::Sandbox(_)
        ));
        let req = ChrootRequest {
            chroot_root: "/r".into(),
            spec,
        };
        let json = serde_json::to_vec(&req).unwrap();
        match protocol::decode_request(&json).unwrap() {
            protocol::Request::Chroot(r) => assert_eq!(r.chroot_root, Path::new("/r")),
            other => panic!("wrong request {other:?}"),
        }
    }
}
