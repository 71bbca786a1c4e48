//! `kiln prune`: removes blobs no named image reaches and stale temp files.

use std::io::Write;

use anyhow::Context;

use super::images::human_size;
use super::Cli;

/// Arguments of `kiln prune`.
#[derive(Debug, clap::Args)]
pub struct PruneArgs {
    /// Print only the total.
    #[arg(short, long)]
    pub quiet: bool,
}

/// Runs `kiln prune`.
pub fn run(cli: &Cli, args: &PruneArgs) -> anyhow::Result<()> {
    let _lock = cli.open_store()?.lock(
        crate::oci::store::LockMode::Exclusive,
        crate::oci::store::LockWait::print,
    )?;
    let store = cli.open_store()?;
    let report = store.prune(&[]).context("pruning the store")?;
    let mut out = std::io::stdout().lock();
    if !args.quiet {
        for d in &report.removed {
            writeln!(out, "Deleted: {d}")?;
        }
    }
    writeln!(
        out,
        "Total reclaimed space: {}",
        human_size(report.reclaimed)
    )?;
    Ok(())
}
