//! `--call=targets`: the stages a build can target, with the description
//! from the comment above their FROM (BuildKit's `ListTargets`, printed as
//! buildx's `PrintTargets` does, or as its JSON).

use base64::Engine as _;
use serde_json::{json, Value};

use crate::dockerfile::Dockerfile;

/// One stage as `--call=targets` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The `AS` name, lower-cased as BuildKit keeps it (empty when unnamed).
    pub name: String,
    /// The text after `# NAME ` in a comment right above the FROM.
    pub description: String,
    /// The last stage: what a build without `--target` builds.
    pub default: bool,
    /// The base as written (before expansion).
    pub base: String,
    /// `--platform` as written.
    pub platform: String,
    /// The FROM's lines.
    pub start_line: usize,
    /// Last line.
    pub end_line: usize,
}

/// BuildKit's `getComment`: the first comment that starts with `NAME `.
pub(super) fn description(comments: &[String], name: &str) -> String {
    if name.is_empty() {
        return String::new();
    }
    let prefix = format!("{name} ");
    comments
        .iter()
        .find_map(|c| c.strip_prefix(&prefix))
        .unwrap_or("")
        .to_string()
}

/// Every stage of `df`, in order.
pub fn targets(df: &Dockerfile) -> Vec<Target> {
    let froms: Vec<_> = df
        .instructions
        .iter()
        .filter(|i| i.command() == "from")
        .collect();
    let n = froms.len();
    froms
        .into_iter()
        .enumerate()
        .map(|(i, f)| {
            let name = match f.args.as_slice() {
                [_, as_kw, name] if as_kw.eq_ignore_ascii_case("as") => name.to_lowercase(),
                _ => String::new(),
            };
            let platform = super::flag_values(f, "platform")
                .flatten()
                .next()
                .unwrap_or("")
                .to_string();
            Target {
                description: description(&f.comments, &name),
                name,
                default: i + 1 == n,
                base: f.args.first().cloned().unwrap_or_default(),
                platform,
                start_line: f.span.start_line,
                end_line: f.span.end_line,
            }
        })
        .collect()
}

/// Go's `text/tabwriter` with padding 1 for two columns: the first padded
/// to its widest cell plus one space.
fn two_columns(rows: &[(String, String)]) -> String {
    let width = rows
        .iter()
        .map(|(a, _)| a.chars().count())
        .max()
        .unwrap_or(0)
        + 1;
    let mut out = String::new();
    for (a, b) in rows {
        let pad = width - a.chars().count();
        out.push_str(&format!("{a}{}{b}\n", " ".repeat(pad)));
    }
    out
}

/// buildx's text: `TARGET DESCRIPTION`, the default stage marked.
pub fn render_targets_text(targets: &[Target]) -> String {
    let mut rows = vec![("TARGET".to_string(), "DESCRIPTION".to_string())];
    for t in targets {
        let name = match (t.name.is_empty(), t.default) {
            (true, true) => "(default)".to_string(),
            (false, true) => format!("{} (default)", t.name),
            _ => t.name.clone(),
        };
        rows.push((name, t.description.clone()));
    }
    two_columns(&rows)
}

/// BuildKit's `targets.List` JSON (empty fields left out, as Go's omitempty).
pub fn render_targets_json(targets: &[Target], source: &[u8]) -> String {
    let list: Vec<Value> = targets
        .iter()
        .map(|t| {
            let mut v = serde_json::Map::new();
            if !t.name.is_empty() {
                v.insert("name".into(), json!(t.name));
            }
            if t.default {
                v.insert("default".into(), json!(true));
            }
            if !t.description.is_empty() {
                v.insert("description".into(), json!(t.description));
            }
            if !t.base.is_empty() {
                v.insert("base".into(), json!(t.base));
            }
            if !t.platform.is_empty() {
                v.insert("platform".into(), json!(t.platform));
            }
            v.insert(
                "location".into(),
                super::report::location(t.start_line, t.end_line),
            );
            Value::Object(v)
        })
        .collect();
    let doc = json!({
        "targets": list,
        "sources": [base64::engine::general_purpose::STANDARD.encode(source)],
    });
    let mut s = serde_json::to_string_pretty(&doc).unwrap_or_default();
    s.push('\n');
    s
}
