//! An image's root filesystem read in Rust through its stack of unpacked
//! layer dirs (snapshots), merged the way overlayfs merges them: upper
//! wins, a 0:0 char device is a whiteout, a directory with the
//! `trusted.overlay.opaque=y` (or `user.`) xattr hides everything below it,
//! and a non-directory hides whatever lower layers have at or under its
//! path. The builder reads stages, images and the build context through it;
//! the SBOM scanner reads the image it scans.
//!
//! Snapshots carry only those overlay forms ([`super::unpack`] turns a
//! tar's `.wh.` names into them), and a `.wh.` name in a snapshot or a
//! build context is an ordinary file. A view made
//! [`with_tar_whiteouts`](MergedFs::with_tar_whiteouts) also reads the tar
//! forms, for a dir a layer tar was extracted into as it is: a `.wh.<name>`
//! entry deletes `<name>`, a `.wh..wh..opq` entry makes its dir opaque.
//!
//! Invariants: nothing here writes; every path is resolved inside the root
//! (symlinks are followed as the image would see them: `/` is the image
//! root and `..` stops there), so no lookup reaches a host path outside the
//! layer dirs; reads that name a limit never hold more than the limit.

use std::collections::BTreeMap;
use std::fs::Metadata;
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// How many symlinks one lookup follows before it gives up (Linux's limit).
const MAX_SYMLINK_HOPS: usize = 40;

/// A layer tar's opaque marker, read only with tar whiteouts on.
const OPAQUE_MARKER: &str = ".wh..wh..opq";
/// A layer tar's whiteout prefix, read only with tar whiteouts on.
const WHITEOUT_PREFIX: &str = ".wh.";

/// Why reading an image's filesystem failed.
#[derive(Debug, thiserror::Error)]
pub enum MergedFsError {
    /// A filesystem call on a layer dir failed.
    #[error("reading {path} in the image filesystem")]
    Read {
        /// The host path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A symlink loop, or a chain longer than 40 links.
    #[error("too many levels of symbolic links resolving {path}")]
    SymlinkLoop {
        /// The image path being resolved.
        path: String,
    },
    /// A file is larger than the caller reads whole.
    #[error("{path} is larger than {limit} bytes")]
    TooLarge {
        /// The image path.
        path: String,
        /// The limit it broke.
        limit: u64,
    },
}

/// One visible entry, resolved: where its bytes are and what it is.
#[derive(Debug, Clone)]
pub struct Node {
    /// The canonical absolute path inside the image (`/` for the root).
    pub path: String,
    /// The host path in the layer dir that provides it.
    pub host: PathBuf,
    /// `lstat` of `host`.
    pub meta: Metadata,
}

/// One visible entry of a directory listing.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Its name in its directory.
    pub name: String,
    /// The host path (in the top-most layer that has it) that provides it:
    /// what [`MergedFs::resolve`] of the entry's path without following it
    /// gives, so a caller listing a tree needs no lookup per entry.
    pub host: PathBuf,
    /// `lstat` of `host`.
    pub meta: Metadata,
}

/// A read-only merged view over layer dirs (kept top-most first).
#[derive(Debug, Clone, Default)]
pub struct MergedFs {
    layers: Vec<PathBuf>,
    tar_whiteouts: bool,
}

fn is_whiteout_device(m: &Metadata) -> bool {
    m.file_type().is_char_device() && m.rdev() == 0
}

fn lstat(p: &Path) -> Result<Option<Metadata>, MergedFsError> {
    match std::fs::symlink_metadata(p) {
        Ok(m) => Ok(Some(m)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        // ENOTDIR: a parent is a file in this layer; the caller checks parents first.
        Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => Ok(None),
        Err(source) => Err(MergedFsError::Read {
            path: p.into(),
            source,
        }),
    }
}

fn read_error(path: &Path) -> impl Fn(io::Error) -> MergedFsError + '_ {
    move |source| MergedFsError::Read {
        path: path.into(),
        source,
    }
}

fn join(comps: &[String]) -> String {
    format!("/{}", comps.join("/"))
}

impl MergedFs {
    /// A view over `layers`, top-most first. An empty list is `scratch`.
    pub fn new(layers_top_first: Vec<PathBuf>) -> Self {
        Self {
            layers: layers_top_first,
            tar_whiteouts: false,
        }
    }

    /// The same view, also reading a layer tar's whiteouts as they are
    /// extracted: `.wh.<name>` deletes `<name>` from this layer and the
    /// ones below, `.wh..wh..opq` makes its dir opaque, and neither is
    /// listed.
    pub fn with_tar_whiteouts(self) -> Self {
        Self {
            tar_whiteouts: true,
            ..self
        }
    }

    /// The layer dirs, top-most first.
    pub fn layers(&self) -> &[PathBuf] {
        &self.layers
    }

    /// Whether `name` in host dir `dir` (lstat `meta`) is deleted by this layer.
    fn whited_out(
        &self,
        dir: &Path,
        name: &str,
        meta: Option<&Metadata>,
    ) -> Result<bool, MergedFsError> {
        if meta.is_some_and(is_whiteout_device) {
            return Ok(true);
        }
        Ok(self.tar_whiteouts && lstat(&dir.join(format!("{WHITEOUT_PREFIX}{name}")))?.is_some())
    }

    fn is_opaque(&self, dir: &Path) -> Result<bool, MergedFsError> {
        let xattr = ["trusted.overlay.opaque", "user.overlay.opaque"]
            .iter()
            .any(|k| matches!(xattr::get(dir, k), Ok(Some(v)) if v == b"y"));
        Ok(xattr || (self.tar_whiteouts && lstat(&dir.join(OPAQUE_MARKER))?.is_some()))
    }

    /// Every layer entry that contributes to `comps` (no symlinks followed),
    /// top-most first: one entry for a non-directory, several for a merged dir.
    fn stack(&self, comps: &[String]) -> Result<Vec<(PathBuf, Metadata)>, MergedFsError> {
        let mut out: Vec<(PathBuf, Metadata)> = Vec::new();
        for layer in &self.layers {
            let mut p = layer.clone();
            let mut present = true;
            let mut opaque_parent = false;
            for (i, c) in comps.iter().enumerate() {
                let m = lstat(&p.join(c))?;
                if self.whited_out(&p, c, m.as_ref())? {
                    return Ok(out);
                }
                p.push(c);
                let last = i + 1 == comps.len();
                match m {
                    None => {
                        present = false;
                        break;
                    }
                    // A file in this layer above a path's parent hides it.
                    Some(m) if !last && !m.is_dir() => return Ok(out),
                    Some(_) if !last => opaque_parent |= self.is_opaque(&p)?,
                    Some(_) => {}
                }
            }
            if present {
                // The root (no components) of a layer is its dir itself.
                if let Some(m) = lstat(&p)? {
                    if !out.is_empty() && !m.is_dir() {
                        return Ok(out);
                    }
                    let stop = !m.is_dir() || self.is_opaque(&p)?;
                    out.push((p, m));
                    if stop {
                        return Ok(out);
                    }
                }
            }
            if opaque_parent {
                return Ok(out);
            }
        }
        Ok(out)
    }

    fn node(&self, comps: &[String]) -> Result<Option<Node>, MergedFsError> {
        Ok(self
            .stack(comps)?
            .into_iter()
            .next()
            .map(|(host, meta)| Node {
                path: join(comps),
                host,
                meta,
            }))
    }

    /// Resolves `path` (absolute or relative to `/`), following symlinks in
    /// its parents, and in its last component when `follow_last`; `None`
    /// when something on the way is absent.
    pub fn resolve(&self, path: &str, follow_last: bool) -> Result<Option<Node>, MergedFsError> {
        let mut todo: Vec<String> = path.split('/').rev().map(str::to_string).collect();
        let mut cur: Vec<String> = Vec::new();
        let mut hops = 0;
        while let Some(c) = todo.pop() {
            match c.as_str() {
                "" | "." => continue,
                ".." => {
                    cur.pop();
                    continue;
                }
                _ => cur.push(c),
            }
            let last = todo.iter().all(|c| c.is_empty() || c == ".");
            let Some(node) = self.node(&cur)? else {
                return Ok(None);
            };
            if node.meta.file_type().is_symlink() && (!last || follow_last) {
                hops += 1;
                if hops > MAX_SYMLINK_HOPS {
                    return Err(MergedFsError::SymlinkLoop { path: path.into() });
                }
                let target = std::fs::read_link(&node.host).map_err(read_error(&node.host))?;
                let target = target.to_string_lossy().into_owned();
                cur.pop();
                if target.starts_with('/') {
                    cur.clear();
                }
                todo.extend(target.split('/').rev().map(str::to_string));
            }
        }
        self.node(&cur)
    }

    /// The visible entries of directory `dir` (a canonical path, as in a
    /// [`Node`]; not a symlink), sorted by name; empty when it is absent or
    /// not a directory. Names that are not UTF-8 are left out: no image
    /// path can name them.
    pub fn children(&self, dir: &str) -> Result<Vec<Entry>, MergedFsError> {
        let comps: Vec<String> = dir
            .split('/')
            .filter(|c| !c.is_empty())
            .map(str::to_string)
            .collect();
        let mut seen: BTreeMap<String, Option<Entry>> = BTreeMap::new();
        for (host, meta) in self.stack(&comps)? {
            if !meta.is_dir() {
                break;
            }
            let mut names: Vec<String> = Vec::new();
            for entry in std::fs::read_dir(&host).map_err(read_error(&host))? {
                let entry = entry.map_err(read_error(&host))?;
                if let Ok(n) = entry.file_name().into_string() {
                    names.push(n);
                }
            }
            for name in names {
                let tar_form = name.strip_prefix(WHITEOUT_PREFIX);
                if let Some(hidden) = tar_form.filter(|_| self.tar_whiteouts) {
                    if name != OPAQUE_MARKER {
                        seen.entry(hidden.to_string()).or_insert(None);
                    }
                    continue;
                }
                if seen.contains_key(&name) {
                    continue;
                }
                let child = host.join(&name);
                let visible = match lstat(&child)? {
                    Some(meta) if !is_whiteout_device(&meta) => Some(Entry {
                        name: name.clone(),
                        host: child,
                        meta,
                    }),
                    _ => None,
                };
                seen.insert(name, visible);
            }
        }
        Ok(seen.into_values().flatten().collect())
    }

    /// The content of regular file `path` (symlinks followed), `None` when
    /// absent or not a regular file.
    pub fn read_file(&self, path: &str) -> Result<Option<Vec<u8>>, MergedFsError> {
        match self.resolve(path, true)? {
            Some(n) if n.meta.is_file() => std::fs::read(&n.host)
                .map(Some)
                .map_err(read_error(&n.host)),
            _ => Ok(None),
        }
    }

    /// The first `limit` bytes of regular file `path` (symlinks followed),
    /// `None` when absent or not a regular file, and whether the file went
    /// on past `limit`.
    pub fn read_prefix(
        &self,
        path: &str,
        limit: u64,
    ) -> Result<Option<(Vec<u8>, bool)>, MergedFsError> {
        let Some(n) = self.resolve(path, true)? else {
            return Ok(None);
        };
        if !n.meta.is_file() {
            return Ok(None);
        }
        let f = std::fs::File::open(&n.host).map_err(read_error(&n.host))?;
        let mut buf = Vec::new();
        f.take(limit.saturating_add(1))
            .read_to_end(&mut buf)
            .map_err(read_error(&n.host))?;
        let more = buf.len() as u64 > limit;
        buf.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        Ok(Some((buf, more)))
    }

    /// The whole of regular file `path`, refused past `limit` bytes.
    pub fn read_whole(&self, path: &str, limit: u64) -> Result<Option<Vec<u8>>, MergedFsError> {
        match self.read_prefix(path, limit)? {
            Some((_, true)) => Err(MergedFsError::TooLarge {
                path: path.into(),
                limit,
            }),
            Some((b, false)) => Ok(Some(b)),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests;
