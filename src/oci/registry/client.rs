//! The transport: one [`Client`] per process, holding the credential source,
//! a TLS-configured HTTP agent per host, the scheme each registry speaks, the
//! challenge each registry sent and a token cache keyed by (registry, scope),
//! so one token serves every request of a pull or push.
//!
//! Invariants: plain HTTP is used only for loopback hosts and hosts named in
//! [`ClientOptions::insecure_registries`], and only after HTTPS failed to
//! connect (as docker does); only idempotent requests are retried, a bounded
//! number of times, and only when no response came back.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use url::Url;

use super::auth::{basic_header, fetch_token, request_error, Challenge, Token};
use super::error::redact;
use super::proxy::Proxies;
pub use super::request::is_loopback;
pub(crate) use super::request::{host_port, Body, Request};
use super::{tls, Anonymous, Credential, CredentialSource, RegistryError};

/// The API host behind `docker.io`.
const DOCKER_HUB_API: &str = "registry-1.docker.io";

/// How the client connects; the defaults suit real registries.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Hosts (`host[:port]`) that may be spoken to over plain HTTP, besides loopback.
    pub insecure_registries: Vec<String>,
    /// The certs.d base (`<dir>/<host>/*.crt` are trusted for `<host>`).
    pub certs_d: PathBuf,
    /// How often an idempotent request (or a blob download) is retried.
    pub retries: u32,
    /// How many blobs move at once.
    pub parallel: usize,
    /// Blobs up to this size are uploaded in one PUT; larger ones in chunks.
    pub monolithic_max: u64,
    /// The size of one PATCH of a chunked upload.
    pub chunk_size: u64,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// The HTTP proxy per host (none by default; the CLI reads the
    /// environment's `HTTPS_PROXY` / `HTTP_PROXY` / `NO_PROXY`).
    pub proxies: Proxies,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            insecure_registries: Vec::new(),
            certs_d: tls::default_certs_d(),
            retries: 3,
            parallel: 4,
            monolithic_max: 16 << 20,
            chunk_size: 8 << 20,
            connect_timeout: Duration::from_secs(30),
            proxies: Proxies::default(),
        }
    }
}

/// The distribution client. Cheap to share (`&Client` across threads).
pub struct Client {
    credentials: Arc<dyn CredentialSource>,
    options: ClientOptions,
    agents: Mutex<HashMap<String, ureq::Agent>>,
    bases: Mutex<HashMap<String, Url>>,
    challenges: Mutex<HashMap<String, Challenge>>,
    tokens: Mutex<HashMap<(String, String), Token>>,
    fetching: Mutex<()>,
    credentials_seen: Mutex<HashMap<String, Option<Credential>>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client taking credentials from `credentials`.
    pub fn new(credentials: Arc<dyn CredentialSource>, options: ClientOptions) -> Client {
        Client {
            credentials,
            options,
            agents: Mutex::default(),
            bases: Mutex::default(),
            challenges: Mutex::default(),
            tokens: Mutex::default(),
            fetching: Mutex::default(),
            credentials_seen: Mutex::default(),
        }
    }

    /// An anonymous client with default options.
    pub fn anonymous() -> Client {
        Client::new(Arc::new(Anonymous), ClientOptions::default())
    }

    /// The options it was made with.
    pub fn options(&self) -> &ClientOptions {
        &self.options
    }

    /// Asks `registry` whether the client's credential opens it, as
    /// `docker login` does: `GET /v2/`, answering a basic challenge with the
    /// credential or fetching an unscoped bearer token with it. A refused
    /// credential is [`RegistryError::Unauthorized`] (or the token server's
    /// own error).
    pub fn check_credentials(&self, registry: &str) -> Result<(), RegistryError> {
        let url = self.url(registry, "v2/")?;
        self.send(registry, &Request::new("GET", url, Vec::new()))?;
        Ok(())
    }

    /// Whether `registry` may be spoken to over plain HTTP.
    pub fn allows_http(&self, registry: &str) -> bool {
        self.options
            .insecure_registries
            .iter()
            .any(|h| h == registry)
            || is_loopback(registry)
    }

    fn agent(&self, host: &str) -> Result<ureq::Agent, RegistryError> {
        let mut agents = self.agents.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(a) = agents.get(host) {
            return Ok(a.clone());
        }
        let tls = tls::client_config(host, &self.options.certs_d)?;
        let mut builder = ureq::AgentBuilder::new();
        if let Some(proxy) = self.options.proxies.for_host(host) {
            let proxy = ureq::Proxy::new(proxy).map_err(|source| RegistryError::Proxy {
                proxy: redact(proxy),
                source: Box::new(source),
            })?;
            builder = builder.proxy(proxy);
        }
        let agent = builder
            .tls_config(tls)
            .timeout_connect(self.options.connect_timeout)
            .timeout_read(Duration::from_secs(120))
            .timeout_write(Duration::from_secs(120))
            .user_agent(concat!("kiln/", env!("CARGO_PKG_VERSION")))
            .max_idle_connections_per_host(self.options.parallel.max(1) * 2)
            .build();
        agents.insert(host.to_string(), agent.clone());
        Ok(agent)
    }

    /// `https://host/` (or `http://` for an insecure host whose HTTPS fails).
    fn base(&self, registry: &str) -> Result<Url, RegistryError> {
        if let Some(u) = self
            .bases
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(registry)
        {
            return Ok(u.clone());
        }
        let host = if registry == crate::oci::reference::DOCKER_HUB {
            DOCKER_HUB_API
        } else {
            registry
        };
        let parse =
            |s: String| Url::parse(&s).map_err(|source| RegistryError::Url { url: s, source });
        let https = parse(format!("https://{host}/"))?;
        let base = if self.allows_http(registry) {
            let agent = self.agent(registry)?;
            let ping = https.join("v2/").expect("static path");
            match agent.get(ping.as_str()).call() {
                Err(ureq::Error::Transport(t)) => {
                    let http = parse(format!("http://{host}/"))?;
                    let http_ping = http.join("v2/").expect("static path");
                    match agent.get(http_ping.as_str()).call() {
                        // An HTTPS server answers plain HTTP with 400: its
                        // certificate was the problem, and that is the error.
                        Err(ureq::Error::Status(400, _)) | Err(ureq::Error::Transport(_)) => {
                            return Err(RegistryError::Transport {
                                method: "GET".into(),
                                url: redact(ping.as_str()),
                                source: Box::new(t),
                            })
                        }
                        _ => {
                            tracing::debug!("{registry}: https failed ({t}), using plain http");
                            http
                        }
                    }
                }
                _ => https,
            }
        } else {
            https
        };
        self.bases
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(registry.to_string(), base.clone());
        Ok(base)
    }

    /// The URL of `path` (e.g. `v2/library/busybox/manifests/latest`) on `registry`.
    pub(crate) fn url(&self, registry: &str, path: &str) -> Result<Url, RegistryError> {
        let base = self.base(registry)?;
        base.join(path).map_err(|source| RegistryError::Url {
            url: path.to_string(),
            source,
        })
    }

    fn credential(&self, registry: &str) -> Result<Option<Credential>, RegistryError> {
        let mut seen = self
            .credentials_seen
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(c) = seen.get(registry) {
            return Ok(c.clone());
        }
        let c =
            self.credentials
                .credential(registry)
                .map_err(|source| RegistryError::Credential {
                    registry: registry.to_string(),
                    source,
                })?;
        seen.insert(registry.to_string(), c.clone());
        Ok(c)
    }

    /// The `Authorization` header for `scopes` on `registry`, from what the
    /// registry asked for before; fetches a token when none is cached.
    ///
    /// `rejected` is the header a 401 just refused: a cached token other
    /// than it (another thread's fresh one) is used, else a new one fetched.
    /// Fetches are serialized, so parallel requests share one token.
    fn authorization(
        &self,
        registry: &str,
        scopes: &[String],
        rejected: Option<Option<&str>>,
    ) -> Result<Option<String>, RegistryError> {
        let challenge = self
            .challenges
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(registry)
            .cloned();
        match challenge {
            None => Ok(None),
            Some(Challenge::Basic) => Ok(match self.credential(registry)? {
                Some(Credential::Basic { username, password }) => {
                    Some(basic_header(&username, &password))
                }
                _ => None,
            }),
            Some(Challenge::Bearer { realm, service }) => {
                let key = (registry.to_string(), scopes.join(" "));
                let _one_fetch = self.fetching.lock().unwrap_or_else(|e| e.into_inner());
                {
                    let tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
                    if let Some(t) = tokens.get(&key).filter(|t| t.expires > Instant::now()) {
                        let header = format!("Bearer {}", t.token);
                        if rejected != Some(Some(header.as_str())) {
                            return Ok(Some(header));
                        }
                    }
                }
                let realm_url = Url::parse(&realm).map_err(|source| RegistryError::Url {
                    url: realm.clone(),
                    source,
                })?;
                let agent = self.agent(&host_port(&realm_url))?;
                let credential = self.credential(registry)?;
                let token = fetch_token(
                    &agent,
                    &realm,
                    service.as_deref(),
                    scopes,
                    credential.as_ref(),
                )?;
                let header = format!("Bearer {}", token.token);
                self.tokens
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(key, token);
                Ok(Some(header))
            }
        }
    }

    /// Sends `req` to `registry`, answering one auth challenge and retrying
    /// idempotent requests on connection failures. Error statuses become
    /// [`RegistryError::Status`] / [`RegistryError::Unauthorized`].
    pub(crate) fn send(
        &self,
        registry: &str,
        req: &Request,
    ) -> Result<ureq::Response, RegistryError> {
        let mut rejected: Option<Option<String>> = None;
        loop {
            let refused = rejected.as_ref().map(|r| r.as_deref());
            let auth = self.authorization(registry, &req.scopes, refused)?;
            match self.send_with_retries(req, auth.as_deref()) {
                Err(ureq::Error::Status(401, resp)) if rejected.is_none() => {
                    let header = resp.header("www-authenticate").unwrap_or("").to_string();
                    let challenge =
                        Challenge::parse(&header).ok_or_else(|| RegistryError::Challenge {
                            url: redact(req.url.as_str()),
                            challenge: header.clone(),
                        })?;
                    self.challenges
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(registry.to_string(), challenge);
                    rejected = Some(auth);
                }
                Ok(resp) => return Ok(resp),
                Err(e) => return Err(request_error(req.method, req.url.as_str(), e)),
            }
        }
    }

    // ureq's own error, returned one frame up and matched on there: boxing
    // it would only add an allocation per response.
    #[allow(clippy::result_large_err)]
    fn send_with_retries(
        &self,
        req: &Request,
        auth: Option<&str>,
    ) -> Result<ureq::Response, ureq::Error> {
        let mut attempt = 0;
        loop {
            match self.send_once(req, auth) {
                // No response, or 502-504 from a load balancer while the registry restarts.
                Err(e @ (ureq::Error::Transport(_) | ureq::Error::Status(502..=504, _)))
                    if req.idempotent && attempt < self.options.retries =>
                {
                    attempt += 1;
                    tracing::debug!("{} {}: {e}; retry {attempt}", req.method, req.url);
                    std::thread::sleep(Duration::from_millis(100 << attempt));
                }
                other => return other,
            }
        }
    }

    #[allow(clippy::result_large_err)]
    fn send_once(&self, req: &Request, auth: Option<&str>) -> Result<ureq::Response, ureq::Error> {
        tracing::debug!(auth = auth.is_some(), "{} {}", req.method, req.url);
        let agent = self
            .agent(&host_port(&req.url))
            .map_err(|e| ureq::Error::from(std::io::Error::other(e)))?;
        let mut r = agent.request_url(req.method, &req.url);
        for (k, v) in &req.headers {
            r = r.set(k, v);
        }
        if let Some(a) = auth {
            r = r.set("Authorization", a);
        }
        match &req.body {
            Body::Empty => r.call(),
            Body::Bytes(b) => r.send_bytes(b),
            Body::File { path, offset, len } => {
                let mut f = File::open(path).map_err(ureq::Error::from)?;
                f.seek(SeekFrom::Start(*offset))
                    .map_err(ureq::Error::from)?;
                r.set("Content-Length", &len.to_string()).send(f.take(*len))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_for_loopback_and_named_hosts() {
        let options = ClientOptions {
            insecure_registries: vec!["reg.internal:5000".into()],
            ..ClientOptions::default()
        };
        let c = Client::new(Arc::new(Anonymous), options);
        assert!(c.allows_http("reg.internal:5000"));
        assert!(c.allows_http("localhost:5000"));
        assert!(
            !c.allows_http("reg.internal"),
            "the port is part of the name"
        );
        assert!(!c.allows_http("ghcr.io"));
    }
}
