//! `kiln login [SERVER] -u USER (-p PASS | --password-stdin)`: saves a
//! registry credential where docker and podman look for it (see
//! [`DockerConfig`]): with the credential helper when one is configured, else
//! base64 in the auth file.
//!
//! docker checks a credential against the registry before saving it; [`login`]
//! takes that check as a [`Verification`] so the distribution client can
//! supply it. Until it does, the credential is saved unchecked and the
//! command says so on every run: a login that only looks verified would hide
//! a typo until the first pull.

use std::io::{Read, Write};

use anyhow::Context;

use super::Cli;
use crate::oci::reference::DOCKER_HUB;
use crate::oci::registry::credentials::{server_address, Stored};
use crate::oci::registry::{Credential, DockerConfig};

/// Arguments of `kiln login`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("secret").required(true).args(["password", "password_stdin"])))]
pub struct LoginArgs {
    /// The registry to log in to: a host (`localhost:5000`) or a URL
    /// [default: docker.io].
    #[arg(value_name = "SERVER")]
    pub server: Option<String>,
    /// The user name.
    #[arg(short, long, value_parser = parse_username)]
    pub username: String,
    /// The password or access token (visible to other users in `ps`; prefer
    /// --password-stdin).
    #[arg(short, long)]
    pub password: Option<String>,
    /// Read the password or access token from stdin.
    #[arg(long)]
    pub password_stdin: bool,
}

fn parse_username(name: &str) -> Result<String, String> {
    if name.is_empty() {
        return Err("the user name is empty".into());
    }
    if name.contains(':') {
        // Basic auth and docker's `auth` field split user and password there.
        return Err("a user name cannot contain ':'".into());
    }
    Ok(name.to_string())
}

/// How [`login`] checks a credential before saving it.
pub enum Verification<'a> {
    /// Ask the registry; a credential it refuses is not saved (docker's way).
    Check(&'a dyn Fn(&str, &Credential) -> anyhow::Result<()>),
    /// Save without asking, for the reason given; the caller warns the user.
    Unchecked(&'static str),
}

/// What [`login`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedIn {
    /// Where the credential went.
    pub stored: Stored,
    /// Why it was not checked against the registry, if it was not.
    pub unchecked: Option<&'static str>,
}

/// Checks `credential` for `registry` as `verification` says, then saves it
/// in `config`. Nothing is saved when the check fails.
pub fn login(
    config: &mut DockerConfig,
    registry: &str,
    credential: &Credential,
    verification: Verification<'_>,
) -> anyhow::Result<LoggedIn> {
    let unchecked = match verification {
        Verification::Check(verify) => {
            verify(registry, credential)
                .with_context(|| format!("logging in to {}", server_address(registry)))?;
            None
        }
        Verification::Unchecked(why) => Some(why),
    };
    let stored = config
        .store(registry, credential)
        .with_context(|| format!("saving credentials for {}", server_address(registry)))?;
    Ok(LoggedIn { stored, unchecked })
}

// TODO(issue 6): replace with `Verification::Check` over the distribution
// client's login check (a token or basic-auth request to /v2/) when it lands.
const NO_CLIENT_YET: &str = "kiln has no registry client yet to check them with (issue 6)";

/// Runs `kiln login` and returns the exit code.
pub fn run(_cli: &Cli, args: &LoginArgs) -> i32 {
    let password = match read_password(args) {
        Ok(p) if p.is_empty() => {
            eprintln!("error: the password is empty");
            return 2;
        }
        Ok(p) => p,
        Err(e) => return super::report(&e),
    };
    let credential = Credential::Basic {
        username: args.username.clone(),
        password,
    };
    let registry = args.server.as_deref().unwrap_or(DOCKER_HUB);
    let saved = DockerConfig::load_default().map_err(anyhow::Error::from);
    let done = saved.and_then(|mut config| {
        let verification = Verification::Unchecked(NO_CLIENT_YET);
        let done = login(&mut config, registry, &credential, verification)?;
        print_outcome(&done, registry)?;
        Ok(())
    });
    match done {
        Ok(()) => 0,
        Err(e) => super::report(&e),
    }
}

/// The password from `-p`, or all of stdin without its final line break.
fn read_password(args: &LoginArgs) -> anyhow::Result<String> {
    if let Some(password) = &args.password {
        // COMPAT(docker): its wording.
        eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
        return Ok(password.clone());
    }
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .context("reading the password from stdin")?;
    // COMPAT(docker): one trailing "\n", then one "\r"; nothing else trimmed.
    let text = text.strip_suffix('\n').unwrap_or(&text);
    Ok(text.strip_suffix('\r').unwrap_or(text).to_string())
}

fn print_outcome(done: &LoggedIn, registry: &str) -> anyhow::Result<()> {
    if let Stored::File(path) = &done.stored {
        // COMPAT(docker): the warning docker prints for the same file.
        eprintln!(
            "WARNING! Your credentials are stored unencrypted in '{}'.\n\
             Configure a credential helper to remove this warning. See\n\
             https://docs.docker.com/go/credential-store/\n",
            path.display()
        );
    }
    let mut out = std::io::stdout().lock();
    match done.unchecked {
        None => writeln!(out, "Login Succeeded")?,
        Some(why) => {
            eprintln!(
                "WARNING: credentials saved without checking them against the registry: {why}"
            );
            writeln!(
                out,
                "Credentials saved for {} (not verified)",
                server_address(registry)
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn me() -> Credential {
        Credential::Basic {
            username: "me".into(),
            password: "pw".into(),
        }
    }

    #[test]
    fn a_refused_credential_is_not_saved() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        let mut config = DockerConfig::load(&path).unwrap();
        let refuse = |_: &str, _: &Credential| anyhow::bail!("unauthorized: bad password");
        let err = login(&mut config, "h:1", &me(), Verification::Check(&refuse)).unwrap_err();
        assert_eq!(err.to_string(), "logging in to h:1");
        assert!(!path.exists());
    }

    #[test]
    fn a_checked_credential_is_saved_as_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        let mut config = DockerConfig::load(&path).unwrap();
        let seen = std::sync::Mutex::new(Vec::new());
        let accept = |registry: &str, c: &Credential| {
            seen.lock().unwrap().push((registry.to_string(), c.clone()));
            Ok(())
        };
        let done = login(
            &mut config,
            "docker.io",
            &me(),
            Verification::Check(&accept),
        )
        .unwrap();
        assert_eq!(done.unchecked, None);
        assert_eq!(done.stored, Stored::File(path.clone()));
        assert_eq!(*seen.lock().unwrap(), [("docker.io".to_string(), me())]);
        assert_eq!(config.get("docker.io").unwrap(), Some(me()));
    }

    #[test]
    fn an_unchecked_login_says_why() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = DockerConfig::load(dir.path().join("c.json")).unwrap();
        let done = login(
            &mut config,
            "h:1",
            &me(),
            Verification::Unchecked("no client"),
        )
        .unwrap();
        assert_eq!(done.unchecked, Some("no client"));
    }
}
