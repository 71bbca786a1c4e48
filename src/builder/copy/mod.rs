//! COPY and ADD with BuildKit's semantics, staged into a plain directory that
//! becomes the layer: sources selected from the context or another
//! filesystem, a directory source copies its contents, several sources need
//! a directory destination, a destination that is a directory in the target
//! (or ends in `/`) receives sources by name, parents are created, and
//! `--chown`/`--chmod`/`--exclude`/`--parents`/`--link` applied.
//!
//! Invariants: the destination is resolved through the target's symlinks
//! (staging `bin/x` where the image has `bin -> usr/bin` would shadow the
//! link), but a directory *below* it is not: a source directory that meets
//! a non-directory of the target (a symlink included) fails the step, as
//! BuildKit's copier does, rather than replace it; parent directories that exist in the target are staged with the
//! target's own mode, owner and mtime, so the layer never changes them.

use std::io;
use std::path::{Path, PathBuf};

use crate::dockerfile::pattern;
use crate::plan::{Chmod, Chown, CopyOp, CopySource};

use super::add::{self, AddError};
use super::perms::{resolve_owner, PermsError};
use super::source::{Selected, Source, SourceError};
use crate::layer::{MergedFs, MergedFsError};
use write::Stager;

/// Why a COPY or ADD failed.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// A literal source that does not exist (or is ignored).
    #[error("{source_path:?}: not found")]
    NotFound {
        /// The source as written.
        source_path: String,
    },
    /// A destination below something that is not a directory in the target.
    #[error("cannot copy to a path below {path}: it is not a directory")]
    NotADirectory {
        /// The non-directory in the target.
        path: String,
    },
    /// A directory copied onto a path the target has as a non-directory.
    #[error("cannot copy to non-directory: {path} is a {kind} in the image")]
    DirOntoNonDir {
        /// The target's path.
        path: String,
        /// What it is there ("symlink", "file", "special file").
        kind: &'static str,
    },
    /// Several sources and a destination without a trailing `/`.
    #[error("when using COPY with more than one source file, the destination must be a directory and end with a /")]
    DestNotDir,
    /// Selecting sources.
    #[error("selecting sources")]
    Source(#[from] SourceError),
    /// Reading the target's filesystem.
    #[error("reading the target filesystem")]
    Target(#[from] MergedFsError),
    /// `--chown`/`--chmod`.
    #[error("applying permissions")]
    Perms(#[from] PermsError),
    /// ADD's archive or URL handling.
    #[error("adding {source_path}")]
    Add {
        /// The source.
        source_path: String,
        /// The cause.
        #[source]
        source: AddError,
    },
    /// `--checksum` on a source that is not a URL.
    #[error("--checksum can only be used with a single http(s) source")]
    ChecksumNotUrl,
    /// `--chown` (or a copied file's owner) names an id kiln's single-ID user
    /// namespace does not have.
    #[error(
        "changing owner of {path} to {uid}:{gid}: {}",
        crate::exec::userns::ADD_RANGES_HINT
    )]
    UnmappedOwner {
        /// The staged path.
        path: PathBuf,
        /// The uid.
        uid: u32,
        /// The gid.
        gid: u32,
    },
    /// Writing into the staging dir.
    #[error("{step} {path}")]
    Write {
        /// What was being done.
        step: &'static str,
        /// The staged path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

pub(super) fn werr<'a>(
    step: &'static str,
    path: &'a Path,
) -> impl FnOnce(io::Error) -> CopyError + 'a {
    move |source| CopyError::Write {
        step,
        path: path.into(),
        source,
    }
}

/// Stages `op` into `staging`: `src` is where sources are read, `target` the
/// stage's filesystem before this step.
pub fn stage_copy(
    op: &CopyOp,
    src: &Source,
    target: &MergedFs,
    staging: &Path,
) -> Result<(), CopyError> {
    let owner = match &op.chown {
        Some(c) => Some(resolve_chown(c, target)?),
        None => None,
    };
    // COMPAT(buildkit): --link copies onto an empty tree: no target symlinks
    // or directories are consulted.
    let empty = MergedFs::default();
    let view = if op.link { &empty } else { target };
    let mut st = Stager {
        src,
        staging,
        view,
        owner,
        chmod: op.chmod.as_ref(),
        dir_mode: created_dir_mode(op.chmod.as_ref()),
        keep_owner: src.keeps_owner(),
        excludes: op.excludes.matcher(),
        dir_times: Vec::new(),
        links: Default::default(),
    };
    let n_written = op.sources.len() + op.heredocs.len();
    let slash = op.dest.ends_with('/') || op.dest_is_dir_hint;
    if n_written > 1 && !slash {
        return Err(CopyError::DestNotDir);
    }
    let checksum = op.add.as_ref().and_then(|a| a.checksum.as_ref());
    let (selected, urls) = select_sources(op, src)?;
    if checksum.is_some() && (urls.len() != 1 || !selected.is_empty()) {
        return Err(CopyError::ChecksumNotUrl);
    }
    let dest_dir = slash
        || selected.len() + urls.len() + op.heredocs.len() > 1
        || view
            .resolve(&op.dest, true)?
            .is_some_and(|n| n.meta.is_dir());
    let dest = op.dest.trim_end_matches('/');
    let dest = if dest.is_empty() { "/" } else { dest };
    for (s, sel) in &selected {
        st.copy_source(op, s, sel, dest, dest_dir)?;
    }
    for url in &urls {
        let to = if dest_dir {
            join(dest, &add::url_file_name(url))
        } else {
            dest.to_string()
        };
        st.fetch(url, checksum, &to)?;
    }
    for h in &op.heredocs {
        let to = if dest_dir {
            join(dest, &h.name)
        } else {
            dest.to_string()
        };
        st.write_inline(&to, h.content.as_bytes(), h.mode)?;
    }
    st.finish()
}

/// The nodes each path source selects (with the source as written), and ADD's URLs.
#[allow(clippy::type_complexity)]
fn select_sources<'o>(
    op: &'o CopyOp,
    src: &Source,
) -> Result<(Vec<(&'o str, Selected)>, Vec<&'o str>), CopyError> {
    let mut selected = Vec::new();
    let mut urls = Vec::new();
    for s in &op.sources {
        let path = match s {
            CopySource::Url(url) => {
                urls.push(url.as_str());
                continue;
            }
            CopySource::Path(p) => p.as_str(),
        };
        let nodes = src.select(path)?;
        if nodes.is_empty() && !pattern::has_meta(path) {
            return Err(CopyError::NotFound {
                source_path: path.to_string(),
            });
        }
        selected.extend(nodes.into_iter().map(|n| (path, n)));
    }
    Ok((selected, urls))
}

/// WORKDIR: creates `path` (and its parents) in `staging` unless the target
/// already has it as a directory; new directories belong to `user`.
pub fn stage_mkdir(
    path: &str,
    user: &str,
    target: &MergedFs,
    staging: &Path,
) -> Result<(), CopyError> {
    if target.resolve(path, true)?.is_some_and(|n| n.meta.is_dir()) {
        return Ok(());
    }
    let owner = match user {
        "" => None,
        u => Some(resolve_chown(&Chown::parse(u), target)?),
    };
    let mut st = Stager {
        src: &Source::image(MergedFs::default()),
        staging,
        view: target,
        owner,
        chmod: None,
        dir_mode: created_dir_mode(None),
        keep_owner: false,
        excludes: None,
        dir_times: Vec::new(),
        links: Default::default(),
    };
    st.ensure_dir(path)?;
    st.finish()
}

/// The mode of a directory COPY creates: the parents of its destination and
/// the top of a directory source (its contents keep theirs, `--chmod` applied).
// COMPAT(buildkit): fsutil's `MkdirAll(dest, mode)` takes an octal --chmod as
// the directories' mode, set-id and sticky bits dropped (Go's os.Mkdir reads
// only the permission bits of a raw number), and 0755 for a symbolic one.
fn created_dir_mode(chmod: Option<&Chmod>) -> u32 {
    chmod.and_then(Chmod::octal).map_or(0o755, |m| m & 0o777)
}

/// Whether staging `op` reads the filesystem it copies onto: always but
/// for `--link`, which reads it only to look up a `--chown` name (so a
/// `COPY --link` on a lazily resolved base downloads none of its layers).
pub(super) fn reads_target(op: &CopyOp) -> bool {
    !op.link || op.chown.as_ref().is_some_and(Chown::needs_lookup)
}

pub(super) fn resolve_chown(chown: &Chown, target: &MergedFs) -> Result<(u32, u32), CopyError> {
    if !chown.needs_lookup() {
        return Ok(resolve_owner(chown, "", "")?);
    }
    let read = |p: &str| -> Result<String, CopyError> {
        Ok(target
            .read_file(p)?
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default())
    };
    Ok(resolve_owner(
        chown,
        &read("/etc/passwd")?,
        &read("/etc/group")?,
    )?)
}

pub(super) fn join(dir: &str, name: &str) -> String {
    format!("{}/{name}", dir.trim_end_matches('/'))
}

mod write;

#[cfg(test)]
mod tests;
