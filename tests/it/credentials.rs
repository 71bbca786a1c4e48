//! Registry credentials: which auth file the environment names, and
//! `kiln login` / `kiln logout` on it; a real credential helper in `helper`.
//! Every kiln run gets a cleared environment, so no test touches the
//! caller's `~/.docker` or another test's variables.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use kiln::oci::registry::{Credential, DockerConfig};

use crate::registry::server::{Auth, Registry};
use serde_json::{json, Value};

mod helper;

/// `kiln ARGS` with only `env` (and a PATH to `/bin/sh`), `stdin` piped in.
pub fn kiln(env: &[(&str, &Path)], args: &[&str], stdin: &str) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kiln"));
    cmd.env_clear()
        .env("PATH", "/usr/bin:/bin")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

pub fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
}

pub fn basic(username: &str, password: &str) -> Credential {
    Credential::Basic {
        username: username.into(),
        password: password.into(),
    }
}

/// A real registry (htpasswd) that lets in `me` with `password`.
pub fn registry(password: &str) -> Registry {
    Registry::start(
        false,
        Auth::Htpasswd {
            user: "me".into(),
            password: password.into(),
        },
    )
}

/// Logs `me`/`pw` in to a real registry with `env`; panics unless it
/// worked. Returns the output and the registry's host.
pub fn login(env: &[(&str, &Path)]) -> (Output, String) {
    let reg = registry("pw");
    let out = kiln(
        env,
        &["login", &reg.host, "-u", "me", "--password-stdin"],
        "pw\n",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "Login Succeeded\n");
    (out, reg.host.clone())
}

#[test]
fn registry_auth_file_wins_over_docker_config_and_home() {
    let dir = tempfile::tempdir().unwrap();
    let (auth, cfg, home) = (
        dir.path().join("auth.json"),
        dir.path().join("cfg"),
        dir.path().join("home"),
    );
    login(&[
        ("REGISTRY_AUTH_FILE", &auth),
        ("DOCKER_CONFIG", &cfg),
        ("HOME", &home),
    ]);
    assert!(auth.is_file());
    assert!(!cfg.exists() && !home.exists());
}

#[test]
fn docker_config_wins_over_home() {
    let dir = tempfile::tempdir().unwrap();
    let (cfg, home) = (dir.path().join("cfg"), dir.path().join("home"));
    login(&[("DOCKER_CONFIG", &cfg), ("HOME", &home)]);
    assert!(cfg.join("config.json").is_file());
    assert!(!home.exists());
}

#[test]
fn home_is_the_fallback_and_its_docker_dir_is_created_private() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    login(&[("HOME", &home)]);
    let docker = home.join(".docker");
    assert!(docker.join("config.json").is_file());
    assert_eq!(
        fs::metadata(&docker).unwrap().permissions().mode() & 0o777,
        0o700
    );
}

#[test]
fn login_writes_base64_auth_0600_and_keeps_unrelated_keys() {
    let dir = tempfile::tempdir().unwrap();
    let auth = dir.path().join("config.json");
    let before = json!({
        "auths": {"other:5000": {"auth": "b3RoZXI6cHc=", "email": "o@x"}},
        "proxies": {"default": {"noProxy": "localhost"}},
        "currentContext": "ci",
    });
    fs::write(&auth, before.to_string()).unwrap();
    fs::set_permissions(&auth, fs::Permissions::from_mode(0o644)).unwrap();
    let (out, host) = login(&[("REGISTRY_AUTH_FILE", &auth)]);
    let mut after = before.clone();
    after["auths"][host.as_str()] = json!({"auth": "bWU6cHc="}); // me:pw
    assert_eq!(read_json(&auth), after);
    assert_eq!(
        fs::metadata(&auth).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // The atomic write leaves nothing beside the file.
    let names: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["config.json"]);
    assert!(text(&out.stderr).contains("stored unencrypted"));
}

#[test]
fn a_credential_the_registry_refuses_is_not_saved() {
    let dir = tempfile::tempdir().unwrap();
    let auth = dir.path().join("auth.json");
    let reg = registry("pw");
    let out = kiln(
        &[("REGISTRY_AUTH_FILE", &auth)],
        &["login", &reg.host, "-u", "me", "--password-stdin"],
        "wrong\n",
    );
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("logging in to {}", reg.host)),
        "{stderr}"
    );
    assert!(stderr.contains("UNAUTHORIZED"), "{stderr}");
    assert!(!stderr.contains("wrong"), "the password leaked: {stderr}");
    assert!(!auth.exists());
}

#[test]
fn the_cli_reads_the_auth_file_to_pull() {
    let dir = tempfile::tempdir().unwrap();
    let auth = dir.path().join("auth.json");
    let reg = registry("pw");
    let env = [("REGISTRY_AUTH_FILE", auth.as_path())];
    let missing = format!("{}/nothing:1", reg.host);
    // Anonymous: the registry's own refusal.
    let out = kiln(
        &env,
        &[
            "--root",
            dir.path().join("s").to_str().unwrap(),
            "pull",
            &missing,
        ],
        "",
    );
    assert!(
        text(&out.stderr).contains("UNAUTHORIZED"),
        "{}",
        text(&out.stderr)
    );
    // Logged in: past auth, to the registry's "no such manifest".
    kiln(
        &env,
        &["login", &reg.host, "-u", "me", "--password-stdin"],
        "pw\n",
    );
    let out = kiln(
        &env,
        &[
            "--root",
            dir.path().join("s").to_str().unwrap(),
            "pull",
            &missing,
        ],
        "",
    );
    let stderr = text(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("MANIFEST_UNKNOWN") || stderr.contains("NAME_UNKNOWN"),
        "{stderr}"
    );
    assert!(!stderr.contains("UNAUTHORIZED"), "{stderr}");
}

#[test]
fn password_on_the_command_line_is_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let auth = dir.path().join("auth.json");
    let reg = registry("pw");
    let out = kiln(
        &[("REGISTRY_AUTH_FILE", &auth)],
        &[
            "login",
            &format!("http://{}/v2/", reg.host),
            "-u",
            "me",
            "-p",
            "pw",
        ],
        "",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stderr)
        .contains("WARNING! Using --password via the CLI is insecure. Use --password-stdin."));
    // A URL names its host, as docker reads it.
    assert_eq!(
        read_json(&auth),
        json!({"auths": {reg.host.as_str(): {"auth": "bWU6cHc="}}})
    );
}

#[test]
fn password_stdin_drops_only_the_last_line_break() {
    let dir = tempfile::tempdir().unwrap();
    let auth = dir.path().join("auth.json");
    let env = [("REGISTRY_AUTH_FILE", auth.as_path())];
    let reg = registry(" p w ");
    let args = ["login", &reg.host, "-u", "me", "--password-stdin"];
    let out = kiln(&env, &args, " p w \r\n");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let config = DockerConfig::load(&auth).unwrap();
    assert_eq!(config.get(&reg.host).unwrap(), Some(basic("me", " p w ")));
    let empty = kiln(&env, &args, "\n");
    assert_eq!(empty.status.code(), Some(2), "{}", text(&empty.stderr));
}

#[test]
fn logout_removes_only_that_registry_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let auth = dir.path().join("auth.json");
    let others = json!({"other:5000": {"auth": "b3RoZXI6cHc="}});
    fs::write(
        &auth,
        json!({"auths": {
            "other:5000": others["other:5000"],
            "http://localhost:5000/v2/": {"auth": "bWU6cHc="},
        }, "credsStore": ""})
        .to_string(),
    )
    .unwrap();
    let env = [("REGISTRY_AUTH_FILE", auth.as_path())];
    let out = kiln(&env, &["logout", "localhost:5000"], "");
    assert!(out.status.success());
    assert_eq!(
        text(&out.stdout),
        "Removing login credentials for localhost:5000\n"
    );
    assert_eq!(read_json(&auth), json!({"auths": others, "credsStore": ""}));
    let again = kiln(&env, &["logout", "localhost:5000"], "");
    assert_eq!(again.status.code(), Some(0));
    assert_eq!(text(&again.stdout), "Not logged in to localhost:5000\n");
}

#[test]
fn logout_defaults_to_docker_hub_under_any_spelling() {
    let dir = tempfile::tempdir().unwrap();
    let auth = dir.path().join("auth.json");
    fs::write(
        &auth,
        r#"{"auths": {"index.docker.io": {"auth": "bWU6cHc="}}}"#,
    )
    .unwrap();
    let out = kiln(&[("REGISTRY_AUTH_FILE", &auth)], &["logout"], "");
    assert_eq!(
        text(&out.stdout),
        "Removing login credentials for https://index.docker.io/v1/\n"
    );
    assert_eq!(read_json(&auth), json!({"auths": {}}));
}

#[test]
fn a_malformed_file_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let auth = dir.path().join("auth.json");
    fs::write(&auth, "{\"auths\": ").unwrap();
    let out = kiln(&[("REGISTRY_AUTH_FILE", &auth)], &["logout", "h:1"], "");
    assert_eq!(out.status.code(), Some(3));
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with(&format!(
            "error: parsing auth file {}\ncaused by: ",
            auth.display()
        )),
        "{stderr}"
    );
    assert_eq!(fs::read_to_string(&auth).unwrap(), "{\"auths\": ");
}
