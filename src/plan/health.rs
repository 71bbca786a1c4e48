//! HEALTHCHECK: `NONE`, or `CMD` (shell form → `CMD-SHELL`) with
//! `--interval --timeout --start-period --start-interval --retries`, as
//! BuildKit's `parseHealthcheck`; history is Go's `%q` of the config struct.

use crate::dockerfile::Instruction;
use crate::oci::HealthConfig;

use super::flags::bad_args;
use super::flags::Flags;
use super::gofmt::{duration, parse_duration, quote_list, quote_rune};
use super::state::StageState;
use super::PlanError;

const DURATION_FLAGS: [&str; 4] = ["interval", "timeout", "start-period", "start-interval"];

/// docker's `container.MinimumDuration`: 1ms.
const MIN_DURATION_NS: i64 = 1_000_000;

/// `HEALTHCHECK …`.
pub(super) fn healthcheck(st: &mut StageState, inst: &Instruction) -> Result<(), PlanError> {
    let Some(kind) = inst.args.first() else {
        return Err(bad_args(inst, "requires at least one argument"));
    };
    let rest = &inst.args[1..];
    let health = match kind.to_ascii_uppercase().as_str() {
        "NONE" => {
            Flags::parse(inst, &[])?;
            if !rest.is_empty() {
                return Err(bad_args(inst, "NONE takes no arguments"));
            }
            HealthConfig {
                test: vec!["NONE".into()],
                ..Default::default()
            }
        }
        "CMD" => check_cmd(inst, rest)?,
        other => {
            return Err(bad_args(
                inst,
                format!("unknown type \"{other}\" (try CMD)"),
            ))
        }
    };
    let created_by = format!(
        "HEALTHCHECK &{{{} {} {} {} {} {}}}",
        quote_list(&health.test),
        quote(health.interval),
        quote(health.timeout),
        quote(health.start_period),
        quote(health.start_interval),
        quote_rune(health.retries.unwrap_or(0)),
    );
    st.config.config.healthcheck = Some(health);
    st.push_meta(inst, created_by);
    Ok(())
}

fn quote(ns: Option<i64>) -> String {
    format!("\"{}\"", duration(ns.unwrap_or(0)))
}

fn check_cmd(inst: &Instruction, rest: &[String]) -> Result<HealthConfig, PlanError> {
    let mut flags_list = DURATION_FLAGS.to_vec();
    flags_list.push("retries");
    let flags = Flags::parse(inst, &flags_list)?;
    if rest.is_empty() {
        return Err(bad_args(inst, "missing command after CMD"));
    }
    let test = if inst.json_form {
        std::iter::once("CMD".to_string())
            .chain(rest.iter().cloned())
            .collect()
    } else {
        vec!["CMD-SHELL".to_string(), rest.join(" ")]
    };
    let mut d = [None; 4];
    for (slot, name) in d.iter_mut().zip(DURATION_FLAGS) {
        *slot = interval(&flags, name)?;
    }
    let retries = match flags.string("retries")? {
        None | Some("") => None,
        Some(v) => match v.parse::<i32>() {
            Ok(n) if n < 0 => return Err(flags.bad("retries", v, "--retries cannot be negative")),
            Ok(0) => None,
            Ok(n) => Some(i64::from(n)),
            Err(_) => return Err(flags.bad("retries", v, "not an integer")),
        },
    };
    Ok(HealthConfig {
        test,
        interval: d[0],
        timeout: d[1],
        start_period: d[2],
        start_interval: d[3],
        retries,
    })
}

/// A duration flag: absent or zero → `None` (the runtime default).
fn interval(flags: &Flags<'_>, name: &str) -> Result<Option<i64>, PlanError> {
    let Some(v) = flags.string(name)? else {
        return Ok(None);
    };
    if v.is_empty() {
        return Ok(None);
    }
    match parse_duration(v) {
        None => Err(flags.bad(name, v, "not a duration (e.g. 30s, 1m30s)")),
        Some(0) => Ok(None),
        Some(ns) if ns < MIN_DURATION_NS => Err(flags.bad(name, v, "cannot be less than 1ms")),
        Some(ns) => Ok(Some(ns)),
    }
}
