//! `kiln login [SERVER] -u USER (-p PASS | --password-stdin)`: saves a
//! registry credential where docker and podman look for it (see
//! [`DockerConfig`]): with the credential helper when one is configured, else
//! base64 in the auth file.
//!
//! As docker does, the credential is checked against the registry first
//! (`GET /v2/` with it, or an unscoped token fetched with it) and saved only
//! when the registry accepts it: a typo shows now, not at the first pull.
//! [`login`] takes the check as a function, so saving is tested apart from
//! any registry.

use std::io::{Read, Write};
use std::sync::Arc;

use anyhow::Context;

use super::pull::RegistryArgs;
use super::Cli;
use crate::oci::reference::DOCKER_HUB;
use crate::oci::registry::credentials::{registry_of, server_address, Stored};
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
    /// Registry flags.
    #[command(flatten)]
    pub registry: RegistryArgs,
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

/// Checks a credential for a registry; an error means it was refused.
pub type Verify<'a> = &'a dyn Fn(&str, &Credential) -> anyhow::Result<()>;

/// Checks `credential` for `registry` with `verify`, then saves it in
/// `config`. Nothing is saved when the check fails.
pub fn login(
    config: &mut DockerConfig,
    registry: &str,
    credential: &Credential,
    verify: Verify<'_>,
) -> anyhow::Result<Stored> {
    verify(registry, credential)
        .with_context(|| format!("logging in to {}", server_address(registry)))?;
    config
        .store(registry, credential)
        .with_context(|| format!("saving credentials for {}", server_address(registry)))
}

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
    let server = args.server.as_deref().unwrap_or(DOCKER_HUB);
    let Some(registry) = registry_of(server) else {
        eprintln!("error: {server:?} names a repository, not a registry: log in to its host");
        return 2;
    };
    let verify = |registry: &str, credential: &Credential| -> anyhow::Result<()> {
        let client = args.registry.client_with(Arc::new(credential.clone()));
        Ok(client.check_credentials(registry)?)
    };
    let saved = DockerConfig::load_default().map_err(anyhow::Error::from);
    let done = saved.and_then(|mut config| {
        let stored = login(&mut config, &registry, &credential, &verify)?;
        print_outcome(&stored)?;
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

fn print_outcome(stored: &Stored) -> anyhow::Result<()> {
    if let Stored::File(path) = stored {
        // COMPAT(docker): the warning docker prints for the same file.
        eprintln!(
            "WARNING! Your credentials are stored unencrypted in '{}'.\n\
             Configure a credential helper to remove this warning. See\n\
             https://docs.docker.com/go/credential-store/\n",
            path.display()
        );
    }
    writeln!(std::io::stdout().lock(), "Login Succeeded")?;
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
        let err = login(&mut config, "h:1", &me(), &refuse).unwrap_err();
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
        let stored = login(&mut config, "docker.io", &me(), &accept).unwrap();
        assert_eq!(stored, Stored::File(path.clone()));
        assert_eq!(*seen.lock().unwrap(), [("docker.io".to_string(), me())]);
        assert_eq!(config.get("docker.io").unwrap(), Some(me()));
    }
}
