//! kiln's side of a run: checks the spec, starts `exe __sandbox` with the spec on its
//! stdin and a report pipe on fd 3, streams the command's stdout and stderr to the
//! caller as they arrive (a foreground run's go straight to kiln's own, and kiln's
//! signals to the helper: see `super::forward`; with `-t`, the container's pty master,
//! received on fd 5, is copied to and from kiln's stdio: see `super::pty`), and turns the helper's report into a result. Safe to call
//! from many threads at once: every pipe is created close-on-exec, so a concurrent
//! spawn never inherits another run's pipe.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;

use nix::fcntl::OFlag;
use nix::sys::socket;

use super::forward::KilnSignals;
use super::overlay::check_overlay_path;
use super::protocol::{self, Report, REPORT_FD, STDIN_FD};
use super::pty;
use super::{ExecError, MountKind, Output, RunResult, RunSpec};

/// Runs `spec` in a sandbox by re-executing `exe` (normally `/proc/self/exe`, the kiln
/// binary) as `exe __sandbox`, calling `on_output` with each chunk of output on the
/// calling thread. A command that exits non-zero is `Ok` with its status.
pub fn run(
    spec: &RunSpec,
    exe: &Path,
    on_output: &mut dyn FnMut(Output<'_>),
) -> Result<RunResult, ExecError> {
    let spec = checked(spec)?;
    let json = serde_json::to_vec(&spec).map_err(|source| ExecError::Protocol {
        what: "run spec".into(),
        source,
    })?;
    launch(&spec, &json, exe, on_output)
}

/// Starts the helper with `json` (the request: a [`RunSpec`] or a chroot run of one)
/// on its stdin, streams the output and returns its verdict.
pub(super) fn launch(
    spec: &RunSpec,
    json: &[u8],
    exe: &Path,
    on_output: &mut dyn FnMut(Output<'_>),
) -> Result<RunResult, ExecError> {
    let (report_r, report_w) =
        nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| ExecError::Pipe {
            step: "creating the report pipe".into(),
            source: e.into(),
        })?;
    tracing::debug!(
        argv = ?spec.argv,
        user = %spec.user,
        cwd = %spec.cwd,
        network = ?spec.network,
        mounts = spec.mounts.len(),
        lower_dirs = spec.lower_dirs.len(),
        privileged = spec.privileged,
        "starting the sandbox helper"
    );
    let tty = spec.foreground.is_some_and(|f| f.tty);
    let stdin_copy = match spec.foreground {
        Some(fg) if fg.stdin && !fg.tty => Some(high_dup(0)?),
        _ => None,
    };
    let signals = match spec.foreground {
        Some(_) => Some(KilnSignals::install()?),
        None => None,
    };
    // `-t`: kiln's end, and the helper's (numbered 10 or above, as stdin's copy).
    let console = if tty {
        let (ours, theirs) = socket::socketpair(
            socket::AddressFamily::Unix,
            socket::SockType::Stream,
            None,
            socket::SockFlag::SOCK_CLOEXEC,
        )
        .map_err(|e| ExecError::Pipe {
            step: "creating the console socket".into(),
            source: e.into(),
        })?;
        Some((ours, high_dup(theirs.as_raw_fd())?))
    } else {
        None
    };
    let mut child = spawn(
        exe,
        &report_w,
        spec.foreground.is_some(),
        stdin_copy.as_ref(),
        console.as_ref().map(|(_, theirs)| theirs),
    )?;
    if let Some(s) = &signals {
        s.helper_started(child.id());
    }
    drop(report_w);
    drop(stdin_copy);
    let console = console.map(|(ours, _)| ours);
    let Some(mut stdin) = child.stdin.take() else {
        unreachable!("stdin is piped")
    };
    // A helper that dies before reading the spec is reported through its exit below.
    let sent = stdin.write_all(json);
    drop(stdin);
    if let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) {
        stream(stdout, stderr, on_output)?;
    }
    if let Some(sock) = console {
        // Only once the sandbox has sent the master does the terminal turn raw; a
        // sandbox that fails first closes the socket, and its report says why.
        if let Some(master) = pty::receive_master(&sock)? {
            let term = pty::Console::enter()?;
            term.copy(&master, spec.foreground.is_some_and(|f| f.stdin))?;
            drop(term);
        }
    }
    let mut report = Vec::new();
    std::fs::File::from(report_r)
        .read_to_end(&mut report)
        .map_err(|source| ExecError::Pipe {
            step: "reading the helper's report".into(),
            source,
        })?;
    let status = child.wait().map_err(|source| ExecError::Pipe {
        step: "waiting for the helper".into(),
        source,
    })?;
    drop(signals);
    match protocol::decode_lines::<Report>(&report, "helper report")?.pop() {
        Some(Report::Exited { status }) => Ok(RunResult { status }),
        Some(Report::Failed(err)) => Err(err),
        None => {
            sent.map_err(|source| ExecError::Pipe {
                step: "sending the run spec".into(),
                source,
            })?;
            let code = status
                .code()
                .unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
            tracing::debug!(status = code, "the sandbox helper died without a report");
            Err(ExecError::HelperDied { status: code })
        }
    }
}

/// A close-on-exec copy of `fd` numbered 10 or above, clear of the fds the helper's
/// protocol places (3, 4 and `-t`'s 5).
fn high_dup(fd: i32) -> Result<OwnedFd, ExecError> {
    let err = |source| ExecError::Pipe {
        step: "passing kiln's stdin".into(),
        source,
    };
    // SAFETY: fcntl(F_DUPFD_CLOEXEC) returns a new fd that nothing else owns.
    let new = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 10) };
    if new < 0 {
        return Err(err(std::io::Error::last_os_error()));
    }
    // SAFETY: `new` was just returned by fcntl and is owned here alone.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

/// Starts the helper. A foreground helper shares kiln's stdout and stderr, gets
/// `stdin` (when given) as fd 4, and leads a session of its own, so that a terminal's
/// Ctrl-C reaches kiln alone (which forwards it).
fn spawn(
    exe: &Path,
    report_w: &OwnedFd,
    foreground: bool,
    stdin: Option<&OwnedFd>,
    console: Option<&OwnedFd>,
) -> Result<std::process::Child, ExecError> {
    let fd = report_w.as_raw_fd();
    let stdin_fd = stdin.map(AsRawFd::as_raw_fd);
    let console_fd = console.map(AsRawFd::as_raw_fd);
    let blocked = super::forward::blocked_set();
    let mut cmd = Command::new(exe);
    cmd.arg("__sandbox").stdin(Stdio::piped());
    if !foreground {
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    }
    // SAFETY: the closure runs between fork and exec and calls only prctl, dup2,
    // setsid, pthread_sigmask and fcntl, which are async-signal-safe; it allocates nothing and takes no
    // lock.
    unsafe {
        cmd.pre_exec(move || {
            if foreground {
                if libc::setsid() < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // Until the helper's handlers are in (a blocked mask survives exec).
                let rc =
                    libc::pthread_sigmask(libc::SIG_BLOCK, blocked.as_ref(), std::ptr::null_mut());
                if rc != 0 {
                    return Err(std::io::Error::from_raw_os_error(rc));
                }
            }
            // The helper (and through its own death signal, the sandbox) dies with the
            // thread that waits for it, so a killed kiln leaves no build running.
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            if fd == REPORT_FD {
                // dup2 onto itself keeps CLOEXEC: clear it by hand.
                if libc::fcntl(fd, libc::F_SETFD, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            } else if libc::dup2(fd, REPORT_FD) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            // Numbered 10 or above (`high_dup`): the dup2 above did not touch it.
            if let Some(s) = stdin_fd {
                if libc::dup2(s, STDIN_FD) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            if let Some(c) = console_fd {
                if libc::dup2(c, pty::CONSOLE_FD) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    cmd.spawn().map_err(|source| ExecError::SpawnHelper {
        exe: exe.to_path_buf(),
        source,
    })
}

/// Forwards stdout and stderr chunks to `on_output` until both reach end of file (the
/// PID namespace dies with the command, so no straggler keeps them open).
fn stream(
    stdout: impl Read + Send,
    stderr: impl Read + Send,
    on_output: &mut dyn FnMut(Output<'_>),
) -> Result<(), ExecError> {
    let (tx, rx) = mpsc::channel::<(bool, Vec<u8>)>();
    std::thread::scope(|s| {
        let readers = [
            s.spawn({
                let tx = tx.clone();
                move || pump(stdout, true, &tx)
            }),
            s.spawn(move || pump(stderr, false, &tx)),
        ];
        for (is_stdout, chunk) in rx {
            on_output(if is_stdout {
                Output::Stdout(&chunk)
            } else {
                Output::Stderr(&chunk)
            });
        }
        for reader in readers {
            reader
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                .map_err(|source| ExecError::Pipe {
                    step: "reading the command's output".into(),
                    source,
                })?;
        }
        Ok(())
    })
}

fn pump(
    mut from: impl Read,
    is_stdout: bool,
    tx: &mpsc::Sender<(bool, Vec<u8>)>,
) -> std::io::Result<()> {
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) => return Ok(()),
            // The receiver lives until both pumps end; a send cannot fail.
            Ok(n) => drop(tx.send((is_stdout, buf[..n].to_vec()))),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Checks what the helper cannot report well and resolves bind sources to real paths
/// (mounting follows symlinks on the host; the canonical path is what gets mounted).
fn checked(spec: &RunSpec) -> Result<RunSpec, ExecError> {
    for dir in spec
        .lower_dirs
        .iter()
        .chain([&spec.upper_dir, &spec.work_dir])
    {
        check_overlay_path(dir)?;
    }
    check_command(spec)?;
    let mut spec = spec.clone();
    for m in &mut spec.mounts {
        match &mut m.kind {
            MountKind::Bind { source, .. } => {
                *source = std::fs::canonicalize(&*source).map_err(|e| ExecError::BindSource {
                    path: source.clone(),
                    source: e,
                })?;
            }
            MountKind::BindDiscardWrites { source, scratch } => {
                check_overlay_path(source)?;
                check_overlay_path(scratch)?;
                if !source.is_dir() {
                    return Err(ExecError::DiscardSourceNotDir {
                        path: source.clone(),
                    });
                }
            }
            MountKind::Tmpfs { .. } | MountKind::Secret { .. } => {}
        }
    }
    Ok(spec)
}

/// The checks every request makes of its command: an argv, no NUL byte in a string
/// bound for the kernel, an absolute working directory.
pub(super) fn check_command(spec: &RunSpec) -> Result<(), ExecError> {
    if spec.argv.is_empty() {
        return Err(ExecError::EmptyArgv);
    }
    let texts = spec
        .argv
        .iter()
        .chain(&spec.env)
        .chain([&spec.cwd, &spec.user, &spec.hostname]);
    if let Some(t) = texts.into_iter().find(|t| t.contains('\0')) {
        return Err(ExecError::NulByte { text: t.clone() });
    }
    if !spec.cwd.starts_with('/') {
        return Err(ExecError::RelativeCwd {
            cwd: spec.cwd.clone(),
        });
    }
    Ok(())
}
