//! Answering a registry's `WWW-Authenticate` challenge: HTTP basic auth, or
//! the distribution token flow (`Bearer realm=…,service=…,scope=…`) with an
//! anonymous token, basic credentials, or an identity (refresh) token.
//!
//! Invariant: secrets only ever travel in headers or form bodies, never in a
//! URL, so every URL an error shows is safe to print.

use std::time::{Duration, Instant};

use base64::Engine as _;
use serde::Deserialize;

use super::error::redact;
use super::{Credential, RegistryError};

/// How a registry asked to be authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// `Basic realm=…`: send the credentials on every request.
    Basic,
    /// `Bearer realm=…,service=…`: exchange credentials for a token.
    Bearer {
        /// The token endpoint.
        realm: String,
        /// The `service` parameter to send back.
        service: Option<String>,
    },
}

impl Challenge {
    /// Parses a `WWW-Authenticate` header value; `None` for schemes kiln
    /// does not speak.
    pub fn parse(header: &str) -> Option<Challenge> {
        let (scheme, rest) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
        let params = parse_params(rest);
        let get = |k: &str| {
            params
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(k))
                .map(|(_, v)| v.clone())
        };
        if scheme.eq_ignore_ascii_case("basic") {
            return Some(Challenge::Basic);
        }
        if scheme.eq_ignore_ascii_case("bearer") {
            return Some(Challenge::Bearer {
                realm: get("realm")?,
                service: get("service"),
            });
        }
        None
    }
}

/// `k=v` or `k="v, with commas"` pairs separated by commas.
fn parse_params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = s.trim();
    while let Some((key, after)) = rest.split_once('=') {
        let key = key.trim().trim_start_matches(',').trim().to_string();
        let after = after.trim_start();
        let (value, next) = if let Some(q) = after.strip_prefix('"') {
            let mut value = String::new();
            let mut chars = q.char_indices();
            let mut end = q.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, e)) = chars.next() {
                            value.push(e);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => value.push(c),
                }
            }
            (value, &q[end..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_string(), &after[end..])
        };
        out.push((key, value));
        rest = next.trim_start().trim_start_matches(',');
    }
    out
}

/// The `Authorization` value for HTTP basic auth.
pub fn basic_header(username: &str, password: &str) -> String {
    let raw = format!("{username}:{password}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

/// A bearer token and when to stop using it.
#[derive(Debug, Clone)]
pub struct Token {
    /// The token.
    pub token: String,
    /// When it expires (with a margin).
    pub expires: Instant,
}

#[derive(Deserialize)]
struct TokenResponse {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

/// Fetches a token for `scopes` from `realm`: an identity token is exchanged
/// with a `grant_type=refresh_token` POST (OAuth2), anything else with a GET
/// carrying basic auth when there is a credential.
pub fn fetch_token(
    agent: &ureq::Agent,
    realm: &str,
    service: Option<&str>,
    scopes: &[String],
    credential: Option<&Credential>,
) -> Result<Token, RegistryError> {
    let wrap = |source| RegistryError::Token {
        realm: redact(realm),
        source: Box::new(source),
    };
    let result = match credential {
        Some(Credential::IdentityToken(refresh)) => {
            let mut form: Vec<(&str, &str)> = vec![
                ("grant_type", "refresh_token"),
                ("client_id", "kiln"),
                ("refresh_token", refresh),
            ];
            if let Some(s) = service {
                form.push(("service", s));
            }
            let scope = scopes.join(" ");
            if !scope.is_empty() {
                form.push(("scope", &scope));
            }
            agent.post(realm).send_form(&form)
        }
        other => {
            let mut req = agent.get(realm);
            if let Some(s) = service {
                req = req.query("service", s);
            }
            for scope in scopes {
                req = req.query("scope", scope);
            }
            if let Some(Credential::Basic { username, password }) = other {
                req = req
                    .query("account", username)
                    .set("Authorization", &basic_header(username, password));
            }
            req.call()
        }
    };
    let resp = result.map_err(|e| wrap(request_error("GET", realm, e)))?;
    let body = resp.into_string().map_err(|source| {
        wrap(RegistryError::Body {
            method: "GET".into(),
            url: redact(realm),
            source,
        })
    })?;
    let parsed: TokenResponse =
        serde_json::from_str(&body).map_err(|source| RegistryError::TokenBody {
            realm: redact(realm),
            source,
        })?;
    let token = parsed.token.or(parsed.access_token).ok_or_else(|| {
        let source = <serde_json::Error as serde::de::Error>::missing_field("token");
        RegistryError::TokenBody {
            realm: redact(realm),
            source,
        }
    })?;
    // The spec's default lifetime is 60 s; stop 10 s early so a token is
    // never sent just as it expires.
    let secs = parsed.expires_in.unwrap_or(60).max(20) - 10;
    Ok(Token {
        token,
        expires: Instant::now() + Duration::from_secs(secs),
    })
}

/// Converts a ureq failure into the error the client reports: an error
/// status with the registry's body, or a transport failure.
pub fn request_error(method: &str, url: &str, e: ureq::Error) -> RegistryError {
    match e {
        ureq::Error::Status(status, resp) => {
            let mut body = Vec::new();
            let _ = std::io::Read::read_to_end(
                &mut std::io::Read::take(resp.into_reader(), 64 * 1024),
                &mut body,
            );
            let body = super::ErrorBody::parse(&body);
            let (method, url) = (method.to_string(), redact(url));
            if status == 401 || status == 403 {
                RegistryError::Unauthorized {
                    method,
                    url,
                    status,
                    body,
                }
            } else {
                RegistryError::Status {
                    method,
                    url,
                    status,
                    body,
                }
            }
        }
        ureq::Error::Transport(t) => RegistryError::Transport {
            method: method.to_string(),
            url: redact(url),
            source: Box::new(t),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_challenges() {
        let c = Challenge::parse(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull,push""#,
        );
        assert_eq!(
            c,
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into())
            })
        );
        assert_eq!(
            Challenge::parse(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(Challenge::parse("Negotiate abc"), None);
        assert_eq!(
            parse_params(r#"a="x\"y", b=z"#),
            [("a".into(), "x\"y".into()), ("b".into(), "z".into())]
        );
    }

    #[test]
    fn basic_header_is_base64() {
        assert_eq!(basic_header("u", "p"), "Basic dTpw");
    }
}
