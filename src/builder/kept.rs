//! Keeping an archive output that already holds the wanted bytes: after
//! writing `-o type=oci|docker,dest=FILE`, kiln records in the store
//! ([`Layout::export_record`]) the file's stat signature (device, inode,
//! size, mtime ns, ctime ns) and the fingerprint of what it holds
//! ([`crate::oci::ArchivePlan::fingerprint`]); the next build whose archive
//! has the same fingerprint leaves a file with exactly that signature alone.
//!
//! Invariants:
//! - a record is only written for a file kiln wrote, after the finished
//!   archive was renamed into place, and only once the clock has moved past
//!   the file's ctime and mtime (so any later write to it, even within the
//!   same timestamp tick as kiln's, gives another ctime; a file system
//!   without sub-second timestamps gets no record);
//! - ctime cannot be set by a user (`touch -r` restores mtime, not ctime),
//!   and a replaced file has another inode or ctime: any change to the file
//!   after kiln wrote it makes the record miss and the archive be rewritten;
//! - records are written atomically (store temp + fsync + rename); a
//!   missing, unreadable or corrupt record is a miss, never an error.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::oci::{Digest, Store};
use crate::store::Layout;

const RECORD_VERSION: u32 = 1;

/// The longest kiln waits for the clock to pass a file's timestamps before
/// it gives up recording it (a clock far behind the file system's).
const MAX_WAIT: Duration = Duration::from_millis(100);

/// The stat fields that must all match for a record to be trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Signature {
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
}

impl Signature {
    fn of(m: &fs::Metadata) -> Self {
        Self {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
            ctime_ns: i128::from(m.ctime()) * 1_000_000_000 + i128::from(m.ctime_nsec()),
        }
    }
}

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
struct Record {
    v: u32,
    path: PathBuf,
    stat: Signature,
    content: Digest,
}

/// True when `path` (canonical) is a regular file kiln wrote with content
/// `content` and that nothing has touched since.
pub(super) fn unchanged(store: &Store, path: &Path, content: &Digest) -> bool {
    let Ok(bytes) = fs::read(Layout::of(store).export_record(path)) else {
        return false;
    };
    let Ok(rec) = serde_json::from_slice::<Record>(&bytes) else {
        return false;
    };
    let Ok(meta) = fs::symlink_metadata(path) else {
        return false;
    };
    meta.is_file()
        && rec
            == Record {
                v: RECORD_VERSION,
                path: path.to_path_buf(),
                stat: Signature::of(&meta),
                content: *content,
            }
}

/// Records that `path` (canonical), the file kiln just renamed there from a
/// file with inode `ino` on device `dev`, holds `content`. Best effort: when
/// the file cannot be vouched for (replaced meanwhile, timestamps too
/// coarse, the clock behind) or the record cannot be written, any old
/// record is removed and the next build rewrites the archive.
pub(super) fn record(store: &Store, path: &Path, (dev, ino): (u64, u64), content: &Digest) {
    let file = Layout::of(store).export_record(path);
    let _ = fs::remove_file(&file);
    let Some(meta) = settled(path) else {
        return;
    };
    if meta.dev() != dev || meta.ino() != ino || !meta.is_file() {
        return;
    }
    let rec = Record {
        v: RECORD_VERSION,
        path: path.to_path_buf(),
        stat: Signature::of(&meta),
        content: *content,
    };
    let Ok(bytes) = serde_json::to_vec(&rec) else {
        return;
    };
    if let Some(dir) = file.parent() {
        if fs::create_dir_all(dir).is_err() {
            return;
        }
    }
    if let Err(e) = store.write_file_atomic(&file, &bytes) {
        tracing::debug!("recording the archive at {}: {e}", path.display());
    }
}

/// `path`'s metadata read once the coarse clock (the one file timestamps
/// come from) is past its ctime and mtime, or None when it does not get
/// there soon or the timestamps have no sub-second part.
fn settled(path: &Path) -> Option<fs::Metadata> {
    use nix::time::{clock_gettime, ClockId};
    let meta = fs::symlink_metadata(path).ok()?;
    let sig = Signature::of(&meta);
    if meta.mtime_nsec() == 0 && meta.ctime_nsec() == 0 {
        // Most likely whole-second timestamps: a write in the same second
        // would keep them.
        return None;
    }
    let newest = sig.mtime_ns.max(sig.ctime_ns);
    let start = Instant::now();
    loop {
        let now = clock_gettime(ClockId::CLOCK_REALTIME_COARSE).ok()?;
        let now_ns = i128::from(now.tv_sec()) * 1_000_000_000 + i128::from(now.tv_nsec());
        if now_ns > newest {
            break;
        }
        if start.elapsed() > MAX_WAIT {
            return None;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    // Read again: what a write before the tick passed did is seen now, and
    // any write from now on gets a later ctime.
    fs::symlink_metadata(path).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (tempfile::TempDir, Store, PathBuf, (u64, u64)) {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::open(&dir.path().join("root")).unwrap();
        let file = dir.path().join("img.tar");
        fs::write(&file, b"archive").unwrap();
        let m = fs::metadata(&file).unwrap();
        (dir, store, file, (m.dev(), m.ino()))
    }

    #[test]
    fn a_recorded_file_is_unchanged_until_anything_differs() {
        let (_dir, store, file, id) = setup();
        let content = Digest::of(b"plan");
        assert!(!unchanged(&store, &file, &content), "no record yet");
        record(&store, &file, id, &content);
        assert!(unchanged(&store, &file, &content));
        assert!(!unchanged(&store, &file, &Digest::of(b"other plan")));
        // Rewritten with the same bytes: ctime moved.
        fs::write(&file, b"archive").unwrap();
        assert!(!unchanged(&store, &file, &content));
    }

    #[test]
    fn a_corrupt_record_or_another_inode_is_a_miss() {
        let (_dir, store, file, (dev, ino)) = setup();
        let content = Digest::of(b"plan");
        record(&store, &file, (dev, ino + 1), &content);
        assert!(
            !unchanged(&store, &file, &content),
            "not the file kiln wrote"
        );
        record(&store, &file, (dev, ino), &content);
        let rec = Layout::of(&store).export_record(&file);
        fs::write(&rec, b"{\"v\":1,").unwrap();
        assert!(!unchanged(&store, &file, &content));
    }
}
