//! One request to a registry, kept whole so it can be sent again: after a
//! 401 (with a token), or after a connection dropped before any response;
//! and how hosts are named (`host[:port]`, loopback or not).

use std::net::IpAddr;
use std::path::PathBuf;

use url::Url;

/// A request body that can be sent again (after a 401 or a dropped connection).
#[derive(Debug, Clone)]
pub(crate) enum Body {
    /// No body.
    Empty,
    /// Bytes in memory (manifests).
    Bytes(Vec<u8>),
    /// `len` bytes of a file from `offset` (blobs).
    File {
        path: PathBuf,
        offset: u64,
        len: u64,
    },
}

/// One request to a registry.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    pub method: &'static str,
    pub url: Url,
    /// Token scopes, e.g. `repository:library/busybox:pull`.
    pub scopes: Vec<String>,
    pub headers: Vec<(&'static str, String)>,
    pub body: Body,
    /// Safe to send twice (GET, HEAD, PUT of a manifest).
    pub idempotent: bool,
}

impl Request {
    pub fn new(method: &'static str, url: Url, scopes: Vec<String>) -> Self {
        let idempotent = matches!(method, "GET" | "HEAD");
        Request {
            method,
            url,
            scopes,
            headers: Vec::new(),
            body: Body::Empty,
            idempotent,
        }
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    pub fn body(mut self, body: Body) -> Self {
        self.body = body;
        self
    }
}

/// `host[:port]` of a URL, as certs.d and the agent cache name hosts.
pub(crate) fn host_port(u: &Url) -> String {
    let host = u.host_str().unwrap_or("");
    match u.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    }
}

/// `localhost`, `127.0.0.0/8` and `::1`, with or without a port.
pub fn is_loopback(registry: &str) -> bool {
    let host = if let Some(rest) = registry.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        registry.split(':').next().unwrap_or("")
    };
    host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for h in ["localhost:5000", "127.0.0.1", "127.1.2.3:80", "[::1]:5000"] {
            assert!(is_loopback(h), "{h}");
        }
        for h in ["example.com", "10.0.0.1:5000", "localhost.example.com"] {
            assert!(!is_loopback(h), "{h}");
        }
    }
}
