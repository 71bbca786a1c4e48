//! `kiln push NAME [DEST]`: pushes a stored image to the registry its name
//! (or `DEST`, as podman allows) points at, and prints the pushed digest.

use std::io::Write;

use anyhow::Context;

use super::pull::RegistryArgs;
use super::Cli;
use crate::oci::{registry, Reference};

/// Arguments of `kiln push`.
#[derive(Debug, clap::Args)]
pub struct PushArgs {
    /// The stored image, e.g. `registry.example.com/team/app:1`.
    pub image: String,
    /// Push to this reference instead of the image's own name.
    pub destination: Option<String>,
    /// A repository on the same registry to mount blobs from instead of
    /// uploading them (cross-repository blob mount).
    #[arg(long, value_name = "REPOSITORY")]
    pub mount_from: Option<String>,
    /// Print only the digest.
    #[arg(short, long)]
    pub quiet: bool,
    /// Registry flags.
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// Runs `kiln push`.
pub fn run(cli: &Cli, args: &PushArgs) -> anyhow::Result<()> {
    let target = Reference::parse(args.destination.as_deref().unwrap_or(&args.image))?;
    let (store, _lock) = cli.open_store_locked(crate::store::LockMode::Shared)?;
    let image = store.resolve(&args.image)?;
    let client = args.registry.client();
    let pushed = registry::push(&client, &store, &image, &target, args.mount_from.as_deref())
        .with_context(|| format!("pushing {} to {}", args.image, target.familiar()))?;
    let mut out = std::io::stdout().lock();
    if !args.quiet {
        writeln!(
            out,
            "{}: {} blobs uploaded, {} mounted, {} already present",
            target.familiar(),
            pushed.uploaded.len(),
            pushed.mounted.len(),
            pushed.existing.len()
        )?;
        write!(out, "Digest: ")?;
    }
    writeln!(out, "{}", image.digest)?;
    Ok(())
}
