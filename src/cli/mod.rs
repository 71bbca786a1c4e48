//! Command-line interface: clap structs, one file per subcommand, error printing.

use clap::{Parser, Subcommand};

pub mod progress;

/// kiln: build OCI images from Dockerfiles, without a daemon.
#[derive(Debug, Parser)]
#[command(name = "kiln", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Internal: the RUN sandbox helper kiln re-executes itself as.
    #[command(hide = true, name = "__sandbox")]
    Sandbox,
}

/// Runs the CLI and returns the process exit code.
pub fn run(cli: Cli) -> i32 {
    match cli.command {
        Command::Sandbox => crate::exec::helper_main(),
    }
}
