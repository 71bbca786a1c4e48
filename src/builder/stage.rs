//! Building one stage: its base (scratch, a store image or an earlier
//! stage's result) and then its steps in order, each COPY/ADD/WORKDIR/RUN
//! staged into a directory under `tmp/` and committed as a layer, metadata
//! steps recorded in history only. Each layer step is keyed first
//! ([`super::stepkey`]) and served from the step cache when its record is
//! there (progress says CACHED); a miss runs it and records the result.
//!
//! Invariants: `layers` and the non-empty history entries correspond one to
//! one; a stage's `key` is its last step's (metadata steps pass the parent's
//! key on: their effect reaches later RUNs through the env, user and
//! workdir the plan gives them); a step whose result is an empty directory
//! records no layer in the cache but adds the shared empty layer to the
//! image (BuildKit 0.25 writes an empty tar for it, and no `empty_layer` in
//! its history); every failing step reports its span and fails its progress
//! vertex.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::layer::{PackOptions, SourceKind};
use crate::oci::registry::RemoteBlobs;
use crate::oci::{LayerBlob, Platform, Store};
use crate::plan::{
    Base, BuildGraph, FilesFrom, Op, ResolvedImage, RunMount, Stage, Step, WorkdirOp,
};

use crate::cache::{from_key, CacheRecord, StepKey};

use super::cached::CacheSession;
use super::copy::{reads_target, stage_copy, stage_mkdir};
use super::error::{BuildError, StepError};
use super::event::{Progress, StepRef};
use super::image::{history, StageOutput};
use super::run::{run_step, RunContext, SecretSource};
use super::snapshot::{commit_dir, empty_layer, reencode, remove_tree, staging_dir, Staging};
use super::source::Source;
use super::stepkey::{key_after_run, key_step, Keyed};
use crate::layer::MergedFs;

/// What every stage of one build shares.
pub struct BuildEnv<'a> {
    /// The store.
    pub store: &'a Store,
    /// The build context, `.dockerignore` applied.
    pub context: &'a Source,
    /// Progress.
    pub progress: &'a Progress,
    /// How layers are packed.
    pub pack: PackOptions,
    /// The `created` time of new history entries.
    pub created: String,
    /// `--secret`s.
    pub secrets: &'a BTreeMap<String, SecretSource>,
    /// `--ssh` agent sockets.
    pub ssh: &'a BTreeMap<String, PathBuf>,
    /// `--add-host` and the other sandbox flags.
    pub sandbox: &'a super::run::SandboxOptions,
    /// The kiln binary for RUN's sandbox helper.
    pub exe: &'a Path,
    /// The graph being built.
    pub graph: &'a BuildGraph,
    /// Each stage's FROM line (index = stage id), for errors about its base.
    pub from_spans: Vec<crate::dockerfile::Span>,
    /// The step cache.
    pub cache: &'a CacheSession,
    /// The layers of base images resolved but not yet downloaded.
    pub remote: Option<&'a RemoteBlobs>,
    /// Whether the build makes several platforms (labels and failures name
    /// each stage's platform).
    pub multi_platform: bool,
}

/// Loads an image from the store as a stage base.
pub fn image_output(store: &Store, img: &ResolvedImage) -> Result<StageOutput, StepError> {
    let err = |source| StepError::Image {
        reference: img.reference.clone(),
        source,
    };
    let (manifest, config) = store.load_image(&img.manifest).map_err(err)?;
    Ok(StageOutput {
        layers: LayerBlob::of_image(&manifest, &config),
        history: config.history.clone(),
        platform: Platform {
            architecture: config.architecture.clone(),
            os: config.os.clone(),
            variant: config.variant.clone(),
            os_version: None,
        },
        config,
        key: Some(from_key(&img.manifest.digest).0),
        time: None,
    })
}

/// The progress label of a stage: its name, `stage-N` when the Dockerfile
/// has several stages, nothing for a single-stage file; prefixed with its
/// platform in a multi-platform build or when it is not the host's
/// (COMPAT(buildkit): `[linux/arm64 build 2/3]`).
fn label(env: &BuildEnv<'_>, stage: &Stage) -> String {
    let name = match (&stage.name, env.graph.stages.len()) {
        (_, n) if n < 2 => String::new(),
        (Some(n), _) => format!("{n} "),
        (None, _) => format!("stage-{} ", stage.id.0),
    };
    if env.multi_platform || !super::emulation::is_native(&stage.platform) {
        return format!("{} {name}", stage.platform.to_specifier());
    }
    name
}

/// Builds `stage` on top of `base`; `outputs` holds the finished stages it
/// depends on.
pub fn build_stage(
    env: &BuildEnv<'_>,
    stage: &Stage,
    base: StageOutput,
    outputs: &BTreeMap<usize, Arc<StageOutput>>,
) -> Result<StageOutput, BuildError> {
    let mut out = base;
    let visible: Vec<&Step> = stage
        .steps
        .iter()
        .filter(|s| !matches!(s.op, Op::Meta))
        .collect();
    // COMPAT(buildkit): only an image base is a step of its own (`[1/n] FROM …`);
    // a stage built on another stage, or on scratch, numbers from its first step.
    let from_image = usize::from(matches!(stage.base, Base::Image(_)));
    let total = visible.len() + from_image;
    let label = label(env, stage);
    if let Base::Image(img) = &stage.base {
        let v = env.progress.start(
            format!("[{label}1/{total}] FROM {}", img.reference),
            Some(StepRef {
                stage: stage.id.0,
                index: 0,
            }),
        );
        v.done();
    }
    if !matches!(stage.base, Base::Stage(_)) {
        out.key = env.cache.root_key(out.key, &stage.platform);
    }
    let mut n = from_image;
    // History entries of metadata steps that no earlier step dates: they
    // take the time of the first step that has one (below), so a no-op
    // rebuild gives the same config (and image, and archive) rather than
    // one stamped with this build's clock. Only a stage with no such step
    // keeps the build's own time.
    let mut undated = Vec::new();
    for (i, step) in stage.steps.iter().enumerate() {
        if matches!(step.op, Op::Meta) {
            if out.time.is_none() {
                undated.push(out.history.len());
            }
            let created = step_time(env, out.time);
            out.history.push(history(&created, &step.created_by, true));
            continue;
        }
        n += 1;
        let name = format!("[{label}{n}/{total}] {}", step.display);
        let v = env.progress.start(
            name.clone(),
            Some(StepRef {
                stage: stage.id.0,
                index: i + 1,
            }),
        );
        match cached_step(env, stage, (i + 1, &name), step, &out, outputs, &v) {
            Ok(done) => {
                out.layers.push(done.layer);
                out.key = Some(done.key);
                out.time = Some(out.time.map_or(done.time, |t| t.max(done.time)));
                let created = step_time(env, out.time);
                for h in undated.drain(..) {
                    out.history[h].created = Some(created.clone());
                }
                out.history.push(history(&created, &step.created_by, false));
                if done.hit {
                    v.cached();
                } else {
                    v.done();
                }
            }
            Err(source) => {
                v.failed(chain(&source));
                return Err(BuildError::Step {
                    span: step.span,
                    display: step.display.clone(),
                    source: Box::new(source),
                });
            }
        }
    }
    out.config = stage.config.clone();
    out.platform = stage.platform.clone();
    Ok(out)
}

/// A step's result: from the cache or from running it.
struct StepDone {
    /// The step's layer; the shared empty layer when it changed nothing.
    layer: LayerBlob,
    key: StepKey,
    time: i64,
    hit: bool,
}

/// The history time of a step whose result dates from `time` (`None`:
/// no step yet: the build's own time).
fn step_time(env: &BuildEnv<'_>, time: Option<i64>) -> String {
    match time {
        Some(t) => env.cache.created(t),
        None => env.created.clone(),
    }
}

/// Keys `step`, serves it from the cache when its record is there, else
/// runs it and records the result.
fn cached_step(
    env: &BuildEnv<'_>,
    stage: &Stage,
    (index, name): (usize, &str),
    step: &Step,
    cur: &StageOutput,
    outputs: &BTreeMap<usize, Arc<StageOutput>>,
    vertex: &super::event::Vertex,
) -> Result<StepDone, StepError> {
    let parent = cur.key;
    let kx = env.cache.key_env(env.context);
    let keyed = key_step(&kx, step, parent.as_ref(), outputs)?;
    let listing = kx.take_listing();
    if let Keyed::Before(key, _) = &keyed {
        if let Some(rec) = env.cache.lookup(stage, key).map_err(StepError::Cache)? {
            let layer = match &rec.layer {
                Some(l) => hit_layer(env, &rec, l)?,
                None => empty_layer(env.store, &env.pack)?,
            };
            env.cache.note(stage, index, name, *key, true);
            return Ok(StepDone {
                layer,
                key: *key,
                time: rec.created,
                hit: true,
            });
        }
    }
    let layer = run_one(env, &stage.platform, step, cur, outputs, vertex)?;
    let (key, pre) = match keyed {
        Keyed::Before(key, pre) => (key, pre),
        Keyed::AfterRun(op, from) => key_after_run(
            parent.as_ref(),
            op,
            &from,
            layer.as_ref().map(|l| l.diff_id.bytes()),
        ),
        // A step that could not be keyed but ran fine (a source appeared
        // meanwhile): key it by its result, so the chain goes on.
        Keyed::Never => {
            let content = layer.as_ref().map_or([0; 32], |l| *l.diff_id.bytes());
            crate::cache::step_key(
                parent.as_ref(),
                crate::cache::OpKind::Run,
                &serde_json::json!({ "unkeyed": step.display }),
                &[crate::cache::ContentDigest::from_bytes(content)],
            )
        }
    };
    let rec = env
        .cache
        .commit(key, layer.as_ref(), &pre, listing.as_ref())
        .map_err(StepError::Cache)?;
    env.cache.note(stage, index, name, key, false);
    let layer = match layer {
        Some(l) => l,
        None => empty_layer(env.store, &env.pack)?,
    };
    Ok(StepDone {
        layer,
        key,
        time: rec.created,
        hit: false,
    })
}

/// An error and its causes on one line, for the progress stream.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

fn source_for(
    env: &BuildEnv<'_>,
    from: &FilesFrom,
    outputs: &BTreeMap<usize, Arc<StageOutput>>,
) -> Result<Source, StepError> {
    Ok(match from {
        FilesFrom::Context => env.context.clone(),
        FilesFrom::NamedContext(name) => env.cache.named_source(name)?.clone(),
        FilesFrom::Stage(id) => match outputs.get(&id.0) {
            Some(o) => Source::image(o.rootfs(env.store, env.remote)?),
            // The scheduler waits for every dependency, so this is a bug
            // (a `--from` stage missing from `deps`): say so, never copy nothing.
            None => return Err(StepError::StageNotBuilt { stage: id.0 }),
        },
        FilesFrom::Image(img) => {
            Source::image(image_output(env.store, img)?.rootfs(env.store, env.remote)?)
        }
    })
}

fn mount_from(m: &RunMount) -> Option<FilesFrom> {
    let from = match m {
        RunMount::Bind { from, .. } => from,
        RunMount::Cache { from: Some(f), .. } => f,
        _ => return None,
    };
    Some(match from {
        FilesFrom::Context => FilesFrom::Context,
        FilesFrom::NamedContext(n) => FilesFrom::NamedContext(n.clone()),
        FilesFrom::Stage(id) => FilesFrom::Stage(*id),
        FilesFrom::Image(img) => FilesFrom::Image(img.clone()),
    })
}

/// A hit's layer in the build's compression: the recorded blob when the
/// record has that encoding, else the stored blob re-encoded (same diff_id)
/// and added to the record.
fn hit_layer(env: &BuildEnv<'_>, rec: &CacheRecord, l: &LayerBlob) -> Result<LayerBlob, StepError> {
    if let Some(have) = env.cache.encoded(rec) {
        return Ok(have);
    }
    let made = reencode(env.store, &l.descriptor, l.diff_id, &env.pack)?;
    env.cache
        .add_encoding(rec, &made)
        .map_err(StepError::Cache)?;
    Ok(made)
}

/// Runs one step; `Some(layer)` when it changed the filesystem (`None` keeps
/// the step's key and record what they were before empty layers were written).
fn run_one(
    env: &BuildEnv<'_>,
    platform: &Platform,
    step: &Step,
    cur: &StageOutput,
    outputs: &BTreeMap<usize, Arc<StageOutput>>,
    vertex: &super::event::Vertex,
) -> Result<Option<LayerBlob>, StepError> {
    let (dir, kind): (Staging, SourceKind) = match &step.op {
        Op::Meta => return Ok(None),
        Op::Copy(op) => {
            let src = source_for(env, &op.from, outputs)?;
            // COMPAT(buildkit): `COPY --link` is copied onto an empty tree,
            // so the base's filesystem (and, for a lazily resolved base, its
            // layer download) is needed only to look up a `--chown` name.
            let target = match reads_target(op) {
                true => cur.rootfs(env.store, env.remote)?,
                false => MergedFs::default(),
            };
            let dir = Staging::adopt(staging_dir(env.store, "copy-")?);
            stage_copy(op, &src, &target, dir.path())?;
            (dir, SourceKind::Plain)
        }
        Op::Workdir(WorkdirOp { path, user }) => {
            let target = cur.rootfs(env.store, env.remote)?;
            let dir = Staging::adopt(staging_dir(env.store, "workdir-")?);
            stage_mkdir(path, user, &target, dir.path())?;
            (dir, SourceKind::Plain)
        }
        Op::Run(op) => {
            let mut mount_sources = Vec::new();
            for m in &op.mounts {
                mount_sources.push(match mount_from(m) {
                    Some(f) => Some(source_for(env, &f, outputs)?),
                    None => None,
                });
            }
            let lower = cur.rootfs(env.store, env.remote)?.layers().to_vec();
            let cx = RunContext {
                platform,
                name_platform: env.multi_platform,
                store: env.store,
                exe: env.exe,
                lower,
                secrets: env.secrets,
                ssh: env.ssh,
                mount_sources,
                sandbox: env.sandbox,
            };
            let upper = Staging::adopt(run_step(&cx, op, vertex)?);
            (upper, SourceKind::OverlayUpper)
        }
    };
    if is_empty_dir(dir.path()) {
        remove_tree(dir.path())?;
        return Ok(None);
    }
    Ok(Some(commit_dir(env.store, dir.path(), kind, &env.pack)?))
}

fn is_empty_dir(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_none())
}
