//! `kiln build`'s sandbox flags for every RUN: `--add-host`, `--ulimit`,
//! `--shm-size` and `--network` (and the /etc/resolv.conf each network gets),
//! seen from inside a real sandbox.

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

/// `kiln build --progress plain FLAGS CTX` in a private mount namespace whose
/// /etc/resolv.conf is `host_resolv` (the machine's own file is left alone);
/// returns (success, the log).
fn build_with_host_resolv(
    env: &Env,
    host_resolv: &str,
    df: &str,
    flags: &[&str],
) -> (bool, String) {
    let ctx = env.context("ctx", &[("Dockerfile", df)]);
    let ctx = ctx.to_str().unwrap();
    let mut args = vec!["build", "--progress", "plain", "--no-cache"];
    args.extend_from_slice(flags);
    args.push(ctx);
    let out = env.kiln_with_host_resolv(host_resolv, &args);
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.success(), log)
}

/// The lines a RUN printed after `marker`, up to `end`, without the log prefix.
fn printed_between(log: &str, marker: &str, end: &str) -> Vec<String> {
    let printed: Vec<String> = log
        .lines()
        .filter_map(|l| {
            let l = l.strip_prefix('#')?;
            let (_, rest) = l.split_once(' ')?;
            let (time, text) = rest.split_once(' ')?;
            time.parse::<f64>().ok()?;
            Some(text.to_string())
        })
        .collect();
    let start = printed.iter().position(|l| l == marker);
    let Some(start) = start else {
        return Vec::new();
    };
    printed[start + 1..]
        .iter()
        .take_while(|l| *l != end)
        .cloned()
        .collect()
}

// COMPAT(buildkit): `GetResolvConf` filters the host's file for every network
// mode but host (loopback nameservers dropped, the defaults when none is left),
// and writes it back parsed (comments gone) even for host.
#[test]
fn run_resolv_conf_is_the_host_file_filtered_unless_network_host() {
    let env = Env::new();
    env.busybox();
    let host = "# written by the test\nnameserver 127.0.0.53\nnameserver 10.9.8.7\n\
                nameserver ::1\nsearch corp.example\noptions ndots:3\n";
    let df = "FROM busybox\n\
              RUN echo BEGIN; cat /etc/resolv.conf; echo END; \
                  (echo nameserver 6.6.6.6 >> /etc/resolv.conf) 2>/dev/null || echo read-only\n";
    let filtered = [
        "nameserver 10.9.8.7",
        "search corp.example",
        "options ndots:3",
    ];
    for flags in [&[][..], &["--network", "none"], &["--network", "default"]] {
        let (ok, log) = build_with_host_resolv(&env, host, df, flags);
        assert!(ok, "{flags:?}: {log}");
        assert_eq!(
            printed_between(&log, "BEGIN", "END"),
            filtered,
            "{flags:?}: {log}"
        );
        assert!(has_line(&log, " read-only"), "{flags:?}: {log}");
    }
    let (ok, log) = build_with_host_resolv(
        &env,
        host,
        df,
        &["--network", "host", "--allow", "network.host"],
    );
    assert!(ok, "{log}");
    assert_eq!(
        printed_between(&log, "BEGIN", "END"),
        [
            "nameserver 127.0.0.53",
            "nameserver 10.9.8.7",
            "nameserver ::1",
            "search corp.example",
            "options ndots:3"
        ],
        "{log}"
    );
    // Only loopback nameservers: the public defaults, IPv6 ones too.
    let (ok, log) = build_with_host_resolv(&env, "nameserver 127.0.0.1\n", df, &[]);
    assert!(ok, "{log}");
    assert_eq!(
        printed_between(&log, "BEGIN", "END"),
        [
            "nameserver 8.8.8.8",
            "nameserver 8.8.4.4",
            "nameserver 2001:4860:4860::8888",
            "nameserver 2001:4860:4860::8844"
        ],
        "{log}"
    );
}

/// The generated file is bound over a mount point kiln removes afterwards:
/// busybox has no /etc/resolv.conf, and the image built over it has none.
#[test]
fn run_resolv_conf_stays_out_of_the_layer() {
    let env = Env::new();
    env.busybox();
    let out = env.path("out");
    let log = build_ok(
        &env,
        "FROM busybox\nRUN test -s /etc/resolv.conf && echo present\n",
        &[
            "--no-cache",
            "-o",
            &format!("type=local,dest={}", out.display()),
        ],
    );
    assert!(has_line(&log, " present"), "{log}");
    assert!(out.join("bin").exists(), "{log}");
    assert!(!out.join("etc/resolv.conf").exists(), "{log}");
}
