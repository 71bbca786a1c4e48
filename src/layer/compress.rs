//! The compressing end of [`super::pack`]: a `Write` that hashes the uncompressed tar
//! bytes (the diff_id) as they pass and feeds them to gzip, zstd or straight through.
//!
//! Gzip is parallel: the stream is cut into [`CHUNK`]-byte chunks, each compressed as
//! its own gzip member on a dedicated rayon pool, and the members are written in order.
//! Concatenated members are one valid gzip stream (RFC 1952 §2.2; Go's reader and
//! containerd read them as one). At most [`ParallelGzip::max_in_flight`] chunks exist at
//! once, so memory stays bounded whatever the layer's size. Each member depends only on
//! its chunk, so the output does not depend on thread count or timing.
//!
//! A chunk that deflate cannot shrink (compressed files, random or encrypted data: every
//! one of 16 samples has a flat byte distribution and no repeats, see [`incompressible`])
//! is written as stored blocks, at memory speed, where deflate at level 6 would spend
//! ~20 ns a byte to end up with stored blocks too. Since this (issue 16), layers with
//! such chunks have other digests than kiln wrote before; all other chunks are deflate's
//! bytes as before (`gzip_bytes_are_pinned` pins both kinds).

use std::collections::VecDeque;
use std::io::{self, BufWriter, Write};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::OnceLock;

use flate2::write::GzEncoder;

use super::{Compression, LayerError};
use crate::oci::{DiffId, Hasher};

/// Uncompressed bytes per gzip member.
pub(super) const CHUNK: usize = 1 << 20;

/// Threads available to compression (at least one).
fn workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// A pool only compression jobs run on, so a caller that is itself on a rayon pool can
/// block on results without starving the jobs it waits for.
fn pool() -> &'static rayon::ThreadPool {
    static POOL: OnceLock<rayon::ThreadPool> = OnceLock::new();
    POOL.get_or_init(|| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(workers())
            .thread_name(|i| format!("kiln-gzip-{i}"))
            .build()
            .expect("building the gzip thread pool")
    })
}

/// Checks the level against the compression's range and fills in the default.
pub(super) fn resolve_level(
    compression: Compression,
    level: Option<i32>,
) -> Result<i32, LayerError> {
    let (range, default) = match compression {
        Compression::Gzip => (0..=9, 6),
        Compression::Zstd => (1..=22, 3),
        Compression::None => (0..=0, 0),
    };
    match level {
        None => Ok(default),
        Some(l) if range.contains(&l) => Ok(l),
        Some(l) => Err(LayerError::Level {
            compression,
            level: l,
        }),
    }
}

enum Sink<W: Write> {
    Plain(BufWriter<W>),
    Zstd(zstd::stream::write::Encoder<'static, W>),
    Gzip(ParallelGzip<W>),
}

/// Hashes and counts the tar stream, and compresses it into the blob writer.
pub(super) struct TarSink<W: Write> {
    hasher: Hasher,
    size: u64,
    sink: Sink<W>,
}

impl<W: Write> TarSink<W> {
    /// A sink writing `compression` at `level` (already resolved) into `out`.
    pub fn new(compression: Compression, level: i32, out: W) -> io::Result<Self> {
        let sink = match compression {
            Compression::None => Sink::Plain(BufWriter::with_capacity(CHUNK, out)),
            Compression::Gzip => Sink::Gzip(ParallelGzip::new(out, level as u32, 2 * workers())),
            Compression::Zstd => {
                let mut enc = zstd::stream::write::Encoder::new(out, level)?;
                // zstd's multi-threaded output does not depend on the worker count (>= 1),
                // so the blob is the same on any machine.
                enc.multithread(workers() as u32)?;
                Sink::Zstd(enc)
            }
        };
        Ok(Self {
            hasher: Hasher::new(),
            size: 0,
            sink,
        })
    }

    /// Flushes the compressor; returns the blob writer, the diff_id and the tar size.
    pub fn finish(self) -> io::Result<(W, DiffId, u64)> {
        let mut out = match self.sink {
            Sink::Plain(w) => w.into_inner().map_err(|e| e.into_error())?,
            Sink::Zstd(enc) => enc.finish()?,
            Sink::Gzip(gz) => gz.finish()?,
        };
        out.flush()?;
        Ok((out, DiffId::from_bytes(self.hasher.finish()), self.size))
    }
}

impl<W: Write> Write for TarSink<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = match &mut self.sink {
            Sink::Plain(w) => w.write(buf)?,
            Sink::Zstd(enc) => enc.write(buf)?,
            Sink::Gzip(gz) => gz.write(buf)?,
        };
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        // Flushing mid-stream would end a gzip member or zstd block early and change the
        // bytes; only `finish` flushes.
        Ok(())
    }
}

/// Gzip across cores as concatenated members, with a bounded queue of chunks.
pub(super) struct ParallelGzip<W: Write> {
    out: W,
    level: u32,
    buf: Vec<u8>,
    in_flight: VecDeque<Receiver<io::Result<Vec<u8>>>>,
    max_in_flight: usize,
    members: u64,
    peak_in_flight: usize,
}

impl<W: Write> ParallelGzip<W> {
    pub fn new(out: W, level: u32, max_in_flight: usize) -> Self {
        Self {
            out,
            level,
            buf: Vec::with_capacity(CHUNK),
            in_flight: VecDeque::new(),
            max_in_flight: max_in_flight.max(1),
            members: 0,
            peak_in_flight: 0,
        }
    }

    /// Hands the buffered chunk to the pool, first writing out the oldest member when the
    /// queue is full: this wait is what bounds memory.
    fn submit(&mut self) -> io::Result<()> {
        if self.in_flight.len() >= self.max_in_flight {
            self.write_oldest()?;
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        let level = self.level;
        let (tx, rx) = sync_channel(1);
        pool().spawn(move || {
            // The receiver only disappears when the writer was dropped on an error path.
            let _ = tx.send(gzip_member(&chunk, level));
        });
        self.in_flight.push_back(rx);
        self.members += 1;
        self.peak_in_flight = self.peak_in_flight.max(self.in_flight.len());
        Ok(())
    }

    fn write_oldest(&mut self) -> io::Result<()> {
        let Some(rx) = self.in_flight.pop_front() else {
            return Ok(());
        };
        let member = rx
            .recv()
            .map_err(|_| io::Error::other("gzip worker stopped without a result"))??;
        self.out.write_all(&member)
    }

    /// Compresses what is buffered, writes every member in order, returns the writer.
    pub fn finish(mut self) -> io::Result<W> {
        if !self.buf.is_empty() || self.members == 0 {
            self.submit()?;
        }
        while !self.in_flight.is_empty() {
            self.write_oldest()?;
        }
        Ok(self.out)
    }
}

impl<W: Write> Write for ParallelGzip<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = buf.len().min(CHUNK - self.buf.len());
        self.buf.extend_from_slice(&buf[..n]);
        if self.buf.len() == CHUNK {
            self.submit()?;
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// One complete gzip member (header with mtime 0 and OS "unknown", so it is reproducible):
/// stored blocks when [`incompressible`] says deflate would not shrink the chunk, else
/// deflate at `level`. Either way the bytes depend only on the chunk and the level.
fn gzip_member(data: &[u8], level: u32) -> io::Result<Vec<u8>> {
    if level > 0 && incompressible(data) {
        return Ok(stored_member(data, level));
    }
    let mut enc = GzEncoder::new(
        Vec::with_capacity(data.len() / 2 + 64),
        flate2::Compression::new(level),
    );
    enc.write_all(data)?;
    enc.finish()
}

/// Bytes per sample [`incompressible`] looks at.
const SAMPLE: usize = 8 << 10;
/// Samples per chunk, spread evenly from its first byte to its last.
const SAMPLES: usize = 16;

/// Whether deflate would gain (next to) nothing on `chunk`: every one of [`SAMPLES`]
/// evenly spread samples has a byte distribution close to uniform (Rényi entropy of
/// order 2 above ~7.9 bits per byte, so Huffman coding cannot save more than ~1%), and
/// level-1 deflate of the sample is no smaller than the sample (no repeats for LZ77 to
/// find). Compressed files, random data and encrypted blobs are such chunks; deflate at
/// level 6 spends ~20 ns a byte on them to write stored blocks anyway.
///
/// Integer arithmetic and a fixed compressor only: the answer, and so the blob, is the
/// same on every machine. Chunks shorter than the samples (a small layer, the tail of
/// a big one) are never called incompressible, so their bytes are deflate's as before.
fn incompressible(chunk: &[u8]) -> bool {
    if chunk.len() < SAMPLE * SAMPLES {
        return false;
    }
    let step = (chunk.len() - SAMPLE) / (SAMPLES - 1);
    let samples = || (0..SAMPLES).map(|i| &chunk[i * step..i * step + SAMPLE]);
    // Σ count² ≤ n² / 239 ⇔ H₂ = log₂(n² / Σ count²) ≥ log₂ 239 ≈ 7.90 bits. Uniform
    // random bytes give Σ count² ≈ n²/256 + n (H₂ ≈ 7.96), 30 standard deviations
    // from the bound; text and code give H₂ of 4–6.
    let flat = |s: &[u8]| {
        let mut counts = [0u32; 256];
        for &b in s {
            counts[usize::from(b)] += 1;
        }
        let sum_sq: u64 = counts.iter().map(|&c| u64::from(c) * u64::from(c)).sum();
        sum_sq * 239 <= (s.len() as u64).pow(2)
    };
    if !samples().all(flat) {
        return false;
    }
    let mut deflate = flate2::Compress::new(flate2::Compression::new(1), false);
    let mut out = Vec::with_capacity(SAMPLE + SAMPLE / 8 + 64);
    samples().all(|s| {
        deflate.reset();
        out.clear();
        match deflate.compress_vec(s, &mut out, flate2::FlushCompress::Finish) {
            Ok(flate2::Status::StreamEnd) => out.len() >= s.len(),
            // Output that did not fit in more than the sample's size: no gain either.
            Ok(_) => true,
            Err(_) => false,
        }
    })
}

/// A gzip member holding `data` in stored deflate blocks (RFC 1951 §3.2.4), with the
/// header [`GzEncoder`] writes at `level` (mtime 0, OS 255).
fn stored_member(data: &[u8], level: u32) -> Vec<u8> {
    const MAX_BLOCK: usize = u16::MAX as usize;
    let blocks = data.len().div_ceil(MAX_BLOCK).max(1);
    let mut out = Vec::with_capacity(10 + data.len() + 5 * blocks + 8);
    // XFL as flate2 sets it: 2 at level 9, 4 at level 1, else 0.
    let xfl = match level {
        9.. => 2,
        0 | 1 => 4,
        _ => 0,
    };
    out.extend_from_slice(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, 255]);
    let mut rest = data;
    loop {
        let n = rest.len().min(MAX_BLOCK);
        let last = n == rest.len();
        // BFINAL in bit 0, BTYPE 00 (stored), then padding to the byte boundary.
        out.push(u8::from(last));
        out.extend_from_slice(&(n as u16).to_le_bytes());
        out.extend_from_slice(&(!(n as u16)).to_le_bytes());
        out.extend_from_slice(&rest[..n]);
        rest = &rest[n..];
        if last {
            break;
        }
    }
    let mut crc = flate2::Crc::new();
    crc.update(data);
    out.extend_from_slice(&crc.sum().to_le_bytes());
    // ISIZE: the length modulo 2³² (a chunk is far smaller).
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn pseudo_random(len: usize) -> Vec<u8> {
        let mut x: u32 = 12345;
        (0..len)
            .map(|i| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                // Half compressible text, half noise.
                if (i / 4096) % 2 == 0 {
                    b"kiln layer "[i % 11]
                } else {
                    (x >> 16) as u8
                }
            })
            .collect()
    }

    #[test]
    fn queue_stays_bounded_and_members_concatenate() {
        let data = pseudo_random(CHUNK * 9 + 777);
        let mut gz = ParallelGzip::new(Vec::new(), 6, 3);
        gz.write_all(&data).unwrap();
        let peak = gz.peak_in_flight;
        let members = gz.members;
        let out = gz.finish().unwrap();
        assert_eq!(peak, 3, "never more than the bound in flight");
        assert_eq!(members, 9, "one member per full chunk before finish");
        let mut back = Vec::new();
        flate2::read::MultiGzDecoder::new(&out[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, data);
        // A single-member reader stops after the first member: proof there are several.
        let mut first = Vec::new();
        flate2::read::GzDecoder::new(&out[..])
            .read_to_end(&mut first)
            .unwrap();
        assert_eq!(first.len(), CHUNK);
    }

    #[test]
    fn gzip_output_is_identical_whatever_the_queue_depth() {
        let data = pseudo_random(CHUNK * 3 + 5);
        let run = |depth| {
            let mut gz = ParallelGzip::new(Vec::new(), 6, depth);
            gz.write_all(&data).unwrap();
            gz.finish().unwrap()
        };
        assert_eq!(run(1), run(8));
    }

    #[test]
    fn sink_hashes_the_uncompressed_stream() {
        let data = pseudo_random(100_000);
        for c in [Compression::Gzip, Compression::Zstd, Compression::None] {
            let level = resolve_level(c, None).unwrap();
            let mut sink = TarSink::new(c, level, Vec::new()).unwrap();
            sink.write_all(&data).unwrap();
            let (_, diff_id, size) = sink.finish().unwrap();
            assert_eq!(diff_id, DiffId::of(&data), "{c:?}");
            assert_eq!(size, data.len() as u64);
        }
    }

    #[test]
    fn zstd_output_does_not_depend_on_the_worker_count() {
        // `TarSink` relies on this to give the same blob on machines with any core count.
        let data = pseudo_random(CHUNK * 12);
        let run = |workers| {
            let mut enc = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
            enc.multithread(workers).unwrap();
            enc.write_all(&data).unwrap();
            enc.finish().unwrap()
        };
        let one = run(1);
        assert_eq!(one, run(2));
        assert_eq!(one, run(5));
    }

    /// xorshift bytes: no repeats, flat distribution (what a compressed file looks like).
    fn noise(len: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        let mut out = Vec::with_capacity(len + 8);
        while out.len() < len {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            out.extend_from_slice(&x.to_le_bytes());
        }
        out.truncate(len);
        out
    }

    fn deflated(data: &[u8], level: u32) -> Vec<u8> {
        let mut enc = GzEncoder::new(Vec::new(), flate2::Compression::new(level));
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    fn gunzip(member: &[u8]) -> Vec<u8> {
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(member)
            .read_to_end(&mut back)
            .unwrap();
        back
    }

    #[test]
    fn incompressible_chunks_are_stored_blocks() {
        let data = noise(CHUNK, 7);
        assert!(incompressible(&data));
        let member = gzip_member(&data, 6).unwrap();
        assert_eq!(gunzip(&member), data);
        // Header, 17 stored blocks of 5 bytes' overhead each, CRC and size.
        assert_eq!(member.len(), 10 + CHUNK + 5 * 17 + 8);
        assert_eq!(member[..10], deflated(b"", 6)[..10], "GzEncoder's header");
        assert!(member.len() <= deflated(&data, 6).len() + 64);
        // Level 0 stays zlib's own stored form.
        assert_eq!(gzip_member(&data, 0).unwrap(), deflated(&data, 0));
    }

    #[test]
    fn chunks_deflate_gains_on_keep_deflates_bytes() {
        // Text anywhere a sample lands, repeats of noise (LZ77 finds them), a
        // short chunk (the tail of a layer, or a small one): deflate as before.
        let text = pseudo_random(CHUNK);
        let mut noise_then_text = noise(CHUNK, 9);
        noise_then_text[CHUNK - SAMPLE..].copy_from_slice(&text[..SAMPLE]);
        let repeated = noise(4096, 11).repeat(CHUNK / 4096);
        let short = noise(SAMPLE * SAMPLES - 1, 13);
        for data in [&text, &noise_then_text, &repeated, &short] {
            assert!(!incompressible(data));
            assert_eq!(gzip_member(data, 6).unwrap(), deflated(data, 6));
        }
    }

    /// The digest of a packed stream with stored and deflated members, pinned:
    /// a change here changes the digest of every layer kiln writes.
    #[test]
    fn gzip_bytes_are_pinned() {
        let mut data = noise(CHUNK * 2, 3);
        data.extend(pseudo_random(CHUNK + 999));
        let mut gz = ParallelGzip::new(Vec::new(), 6, 2);
        gz.write_all(&data).unwrap();
        let out = gz.finish().unwrap();
        let mut back = Vec::new();
        flate2::read::MultiGzDecoder::new(&out[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, data);
        assert_eq!(
            crate::oci::Digest::of(&out).to_string(),
            "sha256:701325206e19ce1b6262b21c4f27a8df8674e915576eb5ff21264b21d41de31f"
        );
    }

    #[test]
    fn levels_are_checked() {
        assert_eq!(resolve_level(Compression::Zstd, Some(19)).unwrap(), 19);
        assert!(resolve_level(Compression::Gzip, Some(10)).is_err());
        assert!(resolve_level(Compression::Zstd, Some(0)).is_err());
        assert!(resolve_level(Compression::None, Some(3)).is_err());
    }
}
