//! Secrets never reach a persistent disk: kill -9 the build (kiln, its
//! sandbox helper and the command) while a RUN holds a secret, as a file and
//! as an env var, and no byte of it is anywhere under the store or /tmp.

use std::fs;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

use super::Env;

/// The regular files under `dir` (symlinks not followed) that hold `needle`
/// (every file for an empty one), pushed onto `found`.
fn holds(dir: &Path, needle: &[u8], found: &mut Vec<String>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let Ok(meta) = fs::symlink_metadata(e.path()) else {
            continue;
        };
        if meta.is_dir() {
            holds(&e.path(), needle, found);
        } else if meta.is_file() && meta.len() < (256 << 20) {
            let mut bytes = Vec::new();
            if fs::File::open(e.path())
                .and_then(|mut f| f.read_to_end(&mut bytes))
                .is_ok()
                && (needle.is_empty() || bytes.windows(needle.len()).any(|w| w == needle))
            {
                found.push(e.path().display().to_string());
            }
        }
    }
}

/// Kills the build's process group when the test ends, however it ends.
struct KillGroup(i32);

impl KillGroup {
    fn kill(&self) -> i32 {
        // SAFETY: kill(2) takes no pointers.
        unsafe { libc::kill(-self.0, libc::SIGKILL) }
    }
}

impl Drop for KillGroup {
    fn drop(&mut self) {
        self.kill();
    }
}

#[test]
fn a_killed_build_leaves_no_byte_of_its_secret_on_disk() {
    let env = Env::new();
    env.busybox();
    // Made here, never written to a file: the build gets it through env=.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let secret = format!("kiln-secret-{nanos:x}-{}", std::process::id());
    let ctx = env.context(
        "ctx",
        &[(
            "Dockerfile",
            "FROM busybox\n\
             RUN --mount=type=secret,id=tok,env=TOK --mount=type=secret,id=tok,target=/s \
                 --mount=type=cache,target=/c \
                 test \"$(cat /s)\" = \"$TOK\" && stat -c %a /s > /c/mode && touch /c/running \
                 && exec /bin/busybox sleep 600\n",
        )],
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .arg("--root")
        .arg(env.root())
        .args([
            "build",
            "--progress",
            "plain",
            "--secret",
            "id=tok,env=KILN_TEST_TOK",
        ])
        .arg(&ctx)
        .env("KILN_TEST_TOK", &secret)
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let group = KillGroup(child.id() as i32);
    // Wait for the step to run: it marks the cache mount (in the store).
    let running = loop {
        let mut marks = Vec::new();
        holds(&env.root().join("cache"), b"", &mut marks);
        if let Some(m) = marks.iter().find(|m| m.ends_with("/running")) {
            break m.clone();
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the build ended before the step ran: {status}");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let mode = fs::read_to_string(Path::new(&running).with_file_name("mode")).unwrap();
    assert_eq!(mode.trim(), "400", "the secret file's mode");
    // kill -9 the whole group: kiln and its helper (the sandbox dies with it).
    assert_eq!(group.kill(), 0);
    child.wait().unwrap();
    let mut found = Vec::new();
    holds(&env.root(), secret.as_bytes(), &mut found);
    holds(Path::new("/tmp"), secret.as_bytes(), &mut found);
    assert!(found.is_empty(), "the secret is on disk in {found:?}");
    // The store needs no repair.
    for cmd in [&["prune"][..], &["fsck"][..]] {
        let out = env.kiln(cmd, None);
        assert!(
            out.status.success(),
            "kiln {cmd:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
