//! `kiln cache`: `explain` (why the latest build, or a given key, missed),
//! `export` and `import` (the step cache as an OCI layout, as
//! `--cache-to`/`--cache-from type=local` write and read it).

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;

use super::Cli;
use crate::cache::{self, StepCache, StepKey};

/// Arguments of `kiln cache`.
#[derive(Debug, clap::Args)]
pub struct CacheArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: CacheCommand,
}

/// `kiln cache` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum CacheCommand {
    /// Why steps missed: nothing explains every missed step of the latest
    /// build, an IMAGE (name or ID) those of the latest build that made it,
    /// one KEY that step against its previous build, two KEYs how the second
    /// differs from the first (field names need builds with --debug-cache).
    Explain {
        /// An image or step keys (`sha256:…`, as explain prints them).
        #[arg(value_name = "IMAGE_OR_KEY", num_args = 0..=2)]
        keys: Vec<String>,
    },
    /// Write the step cache of the latest build to an OCI layout directory.
    Export {
        /// The layout directory.
        #[arg(long, value_name = "DIR")]
        dest: PathBuf,
        /// `min`: the final image's steps; `max`: every step and the cache mounts.
        #[arg(long, default_value = "min")]
        mode: String,
    },
    /// Merge the step cache in an OCI layout directory into the store.
    Import {
        /// The layout directory.
        #[arg(long, value_name = "DIR")]
        src: PathBuf,
    },
}

fn parse_key(s: &str) -> anyhow::Result<StepKey> {
    StepKey::parse(s).with_context(|| format!("parsing step key {s:?}"))
}

/// `kiln cache explain X`: X is a logged step key, else an image ID or name.
fn explain_one(store: &crate::oci::Store, steps: &StepCache, x: &str) -> anyhow::Result<String> {
    if let Ok(key) = StepKey::parse(x) {
        if let Some(e) = steps.explain_key(&key)? {
            return Ok(cache::render_explanations(&[e]));
        }
    }
    let image = match crate::oci::Digest::parse(x) {
        Ok(d) => d,
        Err(_) => {
            let desc = store
                .resolve(x)
                .with_context(|| format!("{x:?} is neither a logged step key nor an image"))?;
            store.config_digest(&desc)?
        }
    };
    match steps.explain_image(&image)? {
        Some(e) => Ok(cache::render_explanations(&e)),
        None => anyhow::bail!("no logged build has step key or made image {x}"),
    }
}

/// Runs `kiln cache`.
pub fn run(cli: &Cli, args: &CacheArgs) -> anyhow::Result<()> {
    // Shared: import writes blobs and records a concurrent prune must not drop.
    let (store, _lock) = cli.open_store_locked(crate::store::LockMode::Shared)?;
    let steps = StepCache::with_store(store.clone()).context("opening the step cache")?;
    let mut out = std::io::stdout().lock();
    match &args.command {
        CacheCommand::Explain { keys } => {
            let text = match keys.as_slice() {
                [] => cache::render_explanations(&steps.explain_latest()?),
                [k] => explain_one(&store, &steps, k)?,
                [a, b] => {
                    let changes = steps.explain(&parse_key(a)?, &parse_key(b)?)?;
                    let mut s: String = changes
                        .iter()
                        .map(|c| format!("{}\n", cache::describe_change(c)))
                        .collect();
                    if s.is_empty() {
                        s = "the two pre-images are equal\n".into();
                    }
                    s
                }
                _ => anyhow::bail!("kiln cache explain takes at most two keys"),
            };
            out.write_all(text.as_bytes())?;
        }
        CacheCommand::Export { dest, mode } => {
            let spec =
                cache::export::ExportSpec::latest(&steps, cache::export::Mode::parse(mode)?)?;
            let r = cache::export::export_layout(&store, &spec, dest)?;
            writeln!(
                out,
                "exported {} records, {} blobs to {}",
                r.records,
                r.blobs,
                dest.display()
            )?;
        }
        CacheCommand::Import { src } => {
            let r = cache::export::import_layout(&store, src)?;
            writeln!(
                out,
                "imported {} records, {} blobs from {}",
                r.records,
                r.blobs,
                src.display()
            )?;
        }
    }
    Ok(())
}
