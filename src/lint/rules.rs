//! Where each rule fires, after `dockerfile2llb` (`instructions/parse.go`,
//! `validations.go`, `convert.go`, `convert_expose.go`), in BuildKit's order:
//! parser warnings, then per instruction while parsing, then over all
//! stages, then per stage while dispatching.

use std::collections::{BTreeMap, BTreeSet};

use crate::dockerfile::shell::Lexer;
use crate::dockerfile::{Dockerfile, Instruction};
use crate::plan::Base;

use super::*;

/// Collects findings under the config in force for one instruction.
struct Sink<'c> {
    base: &'c Config,
    out: Vec<Finding>,
}

impl Sink<'_> {
    fn emit(&mut self, cfg: &Config, rule: &'static Rule, inst: &Instruction, detail: String) {
        self.emit_at(cfg, rule, inst.span.start_line, inst.span.end_line, detail);
    }

    fn emit_at(
        &mut self,
        cfg: &Config,
        rule: &'static Rule,
        start: usize,
        end: usize,
        detail: String,
    ) {
        if cfg.enabled(rule) {
            self.out.push(Finding {
                rule,
                detail,
                start_line: start,
                end_line: end,
            });
        }
    }
}

/// One FROM block of the file.
struct StageAst<'a> {
    from: &'a Instruction,
    body: Vec<&'a Instruction>,
}

fn split(df: &Dockerfile) -> (Vec<&Instruction>, Vec<StageAst<'_>>) {
    let mut globals = Vec::new();
    let mut stages: Vec<StageAst> = Vec::new();
    for inst in &df.instructions {
        if inst.command() == "from" {
            stages.push(StageAst {
                from: inst,
                body: Vec::new(),
            });
        } else if let Some(s) = stages.last_mut() {
            s.body.push(inst);
        } else {
            globals.push(inst);
        }
    }
    (globals, stages)
}

/// `FROM [--flags] image [AS name]`: the image word and the name, as written.
fn from_parts(from: &Instruction) -> (Option<&str>, Option<(&str, &str)>) {
    let image = from.args.first().map(String::as_str);
    let name = match from.args.as_slice() {
        [_, as_kw, name] => Some((as_kw.as_str(), name.as_str())),
        _ => None,
    };
    (image, name)
}

/// The first `--name=value`'s value (a bare `--name` has none).
fn flag<'a>(inst: &'a Instruction, name: &'a str) -> Option<&'a str> {
    flag_values(inst, name).flatten().next()
}

fn self_consistent(s: &str) -> bool {
    s == s.to_lowercase() || s == s.to_uppercase()
}

/// Runs every rule; see the module doc for the order.
pub(super) fn run(df: &Dockerfile, inputs: &Inputs, cfg: &Config) -> (Vec<Finding>, Option<Stop>) {
    let mut sink = Sink {
        base: cfg,
        out: Vec::new(),
    };
    for w in &df.warnings {
        sink.emit_at(
            cfg,
            &NO_EMPTY_CONTINUATION,
            w.line,
            w.line,
            "Empty continuation line".into(),
        );
    }
    let (globals, stages) = split(df);
    parse_time(&mut sink, df);
    stage_names(&mut sink, &stages);
    casing(&mut sink, &stages);
    let lexer = Lexer::new(df.escape);
    let global_args = meta_args(&globals, &lexer, None);
    default_arg_bases(&mut sink, &stages, &lexer, &global_args);
    let with_build_args = meta_args(&globals, &lexer, inputs.build_args);
    let declared = declared_args(&globals);
    for s in &stages {
        if let Err(stop) = from_args(&mut sink, s, &lexer, &with_build_args, &declared) {
            // COMPAT(buildkit): a blank base name ends the lint run there.
            return (sink.out, Some(stop));
        }
    }
    for i in 0..stages.len() {
        let reached = inputs.all_stages
            || inputs
                .graph
                .and_then(|g| g.stages.get(i))
                .is_none_or(|st| st.reached);
        if reached {
            dispatch(&mut sink, &stages, i, inputs);
        }
    }
    (sink.out, None)
}

/// Every global ARG name, with or without a value.
fn declared_args(globals: &[&Instruction]) -> Vec<String> {
    globals
        .iter()
        .filter(|i| i.command() == "arg")
        .flat_map(|i| i.args.iter())
        .map(|a| a.split_once('=').map_or(a.as_str(), |(k, _)| k).to_string())
        .collect()
}

/// Rules of `instructions.Parse`, per instruction with its comments' config.
fn parse_time(sink: &mut Sink, df: &Dockerfile) {
    for inst in &df.instructions {
        let cfg = sink.base.for_comments(&inst.comments);
        match inst.command().as_str() {
            "maintainer" => sink.emit(
                &cfg,
                &MAINTAINER_DEPRECATED,
                inst,
                "Maintainer instruction is deprecated in favor of using label".into(),
            ),
            "from" => {
                let (_, name) = from_parts(inst);
                if let Some((as_kw, name)) = name {
                    if name != name.to_lowercase() {
                        let d = format!("Stage name '{name}' should be lowercase");
                        sink.emit(&cfg, &STAGE_NAME_CASING, inst, d);
                    }
                    let kw = inst.keyword.as_str();
                    let mismatch = if kw == kw.to_lowercase() {
                        as_kw != as_kw.to_lowercase()
                    } else if kw == kw.to_uppercase() {
                        as_kw != as_kw.to_uppercase()
                    } else {
                        false
                    };
                    if mismatch {
                        let d = format!("'{as_kw}' and '{kw}' keywords' casing do not match");
                        sink.emit(&cfg, &FROM_AS_CASING, inst, d);
                    }
                    description(sink, &cfg, inst, "FROM", &[name]);
                }
            }
            "arg" => {
                let keys: Vec<&str> = inst
                    .args
                    .iter()
                    .map(|a| a.split_once('=').map_or(a.as_str(), |(k, _)| k))
                    .collect();
                description(sink, &cfg, inst, "ARG", &keys);
            }
            _ => {}
        }
    }
}

/// InvalidDefinitionDescription (experimental): a comment right above a
/// named FROM or an ARG that does not start with the name.
fn description(sink: &mut Sink, cfg: &Config, inst: &Instruction, what: &str, keys: &[&str]) {
    let Some(last) = inst.comments.last() else {
        return;
    };
    if keys.is_empty() {
        return;
    }
    let first = last.split(' ').next().unwrap_or("");
    if keys.contains(&first) {
        return;
    }
    let example = if keys.len() > 1 { "<arg_key>" } else { keys[0] };
    let d = format!("Comment for {what} should follow the format: `# {example} <description>`");
    sink.emit(cfg, &INVALID_DEFINITION_DESCRIPTION, inst, d);
}

fn stage_names(sink: &mut Sink, stages: &[StageAst]) {
    let cfg = sink.base.clone();
    let mut seen = BTreeSet::new();
    for s in stages {
        let Some((_, name)) = from_parts(s.from).1 else {
            continue;
        };
        // COMPAT(buildkit): stage names are compared lower-cased (parseFrom lowers them).
        let name = name.to_lowercase();
        if name == "context" || name == "scratch" {
            let d = format!("Stage name should not use the same name as reserved stage {name:?}");
            sink.emit(&cfg, &RESERVED_STAGE_NAME, s.from, d);
        }
        if !seen.insert(name.clone()) {
            let d = format!("Duplicate stage name {name:?}, stage names should be unique");
            sink.emit(&cfg, &DUPLICATE_STAGE_NAME, s.from, d);
        }
    }
}

fn casing(sink: &mut Sink, stages: &[StageAst]) {
    let cfg = sink.base.clone();
    let all = || {
        stages
            .iter()
            .flat_map(|s| std::iter::once(s.from).chain(s.body.iter().copied()))
    };
    let (mut lower, mut upper) = (0usize, 0usize);
    for inst in all() {
        let k = &inst.keyword;
        if self_consistent(k) {
            if *k == k.to_lowercase() {
                lower += 1;
            } else {
                upper += 1;
            }
        }
    }
    let majority_lower = lower > upper;
    for inst in all() {
        let k = &inst.keyword;
        let want = if majority_lower && *k != k.to_lowercase() {
            "lowercase"
        } else if !majority_lower && *k != k.to_uppercase() {
            "uppercase"
        } else {
            continue;
        };
        let d = format!("Command '{k}' should match the case of the command majority ({want})");
        sink.emit(&cfg, &CONSISTENT_INSTRUCTION_CASING, inst, d);
    }
}

/// The global ARGs in order, each default expanded with the ones before it;
/// `build_args` replace the defaults of declared names.
fn meta_args(
    globals: &[&Instruction],
    lexer: &Lexer,
    build_args: Option<&BTreeMap<String, String>>,
) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = Vec::new();
    for inst in globals.iter().filter(|i| i.command() == "arg") {
        for a in &inst.args {
            let (k, v) = match a.split_once('=') {
                Some((k, v)) => (k, Some(v)),
                None => (a.as_str(), None),
            };
            let given = build_args.and_then(|b| b.get(k)).cloned();
            let value = match (given, v) {
                (Some(g), _) => Some(g),
                (None, Some(v)) => lexer.expand_word(v, &env).ok().map(|e| e.value),
                (None, None) => None,
            };
            if let Some(v) = value {
                env.retain(|(n, _)| n != k);
                env.push((k.to_string(), v));
            }
        }
    }
    env
}

/// The predefined platform args BuildKit sets for FROM (kiln builds for the host).
fn platform_args() -> Vec<(String, String)> {
    let p = crate::oci::spec::Platform::host();
    let plat = p.to_specifier();
    let mut out = Vec::new();
    for prefix in ["BUILD", "TARGET"] {
        out.push((format!("{prefix}PLATFORM"), plat.clone()));
        out.push((format!("{prefix}OS"), p.os.clone()));
        out.push((format!("{prefix}ARCH"), p.architecture.clone()));
        out.push((
            format!("{prefix}VARIANT"),
            p.variant.clone().unwrap_or_default(),
        ));
    }
    out
}

/// InvalidDefaultArgInFrom: with the defaults only, the base name must be a reference.
fn default_arg_bases(
    sink: &mut Sink,
    stages: &[StageAst],
    lexer: &Lexer,
    globals: &[(String, String)],
) {
    let cfg = sink.base.clone();
    let mut env = platform_args();
    env.extend(globals.iter().cloned());
    for s in stages {
        let Some(image) = from_parts(s.from).0 else {
            continue;
        };
        let Ok(e) = lexer.expand_word(image, &env) else {
            return;
        };
        if !valid_reference(&e.value) {
            let d = format!(
                "Default value for ARG {image} results in empty or invalid base image name"
            );
            sink.emit(&cfg, &INVALID_DEFAULT_ARG_IN_FROM, s.from, d);
        }
    }
}

/// `reference.ParseNormalizedNamed` accepts it (a stage name is a valid name too).
fn valid_reference(s: &str) -> bool {
    !s.is_empty() && s == s.trim() && crate::oci::reference::Reference::parse(s).is_ok()
}

/// UndefinedArgInFrom, RedundantTargetPlatform, FromPlatformFlagConstDisallowed.
fn from_args(
    sink: &mut Sink,
    s: &StageAst,
    lexer: &Lexer,
    globals: &[(String, String)],
    declared: &[String],
) -> Result<(), Stop> {
    let cfg = sink.base.for_comments(&s.from.comments);
    let mut env = platform_args();
    env.extend(globals.iter().cloned());
    let mut keys: Vec<String> = env.iter().map(|(k, _)| k.clone()).collect();
    keys.extend(declared.iter().cloned());
    keys.sort();
    keys.dedup();
    let undeclared = |sink: &mut Sink, unmatched: &BTreeSet<String>| {
        for arg in unmatched.iter().filter(|a| !keys.contains(a)) {
            let mut d = format!("FROM argument '{arg}' is not declared");
            if let Some(s) = suggest(arg, &keys, true) {
                d.push_str(&format!(" (did you mean {s}?)"));
            }
            sink.emit(&cfg, &UNDEFINED_ARG_IN_FROM, s.from, d);
        }
    };
    if let Some(image) = from_parts(s.from).0 {
        if let Ok(e) = lexer.expand_word(image, &env) {
            undeclared(sink, &e.unmatched);
            if e.value.is_empty() {
                return Err(Stop {
                    message: format!("base name ({image}) should not be blank"),
                    start_line: s.from.span.start_line,
                    end_line: s.from.span.end_line,
                });
            }
        }
    }
    let Some(platform) = flag(s.from, "platform") else {
        return Ok(());
    };
    let Ok(e) = lexer.expand_word(platform, &env) else {
        return Ok(());
    };
    undeclared(sink, &e.unmatched);
    if e.matched.len() == 1 && e.unmatched.is_empty() && e.matched.contains("TARGETPLATFORM") {
        let d = format!("Setting platform to predefined {platform} in FROM is redundant as this is the default behavior");
        sink.emit(&cfg, &REDUNDANT_TARGET_PLATFORM, s.from, d);
    }
    if e.matched.is_empty() && e.unmatched.is_empty() {
        let mut parts = e.value.split('/');
        let (os, arch) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        let parses = !os.is_empty() && !arch.is_empty();
        let name = from_parts(s.from).1.map_or("", |(_, n)| n).to_lowercase();
        if parses && !name.contains(os) && !name.contains(arch) {
            let d = format!(
                "FROM --platform flag should not use constant value {:?}",
                e.value
            );
            sink.emit(&cfg, &FROM_PLATFORM_FLAG_CONST_DISALLOWED, s.from, d);
        }
    }
    Ok(())
}

/// BuildKit's `suggest.Search`: the first candidate at the smallest
/// Levenshtein distance under 3; none when a candidate equals the name.
fn suggest(name: &str, candidates: &[String], case_sensitive: bool) -> Option<String> {
    let fold = |s: &str| {
        if case_sensitive {
            s.to_string()
        } else {
            s.to_lowercase()
        }
    };
    let n = fold(name);
    let mut best: Option<&String> = None;
    let mut min = 3;
    for c in candidates {
        let f = fold(c);
        if f == n {
            return None;
        }
        let d = levenshtein(&n, &f);
        if d < min {
            min = d;
            best = Some(c);
        }
    }
    best.cloned()
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The secret-looking names of SecretsUsedInArgOrEnv (`validations.go`).
fn looks_secret(key: &str) -> bool {
    const DENY: &[&str] = &[
        "apikey",
        "auth",
        "credential",
        "credentials",
        "key",
        "password",
        "pword",
        "passwd",
        "secret",
        "token",
    ];
    // COMPAT(buildkit): 0.25 allows only `public`; later releases add `file` and `version`.
    const ALLOW: &[&str] = &["public"];
    // `(?:_|^)(?:word)(?:_|$)`, case-insensitive: a whole `_`-separated part.
    let has = |words: &[&str]| {
        let k = key.to_lowercase();
        words.iter().any(|w| {
            k.match_indices(w).any(|(i, _)| {
                let before = i == 0 || k.as_bytes()[i - 1] == b'_';
                let end = i + w.len();
                let after = end == k.len() || k.as_bytes()[end] == b'_';
                before && after
            })
        })
    };
    has(DENY) && !has(ALLOW)
}

/// Per-stage state of the dispatch-time rules.
#[derive(Default)]
struct Seen {
    cmd: Option<(usize, usize)>,
    entrypoint: Option<(usize, usize)>,
    healthcheck: Option<(usize, usize)>,
    workdir_set: bool,
    shell_set: bool,
}

/// The base stage of stage `s`, when FROM names an earlier stage.
fn parent_stage(stages: &[StageAst], i: usize) -> Option<usize> {
    let image = from_parts(stages[i].from).0?.to_lowercase();
    stages[..i].iter().rposition(|p| {
        from_parts(p.from)
            .1
            .is_some_and(|(_, n)| n.to_lowercase() == image)
    })
}

/// Whether the stage (or the stage chain it is built on) ran SHELL or set
/// WORKDIR to an absolute path; a base image's SHELL comes from the graph.
fn inherited(stages: &[StageAst], i: usize, inputs: &Inputs) -> (bool, bool) {
    let (mut shell, mut workdir) = (false, false);
    let mut cur = parent_stage(stages, i);
    let mut root = i;
    while let Some(p) = cur {
        for inst in &stages[p].body {
            match inst.command().as_str() {
                "shell" => shell = true,
                "workdir" => workdir = true,
                _ => {}
            }
        }
        root = p;
        cur = parent_stage(stages, p);
    }
    if let Some(Base::Image(img)) = inputs
        .graph
        .and_then(|g| g.stages.get(root))
        .map(|s| &s.base)
    {
        shell |= img
            .config
            .config
            .shell
            .as_ref()
            .is_some_and(|s| !s.is_empty());
    }
    (shell, workdir)
}

fn dispatch(sink: &mut Sink, stages: &[StageAst], i: usize, inputs: &Inputs) {
    let s = &stages[i];
    let (shell_set, workdir_set) = inherited(stages, i, inputs);
    let mut seen = Seen {
        shell_set,
        workdir_set,
        ..Seen::default()
    };
    let declared = stage_args(stages, i);
    for inst in &s.body {
        let cfg = sink.base.for_comments(&inst.comments);
        undefined_vars(sink, &cfg, inst, &declared, inputs);
        instruction(sink, &cfg, inst, &mut seen, inputs);
    }
}

/// The ARGs a stage declares, with the line of each, its base stages' first.
fn stage_args(stages: &[StageAst], i: usize) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut chain = vec![i];
    while let Some(p) = parent_stage(stages, *chain.last().unwrap_or(&i)) {
        if chain.contains(&p) {
            break;
        }
        chain.push(p);
    }
    for (n, &s) in chain.iter().enumerate() {
        for inst in stages[s].body.iter().filter(|i| i.command() == "arg") {
            // A base stage's ARGs are all declared before this stage starts.
            let line = if n == 0 { inst.span.start_line } else { 0 };
            for a in &inst.args {
                let key = a.split_once('=').map_or(a.as_str(), |(k, _)| k);
                out.push((line, key.to_string()));
            }
        }
    }
    out
}

/// UndefinedVar: the names the plan's expansion of this instruction found
/// unset, less the ARGs declared before it (BuildKit's `d.buildArgs`).
fn undefined_vars(
    sink: &mut Sink,
    cfg: &Config,
    inst: &Instruction,
    declared: &[(usize, String)],
    inputs: &Inputs,
) {
    let Some(graph) = inputs.graph else {
        return;
    };
    // RUN's mount options are expanded without the check, as in BuildKit.
    if matches!(inst.command().as_str(), "run" | "from" | "onbuild") {
        return;
    }
    let mut seen = BTreeSet::new();
    for u in graph
        .undefined_vars
        .iter()
        .filter(|u| u.start_line == inst.span.start_line)
    {
        // An ARG declared earlier in the stage, even without a value, is defined.
        let is_declared = declared
            .iter()
            .any(|(line, k)| *k == u.name && *line < inst.span.start_line);
        if is_declared || !seen.insert(u.name.clone()) {
            continue;
        }
        let mut d = format!("Usage of undefined variable '${}'", u.name);
        if let Some(s) = suggest(&u.name, &u.known, true) {
            d.push_str(&format!(" (did you mean ${s}?)"));
        }
        sink.emit(cfg, &UNDEFINED_VAR, inst, d);
    }
}

fn used_once(sink: &mut Sink, cfg: &Config, inst: &Instruction, slot: &mut Option<(usize, usize)>) {
    if let Some((start, end)) = *slot {
        let d = format!(
            "Multiple {} instructions should not be used in the same stage because only the last one will be used",
            inst.keyword
        );
        // COMPAT(buildkit): the earlier instruction is reported: it is the one ignored.
        sink.emit_at(cfg, &MULTIPLE_INSTRUCTIONS_DISALLOWED, start, end, d);
    }
    *slot = Some((inst.span.start_line, inst.span.end_line));
}

fn instruction(
    sink: &mut Sink,
    cfg: &Config,
    inst: &Instruction,
    seen: &mut Seen,
    inputs: &Inputs,
) {
    let legacy = |sink: &mut Sink| {
        if inst
            .args
            .chunks(3)
            .any(|kv| kv.get(2).is_some_and(|sep| sep.is_empty()))
        {
            let k = &inst.keyword;
            let d = format!(
                "\"{k} key=value\" should be used instead of legacy \"{k} key value\" format"
            );
            sink.emit(cfg, &LEGACY_KEY_VALUE_FORMAT, inst, d);
        }
    };
    match inst.command().as_str() {
        "env" => {
            for kv in inst.args.chunks(3) {
                if kv.get(2).is_some_and(|sep| sep.is_empty()) {
                    let k = &inst.keyword;
                    let d = format!("\"{k} key=value\" should be used instead of legacy \"{k} key value\" format");
                    sink.emit(cfg, &LEGACY_KEY_VALUE_FORMAT, inst, d);
                }
                if looks_secret(&kv[0]) {
                    let d = format!(
                        "Do not use ARG or ENV instructions for sensitive data (ENV {:?})",
                        kv[0]
                    );
                    sink.emit(cfg, &SECRETS_USED_IN_ARG_OR_ENV, inst, d);
                }
            }
        }
        "label" => legacy(sink),
        "arg" => {
            for a in &inst.args {
                let key = a.split_once('=').map_or(a.as_str(), |(k, _)| k);
                if looks_secret(key) {
                    let d = format!(
                        "Do not use ARG or ENV instructions for sensitive data (ARG {key:?})"
                    );
                    sink.emit(cfg, &SECRETS_USED_IN_ARG_OR_ENV, inst, d);
                }
            }
        }
        "cmd" | "entrypoint" => {
            let slot = if inst.command() == "cmd" {
                &mut seen.cmd
            } else {
                &mut seen.entrypoint
            };
            used_once(sink, cfg, inst, slot);
            if !inst.json_form && !seen.shell_set {
                let d = format!(
                    "JSON arguments recommended for {} to prevent unintended behavior related to OS signals",
                    inst.keyword
                );
                sink.emit(cfg, &JSON_ARGS_RECOMMENDED, inst, d);
            }
        }
        "healthcheck" => used_once(sink, cfg, inst, &mut seen.healthcheck),
        "shell" => seen.shell_set = true,
        "workdir" => {
            let path = inst.args.first().map_or("", String::as_str);
            // A path with variables is expanded by the plan; kiln's checks do
            // not track the stage's environment, so they leave it alone.
            if !seen.workdir_set && !path.starts_with('/') && !path.contains('$') {
                let d = format!("Relative workdir {path:?} can have unexpected results if the base image changes");
                sink.emit(cfg, &WORKDIR_RELATIVE_PATH, inst, d);
            }
            seen.workdir_set = true;
        }
        "expose" => {
            for port in inst.args.iter().filter(|p| !p.contains('$')) {
                expose(sink, cfg, inst, port);
            }
        }
        "copy" | "add" => copy_ignored(sink, cfg, inst, inputs),
        _ => {}
    }
}

fn expose(sink: &mut Sink, cfg: &Config, inst: &Instruction, raw: &str) {
    let parts: Vec<&str> = raw.split(':').collect();
    let (ip, host, container) = match parts.as_slice() {
        [c] => ("", "", *c),
        [h, c] => ("", *h, *c),
        [rest @ .., h, c] => (if rest.is_empty() { "" } else { "x" }, *h, *c),
        [] => return,
    };
    let (port, proto) = container.split_once('/').unwrap_or((container, ""));
    let proto_ok = matches!(proto.to_lowercase().as_str(), "" | "tcp" | "udp" | "sctp");
    if port.is_empty() || !proto_ok {
        // BuildKit fails the build here; the plan reports it.
        return;
    }
    if proto != proto.to_lowercase() {
        let d = format!("Defined protocol '{raw}' in EXPOSE instruction should be lowercase");
        sink.emit(cfg, &EXPOSE_PROTO_CASING, inst, d);
    }
    if !ip.is_empty() || !host.is_empty() {
        let d = format!("EXPOSE instruction should not define an IP address or host-port mapping, found '{raw}'");
        sink.emit(cfg, &EXPOSE_INVALID_FORMAT, inst, d);
    }
}

/// CopyIgnoredFile: a context source the `.dockerignore` excludes (not checked
/// when the file has `!` exceptions, as BuildKit).
fn copy_ignored(sink: &mut Sink, cfg: &Config, inst: &Instruction, inputs: &Inputs) {
    let Some(ignore) = inputs.ignore else {
        return;
    };
    if ignore.is_empty() || ignore.has_exceptions() || flag(inst, "from").is_some() {
        return;
    }
    let cmd = if inst.command() == "add" {
        "Add"
    } else {
        "Copy"
    };
    let heredocs: BTreeSet<&str> = inst.heredocs.iter().map(|h| h.name.as_str()).collect();
    let Some((_, sources)) = inst.args.split_last() else {
        return;
    };
    for src in sources {
        let name = src.trim_start_matches("<<-").trim_start_matches("<<");
        if heredocs.contains(name) || src.contains('$') || src.contains("://") {
            continue;
        }
        let cleaned = crate::dockerfile::ignore::clean(src);
        if cleaned == "." || cleaned == "/" {
            // COMPAT(buildkit): the context root only when a pattern excludes everything.
            if !ignore.excludes_everything() {
                continue;
            }
        } else if !ignore.is_excluded(&cleaned) {
            continue;
        }
        let d = format!("Attempting to {cmd} file {cleaned:?} that is excluded by .dockerignore");
        sink.emit(cfg, &COPY_IGNORED_FILE, inst, d);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_names_match_whole_parts() {
        for k in [
            "api_key",
            "DATABASE_PASSWORD",
            "GITHUB_TOKEN",
            "secret_MESSAGE",
            "AUTH",
        ] {
            assert!(looks_secret(k), "{k}");
        }
        for k in ["keyboard", "monkey", "PUBLIC_KEY", "FOO"] {
            assert!(!looks_secret(k), "{k}");
        }
        // BuildKit 0.25 flags these; later releases allow `_FILE`/`_VERSION`.
        assert!(looks_secret("TOKEN_FILE") && looks_secret("GPG_KEY_VERSION"));
    }

    #[test]
    fn suggestions_are_close_names() {
        let c = vec!["BASE_IMAGE".to_string(), "TAG".to_string()];
        assert_eq!(
            suggest("BASE_IMAG", &c, true).as_deref(),
            Some("BASE_IMAGE")
        );
        assert_eq!(suggest("NOPE", &c, true), None);
    }

    #[test]
    fn a_comment_above_an_instruction_skips_a_rule_there_only() {
        let src = b"FROM busybox\n# check=skip=JSONArgsRecommended\nCMD a\nENTRYPOINT b\n";
        let df = crate::dockerfile::parse(src).unwrap();
        let r = check(&df, &Inputs::default()).unwrap();
        let lines: Vec<(usize, &str)> = r
            .findings
            .iter()
            .map(|f| (f.start_line, f.rule.name))
            .collect();
        assert_eq!(lines, vec![(4, "JSONArgsRecommended")]);
    }

    #[test]
    fn check_options_parse_as_buildkit() {
        let c = Config::parse("skip=A, B;error=true").unwrap();
        assert!(c.skip.contains("A") && c.skip.contains("B") && c.error);
        assert!(Config::parse("skip").is_err());
        assert!(Config::parse("nope=1").is_err());
        assert!(Config::parse("error=maybe").is_err());
        assert!(Config::parse("skip=all").unwrap().skip_all);
    }
}
