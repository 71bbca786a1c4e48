//! `BuildError`: why a build failed, with the Dockerfile span of the failing
//! step or instruction when there is one, and the exit code the CLI uses
//! (1 a step failed, 2 usage or Dockerfile error, 3 internal or I/O).

use std::io;
use std::path::PathBuf;

use crate::dockerfile::ignore::IgnoreError;
use crate::dockerfile::{ParseError, Span};
use crate::oci::StoreError;
use crate::plan::PlanError;

use super::copy::CopyError;
use super::run::RunError;
use super::snapshot::SnapshotError;
use crate::layer::MergedFsError;

/// Why one step failed.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// COPY or ADD (or WORKDIR's mkdir).
    #[error(transparent)]
    Copy(#[from] CopyError),
    /// RUN.
    #[error(transparent)]
    Run(Box<RunError>),
    /// Storing the layer or unpacking a parent's.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// Reading a filesystem the step needs.
    #[error(transparent)]
    MergedFs(#[from] MergedFsError),
    /// A `--from` stage that was not built before this step (a bug in kiln).
    #[error("internal error: stage {stage} was not built before a step that reads it")]
    StageNotBuilt {
        /// The stage index.
        stage: usize,
    },
    /// Computing the step's cache key or using its record.
    #[error("step cache")]
    Cache(#[source] crate::cache::CacheError),
    /// A `--build-context` directory the plan names but the build was not
    /// given (a bug in kiln: the plan only names contexts it was given).
    #[error("internal error: no build context directory {name}")]
    NoContext {
        /// The context's name.
        name: String,
    },
    /// Reading a base image from the store.
    #[error("reading image {reference}")]
    Image {
        /// The image.
        reference: String,
        /// The cause.
        #[source]
        source: StoreError,
    },
}

impl From<RunError> for StepError {
    fn from(e: RunError) -> Self {
        Self::Run(Box::new(e))
    }
}

/// Why a build failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The Dockerfile could not be read.
    #[error("reading dockerfile {path}")]
    ReadDockerfile {
        /// Where it was looked for.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The build context is not a directory.
    #[error("build context {path} is not a directory")]
    ContextDir {
        /// The context path.
        path: PathBuf,
    },
    /// The `.dockerignore` could not be read.
    #[error("reading {path}")]
    ReadIgnore {
        /// The ignore file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The `.dockerignore` has a bad pattern.
    #[error("parsing {path}")]
    ParseIgnore {
        /// The ignore file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: IgnoreError,
    },
    /// The Dockerfile does not parse.
    #[error(transparent)]
    Parse(ParseError),
    /// The `check=` directive or `BUILDKIT_DOCKERFILE_CHECK` does not parse.
    #[error("reading the Dockerfile checks' options")]
    CheckOptions(#[source] crate::lint::LintError),
    /// `check=error=true` and a check fired.
    #[error("{0}")]
    Checks(String),
    /// The Dockerfile does not lower (unknown instruction, bad flag, unknown image…).
    #[error(transparent)]
    Plan(PlanError),
    /// A step failed; `display` is the instruction as progress shows it.
    #[error("{display}")]
    Step {
        /// The instruction's lines.
        span: Span,
        /// e.g. `COPY app /app`.
        display: String,
        /// The cause.
        #[source]
        source: Box<StepError>,
    },
    /// A RUN asks for a privilege `--allow` did not grant.
    // COMPAT(buildkit): "network.host is not allowed", and how to allow it.
    #[error("{entitlement} is not allowed (kiln build --allow {entitlement})")]
    NotEntitled {
        /// The instruction's lines (the excerpt shows them).
        span: Span,
        /// BuildKit's name of the entitlement (`network.host`).
        entitlement: &'static str,
    },
    /// Writing the image to the store.
    #[error("writing the image to the store")]
    Store(#[source] StoreError),
    /// A reached stage whose base image lowering left unresolved (a bug in kiln).
    #[error("internal error: stage {stage} reached with unresolved base image {reference}")]
    Unresolved {
        /// The stage index.
        stage: usize,
        /// The image reference.
        reference: String,
    },
    /// A stage thread panicked (a bug in kiln).
    #[error("internal error: stage {stage} panicked")]
    Panicked {
        /// The stage index.
        stage: usize,
    },
    /// Opening or saving the step cache.
    #[error("step cache")]
    Cache(#[source] crate::cache::CacheError),
    /// `--sbom`: unpacking (or fetching) the image's layers to scan them.
    #[error("generating the SBOM: preparing the image's layers")]
    SbomLayers(#[source] SnapshotError),
    /// `--sbom`: the scan could not start.
    #[error("generating the SBOM")]
    Sbom(#[source] crate::sbom::SbomError),
    /// `--sbom` with a BuildKit scan option kiln does not implement.
    #[error("{arg} is not supported by kiln: its SBOM covers the image's filesystem only, not {what}; set {arg}=false or drop it")]
    SbomScanArg {
        /// The build arg.
        arg: &'static str,
        /// What it would add to the scan.
        what: &'static str,
    },
    /// A dependency failed, so this stage was not built (never the error a
    /// build returns: the dependency's error is).
    #[error("cancelled because another stage failed")]
    Cancelled,
}

impl BuildError {
    /// The Dockerfile lines the error is about.
    pub fn span(&self) -> Option<Span> {
        match self {
            Self::Parse(e) => Some(e.span()),
            Self::Plan(e) => e.span(),
            Self::Step { span, .. } | Self::NotEntitled { span, .. } => Some(*span),
            _ => None,
        }
    }

    /// The last output lines of a RUN that failed, when that is the error.
    pub fn output_tail(&self) -> &[String] {
        match self {
            Self::Step { source, .. } => match &**source {
                StepError::Run(r) => match &**r {
                    RunError::Failed { tail, .. } => tail,
                    _ => &[],
                },
                _ => &[],
            },
            _ => &[],
        }
    }

    /// The process exit code for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            // A RUN the chroot isolation cannot honour is a usage error, as a refused flag.
            Self::Step { source, .. }
                if matches!(&**source, StepError::Run(r)
                    if matches!(**r, RunError::ChrootRefuses { .. })) =>
            {
                2
            }
            Self::Step { .. } => 1,
            // A base that could not be fetched is not a bad Dockerfile: an
            // unreachable registry or a failed read is an I/O error.
            Self::Plan(crate::plan::PlanError::Resolve { source, .. })
                if caused_by_io(&**source) =>
            {
                3
            }
            Self::ReadDockerfile { .. }
            | Self::ContextDir { .. }
            | Self::ReadIgnore { .. }
            | Self::ParseIgnore { .. }
            | Self::Parse(_)
            | Self::CheckOptions(_)
            | Self::Checks(_)
            | Self::Plan(_)
            | Self::NotEntitled { .. }
            | Self::SbomScanArg { .. } => 2,
            Self::Store(_)
            | Self::Cache(_)
            | Self::Panicked { .. }
            | Self::Unresolved { .. }
            | Self::SbomLayers(_)
            | Self::Sbom(_)
            | Self::Cancelled => 3,
        }
    }
}

/// True when an I/O error (a refused connection, a failed read) is somewhere
/// in `e`'s chain.
fn caused_by_io(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(e) = cur {
        if e.is::<std::io::Error>() {
            return true;
        }
        cur = e.source();
    }
    false
}
