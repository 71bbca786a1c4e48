//! The registry client's error enum, and the distribution error body
//! (`{"errors":[{"code","message","detail"}]}`) it shows. Every variant that
//! comes from a request names its method and URL, with credentials redacted.

use std::fmt;
use std::io;
use std::path::PathBuf;

use serde::Deserialize;

use crate::oci::{Digest, ReferenceError, StoreError};

/// One entry of a registry's error body.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ErrorEntry {
    /// e.g. `MANIFEST_UNKNOWN`, `UNAUTHORIZED`.
    #[serde(default)]
    pub code: String,
    /// The registry's message.
    #[serde(default)]
    pub message: String,
}

/// What a registry said about a failed request: its error entries, or the
/// start of the body when it is not the distribution error JSON.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ErrorBody {
    /// The parsed entries (empty when the body was not distribution JSON).
    pub errors: Vec<ErrorEntry>,
    /// The first bytes of a body that did not parse, lossily decoded.
    pub raw: String,
}

#[derive(Deserialize)]
struct Errors {
    errors: Vec<ErrorEntry>,
}

impl ErrorBody {
    /// Parses a response body; never fails (an unparsable body is kept raw).
    pub fn parse(body: &[u8]) -> Self {
        match serde_json::from_slice::<Errors>(body) {
            Ok(e) if !e.errors.is_empty() => ErrorBody {
                errors: e.errors,
                raw: String::new(),
            },
            _ => {
                let cut = &body[..body.len().min(200)];
                ErrorBody {
                    errors: Vec::new(),
                    raw: String::from_utf8_lossy(cut).trim().to_string(),
                }
            }
        }
    }

    /// Whether any entry has `code`.
    pub fn has_code(&self, code: &str) -> bool {
        self.errors.iter().any(|e| e.code == code)
    }
}

impl fmt::Display for ErrorBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.errors.is_empty() {
            return if self.raw.is_empty() {
                Ok(())
            } else {
                write!(f, ": {}", self.raw)
            };
        }
        for (i, e) in self.errors.iter().enumerate() {
            let sep = if i == 0 { ": " } else { "; " };
            write!(f, "{sep}{}: {}", e.code, e.message)?;
        }
        Ok(())
    }
}

/// Errors from the registry client; each variant names the step that failed.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The request never got a response (connection refused, reset, TLS).
    #[error("{method} {url}: connection failed")]
    Transport {
        /// The HTTP method.
        method: String,
        /// The URL, credentials redacted.
        url: String,
        /// The cause.
        #[source]
        source: Box<ureq::Transport>,
    },
    /// The registry answered with an error status.
    #[error("{method} {url}: {status}{body}")]
    Status {
        /// The HTTP method.
        method: String,
        /// The URL, credentials redacted.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The registry's error codes and messages.
        body: ErrorBody,
    },
    /// The registry refused the credentials (or anonymous access).
    #[error("{method} {url}: authentication required or refused ({status}){body}")]
    Unauthorized {
        /// The HTTP method.
        method: String,
        /// The URL, credentials redacted.
        url: String,
        /// 401 or 403.
        status: u16,
        /// The registry's error codes and messages.
        body: ErrorBody,
    },
    /// A `WWW-Authenticate` challenge kiln cannot answer.
    #[error("{url}: unsupported authentication challenge {challenge:?}")]
    Challenge {
        /// The URL that was challenged.
        url: String,
        /// The header as sent.
        challenge: String,
    },
    /// Fetching a bearer token from the realm.
    #[error("fetching a token from {realm}")]
    Token {
        /// The realm URL, credentials redacted.
        realm: String,
        /// The cause.
        #[source]
        source: Box<RegistryError>,
    },
    /// The token server's answer has no token.
    #[error("token response from {realm} has no token")]
    TokenBody {
        /// The realm URL.
        realm: String,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// The credential source failed.
    #[error("reading credentials for {registry}")]
    Credential {
        /// The registry host.
        registry: String,
        /// The cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Reading CA certificates (system roots or certs.d).
    #[error("reading CA certificates {path}")]
    Certificates {
        /// The PEM file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Building the TLS configuration.
    #[error("configuring TLS for {registry}")]
    Tls {
        /// The registry host.
        registry: String,
        /// The cause.
        #[source]
        source: rustls::Error,
    },
    /// An `HTTPS_PROXY` / `HTTP_PROXY` value ureq cannot use.
    #[error("invalid proxy {proxy:?} (from HTTPS_PROXY or HTTP_PROXY)")]
    Proxy {
        /// The proxy URL, credentials redacted.
        proxy: String,
        /// The cause.
        #[source]
        source: Box<ureq::Error>,
    },
    /// A URL that does not parse (a bad host or `Location` header).
    #[error("invalid URL {url:?}")]
    Url {
        /// The text.
        url: String,
        /// The cause.
        #[source]
        source: url::ParseError,
    },
    /// Reading a response body.
    #[error("{method} {url}: reading the response")]
    Body {
        /// The HTTP method.
        method: String,
        /// The URL, credentials redacted.
        url: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A response lacks a header the protocol requires.
    #[error("{method} {url}: response has no {header} header")]
    MissingHeader {
        /// The HTTP method.
        method: String,
        /// The URL, credentials redacted.
        url: String,
        /// The header.
        header: &'static str,
    },
    /// A manifest or index does not parse.
    #[error("parsing {what} {digest} from {url}")]
    ParseManifest {
        /// `manifest` or `index`.
        what: &'static str,
        /// Its digest.
        digest: Digest,
        /// Where it came from.
        url: String,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// A manifest whose bytes do not hash to the digest asked for.
    #[error("manifest from {url} has digest {actual}, expected {expected}")]
    ManifestDigest {
        /// Where it came from.
        url: String,
        /// The digest asked for.
        expected: Digest,
        /// What the bytes hash to.
        actual: Digest,
    },
    /// A manifest media type kiln does not pull or push.
    #[error("unsupported manifest media type {media_type:?} for {reference}")]
    MediaType {
        /// The media type.
        media_type: String,
        /// What was being read.
        reference: String,
    },
    /// An index lists no manifest for the wanted platform.
    #[error("{reference}: no manifest for platform {platform} (the index has {available})")]
    NoPlatform {
        /// The reference.
        reference: String,
        /// The wanted platform.
        platform: String,
        /// The platforms it lists.
        available: String,
    },
    /// A single-platform image for another platform than the one wanted.
    #[error("{reference} is for {actual}, not the wanted platform {wanted}")]
    PlatformMismatch {
        /// The reference.
        reference: String,
        /// The wanted platform.
        wanted: String,
        /// The image's platform.
        actual: String,
    },
    /// Downloading a blob, after the retries.
    #[error("pulling blob {digest} from {repository}")]
    PullBlob {
        /// The blob.
        digest: Digest,
        /// The repository.
        repository: String,
        /// The cause.
        #[source]
        source: Box<RegistryError>,
    },
    /// Uploading a blob.
    #[error("pushing blob {digest} to {repository}")]
    PushBlob {
        /// The blob.
        digest: Digest,
        /// The repository.
        repository: String,
        /// The cause.
        #[source]
        source: Box<RegistryError>,
    },
    /// The body kept ending early, after the retries.
    #[error("GET {url}: the body ended after {actual} of {expected} bytes")]
    Truncated {
        /// The URL.
        url: String,
        /// The descriptor's size.
        expected: u64,
        /// What arrived.
        actual: u64,
    },
    /// A manifest larger than the distribution spec's 4 MiB.
    #[error("GET {url}: manifest larger than {limit} bytes")]
    ManifestTooLarge {
        /// The URL.
        url: String,
        /// The limit.
        limit: u64,
    },
    /// A push target pinned to a digest that is not the image's.
    #[error("cannot push image {image} as {reference}: the reference pins {digest}")]
    PushDigest {
        /// The target.
        reference: String,
        /// The digest it pins.
        digest: Digest,
        /// The image's digest.
        image: Digest,
    },
    /// A blob sent more bytes than its descriptor's size.
    #[error("blob {digest} is larger than its descriptor's {size} bytes")]
    Oversized {
        /// The blob.
        digest: Digest,
        /// The descriptor's size.
        size: u64,
    },
    /// Reading a local blob to upload it.
    #[error("reading blob {digest} from the store")]
    ReadBlob {
        /// The blob.
        digest: Digest,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A store operation (writing, verifying, tagging).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A name that is not a valid reference.
    #[error(transparent)]
    Reference(#[from] ReferenceError),
}

/// `url` with any `user:password@` and secret query values blanked out.
pub fn redact(url: &str) -> String {
    let Ok(mut u) = url::Url::parse(url) else {
        return url.to_string();
    };
    if !u.username().is_empty() || u.password().is_some() {
        let _ = u.set_username("redacted");
        let _ = u.set_password(None);
    }
    let secret = |k: &str| {
        matches!(
            k,
            "refresh_token" | "password" | "access_token" | "token" | "_state"
        )
    };
    if u.query_pairs().any(|(k, _)| secret(&k)) {
        let pairs: Vec<(String, String)> = u
            .query_pairs()
            .map(|(k, v)| {
                let v = if secret(&k) {
                    "redacted".into()
                } else {
                    v.into()
                };
                (k.into_owned(), v)
            })
            .collect();
        u.query_pairs_mut().clear().extend_pairs(pairs);
    }
    u.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_body_shows_codes() {
        let b = ErrorBody::parse(
            br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"x"}}]}"#,
        );
        assert!(b.has_code("MANIFEST_UNKNOWN"));
        assert_eq!(b.to_string(), ": MANIFEST_UNKNOWN: manifest unknown");
        assert_eq!(ErrorBody::parse(b"oops\n").to_string(), ": oops");
    }

    #[test]
    fn redacts_secrets() {
        assert_eq!(
            redact("https://u:p@h/v2/?refresh_token=abc&service=s"),
            "https://redacted@h/v2/?refresh_token=redacted&service=s"
        );
        assert_eq!(redact("http://h/v2/x"), "http://h/v2/x");
    }
}
