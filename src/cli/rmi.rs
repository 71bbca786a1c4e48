//! `kiln rmi REF…`: removes image names. Like `docker rmi`, a name removes
//! that name and an ID removes every name of the image; the blobs stay until
//! `kiln prune` (the step cache may still use them).

use std::io::Write;

use anyhow::Context;

use super::Cli;

/// Arguments of `kiln rmi`.
#[derive(Debug, clap::Args)]
pub struct RmiArgs {
    /// Images to remove: names, digests or image IDs.
    #[arg(required = true, value_name = "REF")]
    pub references: Vec<String>,
}

/// Runs `kiln rmi`.
pub fn run(cli: &Cli, args: &RmiArgs) -> anyhow::Result<()> {
    let store = cli.open_store()?;
    let mut out = std::io::stdout().lock();
    for r in &args.references {
        let removed = store
            .untag(r)
            .with_context(|| format!("removing image {r}"))?;
        for name in removed {
            writeln!(out, "Untagged: {name}")?;
        }
    }
    Ok(())
}
