//! `kiln fsck`: re-verifies every blob and named image in the store and
//! reports what is damaged; `--repair` removes corrupt blobs, broken
//! snapshots, unparsable cache records and `tmp/` leftovers (never a blob
//! that hashes to its name).
//!
//! Output, on stdout: one `problem: …` line per defect, one `note: …` line
//! per harmless finding, one `repaired: …` line per removal, then a summary.
//! Exit 0 when healthy (no problem, or `--repair` removed every one), 1 when
//! problems remain, 3 when the check itself failed or there is no store at the root.
//! Plain fsck holds the store lock shared; `--repair` holds it exclusive, so
//! it first waits (saying so on stderr) for running builds, loads and saves.

use std::io::Write;

use anyhow::Context;

use super::images::human_size;
use super::Cli;
use crate::store::{FsckReport, LockMode};

/// Arguments of `kiln fsck`.
#[derive(Debug, clap::Args)]
pub struct FsckArgs {
    /// Remove corrupt blobs, broken snapshots, unparsable cache records and
    /// temp leftovers (waits for builds, loads and saves on the store to end).
    #[arg(long)]
    pub repair: bool,
}

/// Runs `kiln fsck`; returns the exit code.
pub fn run(cli: &Cli, args: &FsckArgs) -> i32 {
    match check(cli, args) {
        Ok(true) => 0,
        Ok(false) => 1,
        Err(e) => super::report(&e),
    }
}

fn check(cli: &Cli, args: &FsckArgs) -> anyhow::Result<bool> {
    let root = cli.store_root();
    if !root.join("oci-layout").is_file() {
        // Opening would create an empty store and call it healthy.
        anyhow::bail!("no kiln store at {}", root.display());
    }
    // Repair removes every tmp/ entry: a running build's must not go.
    let mode = if args.repair {
        LockMode::Exclusive
    } else {
        LockMode::Shared
    };
    let (store, _lock) = cli.open_store_locked(mode)?;
    let report = crate::store::fsck(&store, args.repair)
        .with_context(|| format!("checking the store at {}", store.root().display()))?;
    print(&report)?;
    Ok(report.healthy())
}

fn print(r: &FsckReport) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    for p in &r.problems {
        writeln!(out, "problem: {p}")?;
    }
    for n in &r.notes {
        writeln!(out, "note: {n}")?;
    }
    for x in &r.repairs {
        writeln!(out, "repaired: {x}")?;
    }
    writeln!(
        out,
        "checked {} blobs ({}), {} images, {} snapshots, {} cache records: {}",
        r.blobs,
        human_size(r.bytes),
        r.images,
        r.snapshots,
        r.cache_records,
        match (r.problems.len(), r.healthy()) {
            (0, _) => "no problems".to_string(),
            (n, true) => format!("{n} problems, all repaired"),
            (n, false) => format!("{n} problems"),
        }
    )
}
