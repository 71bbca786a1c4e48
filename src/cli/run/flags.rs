//! `kiln run`'s flag syntaxes (docker's): `-v`, `--mount`, `--tmpfs`, `-e`,
//! `--env-file`; and the docker flags kiln refuses by name.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

use crate::container::volume::validate_name;
use crate::container::VolumeMount;
use crate::exec::{Mount, MountKind};

use super::super::build::args::shm_size;

/// docker flags that need what kiln does not have yet: each is parsed, so that the
/// error names it instead of calling it unknown.
#[derive(Debug, clap::Args)]
pub struct Refused {
    /// Refused: no daemon or stored containers to restart (issue 14).
    #[arg(long, value_name = "POLICY")]
    restart: Option<String>,
    /// Refused (issue 14).
    #[arg(long, value_name = "OPT")]
    security_opt: Vec<String>,
    /// Refused: the standard devices only (issue 14).
    #[arg(long, value_name = "DEVICE")]
    device: Vec<String>,
    /// Refused: no stored containers to label yet (issue 14).
    #[arg(short = 'l', long, value_name = "K=V")]
    label: Vec<String>,
    /// Refused: -P publishes the image's ExposedPorts only (issue 14).
    #[arg(long, value_name = "PORT")]
    expose: Vec<String>,
    /// Refused: no stored containers, so no container id (issue 14).
    #[arg(long, value_name = "FILE")]
    cidfile: Option<String>,
    /// Refused: mount a volume by name instead (issue 14).
    #[arg(long, value_name = "CONTAINER")]
    volumes_from: Vec<String>,
    /// Refused: no health monitor yet (issue 14).
    #[arg(long, value_name = "CMD")]
    health_cmd: Option<String>,
    /// Refused: no cgroup limits yet (issue 14).
    #[arg(short = 'm', long, value_name = "BYTES")]
    memory: Option<String>,
    /// Refused: no cgroup limits yet (issue 14).
    #[arg(long, value_name = "N")]
    cpus: Option<String>,
}

impl Refused {
    /// The first refused flag given, as an error that names it.
    pub fn check(&self) -> anyhow::Result<()> {
        let given: [(bool, &str, &str); 10] = [
            (self.restart.is_some(), "--restart", "kiln has no daemon, so no one is there to restart a container; run `kiln run --rm` (foreground) under a service manager instead, e.g. a systemd unit with Restart=always (see the README's Containers section)"),
            (!self.security_opt.is_empty(), "--security-opt", "the container has RUN's seccomp filter and masked paths, or none with --privileged"),
            (!self.device.is_empty(), "--device", "the container has the standard devices only (BuildKit's insecure set with --privileged)"),
            (!self.label.is_empty(), "-l/--label", "kiln keeps no labels on its containers yet"),
            (!self.expose.is_empty(), "--expose", "-P publishes the image's ExposedPorts; publish more with -p"),
            (self.cidfile.is_some(), "--cidfile", "kiln writes no id file yet; `kiln run -d` prints the id on stdout"),
            (!self.volumes_from.is_empty(), "--volumes-from", "mount the other container's volumes by name with -v NAME:/path"),
            (self.health_cmd.is_some(), "--health-cmd", "the container monitor runs no health checks yet"),
            (self.memory.is_some(), "-m/--memory", "kiln sets no cgroup limits yet (--ulimit works)"),
            (self.cpus.is_some(), "--cpus", "kiln sets no cgroup limits yet (--ulimit works)"),
        ];
        match given.iter().find(|(on, _, _)| *on) {
            Some((_, flag, why)) => {
                bail!("kiln run {flag} is not implemented yet (issue 14): {why}")
            }
            None => Ok(()),
        }
    }
}

/// `-e K=V` as is; `-e K` from kiln's environment, dropped when unset (as docker).
pub fn env_entry(e: &str) -> anyhow::Result<Option<String>> {
    let key = e.split_once('=').map_or(e, |(k, _)| k);
    if key.is_empty() {
        bail!("invalid environment variable {e:?}: the name is empty");
    }
    if e.contains('=') {
        return Ok(Some(e.to_string()));
    }
    Ok(std::env::var_os(key).map(|v| format!("{key}={}", v.to_string_lossy())))
}

/// `--env-file`: `K=V` and `K` lines (leading whitespace dropped, the value kept as
/// written, no quote removal); blank lines and `#` comments skipped.
// COMPAT(docker): the CLI's `opts.ParseEnvFile`.
pub fn env_file(path: &Path) -> anyhow::Result<Vec<String>> {
    let bytes =
        std::fs::read(path).with_context(|| format!("reading env file {}", path.display()))?;
    let text = String::from_utf8(bytes)
        .map_err(|_| anyhow::anyhow!("env file {} is not UTF-8", path.display()))?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let key = line.split_once('=').map_or(line, |(k, _)| k);
        if key.chars().any(char::is_whitespace) {
            bail!(
                "env file {} line {}: variable {key:?} contains whitespace",
                path.display(),
                n + 1
            );
        }
        out.extend(
            env_entry(line)
                .with_context(|| format!("env file {} line {}", path.display(), n + 1))?,
        );
    }
    Ok(out)
}

/// A container path: absolute, not `/`.
fn container_path(p: &str, flag: &str) -> anyhow::Result<String> {
    if !p.starts_with('/') {
        bail!("{flag}: the container path {p:?} must be absolute");
    }
    if p.trim_end_matches('/').is_empty() {
        bail!("{flag}: the container path cannot be /");
    }
    Ok(p.to_string())
}

/// A host path: absolute, or relative to kiln's working directory.
fn host_path(p: &str) -> anyhow::Result<PathBuf> {
    let p = Path::new(p);
    if p.is_absolute() {
        return Ok(p.to_path_buf());
    }
    Ok(std::env::current_dir()
        .context("reading the current directory")?
        .join(p))
}

/// A `-v` or a volume `--mount`: a bind of a host path, or a volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// A bind or tmpfs.
    Mount(Mount),
    /// A named or anonymous volume.
    Volume(VolumeMount),
}

/// `-v HOST:CTR[:ro|rw]` (a missing HOST directory is created, as docker does),
/// `-v NAME:CTR[:ro|rw]` (a named volume) or `-v CTR` (an anonymous one).
pub fn volume(v: &str) -> anyhow::Result<Parsed> {
    let parts: Vec<&str> = v.split(':').collect();
    let (host, ctr, opts) = match parts.as_slice() {
        [ctr] => {
            return Ok(Parsed::Volume(VolumeMount {
                name: None,
                target: container_path(ctr, "-v")?,
                readonly: false,
            }))
        }
        [h, c] => (*h, *c, ""),
        [h, c, o] => (*h, *c, *o),
        _ => bail!("-v {v:?}: expected HOST:CTR[:OPTIONS]"),
    };
    let target = container_path(ctr, "-v")?;
    let mut readonly = false;
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        match o {
            "ro" | "readonly" => readonly = true,
            "rw" => readonly = false,
            other => bail!(
                "-v {v}: option {other:?} is not implemented yet (issue 14); kiln takes ro or rw"
            ),
        }
    }
    if !(host.starts_with('/') || host.starts_with('.')) {
        validate_name(host).with_context(|| format!("-v {v}"))?;
        return Ok(Parsed::Volume(VolumeMount {
            name: Some(host.to_string()),
            target,
            readonly,
        }));
    }
    let source = host_path(host)?;
    if !source.exists() {
        std::fs::create_dir_all(&source)
            .with_context(|| format!("-v {v}: creating {}", source.display()))?;
    }
    Ok(Parsed::Mount(Mount {
        target,
        kind: MountKind::Bind { source, readonly },
    }))
}

/// `--mount type=bind,src=HOST,dst=CTR[,readonly]`, `type=tmpfs,dst=CTR[,tmpfs-size=N]`
/// or `type=volume,[src=NAME,]dst=CTR[,readonly]` (docker's default type).
pub fn mount(spec: &str) -> anyhow::Result<Parsed> {
    let (mut kind, mut src, mut dst, mut readonly, mut size) = (None, None, None, false, None);
    for field in spec.split(',') {
        let (k, val) = match field.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (field, None),
        };
        match (k, val) {
            ("type", Some(t)) => kind = Some(t),
            ("source" | "src", Some(s)) => src = Some(s),
            ("target" | "destination" | "dst", Some(d)) => dst = Some(d),
            ("readonly" | "ro", None | Some("true" | "1")) => readonly = true,
            ("readonly" | "ro", Some("false" | "0")) => readonly = false,
            ("tmpfs-size", Some(s)) => size = Some(s),
            _ => bail!("--mount {spec}: {field:?} is not implemented yet (issue 14); kiln takes type, src, dst, readonly and tmpfs-size"),
        }
    }
    let dst = dst.with_context(|| format!("--mount {spec}: dst is required"))?;
    let target = container_path(dst, "--mount")?;
    match kind.unwrap_or("volume") {
        "bind" => {
            if size.is_some() {
                bail!("--mount {spec}: tmpfs-size is for type=tmpfs");
            }
            let src = src.with_context(|| format!("--mount {spec}: src is required"))?;
            let source = host_path(src)?;
            if !source.exists() {
                bail!(
                    "--mount {spec}: bind source path does not exist: {}",
                    source.display()
                );
            }
            Ok(Parsed::Mount(Mount {
                target,
                kind: MountKind::Bind { source, readonly },
            }))
        }
        "tmpfs" => {
            if src.is_some() || readonly {
                bail!("--mount {spec}: a tmpfs takes no src and is never read-only");
            }
            Ok(Parsed::Mount(Mount {
                target,
                kind: MountKind::Tmpfs {
                    size: shm_size(size)?,
                },
            }))
        }
        "volume" => {
            if size.is_some() {
                bail!("--mount {spec}: tmpfs-size is for type=tmpfs");
            }
            if let Some(n) = src {
                validate_name(n).with_context(|| format!("--mount {spec}"))?;
            }
            Ok(Parsed::Volume(VolumeMount {
                name: src.map(str::to_string),
                target,
                readonly,
            }))
        }
        other => bail!(
            "--mount {spec}: type {other:?} is not implemented; use type=bind, volume or tmpfs"
        ),
    }
}

/// `--tmpfs CTR[:OPTIONS]`: `size=N`, and `rw`, `nosuid`, `nodev` (which it is anyway).
pub fn tmpfs(t: &str) -> anyhow::Result<Mount> {
    let (ctr, opts) = t.split_once(':').unwrap_or((t, ""));
    let target = container_path(ctr, "--tmpfs")?;
    let mut size = None;
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        match o.split_once('=') {
            Some(("size", s)) => size = shm_size(Some(s))?,
            None if matches!(o, "rw" | "nosuid" | "nodev") => {}
            _ => bail!("--tmpfs {t}: option {o:?} is not implemented yet (issue 14); kiln takes size=N (the tmpfs is rw,nosuid,nodev)"),
        }
    }
    Ok(Mount {
        target,
        kind: MountKind::Tmpfs { size },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volumes_parse_and_refuse_by_name() {
        let Parsed::Mount(m) = volume("/tmp:/data:ro").unwrap() else {
            panic!("a bind")
        };
        assert_eq!(m.target, "/data");
        assert_eq!(
            m.kind,
            MountKind::Bind {
                source: "/tmp".into(),
                readonly: true
            }
        );
        let vm = |name: Option<&str>, target: &str, readonly| {
            Parsed::Volume(VolumeMount {
                name: name.map(str::to_string),
                target: target.into(),
                readonly,
            })
        };
        assert_eq!(volume("data:/x:ro").unwrap(), vm(Some("data"), "/x", true));
        assert_eq!(volume("/x").unwrap(), vm(None, "/x", false));
        assert!(volume("d@ta:/x").is_err());
        assert_eq!(
            mount("type=volume,src=v1,dst=/v,readonly").unwrap(),
            vm(Some("v1"), "/v", true)
        );
        assert_eq!(mount("dst=/v").unwrap(), vm(None, "/v", false));
        assert!(volume("/tmp:rel").is_err());
        assert!(volume("/tmp:/").is_err());
        assert!(volume("/tmp:/x:z")
            .unwrap_err()
            .to_string()
            .contains("\"z\""));
    }

    #[test]
    fn mounts_and_tmpfs_parse() {
        let Ok(Parsed::Mount(m)) = mount("type=bind,src=/tmp,dst=/d,readonly") else {
            panic!("a bind")
        };
        assert!(matches!(m.kind, MountKind::Bind { readonly: true, .. }));
        let Ok(Parsed::Mount(m)) = mount("type=tmpfs,destination=/t,tmpfs-size=1m") else {
            panic!("a tmpfs")
        };
        assert_eq!(
            m.kind,
            MountKind::Tmpfs {
                size: Some(1 << 20)
            }
        );
        assert!(mount("type=volume,src=/abs,dst=/v").is_err());
        assert!(mount("type=bind,src=/nonexistent-kiln,dst=/d").is_err());
        assert!(mount("type=bind,src=/tmp,dst=/d,bind-propagation=shared").is_err());
        let t = tmpfs("/run:rw,size=64k").unwrap();
        assert_eq!(
            t.kind,
            MountKind::Tmpfs {
                size: Some(64 << 10)
            }
        );
        assert!(tmpfs("/run:noexec").is_err());
    }

    #[test]
    fn env_entries_and_files() {
        assert_eq!(env_entry("A=1").unwrap().as_deref(), Some("A=1"));
        assert!(env_entry("=1").is_err());
        assert_eq!(env_entry("KILN_SURELY_UNSET_VAR").unwrap(), None);
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("env");
        std::fs::write(&f, "# c\n\n  A=1 2\nB=\"q\"\nKILN_SURELY_UNSET_VAR\n").unwrap();
        assert_eq!(env_file(&f).unwrap(), ["A=1 2", "B=\"q\""]);
        std::fs::write(&f, "A B=1\n").unwrap();
        assert!(env_file(&f).is_err());
    }
}
