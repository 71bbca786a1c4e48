//! From a plan step to its cache key: resolves what the step reads (the
//! content digest of context sources after `.dockerignore`, from the
//! [`ContextHasher`]; a stage's key; an image's digest) and hands it with the
//! plan's op to the `cache` recipe, which decides what else matters.
//!
//! Invariants: a key reads only what the step reads: COPY/ADD the selected
//! sources (never mtime, uid/gid or ignored files), RUN its env, user,
//! workdir and mount specs (a bind mount from the context by its content,
//! cache mounts by id, secrets by id: never their contents). A step whose
//! key cannot be known before it runs (ADD of a URL without `--checksum`)
//! gets [`Keyed::AfterRun`]: it always runs and is keyed by what it
//! produced, so later steps still hit when the download did not change.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::cache::{
    copy_key, run_key, workdir_key, ContentDigest, ContextHasher, InputListing, SourceKey, StepKey,
};
use crate::dockerfile::ignore::IgnorePatterns;
use crate::plan::{CopyOp, CopySource, FilesFrom, Op, Step};

use super::contexts::LocalContext;
use super::error::StepError;
use super::image::StageOutput;
use super::source::Source;

/// The key of a step's result when nothing ran before it (`FROM scratch`, or
/// a stage with no keyed step): the empty filesystem.
pub fn scratch_key() -> StepKey {
    StepKey::of(b"kiln-scratch-v1")
}

/// How a step is keyed.
#[derive(Debug)]
pub enum Keyed<'a> {
    /// Known before running: the key and its pre-image.
    Before(StepKey, Vec<u8>),
    /// Known only from the result (`ADD <url>` without a checksum): the op and
    /// what its sources resolved to, which the key is finished with.
    AfterRun(&'a CopyOp, SourceKey),
    /// The step cannot be keyed (a source that does not exist): it runs and
    /// fails with its own error.
    Never,
}

/// What key computation reads besides the step.
pub struct KeyEnv<'a> {
    /// The context hasher (stat cache).
    pub hasher: &'a ContextHasher,
    /// The context as COPY sees it.
    pub context: &'a Source,
    /// `.dockerignore`, for the hasher's filter.
    pub ignore: Option<&'a IgnorePatterns>,
    /// With `--debug-cache`: collects the context files the key reads.
    pub listing: Option<Mutex<InputListing>>,
    /// The `--build-context` directories by name.
    pub named: &'a BTreeMap<String, LocalContext>,
}

/// One local tree a key reads: the build context or a named directory.
struct Local<'a> {
    hasher: &'a ContextHasher,
    source: &'a Source,
    ignore: Option<&'a IgnorePatterns>,
}

impl<'a> KeyEnv<'a> {
    /// The main context (`None`) or the named directory context `name`.
    fn local(&self, name: Option<&str>) -> Result<Local<'_>, StepError> {
        let Some(name) = name else {
            return Ok(Local {
                hasher: self.hasher,
                source: self.context,
                ignore: self.ignore,
            });
        };
        let c = self.named.get(name).ok_or_else(|| StepError::NoContext {
            name: name.to_string(),
        })?;
        Ok(Local {
            hasher: &c.hasher,
            source: &c.source,
            ignore: c.ignore.as_ref(),
        })
    }
}

impl KeyEnv<'_> {
    /// The collected listing (`None` without `--debug-cache`).
    pub fn take_listing(self) -> Option<InputListing> {
        self.listing
            .map(|m| m.into_inner().unwrap_or_else(|p| p.into_inner()))
    }
}

/// The key of `step` on top of `parent`; `outputs` are the finished stages.
pub fn key_step<'a>(
    kx: &KeyEnv<'_>,
    step: &'a Step,
    parent: Option<&StepKey>,
    outputs: &BTreeMap<usize, Arc<StageOutput>>,
) -> Result<Keyed<'a>, StepError> {
    match &step.op {
        Op::Meta => Ok(Keyed::Never),
        Op::Workdir(op) => {
            let (k, pre) = workdir_key(parent, op);
            Ok(Keyed::Before(k, pre))
        }
        Op::Run(op) => {
            let source = |from: &FilesFrom, path: &str| mount_source(kx, from, path, outputs);
            Ok(match run_key(parent, op, source)? {
                Some((k, pre)) => Keyed::Before(k, pre),
                None => Keyed::Never,
            })
        }
        Op::Copy(op) => copy_keyed(kx, op, parent, outputs),
    }
}

/// Finishes an [`Keyed::AfterRun`] key with the digest of the layer the
/// step produced (its diff_id; `None`: no change).
pub fn key_after_run(
    parent: Option<&StepKey>,
    op: &CopyOp,
    from: &SourceKey,
    diff_id: Option<&[u8; 32]>,
) -> (StepKey, Vec<u8>) {
    let content = match diff_id {
        Some(b) => ContentDigest::from_bytes(*b),
        None => ContentDigest::of(b""),
    };
    copy_key(parent, op, from, &[content])
}

fn copy_keyed<'a>(
    kx: &KeyEnv<'_>,
    op: &'a CopyOp,
    parent: Option<&StepKey>,
    outputs: &BTreeMap<usize, Arc<StageOutput>>,
) -> Result<Keyed<'a>, StepError> {
    let local: Vec<&str> = op
        .sources
        .iter()
        .filter_map(|s| match s {
            CopySource::Path(p) => Some(p.as_str()),
            CopySource::Url(_) => None,
        })
        .collect();
    let from = match &op.from {
        FilesFrom::Context | FilesFrom::NamedContext(_) => {
            // An octal mode replaces the files' own bits, so they stay out of
            // the digest; a symbolic one keeps them (its result depends on them).
            let chmod = op.chmod.as_ref().and_then(|c| c.octal());
            let name = match &op.from {
                FilesFrom::NamedContext(n) => Some(n.as_str()),
                _ => None,
            };
            // A named directory counts by content, as the context does: the
            // same files copy the same wherever they were read from.
            match context_digest(kx, name, &local, chmod)? {
                Some(d) => SourceKey::Context(d),
                None => return Ok(Keyed::Never),
            }
        }
        FilesFrom::Stage(id) => SourceKey::Stage(stage_key(outputs, id.0)?),
        FilesFrom::Image(img) => SourceKey::Image(img.manifest.digest),
    };
    // COMPAT(buildkit): a URL pinned by --checksum is keyed by URL and
    // checksum; an unpinned one must be fetched to know its content.
    let has_url = op.sources.iter().any(|s| matches!(s, CopySource::Url(_)));
    let unpinned = has_url && op.add.as_ref().is_none_or(|a| a.checksum.is_none());
    if unpinned {
        return Ok(Keyed::AfterRun(op, from));
    }
    let (k, pre) = copy_key(parent, op, &from, &[]);
    Ok(Keyed::Before(k, pre))
}

fn stage_key(outputs: &BTreeMap<usize, Arc<StageOutput>>, id: usize) -> Result<StepKey, StepError> {
    match outputs.get(&id) {
        Some(o) => Ok(o.key.unwrap_or_else(scratch_key)),
        None => Err(StepError::StageNotBuilt { stage: id }),
    }
}

/// The Merkle digest of the context paths `sources` select; `None` when a
/// source selects nothing (the step then fails with its own error).
fn context_digest(
    kx: &KeyEnv<'_>,
    name: Option<&str>,
    sources: &[&str],
    chmod: Option<u32>,
) -> Result<Option<ContentDigest>, StepError> {
    let local = kx.local(name)?;
    let mut rel: Vec<PathBuf> = Vec::new();
    for s in sources {
        let nodes = local
            .source
            .select(s)
            .map_err(super::copy::CopyError::from)?;
        if nodes.is_empty() {
            return Ok(None);
        }
        // The path as selected, not as resolved: the hasher follows it (and
        // digests the link targets), and the name a copy takes is its last part.
        rel.extend(
            nodes
                .into_iter()
                .map(|n| PathBuf::from(n.path.trim_start_matches('/'))),
        );
    }
    let ignore = local.ignore;
    let filter = move |p: &Path, is_dir: bool| match ignore {
        None => true,
        Some(ig) => {
            let rel = p.to_string_lossy();
            !ig.is_excluded(&rel) || (is_dir && ig.dir_may_have_exceptions(&rel))
        }
    };
    let d = local
        .hasher
        .digest_paths_chmod(&rel, &filter, chmod)
        .map_err(StepError::Cache)?;
    if let Some(listing) = &kx.listing {
        let mut l = listing.lock().unwrap_or_else(|p| p.into_inner());
        let prefix = name.map_or(String::new(), |n| format!("[context {n}] "));
        super::inputs::list_inputs(local.hasher, &rel, &filter, chmod, &prefix, &mut l)
            .map_err(StepError::Cache)?;
    }
    Ok(Some(d))
}

fn mount_source(
    kx: &KeyEnv<'_>,
    from: &FilesFrom,
    source: &str,
    outputs: &BTreeMap<usize, Arc<StageOutput>>,
) -> Result<Option<SourceKey>, StepError> {
    Ok(Some(match from {
        FilesFrom::Context | FilesFrom::NamedContext(_) => {
            let name = match from {
                FilesFrom::NamedContext(n) => Some(n.as_str()),
                _ => None,
            };
            match context_digest(kx, name, &[source], None)? {
                Some(d) => SourceKey::Context(d),
                None => return Ok(None),
            }
        }
        FilesFrom::Stage(id) => SourceKey::Stage(stage_key(outputs, id.0)?),
        FilesFrom::Image(img) => SourceKey::Image(img.manifest.digest),
    }))
}
