//! Records survive real kills: a child process writes records as fast as it
//! can and is SIGKILLed after a seeded delay; every record left must parse
//! and hit, for several seeds.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kiln::cache::{workdir_key, CacheRecord, StepCache};
use kiln::plan::WorkdirOp;

/// Set in the child: the store to write into until killed.
const CHILD_ENV: &str = "KILN_CACHE_CRASH_STORE";
const CHILD_TEST: &str = "cache::crash::writer_child_writes_records_that_read_back";

/// Writes `n` records (with pre-images) into the store at `root`.
fn write_records(root: &Path, n: usize) -> Vec<CacheRecord> {
    let cache = StepCache::open(root).unwrap();
    let mut out = Vec::new();
    for i in 0..n {
        let op = WorkdirOp {
            path: format!("/w/{i}"),
            user: String::new(),
        };
        let (key, pre) = workdir_key(None, &op);
        let rec = CacheRecord::new(key, None);
        cache.put(&rec, Some(&pre)).unwrap();
        out.push(rec);
    }
    out
}

/// In the child (env set): writes until killed, giving up after 30 s so an
/// orphan never lingers. Alone: writes some records and reads them back.
#[test]
fn writer_child_writes_records_that_read_back() {
    if let Some(root) = std::env::var_os(CHILD_ENV) {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(30) {
            write_records(Path::new(&root), 1_000_000);
        }
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let recs = write_records(dir.path(), 20);
    let cache = StepCache::open(dir.path()).unwrap();
    for r in &recs {
        assert_eq!(cache.get(&r.key).unwrap().unwrap().key, r.key);
    }
    assert_eq!(cache.records().unwrap().len(), 20);
}

fn lcg(seed: u64) -> u64 {
    seed.wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407)
        >> 33
}

#[test]
fn records_survive_a_writer_killed_at_random_points() {
    for seed in 1..=5u64 {
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([CHILD_TEST, "--exact", "--test-threads=1", "--quiet"])
            .env(CHILD_ENV, dir.path())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let cache = StepCache::open(dir.path()).unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while cache.records().unwrap().is_empty() {
            assert!(Instant::now() < deadline, "the child wrote nothing");
            std::thread::sleep(Duration::from_millis(2));
        }
        std::thread::sleep(Duration::from_millis(lcg(seed) % 50));
        child.kill().unwrap();
        child.wait().unwrap();

        let recs = cache.records().expect("every record parses after a kill");
        assert!(!recs.is_empty());
        eprintln!("seed {seed}: {} records survived the kill", recs.len());
        for r in &recs {
            let hit = cache.get(&r.key).unwrap().expect("a listed record hits");
            assert_eq!(hit.key, r.key);
            assert!(
                cache.preimage(&r.key).unwrap().is_some(),
                "pre-image written first"
            );
        }
        let report = cache.prune(u64::MAX).unwrap();
        assert_eq!(report.unreadable_removed, 0, "seed {seed}");
    }
}
