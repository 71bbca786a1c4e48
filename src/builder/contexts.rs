//! Named contexts (`--build-context NAME=VALUE`) on the builder's side: what
//! each value names (a directory, an image reference, an image in an OCI
//! layout dir), a directory read the way COPY reads the main context (its
//! own `.dockerignore` at its root, its own stat cache), and the image of an
//! image context for the plan.
//!
//! Invariants: a directory context is read only inside its root, like the
//! main context ([`Source`]); its files count in a COPY's key by content,
//! like the main context's; an image context is keyed by its manifest
//! digest, like a FROM. Values kiln cannot honour (git and HTTP contexts,
//! bake's `target:`, frontend `input:`) are refused by name when parsed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::cache::ContextHasher;
use crate::dockerfile::ignore::IgnorePatterns;
use crate::oci::{registry, Digest, LayoutError, Platform, Reference, Store};
use crate::plan::{context_key, ContextKind, ResolvedImage};

use super::error::BuildError;
use super::source::Source;

/// What a `--build-context` value names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContextSource {
    /// A local directory (absolute).
    Dir(PathBuf),
    /// `docker-image://REF`: an image, resolved like a FROM's.
    Image(String),
    /// `oci-layout://DIR[:TAG][@DIGEST]`: an image in a layout directory.
    OciLayout {
        /// The layout directory.
        dir: PathBuf,
        /// The tag to look for (`latest` unless given).
        tag: String,
        /// The manifest or index digest, when given.
        digest: Option<Digest>,
    },
}

/// Why a `--build-context` value was refused.
#[derive(Debug, thiserror::Error)]
pub enum ContextSpecError {
    /// No `=`.
    #[error("invalid context value {0:?}, expected NAME=VALUE")]
    NoEquals(String),
    /// A name no Dockerfile could use.
    #[error("invalid context name {name:?}: {why}")]
    Name {
        /// The name as given.
        name: String,
        /// Why.
        why: &'static str,
    },
    /// A kind of context kiln does not build from.
    #[error("build context {name}={value}: {kind} contexts are not supported by kiln; {instead}")]
    Refused {
        /// The context name.
        name: String,
        /// The value as given.
        value: String,
        /// The kind (`git`, `HTTP`, …).
        kind: &'static str,
        /// What to do instead.
        instead: &'static str,
    },
    /// `docker-image://` or `oci-layout://` with nothing usable after it.
    #[error("build context {name}={value}: {why}")]
    Value {
        /// The context name.
        name: String,
        /// The value as given.
        value: String,
        /// What is wrong.
        why: String,
    },
    /// A local path that is not a directory.
    #[error("build context {name}: {} is not a directory", path.display())]
    NotDir {
        /// The context name.
        name: String,
        /// The path.
        path: PathBuf,
    },
}

const REMOTE: &str = "fetch it first (git clone, curl) and pass the directory";

impl ContextSource {
    /// Parses one `NAME=VALUE` into its key ([`context_key`]) and source.
    pub fn parse(spec: &str) -> Result<(String, Self), ContextSpecError> {
        let (name, value) = spec
            .split_once('=')
            .ok_or_else(|| ContextSpecError::NoEquals(spec.to_string()))?;
        let key = match context_key(name) {
            Some(k) => k,
            None if Reference::parse(name).is_ok() => {
                return Err(ContextSpecError::Name {
                    name: name.into(),
                    why: "BuildKit never looks up a context called scratch or context",
                })
            }
            None => {
                return Err(ContextSpecError::Name {
                    name: name.into(),
                    why: "it must be a valid image name (lower-case path components)",
                })
            }
        };
        let refuse = |kind, instead| ContextSpecError::Refused {
            name: key.clone(),
            value: value.to_string(),
            kind,
            instead,
        };
        let bad = |why: String| ContextSpecError::Value {
            name: key.clone(),
            value: value.to_string(),
            why,
        };
        let source = if let Some(r) = value.strip_prefix("docker-image://") {
            parse_image(r).map_err(bad)?
        } else if let Some(l) = value.strip_prefix("oci-layout://") {
            parse_layout(l).map_err(bad)?
        } else if is_git(value) {
            return Err(refuse("git", REMOTE));
        } else if value.starts_with("http://") || value.starts_with("https://") {
            return Err(refuse("HTTP", REMOTE));
        } else if value.starts_with("target:") {
            return Err(refuse(
                "bake target",
                "use a stage (FROM … AS NAME) instead",
            ));
        } else if value.starts_with("input:") {
            return Err(refuse("frontend input", "pass a directory or an image"));
        } else {
            let path = std::path::absolute(value).map_err(|e| bad(e.to_string()))?;
            if !path.is_dir() {
                return Err(ContextSpecError::NotDir { name: key, path });
            }
            ContextSource::Dir(path)
        };
        Ok((key, source))
    }

    /// What the plan needs to know of it.
    pub fn kind(&self) -> ContextKind {
        match self {
            ContextSource::Dir(_) => ContextKind::Dir,
            _ => ContextKind::Image,
        }
    }
}

/// buildx's `dfgitutil.ParseGitRef` for a context value: the plan's git
/// sources, `github.com/…`, and scp-like `USER@HOST:PATH`.
fn is_git(value: &str) -> bool {
    let scp = value.split_once(':').is_some_and(|(user_host, _)| {
        user_host
            .split_once('@')
            .is_some_and(|(u, h)| !u.is_empty() && !h.is_empty() && !user_host.contains('/'))
    });
    crate::plan::is_git(value) || value.starts_with("github.com/") || scp
}

fn parse_image(reference: &str) -> Result<ContextSource, String> {
    if reference.eq_ignore_ascii_case("scratch") {
        return Err("an empty image context is not supported; use FROM scratch".into());
    }
    Reference::parse(reference).map_err(|e| e.to_string())?;
    Ok(ContextSource::Image(reference.to_string()))
}

/// buildx's `ocilayout.Parse`: `@DIGEST` last, then `:TAG`, else `latest`.
fn parse_layout(rest: &str) -> Result<ContextSource, String> {
    let mut path = rest;
    let mut digest = None;
    if let Some((p, d)) = path.rsplit_once('@').filter(|(_, d)| d.contains(':')) {
        digest = Some(Digest::parse(d).map_err(|e| e.to_string())?);
        path = p;
    }
    let mut tag = None;
    if let Some((p, t)) = path.rsplit_once(':').filter(|(_, t)| valid_tag(t)) {
        tag = Some(t.to_string());
        path = p;
    }
    if path.is_empty() {
        return Err("no layout directory".into());
    }
    let dir = std::path::absolute(path).map_err(|e| e.to_string())?;
    if !dir.is_dir() {
        return Err(format!("{} is not a directory", dir.display()));
    }
    if !dir.join("index.json").is_file() {
        return Err(format!(
            "{} is not an OCI layout (no index.json)",
            dir.display()
        ));
    }
    let tag = tag.unwrap_or_else(|| "latest".into());
    Ok(ContextSource::OciLayout { dir, tag, digest })
}

/// Docker's tag grammar `[\w][\w.-]{0,127}`.
fn valid_tag(t: &str) -> bool {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    t.len() <= 128
        && t.chars().next().is_some_and(word)
        && t.chars().all(|c| word(c) || c == '.' || c == '-')
}

/// A directory context, open for reading and hashing.
#[derive(Debug)]
pub struct LocalContext {
    /// What COPY reads.
    pub source: Source,
    /// Its stat cache and content digests.
    pub hasher: ContextHasher,
    /// Its `.dockerignore`.
    pub ignore: Option<IgnorePatterns>,
}

impl LocalContext {
    /// Opens the directory `dir` with the `.dockerignore` at its root.
    // COMPAT(buildkit): a local named context reads `.dockerignore` at its
    // own root (`dockerui.NamedContext.load`, case "local").
    pub fn open(store: &Store, dir: &Path) -> Result<Self, BuildError> {
        let path = dir.join(".dockerignore");
        let ignore = match std::fs::read_to_string(&path) {
            Ok(text) => Some(
                IgnorePatterns::parse(&text)
                    .map_err(|source| BuildError::ParseIgnore { path, source })?,
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(source) => return Err(BuildError::ReadIgnore { path, source }),
        };
        let hasher = ContextHasher::with_store(store.clone(), dir).map_err(BuildError::Cache)?;
        Ok(Self {
            source: Source::context(dir.to_path_buf(), ignore.clone()),
            hasher,
            ignore,
        })
    }

    /// Opens every directory context of `contexts`.
    pub fn open_all(
        store: &Store,
        contexts: &BTreeMap<String, ContextSource>,
    ) -> Result<BTreeMap<String, Self>, BuildError> {
        let mut out = BTreeMap::new();
        for (name, c) in contexts {
            if let ContextSource::Dir(dir) = c {
                out.insert(name.clone(), Self::open(store, dir)?);
            }
        }
        Ok(out)
    }
}

/// Why an image context could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum ContextImageError {
    /// The plan asked for a name the build was not given (a bug).
    #[error("no image build context {0}")]
    Unknown(String),
    /// Importing from the layout dir.
    #[error("reading OCI layout {}", dir.display())]
    Layout {
        /// The layout directory.
        dir: PathBuf,
        /// The cause.
        #[source]
        source: LayoutError,
    },
    /// The layout's index has no manifest for the build's platform.
    #[error("OCI layout {} has no image for {platform}", dir.display())]
    Platform {
        /// The layout directory.
        dir: PathBuf,
        /// The build's platform.
        platform: String,
    },
}

/// The image an image context names, for `resolve` (a FROM-like lookup of
/// `docker-image://` references) over `store`.
pub fn resolve_image(
    store: &Store,
    source: Option<&ContextSource>,
    name: &str,
    platform: &Platform,
    resolve: impl FnOnce(&str) -> Result<ResolvedImage, Box<dyn std::error::Error + Send + Sync>>,
) -> Result<ResolvedImage, Box<dyn std::error::Error + Send + Sync>> {
    let (dir, tag, digest) = match source {
        Some(ContextSource::Image(r)) => return resolve(r),
        Some(ContextSource::OciLayout { dir, tag, digest }) => (dir, tag, digest),
        _ => return Err(Box::new(ContextImageError::Unknown(name.into()))),
    };
    let top =
        crate::oci::import_layout_image(store, dir, tag, digest.as_ref()).map_err(|source| {
            ContextImageError::Layout {
                dir: dir.clone(),
                source,
            }
        })?;
    // An index in the layout: the manifest for the build's platform.
    let pinned = Reference {
        registry: crate::oci::reference::DOCKER_HUB.into(),
        repository: "library/oci-layout".into(),
        tag: None,
        digest: Some(top.digest),
    };
    if registry::resolve_local(store, &pinned, platform).is_none() {
        return Err(Box::new(ContextImageError::Platform {
            dir: dir.clone(),
            platform: platform.to_specifier(),
        }));
    }
    // Pinned and now in the store: resolved there, no registry asked.
    resolve(&format!("{name}@{}", top.digest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_values_split_as_buildx_splits_them() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("index.json"), "{}").unwrap();
        let dir = t.path().display().to_string();
        let d = format!("sha256:{}", "a".repeat(64));
        let cases = [
            (dir.clone(), "latest", None),
            (format!("{dir}:v1"), "v1", None),
            (format!("{dir}@{d}"), "latest", Some(&d)),
            (format!("{dir}:v1@{d}"), "v1", Some(&d)),
        ];
        for (value, tag, digest) in cases {
            let (key, src) = ContextSource::parse(&format!("x=oci-layout://{value}")).unwrap();
            assert_eq!(key, "x");
            let want = ContextSource::OciLayout {
                dir: t.path().to_path_buf(),
                tag: tag.into(),
                digest: digest.map(|d| Digest::parse(d).unwrap()),
            };
            assert_eq!(src, want, "{value}");
        }
    }

    #[test]
    fn names_are_keys_and_later_kinds_are_refused_by_name() {
        let (key, src) =
            ContextSource::parse("docker.io/library/alpine:latest=docker-image://busybox").unwrap();
        assert_eq!(
            (key.as_str(), src),
            ("alpine", ContextSource::Image("busybox".into()))
        );
        for git in [
            "a=ssh://host/repo",
            "a=git@github.com:o/r",
            "a=github.com/o/r",
        ] {
            let e = ContextSource::parse(git).unwrap_err().to_string();
            assert!(e.contains("git contexts are not supported"), "{git}: {e}");
        }
        // A local directory whose name ends in .git is a directory.
        let t = tempfile::tempdir().unwrap();
        let bare = t.path().join("repo.git");
        std::fs::create_dir(&bare).unwrap();
        let (_, src) = ContextSource::parse(&format!("a={}", bare.display())).unwrap();
        assert_eq!(src, ContextSource::Dir(bare));
    }
}
