//! The store lock: `kiln prune` and `kiln fsck --repair` wait (and say so)
//! for a running build or load instead of removing the blobs and temp files
//! it has written but not yet named; a killed build leaves no lock behind.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use crate::build::Env;
use crate::fixtures::write_busybox_archive;
use crate::repro::env_with_base;

const PATIENCE: Duration = Duration::from_secs(15);

/// A running kiln whose stderr lines arrive on `lines` as they are printed.
struct Running {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl Running {
    fn spawn(root: &Path, args: &[&str]) -> Running {
        let mut child = Command::new(env!("CARGO_BIN_EXE_kiln"))
            .arg("--root")
            .arg(root)
            .args(args)
            .env_remove("SOURCE_DATE_EPOCH")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Running {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for a stderr line containing `text`; panics after [`PATIENCE`].
    fn expect_line(&mut self, text: &str) {
        let deadline = Instant::now() + PATIENCE;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let found = line.contains(text);
                    self.seen.push(line);
                    if found {
                        return;
                    }
                }
                Err(_) => break,
            }
        }
        panic!("no stderr line with {text:?}; saw {:#?}", self.seen);
    }

    fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Waits for exit; returns success, stdout and every stderr line.
    fn finish(mut self) -> (bool, String, String) {
        let status = self.child.wait().unwrap();
        let mut stdout = String::new();
        std::io::Read::read_to_string(&mut self.child.stdout.take().unwrap(), &mut stdout).unwrap();
        self.seen.extend(self.lines.iter());
        (status.success(), stdout, self.seen.join("\n"))
    }
}

fn blob_count(root: &Path) -> usize {
    fs::read_dir(root.join("blobs/sha256")).unwrap().count()
}

/// A build whose first RUN's layer is stored, unnamed, while its second sleeps.
fn slow_build(env: &Env) -> Running {
    let ctx = env.context(
        "ctx",
        &[(
            "Dockerfile",
            "FROM busybox\nRUN echo one > /one\nRUN sleep 2 && echo two > /two\n",
        )],
    );
    let args = ["build", "--progress", "plain", "-t", "slow"];
    let mut build = Running::spawn(&env.root(), &[&args[..], &[ctx.to_str().unwrap()]].concat());
    build.expect_line("RUN sleep 2");
    build
}

#[test]
fn prune_waits_for_a_running_build_which_then_succeeds() {
    let (env, _) = env_with_base();
    let before = blob_count(&env.root());
    let mut build = slow_build(&env);
    // Give the first RUN's layer time to land as a blob only the build knows.
    let deadline = Instant::now() + PATIENCE;
    while blob_count(&env.root()) == before && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        blob_count(&env.root()) > before,
        "no unnamed layer blob to protect"
    );

    let mut prune = Running::spawn(&env.root(), &["prune"]);
    prune.expect_line("waiting for 1 build (or load, pull, save) using");
    std::thread::sleep(Duration::from_millis(300));
    assert!(prune.running(), "prune finished beside a running build");
    assert!(build.running(), "the build ended before the check");

    let (ok, _, err) = build.finish();
    assert!(ok, "build failed beside a waiting prune:\n{err}");
    let (ok, out, err) = prune.finish();
    assert!(ok, "prune failed: {out}\n{err}");
    let (_, manifest, config) = env.image("slow");
    assert_eq!(manifest.layers.len(), 3);
    assert_eq!(config.history.len(), 3);
}

#[test]
fn fsck_repair_waits_for_a_running_load_which_then_succeeds() {
    let env = Env::new();
    let root = env.root();
    let store = env.store();
    let archive = env.path("busybox.tar");
    write_busybox_archive(&archive);
    let fifo = env.path("feed");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();

    // The load makes its unpack dir in tmp/, then blocks opening the FIFO.
    let load = Running::spawn(&root, &["load", "-i", fifo.to_str().unwrap()]);
    let deadline = Instant::now() + PATIENCE;
    let unpack_dir = loop {
        let found = fs::read_dir(store.tmp_dir())
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("load-")
            });
        if let Some(p) = found {
            break p;
        }
        assert!(Instant::now() < deadline, "load made no unpack dir");
        std::thread::sleep(Duration::from_millis(20));
    };

    let mut fsck = Running::spawn(&root, &["fsck", "--repair"]);
    fsck.expect_line("waiting for 1 build (or load, pull, save) using");
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        fsck.running(),
        "fsck --repair finished beside a running load"
    );
    assert!(unpack_dir.is_dir(), "the load's temp dir was removed");

    fs::File::create(&fifo)
        .unwrap()
        .write_all(&fs::read(&archive).unwrap())
        .unwrap();
    let (ok, out, err) = load.finish();
    assert!(ok, "load failed beside a waiting fsck --repair:\n{err}");
    assert!(out.contains("Loaded image: busybox:latest"), "{out}");
    let (ok, out, err) = fsck.finish();
    assert!(ok, "fsck --repair: {out}\n{err}");
    assert!(out.ends_with(": no problems\n"), "{out}");
    env.image("busybox");
}

#[test]
fn a_killed_build_leaves_no_lock_behind() {
    let (env, _) = env_with_base();
    let mut build = slow_build(&env);
    build.child.kill().unwrap();
    build.child.wait().unwrap();
    // Not even the killed build's RUN process, still sleeping, holds it.
    let start = Instant::now();
    let (ok, out, err) = Running::spawn(&env.root(), &["prune"]).finish();
    assert!(ok, "prune after a killed build: {out}\n{err}");
    assert!(
        !err.contains("waiting"),
        "prune waited for a dead build: {err}"
    );
    assert!(start.elapsed() < Duration::from_millis(1500));
    env.image("busybox");
}
