//! Instructions that only change the image config (and, for ENV and ARG, the
//! environment later steps see): ARG, ENV, LABEL, MAINTAINER, EXPOSE, USER,
//! VOLUME, STOPSIGNAL, SHELL, CMD, ENTRYPOINT, ONBUILD. Each records a
//! history-only step with BuildKit's `created_by` text (ONBUILD records none,
//! as in BuildKit).

use std::collections::BTreeSet;

use crate::dockerfile::Instruction;
use crate::oci::Empty;

use super::args::{split_word, words};
use super::flags::{bad_args, one_arg, Flags};
use super::gofmt::{plain_list, quote_list};
use super::state::{Lowerer, StageState};
use super::{ArgDecl, PlanError};

/// The arguments of EXPOSE, VOLUME, ENV and LABEL: no flags, at least one.
fn some_args(inst: &Instruction) -> Result<&[String], PlanError> {
    Flags::parse(inst, &[])?;
    if inst.args.is_empty() {
        return Err(bad_args(inst, "requires at least one argument"));
    }
    Ok(&inst.args)
}

/// `ARG name[=default] …` inside a stage.
pub(super) fn arg(
    lw: &mut Lowerer<'_>,
    st: &mut StageState,
    inst: &Instruction,
) -> Result<(), PlanError> {
    let mut commit = Vec::new();
    for word in words(inst)? {
        let (name, default) = split_word(inst, word)?;
        lw.declared.insert(name.clone());
        let (value, inherited) = match (lw.opts.build_args.get(&name), default) {
            (Some(v), _) => (Some(v.clone()), false),
            (None, Some(d)) => (Some(lw.exp.word(inst, &d, &st.env)?), false),
            (None, None) => match lw.global.get(&name) {
                Some(v) => (Some(v.to_string()), true),
                None => (None, false),
            },
        };
        if let Some(v) = &value {
            st.env.set(&name, v);
            commit.push(format!("{name}={v}"));
        } else {
            commit.push(name.clone());
        }
        st.args.push(ArgDecl {
            name: name.clone(),
            value: value.clone(),
            uses: Default::default(),
            inherited,
            span: inst.span,
        });
        st.build_args.push((name, value));
    }
    st.push_meta(inst, format!("ARG {}", commit.join(" ")));
    Ok(())
}

/// ENV and LABEL pairs, expanded with the environment from before the
/// instruction (so `ENV A=1 B=$A` sees the old A).
fn pairs(
    lw: &Lowerer<'_>,
    st: &StageState,
    inst: &Instruction,
) -> Result<Vec<(String, String)>, PlanError> {
    let args = some_args(inst)?;
    if !args.len().is_multiple_of(3) {
        return Err(bad_args(inst, "malformed key/value pairs"));
    }
    let mut out = Vec::new();
    for kv in args.chunks(3) {
        let key = lw.exp.word(inst, &kv[0], &st.env)?;
        if key.is_empty() {
            return Err(bad_args(inst, "names can not be blank"));
        }
        out.push((key, lw.exp.word(inst, &kv[1], &st.env)?));
    }
    Ok(out)
}

/// ENV and LABEL: `apply` records each pair; history is `KEYWORD k=v …`.
fn set_pairs(
    lw: &Lowerer<'_>,
    st: &mut StageState,
    inst: &Instruction,
    keyword: &str,
    apply: fn(&mut StageState, String, String),
) -> Result<(), PlanError> {
    let mut commit = String::from(keyword);
    for (k, v) in pairs(lw, st, inst)? {
        commit.push_str(&format!(" {k}={v}"));
        apply(st, k, v);
    }
    st.push_meta(inst, commit);
    Ok(())
}

/// `ENV k=v …`.
pub(super) fn env(
    lw: &mut Lowerer<'_>,
    st: &mut StageState,
    inst: &Instruction,
) -> Result<(), PlanError> {
    set_pairs(lw, st, inst, "ENV", |st, k, v| {
        st.env.set(&k, &v);
        st.config.config.env_set(&k, &v);
    })
}

/// `LABEL k=v …`.
pub(super) fn label(
    lw: &mut Lowerer<'_>,
    st: &mut StageState,
    inst: &Instruction,
) -> Result<(), PlanError> {
    set_pairs(lw, st, inst, "LABEL", |st, k, v| {
        st.config.config.labels.insert(k, v);
    })
}

/// `MAINTAINER name` (not expanded).
pub(super) fn maintainer(st: &mut StageState, inst: &Instruction) -> Result<(), PlanError> {
    let who = one_arg(inst)?.to_string();
    st.config.author = Some(who.clone());
    st.push_meta(inst, format!("MAINTAINER {who}"));
    Ok(())
}

/// `EXPOSE 80 443/udp 8000-8002`.
pub(super) fn expose(
    lw: &mut Lowerer<'_>,
    st: &mut StageState,
    inst: &Instruction,
) -> Result<(), PlanError> {
    let mut ports = BTreeSet::new();
    for word in some_args(inst)? {
        for spec in lw.exp.words(inst, word, &st.env)? {
            ports.extend(port_spec(&spec).map_err(|r| bad_args(inst, r))?);
        }
    }
    let shown: Vec<String> = ports.iter().map(|p| format!("{p}:{{}}")).collect();
    for p in ports {
        st.config.config.exposed_ports.insert(p, Empty {});
    }
    st.push_meta(inst, format!("EXPOSE map[{}]", shown.join(" ")));
    Ok(())
}

/// `[ip:[host]:]port[-end][/proto]` → `port/proto` for each port (docker's `nat.ParsePortSpec`).
fn port_spec(spec: &str) -> Result<Vec<String>, String> {
    let container = spec.rsplit(':').next().unwrap_or(spec);
    let (range, proto) = match container.split_once('/') {
        Some((r, p)) if !p.is_empty() => (r, p.to_ascii_lowercase()),
        Some((r, _)) => (r, "tcp".to_string()),
        None => (container, "tcp".to_string()),
    };
    if !["tcp", "udp", "sctp"].contains(&proto.as_str()) {
        return Err(format!("invalid proto: {proto}"));
    }
    let parse = |s: &str| {
        s.parse::<u16>()
            .map_err(|_| format!("invalid containerPort: {range}"))
    };
    let (start, end) = match range.split_once('-') {
        Some((a, b)) => (parse(a)?, parse(b)?),
        None => (parse(range)?, parse(range)?),
    };
    if end < start {
        return Err(format!(
            "invalid range specified for container port: {range}"
        ));
    }
    Ok((start..=end).map(|p| format!("{p}/{proto}")).collect())
}

/// `USER name[:group]`.
pub(super) fn user(
    lw: &mut Lowerer<'_>,
    st: &mut StageState,
    inst: &Instruction,
) -> Result<(), PlanError> {
    let user = lw.exp.word(inst, one_arg(inst)?, &st.env)?;
    st.config.config.user = Some(user.clone());
    st.push_meta(inst, format!("USER {user}"));
    Ok(())
}

/// `VOLUME /a /b` or `VOLUME ["/a"]`.
pub(super) fn volume(
    lw: &mut Lowerer<'_>,
    st: &mut StageState,
    inst: &Instruction,
) -> Result<(), PlanError> {
    let mut vols = Vec::new();
    for v in some_args(inst)? {
        let v = v.trim();
        if v.is_empty() {
            return Err(bad_args(inst, "a volume can not be an empty string"));
        }
        let v = lw.exp.word(inst, v, &st.env)?;
        if v.is_empty() {
            return Err(bad_args(inst, "a volume can not be an empty string"));
        }
        vols.push(v);
    }
    for v in &vols {
        st.config.config.volumes.insert(v.clone(), Empty {});
    }
    st.push_meta(inst, format!("VOLUME {}", plain_list(&vols)));
    Ok(())
}

/// `STOPSIGNAL SIGTERM` (or a number).
pub(super) fn stopsignal(
    lw: &mut Lowerer<'_>,
    st: &mut StageState,
    inst: &Instruction,
) -> Result<(), PlanError> {
    let sig = lw.exp.word(inst, one_arg(inst)?, &st.env)?;
    if !valid_signal(&sig) {
        return Err(bad_args(inst, format!("invalid signal: {sig}")));
    }
    st.config.config.stop_signal = Some(sig.clone());
    st.push_meta(inst, format!("STOPSIGNAL {sig}"));
    Ok(())
}

const SIGNALS: [&str; 35] = [
    "ABRT", "ALRM", "BUS", "CHLD", "CLD", "CONT", "FPE", "HUP", "ILL", "INT", "IO", "IOT", "KILL",
    "PIPE", "POLL", "PROF", "PWR", "QUIT", "SEGV", "STKFLT", "STOP", "SYS", "TERM", "TRAP", "TSTP",
    "TTIN", "TTOU", "URG", "USR1", "USR2", "VTALRM", "WINCH", "XCPU", "XFSZ", "UNUSED",
];

/// docker's `signal.ParseSignal` on Linux: a non-zero number or a name, `SIG` optional.
fn valid_signal(s: &str) -> bool {
    if let Ok(n) = s.parse::<i64>() {
        return n != 0;
    }
    let upper = s.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    let rt = |base: &str, sign: char| {
        name.strip_prefix(base).is_some_and(|r| {
            r.is_empty()
                || r.strip_prefix(sign)
                    .and_then(|n| n.parse::<u8>().ok())
                    .is_some_and(|n| (1..=15).contains(&n))
        })
    };
    SIGNALS.contains(&name) || rt("RTMIN", '+') || rt("RTMAX", '-')
}

/// `SHELL ["executable", "args"…]` (JSON only).
pub(super) fn shell(st: &mut StageState, inst: &Instruction) -> Result<(), PlanError> {
    Flags::parse(inst, &[])?;
    if !inst.json_form {
        return Err(bad_args(inst, "requires the arguments to be in JSON form"));
    }
    if inst.args.is_empty() {
        return Err(bad_args(inst, "requires at least one argument"));
    }
    st.config.config.shell = Some(inst.args.clone());
    st.push_meta(inst, format!("SHELL {}", plain_list(&inst.args)));
    Ok(())
}

/// CMD/ENTRYPOINT argv: JSON as is, shell form behind the SHELL.
fn command_line(st: &StageState, inst: &Instruction) -> Result<Vec<String>, PlanError> {
    Flags::parse(inst, &[])?;
    if inst.json_form {
        return Ok(inst.args.clone());
    }
    let mut argv = st.shell();
    argv.push(inst.args.join(" "));
    Ok(argv)
}

/// Go's `omitempty`: an empty list is absent from the config.
fn non_empty(v: Vec<String>) -> Option<Vec<String>> {
    (!v.is_empty()).then_some(v)
}

/// `CMD`.
pub(super) fn cmd(st: &mut StageState, inst: &Instruction) -> Result<(), PlanError> {
    let argv = command_line(st, inst)?;
    let shown = quote_list(&argv);
    st.config.config.cmd = non_empty(argv);
    // COMPAT(buildkit): dispatchCmd sets ArgsEscaped for docker's sake.
    st.config.config.args_escaped = true;
    st.cmd_set = true;
    st.push_meta(inst, format!("CMD {shown}"));
    Ok(())
}

/// `ENTRYPOINT`: clears a CMD inherited from the base, keeps one set in this stage.
pub(super) fn entrypoint(st: &mut StageState, inst: &Instruction) -> Result<(), PlanError> {
    let argv = command_line(st, inst)?;
    let shown = quote_list(&argv);
    st.config.config.entrypoint = non_empty(argv);
    // COMPAT(buildkit): `if !d.cmd.IsSet { Cmd = nil }`.
    if !st.cmd_set {
        st.config.config.cmd = None;
    }
    st.push_meta(inst, format!("ENTRYPOINT {shown}"));
    Ok(())
}

/// `ONBUILD <instruction>`: recorded in the config, no history.
pub(super) fn onbuild(st: &mut StageState, inst: &Instruction) -> Result<(), PlanError> {
    Flags::parse(inst, &[])?;
    let Some(sub) = &inst.sub else {
        return Err(bad_args(inst, "requires at least one argument"));
    };
    match sub.command().as_str() {
        "onbuild" => {
            return Err(bad_args(
                inst,
                "chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed",
            ))
        }
        "from" | "maintainer" => {
            let kw = sub.keyword.to_ascii_uppercase();
            return Err(bad_args(
                inst,
                format!("{kw} isn't allowed as an ONBUILD trigger"),
            ));
        }
        _ => {}
    }
    let line = inst.original.trim_start();
    let mut expr = match line.get(..7) {
        Some(kw) if kw.eq_ignore_ascii_case("onbuild") => line[7..].trim_start().to_string(),
        _ => line.to_string(),
    };
    for h in &inst.heredocs {
        expr.push('\n');
        expr.push_str(&h.content);
        expr.push_str(&h.name);
    }
    st.config
        .config
        .on_build
        .get_or_insert_with(Vec::new)
        .push(expr);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_specs_expand_ranges_and_default_tcp() {
        assert_eq!(port_spec("80").unwrap(), ["80/tcp"]);
        assert_eq!(port_spec("53/UDP").unwrap(), ["53/udp"]);
        assert_eq!(
            port_spec("8000-8002").unwrap(),
            ["8000/tcp", "8001/tcp", "8002/tcp"]
        );
        assert_eq!(port_spec("127.0.0.1:8080:80").unwrap(), ["80/tcp"]);
        assert!(port_spec("80/icmp").is_err());
        assert!(port_spec("x").is_err());
        assert!(port_spec("9-1").is_err());
    }

    #[test]
    fn signals_like_docker() {
        for ok in ["SIGTERM", "term", "9", "SIGRTMIN+3", "RTMAX-1", "SIGRTMIN"] {
            assert!(valid_signal(ok), "{ok}");
        }
        for bad in ["0", "SIGFOO", "RTMIN+99", ""] {
            assert!(!valid_signal(bad), "{bad}");
        }
    }
}
