//! `kiln inspect REF…`: prints a JSON array with, per image, its ID (config
//! digest), names, manifest descriptor, manifest and config. For an image index
//! (a multi-platform image, or one with attestations) it also prints the index
//! itself (every platform's manifest and the attestation manifests, as `docker
//! buildx imagetools inspect --raw` shows them), and the manifest and config are
//! those of `--platform` (the host's by default, chosen as a build would).

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
    /// The platform whose manifest and config to show when an image is an
    /// index (`linux/arm64`); the host's by default.
    #[arg(long, value_name = "PLATFORM")]
    pub platform: Option<String>,
}

/// Runs `kiln inspect`.
pub fn run(cli: &Cli, args: &InspectArgs) -> anyhow::Result<()> {
    let store = cli.open_store()?;
    let names = store.images()?;
    let platform = match &args.platform {
        Some(p) => crate::oci::parse_platform(p).with_context(|| format!("--platform {p}"))?,
        None => crate::oci::Platform::host(),
    };
    let mut all = Vec::new();
    for r in &args.references {
        let desc = store
            .resolve(r)
            .with_context(|| format!("inspecting {r}"))?;
        let (manifest, manifest_desc) =
            store.load_manifest_for(&desc, &platform).with_context(|| {
                format!(
                    "reading image {} for {}",
                    desc.digest,
                    platform.to_specifier()
                )
            })?;
        let config: crate::oci::ImageConfig = serde_json::from_slice(
            &store
                .read_blob(&manifest.config.digest)
                .with_context(|| format!("reading config {}", manifest.config.digest))?,
        )
        .with_context(|| format!("parsing config {}", manifest.config.digest))?;
        let index = if manifest_desc.digest == desc.digest {
            serde_json::Value::Null
        } else {
            serde_json::from_slice(&store.read_blob(&desc.digest)?)
                .with_context(|| format!("parsing index {}", desc.digest))?
        };
        let tags: Vec<&str> = names
            .iter()
            .filter(|e| e.descriptor.digest == desc.digest)
            .map(|e| e.name.as_str())
            .collect();
        all.push(json!({
            "Id": manifest.config.digest,
            "RepoTags": tags,
            "Descriptor": desc,
            "Index": index,
            "ManifestDescriptor": manifest_desc,
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
