//! The one error type of the sandbox. Each variant names the step that failed and keeps
//! its cause. Errors raised inside the sandboxed child cross the process boundary as
//! JSON, so every child-side variant is serializable: its cause is an [`Errno`], sent as
//! its number. Parent-side variants (spawning, pipes) are never sent and are skipped by
//! serde.

use std::path::PathBuf;

use nix::errno::Errno;
use serde::{Deserialize, Serialize};

/// Why running a process in the sandbox failed (the process itself exiting non-zero is
/// not an error: see [`super::RunResult::status`]).
#[derive(Debug, thiserror::Error, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ExecError {
    /// An overlay path the mount options cannot carry (checked before any syscall).
    #[error("overlay path {path} must be absolute, without '..', ',' or ':'")]
    OverlayPath {
        /// The path.
        path: PathBuf,
    },
    /// An overlay was asked for with no lower dir.
    #[error("an overlay needs at least one lower dir")]
    NoLowerDir,
    /// The spec has no command.
    #[error("the command (argv) is empty")]
    EmptyArgv,
    /// A string passed to the kernel contains a NUL byte.
    #[error("{text:?} contains a NUL byte")]
    NulByte {
        /// The string.
        text: String,
    },
    /// The working directory is not an absolute container path.
    #[error("working directory {cwd:?} is not absolute")]
    RelativeCwd {
        /// The directory.
        cwd: String,
    },
    /// A discard-writes bind needs a directory to lay an overlay over.
    #[error("discard-writes bind source {path} is not a directory")]
    DiscardSourceNotDir {
        /// The source.
        path: PathBuf,
    },
    /// Overlay mount options would not fit in a page even with relative lower dirs.
    #[error(
        "overlay mount options are {len} bytes, over the {max}-byte limit ({layers} lower dirs)"
    )]
    OverlayOptionsTooLong {
        /// Length of the option string.
        len: usize,
        /// The kernel's limit.
        max: usize,
        /// How many lower dirs were asked for.
        layers: usize,
    },
    /// A namespace could not be created.
    #[error("unsharing namespaces {flags}")]
    Unshare {
        /// The namespaces, as clone flags.
        flags: String,
        /// The cause.
        #[serde(with = "errno_serde")]
        source: Errno,
    },
    /// Mounting the overlay root or a discard-writes overlay.
    #[error("mounting overlay on {target} (lower dirs under {source_dir})")]
    MountOverlay {
        /// Where the overlay was mounted.
        target: PathBuf,
        /// The directory lower dirs are relative to.
        source_dir: PathBuf,
        /// The cause.
        #[serde(with = "errno_serde")]
        source: Errno,
    },
    /// overlayfs refused the root's mount in a user namespace (rootless).
    #[error(
        "overlayfs refused to mount on {target} in kiln's user namespace (rootless needs \
         Linux 5.11 or later for overlayfs with `userxattr`, and a store on a filesystem \
         with user xattrs, such as ext4, xfs, btrfs or tmpfs from Linux 6.6): put the store \
         elsewhere with --root, or run kiln as root"
    )]
    RootlessOverlay {
        /// Where the overlay was mounted.
        target: PathBuf,
        /// The cause.
        #[serde(with = "errno_serde")]
        source: Errno,
    },
    /// `security=insecure` asked for in a user namespace.
    #[error(
        "RUN --security=insecure is not supported rootless: its devices (kvm, fuse, loop…) \
         cannot be created in a user namespace; run kiln as root for this step"
    )]
    RootlessInsecure,
    /// Any other mount (proc, dev, sys, binds, tmpfs) or remount.
    #[error("mounting {what} on {target}")]
    Mount {
        /// The mount, e.g. `proc` or `bind /host/path`.
        what: String,
        /// The mount point.
        target: PathBuf,
        /// The cause.
        #[serde(with = "errno_serde")]
        source: Errno,
    },
    /// Creating a mount point, device node, link or directory in the rootfs.
    #[error("creating {path}")]
    Create {
        /// The host path being created.
        path: PathBuf,
        /// The cause.
        #[serde(with = "errno_serde")]
        source: Errno,
    },
    /// Inspecting a path while resolving it inside the rootfs.
    #[error("resolving {path} inside the root")]
    Resolve {
        /// The container path.
        path: String,
        /// The cause.
        #[serde(with = "errno_serde")]
        source: Errno,
    },
    /// `pivot_root` into the overlay, or detaching the old root.
    #[error("pivoting into {new_root}")]
    PivotRoot {
        /// The new root.
        new_root: PathBuf,
        /// The cause.
        #[serde(with = "errno_serde")]
        source: Errno,
    },
    /// The step's user does not exist in kiln's single-ID user namespace.
    #[error(
        "user {user:?} ({uid}:{gid}) does not exist in kiln's user namespace: {}",
        super::userns::ADD_RANGES_HINT
    )]
    UnmappedUser {
        /// The user as the spec named it.
        user: String,
        /// Its uid.
        uid: u32,
        /// Its gid.
        gid: u32,
    },
    /// Setting the hostname.
    #[error("setting hostname {hostname:?}")]
    SetHostname {
        /// The hostname.
        hostname: String,
        /// The cause.
        #[serde(with = "errno_serde")]
        source: Errno,
    },
    /// Narrowing the command's capabilities.
    #[error("{step}")]
    Capabilities {
        /// What was being done.
        step: String,
        /// The cause.
        #[serde(with = "errno_serde")]
        source: Errno,
    },
    /// Compiling or installing the command's seccomp filter.
    #[error("seccomp filter: {step}")]
    Seccomp {
        /// What was being done.
        step: String,
        /// The cause.
        #[serde(with = "errno_serde")]
        source: Errno,
    },
    /// Bringing up the loopback interface of a new network namespace.
    #[error("bringing up loopback")]
    Loopback {
        /// The cause.
        #[serde(with = "errno_serde")]
        source: Errno,
    },
    /// The private network's program is not installed.
    #[error("{tool} was not found in PATH: the private network (kiln run's default, --network private) needs it; install Debian's {package} package, or run with --network none (loopback only) or --network host (the host's network)")]
    NetworkToolMissing {
        /// The program.
        tool: String,
        /// The package that has it.
        package: String,
    },
    /// Starting the private network failed before it was up.
    #[error("setting up the private network: {step}: {detail}")]
    NetworkSetup {
        /// What was being done.
        step: String,
        /// The cause, as text (it crosses the helper's pipe).
        detail: String,
    },
    /// The network program exited before it said the network was up.
    #[error("slirp4netns exited ({}) before the private network was up: {log}", .status.map_or("killed".to_string(), |s| format!("status {s}")))]
    NetworkNotReady {
        /// Its exit status.
        status: Option<i32>,
        /// The end of its log.
        log: String,
    },
    /// The sandbox init found the helper gone before the network was up.
    #[error("the private network was not set up (the helper gave up)")]
    NetworkAbandoned,
    /// A published port could not be forwarded.
    #[error("publishing {port}: {detail}")]
    PublishPort {
        /// The mapping, `IP:HOSTPORT -> PORT/PROTO`.
        port: String,
        /// Why.
        detail: String,
    },
    /// Ports were to be published without a private network.
    #[error("ports can be published only from a private network (--network private)")]
    PortsWithoutPrivateNetwork,
    /// A user or group name is not in the image's /etc/passwd or /etc/group.
    #[error("unable to find {kind} {name:?} in the image's {file}")]
    UnknownId {
        /// `user` or `group`.
        kind: String,
        /// The name asked for.
        name: String,
        /// The file searched.
        file: String,
    },
    /// Reading the image's /etc/passwd or /etc/group.
    #[error("reading {file}")]
    ReadIdFile {
        /// The file.
        file: String,
        /// The cause.
        #[serde(with = "errno_serde")]
        source: Errno,
    },
    /// Dropping to the step's user.
    #[error("switching to user {user:?} (uid {uid}, gid {gid})")]
    SetUser {
        /// The user as the spec wrote it.
        user: String,
        /// The resolved uid.
        uid: u32,
        /// The resolved gid.
        gid: u32,
        /// The cause.
        #[serde(with = "errno_serde")]
        source: Errno,
    },
    /// Creating or entering the working directory.
    #[error("changing to working directory {cwd}")]
    Chdir {
        /// The directory.
        cwd: String,
        /// The cause.
        #[serde(with = "errno_serde")]
        source: Errno,
    },
    /// Opening the file fed as stdin.
    #[error("opening stdin file {path}")]
    OpenStdin {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[serde(with = "errno_serde")]
        source: Errno,
    },
    /// The command could not be started.
    #[error("executing {argv0:?}")]
    Exec {
        /// The program.
        argv0: String,
        /// The cause.
        #[serde(with = "errno_serde")]
        source: Errno,
    },
    /// A process-level step of the helper (fork, pipe, wait, dup).
    #[error("sandbox helper: {step}")]
    Helper {
        /// The step, e.g. `forking the sandbox init`.
        step: String,
        /// The cause.
        #[serde(with = "errno_serde")]
        source: Errno,
    },
    /// Removing a mount point the sandbox created from the upper dir.
    #[error("removing mount point {path} from the upper dir")]
    RemoveMountPoint {
        /// The host path.
        path: PathBuf,
        /// The cause.
        #[serde(with = "errno_serde")]
        source: Errno,
    },
    /// The helper is multi-threaded, so forking it is unsafe.
    #[error("sandbox helper has {threads} threads; it must be single-threaded to fork")]
    NotSingleThreaded {
        /// Threads seen in /proc/self/status.
        threads: usize,
    },
    /// Starting the helper process.
    #[error("starting sandbox helper {exe}")]
    #[serde(skip)]
    SpawnHelper {
        /// The executable.
        exe: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Reading the host's resolver configuration to generate the sandbox's.
    #[error("reading {path}")]
    #[serde(skip)]
    ReadResolvConf {
        /// The host file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A bind mount's source cannot be resolved on the host.
    #[error("resolving bind mount source {path}")]
    #[serde(skip)]
    BindSource {
        /// The source as given.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Talking to the helper over its pipes.
    #[error("talking to the sandbox helper: {step}")]
    #[serde(skip)]
    Pipe {
        /// What was being sent or read.
        step: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A message from the helper or the child did not decode, or the spec did not.
    #[error("decoding {what}")]
    #[serde(skip)]
    Protocol {
        /// The message.
        what: String,
        /// The cause.
        source: serde_json::Error,
    },
    /// The helper exited without reporting a result.
    #[error("sandbox helper exited without a report (status {status})")]
    HelperDied {
        /// Its exit status as the shell shows it.
        status: i32,
    },
    /// `chroot(2)` into the step's root failed (`--isolation=chroot`).
    #[error("chroot into {root}")]
    Chroot {
        /// The root directory.
        root: PathBuf,
        /// The cause.
        #[serde(with = "errno_serde")]
        source: Errno,
    },
    /// A chroot run was handed something only the namespace sandbox can do.
    #[error("the chroot run got {what}, which only the namespace sandbox can give")]
    NotForChroot {
        /// What it was handed, e.g. `extra mounts`.
        what: String,
    },
    /// The chroot isolation needs capabilities this process does not have.
    #[error("--isolation=chroot needs the capabilities {}, which kiln does not have here", .missing.join(", "))]
    MissingCapabilities {
        /// Their names, `CAP_…`.
        missing: Vec<String>,
    },
}

impl ExecError {
    /// Wraps an `io::Error` from a child-side file read as an errno.
    pub(crate) fn errno_of(err: &std::io::Error) -> Errno {
        err.raw_os_error().map_or(Errno::EIO, Errno::from_raw)
    }
}

/// Serde for [`Errno`] as its number.
mod errno_serde {
    use nix::errno::Errno;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(errno: &Errno, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i32(*errno as i32)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Errno, D::Error> {
        i32::deserialize(d).map(Errno::from_raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn child_errors_cross_the_pipe_with_their_cause() {
        let err = ExecError::MountOverlay {
            target: "/r".into(),
            source_dir: "/s".into(),
            source: Errno::EINVAL,
        };
        let json = serde_json::to_string(&err).unwrap();
        let back: ExecError = serde_json::from_str(&json).unwrap();
        match back {
            ExecError::MountOverlay { source, .. } => assert_eq!(source, Errno::EINVAL),
            other => panic!("wrong variant {other:?}"),
        }
        let io = ExecError::Pipe {
            step: "x".into(),
            source: std::io::Error::other("y"),
        };
        assert!(serde_json::to_string(&io).is_err());
    }
}
