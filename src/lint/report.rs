//! The findings printed as buildx prints them: `--check`'s report (each
//! warning with its Dockerfile excerpt, `errdefs.Source.Print`), its JSON
//! (`--call=check,format=json`, BuildKit's `lint.LintResults`) and the short
//! lines after a build.

use base64::Engine as _;
use serde_json::{json, Value};

use super::Finding;

/// The findings sorted as buildx's `LintResults.PrintTo` does: by line,
/// stable among warnings on one line.
fn sorted(findings: &[Finding]) -> Vec<&Finding> {
    let mut v: Vec<&Finding> = findings.iter().collect();
    // COMPAT(buildkit): buildx uses sort.Slice, which is stable only below 12
    // elements; kiln's order is stable always (emission order within a line).
    v.sort_by_key(|f| f.start_line);
    v
}

/// `errdefs.Source.Print`: the file name and line, then the lines around the
/// range, the range marked `>>>`.
fn excerpt(out: &mut String, file: &str, source: &[u8], start: usize, end: usize) {
    let text = String::from_utf8_lossy(source);
    let lines: Vec<&str> = text.split('\n').collect();
    if start < 1 || start > lines.len() {
        return;
    }
    let end = end.max(start).min(lines.len());
    let (mut from, mut to) = (start, end);
    let pad = if start == end { 4 } else { 2 };
    let mut p = 0;
    while p < pad {
        if from > 1 {
            from -= 1;
            p += 1;
        }
        if to != lines.len() {
            to += 1;
            p += 1;
        }
        p += 1;
    }
    out.push_str(&format!("{file}:{start}\n--------------------\n"));
    for (i, line) in lines.iter().enumerate().take(to).skip(from - 1) {
        let n = i + 1;
        let mark = if (start..=end).contains(&n) {
            ">>>"
        } else {
            "   "
        };
        out.push_str(&format!(" {n:>3} | {mark} {line}\n"));
    }
    out.push_str("--------------------\n");
}

/// A stop (or `error=true`'s violation) as buildx prints it on stderr after
/// the report: the message, then the excerpt when it has a line.
pub fn render_stop(
    message: &str,
    lines: Option<(usize, usize)>,
    file: &str,
    source: &[u8],
) -> String {
    let mut out = format!("error: {message}\n");
    if let Some((start, end)) = lines {
        excerpt(&mut out, file, source, start, end);
    }
    out
}

/// `--check`'s text report, the `Check complete, …` line included.
pub fn render_text(findings: &[Finding], file: &str, source: &[u8]) -> String {
    let mut out = String::new();
    match findings.len() {
        0 => return "Check complete, no warnings found.\n".into(),
        1 => out.push_str("Check complete, 1 warning has been found!\n"),
        n => out.push_str(&format!("Check complete, {n} warnings have been found!\n")),
    }
    for f in sorted(findings) {
        out.push_str(&format!("\nWARNING: {}", f.rule.name));
        if let Some(url) = f.rule.url {
            out.push_str(&format!(" - {url}"));
        }
        out.push_str(&format!("\n{}\n", f.detail));
        excerpt(&mut out, file, source, f.start_line, f.end_line);
    }
    out
}

/// `--call=check,format=json`: BuildKit's `LintResults`. The source carries
/// the file name, language and data; BuildKit's LLB definition of the
/// Dockerfile source is left out (kiln has no LLB).
pub fn render_json(report: &super::Report, file: &str, source: &[u8]) -> String {
    let findings = &report.findings;
    let warnings: Vec<Value> = findings
        .iter()
        .map(|f| {
            let mut w = json!({
                "ruleName": f.rule.name,
                "description": f.rule.description,
            });
            if let Some(url) = f.rule.url {
                w["url"] = json!(url);
            }
            w["detail"] = json!(f.detail);
            w["location"] = location(f.start_line, f.end_line);
            w
        })
        .collect();
    // COMPAT(buildkit): Go marshals an empty warnings slice as null.
    let warnings = if warnings.is_empty() {
        Value::Null
    } else {
        Value::Array(warnings)
    };
    let mut doc = json!({
        "warnings": warnings,
        "sources": [{
            "filename": file,
            "language": "Dockerfile",
            "data": base64::engine::general_purpose::STANDARD.encode(source),
        }],
    });
    if let Some(stop) = &report.stop {
        doc["buildError"] = json!({
            "message": stop.message,
            "location": location(stop.start_line, stop.end_line),
        });
    } else if let Some(message) = report.error() {
        doc["buildError"] = json!({"message": message, "location": {}});
    }
    let mut s = serde_json::to_string_pretty(&doc).unwrap_or_default();
    s.push('\n');
    s
}

/// BuildKit's `pb.Location` of an instruction as JSON.
// COMPAT(buildkit): `parser.toRanges` gives one range per physical line
// (`{2,2},{3,3}` for a two-line instruction), not one range over them.
pub(super) fn location(start: usize, end: usize) -> Value {
    let ranges: Vec<Value> = (start..=end.max(start))
        .map(|line| json!({"start": {"line": line}, "end": {"line": line}}))
        .collect();
    json!({ "ranges": ranges })
}

/// The lines printed after a build: buildx's `N warnings found` block.
pub fn render_short(findings: &[Finding]) -> String {
    let mut out = String::new();
    for f in findings {
        out.push_str(&format!(" - {}\n", f.short()));
    }
    out
}
