//! `fsck`: re-verifies a store against its invariants and, on request,
//! removes what is damaged.
//!
//! What is checked: every blob under `blobs/sha256` is re-hashed (in
//! parallel, streaming, one bounded buffer per worker); every named image's
//! manifest/index, config and layers are present, the size their descriptor
//! says, uncorrupted and parseable; every `snapshots/` entry named by a
//! diff_id is a directory with the root mode a placed snapshot has (other
//! names are noted and left alone) (snapshots are
//! unpacked in `tmp/` and renamed, so a half-made one can only be a `tmp/`
//! leftover); every file under `cache/steps/` is valid JSON (checked as JSON
//! only: this module does not know the cache's record schema).
//!
//! Invariants: fsck never removes a blob that hashes to its name, nor a
//! snapshot or record that passed its check; `tmp/` leftovers are notes, not
//! problems (nothing reads another process's temp entries). `--repair`
//! removes `tmp/` entries whatever their age, so its caller must hold the
//! store lock exclusive (`StoreLock::exclusive`): no build is then running.

mod findings;
mod images;
#[cfg(test)]
mod tests;

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use rayon::prelude::*;

pub use findings::{BlobFault, Note, Problem, Repair};

use super::Layout;
use crate::oci::{DiffId, Digest, Hasher, Store};

/// Bytes read from a blob at a time (per worker).
const READ_BUF: usize = 256 * 1024;

/// What fsck could not do at all (as opposed to what it found wrong).
#[derive(Debug, thiserror::Error)]
pub enum FsckError {
    /// Listing one of the store's directories.
    #[error("listing {path}")]
    List {
        /// The directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Removing something `--repair` chose to remove.
    #[error("removing {path}")]
    Remove {
        /// What was being removed.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

/// What a check found, and what `--repair` did about it.
#[derive(Debug, Default)]
pub struct FsckReport {
    /// Blobs re-hashed.
    pub blobs: usize,
    /// Their total size.
    pub bytes: u64,
    /// Named images walked.
    pub images: usize,
    /// Snapshot entries looked at.
    pub snapshots: usize,
    /// Cache record files parsed.
    pub cache_records: usize,
    /// Defects, in the order found.
    pub problems: Vec<Problem>,
    /// Harmless findings.
    pub notes: Vec<Note>,
    /// What `--repair` removed.
    pub repairs: Vec<Repair>,
    /// Whether `--repair` ran (and so removed every repairable problem).
    pub repaired: bool,
}

impl FsckReport {
    /// True when no problem was found, or `--repair` removed every one.
    pub fn healthy(&self) -> bool {
        self.problems
            .iter()
            .all(|p| self.repaired && p.repairable())
    }
}

/// Checks `store`; with `repair`, removes corrupt blobs, broken snapshots,
/// unparsable cache records and `tmp/` leftovers.
pub fn fsck(store: &Store, repair: bool) -> Result<FsckReport, FsckError> {
    let mut report = FsckReport::default();
    let corrupt = check_blobs(store, &mut report)?;
    images::check_images(store, &corrupt, &mut report);
    check_snapshots(store, &mut report)?;
    check_cache(store, &mut report)?;
    check_tmp(store, &mut report)?;
    if repair {
        apply_repairs(store, &mut report)?;
    }
    Ok(report)
}

fn list(dir: &Path) -> Result<Vec<fs::DirEntry>, FsckError> {
    let err = |source| FsckError::List {
        path: dir.to_path_buf(),
        source,
    };
    match fs::read_dir(dir) {
        Ok(rd) => rd.collect::<Result<Vec<_>, _>>().map_err(err),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(err(e)),
    }
}

/// Re-hashes every blob; returns the digests of those that failed.
fn check_blobs(store: &Store, report: &mut FsckReport) -> Result<BTreeSet<Digest>, FsckError> {
    let dir = store.blobs_dir();
    let mut blobs = Vec::new();
    for entry in list(&dir)? {
        let name = entry.file_name();
        match Digest::parse(&format!("sha256:{}", name.to_string_lossy())) {
            Ok(d) => blobs.push((d, entry.path())),
            Err(_) => report
                .notes
                .push(Note::StrayBlobFile { path: entry.path() }),
        }
    }
    blobs.sort();
    let results: Vec<(Digest, io::Result<(Digest, u64)>)> = blobs
        .par_iter()
        .map(|(d, path)| (*d, hash_file(path)))
        .collect();
    let mut bad = BTreeSet::new();
    for (digest, res) in results {
        report.blobs += 1;
        match res {
            Ok((actual, size)) => {
                report.bytes += size;
                if actual != digest {
                    bad.insert(digest);
                    report
                        .problems
                        .push(Problem::CorruptBlob { digest, actual });
                }
            }
            Err(source) => {
                bad.insert(digest);
                report
                    .problems
                    .push(Problem::UnreadableBlob { digest, source });
            }
        }
    }
    Ok(bad)
}

/// The sha256 and length of a file, read in bounded chunks.
fn hash_file(path: &Path) -> io::Result<(Digest, u64)> {
    let mut file = File::open(path)?;
    let mut hasher = Hasher::new();
    let mut buf = vec![0u8; READ_BUF];
    let mut size = 0u64;
    loop {
        match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                hasher.update(&buf[..n]);
                size += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok((Digest::from_bytes(hasher.finish()), size))
}

/// A placed snapshot is a 0755 directory named by a diff_id, owned by
/// whoever owns `snapshots/` (root, unless kiln runs rootless). Entries not
/// named by a diff_id are not snapshots (another module's lock or index
/// file, a newer kiln's layout): noted, never removed.
fn check_snapshots(store: &Store, report: &mut FsckReport) -> Result<(), FsckError> {
    let dir = Layout::of(store).snapshots();
    let owner = fs::metadata(&dir).map_or(0, |m| m.uid());
    for entry in list(&dir)? {
        let path = entry.path();
        let name = entry.file_name();
        let is_diff_id = name
            .to_str()
            .is_some_and(|n| DiffId::parse(&format!("sha256:{n}")).is_ok());
        if !is_diff_id {
            report.notes.push(Note::UnknownSnapshotEntry { path });
            continue;
        }
        report.snapshots += 1;
        if let Some(reason) = snapshot_fault(&path, owner) {
            report
                .problems
                .push(Problem::BrokenSnapshot { path, reason });
        }
    }
    Ok(())
}

fn snapshot_fault(path: &Path, owner: u32) -> Option<&'static str> {
    match fs::symlink_metadata(path) {
        Err(_) => Some("it cannot be read"),
        Ok(m) if !m.is_dir() => Some("it is not a directory"),
        Ok(m) if m.mode() & 0o7777 != 0o755 || m.uid() != owner => {
            Some("its root is not the 0755 dir, owned like snapshots/, that a placed snapshot has")
        }
        Ok(_) => None,
    }
}

/// Every file under `cache/steps/` must be valid JSON.
fn check_cache(store: &Store, report: &mut FsckReport) -> Result<(), FsckError> {
    let mut dirs = vec![Layout::of(store).step_records()];
    while let Some(dir) = dirs.pop() {
        for entry in list(&dir)? {
            let path = entry.path();
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                dirs.push(path);
                continue;
            }
            report.cache_records += 1;
            let parsed = File::open(&path)
                .map_err(serde_json::Error::io)
                .and_then(|f| {
                    serde_json::from_reader::<_, serde_json::Value>(io::BufReader::new(f))
                });
            if let Err(source) = parsed {
                report
                    .problems
                    .push(Problem::BadCacheRecord { path, source });
            }
        }
    }
    Ok(())
}

fn check_tmp(store: &Store, report: &mut FsckReport) -> Result<(), FsckError> {
    let now = SystemTime::now();
    for entry in list(&store.tmp_dir())? {
        let age = entry
            .metadata()
            .ok()
            .and_then(|m| m.modified().ok())
            .and_then(|t| now.duration_since(t).ok())
            .unwrap_or_default();
        report.notes.push(Note::TmpLeftover {
            path: entry.path(),
            age,
        });
    }
    Ok(())
}

fn remove(path: &Path) -> Result<(), FsckError> {
    let res = match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) => Err(e),
    };
    match res {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(FsckError::Remove {
            path: path.to_path_buf(),
            source,
        }),
    }
}

fn apply_repairs(store: &Store, report: &mut FsckReport) -> Result<(), FsckError> {
    let mut done = Vec::new();
    for p in &report.problems {
        match p {
            Problem::CorruptBlob { digest, .. } => {
                remove(&store.blob_path(digest))?;
                done.push(Repair::RemovedBlob(*digest));
            }
            Problem::BrokenSnapshot { path, .. } => {
                remove(path)?;
                done.push(Repair::RemovedSnapshot(path.clone()));
            }
            Problem::BadCacheRecord { path, .. } => {
                remove(path)?;
                done.push(Repair::RemovedCacheRecord(path.clone()));
            }
            _ => {}
        }
    }
    for n in &report.notes {
        if let Note::TmpLeftover { path, .. } = n {
            remove(path)?;
            done.push(Repair::RemovedTmp(path.clone()));
        }
    }
    report.repairs = done;
    report.repaired = true;
    Ok(())
}
