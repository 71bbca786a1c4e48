//! One request to a registry, kept whole so it can be sent again: after a
//! 401 (with a token), or after a connection dropped before any response.

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
