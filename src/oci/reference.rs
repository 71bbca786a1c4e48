//! Image references (`busybox`, `ghcr.io/o/app:1.2`, `app@sha256:…`), parsed
//! and normalized as docker does, so the store, `load` and the registry client
//! agree on one spelling of every name.
//!
//! Invariant: a [`Reference`] always has a registry and a repository made of
//! valid lower-case path components; `familiar()` and `qualified()` are the
//! only two spellings kiln writes.

use std::fmt;

use super::{Digest, DigestError};

/// The registry implied by a name with no domain.
pub const DOCKER_HUB: &str = "docker.io";

/// Why a reference was refused.
#[derive(Debug, thiserror::Error)]
pub enum ReferenceError {
    /// Nothing to parse.
    #[error("empty image reference")]
    Empty,
    /// A path component breaks docker's grammar (upper case, bad separators).
    #[error(
        "invalid reference format {reference:?}: repository name must be lowercase path components"
    )]
    Repository {
        /// The reference as given.
        reference: String,
    },
    /// The tag breaks `[\w][\w.-]{0,127}`.
    #[error("invalid tag {tag:?} in reference {reference:?}")]
    Tag {
        /// The reference as given.
        reference: String,
        /// The offending tag.
        tag: String,
    },
    /// `@` followed by something that is not a sha256 digest.
    #[error("invalid digest in reference {reference:?}")]
    Digest {
        /// The reference as given.
        reference: String,
        /// Why the digest was refused.
        #[source]
        source: DigestError,
    },
    /// A 64-character hex string is an image ID, never a name.
    #[error("invalid repository name {reference:?}: a 64-character hex string is an image ID, not a name")]
    HexName {
        /// The reference as given.
        reference: String,
    },
}

/// A parsed image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// e.g. `docker.io`, `localhost:5000`.
    pub registry: String,
    /// e.g. `library/busybox`.
    pub repository: String,
    /// e.g. `latest`; `None` when only a digest was given.
    pub tag: Option<String>,
    /// The pinned manifest digest, if any.
    pub digest: Option<Digest>,
}

impl Reference {
    /// Parses `reference`, filling in docker's defaults: `docker.io`,
    /// `library/` for single-component Hub names, and tag `latest` when
    /// neither tag nor digest is given.
    pub fn parse(reference: &str) -> Result<Self, ReferenceError> {
        if reference.is_empty() {
            return Err(ReferenceError::Empty);
        }
        let (name_tag, digest) = match reference.split_once('@') {
            Some((n, d)) => {
                let digest = Digest::parse(d).map_err(|source| ReferenceError::Digest {
                    reference: reference.to_string(),
                    source,
                })?;
                (n, Some(digest))
            }
            None => (reference, None),
        };
        // A ':' after the last '/' separates the tag; one before it is a port.
        let last_slash = name_tag.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match name_tag[last_slash..].rfind(':') {
            Some(i) => (
                &name_tag[..last_slash + i],
                Some(&name_tag[last_slash + i + 1..]),
            ),
            None => (name_tag, None),
        };
        if let Some(t) = tag {
            if !valid_tag(t) {
                return Err(ReferenceError::Tag {
                    reference: reference.to_string(),
                    tag: t.to_string(),
                });
            }
        }
        let (registry, repository) = split_domain(name);
        if name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ReferenceError::HexName {
                reference: reference.to_string(),
            });
        }
        if !repository.split('/').all(valid_component) || !valid_domain(&registry) {
            return Err(ReferenceError::Repository {
                reference: reference.to_string(),
            });
        }
        let tag = match (tag, &digest) {
            (Some(t), _) => Some(t.to_string()),
            (None, Some(_)) => None,
            (None, None) => Some("latest".to_string()),
        };
        Ok(Self {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// The repository as docker shows it: no `docker.io/`, no `library/`.
    pub fn familiar_repository(&self) -> String {
        if self.registry == DOCKER_HUB {
            let r = self.repository.as_str();
            r.strip_prefix("library/").unwrap_or(r).to_string()
        } else {
            format!("{}/{}", self.registry, self.repository)
        }
    }

    /// The short name docker prints: `busybox:latest`, `ghcr.io/o/app:1`.
    pub fn familiar(&self) -> String {
        self.spell(self.familiar_repository())
    }

    /// The fully qualified name: `docker.io/library/busybox:latest`.
    pub fn qualified(&self) -> String {
        self.spell(format!("{}/{}", self.registry, self.repository))
    }

    fn spell(&self, repo: String) -> String {
        let mut s = repo;
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(&d.to_string());
        }
        s
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.familiar())
    }
}

/// Normalizes a name the way docker shows it (`app` → `app:latest`,
/// `docker.io/library/app` → `app:latest`). The store keys images by this.
pub fn normalize_name(reference: &str) -> Result<String, ReferenceError> {
    Reference::parse(reference).map(|r| r.familiar())
}

fn split_domain(name: &str) -> (String, String) {
    match name.split_once('/') {
        Some((first, rest))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            let registry = if first == "index.docker.io" {
                DOCKER_HUB
            } else {
                first
            };
            let repository = if registry == DOCKER_HUB && !rest.contains('/') {
                format!("library/{rest}")
            } else {
                rest.to_string()
            };
            (registry.to_string(), repository)
        }
        Some(_) => (DOCKER_HUB.to_string(), name.to_string()),
        None => (DOCKER_HUB.to_string(), format!("library/{name}")),
    }
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`
fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        if !(sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-')) {
            return false;
        }
    }
    true
}

fn valid_domain(d: &str) -> bool {
    !d.is_empty()
        && d.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
}

fn valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    let word = |x: u8| x.is_ascii_alphanumeric() || x == b'_';
    !b.is_empty()
        && b.len() <= 128
        && word(b[0])
        && b.iter().all(|&x| word(x) || x == b'.' || x == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_like_docker() {
        assert_eq!(normalize_name("app").unwrap(), "app:latest");
        assert_eq!(
            normalize_name("docker.io/library/app").unwrap(),
            "app:latest"
        );
        assert_eq!(normalize_name("index.docker.io/app:1").unwrap(), "app:1");
        assert_eq!(normalize_name("me/app:v1.2").unwrap(), "me/app:v1.2");
        assert_eq!(
            normalize_name("localhost:5000/app").unwrap(),
            "localhost:5000/app:latest"
        );
        let r = Reference::parse("busybox").unwrap();
        assert_eq!(r.qualified(), "docker.io/library/busybox:latest");
        let r = Reference::parse("localhost:5000/a/b:t").unwrap();
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str()),
            ("localhost:5000", "a/b")
        );
    }

    #[test]
    fn digest_references_keep_no_default_tag() {
        let d = Digest::of(b"x");
        let r = Reference::parse(&format!("app@{d}")).unwrap();
        assert_eq!(r.tag, None);
        assert_eq!(r.digest, Some(d));
        assert_eq!(r.familiar(), format!("app@{d}"));
    }

    #[test]
    fn refuses_bad_names() {
        for bad in ["", "App", "a//b", "a:", "a:-x", "-a", "a@sha256:zz", "a..b"] {
            assert!(Reference::parse(bad).is_err(), "{bad:?} was accepted");
        }
        let hex = "a".repeat(64);
        assert!(matches!(
            Reference::parse(&hex),
            Err(ReferenceError::HexName { .. })
        ));
    }
}
