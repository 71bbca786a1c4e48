//! The OCI distribution client: pull base images, push results, store the
//! step cache as an artifact. kiln speaks the protocol itself, with no daemon.
//!
//! This file is the seam between the parts: the transport and protocol
//! (`client`, `pull`, `push`, …) take their credentials through
//! [`CredentialSource`], which `credentials` implements over docker's
//! `config.json`, so either side can be tested alone.
//!
//! The parts: `client` (a [`Client`]: agents per host, scheme choice, auth
//! challenges, token cache, retries) over `request`, `tls` and `auth`;
//! `manifest` (get/put, platform choice); `pull` ([`pull`], [`fetch_blob`]:
//! verified, resumed downloads into the store); `lazy` ([`RemoteBlobs`]:
//! base images resolved to manifest and config, layers fetched on demand,
//! named only once complete); `push` ([`push`],
//! [`push_blob`]: HEAD, mount, monolithic or chunked upload, manifests last);
//! `artifact` (any manifest and its blobs, e.g. the step cache); `error`
//! (one [`RegistryError`], the registry's own codes, redacted URLs).

mod artifact;
mod auth;
mod client;
mod error;
mod lazy;
mod manifest;
mod proxy;
mod pull;
mod push;
mod request;
mod tls;

pub use artifact::{pull_artifact, push_artifact, PulledArtifact};
pub use auth::Challenge;
pub use client::{is_loopback, Client, ClientOptions};
pub use error::{redact, ErrorBody, ErrorEntry, RegistryError};
pub use lazy::{FetchObserver, LazyImage, Origin, RemoteBlobs};
pub use manifest::{get_manifest, pull_scope, put_manifest, RemoteManifest};
pub use proxy::Proxies;
pub use pull::{fetch_blob, pull, resolve, resolve_local, PulledImage, ResolvedImage};
pub use push::{push, push_blob, push_fetching, BlobPush, FetchBlob, PushedImage};

use std::error::Error;

pub mod credentials;

pub use credentials::{CredentialsError, DockerConfig};

/// A secret that opens a registry, as docker's `config.json` keeps it.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    /// A user name and password (or a personal access token), sent as HTTP
    /// basic auth or exchanged for a bearer token.
    Basic {
        /// The user name.
        username: String,
        /// The password or token.
        password: String,
    },
    /// An OAuth2 refresh token (`identitytoken`), exchanged for a bearer
    /// token at the realm with `grant_type=refresh_token`.
    IdentityToken(String),
}

impl std::fmt::Debug for Credential {
    // Never print a secret, not even in a debug log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credential::Basic { username, .. } => f
                .debug_struct("Basic")
                .field("username", username)
                .field("password", &"<redacted>")
                .finish(),
            Credential::IdentityToken(_) => f.write_str("IdentityToken(<redacted>)"),
        }
    }
}

/// Where the client finds the credential for a registry host.
pub trait CredentialSource: Send + Sync {
    /// The credential for `registry` (a [`super::Reference`]'s `registry`,
    /// e.g. `docker.io`, `localhost:5000`), or `None` to go anonymous.
    fn credential(
        &self,
        registry: &str,
    ) -> Result<Option<Credential>, Box<dyn Error + Send + Sync>>;
}

/// One credential for whatever registry asks: what `kiln login` checks
/// before it saves anything.
impl CredentialSource for Credential {
    fn credential(
        &self,
        _registry: &str,
    ) -> Result<Option<Credential>, Box<dyn Error + Send + Sync>> {
        Ok(Some(self.clone()))
    }
}

/// No credentials: every registry is anonymous.
#[derive(Debug, Default, Clone, Copy)]
pub struct Anonymous;

impl CredentialSource for Anonymous {
    fn credential(
        &self,
        _registry: &str,
    ) -> Result<Option<Credential>, Box<dyn Error + Send + Sync>> {
        Ok(None)
    }
}
