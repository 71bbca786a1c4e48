//! The image filesystem the scanners read: a stack of layer dirs merged the
//! way overlayfs merges kiln's snapshots, or one plain root dir.
//!
//! Rules (upper wins): a 0:0 char device or a `.wh.<name>` file deletes
//! `<name>` from the layers below; a directory with the
//! `trusted.overlay.opaque=y` (or `user.`) xattr or a `.wh..wh..opq` entry
//! hides everything below it; a non-directory hides whatever lower layers
//! have at or under its path. Snapshots carry the overlay forms
//! (`layer::unpack`); the `.wh.` names are read too so an extracted layer
//! tar can be scanned as well.
//!
//! Invariant: every path is resolved inside the root. Symlinks are followed
//! as the image would see them (`/` is the image root, `..` stops there),
//! so no lookup reaches a host path outside the layer dirs. Nothing writes.

use std::collections::BTreeMap;
use std::fs::Metadata;
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// How many symlinks one lookup follows before it gives up (Linux's limit).
const MAX_SYMLINK_HOPS: usize = 40;

const OPAQUE_MARKER: &str = ".wh..wh..opq";
const WHITEOUT_PREFIX: &str = ".wh.";

/// Why a lookup in the image filesystem failed.
#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    /// A filesystem call on a layer dir failed.
    #[error("reading {path}")]
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
    /// The file is larger than the scanner reads.
    #[error("{path} is larger than {limit} bytes")]
    TooLarge {
        /// The image path.
        path: String,
        /// The limit it broke.
        limit: u64,
    },
}

/// One visible entry of the merged view.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    /// Its name in its directory.
    pub name: String,
    /// `lstat` of `host`.
    pub meta: Metadata,
}

/// A read-only merged view over layer dirs (kept top-most first).
#[derive(Debug, Clone)]
pub(crate) struct Rootfs {
    layers: Vec<PathBuf>,
}

fn lstat(p: &Path) -> Result<Option<Metadata>, RootfsError> {
    match std::fs::symlink_metadata(p) {
        Ok(m) => Ok(Some(m)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        // A parent is a file in this layer: the path is absent there.
        Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => Ok(None),
        Err(source) => Err(RootfsError::Read {
            path: p.into(),
            source,
        }),
    }
}

fn is_whiteout_device(m: &Metadata) -> bool {
    m.file_type().is_char_device() && m.rdev() == 0
}

/// `name` in host dir `dir` is deleted by this layer (overlay or tar form).
fn whited_out(dir: &Path, name: &str, meta: Option<&Metadata>) -> Result<bool, RootfsError> {
    if meta.is_some_and(is_whiteout_device) {
        return Ok(true);
    }
    Ok(lstat(&dir.join(format!("{WHITEOUT_PREFIX}{name}")))?.is_some())
}

fn is_opaque(dir: &Path) -> Result<bool, RootfsError> {
    let xattr = ["trusted.overlay.opaque", "user.overlay.opaque"]
        .iter()
        .any(|k| matches!(xattr::get(dir, k), Ok(Some(v)) if v == b"y"));
    Ok(xattr || lstat(&dir.join(OPAQUE_MARKER))?.is_some())
}

impl Rootfs {
    /// A view over `layers`, lowest first (the order of an image's layers).
    pub fn new(layers_lowest_first: &[PathBuf]) -> Self {
        Self {
            layers: layers_lowest_first.iter().rev().cloned().collect(),
        }
    }

    /// The layer entries that make up `comps` (no symlinks followed),
    /// top-most first: one for a non-directory, several for a merged dir.
    fn stack(&self, comps: &[String]) -> Result<Vec<(PathBuf, Metadata)>, RootfsError> {
        let mut out = Vec::new();
        for layer in &self.layers {
            let mut p = layer.clone();
            let mut hidden_below = false;
            let mut present = true;
            for (i, c) in comps.iter().enumerate() {
                let m = lstat(&p.join(c))?;
                if whited_out(&p, c, m.as_ref())? {
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
                    Some(_) if !last => hidden_below |= is_opaque(&p)?,
                    Some(_) => {}
                }
            }
            if present {
                let Some(m) = lstat(&p)? else {
                    return Ok(out);
                };
                if !out.is_empty() && !m.is_dir() {
                    return Ok(out);
                }
                let stop = !m.is_dir() || is_opaque(&p)?;
                out.push((p, m));
                if stop {
                    return Ok(out);
                }
            }
            if hidden_below {
                return Ok(out);
            }
        }
        Ok(out)
    }

    /// The visible entries of directory `comps` (not a symlink), sorted by
    /// name; empty when it is absent or not a directory.
    pub fn children(&self, comps: &[String]) -> Result<Vec<Entry>, RootfsError> {
        let mut seen: BTreeMap<String, Option<Entry>> = BTreeMap::new();
        for (host, meta) in self.stack(comps)? {
            if !meta.is_dir() {
                break;
            }
            let rd = std::fs::read_dir(&host).map_err(|source| RootfsError::Read {
                path: host.clone(),
                source,
            })?;
            let mut names: Vec<String> = Vec::new();
            for entry in rd {
                let entry = entry.map_err(|source| RootfsError::Read {
                    path: host.clone(),
                    source,
                })?;
                // Names that are not UTF-8 are no package's metadata path.
                if let Ok(n) = entry.file_name().into_string() {
                    names.push(n);
                }
            }
            for name in names {
                if let Some(hidden) = name.strip_prefix(WHITEOUT_PREFIX) {
                    if name != OPAQUE_MARKER {
                        seen.entry(hidden.to_string()).or_insert(None);
                    }
                    continue;
                }
                if seen.contains_key(&name) {
                    continue;
                }
                let p = host.join(&name);
                let visible = match lstat(&p)? {
                    Some(meta) if !is_whiteout_device(&meta) => Some(Entry {
                        name: name.clone(),
                        meta,
                    }),
                    _ => None,
                };
                seen.insert(name, visible);
            }
        }
        Ok(seen.into_values().flatten().collect())
    }

    /// Resolves image path `path` to its components, following symlinks
    /// inside the image; `None` when something on the way is absent.
    pub fn resolve(&self, path: &str) -> Result<Option<(Vec<String>, Metadata)>, RootfsError> {
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
            let Some((host, meta)) = self.stack(&cur)?.into_iter().next() else {
                return Ok(None);
            };
            if meta.file_type().is_symlink() {
                hops += 1;
                if hops > MAX_SYMLINK_HOPS {
                    return Err(RootfsError::SymlinkLoop { path: path.into() });
                }
                let target = std::fs::read_link(&host).map_err(|source| RootfsError::Read {
                    path: host.clone(),
                    source,
                })?;
                let target = target.to_string_lossy().into_owned();
                cur.pop();
                if target.starts_with('/') {
                    cur.clear();
                }
                todo.extend(target.split('/').rev().map(str::to_string));
            }
        }
        Ok(self
            .stack(&cur)?
            .into_iter()
            .next()
            .map(|(_, meta)| (cur, meta)))
    }

    /// The first `limit` bytes of regular file `path` (symlinks followed
    /// inside the image), `None` when absent or not a regular file, and
    /// whether the file went on past `limit`.
    pub fn read_prefix(
        &self,
        path: &str,
        limit: u64,
    ) -> Result<Option<(Vec<u8>, bool)>, RootfsError> {
        let Some((comps, meta)) = self.resolve(path)? else {
            return Ok(None);
        };
        if !meta.is_file() {
            return Ok(None);
        }
        let Some((host, _)) = self.stack(&comps)?.into_iter().next() else {
            return Ok(None);
        };
        let err = |source| RootfsError::Read {
            path: host.clone(),
            source,
        };
        let f = std::fs::File::open(&host).map_err(err)?;
        let mut buf = Vec::new();
        f.take(limit.saturating_add(1))
            .read_to_end(&mut buf)
            .map_err(err)?;
        let more = buf.len() as u64 > limit;
        buf.truncate(limit as usize);
        Ok(Some((buf, more)))
    }

    /// The whole of regular file `path`, refused past `limit` bytes.
    pub fn read_whole(&self, path: &str, limit: u64) -> Result<Option<Vec<u8>>, RootfsError> {
        match self.read_prefix(path, limit)? {
            Some((_, true)) => Err(RootfsError::TooLarge {
                path: path.into(),
                limit,
            }),
            Some((b, false)) => Ok(Some(b)),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::symlink;

    fn whiteout_device(p: &Path) {
        nix::sys::stat::mknod(
            p,
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::from_bits_truncate(0),
            0,
        )
        .expect("mknod needs root");
    }

    fn comps(p: &str) -> Vec<String> {
        p.split('/')
            .filter(|c| !c.is_empty())
            .map(String::from)
            .collect()
    }

    fn names(fs: &Rootfs, p: &str) -> Vec<String> {
        fs.children(&comps(p))
            .unwrap()
            .into_iter()
            .map(|e| e.name)
            .collect()
    }

    #[test]
    fn merges_whiteouts_opaque_dirs_and_shadowing() {
        let t = tempfile::tempdir().unwrap();
        let (lo, mid, top) = (
            t.path().join("lo"),
            t.path().join("mid"),
            t.path().join("top"),
        );
        fs::create_dir_all(lo.join("etc")).unwrap();
        fs::write(lo.join("etc/keep"), "k").unwrap();
        fs::write(lo.join("etc/gone"), "x").unwrap();
        fs::write(lo.join("etc/gone-tar"), "x").unwrap();
        fs::create_dir_all(lo.join("opq/old")).unwrap();
        fs::create_dir_all(lo.join("opq-tar/old")).unwrap();
        fs::create_dir_all(lo.join("shadow/sub")).unwrap();
        fs::create_dir_all(mid.join("etc")).unwrap();
        whiteout_device(&mid.join("etc/gone"));
        fs::write(mid.join("etc/.wh.gone-tar"), "").unwrap();
        fs::create_dir_all(mid.join("opq")).unwrap();
        xattr::set(mid.join("opq"), "trusted.overlay.opaque", b"y").unwrap();
        fs::write(mid.join("opq/new"), "n").unwrap();
        fs::create_dir_all(mid.join("opq-tar")).unwrap();
        fs::write(mid.join("opq-tar/.wh..wh..opq"), "").unwrap();
        fs::create_dir_all(top.clone()).unwrap();
        fs::write(top.join("shadow"), "file now").unwrap();
        let fs = Rootfs::new(&[lo, mid, top]);
        assert_eq!(names(&fs, "/etc"), ["keep"]);
        assert_eq!(names(&fs, "/opq"), ["new"]);
        assert!(names(&fs, "/opq-tar").is_empty());
        assert!(fs.resolve("/opq/old").unwrap().is_none());
        assert!(fs.resolve("/etc/gone-tar").unwrap().is_none());
        assert!(fs.resolve("/shadow/sub").unwrap().is_none());
        assert!(fs.resolve("/shadow").unwrap().unwrap().1.is_file());
        assert_eq!(names(&fs, "/"), ["etc", "opq", "opq-tar", "shadow"]);
    }

    #[test]
    fn symlinks_resolve_inside_the_root_never_on_the_host() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        fs::create_dir_all(root.join("usr/lib")).unwrap();
        fs::create_dir_all(root.join("etc")).unwrap();
        fs::write(root.join("etc/hostname"), "image").unwrap();
        symlink("/etc", root.join("usr/lib/abs")).unwrap();
        symlink("../../../../../etc", root.join("usr/lib/up")).unwrap();
        symlink("loop", root.join("loop")).unwrap();
        let fs = Rootfs::new(&[root]);
        let via = |p| fs.read_whole(p, 100).unwrap().unwrap();
        assert_eq!(via("/usr/lib/abs/hostname"), b"image");
        assert_eq!(via("/usr/lib/up/hostname"), b"image");
        // The host's /etc/os-release exists; the image's does not.
        assert!(fs
            .read_whole("/usr/lib/abs/os-release", 1 << 20)
            .unwrap()
            .is_none());
        assert!(matches!(
            fs.read_whole("/loop", 10),
            Err(RootfsError::SymlinkLoop { .. })
        ));
    }

    #[test]
    fn reads_are_bounded() {
        let t = tempfile::tempdir().unwrap();
        fs::write(t.path().join("big"), vec![b'x'; 100]).unwrap();
        let fs = Rootfs::new(&[t.path().to_path_buf()]);
        let (b, more) = fs.read_prefix("/big", 10).unwrap().unwrap();
        assert_eq!((b.len(), more), (10, true));
        assert!(matches!(
            fs.read_whole("/big", 99),
            Err(RootfsError::TooLarge { limit: 99, .. })
        ));
        assert_eq!(fs.read_whole("/big", 100).unwrap().unwrap().len(), 100);
    }
}
