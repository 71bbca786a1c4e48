//! Walking a source directory into tar entries, in the layer's fixed order: depth first,
//! each directory before its contents, siblings sorted bytewise by the name they take in
//! the layer (a whiteout sorts as `.wh.<name>`).
//!
//! For an overlayfs upper dir, 0:0 character devices become `.wh.<name>` whiteouts and an
//! opaque directory gets a `.wh..wh..opq` entry as its first child (so an unpacker that
//! applies it clears only what lower layers held). Overlay's own xattrs never reach the
//! layer; an upper dir that relies on overlay features a tar cannot express (renamed
//! directories, metadata-only copy-up) is refused rather than packed wrong.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::{self, Metadata};
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use super::header::{EntryHeader, Kind, Xattrs};
use super::{LayerError, SourceKind, RDEV_XATTR};

const WHITEOUT_PREFIX: &[u8] = b".wh.";
const OPAQUE_NAME: &[u8] = b".wh..wh..opq";

/// One tar entry to write; `data` names the file whose bytes follow the header.
pub(super) struct Item {
    pub header: EntryHeader,
    pub data: Option<PathBuf>,
}

enum Pending {
    Path(Vec<u8>),
    Opaque(Vec<u8>),
}

/// Yields the entries of a source tree one by one; memory grows with the depth and
/// sibling counts of the tree, not with file sizes.
pub(super) struct Walker {
    root: PathBuf,
    kind: SourceKind,
    epoch: Option<i64>,
    stack: Vec<Pending>,
    /// First path seen for each (dev, inode) of a multiply linked regular file.
    links: HashMap<(u64, u64), Vec<u8>>,
}

impl Walker {
    pub fn new(root: &Path, kind: SourceKind, epoch: Option<i64>) -> Result<Self, LayerError> {
        let mut walker = Self {
            root: root.to_path_buf(),
            kind,
            epoch,
            stack: Vec::new(),
            links: HashMap::new(),
        };
        // The root itself is not an entry; its children are the layer's top level.
        walker.push_children(&[])?;
        Ok(walker)
    }

    fn abs(&self, rel: &[u8]) -> PathBuf {
        if rel.is_empty() {
            self.root.clone()
        } else {
            self.root.join(Path::new(std::ffi::OsStr::from_bytes(rel)))
        }
    }

    fn read_error(&self, rel: &[u8]) -> impl FnOnce(io::Error) -> LayerError {
        let path = self.abs(rel);
        move |source| LayerError::ReadSource { path, source }
    }

    /// Pushes the children of directory `rel` so they pop in sorted order.
    fn push_children(&mut self, rel: &[u8]) -> Result<(), LayerError> {
        let dir = self.abs(rel);
        let overlay = self.kind == SourceKind::OverlayUpper;
        // Sorted by the name each child takes in the layer: a whiteout sorts as `.wh.<name>`.
        let mut names: Vec<(Vec<u8>, OsString)> = Vec::new();
        for entry in fs::read_dir(&dir).map_err(self.read_error(rel))? {
            let entry = entry.map_err(self.read_error(rel))?;
            let name = entry.file_name();
            let mut key = name.as_bytes().to_vec();
            if overlay {
                // DirEntry::metadata does not follow symlinks.
                let meta = entry.metadata().map_err(self.read_error(rel))?;
                if is_whiteout(&meta) {
                    key.splice(0..0, WHITEOUT_PREFIX.iter().copied());
                }
            }
            names.push((key, name));
        }
        names.sort();
        for (_, name) in names.into_iter().rev() {
            let mut child = rel.to_vec();
            if !child.is_empty() {
                child.push(b'/');
            }
            child.extend_from_slice(&name.into_vec());
            self.stack.push(Pending::Path(child));
        }
        Ok(())
    }

    /// The next entry, or `None` when the tree is done.
    pub fn next_item(&mut self) -> Result<Option<Item>, LayerError> {
        loop {
            let rel = match self.stack.pop() {
                None => return Ok(None),
                Some(Pending::Opaque(dir)) => return Ok(Some(self.marker(&dir, OPAQUE_NAME)?)),
                Some(Pending::Path(rel)) => rel,
            };
            let abs = self.abs(&rel);
            let meta = fs::symlink_metadata(&abs).map_err(self.read_error(&rel))?;
            let name = rel.rsplit(|&b| b == b'/').next().unwrap_or_default();
            let ft = meta.file_type();
            if self.kind == SourceKind::OverlayUpper && is_whiteout(&meta) {
                let mut wh = WHITEOUT_PREFIX.to_vec();
                wh.extend_from_slice(name);
                return Ok(Some(self.marker(&parent(&rel), &wh)?));
            }
            if name.starts_with(WHITEOUT_PREFIX) {
                return Err(LayerError::Unsupported {
                    path: abs,
                    what: "a file name starting with .wh. (reserved for whiteouts)",
                });
            }
            if ft.is_socket() {
                // COMPAT(buildkit): sockets cannot be put in a tar; containerd's archive
                // writer leaves them out and so do we.
                tracing::debug!(path = %abs.display(), "leaving a socket out of the layer");
                continue;
            }
            let (mut xattrs, opaque) = self.xattrs(&rel, &meta)?;
            let kind = device_stand_in(self.kind_of(&rel, &meta)?, &mut xattrs);
            if kind == Kind::Dir {
                self.push_children(&rel)?;
                if opaque {
                    self.stack.push(Pending::Opaque(rel.clone()));
                }
            }
            let data = matches!(kind, Kind::File { .. }).then(|| abs.clone());
            let header = EntryHeader {
                path: rel,
                mode: meta.mode() & 0o7777,
                uid: u64::from(meta.uid()),
                gid: u64::from(meta.gid()),
                mtime: self.clamp(meta.mtime()),
                // A hard link shares its inode, and so its xattrs, with the first entry.
                xattrs: if matches!(kind, Kind::HardLink { .. }) {
                    Vec::new()
                } else {
                    xattrs
                },
                kind,
            };
            return Ok(Some(Item { header, data }));
        }
    }

    fn clamp(&self, mtime: i64) -> i64 {
        self.epoch.map_or(mtime, |epoch| mtime.min(epoch))
    }

    /// A whiteout or opaque marker: an empty file owned by root with mode 0, dated like
    /// the thing it stands for.
    fn marker(&self, dir: &[u8], name: &[u8]) -> Result<Item, LayerError> {
        let mut path = dir.to_vec();
        if !path.is_empty() {
            path.push(b'/');
        }
        let dated = if name == OPAQUE_NAME {
            dir.to_vec()
        } else {
            let mut p = path.clone();
            p.extend_from_slice(&name[WHITEOUT_PREFIX.len()..]);
            p
        };
        path.extend_from_slice(name);
        let meta = fs::symlink_metadata(self.abs(&dated)).map_err(self.read_error(&dated))?;
        let header = EntryHeader {
            path,
            kind: Kind::File { size: 0 },
            mode: 0,
            uid: 0,
            gid: 0,
            mtime: self.clamp(meta.mtime()),
            xattrs: Vec::new(),
        };
        Ok(Item { header, data: None })
    }

    fn kind_of(&mut self, rel: &[u8], meta: &Metadata) -> Result<Kind, LayerError> {
        let ft = meta.file_type();
        let dev = |m: &Metadata| {
            let rdev = m.rdev();
            (
                u64::from(nix::sys::stat::major(rdev) as u32),
                u64::from(nix::sys::stat::minor(rdev) as u32),
            )
        };
        Ok(if ft.is_dir() {
            Kind::Dir
        } else if ft.is_symlink() {
            let target = fs::read_link(self.abs(rel)).map_err(self.read_error(rel))?;
            Kind::Symlink {
                target: target.into_os_string().into_vec(),
            }
        } else if ft.is_file() {
            if meta.nlink() > 1 {
                let key = (meta.dev(), meta.ino());
                if let Some(first) = self.links.get(&key) {
                    return Ok(Kind::HardLink {
                        target: first.clone(),
                    });
                }
                self.links.insert(key, rel.to_vec());
            }
            Kind::File { size: meta.size() }
        } else if ft.is_char_device() {
            let (major, minor) = dev(meta);
            Kind::Char { major, minor }
        } else if ft.is_block_device() {
            let (major, minor) = dev(meta);
            Kind::Block { major, minor }
        } else if ft.is_fifo() {
            Kind::Fifo
        } else {
            return Err(LayerError::Unsupported {
                path: self.abs(rel),
                what: "this file type",
            });
        })
    }

    /// The xattrs to carry (sorted) and whether overlay marked the directory opaque.
    fn xattrs(&self, rel: &[u8], meta: &Metadata) -> Result<(Xattrs, bool), LayerError> {
        let abs = self.abs(rel);
        let names = match xattr::list(&abs) {
            Ok(names) => names,
            Err(e) if e.raw_os_error() == Some(libc::ENOTSUP) => return Ok((Vec::new(), false)),
            Err(e) => return Err(self.read_error(rel)(e)),
        };
        let overlay = self.kind == SourceKind::OverlayUpper;
        let mut out = Vec::new();
        let mut opaque = false;
        for name in names {
            let bytes = name.as_bytes();
            let overlay_attr = bytes.strip_prefix(b"trusted.overlay.").or_else(|| {
                overlay
                    .then(|| bytes.strip_prefix(b"user.overlay."))
                    .flatten()
            });
            if let Some(attr) = overlay_attr {
                if overlay && (attr == b"redirect" || attr == b"metacopy") {
                    return Err(LayerError::Unsupported {
                        path: abs,
                        what: "an overlayfs redirect or metacopy entry (mount with redirect_dir=off,metacopy=off)",
                    });
                }
                if overlay && attr == b"opaque" && meta.is_dir() {
                    let value = xattr::get(&abs, &name).map_err(self.read_error(rel))?;
                    opaque = value.as_deref() == Some(b"y");
                }
                continue;
            }
            if bytes == b"security.selinux" {
                continue;
            }
            // An attribute removed between list and get is simply gone.
            if let Some(value) = xattr::get(&abs, &name).map_err(self.read_error(rel))? {
                out.push((bytes.to_vec(), value));
            }
        }
        out.sort();
        Ok((out, opaque))
    }
}

/// The device a rootless snapshot's stand-in file stands for (see [`RDEV_XATTR`]),
/// its xattr removed; any other entry as it is.
fn device_stand_in(kind: Kind, xattrs: &mut Xattrs) -> Kind {
    if kind != (Kind::File { size: 0 }) {
        return kind;
    }
    let Some(i) = xattrs.iter().position(|(k, _)| k == RDEV_XATTR.as_bytes()) else {
        return kind;
    };
    let value = String::from_utf8_lossy(&xattrs[i].1).into_owned();
    let parsed = value.split_once(' ').and_then(|(letter, dev)| {
        let (major, minor) = dev.split_once(':')?;
        let (major, minor) = (major.parse().ok()?, minor.parse().ok()?);
        match letter {
            "c" => Some(Kind::Char { major, minor }),
            "b" => Some(Kind::Block { major, minor }),
            _ => None,
        }
    });
    match parsed {
        Some(device) => {
            xattrs.remove(i);
            device
        }
        None => kind,
    }
}

/// overlayfs marks a deleted path with a 0:0 character device.
fn is_whiteout(meta: &Metadata) -> bool {
    meta.file_type().is_char_device() && meta.rdev() == 0
}

fn parent(rel: &[u8]) -> Vec<u8> {
    match rel.iter().rposition(|&b| b == b'/') {
        Some(i) => rel[..i].to_vec(),
        None => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::stat::{makedev, mknod, Mode, SFlag};

    fn items(root: &Path, kind: SourceKind) -> Result<Vec<EntryHeader>, LayerError> {
        let mut walker = Walker::new(root, kind, Some(5))?;
        let mut out = Vec::new();
        while let Some(item) = walker.next_item()? {
            out.push(item.header);
        }
        Ok(out)
    }

    fn fake_upper() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir(root.join("d")).unwrap();
        fs::write(root.join("d/f"), b"f").unwrap();
        xattr::set(root.join("d"), "trusted.overlay.opaque", b"y").unwrap();
        xattr::set(root.join("d"), "trusted.overlay.origin", b"\0\x01").unwrap();
        xattr::set(root.join("d"), "user.keep", b"1").unwrap();
        mknod(
            &root.join("gone"),
            SFlag::S_IFCHR,
            Mode::empty(),
            makedev(0, 0),
        )
        .unwrap();
        std::os::unix::net::UnixListener::bind(root.join("sock")).unwrap();
        dir
    }

    #[test]
    fn overlay_upper_markers_sort_by_their_layer_names() {
        let upper = fake_upper();
        let got = items(upper.path(), SourceKind::OverlayUpper).unwrap();
        let paths: Vec<_> = got
            .iter()
            .map(|h| String::from_utf8_lossy(&h.path))
            .collect();
        assert_eq!(paths, [".wh.gone", "d", "d/.wh..wh..opq", "d/f"]);
        assert_eq!(got[1].xattrs, vec![(b"user.keep".to_vec(), b"1".to_vec())]);
        assert!(
            got.iter().all(|h| h.mtime <= 5),
            "mtimes clamped to the epoch"
        );
        assert_eq!(
            (got[0].mode, got[0].kind.clone()),
            (0, Kind::File { size: 0 })
        );
    }

    #[test]
    fn plain_sources_keep_devices_and_overlay_redirects_are_refused() {
        let upper = fake_upper();
        let plain = items(upper.path(), SourceKind::Plain).unwrap();
        let gone = plain.iter().find(|h| h.path == b"gone").unwrap();
        assert_eq!(gone.kind, Kind::Char { major: 0, minor: 0 });
        xattr::set(upper.path().join("d"), "trusted.overlay.redirect", b"/x").unwrap();
        let err = items(upper.path(), SourceKind::OverlayUpper).unwrap_err();
        assert!(err.to_string().contains("redirect"), "{err}");
    }
}
