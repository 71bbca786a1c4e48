//! `kiln load -i FILE [--tag T]`: loads an OCI archive, an OCI layout dir or
//! a docker-archive (optionally gzip-compressed) into the store.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;

use super::Cli;

/// Arguments of `kiln load`.
#[derive(Debug, clap::Args)]
pub struct LoadArgs {
    /// The archive file or layout directory.
    #[arg(short, long, value_name = "FILE")]
    pub input: PathBuf,
    /// Name the loaded image this instead of the name it carries.
    #[arg(short, long, value_name = "NAME[:TAG]")]
    pub tag: Option<String>,
    /// Print nothing.
    #[arg(short, long)]
    pub quiet: bool,
}

/// Runs `kiln load`.
pub fn run(cli: &Cli, args: &LoadArgs) -> anyhow::Result<()> {
    let (store, _lock) = cli.open_store_locked(crate::store::LockMode::Shared)?;
    let images = crate::oci::load(&store, &args.input, args.tag.as_deref())
        .with_context(|| format!("loading {}", args.input.display()))?;
    if args.quiet {
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    for img in images {
        if img.names.is_empty() {
            let id = store.config_digest(&img.descriptor)?;
            writeln!(out, "Loaded image ID: {id}")?;
        }
        for n in img.names {
            writeln!(out, "Loaded image: {n}")?;
        }
    }
    Ok(())
}
