//! A real credential helper: a shell script speaking docker's protocol over
//! stdin/stdout and keeping secrets in a directory, driven through the
//! library and through `kiln login` / `kiln logout` with it on `$PATH`.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use kiln::oci::registry::credentials::{CredentialsError, Stored};
use kiln::oci::registry::{Credential, CredentialSource, DockerConfig};
use serde_json::json;

use super::{basic, kiln, login, read_json, text};

/// A credential helper `docker-credential-kilntest` in `dir`, keeping each
/// server's JSON in `dir/store/<hex of the server URL>` and logging each
/// call's action and exact stdin to `dir/log`. `broken.example` fails the way
/// a locked keychain does; `silent.example` fails without a word.
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
[ "$server" != silent.example ] || exit 3
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
    let mut config = config;
    let err = config.erase("silent.example").unwrap_err();
    assert_eq!(
        err.to_string(),
        "docker-credential-kilntest get failed (exit 3): no output"
    );
    let stored = config.store("silent.example", &basic("me", "pw"));
    assert_eq!(
        stored.unwrap_err().to_string(),
        "docker-credential-kilntest store failed (exit 3): no output"
    );
    assert!(!auth_has_auths(&auth), "a failed store touches no file");
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
    let (out, host) = login(&env);
    assert!(!text(&out.stderr).contains("stored unencrypted"));
    assert!(!fs::read_to_string(&auth).unwrap().contains("bWU6cHc="));
    assert_eq!(fs::read_dir(&store).unwrap().count(), 1);
    let out = kiln(&env, &["logout", &host], "");
    assert_eq!(
        text(&out.stdout),
        format!("Removing login credentials for {host}\n")
    );
    assert_eq!(fs::read_dir(&store).unwrap().count(), 0);
    assert_eq!(
        read_json(&auth),
        json!({"auths": {}, "credsStore": "kilntest"})
    );
}

fn auth_has_auths(path: &Path) -> bool {
    read_json(path).get("auths").is_some()
}
