//! `kiln pull REF`: fetches an image for the host (or `--platform`) from its
//! registry into the store and names it. Also the registry flags every
//! command that talks to a registry shares ([`RegistryArgs`]).

use std::io::Write;
use std::sync::Arc;

use anyhow::Context;

use super::Cli;
use crate::oci::registry::{
    self, Client, ClientOptions, Credential, CredentialSource, DockerConfig,
};
use crate::oci::{Platform, Reference};

/// Flags shared by the commands that talk to a registry.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct RegistryArgs {
    /// Allow plain HTTP to this registry (`host[:port]`), as docker's
    /// `--insecure-registry`; loopback hosts are always allowed. Repeatable.
    #[arg(long = "insecure-registry", value_name = "HOST")]
    pub insecure_registries: Vec<String>,
}

impl RegistryArgs {
    /// The client these flags describe.
    pub fn client(&self) -> Client {
        self.client_with(credentials())
    }

    /// The client these flags describe, with `credentials` instead of the
    /// auth file's.
    pub fn client_with(&self, credentials: Arc<dyn CredentialSource>) -> Client {
        let options = ClientOptions {
            insecure_registries: self.insecure_registries.clone(),
            proxies: registry::Proxies::from_env(),
            ..ClientOptions::default()
        };
        Client::new(credentials, options)
    }
}

/// Where the CLI's registry credentials come from: docker's auth file
/// ([`DockerConfig`]: `$REGISTRY_AUTH_FILE`, `$DOCKER_CONFIG/config.json` or
/// `~/.docker/config.json`, with its credential helpers).
pub fn credentials() -> Arc<dyn CredentialSource> {
    Arc::new(AuthFile)
}

/// The auth file, read when a registry first asks for a credential (the
/// client keeps each registry's answer), so a broken file fails only the
/// commands that talk to a registry, with an error naming it.
struct AuthFile;

impl CredentialSource for AuthFile {
    fn credential(
        &self,
        registry: &str,
    ) -> Result<Option<Credential>, Box<dyn std::error::Error + Send + Sync>> {
        DockerConfig::load_default()?.credential(registry)
    }
}

/// Parses `os/arch[/variant]`.
pub fn parse_platform(s: &str) -> anyhow::Result<Platform> {
    let parts: Vec<&str> = s.split('/').collect();
    match parts.as_slice() {
        [os, arch] | [os, arch, _] if !os.is_empty() && !arch.is_empty() => Ok(Platform {
            os: os.to_string(),
            architecture: arch.to_string(),
            variant: parts.get(2).map(|v| v.to_string()),
            os_version: None,
        }),
        _ => anyhow::bail!("invalid platform {s:?} (expected os/arch[/variant])"),
    }
}

/// Arguments of `kiln pull`.
#[derive(Debug, clap::Args)]
pub struct PullArgs {
    /// The image: `busybox`, `ghcr.io/o/app:1`, `app@sha256:…`.
    pub reference: String,
    /// The platform to pull from a multi-platform image [default: the host's].
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    pub platform: Option<String>,
    /// Print only the digest.
    #[arg(short, long)]
    pub quiet: bool,
    /// Registry flags.
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// Runs `kiln pull`.
pub fn run(cli: &Cli, args: &PullArgs) -> anyhow::Result<()> {
    let reference = Reference::parse(&args.reference)?;
    let platform = match &args.platform {
        Some(p) => parse_platform(p)?,
        None => Platform::host(),
    };
    let (store, _lock) = cli.open_store_locked(crate::store::LockMode::Shared)?;
    let client = args.registry.client();
    let pulled = registry::pull(&client, &store, &reference, &platform)
        .with_context(|| format!("pulling {}", reference.familiar()))?;
    let mut out = std::io::stdout().lock();
    if args.quiet {
        writeln!(out, "{}", pulled.manifest.digest)?;
        return Ok(());
    }
    let top = pulled.index.as_ref().unwrap_or(&pulled.manifest);
    writeln!(
        out,
        "{}: {} blobs downloaded, {} already present",
        pulled.name,
        pulled.fetched.len(),
        pulled.present.len()
    )?;
    writeln!(out, "Digest: {}", top.digest)?;
    if pulled.index.is_some() {
        writeln!(
            out,
            "Platform {}: {}",
            platform.to_specifier(),
            pulled.manifest.digest
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms_parse() {
        let p = parse_platform("linux/arm64/v8").unwrap();
        assert_eq!(p.to_specifier(), "linux/arm64/v8");
        assert!(parse_platform("linux").is_err());
        assert!(parse_platform("linux//").is_err());
    }
}
