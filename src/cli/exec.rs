//! `kiln exec [-i] [-e K=V] [-w DIR] [-u USER] CONTAINER COMMAND [ARG…]`: a command
//! in a running container's namespaces, with its capabilities, seccomp filter and
//! user (see `exec::enter`). Exit status as docker's: the command's, 126/127 when it
//! cannot be executed / is not found, 125 for kiln's own failure.

use anyhow::bail;

use crate::container::{self, ContainerError};

use super::run::EXIT_KILN;
use super::Cli;

/// Arguments of `kiln exec`.
#[derive(Debug, clap::Args)]
pub struct ExecArgs {
    /// Pass kiln's stdin to the command.
    #[arg(short, long)]
    pub interactive: bool,
    /// Refused: no pseudo-terminal yet (issue 14).
    #[arg(short, long)]
    pub tty: bool,
    /// Refused: kiln exec runs in the foreground (issue 14).
    #[arg(short, long)]
    pub detach: bool,
    /// Set an environment variable (`K=V`, or `K` to take kiln's own value).
    #[arg(short, long = "env", value_name = "K[=V]")]
    pub env: Vec<String>,
    /// The working directory [default: the container's].
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// The user [default: the container's].
    #[arg(short, long)]
    pub user: Option<String>,
    /// Every capability and no seccomp filter, whatever the container has.
    #[arg(long)]
    pub privileged: bool,
    /// CONTAINER, then COMMAND [ARG…].
    #[arg(required = true, num_args = 2.., trailing_var_arg = true, value_name = "CONTAINER COMMAND [ARG...]")]
    pub args: Vec<String>,
}

/// Runs `kiln exec`; returns the exit status.
pub fn run(cli: &Cli, args: &ExecArgs) -> i32 {
    match exec(cli, args) {
        Ok(code) => code,
        Err(e) => {
            let code = e
                .downcast_ref::<ContainerError>()
                .map_or(EXIT_KILN, ContainerError::exit_code);
            super::report(&e);
            code
        }
    }
}

fn exec(cli: &Cli, args: &ExecArgs) -> anyhow::Result<i32> {
    if args.tty {
        bail!("kiln exec -t/--tty is not implemented yet (issue 14): only `kiln run -t` gives a pseudo-terminal; the exec'd command gets kiln's stdio");
    }
    if args.detach {
        bail!("kiln exec -d/--detach is not implemented yet (issue 14): the command runs in the foreground");
    }
    let Some((name, command)) = args.args.split_first() else {
        bail!("kiln exec needs a CONTAINER and a COMMAND");
    };
    let store = cli.open_store()?;
    let c = container::find(&store, name)?;
    let state = c.observed();
    let Some(init) = state
        .init
        .filter(|p| state.status == container::Status::Running && p.alive())
    else {
        bail!("container {name} is not running");
    };
    let mut spec = c.config.spec.clone();
    spec.argv = command.to_vec();
    for e in &args.env {
        if let Some(kv) = super::run::env_entry(e)? {
            let key = kv
                .split_once('=')
                .map_or(kv.as_str(), |(k, _)| k)
                .to_string();
            spec.env
                .retain(|old| old.split_once('=').map_or(old.as_str(), |(k, _)| k) != key);
            spec.env.push(kv);
        }
    }
    if let Some(w) = &args.workdir {
        if !w.starts_with('/') {
            bail!("the working directory {w:?} is invalid: it needs to be an absolute path");
        }
        spec.cwd = w.clone();
    }
    if let Some(u) = &args.user {
        spec.user = u.clone();
    }
    spec.privileged |= args.privileged;
    crate::exec::enter(init.pid, &spec, args.interactive)
        .map_err(|e| ContainerError::Exec(Box::new(e)).into())
}
