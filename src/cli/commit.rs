//! `kiln commit CONTAINER NAME`: a stopped container's changes as a new image
//! (`container::commit`); prints its manifest digest, as docker prints the id.

use anyhow::Context;

use crate::container;

use super::Cli;

/// Arguments of `kiln commit`.
#[derive(Debug, clap::Args)]
pub struct CommitArgs {
    /// The container: name, id or id prefix (stopped).
    pub container: String,
    /// The new image's name.
    pub name: String,
}

/// Runs `kiln commit`.
pub fn run(cli: &Cli, args: &CommitArgs) -> anyhow::Result<()> {
    crate::oci::Reference::parse(&args.name)?;
    let store = cli.open_store()?;
    let c = container::find(&store, &args.container)?;
    let _lock = c.lock()?;
    let desc = container::commit(&store, &c, &args.name)
        .with_context(|| format!("committing container {}", args.container))?;
    println!("{}", desc.digest);
    Ok(())
}
