//! The store-wide lock, `<root>/lock`: maintenance never races a build.
//!
//! Every process that writes blobs or temp files it has not yet tied to a
//! name (build, load, pull, save) holds the lock *shared* for as long as it
//! uses the store; `kiln prune` and `kiln fsck --repair`, which remove what
//! no name reaches and every `tmp/` entry, hold it *exclusive*. Plain
//! `kiln fsck` only reads, so it takes it shared.
//!
//! Invariants:
//! - the lock is an `flock(2)` on an open file description, so the kernel
//!   drops it when its holder dies: a killed build never wedges the store.
//!   The fd is close-on-exec, so RUN's processes never inherit it.
//! - acquiring never gives up: a maintenance command waits for the builds
//!   before it (BuildKit's gc waits too), and a build started during a prune
//!   waits for that prune. Whoever must wait is told once, through
//!   `on_wait`, before blocking, so the CLI can say why it is not moving.
//! - [`super::open`] removes stale `tmp/` entries only while it can take the
//!   lock exclusive without waiting, so it never removes a live build's
//!   temp entry however old.
//!
//! Linux's `flock` does not favour writers: a stream of overlapping builds
//! can keep a waiting prune waiting until it ends.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use fs2::FileExt;

use super::{Layout, RootError};
use crate::oci::Store;

/// How a process holds the store lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockMode {
    /// Builds, loads, pulls, saves and plain fsck: any number at once.
    Shared,
    /// Prune and fsck --repair: alone.
    Exclusive,
}

/// Holds the store lock until dropped (or until the process dies).
#[derive(Debug)]
pub struct StoreLock {
    _file: File,
    mode: LockMode,
}

impl StoreLock {
    /// How this lock is held.
    pub fn mode(&self) -> LockMode {
        self.mode
    }

    /// Takes the lock of `store` shared (build, load, pull, save, fsck),
    /// waiting silently for a running prune or fsck --repair.
    pub fn shared(store: &Store) -> Result<StoreLock, RootError> {
        Self::acquire(store, LockMode::Shared, |_| {})
    }

    /// Takes the lock exclusive (prune, fsck --repair), waiting silently
    /// for every build, load, pull and save using the store.
    pub fn exclusive(store: &Store) -> Result<StoreLock, RootError> {
        Self::acquire(store, LockMode::Exclusive, |_| {})
    }

    /// Takes the lock in `mode`; when it is held in a conflicting mode,
    /// calls `on_wait` once and then blocks until it is free.
    pub fn acquire(
        store: &Store,
        mode: LockMode,
        on_wait: impl FnOnce(&LockWait),
    ) -> Result<StoreLock, RootError> {
        if let Some(lock) = Self::try_acquire(store, mode)? {
            return Ok(lock);
        }
        let path = Layout::of(store).lock_file();
        let file = open_lock_file(&path)?;
        on_wait(&LockWait {
            wanted: mode,
            holders: holders(&file),
            root: store.root().to_path_buf(),
        });
        loop {
            let res = match mode {
                LockMode::Shared => FileExt::lock_shared(&file),
                LockMode::Exclusive => FileExt::lock_exclusive(&file),
            };
            match res {
                Ok(()) => return Ok(StoreLock { _file: file, mode }),
                // A signal the process survives (SIGWINCH, SIGCHLD) ends the wait early.
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => return Err(RootError::Lock { path, source }),
            }
        }
    }

    /// Takes the lock in `mode` if that needs no waiting.
    pub fn try_acquire(store: &Store, mode: LockMode) -> Result<Option<StoreLock>, RootError> {
        let path = Layout::of(store).lock_file();
        let file = open_lock_file(&path)?;
        let res = match mode {
            LockMode::Shared => FileExt::try_lock_shared(&file),
            LockMode::Exclusive => FileExt::try_lock_exclusive(&file),
        };
        match res {
            Ok(()) => Ok(Some(StoreLock { _file: file, mode })),
            Err(e) if e.kind() == fs2::lock_contended_error().kind() => Ok(None),
            Err(source) => Err(RootError::Lock { path, source }),
        }
    }
}

fn open_lock_file(path: &Path) -> Result<File, RootError> {
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|source| RootError::Lock {
            path: path.to_path_buf(),
            source,
        })
}

/// Why a lock request is about to block: what it waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockWait {
    /// The mode asked for.
    pub wanted: LockMode,
    /// Processes holding the lock now, when `/proc/locks` could tell.
    pub holders: Option<usize>,
    /// The store root.
    pub root: PathBuf,
}

impl LockWait {
    /// Prints this on stderr, one line: the `on_wait` the CLI passes.
    pub fn print(&self) {
        // Nothing useful can be done when stderr is gone; the wait goes on.
        let _ = writeln!(io::stderr().lock(), "{self}");
    }
}

impl fmt::Display for LockWait {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let root = self.root.display();
        match (self.wanted, self.holders) {
            (LockMode::Shared, _) => {
                write!(
                    f,
                    "waiting for a prune or fsck --repair of {root} to finish"
                )
            }
            (LockMode::Exclusive, Some(1)) => write!(
                f,
                "waiting for 1 build (or load, pull, save) using {root} to finish"
            ),
            (LockMode::Exclusive, Some(n)) => write!(
                f,
                "waiting for {n} builds (or loads, pulls, saves) using {root} to finish"
            ),
            (LockMode::Exclusive, None) => write!(
                f,
                "waiting for the builds (or loads, pulls, saves) using {root} to finish"
            ),
        }
    }
}

/// How many open files hold an `flock` on `file` now (granted ones only;
/// waiters are listed with `->`), read from `/proc/locks`.
fn holders(file: &File) -> Option<usize> {
    let meta = file.metadata().ok()?;
    let text = std::fs::read_to_string(Path::new("/proc/locks")).ok()?;
    let n = count_holders(&text, &proc_locks_key(meta.dev(), meta.ino()));
    // Zero means the file was named differently (e.g. through an overlay's
    // inode numbers): unknown, not "nobody".
    (n > 0).then_some(n)
}

/// The `major:minor:inode` field `/proc/locks` prints for a file
/// (`%02x:%02x:%lu`, major and minor of the superblock's device).
fn proc_locks_key(dev: u64, ino: u64) -> String {
    let (major, minor) = (libc::major(dev), libc::minor(dev));
    format!("{major:02x}:{minor:02x}:{ino}")
}

fn count_holders(proc_locks: &str, key: &str) -> usize {
    proc_locks
        .lines()
        .filter(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            f.get(1) == Some(&"FLOCK") && f.get(5) == Some(&key)
        })
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = super::super::open(dir.path()).unwrap();
        (dir, store)
    }

    #[test]
    fn shared_locks_coexist_and_exclude_an_exclusive_one() {
        let (_dir, store) = store();
        let a = StoreLock::shared(&store).unwrap();
        let b = StoreLock::try_acquire(&store, LockMode::Shared).unwrap();
        assert!(b.is_some(), "a second shared lock must not wait");
        assert!(StoreLock::try_acquire(&store, LockMode::Exclusive)
            .unwrap()
            .is_none());
        drop((a, b));
        let x = StoreLock::try_acquire(&store, LockMode::Exclusive)
            .unwrap()
            .unwrap();
        assert_eq!(x.mode(), LockMode::Exclusive);
        assert!(StoreLock::try_acquire(&store, LockMode::Shared)
            .unwrap()
            .is_none());
    }

    #[test]
    fn an_exclusive_waiter_is_told_how_many_hold_the_lock_then_gets_it() {
        let (_dir, store) = store();
        let held = vec![
            StoreLock::shared(&store).unwrap(),
            StoreLock::shared(&store).unwrap(),
        ];
        let (tx, rx) = std::sync::mpsc::channel();
        let s = store.clone();
        let waiter = std::thread::spawn(move || {
            let lock = StoreLock::acquire(&s, LockMode::Exclusive, |w| tx.send(w.clone()).unwrap());
            lock.unwrap().mode()
        });
        let wait = rx.recv().unwrap();
        assert_eq!(wait.holders, Some(2), "{wait}");
        assert_eq!(wait.wanted, LockMode::Exclusive);
        assert!(
            wait.to_string().starts_with("waiting for 2 builds"),
            "{wait}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
        assert!(
            !waiter.is_finished(),
            "exclusive lock granted beside shared ones"
        );
        drop(held);
        assert_eq!(waiter.join().unwrap(), LockMode::Exclusive);
    }

    #[test]
    fn a_shared_waiter_waits_for_the_exclusive_holder() {
        let (_dir, store) = store();
        let x = StoreLock::exclusive(&store).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let s = store.clone();
        let waiter = std::thread::spawn(move || {
            StoreLock::acquire(&s, LockMode::Shared, |w| tx.send(w.to_string()).unwrap())
                .map(|l| l.mode())
        });
        assert!(rx.recv().unwrap().contains("prune or fsck --repair"));
        drop(x);
        assert_eq!(waiter.join().unwrap().unwrap(), LockMode::Shared);
    }

    #[test]
    fn open_leaves_stale_tmp_alone_while_the_lock_is_held() {
        let (dir, store) = store();
        let stale = store.tmp_dir().join("build-old");
        std::fs::create_dir(&stale).unwrap();
        let old = filetime::FileTime::from_unix_time(1_000_000, 0);
        filetime::set_file_mtime(&stale, old).unwrap();
        let shared = StoreLock::shared(&store).unwrap();
        super::super::open(dir.path()).unwrap();
        assert!(stale.exists(), "removed a temp entry a lock holder may use");
        drop(shared);
        super::super::open(dir.path()).unwrap();
        assert!(
            !stale.exists(),
            "a stale temp entry outlived an unlocked open"
        );
    }

    #[test]
    fn proc_locks_lines_are_counted_for_granted_locks_on_this_file_only() {
        let text = "1: FLOCK  ADVISORY  READ  10 00:2e:77 0 EOF\n\
                    1: -> FLOCK  ADVISORY  WRITE 12 00:2e:77 0 EOF\n\
                    2: FLOCK  ADVISORY  READ  11 00:2e:77 0 EOF\n\
                    3: POSIX  ADVISORY  WRITE 13 00:2e:77 0 EOF\n\
                    4: FLOCK  ADVISORY  WRITE 14 00:2e:770 0 EOF\n";
        assert_eq!(count_holders(text, "00:2e:77"), 2);
        assert_eq!(proc_locks_key(libc::makedev(8, 1), 42), "08:01:42");
        assert_eq!(proc_locks_key(libc::makedev(259, 300), 7), "103:12c:7");
    }
}
