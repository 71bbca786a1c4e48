//! ARG scoping, BuildKit's rules: predefined platform args and global ARGs
//! (before the first FROM) are visible to FROM only; inside a stage a name is
//! visible after `ARG NAME`, taking the `--build-arg` value, else its default,
//! else the global value. Proxy args reach RUN even undeclared.

use std::collections::{BTreeMap, BTreeSet};

use crate::dockerfile::Instruction;

use super::expand::{Env, Expander};
use super::flags::Flags;
use super::{ArgDecl, PlanError, PlanOptions};

/// Proxy variables BuildKit passes to RUN from `--build-arg` without an ARG.
pub(super) const PROXY_ARGS: [&str; 10] = [
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// Platform args BuildKit defines in the global scope.
const PLATFORM_ARGS: [&str; 9] = [
    "BUILDPLATFORM",
    "BUILDOS",
    "BUILDARCH",
    "BUILDVARIANT",
    "TARGETPLATFORM",
    "TARGETOS",
    "TARGETARCH",
    "TARGETVARIANT",
    "TARGETSTAGE",
];

/// True for names BuildKit defines without an ARG (never "unused").
pub(super) fn is_predefined(name: &str) -> bool {
    PLATFORM_ARGS.contains(&name) || PROXY_ARGS.contains(&name)
}

/// The predefined platform args (`BUILD*` from `opts.build_platform`,
/// `TARGET*` from `opts.platform`), each overridable by a build arg of the
/// same name.
pub(super) fn predefined(opts: &PlanOptions, target_stage: &str) -> Env {
    let (b, t) = (&opts.build_platform, &opts.platform);
    let (b_variant, t_variant) = (
        b.variant.clone().unwrap_or_default(),
        t.variant.clone().unwrap_or_default(),
    );
    let (b_spec, t_spec) = (b.to_specifier(), t.to_specifier());
    let values = [
        b_spec.as_str(),
        &b.os,
        &b.architecture,
        &b_variant,
        &t_spec,
        &t.os,
        &t.architecture,
        &t_variant,
        target_stage,
    ];
    let mut env = Env::default();
    for (name, value) in PLATFORM_ARGS.iter().zip(values) {
        let v = opts.build_args.get(*name).map_or(value, String::as_str);
        env.set(name, v);
    }
    env
}

/// One ARG word split at its first `=`: `(name, raw default)`.
pub(super) fn split_word(
    inst: &Instruction,
    word: &str,
) -> Result<(String, Option<String>), PlanError> {
    let (name, value) = match word.split_once('=') {
        Some((n, v)) => (n, Some(v.to_string())),
        None => (word, None),
    };
    if name.is_empty() {
        return Err(PlanError::Arguments {
            span: inst.span,
            instruction: "ARG".into(),
            reason: "ARG names can not be blank".into(),
        });
    }
    Ok((name.to_string(), value))
}

/// The ARG instruction's words, checked.
pub(super) fn words(inst: &Instruction) -> Result<&[String], PlanError> {
    Flags::parse(inst, &[])?;
    if inst.args.is_empty() {
        return Err(PlanError::Arguments {
            span: inst.span,
            instruction: "ARG".into(),
            reason: "requires at least one argument".into(),
        });
    }
    Ok(&inst.args)
}

/// The global scope: predefined args, then each global ARG (build arg, else
/// its default expanded with the scope so far). Records declared names;
/// returns the scope and each declaration.
pub(super) fn global_scope(
    insts: &[&Instruction],
    opts: &PlanOptions,
    target_stage: &str,
    exp: &Expander,
    declared: &mut BTreeSet<String>,
) -> Result<(Env, Vec<ArgDecl>), PlanError> {
    let mut env = predefined(opts, target_stage);
    let mut decls = Vec::new();
    for inst in insts {
        for word in words(inst)? {
            let (name, default) = split_word(inst, word)?;
            declared.insert(name.clone());
            let (value, uses) = match (opts.build_args.get(&name), default) {
                (Some(v), _) => (Some(v.clone()), BTreeSet::new()),
                (None, Some(d)) => {
                    let (v, uses) = exp.word_matched(inst, &d, &env)?;
                    (Some(v), uses)
                }
                (None, None) => (None, BTreeSet::new()),
            };
            if let Some(v) = &value {
                env.set(&name, v);
            }
            decls.push(ArgDecl {
                name,
                value,
                uses,
                inherited: false,
                span: inst.span,
            });
        }
    }
    Ok((env, decls))
}

/// Proxy `KEY=VALUE`s for RUN: every proxy build arg, both spellings, unless
/// `env` already sets that key.
// COMPAT(buildkit): `proxyEnvFromBuildArgs` matches the names
// case-insensitively and the executor sets both the upper- and lower-case
// variable.
pub(super) fn proxy_env(build_args: &BTreeMap<String, String>, env: &Env) -> Vec<String> {
    let mut out = Vec::new();
    for pair in PROXY_ARGS.chunks(2) {
        let value = build_args
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(pair[0]))
            .map(|(_, v)| v);
        if let Some(v) = value {
            for key in pair {
                if env.get(key).is_none() {
                    out.push(format!("{key}={v}"));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_env_sets_both_spellings_unless_present() {
        let mut ba = BTreeMap::new();
        ba.insert("http_proxy".to_string(), "http://p:3128".to_string());
        let mut env = Env::default();
        env.set("http_proxy", "mine");
        assert_eq!(proxy_env(&ba, &env), ["HTTP_PROXY=http://p:3128"]);
        assert!(proxy_env(&BTreeMap::new(), &env).is_empty());
    }

    #[test]
    fn predefined_args_follow_the_platform_and_build_args() {
        let mut opts = PlanOptions::default();
        opts.platform.os = "linux".into();
        opts.platform.architecture = "amd64".into();
        opts.platform.variant = None;
        opts.build_args.insert("TARGETOS".into(), "other".into());
        let env = predefined(&opts, "final");
        assert_eq!(env.get("TARGETPLATFORM"), Some("linux/amd64"));
        assert_eq!(env.get("BUILDARCH"), Some("amd64"));
        assert_eq!(env.get("TARGETVARIANT"), Some(""));
        assert_eq!(env.get("TARGETOS"), Some("other"));
        assert_eq!(env.get("TARGETSTAGE"), Some("final"));
    }
}
