//! Context hashing, cold (empty stat cache: every content read) versus warm
//! (stat cache saved by a previous run: no content read), on the issue's
//! context: 10,000 small files in 100 directories plus one 200 MB file.
//!
//! `KILN_BENCH_BIG_MB` shrinks the big file for a quick run.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use kiln::cache::{ContextHasher, RACY_WINDOW_NS};

const DIRS: usize = 100;
const FILES_PER_DIR: usize = 100;

/// A named edit of one context file.
type Change<'a> = (&'static str, &'a dyn Fn(&Path));

fn all(_: &Path, _: bool) -> bool {
    true
}

fn make_context(root: &Path, big_mb: usize) {
    for d in 0..DIRS {
        let dir = root.join(format!("pkg{d:03}"));
        fs::create_dir(&dir).unwrap();
        for f in 0..FILES_PER_DIR {
            let body = format!("// file {d}/{f}\n").repeat(1 + (d * f) % 40);
            fs::write(dir.join(format!("m{f:03}.rs")), body).unwrap();
        }
    }
    let mut big = fs::File::create(root.join("big.bin")).unwrap();
    let chunk: Vec<u8> = (0..1 << 20)
        .map(|i: u32| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    for _ in 0..big_mb {
        big.write_all(&chunk).unwrap();
    }
    big.sync_all().unwrap();
    // Let every file age past the racy window, or the warm run rereads them.
    std::thread::sleep(Duration::from_nanos(RACY_WINDOW_NS as u64) + Duration::from_millis(200));
}

fn hash(store: &Path, ctx: &Path) -> (ContextHasher, kiln::cache::ContentDigest) {
    let h = ContextHasher::open(store, ctx).unwrap();
    let d = h.digest_paths(&[PathBuf::from(".")], &all).unwrap();
    (h, d)
}

fn bench_context(c: &mut Criterion) {
    let big_mb = std::env::var("KILN_BENCH_BIG_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let ctx = tempfile::tempdir().unwrap();
    make_context(ctx.path(), big_mb);
    let warm_store = tempfile::tempdir().unwrap();
    let t = Instant::now();
    let (h, cold_digest) = hash(warm_store.path(), ctx.path());
    h.save().unwrap();
    eprintln!(
        "first cold run: {:?}, {} files read",
        t.elapsed(),
        h.content_reads()
    );

    for _ in 0..3 {
        let t = Instant::now();
        let h = ContextHasher::open(warm_store.path(), ctx.path()).unwrap();
        let opened = t.elapsed();
        h.digest_paths(&[PathBuf::from(".")], &all).unwrap();
        let hashed = t.elapsed();
        h.save().unwrap();
        eprintln!(
            "warm run: open (load stat cache) {opened:?}, digest {:?}, save {:?}, {} reads",
            hashed - opened,
            t.elapsed() - hashed,
            h.content_reads()
        );
    }

    let mut group = c.benchmark_group("context_10k_files_plus_big");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.bench_function("cold", |b| {
        b.iter_batched(
            || tempfile::tempdir().unwrap(),
            |store| {
                let (h, d) = hash(store.path(), ctx.path());
                h.save().unwrap();
                assert_eq!(d, cold_digest);
                store
            },
            BatchSize::PerIteration,
        )
    });
    group.bench_function("warm", |b| {
        b.iter(|| {
            let (h, d) = hash(warm_store.path(), ctx.path());
            h.save().unwrap();
            assert_eq!(d, cold_digest);
            assert_eq!(h.content_reads(), 0);
        })
    });
    group.finish();

    let one = ctx.path().join("pkg050/m050.rs");
    let touch = |p: &Path| filetime::set_file_mtime(p, filetime::FileTime::now()).unwrap();
    let rewrite = |p: &Path| fs::write(p, b"changed\n").unwrap();
    let changes: [Change; 2] = [("touched one file", &touch), ("changed one file", &rewrite)];
    for (what, change) in changes {
        change(&one);
        let t = Instant::now();
        let (h, d) = hash(warm_store.path(), ctx.path());
        eprintln!(
            "{what}: {:?}, {} files read, digest {}",
            t.elapsed(),
            h.content_reads(),
            if d == cold_digest { "same" } else { "changed" }
        );
    }
}

criterion_group!(benches, bench_context);
criterion_main!(benches);
