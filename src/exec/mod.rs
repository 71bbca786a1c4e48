//! The sandbox that runs a process over an overlay root. Knows nothing of Dockerfiles.
//!
//! [`run`] re-executes kiln as a single-threaded helper (`kiln __sandbox`, see
//! [`helper_main`]) and sends it the [`RunSpec`] as JSON on its stdin. The helper
//! unshares a PID namespace and forks the sandbox init (PID 1), which unshares mount,
//! UTS, IPC (and, for [`Network::None`], network) namespaces, mounts the overlay root,
//! /proc, a minimal /dev (its /dev/shm of the spec's size), read-only /sys, the host's
//! resolv.conf and hosts (or the spec's hosts file), the spec's extra mounts, masks and
//! write-protects containerd's default /proc and /sys paths, pivots into the root, sets
//! the spec's resource limits, narrows the capability bounding set to Docker's default
//! (this and the masking unless [`RunSpec::privileged`]), drops to the user and execs the
//! command. Setup failures come back as typed [`ExecError`]s over a close-on-exec pipe;
//! the helper sends its verdict to kiln over fd 3. The command's stdout and stderr
//! stream to the caller as it runs; a foreground run ([`Foreground`], `kiln run`)
//! gets kiln's stdio itself, and kiln's signals (see `forward.rs`).
//!
//! Invariants:
//! - After [`run`] returns, the upper dir holds only what the command wrote: every mount
//!   point the sandbox created in the overlay (and each existing directory overlay copied
//!   up only to hold one) is removed by the helper once the command has exited. Mount
//!   targets that exist in the image are used as they are and never recorded.
//! - The work dir is the sandbox's scratch space for the run (`root/`, the root's mount
//!   point; `w/`, overlay's work dir; `l/`, short links to lower dirs when their names do
//!   not fit in a page; `empty/`, the lower dir of a root with none); the caller discards
//!   it afterwards. If setup fails, the caller discards the upper dir too.
//! - Unless [`RunSpec::privileged`], every mount the command can write to or read from
//!   (the overlay root, /dev, the extra mounts) is `nodev`: a device node it makes, or
//!   finds in an image or a mount source, does not open. Its devices (null, zero, full,
//!   random, urandom, tty) are bind mounts of the host's; ptmx and pts its own devpts.
//! - This module is the only place in kiln with `unsafe`, namespaces and mounts.

#![allow(unsafe_code)] // the sandbox: the one module that may (lib.rs denies it elsewhere)

mod caps;
mod cleanup;
mod error;
mod forward;
mod helper;
mod mountpoint;
mod overlay;
mod parent;
mod protocol;
mod rootfs;
mod seccomp;
mod sys;
mod user;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use caps::{by_name as capability, DEFAULT as DEFAULT_CAPABILITIES, NAMES as CAPABILITY_NAMES};
pub use error::ExecError;
pub use helper::helper_main;
pub use parent::run;

/// Everything the sandbox needs to run one command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunSpec {
    /// Read-only lower dirs of the root overlay, top-most first. Absolute; sharing a
    /// parent dir keeps the overlay options short (they are passed relative to it).
    pub lower_dirs: Vec<PathBuf>,
    /// Fresh, empty directory that receives the command's writes and becomes the layer.
    pub upper_dir: PathBuf,
    /// Scratch directory on the same filesystem as `upper_dir`.
    pub work_dir: PathBuf,
    /// The command, already final (shell applied by the caller). `argv[0]` without a
    /// `/` is looked up in the `PATH` of `env`.
    pub argv: Vec<String>,
    /// `KEY=VALUE` pairs, final.
    pub env: Vec<String>,
    /// Working directory in the container; created (in the overlay) if missing.
    pub cwd: String,
    /// `""`, `name`, `uid`, `name:group` or `uid:gid`, resolved in the image.
    pub user: String,
    /// The sandbox's hostname.
    pub hostname: String,
    /// The network the command sees.
    pub network: Network,
    /// Extra mounts, applied after the system mounts, in order.
    pub mounts: Vec<Mount>,
    /// A host file fed as stdin (heredoc scripts); `/dev/null` when absent.
    pub stdin: Option<PathBuf>,
    /// Run with every capability, a writable /sys, no masked or read-only /proc paths
    /// and the extra devices (fuse, kmsg, kvm, net/tun, loop) of BuildKit's
    /// `security.insecure`. Otherwise the command's capability bounding set is Docker's
    /// default 14 and containerd's masked and read-only paths apply.
    #[serde(default)]
    pub privileged: bool,
    /// A host file bound read-only at /etc/hosts instead of the host's own (the builder
    /// always writes one: BuildKit's two lines plus `--add-host`'s).
    #[serde(default)]
    pub hosts_file: Option<PathBuf>,
    /// Resource limits set just before the command is exec'd, in order.
    #[serde(default)]
    pub ulimits: Vec<Ulimit>,
    /// The size of /dev/shm's tmpfs in bytes; 64 MiB (Docker's default) when absent.
    #[serde(default)]
    pub shm_size: Option<u64>,
    /// The capability bounding set (capability numbers) unless [`RunSpec::privileged`];
    /// Docker's default 14 ([`DEFAULT_CAPABILITIES`]) when absent. The seccomp filter
    /// applies whatever the set: new namespaces and mounts stay refused.
    #[serde(default)]
    pub capabilities: Option<Vec<u32>>,
    /// Remount the root read-only once every mount is in place (`kiln run
    /// --read-only`); the extra mounts, /dev and /proc keep their own flags.
    #[serde(default)]
    pub read_only_root: bool,
    /// Run a container in the foreground (`kiln run`) instead of a build step: the
    /// command gets kiln's stdout and stderr themselves (`on_output` is never called),
    /// and SIGINT/SIGTERM to kiln stop it.
    #[serde(default)]
    pub foreground: Option<Foreground>,
}

/// How a foreground container (`kiln run`) meets the terminal and signals.
///
/// kiln forwards SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 to the helper,
/// which runs in a session of its own (a Ctrl-C on the terminal reaches kiln only). The
/// helper turns SIGINT and SIGTERM into a stop, as `docker stop` does: `stop_signal`
/// to the command, then SIGKILL after `stop_timeout` seconds (at once when 0); the
/// others it passes on unchanged. The command is PID 1 of its namespace, so a signal it
/// has no handler for does nothing, exactly as in docker without `--init`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Foreground {
    /// The command reads kiln's own stdin (`-i`); otherwise `/dev/null`.
    pub stdin: bool,
    /// The signal a stop sends first, as its number.
    pub stop_signal: i32,
    /// Seconds from the stop signal to SIGKILL.
    pub stop_timeout: u32,
    /// `--init`: PID 1 stays a small init that passes every forwarded signal on to the
    /// command (so a stop reaches it with no handler of its own) and reaps orphans, as
    /// docker's tini does; it exits with the command's status.
    #[serde(default)]
    pub init: bool,
}

/// One resource limit (`setrlimit`); `u64::MAX` is unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ulimit {
    /// Which resource.
    pub resource: Resource,
    /// The soft limit.
    pub soft: u64,
    /// The hard limit.
    pub hard: u64,
}

/// The resources `docker --ulimit` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)] // each is the RLIMIT_ of its name
pub enum Resource {
    Core,
    Cpu,
    Data,
    Fsize,
    Locks,
    Memlock,
    Msgqueue,
    Nice,
    Nofile,
    Nproc,
    Rss,
    Rtprio,
    Rttime,
    Sigpending,
    Stack,
}

impl Resource {
    /// Every resource with docker's name for it.
    pub const ALL: [(&'static str, Resource); 15] = [
        ("core", Self::Core),
        ("cpu", Self::Cpu),
        ("data", Self::Data),
        ("fsize", Self::Fsize),
        ("locks", Self::Locks),
        ("memlock", Self::Memlock),
        ("msgqueue", Self::Msgqueue),
        ("nice", Self::Nice),
        ("nofile", Self::Nofile),
        ("nproc", Self::Nproc),
        ("rss", Self::Rss),
        ("rtprio", Self::Rtprio),
        ("rttime", Self::Rttime),
        ("sigpending", Self::Sigpending),
        ("stack", Self::Stack),
    ];

    /// The resource docker calls `name`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.iter().find(|(n, _)| *n == name).map(|(_, r)| *r)
    }

    /// Docker's name for it.
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, r)| *r == self)
            .map_or("", |(n, _)| n)
    }
}

/// The network a command sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Network {
    /// The host's network namespace.
    Host,
    /// A new network namespace with only loopback, up.
    None,
}

/// An extra mount inside the sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mount {
    /// Container path; relative paths are taken from `cwd`. Created if missing.
    pub target: String,
    /// What is mounted.
    pub kind: MountKind,
}

/// The kinds of extra mount.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MountKind {
    /// A bind mount of a host file or directory.
    Bind {
        /// The host path.
        source: PathBuf,
        /// Mounted read-only.
        readonly: bool,
    },
    /// A bind whose writes are discarded: an overlay with its own temp upper over `source`.
    BindDiscardWrites {
        /// The host directory.
        source: PathBuf,
        /// A host directory on one filesystem for the overlay's upper and work dirs.
        scratch: PathBuf,
    },
    /// A secret: a read-only file on a private tmpfs of the sandbox's mount namespace,
    /// created with its final owner and mode before any byte is written. The bytes
    /// travel to the helper in the spec (over its stdin pipe) and never touch a disk;
    /// the tmpfs goes with the namespace when the run ends or the helper dies.
    Secret {
        /// The content.
        data: Vec<u8>,
        /// The file's mode.
        mode: u32,
        /// The file's owner.
        uid: u32,
        /// The file's group.
        gid: u32,
    },
    /// A fresh tmpfs.
    Tmpfs {
        /// Size limit in bytes; the kernel default (half of RAM) when absent.
        size: Option<u64>,
    },
}

/// A chunk of the command's output, as it arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output<'a> {
    /// Bytes from stdout.
    Stdout(&'a [u8]),
    /// Bytes from stderr.
    Stderr(&'a [u8]),
}

/// How the command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunResult {
    /// The exit code, or 128 + the signal number if a signal killed it.
    pub status: i32,
}
