//! The monitor of a stored container (podman's conmon idea, in kiln itself):
//! `kiln __monitor <id>` runs detached in a session of its own, runs the container's
//! spec in the sandbox with its output written to the json-file log, records the init's
//! pid once it exists and the exit status when it ends, and removes an `--rm`
//! container. Nothing else watches a container: when the monitor dies, the sandbox
//! helper (`PR_SET_PDEATHSIG`) and with it the container's PID namespace die too, and
//! the state it left says `running` with a dead monitor, which reads as exited.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::exec::{self, Output};
use crate::oci::Store;
use crate::store::Layout;

use super::logfile::LogWriter;
use super::stored::{now, Container, ContainerState, Proc, Status, StoredError};
use super::ContainerError;

/// How long a start waits for the monitor to report the container running or failed.
const START_SECS: u64 = 60;

/// Starts `c` (not running; the caller holds its lock): spawns `exe __monitor <id>`
/// and waits until the monitor has recorded the container running or exited. The
/// state then says which (and why it could not start).
pub fn start(store: &Store, exe: &Path, c: &mut Container) -> Result<(), StoredError> {
    for lower in &c.config.spec.lower_dirs {
        if !lower.is_dir() {
            return Err(StoredError::LowerGone(lower.clone()));
        }
    }
    c.write_state(store, ContainerState::created())?;
    let mut child = Command::new(exe)
        .arg("--root")
        .arg(store.root())
        .arg("__monitor")
        .arg(&c.config.id)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|source| StoredError::Io {
            step: "starting the monitor",
            path: exe.into(),
            source,
        })?;
    let until = Instant::now() + Duration::from_secs(START_SECS);
    loop {
        let exited = matches!(child.try_wait(), Ok(Some(_)));
        if !Layout::of(store).container(&c.config.id).exists() {
            // An --rm container that already ended and removed itself.
            return Ok(());
        }
        c.reload()?;
        if c.state.status != Status::Created {
            return Ok(());
        }
        if exited {
            return Err(StoredError::MonitorDied);
        }
        if Instant::now() >= until {
            return Err(StoredError::Timeout {
                id: c.config.id.clone(),
                what: "start",
                secs: START_SECS,
            });
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// `kiln __monitor <id>`: runs the container to its end; the process's exit status
/// is 0 once the state is recorded, 3 when it could not be.
pub fn monitor_main(store: &Store, exe: &Path, id: &str) -> i32 {
    // Out of kiln's session and terminal: a closed terminal or kiln's exit must not
    // reach it.
    let _ = nix::unistd::setsid();
    let dir = Layout::of(store).container(id);
    let mut c = match Container::load(&dir) {
        Ok(Some(c)) => c,
        _ => return 3,
    };
    match supervise(store, exe, &mut c) {
        Ok(()) => 0,
        Err(_) => 3,
    }
}

fn supervise(store: &Store, exe: &Path, c: &mut Container) -> Result<(), StoredError> {
    let me = Proc::of(std::process::id() as i32);
    let spec = c.config.spec.clone();
    let work = &spec.work_dir;
    // The sandbox's scratch dir of a previous run is discarded, as after any run.
    crate::builder::remove_tree(work).map_err(|e| StoredError::Io {
        step: "clearing",
        path: work.clone(),
        source: std::io::Error::other(e.to_string()),
    })?;
    fs::create_dir(work).map_err(|source| StoredError::Io {
        step: "creating",
        path: work.clone(),
        source,
    })?;
    let mut log = LogWriter::open(&c.dir, &c.config.id).map_err(|source| StoredError::Io {
        step: "opening the log of",
        path: c.dir.clone(),
        source,
    })?;
    let started = now();
    // The finder thread writes `running` once the init exists; the main thread writes
    // `exited`; whichever comes second must not undo the other.
    let done = Arc::new(Mutex::new(false));
    let finder = {
        let (done, store, mut c) = (Arc::clone(&done), store.clone(), c.clone());
        std::thread::spawn(move || {
            let Some(init) = find_init(&done) else {
                return;
            };
            let Ok(finished) = done.lock() else { return };
            if !*finished {
                let state = ContainerState {
                    status: Status::Running,
                    monitor: me,
                    init: Some(init),
                    exit_code: None,
                    error: None,
                    started_at: Some(started),
                    finished_at: None,
                };
                let _ = c.write_state(&store, state);
            }
        })
    };
    let mut log_err = None;
    let result = exec::run(&spec, exe, &mut |out| {
        let (stream, bytes) = match out {
            Output::Stdout(b) => (0, b),
            Output::Stderr(b) => (1, b),
        };
        if let Err(e) = log.write(stream, bytes, &time_now()) {
            log_err.get_or_insert(e);
        }
    });
    let _ = log.flush(&time_now());
    let mut finished = done.lock().unwrap_or_else(|p| p.into_inner());
    *finished = true;
    let (exit_code, error) = match result {
        Ok(r) => (
            Some(r.status),
            log_err.map(|e| format!("writing the log: {e}")),
        ),
        Err(e) => {
            let e = ContainerError::Exec(Box::new(e));
            (Some(e.exit_code()), Some(chain(&e)))
        }
    };
    let state = ContainerState {
        status: Status::Exited,
        monitor: None,
        init: None,
        exit_code,
        error,
        started_at: Some(started),
        finished_at: Some(now()),
    };
    let written = c.write_state(store, state);
    drop(finished);
    let _ = finder.join();
    written?;
    if c.config.auto_remove {
        c.remove(store)?;
        // COMPAT(docker): --rm removes the container's anonymous volumes too.
        super::volume::remove_anonymous(store, &super::volume::used_by(store, &c.config.spec))
            .map_err(|e| StoredError::Io {
                step: "removing the anonymous volumes of",
                path: c.dir.clone(),
                source: std::io::Error::other(e.to_string()),
            })?;
    }
    Ok(())
}

/// The container's init once it runs the command: the child of this process's child
/// (the sandbox helper), found in /proc, whose executable is no longer kiln's (it has
/// exec'd; a command that cannot start never gets there, so `run -d` reports its
/// failure as docker does). `None` once the run is over or after 30 s.
fn find_init(done: &Mutex<bool>) -> Option<Proc> {
    use std::os::unix::fs::MetadataExt;
    let me = std::process::id() as i32;
    let kiln = fs::metadata("/proc/self/exe")
        .ok()
        .map(|m| (m.dev(), m.ino()));
    let until = Instant::now() + Duration::from_secs(30);
    let (mut helper, mut init) = (None, None);
    while Instant::now() < until && !done.lock().map_or(true, |d| *d) {
        match (helper, init) {
            (None, _) => helper = child_of(me),
            (Some(h), None) => init = init_of(h).and_then(Proc::of),
            (Some(_), Some(p)) => {
                let exe = fs::metadata(format!("/proc/{}/exe", p.pid))
                    .ok()
                    .map(|m| (m.dev(), m.ino()));
                if !p.alive() {
                    return None;
                }
                if exe.is_some() && exe != kiln {
                    return Some(p);
                }
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    None
}

/// A child of `parent`, from /proc.
fn child_of(parent: i32) -> Option<i32> {
    children_of(parent).next()
}

/// The children of `parent`, from /proc.
fn children_of(parent: i32) -> impl Iterator<Item = i32> {
    fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(move |&pid| Proc::parent_of(pid) == Some(parent))
}

/// The sandbox init among the helper's children: the one in a PID namespace other
/// than the helper's (a private network's slirp4netns is the helper's child too,
/// forked before the namespace was made).
fn init_of(helper: i32) -> Option<i32> {
    use std::os::unix::fs::MetadataExt;
    let ns = |pid: i32| {
        fs::metadata(format!("/proc/{pid}/ns/pid"))
            .ok()
            .map(|m| m.ino())
    };
    let own = ns(helper)?;
    children_of(helper).find(|&pid| ns(pid).is_some_and(|n| n != own))
}

/// Now, as docker's log times: RFC 3339 with nanoseconds.
fn time_now() -> String {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    crate::oci::time::rfc3339(
        i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        d.subsec_nanos(),
    )
}

/// `e` and its causes, `: `-joined.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push_str(": ");
        out.push_str(&s.to_string());
        cur = s.source();
    }
    out
}
