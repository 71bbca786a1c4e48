//! The `ast.json` view of a parsed file (README §2 of the conformance
//! corpus): the node model with line numbers, heredocs, comments and
//! warnings, for tooling and for comparing with BuildKit.
//!
//! Invariant: `warnings` is omitted when empty, `sub` only on ONBUILD with
//! an argument; a wrapped instruction reports lines 0..0, as BuildKit does
//! (in the AST it carries its ONBUILD's span).

use super::ast::{Dockerfile, Heredoc, Instruction};
use serde_json::{json, Map, Value};

/// The `ast.json` object for an accepted file.
pub fn ast_json(df: &Dockerfile) -> Value {
    let children: Vec<Value> = df.instructions.iter().map(|i| child(i, false)).collect();
    let start = df.instructions.first().map_or(0, |i| i.span.start_line);
    let end = df.instructions.last().map_or(0, |i| i.span.end_line);
    let mut top = Map::new();
    top.insert("ok".into(), json!(true));
    top.insert("escape_token".into(), json!(df.escape.to_string()));
    top.insert("start_line".into(), json!(start));
    top.insert("end_line".into(), json!(end));
    if !df.warnings.is_empty() {
        let warnings: Vec<Value> = df
            .warnings
            .iter()
            .map(|w| json!({"short": w.short, "line": w.line}))
            .collect();
        top.insert("warnings".into(), Value::Array(warnings));
    }
    top.insert("children".into(), Value::Array(children));
    Value::Object(top)
}

/// The `ast.json` object for a rejected file.
pub fn ast_json_error(message: &str) -> Value {
    json!({"ok": false, "error": message})
}

/// `nested`: an ONBUILD's wrapped instruction, which BuildKit gives no lines.
fn child(ins: &Instruction, nested: bool) -> Value {
    let mut m = Map::new();
    m.insert("cmd".into(), json!(ins.keyword));
    m.insert("flags".into(), json!(ins.flags));
    m.insert("json_form".into(), json!(ins.json_form));
    m.insert("args".into(), json!(ins.args));
    if let Some(sub) = &ins.sub {
        m.insert("sub".into(), child(sub, true));
    }
    m.insert("original".into(), json!(ins.original));
    let lines = if nested {
        (0, 0)
    } else {
        (ins.span.start_line, ins.span.end_line)
    };
    m.insert("start_line".into(), json!(lines.0));
    m.insert("end_line".into(), json!(lines.1));
    let heredocs: Vec<Value> = ins.heredocs.iter().map(heredoc).collect();
    m.insert("heredocs".into(), Value::Array(heredocs));
    m.insert("comments".into(), json!(ins.comments));
    Value::Object(m)
}

fn heredoc(h: &Heredoc) -> Value {
    json!({
        "name": h.name,
        "fd": h.fd,
        "expand": h.expand,
        "chomp": h.chomp,
        "content": h.content,
    })
}
