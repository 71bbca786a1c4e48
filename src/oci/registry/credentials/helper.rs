//! docker's credential helper protocol: `docker-credential-<name> <action>`
//! with its input on stdin and its answer on stdout.
//!
//! - `get`: stdin is the server URL (no newline, as docker sends it); stdout
//!   is `{"ServerURL","Username","Secret"}`. A `Username` of `<token>` means
//!   the secret is an identity token.
//! - `store`: stdin is that JSON object; stdout is empty.
//! - `erase`: stdin is the server URL.
//!
//! A helper reports failure with a non-zero exit and its message on stdout;
//! `credentials not found in native keychain` is the one message that means
//! "nothing stored" rather than a failure. Secrets only travel over the pipes.

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};

use super::super::Credential;
use super::CredentialsError;

/// The answer a helper gives when it holds nothing for the server.
const NOT_FOUND: &str = "credentials not found in native keychain";

/// The user name that marks the secret as an identity token.
const TOKEN_USERNAME: &str = "<token>";

/// The helper's JSON, field names as docker spells them. No `Debug`: it
/// carries the secret, and nothing needs to print it.
#[derive(Default, Serialize, Deserialize)]
struct Message {
    #[serde(rename = "ServerURL", default)]
    server_url: String,
    #[serde(rename = "Username", default)]
    username: String,
    #[serde(rename = "Secret", default)]
    secret: String,
}

/// One credential helper, found on a search path.
pub struct Helper {
    program: String,
    path: PathBuf,
}

/// What a run of the helper ended with.
enum Outcome {
    Ok(Vec<u8>),
    NotFound,
}

impl Helper {
    /// Finds `docker-credential-<name>` in `search_path` (`$PATH` when `None`).
    pub fn find(name: &str, search_path: Option<&OsString>) -> Result<Self, CredentialsError> {
        if name.is_empty() || name.contains(['/', '\0']) {
            return Err(CredentialsError::HelperName {
                helper: name.to_string(),
            });
        }
        let program = format!("docker-credential-{name}");
        let search = search_path.cloned().or_else(|| std::env::var_os("PATH"));
        let found = std::env::split_paths(&search.unwrap_or_default())
            .map(|dir| dir.join(&program))
            .find(|p| is_executable(p));
        match found {
            Some(path) => Ok(Helper { program, path }),
            None => Err(CredentialsError::HelperNotFound { program }),
        }
    }

    /// The helper's name on the command line, for messages.
    pub fn program(&self) -> &str {
        &self.program
    }

    /// The credential the helper holds for `server`, or `None`.
    pub fn get(&self, server: &str) -> Result<Option<Credential>, CredentialsError> {
        let out = match self.run("get", server.as_bytes(), true)? {
            Outcome::NotFound => return Ok(None),
            Outcome::Ok(out) => out,
        };
        let answer: Message =
            serde_json::from_slice(&out).map_err(|source| CredentialsError::HelperAnswer {
                program: self.program.clone(),
                source,
            })?;
        Ok(match (answer.username.as_str(), answer.secret) {
            (_, secret) if secret.is_empty() => None,
            (TOKEN_USERNAME, secret) => Some(Credential::IdentityToken(secret)),
            (username, secret) => Some(Credential::Basic {
                username: username.to_string(),
                password: secret,
            }),
        })
    }

    /// Gives the helper `credential` to keep for `server`.
    pub fn store(&self, server: &str, credential: &Credential) -> Result<(), CredentialsError> {
        let (username, secret) = match credential {
            Credential::Basic { username, password } => (username.clone(), password.clone()),
            Credential::IdentityToken(t) => (TOKEN_USERNAME.to_string(), t.clone()),
        };
        let message = Message {
            server_url: server.to_string(),
            username,
            secret,
        };
        // COMPAT(docker): Go's json.Encoder ends the object with a newline.
        let mut input = serde_json::to_vec(&message).expect("strings always serialize");
        input.push(b'\n');
        self.run("store", &input, false).map(drop)
    }

    /// Asks the helper to forget `server`; `false` when it held nothing.
    pub fn erase(&self, server: &str) -> Result<bool, CredentialsError> {
        Ok(matches!(
            self.run("erase", server.as_bytes(), true)?,
            Outcome::Ok(_)
        ))
    }

    /// Runs `action` with `input` on stdin. The not-found answer is an
    /// [`Outcome::NotFound`] only when `not_found_ok`: from `store` it is a
    /// failure like any other.
    fn run(
        &self,
        action: &'static str,
        input: &[u8],
        not_found_ok: bool,
    ) -> Result<Outcome, CredentialsError> {
        let spawn_error = |source| CredentialsError::HelperRun {
            program: self.program.clone(),
            action,
            source,
        };
        let mut child = Command::new(&self.path)
            .arg(action)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(spawn_error)?;
        let mut stdin = child.stdin.take().expect("stdin is piped");
        // A helper may exit without reading its input; its answer says why.
        match stdin.write_all(input) {
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                // Reap it rather than leave a zombie behind the error.
                let _ = child.kill();
                let _ = child.wait();
                return Err(spawn_error(e));
            }
            _ => drop(stdin),
        }
        let output = child.wait_with_output().map_err(spawn_error)?;
        if output.status.success() {
            return Ok(Outcome::Ok(output.stdout));
        }
        let stdout = String::from_utf8_lossy(&output.stdout).trim().to_string();
        let stderr = String::from_utf8_lossy(&output.stderr).trim().to_string();
        if not_found_ok && stdout == NOT_FOUND {
            return Ok(Outcome::NotFound);
        }
        let said = [stdout, stderr]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join("; ");
        Err(CredentialsError::HelperFailed {
            program: self.program.clone(),
            action,
            status: (output.status.code())
                .map_or_else(|| "killed by a signal".into(), |c| format!("exit {c}")),
            said: if said.is_empty() {
                "no output".into()
            } else {
                said
            },
        })
    }
}

fn is_executable(path: &std::path::Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}
