//! Signals of a foreground container (`kiln run`, [`super::Foreground`]).
//!
//! kiln's side ([`KilnSignals`]) passes SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1 and
//! SIGUSR2 on to the helper instead of dying of them. The helper's side ([`block`],
//! [`install`]) turns SIGINT and SIGTERM into a stop (the stop signal to the command,
//! SIGKILL when the timeout's SIGALRM fires) and passes the others on unchanged.
//!
//! Invariant: the handlers only read and write atomics and call `kill` and `alarm`,
//! which are async-signal-safe, and they keep `errno` as they found it.

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, Ordering};

use nix::errno::Errno;
use nix::sys::signal::{self, SaFlags, SigAction, SigHandler, SigSet, SigmaskHow, Signal};
use nix::unistd::Pid;

use super::{ExecError, Foreground};

/// The signals kiln passes on.
const FORWARDED: [Signal; 6] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
];

fn sig_err(step: &str, source: Errno) -> ExecError {
    ExecError::Helper {
        step: step.into(),
        source,
    }
}

// ---- the helper's side ----

/// The command (the sandbox init's pid, seen from the helper).
static INIT: AtomicI32 = AtomicI32::new(0);
static STOP_SIGNAL: AtomicI32 = AtomicI32::new(libc::SIGTERM);
static STOP_TIMEOUT: AtomicU32 = AtomicU32::new(10);
static STOPPING: AtomicBool = AtomicBool::new(false);

/// The forwarded signals and SIGALRM: blocked in a foreground helper from its start
/// (kiln blocks them before it execs the helper: see [`blocked_set`]) until
/// [`install`], so that none kills it, or the command with it, before its handlers
/// know the command's pid; one that came meanwhile is delivered then.
pub fn blocked_set() -> SigSet {
    let mut set = SigSet::empty();
    for s in FORWARDED {
        set.add(s);
    }
    set.add(Signal::SIGALRM);
    set
}

/// Unblocks [`blocked_set`] (in the init before it execs the command, and in the
/// helper once its handlers are in place).
pub fn unblock() -> Result<(), Errno> {
    signal::sigprocmask(SigmaskHow::SIG_UNBLOCK, Some(&blocked_set()), None)
}

/// Blocks [`blocked_set`] (again: kiln blocked it already; this keeps the helper
/// right when it is started some other way).
pub fn block() -> Result<(), ExecError> {
    signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&blocked_set()), None)
        .map_err(|e| sig_err("blocking signals", e))
}

/// Installs the helper's handlers for the command `init`.
pub fn install(init: Pid, fg: Foreground) -> Result<(), ExecError> {
    INIT.store(init.as_raw(), Ordering::SeqCst);
    STOP_SIGNAL.store(fg.stop_signal, Ordering::SeqCst);
    STOP_TIMEOUT.store(fg.stop_timeout, Ordering::SeqCst);
    let action = SigAction::new(
        SigHandler::Handler(on_helper_signal),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for s in FORWARDED.into_iter().chain([Signal::SIGALRM]) {
        // SAFETY: the handler is async-signal-safe (module invariant).
        unsafe { signal::sigaction(s, &action) }
            .map_err(|e| sig_err("installing signal handlers", e))?;
    }
    Ok(())
}

extern "C" fn on_helper_signal(sig: libc::c_int) {
    let saved = Errno::last_raw();
    let pid = INIT.load(Ordering::SeqCst);
    // SAFETY: kill and alarm are async-signal-safe; they take plain integers.
    let send = |s: libc::c_int| unsafe { libc::kill(pid, s) };
    if pid > 0 {
        match sig {
            libc::SIGINT | libc::SIGTERM => {
                let first = !STOPPING.swap(true, Ordering::SeqCst);
                send(STOP_SIGNAL.load(Ordering::SeqCst));
                let timeout = STOP_TIMEOUT.load(Ordering::SeqCst);
                if first && timeout == 0 {
                    send(libc::SIGKILL);
                } else if first {
                    // SAFETY: as above.
                    unsafe { libc::alarm(timeout) };
                }
            }
            libc::SIGALRM => {
                send(libc::SIGKILL);
            }
            other => {
                send(other);
            }
        }
    }
    Errno::set_raw(saved);
}

// ---- the init's side (`--init`) ----

/// The command, seen from the init that stays PID 1.
static COMMAND: AtomicI32 = AtomicI32::new(0);

/// Installs the init's handlers: every forwarded signal goes on to `command` as is
/// (the helper already turned a stop into the stop signal).
pub fn install_init(command: Pid) -> Result<(), ExecError> {
    COMMAND.store(command.as_raw(), Ordering::SeqCst);
    let action = SigAction::new(
        SigHandler::Handler(on_init_signal),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for s in FORWARDED {
        // SAFETY: the handler is async-signal-safe (module invariant).
        unsafe { signal::sigaction(s, &action) }
            .map_err(|e| sig_err("installing the init's signal handlers", e))?;
    }
    Ok(())
}

extern "C" fn on_init_signal(sig: libc::c_int) {
    let saved = Errno::last_raw();
    let pid = COMMAND.load(Ordering::SeqCst);
    if pid > 0 {
        // SAFETY: kill is async-signal-safe and takes plain integers.
        unsafe { libc::kill(pid, sig) };
    }
    Errno::set_raw(saved);
}

// ---- kiln's side ----

/// The helper (kiln's child), once spawned.
static HELPER: AtomicI32 = AtomicI32::new(0);
/// A signal that arrived before the helper existed.
static PENDING: AtomicI32 = AtomicI32::new(0);

/// kiln's handlers for the forwarded signals, while a foreground run lasts; dropping
/// it puts back what was there before.
pub struct KilnSignals {
    old: Vec<(Signal, SigAction)>,
}

impl KilnSignals {
    /// Installs the handlers (before the helper is spawned: a signal that comes first
    /// is kept and sent once [`KilnSignals::helper_started`] is called).
    pub fn install() -> Result<Self, ExecError> {
        HELPER.store(0, Ordering::SeqCst);
        PENDING.store(0, Ordering::SeqCst);
        let action = SigAction::new(
            SigHandler::Handler(on_kiln_signal),
            SaFlags::SA_RESTART,
            SigSet::empty(),
        );
        let mut me = Self { old: Vec::new() };
        for s in FORWARDED {
            // SAFETY: the handler is async-signal-safe (module invariant).
            let old = unsafe { signal::sigaction(s, &action) }
                .map_err(|e| sig_err("installing kiln's signal handlers", e))?;
            me.old.push((s, old));
        }
        Ok(me)
    }

    /// From now on signals go to `helper`; one that came before goes now.
    pub fn helper_started(&self, helper: u32) {
        let pid = i32::try_from(helper).unwrap_or(0);
        HELPER.store(pid, Ordering::SeqCst);
        let pending = PENDING.swap(0, Ordering::SeqCst);
        if pending != 0 && pid > 0 {
            // SAFETY: kill takes plain integers.
            unsafe { libc::kill(pid, pending) };
        }
    }
}

impl Drop for KilnSignals {
    fn drop(&mut self) {
        HELPER.store(0, Ordering::SeqCst);
        for (s, old) in &self.old {
            // SAFETY: restores the action that was installed before ours.
            let _ = unsafe { signal::sigaction(*s, old) };
        }
    }
}

extern "C" fn on_kiln_signal(sig: libc::c_int) {
    let saved = Errno::last_raw();
    let pid = HELPER.load(Ordering::SeqCst);
    if pid > 0 {
        // SAFETY: kill is async-signal-safe and takes plain integers.
        unsafe { libc::kill(pid, sig) };
    } else {
        PENDING.store(sig, Ordering::SeqCst);
    }
    Errno::set_raw(saved);
}
