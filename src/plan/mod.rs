//! AST + build args + target + resolved base images → [`BuildGraph`].
//!
//! `lower` is BuildKit's `dockerfile2llb` without the LLB: it splits the
//! Dockerfile into stages, scopes ARG and ENV, expands variables exactly where
//! BuildKit does (ADD, COPY, ENV, EXPOSE, FROM, LABEL, STOPSIGNAL, USER,
//! VOLUME, WORKDIR and their flags; never RUN/CMD/ENTRYPOINT/SHELL), marks the
//! stages the target reaches and resolves base images only for those, and
//! accumulates the image config each stage ends with. Output is plain data:
//! no I/O happens here except through the caller's [`ImageResolver`].
//!
//! Invariants of the graph: a stage only depends on stages with a smaller
//! id; every destination, mount target and working directory in an op is
//! absolute; the steps of a reached stage are in instruction order (its base's
//! ONBUILD triggers first); a stage the target does not reach has no steps
//! and, when its base is an image, a `Base::Unresolved` base.
//!
//! Compatibility choices (see `COMPAT(buildkit)` in the code): `--from` is
//! matched before expansion; a stage built on a stage inherits its ARG values;
//! ENTRYPOINT clears only a CMD inherited from the base; ARG values are in
//! RUN's env; undeclared proxy build args travel in `RunOp::proxy_env`; a
//! named context (`PlanOptions::contexts`) replaces the stage of its name,
//! and is found after stages and before images (`contexts`).

mod args;
mod chmod;
mod chown;
mod contexts;
mod copy;
mod csv;
mod error;
mod expand;
mod flags;
mod gofmt;
mod graph;
mod health;
mod heredoc;
mod lower;
mod meta;
mod mount;
mod path;
mod run;
mod stages;
mod state;

pub use chmod::{Chmod, ChmodError, ChmodMode, Class, Classes, ModeCmd};
pub use chown::{Chown, IdOrName};
pub use contexts::context_key;
pub use copy::is_git;
pub use error::{Cause, PlanError};
pub use graph::{
    AddOptions, ArgDecl, Base, BuildGraph, ContextKind, CopyOp, CopySource, Excludes, FilesFrom,
    ImageResolver, InlineFile, NetworkMode, Op, PlanOptions, ResolvedImage, RunMount, RunOp,
    Security, Sharing, Stage, StageId, Step, UndefinedVar, WorkdirOp,
};

use crate::dockerfile::Dockerfile;

/// Lowers a parsed Dockerfile into a build graph for `opts.target`.
///
/// Base images are resolved through `resolver` only for stages the target
/// reaches; errors in stages it does not reach (other than syntax: unknown
/// instructions, malformed FROM lines) do not fail the build.
pub fn lower(
    df: &Dockerfile,
    opts: &PlanOptions,
    resolver: &dyn ImageResolver,
) -> Result<BuildGraph, PlanError> {
    lower::lower(df, opts, resolver)
}
