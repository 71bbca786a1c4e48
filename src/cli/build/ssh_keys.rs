//! `--ssh ID=KEYFILE[,KEYFILE…]`: buildx loads private key files into an agent
//! of its own; kiln starts OpenSSH's `ssh-agent` for them, on a socket in a
//! private temp dir, loads the keys with `ssh-add`, and forwards that socket
//! like any other. The agent is killed and its dir removed when the build
//! ends (a `KeyAgent` is dropped).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A private `ssh-agent` holding the given keys.
pub(crate) struct KeyAgent {
    child: Child,
    socket: PathBuf,
    _dir: tempfile::TempDir,
}

impl KeyAgent {
    /// Starts the agent and loads `keys`; the reason on failure is for a
    /// usage error naming the `--ssh` value.
    pub(crate) fn start(keys: &[PathBuf]) -> Result<KeyAgent, String> {
        let missing = "key files need OpenSSH's ssh-agent and ssh-add (apt-get install openssh-client), or pass an agent socket";
        let dir = tempfile::Builder::new()
            .prefix("kiln-ssh-")
            .tempdir()
            .map_err(|e| format!("making a dir for the agent: {e}"))?;
        let socket = dir.path().join("agent.sock");
        let child = Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&socket)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|_| missing.to_string())?;
        let mut agent = KeyAgent {
            child,
            socket,
            _dir: dir,
        };
        agent.wait_for_socket()?;
        let out = Command::new("ssh-add")
            .args(keys)
            .env("SSH_AUTH_SOCK", &agent.socket)
            // A key with a passphrase fails here instead of prompting.
            .env("SSH_ASKPASS_REQUIRE", "never")
            .env_remove("DISPLAY")
            .stdin(Stdio::null())
            .output()
            .map_err(|_| missing.to_string())?;
        if !out.status.success() {
            let said = String::from_utf8_lossy(&out.stderr).trim().to_string();
            return Err(format!("ssh-add could not load the key: {said}"));
        }
        Ok(agent)
    }

    fn wait_for_socket(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.socket.exists() {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("ssh-agent exited ({status}) before listening"));
            }
            if Instant::now() > deadline {
                return Err("ssh-agent did not start listening within 10 s".into());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(())
    }

    /// The agent's socket, to forward.
    pub(crate) fn socket(&self) -> &Path {
        &self.socket
    }
}

impl Drop for KeyAgent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
