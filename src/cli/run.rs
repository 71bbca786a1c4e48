//! `kiln run --rm [OPTIONS] IMAGE [COMMAND [ARG…]]`: a foreground container, and
//! `kiln run -d [--name N]`: a stored one its own monitor runs (`container::create`,
//! `container::start`), with docker's flags and meaning, on a private network with
//! published ports by default. What kiln cannot do yet (ptys…) is refused by name,
//! never accepted and ignored.
//!
//! Exit status as docker's: the container's own, 125 when kiln fails (bad flag,
//! unknown image), 126 when the command cannot be executed, 127 when it is not found.

use std::path::PathBuf;

use anyhow::{bail, Context};

use crate::container::{self, RunOptions};
use crate::exec::Network;
use crate::oci::registry;
use crate::oci::{Platform, Reference, Store, StoreError};
use crate::store::LockMode;

use super::build::args::{extra_hosts, shm_size, ulimits};
use super::Cli;

mod flags;

pub use flags::env_entry;

/// The status docker gives kiln's own failures.
pub const EXIT_KILN: i32 = 125;

/// Arguments of `kiln run`.
#[derive(Debug, clap::Args)]
#[command(disable_help_flag = true)]
pub struct RunArgs {
    /// Remove the container when it exits (required in the foreground: kiln keeps
    /// only detached containers).
    #[arg(long)]
    pub rm: bool,
    /// Run the container in the background, watched by a kiln monitor process of its
    /// own; print its id.
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// The detached container's name (unique) [default: its short id].
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Set an environment variable (`K=V`, or `K` to take kiln's own value).
    #[arg(short = 'e', long = "env", value_name = "K[=V]")]
    pub env: Vec<String>,
    /// Read environment variables from a file (`K=V` or `K` lines; `#` comments).
    #[arg(long = "env-file", value_name = "FILE")]
    pub env_file: Vec<PathBuf>,
    /// The working directory inside the container (absolute).
    #[arg(short = 'w', long)]
    pub workdir: Option<String>,
    /// The user: name or uid, optionally `:group` or `:gid` (the image's passwd/group).
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// Replace the image's entrypoint (`''` clears it).
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Bind mount `HOST:CTR[:ro|rw]` (HOST absolute or `./relative`), named volume
    /// `NAME:CTR[:ro|rw]`, or anonymous volume `CTR`.
    #[arg(short = 'v', long = "volume", value_name = "HOST|NAME:CTR[:ro]")]
    pub volumes: Vec<String>,
    /// `type=bind,src=HOST,dst=CTR[,readonly]`, `type=volume,[src=NAME,]dst=CTR[,readonly]`
    /// or `type=tmpfs,dst=CTR[,tmpfs-size=N]`.
    #[arg(long = "mount", value_name = "SPEC")]
    pub mounts: Vec<String>,
    /// A tmpfs at `CTR[:size=N]`.
    #[arg(long = "tmpfs", value_name = "CTR[:OPTS]")]
    pub tmpfs: Vec<String>,
    /// Mount the container's root filesystem read-only.
    #[arg(long)]
    pub read_only: bool,
    /// The container's hostname.
    #[arg(short = 'h', long)]
    pub hostname: Option<String>,
    /// An extra /etc/hosts line, `HOST:IP` or `HOST=IP` (repeatable).
    #[arg(long = "add-host", value_name = "HOST:IP")]
    pub add_hosts: Vec<String>,
    /// `private` (the default: its own address, outbound access, published ports),
    /// `none` (only loopback) or `host` (the host's network).
    #[arg(long, visible_alias = "net", value_name = "MODE")]
    pub network: Option<String>,
    /// Publish a container port: `[IP:][HOSTPORT:]CTRPORT[/tcp|udp]` (no HOSTPORT: a
    /// free one, printed on stderr; repeatable).
    #[arg(short = 'p', long = "publish", value_name = "[IP:][HOST:]CTR")]
    pub publish: Vec<String>,
    /// Publish every port of the image's ExposedPorts, each to a free host port.
    #[arg(short = 'P', long = "publish-all")]
    pub publish_all: bool,
    /// Run this platform's image of a multi-platform image (`linux/arm64`), under
    /// QEMU user emulation when the host cannot run it natively [default: the host's].
    #[arg(long, value_name = "PLATFORM")]
    pub platform: Option<String>,
    /// Pass kiln's stdin to the container.
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Give the command a pseudo-terminal (its stdio and controlling terminal); kiln's
    /// terminal is raw while it runs (foreground only).
    #[arg(short = 't', long)]
    pub tty: bool,
    /// The signal a stop sends (Ctrl-C or SIGTERM to kiln) [default: the image's
    /// StopSignal, else SIGTERM].
    #[arg(long, value_name = "SIGNAL")]
    pub stop_signal: Option<String>,
    /// Seconds from the stop signal to SIGKILL (-1: never) [default: 10].
    #[arg(long, value_name = "SECONDS", allow_negative_numbers = true)]
    pub stop_timeout: Option<i64>,
    /// Every capability, no seccomp filter, writable /sys, extra devices (the RUN
    /// sandbox's insecure mode).
    #[arg(long)]
    pub privileged: bool,
    /// Add a capability to Docker's default set (`NET_ADMIN`, `ALL`; repeatable).
    #[arg(long, value_name = "CAP")]
    pub cap_add: Vec<String>,
    /// Drop a capability from Docker's default set (`CHOWN`, `ALL`; repeatable).
    #[arg(long, value_name = "CAP")]
    pub cap_drop: Vec<String>,
    /// Run an init at PID 1 that passes signals on to the command and reaps orphans.
    #[arg(long)]
    pub init: bool,
    /// A resource limit `NAME=SOFT[:HARD]` (repeatable).
    #[arg(long = "ulimit", value_name = "NAME=SOFT[:HARD]")]
    pub ulimits: Vec<String>,
    /// The size of /dev/shm (`64m`).
    #[arg(long, value_name = "SIZE")]
    pub shm_size: Option<String>,
    /// `missing` (pull an image the store lacks), `always` or `never` [default: missing].
    #[arg(long, value_name = "POLICY")]
    pub pull: Option<String>,
    /// Print help.
    #[arg(long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,
    /// docker flags kiln refuses by name.
    #[command(flatten)]
    pub refused: flags::Refused,
    /// IMAGE, then COMMAND [ARG…].
    #[arg(
        required = true,
        trailing_var_arg = true,
        value_name = "IMAGE [COMMAND [ARG...]]"
    )]
    pub args: Vec<String>,
}

/// Runs `kiln run`; returns the exit status.
pub fn run(cli: &Cli, args: &RunArgs) -> i32 {
    let opts = match options(args) {
        Ok(o) => o,
        Err(e) => {
            super::report(&e);
            return EXIT_KILN;
        }
    };
    let locked = cli
        .open_store_locked(LockMode::Shared)
        .context("opening the store");
    let (store, _lock) = match locked {
        Ok(s) => s,
        Err(e) => {
            super::report(&e);
            return EXIT_KILN;
        }
    };
    if let Err(e) = pull(&store, &opts.image, args.pull.as_deref()) {
        super::report(&e);
        return EXIT_KILN;
    }
    let exe = std::path::Path::new("/proc/self/exe");
    if args.detach {
        return detached(&store, exe, &opts, args);
    }
    match container::run(&store, exe, &opts) {
        Ok(status) => status,
        Err(e) => {
            let code = e.exit_code();
            let e = match &e {
                container::ContainerError::Image { .. } => anyhow::Error::new(e).context(format!(
                    "kiln run: no image {:?} in the store (build it with -t, `kiln load` or `kiln pull` it)",
                    opts.image
                )),
                _ if code == 127 => anyhow::Error::new(e)
                    .context("kiln run: the command was not found in the container"),
                _ if code == 126 => anyhow::Error::new(e)
                    .context("kiln run: the command cannot be executed in the container"),
                _ => anyhow::Error::new(e).context("kiln run"),
            };
            super::report(&e);
            code
        }
    }
}

/// `kiln run -d`: makes the stored container, starts its monitor and prints its id
/// once it runs (or its failure, with docker's status, when it could not start).
fn detached(store: &Store, exe: &std::path::Path, opts: &RunOptions, args: &RunArgs) -> i32 {
    let started =
        container::create(store, opts, args.name.as_deref(), args.rm).and_then(|mut c| {
            let _lock = c.lock()?;
            container::start(store, exe, &mut c)?;
            Ok(c)
        });
    let c = match started {
        Ok(c) => c,
        Err(e) => {
            let code = match &e {
                container::StoredError::Prepare(p) => p.exit_code(),
                _ => EXIT_KILN,
            };
            super::report(&anyhow::Error::new(e).context("kiln run -d"));
            return code;
        }
    };
    // COMPAT(docker): a command that cannot start is run's error; the container stays.
    if let (Some(err), Some(code)) = (&c.state.error, c.state.exit_code) {
        if c.state.status == container::Status::Exited {
            eprintln!("error: kiln run -d: {err}");
            return code;
        }
    }
    println!("{}", c.config.id);
    0
}

/// `--pull`: fetches `image` from its registry when the policy says so, as docker
/// does before it creates the container (progress on stderr: stdout is the
/// container's).
fn pull(store: &Store, image: &str, policy: Option<&str>) -> anyhow::Result<()> {
    let present = match store.resolve(image) {
        Ok(_) => true,
        Err(StoreError::NotFound { .. }) => false,
        Err(e) => return Err(anyhow::Error::new(e).context(format!("kiln run: image {image}"))),
    };
    let wanted = match policy {
        None | Some("missing") => !present,
        Some("always") => true,
        Some("never") => false,
        Some(other) => bail!("--pull {other:?}: expected missing, always or never"),
    };
    // A short image ID or a digest the store lacks is not a name to pull.
    let reference = match Reference::parse(image) {
        Ok(r) if wanted => r,
        _ => return Ok(()),
    };
    if !present {
        // COMPAT(docker): its words before an implicit pull.
        eprintln!("Unable to find image '{image}' locally");
    }
    let client = super::pull::RegistryArgs::default().client();
    let pulled = registry::pull(&client, store, &reference, &Platform::host())
        .with_context(|| format!("kiln run: pulling {}", reference.familiar()))?;
    eprintln!(
        "{}: {} blobs downloaded, {} already present; digest {}",
        pulled.name,
        pulled.fetched.len(),
        pulled.present.len(),
        pulled.manifest.digest
    );
    Ok(())
}

/// The flags, validated into [`RunOptions`].
fn options(args: &RunArgs) -> anyhow::Result<RunOptions> {
    args.refused.check()?;
    if !args.rm && !args.detach {
        bail!("kiln run in the foreground without --rm would keep the stopped container, which kiln does only for detached ones (issue 14); add --rm, or -d");
    }
    if args.name.is_some() && !args.detach {
        bail!("kiln run --name names a stored container, which kiln keeps only for detached ones (-d)");
    }
    if args.detach && args.interactive {
        bail!("kiln run -d -i is not implemented yet (issue 14): a detached container's stdin is /dev/null");
    }
    if args.detach && args.tty {
        bail!("kiln run -d -t is not implemented: a detached container's pty needs `attach`, which kiln does not have; run -t in the foreground (--rm)");
    }
    if args.detach && args.init {
        bail!("kiln run -d --init is not implemented yet (issue 14): the monitor runs the command as PID 1");
    }
    let Some((image, command)) = args.args.split_first() else {
        bail!("kiln run needs an IMAGE");
    };
    let mut opts = RunOptions::new(image);
    opts.command = command.to_vec();
    opts.entrypoint = args.entrypoint.clone();
    for file in &args.env_file {
        opts.env.extend(flags::env_file(file)?);
    }
    opts.env.extend(
        args.env
            .iter()
            .filter_map(|e| flags::env_entry(e).transpose())
            .collect::<anyhow::Result<Vec<_>>>()?,
    );
    if let Some(w) = &args.workdir {
        if !w.starts_with('/') {
            bail!("the working directory {w:?} is invalid: it needs to be an absolute path");
        }
        opts.workdir = Some(w.clone());
    }
    opts.user = args.user.clone();
    opts.hostname = args.hostname.clone();
    opts.extra_hosts = extra_hosts(&args.add_hosts)?;
    let parsed = args.volumes.iter().map(|v| flags::volume(v));
    for p in parsed.chain(args.mounts.iter().map(|m| flags::mount(m))) {
        match p? {
            flags::Parsed::Mount(m) => opts.mounts.push(m),
            flags::Parsed::Volume(v) => opts.volumes.push(v),
        }
    }
    for t in &args.tmpfs {
        opts.mounts.push(flags::tmpfs(t)?);
    }
    opts.read_only = args.read_only;
    opts.network = network(args.network.as_deref())?;
    opts.publish = args
        .publish
        .iter()
        .map(|p| container::PublishSpec::parse(p))
        .collect::<Result<_, _>>()?;
    opts.publish_all = args.publish_all;
    if let Some(p) = &args.platform {
        opts.platform =
            Some(crate::oci::parse_platform(p).with_context(|| format!("--platform {p}"))?);
    }
    opts.stdin = args.interactive;
    opts.tty = args.tty;
    if args.tty && args.interactive && !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        // COMPAT(docker): docker refuses here; kiln still gives the command its pty and
        // copies the input as it comes.
        eprintln!("warning: the input device is not a TTY");
    }
    if let Some(s) = &args.stop_signal {
        opts.stop_signal = Some(
            container::parse_signal(s)
                .with_context(|| format!("--stop-signal {s:?} is not a signal"))?,
        );
    }
    opts.stop_timeout = match args.stop_timeout {
        None => None,
        // COMPAT(docker): -1 waits for the command however long it takes.
        Some(-1) => Some(u32::MAX),
        Some(t) => Some(u32::try_from(t).map_err(|_| {
            anyhow::anyhow!("--stop-timeout {t}: expected seconds (0 or more) or -1")
        })?),
    };
    opts.privileged = args.privileged;
    opts.init = args.init;
    let caps = |flag: &str, names: &[String]| -> anyhow::Result<Vec<container::Capability>> {
        names
            .iter()
            .map(|n| {
                container::Capability::parse(n)
                    .with_context(|| format!("{flag} {n:?}: no such capability"))
            })
            .collect()
    };
    opts.cap_add = caps("--cap-add", &args.cap_add)?;
    opts.cap_drop = caps("--cap-drop", &args.cap_drop)?;
    opts.ulimits = ulimits(&args.ulimits)?;
    opts.shm_size = shm_size(args.shm_size.as_deref())?;
    Ok(opts)
}

/// `--network`: private unless asked (docker's `bridge` and `default` name it too).
/// The host's network is a choice to make on purpose: the container then reaches every
/// service the host listens on, loopback included.
fn network(value: Option<&str>) -> anyhow::Result<Network> {
    match value {
        None | Some("private" | "bridge" | "default") => Ok(Network::Private),
        Some("none") => Ok(Network::None),
        Some("host") => Ok(Network::Host),
        Some(v) => bail!(
            "--network {v:?} is not implemented yet (issue 14: kiln has no named networks and no container: mode); use --network private (the default), none or host"
        ),
    }
}
