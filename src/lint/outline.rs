//! `--call=outline`: what a build of the target can be given — its build
//! args (value and the `# NAME description` comment above their ARG), the
//! secrets and SSH agents its RUN mounts ask for — BuildKit's
//! `dispatchState.Outline`, printed as buildx's `PrintOutline` does or as
//! its JSON.
//!
//! Reads the plan, never expands: values, the names a FROM or a global
//! ARG's default looked up, and the mounts of each reached stage are the
//! plan's. What BuildKit decides (`outline.go`): a stage lists the ARGs it
//! declares and the global ARGs its FROM (or its base stages' FROMs) reads,
//! plus the global ARGs their defaults read; a stage ARG without default or
//! build arg shows its global declaration; then its base stage's list, then
//! the stages it copies or mounts from, a name or secret id shown once (the
//! first met wins); each list sorted by line.

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine as _;
use serde::Serialize;

use crate::dockerfile::{Dockerfile, Instruction, Span};
use crate::plan::{ArgDecl, Base, BuildGraph, Op, RunMount, StageId};

use super::targets::description;

/// One build arg of the outline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutlineArg {
    /// Its name.
    pub name: String,
    /// The value the build would give it (empty when none).
    pub value: String,
    /// The text after `# NAME ` right above its ARG.
    pub description: String,
    /// The declaring ARG's lines.
    pub span: Span,
    /// Its word's position in that ARG (orders args of one line).
    word: usize,
}

/// One secret or SSH agent id a RUN mount of the target asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutlineMount {
    /// The id.
    pub name: String,
    /// `required=true` on the first mount of it.
    pub required: bool,
    /// That RUN's lines.
    pub span: Span,
}

/// BuildKit's `outline.Outline` without its unused `cache` list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outline {
    /// The target stage's name (empty when unnamed).
    pub name: String,
    /// The comment above the target's FROM.
    pub description: String,
    /// Build args, by line.
    pub args: Vec<OutlineArg>,
    /// Secret ids, by line.
    pub secrets: Vec<OutlineMount>,
    /// SSH agent ids, by line.
    pub ssh: Vec<OutlineMount>,
}

/// An ARG as the outline knows it (BuildKit's `argInfo`).
#[derive(Debug, Clone)]
struct ArgInfo {
    arg: OutlineArg,
    /// The names its default read (global ARGs).
    deps: BTreeSet<String>,
}

/// The ARG instructions by first line, for their comments.
fn arg_instructions(df: &Dockerfile) -> BTreeMap<usize, &Instruction> {
    df.instructions
        .iter()
        .filter(|i| i.command() == "arg")
        .map(|i| (i.span.start_line, i))
        .collect()
}

fn info(decl: &ArgDecl, word: usize, insts: &BTreeMap<usize, &Instruction>) -> OutlineArg {
    let comments = insts
        .get(&decl.span.start_line)
        .map_or(&[][..], |i| &i.comments[..]);
    OutlineArg {
        name: decl.name.clone(),
        value: decl.value.clone().unwrap_or_default(),
        description: description(comments, &decl.name),
        span: decl.span,
        word,
    }
}

/// Each declaration with its word's position in its ARG: words of one
/// instruction share its start line.
fn with_words(decls: &[ArgDecl]) -> impl Iterator<Item = (usize, &ArgDecl)> {
    let (mut word, mut line) = (0, 0);
    decls.iter().map(move |decl| {
        word = if decl.span.start_line == line {
            word + 1
        } else {
            0
        };
        line = decl.span.start_line;
        (word, decl)
    })
}

/// The global ARGs as BuildKit's `buildMetaArgs` records them: a later
/// declaration replaces an earlier one, keeping its deps when it reads itself.
fn global_infos(
    graph: &BuildGraph,
    insts: &BTreeMap<usize, &Instruction>,
) -> BTreeMap<String, ArgInfo> {
    let mut all: BTreeMap<String, ArgInfo> = BTreeMap::new();
    for (word, decl) in with_words(&graph.global_args) {
        let mut deps = decl.uses.clone();
        if deps.remove(&decl.name) {
            if let Some(old) = all.get(&decl.name) {
                deps.extend(old.deps.iter().cloned());
            }
        }
        let arg = info(decl, word, insts);
        all.insert(decl.name.clone(), ArgInfo { arg, deps });
    }
    all
}

/// One stage's own outline: every ARG it knows and the names it uses.
struct StageOutline {
    all: BTreeMap<String, ArgInfo>,
    used: BTreeSet<String>,
    /// First mount of each id, in mount order.
    secrets: Vec<OutlineMount>,
    ssh: Vec<OutlineMount>,
}

/// The names a stage's FROM and its base stages' FROMs read (a stage built
/// on a stage starts from a copy of that stage's outline as it was before
/// dispatch, in BuildKit).
fn from_used(graph: &BuildGraph, id: StageId) -> BTreeSet<String> {
    let mut used = BTreeSet::new();
    let mut cur = Some(id);
    let mut seen = BTreeSet::new();
    while let Some(i) = cur {
        if !seen.insert(i) {
            break;
        }
        let st = &graph.stages[i.0];
        used.extend(st.from_args.iter().cloned());
        cur = match st.base {
            Base::Stage(b) if b.0 < graph.stages.len() => Some(b),
            _ => None,
        };
    }
    used
}

fn stage_outline(
    graph: &BuildGraph,
    id: StageId,
    globals: &BTreeMap<String, ArgInfo>,
    insts: &BTreeMap<usize, &Instruction>,
) -> StageOutline {
    let st = &graph.stages[id.0];
    let mut out = StageOutline {
        all: globals.clone(),
        used: from_used(graph, id),
        secrets: Vec::new(),
        ssh: Vec::new(),
    };
    for (word, decl) in with_words(&st.args) {
        if !decl.inherited {
            let arg = info(decl, word, insts);
            out.all.insert(
                decl.name.clone(),
                ArgInfo {
                    arg,
                    deps: BTreeSet::new(),
                },
            );
        }
        out.used.insert(decl.name.clone());
    }
    // BuildKit's `markAllUsed`: the names used names' defaults read.
    let mut todo: Vec<String> = out.used.iter().cloned().collect();
    while let Some(k) = todo.pop() {
        if let Some(a) = out.all.get(&k) {
            for d in &a.deps {
                if out.used.insert(d.clone()) {
                    todo.push(d.clone());
                }
            }
        }
    }
    for step in &st.steps {
        let Op::Run(run) = &step.op else { continue };
        for m in &run.mounts {
            let (map, id, required) = match m {
                RunMount::Secret { id, required, .. } => (&mut out.secrets, id, *required),
                RunMount::Ssh { id, required, .. } => (&mut out.ssh, id, *required),
                _ => continue,
            };
            if !map.iter().any(|m| &m.name == id) {
                map.push(OutlineMount {
                    name: id.clone(),
                    required,
                    span: step.span,
                });
            }
        }
    }
    out
}

/// What the walk over the stages collects.
#[derive(Default)]
struct Collected {
    args: Vec<OutlineArg>,
    secrets: Vec<OutlineMount>,
    ssh: Vec<OutlineMount>,
    arg_names: BTreeSet<String>,
    secret_ids: BTreeSet<String>,
    ssh_ids: BTreeSet<String>,
    stages: BTreeSet<StageId>,
}

/// BuildKit's recursion: the stage's own entries, then its base's, then its
/// other dependencies'; a name already shown is skipped. A stage already
/// walked adds nothing new, so it is walked once (BuildKit walks it again
/// on every path; the result is the same).
fn collect(
    graph: &BuildGraph,
    id: StageId,
    globals: &BTreeMap<String, ArgInfo>,
    insts: &BTreeMap<usize, &Instruction>,
    out: &mut Collected,
) {
    if id.0 >= graph.stages.len() || !out.stages.insert(id) {
        return;
    }
    let so = stage_outline(graph, id, globals, insts);
    for k in &so.used {
        if let Some(a) = so.all.get(k) {
            if out.arg_names.insert(k.clone()) {
                out.args.push(a.arg.clone());
            }
        }
    }
    for m in so.secrets {
        if out.secret_ids.insert(m.name.clone()) {
            out.secrets.push(m);
        }
    }
    for m in so.ssh {
        if out.ssh_ids.insert(m.name.clone()) {
            out.ssh.push(m);
        }
    }
    let st = &graph.stages[id.0];
    let base = match st.base {
        Base::Stage(b) => Some(b),
        _ => None,
    };
    // COMPAT(buildkit): the other dependencies come from a Go map, in no
    // fixed order; kiln takes them in file order (it only matters when two
    // of them declare one name differently).
    for d in base.into_iter().chain(st.deps.iter().copied()) {
        collect(graph, d, globals, insts, out);
    }
}

/// The outline of `graph`'s target.
pub fn outline(df: &Dockerfile, graph: &BuildGraph) -> Outline {
    let insts = arg_instructions(df);
    let globals = global_infos(graph, &insts);
    let mut c = Collected::default();
    collect(graph, graph.target, &globals, &insts, &mut c);
    // COMPAT(buildkit): sorted by first line only, with Go's unstable sort;
    // kiln keeps the words of one ARG in their order.
    c.args.sort_by_key(|a| (a.span.start_line, a.word));
    c.secrets.sort_by_key(|m| m.span.start_line);
    c.ssh.sort_by_key(|m| m.span.start_line);
    let stage = super::targets(df).into_iter().nth(graph.target.0);
    Outline {
        name: graph.target_stage().name.clone().unwrap_or_default(),
        description: stage.map(|s| s.description).unwrap_or_default(),
        args: c.args,
        secrets: c.secrets,
        ssh: c.ssh,
    }
}

/// Go's `text/tabwriter` (min width 0, `padding`, padded with spaces): every
/// cell but the last of a row is padded to its column's widest cell plus
/// `padding`.
fn table(rows: &[Vec<String>], padding: usize) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0; cols];
    for r in rows {
        for (i, c) in r.iter().enumerate().take(r.len().saturating_sub(1)) {
            widths[i] = widths[i].max(c.chars().count() + padding);
        }
    }
    let mut out = String::new();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            out.push_str(c);
            if i + 1 < r.len() {
                out.push_str(&" ".repeat(widths[i] - c.chars().count()));
            }
        }
        out.push('\n');
    }
    out
}

fn mount_table(title: &str, mounts: &[OutlineMount]) -> String {
    let mut rows = vec![vec![title.to_string(), "REQUIRED".to_string()]];
    for m in mounts {
        let req = if m.required { "true" } else { "" };
        rows.push(vec![m.name.clone(), req.to_string()]);
    }
    table(&rows, 3) + "\n"
}

/// buildx's text (`outline.PrintOutline`): the target, then a table per
/// non-empty list, each followed by a blank line.
pub fn render_outline_text(o: &Outline) -> String {
    let mut out = String::new();
    if !o.name.is_empty() || !o.description.is_empty() {
        let name = if o.name.is_empty() {
            "(default)".to_string()
        } else {
            o.name.clone()
        };
        let mut rows = vec![vec!["TARGET:".to_string(), name]];
        if !o.description.is_empty() {
            rows.push(vec!["DESCRIPTION:".to_string(), o.description.clone()]);
        }
        out.push_str(&table(&rows, 1));
        out.push('\n');
    }
    if !o.args.is_empty() {
        let mut rows = vec![vec![
            "BUILD ARG".to_string(),
            "VALUE".to_string(),
            "DESCRIPTION".to_string(),
        ]];
        for a in &o.args {
            rows.push(vec![a.name.clone(), a.value.clone(), a.description.clone()]);
        }
        out.push_str(&table(&rows, 3));
        out.push('\n');
    }
    if !o.secrets.is_empty() {
        out.push_str(&mount_table("SECRET", &o.secrets));
    }
    if !o.ssh.is_empty() {
        out.push_str(&mount_table("SSH", &o.ssh));
    }
    out
}

/// BuildKit's `pb.Location` as Go's `encoding/json` writes it (zero
/// characters left out).
#[derive(Serialize)]
struct Location {
    ranges: Vec<Range>,
}

#[derive(Serialize)]
struct Range {
    start: Position,
    end: Position,
}

#[derive(Serialize)]
struct Position {
    line: usize,
}

impl From<Span> for Location {
    // COMPAT(buildkit): `parser.toRanges` gives an instruction one range per
    // physical line.
    fn from(s: Span) -> Self {
        let end = s.end_line.max(s.start_line);
        Location {
            ranges: (s.start_line..=end)
                .map(|line| Range {
                    start: Position { line },
                    end: Position { line },
                })
                .collect(),
        }
    }
}

#[derive(Serialize)]
struct JsonArg<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    description: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    value: &'a str,
    location: Location,
}

#[derive(Serialize)]
struct JsonMount<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    required: bool,
    location: Location,
}

#[derive(Serialize)]
struct JsonOutline<'a> {
    #[serde(skip_serializing_if = "str::is_empty")]
    name: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    description: &'a str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    args: Vec<JsonArg<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    secrets: Vec<JsonMount<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    ssh: Vec<JsonMount<'a>>,
    sources: [String; 1],
}

fn json_mounts(mounts: &[OutlineMount]) -> Vec<JsonMount<'_>> {
    mounts
        .iter()
        .map(|m| JsonMount {
            name: &m.name,
            required: m.required,
            location: m.span.into(),
        })
        .collect()
}

/// Go's `encoding/json` escapes `<`, `>`, `&`, U+2028 and U+2029 in strings;
/// outside strings JSON has none of them, so replacing them all is safe.
fn go_escapes(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

/// `--call=outline,format=json`: BuildKit's `outline.Outline` JSON, fields
/// in Go's order, empty ones left out, the Dockerfile as the one source.
pub fn render_outline_json(o: &Outline, source: &[u8]) -> String {
    let doc = JsonOutline {
        name: &o.name,
        description: &o.description,
        args: o
            .args
            .iter()
            .map(|a| JsonArg {
                name: &a.name,
                description: &a.description,
                value: &a.value,
                location: a.span.into(),
            })
            .collect(),
        secrets: json_mounts(&o.secrets),
        ssh: json_mounts(&o.ssh),
        sources: [base64::engine::general_purpose::STANDARD.encode(source)],
    };
    let s = serde_json::to_string_pretty(&doc).unwrap_or_default();
    go_escapes(&s) + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tabwriter_pads_all_but_the_last_cell() {
        let rows = vec![
            vec!["BUILD ARG".into(), "VALUE".into(), "DESCRIPTION".into()],
            vec!["A".into(), "".into(), "".into()],
        ];
        assert_eq!(
            table(&rows, 3),
            "BUILD ARG   VALUE   DESCRIPTION\nA                   \n"
        );
    }

    #[test]
    fn go_escapes_html_characters() {
        assert_eq!(go_escapes("\"a<b>&c\""), "\"a\\u003cb\\u003e\\u0026c\"");
    }

    /// Resolves nothing: the tests plan `FROM scratch` only.
    struct NoImages;

    impl crate::plan::ImageResolver for NoImages {
        fn resolve(
            &self,
            reference: &str,
            _: &crate::oci::Platform,
        ) -> Result<crate::plan::ResolvedImage, Box<dyn std::error::Error + Send + Sync>> {
            Err(format!("no image {reference}").into())
        }
    }

    fn outline_of(src: &str) -> Outline {
        let df = crate::dockerfile::parse(src.as_bytes()).unwrap();
        let graph = crate::plan::lower(&df, &Default::default(), &NoImages).unwrap();
        outline(&df, &graph)
    }

    #[test]
    fn ties_on_one_line_keep_file_order() {
        // BuildKit's sort is unstable here; kiln keeps the order written.
        let o = outline_of(
            "FROM scratch\nARG ZED=1 ALPHA=2\nRUN --mount=type=secret,id=zz --mount=type=secret,id=aa --mount=type=ssh,id=s2 --mount=type=ssh,id=s1 true\n",
        );
        let args: Vec<&str> = o.args.iter().map(|a| a.name.as_str()).collect();
        let secrets: Vec<&str> = o.secrets.iter().map(|m| m.name.as_str()).collect();
        let ssh: Vec<&str> = o.ssh.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(args, ["ZED", "ALPHA"]);
        assert_eq!(secrets, ["zz", "aa"]);
        assert_eq!(ssh, ["s2", "s1"]);
    }

    #[test]
    fn an_empty_outline_prints_nothing() {
        assert_eq!(render_outline_text(&Outline::default()), "");
    }
}
