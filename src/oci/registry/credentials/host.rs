//! Which `auths` / `credHelpers` key names which registry.
//!
//! Keys come in three spellings: a bare host (`localhost:5000`, what
//! `docker login` writes today), a URL with a scheme and maybe a path
//! (`https://index.docker.io/v1/`, `http://host:5000/v2/`, what old docker
//! wrote), and, in podman's `auth.json` only, a host with a repository
//! namespace (`quay.io/org/repo`). The first two name a whole registry and
//! match by host; the third is scoped to a repository, which
//! [`super::super::CredentialSource`] does not name, so it never matches a
//! host lookup and is never rewritten.

use crate::oci::reference::DOCKER_HUB;

/// The key docker keeps Docker Hub's credentials under, and the server URL it
/// gives credential helpers for Hub.
pub const DOCKER_HUB_SERVER: &str = "https://index.docker.io/v1/";

/// The hosts that all mean Docker Hub.
// COMPAT(docker): `index.docker.io` is the v1 index, `registry-1.docker.io`
// the v2 endpoint; both spell the registry `docker.io` in a reference.
const HUB_ALIASES: [&str; 3] = [DOCKER_HUB, "index.docker.io", "registry-1.docker.io"];

/// docker's `ConvertToHostname`: drops an `http://` or `https://` scheme and
/// everything from the first `/` after it.
pub fn hostname(key: &str) -> &str {
    let rest = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    rest.split('/').next().unwrap_or(rest)
}

/// The registry a key names, in one spelling per registry (lowercase, Hub as
/// `docker.io`), or `None` for a repository-scoped podman key.
pub fn registry_of(key: &str) -> Option<String> {
    let has_scheme = key.starts_with("https://") || key.starts_with("http://");
    let host = hostname(key);
    let without_scheme = key.split_once("://").map_or(key, |(_, rest)| rest);
    if !has_scheme && without_scheme.trim_end_matches('/') != host {
        return None;
    }
    Some(canonical(host))
}

fn canonical(host: &str) -> String {
    let host = host.to_ascii_lowercase();
    if HUB_ALIASES.contains(&host.as_str()) {
        DOCKER_HUB.to_string()
    } else {
        host
    }
}

/// What kiln writes as the key of `registry` and gives a credential helper as
/// `ServerURL`: docker's `https://index.docker.io/v1/` for Hub, else the host.
pub fn server_address(registry: &str) -> String {
    let host = hostname(registry);
    if canonical(host) == DOCKER_HUB {
        DOCKER_HUB_SERVER.to_string()
    } else {
        host.to_string()
    }
}

/// The key among `keys` that holds `registry`'s entry: the exact
/// [`server_address`] first (docker's lookup), then any other spelling of the
/// same host, a bare host before a URL, so the choice never depends on order.
pub fn find<'a>(keys: impl IntoIterator<Item = &'a String>, registry: &str) -> Option<&'a str> {
    let address = server_address(registry);
    let wanted = registry_of(hostname(registry));
    keys.into_iter()
        .filter(|k| **k == address || (wanted.is_some() && registry_of(k) == wanted))
        .min_by_key(|k| (**k != address, k.contains("://"), k.as_str()))
        .map(String::as_str)
}

/// Every key among `keys` that names `registry` (all spellings, none scoped).
pub fn all<'a>(keys: impl IntoIterator<Item = &'a String>, registry: &str) -> Vec<String> {
    let Some(wanted) = registry_of(hostname(registry)) else {
        return Vec::new();
    };
    keys.into_iter()
        .filter(|k| registry_of(k).as_deref() == Some(wanted.as_str()))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn hostname_strips_scheme_and_path_like_docker() {
        assert_eq!(hostname("https://index.docker.io/v1/"), "index.docker.io");
        assert_eq!(hostname("http://host:5000/v2/"), "host:5000");
        assert_eq!(hostname("localhost:5000"), "localhost:5000");
        assert_eq!(hostname("quay.io/org/repo"), "quay.io");
    }

    #[test]
    fn every_hub_spelling_is_one_registry() {
        for key in [
            "docker.io",
            "index.docker.io",
            "registry-1.docker.io",
            "https://index.docker.io/v1/",
            "https://registry-1.docker.io/v2/",
            "Docker.IO",
        ] {
            assert_eq!(registry_of(key).as_deref(), Some("docker.io"), "{key}");
            assert_eq!(server_address(key), DOCKER_HUB_SERVER, "{key}");
        }
    }

    #[test]
    fn scoped_podman_keys_name_no_registry() {
        assert_eq!(registry_of("quay.io/org/repo"), None);
        assert_eq!(registry_of("quay.io/"), Some("quay.io".into()));
        assert_eq!(registry_of("https://quay.io/v2/"), Some("quay.io".into()));
    }

    #[test]
    fn find_prefers_the_exact_address_then_a_bare_host() {
        let map: BTreeMap<String, ()> = [
            "http://host:5000/v2/",
            "host:5000",
            "https://host:5000",
            "other:5000",
            "host:5000/team/app",
        ]
        .into_iter()
        .map(|k| (k.to_string(), ()))
        .collect();
        assert_eq!(find(map.keys(), "host:5000"), Some("host:5000"));
        assert_eq!(find(map.keys(), "https://host:5000/v1/"), Some("host:5000"));
        assert_eq!(find(map.keys(), "nothere"), None);
        let mut urls = map.clone();
        urls.remove("host:5000");
        assert_eq!(find(urls.keys(), "host:5000"), Some("http://host:5000/v2/"));
        assert_eq!(
            all(map.keys(), "host:5000"),
            ["host:5000", "http://host:5000/v2/", "https://host:5000"]
        );
    }

    #[test]
    fn find_maps_docker_io_to_the_v1_key() {
        let map: BTreeMap<String, ()> = [(DOCKER_HUB_SERVER.to_string(), ())].into();
        assert_eq!(find(map.keys(), "docker.io"), Some(DOCKER_HUB_SERVER));
        assert_eq!(
            find(map.keys(), "registry-1.docker.io"),
            Some(DOCKER_HUB_SERVER)
        );
        let bare: BTreeMap<String, ()> = [("docker.io".to_string(), ())].into();
        assert_eq!(find(bare.keys(), "index.docker.io"), Some("docker.io"));
    }
}
