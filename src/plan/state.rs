//! The state one stage accumulates while its instructions are lowered
//! (BuildKit's `dispatchState` without LLB) and the dispatch from an
//! instruction word to the function that lowers it.
//!
//! Two environments are kept apart, as in BuildKit: `config.config.env` is
//! the image's `Env` (ENV only), `env` is what expansion and RUN see (the
//! image env plus ARG values, a later definition replacing an earlier one).

use std::collections::{BTreeSet, HashMap};

use crate::dockerfile::{Instruction, Span};
use crate::oci::{ImageConfig, Platform, RootFs};

use super::contexts::context_key;
use super::expand::{Env, Expander};
use super::stages::{resolve_ref, Ref};

use super::{
    ArgDecl, ContextKind, ImageResolver, Op, PlanError, PlanOptions, ResolvedImage, StageId, Step,
};

/// BuildKit's `system.DefaultPathEnv` for Linux.
pub(super) const DEFAULT_PATH: &str =
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What the whole lowering shares across stages.
pub(super) struct Lowerer<'a> {
    /// The caller's options.
    pub opts: &'a PlanOptions,
    /// Expansion with the file's escape character.
    pub exp: Expander,
    /// Predefined args and global ARGs.
    pub global: Env,
    /// Stage names by id.
    pub names: Vec<Option<String>>,
    /// Stage labels (`name` or `stage-N`) by id, for messages.
    pub labels: Vec<String>,
    /// ARG names declared in the global scope or a lowered stage.
    pub declared: BTreeSet<String>,
    /// The platform of the stage being resolved or lowered: what its base
    /// and its `--from` images resolve for.
    pub platform: Platform,
    resolver: &'a dyn ImageResolver,
    images: HashMap<String, ResolvedImage>,
}

/// Where a `--from` points, resolved.
pub(super) enum Source {
    /// An earlier stage.
    Stage(StageId),
    /// An image.
    Image(Box<ResolvedImage>),
    /// A directory named by `--build-context` (its key).
    Context(String),
}

impl<'a> Lowerer<'a> {
    /// A lowerer over stages named `names`.
    pub(super) fn new(
        opts: &'a PlanOptions,
        exp: Expander,
        global: Env,
        names: Vec<Option<String>>,
        resolver: &'a dyn ImageResolver,
    ) -> Self {
        let labels = names
            .iter()
            .enumerate()
            .map(|(i, n)| n.clone().unwrap_or_else(|| format!("stage-{i}")))
            .collect();
        Self {
            opts,
            exp,
            global,
            names,
            labels,
            declared: BTreeSet::new(),
            platform: opts.platform.clone(),
            resolver,
            images: HashMap::new(),
        }
    }

    /// Resolves an image once per reference.
    pub(super) fn image(
        &mut self,
        span: Span,
        reference: &str,
    ) -> Result<ResolvedImage, PlanError> {
        self.resolve_once(
            span,
            reference.to_string(),
            reference.to_string(),
            |r, p| r.resolve(reference, p),
        )
    }

    /// Resolves once per `memo`; `reference` names it in the error.
    fn resolve_once(
        &mut self,
        span: Span,
        memo: String,
        reference: String,
        resolve: impl FnOnce(&dyn ImageResolver, &Platform) -> Result<ResolvedImage, super::Cause>,
    ) -> Result<ResolvedImage, PlanError> {
        // Once per platform too: stages for other platforms resolve the
        // same name to other manifests.
        let memo = format!("{}\0{memo}", self.platform.to_specifier());
        if let Some(img) = self.images.get(&memo) {
            return Ok(img.clone());
        }
        let img = resolve(self.resolver, &self.platform).map_err(|source| PlanError::Resolve {
            span,
            reference,
            source,
        })?;
        self.images.insert(memo, img.clone());
        Ok(img)
    }

    /// Resolves a `--from` value for stage `st`: only earlier stages may be named.
    pub(super) fn source(
        &mut self,
        inst: &Instruction,
        value: &str,
        st: &mut StageState,
    ) -> Result<Source, PlanError> {
        match resolve_ref(value, &self.names) {
            Ref::Stage(id) if id < st.id => {
                st.deps.insert(id);
                Ok(Source::Stage(id))
            }
            Ref::Stage(_) => Err(PlanError::ForwardReference {
                span: inst.span,
                from: value.to_string(),
                current: self.labels[st.id.0].clone(),
            }),
            Ref::BadIndex(index) => Err(PlanError::StageIndex {
                span: inst.span,
                index,
            }),
            Ref::Image(r) => {
                let named = context_key(&r).and_then(|k| Some((self.opts.contexts.get(&k)?, k)));
                match named {
                    Some((ContextKind::Dir, name)) => Ok(Source::Context(name)),
                    Some((ContextKind::Image, name)) => Ok(Source::Image(Box::new(
                        self.context_image(inst.span, &name)?,
                    ))),
                    None => Ok(Source::Image(Box::new(self.image(inst.span, &r)?))),
                }
            }
        }
    }

    /// Resolves the image of the named context `name` (a key) once.
    pub(super) fn context_image(
        &mut self,
        span: Span,
        name: &str,
    ) -> Result<ResolvedImage, PlanError> {
        // Never a valid image reference, so never an image's entry.
        let memo = format!("context:{name}");
        let reference = format!("build context {name}");
        self.resolve_once(span, memo, reference, |r, p| r.resolve_context(name, p))
    }
}

/// One stage being lowered.
#[derive(Clone, Debug)]
pub(super) struct StageState {
    /// Its id.
    pub id: StageId,
    /// The image config so far.
    pub config: ImageConfig,
    /// What expansion and RUN see.
    pub env: Env,
    /// ARGs declared so far (inherited from a base stage too), with values.
    pub build_args: Vec<(String, Option<String>)>,
    /// CMD was set in this stage (ENTRYPOINT then keeps it).
    pub cmd_set: bool,
    /// Stages it reads.
    pub deps: BTreeSet<StageId>,
    /// Steps so far.
    pub steps: Vec<Step>,
    /// This stage's own ARG declarations (not its base stage's).
    pub args: Vec<ArgDecl>,
}

impl StageState {
    /// `FROM scratch`.
    pub(super) fn scratch(id: StageId, platform: &Platform) -> Self {
        let mut config = ImageConfig {
            architecture: platform.architecture.clone(),
            os: platform.os.clone(),
            variant: platform.variant.clone(),
            ..Default::default()
        };
        // COMPAT(buildkit): `emptyImage` gives a scratch stage WorkingDir "/".
        config.config.working_dir = Some("/".into());
        Self::init(id, config, Env::default(), Vec::new())
    }

    /// `FROM image`: its config without creation time, rootfs or history
    /// (the build composes those).
    pub(super) fn image(id: StageId, img: &ResolvedImage) -> Self {
        let mut config = img.config.clone();
        config.created = None;
        config.rootfs = RootFs::default();
        config.history.clear();
        Self::init(id, config, Env::default(), Vec::new())
    }

    /// `FROM stage`: BuildKit carries the base stage's env (ARG values
    /// included) and declared ARGs into the new stage.
    pub(super) fn stage(id: StageId, base: &StageState) -> Self {
        let mut st = Self::init(
            id,
            base.config.clone(),
            base.env.clone(),
            base.build_args.clone(),
        );
        st.deps.insert(base.id);
        st
    }

    fn init(
        id: StageId,
        mut config: ImageConfig,
        mut env: Env,
        build_args: Vec<(String, Option<String>)>,
    ) -> Self {
        // COMPAT(buildkit): "make sure that PATH is always set" (convert.go).
        if config.config.env_get("PATH").is_none() {
            config.config.env_set("PATH", DEFAULT_PATH);
        }
        for kv in &config.config.env {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            env.set(k, v);
        }
        Self {
            id,
            config,
            env,
            build_args,
            cmd_set: false,
            deps: BTreeSet::new(),
            steps: Vec::new(),
            args: Vec::new(),
        }
    }

    /// WORKDIR in effect.
    pub(super) fn workdir(&self) -> String {
        match self.config.config.working_dir.as_deref() {
            None | Some("") => "/".to_string(),
            Some(w) => w.to_string(),
        }
    }

    /// USER in effect.
    pub(super) fn user(&self) -> String {
        self.config.config.user.clone().unwrap_or_default()
    }

    /// SHELL in effect (default `/bin/sh -c`).
    pub(super) fn shell(&self) -> Vec<String> {
        match &self.config.config.shell {
            Some(s) if !s.is_empty() => s.clone(),
            _ => vec!["/bin/sh".into(), "-c".into()],
        }
    }

    /// Records a metadata step (no layer).
    pub(super) fn push_meta(&mut self, inst: &Instruction, created_by: String) {
        self.push(inst, Op::Meta, created_by, true);
    }

    /// Records a step.
    pub(super) fn push(
        &mut self,
        inst: &Instruction,
        op: Op,
        created_by: String,
        empty_layer: bool,
    ) {
        self.steps.push(Step {
            op,
            span: inst.span,
            created_by,
            empty_layer,
            display: display(inst),
        });
    }
}

/// The instruction as progress output shows it: keyword upper-cased, the rest as written.
pub(super) fn display(inst: &Instruction) -> String {
    let line = inst.original.trim_start();
    match line.split_once(char::is_whitespace) {
        Some((kw, rest)) => format!("{} {}", kw.to_ascii_uppercase(), rest.trim_start()),
        None => line.to_ascii_uppercase(),
    }
}
