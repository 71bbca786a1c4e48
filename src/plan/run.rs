//! RUN: argv (SHELL prepended for shell form), heredoc forms as BuildKit's
//! `dispatchRun` handles them, `--mount`, `--network`, `--security`, the
//! process env and the `created_by` text (`RUN |1 A=1 /bin/sh -c … # buildkit`).
//!
//! Heredocs (shell form only):
//! - a lone `<<EOF` whose body starts with `#!`: the body becomes an
//!   `InlineFile` (mode 0755) mounted at `/dev/pipes/EOF`, and the shell runs
//!   that path;
//! - a lone `<<EOF` otherwise: the shell runs the body as its command string;
//! - any other form (`cat <<EOF > f`, several heredocs): the command line and
//!   each body plus its terminator are joined with newlines and handed to the
//!   shell, which does the heredoc itself.

use crate::dockerfile::Instruction;

use super::args::proxy_env;
use super::flags::Flags;
use super::heredoc::{body, is_lone_heredoc};
use super::state::{display, Lowerer, StageState};
use super::{mount, InlineFile, NetworkMode, Op, PlanError, RunMount, RunOp, Security};

/// `RUN …`.
pub(super) fn run(
    lw: &mut Lowerer<'_>,
    st: &mut StageState,
    inst: &Instruction,
) -> Result<(), PlanError> {
    let flags = Flags::parse(inst, &["mount", "network", "security"])?;
    let network = match flags.string("network")? {
        // COMPAT(buildkit): dockerfile2llb starts every state on the build's
        // network mode; `default` (or no flag) keeps it.
        None | Some("default") => lw.opts.network,
        Some("none") => NetworkMode::None,
        Some("host") => NetworkMode::Host,
        Some(v) => return Err(flags.bad("network", v, "expected default, none or host")),
    };
    let security = match flags.string("security")? {
        None | Some("sandbox") => Security::Sandbox,
        Some("insecure") => Security::Insecure,
        Some(v) => return Err(flags.bad("security", v, "expected sandbox or insecure")),
    };
    let mut ssh_index = 0;
    let mut mounts = Vec::new();
    for m in flags.strings("mount")? {
        mounts.push(mount::parse(lw, st, inst, m, &mut ssh_index)?);
    }
    let (argv, files, summary) = command(st, inst);
    let created_by = format!("RUN {} # buildkit", history_text(st, &argv));
    let mut env = st.env.to_strings();
    // COMPAT(buildkit): llb's ExecOp points SSH_AUTH_SOCK at the first ssh
    // mount's target unless the environment (ENV or ARG) already sets it;
    // an optional agent that is not given still gets the variable.
    let first_ssh = mounts.iter().find_map(|m| match m {
        RunMount::Ssh { target, .. } => Some(target),
        _ => None,
    });
    if let Some(target) = first_ssh {
        if !env.iter().any(|e| e.starts_with("SSH_AUTH_SOCK=")) {
            env.push(format!("SSH_AUTH_SOCK={target}"));
        }
    }
    let op = RunOp {
        argv,
        env,
        proxy_env: proxy_env(&lw.opts.build_args, &st.env),
        user: st.user(),
        workdir: st.workdir(),
        network,
        security,
        mounts,
        files,
        stdin: None,
    };
    st.push(inst, Op::Run(op), created_by, false);
    if let Some(s) = summary {
        if let Some(step) = st.steps.last_mut() {
            step.display = format!("{} ({s})", display(inst));
        }
    }
    Ok(())
}

/// argv, inline files and (for a lone heredoc) the progress summary.
fn command(st: &StageState, inst: &Instruction) -> (Vec<String>, Vec<InlineFile>, Option<String>) {
    if inst.json_form {
        return (inst.args.clone(), Vec::new(), None);
    }
    let line = inst.args.join(" ");
    let mut argv = st.shell();
    let Some(first) = inst.heredocs.first() else {
        argv.push(line);
        return (argv, Vec::new(), None);
    };
    if !is_lone_heredoc(&line) {
        let mut full = line;
        for h in &inst.heredocs {
            full.push('\n');
            full.push_str(&h.content);
            full.push_str(&h.name);
        }
        argv.push(full);
        return (argv, Vec::new(), None);
    }
    let body = body(first);
    let summary = Some(summarize(&first.content));
    if first.content.starts_with("#!") {
        argv.push(format!("{}/{}", RunOp::FILES_DIR, first.name));
        let file = InlineFile {
            name: first.name.clone(),
            content: body,
            mode: 0o755,
        };
        return (argv, vec![file], summary);
    }
    argv.push(body);
    (argv, Vec::new(), summary)
}

/// BuildKit's `summarizeHeredoc`: first line, `...` if more.
fn summarize(doc: &str) -> String {
    let doc = doc.trim();
    match doc.split_once('\n') {
        Some((first, _)) => format!("{}...", first.trim_end_matches('\r')),
        None => doc.to_string(),
    }
}

/// BuildKit's `runCommandString`: `|N k=v …` for declared ARGs (value from
/// the env when set there), then the argv.
fn history_text(st: &StageState, argv: &[String]) -> String {
    let mut pairs: Vec<(String, String)> = Vec::new();
    for (k, v) in &st.build_args {
        let value = st
            .env
            .get(k)
            .map(str::to_string)
            .or_else(|| v.clone())
            .unwrap_or_default();
        match pairs.iter_mut().find(|(pk, _)| pk == k) {
            Some(slot) => slot.1 = value,
            None => pairs.push((k.clone(), value)),
        }
    }
    let mut parts = Vec::new();
    if !pairs.is_empty() {
        parts.push(format!("|{}", pairs.len()));
        parts.extend(pairs.into_iter().map(|(k, v)| format!("{k}={v}")));
    }
    parts.extend(argv.iter().cloned());
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dockerfile::Heredoc;

    #[test]
    fn lone_heredoc_words() {
        for yes in ["<<EOF", "<<-EOF", "<<\"EOF\"", " <<EOF ", "3<<X"] {
            assert!(is_lone_heredoc(yes), "{yes}");
        }
        for no in ["cat <<EOF", "<<EOF bash", "<<", "echo hi"] {
            assert!(!is_lone_heredoc(no), "{no}");
        }
    }

    #[test]
    fn chomp_strips_leading_tabs_per_line() {
        let h = Heredoc {
            name: "EOF".into(),
            fd: 0,
            expand: true,
            chomp: true,
            content: "\t\techo a\n\techo b\n".into(),
        };
        assert_eq!(body(&h), "echo a\necho b\n");
        assert_eq!(summarize("echo a\necho b\n"), "echo a...");
    }
}
