//! `--cache-from` and `--cache-to`: parsing their values, importing every
//! `--cache-from` before a build and exporting the latest build's step cache
//! to every `--cache-to` after it, each as its own progress vertex.
//! `type=local` is an OCI layout directory (`cache::export`), `type=registry`
//! the same artifact in a registry (`cache_registry`).

use std::path::PathBuf;

pub use super::cache_registry::CacheTransferError;
use super::Progress;
use crate::cache::{self, StepCache};
use crate::oci::registry::Client;
use crate::oci::Store;

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
pub(super) fn import_specs(
    store: &Store,
    specs: &[CacheSpec],
    progress: &Progress,
    registry: Option<&Client>,
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

/// Exports the latest build's cache to every `--cache-to` layout or
/// registry ref, each as a progress vertex started before the work.
pub(super) fn export_specs(
    store: &Store,
    specs: &[CacheSpec],
    progress: &Progress,
    registry: Option<&Client>,
    builds: usize,
) -> Result<(), CacheTransferError> {
    for spec in specs {
        type Export<'a> = Box<dyn FnOnce() -> Result<(), CacheTransferError> + 'a>;
        let (what, export): (String, Export) = match spec {
            CacheSpec::ToRegistry { reference, mode } => (
                reference.clone(),
                Box::new(|| {
                    super::cache_registry::export(store, registry, reference, *mode, builds)
                }),
            ),
            CacheSpec::To { dest, mode } => (
                dest.display().to_string(),
                Box::new(|| {
                    let steps = StepCache::with_store(store.clone())?;
                    let es = cache::export::ExportSpec::latest_builds(&steps, *mode, builds)?;
                    cache::export::export_layout(store, &es, dest)?;
                    Ok(())
                }),
            ),
            _ => continue,
        };
        let v = progress.start(format!("exporting cache to {what}"), None);
        if let Err(e) = export() {
            v.failed(e.to_string());
            return Err(e);
        }
        v.done();
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
