//! `kiln build -`: the context comes from standard input, as with docker.
//! A tar (plain, gzip, bzip2 or xz, told apart by content) is the context,
//! unpacked into a temp dir under the store's `tmp/` so the context walker
//! and its stat cache read it as any directory; its Dockerfile is
//! `Dockerfile` in it or `-f PATH` inside it. Anything else is a Dockerfile
//! with an empty context. The temp dir goes when the build ends (a killed
//! build leaves it to `kiln prune`, as every other stale temp file).

use std::path::{Path, PathBuf};

use crate::builder::add::{archive_kind, extract, AddError};
use crate::builder::BuildOptions;
use crate::oci::Store;

/// Why a context from stdin could not be read.
#[derive(Debug, thiserror::Error)]
pub(super) enum StdinContextError {
    /// `-f -` and `-` both want stdin.
    #[error("invalid argument: can't use stdin for both build context and dockerfile")]
    Both,
    /// Staging stdin or the context dir failed.
    #[error("reading the build context from stdin")]
    Read(#[source] std::io::Error),
    /// The tar did not unpack.
    #[error("unpacking the build context from stdin")]
    Unpack(#[source] AddError),
    /// The Dockerfile is not in the tar.
    #[error("reading dockerfile {path} from the build context on stdin")]
    Dockerfile {
        /// The path inside the context.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

impl StdinContextError {
    /// 2 for what the caller got wrong, 3 for I/O.
    pub(super) fn exit_code(&self) -> i32 {
        match self {
            Self::Both | Self::Dockerfile { .. } | Self::Unpack(_) => super::EXIT_USAGE,
            Self::Read(_) => super::EXIT_INTERNAL,
        }
    }
}

/// Whether the context argument is `-`.
pub(super) fn is_stdin(context: &Path) -> bool {
    context.as_os_str() == "-"
}

/// Refuses `-f -` with `-` before anything reads stdin.
pub(super) fn check(context: &Path, file: Option<&Path>) -> Result<(), StdinContextError> {
    match (is_stdin(context), file) {
        (true, Some(f)) if f.as_os_str() == "-" => Err(StdinContextError::Both),
        _ => Ok(()),
    }
}

/// Reads stdin into a context dir under the store's `tmp/` and points
/// `opts` at it; the returned dir must live as long as the build.
pub(super) fn read(
    store: &Store,
    file: Option<&Path>,
    opts: &mut BuildOptions,
) -> Result<tempfile::TempDir, StdinContextError> {
    let tmp = store.tmp_dir();
    let mut staged = tempfile::Builder::new()
        .prefix("stdin-")
        .tempfile_in(&tmp)
        .map_err(StdinContextError::Read)?;
    std::io::copy(&mut std::io::stdin().lock(), staged.as_file_mut())
        .map_err(StdinContextError::Read)?;
    let dir = tempfile::Builder::new()
        .prefix("context-")
        .tempdir_in(&tmp)
        .map_err(StdinContextError::Read)?;
    opts.context = dir.path().to_path_buf();
    match archive_kind(staged.path()).map_err(StdinContextError::Read)? {
        Some(kind) => {
            extract(staged.path(), kind, dir.path()).map_err(StdinContextError::Unpack)?;
            // COMPAT(buildkit): `-f` names a file inside the tar context.
            let rel = file.unwrap_or(Path::new("Dockerfile"));
            let path = dir.path().join(rel.strip_prefix("/").unwrap_or(rel));
            opts.dockerfile =
                std::fs::read(&path).map_err(|source| StdinContextError::Dockerfile {
                    path: rel.to_path_buf(),
                    source,
                })?;
            opts.dockerfile_name = rel.display().to_string();
            opts.dockerfile_path = Some(path);
        }
        None => {
            // COMPAT(buildkit): a Dockerfile on stdin has no context at all
            // (docker sends an empty one), so a COPY from it fails.
            opts.dockerfile = std::fs::read(staged.path()).map_err(StdinContextError::Read)?;
            opts.dockerfile_name = "Dockerfile".into();
            opts.dockerfile_path = None;
        }
    }
    Ok(dir)
}
