//! `kiln build`: docker-build-compatible flags resolved into a
//! `builder::Build`, which one library call executes (cache import, build,
//! cache export, outputs, `--iidfile`/`--metadata-file`) while its progress
//! is rendered on a thread; then the error is printed or, with no `-t` and
//! no `-o` (the image still lands in the store) or `-q`, the image ID.

use std::io::Read;
use std::path::PathBuf;
use std::sync::mpsc;

use clap::Args;

pub(in crate::cli) mod annotations;
pub(in crate::cli) mod args;
mod call;
mod docker_flags;
mod ssh_keys;

use args::{resolve, Resolved};

use super::progress::{self, ProgressMode};
use super::report::{render_build_error, render_error, EXIT_INTERNAL, EXIT_USAGE};
use super::Cli;
use crate::builder::{self, BuildOptions, ExecuteError, OutputSpec, Progress, StreamedContext};
use crate::oci::Store;
use crate::store::{LockMode, StoreLock};

/// Arguments of `kiln build`.
#[derive(Debug, Args)]
pub struct BuildArgs {
    /// The Dockerfile (`-` reads standard input) [default: CONTEXT/Dockerfile].
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Name the image (repeatable).
    #[arg(short = 't', long = "tag", value_name = "NAME")]
    pub tags: Vec<String>,
    /// Set a build argument (`NAME=VALUE`, or `NAME` to take it from the environment).
    #[arg(long = "build-arg", value_name = "NAME[=VALUE]")]
    pub build_args: Vec<String>,
    /// The stage to build.
    #[arg(long)]
    pub target: Option<String>,
    /// Add a label to the image (`NAME=VALUE`).
    #[arg(long = "label", value_name = "NAME=VALUE")]
    pub labels: Vec<String>,
    /// Annotate the image manifest (`[manifest[PLATFORM]:]KEY=VALUE`, buildx's syntax).
    #[arg(long = "annotation", value_name = "[TYPE:]KEY=VALUE")]
    pub annotations: Vec<String>,
    /// The target platforms, comma-separated (`linux/amd64,linux/arm64`):
    /// several make an image index; RUN on a foreign one needs QEMU.
    #[arg(long)]
    pub platform: Option<String>,
    /// Output (`type=oci|docker|local|tar|image|registry,dest=…`), repeatable.
    #[arg(short = 'o', long = "output", value_name = "SPEC")]
    pub outputs: Vec<String>,
    /// Progress output.
    #[arg(long, value_enum, default_value = "auto")]
    pub progress: ProgressMode,
    /// No progress; print the image ID on success.
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Write the image ID to this file.
    #[arg(long, value_name = "FILE")]
    pub iidfile: Option<PathBuf>,
    /// Write build result metadata (JSON) to this file.
    #[arg(long = "metadata-file", value_name = "FILE")]
    pub metadata_file: Option<PathBuf>,
    /// Look up no cached steps (every step runs; its result is still cached).
    #[arg(long = "no-cache")]
    pub no_cache: bool,
    /// Layer compression: gzip, zstd or uncompressed.
    #[arg(long, default_value = "gzip")]
    pub compression: String,
    /// Shorthand for `--output=type=registry` (push to every `-t` name).
    #[arg(long)]
    pub push: bool,
    /// Shorthand for `--output=type=image`: the image goes to the local store
    /// (docker's `--load` loads it into docker's; kiln's store is where `-t` names go).
    #[arg(long)]
    pub load: bool,
    /// When to pull base images: `--pull` (always, so a moved tag is seen),
    /// `--pull=missing` (the default) or `--pull=never`.
    #[arg(long, value_enum, value_name = "POLICY", num_args = 0..=1, require_equals = true,
          default_value = "missing", default_missing_value = "always")]
    pub pull: PullArg,
    /// Registry flags (`--insecure-registry`).
    #[command(flatten)]
    pub registry: super::pull::RegistryArgs,
    /// A secret for `RUN --mount=type=secret` (`id=ID,src=FILE` or `id=ID,env=VAR`).
    #[arg(long = "secret", value_name = "SPEC")]
    pub secrets: Vec<String>,
    /// An SSH agent for `RUN --mount=type=ssh`: `default` ($SSH_AUTH_SOCK), `ID=SOCKET`,
    /// or `ID=KEYFILE[,KEYFILE]` (served by an ssh-agent of the build's own); repeatable.
    #[arg(long = "ssh", value_name = "ID[=SOCKET|KEYFILE]")]
    pub ssh: Vec<String>,
    /// Grant an entitlement: `network.host` (`RUN --network=host`), `security.insecure` (`RUN --security=insecure`).
    #[arg(long = "allow", value_name = "ENTITLEMENT", value_delimiter = ',')]
    pub allow: Vec<String>,
    /// An extra `/etc/hosts` line for every RUN: `HOST:IP` or `HOST=IP`; repeatable.
    #[arg(long = "add-host", value_name = "HOST:IP")]
    pub add_hosts: Vec<String>,
    /// A resource limit for every RUN: `NAME=SOFT[:HARD]` (docker's names: nofile,
    /// nproc, core, …; -1 is unlimited); repeatable.
    #[arg(long = "ulimit", value_name = "NAME=SOFT[:HARD]")]
    pub ulimits: Vec<String>,
    /// The size of /dev/shm in every RUN (docker's syntax: bytes, or 64m, 1g, …); 64m by default.
    #[arg(long = "shm-size", value_name = "SIZE")]
    pub shm_size: Option<String>,
    /// A named context (`NAME=DIR`, `NAME=docker-image://REF`,
    /// `NAME=oci-layout://DIR[:TAG|@DIGEST]`) for `FROM NAME`, `COPY --from=NAME`
    /// and `RUN --mount=from=NAME`; it replaces a stage or image of that name. Repeatable.
    #[arg(long = "build-context", value_name = "NAME=VALUE")]
    pub build_contexts: Vec<String>,
    /// The network of every RUN without its own `--network`: default, none or host
    /// (host needs `--allow network.host`).
    #[arg(long = "network", value_name = "MODE")]
    pub network: Option<String>,
    /// Stages (name or index) whose steps are not looked up in the cache; repeatable or comma-separated.
    #[arg(long = "no-cache-filter", value_name = "STAGE", value_delimiter = ',')]
    pub no_cache_filter: Vec<String>,
    /// Store each step key's pre-image so `kiln cache explain` can say why a step missed.
    #[arg(long = "debug-cache")]
    pub debug_cache: bool,
    /// Export the step cache: `type=local,dest=DIR` or `type=registry,ref=NAME` (`,mode=min|max`).
    #[arg(long = "cache-to", value_name = "SPEC")]
    pub cache_to: Vec<String>,
    /// Import a step cache before building: `type=local,src=DIR` or `type=registry,ref=NAME`.
    #[arg(long = "cache-from", value_name = "SPEC")]
    pub cache_from: Vec<String>,
    /// Build reproducibly: SOURCE_DATE_EPOCH=0 unless the environment or a `--build-arg` sets it.
    #[arg(long)]
    pub reproducible: bool,
    /// Run a frontend method instead of building (buildx's `--call`):
    /// `build` (the default), `check` (BuildKit's Dockerfile checks),
    /// `outline` (the target's build args, secrets, SSH ids) or `targets`,
    /// with `,format=json` for JSON and `,ignorestatus=true` (check) to exit
    /// 0 on findings.
    #[arg(long, value_name = "METHOD[,format=json]")]
    pub call: Option<String>,
    /// Shorthand for `--call=check`.
    #[arg(long)]
    pub check: bool,
    /// The oldest Dockerfile frontend (`docker/dockerfile:1.N`) the file must
    /// work with: the checks report features it lacks (FrontendVersionPortability).
    #[arg(long = "check-frontend-version", value_name = "1.N")]
    pub check_frontend_version: Option<String>,
    /// Docker flags accepted as BuildKit's no-ops or refused by name.
    #[command(flatten)]
    pub docker: docker_flags::DockerFlags,
    /// The build context directory; `-` reads it from stdin (a tar, maybe
    /// compressed, or a lone Dockerfile with no context).
    pub context: PathBuf,
}

/// `--pull`'s values.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum PullArg {
    /// Pull every base image.
    Always,
    /// Pull base images the store lacks.
    Missing,
    /// Use the store only.
    Never,
}

impl From<PullArg> for builder::PullPolicy {
    fn from(p: PullArg) -> Self {
        match p {
            PullArg::Always => Self::Always,
            PullArg::Missing => Self::Missing,
            PullArg::Never => Self::Never,
        }
    }
}

/// `-` as the context: it comes from stdin.
fn is_stdin(context: &std::path::Path) -> bool {
    context.as_os_str() == "-"
}

/// `-f -` with `-`: both want stdin.
#[derive(Debug, thiserror::Error)]
#[error("invalid argument: can't use stdin for both build context and dockerfile")]
struct StdinTwice;

fn read_dockerfile(args: &BuildArgs, opts: &mut BuildOptions) -> std::io::Result<()> {
    if is_stdin(&args.context) {
        // Read once the store is open: the context is unpacked under its tmp/.
        return Ok(());
    }
    match &args.file {
        Some(f) if f.as_os_str() == "-" => {
            std::io::stdin().read_to_end(&mut opts.dockerfile)?;
            opts.dockerfile_name = "<stdin>".into();
        }
        file => {
            let path = file
                .clone()
                .unwrap_or_else(|| args.context.join("Dockerfile"));
            opts.dockerfile = std::fs::read(&path)?;
            // COMPAT(buildkit): diagnostics name the default file `Dockerfile`.
            opts.dockerfile_name = match file {
                Some(f) => f.display().to_string(),
                None => "Dockerfile".into(),
            };
            opts.dockerfile_path = Some(path);
        }
    }
    Ok(())
}

/// The arguments resolved and the Dockerfile read (unless it comes with a
/// context on stdin); the exit code when they are not usable.
fn prepare(args: &BuildArgs) -> Result<Resolved, i32> {
    let mut r = resolve(args).map_err(|e| {
        eprint!("{}", render_error(&e));
        EXIT_USAGE
    })?;
    if is_stdin(&args.context) && args.file.as_deref().is_some_and(|f| f.as_os_str() == "-") {
        eprint!("{}", render_error(&StdinTwice));
        return Err(EXIT_USAGE);
    }
    if let Err(e) = read_dockerfile(args, &mut r.build.options) {
        let what = args
            .file
            .clone()
            .unwrap_or_else(|| args.context.join("Dockerfile"));
        eprintln!(
            "error: reading dockerfile {}\ncaused by: {e}",
            what.display()
        );
        return Err(EXIT_USAGE);
    }
    Ok(r)
}

/// The store, its lock held shared until the image is named (a prune
/// meanwhile would drop its blobs), and the context read from stdin when it
/// is `-` (it lives as long as the build).
fn open(
    cli: &Cli,
    args: &BuildArgs,
    opts: &mut BuildOptions,
) -> Result<(Store, StoreLock, Option<StreamedContext>), i32> {
    // RUN hands snapshot paths to overlayfs, which needs them absolute.
    let root = cli.store_root();
    let root = std::path::absolute(&root).unwrap_or(root);
    let (store, lock) = super::open_store_locked_at(&root, LockMode::Shared).map_err(|e| {
        eprint!("{}", render_error(&e));
        EXIT_INTERNAL
    })?;
    if !is_stdin(&args.context) {
        return Ok((store, lock, None));
    }
    let mut stdin = std::io::stdin().lock();
    match builder::read_streamed_context(&store, &mut stdin, args.file.as_deref(), opts) {
        Ok(dir) => Ok((store, lock, Some(dir))),
        Err(e) => {
            eprint!("{}", render_error(&e));
            Err(e.exit_code())
        }
    }
}

/// Runs `kiln build`; returns the exit code.
pub fn run(cli: &Cli, args: &BuildArgs) -> i32 {
    let mut r = match prepare(args) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let method = match call::Call::from_args(args) {
        Ok(m) => m,
        Err(e) => {
            eprint!("{}", render_error(&e));
            return EXIT_USAGE;
        }
    };
    let (store, _lock, _stdin_context) = match open(cli, args, &mut r.build.options) {
        Ok(opened) => opened,
        Err(code) => return code,
    };
    if let call::Call::Targets(json) = method {
        return call::run_targets(json, &r.build.options);
    }
    if let call::Call::Outline(json) = method {
        return call::run_outline(json, &store, &r.build.options);
    }
    if let Some(check) = method.check() {
        return call::run_check(check, &store, args, &r.build.options);
    }
    let mode = if args.quiet {
        ProgressMode::Quiet
    } else {
        args.progress
    };
    if let Some(rootless) = &cli.rootless {
        if matches!(
            mode.resolve(),
            ProgressMode::Plain | ProgressMode::Tty | ProgressMode::Auto
        ) {
            eprintln!("{rootless}");
        }
    }
    let (tx, rx) = mpsc::channel();
    let renderer = progress::spawn(mode, rx);
    let progress = Progress::new(tx);
    let result = r.build.execute(&store, &progress);
    drop(progress);
    let _ = renderer.join();
    match result {
        Ok(img) => {
            // stdout carries an archive when an output streams there.
            let outputs = &r.build.outputs;
            let stdout_free = !outputs.iter().any(OutputSpec::to_stdout);
            if stdout_free && (args.quiet || outputs.is_empty()) {
                println!("{}", img.id());
            }
            0
        }
        Err(e) => {
            let opts = &r.build.options;
            let text = match &e {
                ExecuteError::Build(b) => {
                    render_build_error(b, &opts.dockerfile, &opts.dockerfile_name)
                }
                _ => render_error(&e),
            };
            eprint!("{text}");
            e.exit_code()
        }
    }
}
