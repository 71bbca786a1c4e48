//! `kiln cache`: `explain` (why the latest build, or a given key, missed),
//! `export` and `import` (the step cache as an OCI layout, as
//! `--cache-to`/`--cache-from type=local` write and read it).

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;

pub use super::cache_registry::CacheTransferError;
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
    let (store, _lock) = cli.open_store_locked(crate::oci::store::LockMode::Shared)?;
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

/// A `--cache-to` or `--cache-from` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheSpec {
    /// `type=local,dest=DIR[,mode=min|max]`.
    To {
        /// The layout directory.
        dest: PathBuf,
        /// `min` (default) or `max`.
        mode: cache::export::Mode,
    },
    /// `type=local,src=DIR`.
    From {
        /// The layout directory.
        src: PathBuf,
    },
    /// `type=registry,ref=NAME[,mode=min|max]`.
    ToRegistry {
        /// The image reference the artifact is pushed to.
        reference: String,
        /// `min` (default) or `max`.
        mode: cache::export::Mode,
    },
    /// `type=registry,ref=NAME`.
    FromRegistry {
        /// The image reference the artifact is pulled from.
        reference: String,
    },
}

/// Why a `--cache-to`/`--cache-from` value was refused.
#[derive(Debug, thiserror::Error)]
pub enum CacheSpecError {
    /// A field that is not `key=value`, or a missing dest/src.
    #[error("{flag} {value:?}: expected type=local,{field}=DIR")]
    Shape {
        /// The flag.
        flag: &'static str,
        /// The value.
        value: String,
        /// `dest` or `src`.
        field: &'static str,
    },
    /// `type=registry` without `ref=`, or with a key it does not know.
    #[error("{flag} {value:?}: expected type=registry,ref=NAME")]
    RegistryShape {
        /// The flag.
        flag: &'static str,
        /// The value.
        value: String,
    },
    /// A type other than `local` or `registry`.
    #[error("{flag} type={kind} is not supported (only type=local and type=registry)")]
    Type {
        /// The flag.
        flag: &'static str,
        /// The type given.
        kind: String,
    },
    /// A bad `mode=`.
    #[error("--cache-to mode")]
    Mode(#[source] cache::CacheError),
}

/// Parses `--cache-to` (`to = true`) or `--cache-from` values.
pub fn parse_spec(value: &str, to: bool) -> Result<CacheSpec, CacheSpecError> {
    let (flag, field) = if to {
        ("--cache-to", "dest")
    } else {
        ("--cache-from", "src")
    };
    let shape = || CacheSpecError::Shape {
        flag,
        value: value.to_string(),
        field,
    };
    let mut pairs = vec![];
    for part in value.split(',') {
        pairs.push(part.split_once('=').ok_or_else(shape)?);
    }
    match pairs.iter().find(|(k, _)| *k == "type").map(|p| p.1) {
        Some("local") => {}
        Some("registry") => return parse_registry_spec(flag, value, &pairs, to),
        Some(other) => {
            return Err(CacheSpecError::Type {
                flag,
                kind: other.to_string(),
            })
        }
        None => return Err(shape()),
    }
    let (mut dir, mut mode) = (None, cache::export::Mode::Min);
    for (k, v) in pairs {
        match k {
            "type" => {}
            k if k == field => dir = Some(PathBuf::from(v)),
            "mode" if to => mode = cache::export::Mode::parse(v).map_err(CacheSpecError::Mode)?,
            _ => return Err(shape()),
        }
    }
    let dir = dir.ok_or_else(shape)?;
    Ok(if to {
        CacheSpec::To { dest: dir, mode }
    } else {
        CacheSpec::From { src: dir }
    })
}

/// `type=registry,ref=NAME[,mode=min|max]`.
fn parse_registry_spec(
    flag: &'static str,
    value: &str,
    pairs: &[(&str, &str)],
    to: bool,
) -> Result<CacheSpec, CacheSpecError> {
    let shape = || CacheSpecError::RegistryShape {
        flag,
        value: value.to_string(),
    };
    let (mut reference, mut mode) = (None, cache::export::Mode::Min);
    for (k, v) in pairs {
        match *k {
            "type" => {}
            "ref" => reference = Some(v.to_string()),
            "mode" if to => mode = cache::export::Mode::parse(v).map_err(CacheSpecError::Mode)?,
            _ => return Err(shape()),
        }
    }
    let reference = reference.ok_or_else(shape)?;
    Ok(if to {
        CacheSpec::ToRegistry { reference, mode }
    } else {
        CacheSpec::FromRegistry { reference }
    })
}

/// Parses every `--cache-to` and `--cache-from` value.
pub fn build_specs(to: &[String], from: &[String]) -> Result<Vec<CacheSpec>, CacheSpecError> {
    let mut out = vec![];
    for v in from {
        out.push(parse_spec(v, false)?);
    }
    for v in to {
        out.push(parse_spec(v, true)?);
    }
    Ok(out)
}

/// Imports every `--cache-from` layout, each as a progress vertex.
pub fn import_specs(
    store: &crate::oci::Store,
    specs: &[CacheSpec],
    progress: &crate::builder::Progress,
    registry: Option<&crate::oci::registry::Client>,
) -> Result<(), CacheTransferError> {
    for spec in specs {
        let (what, res) = match spec {
            CacheSpec::From { src } => (
                src.display().to_string(),
                cache::export::import_layout(store, src)
                    .map(drop)
                    .map_err(Into::into),
            ),
            CacheSpec::FromRegistry { reference } => (
                reference.clone(),
                super::cache_registry::import(store, registry, reference).map(drop),
            ),
            _ => continue,
        };
        let v = progress.start(format!("importing cache from {what}"), None);
        match res {
            Ok(()) => v.done(),
            // COMPAT(buildkit): a cache ref not pushed yet (a first CI run)
            // is a warning, not a failed build.
            Err(e) if e.is_not_found() => {
                progress.warn(format!("{e}: not found, building without it"));
                v.done();
            }
            Err(e) => {
                v.failed(e.to_string());
                return Err(e);
            }
        }
    }
    Ok(())
}

/// Exports the latest build's cache to every `--cache-to` layout.
pub fn export_specs(
    store: &crate::oci::Store,
    specs: &[CacheSpec],
    progress: &crate::builder::Progress,
    registry: Option<&crate::oci::registry::Client>,
) -> Result<(), CacheTransferError> {
    for spec in specs {
        if let CacheSpec::ToRegistry { reference, mode } = spec {
            let v = progress.start(format!("exporting cache to {reference}"), None);
            match super::cache_registry::export(store, registry, reference, *mode) {
                Ok(()) => v.done(),
                Err(e) => {
                    v.failed(e.to_string());
                    return Err(e);
                }
            }
        }
        if let CacheSpec::To { dest, mode } = spec {
            let v = progress.start(format!("exporting cache to {}", dest.display()), None);
            let res = StepCache::with_store(store.clone())
                .and_then(|steps| cache::export::ExportSpec::latest(&steps, *mode))
                .and_then(|es| cache::export::export_layout(store, &es, dest));
            match res {
                Ok(_) => v.done(),
                Err(e) => {
                    v.failed(e.to_string());
                    return Err(e.into());
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::export::Mode;

    #[test]
    fn parses_local_specs_and_refuses_the_rest() {
        assert_eq!(
            parse_spec("type=local,dest=/d,mode=max", true).unwrap(),
            CacheSpec::To {
                dest: "/d".into(),
                mode: Mode::Max
            }
        );
        assert_eq!(
            parse_spec("type=local,src=/s", false).unwrap(),
            CacheSpec::From { src: "/s".into() }
        );
        assert_eq!(
            parse_spec("type=registry,ref=x", false).unwrap(),
            CacheSpec::FromRegistry {
                reference: "x".into()
            }
        );
        assert!(matches!(
            parse_spec("type=registry,dest=x", true),
            Err(CacheSpecError::RegistryShape { .. })
        ));
        assert!(matches!(
            parse_spec("type=local,dest=/d", false),
            Err(CacheSpecError::Shape { .. })
        ));
        assert!(matches!(
            parse_spec("type=gha,dest=/d", true),
            Err(CacheSpecError::Type { .. })
        ));
        assert!(parse_spec("type=local,dest=/d,mode=mid", true).is_err());
        assert!(parse_spec("type=local", true).is_err());
    }
}
