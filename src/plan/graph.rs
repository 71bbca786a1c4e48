//! The plan's output: a `BuildGraph` of stages, each a base plus ordered
//! steps. Plain serializable data: every variable is already expanded, every
//! path already absolute, every stage reference already an index. Source
//! spans travel beside the ops (in `Step::span`) so they never reach a cache
//! key unless the cache module puts them there.

use std::collections::{BTreeMap, BTreeSet};
use std::error::Error;

use serde::Serialize;

use crate::dockerfile::ignore::{IgnoreError, IgnorePatterns};
use crate::dockerfile::Span;
use crate::oci::{Descriptor, Digest, ImageConfig, Platform};

use super::{Chmod, Chown};

/// What the caller decides for a build.
#[derive(Clone, Debug, Serialize)]
pub struct PlanOptions {
    /// `--build-arg NAME=VALUE`: overrides only ARGs the Dockerfile declares
    /// (proxy args excepted, see `RunOp::env`).
    pub build_args: BTreeMap<String, String>,
    /// `--target`: the stage to build (matched case-insensitively); `None` is the last stage.
    pub target: Option<String>,
    /// The target platform of this pass (`TARGETPLATFORM`; a multi-platform
    /// build plans once per target platform).
    pub platform: Platform,
    /// The build platform (`BUILDPLATFORM`): where RUN runs natively, the
    /// host.
    pub build_platform: Platform,
    /// `--label NAME=VALUE`: applied to the target stage's config last.
    pub labels: BTreeMap<String, String>,
    /// `--network`: the network of a RUN without its own `--network` (or with
    /// `--network=default`).
    pub network: NetworkMode,
    /// `--build-context NAME=VALUE`: what each named context is, keyed by
    /// [`context_key`](super::context_key) of its name.
    pub contexts: BTreeMap<String, ContextKind>,
}

impl Default for PlanOptions {
    fn default() -> Self {
        Self {
            build_args: BTreeMap::new(),
            target: None,
            platform: Platform::host(),
            build_platform: Platform::host(),
            labels: BTreeMap::new(),
            network: NetworkMode::Default,
            contexts: BTreeMap::new(),
        }
    }
}

/// Turns an image reference into a pinned manifest and its config. The plan
/// calls it only for stages the target reaches.
pub trait ImageResolver {
    /// Resolves `reference` (as written after expansion, e.g. `busybox:1.36`) for `platform`.
    fn resolve(
        &self,
        reference: &str,
        platform: &Platform,
    ) -> Result<ResolvedImage, Box<dyn Error + Send + Sync>>;

    /// Resolves the image of the named context `name` (a key of
    /// `PlanOptions::contexts` whose kind is [`ContextKind::Image`]).
    fn resolve_context(
        &self,
        name: &str,
        _platform: &Platform,
    ) -> Result<ResolvedImage, Box<dyn Error + Send + Sync>> {
        Err(format!("this resolver has no build context {name}").into())
    }
}

/// What a `--build-context` names, as far as the plan cares: the builder
/// knows where it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ContextKind {
    /// A local directory (`NAME=DIR`): read like the build context.
    Dir,
    /// An image (`docker-image://REF`, `oci-layout://DIR`), resolved through
    /// [`ImageResolver::resolve_context`].
    Image,
}

/// A base image pinned by digest.
#[derive(Clone, Debug, Serialize)]
pub struct ResolvedImage {
    /// The reference as the Dockerfile named it (after expansion).
    pub reference: String,
    /// The platform-specific manifest.
    pub manifest: Descriptor,
    /// Its config.
    pub config: ImageConfig,
}

/// A stage's index in `BuildGraph::stages`, in Dockerfile order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct StageId(pub usize);

/// The whole plan.
#[derive(Clone, Debug, Serialize)]
pub struct BuildGraph {
    /// Every stage of the Dockerfile; index = `StageId.0`. Stages the target
    /// does not reach are kept (so ids are stable) with `reached == false`
    /// and no steps.
    pub stages: Vec<Stage>,
    /// The stage whose result is the image.
    pub target: StageId,
    /// `--build-arg` names no reached ARG declared (BuildKit warns about them).
    pub unused_build_args: Vec<String>,
    /// Every unset name an expansion looked up, in expansion order (global
    /// ARG defaults and FROM lines included: the checks tell them apart).
    pub undefined_vars: Vec<UndefinedVar>,
    /// The global ARGs (before the first FROM), in file order, with the
    /// values the build gives them (`--call=outline` lists them).
    pub global_args: Vec<ArgDecl>,
}

/// One name an ARG instruction declares, as lowering gave it its value.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct ArgDecl {
    /// The name.
    pub name: String,
    /// The `--build-arg` value, else the expanded default, else (in a stage)
    /// the global value; `None` when there is none.
    pub value: Option<String>,
    /// The set names the default's expansion looked up (global ARGs only:
    /// BuildKit's outline lists an ARG a used global ARG's default reads).
    pub uses: BTreeSet<String>,
    /// A stage ARG without default or build arg that took the global
    /// value: BuildKit's outline then shows the global declaration.
    pub inherited: bool,
    /// The ARG instruction's lines.
    pub span: Span,
}

/// A variable an instruction's expansion looked up while it was unset.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct UndefinedVar {
    /// First line of the instruction.
    pub start_line: usize,
    /// Last line.
    pub end_line: usize,
    /// The name.
    pub name: String,
    /// The names that were set then (for a did-you-mean).
    pub known: Vec<String>,
}

impl BuildGraph {
    /// The target stage.
    pub fn target_stage(&self) -> &Stage {
        &self.stages[self.target.0]
    }
}

/// One FROM block.
#[derive(Clone, Debug, Serialize)]
pub struct Stage {
    /// Its index.
    pub id: StageId,
    /// `AS name`, lower-cased (BuildKit matches names case-insensitively).
    pub name: Option<String>,
    /// What it starts from.
    pub base: Base,
    /// Base-image ONBUILD triggers first, then its own instructions.
    pub steps: Vec<Step>,
    /// Stages it reads: its base stage, `COPY --from`, `RUN --mount from=`; sorted, no duplicates.
    pub deps: Vec<StageId>,
    /// True when the target needs it; only reached stages are lowered and built.
    pub reached: bool,
    /// The final config: base config plus this stage's metadata, `OnBuild`
    /// replaced by the stage's own ONBUILD instructions. `rootfs` and
    /// `history` are left as the base had them: the build appends.
    pub config: ImageConfig,
    /// The platform the stage runs on: its `FROM --platform`, else its base
    /// stage's, else the target platform.
    pub platform: Platform,
    /// The stage's own ARGs as lowered (empty when not reached).
    pub args: Vec<ArgDecl>,
    /// The set names the FROM's base name and `--platform` looked up.
    pub from_args: BTreeSet<String>,
}

/// What a stage starts from.
// Built once per stage or step and never copied in a hot loop: boxing would
// only make every match on the plan noisier.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum Base {
    /// `FROM scratch`: an empty filesystem and an empty config.
    Scratch,
    /// A resolved image.
    Image(ResolvedImage),
    /// The result of an earlier stage.
    Stage(StageId),
    /// An image reference that was not resolved because the stage is not reached.
    Unresolved {
        /// The reference after expansion.
        reference: String,
    },
}

/// One plan node: an op plus where it came from.
#[derive(Clone, Debug, Serialize)]
pub struct Step {
    /// What the step does.
    pub op: Op,
    /// The instruction's lines (for an ONBUILD trigger from an image: the FROM line).
    pub span: Span,
    /// The history text BuildKit writes, e.g. `RUN /bin/sh -c make # buildkit`, `ENV A=b`.
    pub created_by: String,
    /// True when the step makes no layer (history `empty_layer`).
    pub empty_layer: bool,
    /// The instruction for progress output, keyword upper-cased: `RUN make`.
    pub display: String,
}

/// What a step does.
// Built once per stage or step and never copied in a hot loop: boxing would
// only make every match on the plan noisier.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Op {
    /// Run a process in the stage's filesystem.
    Run(RunOp),
    /// COPY or ADD.
    Copy(CopyOp),
    /// WORKDIR: create the directory (a layer unless it is `/`).
    Workdir(WorkdirOp),
    /// ENV, LABEL, CMD, ARG, …: history only, the effect is in `Stage::config`
    /// and in later ops.
    Meta,
}

/// RUN.
#[derive(Clone, Debug, Serialize)]
pub struct RunOp {
    /// The process argv: the SHELL (default `/bin/sh -c`) already prepended for shell form.
    pub argv: Vec<String>,
    /// `KEY=VALUE`, keys unique: the config env and the ARGs in scope
    /// (BuildKit puts declared ARGs in the process env), in definition order.
    /// A proxy variable is here only when the Dockerfile declares it.
    pub env: Vec<String>,
    /// Proxy `--build-arg`s (`HTTP_PROXY`=…, both spellings) the process also
    /// gets although undeclared (BuildKit's `llb.WithProxy`): the executor
    /// appends them to `env`; like BuildKit, cache keys and history leave them out.
    pub proxy_env: Vec<String>,
    /// USER in effect (empty: root).
    pub user: String,
    /// WORKDIR in effect, absolute.
    pub workdir: String,
    /// `--network`.
    pub network: NetworkMode,
    /// `--security`.
    pub security: Security,
    /// `--mount`s, in order.
    pub mounts: Vec<RunMount>,
    /// Heredoc scripts to mount read-only under `/dev/pipes/<name>` (BuildKit's
    /// place for a lone `<<EOF` script that starts with `#!`; `argv` then runs
    /// `/dev/pipes/<name>` through the shell).
    pub files: Vec<InlineFile>,
    /// Data for the process's stdin. BuildKit never feeds stdin (heredoc text
    /// goes into `argv` or `files`), so lowering leaves this `None`.
    pub stdin: Option<String>,
}

impl RunOp {
    /// Where `files` are mounted.
    pub const FILES_DIR: &'static str = "/dev/pipes";
}

/// `RUN --network`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NetworkMode {
    /// The builder's default (kiln: the host network, like BuildKit's default).
    Default,
    /// An empty network namespace.
    None,
    /// The host network.
    Host,
}

/// `RUN --security`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Security {
    /// The normal sandbox.
    Sandbox,
    /// All capabilities (needs the builder to allow it).
    Insecure,
}

/// One `RUN --mount=…`.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RunMount {
    /// `type=bind`: a directory of the context, a stage or an image.
    Bind {
        /// Absolute mount point.
        target: String,
        /// Path inside `from` (default `/`).
        source: String,
        /// Where the files come from.
        from: FilesFrom,
        /// `rw`: writes allowed (and discarded).
        rw: bool,
    },
    /// `type=cache`: a persistent directory keyed by `id`.
    Cache {
        /// Cache id (default: the target).
        id: String,
        /// Absolute mount point.
        target: String,
        /// Read-only.
        ro: bool,
        /// Concurrent access policy.
        sharing: Sharing,
        /// Seed the cache from a stage or image.
        from: Option<FilesFrom>,
        /// Path inside `from`.
        source: String,
        /// Mode of a new cache directory (default 0755).
        mode: u32,
        /// Owner of a new cache directory.
        uid: u32,
        /// Group of a new cache directory.
        gid: u32,
    },
    /// `type=tmpfs`.
    Tmpfs {
        /// Absolute mount point.
        target: String,
        /// Size limit in bytes.
        size: Option<u64>,
    },
    /// `type=secret`.
    Secret {
        /// Secret id (default: the target's file name).
        id: String,
        /// File to mount it at (default `/run/secrets/<id>` unless `env` is set).
        target: Option<String>,
        /// Environment variable to expose it as.
        env: Option<String>,
        /// Fail when the secret is not provided.
        required: bool,
        /// File mode (default 0400).
        mode: u32,
        /// File owner.
        uid: u32,
        /// File group.
        gid: u32,
    },
    /// `type=ssh`.
    Ssh {
        /// Agent id (default `default`).
        id: String,
        /// Socket path (default `/run/buildkit/ssh_agent.<n>`).
        target: String,
        /// Fail when the agent is not provided.
        required: bool,
        /// Socket mode (default 0600).
        mode: u32,
        /// Socket owner.
        uid: u32,
        /// Socket group.
        gid: u32,
    },
}

/// `sharing=` of a cache mount.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Sharing {
    /// Concurrent writers share it (default).
    Shared,
    /// Each concurrent writer gets its own copy.
    Private,
    /// Writers wait for each other.
    Locked,
}

/// Where a COPY/ADD or a bind or cache mount (`RUN --mount=from=`) reads its
/// files from: one type for both, as BuildKit resolves `--from` one way.
// Built once per stage or step and never copied in a hot loop: boxing would
// only make every match on the plan noisier.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum FilesFrom {
    /// The build context.
    Context,
    /// A directory named by `--build-context` (its [`context_key`](super::context_key)).
    NamedContext(String),
    /// An earlier stage's result.
    Stage(StageId),
    /// An image.
    Image(ResolvedImage),
}

/// COPY or ADD.
#[derive(Clone, Debug, Serialize)]
pub struct CopyOp {
    /// Where sources are read.
    pub from: FilesFrom,
    /// The sources, expanded, classified, in the Dockerfile's order.
    pub sources: Vec<CopySource>,
    /// `COPY <<EOF`: inline files (content expanded unless the delimiter was quoted), mode 0644.
    pub heredocs: Vec<InlineFile>,
    /// Destination, expanded, absolute (resolved against WORKDIR), keeps a trailing `/`.
    pub dest: String,
    /// `--chown` (expanded), parsed; names are resolved against the target.
    pub chown: Option<Chown>,
    /// `--chmod` (expanded), parsed; keeps the text as written.
    pub chmod: Option<Chmod>,
    /// `--link`.
    pub link: bool,
    /// `--parents`.
    pub parents: bool,
    /// `--exclude` patterns, expanded and compiled.
    pub excludes: Excludes,
    /// `Some` for ADD.
    pub add: Option<AddOptions>,
    /// True when `dest` ends in `/` (or is `.`-like): sources go inside it.
    pub dest_is_dir_hint: bool,
}

/// One COPY/ADD source, classified once, here: the builder and the step key
/// match on it and never look at the text to decide what it is. Git sources
/// do not reach the graph (planning refuses them).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum CopySource {
    /// A path read from `CopyOp::from` (the context, a stage or an image),
    /// as written: wildcards intact, relative to that root.
    Path(String),
    /// ADD of an `http(s)://` URL.
    Url(String),
}

impl CopySource {
    /// The source as written (what the step key and the history show).
    pub fn as_str(&self) -> &str {
        match self {
            Self::Path(s) | Self::Url(s) => s,
        }
    }
}

/// `--exclude` patterns, compiled at planning (a bad one fails there, with
/// the instruction's position). Serializes as the patterns as written.
#[derive(Clone, Debug, Default)]
pub struct Excludes {
    patterns: Vec<String>,
    /// `None` when there are no patterns.
    matcher: Option<IgnorePatterns>,
}

impl Excludes {
    /// Compiles `patterns` (patternmatcher's rules, as `.dockerignore`'s);
    /// on error, the index of the pattern refused and why.
    pub fn compile(patterns: Vec<String>) -> Result<Self, (usize, IgnoreError)> {
        if patterns.is_empty() {
            return Ok(Self::default());
        }
        // The error's 1-based line is the pattern's index + 1.
        let matcher = IgnorePatterns::from_patterns(&patterns).map_err(|e| {
            let line = match &e {
                IgnoreError::LoneExclamation { line }
                | IgnoreError::BadPattern { line, .. }
                | IgnoreError::Compile { line, .. } => *line,
            };
            (line.saturating_sub(1), e)
        })?;
        Ok(Self {
            patterns,
            matcher: Some(matcher),
        })
    }

    /// The patterns as written (expanded).
    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }

    /// The compiled patterns; `None` when there are none.
    pub fn matcher(&self) -> Option<&IgnorePatterns> {
        self.matcher.as_ref()
    }
}

impl Serialize for Excludes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.patterns.serialize(s)
    }
}

/// ADD-only options.
#[derive(Clone, Debug, Default, Serialize)]
pub struct AddOptions {
    /// `--checksum` (only for one http(s) source), parsed at planning.
    pub checksum: Option<Digest>,
    /// `--keep-git-dir`.
    pub keep_git_dir: bool,
    /// `--unpack`: `None` is ADD's default (unpack local archives, not URLs).
    pub unpack: Option<bool>,
}

/// WORKDIR.
#[derive(Clone, Debug, Serialize)]
pub struct WorkdirOp {
    /// Absolute, cleaned.
    pub path: String,
    /// USER in effect: owner of directories it creates (empty: root).
    pub user: String,
}

/// A file whose content is in the Dockerfile (a heredoc).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct InlineFile {
    /// File name (the heredoc delimiter).
    pub name: String,
    /// Content, `<<-` tab stripping already applied.
    pub content: String,
    /// File mode.
    pub mode: u32,
}
