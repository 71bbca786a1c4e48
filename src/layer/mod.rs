//! Layers: a directory → a deterministic tar stream → a compressed blob, and the safe
//! way back from a blob to a directory.
//!
//! Invariants kept here:
//! - The same tree gives the same bytes: entries in walk order with each directory's
//!   children sorted bytewise (a directory before its contents), ustar headers with PAX
//!   records only where ustar cannot say it, empty uname/gname, no atime/ctime, mtimes
//!   clamped to `source_date_epoch` when it is set.
//! - One pass: the diff_id is hashed from the tar bytes as they flow into the compressor;
//!   nothing holds a whole layer in memory (gzip works on a bounded queue of ~1 MiB
//!   chunks, compressed in parallel as concatenated gzip members).
//! - Unpacking never writes outside its destination: `..`, escapes, entries under a
//!   symlinked parent and hard links out of the tree are refused, naming the entry. A
//!   symlink of the read-only tree *beneath* (ADD's image, [`Lower`]) is followed as
//!   path text resolved inside the destination, never opened.
//! - Reading unpacked layers back ([`MergedFs`], their merged view) never writes and never
//!   resolves a path outside the layer dirs.
//!
//! This module writes to any `Write` and reads from any `Read`; it knows nothing of the
//! blob store.

mod compress;
mod confine;
mod header;
mod merged;
mod pack;
mod unpack;
mod walk;

use std::path::PathBuf;

use crate::oci::DiffId;

pub use confine::{Lower, LowerEntry};
pub use merged::{Entry, MergedFs, MergedFsError, Node};
pub use pack::{pack, recompress};
pub use unpack::{unpack, unpack_tar, unpack_verified};

/// The compression of a layer blob.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    /// gzip, as concatenated members compressed in parallel (stored blocks for chunks
    /// deflate cannot shrink).
    Gzip,
    /// zstd, multi-threaded.
    Zstd,
    /// A plain tar.
    None,
}

impl Compression {
    /// The OCI media type of a layer blob with this compression.
    pub fn media_type(self) -> &'static str {
        match self {
            Compression::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
            Compression::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
            Compression::None => "application/vnd.oci.image.layer.v1.tar",
        }
    }

    /// Parses the names BuildKit accepts for `compression=` (`gzip`, `zstd`, `uncompressed`).
    pub fn parse(s: &str) -> Result<Self, LayerError> {
        // COMPAT(buildkit): `uncompressed` is BuildKit's word; `none` is accepted too.
        match s {
            "gzip" => Ok(Compression::Gzip),
            "zstd" => Ok(Compression::Zstd),
            "uncompressed" | "none" => Ok(Compression::None),
            other => Err(LayerError::UnknownCompression(other.to_string())),
        }
    }
}

/// How [`pack`] writes a layer.
#[derive(Clone, Debug)]
pub struct PackOptions {
    /// The blob's compression.
    pub compression: Compression,
    /// When set, every mtime becomes `min(mtime, epoch)`.
    pub source_date_epoch: Option<i64>,
    /// Compression level: gzip 0–9 (default 6), zstd 1–22 (default 3).
    pub level: Option<i32>,
}

impl Default for PackOptions {
    fn default() -> Self {
        Self {
            compression: Compression::Gzip,
            source_date_epoch: None,
            level: None,
        }
    }
}

/// How to read the source directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceKind {
    /// An overlayfs upper dir: 0:0 char devices are whiteouts → `.wh.<name>`; a dir with
    /// xattr `trusted.overlay.opaque=y` (or `user.overlay.opaque`) → `.wh..wh..opq` inside it.
    OverlayUpper,
    /// A plain directory (COPY staging): every entry as is.
    Plain,
}

/// How [`unpack`] treats whiteouts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnpackMode {
    /// For overlay lower dirs (snapshots): `.wh.x` → 0:0 char device x; `.wh..wh..opq` →
    /// opaque xattr on the dir.
    Snapshot,
    /// Apply onto an existing tree (flattening for `-o type=local`): `.wh.x` deletes x;
    /// opaque clears the dir's prior contents.
    Apply,
    /// An archive ADD extracts: `.wh.` names are ordinary files, and paths are cleaned
    /// lexically as docker's untar does (`a/../b` is `b`), refusing only what ends up
    /// outside the destination.
    Archive,
}

/// The xattr of a rootless snapshot's stand-in for a device node (mknod of a device is
/// refused in a user namespace): an empty regular file whose xattr holds `c MAJ:MIN`
/// or `b MAJ:MIN`. [`unpack`] makes it, `walk` packs it back as the device's tar entry
/// (without the xattr), so a layer re-packed rootless has the root build's bytes. Layers
/// that carry this xattr themselves are refused.
pub const RDEV_XATTR: &str = "user.kiln.rdev";

/// The tar stream of a layer with no entries: the end-of-archive marker alone
/// (what [`pack`] writes for an empty directory).
pub const EMPTY_TAR: [u8; 1024] = [0; 1024];

/// The diff_id of [`EMPTY_TAR`]: a layer that changes nothing. Such a layer
/// adds nothing to a merged filesystem, so it needs no snapshot dir.
pub fn empty_tar_diff_id() -> DiffId {
    DiffId::of(&EMPTY_TAR)
}

/// What [`pack`] reports about the layer it wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packed {
    /// The sha256 of the uncompressed tar stream.
    pub diff_id: DiffId,
    /// The length of the uncompressed tar stream.
    pub uncompressed_size: u64,
}

/// Why packing or unpacking a layer failed.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    /// `compression=` named something unknown.
    #[error("unknown layer compression {0:?} (expected gzip, zstd or uncompressed)")]
    UnknownCompression(String),
    /// The compression level is out of range for the compression.
    #[error("compression level {level} is out of range for {compression:?}")]
    Level {
        /// The compression.
        compression: Compression,
        /// The level asked for.
        level: i32,
    },
    /// Reading a file or directory of the source tree failed.
    #[error("reading {}", path.display())]
    ReadSource {
        /// The path read.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A file changed size while it was being packed.
    #[error("{} changed while packing (expected {expected} bytes, read {actual})", path.display())]
    FileChanged {
        /// The file.
        path: PathBuf,
        /// Its size when its header was written.
        expected: u64,
        /// What could be read.
        actual: u64,
    },
    /// A source entry cannot be represented in a layer.
    #[error("{}: {what} is not supported in a layer", path.display())]
    Unsupported {
        /// The entry.
        path: PathBuf,
        /// What it is.
        what: &'static str,
    },
    /// Writing the tar stream or the compressed blob failed.
    #[error("writing layer blob")]
    Write(#[source] std::io::Error),
    /// Reading or decompressing the blob, or parsing its tar stream, failed.
    #[error("reading layer blob")]
    ReadArchive(#[source] std::io::Error),
    /// An archive entry would write outside the destination or through a symlink.
    #[error("refusing archive entry {entry:?}: {reason}")]
    UnsafeEntry {
        /// The entry's path as written in the archive.
        entry: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// An archive entry has a type or attribute the unpacker does not handle.
    #[error("layer entry {entry:?}: {what} is not supported")]
    UnsupportedEntry {
        /// The entry's path as written in the archive.
        entry: String,
        /// What is unsupported.
        what: String,
    },
    /// Creating an entry or setting its metadata failed.
    #[error("unpacking layer entry {entry:?}: {step}")]
    Extract {
        /// The entry's path as written in the archive.
        entry: String,
        /// The step that failed ("creating file", "setting owner", …).
        step: &'static str,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// An entry's owner does not exist in the user namespace kiln runs in.
    #[error(
        "unpacking layer entry {entry:?}: its owner {uid}:{gid} does not exist in the user \
         namespace kiln runs in (rootless, a single-ID mapping has only uid and gid 0, and \
         subordinate ids only as many as their range): give the user a range, as root, \
         `usermod --add-subuids 100000-165535 --add-subgids 100000-165535 USER` (or the line \
         `USER:100000:65536` in /etc/subuid and /etc/subgid), with Debian's uidmap installed"
    )]
    UnmappedOwner {
        /// The entry's path as written in the archive.
        entry: String,
        /// Its uid.
        uid: u32,
        /// Its gid.
        gid: u32,
    },
    /// The unpacked stream does not hash to the diff_id expected.
    #[error("layer diff_id mismatch: expected {expected}, got {actual}")]
    DiffIdMismatch {
        /// What the caller expected.
        expected: DiffId,
        /// What the stream hashed to.
        actual: DiffId,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compression_names_and_media_types() {
        assert_eq!(Compression::parse("gzip").unwrap(), Compression::Gzip);
        assert_eq!(Compression::parse("zstd").unwrap(), Compression::Zstd);
        assert_eq!(
            Compression::parse("uncompressed").unwrap(),
            Compression::None
        );
        let err = Compression::parse("lz4").unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown layer compression \"lz4\" (expected gzip, zstd or uncompressed)"
        );
        assert_eq!(
            Compression::Zstd.media_type(),
            "application/vnd.oci.image.layer.v1.tar+zstd"
        );
        assert!(Compression::Gzip.media_type().ends_with("tar+gzip"));
        assert!(Compression::None.media_type().ends_with(".tar"));
    }

    #[test]
    fn an_empty_dir_packs_to_the_empty_tar() {
        let dir = tempfile::tempdir().unwrap();
        let mut out = Vec::new();
        let opts = PackOptions {
            compression: Compression::None,
            ..PackOptions::default()
        };
        let packed = pack(dir.path(), SourceKind::Plain, &opts, &mut out).unwrap();
        assert_eq!(out, EMPTY_TAR);
        assert_eq!(packed.diff_id, empty_tar_diff_id());
        // COMPAT(buildkit): the diff_id BuildKit 0.25 writes for a RUN that changes nothing.
        assert_eq!(
            packed.diff_id.to_string(),
            "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"
        );
    }

    /// Packs `dir` uncompressed.
    fn tar_of(dir: &std::path::Path) -> Vec<u8> {
        let opts = PackOptions {
            compression: Compression::None,
            source_date_epoch: Some(0),
            ..PackOptions::default()
        };
        let mut out = Vec::new();
        pack(dir, SourceKind::Plain, &opts, &mut out).unwrap();
        out
    }

    #[test]
    fn a_device_stand_in_packs_to_the_devices_bytes() {
        use nix::sys::stat::{makedev, mknod, Mode, SFlag};
        use std::os::unix::fs::PermissionsExt;
        let (real, stand_in) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let node = real.path().join("null");
        mknod(&node, SFlag::S_IFCHR, Mode::empty(), makedev(1, 3)).unwrap();
        let file = stand_in.path().join("null");
        std::fs::write(&file, b"").unwrap();
        xattr::set(&file, RDEV_XATTR, b"c 1:3").unwrap();
        for p in [&node, &file] {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o640)).unwrap();
        }
        assert_eq!(tar_of(real.path()), tar_of(stand_in.path()));
        // A stand-in that is not empty, or names no device, is a plain file with its
        // xattr, which unpacking then refuses (an image may not forge one).
        std::fs::write(&file, b"x").unwrap();
        let tar = tar_of(stand_in.path());
        assert_ne!(tar, tar_of(real.path()));
        let dest = tempfile::tempdir().unwrap();
        let err = unpack(&tar[..], dest.path(), UnpackMode::Snapshot).unwrap_err();
        assert!(err.to_string().contains("device stand-in xattr"), "{err}");
    }
}
