//! The private network ([`super::Network::Private`]): a network namespace of the
//! sandbox's own, wired to the host by a user-mode network stack, slirp4netns, which
//! the helper starts on the init's namespace before the command runs, then publishes
//! the spec's ports through its API socket.
//!
//! Why slirp4netns: it is the user-mode network Debian's podman uses, it works as root
//! and rootless alike (it needs only to enter a network namespace its user namespace
//! owns), and it has the two hooks a daemonless runtime needs: `--ready-fd` (a byte
//! once the interface is configured: a sync point, no polling) and `--exit-fd` (it
//! exits when that pipe closes, so a helper killed outright takes it along). Debian
//! 12's pasta (passt 2023-03) drops to `nobody` before it opens a namespace given by
//! path or PID, and so cannot attach as root.
//!
//! The container gets slirp4netns's addressing: 10.0.2.100/24 on `eth0`, gateway
//! 10.0.2.2, DNS forwarded to the host's resolver at 10.0.2.3, its own loopback.
//! `--disable-host-loopback` keeps the host's loopback out of reach (10.0.2.2 does not
//! lead to the host's 127.0.0.1), as docker's bridge does.
//!
//! Invariants: slirp4netns lives exactly as long as the [`UserNet`] that started it
//! (dropped: its exit pipe closes and it is waited for), and as long as the helper
//! process (a killed helper closes the pipe too); its output goes to a log file in
//! the run's work dir, read back only to explain a failure.

use std::fs::File;
use std::io::{Read, Write};
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use nix::fcntl::OFlag;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{ForkResult, Pid};
use serde::{Deserialize, Serialize};

use super::ExecError;

/// The program that runs the private network.
pub const TOOL: &str = "slirp4netns";

/// The Debian package that has it.
pub const PACKAGE: &str = "slirp4netns";

/// The container's address on the private network.
pub const CONTAINER_ADDR: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 100);

/// The private network's DNS forwarder (to the host's resolver).
pub const DNS_ADDR: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 3);

/// A port the host forwards into the container (`-p`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortMapping {
    /// The host address to listen on; every address when absent.
    pub host_ip: Option<Ipv4Addr>,
    /// The host port (never 0: the caller picks a free one).
    pub host_port: u16,
    /// The container's port.
    pub container_port: u16,
    /// TCP or UDP.
    pub protocol: Protocol,
}

impl std::fmt::Display for PortMapping {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ip = self.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED);
        write!(
            f,
            "{ip}:{} -> {}/{}",
            self.host_port,
            self.container_port,
            self.protocol.name()
        )
    }
}

/// A published port's protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Protocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

impl Protocol {
    /// `tcp` or `udp`, as docker and slirp4netns spell it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Udp => "udp",
        }
    }
}

/// Finds the network tool in `PATH`, or says which package to install.
pub fn find_tool() -> Result<PathBuf, ExecError> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/sbin:/usr/bin:/sbin:/bin".into());
    std::env::split_paths(&path)
        .map(|d| d.join(TOOL))
        .find(|p| {
            use std::os::unix::fs::PermissionsExt;
            p.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
        .ok_or_else(|| ExecError::NetworkToolMissing {
            tool: TOOL.into(),
            package: PACKAGE.into(),
        })
}

/// The user-mode network of one sandbox: slirp4netns, or before [`UserNet::attach`]
/// the process that will exec it.
///
/// The helper forks that process *before* it unshares the PID namespace, so that
/// slirp4netns runs beside the helper, not among the container's processes (a member
/// of the container's namespace would be killed with its init, and could be seen and
/// signalled from inside). It waits for the init's pid on a pipe (end of file: the
/// helper gave up, it exits).
pub struct UserNet {
    child: Pid,
    pid_w: Option<OwnedFd>,
    ready_r: Option<OwnedFd>,
    /// Closing it tells slirp4netns to exit.
    exit_w: Option<OwnedFd>,
    /// The work dir, held open: [`UserNet::sock`] names the socket through it.
    _dir: OwnedFd,
    /// The API socket, as `/proc/self/fd/N/slirp.sock`.
    sock: PathBuf,
    log_path: PathBuf,
}

impl UserNet {
    /// Forks the process that runs slirp4netns once [`UserNet::attach`] names the
    /// namespace; its log and API socket go in `work_dir`. The caller must be
    /// single-threaded (the helper is).
    pub fn prepare(work_dir: &Path) -> Result<Self, ExecError> {
        let tool = find_tool()?;
        // sockaddr_un holds 107 bytes, and a stored container's work dir (under
        // containers/<64 hex>/) is longer than that in most stores. slirp4netns binds
        // `slirp.sock` relative to its cwd (the work dir); kiln connects through its
        // own fd of the dir, `/proc/self/fd/N/slirp.sock`, which is short whatever
        // the store's path.
        let dir =
            OwnedFd::from(File::open(work_dir).map_err(|e| setup_err("opening its work dir", &e))?);
        let sock = PathBuf::from(format!("/proc/self/fd/{}/{SOCKET}", dir.as_raw_fd()));
        let log_path = work_dir.join("slirp4netns.log");
        let log = File::create(&log_path).map_err(|e| setup_err("creating its log", &e))?;
        let pipe =
            || nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| setup_err("a pipe", &e.into()));
        let (pid_r, pid_w) = pipe()?;
        let (ready_r, ready_w) = pipe()?;
        let (exit_r, exit_w) = pipe()?;
        // SAFETY: the helper is single-threaded (it checks before anything else), so
        // the child may run arbitrary code after the fork.
        match unsafe { nix::unistd::fork() }.map_err(|e| setup_err("forking", &e.into()))? {
            ForkResult::Child => {
                drop((pid_w, ready_r, exit_w));
                let err = exec_when_told(&tool, work_dir, log, pid_r, ready_w, exit_r);
                let _ = writeln!(std::io::stderr(), "kiln: starting {TOOL}: {err}");
                // SAFETY: _exit skips the helper's atexit handlers and buffers, which a
                // forked child must not run twice.
                unsafe { libc::_exit(127) }
            }
            ForkResult::Parent { child } => Ok(Self {
                child,
                pid_w: Some(pid_w),
                ready_r: Some(ready_r),
                exit_w: Some(exit_w),
                _dir: dir,
                sock,
                log_path,
            }),
        }
    }

    /// Starts slirp4netns on the network namespace of `pid` (the sandbox init, as this
    /// process sees it, which waits for it), waits until it has configured the
    /// interface, and publishes `ports`.
    pub fn attach(&mut self, pid: i32, ports: &[PortMapping]) -> Result<(), ExecError> {
        if let Some(w) = self.pid_w.take() {
            File::from(w)
                .write_all(&pid.to_le_bytes())
                .map_err(|e| setup_err("naming the namespace", &e))?;
        }
        let mut byte = [0u8; 1];
        let n = match self.ready_r.take() {
            Some(r) => File::from(r)
                .read(&mut byte)
                .map_err(|e| setup_err("waiting for slirp4netns", &e))?,
            None => 0,
        };
        if n == 0 {
            drop(self.exit_w.take());
            let status = match waitpid(self.child, None) {
                Ok(WaitStatus::Exited(_, code)) => Some(code),
                _ => None,
            };
            self.child = Pid::from_raw(0);
            let mut log = read_log(&self.log_path);
            if log.contains("/dev/net/tun") {
                log.push_str(
                    " (slirp4netns opens /dev/net/tun as kiln's user: Debian makes it mode 0666)",
                );
            }
            return Err(ExecError::NetworkNotReady { status, log });
        }
        for port in ports {
            add_hostfwd(&self.sock, port)?;
        }
        Ok(())
    }
}

impl Drop for UserNet {
    fn drop(&mut self) {
        drop(self.pid_w.take());
        drop(self.exit_w.take());
        if self.child.as_raw() > 0 {
            let _ = waitpid(self.child, None);
        }
    }
}

/// In the forked child: reads the init's pid, then execs slirp4netns on its
/// namespace with `ready_w` and `exit_r` as its ready and exit fds. Returns only on
/// failure.
fn exec_when_told(
    tool: &Path,
    work_dir: &Path,
    log: File,
    pid_r: OwnedFd,
    ready_w: OwnedFd,
    exit_r: OwnedFd,
) -> std::io::Error {
    let mut buf = [0u8; 4];
    if let Err(e) = File::from(pid_r).read_exact(&mut buf) {
        return e;
    }
    let pid = i32::from_le_bytes(buf);
    let (ready_fd, exit_fd) = (ready_w.as_raw_fd(), exit_r.as_raw_fd());
    for fd in [ready_fd, exit_fd] {
        // SAFETY: F_SETFD on an fd this process owns; clears close-on-exec so that
        // slirp4netns inherits it.
        if unsafe { libc::fcntl(fd, libc::F_SETFD, 0) } < 0 {
            return std::io::Error::last_os_error();
        }
    }
    let log2 = match log.try_clone() {
        Ok(l) => l,
        Err(e) => return e,
    };
    let err = Command::new(tool)
        .current_dir(work_dir)
        .args(args(pid, Path::new(SOCKET), ready_fd, exit_fd))
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2)
        .exec();
    drop((ready_w, exit_r));
    err
}

/// The API socket's name in the work dir.
const SOCKET: &str = "slirp.sock";

/// slirp4netns's command line for the namespace of `pid`.
fn args(pid: i32, sock: &Path, ready_fd: i32, exit_fd: i32) -> Vec<std::ffi::OsString> {
    let mut a: Vec<std::ffi::OsString> = [
        "--configure",
        "--mtu=65520",
        "--disable-host-loopback",
        "--enable-sandbox",
        "--enable-seccomp",
    ]
    .iter()
    .map(Into::into)
    .collect();
    a.push(format!("--ready-fd={ready_fd}").into());
    a.push(format!("--exit-fd={exit_fd}").into());
    a.push("--api-socket".into());
    a.push(sock.into());
    a.push(pid.to_string().into());
    a.push("eth0".into());
    a
}

/// The API request that publishes `port`.
fn hostfwd_request(port: &PortMapping) -> serde_json::Value {
    serde_json::json!({
        "execute": "add_hostfwd",
        "arguments": {
            "proto": port.protocol.name(),
            "host_addr": port.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED).to_string(),
            "host_port": port.host_port,
            "guest_port": port.container_port,
        }
    })
}

fn add_hostfwd(sock: &Path, port: &PortMapping) -> Result<(), ExecError> {
    let fail = |detail: String| ExecError::PublishPort {
        port: port.to_string(),
        detail,
    };
    let mut conn = UnixStream::connect(sock).map_err(|e| fail(e.to_string()))?;
    conn.write_all(hostfwd_request(port).to_string().as_bytes())
        .map_err(|e| fail(e.to_string()))?;
    conn.shutdown(std::net::Shutdown::Write)
        .map_err(|e| fail(e.to_string()))?;
    let mut reply = Vec::new();
    conn.read_to_end(&mut reply)
        .map_err(|e| fail(e.to_string()))?;
    let reply: serde_json::Value =
        serde_json::from_slice(&reply).map_err(|e| fail(format!("slirp4netns's reply: {e}")))?;
    match reply.get("error") {
        None => Ok(()),
        Some(err) => Err(fail(format!(
            "{} (is the host port in use?)",
            err.get("desc")
                .and_then(|d| d.as_str())
                .unwrap_or("refused")
        ))),
    }
}

fn setup_err(step: &str, e: &std::io::Error) -> ExecError {
    ExecError::NetworkSetup {
        step: step.into(),
        detail: e.to_string(),
    }
}

fn read_log(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(5)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_command_line() {
        let p = PortMapping {
            host_ip: Some(Ipv4Addr::LOCALHOST),
            host_port: 8080,
            container_port: 80,
            protocol: Protocol::Udp,
        };
        assert_eq!(p.to_string(), "127.0.0.1:8080 -> 80/udp");
        let r = hostfwd_request(&p);
        assert_eq!(r["arguments"]["proto"], "udp");
        assert_eq!(r["arguments"]["host_addr"], "127.0.0.1");
        assert_eq!(r["arguments"]["guest_port"], 80);
        let a = args(42, Path::new("/w/s"), 5, 6);
        let a: Vec<_> = a.iter().map(|s| s.to_str().unwrap()).collect();
        assert!(a.contains(&"--disable-host-loopback"));
        assert_eq!(a[a.len() - 2..], ["42", "eth0"]);
        assert!(a.contains(&"--ready-fd=5") && a.contains(&"--exit-fd=6"));
    }
}
