//! The `kiln __sandbox` helper and the sandbox init it forks. The helper is a fresh,
//! single-threaded process (it checks), so forking it is sound. It unshares a PID
//! namespace, forks the init (PID 1 of that namespace), waits for it, removes the mount
//! points the init created from the upper dir and reports to kiln on fd 3. The init
//! builds the root ([`super::rootfs::setup`]), narrows its capabilities
//! ([`super::caps`]), drops to the user and execs the command;
//! a setup failure goes back over a close-on-exec pipe, whose end of file tells the
//! helper the exec happened.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{fcntl, open, FcntlArg, FdFlag, OFlag};
use nix::sched::CloneFlags;
use nix::sys::stat::Mode;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{dup2, fork, pipe2, ForkResult};

use super::command::{become_user, child_basics, exec, helper_err, set_ulimits};
use super::network::UserNet;
use super::protocol::{self, InitMsg, Report, REPORT_FD, STDIN_FD};
use super::rootfs::{self, MountPoints};
use super::sys::RealSys;
use super::{caps, cleanup, forward, pty, seccomp, ExecError, Network, RunSpec};

/// Entry point of `kiln __sandbox`: reads the spec from stdin, runs it, writes the
/// `Report` to fd 3 and exits 0 (exit 3 when fd 3 is not a pipe from kiln).
pub fn helper_main() -> ! {
    // SAFETY: kiln's `run` passes the write end of its report pipe as fd 3; nothing
    // else in this fresh process owns fd 3. F_GETFD checks it is open first.
    let mut report = match fcntl(REPORT_FD, FcntlArg::F_GETFD) {
        Ok(_) => unsafe { File::from_raw_fd(REPORT_FD) },
        Err(_) => {
            eprintln!("error: kiln __sandbox is internal: it is started by kiln with a report pipe on fd 3");
            std::process::exit(3);
        }
    };
    // The command must not inherit the report pipe (nor, `-t`, the console socket:
    // slirp4netns must not hold it either, or kiln would never see its end).
    let _ = fcntl(REPORT_FD, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC));
    let _ = fcntl(pty::CONSOLE_FD, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC));
    let msg = match run_helper() {
        Ok(status) => Report::Exited { status },
        Err(err) => Report::Failed(err),
    };
    let code = match protocol::send(&mut report, &msg) {
        Ok(()) => 0,
        Err(_) => 3,
    };
    std::process::exit(code)
}

fn run_helper() -> Result<i32, ExecError> {
    let threads = super::userns::thread_count();
    if threads != 1 {
        return Err(ExecError::NotSingleThreaded { threads });
    }
    let mut json = Vec::new();
    std::io::stdin()
        .read_to_end(&mut json)
        .map_err(|e| helper_err("reading the run spec", ExecError::errno_of(&e)))?;
    let spec = match protocol::decode_request(&json)? {
        protocol::Request::Sandbox(spec) => spec,
        protocol::Request::Chroot(req) => {
            redirect_stdin(req.spec.stdin.as_deref())?;
            return super::chroot::run_helper(&req);
        }
    };
    match spec.foreground {
        Some(fg) if fg.stdin && !fg.tty => {
            dup2(STDIN_FD, 0).map_err(|e| helper_err("taking kiln's stdin", e))?;
            let _ = nix::unistd::close(STDIN_FD);
        }
        _ => redirect_stdin(spec.stdin.as_deref())?,
    }
    if !spec.ports.is_empty() && spec.network != Network::Private {
        return Err(ExecError::PortsWithoutPrivateNetwork);
    }
    // Forked before the PID namespace exists, so that slirp4netns is not in it, and
    // before the init's pipes, so that it holds no copy of them.
    let mut net = match spec.network {
        Network::Private => Some(UserNet::prepare(&spec.work_dir)?),
        _ => None,
    };
    let (init_r, init_w) =
        pipe2(OFlag::O_CLOEXEC).map_err(|e| helper_err("creating the init pipe", e))?;
    // helper → init: one byte once a private network is up; end of file if not.
    let go = match spec.network {
        Network::Private => {
            Some(pipe2(OFlag::O_CLOEXEC).map_err(|e| helper_err("creating the go pipe", e))?)
        }
        _ => None,
    };
    nix::sched::unshare(CloneFlags::CLONE_NEWPID).map_err(|source| ExecError::Unshare {
        flags: "CLONE_NEWPID".into(),
        source,
    })?;
    // Held back until the init's pid is known to the handlers (see `forward`).
    if spec.foreground.is_some() {
        forward::block()?;
    }
    // SAFETY: this process is single-threaded (checked above), so the child may run
    // arbitrary code after the fork.
    let pid = match unsafe { fork() }.map_err(|e| helper_err("forking the sandbox init", e))? {
        ForkResult::Child => {
            drop(init_r);
            if spec.foreground.is_some() {
                // The command must not inherit a blocked mask.
                let _ = forward::unblock();
            }
            init_main(&spec, init_w, go.map(|(r, _)| r))
        }
        ForkResult::Parent { child } => child,
    };
    if spec.foreground.is_some_and(|f| f.tty) {
        // The init holds the console socket now; kiln must see its end when the init
        // ends without sending the pty.
        let _ = nix::unistd::close(pty::CONSOLE_FD);
    }
    let go_w = go.map(|(_, w)| w);
    if let Some(fg) = spec.foreground {
        forward::install(pid, fg)?;
        forward::unblock().map_err(|e| helper_err("unblocking signals", e))?;
    }
    drop(init_w);
    let read_err =
        |e: std::io::Error| helper_err("reading from the sandbox init", ExecError::errno_of(&e));
    let mut init_out = BufReader::new(File::from(init_r));
    let mut bytes = Vec::new();
    // `net` is dropped after the init has exited: the network lives as long as the
    // command.
    let mut net_err = None;
    if let (Some(go_w), Some(net)) = (go_w, net.as_mut()) {
        init_out.read_until(b'\n', &mut bytes).map_err(read_err)?;
        let first = protocol::decode_lines::<InitMsg>(&bytes, "sandbox init message");
        if matches!(first.as_deref(), Ok([InitMsg::NetworkNamespace])) {
            match net.attach(pid.as_raw(), &spec.ports) {
                // A write that fails means the init is gone; its exit says why.
                Ok(()) => drop(File::from(go_w).write_all(b"1")),
                // go_w is dropped here: the init reads end of file and gives up.
                Err(e) => net_err = Some(e),
            }
        }
    }
    init_out.read_to_end(&mut bytes).map_err(read_err)?;
    let status = super::command::wait_status(pid, "waiting for the sandbox init")?;
    drop(net.take());
    let (mut points, mut failed) = (MountPoints::default(), net_err.take());
    for msg in protocol::decode_lines::<InitMsg>(&bytes, "sandbox init message")? {
        match msg {
            // The network's own error says more than the init's giving up.
            InitMsg::Failed(err) => {
                failed.get_or_insert(err);
            }
            InitMsg::MountPoints(p) => points = p,
            InitMsg::NetworkNamespace => {}
        }
    }
    cleanup::remove_mount_points(&spec.upper_dir, &spec.lower_dirs, &points)?;
    failed.map_or(Ok(status), Err)
}

/// The sandbox init: never returns. Exits 127 after reporting a setup failure.
fn init_main(spec: &RunSpec, pipe: OwnedFd, go: Option<OwnedFd>) -> ! {
    let mut pipe = File::from(pipe);
    let err = match init_setup(spec, &mut pipe, go) {
        Ok(never) => match never {},
        Err(err) => err,
    };
    let _ = protocol::send(&mut pipe, &InitMsg::Failed(err));
    // SAFETY: _exit skips the parent's atexit handlers and buffered state, which a
    // forked child must not run twice.
    unsafe { libc::_exit(127) }
}

fn init_setup(
    spec: &RunSpec,
    pipe: &mut File,
    go: Option<OwnedFd>,
) -> Result<std::convert::Infallible, ExecError> {
    child_basics()?;
    if let Some(go) = go {
        private_network(pipe, go)?;
    }
    let points = rootfs::setup(&mut RealSys, spec)?;
    protocol::send(pipe, &InitMsg::MountPoints(points))
        .and_then(|()| pipe.flush())
        .map_err(|e| helper_err("sending mount points", ExecError::errno_of(&e)))?;
    if spec.foreground.is_some_and(|f| f.tty) {
        // After the pivot: /dev/ptmx is the sandbox's own devpts instance.
        pty::open_console(pty::CONSOLE_FD)?;
    }
    // Before the capabilities go: raising a hard limit needs CAP_SYS_RESOURCE.
    set_ulimits(&spec.ulimits)?;
    if !spec.privileged {
        caps::keep(spec.capabilities.as_deref().unwrap_or(&caps::DEFAULT))?;
        // While CAP_SYS_ADMIN is still effective: no PR_SET_NO_NEW_PRIVS needed.
        seccomp::install()?;
    }
    let home = become_user(spec)?;
    if spec.foreground.is_some_and(|f| f.init) {
        return init_process(spec, &home, pipe);
    }
    exec(spec, &home)
}

/// A private network: the init enters a network namespace of its own, tells the
/// helper, and waits until the helper says the network is wired to the host (one byte
/// on `go`; end of file means it could not be).
fn private_network(pipe: &mut File, go: OwnedFd) -> Result<(), ExecError> {
    nix::sched::unshare(CloneFlags::CLONE_NEWNET).map_err(|source| ExecError::Unshare {
        flags: "CLONE_NEWNET".into(),
        source,
    })?;
    // COMPAT(docker): a container with a network namespace of its own lets any user
    // bind ports below 1024 in it (a web server run as a user listens on 80).
    std::fs::write("/proc/sys/net/ipv4/ip_unprivileged_port_start", "0")
        .map_err(|e| helper_err("allowing unprivileged ports", ExecError::errno_of(&e)))?;
    protocol::send(pipe, &InitMsg::NetworkNamespace)
        .and_then(|()| pipe.flush())
        .map_err(|e| helper_err("announcing the network namespace", ExecError::errno_of(&e)))?;
    let mut byte = [0u8; 1];
    match File::from(go).read(&mut byte) {
        Ok(1) => Ok(()),
        _ => Err(ExecError::NetworkAbandoned),
    }
}

/// `kiln run --init`: forks the command and stays PID 1, passing signals on to it and
/// reaping every child until the command exits; then exits with its status (128 + N
/// when signal N killed it). The command's exec failure reaches the helper as it
/// would without the init: the child reports it on the pipe and exits 127.
fn init_process(
    spec: &RunSpec,
    home: &str,
    pipe: &mut File,
) -> Result<std::convert::Infallible, ExecError> {
    forward::block()?;
    // SAFETY: the init is single-threaded (forked from the single-threaded helper).
    let child = match unsafe { fork() }.map_err(|e| helper_err("forking the command", e))? {
        ForkResult::Child => {
            if spec.foreground.is_some_and(|f| f.tty) {
                pty::own_foreground()?;
            }
            let _ = forward::unblock();
            return exec(spec, home);
        }
        ForkResult::Parent { child } => child,
    };
    // The helper reads the pipe to its end: only the command's copy (close-on-exec)
    // may keep it open. This process never returns (it exits below), so the File that
    // owns the fd is never dropped and the fd is not closed twice.
    let _ = nix::unistd::close(pipe.as_raw_fd());
    forward::install_init(child)?;
    let _ = forward::unblock();
    let status = loop {
        match waitpid(None, None) {
            Ok(WaitStatus::Exited(pid, code)) if pid == child => break code,
            Ok(WaitStatus::Signaled(pid, sig, _)) if pid == child => break 128 + sig as i32,
            Ok(_) | Err(Errno::EINTR) => continue,
            // No child left: the command is gone without our seeing it (cannot happen).
            Err(_) => break 128 + libc::SIGKILL,
        }
    };
    // SAFETY: _exit skips atexit handlers and buffered state of the forked process.
    unsafe { libc::_exit(status) }
}

pub(super) fn redirect_stdin(path: Option<&Path>) -> Result<(), ExecError> {
    let path = path.unwrap_or(Path::new("/dev/null"));
    let open_err = |source| ExecError::OpenStdin {
        path: path.to_path_buf(),
        source,
    };
    let fd = open(path, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty()).map_err(open_err)?;
    // SAFETY: `open` just returned this fd and nothing else owns it.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    dup2(fd.as_raw_fd(), 0).map_err(open_err)?;
    Ok(())
}
