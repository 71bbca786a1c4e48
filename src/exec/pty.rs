//! `kiln run -t`: the container's console, a pseudo-terminal of the sandbox's own
//! devpts (as docker's). The sandbox init, once its root is built, opens `/dev/ptmx`
//! (the container's devpts instance), makes the slave its controlling terminal and
//! stdio, and passes the master to kiln over a socket ([`CONSOLE_FD`]) with
//! SCM_RIGHTS ([`open_console`]). kiln ([`Console`]) sets its own terminal raw while the
//! command runs (restored on drop: every exit path, a panic's unwinding included),
//! gives the master its window size at start and on SIGWINCH, and copies bytes both
//! ways: Ctrl-C and Ctrl-D travel as bytes to the container's line discipline.
//!
//! Invariant: the SIGWINCH handler only writes a byte to a non-blocking pipe and keeps
//! `errno` as it found it (async-signal-safe).

use std::fs::File;
use std::io::{IoSlice, IoSliceMut, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicI32, Ordering};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{self, SaFlags, SigAction, SigHandler, SigSet, Signal};
use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};
use nix::sys::termios::{self, SetArg, Termios};

use super::command::helper_err;
use super::ExecError;

/// The fd on which the helper (and the init it forks) gets the socket to kiln.
pub const CONSOLE_FD: i32 = 5;

/// In the sandbox init, after the root is built: opens the container's console, makes
/// it the controlling terminal and stdio of this process, and sends the master to
/// kiln on `sock` (closed afterwards).
pub fn open_console(sock: RawFd) -> Result<(), ExecError> {
    let err = |step: &str, e: Errno| helper_err(&format!("{step} (kiln run -t)"), e);
    let master = nix::fcntl::open(
        "/dev/ptmx",
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| err("opening /dev/ptmx", e))?;
    // SAFETY: `open` just returned this fd and nothing else owns it.
    let master = unsafe { OwnedFd::from_raw_fd(master) };
    let mut unlock: libc::c_int = 0;
    let mut n: libc::c_uint = 0;
    // SAFETY: TIOCSPTLCK reads an int and TIOCGPTN writes one, through valid pointers.
    unsafe {
        if libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &mut unlock) < 0 {
            return Err(err("unlocking the pty", Errno::last()));
        }
        if libc::ioctl(master.as_raw_fd(), libc::TIOCGPTN, &mut n) < 0 {
            return Err(err("naming the pty", Errno::last()));
        }
    }
    let slave = nix::fcntl::open(
        format!("/dev/pts/{n}").as_str(),
        OFlag::O_RDWR | OFlag::O_NOCTTY,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| err("opening the pty's slave", e))?;
    // SAFETY: `open` just returned this fd and nothing else owns it.
    let slave = unsafe { OwnedFd::from_raw_fd(slave) };
    nix::unistd::setsid().map_err(|e| err("starting a session", e))?;
    // SAFETY: TIOCSCTTY takes an integer argument.
    if unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCSCTTY, 0) } < 0 {
        return Err(err("taking the pty as controlling terminal", Errno::last()));
    }
    for fd in 0..3 {
        nix::unistd::dup2(slave.as_raw_fd(), fd).map_err(|e| err("making the pty stdio", e))?;
    }
    drop(slave);
    let fds = [master.as_raw_fd()];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    sendmsg::<()>(sock, &[IoSlice::new(b"t")], &cmsg, MsgFlags::empty(), None)
        .map_err(|e| err("passing the pty to kiln", e))?;
    let _ = nix::unistd::close(sock);
    Ok(())
}

/// `--init -t`, in the command the init forks: a process group of its own, made the
/// console's foreground (as tini does), so that Ctrl-C's SIGINT reaches the command
/// once, not also through the init that would pass it on again.
pub fn own_foreground() -> Result<(), ExecError> {
    let err = |step: &str, e: Errno| helper_err(&format!("{step} (kiln run --init -t)"), e);
    nix::unistd::setpgid(nix::unistd::Pid::from_raw(0), nix::unistd::Pid::from_raw(0))
        .map_err(|e| err("starting a process group", e))?;
    // tcsetpgrp from a background group stops it with SIGTTOU unless ignored; the
    // default comes back before the exec.
    // SAFETY: SIG_IGN and SIG_DFL are not handlers: nothing runs in signal context.
    let old = unsafe { signal::signal(Signal::SIGTTOU, SigHandler::SigIgn) }
        .map_err(|e| err("ignoring SIGTTOU", e))?;
    let set = nix::unistd::tcsetpgrp(std::io::stdin(), nix::unistd::getpgrp());
    // SAFETY: as above (the old disposition is the default, inherited from the init).
    let _ = unsafe { signal::signal(Signal::SIGTTOU, old) };
    set.map_err(|e| err("taking the console's foreground", e))
}

/// kiln's side: receives the master from the helper's socket; `None` when the sandbox
/// ended before it sent one (its report says why).
pub fn receive_master(sock: &OwnedFd) -> Result<Option<OwnedFd>, ExecError> {
    let mut byte = [0u8; 1];
    let mut iov = [IoSliceMut::new(&mut byte)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = loop {
        match recvmsg::<()>(
            sock.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Err(Errno::EINTR) => continue,
            other => break other.map_err(|e| helper_err("receiving the container's pty", e))?,
        }
    };
    for c in msg
        .cmsgs()
        .map_err(|e| helper_err("receiving the container's pty", e))?
    {
        if let ControlMessageOwned::ScmRights(fds) = c {
            let mut owned = fds
                .into_iter()
                // SAFETY: the kernel just installed these fds in this process for us.
                .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) });
            return Ok(owned.next());
        }
    }
    Ok(None)
}

/// The write end of the SIGWINCH pipe, for the handler (-1: none).
static WINCH_W: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_winch(_: libc::c_int) {
    let saved = Errno::last_raw();
    let fd = WINCH_W.load(Ordering::SeqCst);
    if fd >= 0 {
        // SAFETY: write is async-signal-safe; the buffer is a valid static byte.
        unsafe { libc::write(fd, b"w".as_ptr().cast(), 1) };
    }
    Errno::set_raw(saved);
}

/// kiln's terminal while a `-t` run lasts: raw (when stdin is a terminal), SIGWINCH
/// caught; dropping it restores both.
pub struct Console {
    saved: Option<Termios>,
    old_winch: Option<SigAction>,
    winch: Option<(OwnedFd, OwnedFd)>,
}

impl Console {
    /// Sets kiln's stdin raw if it is a terminal and starts catching SIGWINCH.
    pub fn enter() -> Result<Self, ExecError> {
        let stdin = std::io::stdin();
        let mut me = Self {
            saved: None,
            old_winch: None,
            winch: None,
        };
        if let Ok(t) = termios::tcgetattr(&stdin) {
            let mut raw = t.clone();
            termios::cfmakeraw(&mut raw);
            termios::tcsetattr(&stdin, SetArg::TCSANOW, &raw)
                .map_err(|e| helper_err("setting the terminal raw", e))?;
            me.saved = Some(t);
        }
        let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK)
            .map_err(|e| helper_err("creating the SIGWINCH pipe", e))?;
        WINCH_W.store(w.as_raw_fd(), Ordering::SeqCst);
        me.winch = Some((r, w));
        let action = SigAction::new(
            SigHandler::Handler(on_winch),
            SaFlags::SA_RESTART,
            SigSet::empty(),
        );
        // SAFETY: the handler is async-signal-safe (module invariant).
        let old = unsafe { signal::sigaction(Signal::SIGWINCH, &action) }
            .map_err(|e| helper_err("catching SIGWINCH", e))?;
        me.old_winch = Some(old);
        Ok(me)
    }

    /// Copies between kiln's stdio and `master` until the container's side is closed
    /// (every slave fd gone: the command and its children ended). kiln's stdin is read
    /// only when `input` (`-i`), until its end of file.
    pub fn copy(&self, master: &OwnedFd, input: bool) -> Result<(), ExecError> {
        let io_err = |step: &str, e: Errno| helper_err(step, e);
        copy_winsize(master);
        let winch_r = self
            .winch
            .as_ref()
            .map(|(r, _)| r.as_raw_fd())
            .unwrap_or(-1);
        let mut stdin_open = input;
        let mut buf = vec![0u8; 16 * 1024];
        let mut out = std::io::stdout().lock();
        let mut to_master = File::from(
            master
                .try_clone()
                .map_err(|e| io_err("copying the pty fd", ExecError::errno_of(&e)))?,
        );
        loop {
            let stdin = std::io::stdin();
            // SAFETY: the fd lives as long as these borrows (this loop iteration).
            let (m, w) = unsafe {
                (
                    std::os::fd::BorrowedFd::borrow_raw(master.as_raw_fd()),
                    std::os::fd::BorrowedFd::borrow_raw(winch_r),
                )
            };
            let mut fds = vec![PollFd::new(m, PollFlags::POLLIN)];
            if winch_r >= 0 {
                fds.push(PollFd::new(w, PollFlags::POLLIN));
            }
            let stdin_fd = stdin.lock();
            let stdin_at = fds.len();
            if stdin_open {
                fds.push(PollFd::new(
                    std::os::fd::AsFd::as_fd(&stdin_fd),
                    PollFlags::POLLIN,
                ));
            }
            match poll(&mut fds, PollTimeout::NONE) {
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(io_err("waiting on the pty", e)),
                Ok(_) => {}
            }
            let ready = |i: usize| fds[i].revents().is_some_and(|r| !r.is_empty());
            let (m_ready, w_ready, s_ready) = (
                ready(0),
                winch_r >= 0 && ready(1),
                stdin_open && ready(stdin_at),
            );
            drop(fds);
            if w_ready {
                let mut sink = [0u8; 64];
                let _ = nix::unistd::read(winch_r, &mut sink);
                copy_winsize(master);
            }
            if m_ready {
                match nix::unistd::read(master.as_raw_fd(), &mut buf) {
                    // EIO: no slave left open.
                    Ok(0) | Err(Errno::EIO) => return Ok(()),
                    Ok(n) => {
                        // kiln's stdout gone (a closed pipe): the output has nowhere to go.
                        if out.write_all(&buf[..n]).and_then(|()| out.flush()).is_err() {
                            return Ok(());
                        }
                    }
                    Err(Errno::EINTR | Errno::EAGAIN) => {}
                    Err(e) => return Err(io_err("reading the pty", e)),
                }
            }
            if s_ready {
                match nix::unistd::read(0, &mut buf) {
                    Ok(0) | Err(Errno::EIO) => stdin_open = false,
                    Ok(n) => {
                        if to_master.write_all(&buf[..n]).is_err() {
                            stdin_open = false;
                        }
                    }
                    Err(Errno::EINTR | Errno::EAGAIN) => {}
                    Err(_) => stdin_open = false,
                }
            }
        }
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        if let Some(old) = &self.old_winch {
            // SAFETY: restores the action that was installed before ours.
            let _ = unsafe { signal::sigaction(Signal::SIGWINCH, old) };
        }
        WINCH_W.store(-1, Ordering::SeqCst);
        if let Some(t) = &self.saved {
            let _ = termios::tcsetattr(std::io::stdin(), SetArg::TCSAFLUSH, t);
        }
    }
}

/// Gives `master` the window size of kiln's terminal (stdin's, else stdout's).
fn copy_winsize(master: &OwnedFd) {
    // SAFETY: winsize is plain data; TIOCGWINSZ writes it and TIOCSWINSZ reads it,
    // through a valid pointer.
    unsafe {
        let mut ws: libc::winsize = std::mem::zeroed();
        if libc::ioctl(0, libc::TIOCGWINSZ, &mut ws) == 0
            || libc::ioctl(1, libc::TIOCGWINSZ, &mut ws) == 0
        {
            libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws);
        }
    }
}
