//! The integrator: turns a Dockerfile and a context into an image in the
//! store, wiring parser, plan, layer, exec and oci. Owns scheduling (stages
//! the target reaches, independent ones in parallel), progress events and
//! error context per step, and the tail of the pipeline (cache import and
//! export, outputs, the metadata file: [`Build::execute`], the one call
//! `kiln build` makes). Invariants: a failing step's error carries its
//! Dockerfile span; nothing a build writes is visible under a name until it
//! is complete (blobs are content-addressed, tags are written last, by the
//! outputs).

mod add;
mod cache_registry;
mod cache_transfer;
mod cached;
mod contexts;
mod copy;
mod copyup;
pub mod emulation;
mod entitlements;
mod error;
mod event;
mod execute;
mod export;
mod image;
mod inputs;
mod kept;
mod output;
mod perms;
mod provenance;
mod resolver;
mod run;
mod sbom;
mod schedule;
mod snapshot;
mod source;
mod ssh;
mod stage;
mod stepkey;
mod streamed_context;
mod write_watch;

use std::collections::BTreeMap;
use std::path::PathBuf;

pub use cache_transfer::{build_specs, CacheSpec, CacheSpecError, CacheTransferError};
pub use cached::CacheOptions;
pub use contexts::{ContextSource, ContextSpecError};
pub use copy::CopyError;
pub use entitlements::Entitlement;
pub use error::{BuildError, StepError};
pub use event::{Event, Progress, StepRef, Stream, Vertex};
pub use execute::{Build, ExecuteError};
pub use export::flatten;
pub use export::ExportError;
pub use image::{parse_rfc3339, rfc3339, BuiltImage};
pub use output::{OutputSpec, OutputSpecError};
pub use resolver::PullPolicy;
pub use run::{ExtraHost, Isolation, SandboxOptions, SecretSource};
// `kiln run` prepares an image's root as a RUN step's.
pub use copyup::{copy_up_at, CopyUpError};
pub use snapshot::{ensure_snapshots, remove_tree, staging_dir, SnapshotError};
pub use streamed_context::{read_streamed_context, StreamedContext, StreamedContextError};
// The option types `BuildOptions` is made of, so a caller needs only this module.
pub use crate::exec::{Resource, Ulimit};
pub use crate::layer::{Compression, LayerError};
pub use crate::plan::{NetworkMode, PlanOptions};

use crate::dockerfile::ignore::{ignore_file_candidates, IgnorePatterns};
use crate::layer::PackOptions;
use crate::oci::Store;
use crate::plan;

/// Everything one build needs besides the store.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// The context directory.
    pub context: PathBuf,
    /// The Dockerfile's bytes.
    pub dockerfile: Vec<u8>,
    /// Its name in diagnostics (`Dockerfile`, `<stdin>`).
    pub dockerfile_name: String,
    /// Its path, when it is a file: `<name>.dockerignore` beside it wins.
    pub dockerfile_path: Option<PathBuf>,
    /// Build args, target, labels, platform.
    pub plan: PlanOptions,
    /// Layer compression.
    pub compression: Compression,
    /// `SOURCE_DATE_EPOCH`: `created` and clamped file times.
    pub source_date_epoch: Option<i64>,
    /// `--secret`s by id.
    pub secrets: BTreeMap<String, SecretSource>,
    /// `--ssh` agent sockets by id.
    pub ssh: BTreeMap<String, PathBuf>,
    /// `--allow`ed entitlements.
    pub allow: Vec<Entitlement>,
    /// `--add-host` and the other sandbox flags for every RUN.
    pub sandbox: SandboxOptions,
    /// The kiln binary RUN re-executes as its sandbox helper.
    pub exe: PathBuf,
    /// `--no-cache`, `--no-cache-filter`, `--debug-cache`.
    pub cache: cached::CacheOptions,
    /// Where base images missing from the store are pulled from (`None`: nowhere).
    pub registry: Option<std::sync::Arc<crate::oci::registry::Client>>,
    /// `--pull`: when base images are pulled.
    pub pull: resolver::PullPolicy,
    /// `--annotation`s for the image manifest.
    pub annotations: BTreeMap<String, String>,
    /// `--build-context`s by [`plan::context_key`]; the plan's
    /// `PlanOptions::contexts` is derived from these.
    pub contexts: BTreeMap<String, contexts::ContextSource>,
    /// `--check-frontend-version`: the oldest Dockerfile frontend the file
    /// must suit (kiln's FrontendVersionPortability rule).
    pub check_frontend_version: Option<crate::lint::FrontendVersion>,
    /// Which attestations to make (`--provenance`, `--attest`): min
    /// provenance by default, as BuildKit 0.28+.
    pub attest: crate::attest::AttestOptions,
    /// `--platform`: the target platforms. With several, the graph is
    /// planned and built once per platform (`plan.platform` set to each,
    /// stages for the build platform shared through the step cache) and the
    /// result is an index; empty or one: `plan.platform` alone.
    pub platforms: Vec<crate::oci::Platform>,
}

impl BuildOptions {
    /// Options for `context` with the Dockerfile `bytes`, everything else default.
    pub fn new(context: impl Into<PathBuf>, dockerfile: Vec<u8>) -> Self {
        Self {
            context: context.into(),
            dockerfile,
            dockerfile_name: "Dockerfile".into(),
            dockerfile_path: None,
            plan: PlanOptions::default(),
            compression: Compression::Gzip,
            source_date_epoch: None,
            secrets: BTreeMap::new(),
            ssh: BTreeMap::new(),
            allow: Vec::new(),
            sandbox: SandboxOptions::default(),
            exe: PathBuf::from("/proc/self/exe"),
            cache: Default::default(),
            registry: None,
            pull: resolver::PullPolicy::Missing,
            annotations: BTreeMap::new(),
            contexts: BTreeMap::new(),
            check_frontend_version: None,
            attest: crate::attest::AttestOptions::default(),
            platforms: Vec::new(),
        }
    }
}

/// Reads the `.dockerignore` that applies (BuildKit's order), if any.
fn load_ignore(opts: &BuildOptions) -> Result<Option<IgnorePatterns>, BuildError> {
    let df = opts
        .dockerfile_path
        .clone()
        .unwrap_or_else(|| opts.context.join("Dockerfile"));
    for cand in ignore_file_candidates(&opts.context, &df) {
        match std::fs::read_to_string(&cand) {
            Ok(text) => {
                return IgnorePatterns::parse(&text)
                    .map(Some)
                    .map_err(|source| BuildError::ParseIgnore { path: cand, source })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(source) => return Err(BuildError::ReadIgnore { path: cand, source }),
        }
    }
    Ok(None)
}

/// Plans `df` with base images resolved through the store (and its
/// registry, layers left there when `lazy` is given).
fn lower(
    store: &Store,
    opts: &BuildOptions,
    df: &crate::dockerfile::Dockerfile,
    progress: Option<&Progress>,
    lazy: Option<&crate::oci::registry::RemoteBlobs>,
) -> Result<plan::BuildGraph, plan::PlanError> {
    let resolver = resolver::StoreResolver {
        store,
        registry: opts.registry.as_deref(),
        pull: opts.pull,
        progress,
        lazy,
        contexts: &opts.contexts,
    };
    let mut plan_opts = opts.plan.clone();
    plan_opts.contexts = opts
        .contexts
        .iter()
        .map(|(k, c)| (k.clone(), c.kind()))
        .collect();
    plan::lower(df, &plan_opts, &resolver)
}

/// `lower` with no progress, base images' layers left in their registry
/// (only their configs are read): what `check` and `outline` plan with.
fn lower_configs_only(
    store: &Store,
    opts: &BuildOptions,
    df: &crate::dockerfile::Dockerfile,
) -> Result<plan::BuildGraph, plan::PlanError> {
    let remote = opts
        .registry
        .clone()
        .map(crate::oci::registry::RemoteBlobs::new);
    lower(store, opts, df, None, remote.as_ref())
}

/// `kiln build --check`: BuildKit's Dockerfile checks over every stage,
/// nothing built. As BuildKit's lint, the target's base images are resolved
/// (their configs only: layers stay in their registry), so the checks that
/// read the plan (UndefinedVar, a base image's SHELL) see what a build would.
/// A plan that fails is returned beside the report made without it.
pub fn check(
    store: &Store,
    opts: &BuildOptions,
) -> Result<(crate::lint::Report, Option<BuildError>), BuildError> {
    let df = crate::dockerfile::parse(&opts.dockerfile).map_err(BuildError::Parse)?;
    let ignore = load_ignore(opts)?;
    let (graph, failed) = match lower_configs_only(store, opts, &df) {
        Ok(g) => (Some(g), None),
        Err(e) => (None, Some(BuildError::Plan(e))),
    };
    let inputs = crate::lint::Inputs {
        ignore: ignore.as_ref(),
        build_args: Some(&opts.plan.build_args),
        graph: graph.as_ref(),
        all_stages: true,
        frontend_version: opts.check_frontend_version,
    };
    let report = crate::lint::check(&df, &inputs).map_err(BuildError::CheckOptions)?;
    Ok((report, failed))
}

/// `kiln build --call=outline`: the target's plan (base image configs
/// resolved as for `check`: BuildKit's outline dispatches the reached
/// stages with their bases), nothing built.
pub fn outline(
    store: &Store,
    opts: &BuildOptions,
) -> Result<(crate::dockerfile::Dockerfile, plan::BuildGraph), BuildError> {
    let df = crate::dockerfile::parse(&opts.dockerfile).map_err(BuildError::Parse)?;
    let graph = lower_configs_only(store, opts, &df).map_err(BuildError::Plan)?;
    Ok((df, graph))
}

/// BuildKit's Dockerfile checks over the planned build, each finding sent
/// under the vertex that loaded the Dockerfile (none sent without one: a
/// later pass of a multi-platform build); with `check=error=true` a
/// finding fails the build.
fn run_checks(
    df: &crate::dockerfile::Dockerfile,
    graph: &plan::BuildGraph,
    ignore: Option<&IgnorePatterns>,
    opts: &BuildOptions,
    progress: &Progress,
    v: Option<&event::Vertex>,
) -> Result<(), BuildError> {
    let inputs = crate::lint::Inputs {
        ignore,
        build_args: Some(&opts.plan.build_args),
        graph: Some(graph),
        all_stages: false,
        frontend_version: opts.check_frontend_version,
    };
    let report = match crate::lint::check(df, &inputs) {
        Ok(r) => r,
        Err(e) => return Err(BuildError::CheckOptions(e)),
    };
    let mut findings: Vec<&crate::lint::Finding> = report.findings.iter().collect();
    // COMPAT(buildkit): the load vertex lists them by line.
    findings.sort_by_key(|f| f.start_line);
    if let Some(v) = v {
        for f in findings {
            progress.check(v, f.short());
        }
    }
    match report.error() {
        Some(msg) => Err(BuildError::Checks(msg)),
        None => Ok(()),
    }
}

/// Parses, plans and builds; returns the image, stored but not named, and
/// maybe not whole: layers of a lazily resolved base may still be in their
/// registry (`BuiltImage::remote`); `export` fetches what an output needs.
pub fn build(
    store: &Store,
    opts: &BuildOptions,
    progress: &Progress,
) -> Result<BuiltImage, BuildError> {
    build_pass(store, opts, progress, true)
}

/// [`build`] as one pass of a multi-platform build: only the first pass
/// (`report`) prints the checks' findings and the warnings, which every
/// pass would repeat; a `check=error=true` finding still fails any pass.
fn build_pass(
    store: &Store,
    opts: &BuildOptions,
    progress: &Progress,
    report: bool,
) -> Result<BuiltImage, BuildError> {
    let (df, v) = load_definition(opts, progress, report)?;
    let remote = lazy_remote(opts, progress);
    let checked = plan_and_check(store, opts, &df, progress, v, remote.as_deref(), report);
    let (graph, ignore) = checked?;
    let pack = PackOptions {
        compression: opts.compression,
        source_date_epoch: opts.source_date_epoch,
        level: None,
    };
    let cache = open_cache(store, opts, ignore.clone(), &pack)?;
    let context = source::Source::context(opts.context.clone(), ignore);
    let created = image::created_time(opts.source_date_epoch);
    let spans = from_spans(&df);
    let env = stage::BuildEnv {
        store,
        context: &context,
        progress,
        pack,
        created: created.clone(),
        secrets: &opts.secrets,
        ssh: &opts.ssh,
        sandbox: &opts.sandbox,
        exe: &opts.exe,
        graph: &graph,
        from_spans: spans.clone(),
        cache: &cache,
        remote: remote.as_deref(),
        multi_platform: opts.platforms.len() > 1,
    };
    let (out, stages) = match schedule::run_graph(&env) {
        Ok(out) => out,
        Err(e) => {
            // The stat cache and the log are worth keeping after a failed
            // step too, but the step's error is the one to report.
            let _ = cache.finish(&graph, None);
            return Err(e);
        }
    };
    // A rebuild that hit every step is dated like the build it reuses.
    let created = out.time.map_or(created, |t| cache.created(t));
    let mut img = image::store_image(
        store,
        out.config,
        out.layers,
        out.history,
        &out.platform,
        &created,
        &opts.annotations,
    )
    .map_err(BuildError::Store)?;
    img.remote = remote;
    if let Err(e) = attestations(store, opts, &graph, &stages, &spans, &mut img, progress) {
        let _ = cache.finish(&graph, None);
        return Err(e);
    }
    finish(img, &cache, &graph)
}

/// The attestations `opts.attest` asks for, in BuildKit's order: the SBOMs,
/// then the provenance.
fn attestations(
    store: &Store,
    opts: &BuildOptions,
    graph: &plan::BuildGraph,
    stages: &schedule::StageOutputs,
    from_spans: &[crate::dockerfile::Span],
    img: &mut BuiltImage,
    progress: &Progress,
) -> Result<(), BuildError> {
    if opts.attest.sbom {
        attach_sboms(store, opts, graph, stages, img, progress)?;
    }
    if let Some(p) = &opts.attest.provenance {
        let image = img.manifest.digest;
        img.attestations
            .push(provenance::of_build(opts, p, graph, from_spans, image));
    }
    Ok(())
}

/// The SBOM attestations: the image's, then one per stage
/// `BUILDKIT_SBOM_SCAN_STAGE` names. COMPAT(buildkit): the SBOM's in-toto
/// layers come before the provenance's (its exporter puts the core SBOM
/// first). Scanned while fetches of a lazy base still show as vertices.
fn attach_sboms(
    store: &Store,
    opts: &BuildOptions,
    graph: &plan::BuildGraph,
    stages: &schedule::StageOutputs,
    img: &mut BuiltImage,
    progress: &Progress,
) -> Result<(), BuildError> {
    // run_graph returned every reached stage (it fails otherwise), and
    // scanned_stages names reached stages only.
    let extra: Vec<(String, Vec<crate::oci::LayerBlob>)> = sbom::scanned_stages(graph)
        .into_iter()
        .filter_map(|(i, name)| Some((name, stages.get(&i)?.layers.clone())))
        .collect();
    let a = sbom::of_image(store, img, &extra, opts.source_date_epoch, progress)?;
    img.attestations.extend(a);
    Ok(())
}

/// The step cache of this build: its records, the context's stat cache and
/// the named directory contexts.
fn open_cache(
    store: &Store,
    opts: &BuildOptions,
    ignore: Option<IgnorePatterns>,
    pack: &PackOptions,
) -> Result<cached::CacheSession, BuildError> {
    Ok(cached::CacheSession::open(
        store,
        &opts.context,
        &opts.dockerfile_name,
        ignore,
        opts.cache.clone(),
        pack,
    )
    .map_err(BuildError::Cache)?
    .with_named(contexts::LocalContext::open_all(store, &opts.contexts)?))
}

/// Each stage's FROM line, in order (index = stage id), for errors about its base.
fn from_spans(df: &crate::dockerfile::Dockerfile) -> Vec<crate::dockerfile::Span> {
    df.instructions
        .iter()
        .filter(|i| i.command() == "from")
        .map(|i| i.span)
        .collect()
}

/// Once the image is stored: stops reporting lazy fetches of base layers,
/// hands them to the image, and closes the cache session.
fn finish(
    img: BuiltImage,
    cache: &cached::CacheSession,
    graph: &plan::BuildGraph,
) -> Result<BuiltImage, BuildError> {
    // The caller waits for every progress sender to go once it is done
    // with the image; outputs report under their own vertices.
    if let Some(r) = &img.remote {
        r.stop_observing();
    }
    cache
        .finish(graph, Some(img.config_digest))
        .map_err(BuildError::Cache)?;
    Ok(img)
}

/// Checks the context is a directory, parses the Dockerfile under the vertex
/// that loads it (left open for the checks) and warns that a `# syntax=`
/// frontend is not honoured.
fn load_definition(
    opts: &BuildOptions,
    progress: &Progress,
    report: bool,
) -> Result<(crate::dockerfile::Dockerfile, Vertex), BuildError> {
    if !opts.context.is_dir() {
        return Err(BuildError::ContextDir {
            path: opts.context.clone(),
        });
    }
    // COMPAT(buildkit): the label names the file's base name (`-f ci/Containerfile`
    // → `Containerfile`); a Dockerfile from stdin is `Dockerfile`.
    let file = opts
        .dockerfile_path
        .as_deref()
        .and_then(|p| p.file_name())
        .map_or("Dockerfile".into(), |n| n.to_string_lossy());
    let v = progress.start(
        format!("[internal] load build definition from {file}"),
        None,
    );
    let df = match crate::dockerfile::parse(&opts.dockerfile) {
        Ok(df) => df,
        Err(e) => {
            v.failed(e.to_string());
            return Err(BuildError::Parse(e));
        }
    };
    for d in df
        .directives
        .iter()
        .filter(|d| report && d.name == "syntax")
    {
        // kiln is its own frontend: say so rather than pretend to honour it.
        progress.warn(format!(
            "ignoring `# syntax={}` (line {}): kiln builds with its built-in Dockerfile frontend",
            d.value, d.line
        ));
    }
    Ok((df, v))
}

/// Plans `df`, runs the checks under the load vertex `v` (and closes it),
/// then checks the entitlements and warns about unused build arguments.
/// Returns the graph and the `.dockerignore` that applies.
fn plan_and_check(
    store: &Store,
    opts: &BuildOptions,
    df: &crate::dockerfile::Dockerfile,
    progress: &Progress,
    v: Vertex,
    remote: Option<&crate::oci::registry::RemoteBlobs>,
    report: bool,
) -> Result<(plan::BuildGraph, Option<IgnorePatterns>), BuildError> {
    let graph = match lower(store, opts, df, Some(progress), remote) {
        Ok(g) => g,
        Err(e) => {
            v.done();
            return Err(BuildError::Plan(e));
        }
    };
    let checked = load_ignore(opts).and_then(|ignore| {
        run_checks(
            df,
            &graph,
            ignore.as_ref(),
            opts,
            progress,
            report.then_some(&v),
        )?;
        Ok(ignore)
    });
    let ignore = match checked {
        Ok(ignore) => ignore,
        Err(e) => {
            v.failed(e.to_string());
            return Err(e);
        }
    };
    v.done();
    entitlements::check(&graph, &opts.allow)?;
    if opts.attest.sbom {
        sbom::check_scan_args(&graph)?;
    }
    // COMPAT(buildkit): SOURCE_DATE_EPOCH and BUILDKIT_DOCKERFILE_CHECK are the
    // builder's own arguments.
    for arg in graph
        .unused_build_args
        .iter()
        .filter(|_| report)
        .filter(|a| *a != "SOURCE_DATE_EPOCH" && *a != "BUILDKIT_DOCKERFILE_CHECK")
    {
        progress.warn(format!("build argument {arg} was not consumed"));
    }
    Ok((graph, ignore))
}

/// The registry's blobs of lazily resolved bases: their layers stay in the
/// registry until a step or an output needs them (`oci::registry::lazy`),
/// each fetch shown as a vertex.
fn lazy_remote(
    opts: &BuildOptions,
    progress: &Progress,
) -> Option<std::sync::Arc<crate::oci::registry::RemoteBlobs>> {
    opts.registry.clone().map(|c| {
        let p = progress.clone();
        let observer: crate::oci::registry::FetchObserver = Box::new(move |n, bytes| {
            let v = p.start(
                format!("[internal] fetching {n} base image layer(s), {bytes} bytes"),
                None,
            );
            Box::new(move |err| match err {
                None => v.done(),
                Some(e) => v.failed(e.to_string()),
            })
        });
        let remote = crate::oci::registry::RemoteBlobs::new(c).with_observer(observer);
        std::sync::Arc::new(remote)
    })
}
