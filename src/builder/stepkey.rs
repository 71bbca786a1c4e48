//! From a plan step to its cache key: fills the `cache::*KeyInput` structs
//! from the plan's ops and asks the [`ContextHasher`] for the content digest
//! of context sources (after `.dockerignore`).
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
    copy_key, run_key, workdir_key, AddKeyInput, ContentDigest, ContextHasher, CopyKeyInput,
    InlineFileKey, InputListing, MountKeyInput, NetworkKey, RunKeyInput, SecurityKey, SourceKey,
    StepKey,
};
use crate::dockerfile::ignore::IgnorePatterns;
use crate::plan::{
    CopyFrom, CopyOp, InlineFile, MountFrom, NetworkMode, Op, RunMount, RunOp, Security, Sharing,
    Step, WorkdirOp,
};

use super::contexts::LocalContext;
use super::error::StepError;
use super::source::Source;
use super::stage::StageOutput;

/// The key of a step's result when nothing ran before it (`FROM scratch`, or
/// a stage with no keyed step): the empty filesystem.
pub fn scratch_key() -> StepKey {
    StepKey::of(b"kiln-scratch-v1")
}

/// How a step is keyed.
#[derive(Debug)]
pub enum Keyed {
    /// Known before running: the key and its pre-image.
    Before(StepKey, Vec<u8>),
    /// Known only from the result (ADD <url> without a checksum): the input
    /// the key is finished with.
    AfterRun(Box<CopyKeyInput>),
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
pub fn key_step(
    kx: &KeyEnv<'_>,
    step: &Step,
    parent: Option<&StepKey>,
    outputs: &BTreeMap<usize, Arc<StageOutput>>,
) -> Result<Keyed, StepError> {
    match &step.op {
        Op::Meta => Ok(Keyed::Never),
        Op::Workdir(WorkdirOp { path, user }) => {
            let (k, pre) = workdir_key(parent, path, user);
            Ok(Keyed::Before(k, pre))
        }
        Op::Run(op) => {
            let Some(input) = run_input(kx, op, outputs)? else {
                return Ok(Keyed::Never);
            };
            let (k, pre) = run_key(parent, &input);
            Ok(Keyed::Before(k, pre))
        }
        Op::Copy(op) => copy_keyed(kx, op, parent, outputs),
    }
}

/// Finishes an [`Keyed::AfterRun`] key with the digest of the layer the
/// step produced (its diff_id; `None`: no change).
pub fn key_after_run(
    parent: Option<&StepKey>,
    mut input: CopyKeyInput,
    diff_id: Option<&[u8; 32]>,
) -> (StepKey, Vec<u8>) {
    let content = match diff_id {
        Some(b) => ContentDigest::from_bytes(*b),
        None => ContentDigest::of(b""),
    };
    if let Some(add) = &mut input.add {
        add.url_contents = vec![content];
    }
    copy_key(parent, &input)
}

fn is_remote(src: &str) -> bool {
    src.contains("://") || src.starts_with("git@")
}

fn copy_keyed(
    kx: &KeyEnv<'_>,
    op: &CopyOp,
    parent: Option<&StepKey>,
    outputs: &BTreeMap<usize, Arc<StageOutput>>,
) -> Result<Keyed, StepError> {
    let local: Vec<&String> = op.sources.iter().filter(|s| !is_remote(s)).collect();
    let from = match &op.from {
        CopyFrom::Context | CopyFrom::NamedContext(_) => {
            let chmod = op
                .chmod
                .as_deref()
                .and_then(|m| u32::from_str_radix(m, 8).ok());
            let name = match &op.from {
                CopyFrom::NamedContext(n) => Some(n.as_str()),
                _ => None,
            };
            // A named directory counts by content, as the context does: the
            // same files copy the same wherever they were read from.
            match context_digest(kx, name, &local, chmod)? {
                Some(d) => SourceKey::Context(d),
                None => return Ok(Keyed::Never),
            }
        }
        CopyFrom::Stage(id) => SourceKey::Stage(stage_key(outputs, id.0)?),
        CopyFrom::Image(img) => SourceKey::Image(img.manifest.digest),
    };
    let input = CopyKeyInput {
        from,
        sources: op.sources.clone(),
        heredocs: op.heredocs.iter().map(inline).collect(),
        dest: op.dest.clone(),
        dest_is_dir: op.dest_is_dir_hint,
        chown: op.chown.clone(),
        chmod: op.chmod.clone(),
        link: op.link,
        parents: op.parents,
        excludes: op.excludes.clone(),
        add: op.add.as_ref().map(|a| AddKeyInput {
            checksum: a.checksum.clone(),
            keep_git_dir: a.keep_git_dir,
            unpack: a.unpack,
            url_contents: vec![],
        }),
    };
    // COMPAT(buildkit): a URL pinned by --checksum is keyed by URL and
    // checksum; an unpinned one must be fetched to know its content.
    let unpinned = op.sources.iter().any(|s| is_remote(s))
        && op.add.as_ref().is_none_or(|a| a.checksum.is_none());
    if unpinned {
        return Ok(Keyed::AfterRun(Box::new(input)));
    }
    let (k, pre) = copy_key(parent, &input);
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
    sources: &[&String],
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

fn inline(f: &InlineFile) -> InlineFileKey {
    InlineFileKey {
        name: f.name.clone(),
        content: f.content.clone(),
        mode: f.mode,
    }
}

fn mount_source(
    kx: &KeyEnv<'_>,
    from: &MountFrom,
    source: &str,
    outputs: &BTreeMap<usize, Arc<StageOutput>>,
) -> Result<Option<SourceKey>, StepError> {
    Ok(Some(match from {
        MountFrom::Context | MountFrom::NamedContext(_) => {
            let name = match from {
                MountFrom::NamedContext(n) => Some(n.as_str()),
                _ => None,
            };
            let src = source.to_string();
            match context_digest(kx, name, &[&src], None)? {
                Some(d) => SourceKey::Context(d),
                None => return Ok(None),
            }
        }
        MountFrom::Stage(id) => SourceKey::Stage(stage_key(outputs, id.0)?),
        MountFrom::Image(img) => SourceKey::Image(img.manifest.digest),
    }))
}

fn mount_input(
    kx: &KeyEnv<'_>,
    m: &RunMount,
    outputs: &BTreeMap<usize, Arc<StageOutput>>,
) -> Result<Option<MountKeyInput>, StepError> {
    Ok(Some(match m {
        RunMount::Bind {
            target,
            source,
            from,
            rw,
        } => {
            let Some(from) = mount_source(kx, from, source, outputs)? else {
                return Ok(None);
            };
            MountKeyInput::Bind {
                target: target.clone(),
                source: source.clone(),
                from,
                rw: *rw,
            }
        }
        RunMount::Cache {
            id,
            target,
            ro,
            sharing,
            from,
            source,
            mode,
            uid,
            gid,
        } => MountKeyInput::Cache {
            id: id.clone(),
            target: target.clone(),
            ro: *ro,
            sharing: match sharing {
                Sharing::Shared => "shared",
                Sharing::Private => "private",
                Sharing::Locked => "locked",
            }
            .into(),
            from: match from {
                Some(f) => mount_source(kx, f, source, outputs)?,
                None => None,
            },
            source: source.clone(),
            mode: *mode,
            uid: *uid,
            gid: *gid,
        },
        RunMount::Tmpfs { target, size } => MountKeyInput::Tmpfs {
            target: target.clone(),
            size: *size,
        },
        RunMount::Secret {
            id,
            target,
            env,
            required,
            mode,
            uid,
            gid,
        } => MountKeyInput::Secret {
            id: id.clone(),
            target: target.clone(),
            env: env.clone(),
            required: *required,
            mode: *mode,
            uid: *uid,
            gid: *gid,
        },
        RunMount::Ssh {
            id,
            target,
            required,
            mode,
            uid,
            gid,
        } => MountKeyInput::Ssh {
            id: id.clone(),
            target: target.clone(),
            required: *required,
            mode: *mode,
            uid: *uid,
            gid: *gid,
        },
    }))
}

fn run_input(
    kx: &KeyEnv<'_>,
    op: &RunOp,
    outputs: &BTreeMap<usize, Arc<StageOutput>>,
) -> Result<Option<RunKeyInput>, StepError> {
    let mut mounts = Vec::with_capacity(op.mounts.len());
    for m in &op.mounts {
        match mount_input(kx, m, outputs)? {
            Some(k) => mounts.push(k),
            None => return Ok(None),
        }
    }
    Ok(Some(RunKeyInput {
        argv: op.argv.clone(),
        env: op.env.clone(),
        proxy_env: op.proxy_env.clone(),
        user: op.user.clone(),
        workdir: op.workdir.clone(),
        network: match op.network {
            NetworkMode::Default => NetworkKey::Default,
            NetworkMode::None => NetworkKey::None,
            NetworkMode::Host => NetworkKey::Host,
        },
        security: match op.security {
            Security::Sandbox => SecurityKey::Sandbox,
            Security::Insecure => SecurityKey::Insecure,
        },
        mounts,
        files: op.files.iter().map(inline).collect(),
        stdin: op.stdin.clone(),
    }))
}
