//! A stage's or image's root filesystem, read in Rust through its stack of
//! snapshot dirs (unpacked layers, top-most first) the way overlayfs would
//! merge them: a 0:0 char device is a whiteout, a directory with
//! `trusted.overlay.opaque=y` hides everything below it, and a non-directory
//! hides whatever lower layers have at or under its path.
//!
//! Invariants: nothing here writes; every path is resolved inside the root
//! (symlinks are followed within the image, `..` stops at `/`), so a lookup
//! can never reach a host path outside the snapshot dirs.

use std::collections::BTreeMap;
use std::fs::Metadata;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// Why reading an image's filesystem failed.
#[derive(Debug, thiserror::Error)]
pub enum MergedFsError {
    /// A filesystem call on a snapshot dir failed.
    #[error("reading {path} in the image filesystem")]
    Read {
        /// The host path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A symlink loop (or a chain longer than 40 links).
    #[error("too many levels of symbolic links resolving {path}")]
    SymlinkLoop {
        /// The path being resolved.
        path: String,
    },
}

/// One visible entry: where its bytes are and what it is.
#[derive(Debug, Clone)]
pub struct Node {
    /// The canonical absolute path inside the image (`/` for the root).
    pub path: String,
    /// The host path in the snapshot dir that provides it.
    pub host: PathBuf,
    /// `lstat` of `host`.
    pub meta: Metadata,
}

/// A read-only merged view over snapshot dirs.
#[derive(Debug, Clone, Default)]
pub struct MergedFs {
    layers: Vec<PathBuf>,
}

fn is_whiteout(m: &Metadata) -> bool {
    m.file_type().is_char_device() && m.rdev() == 0
}

fn is_opaque(p: &Path) -> bool {
    ["trusted.overlay.opaque", "user.overlay.opaque"]
        .iter()
        .any(|k| matches!(xattr::get(p, k), Ok(Some(v)) if v == b"y"))
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

fn join(comps: &[String]) -> String {
    format!("/{}", comps.join("/"))
}

impl MergedFs {
    /// A view over `layers`, top-most first. An empty list is `scratch`.
    pub fn new(layers_top_first: Vec<PathBuf>) -> Self {
        Self {
            layers: layers_top_first,
        }
    }

    /// The snapshot dirs, top-most first.
    pub fn layers(&self) -> &[PathBuf] {
        &self.layers
    }

    /// Every layer entry that contributes to `comps` (no symlinks followed),
    /// top-most first: one entry for a non-directory, several for a merged dir.
    fn stack(&self, comps: &[String]) -> Result<Vec<(PathBuf, Metadata)>, MergedFsError> {
        let mut out: Vec<(PathBuf, Metadata)> = Vec::new();
        let Some((last, parents)) = comps.split_last() else {
            for l in &self.layers {
                if let Some(m) = lstat(l)? {
                    let opaque = is_opaque(l);
                    out.push((l.clone(), m));
                    if opaque {
                        break;
                    }
                }
            }
            return Ok(out);
        };
        for layer in &self.layers {
            let mut p = layer.clone();
            let mut present = true;
            let mut opaque_parent = false;
            for c in parents {
                p.push(c);
                match lstat(&p)? {
                    None => {
                        present = false;
                        break;
                    }
                    Some(m) if is_whiteout(&m) || !m.is_dir() => return Ok(out),
                    Some(_) => opaque_parent |= is_opaque(&p),
                }
            }
            if present {
                p.push(last);
                if let Some(m) = lstat(&p)? {
                    if is_whiteout(&m) || (!out.is_empty() && !m.is_dir()) {
                        return Ok(out);
                    }
                    let stop = !m.is_dir() || is_opaque(&p);
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
    /// its parents, and in its last component when `follow_last`.
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
                if hops > 40 {
                    return Err(MergedFsError::SymlinkLoop { path: path.into() });
                }
                let target =
                    std::fs::read_link(&node.host).map_err(|source| MergedFsError::Read {
                        path: node.host.clone(),
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
        self.node(&cur)
    }

    /// The visible names in directory `dir` (a canonical path from a
    /// [`Node`]), sorted; empty when it is not a directory.
    pub fn children(&self, dir: &str) -> Result<Vec<String>, MergedFsError> {
        let comps: Vec<String> = dir
            .split('/')
            .filter(|c| !c.is_empty())
            .map(str::to_string)
            .collect();
        let mut seen: BTreeMap<String, bool> = BTreeMap::new();
        for (host, meta) in self.stack(&comps)? {
            if !meta.is_dir() {
                break;
            }
            let rd = std::fs::read_dir(&host).map_err(|source| MergedFsError::Read {
                path: host.clone(),
                source,
            })?;
            for entry in rd {
                let entry = entry.map_err(|source| MergedFsError::Read {
                    path: host.clone(),
                    source,
                })?;
                let name = entry.file_name().to_string_lossy().into_owned();
                if seen.contains_key(&name) {
                    continue;
                }
                let m = lstat(&entry.path())?;
                seen.insert(name, m.is_some_and(|m| !is_whiteout(&m)));
            }
        }
        Ok(seen
            .into_iter()
            .filter(|(_, v)| *v)
            .map(|(k, _)| k)
            .collect())
    }

    /// The content of a regular file (symlinks followed), `None` when absent.
    pub fn read_file(&self, path: &str) -> Result<Option<Vec<u8>>, MergedFsError> {
        match self.resolve(path, true)? {
            Some(n) if n.meta.is_file() => {
                std::fs::read(&n.host)
                    .map(Some)
                    .map_err(|source| MergedFsError::Read {
                        path: n.host,
                        source,
                    })
            }
            _ => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::symlink;

    fn whiteout(p: &Path) {
        nix::sys::stat::mknod(
            p,
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::from_bits_truncate(0),
            0,
        )
        .expect("mknod needs root");
    }

    fn layers() -> (tempfile::TempDir, MergedFs) {
        let t = tempfile::tempdir().unwrap();
        let (lo, mid, top) = (
            t.path().join("lo"),
            t.path().join("mid"),
            t.path().join("top"),
        );
        fs::create_dir_all(lo.join("etc")).unwrap();
        fs::write(lo.join("etc/passwd"), "root:x:0:0::/:/bin/sh\n").unwrap();
        fs::write(lo.join("etc/gone"), "x").unwrap();
        fs::create_dir_all(lo.join("opq/old")).unwrap();
        fs::write(lo.join("opq/old/f"), "x").unwrap();
        fs::write(lo.join("shadowed"), "x").unwrap();
        fs::create_dir_all(mid.join("etc")).unwrap();
        fs::write(mid.join("etc/hosts"), "127.0.0.1 localhost\n").unwrap();
        whiteout(&mid.join("etc/gone"));
        fs::create_dir_all(mid.join("opq")).unwrap();
        xattr::set(mid.join("opq"), "trusted.overlay.opaque", b"y").unwrap();
        fs::write(mid.join("opq/new"), "n").unwrap();
        fs::create_dir_all(top.join("usr/bin")).unwrap();
        symlink("usr/bin", top.join("bin")).unwrap();
        symlink("/etc/passwd", top.join("usr/bin/pw")).unwrap();
        symlink("../../../../etc/hosts", top.join("usr/bin/up")).unwrap();
        symlink("loop", top.join("loop")).unwrap();
        fs::create_dir_all(top.join("shadowed")).unwrap();
        (t, MergedFs::new(vec![top, mid, lo]))
    }

    #[test]
    fn merges_layers_with_whiteouts_and_opaque_dirs() {
        let (_t, fs) = layers();
        assert_eq!(fs.children("/etc").unwrap(), ["hosts", "passwd"]);
        assert_eq!(fs.children("/opq").unwrap(), ["new"]);
        assert!(fs.resolve("/etc/gone", false).unwrap().is_none());
        assert!(fs.resolve("/opq/old/f", false).unwrap().is_none());
        assert!(fs
            .resolve("/shadowed", false)
            .unwrap()
            .unwrap()
            .meta
            .is_dir());
        assert_eq!(
            fs.children("/").unwrap(),
            ["bin", "etc", "loop", "opq", "shadowed", "usr"]
        );
    }

    #[test]
    fn follows_symlinks_inside_the_root() {
        let (_t, fs) = layers();
        let pw = fs.read_file("/bin/pw").unwrap().unwrap();
        assert_eq!(pw, b"root:x:0:0::/:/bin/sh\n");
        let n = fs.resolve("/bin/pw", false).unwrap().unwrap();
        assert_eq!(n.path, "/usr/bin/pw");
        assert!(n.meta.file_type().is_symlink());
        // `..` past the root stays at the root.
        let up = fs.read_file("/usr/bin/up").unwrap().unwrap();
        assert_eq!(up, b"127.0.0.1 localhost\n");
        assert!(matches!(
            fs.resolve("/loop", true),
            Err(MergedFsError::SymlinkLoop { .. })
        ));
        assert!(fs.resolve("/etc/passwd/x", true).unwrap().is_none());
    }

    #[test]
    fn scratch_is_empty() {
        let fs = MergedFs::default();
        assert!(fs.resolve("/etc/passwd", true).unwrap().is_none());
        assert!(fs.children("/").unwrap().is_empty());
    }
}
