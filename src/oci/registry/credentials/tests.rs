//! `DockerConfig` over a file with no helper; the helper protocol and the CLI
//! are tested end to end in `tests/it/credentials.rs`.

use std::fs;

use serde_json::{json, Value};

use super::*;

fn basic(username: &str, password: &str) -> Credential {
    Credential::Basic {
        username: username.into(),
        password: password.into(),
    }
}

fn config_with(json: Value) -> (tempfile::TempDir, DockerConfig) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.json");
    fs::write(&path, serde_json::to_vec(&json).unwrap()).unwrap();
    let config = DockerConfig::load(&path).unwrap();
    (dir, config)
}

fn on_disk(config: &DockerConfig) -> Value {
    serde_json::from_slice(&fs::read(config.path()).unwrap()).unwrap()
}

#[test]
fn reads_every_spelling_of_an_entry() {
    let (_dir, config) = config_with(json!({"auths": {
        "https://index.docker.io/v1/": {"auth": "aHViOnNlY3JldA=="},
        "http://legacy:5000/v2/": {"username": "u", "password": "p"},
        "tokens.example": {"identitytoken": "refresh"},
        "quay.io/team/app": {"auth": "dGVhbTpzY29wZWQ="},
    }}));
    assert_eq!(
        config.get("docker.io").unwrap(),
        Some(basic("hub", "secret"))
    );
    assert_eq!(
        config.get("registry-1.docker.io").unwrap(),
        Some(basic("hub", "secret"))
    );
    assert_eq!(config.get("legacy:5000").unwrap(), Some(basic("u", "p")));
    assert_eq!(
        config.get("tokens.example").unwrap(),
        Some(Credential::IdentityToken("refresh".into()))
    );
    // A podman key scoped to a repository does not open the whole host.
    assert_eq!(config.get("quay.io").unwrap(), None);
    assert_eq!(config.get("elsewhere:5000").unwrap(), None);
}

#[test]
fn a_bad_auth_names_the_key_but_not_the_secret() {
    let (_dir, config) = config_with(json!({"auths": {"h": {"auth": "c2VjcmV0"}}}));
    let err = config.get("h").unwrap_err();
    let text = format!("{err}: {}", std::error::Error::source(&err).unwrap());
    assert!(text.contains("\"h\"") && text.contains("':'"), "{text}");
    assert!(
        !text.contains("secret") && !text.contains("c2VjcmV0"),
        "{text}"
    );
}

#[test]
fn helpers_are_chosen_per_host_then_by_default() {
    let (_dir, config) = config_with(json!({
        "credsStore": "desktop",
        "credHelpers": {"gcr.io": "gcloud", "plain:5000": "", "https://index.docker.io/v1/": "hub"},
    }));
    assert_eq!(config.helper_for("gcr.io"), Some("gcloud"));
    assert_eq!(config.helper_for("docker.io"), Some("hub"));
    assert_eq!(config.helper_for("other.io"), Some("desktop"));
    assert_eq!(config.helper_for("plain:5000"), None);
}

#[test]
fn a_missing_helper_is_an_error_naming_it() {
    let (_dir, config) = config_with(json!({"credsStore": "kiln-absent"}));
    let config = config.with_helper_path("/nonexistent");
    let err = config.get("docker.io").unwrap_err();
    assert!(matches!(err, CredentialsError::HelperNotFound { .. }));
    assert!(err.to_string().contains("docker-credential-kiln-absent"));
}

#[test]
fn store_writes_base64_and_keeps_everything_else() {
    let (_dir, mut config) = config_with(json!({
        "auths": {
            "other:5000": {"auth": "b3RoZXI6cHc="},
            "http://mine:5000/v2/": {"auth": "b2xkOm9sZA=="},
            "mine:5000/team": {"auth": "dGVhbTpwdw=="},
        },
        "psFormat": "table {{.ID}}",
        "proxies": {"default": {"httpProxy": "http://proxy:3128"}},
    }));
    let stored = config.store("mine:5000", &basic("me", "pw")).unwrap();
    assert_eq!(stored, Stored::File(config.path().to_path_buf()));
    assert_eq!(
        on_disk(&config),
        json!({
            "auths": {
                "other:5000": {"auth": "b3RoZXI6cHc="},
                "mine:5000": {"auth": "bWU6cHc="},
                "mine:5000/team": {"auth": "dGVhbTpwdw=="},
            },
            "psFormat": "table {{.ID}}",
            "proxies": {"default": {"httpProxy": "http://proxy:3128"}},
        })
    );
    assert_eq!(config.get("mine:5000").unwrap(), Some(basic("me", "pw")));
}

#[test]
fn store_for_docker_io_uses_dockers_key() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = DockerConfig::load(dir.path().join("new/dir/config.json")).unwrap();
    config
        .store("docker.io", &Credential::IdentityToken("tok".into()))
        .unwrap();
    assert_eq!(
        on_disk(&config),
        json!({"auths": {"https://index.docker.io/v1/": {"identitytoken": "tok"}}})
    );
}

#[test]
fn erase_removes_every_spelling_of_one_host_only() {
    let (_dir, mut config) = config_with(json!({"auths": {
        "mine:5000": {"auth": "bWU6cHc="},
        "https://mine:5000": {"auth": "bWU6cHc="},
        "other:5000": {"auth": "b3RoZXI6cHc="},
    }, "credHelpers": {}}));
    assert!(config.erase("mine:5000").unwrap());
    assert_eq!(
        on_disk(&config),
        json!({"auths": {"other:5000": {"auth": "b3RoZXI6cHc="}}, "credHelpers": {}})
    );
    assert!(!config.erase("mine:5000").unwrap());
}

#[test]
fn erasing_nothing_creates_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.json");
    let mut config = DockerConfig::load(&path).unwrap();
    assert!(!config.erase("docker.io").unwrap());
    assert!(!path.exists());
}

#[test]
fn debug_never_prints_a_secret() {
    let (_dir, config) = config_with(json!({"auths": {"h": {"auth": "dTpzM2NyM3Q="}}}));
    let shown = format!("{config:?} {:?}", config.get("h").unwrap());
    assert!(
        !shown.contains("s3cr3t") && !shown.contains("dTpzM2NyM3Q="),
        "{shown}"
    );
}
