//! `kiln build`: docker-build-compatible flags resolved into
//! `builder::BuildOptions`, progress rendered on a thread, outputs written,
//! `--iidfile`/`--metadata-file` written last. With no `-t` and no `-o` the
//! image still lands in the store and its ID is printed.

use std::io::Read;
use std::path::PathBuf;
use std::sync::mpsc;

use clap::Args;

mod annotations;
mod args;
mod docker_flags;
mod ssh_keys;
mod stdin_context;

use args::{resolve, Resolved};

use super::progress::{self, ProgressMode};
use super::report::{render_build_error, render_error, EXIT_INTERNAL, EXIT_USAGE};
use super::Cli;
use crate::builder::{self, BuildOptions, OutputSpec, Progress};
use crate::oci::Reference;

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
    /// The target platform (only the host's is supported).
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

impl From<PullArg> for builder::resolver::PullPolicy {
    fn from(p: PullArg) -> Self {
        match p {
            PullArg::Always => Self::Always,
            PullArg::Missing => Self::Missing,
            PullArg::Never => Self::Never,
        }
    }
}

fn read_dockerfile(args: &BuildArgs, opts: &mut BuildOptions) -> std::io::Result<()> {
    if stdin_context::is_stdin(&args.context) {
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

/// Runs `kiln build`; returns the exit code.
pub fn run(cli: &Cli, args: &BuildArgs) -> i32 {
    let mut r = match resolve(args) {
        Ok(r) => r,
        Err(e) => {
            eprint!("{}", render_error(&e));
            return EXIT_USAGE;
        }
    };
    let cache_specs = match super::cache::build_specs(&args.cache_to, &args.cache_from) {
        Ok(s) => s,
        Err(e) => {
            eprint!("{}", render_error(&e));
            return EXIT_USAGE;
        }
    };
    if let Err(e) = stdin_context::check(&args.context, args.file.as_deref()) {
        eprint!("{}", render_error(&e));
        return EXIT_USAGE;
    }
    if let Err(e) = read_dockerfile(args, &mut r.opts) {
        let what = args
            .file
            .clone()
            .unwrap_or_else(|| args.context.join("Dockerfile"));
        eprintln!(
            "error: reading dockerfile {}\ncaused by: {e}",
            what.display()
        );
        return EXIT_USAGE;
    }
    // RUN hands snapshot paths to overlayfs, which needs them absolute.
    let root = cli
        .root
        .clone()
        .unwrap_or_else(crate::oci::Store::default_root);
    let root = std::path::absolute(&root).unwrap_or(root);
    let store = match crate::oci::Store::open(&root) {
        Ok(s) => s,
        Err(e) => {
            eprint!("{}", render_error(&e));
            return EXIT_INTERNAL;
        }
    };
    // Held until the image is named: a prune meanwhile would drop its blobs.
    let _lock = match store.lock(
        crate::oci::store::LockMode::Shared,
        crate::oci::store::LockWait::print,
    ) {
        Ok(l) => l,
        Err(e) => {
            eprint!("{}", render_error(&e));
            return EXIT_INTERNAL;
        }
    };
    let _stdin_context = match stdin_context::is_stdin(&args.context) {
        true => match stdin_context::read(&store, args.file.as_deref(), &mut r.opts) {
            Ok(dir) => Some(dir),
            Err(e) => {
                eprint!("{}", render_error(&e));
                return e.exit_code();
            }
        },
        false => None,
    };
    let mode = if args.quiet {
        ProgressMode::Quiet
    } else {
        args.progress
    };
    // What a build creates without an explicit mode (a tar's implicit parent
    // dirs, staging dirs) must not depend on the caller's umask.
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
    let (tx, rx) = mpsc::channel();
    let renderer = progress::spawn(mode, rx);
    let progress = Progress::new(tx);
    let registry = r.opts.registry.clone();
    let imported = super::cache::import_specs(&store, &cache_specs, &progress, registry.as_deref())
        .map_err(|e| (render_error(&e), EXIT_INTERNAL));
    let result = imported.and_then(|()| {
        builder::build(&store, &r.opts, &progress).map_err(|e| {
            let text = render_build_error(&e, &r.opts.dockerfile, &r.opts.dockerfile_name);
            (text, e.exit_code())
        })
    });
    let result = result.and_then(|img| {
        super::cache::export_specs(&store, &cache_specs, &progress, registry.as_deref())
            .map(|()| img)
            .map_err(|e| (render_error(&e), EXIT_INTERNAL))
    });
    let result = result.and_then(|img| finish(&store, &img, &r, &progress).map(|()| img));
    drop(progress);
    let _ = renderer.join();
    match result {
        Ok(img) => {
            // stdout carries an archive when an output streams there.
            let stdout_free = !r.outputs.iter().any(OutputSpec::to_stdout);
            if stdout_free && (args.quiet || r.outputs.is_empty()) {
                println!("{}", img.config_digest);
            }
            0
        }
        Err((text, code)) => {
            eprint!("{text}");
            code
        }
    }
}

fn stdout_staging(store: &crate::oci::Store) -> Result<tempfile::NamedTempFile, (String, i32)> {
    tempfile::Builder::new()
        .prefix("stdout-")
        .tempfile_in(store.tmp_dir())
        .map_err(|e| {
            let text = format!("error: staging the output for stdout\ncaused by: {e}\n");
            (text, EXIT_INTERNAL)
        })
}

fn copy_to_stdout(path: &std::path::Path) -> Result<(), (String, i32)> {
    let copied = std::fs::File::open(path).and_then(|mut f| {
        let mut out = std::io::stdout().lock();
        std::io::copy(&mut f, &mut out)?;
        std::io::Write::flush(&mut out)
    });
    copied.map_err(|e| {
        let text = format!("error: writing the output to stdout\ncaused by: {e}\n");
        (text, EXIT_INTERNAL)
    })
}

/// Outputs, then `--iidfile` and `--metadata-file`.
fn finish(
    store: &crate::oci::Store,
    img: &builder::BuiltImage,
    r: &Resolved,
    progress: &Progress,
) -> Result<(), (String, i32)> {
    for spec in &r.outputs {
        let v = progress.start(format!("exporting to {}", describe(spec)), None);
        if let OutputSpec::Image { names, .. } = spec {
            for n in names.iter().chain(&r.tags) {
                if let Ok(q) = Reference::parse(n) {
                    v.log(
                        builder::Stream::Stdout,
                        format!("naming to {}\n", q.qualified()).as_bytes(),
                    );
                }
            }
        }
        // dest=-: written to a file in the store's tmp/ first (archives are
        // written by path and renamed into place), then copied to stdout.
        let staged = match spec.to_stdout() {
            true => Some(stdout_staging(store)?),
            false => None,
        };
        let to_file;
        let spec = match &staged {
            Some(file) => {
                to_file = spec.with_dest(file.path().to_path_buf());
                &to_file
            }
            None => spec,
        };
        let exported =
            builder::export::export(store, img, spec, &r.tags, r.opts.registry.as_deref());
        if let (Ok(()), Some(file)) = (&exported, &staged) {
            copy_to_stdout(file.path())?;
        }
        if let Err(e) = exported {
            v.failed(e.to_string());
            let code = match e {
                builder::export::ExportError::PushName
                | builder::export::ExportError::Name { .. } => EXIT_USAGE,
                _ => EXIT_INTERNAL,
            };
            return Err((render_error(&e), code));
        }
        if let OutputSpec::Registry { names } | OutputSpec::Image { names, push: true } = spec {
            for n in names.iter().chain(&r.tags) {
                let line = format!("pushed manifest for {n}@{}\n", img.manifest.digest);
                v.log(builder::Stream::Stdout, line.as_bytes());
            }
        }
        v.done();
    }
    let write = |path: &PathBuf, text: String| {
        std::fs::write(path, text).map_err(|e| {
            (
                format!("error: writing {}\ncaused by: {e}\n", path.display()),
                EXIT_INTERNAL,
            )
        })
    };
    if let Some(p) = &r.iidfile {
        write(p, img.config_digest.to_string())?;
    }
    if let Some(p) = &r.metadata_file {
        write(p, metadata(img, &r.tags))?;
    }
    Ok(())
}

fn describe(spec: &OutputSpec) -> String {
    match spec {
        OutputSpec::Oci { dest, .. } => format!("oci image format {}", dest.display()),
        OutputSpec::Docker { dest, .. } => format!("docker image format {}", dest.display()),
        OutputSpec::Local { dest } => format!("client directory {}", dest.display()),
        OutputSpec::Tar { dest } => format!("client tarball {}", dest.display()),
        OutputSpec::Image { .. } => "image".into(),
        OutputSpec::Registry { .. } => "registry".into(),
    }
}

/// buildx's metadata file keys.
fn metadata(img: &builder::BuiltImage, tags: &[String]) -> String {
    let mut m = serde_json::Map::new();
    m.insert(
        "containerimage.digest".into(),
        img.manifest.digest.to_string().into(),
    );
    m.insert(
        "containerimage.config.digest".into(),
        img.config_digest.to_string().into(),
    );
    m.insert(
        "containerimage.descriptor".into(),
        serde_json::to_value(&img.manifest).unwrap_or_default(),
    );
    let names: Vec<String> = tags
        .iter()
        .filter_map(|t| Reference::parse(t).ok().map(|r| r.qualified()))
        .collect();
    if !names.is_empty() {
        m.insert("image.name".into(), names.join(",").into());
    }
    let mut s = serde_json::to_string_pretty(&serde_json::Value::Object(m)).unwrap_or_default();
    s.push('\n');
    s
}
