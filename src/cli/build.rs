//! `kiln build`: docker-build-compatible flags resolved into
//! `build::BuildOptions`, progress rendered on a thread, outputs written,
//! `--iidfile`/`--metadata-file` written last. With no `-t` and no `-o` the
//! image still lands in the store and its ID is printed.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;
use std::sync::mpsc;

use clap::Args;

use super::progress::{self, ProgressMode};
use super::report::{render_build_error, render_error, EXIT_INTERNAL, EXIT_USAGE};
use super::Cli;
use crate::build::{self, BuildOptions, OutputSpec, Progress, SecretSource};
use crate::layer::Compression;
use crate::oci::{Platform, Reference};

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
    /// Do not use cached steps (kiln has no step cache yet: every build is fresh).
    #[arg(long = "no-cache")]
    pub no_cache: bool,
    /// Layer compression: gzip, zstd or uncompressed.
    #[arg(long, default_value = "gzip")]
    pub compression: String,
    /// Shorthand for `--output=type=registry` (not supported yet).
    #[arg(long)]
    pub push: bool,
    /// A secret for `RUN --mount=type=secret` (`id=ID,src=FILE` or `id=ID,env=VAR`).
    #[arg(long = "secret", value_name = "SPEC")]
    pub secrets: Vec<String>,
    /// The build context directory.
    pub context: PathBuf,
}

/// A command-line value that does not make sense.
#[derive(Debug, thiserror::Error)]
enum UsageError {
    #[error("{flag} {value:?}: expected NAME=VALUE")]
    KeyValue { flag: &'static str, value: String },
    #[error("--platform {value}: kiln builds only for the host platform {host}")]
    Platform { value: String, host: String },
    #[error("invalid SOURCE_DATE_EPOCH {value:?}: expected seconds since 1970")]
    Epoch { value: String },
    #[error("--secret {value:?}: expected id=ID,src=FILE or id=ID,env=VAR")]
    Secret { value: String },
    #[error("--compression")]
    Compression(#[source] crate::layer::LayerError),
    #[error("-o {value:?}")]
    Output {
        value: String,
        #[source]
        source: build::OutputSpecError,
    },
    #[error("pushing to a registry (--push, type=registry) is not supported yet")]
    Push,
    #[error("invalid tag {name:?}")]
    Tag {
        name: String,
        #[source]
        source: crate::oci::ReferenceError,
    },
}

fn key_values(
    flag: &'static str,
    vals: &[String],
    from_env: bool,
) -> Result<BTreeMap<String, String>, UsageError> {
    let mut out = BTreeMap::new();
    for v in vals {
        match v.split_once('=') {
            Some((k, val)) if !k.is_empty() => {
                out.insert(k.to_string(), val.to_string());
            }
            // COMPAT(buildkit): `--build-arg NAME` takes NAME from the environment, if set.
            None if from_env && !v.is_empty() => {
                if let Ok(val) = std::env::var(v) {
                    out.insert(v.clone(), val);
                }
            }
            _ => {
                return Err(UsageError::KeyValue {
                    flag,
                    value: v.clone(),
                })
            }
        }
    }
    Ok(out)
}

fn secrets(vals: &[String]) -> Result<BTreeMap<String, SecretSource>, UsageError> {
    let mut out = BTreeMap::new();
    for v in vals {
        let bad = || UsageError::Secret { value: v.clone() };
        let mut id = None;
        let mut src = None;
        for field in v.split(',') {
            match field.split_once('=').ok_or_else(bad)? {
                ("id", x) => id = Some(x.to_string()),
                ("src" | "source", x) => src = Some(SecretSource::File(x.into())),
                ("env", x) => src = Some(SecretSource::Env(std::env::var(x).unwrap_or_default())),
                ("type", "file" | "env") => {}
                _ => return Err(bad()),
            }
        }
        let id = id.ok_or_else(bad)?;
        // COMPAT(buildkit): without src/env, the secret is the env var named like its id.
        let src = src.unwrap_or_else(|| SecretSource::Env(std::env::var(&id).unwrap_or_default()));
        out.insert(id, src);
    }
    Ok(out)
}

/// What the arguments resolve to, before anything is built.
struct Resolved {
    opts: BuildOptions,
    outputs: Vec<OutputSpec>,
    tags: Vec<String>,
    iidfile: Option<PathBuf>,
    metadata_file: Option<PathBuf>,
}

fn resolve(args: &BuildArgs) -> Result<Resolved, UsageError> {
    let mut plan = crate::plan::PlanOptions {
        build_args: key_values("--build-arg", &args.build_args, true)?,
        target: args.target.clone(),
        labels: key_values("--label", &args.labels, false)?,
        ..Default::default()
    };
    if let Some(p) = &args.platform {
        let host = Platform::host();
        let ok = p.split(',').all(|one| {
            let mut parts = one.split('/');
            parts.next() == Some(host.os.as_str())
                && parts.next() == Some(host.architecture.as_str())
        });
        if !ok {
            return Err(UsageError::Platform {
                value: p.clone(),
                host: host.to_specifier(),
            });
        }
    }
    plan.platform = Platform::host();
    let epoch_text = plan
        .build_args
        .get("SOURCE_DATE_EPOCH")
        .cloned()
        .or_else(|| std::env::var("SOURCE_DATE_EPOCH").ok())
        .filter(|s| !s.is_empty());
    let source_date_epoch = epoch_text
        .map(|v| v.parse::<i64>().map_err(|_| UsageError::Epoch { value: v }))
        .transpose()?;
    let mut outputs = Vec::new();
    for o in &args.outputs {
        outputs.push(OutputSpec::parse(o).map_err(|source| UsageError::Output {
            value: o.clone(),
            source,
        })?);
    }
    if args.push || outputs.contains(&OutputSpec::Registry) {
        return Err(UsageError::Push);
    }
    let mut tags = Vec::new();
    for t in &args.tags {
        tags.push(
            Reference::parse(t)
                .map(|r| r.familiar())
                .map_err(|source| UsageError::Tag {
                    name: t.clone(),
                    source,
                })?,
        );
    }
    if !tags.is_empty()
        && !outputs
            .iter()
            .any(|o| matches!(o, OutputSpec::Image { .. }))
    {
        // COMPAT(buildkit): -t names the image in the store even beside other outputs.
        outputs.push(OutputSpec::Image {
            names: vec![],
            push: false,
        });
    }
    let mut opts = BuildOptions::new(args.context.clone(), Vec::new());
    opts.plan = plan;
    opts.source_date_epoch = source_date_epoch;
    opts.compression = Compression::parse(&args.compression).map_err(UsageError::Compression)?;
    opts.secrets = secrets(&args.secrets)?;
    Ok(Resolved {
        opts,
        outputs,
        tags,
        iidfile: args.iidfile.clone(),
        metadata_file: args.metadata_file.clone(),
    })
}

fn read_dockerfile(args: &BuildArgs, opts: &mut BuildOptions) -> std::io::Result<()> {
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
    let mode = if args.quiet {
        ProgressMode::Quiet
    } else {
        args.progress
    };
    let (tx, rx) = mpsc::channel();
    let renderer = progress::spawn(mode, rx);
    let progress = Progress::new(tx);
    let result = build::build(&store, &r.opts, &progress).map_err(|e| {
        let text = render_build_error(&e, &r.opts.dockerfile, &r.opts.dockerfile_name);
        (text, e.exit_code())
    });
    let result = result.and_then(|img| finish(&store, &img, &r, &progress).map(|()| img));
    drop(progress);
    let _ = renderer.join();
    match result {
        Ok(img) => {
            if args.quiet || r.outputs.is_empty() {
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

/// Outputs, then `--iidfile` and `--metadata-file`.
fn finish(
    store: &crate::oci::Store,
    img: &build::BuiltImage,
    r: &Resolved,
    progress: &Progress,
) -> Result<(), (String, i32)> {
    for spec in &r.outputs {
        let v = progress.start(format!("exporting to {}", describe(spec)), None);
        if let OutputSpec::Image { names, .. } = spec {
            for n in names.iter().chain(&r.tags) {
                if let Ok(q) = Reference::parse(n) {
                    v.log(
                        build::Stream::Stdout,
                        format!("naming to {}\n", q.qualified()).as_bytes(),
                    );
                }
            }
        }
        if let Err(e) = build::export::export(store, img, spec, &r.tags) {
            v.failed(e.to_string());
            let code = match e {
                build::export::ExportError::PushUnsupported
                | build::export::ExportError::Name { .. } => EXIT_USAGE,
                _ => EXIT_INTERNAL,
            };
            return Err((render_error(&e), code));
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
        OutputSpec::Registry => "registry".into(),
    }
}

/// buildx's metadata file keys.
fn metadata(img: &build::BuiltImage, tags: &[String]) -> String {
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
