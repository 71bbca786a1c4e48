//! The auth file on disk: which one, reading it, replacing it.
//!
//! The whole file is kept as raw JSON so a rewrite loses nothing kiln does not
//! know about (`proxies`, `psFormat`, `currentContext`, …); only the fields
//! kiln reads are also parsed into [`Known`], which is where a malformed file
//! is refused. A rewrite is atomic: a temp file in the same directory, fsync,
//! rename, fsync of the directory; the file is mode 0600.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs;
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{Map, Value};

use super::entry::AuthEntry;
use super::CredentialsError;

/// The fields of the auth file kiln reads.
#[derive(Debug, Default, Deserialize)]
pub struct Known {
    /// Credentials kept in the file, by registry key.
    #[serde(default, deserialize_with = "null_as_default")]
    pub auths: BTreeMap<String, AuthEntry>,
    /// The helper for every registry without its own.
    #[serde(rename = "credsStore", default)]
    pub creds_store: Option<String>,
    /// A helper per registry key.
    #[serde(rename = "credHelpers", default, deserialize_with = "null_as_default")]
    pub cred_helpers: BTreeMap<String, String>,
}

fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// The auth file the environment names: `$REGISTRY_AUTH_FILE` (podman and
/// skopeo's `auth.json`, same format), else `$DOCKER_CONFIG/config.json`,
/// else `~/.docker/config.json`. `var` reads one variable; an empty value
/// counts as unset, as docker treats it.
pub fn path_from_env(var: impl Fn(&str) -> Option<OsString>) -> Result<PathBuf, CredentialsError> {
    let set = |name| var(name).filter(|v| !v.is_empty());
    if let Some(file) = set("REGISTRY_AUTH_FILE") {
        return Ok(PathBuf::from(file));
    }
    if let Some(dir) = set("DOCKER_CONFIG") {
        return Ok(PathBuf::from(dir).join("config.json"));
    }
    let home = match set("HOME") {
        Some(home) => PathBuf::from(home),
        None => nix::unistd::User::from_uid(nix::unistd::getuid())
            .ok()
            .flatten()
            .map(|u| u.dir)
            .ok_or(CredentialsError::NoHome)?,
    };
    Ok(home.join(".docker").join("config.json"))
}

/// Reads the auth file at `path`; a missing file (or an empty one, which
/// docker also accepts) is an empty configuration.
pub fn read(path: &Path) -> Result<(Map<String, Value>, Known), CredentialsError> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == ErrorKind::NotFound => Vec::new(),
        Err(source) => {
            return Err(CredentialsError::Read {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok((Map::new(), Known::default()));
    }
    let doc: Map<String, Value> =
        serde_json::from_slice(&bytes).map_err(|source| parse_error(path, source))?;
    let known = known(path, &doc)?;
    Ok((doc, known))
}

/// The fields kiln reads out of `doc`, the auth file at `path`.
pub fn known(path: &Path, doc: &Map<String, Value>) -> Result<Known, CredentialsError> {
    serde_json::from_value(Value::Object(doc.clone())).map_err(|source| parse_error(path, source))
}

fn parse_error(path: &Path, source: serde_json::Error) -> CredentialsError {
    CredentialsError::Parse {
        path: path.to_path_buf(),
        source,
    }
}

/// Replaces the auth file at `path` with `doc`, atomically.
pub fn write(path: &Path, doc: &Map<String, Value>) -> Result<(), CredentialsError> {
    let write_error = |source| CredentialsError::Write {
        path: path.to_path_buf(),
        source,
    };
    // COMPAT(docker): a config.json that is a symlink (dotfile managers) stays
    // one; the file it points to is replaced.
    let target = fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let dir = match target.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(write_error)?;
    let name = target.file_name().unwrap_or_default().to_string_lossy();
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .permissions(fs::Permissions::from_mode(0o600))
        .tempfile_in(&dir)
        .map_err(write_error)?;
    // COMPAT(docker): tab-indented, as docker's json.MarshalIndent writes it.
    let mut bytes = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"\t");
    let mut ser = serde_json::Serializer::with_formatter(&mut bytes, formatter);
    serde::Serialize::serialize(doc, &mut ser).expect("a JSON value always serializes");
    tmp.write_all(&bytes).map_err(write_error)?;
    tmp.as_file().sync_all().map_err(write_error)?;
    // The temp file is removed on every error path before this (its drop).
    tmp.persist(&target).map_err(|e| write_error(e.error))?;
    fs::File::open(&dir)
        .and_then(|d| d.sync_all())
        .map_err(write_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<OsString> + 'a {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| OsString::from(v))
        }
    }

    #[test]
    fn registry_auth_file_wins_over_docker_config_over_home() {
        let all = [
            ("REGISTRY_AUTH_FILE", "/run/auth.json"),
            ("DOCKER_CONFIG", "/cfg"),
            ("HOME", "/home/u"),
        ];
        assert_eq!(
            path_from_env(env(&all)).unwrap(),
            Path::new("/run/auth.json")
        );
        assert_eq!(
            path_from_env(env(&all[1..])).unwrap(),
            Path::new("/cfg/config.json")
        );
        assert_eq!(
            path_from_env(env(&all[2..])).unwrap(),
            Path::new("/home/u/.docker/config.json")
        );
    }

    #[test]
    fn empty_variables_count_as_unset() {
        let vars = [
            ("REGISTRY_AUTH_FILE", ""),
            ("DOCKER_CONFIG", ""),
            ("HOME", "/home/u"),
        ];
        assert_eq!(
            path_from_env(env(&vars)).unwrap(),
            Path::new("/home/u/.docker/config.json")
        );
    }

    #[test]
    fn missing_and_empty_files_are_empty_configs() {
        let dir = tempfile::tempdir().unwrap();
        let (doc, known) = read(&dir.path().join("absent.json")).unwrap();
        assert!(doc.is_empty() && known.auths.is_empty());
        fs::write(dir.path().join("empty.json"), "\n").unwrap();
        assert!(read(&dir.path().join("empty.json")).unwrap().0.is_empty());
    }

    #[test]
    fn wrong_types_are_refused_with_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        for bad in [r#"{"auths": []}"#, r#"{"credsStore": 1}"#, "[]", "{"] {
            fs::write(&path, bad).unwrap();
            let err = read(&path).unwrap_err();
            assert!(matches!(err, CredentialsError::Parse { .. }), "{bad}");
            assert!(err.to_string().contains(&path.display().to_string()));
        }
    }

    #[test]
    fn writing_through_a_symlink_keeps_the_link() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.json");
        let link = dir.path().join("config.json");
        fs::write(&real, "{}").unwrap();
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let doc = serde_json::json!({"k": "v"}).as_object().unwrap().clone();
        write(&link, &doc).unwrap();
        assert!(fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(read(&real).unwrap().0, doc);
        let mode = fs::metadata(&real).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
