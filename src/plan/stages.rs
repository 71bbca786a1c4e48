//! Stage structure before any lowering: splitting the instruction list at
//! FROM, parsing each FROM against the global ARG scope, naming stages,
//! finding `--from` references, choosing the target and computing which
//! stages it reaches. Nothing here resolves images.

use std::collections::BTreeSet;

use crate::dockerfile::{Dockerfile, Instruction};

use super::contexts::context_key;
use super::csv::csv_fields;
use super::expand::{Env, Expander};
use super::flags::Flags;
use super::{PlanError, PlanOptions, StageId};

/// The instructions of one FROM block, unparsed.
pub(super) struct Chunk<'a> {
    /// The FROM.
    pub from: &'a Instruction,
    /// What follows it, up to the next FROM.
    pub body: Vec<&'a Instruction>,
}

/// Splits the file into global ARGs and stage chunks; refuses anything but
/// ARG before the first FROM.
pub(super) fn split(df: &Dockerfile) -> Result<(Vec<&Instruction>, Vec<Chunk<'_>>), PlanError> {
    let mut globals = Vec::new();
    let mut chunks: Vec<Chunk<'_>> = Vec::new();
    for inst in &df.instructions {
        let cmd = inst.command();
        match (cmd.as_str(), chunks.last_mut()) {
            ("from", _) => chunks.push(Chunk {
                from: inst,
                body: Vec::new(),
            }),
            (_, Some(chunk)) => chunk.body.push(inst),
            ("arg", None) => globals.push(inst),
            (_, None) => {
                return Err(PlanError::BeforeFrom {
                    span: inst.span,
                    keyword: inst.keyword.to_ascii_uppercase(),
                })
            }
        }
    }
    if chunks.is_empty() {
        return Err(PlanError::NoStages);
    }
    Ok((globals, chunks))
}

/// The `AS name` of a FROM, lower-cased, without expansion (for TARGETSTAGE
/// and `--target`, which BuildKit matches before any expansion).
pub(super) fn stage_name(from: &Instruction) -> Option<String> {
    match from.args.as_slice() {
        [_, as_kw, name] if as_kw.eq_ignore_ascii_case("as") => Some(name.to_ascii_lowercase()),
        _ => None,
    }
}

/// What a FROM starts from, before resolution.
#[derive(Clone, Debug)]
pub(super) enum BaseRef {
    /// `scratch`.
    Scratch,
    /// An earlier stage.
    Stage(StageId),
    /// An image reference (expanded).
    Image(String),
    /// A named context (its key): `FROM NAME`, or a stage whose `AS` name
    /// one has (`replaces`: the stage's instructions are not run).
    Context {
        /// The context's key.
        name: String,
        /// True when it stands for the whole stage.
        replaces: bool,
    },
}

impl BaseRef {
    /// True when a named context stands for the whole stage.
    pub(super) fn replaces_stage(&self) -> bool {
        matches!(self, BaseRef::Context { replaces: true, .. })
    }
}

/// A parsed FROM.
pub(super) struct StageDecl<'a> {
    /// The FROM and its body.
    pub chunk: Chunk<'a>,
    /// Lower-cased `AS` name.
    pub name: Option<String>,
    /// Its base.
    pub base: BaseRef,
    /// The set names its base name and `--platform` looked up.
    pub from_args: BTreeSet<String>,
    /// Its `--platform`, parsed.
    pub platform: Option<crate::oci::Platform>,
}

/// Parses every FROM: expands base and `--platform` with the global scope,
/// checks names, links bases to earlier stages.
pub(super) fn declare<'a>(
    chunks: Vec<Chunk<'a>>,
    global: &Env,
    exp: &Expander,
    opts: &PlanOptions,
) -> Result<Vec<StageDecl<'a>>, PlanError> {
    let mut decls: Vec<StageDecl<'a>> = Vec::new();
    for chunk in chunks {
        let from = chunk.from;
        let flags = Flags::parse(from, &["platform"])?;
        let mut from_args = BTreeSet::new();
        let mut stage_platform = None;
        if let Some(p) = flags.string("platform")? {
            let (platform, used) = exp.word_matched(from, p, global)?;
            stage_platform = Some(parse_stage_platform(from, &platform)?);
            from_args = used;
        }
        let name = match from.args.len() {
            1 => None,
            3 if from.args[1].eq_ignore_ascii_case("as") => Some(checked_name(from, &decls)?),
            _ => {
                return Err(PlanError::Arguments {
                    span: from.span,
                    instruction: "FROM".into(),
                    reason: "requires either one or three arguments".into(),
                })
            }
        };
        let (base_name, used) = exp.word_matched(from, &from.args[0], global)?;
        from_args.extend(used);
        if base_name.is_empty() {
            return Err(PlanError::Arguments {
                span: from.span,
                instruction: "FROM".into(),
                reason: format!("base name ({}) should not be blank", from.args[0]),
            });
        }
        let lower = base_name.to_ascii_lowercase();
        let named = |n: &str| context_key(n).filter(|k| opts.contexts.contains_key(k));
        let base = match decls.iter().position(|d| d.name.as_deref() == Some(&lower)) {
            Some(i) => BaseRef::Stage(StageId(i)),
            None if base_name == "scratch" => BaseRef::Scratch,
            None => match named(&base_name) {
                Some(name) => BaseRef::Context {
                    name,
                    replaces: false,
                },
                None => BaseRef::Image(base_name),
            },
        };
        // COMPAT(buildkit): a named context with the stage's name replaces
        // the stage (`toDispatchState` skips its instructions).
        let base = match name.as_deref().and_then(named) {
            Some(name) => BaseRef::Context {
                name,
                replaces: true,
            },
            None => base,
        };
        decls.push(StageDecl {
            chunk,
            name,
            base,
            from_args,
            platform: stage_platform,
        });
    }
    Ok(decls)
}

fn checked_name(from: &Instruction, earlier: &[StageDecl<'_>]) -> Result<String, PlanError> {
    let name = from.args[2].to_ascii_lowercase();
    let mut chars = name.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c));
    if !valid {
        return Err(PlanError::StageName {
            span: from.span,
            name: from.args[2].clone(),
        });
    }
    if earlier.iter().any(|d| d.name.as_deref() == Some(&name)) {
        return Err(PlanError::DuplicateStage {
            span: from.span,
            name,
        });
    }
    Ok(name)
}

/// A FROM's expanded `--platform`: any Linux platform (a RUN on one the
/// host cannot run needs an emulator, which the builder checks for).
fn parse_stage_platform(
    from: &Instruction,
    value: &str,
) -> Result<crate::oci::Platform, PlanError> {
    crate::oci::parse_platform(value).map_err(|source| PlanError::Platform {
        span: from.span,
        platform: value.to_string(),
        source,
    })
}

/// Each stage's platform, in file order: its `--platform`, else its base
/// stage's (BuildKit's stage state carries its platform), else the target
/// platform.
pub(super) fn platforms(decls: &[StageDecl<'_>], opts: &PlanOptions) -> Vec<crate::oci::Platform> {
    let mut out: Vec<crate::oci::Platform> = Vec::with_capacity(decls.len());
    for d in decls {
        let p = match (&d.platform, &d.base) {
            (Some(p), _) => p.clone(),
            (None, BaseRef::Stage(b)) if b.0 < out.len() => out[b.0].clone(),
            _ => opts.platform.clone(),
        };
        out.push(p);
    }
    out
}

/// What a `--from` / `from=` value names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Ref {
    /// A stage (maybe not an earlier one: the caller checks).
    Stage(StageId),
    /// A stage index that does not exist.
    BadIndex(usize),
    /// An image reference.
    Image(String),
}

/// Resolves a `--from` value: a stage index, a stage name (case-insensitive)
/// or else an image.
pub(super) fn resolve_ref(value: &str, names: &[Option<String>]) -> Ref {
    if let Ok(i) = value.parse::<usize>() {
        return if i < names.len() {
            Ref::Stage(StageId(i))
        } else {
            Ref::BadIndex(i)
        };
    }
    let lower = value.to_ascii_lowercase();
    match names.iter().position(|n| n.as_deref() == Some(&lower)) {
        Some(i) => Ref::Stage(StageId(i)),
        None => Ref::Image(value.to_string()),
    }
}

/// The raw `--from` / `--mount from=` values of instructions (an ONBUILD's
/// trigger is not looked into: it runs in another stage).
pub(super) fn from_values<'i>(insts: impl IntoIterator<Item = &'i Instruction>) -> Vec<String> {
    let mut out = Vec::new();
    for inst in insts {
        let cmd = inst.command();
        for flag in &inst.flags {
            if cmd == "copy" {
                if let Some(v) = flag.strip_prefix("--from=") {
                    out.push(v.to_string());
                }
            } else if let ("run", Some(m)) = (cmd.as_str(), flag.strip_prefix("--mount=")) {
                out.extend(from_value(m));
            }
        }
    }
    out
}

/// The stage `opts.target` names, or the last one.
pub(super) fn target(decls: &[StageDecl<'_>], opts: &PlanOptions) -> Result<StageId, PlanError> {
    let Some(t) = &opts.target else {
        return Ok(StageId(decls.len() - 1));
    };
    let lower = t.to_ascii_lowercase();
    match decls.iter().position(|d| d.name.as_deref() == Some(&lower)) {
        Some(i) => Ok(StageId(i)),
        None => Err(PlanError::UnknownTarget {
            target: t.clone(),
            stages: decls.iter().filter_map(|d| d.name.clone()).collect(),
        }),
    }
}

/// Stages reachable from `target` through `deps`.
pub(super) fn reachable(target: StageId, deps: &[BTreeSet<StageId>]) -> Vec<bool> {
    let mut seen = vec![false; deps.len()];
    let mut todo = vec![target];
    while let Some(s) = todo.pop() {
        if std::mem::replace(&mut seen[s.0], true) {
            continue;
        }
        todo.extend(deps[s.0].iter().copied());
    }
    seen
}

/// The raw `from=` of a mount option, for dependency scanning.
pub(super) fn from_value(option: &str) -> Option<String> {
    csv_fields(option).into_iter().find_map(|f| {
        let (k, v) = f.split_once('=')?;
        k.eq_ignore_ascii_case("from").then(|| v.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refs_by_index_name_or_image() {
        let names = vec![Some("build".to_string()), None];
        assert_eq!(resolve_ref("0", &names), Ref::Stage(StageId(0)));
        assert_eq!(resolve_ref("BUILD", &names), Ref::Stage(StageId(0)));
        assert_eq!(resolve_ref("5", &names), Ref::BadIndex(5));
        assert_eq!(resolve_ref("busybox", &names), Ref::Image("busybox".into()));
    }

    #[test]
    fn reachability_follows_deps() {
        let deps = vec![
            BTreeSet::new(),
            BTreeSet::from([StageId(0)]),
            BTreeSet::new(),
            BTreeSet::from([StageId(1)]),
        ];
        assert_eq!(reachable(StageId(3), &deps), [true, true, false, true]);
    }
}
