//! `kiln run -d` and the stored container's life: the monitor, the json-file log,
//! `ps`, `logs`, `stop`, `start`, `kill`, `rm`, and what a monitor killed with
//! SIGKILL leaves (its container dies with it and reads as exited). Every wait polls
//! the container's state with a deadline; none sleeps to synchronise.

use std::fs;
use std::time::{Duration, Instant};

use crate::build::Env;

/// `kiln ARGS`: (status, stdout, stderr).
fn kiln(env: &Env, args: &[&str]) -> (i32, String, String) {
    let out = env.kiln(args, None);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ok(env: &Env, args: &[&str]) -> String {
    let (code, out, err) = kiln(env, args);
    assert_eq!(code, 0, "kiln {args:?}: {err}");
    out
}

/// Polls `f` every 20 ms until it holds; fails after 30 s.
fn until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn state(env: &Env, id: &str) -> serde_json::Value {
    let p = env.root().join("containers").join(id).join("state.json");
    serde_json::from_slice(&fs::read(p).unwrap()).unwrap()
}

fn alive(pid: i64) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z "))
}

const SLEEPER: &str = "echo hi; echo err >&2; exec busybox sleep 1000";

#[test]
fn a_detached_container_logs_lists_stops_starts_and_is_removed() {
    let env = Env::new();
    env.busybox();
    let out = ok(
        &env,
        &["run", "-d", "--name", "web", "busybox", "sh", "-c", SLEEPER],
    );
    let id = out.trim().to_string();
    assert_eq!(id.len(), 64, "{out}");
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
    let short = &id[..12];
    // Names are unique (docker's words).
    let (code, _, err) = kiln(&env, &["run", "-d", "--name", "web", "busybox", "echo"]);
    assert_eq!(code, 125);
    assert!(err.contains("\"/web\" is already in use"), "{err}");
    // The log, as docker's json-file driver writes it, and as `logs` prints it.
    until("the log", || ok(&env, &["logs", "web"]).contains("hi"));
    until("stderr in the log", || {
        kiln(&env, &["logs", "web"]).2.contains("err")
    });
    let (_, out, err) = kiln(&env, &["logs", "web"]);
    assert_eq!((out.as_str(), err.as_str()), ("hi\n", "err\n"));
    let log = env.root().join(format!("containers/{id}/{id}-json.log"));
    let text = fs::read_to_string(&log).unwrap();
    let first: serde_json::Value =
        serde_json::from_str(text.lines().find(|l| l.contains("stdout")).unwrap()).unwrap();
    assert_eq!(first["log"], "hi\n");
    assert_eq!(first["stream"], "stdout");
    assert!(first["time"].as_str().unwrap().ends_with('Z'), "{first}");
    let (_, out, err) = kiln(&env, &["logs", "-t", "--tail", "1", short]);
    let stamped = out + &err;
    assert!(
        stamped.ends_with(" err\n") || stamped.ends_with(" hi\n"),
        "{stamped}"
    );
    assert!(
        stamped.starts_with("20") && stamped.lines().count() == 1,
        "{stamped}"
    );
    // ps, by id prefix and name.
    let ps = ok(&env, &["ps"]);
    assert!(ps.starts_with("CONTAINER ID"), "{ps}");
    assert!(
        ps.contains(short) && ps.contains("web") && ps.contains("Up "),
        "{ps}"
    );
    assert_eq!(ok(&env, &["ps", "-q"]), format!("{short}\n"));
    let formatted = ok(&env, &["ps", "--format", "{{.ID}} {{.Names}} {{.State}}"]);
    assert_eq!(formatted, format!("{short} web running\n"));
    let (code, _, err) = kiln(&env, &["ps", "--format", "{{json .}}"]);
    assert_eq!(code, 2, "{err}");
    // exec: in the container's namespaces (its root, hostname, PID 1) with its
    // capability bounding set, never the caller's full one.
    let ls = ok(&env, &["exec", "web", "ls", "/"]);
    assert!(ls.contains("bin") && ls.contains("etc"), "{ls}");
    assert_eq!(
        ok(&env, &["exec", "web", "cat", "/etc/hostname"]),
        format!("{short}\n")
    );
    let init_cmd = ok(&env, &["exec", short, "cat", "/proc/1/cmdline"]);
    assert!(init_cmd.contains("sleep"), "{init_cmd:?}");
    let cap_bnd = |status: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix("CapBnd:"))
            .unwrap()
            .trim()
            .to_string()
    };
    let mine = cap_bnd(&ok(&env, &["exec", "web", "cat", "/proc/self/status"]));
    let its = cap_bnd(&ok(&env, &["exec", "web", "cat", "/proc/1/status"]));
    let host = cap_bnd(&fs::read_to_string("/proc/self/status").unwrap());
    assert_eq!(mine, its);
    assert_ne!(mine, host, "exec kept the caller's capabilities");
    assert_eq!(kiln(&env, &["exec", "web", "sh", "-c", "exit 3"]).0, 3);
    let (code, _, err) = kiln(&env, &["exec", "web", "no-such-command"]);
    assert_eq!(code, 127, "{err}");
    // inspect: a container first, with docker's field names; --type image skips it.
    let inspected: serde_json::Value =
        serde_json::from_str(&ok(&env, &["inspect", "web"])).unwrap();
    let c = &inspected[0];
    assert_eq!(c["Id"], id.as_str());
    assert_eq!(c["Name"], "/web");
    assert_eq!(c["State"]["Running"], true);
    assert_eq!(c["State"]["Pid"], state(&env, &id)["init"]["pid"]);
    assert_eq!(c["Path"], "sh");
    let image: serde_json::Value =
        serde_json::from_str(&ok(&env, &["inspect", "--type", "image", "busybox"])).unwrap();
    assert!(image[0]["Manifest"].is_object(), "{image}");
    // A running container is not removed without -f.
    let (code, _, err) = kiln(&env, &["rm", "web"]);
    assert_ne!(code, 0);
    assert!(err.contains("container is running"), "{err}");
    // stop: SIGTERM, which sleep as PID 1 ignores, then SIGKILL after 1 s.
    let init = state(&env, &id)["init"]["pid"].as_i64().unwrap();
    assert!(alive(init));
    assert_eq!(ok(&env, &["stop", "-t", "1", "web"]), "web\n");
    assert!(!alive(init), "the container's init outlived stop");
    assert_eq!(ok(&env, &["ps", "-q"]), "");
    let all = ok(&env, &["ps", "-a", "--format", "{{.Names}} {{.Status}}"]);
    assert!(all.starts_with("web Exited (137) "), "{all}");
    // start: the same container again, its log appended.
    assert_eq!(ok(&env, &["start", "web"]), "web\n");
    until("the second run's output", || {
        ok(&env, &["logs", "web"]) == "hi\nhi\n"
    });
    // kill -s sends the signal to the container's init.
    assert_eq!(ok(&env, &["kill", "-s", "TERM", "web"]), "web\n");
    let pid = state(&env, &id)["init"]["pid"].as_i64().unwrap();
    assert!(
        alive(pid),
        "sleep as PID 1 has no TERM handler: it ignores it"
    );
    ok(&env, &["kill", "web"]);
    until("the killed container to exit", || {
        state(&env, &id)["status"] == "exited"
    });
    assert_eq!(state(&env, &id)["exit_code"], 128 + 9);
    let (code, _, err) = kiln(&env, &["kill", "web"]);
    assert_ne!(code, 0);
    assert!(err.contains("is not running"), "{err}");
    // rm takes the container's dir, log and upper dir.
    assert_eq!(ok(&env, &["rm", "web"]), "web\n");
    assert_eq!(ok(&env, &["ps", "-a", "-q"]), "");
    assert!(!env.root().join("containers").join(&id).exists());
    let (code, _, err) = kiln(&env, &["logs", "web"]);
    assert_ne!(code, 0);
    assert!(err.contains("No such container: web"), "{err}");
}

#[test]
fn a_monitor_killed_takes_its_container_along_and_reads_as_exited() {
    let env = Env::new();
    env.busybox();
    let id = ok(&env, &["run", "-d", "busybox", "sh", "-c", SLEEPER]);
    let id = id.trim();
    let st = state(&env, id);
    assert_eq!(st["status"], "running");
    let (monitor, init) = (
        st["monitor"]["pid"].as_i64().unwrap(),
        st["init"]["pid"].as_i64().unwrap(),
    );
    assert!(alive(monitor) && alive(init));
    let pid = nix::unistd::Pid::from_raw(monitor as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL).unwrap();
    until("the container's init to die with its monitor", || {
        !alive(init)
    });
    // The state file still says running; ps reads it as exited.
    assert_eq!(state(&env, id)["status"], "running");
    assert_eq!(ok(&env, &["ps", "-q"]), "");
    let all = ok(&env, &["ps", "-a", "--format", "{{.State}} {{.Status}}"]);
    assert!(all.starts_with("exited Exited (?)"), "{all}");
    ok(&env, &["rm", &id[..5]]);
    // A container dir a killed `run -d` left without its config is not a container.
    let half = env.root().join("containers").join("ab".repeat(32));
    fs::create_dir_all(half.join("upper")).unwrap();
    assert_eq!(ok(&env, &["ps", "-a", "-q"]), "");
    // A command that cannot start is run -d's error and status, as docker's; --rm
    // removes the container when it ends.
    let (code, _, err) = kiln(&env, &["run", "-d", "busybox", "no-such-command"]);
    assert_eq!(code, 127, "{err}");
    let rm = ok(&env, &["run", "-d", "--rm", "busybox", "echo"]);
    let rm_dir = env.root().join("containers").join(rm.trim());
    until("--rm's container to go", || !rm_dir.exists());
    // commit: the container's change (a new file, a deleted one) as one layer on the
    // image, read back with umoci.
    let maker = ok(
        &env,
        &[
            "run",
            "-d",
            "--name",
            "maker",
            "busybox",
            "sh",
            "-c",
            "echo made > /made && rm /etc/group",
        ],
    );
    until("the maker to exit", || {
        state(&env, maker.trim())["status"] == "exited"
    });
    let digest = ok(&env, &["commit", "maker", "made"]);
    assert!(digest.starts_with("sha256:"), "{digest}");
    let layout = env.path("made-layout");
    ok(
        &env,
        &[
            "save",
            "--format",
            "oci-dir",
            "-o",
            layout.to_str().unwrap(),
            "made",
        ],
    );
    kiln::oci::validate_layout(&layout).unwrap();
    let bundle = env.path("made-bundle");
    crate::common::run(std::process::Command::new("umoci").args([
        "unpack",
        "--image",
        &format!("{}:latest", layout.display()),
        bundle.to_str().unwrap(),
    ]));
    let rootfs = bundle.join("rootfs");
    assert_eq!(fs::read_to_string(rootfs.join("made")).unwrap(), "made\n");
    assert!(!rootfs.join("etc/group").exists(), "the whiteout was lost");
    assert!(rootfs.join("etc/passwd").exists());
    let (code, _, err) = kiln(&env, &["run", "-d", "--restart", "always", "busybox"]);
    assert_eq!(code, 125);
    assert!(err.contains("no daemon"), "{err}");
}
