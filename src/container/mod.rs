//! `kiln run`: an image from the store run as a foreground container, in the same
//! sandbox as a RUN step (`exec`), with the image's config instead of a step's.
//!
//! [`run`] resolves the image (through an index to this host's platform), unpacks any
//! layer not yet in `snapshots/` (a named image's blobs are always in the store: see
//! `oci::registry::lazy`), lays a fresh upper dir over them under the store's `tmp/`,
//! merges the image's config with the [`RunOptions`] as docker does
//! (`config.rs`), and runs the command with kiln's stdio, forwarding kiln's signals.
//!
//! Invariants:
//! - The container's writable layer and every file made for it live in one
//!   `tmp/run-*` dir, removed when the command ends, however it ends; a kiln killed
//!   outright leaves it to `kiln prune`'s stale-temp cleanup, as a killed build does.
//! - The caller holds the store lock shared for the whole run, so `prune` never
//!   removes a snapshot (or that dir) under a running container.
//! - A stored container (`kiln run -d`, `stored.rs`) keeps its files in the store's
//!   `containers/<id>/` instead, until `kiln rm`; its monitor (`monitor.rs`) runs it.
//! - The sandbox is RUN's default one (namespaces, Docker's default capabilities,
//!   seccomp, standard devices, masked paths) unless [`RunOptions::privileged`].

mod commit;
mod config;
pub mod logfile;
mod monitor;
mod ports;
mod stored;
pub mod volume;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

pub use commit::{commit, CommitError};
pub use config::{parse_signal, Capability};
pub use monitor::{monitor_main, start};
pub use ports::{PublishSpec, PublishSyntaxError};
pub use stored::{
    create, find, list, now, Container, ContainerConfig, ContainerState, Proc, Status, StoredError,
};

use crate::builder::{ensure_snapshots, remove_tree, staging_dir, ExtraHost, SnapshotError};
use crate::exec::{self, ExecError, Foreground, Mount, MountKind, Network, RunSpec, Ulimit};
use crate::oci::{LayerBlob, Store, StoreError};

/// Docker's default `--stop-timeout`, in seconds.
pub const DEFAULT_STOP_TIMEOUT: u32 = 10;

/// What `kiln run` was asked for, validated (flags parsed, files read); the image's
/// config fills in what is absent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOptions {
    /// The image reference, as `kiln images` and `FROM` name it.
    pub image: String,
    /// COMMAND [ARG…]; empty means the image's Cmd.
    pub command: Vec<String>,
    /// `--entrypoint`; `Some("")` clears the image's.
    pub entrypoint: Option<String>,
    /// `--env-file` then `-e` entries, `KEY=VALUE`, in order (later wins).
    pub env: Vec<String>,
    /// `-w`: absolute.
    pub workdir: Option<String>,
    /// `-u user[:group]`.
    pub user: Option<String>,
    /// `--hostname`.
    pub hostname: Option<String>,
    /// `--add-host` lines, in order.
    pub extra_hosts: Vec<ExtraHost>,
    /// Bind and tmpfs mounts, in order.
    pub mounts: Vec<Mount>,
    /// `-v NAME:/path`, `-v /path`, `--mount type=volume`: mounted after `mounts`.
    pub volumes: Vec<VolumeMount>,
    /// `--read-only`.
    pub read_only: bool,
    /// `--network`.
    pub network: Network,
    /// `-p`, in order (a private network only).
    pub publish: Vec<PublishSpec>,
    /// `-P`: the image's ExposedPorts, each to a free host port.
    pub publish_all: bool,
    /// `-i`: the command reads kiln's stdin.
    pub stdin: bool,
    /// `-t`: the command runs on a pseudo-terminal (foreground runs only).
    pub tty: bool,
    /// `--stop-signal`, as a number.
    pub stop_signal: Option<i32>,
    /// `--stop-timeout`, in seconds.
    pub stop_timeout: Option<u32>,
    /// `--privileged`: the sandbox's insecure mode.
    pub privileged: bool,
    /// `--init`: an init at PID 1 that passes signals on and reaps orphans.
    pub init: bool,
    /// `--cap-add`, in order.
    pub cap_add: Vec<Capability>,
    /// `--cap-drop`, in order.
    pub cap_drop: Vec<Capability>,
    /// `--ulimit`.
    pub ulimits: Vec<Ulimit>,
    /// `--shm-size`, in bytes.
    pub shm_size: Option<u64>,
    /// `--platform`: the manifest of a multi-platform image to run (under QEMU user
    /// emulation when it is not the host's); the host's when absent.
    pub platform: Option<crate::oci::Platform>,
}

impl RunOptions {
    /// The defaults for `image`: its own config, a private network, no stdin.
    pub fn new(image: &str) -> Self {
        Self {
            image: image.into(),
            command: Vec::new(),
            entrypoint: None,
            env: Vec::new(),
            workdir: None,
            user: None,
            hostname: None,
            extra_hosts: Vec::new(),
            mounts: Vec::new(),
            volumes: Vec::new(),
            read_only: false,
            network: Network::Private,
            publish: Vec::new(),
            publish_all: false,
            stdin: false,
            tty: false,
            stop_signal: None,
            stop_timeout: None,
            privileged: false,
            init: false,
            cap_add: Vec::new(),
            cap_drop: Vec::new(),
            ulimits: Vec::new(),
            shm_size: None,
            platform: None,
        }
    }
}

/// Why a container could not run (its command exiting non-zero is not an error).
#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    /// `--platform` names a platform this host cannot run (no QEMU handler).
    #[error(transparent)]
    Emulation(crate::builder::emulation::EmulationError),
    /// Finding or reading the image.
    #[error("image {image}")]
    Image {
        /// The reference.
        image: String,
        /// The cause.
        #[source]
        source: Box<StoreError>,
    },
    /// Unpacking the image's layers.
    #[error("preparing the root filesystem of {image}")]
    Snapshot {
        /// The reference.
        image: String,
        /// The cause.
        #[source]
        source: Box<SnapshotError>,
    },
    /// Neither the image nor the run gives a command.
    #[error("no command specified (the image has no Entrypoint or Cmd; give COMMAND)")]
    NoCommand,
    /// The image's `StopSignal` names no signal.
    #[error("the image's StopSignal {signal:?} is not a signal")]
    ImageStopSignal {
        /// As written in the config.
        signal: String,
    },
    /// Making, seeding or removing a volume.
    #[error(transparent)]
    Volume(#[from] volume::VolumeError),
    /// `-p`/`-P` with a network other than the private one.
    #[error("publishing ports needs --network private (the default); with --network {network} there is {why}")]
    PublishWithoutPrivateNetwork {
        /// `host` or `none`.
        network: &'static str,
        /// What that network has instead.
        why: &'static str,
    },
    /// A host port to publish cannot be bound.
    #[error("publishing {port}: the host port cannot be bound (is it in use?)")]
    PortInUse {
        /// `IP:PORT/PROTO`.
        port: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// An ExposedPorts key of the image that `-P` cannot read.
    #[error("the image's ExposedPorts {port:?} is not PORT[/tcp|udp]")]
    ExposedPort {
        /// As written in the config.
        port: String,
    },
    /// A file made for the container (its temp dir, /etc/hosts).
    #[error("{step} {path}")]
    Io {
        /// What was being done.
        step: &'static str,
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The sandbox could not start the command.
    #[error("starting the container")]
    Exec(#[source] Box<ExecError>),
}

impl ContainerError {
    /// docker's exit status for this failure: 127 when the command is not found, 126
    /// when it cannot be executed, 125 for anything else (kiln's own failure).
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::Exec(e) => match **e {
                ExecError::Exec {
                    source: nix::errno::Errno::ENOENT,
                    ..
                } => 127,
                ExecError::Exec { .. } => 126,
                _ => 125,
            },
            _ => 125,
        }
    }
}

fn io_err<'a>(step: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> ContainerError + 'a {
    move |source| ContainerError::Io {
        step,
        path: path.into(),
        source,
    }
}

/// The container's temp dir under the store's `tmp/`, removed on drop.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        // A leftover is only disk, and `kiln prune` finds it.
        let _ = remove_tree(&self.0);
    }
}

/// Runs `opts` in the foreground, re-executing `exe` (the kiln binary) as the
/// sandbox helper; returns the command's exit status (128 + N when signal N killed
/// it).
pub fn run(store: &Store, exe: &Path, opts: &RunOptions) -> Result<i32, ContainerError> {
    let scratch =
        Scratch(
            staging_dir(store, "run-").map_err(|source| ContainerError::Snapshot {
                image: opts.image.clone(),
                source: Box::new(source),
            })?,
        );
    let prepared = prepare(store, opts, &scratch.0)?;
    let mut spec = prepared.spec;
    spec.foreground = Some(Foreground {
        stdin: opts.stdin,
        stop_signal: prepared.stop_signal,
        stop_timeout: opts.stop_timeout.unwrap_or(DEFAULT_STOP_TIMEOUT),
        init: opts.init,
        tty: opts.tty,
    });
    let held = volume::hold(store, &volume::used_by(store, &spec));
    let held = match held {
        Ok(h) => h,
        Err(e) => {
            let _ = volume::remove_anonymous(store, &prepared.anonymous_volumes);
            return Err(e.into());
        }
    };
    tracing::debug!(image = %opts.image, argv = ?spec.argv, "running a container");
    let result = exec::run(&spec, exe, &mut |_| {});
    drop(held);
    drop(scratch);
    // A foreground container is always --rm: its anonymous volumes go with it.
    let removed = volume::remove_anonymous(store, &prepared.anonymous_volumes);
    let result = result.map_err(|e| ContainerError::Exec(Box::new(e)))?;
    removed?;
    Ok(result.status)
}

/// A container made ready to run: its sandbox spec (not yet foreground) and the
/// image facts a stored container keeps.
#[derive(Debug)]
pub struct Prepared {
    /// What the sandbox runs; every file it names is under the dir given to [`prepare`].
    pub spec: RunSpec,
    /// The stop signal (the run's, else the image's, else SIGTERM), as a number.
    pub stop_signal: i32,
    /// The image's manifest digest.
    pub image_digest: String,
    /// The anonymous volumes made for the container (removed with it by `--rm`).
    pub anonymous_volumes: Vec<String>,
}

/// Resolves `opts.image`, unpacks its layers, and lays the container's files in `dir`
/// (an existing, empty dir in the store): `upper/`, `work/`, hosts, resolv.conf and
/// hostname; returns the spec that runs it.
pub fn prepare(store: &Store, opts: &RunOptions, dir: &Path) -> Result<Prepared, ContainerError> {
    let image_err = |source| ContainerError::Image {
        image: opts.image.clone(),
        source: Box::new(source),
    };
    let desc = store.resolve(&opts.image).map_err(image_err)?;
    let (manifest, image) = match &opts.platform {
        None => store.load_image(&desc).map_err(image_err)?,
        Some(p) => {
            let (manifest, _) = store.load_manifest_for(&desc, p).map_err(image_err)?;
            let image: crate::oci::ImageConfig = serde_json::from_slice(
                &store
                    .read_blob(&manifest.config.digest)
                    .map_err(image_err)?,
            )
            .map_err(|source| {
                image_err(crate::oci::StoreError::ParseBlob {
                    what: "config",
                    digest: manifest.config.digest,
                    source,
                })
            })?;
            if !crate::builder::emulation::is_native(p) {
                crate::builder::emulation::check(p).map_err(ContainerError::Emulation)?;
            }
            (manifest, image)
        }
    };
    let cfg = &image.config;
    let mut publish = opts.publish.clone();
    if opts.publish_all {
        publish.extend(ports::exposed(cfg)?);
    }
    let port_mappings = match opts.network {
        Network::Private => {
            exec::network::find_tool().map_err(|e| ContainerError::Exec(Box::new(e)))?;
            ports::resolve(&publish)?
        }
        Network::Host if !publish.is_empty() => {
            return Err(ContainerError::PublishWithoutPrivateNetwork {
                network: "host",
                why: "no port to publish: the container's ports are the host's",
            })
        }
        Network::None if !publish.is_empty() => {
            return Err(ContainerError::PublishWithoutPrivateNetwork {
                network: "none",
                why: "only loopback, nothing to publish to",
            })
        }
        Network::Host | Network::None => Vec::new(),
    };
    for (m, s) in port_mappings.iter().zip(&publish) {
        if s.host_port.is_none() {
            // stdout is the container's; the port kiln chose goes to stderr, as
            // `docker port` would tell it.
            eprintln!("{m}");
        }
    }
    let argv = config::argv(cfg, opts)?;
    let stop_signal = config::stop_signal(cfg, opts)?;
    let layers = LayerBlob::of_image(&manifest, &image);
    let snap_err = |source| ContainerError::Snapshot {
        image: opts.image.clone(),
        source: Box::new(source),
    };
    let mut lower = ensure_snapshots(store, &layers, None).map_err(snap_err)?;
    lower.reverse();
    let (upper, work) = (dir.join("upper"), dir.join("work"));
    for d in [&upper, &work] {
        fs::create_dir(d).map_err(io_err("creating", d))?;
    }
    if lower.is_empty() {
        // overlayfs needs a lower dir; an image of no layers has none.
        let empty = dir.join("empty");
        fs::create_dir(&empty).map_err(io_err("creating", &empty))?;
        lower.push(empty);
    }
    let hostname = hostname(opts)?;
    let hosts = dir.join("hosts");
    fs::write(&hosts, hosts_file(opts, &hostname)?).map_err(io_err("writing", &hosts))?;
    let resolv = dir.join("resolv.conf");
    fs::write(&resolv, resolv_conf(opts)?).map_err(io_err("writing", &resolv))?;
    // COMPAT(docker): /etc/hostname is the container's own file, holding its name; the
    // run's mounts come after it, so a -v over it wins.
    let hostname_file = dir.join("hostname");
    fs::write(&hostname_file, format!("{hostname}\n"))
        .map_err(io_err("writing", &hostname_file))?;
    let mut mounts = vec![Mount {
        target: "/etc/hostname".into(),
        kind: MountKind::Bind {
            source: hostname_file,
            readonly: false,
        },
    }];
    mounts.extend(opts.mounts.iter().cloned());
    let (volume_mounts, anonymous) = volumes(store, opts, &cfg.volumes, &lower)?;
    mounts.extend(volume_mounts);
    let spec = RunSpec {
        lower_dirs: lower,
        upper_dir: upper,
        work_dir: work,
        argv,
        env: config::env(cfg, opts, &hostname),
        cwd: config::workdir(cfg, opts),
        user: config::user(cfg, opts),
        hostname,
        network: opts.network,
        mounts,
        stdin: None,
        privileged: opts.privileged,
        hosts_file: Some(hosts),
        resolv_conf: Some(resolv),
        ulimits: opts.ulimits.clone(),
        shm_size: opts.shm_size,
        capabilities: config::capabilities(&opts.cap_add, &opts.cap_drop),
        read_only_root: opts.read_only,
        ports: port_mappings,
        foreground: None,
    };
    Ok(Prepared {
        spec,
        stop_signal,
        image_digest: desc.digest.to_string(),
        anonymous_volumes: anonymous,
    })
}

/// A volume mount of `kiln run`: `-v NAME:/path[:ro]`, `-v /path` (anonymous),
/// `--mount type=volume,[src=NAME,]dst=/path[,readonly]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeMount {
    /// The volume's name; `None` for a fresh anonymous volume.
    pub name: Option<String>,
    /// Absolute, not `/`.
    pub target: String,
    /// Mounted read-only.
    pub readonly: bool,
}

/// The run's volume mounts as binds of `volumes/<name>/_data`, and the names of the
/// anonymous volumes made for it: one per `-v /path`, and one per image VOLUME no
/// other mount covers (docker's). Each volume is made on first use and, while empty,
/// seeded with the image's content at its mount point.
fn volumes(
    store: &Store,
    opts: &RunOptions,
    image_volumes: &std::collections::BTreeMap<String, crate::oci::spec::Empty>,
    lower_top_first: &[std::path::PathBuf],
) -> Result<(Vec<Mount>, Vec<String>), ContainerError> {
    let norm = |p: &str| {
        let t = p.trim_end_matches('/');
        if t.is_empty() {
            "/".to_string()
        } else {
            t.to_string()
        }
    };
    let covered = |v: &str| {
        let v = norm(v);
        opts.mounts.iter().any(|m| norm(&m.target) == v)
            || opts.volumes.iter().any(|m| norm(&m.target) == v)
    };
    let mut wanted: Vec<VolumeMount> = image_volumes
        .keys()
        .filter(|v| !covered(v) && norm(v) != "/")
        .map(|v| VolumeMount {
            name: None,
            target: norm(v),
            readonly: false,
        })
        .collect();
    wanted.extend(opts.volumes.iter().cloned());
    let image = crate::layer::MergedFs::new(lower_top_first.to_vec());
    let (mut mounts, mut anonymous) = (Vec::new(), Vec::new());
    for v in wanted {
        let made = match &v.name {
            Some(n) => volume::ensure(store, n, false),
            None => stored::new_id()
                .map_err(|e| volume::VolumeError::Io {
                    step: "naming",
                    path: "an anonymous volume".into(),
                    message: e.to_string(),
                })
                .and_then(|n| {
                    let data = volume::ensure(store, &n, true)?;
                    anonymous.push(n);
                    Ok(data)
                }),
        };
        let seeded = made.and_then(|data| {
            volume::seed(store, &data, &image, &norm(&v.target))?;
            Ok(data)
        });
        let data = match seeded {
            Ok(d) => d,
            Err(e) => {
                let _ = volume::remove_anonymous(store, &anonymous);
                return Err(e.into());
            }
        };
        mounts.push(Mount {
            target: v.target.clone(),
            kind: MountKind::Bind {
                source: data,
                readonly: v.readonly,
            },
        });
    }
    Ok((mounts, anonymous))
}

/// `--hostname`; with the host's network, the host's name (as docker does); else a
/// fresh 12-hex-digit id, as docker names a container after its id.
fn hostname(opts: &RunOptions) -> Result<String, ContainerError> {
    if let Some(h) = &opts.hostname {
        return Ok(h.clone());
    }
    if opts.network == Network::Host {
        if let Ok(h) = nix::unistd::gethostname() {
            return Ok(h.to_string_lossy().into_owned());
        }
    }
    let mut bytes = [0u8; 6];
    let urandom = Path::new("/dev/urandom");
    io::Read::read_exact(
        &mut fs::File::open(urandom).map_err(io_err("opening", urandom))?,
        &mut bytes,
    )
    .map_err(io_err("reading", urandom))?;
    Ok(hex::encode(bytes))
}

/// /etc/resolv.conf: a copy of the host's with the host's network (docker copies it
/// as it is); without it, BuildKit's and libnetwork's filtered file (no loopback
/// nameserver, the public defaults when none is left; see [`exec::resolvconf`]).
fn resolv_conf(opts: &RunOptions) -> Result<String, ContainerError> {
    let err = |e| ContainerError::Exec(Box::new(e));
    match opts.network {
        Network::Host => {
            let host = Path::new(exec::resolvconf::HOST_PATH);
            match fs::read(host) {
                Ok(b) => Ok(String::from_utf8_lossy(&b).into_owned()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    Ok(exec::resolvconf::generate("", true))
                }
                Err(e) => Err(io_err("reading", host)(e)),
            }
        }
        Network::None => exec::resolvconf::for_sandbox(false).map_err(err),
        Network::Private => {
            exec::resolvconf::for_private_network(exec::network::DNS_ADDR.into()).map_err(err)
        }
    }
}

/// /etc/hosts: the host's with the host's network, docker's localhost lines without
/// it; then one `IP\tHOST` line per `--add-host`.
fn hosts_file(opts: &RunOptions, hostname: &str) -> Result<Vec<u8>, ContainerError> {
    // COMPAT(docker): libnetwork's default hosts content for a container.
    const LOCAL: &str = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n";
    let mut text = match opts.network {
        Network::None => LOCAL.as_bytes().to_vec(),
        // COMPAT(docker): the container's own address under its hostname.
        Network::Private => {
            format!("{LOCAL}{}\t{hostname}\n", exec::network::CONTAINER_ADDR).into_bytes()
        }
        Network::Host => {
            let host = Path::new("/etc/hosts");
            match fs::read(host) {
                Ok(b) => b,
                Err(e) if e.kind() == io::ErrorKind::NotFound => LOCAL.as_bytes().to_vec(),
                Err(e) => return Err(io_err("reading", host)(e)),
            }
        }
    };
    if !text.is_empty() && !text.ends_with(b"\n") {
        text.push(b'\n');
    }
    for h in &opts.extra_hosts {
        text.extend_from_slice(h.hosts_line().as_bytes());
    }
    Ok(text)
}
