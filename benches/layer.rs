//! Layer packing and unpacking throughput: 2,000 small files and one 50 MB file, packed
//! with gzip, zstd and no compression (MB/s of uncompressed tar), then unpacked.
//! The peer in the same run is `single-thread-gzip`: the same tar stream through one
//! flate2 gzip encoder at the same level (6), which is what `tar | gzip` or a builder
//! without parallel compression does.
//!
//! Run with `cargo bench --bench layer`.

use std::fs;
use std::path::Path;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use flate2::write::GzEncoder;
use kiln::layer::{pack, unpack, Compression, PackOptions, SourceKind, UnpackMode};

/// Mostly text-like bytes (compressible about 3:1, like binaries and sources).
fn content(len: usize, seed: u64) -> Vec<u8> {
    const WORDS: [&[u8]; 8] = [
        b"layer ",
        b"kiln ",
        b"\x7fELF\x02\x01",
        b"{\"digest\":",
        b"sha256 ",
        b"\n",
        b"\0\0\0\0",
        b"tar ",
    ];
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 16);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        if x.is_multiple_of(4) {
            out.extend_from_slice(&x.to_le_bytes());
        } else {
            out.extend_from_slice(WORDS[(x >> 8) as usize % WORDS.len()]);
        }
    }
    out.truncate(len);
    out
}

fn small_files(root: &Path) {
    for i in 0..2_000u64 {
        let dir = root.join(format!("d{:02}", i % 50));
        fs::create_dir_all(&dir).unwrap();
        fs::write(
            dir.join(format!("f{i:04}")),
            content(512 + (i as usize * 37) % 4096, i),
        )
        .unwrap();
    }
}

fn one_big_file(root: &Path) {
    fs::write(root.join("big"), content(50 << 20, 42)).unwrap();
}

fn bench_tree(c: &mut Criterion, name: &str, fill: fn(&Path)) {
    let src = tempfile::tempdir().unwrap();
    fill(src.path());
    let mut group = c.benchmark_group(format!("layer/{name}"));
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(8));
    let plain = PackOptions {
        compression: Compression::None,
        ..PackOptions::default()
    };
    let size = pack(src.path(), SourceKind::Plain, &plain, std::io::sink())
        .unwrap()
        .uncompressed_size;
    group.throughput(Throughput::Bytes(size));
    group.bench_function(BenchmarkId::new("pack", "single-thread-gzip"), |b| {
        b.iter(|| {
            let gz = GzEncoder::new(std::io::sink(), flate2::Compression::new(6));
            pack(src.path(), SourceKind::Plain, &plain, gz).unwrap()
        })
    });
    for compression in [Compression::Gzip, Compression::Zstd, Compression::None] {
        let opts = PackOptions {
            compression,
            ..PackOptions::default()
        };
        group.bench_function(BenchmarkId::new("pack", format!("{compression:?}")), |b| {
            b.iter(|| pack(src.path(), SourceKind::Plain, &opts, std::io::sink()).unwrap())
        });
        let mut blob = Vec::new();
        pack(src.path(), SourceKind::Plain, &opts, &mut blob).unwrap();
        group.bench_function(
            BenchmarkId::new("unpack", format!("{compression:?}")),
            |b| {
                // The dir is returned, so criterion drops (removes) it
                // outside the timing: only the unpack is measured.
                b.iter_with_setup(
                    || tempfile::tempdir().unwrap(),
                    |dest| {
                        unpack(&blob[..], dest.path(), UnpackMode::Apply).unwrap();
                        dest
                    },
                )
            },
        );
    }
    group.finish();
}

fn layer(c: &mut Criterion) {
    bench_tree(c, "2000-small-files", small_files);
    bench_tree(c, "one-50MB-file", one_big_file);
}

criterion_group!(benches, layer);
criterion_main!(benches);
