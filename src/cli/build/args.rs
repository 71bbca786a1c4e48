//! Resolving `kiln build`'s flags into `BuildOptions` and outputs before
//! anything is built: `NAME=VALUE` lists, the host-only `--platform`,
//! `SOURCE_DATE_EPOCH` (environment or `--build-arg`), `--secret` specs,
//! `-o` specs and `-t` names. Every bad value is a usage error (exit 2).

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::ssh_keys::KeyAgent;
use super::BuildArgs;
use crate::builder::{self, Build, BuildOptions, Compression, OutputSpec, SecretSource};
use crate::oci::{Platform, Reference};

/// A command-line value that does not make sense.
#[derive(Debug, thiserror::Error)]
pub(in crate::cli) enum UsageError {
    #[error("{flag} {value:?}: expected NAME=VALUE")]
    KeyValue { flag: &'static str, value: String },
    #[error("--platform {value:?}")]
    Platform {
        value: String,
        #[source]
        source: crate::oci::PlatformParseError,
    },
    #[error("--platform {value:?}: {platform} is listed twice")]
    PlatformTwice { value: String, platform: String },
    #[error("invalid SOURCE_DATE_EPOCH {value:?}: expected seconds since 1970")]
    Epoch { value: String },
    #[error("--secret {value:?}: expected id=ID,src=FILE or id=ID,env=VAR")]
    Secret { value: String },
    #[error("--ssh {value:?}: {reason}")]
    Ssh { value: String, reason: String },
    // COMPAT(buildkit): buildx's wording.
    #[error("invalid entitlement: {value}")]
    Allow { value: String },
    #[error("--add-host {value:?}: expected HOST:IP or HOST=IP with an IP address")]
    AddHost { value: String },
    // COMPAT(buildkit): buildx asks docker's daemon for the gateway IP; kiln has none.
    #[error("--add-host {value:?}: host-gateway is not supported by kiln (there is no daemon gateway); give the IP")]
    HostGateway { value: String },
    #[error("--ulimit {value:?}: {reason}")]
    Ulimit { value: String, reason: String },
    #[error("--shm-size {value:?}: expected a size such as 67108864, 64m or 1g")]
    ShmSize { value: String },
    #[error("--network {value:?}: expected default, none or host")]
    Network { value: String },
    #[error("--compression")]
    Compression(#[source] builder::LayerError),
    #[error("-o {value:?}")]
    Output {
        value: String,
        #[source]
        source: builder::OutputSpecError,
    },
    #[error("pushing to a registry (--push, type=registry) needs a name: -t NAME or name=NAME")]
    PushName,
    #[error("only one output can go to stdout (dest=-)")]
    TwoStdout,
    #[error("refusing to write an archive to a terminal: redirect stdout or give dest=FILE")]
    StdoutTerminal,
    #[error(transparent)]
    Annotation(#[from] super::annotations::AnnotationError),
    #[error(transparent)]
    Docker(#[from] super::docker_flags::Unsupported),
    #[error(transparent)]
    Attest(#[from] crate::attest::OptionsError),
    #[error(transparent)]
    Cache(#[from] builder::CacheSpecError),
    #[error("--build-context")]
    Context(#[source] builder::ContextSpecError),
    #[error("--check-frontend-version")]
    FrontendVersion(#[source] crate::lint::VersionError),
    #[error("invalid tag {name:?}")]
    Tag {
        name: String,
        #[source]
        source: crate::oci::ReferenceError,
    },
}

fn key_values(
    flag: &'static str,
    vals: &[String],
    from_env: bool,
) -> Result<BTreeMap<String, String>, UsageError> {
    let mut out = BTreeMap::new();
    for v in vals {
        match v.split_once('=') {
            Some((k, val)) if !k.is_empty() => {
                out.insert(k.to_string(), val.to_string());
            }
            // COMPAT(buildkit): `--build-arg NAME` takes NAME from the environment, if set.
            None if from_env && !v.is_empty() => {
                if let Ok(val) = std::env::var(v) {
                    out.insert(v.clone(), val);
                }
            }
            _ => {
                return Err(UsageError::KeyValue {
                    flag,
                    value: v.clone(),
                })
            }
        }
    }
    Ok(out)
}

fn secrets(vals: &[String]) -> Result<BTreeMap<String, SecretSource>, UsageError> {
    let mut out = BTreeMap::new();
    for v in vals {
        let bad = || UsageError::Secret { value: v.clone() };
        let mut id = None;
        let mut src = None;
        for field in v.split(',') {
            match field.split_once('=').ok_or_else(bad)? {
                ("id", x) => id = Some(x.to_string()),
                ("src" | "source", x) => src = Some(SecretSource::File(x.into())),
                ("env", x) => src = Some(SecretSource::Env(std::env::var(x).unwrap_or_default())),
                ("type", "file" | "env") => {}
                _ => return Err(bad()),
            }
        }
        let id = id.ok_or_else(bad)?;
        // COMPAT(buildkit): without src/env, the secret is the env var named like its id.
        let src = src.unwrap_or_else(|| SecretSource::Env(std::env::var(&id).unwrap_or_default()));
        out.insert(id, src);
    }
    Ok(out)
}

/// `--ssh ID[=SOCKET|KEYFILE[,KEYFILE…]]` (buildx's syntax): `ID` alone is
/// `$SSH_AUTH_SOCK`; key files are loaded into an agent of kiln's own
/// ([`KeyAgent`]), which must live as long as the build.
fn ssh_agents(vals: &[String]) -> Result<(BTreeMap<String, PathBuf>, Vec<KeyAgent>), UsageError> {
    let mut out = BTreeMap::new();
    let mut agents = Vec::new();
    for v in vals {
        let bad = |reason: &str| UsageError::Ssh {
            value: v.clone(),
            reason: reason.into(),
        };
        let (id, paths) = match v.split_once('=') {
            Some((id, p)) => (id, p.split(',').map(PathBuf::from).collect::<Vec<_>>()),
            None => match std::env::var_os("SSH_AUTH_SOCK").filter(|s| !s.is_empty()) {
                Some(p) => (v.as_str(), vec![PathBuf::from(p)]),
                // COMPAT(buildkit): buildx's sshprovider says the same.
                None => {
                    return Err(bad(
                        "invalid empty ssh agent socket: make sure SSH_AUTH_SOCK is set",
                    ))
                }
            },
        };
        if id.is_empty() {
            return Err(bad("expected ID[=SOCKET|KEYFILE]"));
        }
        use std::os::unix::fs::FileTypeExt;
        let mut sockets = 0;
        for p in &paths {
            match std::fs::metadata(p) {
                Ok(m) if m.file_type().is_socket() => sockets += 1,
                Ok(m) if m.is_file() => {}
                Ok(_) => {
                    return Err(bad(&format!(
                        "{} is neither an agent socket nor a key file",
                        p.display()
                    )))
                }
                Err(e) => return Err(bad(&format!("{}: {e}", p.display()))),
            }
        }
        let socket = match (sockets, paths.len()) {
            (1, 1) => paths[0].clone(),
            // COMPAT(buildkit): buildx's sshprovider takes one socket or key files.
            (0, _) => {
                let agent = KeyAgent::start(&paths).map_err(|reason| bad(&reason))?;
                let socket = agent.socket().to_path_buf();
                agents.push(agent);
                socket
            }
            _ => return Err(bad("only a single agent socket is allowed")),
        };
        if out.insert(id.to_string(), socket).is_some() {
            return Err(bad(&format!("invalid duplicate ID {id}")));
        }
    }
    Ok((out, agents))
}

/// `--add-host HOST:IP` / `HOST=IP`.
// COMPAT(buildkit): buildx cuts at the first `=`, else at the first `:` (so
// `host:::1` is IPv6), and the IP must parse.
pub(in crate::cli) fn extra_hosts(vals: &[String]) -> Result<Vec<builder::ExtraHost>, UsageError> {
    let mut out = Vec::new();
    for v in vals {
        let bad = || UsageError::AddHost { value: v.clone() };
        let (host, ip) = v
            .split_once('=')
            .or_else(|| v.split_once(':'))
            .ok_or_else(bad)?;
        if ip == "host-gateway" {
            return Err(UsageError::HostGateway { value: v.clone() });
        }
        if host.is_empty() || host.chars().any(char::is_whitespace) {
            return Err(bad());
        }
        let ip = ip.parse().map_err(|_| bad())?;
        out.push(builder::ExtraHost {
            host: host.to_string(),
            ip,
        });
    }
    Ok(out)
}

/// `--ulimit NAME=SOFT[:HARD]`: docker's syntax (go-units' `ParseUlimit`);
/// a later flag for the same resource wins.
pub(in crate::cli) fn ulimits(vals: &[String]) -> Result<Vec<builder::Ulimit>, UsageError> {
    use builder::{Resource, Ulimit};
    let mut out: Vec<Ulimit> = Vec::new();
    for v in vals {
        let bad = |reason: String| UsageError::Ulimit {
            value: v.clone(),
            reason,
        };
        let (name, limits) = v
            .split_once('=')
            .ok_or_else(|| bad("expected NAME=SOFT[:HARD]".into()))?;
        let resource = Resource::parse(name).ok_or_else(|| {
            let names: Vec<_> = Resource::ALL.iter().map(|(n, _)| *n).collect();
            bad(format!(
                "unknown ulimit {name:?}; expected one of {}",
                names.join(", ")
            ))
        })?;
        // COMPAT(docker): -1 is unlimited (RLIM_INFINITY).
        let limit = |s: &str| match s.parse::<i64>() {
            Ok(-1) => Ok(u64::MAX),
            Ok(n) if n >= 0 => Ok(n as u64),
            _ => Err(bad(format!("invalid limit {s:?}: expected a number or -1"))),
        };
        let (soft, hard) = match limits.split_once(':') {
            Some((s, h)) => (limit(s)?, limit(h)?),
            None => (limit(limits)?, limit(limits)?),
        };
        if soft > hard {
            return Err(bad(
                "ulimit soft limit must be less than or equal to hard limit".into(),
            ));
        }
        out.retain(|u| u.resource != resource);
        out.push(Ulimit {
            resource,
            soft,
            hard,
        });
    }
    Ok(out)
}

/// `--shm-size`: docker's `RAMInBytes` syntax (go-units): a number, maybe
/// with a fraction, an optional space and a binary unit `k`, `m`, `g`, `t`
/// or `p` (any case, optionally followed by `i` and/or `b`). 0 is the default.
pub(in crate::cli) fn shm_size(value: Option<&str>) -> Result<Option<u64>, UsageError> {
    let Some(v) = value else { return Ok(None) };
    let bad = || UsageError::ShmSize {
        value: v.to_string(),
    };
    let split = v
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(v.len());
    let (num, unit) = v.split_at(split);
    let unit = unit.strip_prefix(' ').unwrap_or(unit).to_ascii_lowercase();
    let unit = unit.strip_suffix('b').unwrap_or(&unit);
    let unit = unit.strip_suffix('i').unwrap_or(unit);
    let shift = match unit {
        "" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        "t" => 40,
        "p" => 50,
        _ => return Err(bad()),
    };
    if num.is_empty() || num.starts_with('.') || num.ends_with('.') {
        return Err(bad());
    }
    let n: f64 = num.parse().map_err(|_| bad())?;
    let bytes = n * (1u64 << shift) as f64;
    if !bytes.is_finite() || bytes >= u64::MAX as f64 {
        return Err(bad());
    }
    // COMPAT(docker): a zero size is "not set", the 64 MiB default.
    Ok(Some(bytes as u64).filter(|b| *b > 0))
}

/// `--network`: buildx's modes. `host` is checked against `--allow` on each
/// RUN it reaches, like `RUN --network=host` (`builder::entitlements`).
fn network(value: Option<&str>) -> Result<builder::NetworkMode, UsageError> {
    use builder::NetworkMode;
    match value {
        None | Some("default") => Ok(NetworkMode::Default),
        Some("none") => Ok(NetworkMode::None),
        Some("host") => Ok(NetworkMode::Host),
        Some(v) => Err(UsageError::Network { value: v.into() }),
    }
}

fn entitlements(vals: &[String]) -> Result<Vec<builder::Entitlement>, UsageError> {
    let mut out = Vec::new();
    for v in vals {
        let e =
            builder::Entitlement::parse(v).ok_or_else(|| UsageError::Allow { value: v.clone() })?;
        if !out.contains(&e) {
            out.push(e);
        }
    }
    Ok(out)
}

/// What the arguments resolve to, before anything is built.
pub(super) struct Resolved {
    /// The build (its Dockerfile is read later: it may come from stdin).
    pub(super) build: Build,
    /// `ssh-agent`s serving `--ssh ID=KEYFILE`; killed when dropped.
    pub(super) _ssh_key_agents: Vec<KeyAgent>,
}

/// `--platform a,b`: each parsed (containerd's rules), none twice (by the
/// matcher: `linux/arm64` and `linux/arm64/v8` are one platform).
fn platforms(value: &str) -> Result<Vec<Platform>, UsageError> {
    let mut out: Vec<Platform> = Vec::new();
    for one in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let p = crate::oci::parse_platform(one).map_err(|source| UsageError::Platform {
            value: value.to_string(),
            source,
        })?;
        let m = crate::oci::PlatformMatcher::only(&p);
        if out.iter().any(|o| m.rank(o) == Some(0)) {
            return Err(UsageError::PlatformTwice {
                value: value.to_string(),
                platform: one.to_string(),
            });
        }
        out.push(p);
    }
    Ok(out)
}

pub(super) fn resolve(args: &BuildArgs) -> Result<Resolved, UsageError> {
    args.docker.check()?;
    let mut plan = builder::PlanOptions {
        build_args: key_values("--build-arg", &args.build_args, true)?,
        target: args.target.clone(),
        labels: key_values("--label", &args.labels, false)?,
        network: network(args.network.as_deref())?,
        ..Default::default()
    };
    let platforms = match &args.platform {
        Some(p) => platforms(p)?,
        None => Vec::new(),
    };
    // One target platform is a plain build for it; several, one pass each.
    plan.platform = platforms.first().cloned().unwrap_or_else(Platform::host);
    let epoch_text = plan
        .build_args
        .get("SOURCE_DATE_EPOCH")
        .cloned()
        .or_else(|| std::env::var("SOURCE_DATE_EPOCH").ok())
        .filter(|s| !s.is_empty());
    let source_date_epoch = epoch_text
        .map(|v| v.parse::<i64>().map_err(|_| UsageError::Epoch { value: v }))
        .transpose()?;
    // `--reproducible` only fills in an epoch nobody chose: an explicit one wins.
    let source_date_epoch = source_date_epoch.or(args.reproducible.then_some(0));
    let (outputs, tags) = outputs_and_tags(args)?;
    let mut opts = BuildOptions::new(args.context.clone(), Vec::new());
    opts.plan = plan;
    opts.platforms = platforms;
    opts.pull = args.pull.into();
    opts.registry = Some(std::sync::Arc::new(args.registry.client()));
    opts.source_date_epoch = source_date_epoch;
    opts.compression = Compression::parse(&args.compression).map_err(UsageError::Compression)?;
    opts.secrets = secrets(&args.secrets)?;
    let (ssh, ssh_key_agents) = ssh_agents(&args.ssh)?;
    opts.ssh = ssh;
    opts.allow = entitlements(&args.allow)?;
    opts.sandbox.extra_hosts = extra_hosts(&args.add_hosts)?;
    opts.sandbox.ulimits = ulimits(&args.ulimits)?;
    opts.sandbox.shm_size = shm_size(args.shm_size.as_deref())?;
    // Checked by `DockerFlags::check` before the options are read.
    opts.sandbox.isolation = (args.docker.isolation.as_deref())
        .and_then(crate::builder::Isolation::parse)
        .unwrap_or_default();
    opts.annotations = super::annotations::manifest_annotations(&args.annotations)?;
    opts.contexts = named_contexts(&args.build_contexts)?;
    opts.check_frontend_version = args
        .check_frontend_version
        .as_deref()
        .map(crate::lint::FrontendVersion::parse)
        .transpose()
        .map_err(UsageError::FrontendVersion)?;
    let no_default = std::env::var("BUILDX_NO_DEFAULT_ATTESTATIONS").ok();
    opts.attest = args.docker.attest_options(no_default.as_deref())?;
    opts.cache = builder::CacheOptions {
        no_cache: args.no_cache,
        no_cache_filter: args.no_cache_filter.clone(),
        debug_cache: args.debug_cache,
    };
    let build = Build {
        options: opts,
        outputs,
        tags,
        cache: builder::build_specs(&args.cache_to, &args.cache_from)?,
        iidfile: args.iidfile.clone(),
        metadata_file: args.metadata_file.clone(),
    };
    Ok(Resolved {
        build,
        _ssh_key_agents: ssh_key_agents,
    })
}

/// `--build-context`s by key; a later one for the same name wins, as in buildx.
fn named_contexts(vals: &[String]) -> Result<BTreeMap<String, builder::ContextSource>, UsageError> {
    let mut out = BTreeMap::new();
    // COMPAT(buildkit): buildx skips an empty value.
    for v in vals.iter().filter(|v| !v.is_empty()) {
        let (name, source) = builder::ContextSource::parse(v).map_err(UsageError::Context)?;
        out.insert(name, source);
    }
    Ok(out)
}

/// The `-o` specs (plus `type=image` when `-t` is given) and the `-t` names.
fn outputs_and_tags(args: &BuildArgs) -> Result<(Vec<OutputSpec>, Vec<String>), UsageError> {
    let mut outputs = Vec::new();
    for o in &args.outputs {
        outputs.push(OutputSpec::parse(o).map_err(|source| UsageError::Output {
            value: o.clone(),
            source,
        })?);
    }
    if args.push {
        outputs.push(OutputSpec::Registry {
            names: vec![],
            oci_artifact: false,
        });
    }
    match outputs.iter().filter(|o| o.to_stdout()).count() {
        0 => {}
        1 if std::io::IsTerminal::is_terminal(&std::io::stdout()) => {
            return Err(UsageError::StdoutTerminal)
        }
        1 => {}
        _ => return Err(UsageError::TwoStdout),
    }
    let unnamed_push = outputs.iter().any(|o| match o {
        OutputSpec::Registry { names, .. }
        | OutputSpec::Image {
            names, push: true, ..
        } => names.is_empty(),
        _ => false,
    });
    if unnamed_push && args.tags.is_empty() {
        return Err(UsageError::PushName);
    }
    let mut tags = Vec::new();
    for t in &args.tags {
        tags.push(
            Reference::parse(t)
                .map(|r| r.familiar())
                .map_err(|source| UsageError::Tag {
                    name: t.clone(),
                    source,
                })?,
        );
    }
    // COMPAT(buildkit): `--load` is buildx's "into the local image store".
    if (args.load || !tags.is_empty())
        && !outputs
            .iter()
            .any(|o| matches!(o, OutputSpec::Image { .. }))
    {
        // The blobs are in the store anyway: -t names them there even
        // beside other outputs, so `kiln images` shows what was built.
        outputs.push(OutputSpec::Image {
            names: vec![],
            push: false,
            oci_artifact: false,
        });
    }
    Ok((outputs, tags))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shm_sizes_read_as_docker_reads_them() {
        for (v, want) in [
            ("1024", Some(1024)),
            ("64m", Some(64 << 20)),
            ("64M", Some(64 << 20)),
            ("1g", Some(1 << 30)),
            ("1GiB", Some(1 << 30)),
            ("2 kb", Some(2048)),
            ("1.5k", Some(1536)),
            ("0", None),
        ] {
            assert_eq!(shm_size(Some(v)).unwrap(), want, "{v}");
        }
        for v in ["", "m", "64x", "-1", "1.k", "64mm", "99999999p"] {
            assert!(shm_size(Some(v)).is_err(), "{v}");
        }
    }
}
