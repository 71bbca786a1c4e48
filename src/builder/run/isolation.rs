//! `--isolation`: which isolation a build's RUN steps get. `sandbox` is kiln's
//! namespace sandbox; `chroot` a chroot of a copied-up root with no further
//! isolation (for containers that may not make namespaces: see `chroot.rs`);
//! `auto` (the default) probes once per process whether the sandbox can start here
//! and falls back to chroot when it cannot, saying so once per build in the progress.
//!
//! Invariant: the choice is never silent: an `auto` build that runs in a chroot has
//! warned about it before the first such step runs, and when neither works the
//! error names what the sandbox was refused and which capabilities the chroot lacks.

use std::sync::{Arc, OnceLock};

use crate::exec::{self, ExecError};
use crate::oci::Store;

use super::RunError;
use crate::builder::event::Vertex;
use crate::builder::snapshot::{remove_tree, staging_dir};

/// What `--isolation` (or `KILN_ISOLATION`) asks for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Isolation {
    /// The strongest that works here: the sandbox, else chroot (announced).
    #[default]
    Auto,
    /// The namespace sandbox; an error where it cannot start.
    Sandbox,
    /// A chroot of the step's root, no namespaces.
    Chroot,
}

impl Isolation {
    /// Every value with its name; `default` (docker's word) is `auto`.
    pub const NAMES: [(&'static str, Isolation); 4] = [
        ("auto", Self::Auto),
        ("default", Self::Auto),
        ("sandbox", Self::Sandbox),
        ("chroot", Self::Chroot),
    ];

    /// The isolation called `name`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::NAMES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, i)| *i)
    }
}

/// What a RUN actually gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Chosen {
    Sandbox,
    Chroot,
}

/// The probe's outcome, once per process (the environment does not change under it).
static PROBE: OnceLock<Result<(), Arc<ExecError>>> = OnceLock::new();

/// Chooses the isolation of a RUN about to run under `vertex`.
pub(super) fn choose(
    requested: Isolation,
    store: &Store,
    exe: &std::path::Path,
    vertex: &Vertex,
) -> Result<Chosen, RunError> {
    match requested {
        Isolation::Sandbox => Ok(Chosen::Sandbox),
        Isolation::Chroot => {
            let missing = exec::chroot_missing_capabilities();
            if missing.is_empty() {
                Ok(Chosen::Chroot)
            } else {
                Err(ExecError::MissingCapabilities { missing }.into())
            }
        }
        Isolation::Auto => {
            let Err(refused) = probe(store, exe)? else {
                return Ok(Chosen::Sandbox);
            };
            let missing = exec::chroot_missing_capabilities();
            if !missing.is_empty() {
                return Err(RunError::NoIsolation { refused, missing });
            }
            vertex.warn_once("isolation-chroot", || {
                format!(
                    "RUN steps run with --isolation=chroot: kiln's namespace sandbox cannot start here ({}); \
                     a RUN shares this container's processes, network and devices \
                     (--isolation=chroot chooses it without probing; --isolation=sandbox makes this an error)",
                    chain(&*refused)
                )
            });
            Ok(Chosen::Chroot)
        }
    }
}

/// The cached probe: `Ok(Err(why))` when the sandbox cannot start. A failure to make
/// the probe's scratch dir is the caller's error and is not cached.
fn probe(store: &Store, exe: &std::path::Path) -> Result<Result<(), Arc<ExecError>>, RunError> {
    if let Some(r) = PROBE.get() {
        return Ok(r.clone());
    }
    let started = std::time::Instant::now();
    let scratch = staging_dir(store, "probe-")?;
    let outcome = exec::probe_sandbox(exe, &scratch).map_err(Arc::new);
    let _ = remove_tree(&scratch);
    tracing::debug!(elapsed = ?started.elapsed(), works = outcome.is_ok(), "probed the namespace sandbox");
    if let Err(e) = &outcome {
        tracing::debug!(error = %chain(&**e), "the namespace sandbox cannot start here");
    }
    Ok(PROBE.get_or_init(|| outcome).clone())
}

/// `e: cause: cause` on one line, for the announcement.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cur = c.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_default_is_auto() {
        assert_eq!(Isolation::parse("default"), Some(Isolation::Auto));
        assert_eq!(Isolation::parse("chroot"), Some(Isolation::Chroot));
        assert_eq!(Isolation::parse("sandbox"), Some(Isolation::Sandbox));
        assert_eq!(Isolation::parse("hyperv"), None);
        assert_eq!(Isolation::default(), Isolation::Auto);
    }
}
