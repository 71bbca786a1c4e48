//! `kiln build`'s sandbox flags for every RUN: `--add-host`, `--ulimit`,
//! `--shm-size` and `--network`, seen from inside a real sandbox.

use super::Env;

/// Builds `dockerfile` (a fresh context dir each time, same content) with
/// `flags`; returns (success, exit code, the log).
fn build(env: &Env, dockerfile: &str, flags: &[&str]) -> (bool, i32, String) {
    let ctx = env.context("ctx", &[("Dockerfile", dockerfile)]);
    let mut args = vec!["build", "--progress", "plain"];
    args.extend_from_slice(flags);
    args.push(ctx.to_str().unwrap());
    let out = env.kiln(&args, None);
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.success(), out.status.code().unwrap_or(-1), log)
}

/// [`build`] that must succeed; returns the log.
fn build_ok(env: &Env, dockerfile: &str, flags: &[&str]) -> String {
    let (ok, _, log) = build(env, dockerfile, flags);
    assert!(ok, "{log}");
    log
}

/// A one-RUN Dockerfile, uncached, with `flags`.
fn build_run(env: &Env, run: &str, flags: &[&str]) -> (bool, i32, String) {
    let mut all = vec!["--no-cache"];
    all.extend_from_slice(flags);
    build(env, &format!("FROM busybox\nRUN {run}\n"), &all)
}

/// Each `flag value` fails with exit 2 and a message containing its text.
fn usage_errors(env: &Env, flag: &str, cases: &[(&str, &str)]) {
    for (value, says) in cases {
        let (ok, code, log) = build_run(env, "true", &[flag, value]);
        assert!(!ok && code == 2, "{flag} {value}: {code}\n{log}");
        assert!(log.contains(says), "{flag} {value}: {log}");
    }
}

fn has_line(log: &str, end: &str) -> bool {
    log.lines().any(|l| l.trim_end().ends_with(end))
}

#[test]
fn add_host_lines_reach_the_run_hosts_file() {
    let env = Env::new();
    env.busybox();
    let (ok, _, log) = build_run(
        &env,
        "cat /etc/hosts",
        &[
            "--add-host",
            "db.example:10.1.2.3",
            "--add-host",
            "v6.example=fd00::7",
        ],
    );
    assert!(ok, "{log}");
    assert!(has_line(&log, "10.1.2.3\tdb.example"), "{log}");
    assert!(has_line(&log, "fd00::7\tv6.example"), "{log}");
    // After BuildKit's own two lines, not the host's file (conformance case
    // run-etc-hosts pins the whole file without --add-host).
    assert!(
        has_line(&log, "127.0.0.1\tlocalhost buildkitsandbox"),
        "{log}"
    );
    assert!(
        has_line(&log, "::1\tlocalhost ip6-localhost ip6-loopback"),
        "{log}"
    );
}

#[test]
fn add_host_bad_values_are_usage_errors() {
    let env = Env::new();
    env.busybox();
    usage_errors(
        &env,
        "--add-host",
        &[
            ("db.example:host-gateway", "host-gateway"),
            ("db.example:not-an-ip", "expected HOST:IP"),
            ("noip", "expected HOST:IP"),
            (":10.0.0.1", "expected HOST:IP"),
        ],
    );
}

#[test]
fn ulimit_sets_the_run_limits() {
    let env = Env::new();
    env.busybox();
    let (ok, _, log) = build_run(
        &env,
        "echo nofile=$(ulimit -n) hard=$(ulimit -Hn) core=$(ulimit -c)",
        &["--ulimit", "nofile=321:654", "--ulimit", "core=0"],
    );
    assert!(ok, "{log}");
    assert!(has_line(&log, "nofile=321 hard=654 core=0"), "{log}");
}

#[test]
fn ulimit_bad_values_are_usage_errors() {
    let env = Env::new();
    env.busybox();
    usage_errors(
        &env,
        "--ulimit",
        &[
            ("bogus=1", "unknown ulimit"),
            ("nofile", "expected NAME=SOFT"),
            ("nofile=abc", "invalid limit"),
            ("nofile=10:5", "soft limit must be"),
            ("nofile=-2", "invalid limit"),
        ],
    );
}

#[test]
fn shm_size_sizes_dev_shm() {
    let env = Env::new();
    env.busybox();
    // Default: 64 MiB, as in Docker.
    let probe =
        "grep ' /dev/shm ' /proc/mounts | tr ' ,' '\\n\\n' | grep '^size=' | sed 's/^/shm-/'";
    let (ok, _, log) = build_run(&env, probe, &[]);
    assert!(ok, "{log}");
    assert!(has_line(&log, "shm-size=65536k"), "{log}");
    let (ok, _, log) = build_run(&env, probe, &["--shm-size", "128m"]);
    assert!(ok, "{log}");
    assert!(has_line(&log, "shm-size=131072k"), "{log}");
    let (ok, code, log) = build_run(&env, "true", &["--shm-size", "lots"]);
    assert!(!ok && code == 2, "{log}");
    assert!(log.contains("--shm-size"), "{log}");
}

/// The RUN's network interfaces on one line, `nets: lo eth0 …`.
const NETS: &str = "echo nets: $(ls /sys/class/net)";

#[test]
fn network_none_is_the_default_for_every_run_and_in_the_step_key() {
    let env = Env::new();
    env.busybox();
    let host_nets = std::fs::read_dir("/sys/class/net").unwrap().count();
    assert!(host_nets > 1, "the test host needs an interface besides lo");
    let df = format!("FROM busybox\nRUN {NETS}\nRUN --network=default {NETS} again\n");
    let build = |flags: &[&str]| build_ok(&env, &df, flags);
    // The host network first, so a cached step would show its interfaces.
    let log = build(&[]);
    assert!(!has_line(&log, "nets: lo"), "{log}");
    let log = build(&["--network", "none"]);
    assert!(
        has_line(&log, "nets: lo"),
        "not rerun in a new namespace:\n{log}"
    );
    assert!(has_line(&log, "nets: lo again"), "{log}");
    // A RUN's own --network wins over the build's.
    let (ok, _, log) = build_run(
        &env,
        &format!("--network=host {NETS}"),
        &["--network", "none", "--allow", "network.host"],
    );
    assert!(ok, "{log}");
    assert!(!has_line(&log, "nets: lo"), "{log}");
}

#[test]
fn network_host_needs_the_entitlement_and_bad_modes_are_refused() {
    let env = Env::new();
    env.busybox();
    let (ok, code, log) = build_run(&env, NETS, &["--network", "host"]);
    assert!(!ok && code == 2, "{code}\n{log}");
    assert!(log.contains("network.host is not allowed"), "{log}");
    let (ok, _, log) = build_run(
        &env,
        NETS,
        &["--network", "host", "--allow", "network.host"],
    );
    assert!(ok, "{log}");
    assert!(!has_line(&log, "nets: lo"), "{log}");
    let (ok, code, log) = build_run(&env, NETS, &["--network", "bridge"]);
    assert!(!ok && code == 2, "{code}\n{log}");
    assert!(log.contains("expected default, none or host"), "{log}");
}

#[test]
fn hosts_ulimits_and_shm_size_are_not_in_the_step_key() {
    let env = Env::new();
    env.busybox();
    let build = |flags: &[&str]| build_ok(&env, "FROM busybox\nRUN echo ran-$((6*7))\n", flags);
    assert!(has_line(&build(&[]), " ran-42"));
    // COMPAT(buildkit): as the brief reads its ExecOp cache map.
    let log = build(&[
        "--add-host",
        "db:10.0.0.9",
        "--ulimit",
        "nofile=100",
        "--shm-size",
        "1g",
    ]);
    assert!(!has_line(&log, " ran-42"), "rerun:\n{log}");
    assert!(log.contains("CACHED"), "{log}");
}
