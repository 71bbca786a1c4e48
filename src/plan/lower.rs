//! The lowering driver, in BuildKit's order: global ARGs → FROMs → target →
//! reachability; then resolve base images of reached stages only (their
//! ONBUILD triggers may add dependencies, so repeat until nothing changes);
//! then lower reached stages in file order, each from its base's state.

use std::collections::BTreeSet;

use crate::dockerfile::{Dockerfile, Instruction, Span};
use crate::oci::{ImageConfig, Platform};

use super::args;
use super::contexts;
use super::expand::Expander;
use super::stages::{self, resolve_ref, BaseRef, Ref, StageDecl};
use super::state::{Lowerer, StageState};
use super::{copy, health, meta, run};
use super::{
    Base, BuildGraph, ContextKind, ImageResolver, PlanError, PlanOptions, ResolvedImage, Stage,
    StageId,
};

/// See [`super::lower`].
pub(super) fn lower(
    df: &Dockerfile,
    opts: &PlanOptions,
    resolver: &dyn ImageResolver,
) -> Result<BuildGraph, PlanError> {
    crate::dockerfile::check_instruction_names(df)?;
    let exp = Expander::new(df.escape);
    let (globals, chunks) = stages::split(df)?;
    let target_name = match &opts.target {
        Some(t) => t.to_ascii_lowercase(),
        None => chunks
            .last()
            .and_then(|c| stages::stage_name(c.from))
            .unwrap_or_default(),
    };
    let mut declared = BTreeSet::new();
    let (global, global_args) =
        args::global_scope(&globals, opts, &target_name, &exp, &mut declared)?;
    let decls = stages::declare(chunks, &global, &exp, opts)?;
    let target = stages::target(&decls, opts)?;
    let names = decls.iter().map(|d| d.name.clone()).collect();
    let mut lw = Lowerer::new(opts, exp, global, names, resolver);
    lw.declared = declared;
    let platforms = stages::platforms(&decls, opts);

    let mut res = resolve_reached(&mut lw, &decls, &platforms, target)?;
    let states = lower_stages(&mut lw, &decls, &platforms, &mut res)?;
    let mut graph = assemble(decls, res, states, target, &platforms, &lw);
    graph.global_args = global_args;
    Ok(graph)
}

/// What resolution found: per stage, its dependencies, resolved base image,
/// parsed base-image triggers and whether the target reaches it.
struct Resolved {
    deps: Vec<BTreeSet<StageId>>,
    bases: Vec<Option<ResolvedImage>>,
    triggers: Vec<Vec<Instruction>>,
    reached: Vec<bool>,
}

/// Resolves base images of reached stages; their ONBUILD triggers may name
/// more stages, so this repeats until reachability stops changing.
fn resolve_reached(
    lw: &mut Lowerer<'_>,
    decls: &[StageDecl<'_>],
    platforms: &[Platform],
    target: StageId,
) -> Result<Resolved, PlanError> {
    let n = decls.len();
    let mut res = Resolved {
        deps: (0..n).map(|i| static_deps(decls, i, &lw.names)).collect(),
        bases: vec![None; n],
        triggers: vec![Vec::new(); n],
        reached: Vec::new(),
    };
    loop {
        res.reached = stages::reachable(target, &res.deps);
        let mut changed = false;
        for (i, decl) in decls.iter().enumerate() {
            if !res.reached[i] || res.bases[i].is_some() {
                continue;
            }
            let span = decl.chunk.from.span;
            lw.platform = platforms[i].clone();
            let img = match &decl.base {
                BaseRef::Image(reference) => lw.image(span, reference)?,
                BaseRef::Context { name, .. } if is_image(lw, name) => {
                    lw.context_image(span, name)?
                }
                _ => continue,
            };
            // COMPAT(buildkit): a stage a named context replaces is never
            // dispatched, so the image's triggers do not run either.
            let triggers = match decl.base.replaces_stage() {
                true => Vec::new(),
                false => parse_triggers(&img.config, span)?,
            };
            for v in stages::from_values(&triggers) {
                if let Ref::Stage(id) = resolve_ref(&v, &lw.names) {
                    changed |= res.deps[i].insert(id);
                }
            }
            res.triggers[i] = triggers;
            res.bases[i] = Some(img);
        }
        if !changed {
            return Ok(res);
        }
    }
}

/// Lowers reached stages in file order, each starting from its base's state.
fn lower_stages(
    lw: &mut Lowerer<'_>,
    decls: &[StageDecl<'_>],
    platforms: &[Platform],
    res: &mut Resolved,
) -> Result<Vec<Option<StageState>>, PlanError> {
    let mut states: Vec<Option<StageState>> = vec![None; decls.len()];
    for (i, decl) in decls.iter().enumerate() {
        if !res.reached[i] {
            continue;
        }
        let id = StageId(i);
        lw.platform = platforms[i].clone();
        let (mut st, triggers) = match (&decl.base, &res.bases[i]) {
            (BaseRef::Stage(b), _) => {
                // Invariant: a reached stage's base is reached and has a smaller id.
                let base = states[b.0]
                    .as_ref()
                    .expect("base stage lowered before its children");
                (
                    StageState::stage(id, base),
                    stage_triggers(&decls[b.0], decl.chunk.from.span),
                )
            }
            (BaseRef::Image(_) | BaseRef::Context { .. }, Some(img)) => (
                StageState::image(id, img),
                std::mem::take(&mut res.triggers[i]),
            ),
            (BaseRef::Context { name, .. }, None) => {
                let mut st = StageState::scratch(id, &platforms[i]);
                st.steps
                    .push(contexts::dir_base_step(name, decl.chunk.from.span));
                (st, Vec::new())
            }
            _ => (StageState::scratch(id, &platforms[i]), Vec::new()),
        };
        // Triggers run once, here; the image does not carry them on.
        st.config.config.on_build = None;
        let body = match decl.base.replaces_stage() {
            true => &[][..],
            false => &decl.chunk.body[..],
        };
        for inst in triggers.iter().chain(body.iter().copied()) {
            dispatch(lw, &mut st, inst)?;
        }
        states[i] = Some(st);
    }
    Ok(states)
}

/// Dependencies visible without resolving anything: the base stage, `--from`
/// values of the body and of the base stage's ONBUILD triggers.
fn static_deps(decls: &[StageDecl<'_>], i: usize, names: &[Option<String>]) -> BTreeSet<StageId> {
    let decl = &decls[i];
    let mut deps = BTreeSet::new();
    if decl.base.replaces_stage() {
        return deps;
    }
    let mut values = stages::from_values(decl.chunk.body.iter().copied());
    if let BaseRef::Stage(b) = decl.base {
        deps.insert(b);
        let subs = decls[b.0]
            .chunk
            .body
            .iter()
            .filter_map(|inst| inst.sub.as_deref());
        values.extend(stages::from_values(subs));
    }
    for v in values {
        if let Ref::Stage(id) = resolve_ref(&v, names) {
            deps.insert(id);
        }
    }
    deps
}

/// A base stage's ONBUILD instructions as triggers located at `from_span`.
fn stage_triggers(base: &StageDecl<'_>, from_span: Span) -> Vec<Instruction> {
    base.chunk
        .body
        .iter()
        .filter(|inst| inst.command() == "onbuild")
        .filter_map(|inst| {
            let mut sub = inst.sub.as_deref()?.clone();
            sub.heredocs = inst.heredocs.clone();
            sub.span = from_span;
            Some(sub)
        })
        .collect()
}

/// A base image's `OnBuild` entries, parsed, located at the FROM.
fn parse_triggers(config: &ImageConfig, span: Span) -> Result<Vec<Instruction>, PlanError> {
    let mut out = Vec::new();
    for trigger in config.config.on_build.iter().flatten() {
        let err = |source| PlanError::OnBuildTrigger {
            span,
            trigger: trigger.clone(),
            source,
        };
        let df = crate::dockerfile::parse(trigger.as_bytes()).map_err(|e| err(Box::new(e)))?;
        crate::dockerfile::check_instruction_names(&df)?;
        let [inst] = <[Instruction; 1]>::try_from(df.instructions)
            .map_err(|_| err("onbuild trigger should be a single expression".into()))?;
        out.push(Instruction { span, ..inst });
    }
    Ok(out)
}

fn assemble(
    decls: Vec<StageDecl<'_>>,
    res: Resolved,
    states: Vec<Option<StageState>>,
    target: StageId,
    platforms: &[Platform],
    lw: &Lowerer<'_>,
) -> BuildGraph {
    let mut stages = Vec::with_capacity(decls.len());
    let reached = res.reached;
    let parts = decls.into_iter().zip(res.deps).zip(res.bases).zip(states);
    for (i, (((decl, mut deps), img), state)) in parts.enumerate() {
        let base = match (decl.base, img) {
            (BaseRef::Scratch, _) => Base::Scratch,
            (BaseRef::Stage(b), _) => Base::Stage(b),
            (BaseRef::Image(_) | BaseRef::Context { .. }, Some(img)) => Base::Image(img),
            (BaseRef::Image(reference), None) => Base::Unresolved { reference },
            // A directory context's files are the stage's first step.
            (BaseRef::Context { name, .. }, None) if !is_image(lw, &name) => Base::Scratch,
            (BaseRef::Context { name, .. }, None) => Base::Unresolved { reference: name },
        };
        let (steps, config, args) = match state {
            Some(st) => {
                deps.extend(st.deps);
                (st.steps, st.config, st.args)
            }
            None => (Vec::new(), unreached_config(&platforms[i]), Vec::new()),
        };
        stages.push(Stage {
            id: StageId(i),
            name: decl.name,
            base,
            steps,
            deps: deps.into_iter().collect(),
            reached: reached[i],
            config,
            platform: platforms[i].clone(),
            args,
            from_args: decl.from_args,
        });
    }
    let t = &mut stages[target.0].config.config.labels;
    t.extend(lw.opts.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
    let unused_build_args = lw
        .opts
        .build_args
        .keys()
        .filter(|k| !lw.declared.contains(*k) && !args::is_predefined(k))
        .cloned()
        .collect();
    BuildGraph {
        stages,
        target,
        unused_build_args,
        undefined_vars: lw.exp.take_undefined(),
        global_args: Vec::new(),
    }
}

/// True when the named context `name` is an image (not a directory).
fn is_image(lw: &Lowerer<'_>, name: &str) -> bool {
    lw.opts.contexts.get(name) == Some(&ContextKind::Image)
}

fn unreached_config(p: &Platform) -> ImageConfig {
    ImageConfig {
        architecture: p.architecture.clone(),
        os: p.os.clone(),
        variant: p.variant.clone(),
        ..Default::default()
    }
}

/// Lowers one instruction into `st`.
pub(super) fn dispatch(
    lw: &mut Lowerer<'_>,
    st: &mut StageState,
    inst: &Instruction,
) -> Result<(), PlanError> {
    match inst.command().as_str() {
        "arg" => meta::arg(lw, st, inst),
        "env" => meta::env(lw, st, inst),
        "label" => meta::label(lw, st, inst),
        "maintainer" => meta::maintainer(st, inst),
        "expose" => meta::expose(lw, st, inst),
        "user" => meta::user(lw, st, inst),
        "volume" => meta::volume(lw, st, inst),
        "stopsignal" => meta::stopsignal(lw, st, inst),
        "shell" => meta::shell(st, inst),
        "cmd" => meta::cmd(st, inst),
        "entrypoint" => meta::entrypoint(st, inst),
        "onbuild" => meta::onbuild(st, inst),
        "healthcheck" => health::healthcheck(st, inst),
        "run" => run::run(lw, st, inst),
        "copy" => copy::copy(lw, st, inst, false),
        "add" => copy::copy(lw, st, inst, true),
        "workdir" => copy::workdir(lw, st, inst),
        "from" => Err(PlanError::Arguments {
            span: inst.span,
            instruction: "FROM".into(),
            reason: "not allowed here (an ONBUILD trigger cannot be FROM)".into(),
        }),
        // `lower` ran `check_instruction_names` on every instruction first.
        _ => Err(PlanError::Unsupported {
            span: inst.span,
            what: format!("instruction {}", inst.keyword),
        }),
    }
}
