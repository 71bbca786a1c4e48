//! A build context read from a stream (`kiln build -` reads it from stdin,
//! as docker does). A tar (plain, gzip, bzip2 or xz, told apart by content)
//! is the context, unpacked into a temp dir under the store's `tmp/` so the
//! context walker and its stat cache read it as any directory; its
//! Dockerfile is `Dockerfile` in it or `file` inside it. Anything else is a
//! Dockerfile with an empty context. The temp dir goes when the returned
//! [`StreamedContext`] is dropped (a killed build leaves it to `kiln
//! prune`, as every other stale temp file).

use std::io::Read;
use std::path::{Path, PathBuf};

use super::add::{archive_kind, extract, AddError};
use super::BuildOptions;
use crate::oci::Store;

/// Why a streamed context could not be read.
#[derive(Debug, thiserror::Error)]
pub enum StreamedContextError {
    /// Staging the stream or the context dir failed.
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

impl StreamedContextError {
    /// 2 for what the caller got wrong, 3 for I/O.
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::Dockerfile { .. } | Self::Unpack(_) => 2,
            Self::Read(_) => 3,
        }
    }
}

/// The unpacked context dir; it must live as long as the build.
#[derive(Debug)]
pub struct StreamedContext {
    _dir: tempfile::TempDir,
}

/// Reads `input` into a context dir under the store's `tmp/` and points
/// `opts` (context and Dockerfile) at it; `file` is `-f`, a path inside a
/// tar context.
pub fn read_streamed_context(
    store: &Store,
    input: &mut dyn Read,
    file: Option<&Path>,
    opts: &mut BuildOptions,
) -> Result<StreamedContext, StreamedContextError> {
    let tmp = store.tmp_dir();
    let mut staged = tempfile::Builder::new()
        .prefix("stdin-")
        .tempfile_in(&tmp)
        .map_err(StreamedContextError::Read)?;
    std::io::copy(input, staged.as_file_mut()).map_err(StreamedContextError::Read)?;
    let dir = tempfile::Builder::new()
        .prefix("context-")
        .tempdir_in(&tmp)
        .map_err(StreamedContextError::Read)?;
    opts.context = dir.path().to_path_buf();
    match archive_kind(staged.path()).map_err(StreamedContextError::Read)? {
        Some(kind) => {
            // A context tar unpacks into an empty directory: nothing beneath it.
            extract(staged.path(), kind, dir.path(), None).map_err(StreamedContextError::Unpack)?;
            // COMPAT(buildkit): `-f` names a file inside the tar context.
            let rel = file.unwrap_or(Path::new("Dockerfile"));
            let path = dir.path().join(rel.strip_prefix("/").unwrap_or(rel));
            opts.dockerfile =
                std::fs::read(&path).map_err(|source| StreamedContextError::Dockerfile {
                    path: rel.to_path_buf(),
                    source,
                })?;
            opts.dockerfile_name = rel.display().to_string();
            opts.dockerfile_path = Some(path);
        }
        None => {
            // COMPAT(buildkit): a Dockerfile on stdin has no context at all
            // (docker sends an empty one), so a COPY from it fails.
            opts.dockerfile = std::fs::read(staged.path()).map_err(StreamedContextError::Read)?;
            opts.dockerfile_name = "Dockerfile".into();
            opts.dockerfile_path = None;
        }
    }
    Ok(StreamedContext { _dir: dir })
}
