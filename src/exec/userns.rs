//! Rootless kiln: an ordinary user becomes root of a new user namespace (with a mount
//! namespace of its own) before kiln does anything else, so every store write, every
//! `chown` of an unpacked layer, every overlay and the sandbox helper's own namespaces
//! happen as "root" there, and what kiln records (tar headers, COPY owners) is the
//! namespace's view: the user's files are uid 0.
//!
//! The process enters the namespace itself, in place: no re-exec, so its stdio,
//! signals, exit status and terminal stay as they are. A user namespace applies to the
//! whole process, so [`enter`] refuses to run once a second thread exists (unshare
//! fails then anyway). With ranges in `/etc/subuid` and `/etc/subgid`, the mapping is
//! written by the setuid `newuidmap`/`newgidmap`, which must run *outside* the new
//! namespace: kiln forks a child before it unshares (it is single-threaded, so the
//! fork is sound), the child waits on a pipe until the parent has unshared, runs both
//! tools on the parent's pid and reports their verdict on a second pipe. Without
//! ranges (or without the tools) kiln writes a single-ID mapping (the user → 0) itself,
//! which the kernel allows to any process for its own ids; then only uid and gid 0
//! exist, and whatever needs another id fails with a message that says how to add
//! ranges.
//!
//! Invariant: when [`enter`] returns an error, the process is unchanged (still the
//! user, in the host's namespaces) and has written nothing.

use std::fmt;
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sched::CloneFlags;
use nix::sys::wait::waitpid;
use nix::unistd::{fork, pipe2, ForkResult, Gid, Pid, Uid};

/// How kiln maps the user into its namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mapping {
    /// The user → 0 and the subordinate ranges → 1…: `ids` ids in all (uids and gids
    /// counted apart; the smaller is shown).
    Ranges {
        /// How many uids the namespace has.
        uids: u64,
        /// How many gids the namespace has.
        gids: u64,
    },
    /// The user → 0 only.
    Single {
        /// Why there are no ranges.
        why: SingleWhy,
    },
}

/// Why the mapping is a single ID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SingleWhy {
    /// `/etc/subuid` or `/etc/subgid` has no range for the user.
    NoRanges {
        /// The user's name (or uid when it has none).
        user: String,
    },
    /// The user has ranges but `newuidmap` or `newgidmap` is not installed.
    NoTool {
        /// The missing tool.
        tool: &'static str,
    },
}

/// The rootless mode kiln runs in, shown once in the progress output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rootless {
    /// The id mapping.
    pub mapping: Mapping,
}

impl fmt::Display for Rootless {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "rootless: user namespace, ")?;
        match &self.mapping {
            Mapping::Ranges { uids, gids } => write!(f, "{} subuids", uids.min(gids) - 1)?,
            Mapping::Single {
                why: SingleWhy::NoRanges { user },
            } => write!(
                f,
                "single-ID mapping (no /etc/subuid and /etc/subgid range for {user}: \
                 steps that need other uids fail)"
            )?,
            Mapping::Single {
                why: SingleWhy::NoTool { tool },
            } => write!(
                f,
                "single-ID mapping ({tool} not found in PATH: install Debian's uidmap \
                 to use the user's subordinate ids)"
            )?,
        }
        write!(f, ", overlayfs (userxattr)")
    }
}

/// Why kiln could not enter its user namespace. The process is unchanged.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UsernsError {
    /// The kernel allows no user namespace to this user.
    #[error(
        "rootless kiln needs a user namespace, and /proc/sys/user/max_user_namespaces is 0 \
         (user namespaces are disabled): as root, `sysctl -w user.max_user_namespaces=28633` \
         (and put it in /etc/sysctl.d/ to keep it), or run kiln as root"
    )]
    Disabled,
    /// unshare(CLONE_NEWUSER | CLONE_NEWNS) failed.
    #[error("rootless kiln could not create a user namespace ({hint})")]
    Unshare {
        /// What usually causes this errno.
        hint: &'static str,
        /// The cause.
        source: Errno,
    },
    /// The process already has other threads.
    #[error("entering the user namespace: kiln has {threads} threads, it must have one")]
    Threads {
        /// How many.
        threads: usize,
    },
    /// newuidmap or newgidmap refused the mapping.
    #[error(
        "{tool} {pid} {args} failed ({status}): {stderr}; check the user's ranges in \
         /etc/subuid and /etc/subgid, and that {tool} is setuid root (Debian's uidmap)"
    )]
    MapTool {
        /// The tool.
        tool: String,
        /// The pid it mapped.
        pid: i32,
        /// Its mapping arguments.
        args: String,
        /// How it exited.
        status: String,
        /// What it printed.
        stderr: String,
    },
    /// Writing the single-ID mapping, forking or a pipe failed.
    #[error("entering the user namespace: {step}")]
    Setup {
        /// What was being done.
        step: &'static str,
        /// The cause.
        source: Errno,
    },
}

/// Puts this process in a new user and mount namespace in which the calling user is
/// root, unless it is root already (then `Ok(None)`).
pub fn enter() -> Result<Option<Rootless>, UsernsError> {
    let (uid, gid) = (Uid::effective(), Gid::effective());
    if uid.is_root() {
        return Ok(None);
    }
    if max_user_namespaces() == Some(0) {
        return Err(UsernsError::Disabled);
    }
    let threads = thread_count();
    if threads != 1 {
        return Err(UsernsError::Threads { threads });
    }
    let name = nix::unistd::User::from_uid(uid)
        .ok()
        .flatten()
        .map(|u| u.name);
    let who = name.clone().unwrap_or_else(|| uid.to_string());
    let subuid = ranges(Path::new("/etc/subuid"), name.as_deref(), uid.as_raw());
    let subgid = ranges(Path::new("/etc/subgid"), name.as_deref(), uid.as_raw());
    let tools = (find_tool("newuidmap"), find_tool("newgidmap"));
    let mapping = match (subuid.is_empty() || subgid.is_empty(), tools) {
        (true, _) => Mapping::Single {
            why: SingleWhy::NoRanges { user: who },
        },
        (false, (None, _)) => Mapping::Single {
            why: SingleWhy::NoTool { tool: "newuidmap" },
        },
        (false, (_, None)) => Mapping::Single {
            why: SingleWhy::NoTool { tool: "newgidmap" },
        },
        (false, (Some(newuidmap), Some(newgidmap))) => {
            let uids = map_args(uid.as_raw(), &subuid);
            let gids = map_args(gid.as_raw(), &subgid);
            enter_mapped(&[(newuidmap, uids.0), (newgidmap, gids.0)])?;
            become_root()?;
            return Ok(Some(Rootless {
                mapping: Mapping::Ranges {
                    uids: uids.1,
                    gids: gids.1,
                },
            }));
        }
    };
    unshare()?;
    let write = |file: &str, text: String, step| {
        std::fs::write(file, text).map_err(|e| UsernsError::Setup {
            step,
            source: Errno::from_raw(e.raw_os_error().unwrap_or(0)),
        })
    };
    write(
        "/proc/self/setgroups",
        "deny".into(),
        "writing /proc/self/setgroups",
    )?;
    write(
        "/proc/self/uid_map",
        format!("0 {uid} 1\n"),
        "writing /proc/self/uid_map",
    )?;
    write(
        "/proc/self/gid_map",
        format!("0 {gid} 1\n"),
        "writing /proc/self/gid_map",
    )?;
    become_root()?;
    Ok(Some(Rootless { mapping }))
}

/// Whether this process is in a user namespace other than the initial one (its uid
/// map is not the identity over all 2^32 ids): kiln's own rootless namespace, or one
/// it was started in (`unshare -r`, a pod with `hostUsers: false`).
pub fn in_user_namespace() -> bool {
    std::fs::read_to_string("/proc/self/uid_map").is_ok_and(|m| {
        let fields: Vec<&str> = m.split_whitespace().collect();
        fields != ["0", "0", "4294967295"]
    })
}

/// Whether this process's user namespace maps a single uid (a single-ID rootless
/// mapping, or `unshare -r`): then no other owner can be set.
pub fn single_id_mapping() -> bool {
    std::fs::read_to_string("/proc/self/uid_map")
        .is_ok_and(|m| m.lines().count() == 1 && m.split_whitespace().nth(2) == Some("1"))
}

/// The fix for a single-ID mapping, for error messages.
pub const ADD_RANGES_HINT: &str = "kiln runs rootless with a single-ID mapping (only uid and \
     gid 0 exist in its user namespace): give the user subordinate ids, as root: `usermod \
     --add-subuids 100000-165535 --add-subgids 100000-165535 USER` (or the line \
     `USER:100000:65536` in /etc/subuid and /etc/subgid), and install Debian's uidmap \
     (newuidmap, newgidmap)";

fn unshare() -> Result<(), UsernsError> {
    nix::sched::unshare(CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNS).map_err(|source| {
        let hint = match source {
            Errno::ENOSPC => "the limit in /proc/sys/user/max_user_namespaces is reached or 0",
            Errno::EPERM => {
                "the system refuses unprivileged user namespaces: allow them as root with \
                 `sysctl -w kernel.unprivileged_userns_clone=1` (Debian before 11) or \
                 `sysctl -w kernel.apparmor_restrict_unprivileged_userns=0` (Ubuntu 24.04), \
                 or in a container, run it with a seccomp profile that allows unshare"
            }
            Errno::EINVAL => "the kernel has no user namespaces (CONFIG_USER_NS)",
            _ => "unshare(CLONE_NEWUSER | CLONE_NEWNS) failed",
        };
        UsernsError::Unshare { hint, source }
    })
}

/// Unshares with the mapping written from outside by `tools` ((path, args) each) in a
/// child forked first.
fn enter_mapped(tools: &[(PathBuf, String)]) -> Result<(), UsernsError> {
    let pipe_err = |source| UsernsError::Setup {
        step: "creating a pipe",
        source,
    };
    let (go_r, go_w) = pipe2(OFlag::O_CLOEXEC).map_err(pipe_err)?;
    let (verdict_r, verdict_w) = pipe2(OFlag::O_CLOEXEC).map_err(pipe_err)?;
    let parent = Pid::this();
    // SAFETY: `enter` checked that this process has one thread, so the child may run
    // arbitrary code (allocate, spawn) after the fork.
    match unsafe { fork() }.map_err(|source| UsernsError::Setup {
        step: "forking the id mapper",
        source,
    })? {
        ForkResult::Child => {
            drop((go_w, verdict_r));
            let mut byte = [0u8; 1];
            let go = File::from(go_r).read(&mut byte).is_ok_and(|n| n == 1);
            let verdict = if go {
                run_tools(parent, tools)
            } else {
                String::new() // the parent gave up: write nothing
            };
            let _ = File::from(verdict_w).write_all(verdict.as_bytes());
            // SAFETY: _exit skips the parent's atexit handlers and buffered stdio, which
            // this forked copy must not run twice.
            unsafe { libc::_exit(0) }
        }
        ForkResult::Parent { child } => {
            drop((go_r, verdict_w));
            let unshared = unshare();
            let mut go = File::from(go_w);
            if unshared.is_ok() {
                let _ = go.write_all(b"g");
            }
            drop(go); // without the byte, the child exits at once
            let verdict = await_mapper(child, verdict_r);
            unshared?;
            verdict
        }
    }
}

/// Reads the id mapper's verdict (see [`run_tools`]) and reaps it.
fn await_mapper(child: Pid, verdict: std::os::fd::OwnedFd) -> Result<(), UsernsError> {
    let mut text = String::new();
    let read = File::from(verdict).read_to_string(&mut text);
    while let Err(Errno::EINTR) = waitpid(child, None) {}
    read.map_err(|_| UsernsError::Setup {
        step: "reading the id mapper's verdict",
        source: Errno::EIO,
    })?;
    match serde_json::from_str::<Option<[String; 5]>>(&text) {
        Ok(None) => Ok(()),
        Ok(Some([tool, pid, args, status, stderr])) => Err(UsernsError::MapTool {
            tool,
            pid: pid.parse().unwrap_or(0),
            args,
            status,
            stderr,
        }),
        Err(_) => Err(UsernsError::Setup {
            step: "the id mapper died without a verdict",
            source: Errno::EIO,
        }),
    }
}

/// In the forked child: runs each tool on `pid`; the verdict is JSON `null` or the
/// first failure as `[tool, pid, args, status, stderr]`.
fn run_tools(pid: Pid, tools: &[(PathBuf, String)]) -> String {
    for (tool, args) in tools {
        let out = Command::new(tool)
            .arg(pid.to_string())
            .args(args.split(' '))
            .output();
        let failure = match out {
            Ok(o) if o.status.success() => continue,
            Ok(o) => (
                o.status.to_string(),
                String::from_utf8_lossy(&o.stderr).trim().to_string(),
            ),
            Err(e) => ("not started".to_string(), e.to_string()),
        };
        let v = [
            tool.display().to_string(),
            pid.to_string(),
            args.clone(),
            failure.0,
            failure.1,
        ];
        return serde_json::to_string(&Some(v)).unwrap_or_default();
    }
    "null".into()
}

/// Takes uid and gid 0 of the namespace for real and, where the mapping allows it,
/// drops the user's supplementary groups (unmapped there, they would show as
/// `nogroup`).
fn become_root() -> Result<(), UsernsError> {
    let root = |source| UsernsError::Setup {
        step: "becoming root in the user namespace",
        source,
    };
    // EPERM when setgroups is denied (a single-ID mapping): the groups then stay.
    let _ = nix::unistd::setgroups(&[Gid::from_raw(0)]);
    nix::unistd::setresgid(Gid::from_raw(0), Gid::from_raw(0), Gid::from_raw(0)).map_err(root)?;
    nix::unistd::setresuid(Uid::from_raw(0), Uid::from_raw(0), Uid::from_raw(0)).map_err(root)
}

/// `newuidmap`'s arguments (`0 ID 1 1 START COUNT …`) and the ids mapped in all.
fn map_args(own: u32, ranges: &[(u64, u64)]) -> (String, u64) {
    let mut args = format!("0 {own} 1");
    let mut inside = 1u64;
    for (start, count) in ranges {
        args.push_str(&format!(" {inside} {start} {count}"));
        inside += count;
    }
    (args, inside)
}

/// The user's ranges in a subid file: lines `NAME_OR_UID:START:COUNT`.
fn ranges(file: &Path, name: Option<&str>, uid: u32) -> Vec<(u64, u64)> {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    parse_ranges(&text, name, uid)
}

fn parse_ranges(text: &str, name: Option<&str>, uid: u32) -> Vec<(u64, u64)> {
    let uid = uid.to_string();
    text.lines()
        .filter_map(|l| {
            let mut f = l.trim().split(':');
            let (who, start, count) = (f.next()?, f.next()?, f.next()?);
            let ours = Some(who) == name || who == uid;
            let (start, count) = (start.parse().ok()?, count.parse::<u64>().ok()?);
            (ours && count > 0).then_some((start, count))
        })
        .collect()
}

/// `name` in `$PATH`, or in /usr/bin and /usr/sbin (where Debian's uidmap puts them)
/// when `$PATH` is unset.
fn find_tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/usr/sbin:/bin".into());
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn max_user_namespaces() -> Option<u64> {
    std::fs::read_to_string("/proc/sys/user/max_user_namespaces")
        .ok()
        .and_then(|s| s.trim().parse().ok())
}

/// The number of threads this process has (0 when /proc cannot tell): namespaces and
/// forks that must happen single-threaded check it first.
pub(super) fn thread_count() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Threads:"))
                .and_then(|n| n.trim().parse().ok())
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_match_the_name_or_the_uid() {
        let text =
            "alice:100000:65536\nbob:165536:65536\n1001:300000:10\nbad line\nalice:400000:0\n";
        assert_eq!(
            parse_ranges(text, Some("alice"), 1000),
            vec![(100000, 65536)]
        );
        assert_eq!(parse_ranges(text, None, 1001), vec![(300000, 10)]);
        assert!(parse_ranges(text, Some("carol"), 1002).is_empty());
    }

    #[test]
    fn map_args_put_the_user_at_zero_and_the_ranges_after() {
        let (args, n) = map_args(1000, &[(100000, 65536), (300000, 10)]);
        assert_eq!(args, "0 1000 1 1 100000 65536 65537 300000 10");
        assert_eq!(n, 65547);
    }
}
