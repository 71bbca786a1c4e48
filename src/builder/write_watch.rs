//! Which files of a chroot RUN's root were opened for writing, changed or not.
//!
//! overlayfs copies a lower file up when it is opened for writing, even if nothing is
//! written (`useradd` opens `/etc/.pwd.lock` that way), so the sandbox's layer holds
//! it; its ctime does not move, so `copyup::diff` needs to be told. inotify's
//! `IN_CLOSE_WRITE` on every directory of the root (no capability needed; allowed by
//! Docker's seccomp profile) says which names were closed after a write-open. A
//! thread drains the queue while the command runs.
//!
//! Invariant: best effort, and never wrong in the other direction: a name reported is
//! only an extra candidate, diffed like any other; a watch the kernel refuses (the
//! per-user watch limit) or a queue overflow only loses such never-changed files,
//! and says so in the diagnostics.

use std::collections::{HashMap, HashSet};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, WatchDescriptor};

/// A running watch; [`WriteWatch::finish`] stops it.
pub struct WriteWatch {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<HashSet<PathBuf>>>,
}

impl WriteWatch {
    /// Watches every directory `dirs` (relative to `root`) for closes after a
    /// write-open. `None` when inotify is not available at all.
    pub fn start(root: &Path, dirs: &[PathBuf]) -> Option<Self> {
        let ino = match Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK) {
            Ok(i) => i,
            Err(e) => {
                tracing::debug!(error = %e, "no inotify: files opened for writing but unchanged are not seen");
                return None;
            }
        };
        let flags = AddWatchFlags::IN_CLOSE_WRITE
            | AddWatchFlags::IN_ONLYDIR
            | AddWatchFlags::IN_DONT_FOLLOW;
        let mut by_wd: HashMap<WatchDescriptor, PathBuf> = HashMap::new();
        for rel in std::iter::once(&PathBuf::new()).chain(dirs) {
            match ino.add_watch(&root.join(rel), flags) {
                Ok(wd) => {
                    by_wd.insert(wd, rel.clone());
                }
                Err(e) => {
                    tracing::debug!(error = %e, dir = %rel.display(), "stopped adding inotify watches");
                    break;
                }
            }
        }
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::thread::spawn({
            let stop = stop.clone();
            move || drain(ino, by_wd, &stop)
        });
        Some(Self {
            stop,
            thread: Some(thread),
        })
    }

    /// Stops the watch once its queue is empty and returns the paths (relative to the
    /// root) closed after a write-open.
    pub fn finish(mut self) -> HashSet<PathBuf> {
        self.stop.store(true, Ordering::SeqCst);
        self.thread
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default()
    }
}

impl Drop for WriteWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn drain(
    ino: Inotify,
    by_wd: HashMap<WatchDescriptor, PathBuf>,
    stop: &AtomicBool,
) -> HashSet<PathBuf> {
    let mut written = HashSet::new();
    loop {
        // Read after seeing `stop`, so events queued before it are not lost.
        let stopping = stop.load(Ordering::SeqCst);
        let mut fds = [PollFd::new(ino.as_fd(), PollFlags::POLLIN)];
        let ready = poll(&mut fds, PollTimeout::from(20u8)).unwrap_or(0);
        if ready > 0 {
            while let Ok(events) = ino.read_events() {
                if events.is_empty() {
                    break;
                }
                for e in events {
                    if e.mask.contains(AddWatchFlags::IN_Q_OVERFLOW) {
                        tracing::debug!("inotify queue overflow: some files opened for writing but unchanged are not seen");
                    }
                    if let (Some(dir), Some(name)) = (by_wd.get(&e.wd), e.name) {
                        written.insert(dir.join(name));
                    }
                }
            }
        } else if stopping {
            return written;
        }
    }
}
