//! Dockerfile parsing throughput: every real-world Dockerfile of the conformance corpus
//! (`$KILN_CONFORMANCE_DIR`, default `../shared/conformance`) parsed in one iteration, plus
//! one synthetic 5,000-instruction file with continuations and heredocs. Parsing is never
//! where a build's time goes; this bench keeps it that way (a regression to quadratic
//! behaviour on long continuations would show here first).
//!
//! Run with `cargo bench --bench parse`.

use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use walkdir::WalkDir;

fn corpus() -> Vec<Vec<u8>> {
    let dir = std::env::var_os("KILN_CONFORMANCE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("../shared/conformance"));
    let files: Vec<Vec<u8>> = WalkDir::new(dir.join("real-world"))
        .sort_by_file_name()
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_name() == "Dockerfile")
        .filter_map(|e| std::fs::read(e.path()).ok())
        .collect();
    if files.is_empty() {
        eprintln!(
            "parse bench: no corpus under {} (set KILN_CONFORMANCE_DIR)",
            dir.display()
        );
    }
    files
}

fn synthetic() -> Vec<u8> {
    let mut s =
        String::from("# syntax=docker/dockerfile:1\nARG BASE=busybox\nFROM $BASE AS build\n");
    for i in 0..1_000 {
        s.push_str(&format!(
            "ENV K{i}=v{i} \\\n    L{i}=\"two words\"\nRUN --mount=type=cache,target=/c{i} \\\n    echo {i} && \\\n    # a comment inside\n    true\nCOPY --chown=1:1 a{i} /b{i}/\nRUN <<EOF\necho heredoc {i}\nEOF\nLABEL n{i}=\"x\"\n"
        ));
    }
    s.into_bytes()
}

fn parse(c: &mut Criterion) {
    let files = corpus();
    let mut group = c.benchmark_group("parse");
    if !files.is_empty() {
        let bytes: usize = files.iter().map(Vec::len).sum();
        group.throughput(Throughput::Bytes(bytes as u64));
        group.bench_function(format!("real-world-{}-files", files.len()), |b| {
            b.iter(|| {
                for f in &files {
                    let _ = kiln::dockerfile::parse(f);
                }
            })
        });
    }
    let big = synthetic();
    group.throughput(Throughput::Bytes(big.len() as u64));
    group.bench_function("synthetic-5000-instructions", |b| {
        b.iter(|| kiln::dockerfile::parse(&big).unwrap())
    });
    group.finish();
}

criterion_group!(benches, parse);
criterion_main!(benches);
