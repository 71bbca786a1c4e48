//! Registry credentials: which auth file the environment names, `kiln login`
//! and `kiln logout` on it, and a real credential helper (a shell script
//! speaking docker's protocol over stdin/stdout, keeping secrets in a dir).
//! Every kiln run gets a cleared environment, so no test touches the
//! caller's `~/.docker` or another test's variables.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use kiln::oci::registry::credentials::{CredentialsError, Stored};
use kiln::oci::registry::{Credential, CredentialSource, DockerConfig};
use serde_json::{json, Value};

/// `kiln ARGS` with only `env` (and a PATH to `/bin/sh`), `stdin` piped in.
fn kiln(env: &[(&str, &Path)], args: &[&str], stdin: &str) -> Output {
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

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
}

fn basic(username: &str, password: &str) -> Credential {
    Credential::Basic {
        username: username.into(),
        password: password.into(),
    }
}

/// Logs `me`/`pw` in to `localhost:5000` with `env`; panics unless it worked.
fn login(env: &[(&str, &Path)]) -> Output {
    let out = kiln(
        env,
        &["login", "localhost:5000", "-u", "me", "--password-stdin"],
        "pw\n",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    out
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
    let out = login(&[("REGISTRY_AUTH_FILE", &auth)]);
    let mut after = before.clone();
    after["auths"]["localhost:5000"] = json!({"auth": "bWU6cHc="}); // me:pw
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
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("WARNING: credentials saved without checking them against the registry: "),
        "{stderr}"
    );
    assert!(!text(&out.stdout).contains("Login Succeeded"));
}

#[test]
fn password_on_the_command_line_is_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let auth = dir.path().join("auth.json");
    let out = kiln(
        &[("REGISTRY_AUTH_FILE", &auth)],
        &["login", "-u", "me", "-p", "pw"],
        "",
    );
    assert!(out.status.success());
    assert!(text(&out.stderr)
        .contains("WARNING! Using --password via the CLI is insecure. Use --password-stdin."));
    assert_eq!(
        read_json(&auth),
        json!({"auths": {"https://index.docker.io/v1/": {"auth": "bWU6cHc="}}})
    );
}

#[test]
fn password_stdin_drops_only_the_last_line_break() {
    let dir = tempfile::tempdir().unwrap();
    let auth = dir.path().join("auth.json");
    let env = [("REGISTRY_AUTH_FILE", auth.as_path())];
    let args = ["login", "h:1", "-u", "me", "--password-stdin"];
    assert!(kiln(&env, &args, " p w \r\n").status.success());
    let config = DockerConfig::load(&auth).unwrap();
    assert_eq!(config.get("h:1").unwrap(), Some(basic("me", " p w ")));
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

/// A credential helper `docker-credential-kilntest` in `dir`, keeping each
/// server's JSON in `dir/store/<hex of the server URL>` and logging each
/// call's action and exact stdin to `dir/log`. `broken.example` fails the way
/// a locked keychain does.
fn install_helper(dir: &Path) -> PathBuf {
    let store = dir.join("store");
    fs::create_dir_all(&store).unwrap();
    let script = format!(
        r#"#!/bin/sh
set -eu
store='{store}'
input=$(cat; echo x)
input=${{input%x}}
printf '%s:%s|\n' "$1" "$input" >> '{log}'
case "$1" in
  get|erase) server=$input ;;
  store) server=$(printf '%s' "$input" | sed -n 's/.*"ServerURL":"\([^"]*\)".*/\1/p') ;;
  *) echo "unknown action $1"; exit 1 ;;
esac
if [ "$server" = broken.example ]; then
  echo "keychain is locked"; echo "unlock it first" >&2; exit 1
fi
key=$(printf '%s' "$server" | od -An -tx1 | tr -d ' \n')
case "$1" in
  get) [ -f "$store/$key" ] || {{ echo "credentials not found in native keychain"; exit 1; }}
       cat "$store/$key" ;;
  store) printf '%s' "$input" > "$store/$key" ;;
  erase) [ -f "$store/$key" ] || {{ echo "credentials not found in native keychain"; exit 1; }}
       rm "$store/$key" ;;
esac
"#,
        store = store.display(),
        log = dir.join("log").display(),
    );
    let path = dir.join("docker-credential-kilntest");
    fs::write(&path, script).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    // Another test thread's fork may briefly hold the file open for writing
    // (ETXTBSY); once one exec works, none can fail that way again.
    for attempt in 0.. {
        match Command::new(&path)
            .arg("probe")
            .stdin(Stdio::null())
            .output()
        {
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && attempt < 100 => {
                std::thread::sleep(std::time::Duration::from_millis(10))
            }
            probed => {
                probed.unwrap();
                break;
            }
        }
    }
    fs::write(dir.join("log"), "").unwrap();
    store
}

fn helper_log(dir: &Path) -> String {
    fs::read_to_string(dir.join("log")).unwrap()
}

#[test]
fn a_credential_helper_round_trips_over_dockers_protocol() {
    let dir = tempfile::tempdir().unwrap();
    let store = install_helper(dir.path());
    let auth = dir.path().join("auth.json");
    fs::write(
        &auth,
        r#"{"credHelpers": {"localhost:5000": "kilntest"}, "x": 1}"#,
    )
    .unwrap();
    let load = || {
        DockerConfig::load(&auth)
            .unwrap()
            .with_helper_path(dir.path())
    };
    let mut config = load();
    assert_eq!(config.get("localhost:5000").unwrap(), None);
    let stored = config
        .store("localhost:5000", &basic("me", "s3cret"))
        .unwrap();
    assert_eq!(stored, Stored::Helper("docker-credential-kilntest".into()));
    // The secret went to the helper; the file only marks the login, as docker's does.
    assert_eq!(
        read_json(&auth),
        json!({"auths": {"localhost:5000": {}}, "credHelpers": {"localhost:5000": "kilntest"}, "x": 1})
    );
    assert_eq!(fs::read_dir(&store).unwrap().count(), 1);
    let source: &dyn CredentialSource = &load();
    assert_eq!(
        source.credential("localhost:5000").unwrap(),
        Some(basic("me", "s3cret"))
    );
    assert!(config.erase("localhost:5000").unwrap());
    assert_eq!(load().get("localhost:5000").unwrap(), None);
    assert_eq!(fs::read_dir(&store).unwrap().count(), 0);
    // The exact bytes: no newline after a server URL, a JSON line for store.
    assert_eq!(
        helper_log(dir.path()),
        "get:localhost:5000|\n\
         store:{\"ServerURL\":\"localhost:5000\",\"Username\":\"me\",\"Secret\":\"s3cret\"}\n|\n\
         get:localhost:5000|\n\
         get:localhost:5000|\n\
         erase:localhost:5000|\n\
         get:localhost:5000|\n"
    );
}

#[test]
fn a_helper_keeps_identity_tokens_as_token_user() {
    let dir = tempfile::tempdir().unwrap();
    let store = install_helper(dir.path());
    let auth = dir.path().join("auth.json");
    fs::write(&auth, r#"{"credsStore": "kilntest"}"#).unwrap();
    let mut config = DockerConfig::load(&auth)
        .unwrap()
        .with_helper_path(dir.path());
    let token = Credential::IdentityToken("refresh-me".into());
    config.store("docker.io", &token).unwrap();
    let kept = fs::read_dir(&store)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    assert_eq!(
        read_json(&kept),
        json!({"ServerURL": "https://index.docker.io/v1/", "Username": "<token>", "Secret": "refresh-me"})
    );
    assert_eq!(config.get("registry-1.docker.io").unwrap(), Some(token));
}

#[test]
fn a_failing_helper_is_an_error_naming_it_and_its_output() {
    let dir = tempfile::tempdir().unwrap();
    install_helper(dir.path());
    let auth = dir.path().join("auth.json");
    fs::write(&auth, r#"{"credsStore": "kilntest"}"#).unwrap();
    let config = DockerConfig::load(&auth)
        .unwrap()
        .with_helper_path(dir.path());
    let err = config.get("broken.example").unwrap_err();
    assert!(
        matches!(err, CredentialsError::HelperFailed { .. }),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "docker-credential-kilntest get failed (exit 1): keychain is locked; unlock it first"
    );
}

#[test]
fn login_and_logout_use_the_helper_on_path() {
    let dir = tempfile::tempdir().unwrap();
    let store = install_helper(dir.path());
    let auth = dir.path().join("auth.json");
    fs::write(&auth, r#"{"credsStore": "kilntest"}"#).unwrap();
    let path = format!("{}:/usr/bin:/bin", dir.path().display());
    let env = [
        ("REGISTRY_AUTH_FILE", auth.as_path()),
        ("PATH", Path::new(&path)),
    ];
    let out = login(&env);
    assert!(!text(&out.stderr).contains("stored unencrypted"));
    assert!(!fs::read_to_string(&auth).unwrap().contains("bWU6cHc="));
    assert_eq!(fs::read_dir(&store).unwrap().count(), 1);
    let out = kiln(&env, &["logout", "localhost:5000"], "");
    assert_eq!(
        text(&out.stdout),
        "Removing login credentials for localhost:5000\n"
    );
    assert_eq!(fs::read_dir(&store).unwrap().count(), 0);
    assert_eq!(
        read_json(&auth),
        json!({"auths": {}, "credsStore": "kilntest"})
    );
}
