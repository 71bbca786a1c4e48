//! `kiln inspect REF…`: prints a JSON array with, per image, its ID (config
//! digest), names, manifest descriptor, manifest and config.

use std::io::Write;

use anyhow::Context;
use serde_json::json;

use super::Cli;

/// Arguments of `kiln inspect`.
#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// Images to inspect: names, digests or image IDs.
    #[arg(required = true, value_name = "REF")]
    pub references: Vec<String>,
}

/// Runs `kiln inspect`.
pub fn run(cli: &Cli, args: &InspectArgs) -> anyhow::Result<()> {
    let store = cli.open_store()?;
    let names = store.images()?;
    let mut all = Vec::new();
    for r in &args.references {
        let desc = store
            .resolve(r)
            .with_context(|| format!("inspecting {r}"))?;
        let (manifest, config) = store
            .load_image(&desc)
            .with_context(|| format!("reading image {}", desc.digest))?;
        let tags: Vec<&str> = names
            .iter()
            .filter(|e| e.descriptor.digest == desc.digest)
            .map(|e| e.name.as_str())
            .collect();
        all.push(json!({
            "Id": manifest.config.digest,
            "RepoTags": tags,
            "Descriptor": desc,
            "Manifest": manifest,
            "Config": config,
        }));
    }
    // Serialize first: an io error inside serde_json's error would hide a
    // closed stdout from the broken-pipe check.
    let mut bytes = serde_json::to_vec_pretty(&all)?;
    bytes.push(b'\n');
    std::io::stdout().lock().write_all(&bytes)?;
    Ok(())
}
