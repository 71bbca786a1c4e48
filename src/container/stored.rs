//! Stored containers (`kiln run -d`): each lives in `containers/<id>/` with its
//! `config.json` (the sandbox spec and what `ps` shows, written once), `state.json`
//! (created, running or exited, pids and times; rewritten whole), its log, its lock and
//! its writable layer (`upper/`), which outlives the command until `kiln rm`.
//!
//! Invariants:
//! - Every JSON file is written to the store's `tmp/`, fsynced and renamed. A
//!   container exists once its `config.json` does; a dir without one is a `run -d`
//!   killed half-way, invisible to `ps` and every lookup.
//! - A `running` state is believed only while its monitor lives: the monitor's pid
//!   and its start time (`/proc/<pid>/stat` field 22) must both match, so a dead
//!   monitor, or a reused pid, reads as exited ([`Container::observed`]).
//! - Names are unique: a name is checked and taken under `containers/lock`.
//! - Signals go to the container's init only after its start time is checked, so a
//!   reused pid is never signalled.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use fs2::FileExt;
use serde::{Deserialize, Serialize};

use crate::exec::RunSpec;
use crate::oci::{Store, StoreError};
use crate::store::Layout;

use super::{prepare, ContainerError, RunOptions};

/// What a stored container was made with; never changes after `run -d`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerConfig {
    /// 64 hex digits.
    pub id: String,
    /// Unique among the store's containers.
    pub name: String,
    /// The image as the user named it.
    pub image: String,
    /// Its manifest digest.
    pub image_digest: String,
    /// Seconds since the epoch.
    pub created: i64,
    /// The signal `kiln stop` sends first.
    pub stop_signal: i32,
    /// Seconds `kiln stop` waits before SIGKILL.
    pub stop_timeout: u32,
    /// `--rm`: the monitor removes the container when its command exits.
    pub auto_remove: bool,
    /// What the sandbox runs.
    pub spec: RunSpec,
}

/// Where a container is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Made, never started (or its start was interrupted).
    Created,
    /// Its monitor runs it.
    Running,
    /// Its command ended (or its monitor died).
    Exited,
}

/// A process as identified across pid reuse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proc {
    /// The pid, in kiln's pid namespace.
    pub pid: i32,
    /// Its start time in clock ticks since boot.
    pub start: u64,
}

impl Proc {
    /// `pid` as it runs now, if it does.
    pub fn of(pid: i32) -> Option<Self> {
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let fields = stat_fields(&stat)?;
        // Field 3 (state) is rest[0]; field 22 (starttime) is rest[19].
        let start = fields.get(19)?.parse().ok()?;
        if fields.first() == Some(&"Z") {
            return None;
        }
        Some(Self { pid, start })
    }

    /// The parent pid of `pid`.
    pub fn parent_of(pid: i32) -> Option<i32> {
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        stat_fields(&stat)?.get(1)?.parse().ok()
    }

    /// Whether this very process still runs.
    pub fn alive(&self) -> bool {
        Self::of(self.pid).is_some_and(|p| p.start == self.start)
    }
}

/// The fields of a `/proc/<pid>/stat` line from field 3 (state) on: the name before
/// them may hold spaces and parentheses, so they start after the last `)`.
fn stat_fields(stat: &str) -> Option<Vec<&str>> {
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    Some(rest.split(' ').collect())
}

/// What a container is doing; rewritten whole by whoever changes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerState {
    /// Where it is in its life.
    pub status: Status,
    /// The monitor, while one runs it.
    #[serde(default)]
    pub monitor: Option<Proc>,
    /// The container's init (its command, PID 1 inside), while it runs.
    #[serde(default)]
    pub init: Option<Proc>,
    /// The command's exit status, once exited (none when its monitor died).
    #[serde(default)]
    pub exit_code: Option<i32>,
    /// Why it could not run, or what was lost.
    #[serde(default)]
    pub error: Option<String>,
    /// Seconds since the epoch of the last start.
    #[serde(default)]
    pub started_at: Option<i64>,
    /// Seconds since the epoch of the last exit.
    #[serde(default)]
    pub finished_at: Option<i64>,
}

impl ContainerState {
    /// A container that has not run.
    pub fn created() -> Self {
        Self {
            status: Status::Created,
            monitor: None,
            init: None,
            exit_code: None,
            error: None,
            started_at: None,
            finished_at: None,
        }
    }
}

/// Why a stored container could not be found, made or changed.
#[derive(Debug, thiserror::Error)]
pub enum StoredError {
    /// No container by that name, id or id prefix.
    #[error("No such container: {0}")]
    NotFound(String),
    /// An id prefix that fits several.
    #[error("multiple containers match the id prefix {0:?}: give more of the id or the name")]
    Ambiguous(String),
    /// `--name` taken. COMPAT(docker): its words.
    #[error("Conflict. The container name \"/{name}\" is already in use by container \"{id}\". You have to remove (or rename) that container to be able to reuse that name.")]
    NameInUse {
        /// The name.
        name: String,
        /// Who has it.
        id: String,
    },
    /// A name docker would refuse.
    #[error("Invalid container name ({0}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")]
    BadName(String),
    /// A container's files.
    #[error("{step} {path}")]
    Io {
        /// What was being done.
        step: &'static str,
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Writing a JSON file atomically.
    #[error("writing {path}")]
    Write {
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: Box<StoreError>,
    },
    /// A `config.json` or `state.json` kiln cannot read.
    #[error("reading {path}")]
    Json {
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// Preparing the container's root.
    #[error(transparent)]
    Prepare(#[from] Box<ContainerError>),
    /// The monitor did not start the container.
    #[error("the container's monitor exited before it started the container")]
    MonitorDied,
    /// The container's state did not change in time.
    #[error("container {id} did not {what} within {secs} s")]
    Timeout {
        /// The container.
        id: String,
        /// What it was waiting for.
        what: &'static str,
        /// How long.
        secs: u64,
    },
    /// A signal could not be sent.
    #[error("sending signal {signal} to container {id}")]
    Signal {
        /// The container.
        id: String,
        /// The signal number.
        signal: i32,
        /// The cause.
        #[source]
        source: nix::errno::Errno,
    },
    /// `kill` or `stop` of a container that does not run. COMPAT(docker): its words.
    #[error("cannot kill container: {0}: container {0} is not running")]
    NotRunning(String),
    /// `rm` of a running container. COMPAT(docker): its words.
    #[error("cannot remove container \"{0}\": container is running: stop the container before removing or force remove")]
    Running(String),
    /// `start` of a container whose image's snapshots are gone.
    #[error("the image's unpacked layer {0} is gone (the image was removed and pruned); the container cannot start again")]
    LowerGone(PathBuf),
}

fn io_err<'a>(step: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> StoredError + 'a {
    move |source| StoredError::Io {
        step,
        path: path.into(),
        source,
    }
}

/// Seconds since the epoch, now.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// A stored container: its dir, config and last written state.
#[derive(Debug, Clone)]
pub struct Container {
    /// `containers/<id>`.
    pub dir: PathBuf,
    /// As made.
    pub config: ContainerConfig,
    /// As last written.
    pub state: ContainerState,
}

impl Container {
    /// Reads the container in `dir`; `None` when it has no config (not made whole).
    pub fn load(dir: &Path) -> Result<Option<Self>, StoredError> {
        let config: ContainerConfig = match read_json(&dir.join("config.json"))? {
            Some(c) => c,
            None => return Ok(None),
        };
        let state = read_json(&dir.join("state.json"))?.unwrap_or_else(ContainerState::created);
        Ok(Some(Self {
            dir: dir.into(),
            config,
            state,
        }))
    }

    /// Reads the state again.
    pub fn reload(&mut self) -> Result<(), StoredError> {
        if let Some(s) = read_json(&self.dir.join("state.json"))? {
            self.state = s;
        }
        Ok(())
    }

    /// The state as it is: a `running` state whose monitor is gone is exited, with no
    /// exit code, and says so.
    pub fn observed(&self) -> ContainerState {
        let mut s = self.state.clone();
        if s.status == Status::Running && !s.monitor.is_some_and(|m| m.alive()) {
            s.status = Status::Exited;
            s.init = None;
            s.error = Some("the container's monitor died; its command was killed with it".into());
        }
        s
    }

    /// Whether it runs now (its monitor lives).
    pub fn is_running(&self) -> bool {
        self.observed().status == Status::Running
    }

    /// Writes `state` atomically.
    pub fn write_state(&mut self, store: &Store, state: ContainerState) -> Result<(), StoredError> {
        write_json(store, &self.dir.join("state.json"), &state)?;
        self.state = state;
        Ok(())
    }

    /// Takes this container's lock (exclusive), held while the guard lives: every
    /// command that starts, stops or removes it holds it, so two never interleave.
    pub fn lock(&self) -> Result<fs::File, StoredError> {
        lock_file(&self.dir.join("lock"))
    }

    /// The first 12 hex digits, as `ps` shows the id.
    pub fn short_id(&self) -> &str {
        &self.config.id[..12]
    }

    /// Sends `signal` to the container's init, if it still runs (its start time
    /// checked); `Ok(false)` when it does not.
    pub fn signal(&self, signal: i32) -> Result<bool, StoredError> {
        let s = self.observed();
        let Some(init) = s.init.filter(|p| s.status == Status::Running && p.alive()) else {
            return Ok(false);
        };
        let sig =
            nix::sys::signal::Signal::try_from(signal).map_err(|source| StoredError::Signal {
                id: self.config.id.clone(),
                signal,
                source,
            })?;
        match nix::sys::signal::kill(nix::unistd::Pid::from_raw(init.pid), sig) {
            Ok(()) => Ok(true),
            Err(nix::errno::Errno::ESRCH) => Ok(false),
            Err(source) => Err(StoredError::Signal {
                id: self.config.id.clone(),
                signal,
                source,
            }),
        }
    }

    /// Polls the state until it is no longer running, for at most `timeout`;
    /// `Ok(false)` when it still runs then.
    pub fn wait_exited(&mut self, timeout: Duration) -> Result<bool, StoredError> {
        // None: a wait longer than the clock can say, i.e. for ever.
        let until = Instant::now().checked_add(timeout);
        loop {
            self.reload()?;
            if !self.is_running() {
                return Ok(true);
            }
            if until.is_some_and(|u| Instant::now() >= u) {
                return Ok(false);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `kiln stop`: the stop signal, then SIGKILL after `timeout` seconds (at once for
    /// 0; never for a negative one); returns once it has exited.
    pub fn stop(&mut self, timeout: i64) -> Result<(), StoredError> {
        if !self.is_running() {
            return Ok(());
        }
        if timeout != 0 && self.signal(self.config.stop_signal)? {
            let wait = u64::try_from(timeout).map_or(Duration::MAX, Duration::from_secs);
            if self.wait_exited(wait)? {
                return Ok(());
            }
        }
        self.signal(libc::SIGKILL)?;
        self.wait_gone()
    }

    /// Waits (for at most 30 s) until a killed container's monitor has recorded it.
    pub fn wait_gone(&mut self) -> Result<(), StoredError> {
        const SECS: u64 = 30;
        if self.wait_exited(Duration::from_secs(SECS))? {
            return Ok(());
        }
        Err(StoredError::Timeout {
            id: self.config.id.clone(),
            what: "exit",
            secs: SECS,
        })
    }

    /// Removes the container's files (it must not run): renamed into `tmp/` first, so
    /// a kill midway leaves either the whole container or a temp dir `prune` clears.
    pub fn remove(&self, store: &Store) -> Result<(), StoredError> {
        let tmp = store.tmp_dir().join(format!("rm-{}", self.config.id));
        match fs::rename(&self.dir, &tmp) {
            Ok(()) => {}
            // An --rm container's monitor removed it first.
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io_err("moving away", &self.dir)(e)),
        }
        crate::builder::remove_tree(&tmp).map_err(|e| StoredError::Io {
            step: "removing",
            path: tmp.clone(),
            source: io::Error::other(e.to_string()),
        })
    }
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Option<T>, StoredError> {
    match fs::read(path) {
        Ok(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|source| StoredError::Json {
                path: path.into(),
                source,
            }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err("reading", path)(e)),
    }
}

fn write_json<T: Serialize>(store: &Store, path: &Path, value: &T) -> Result<(), StoredError> {
    let bytes = serde_json::to_vec_pretty(value).map_err(|source| StoredError::Json {
        path: path.into(),
        source,
    })?;
    store
        .write_file_atomic(path, &bytes)
        .map_err(|source| StoredError::Write {
            path: path.into(),
            source: Box::new(source),
        })
}

fn lock_file(path: &Path) -> Result<fs::File, StoredError> {
    let f = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(io_err("opening", path))?;
    f.lock_exclusive().map_err(io_err("locking", path))?;
    Ok(f)
}

/// Every stored container, newest first.
pub fn list(store: &Store) -> Result<Vec<Container>, StoredError> {
    let root = Layout::of(store).containers();
    let rd = match fs::read_dir(&root) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err("listing", &root)(e)),
    };
    let mut out = Vec::new();
    for entry in rd {
        let entry = entry.map_err(io_err("listing", &root))?;
        let name = entry.file_name();
        let is_id = name.len() == 64 && name.to_str().is_some_and(is_hex);
        if is_id {
            if let Some(c) = Container::load(&entry.path())? {
                out.push(c);
            }
        }
    }
    out.sort_by(|a, b| (b.config.created, &b.config.id).cmp(&(a.config.created, &a.config.id)));
    Ok(out)
}

fn is_hex(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The container `query` names: its full id, its name, or a prefix of one id.
pub fn find(store: &Store, query: &str) -> Result<Container, StoredError> {
    let all = list(store)?;
    let q = query.strip_prefix('/').unwrap_or(query);
    if let Some(c) = all.iter().find(|c| c.config.id == q || c.config.name == q) {
        return Ok(c.clone());
    }
    let mut hits = all
        .into_iter()
        .filter(|c| !q.is_empty() && c.config.id.starts_with(q));
    match (hits.next(), hits.next()) {
        (Some(c), None) => Ok(c),
        (Some(_), Some(_)) => Err(StoredError::Ambiguous(query.into())),
        _ => Err(StoredError::NotFound(query.into())),
    }
}

/// docker's rule for a container name.
fn check_name(name: &str) -> Result<(), StoredError> {
    let mut bytes = name.bytes();
    let ok = bytes.next().is_some_and(|b| b.is_ascii_alphanumeric())
        && name.len() >= 2
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(StoredError::BadName(name.into()))
    }
}

/// A fresh 64-hex-digit id.
pub(super) fn new_id() -> Result<String, StoredError> {
    let mut bytes = [0u8; 32];
    let urandom = Path::new("/dev/urandom");
    io::Read::read_exact(
        &mut fs::File::open(urandom).map_err(io_err("opening", urandom))?,
        &mut bytes,
    )
    .map_err(io_err("reading", urandom))?;
    Ok(hex::encode(bytes))
}

/// `kiln run -d`: makes a stored container of `opts` named `name` (else its short
/// id), ready for [`super::monitor::start`].
pub fn create(
    store: &Store,
    opts: &RunOptions,
    name: Option<&str>,
    auto_remove: bool,
) -> Result<Container, StoredError> {
    let root = Layout::of(store).containers();
    fs::create_dir_all(&root).map_err(io_err("creating", &root))?;
    if let Some(n) = name {
        check_name(n)?;
    }
    let _names = lock_file(&Layout::of(store).containers_lock())?;
    let id = new_id()?;
    let name = name.map_or_else(|| id[..12].to_string(), str::to_string);
    if let Some(c) = list(store)?.into_iter().find(|c| c.config.name == name) {
        return Err(StoredError::NameInUse {
            name,
            id: c.config.id,
        });
    }
    let dir = Layout::of(store).container(&id);
    fs::create_dir(&dir).map_err(io_err("creating", &dir))?;
    let mut opts = opts.clone();
    if opts.hostname.is_none() && opts.network != crate::exec::Network::Host {
        // COMPAT(docker): a container's hostname is its short id.
        opts.hostname = Some(id[..12].to_string());
    }
    let prepared = match prepare(store, &opts, &dir) {
        Ok(p) => p,
        Err(e) => {
            let _ = crate::builder::remove_tree(&dir);
            return Err(Box::new(e).into());
        }
    };
    let config = ContainerConfig {
        id,
        name,
        image: opts.image.clone(),
        image_digest: prepared.image_digest,
        created: now(),
        stop_signal: prepared.stop_signal,
        stop_timeout: opts.stop_timeout.unwrap_or(super::DEFAULT_STOP_TIMEOUT),
        auto_remove,
        spec: prepared.spec,
    };
    let state = ContainerState::created();
    let written = write_json(store, &dir.join("state.json"), &state)
        // Last: the container exists from here on.
        .and_then(|()| write_json(store, &dir.join("config.json"), &config));
    if let Err(e) = written {
        // No container will ever name the anonymous volumes made for it. Fresh and
        // known to no one else, each is moved out of volumes/ at once (a kill leaves
        // no half volume) and deleted; not through `volume::remove`, which reads the
        // stored containers (this file) to refuse volumes in use.
        for name in &prepared.anonymous_volumes {
            let dir = Layout::of(store).volume(name);
            if let Ok(tmp) = crate::builder::staging_dir(store, "rmvol-") {
                let _ = fs::rename(&dir, tmp.join("volume"));
                let _ = crate::builder::remove_tree(&tmp);
            }
        }
        return Err(e);
    }
    Ok(Container { dir, config, state })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_dockers_rule() {
        for ok in ["web", "a1", "my_app.v2-x"] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a", "-x", "_x", "a b", "a/b", "é1"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn stat_lines_with_odd_names_parse_and_torn_ones_do_not_panic() {
        let f = stat_fields("12 (a) b)) S 1 12 12 0 -1").unwrap();
        assert_eq!(&f[..2], ["S", "1"]);
        assert!(stat_fields("12 (x)").is_none());
        assert!(stat_fields("garbage").is_none());
    }

    #[test]
    fn this_process_is_alive_and_a_changed_start_time_is_not() {
        let me = Proc::of(std::process::id() as i32).unwrap();
        assert!(me.alive());
        let other = Proc {
            start: me.start + 1,
            ..me
        };
        assert!(!other.alive());
        assert_eq!(
            Proc::parent_of(me.pid),
            Some(std::os::unix::process::parent_id() as i32)
        );
    }
}
