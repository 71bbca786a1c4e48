//! `pack`: walk a directory, write its tar stream through the hashing compressor, and
//! report the diff_id. One pass over the data, with memory bounded by the compressor's
//! chunk queue and one copy buffer.

use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;

use super::compress::{resolve_level, TarSink};
use super::header::{padding, Kind};
use super::walk::Walker;
use super::{LayerError, PackOptions, Packed, SourceKind};

/// Bytes read from a source file at a time.
const COPY_BUF: usize = 256 * 1024;

/// Packs the tree at `src` into a layer blob written to `out`.
///
/// The blob's own digest is the caller's to compute (wrap `out` in a
/// [`crate::oci::DigestWriter`]); this returns the diff_id of the tar inside.
pub fn pack(
    src: &Path,
    kind: SourceKind,
    opts: &PackOptions,
    out: impl Write,
) -> Result<Packed, LayerError> {
    let level = resolve_level(opts.compression, opts.level)?;
    let mut sink = TarSink::new(opts.compression, level, out).map_err(LayerError::Write)?;
    let mut walker = Walker::new(src, kind, opts.source_date_epoch)?;
    let mut buf = vec![0u8; COPY_BUF];
    while let Some(item) = walker.next_item()? {
        item.header.write_to(&mut sink)?;
        if let (Some(path), Kind::File { size }) = (&item.data, &item.header.kind) {
            copy_file(path, *size, &mut buf, &mut sink)?;
        }
    }
    // The end-of-archive marker: two zero blocks.
    sink.write_all(&[0; 1024]).map_err(LayerError::Write)?;
    let (_, diff_id, uncompressed_size) = sink.finish().map_err(LayerError::Write)?;
    Ok(Packed {
        diff_id,
        uncompressed_size,
    })
}

/// Re-encodes a layer blob (gzip, zstd or plain, told apart by magic bytes) in
/// `opts.compression`: the tar inside is copied as it is, so the diff_id stays
/// and the blob is byte for byte what [`pack`] makes of the same tree (gzip
/// members are cut at fixed offsets of the tar stream, whatever the writes).
/// `opts.source_date_epoch` plays no part: the times are already in the tar.
pub fn recompress(
    blob: impl Read,
    opts: &PackOptions,
    out: impl Write,
) -> Result<Packed, LayerError> {
    let level = resolve_level(opts.compression, opts.level)?;
    let mut tar = super::unpack::decompressor(blob).map_err(LayerError::ReadArchive)?;
    let mut sink = TarSink::new(opts.compression, level, out).map_err(LayerError::Write)?;
    let mut buf = vec![0u8; COPY_BUF];
    loop {
        let n = match tar.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(LayerError::ReadArchive(e)),
        };
        sink.write_all(&buf[..n]).map_err(LayerError::Write)?;
    }
    let (_, diff_id, uncompressed_size) = sink.finish().map_err(LayerError::Write)?;
    Ok(Packed {
        diff_id,
        uncompressed_size,
    })
}

/// Copies exactly `size` bytes of `path` and the block padding; a file that shrank or
/// grew since its header was written is an error, since the header is already out.
fn copy_file(
    path: &Path,
    size: u64,
    buf: &mut [u8],
    sink: &mut impl Write,
) -> Result<(), LayerError> {
    let read_err = |source| LayerError::ReadSource {
        path: path.to_path_buf(),
        source,
    };
    let mut file = File::open(path).map_err(read_err)?;
    let mut left = size;
    while left > 0 {
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = match file.read(&mut buf[..want]) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(read_err(e)),
        };
        sink.write_all(&buf[..n]).map_err(LayerError::Write)?;
        left -= n as u64;
    }
    let grew = left == 0 && file.read(&mut buf[..1]).map_err(read_err)? > 0;
    if left > 0 || grew {
        return Err(LayerError::FileChanged {
            path: path.to_path_buf(),
            expected: size,
            actual: size - left + u64::from(grew),
        });
    }
    sink.write_all(&[0; 512][..padding(size)])
        .map_err(LayerError::Write)
}
