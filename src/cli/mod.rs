//! Command-line interface: clap structs, one file per subcommand, error printing.
//!
//! Exit codes: 0 ok, 2 usage (bad arguments, unknown image, bad reference),
//! 3 I/O or internal error. Errors print as `error: …` then one
//! `caused by: …` line per cause. A closed stdout (`kiln images | head`)
//! exits quietly.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::oci::{LoadError, Store, StoreError};
use crate::store::{LockMode, RootError, StoreLock};

pub mod build;
pub mod cache;
pub mod commit;
pub mod exec;
pub mod fsck;
pub mod images;
pub mod inspect;
pub mod lifecycle;
pub mod load;
pub mod log;
pub mod login;
pub mod logout;
pub mod logs;
pub mod parse;
pub mod progress;
pub mod prune;
pub mod ps;
pub mod pull;
pub mod push;
pub mod report;
pub mod rmi;
pub mod run;
pub mod save;
pub mod volume;

/// kiln: build OCI images from Dockerfiles, without a daemon.
#[derive(Debug, Parser)]
#[command(name = "kiln", version, about)]
pub struct Cli {
    /// The store directory [default: $XDG_DATA_HOME/kiln or ~/.local/share/kiln].
    #[arg(long, global = true, env = "KILN_ROOT", value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Log kiln's diagnostics to stderr at LEVEL (error, warn, info, debug,
    /// trace) or as `RUST_LOG` directives (`kiln::oci::registry=debug`)
    /// [default: $RUST_LOG, else warn].
    #[arg(long, global = true, value_name = "LEVEL")]
    pub log_level: Option<String>,
    /// Same as `--log-level debug`.
    #[arg(long, global = true)]
    pub debug: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
    /// The user namespace kiln entered to run without root (set by [`run()`]).
    #[arg(skip)]
    pub rootless: Option<crate::exec::Rootless>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Internal: the RUN sandbox helper kiln re-executes itself as.
    #[command(hide = true, name = "__sandbox")]
    Sandbox,
    /// Internal: the monitor of a detached container (`kiln run -d`).
    #[command(hide = true, name = "__monitor")]
    Monitor {
        /// The container's id.
        id: String,
    },
    /// Parse a Dockerfile and print BuildKit's AST dump (or `--json`).
    Parse(parse::ParseArgs),
    /// Build an image from a Dockerfile.
    Build(Box<build::BuildArgs>),
    /// Run a command in a new container from an image: in the foreground (`--rm`) or
    /// detached (`-d`).
    Run(Box<run::RunArgs>),
    /// List containers.
    Ps(ps::PsArgs),
    /// Print a container's output.
    Logs(logs::LogsArgs),
    /// Start stopped containers again (with their writable layer).
    Start(lifecycle::StartArgs),
    /// Stop running containers: the stop signal, then SIGKILL after a timeout.
    Stop(lifecycle::StopArgs),
    /// Stop, then start, containers.
    Restart(lifecycle::StopArgs),
    /// Run a command in a running container.
    Exec(Box<exec::ExecArgs>),
    /// Make an image of a stopped container's changes.
    Commit(commit::CommitArgs),
    /// Send a signal to running containers.
    Kill(lifecycle::KillArgs),
    /// Remove containers (their writable layer and log too).
    Rm(lifecycle::RmArgs),
    /// Manage volumes: create, ls, rm, inspect.
    Volume(volume::VolumeArgs),
    /// List images in the store.
    Images(images::ImagesArgs),
    /// Show an image's manifest and config, or a container's state, as JSON.
    Inspect(inspect::InspectArgs),
    /// Remove image names (blobs are reclaimed by `kiln prune`).
    Rmi(rmi::RmiArgs),
    /// Load images from an OCI archive, OCI layout dir or docker-archive.
    Load(load::LoadArgs),
    /// Save images as an OCI archive, OCI layout dir or docker-archive.
    Save(save::SaveArgs),
    /// Remove blobs no image uses, and stale temp files.
    Prune(prune::PruneArgs),
    /// Pull an image from a registry into the store.
    Pull(pull::PullArgs),
    /// Push a stored image to a registry.
    Push(push::PushArgs),
    /// The step cache: explain misses, export and import.
    Cache(cache::CacheArgs),
    /// Re-verify every blob, image, snapshot and cache record in the store.
    Fsck(fsck::FsckArgs),
    /// Save a registry credential where docker and podman look for it.
    Login(login::LoginArgs),
    /// Remove a registry credential.
    Logout(logout::LogoutArgs),
}

impl Cli {
    /// Opens the store `--root` (or the default) names.
    pub fn open_store(&self) -> anyhow::Result<Store> {
        Ok(crate::store::open(&self.store_root())?)
    }

    /// The store directory: `--root`, `$KILN_ROOT` or the default.
    pub fn store_root(&self) -> PathBuf {
        self.root.clone().unwrap_or_else(crate::store::default_root)
    }

    /// Opens the store and takes its lock in `mode` (saying so when it has to
    /// wait): shared for anything that writes blobs, exclusive for what removes
    /// them. The lock lasts as long as the returned guard.
    pub fn open_store_locked(&self, mode: LockMode) -> anyhow::Result<(Store, StoreLock)> {
        Ok(open_store_locked_at(&self.store_root(), mode)?)
    }
}

/// Opens the store at `root` and takes its lock in `mode`, saying so on
/// stderr when it has to wait.
fn open_store_locked_at(
    root: &std::path::Path,
    mode: LockMode,
) -> Result<(Store, StoreLock), RootError> {
    let store = crate::store::open(root)?;
    let lock = StoreLock::acquire(&store, mode, crate::store::LockWait::print)?;
    Ok((store, lock))
}

/// Runs the CLI and returns the process exit code.
pub fn run(mut cli: Cli) -> i32 {
    // First of all, while kiln has one thread: without root, become root of a user
    // namespace (see `exec::userns`), so that the store's snapshots can hold any owner.
    if writes_store(&cli.command) {
        match crate::exec::userns::enter() {
            Ok(rootless) => cli.rootless = rootless,
            Err(e) => return report(&anyhow::Error::new(e)),
        }
    }
    // The sandbox helper's stderr is the RUN's: it never logs.
    if !matches!(cli.command, Command::Sandbox) {
        let rust_log = std::env::var("RUST_LOG").ok();
        let d = log::directives(cli.log_level.as_deref(), cli.debug, rust_log.as_deref());
        if let Err(e) = log::init(&d) {
            eprintln!("error: {e}");
            return 2;
        }
    }
    let result = match &cli.command {
        Command::Parse(args) => return parse::run(args.clone()),
        Command::Build(a) => return build::run(&cli, a),
        Command::Run(a) => return run::run(&cli, a),
        Command::Fsck(a) => return fsck::run(&cli, a),
        Command::Login(a) => return login::run(&cli, a),
        Command::Sandbox => crate::exec::helper_main(),
        Command::Monitor { id } => return lifecycle::monitor(&cli, id),
        Command::Exec(a) => return exec::run(&cli, a),
        Command::Commit(a) => commit::run(&cli, a),
        Command::Ps(a) => ps::run(&cli, a),
        Command::Logs(a) => logs::run(&cli, a),
        Command::Start(a) => lifecycle::start(&cli, a),
        Command::Stop(a) => lifecycle::stop(&cli, a),
        Command::Restart(a) => lifecycle::restart(&cli, a),
        Command::Kill(a) => lifecycle::kill(&cli, a),
        Command::Rm(a) => lifecycle::rm(&cli, a),
        Command::Volume(a) => volume::run(&cli, a),
        Command::Images(a) => images::run(&cli, a),
        Command::Inspect(a) => inspect::run(&cli, a),
        Command::Rmi(a) => rmi::run(&cli, a),
        Command::Load(a) => load::run(&cli, a),
        Command::Save(a) => save::run(&cli, a),
        Command::Prune(a) => prune::run(&cli, a),
        Command::Pull(a) => pull::run(&cli, a),
        Command::Push(a) => push::run(&cli, a),
        Command::Cache(a) => cache::run(&cli, a),
        Command::Logout(a) => logout::run(&cli, a),
    };
    match result {
        Ok(()) => 0,
        Err(e) => report(&e),
    }
}

/// Whether `command` reads or writes the store's snapshots, whose files belong to
/// many uids: without root, it runs in kiln's user namespace. Parsing, logins and the
/// sandbox helper (started by kiln, already inside) do not.
fn writes_store(command: &Command) -> bool {
    !matches!(
        command,
        Command::Sandbox | Command::Parse(_) | Command::Login(_) | Command::Logout(_)
    )
}

/// The exit status for a command line clap rejects: docker's 125 for `kiln run`
/// (whose status is otherwise the container's), else 2.
pub fn usage_exit_code(args: &[std::ffi::OsString]) -> i32 {
    let mut rest = args.iter().skip(1).filter_map(|a| a.to_str());
    while let Some(a) = rest.next() {
        match a {
            "--root" | "--log-level" => {
                rest.next();
            }
            a if a.starts_with('-') => {}
            "run" => return run::EXIT_KILN,
            _ => return 2,
        }
    }
    2
}

/// Prints `e` with its causes and returns the exit code it deserves.
pub fn report(e: &anyhow::Error) -> i32 {
    let broken_pipe = e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    });
    if broken_pipe {
        return 0;
    }
    eprintln!("error: {e}");
    for cause in e.chain().skip(1) {
        eprintln!("caused by: {cause}");
    }
    exit_code(e)
}

/// A bad argument found after clap parsed the line (a `--format` template, a
/// `--tail` count): exit 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

fn exit_code(e: &anyhow::Error) -> i32 {
    use crate::container::StoredError;
    let usage = e.chain().any(|c| {
        c.is::<UsageError>()
            || matches!(
                c.downcast_ref::<StoredError>(),
                Some(
                    StoredError::NotFound(_)
                        | StoredError::Ambiguous(_)
                        | StoredError::BadName(_)
                        | StoredError::NotRunning(_)
                        | StoredError::Running(_)
                )
            )
            || matches!(
                c.downcast_ref::<StoreError>(),
                Some(
                    StoreError::NotFound { .. }
                        | StoreError::Ambiguous { .. }
                        | StoreError::Reference(_)
                )
            )
            || matches!(
                c.downcast_ref::<LoadError>(),
                Some(LoadError::TagMany { .. } | LoadError::UnknownFormat { .. })
            )
            || c.is::<crate::oci::ReferenceError>()
            || matches!(
                c.downcast_ref::<crate::oci::registry::RegistryError>(),
                Some(
                    crate::oci::registry::RegistryError::NoPlatform { .. }
                        | crate::oci::registry::RegistryError::PlatformMismatch { .. }
                )
            )
    });
    if usage {
        2
    } else {
        3
    }
}
