//! `kiln logout [SERVER]`: forgets a registry's credential, in the auth file
//! docker and podman use (see [`DockerConfig`]) and in its credential helper.
//! Like docker, not being logged in is no error.

use std::io::Write;

use anyhow::Context;

use super::Cli;
use crate::oci::reference::DOCKER_HUB;
use crate::oci::registry::credentials::server_address;
use crate::oci::registry::DockerConfig;

/// Arguments of `kiln logout`.
#[derive(Debug, clap::Args)]
pub struct LogoutArgs {
    /// The registry to log out of: a host (`localhost:5000`) or a URL
    /// [default: docker.io].
    #[arg(value_name = "SERVER")]
    pub server: Option<String>,
}

/// Runs `kiln logout`.
pub fn run(_cli: &Cli, args: &LogoutArgs) -> anyhow::Result<()> {
    let registry = args.server.as_deref().unwrap_or(DOCKER_HUB);
    let shown = server_address(registry);
    let mut config = DockerConfig::load_default()?;
    let erased = config
        .erase(registry)
        .with_context(|| format!("removing login credentials for {shown}"))?;
    let mut out = std::io::stdout().lock();
    if erased {
        // COMPAT(docker): docker's wording, and Hub shown as its v1 URL.
        writeln!(out, "Removing login credentials for {shown}")?;
    } else {
        // COMPAT(docker): docker before 20.10 said this; later ones print the
        // "Removing" line whether or not anything was there. Exit 0 either way.
        writeln!(out, "Not logged in to {shown}")?;
    }
    Ok(())
}
