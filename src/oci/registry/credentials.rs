//! Registry credentials from docker's `config.json` (or podman's `auth.json`),
//! read and written the way docker does, so `docker login`, `podman login`
//! and `kiln login` share one file.
//!
//! Reading: a registry with a credential helper (`credHelpers` for its host,
//! else `credsStore`) asks `docker-credential-<name>`; otherwise its `auths`
//! entry holds the secret. Writing goes to the same place. Invariants: every
//! field of the file kiln does not own survives a rewrite; a rewrite is
//! atomic and leaves the file mode 0600; no secret appears in an error or a
//! debug print.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::{Credential, CredentialSource};

mod entry;
mod file;
mod helper;
mod host;

pub use entry::BadAuth;
pub use file::path_from_env;
pub use host::{registry_of, server_address, DOCKER_HUB_SERVER};

use file::Known;
use helper::Helper;

/// What went wrong reading or writing credentials.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    /// No `$HOME`, and the user database names no home directory either.
    #[error("finding ~/.docker/config.json: $HOME is not set and the user has no home directory")]
    NoHome,
    /// The auth file exists but could not be read.
    #[error("reading auth file {}", path.display())]
    Read {
        /// The auth file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The auth file is not JSON, or a field kiln reads has the wrong type.
    #[error("parsing auth file {}", path.display())]
    Parse {
        /// The auth file.
        path: PathBuf,
        /// Where and why.
        #[source]
        source: serde_json::Error,
    },
    /// An `auths` entry's `auth` field does not decode.
    #[error("reading the credential under {key:?} in {}", path.display())]
    Auth {
        /// The auth file.
        path: PathBuf,
        /// The `auths` key.
        key: String,
        /// Why.
        #[source]
        source: BadAuth,
    },
    /// A helper name that would not name a program in a directory.
    #[error("credential helper name {helper:?} is not a plain name")]
    HelperName {
        /// The name from `credsStore` or `credHelpers`.
        helper: String,
    },
    /// The helper program is not on the search path.
    #[error("credential helper {program} is not on $PATH")]
    HelperNotFound {
        /// `docker-credential-<name>`.
        program: String,
    },
    /// The helper could not be started or talked to.
    #[error("running {program} {action}")]
    HelperRun {
        /// `docker-credential-<name>`.
        program: String,
        /// `get`, `store` or `erase`.
        action: &'static str,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The helper ran and reported a failure.
    #[error("{program} {action} failed ({status}): {said}")]
    HelperFailed {
        /// `docker-credential-<name>`.
        program: String,
        /// `get`, `store` or `erase`.
        action: &'static str,
        /// How it exited.
        status: String,
        /// What it printed (stdout, then stderr), trimmed.
        said: String,
    },
    /// The helper's `get` answer is not the protocol's JSON.
    #[error("reading the answer of {program} get")]
    HelperAnswer {
        /// `docker-credential-<name>`.
        program: String,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// The auth file could not be replaced.
    #[error("writing auth file {}", path.display())]
    Write {
        /// The auth file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Where [`DockerConfig::store`] put a credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stored {
    /// In the auth file, base64 in `auths` (readable by anyone who can read
    /// the file: docker warns about it).
    File(PathBuf),
    /// With the credential helper `docker-credential-<name>`.
    Helper(String),
}

/// docker's `config.json` (or an `auth.json` of the same format) as a source
/// and sink of registry credentials.
#[derive(Debug)]
pub struct DockerConfig {
    path: PathBuf,
    known: Known,
    helper_path: Option<OsString>,
}

impl DockerConfig {
    /// Loads the auth file the process environment names (see
    /// [`path_from_env`]).
    pub fn load_default() -> Result<Self, CredentialsError> {
        Self::load(path_from_env(|name| std::env::var_os(name))?)
    }

    /// Loads the auth file at `path`; a missing file holds no credentials.
    pub fn load(path: impl Into<PathBuf>) -> Result<Self, CredentialsError> {
        let path = path.into();
        let (_, known) = file::read(&path)?;
        Ok(DockerConfig {
            path,
            known,
            helper_path: None,
        })
    }

    /// Looks for credential helpers in `search_path` (a `$PATH`-style list)
    /// instead of the process's `$PATH`.
    pub fn with_helper_path(mut self, search_path: impl Into<OsString>) -> Self {
        self.helper_path = Some(search_path.into());
        self
    }

    /// The auth file this configuration reads and writes.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The credential helper `registry` uses (`credHelpers` for its host,
    /// else `credsStore`), or `None` when its secret lives in the file.
    // COMPAT(docker): an empty `credHelpers` entry means "the file", even when
    // a `credsStore` is set.
    pub fn helper_for(&self, registry: &str) -> Option<&str> {
        let helpers = &self.known.cred_helpers;
        let name = match host::find(helpers.keys(), registry) {
            Some(key) => helpers[key].as_str(),
            None => self.known.creds_store.as_deref().unwrap_or(""),
        };
        (!name.is_empty()).then_some(name)
    }

    /// The credential for `registry` (a host like `docker.io` or
    /// `localhost:5000`, or a URL), or `None` to go anonymous.
    // COMPAT(docker): when a helper applies, its answer is final: an `auths`
    // entry for the same host is not a fallback.
    pub fn get(&self, registry: &str) -> Result<Option<Credential>, CredentialsError> {
        if let Some(helper) = self.helper(registry)? {
            return helper.get(&server_address(registry));
        }
        let auths = &self.known.auths;
        let Some(key) = host::find(auths.keys(), registry) else {
            return Ok(None);
        };
        auths[key]
            .credential()
            .map_err(|source| CredentialsError::Auth {
                path: self.path.clone(),
                key: key.to_string(),
                source,
            })
    }

    /// Keeps `credential` for `registry`: with its helper when one applies,
    /// else base64 in `auths` under [`server_address`]. Other spellings of the
    /// same host's key are dropped so no stale secret shadows the new one.
    pub fn store(
        &mut self,
        registry: &str,
        credential: &Credential,
    ) -> Result<Stored, CredentialsError> {
        let server = server_address(registry);
        let helper = self.helper(registry)?;
        if let Some(helper) = &helper {
            helper.store(&server, credential)?;
        }
        // COMPAT(docker): with a helper, docker still writes an empty entry so
        // the file shows which registries are logged in.
        let in_file = helper.is_none().then_some(credential);
        self.rewrite(|auths| {
            let mut kept = match auths.remove(&server) {
                Some(Value::Object(entry)) => entry,
                _ => Map::new(),
            };
            for alias in host::all(auths.keys(), registry) {
                auths.remove(&alias);
            }
            entry::write_credential(&mut kept, in_file);
            auths.insert(server.clone(), Value::Object(kept));
            true
        })?;
        Ok(match helper {
            Some(h) => Stored::Helper(h.program().to_string()),
            None => Stored::File(self.path.clone()),
        })
    }

    /// Forgets `registry`'s credential: from its helper, and every `auths`
    /// key that names its host. `false` when nothing was kept.
    pub fn erase(&mut self, registry: &str) -> Result<bool, CredentialsError> {
        let server = server_address(registry);
        let mut erased = false;
        if let Some(helper) = self.helper(registry)? {
            // Asking first: helpers disagree on what erasing nothing means.
            if helper.get(&server)?.is_some() {
                erased |= helper.erase(&server)?;
            }
        }
        erased |= self.rewrite(|auths| {
            let keys = host::all(auths.keys(), registry);
            for key in &keys {
                auths.remove(key);
            }
            !keys.is_empty()
        })?;
        Ok(erased)
    }

    fn helper(&self, registry: &str) -> Result<Option<Helper>, CredentialsError> {
        self.helper_for(registry)
            .map(|name| Helper::find(name, self.helper_path.as_ref()))
            .transpose()
    }

    /// Applies `change` to `auths` of the file as it is on disk now (another
    /// process may have written it since [`DockerConfig::load`]) and writes
    /// the result if `change` says it changed something.
    fn rewrite(
        &mut self,
        change: impl FnOnce(&mut Map<String, Value>) -> bool,
    ) -> Result<bool, CredentialsError> {
        let (mut doc, _) = file::read(&self.path)?;
        let auths = doc
            .entry("auths")
            .and_modify(|a| {
                if a.is_null() {
                    *a = Value::Object(Map::new());
                }
            })
            .or_insert_with(|| Value::Object(Map::new()));
        let auths = auths.as_object_mut().expect("file::read checked auths");
        if !change(auths) {
            return Ok(false);
        }
        file::write(&self.path, &doc)?;
        // What was just written, without reading it back.
        self.known = file::known(&self.path, &doc)?;
        Ok(true)
    }
}

impl CredentialSource for DockerConfig {
    fn credential(
        &self,
        registry: &str,
    ) -> Result<Option<Credential>, Box<dyn std::error::Error + Send + Sync>> {
        Ok(self.get(registry)?)
    }
}

#[cfg(test)]
mod tests;
