//! RUN: the stage's snapshot dirs become the overlay's lower dirs, a fresh
//! upper dir under the store's `tmp/` receives the writes, and the plan's
//! mounts become sandbox mounts (cache dirs under `cache/mounts/`, bind
//! sources materialised from the context or a stage, tmpfs, secrets, heredoc
//! scripts, SSH agent relays). Output streams to the step's progress vertex.
//!
//! Invariants: nothing but the command's own writes reaches the upper dir
//! (exec removes its mount points); a secret's content and an agent socket's
//! path never reach a layer or a cache key; every temp dir made for the run
//! is removed and every agent relay stopped afterwards.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::exec::{self, ExecError, Network, Output, RunSpec};
use crate::oci::Store;
use crate::plan::{NetworkMode, RunOp, Security};

use super::copy::CopyError;
use super::event::{Stream, Vertex};
use super::snapshot::{remove_tree, staging_dir, SnapshotError};
use super::source::Source;
use super::ssh::AgentRelay;

mod cache_mount;
mod chroot;
mod isolation;
pub use isolation::Isolation;
use isolation::{choose, Chosen};
mod mounts;
use mounts::{files_mount, materialise, prepare_mount};

/// Where a `--secret` comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// `src=FILE`.
    File(PathBuf),
    /// `env=VAR`: the value of the variable when kiln started.
    Env(String),
}

/// `kiln build`'s sandbox flags, the same for every RUN of the build.
// COMPAT(buildkit): none of them is in a step key (kiln follows the brief's
// reading of BuildKit's ExecOp cache map): a rebuild with other extra hosts
// reuses the cached steps.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SandboxOptions {
    /// `--add-host`: extra `/etc/hosts` lines, in order.
    pub extra_hosts: Vec<ExtraHost>,
    /// `--ulimit`: resource limits, one per resource.
    pub ulimits: Vec<exec::Ulimit>,
    /// `--shm-size`: /dev/shm's size in bytes (the sandbox's 64 MiB when absent).
    pub shm_size: Option<u64>,
    /// `--isolation`: the namespace sandbox, a chroot, or whichever works here.
    pub isolation: Isolation,
}

/// One `--add-host HOST:IP`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraHost {
    /// The name.
    pub host: String,
    /// Its address.
    pub ip: std::net::IpAddr,
}

impl ExtraHost {
    /// Its /etc/hosts line, `IP\tHOST\n`: the one form a RUN's and a container's
    /// hosts files give it.
    pub fn hosts_line(&self) -> String {
        format!("{}\t{}\n", self.ip, self.host)
    }
}

/// Why a RUN failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The command exited non-zero.
    #[error("process {command:?} did not complete successfully{}: exit code: {status}{note}", on_platform(.platform))]
    Failed {
        /// The argv joined with spaces.
        command: String,
        /// The platform it ran for, named in a multi-platform build or
        /// under emulation (`linux/arm64`).
        platform: Option<String>,
        /// The exit code (128 + signal).
        status: i32,
        /// Empty, or (rootless with a single-ID mapping, where any other owner fails
        /// with EINVAL) how to give kiln more ids.
        note: String,
        /// The last lines the command printed (stdout and stderr), for the report.
        tail: Vec<String>,
    },
    /// The sandbox could not run it.
    #[error("running in the sandbox")]
    Exec(#[from] ExecError),
    /// A foreign platform's RUN with no emulator to run it.
    #[error(transparent)]
    Emulation(#[from] super::emulation::EmulationError),
    /// Preparing a mount or the upper dir.
    #[error("{step} {path}")]
    Io {
        /// What was being done.
        step: &'static str,
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A temp dir under the store.
    #[error("preparing a temp dir")]
    Temp(#[from] SnapshotError),
    /// Materialising a bind mount's source.
    #[error("preparing the bind mount at {target}")]
    BindSource {
        /// The mount point.
        target: String,
        /// The cause.
        #[source]
        source: Box<CopyError>,
    },
    /// A required SSH agent was not given with `--ssh`.
    // COMPAT(buildkit): its wording, from the solver's ssh mount.
    #[error("no SSH key {id:?} forwarded from the client (use --ssh {id}=SOCKET, or --ssh default for $SSH_AUTH_SOCK)")]
    MissingSsh {
        /// The ssh id.
        id: String,
    },
    /// Listening on the socket that relays to an SSH agent.
    #[error("forwarding SSH agent {id:?} at {target}")]
    SshRelay {
        /// The ssh id.
        id: String,
        /// The mount point.
        target: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Filling a new cache mount from its `from` tree.
    #[error("seeding the cache mount at {target} from {source_path}")]
    CacheSeed {
        /// The mount point.
        target: String,
        /// The `source` path in the `from` tree.
        source_path: String,
        /// The cause.
        #[source]
        source: Box<CopyError>,
    },
    /// A cache mount's `source` in its `from` tree is not a directory.
    #[error("cache mount source {source_path} is not a directory in its from tree")]
    CacheSeedNotDir {
        /// The `source` path.
        source_path: String,
    },
    /// A cache mount's `source` is not in its `from` tree.
    #[error("cache mount source {source_path} not found in its from tree")]
    CacheSeedMissing {
        /// The `source` path.
        source_path: String,
    },
    /// A required secret was not given with `--secret`.
    #[error("secret {id} is required but was not provided (use --secret id={id},src=FILE)")]
    MissingSecret {
        /// The secret id.
        id: String,
    },
    /// Reading a secret's source.
    #[error("reading secret {id}")]
    ReadSecret {
        /// The secret id.
        id: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Neither isolation works here (`--isolation=auto`).
    #[error("no isolation for RUN works here: kiln's namespace sandbox cannot start (see the cause) and --isolation=chroot needs {}, which kiln does not have", .missing.join(", "))]
    NoIsolation {
        /// Why the sandbox cannot start.
        #[source]
        refused: std::sync::Arc<ExecError>,
        /// The capabilities chroot needs and lacks.
        missing: Vec<String>,
    },
    /// Something of the RUN the chroot isolation cannot give.
    #[error("{what} cannot be honoured with --isolation=chroot: {why}")]
    ChrootRefuses {
        /// The feature, e.g. `RUN --network=none`.
        what: String,
        /// Why, and what to do.
        why: &'static str,
    },
    /// Copying the step's root or diffing it (`--isolation=chroot`).
    #[error("--isolation=chroot")]
    CopyUp(#[from] super::copyup::CopyUpError),
    /// A RUN feature kiln does not support yet, named.
    #[error("{what} is not supported yet")]
    Unsupported {
        /// The feature.
        what: String,
    },
}

fn ioerr<'a>(step: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> RunError + 'a {
    move |source| RunError::Io {
        step,
        path: path.into(),
        source,
    }
}

/// ` on PLATFORM` when a failure names its platform.
fn on_platform(platform: &Option<String>) -> String {
    platform
        .as_ref()
        .map_or_else(String::new, |p| format!(" on {p}"))
}

/// What a RUN needs from the build around it.
pub struct RunContext<'a> {
    /// The stage's platform: a foreign one runs under QEMU user emulation.
    pub platform: &'a crate::oci::Platform,
    /// Whether a failure names the platform (a multi-platform build).
    pub name_platform: bool,
    /// The store (temp dirs, cache mounts).
    pub store: &'a Store,
    /// The kiln binary to re-execute as the sandbox helper.
    pub exe: &'a Path,
    /// The stage's snapshot dirs, top-most first (empty for scratch).
    pub lower: Vec<PathBuf>,
    /// `--secret`s by id.
    pub secrets: &'a BTreeMap<String, SecretSource>,
    /// `--ssh` agent sockets by id.
    pub ssh: &'a BTreeMap<String, PathBuf>,
    /// For each of the op's mounts, the tree a bind/cache `from` reads.
    pub mount_sources: Vec<Option<Source>>,
    /// `--add-host` and the other sandbox flags.
    pub sandbox: &'a SandboxOptions,
}

/// Temp dirs made for one run, removed when it ends whatever happened.
/// Also holds the cache-mount locks of the run (released on drop) and its
/// SSH agent relays (stopped on drop).
#[derive(Default)]
struct Temps {
    dirs: Vec<PathBuf>,
    locks: Vec<fs::File>,
    relays: Vec<AgentRelay>,
}

impl Drop for Temps {
    fn drop(&mut self) {
        // Before their dirs go: a relay stops by connecting to its socket.
        self.relays.clear();
        for d in &self.dirs {
            // Leftovers under tmp/ are harmless and cleaned by `kiln prune`.
            let _ = remove_tree(d);
        }
    }
}

/// Runs `op`; returns the upper dir holding its writes (the caller commits
/// it as a layer and owns removing it).
/// `RUN --security=insecure` and `--network=host` are checked against
/// `--allow` before the build starts (see `super::entitlements`).
pub fn run_step(cx: &RunContext<'_>, op: &RunOp, vertex: &Vertex) -> Result<PathBuf, RunError> {
    if !super::emulation::is_native(cx.platform) {
        super::emulation::check(cx.platform)?;
    }
    if choose(cx.sandbox.isolation, cx.store, cx.exe, vertex)? == Chosen::Chroot {
        return chroot::run_step(cx, op, vertex);
    }
    let mut temps = Temps::default();
    let mut lower = cx.lower.clone();
    if lower.is_empty() {
        // overlayfs needs a lower dir; scratch has none.
        let empty = staging_dir(cx.store, "empty-")?;
        temps.dirs.push(empty.clone());
        lower.push(empty);
    }
    let mut env = op.env.clone();
    env.extend(op.proxy_env.iter().cloned());
    let mut mounts = Vec::new();
    for (m, src) in op.mounts.iter().zip(&cx.mount_sources) {
        if let Some(mount) = prepare_mount(cx, m, src.as_ref(), &mut env, &mut temps)? {
            mounts.push(mount);
        }
    }
    if !op.files.is_empty() {
        mounts.push(files_mount(cx.store, op, &mut temps)?);
    }
    let hosts_file = Some(hosts_file(cx, &mut temps)?);
    let resolv_conf = Some(resolv_conf(cx, op.network, &mut temps)?);
    let upper = staging_dir(cx.store, "upper-")?;
    let work = staging_dir(cx.store, "work-")?;
    temps.dirs.push(work.clone());
    let spec = RunSpec {
        lower_dirs: lower,
        upper_dir: upper.clone(),
        work_dir: work,
        argv: op.argv.clone(),
        env,
        cwd: op.workdir.clone(),
        user: op.user.clone(),
        hostname: HOSTNAME.into(),
        network: match op.network {
            NetworkMode::None => Network::None,
            NetworkMode::Default | NetworkMode::Host => Network::Host,
        },
        mounts,
        stdin: None,
        privileged: op.security == Security::Insecure,
        hosts_file,
        resolv_conf,
        ulimits: cx.sandbox.ulimits.clone(),
        shm_size: cx.sandbox.shm_size,
        capabilities: None,
        read_only_root: false,
        foreground: None,
        ports: Vec::new(),
    };
    match collect(cx, op, vertex, |out| exec::run(&spec, cx.exe, out)) {
        Ok(()) => Ok(upper),
        Err(e) => {
            let _ = remove_tree(&upper);
            Err(e)
        }
    }
}

/// Starts the command with `start`, streaming its output to `vertex`: `Ok` when it
/// exits 0, else why not (with the last lines it printed).
fn collect(
    cx: &RunContext<'_>,
    op: &RunOp,
    vertex: &Vertex,
    start: impl FnOnce(&mut dyn FnMut(Output<'_>)) -> Result<exec::RunResult, ExecError>,
) -> Result<(), RunError> {
    let mut tail = OutputTail::default();
    let mut on_output = |o: Output<'_>| match o {
        Output::Stdout(b) => {
            tail.push(b);
            vertex.log(Stream::Stdout, b)
        }
        Output::Stderr(b) => {
            tail.push(b);
            vertex.log(Stream::Stderr, b)
        }
    };
    match start(&mut on_output) {
        Ok(r) if r.status == 0 => Ok(()),
        Ok(r) => Err(RunError::Failed {
            command: op.argv.join(" "),
            platform: (cx.name_platform || !super::emulation::is_native(cx.platform))
                .then(|| cx.platform.to_specifier()),
            status: r.status,
            note: if exec::userns::single_id_mapping() {
                format!(
                    " (if it set another owner or user: {})",
                    exec::userns::ADD_RANGES_HINT
                )
            } else {
                String::new()
            },
            tail: tail.lines(),
        }),
        Err(e) => Err(e.into()),
    }
}

/// The sandbox's host name.
// COMPAT(buildkit): its sandboxes are named this.
const HOSTNAME: &str = "buildkitsandbox";

/// The run's /etc/hosts: BuildKit's two lines for localhost and the sandbox's
/// name, then an `IP\tHOST` line per `--add-host`. Never the host's own file,
/// whose entries are the machine's, not the build's.
// COMPAT(buildkit): `oci.GetHostsFile` writes `initHostsFile(hostname)` and the
// extra hosts, whatever the network mode.
fn hosts_file(cx: &RunContext<'_>, temps: &mut Temps) -> Result<PathBuf, RunError> {
    let mut text =
        format!("127.0.0.1\tlocalhost {HOSTNAME}\n::1\tlocalhost ip6-localhost ip6-loopback\n");
    for h in &cx.sandbox.extra_hosts {
        text.push_str(&h.hosts_line());
    }
    let dir = staging_dir(cx.store, "hosts-")?;
    temps.dirs.push(dir.clone());
    let file = dir.join("hosts");
    fs::write(&file, text).map_err(ioerr("writing", &file))?;
    Ok(file)
}

/// The run's /etc/resolv.conf, generated from the host's (see
/// [`exec::resolvconf`]): loopback nameservers dropped unless the RUN has the
/// host's network. A file in the run's temp dir, bound read-only, so a RUN can
/// neither change the host's file nor leave its own in the layer.
// COMPAT(buildkit): `GetResolvConf` filters for every mode but `pb.NetMode_HOST`:
// the default mode (which kiln runs in the host's namespace) and `none` too.
fn resolv_conf(
    cx: &RunContext<'_>,
    network: NetworkMode,
    temps: &mut Temps,
) -> Result<PathBuf, RunError> {
    let text = exec::resolvconf::for_sandbox(network == NetworkMode::Host)?;
    let dir = staging_dir(cx.store, "resolv-")?;
    temps.dirs.push(dir.clone());
    let file = dir.join("resolv.conf");
    fs::write(&file, text).map_err(ioerr("writing", &file))?;
    Ok(file)
}

/// The last [`OutputTail::KEEP`] lines of a command's output, bounded in
/// memory however much it prints.
#[derive(Default)]
struct OutputTail {
    lines: std::collections::VecDeque<String>,
    partial: Vec<u8>,
}

impl OutputTail {
    const KEEP: usize = 10;

    fn push(&mut self, data: &[u8]) {
        for &b in data {
            if b == b'\n' {
                let line = String::from_utf8_lossy(&self.partial).into_owned();
                self.partial.clear();
                self.lines.push_back(line);
                if self.lines.len() > Self::KEEP {
                    self.lines.pop_front();
                }
            } else if self.partial.len() < 4096 {
                self.partial.push(b);
            }
        }
    }

    fn lines(mut self) -> Vec<String> {
        if !self.partial.is_empty() {
            self.push(b"\n");
        }
        self.lines.into()
    }
}
