//! `unpack`: a layer blob (gzip, zstd or plain, told apart by magic bytes) into a
//! directory, confined to it (see [`super::confine`]), hashing the tar stream as it goes.
//!
//! Ownership, modes (setuid/setgid/sticky included), xattrs, mtimes and devices are
//! restored; it expects to run as root, on the host or of kiln's user namespace
//! (rootless: opaque dirs are then marked `user.overlay.opaque`, and devices, which
//! that namespace may not make, become stand-ins: see [`super::RDEV_XATTR`]). Metadata is set in the order that keeps it:
//! data, owner (which clears setuid and capabilities), mode, xattrs, then mtime;
//! directory mtimes last of all, since creating children changes them.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::fs::{self, OpenOptions};
use std::io::{self, BufRead, BufReader, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use filetime::FileTime;
use nix::sys::stat::{makedev, mknod, Mode, SFlag};
use tar::EntryType;

use super::confine::{clear_for, extract, normalize, unsafe_entry, Confined, DotDot, Lower};
use super::header::Xattrs;
use super::{LayerError, UnpackMode, RDEV_XATTR};
use crate::oci::{DiffId, Hasher};

const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];
const OPAQUE_NAME: &[u8] = b".wh..wh..opq";
const WHITEOUT_PREFIX: &[u8] = b".wh.";

/// Unpacks a layer blob into `dest`; returns the diff_id of the tar stream it read.
pub fn unpack(blob: impl Read, dest: &Path, mode: UnpackMode) -> Result<DiffId, LayerError> {
    let mut reader = HashingReader {
        inner: decompressor(blob).map_err(LayerError::ReadArchive)?,
        hasher: Hasher::new(),
    };
    unpack_entries(&mut reader, dest, mode, None)?;
    // The tar reader stops at the first zero block; the diff_id covers every byte.
    io::copy(&mut reader, &mut io::sink()).map_err(LayerError::ReadArchive)?;
    Ok(DiffId::from_bytes(reader.hasher.finish()))
}

/// Unpacks an already decompressed tar stream (ADD's archives, in any of the
/// compressions ADD knows) into `dest`, with the same confinement as [`unpack`]:
/// a later entry replaces an earlier one at the same path (a directory over a
/// directory merges), and nothing is written outside `dest` or through a symlink in it.
/// `lower` is the tree `dest` lies over: its symlinked parents are followed inside
/// `dest`, as BuildKit's untar follows the image's merged-usr links.
pub fn unpack_tar(
    tar: impl Read,
    dest: &Path,
    mode: UnpackMode,
    lower: Option<&dyn Lower>,
) -> Result<(), LayerError> {
    unpack_entries(tar, dest, mode, lower)
}

fn unpack_entries(
    tar: impl Read,
    dest: &Path,
    mode: UnpackMode,
    lower: Option<&dyn Lower>,
) -> Result<(), LayerError> {
    let dotdot = match mode {
        UnpackMode::Archive => DotDot::Clean,
        UnpackMode::Snapshot | UnpackMode::Apply => DotDot::Refuse,
    };
    let mut unpacker = Unpacker {
        confined: Confined {
            root: dest,
            dotdot,
            lower,
        },
        mode,
        dirs: Vec::new(),
        written: (mode == UnpackMode::Apply).then(HashSet::new),
    };
    let mut archive = tar::Archive::new(tar);
    for entry in archive.entries().map_err(LayerError::ReadArchive)? {
        unpacker.entry(&mut entry.map_err(LayerError::ReadArchive)?)?;
    }
    unpacker.finish()
}

/// [`unpack`], then checks the diff_id; on a mismatch `dest` holds untrusted content and
/// the caller must discard it.
pub fn unpack_verified(
    blob: impl Read,
    dest: &Path,
    mode: UnpackMode,
    expected: DiffId,
) -> Result<(), LayerError> {
    let actual = unpack(blob, dest, mode)?;
    if actual != expected {
        return Err(LayerError::DiffIdMismatch { expected, actual });
    }
    Ok(())
}

pub(super) fn decompressor<'a>(blob: impl Read + 'a) -> io::Result<Box<dyn Read + 'a>> {
    let mut buffered = BufReader::with_capacity(256 * 1024, blob);
    let head = buffered.fill_buf()?;
    Ok(if head.starts_with(GZIP_MAGIC) {
        Box::new(flate2::bufread::MultiGzDecoder::new(buffered))
    } else if head.starts_with(ZSTD_MAGIC) {
        Box::new(zstd::stream::read::Decoder::with_buffer(buffered)?)
    } else {
        Box::new(buffered)
    })
}

struct HashingReader<R> {
    inner: R,
    hasher: Hasher,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// The metadata an entry's header and PAX records give.
struct Meta {
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: FileTime,
    xattrs: Xattrs,
}

/// The entry types unpack creates; anything else is refused before touching the tree.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Node {
    File,
    Dir,
    Symlink,
    Link,
    /// Character and block devices and fifos.
    Special,
}

impl Node {
    fn of(ty: EntryType) -> Option<Node> {
        Some(match ty {
            EntryType::Regular | EntryType::Continuous => Node::File,
            EntryType::Directory => Node::Dir,
            EntryType::Symlink => Node::Symlink,
            EntryType::Link => Node::Link,
            EntryType::Char | EntryType::Block | EntryType::Fifo => Node::Special,
            _ => return None,
        })
    }
}

struct Unpacker<'a> {
    confined: Confined<'a>,
    mode: UnpackMode,
    /// Directories to date once everything is in place.
    dirs: Vec<(PathBuf, FileTime)>,
    /// In `Apply` mode, the relative paths this layer wrote (an opaque marker keeps them).
    written: Option<HashSet<PathBuf>>,
}

impl Unpacker<'_> {
    fn entry<R: Read>(&mut self, e: &mut tar::Entry<'_, R>) -> Result<(), LayerError> {
        let raw = e.path_bytes().into_owned();
        let name = String::from_utf8_lossy(&raw).into_owned();
        let ty = e.header().entry_type();
        if ty == EntryType::XGlobalHeader {
            // COMPAT(buildkit): global PAX headers (e.g. git archive's comment) are
            // ignored, as Docker's and containerd's appliers do.
            return Ok(());
        }
        let comps = normalize(&raw, &name, self.confined.dotdot)?;
        let Some((base, parents)) = comps.split_last() else {
            return Ok(()); // the root itself: its metadata belongs to the destination
        };
        let base = base.as_bytes();
        // COMPAT(buildkit): ADD's untar keeps `.wh.` names as ordinary files;
        // only layers carry whiteouts.
        if base.starts_with(WHITEOUT_PREFIX) && self.mode != UnpackMode::Archive {
            return self.whiteout(parents, base, &name, e);
        }
        let Some(node) = Node::of(ty) else {
            return Err(LayerError::UnsupportedEntry {
                entry: name,
                what: format!("tar entry type {:?}", ty.as_byte() as char),
            });
        };
        let dir = self.confined.parent(parents, &name, true)?;
        let dir = dir.ok_or_else(|| unsafe_entry(&name, "its parent directory is missing"))?;
        let path = dir.join(OsStr::from_bytes(base));
        let mut meta = read_meta(e, &name)?;
        if self.mode == UnpackMode::Snapshot {
            // A rootless overlay (`userxattr`) would read these as its own marks, where
            // root's ignores them: left out, a snapshot looks the same to both.
            meta.xattrs
                .retain(|(k, _)| !k.starts_with(b"user.overlay."));
        }
        clear_for(&path, node == Node::Dir)
            .map_err(|s| extract(&name, "removing what was there", s))?;
        self.create(e, node, &path, &meta, &name)?;
        if let Some(written) = &mut self.written {
            written.insert(comps.iter().collect());
        }
        Ok(())
    }

    fn create<R: Read>(
        &mut self,
        e: &mut tar::Entry<'_, R>,
        node: Node,
        path: &Path,
        meta: &Meta,
        name: &str,
    ) -> Result<(), LayerError> {
        let ex = |step| move |s| extract(name, step, s);
        match node {
            Node::File => write_file(e, path, name)?,
            Node::Dir => {
                if !path.is_dir() {
                    fs::create_dir(path).map_err(ex("creating directory"))?;
                }
                self.dirs.push((path.to_path_buf(), meta.mtime));
            }
            Node::Symlink => {
                let target = e
                    .link_name_bytes()
                    .ok_or_else(|| unsafe_entry(name, "a symlink without a target"))?;
                std::os::unix::fs::symlink(OsStr::from_bytes(&target), path)
                    .map_err(ex("creating symlink"))?;
            }
            Node::Link => {
                let target = e
                    .link_name_bytes()
                    .ok_or_else(|| unsafe_entry(name, "a hard link without a target"))?;
                let target = self.confined.link_target(&target, name)?;
                // Linking shares the inode: its metadata is the target's, already set.
                return fs::hard_link(target, path).map_err(ex("creating hard link"));
            }
            Node::Special => make_node(e.header(), path, name)?,
        }
        apply_meta(path, meta, node == Node::Symlink, node == Node::Dir, name)
    }

    /// `.wh.<name>` and `.wh..wh..opq`, according to the mode.
    fn whiteout<R: Read>(
        &mut self,
        parents: &[&OsStr],
        base: &[u8],
        name: &str,
        e: &mut tar::Entry<'_, R>,
    ) -> Result<(), LayerError> {
        let ex = |step| move |s| extract(name, step, s);
        let create = self.mode == UnpackMode::Snapshot;
        let Some(dir) = self.confined.parent(parents, name, create)? else {
            return Ok(()); // Apply: nothing below to hide
        };
        if base == OPAQUE_NAME {
            return match self.mode {
                UnpackMode::Snapshot => mark_opaque(&dir).map_err(ex("marking directory opaque")),
                // Archive never gets here: its `.wh.` names are plain entries.
                UnpackMode::Apply | UnpackMode::Archive => {
                    let rel: PathBuf = parents.iter().collect();
                    self.purge(&dir, &rel)
                        .map_err(ex("clearing an opaque directory"))
                }
            };
        }
        let hidden = &base[WHITEOUT_PREFIX.len()..];
        if hidden == b"." || hidden == b".." {
            // `.wh..` would delete the directory itself, `.wh...` its parent.
            return Err(unsafe_entry(name, "it whites out `.` or `..`"));
        }
        if hidden.starts_with(WHITEOUT_PREFIX) || hidden.is_empty() {
            return Err(LayerError::UnsupportedEntry {
                entry: name.to_string(),
                what: "this whiteout kind".to_string(),
            });
        }
        let target = dir.join(OsStr::from_bytes(hidden));
        clear_for(&target, false).map_err(ex("removing a whited-out path"))?;
        if self.mode == UnpackMode::Snapshot {
            mknod(&target, SFlag::S_IFCHR, Mode::empty(), makedev(0, 0))
                .map_err(|err| extract(name, "creating a whiteout device", err.into()))?;
            let mtime = read_meta(e, name)?.mtime;
            filetime::set_symlink_file_times(&target, mtime, mtime)
                .map_err(ex("setting whiteout mtime"))?;
        }
        Ok(())
    }

    /// Removes what lower layers left in `dir`, keeping what this layer wrote.
    fn purge(&self, dir: &Path, rel: &Path) -> io::Result<()> {
        let Some(written) = &self.written else {
            return Ok(()); // only Apply mode purges
        };
        for child in fs::read_dir(dir)? {
            let child = child?;
            let child_rel = rel.join(child.file_name());
            let is_dir = child.file_type()?.is_dir();
            if !written.contains(&child_rel) {
                clear_for(&child.path(), false)?;
            } else if is_dir {
                self.purge(&child.path(), &child_rel)?;
            }
        }
        Ok(())
    }

    /// Dates directories, deepest (latest written) first.
    fn finish(self) -> Result<(), LayerError> {
        for (dir, mtime) in self.dirs.iter().rev() {
            filetime::set_symlink_file_times(dir, *mtime, *mtime)
                .map_err(|s| extract(&dir.to_string_lossy(), "setting directory mtime", s))?;
        }
        Ok(())
    }
}

/// Creates a regular file that did not exist (never opening through a symlink) and
/// writes the entry's data into it.
fn write_file<R: Read>(
    e: &mut tar::Entry<'_, R>,
    path: &Path,
    name: &str,
) -> Result<(), LayerError> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|s| extract(name, "creating file", s))?;
    io::copy(e, &mut file).map_err(|s| extract(name, "writing file data", s))?;
    Ok(())
}

/// Marks a snapshot directory opaque for overlayfs: `trusted.overlay.opaque` as root
/// on the host; rootless (where trusted.* is refused with EPERM, and kiln mounts
/// overlays with `userxattr`) `user.overlay.opaque`. Both are what that mount reads.
fn mark_opaque(dir: &Path) -> io::Result<()> {
    match xattr::set(dir, "trusted.overlay.opaque", b"y") {
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => xattr::set(dir, USER_OPAQUE, b"y"),
        other => other,
    }
}

/// overlayfs's opaque mark under `userxattr` (rootless).
const USER_OPAQUE: &str = "user.overlay.opaque";

/// Creates a character or block device or a fifo (mode and owner are set afterwards).
/// Rootless, where mknod of a device is refused, a device becomes an empty file with
/// [`RDEV_XATTR`], which `walk` turns back into the same tar entry.
fn make_node(h: &tar::Header, path: &Path, name: &str) -> Result<(), LayerError> {
    let (kind, dev) = match h.entry_type() {
        EntryType::Char => (SFlag::S_IFCHR, device(h, name)?),
        EntryType::Block => (SFlag::S_IFBLK, device(h, name)?),
        _ => (SFlag::S_IFIFO, 0),
    };
    match mknod(path, kind, Mode::from_bits_truncate(0o600), dev) {
        Err(nix::errno::Errno::EPERM) if kind != SFlag::S_IFIFO => {
            let letter = if kind == SFlag::S_IFCHR { 'c' } else { 'b' };
            let (major, minor) = (nix::sys::stat::major(dev), nix::sys::stat::minor(dev));
            OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW)
                .open(path)
                .and_then(|_| {
                    xattr::set(
                        path,
                        RDEV_XATTR,
                        format!("{letter} {major}:{minor}").as_bytes(),
                    )
                })
                .map_err(|e| extract(name, "creating a device's stand-in file", e))
        }
        other => other.map_err(|e| extract(name, "creating a special file", e.into())),
    }
}

fn device(h: &tar::Header, name: &str) -> Result<u64, LayerError> {
    let get = |v: io::Result<Option<u32>>| {
        v.map_err(LayerError::ReadArchive)?
            .map(u64::from)
            .ok_or_else(|| unsafe_entry(name, "a device without device numbers"))
    };
    Ok(makedev(get(h.device_major())?, get(h.device_minor())?))
}

/// Owner, mode, xattrs and mtime from the header, with PAX `mtime` and
/// `SCHILY.xattr.*` records (the tar reader already applies PAX uid/gid/size/path).
fn read_meta<R: Read>(e: &mut tar::Entry<'_, R>, name: &str) -> Result<Meta, LayerError> {
    let h = e.header();
    let id = |v: io::Result<u64>| {
        u32::try_from(v.map_err(LayerError::ReadArchive)?).map_err(|_| {
            LayerError::UnsupportedEntry {
                entry: name.to_string(),
                what: "a uid or gid above 2^32".to_string(),
            }
        })
    };
    let mut meta = Meta {
        mode: h.mode().map_err(LayerError::ReadArchive)? & 0o7777,
        uid: id(h.uid())?,
        gid: id(h.gid())?,
        mtime: FileTime::from_unix_time(h.mtime().map_err(LayerError::ReadArchive)? as i64, 0),
        xattrs: Vec::new(),
    };
    if let Some(pax) = e.pax_extensions().map_err(LayerError::ReadArchive)? {
        for ext in pax {
            let ext = ext.map_err(LayerError::ReadArchive)?;
            let key = ext.key_bytes();
            if let Some(attr) = key.strip_prefix(b"SCHILY.xattr.") {
                if attr.starts_with(b"trusted.overlay.") {
                    return Err(unsafe_entry(name, "it carries an overlayfs xattr"));
                }
                if attr == RDEV_XATTR.as_bytes() {
                    return Err(unsafe_entry(
                        name,
                        "it carries kiln's device stand-in xattr",
                    ));
                }
                meta.xattrs
                    .push((attr.to_vec(), ext.value_bytes().to_vec()));
            } else if key == b"mtime" {
                let secs = ext
                    .value_bytes()
                    .split(|&b| b == b'.')
                    .next()
                    .unwrap_or_default();
                if let Some(secs) = std::str::from_utf8(secs).ok().and_then(|s| s.parse().ok()) {
                    meta.mtime = FileTime::from_unix_time(secs, 0);
                }
            }
        }
    }
    Ok(meta)
}

fn apply_meta(
    path: &Path,
    meta: &Meta,
    symlink: bool,
    dir: bool,
    name: &str,
) -> Result<(), LayerError> {
    let ex = |step| move |s| extract(name, step, s);
    match std::os::unix::fs::lchown(path, Some(meta.uid), Some(meta.gid)) {
        // The id does not exist in this user namespace (rootless, single-ID mapping).
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            return Err(LayerError::UnmappedOwner {
                entry: name.to_string(),
                uid: meta.uid,
                gid: meta.gid,
            })
        }
        other => other.map_err(ex("setting owner"))?,
    }
    if !symlink {
        fs::set_permissions(path, fs::Permissions::from_mode(meta.mode))
            .map_err(ex("setting mode"))?;
    }
    for (key, value) in &meta.xattrs {
        xattr::set(path, OsStr::from_bytes(key), value).map_err(ex("setting an xattr"))?;
    }
    if !dir {
        filetime::set_symlink_file_times(path, meta.mtime, meta.mtime)
            .map_err(ex("setting mtime"))?;
    }
    Ok(())
}
