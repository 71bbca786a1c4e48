//! `RUN --mount=…`: BuildKit's CSV option syntax (`type=cache,target=/c,…`)
//! into a typed `RunMount`, with BuildKit's defaults and checks. Values are
//! expanded with the stage environment except `type` and `from` (`from` is
//! needed before lowering to know which stages a stage reads). Every error
//! names the offending key.

use crate::dockerfile::Instruction;

use super::csv::csv_fields;
use super::path::clean_abs;
use super::state::{Lowerer, Source, StageState};
use super::{FilesFrom, PlanError, RunMount, Sharing};

/// The options of one mount before they are typed.
#[derive(Default)]
struct Spec {
    kind: String,
    from: Option<String>,
    source: Option<String>,
    target: Option<String>,
    id: Option<String>,
    sharing: Option<Sharing>,
    mode: Option<u32>,
    uid: Option<u32>,
    gid: Option<u32>,
    size: Option<u64>,
    env: Option<String>,
    readonly: Option<bool>,
    required: bool,
}

/// Parses and types one `--mount` value; `ssh_index` numbers default SSH sockets.
pub(super) fn parse(
    lw: &mut Lowerer<'_>,
    st: &mut StageState,
    inst: &Instruction,
    option: &str,
    ssh_index: &mut usize,
) -> Result<RunMount, PlanError> {
    let err = |(key, reason): (&str, String)| PlanError::Mount {
        span: inst.span,
        key: key.to_string(),
        reason,
    };
    let spec = read_spec(lw, st, inst, option)?;
    let workdir = st.workdir();
    let target = |required| resolve_target(&spec, &workdir, required).map_err(err);
    Ok(match spec.kind.as_str() {
        "bind" => RunMount::Bind {
            target: target(true)?.unwrap_or_default(),
            source: clean_abs("/", spec.source.as_deref().unwrap_or("/")),
            from: mount_from(lw, st, inst, spec.from.as_deref())?.unwrap_or(FilesFrom::Context),
            rw: spec.readonly == Some(false),
        },
        "cache" => {
            let t = target(true)?.unwrap_or_default();
            RunMount::Cache {
                id: spec
                    .id
                    .clone()
                    .or(spec.target.clone())
                    .unwrap_or_else(|| t.clone()),
                target: t,
                ro: spec.readonly == Some(true),
                sharing: spec.sharing.unwrap_or(Sharing::Shared),
                from: mount_from(lw, st, inst, spec.from.as_deref())?,
                source: clean_abs("/", spec.source.as_deref().unwrap_or("/")),
                mode: spec.mode.unwrap_or(0o755),
                uid: spec.uid.unwrap_or(0),
                gid: spec.gid.unwrap_or(0),
            }
        }
        "tmpfs" => RunMount::Tmpfs {
            target: target(true)?.unwrap_or_default(),
            size: spec.size,
        },
        "secret" => secret(&spec, target(false)?).map_err(err)?,
        _ => {
            let n = *ssh_index;
            *ssh_index += 1;
            RunMount::Ssh {
                id: spec.id.clone().unwrap_or_else(|| "default".into()),
                target: target(false)?.unwrap_or_else(|| format!("/run/buildkit/ssh_agent.{n}")),
                required: spec.required,
                mode: spec.mode.unwrap_or(0o600),
                uid: spec.uid.unwrap_or(0),
                gid: spec.gid.unwrap_or(0),
            }
        }
    })
}

/// Reads the CSV options into a `Spec`, expanding values (not `type`/`from`).
fn read_spec(
    lw: &Lowerer<'_>,
    st: &StageState,
    inst: &Instruction,
    option: &str,
) -> Result<Spec, PlanError> {
    let err = |key: &str, reason: String| PlanError::Mount {
        span: inst.span,
        key: key.to_string(),
        reason,
    };
    let mut spec = Spec {
        kind: "bind".into(),
        ..Default::default()
    };
    for field in csv_fields(option) {
        let (key, value) = match field.split_once('=') {
            Some((k, v)) => (k.to_ascii_lowercase(), Some(v.to_string())),
            None => (field.to_ascii_lowercase(), None),
        };
        let value = match (key.as_str(), value) {
            ("type" | "from", Some(v)) => Some(v),
            (_, Some(v)) => Some(lw.exp.word(inst, &v, &st.env)?),
            (_, None) => None,
        };
        set_key(&mut spec, &key, value).map_err(|r| err(&key, r))?;
    }
    check_kind(&spec).map_err(|(k, r)| err(k, r))?;
    Ok(spec)
}

/// The mount point made absolute against WORKDIR; `/` is refused. Without
/// a target, a file mount (`dir == false`: secret, ssh) gets its default
/// later, a directory mount is the WORKDIR itself.
// COMPAT(buildkit): dispatchRunMounts joins an empty target onto the
// working directory (`filepath.Join("/", dir, "")`).
fn resolve_target(
    spec: &Spec,
    workdir: &str,
    dir: bool,
) -> Result<Option<String>, (&'static str, String)> {
    match spec.target.as_deref() {
        None | Some("") if !dir => Ok(None),
        t => {
            let t = t.unwrap_or_default();
            let abs = clean_abs(workdir, t);
            if abs == "/" {
                return Err(("target", format!("invalid mount target \"{t}\"")));
            }
            Ok(Some(abs))
        }
    }
}

fn mount_from(
    lw: &mut Lowerer<'_>,
    st: &mut StageState,
    inst: &Instruction,
    from: Option<&str>,
) -> Result<Option<FilesFrom>, PlanError> {
    let Some(f) = from.filter(|f| !f.is_empty()) else {
        return Ok(None);
    };
    Ok(Some(match lw.source(inst, f, st)? {
        Source::Stage(id) => FilesFrom::Stage(id),
        Source::Image(img) => FilesFrom::Image(*img),
        Source::Context(name) => FilesFrom::NamedContext(name),
    }))
}

/// BuildKit's `dispatchSecret` defaults: id from `source`/`id`, else the target's name.
fn secret(spec: &Spec, target: Option<String>) -> Result<RunMount, (&'static str, String)> {
    let id = match (&spec.source, &spec.id, &target) {
        (Some(s), _, _) => s.clone(),
        (None, Some(i), _) => i.clone(),
        (None, None, Some(t)) => t.rsplit('/').next().unwrap_or(t).to_string(),
        (None, None, None) => return Err(("target", "one of source, target required".into())),
    };
    let target = match (target, &spec.env) {
        (Some(t), _) => Some(t),
        (None, Some(_)) => None,
        (None, None) => Some(format!(
            "/run/secrets/{}",
            id.rsplit('/').next().unwrap_or(&id)
        )),
    };
    Ok(RunMount::Secret {
        id,
        target,
        env: spec.env.clone(),
        required: spec.required,
        mode: spec.mode.unwrap_or(0o400),
        uid: spec.uid.unwrap_or(0),
        gid: spec.gid.unwrap_or(0),
    })
}

/// Records one `key[=value]`.
fn set_key(spec: &mut Spec, key: &str, value: Option<String>) -> Result<(), String> {
    let boolean = |v: &Option<String>| match v.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None | Some("true") | Some("1") => Ok(true),
        Some("false") | Some("0") => Ok(false),
        Some(other) => Err(format!("invalid boolean value {other:?}")),
    };
    let Some(v) = value.clone() else {
        match key {
            "ro" | "readonly" => spec.readonly = Some(true),
            "rw" | "readwrite" => spec.readonly = Some(false),
            "required" => spec.required = true,
            _ => return Err("unexpected key without a value".into()),
        }
        return Ok(());
    };
    let number =
        |radix: u32| u32::from_str_radix(&v, radix).map_err(|_| format!("invalid value {v:?}"));
    match key {
        "type" => match v.to_ascii_lowercase().as_str() {
            t @ ("bind" | "cache" | "tmpfs" | "secret" | "ssh") => spec.kind = t.to_string(),
            _ => {
                return Err(format!(
                    "unsupported mount type {v:?} (bind, cache, tmpfs, secret, ssh)"
                ))
            }
        },
        "from" => spec.from = Some(v),
        "source" | "src" => spec.source = Some(v),
        "target" | "dst" | "destination" => spec.target = Some(v),
        "ro" | "readonly" => spec.readonly = Some(boolean(&value)?),
        "rw" | "readwrite" => spec.readonly = Some(!boolean(&value)?),
        "required" => spec.required = boolean(&value)?,
        "id" => spec.id = Some(v),
        "env" => spec.env = Some(v),
        "size" => spec.size = Some(ram_in_bytes(&v).ok_or_else(|| format!("invalid size {v:?}"))?),
        "mode" => spec.mode = Some(number(8)?),
        "uid" => spec.uid = Some(number(10)?),
        "gid" => spec.gid = Some(number(10)?),
        "sharing" => {
            spec.sharing = Some(match v.to_ascii_lowercase().as_str() {
                "shared" => Sharing::Shared,
                "private" => Sharing::Private,
                "locked" => Sharing::Locked,
                _ => return Err(format!("unsupported sharing value {v:?}")),
            })
        }
        _ => return Err("unexpected key".into()),
    }
    Ok(())
}

/// Keys that only some mount types take.
fn check_kind(spec: &Spec) -> Result<(), (&'static str, String)> {
    let kind = spec.kind.as_str();
    let only = |key: &'static str, given: bool, allowed: &[&str]| {
        if given && !allowed.contains(&kind) {
            Err((key, format!("not allowed for {kind:?} type mounts")))
        } else {
            Ok(())
        }
    };
    let file_info = ["secret", "ssh", "cache"];
    only("mode", spec.mode.is_some(), &file_info)?;
    only("uid", spec.uid.is_some(), &file_info)?;
    only("gid", spec.gid.is_some(), &file_info)?;
    only("size", spec.size.is_some(), &["tmpfs"])?;
    only("sharing", spec.sharing.is_some(), &["cache"])?;
    only("required", spec.required, &["secret", "ssh"])?;
    only("env", spec.env.is_some(), &["secret"])?;
    only("from", spec.from.is_some(), &["bind", "cache"])?;
    // COMPAT(buildkit): dispatchSSH's check.
    if kind == "ssh" && spec.source.is_some() {
        return Err(("source", "ssh does not support source".into()));
    }
    if kind == "secret" && spec.source.is_some() && spec.id.is_some() {
        return Err(("id", "both source and id can't be set".into()));
    }
    Ok(())
}

/// docker's `units.RAMInBytes`: `64m`, `1g`, `1.5GiB`, `1024` (binary multiples).
fn ram_in_bytes(s: &str) -> Option<u64> {
    let t = s.trim();
    let num_end = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let num: f64 = t[..num_end].parse().ok()?;
    let unit = t[num_end..].trim_start().to_ascii_lowercase();
    let unit = unit.strip_suffix('b').unwrap_or(&unit);
    let unit = unit.strip_suffix('i').unwrap_or(unit);
    let mult: u64 = match unit {
        "" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        "t" => 1 << 40,
        "p" => 1 << 50,
        _ => return None,
    };
    Some((num * mult as f64) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::stages::from_value;

    #[test]
    fn csv_quotes_protect_commas() {
        assert_eq!(
            csv_fields("type=bind,\"source=a,b\",ro"),
            ["type=bind", "source=a,b", "ro"]
        );
        assert_eq!(
            from_value("type=cache,FROM=builder,target=/x").as_deref(),
            Some("builder")
        );
        assert_eq!(from_value("type=cache,target=/x"), None);
    }

    #[test]
    fn sizes_are_binary_multiples() {
        assert_eq!(ram_in_bytes("64m"), Some(64 << 20));
        assert_eq!(ram_in_bytes("1GiB"), Some(1 << 30));
        assert_eq!(ram_in_bytes("1024"), Some(1024));
        assert_eq!(ram_in_bytes("1x"), None);
    }
}
