//! `kiln prune`: removes blobs no named image and no step-cache record
//! reaches, and stale temp files; with `--keep-storage SIZE` it first drops
//! the least recently used cache records until the layers of the rest fit.
//!
//! Invariant: a layer a kept cache record names is a root of the store's
//! prune, so a prune never turns a record into a miss by itself.

use std::io::Write;

use anyhow::Context;

use super::images::human_size;
use super::Cli;
use crate::cache::StepCache;

/// Arguments of `kiln prune`.
#[derive(Debug, clap::Args)]
pub struct PruneArgs {
    /// Print only the total.
    #[arg(short, long)]
    pub quiet: bool,
    /// Keep at most this much cache (`500MB`, `1GiB`, `100k`, bytes): least
    /// recently used step records go first.
    #[arg(long = "keep-storage", value_name = "SIZE", value_parser = parse_size)]
    pub keep_storage: Option<u64>,
}

/// Parses a size: a number with an optional unit (`k`, `KB`, `KiB`, `M`,
/// `MB`, `MiB`, `G`…, case-insensitive; `KB` is 1000, `KiB` and bare `k` 1024).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{s:?}: expected a size such as 500MB or 1GiB"))?;
    // COMPAT(buildkit): docker's units: `MB` is 10^6, `MiB` and bare `m` 2^20.
    let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kib" => 1024.0,
        "kb" => 1e3,
        "m" | "mib" => 1024.0 * 1024.0,
        "mb" => 1e6,
        "g" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "gb" => 1e9,
        "t" | "tib" => 1024f64.powi(4),
        "tb" => 1e12,
        _ => return Err(format!("{s:?}: unknown size unit {unit:?}")),
    };
    Ok((n * mult) as u64)
}

/// Runs `kiln prune`.
pub fn run(cli: &Cli, args: &PruneArgs) -> anyhow::Result<()> {
    let (store, _lock) = cli.open_store_locked(crate::store::LockMode::Exclusive)?;
    let steps = StepCache::with_store(store.clone()).context("opening the step cache")?;
    let cache = steps
        .prune(args.keep_storage.unwrap_or(u64::MAX))
        .context("pruning the step cache")?;
    let report = crate::store::prune(&store, &cache.kept_layers).context("pruning the store")?;
    let mut out = std::io::stdout().lock();
    if !args.quiet {
        for k in &cache.removed {
            writeln!(out, "Deleted cache record: {k}")?;
        }
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

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes_take_docker_units() {
        assert_eq!(parse_size("123"), Ok(123));
        assert_eq!(parse_size("500MB"), Ok(500_000_000));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("100k"), Ok(102_400));
        assert_eq!(parse_size("1.5m"), Ok(1_572_864));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("10parsecs").is_err());
    }
}
