//! `RUN --mount=type=ssh`: an SSH agent given with `kiln build --ssh ID=SOCKET`
//! reaches the command through a socket kiln listens on for the length of the
//! run and relays, connection by connection, to the agent's socket, as
//! BuildKit's `sshforward.MountSSHSocket` does (there over the session).
//!
//! Invariants: the agent's own socket is never bind-mounted, chmod'ed or
//! chown'ed: the mount's `uid`, `gid` and `mode` are those of kiln's socket
//! (in a 0711 dir of its own); the relay stops accepting when the run ends
//! (dropping [`AgentRelay`]), and its socket's path never reaches a layer or
//! a cache key (the sandbox removes the mount point it created).

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

/// The socket's file name, BuildKit's.
pub(crate) const SOCKET_NAME: &str = "ssh_auth_sock";

/// A listening relay to one agent; stops when dropped.
pub struct AgentRelay {
    socket: PathBuf,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

impl AgentRelay {
    /// Listens on `dir/ssh_auth_sock` (`dir` must exist, be empty and short
    /// enough for a socket path), owned `uid:gid` with `mode`, relaying to
    /// `agent`.
    pub fn start(dir: &Path, agent: &Path, uid: u32, gid: u32, mode: u32) -> io::Result<Self> {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o711))?;
        let socket = dir.join(SOCKET_NAME);
        let listener = UnixListener::bind(&socket)?;
        std::os::unix::fs::chown(&socket, Some(uid), Some(gid))?;
        std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(mode))?;
        let stop = Arc::new(AtomicBool::new(false));
        let agent = agent.to_path_buf();
        let stopped = Arc::clone(&stop);
        let acceptor = std::thread::Builder::new()
            .name("kiln-ssh-relay".into())
            .spawn(move || accept_loop(&listener, &agent, &stopped))?;
        Ok(Self {
            socket,
            stop,
            acceptor: Some(acceptor),
        })
    }

    /// The host path of the relay's socket, to bind-mount into the sandbox.
    pub fn socket(&self) -> &Path {
        &self.socket
    }
}

impl Drop for AgentRelay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the blocking accept; the loop sees `stop` and ends.
        let _ = UnixStream::connect(&self.socket);
        if let Some(t) = self.acceptor.take() {
            let _ = t.join();
        }
    }
}

fn accept_loop(listener: &UnixListener, agent: &Path, stop: &AtomicBool) {
    for conn in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        // A failed accept or agent connection fails that client only, as in
        // BuildKit ("erroring per connection allowed").
        let Ok(client) = conn else { continue };
        let agent = agent.to_path_buf();
        let _ = std::thread::Builder::new()
            .name("kiln-ssh-conn".into())
            .spawn(move || relay(client, &agent));
    }
}

/// Copies both ways until each side has closed its half.
fn relay(client: UnixStream, agent: &Path) {
    let Ok(upstream) = UnixStream::connect(agent) else {
        return;
    };
    let (Ok(mut client_r), Ok(mut upstream_w)) = (client.try_clone(), upstream.try_clone()) else {
        return;
    };
    let to_agent = std::thread::spawn(move || {
        let _ = io::copy(&mut client_r, &mut upstream_w);
        let _ = upstream_w.shutdown(std::net::Shutdown::Write);
    });
    let (mut upstream_r, mut client_w) = (upstream, client);
    let _ = io::copy(&mut upstream_r, &mut client_w);
    let _ = client_w.shutdown(std::net::Shutdown::Write);
    let _ = to_agent.join();
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::unix::fs::{FileTypeExt, MetadataExt};

    #[test]
    fn relays_a_request_and_its_answer_and_keeps_its_own_mode() {
        let t = tempfile::tempdir().unwrap();
        let agent_path = t.path().join("agent");
        let agent = UnixListener::bind(&agent_path).unwrap();
        let echo = std::thread::spawn(move || {
            let (mut c, _) = agent.accept().unwrap();
            let mut buf = [0u8; 5];
            c.read_exact(&mut buf).unwrap();
            c.write_all(b"answer:").unwrap();
            c.write_all(&buf).unwrap();
        });
        let dir = t.path().join("relay");
        std::fs::create_dir(&dir).unwrap();
        let uid = nix::unistd::getuid().as_raw();
        let gid = nix::unistd::getgid().as_raw();
        let relay = AgentRelay::start(&dir, &agent_path, uid, gid, 0o640).unwrap();
        let meta = std::fs::metadata(relay.socket()).unwrap();
        assert!(meta.file_type().is_socket());
        assert_eq!(meta.mode() & 0o7777, 0o640);
        let mut c = UnixStream::connect(relay.socket()).unwrap();
        c.write_all(b"hello").unwrap();
        let mut got = String::new();
        c.read_to_string(&mut got).unwrap();
        assert_eq!(got, "answer:hello");
        echo.join().unwrap();
        let socket = relay.socket().to_path_buf();
        drop(relay);
        // Stopped: nobody accepts any more.
        let late = UnixStream::connect(&socket);
        assert!(late.is_err() || late.unwrap().read(&mut [0u8; 1]).unwrap() == 0);
    }
}
