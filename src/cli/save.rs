//! `kiln save REF… -o FILE [--format oci|oci-dir|docker]`: writes images from
//! the store as an OCI archive (the default; it also carries docker's
//! `manifest.json`), an OCI layout dir, or a classic docker-archive.
//! A file is written beside its destination and renamed into place, so an
//! interrupted save never leaves a half archive under the final name.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::oci::{
    normalize_name, write_docker_archive, write_layout, write_oci_archive, NamedImage, Store,
};

use super::Cli;

/// Output formats of `kiln save`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SaveFormat {
    /// OCI archive (tar) with docker's manifest.json too.
    Oci,
    /// OCI layout directory.
    OciDir,
    /// Classic docker-archive (uncompressed layers).
    Docker,
}

/// Arguments of `kiln save`.
#[derive(Debug, clap::Args)]
pub struct SaveArgs {
    /// Images to save: names, digests or image IDs.
    #[arg(required = true, value_name = "REF")]
    pub references: Vec<String>,
    /// Destination file (`-` for stdout), or directory for `oci-dir`.
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
    /// Archive format.
    #[arg(long, value_enum, default_value = "oci")]
    pub format: SaveFormat,
}

/// Runs `kiln save`.
pub fn run(cli: &Cli, args: &SaveArgs) -> anyhow::Result<()> {
    let (store, _lock) = cli.open_store_locked(crate::store::LockMode::Shared)?;
    let images = args
        .references
        .iter()
        .map(|r| named_image(&store, r))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let out = &args.output;
    let ctx = || format!("saving to {}", out.display());
    match args.format {
        SaveFormat::OciDir => write_layout(&store, &images, out).with_context(ctx),
        SaveFormat::Oci | SaveFormat::Docker if out == Path::new("-") => {
            let stdout = std::io::stdout().lock();
            let mut w = write_archive(&store, &images, args.format, stdout).with_context(ctx)?;
            Ok(w.flush()?)
        }
        SaveFormat::Oci | SaveFormat::Docker => {
            let dir = out.parent().filter(|p| !p.as_os_str().is_empty());
            let tmp =
                tempfile::NamedTempFile::new_in(dir.unwrap_or(Path::new("."))).with_context(ctx)?;
            let tmp = write_archive(&store, &images, args.format, tmp).with_context(ctx)?;
            tmp.as_file().sync_all().with_context(ctx)?;
            tmp.persist(out).with_context(ctx)?;
            Ok(())
        }
    }
}

fn write_archive<W: Write>(
    store: &Store,
    images: &[NamedImage],
    format: SaveFormat,
    out: W,
) -> Result<W, crate::oci::ArchiveError> {
    match format {
        SaveFormat::Docker => write_docker_archive(store, images, out),
        _ => write_oci_archive(store, images, out),
    }
}

/// Resolves `reference`; it keeps its name when it named the image (an ID
/// or digest saves the image unnamed, as docker does).
fn named_image(store: &Store, reference: &str) -> anyhow::Result<NamedImage> {
    let descriptor = store
        .resolve(reference)
        .with_context(|| format!("resolving {reference}"))?;
    let name = normalize_name(reference).ok().filter(|n| {
        store.images().is_ok_and(|all| {
            all.iter()
                .any(|e| &e.name == n && e.descriptor.digest == descriptor.digest)
        })
    });
    Ok(NamedImage { name, descriptor })
}
