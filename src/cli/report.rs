//! Printing a failed build: `error: …`, the Dockerfile excerpt with the
//! failing instruction's lines marked (when the error has a span), then one
//! `caused by: …` line per cause. Exit codes: 1 a step failed, 2 usage or
//! Dockerfile error, 3 internal or I/O error.

use std::error::Error;

use crate::builder::BuildError;
use crate::dockerfile::render_excerpt;
use crate::plan::PlanError;

/// Exit code: a build step failed.
pub const EXIT_STEP: i32 = 1;
/// Exit code: bad arguments or a bad Dockerfile.
pub const EXIT_USAGE: i32 = 2;
/// Exit code: an internal or I/O error.
pub const EXIT_INTERNAL: i32 = 3;

/// The text printed for `e`: excerpt when it has a span, then its causes.
pub fn render_build_error(e: &BuildError, src: &[u8], filename: &str) -> String {
    let parse = match e {
        BuildError::Parse(p) | BuildError::Plan(PlanError::Syntax(p)) => Some(p),
        _ => None,
    };
    let mut out = match (parse, e.span()) {
        (Some(p), _) => p.render(src, filename),
        (None, Some(span)) => render_excerpt(src, filename, span, &e.to_string()),
        (None, None) => format!("error: {e}\n"),
    };
    if !out.ends_with('\n') {
        out.push('\n');
    }
    // COMPAT(buildkit): a failed RUN's last output lines, between rules.
    let tail = e.output_tail();
    if !tail.is_empty() {
        out.push_str("------\n");
        for l in tail {
            out.push_str(&format!("  {l}\n"));
        }
        out.push_str("------\n");
    }
    // Transparent wrappers repeat their inner message as the first source.
    let mut last = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let msg = c.to_string();
        if msg != last {
            out.push_str(&format!("caused by: {msg}\n"));
        }
        last = msg;
        cur = c.source();
    }
    out
}

/// `error: …` and `caused by: …` lines for any error.
pub fn render_error(e: &dyn Error) -> String {
    let mut out = format!("error: {e}\n");
    let mut cur = e.source();
    while let Some(c) = cur {
        out.push_str(&format!("caused by: {c}\n"));
        cur = c.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builder::CopyError;
    use crate::builder::StepError;
    use crate::dockerfile::Span;

    #[test]
    fn step_error_shows_excerpt_and_causes() {
        let src = b"FROM scratch\nCOPY missing /x\n";
        let e = BuildError::Step {
            span: Span {
                start_line: 2,
                end_line: 2,
            },
            display: "COPY missing /x".into(),
            source: Box::new(StepError::Copy(CopyError::NotFound {
                source_path: "missing".into(),
            })),
        };
        let text = render_build_error(&e, src, "Dockerfile");
        assert!(text.starts_with("error: COPY missing /x\n"), "{text}");
        assert!(text.contains("--> Dockerfile:2:1"), "{text}");
        assert!(text.contains("2 | COPY missing /x"), "{text}");
        assert!(
            text.ends_with("caused by: \"missing\": not found\n"),
            "{text}"
        );
        assert_eq!(e.exit_code(), EXIT_STEP);
    }
}
