//! Command-line interface: clap structs, one file per subcommand, error printing.

use clap::{Parser, Subcommand};

pub mod progress;
pub mod parse;

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
    /// Parse a Dockerfile and print BuildKit's AST dump (or `--json`).
    Parse(parse::ParseArgs),
}

/// Runs the CLI and returns the process exit code.
pub fn run(cli: Cli) -> i32 {
    match cli.command {
        Command::Sandbox => crate::exec::helper_main(),
        Command::Parse(args) => parse::run(args),
    }
}
