//! `kiln start`, `kiln stop [-t N]`, `kiln restart [-t N]`, `kiln kill [-s SIG]` and
//! `kiln rm [-f]` of stored containers. Each prints the names it was given, as
//! docker does, and goes on to the next container after a failure, exiting non-zero
//! at the end. Each holds the container's lock while it changes it.

use std::path::Path;

use anyhow::{bail, Context};

use crate::container::{self, Container};
use crate::oci::Store;

use super::Cli;

/// Arguments of `kiln start`.
#[derive(Debug, clap::Args)]
pub struct StartArgs {
    /// The containers: names, ids or id prefixes.
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// Arguments of `kiln stop` and `kiln restart`.
#[derive(Debug, clap::Args)]
pub struct StopArgs {
    /// Seconds from the stop signal to SIGKILL (-1: wait forever) [default: the
    /// container's --stop-timeout, else 10].
    #[arg(
        short = 't',
        long = "time",
        visible_alias = "timeout",
        allow_negative_numbers = true
    )]
    pub time: Option<i64>,
    /// The containers: names, ids or id prefixes.
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// Arguments of `kiln kill`.
#[derive(Debug, clap::Args)]
pub struct KillArgs {
    /// The signal, by name or number.
    #[arg(short, long, default_value = "KILL")]
    pub signal: String,
    /// The containers: names, ids or id prefixes.
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// Arguments of `kiln rm`.
#[derive(Debug, clap::Args)]
pub struct RmArgs {
    /// Kill a running container first.
    #[arg(short, long)]
    pub force: bool,
    /// Remove the container's anonymous volumes too.
    #[arg(short, long)]
    pub volumes: bool,
    /// The containers: names, ids or id prefixes.
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// Runs `each` on every named container, printing the name after each success;
/// an error is printed and the rest still run.
fn for_each(
    cli: &Cli,
    names: &[String],
    mut each: impl FnMut(&Store, &mut Container) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let store = cli.open_store()?;
    let mut failed = 0;
    for name in names {
        let done = container::find(&store, name)
            .map_err(anyhow::Error::new)
            .and_then(|mut c| {
                let _lock = c.lock()?;
                c.reload()?;
                each(&store, &mut c)
            });
        match done {
            Ok(()) => println!("{name}"),
            Err(e) => {
                super::report(&e);
                failed += 1;
            }
        }
    }
    if failed > 0 {
        bail!("{failed} of {} containers failed", names.len());
    }
    Ok(())
}

fn start_one(store: &Store, c: &mut Container) -> anyhow::Result<()> {
    if c.is_running() {
        return Ok(());
    }
    container::start(store, Path::new("/proc/self/exe"), c)?;
    if let (Some(err), container::Status::Exited) = (&c.state.error, c.state.status) {
        bail!("starting container {}: {err}", c.config.name);
    }
    Ok(())
}

/// Runs `kiln start`.
pub fn start(cli: &Cli, args: &StartArgs) -> anyhow::Result<()> {
    for_each(cli, &args.containers, start_one)
}

/// Runs `kiln stop`.
pub fn stop(cli: &Cli, args: &StopArgs) -> anyhow::Result<()> {
    for_each(cli, &args.containers, |_, c| {
        let t = args.time.unwrap_or(i64::from(c.config.stop_timeout));
        Ok(c.stop(t)?)
    })
}

/// Runs `kiln restart`: a stop, then a start.
pub fn restart(cli: &Cli, args: &StopArgs) -> anyhow::Result<()> {
    for_each(cli, &args.containers, |store, c| {
        let t = args.time.unwrap_or(i64::from(c.config.stop_timeout));
        c.stop(t)?;
        start_one(store, c)
    })
}

/// Runs `kiln kill`.
pub fn kill(cli: &Cli, args: &KillArgs) -> anyhow::Result<()> {
    let Some(signal) = container::parse_signal(&args.signal) else {
        bail!("--signal {:?}: no such signal", args.signal);
    };
    for_each(cli, &args.containers, |_, c| {
        if !c.signal(signal)? {
            return Err(container::StoredError::NotRunning(c.config.name.clone()).into());
        }
        Ok(())
    })
}

/// Runs `kiln rm`.
pub fn rm(cli: &Cli, args: &RmArgs) -> anyhow::Result<()> {
    for_each(cli, &args.containers, |store, c| {
        if c.is_running() {
            if !args.force {
                return Err(container::StoredError::Running(c.config.name.clone()).into());
            }
            c.signal(libc::SIGKILL)?;
            c.wait_gone()?;
        }
        c.remove(store)
            .with_context(|| format!("removing container {}", c.config.name))?;
        if args.volumes {
            let used = container::volume::used_by(store, &c.config.spec);
            container::volume::remove_anonymous(store, &used)
                .with_context(|| format!("removing the anonymous volumes of {}", c.config.name))?;
        }
        Ok(())
    })
}

/// Runs `kiln __monitor ID` (started by `run -d`, `start`, `restart`).
pub fn monitor(cli: &Cli, id: &str) -> i32 {
    match cli.open_store() {
        Ok(store) => container::monitor_main(&store, Path::new("/proc/self/exe"), id),
        Err(_) => 3,
    }
}
