//! The step cache through its public API: records survive crashes, hits mark
//! use, prune is least-recently-used first, explain names the changed field.
//! Context hashing is in `cache/context.rs`.

mod context;
mod crash;

use std::fs;
use std::path::Path;

use kiln::cache::{
    copy_key, from_key, run_key, CacheError, CacheRecord, ContentDigest, SourceKey, StepCache,
    StepKey,
};
use kiln::oci::{Descriptor, DiffId, Digest, LayerBlob, Store};
use kiln::plan::{CopyOp, CopySource, Excludes, FilesFrom, NetworkMode, RunOp, Security};

/// A record whose layer is a real blob of `size` bytes in the store at `root`.
fn record(root: &Path, tag: &[u8], size: u64, last_used: i64) -> CacheRecord {
    let mut bytes = tag.to_vec();
    bytes.resize(size as usize, b'.');
    let (digest, size) = Store::open(root).unwrap().put_blob(&bytes).unwrap();
    CacheRecord {
        key: StepKey::of(tag),
        layer: Some(LayerBlob {
            descriptor: Descriptor::new(
                "application/vnd.oci.image.layer.v1.tar+gzip",
                digest,
                size,
            ),
            diff_id: DiffId::of(&bytes),
        }),
        other_encodings: Vec::new(),
        created: last_used,
        last_used,
    }
}

fn run_op(cmd: &str) -> RunOp {
    RunOp {
        argv: vec!["/bin/sh".into(), "-c".into(), cmd.into()],
        env: vec!["PATH=/bin".into()],
        proxy_env: vec![],
        user: String::new(),
        workdir: "/".into(),
        network: NetworkMode::Default,
        security: Security::Sandbox,
        mounts: vec![],
        files: vec![],
        stdin: None,
    }
}

/// A RUN's key (no mounts, so nothing to resolve).
fn run(parent: &StepKey, op: &RunOp) -> (StepKey, Vec<u8>) {
    let no_mounts = |_: &_, _: &str| -> Result<_, std::convert::Infallible> { unreachable!() };
    run_key(Some(parent), op, no_mounts).unwrap().unwrap()
}

#[test]
fn put_then_get_round_trips_and_a_miss_is_none() {
    let dir = tempfile::tempdir().unwrap();
    let cache = StepCache::open(dir.path()).unwrap();
    let rec = record(dir.path(), b"a", 10, 1_000);
    cache.put(&rec, None).unwrap();
    let got = cache.get(&rec.key).unwrap().expect("a hit");
    assert_eq!(got.key, rec.key);
    assert_eq!(got.layer, rec.layer);
    assert_eq!(got.created, 1_000);
    assert!(got.last_used > 1_000, "a hit marks the record used now");
    // ... and that survives a reopen, which is what prune sees.
    let again = StepCache::open(dir.path()).unwrap();
    let listed = again.records().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].last_used, got.last_used);
    assert!(cache.get(&StepKey::of(b"other")).unwrap().is_none());
    // A step that changed nothing has a record without a layer.
    let empty = CacheRecord::new(StepKey::of(b"noop"), None);
    cache.put(&empty, None).unwrap();
    assert_eq!(cache.get(&empty.key).unwrap().unwrap().layer, None);
}

#[test]
fn records_are_where_the_design_says() {
    let dir = tempfile::tempdir().unwrap();
    let cache = StepCache::open(dir.path()).unwrap();
    let rec = record(dir.path(), b"a", 1, 5);
    cache.put(&rec, Some(b"{}")).unwrap();
    let hex = rec.key.hex();
    let path = dir.path().join("cache/steps").join(&hex[..2]).join(&hex);
    assert!(path.is_file(), "{} missing", path.display());
    assert!(path.with_extension("preimage").is_file());
    assert_eq!(cache.record_path(&rec.key), path);
}

#[test]
fn leftovers_of_a_killed_write_are_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let cache = StepCache::open(dir.path()).unwrap();
    let rec = record(dir.path(), b"kept", 1, 5);
    cache.put(&rec, None).unwrap();
    // What a process killed mid-write can leave: a half-written temp file
    // beside the records and another in the store's tmp/.
    let bucket = cache.record_path(&rec.key);
    let bucket = bucket.parent().unwrap();
    fs::write(bucket.join(".tmpA1b2C3"), b"{\"v\":1,\"key\":\"sha").unwrap();
    fs::write(dir.path().join("tmp/file-XYZ"), b"{\"v\":1,").unwrap();

    let reopened = StepCache::open(dir.path()).unwrap();
    let recs = reopened.records().unwrap();
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].key, rec.key);
    assert!(reopened.get(&rec.key).unwrap().is_some());
    let report = reopened.prune(u64::MAX).unwrap();
    assert!(report.removed.is_empty());
    assert_eq!(report.unreadable_removed, 0);
}

#[test]
fn a_record_whose_layer_blob_is_gone_is_a_miss() {
    let dir = tempfile::tempdir().unwrap();
    let cache = StepCache::open(dir.path()).unwrap();
    let rec = record(dir.path(), b"pruned", 10, 5);
    cache.put(&rec, None).unwrap();
    assert!(cache.get(&rec.key).unwrap().is_some());
    let blob = Store::open(dir.path())
        .unwrap()
        .blob_path(&rec.layer.unwrap().descriptor.digest);
    fs::remove_file(blob).unwrap();
    assert!(cache.get(&rec.key).unwrap().is_none());
}

#[test]
fn a_record_filed_under_the_wrong_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cache = StepCache::open(dir.path()).unwrap();
    let rec = record(dir.path(), b"a", 1, 5);
    cache.put(&rec, None).unwrap();
    let other = StepKey::of(b"b");
    let dest = cache.record_path(&other);
    fs::create_dir_all(dest.parent().unwrap()).unwrap();
    fs::copy(cache.record_path(&rec.key), &dest).unwrap();
    let err = cache.get(&other).unwrap_err();
    assert!(matches!(err, CacheError::KeyMismatch { found, .. } if found == rec.key));
}

#[test]
fn prune_keeps_the_most_recently_used() {
    let dir = tempfile::tempdir().unwrap();
    let cache = StepCache::open(dir.path()).unwrap();
    let old = record(dir.path(), b"old", 100, 1_000);
    let mid = record(dir.path(), b"mid", 100, 2_000);
    let new = record(dir.path(), b"new", 100, 3_000);
    // `shared` uses the same layer as `new`: that blob counts once.
    let shared = CacheRecord {
        key: StepKey::of(b"shared"),
        ..record(dir.path(), b"new", 100, 2_500)
    };
    for r in [&old, &mid, &new, &shared] {
        cache.put(r, Some(b"{}")).unwrap();
    }
    // Using `old` makes it the most recent.
    assert!(cache.get(&old.key).unwrap().is_some());

    let report = cache.prune(250).unwrap();
    assert_eq!(report.removed, vec![mid.key]);
    assert_eq!(report.kept_bytes, 200);
    let mut want = vec![
        old.layer.unwrap().descriptor.digest,
        new.layer.clone().unwrap().descriptor.digest,
    ];
    want.sort();
    assert_eq!(report.kept_layers, want);
    assert!(cache.get(&mid.key).unwrap().is_none());
    assert!(!cache
        .record_path(&mid.key)
        .with_extension("preimage")
        .exists());
    assert!(cache.get(&shared.key).unwrap().is_some());

    let report = cache.prune(0).unwrap();
    assert_eq!(report.removed.len(), 3);
    assert!(cache.records().unwrap().is_empty());
}

#[test]
fn prune_removes_records_that_cannot_be_parsed() {
    let dir = tempfile::tempdir().unwrap();
    let cache = StepCache::open(dir.path()).unwrap();
    let key = StepKey::of(b"bad");
    let path = cache.record_path(&key);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(&path, b"not json").unwrap();
    assert!(matches!(cache.get(&key), Err(CacheError::Parse { .. })));
    let report = cache.prune(u64::MAX).unwrap();
    assert_eq!(report.unreadable_removed, 1);
    assert!(cache.get(&key).unwrap().is_none());
}

#[test]
fn explain_names_the_field_that_changed() {
    let dir = tempfile::tempdir().unwrap();
    let cache = StepCache::open(dir.path()).unwrap();
    let base = from_key(&Digest::of(b"busybox manifest")).0;
    let put = |k: &(StepKey, Vec<u8>)| cache.put(&CacheRecord::new(k.0, None), Some(&k.1)).unwrap();
    let a = run(&base, &run_op("make"));
    let mut changed = run_op("make");
    changed.env.push("CGO_ENABLED=0".into());
    let b = run(&base, &changed);
    put(&a);
    put(&b);
    let changes = cache.explain(&a.0, &b.0).unwrap();
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(changes[0].path, "op.env[1]");
    assert_eq!(changes[0].after, Some(serde_json::json!("CGO_ENABLED=0")));
    assert!(cache.explain(&a.0, &a.0).unwrap().is_empty());

    // A COPY whose context changed: the input is named.
    let op = CopyOp {
        from: FilesFrom::Context,
        sources: vec![CopySource::Path(".".into())],
        heredocs: vec![],
        dest: "/app/".into(),
        chown: None,
        chmod: None,
        link: false,
        parents: false,
        excludes: Excludes::default(),
        add: None,
        dest_is_dir_hint: true,
    };
    let copy = |parent: &StepKey, d: &[u8]| {
        copy_key(
            Some(parent),
            &op,
            &SourceKey::Context(ContentDigest::of(d)),
            &[],
        )
    };
    let c1 = copy(&a.0, b"v1");
    let c2 = copy(&a.0, b"v2");
    put(&c1);
    put(&c2);
    let changes = cache.explain(&c1.0, &c2.0).unwrap();
    let paths: Vec<_> = changes.iter().map(|c| c.path.as_str()).collect();
    assert_eq!(paths, ["inputs[0]"]);
    // A step whose parent changed says so.
    let c3 = copy(&b.0, b"v1");
    put(&c3);
    let changes = cache.explain(&c1.0, &c3.0).unwrap();
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].path, "parent");
}

#[test]
fn explain_without_debug_cache_says_how_to_get_it() {
    let dir = tempfile::tempdir().unwrap();
    let cache = StepCache::open(dir.path()).unwrap();
    let rec = record(dir.path(), b"a", 1, 5);
    cache.put(&rec, None).unwrap();
    let err = cache.explain(&rec.key, &rec.key).unwrap_err();
    assert!(err.to_string().contains("--debug-cache"), "{err}");
}
