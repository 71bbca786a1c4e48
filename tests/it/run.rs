//! `kiln run --rm`: images built by kiln, run in the foreground, seen from inside a
//! real sandbox — the image's config and docker's merge rules, exit statuses, mounts,
//! stdin, the network, devices, signals, and nothing left in the store's `tmp/`.

use std::fs;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::build::Env;

mod network;
mod tty;

/// `plain`: busybox with every applet, ENV, WORKDIR, USER and a CMD; `vol`: `plain`
/// as root with a file in its `VOLUME /seed` (built by the test that uses it); `ep`: the same
/// with an ENTRYPOINT that prints `$0` and its arguments, and a CMD.
const DOCKERFILE: &str = r#"FROM busybox AS plain
RUN busybox --install -s /bin && mkdir /app && echo data > /app/file
ENV A=image B=image C=image
WORKDIR /app
USER user
CMD ["sh", "-c", "echo cmd-ran"]

FROM plain AS vol
USER root
RUN mkdir /seed && echo seeded > /seed/f
VOLUME /seed

FROM plain AS ep
EXPOSE 8080 53/udp
ENTRYPOINT ["/bin/sh", "-c", "echo \"ep:$0:$*\"", "ep0"]
CMD ["c1"]
"#;

/// A store with `busybox`, `plain` and `ep` built by kiln.
fn images() -> Env {
    let (env, ctx) = Env::busybox_dockerfile(DOCKERFILE);
    let ctx = ctx.to_str().unwrap();
    env.build(&["-q", "--target", "plain", "-t", "plain", ctx]);
    env.build(&["-q", "-t", "ep", ctx]);
    env
}

/// `kiln run ARGS` with `stdin`; (status, stdout, stderr).
fn run(env: &Env, args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
    let mut full = vec!["run"];
    full.extend_from_slice(args);
    let out = env.kiln(&full, stdin);
    decode(out)
}

fn decode(out: Output) -> (i32, String, String) {
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `kiln run --rm ARGS` that must exit 0; its stdout.
fn run_ok(env: &Env, args: &[&str]) -> String {
    let mut full = vec!["--rm"];
    full.extend_from_slice(args);
    let (code, out, err) = run(env, &full, None);
    assert_eq!(code, 0, "kiln run {full:?}: {err}");
    out
}

/// Entries left in the store's `tmp/`.
fn tmp_entries(env: &Env) -> Vec<String> {
    match fs::read_dir(env.root().join("tmp")) {
        Ok(rd) => rd
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    }
}

#[test]
fn run_honours_the_image_config_and_docker_merge_rules() {
    let env = images();
    // The container's status is kiln's.
    let (code, _, _) = run(&env, &["--rm", "plain", "sh", "-c", "exit 7"], None);
    assert_eq!(code, 7);
    // Cmd, Entrypoint and their combinations.
    assert_eq!(run_ok(&env, &["plain"]), "cmd-ran\n");
    assert_eq!(run_ok(&env, &["ep"]), "ep:ep0:c1\n");
    assert_eq!(run_ok(&env, &["ep", "a", "b"]), "ep:ep0:a b\n");
    assert_eq!(
        run_ok(&env, &["--entrypoint", "", "ep", "echo", "x"]),
        "x\n"
    );
    // --entrypoint drops the image's Cmd.
    assert_eq!(run_ok(&env, &["--entrypoint", "echo", "ep"]), "\n");
    assert_eq!(run_ok(&env, &["--entrypoint", "echo", "ep", "y"]), "y\n");
    let (code, _, err) = run(&env, &["--rm", "--entrypoint", "", "ep"], None);
    assert_eq!(code, 125, "{err}");
    assert!(err.contains("no command specified"), "{err}");
    // Env: the image's, then --env-file, then -e (K alone from kiln's environment).
    let env_file = env.path("envfile");
    fs::write(&env_file, "# comment\nB=file\nC=file\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(["--root", env.root().to_str().unwrap(), "run", "--rm"])
        .args(["--env-file", env_file.to_str().unwrap(), "-e", "C=flag"])
        .args(["-e", "FROM_KILN", "-e", "UNSET_IN_KILN", "plain"])
        .args([
            "sh",
            "-c",
            "echo $A $B $C $FROM_KILN ${UNSET_IN_KILN-unset} $PATH",
        ])
        .env("FROM_KILN", "k")
        .env_remove("UNSET_IN_KILN")
        .output()
        .unwrap();
    let (code, out, err) = decode(out);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "image file flag k unset /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
    );
    // User (by name, as the image's passwd and group have it), HOME, workdir.
    let id = "id -un; id -gn; echo $HOME; pwd";
    assert_eq!(
        run_ok(&env, &["plain", "sh", "-c", id]),
        "user\nuser\n/home/user\n/app\n"
    );
    assert_eq!(
        run_ok(
            &env,
            &["-u", "user:staff", "-w", "/tmp", "plain", "sh", "-c", id]
        ),
        "user\nstaff\n/home/user\n/tmp\n"
    );
    assert_eq!(
        run_ok(&env, &["-u", "0", "plain", "sh", "-c", id]),
        "root\nroot\n/root\n/app\n"
    );
    // Hostname and extra hosts.
    let out = run_ok(
        &env,
        &[
            "--hostname",
            "box",
            "--add-host",
            "db:10.0.0.7",
            "plain",
            "sh",
            "-c",
            "hostname; echo $HOSTNAME; cat /etc/hostname; grep db /etc/hosts",
        ],
    );
    assert_eq!(out, "box\nbox\nbox\n10.0.0.7\tdb\n");
    // 127 not found, 126 not executable, 125 kiln's own failures.
    let (code, _, err) = run(&env, &["--rm", "plain", "no-such-command"], None);
    assert_eq!(code, 127, "{err}");
    assert!(err.contains("not found"), "{err}");
    let (code, _, err) = run(&env, &["--rm", "plain", "/app/file"], None);
    assert_eq!(code, 126, "{err}");
    for (args, says) in [
        (
            &["--rm", "--pull", "never", "no-such-image"][..],
            "no image \"no-such-image\"",
        ),
        (
            &["--rm", "--pull", "sometimes", "plain"][..],
            "expected missing, always or never",
        ),
        (&["plain", "true"][..], "add --rm"),
        (
            &["-d", "-i", "plain"][..],
            "-d -i is not implemented yet (issue 14)",
        ),
        (
            &["-d", "-t", "plain"][..],
            "-d -t is not implemented: a detached container's pty needs `attach`",
        ),
        (
            &["--rm", "--network", "host", "-p", "80:80", "plain"][..],
            "publishing ports needs --network private",
        ),
        (&["--rm", "-p", "80-81:80", "plain"][..], "port ranges"),
        (
            &["--rm", "--name", "x", "plain"][..],
            "--name names a stored container",
        ),
        (
            &["--rm", "--network", "mynet", "plain"][..],
            "--network \"mynet\"",
        ),
        (
            &["--rm", "-v", "d@ta:/data", "plain"][..],
            "invalid characters for a local volume name",
        ),
        (&["--rm", "-w", "rel", "plain"][..], "absolute"),
        (&["--rm", "--no-such-flag", "plain"][..], "--no-such-flag"),
    ] {
        let (code, _, err) = run(&env, args, None);
        assert_eq!(code, 125, "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
    assert_eq!(tmp_entries(&env), Vec::<String>::new());
}

#[test]
fn run_mounts_binds_tmpfs_and_a_read_only_root() {
    let env = images();
    let host = env.path("shared");
    fs::create_dir(&host).unwrap();
    fs::write(host.join("in"), "from host\n").unwrap();
    let rw = format!("{}:/data", host.display());
    let out = run_ok(
        &env,
        &[
            "-u",
            "0",
            "-v",
            &rw,
            "plain",
            "sh",
            "-c",
            "cat /data/in; echo made > /data/out",
        ],
    );
    assert_eq!(out, "from host\n");
    assert_eq!(fs::read_to_string(host.join("out")).unwrap(), "made\n");
    // :ro and --mount readonly refuse writes; the host file is untouched.
    let ro = format!("{}:/data:ro", host.display());
    let mount = format!("type=bind,src={},dst=/data,readonly", host.display());
    for flag in [["-v", ro.as_str()], ["--mount", mount.as_str()]] {
        let (code, _, err) = run(
            &env,
            &[
                "--rm",
                "-u",
                "0",
                flag[0],
                flag[1],
                "plain",
                "sh",
                "-c",
                "cat /data/in && echo x > /data/in",
            ],
            None,
        );
        assert_ne!(code, 0, "{flag:?}");
        assert!(err.contains("Read-only file system"), "{flag:?}: {err}");
    }
    assert_eq!(fs::read_to_string(host.join("in")).unwrap(), "from host\n");
    // --read-only: the root refuses writes, a --tmpfs and a bind still take them.
    let (code, _, err) = run(
        &env,
        &["--rm", "--read-only", "-u", "0", "plain", "touch", "/app/x"],
        None,
    );
    assert_eq!(code, 1);
    assert!(err.contains("Read-only file system"), "{err}");
    let out = run_ok(
        &env,
        &[
            "--read-only", "-u", "0", "--tmpfs", "/scratch:size=1m", "--mount", "type=tmpfs,dst=/t2",
            "-v", &rw, "plain", "sh", "-c",
            "echo a > /scratch/f && echo b > /t2/f && echo c > /data/ro-root && cat /scratch/f /t2/f",
        ],
    );
    assert_eq!(out, "a\nb\n");
    assert_eq!(fs::read_to_string(host.join("ro-root")).unwrap(), "c\n");
    // A missing working directory is made before the root turns read-only.
    assert_eq!(
        run_ok(&env, &["--read-only", "-w", "/new/dir", "plain", "pwd"]),
        "/new/dir\n"
    );
    // The writable layer is the container's own and goes with it.
    run_ok(
        &env,
        &["-u", "0", "plain", "sh", "-c", "echo changed > /app/file"],
    );
    assert_eq!(run_ok(&env, &["plain", "cat", "/app/file"]), "data\n");
    assert_eq!(tmp_entries(&env), Vec::<String>::new());
}

/// `kiln volume ARGS`; (status, stdout, stderr).
fn volume(env: &Env, args: &[&str]) -> (i32, String, String) {
    let mut full = vec!["volume"];
    full.extend_from_slice(args);
    decode(env.kiln(&full, None))
}

#[test]
fn volumes_keep_data_are_seeded_and_anonymous_ones_go_with_rm() {
    let (env, ctx) = Env::busybox_dockerfile(DOCKERFILE);
    env.build(&["-q", "--target", "vol", "-t", "vol", ctx.to_str().unwrap()]);
    let ls = |env: &Env| volume(env, &["ls", "-q"]).1;
    // A named volume is made on first use, seeded from the image at its mount point.
    let out = run_ok(
        &env,
        &[
            "-v",
            "data:/seed",
            "vol",
            "sh",
            "-c",
            "cat /seed/f; echo kept > /seed/g",
        ],
    );
    assert_eq!(out, "seeded\n");
    // It keeps its data for the next container, at any path, seeded once only.
    let out = run_ok(
        &env,
        &[
            "-v",
            "data:/x:ro",
            "vol",
            "sh",
            "-c",
            "cat /x/g /x/f; ls /x",
        ],
    );
    assert_eq!(out, "kept\nseeded\nf\ng\n");
    assert_eq!(ls(&env), "data\n");
    // The image's VOLUME gets an anonymous volume (seeded, a mount of its own, writable
    // under --read-only) that --rm removes.
    let out = run_ok(
        &env,
        &[
            "--read-only",
            "vol",
            "sh",
            "-c",
            "echo w > /seed/w && cat /seed/f && grep -c ' /seed ' /proc/self/mounts && ls /seed",
        ],
    );
    assert_eq!(out, "seeded\n1\nf\nw\n");
    assert_eq!(ls(&env), "data\n");
    // -v /path and --mount type=volume without src are anonymous too.
    let out = run_ok(
        &env,
        &[
            "-v",
            "/a1",
            "--mount",
            "type=volume,dst=/a2",
            "vol",
            "sh",
            "-c",
            "ls /seed; touch /a1/x /a2/y; grep -c ' /a[12] ' /proc/self/mounts",
        ],
    );
    assert_eq!(out, "f\n2\n");
    assert_eq!(ls(&env), "data\n");
    // volume create, ls, inspect, rm.
    assert_eq!(volume(&env, &["create", "v2"]).1, "v2\n");
    assert_eq!(ls(&env), "data\nv2\n");
    let (code, out, _) = volume(&env, &["inspect", "v2"]);
    assert_eq!(code, 0);
    let inspected: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(inspected[0]["Name"], "v2");
    assert_eq!(
        inspected[0]["Mountpoint"],
        env.root().join("volumes/v2/_data").to_str().unwrap()
    );
    let (code, out, err) = volume(&env, &["rm", "v2", "nope"]);
    assert_ne!(code, 0);
    assert_eq!(out, "v2\n");
    assert!(err.contains("get nope: no such volume"), "{err}");
    // A running foreground container holds its volumes.
    let child = start(
        &env,
        &[
            "--stop-timeout",
            "0",
            "-v",
            "data:/x",
            "vol",
            "sh",
            "-c",
            "echo ready; sleep 1000",
        ],
    );
    let (code, _, err) = volume(&env, &["rm", "data"]);
    assert_ne!(code, 0);
    assert!(err.contains("remove data: volume is in use"), "{err}");
    sigterm(&child);
    child.wait_with_output().unwrap();
    // A stored container's volumes: rm refuses one in use (docker's words) unless -f;
    // `kiln rm -v` takes the container's anonymous volume with it.
    let (code, _, err) = run(
        &env,
        &["-d", "--name", "vuser", "-v", "data:/x", "vol", "true"],
        None,
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        ls(&env).lines().count(),
        2,
        "data and /seed's anonymous volume"
    );
    let (code, _, err) = volume(&env, &["rm", "data"]);
    assert_ne!(code, 0);
    assert!(err.contains("remove data: volume is in use - ["), "{err}");
    assert!(env
        .kiln(&["rm", "-f", "-v", "vuser"], None)
        .status
        .success());
    assert_eq!(ls(&env), "data\n");
    assert_eq!(volume(&env, &["rm", "data"]).0, 0);
    assert_eq!(ls(&env), "");
    assert_eq!(tmp_entries(&env), Vec::<String>::new());
}

#[test]
fn run_passes_stdin_only_with_interactive() {
    let env = images();
    let (code, out, err) = run(
        &env,
        &["--rm", "-i", "plain", "sh", "-c", "cat; echo end"],
        Some("line one\nline two\n"),
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "line one\nline two\nend\n");
    // Without -i the command reads nothing (docker's closed stdin).
    let (code, out, _) = run(
        &env,
        &["--rm", "plain", "sh", "-c", "cat; echo end"],
        Some("ignored\n"),
    );
    assert_eq!(code, 0);
    assert_eq!(out, "end\n");
}

#[test]
fn run_network_none_has_only_loopback_and_host_devices_do_not_open() {
    let env = images();
    let ifaces = "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '";
    assert_eq!(
        run_ok(&env, &["--network", "none", "plain", "sh", "-c", ifaces]),
        "lo\n"
    );
    // A node made with mknod does not open (kmsg: c 1 11, opened write-only), in the
    // root overlay or a tmpfs; /dev/null still works.
    let probe = "for d in /app /tmp; do mknod $d/km c 1 11 && { (exec 3>$d/km) 2>/dev/null && echo OPENED || echo denied; }; done; echo ok > /dev/null && echo null-ok";
    assert_eq!(
        run_ok(
            &env,
            &["-u", "0", "--tmpfs", "/tmp", "plain", "sh", "-c", probe]
        ),
        "denied\ndenied\nnull-ok\n"
    );
    // Docker's default capabilities: no CAP_SYS_ADMIN, so no mount.
    let (code, _, _) = run(
        &env,
        &[
            "--rm", "-u", "0", "plain", "mount", "-t", "tmpfs", "t", "/mnt",
        ],
        None,
    );
    assert_ne!(code, 0);
    // --cap-add and --cap-drop tweak Docker's set as docker does.
    let cap_eff = |flags: &[&str]| {
        let mut args = vec!["-u", "0"];
        args.extend_from_slice(flags);
        args.extend([
            "plain",
            "sh",
            "-c",
            "grep CapEff /proc/self/status | cut -f2",
        ]);
        run_ok(&env, &args).trim().to_string()
    };
    assert_eq!(cap_eff(&[]), "00000000a80425fb");
    assert_eq!(cap_eff(&["--cap-add", "NET_ADMIN"]), "00000000a80435fb");
    assert_eq!(cap_eff(&["--cap-drop", "chown"]), "00000000a80425fa");
    assert_eq!(
        cap_eff(&["--cap-drop", "ALL", "--cap-add", "CAP_KILL"]),
        "0000000000000020"
    );
    let (code, _, err) = run(&env, &["--rm", "--cap-add", "NOPE", "plain", "true"], None);
    assert_eq!(code, 125);
    assert!(err.contains("no such capability"), "{err}");
}

/// Starts `kiln run ARGS` with stdout piped; waits until it printed `ready`.
fn start(env: &Env, args: &[&str]) -> std::process::Child {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(["--root", env.root().to_str().unwrap(), "run", "--rm"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 64];
    while !String::from_utf8_lossy(&seen).contains("ready") {
        let n = std::io::Read::read(&mut stdout, &mut buf).unwrap();
        assert!(n > 0, "kiln run ended before it was ready");
        seen.extend_from_slice(&buf[..n]);
    }
    child.stdout = Some(stdout);
    child
}

fn sigterm(child: &std::process::Child) {
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
}

#[test]
fn sigterm_to_kiln_stops_the_container() {
    let env = images();
    // A command that handles SIGTERM ends as it chooses.
    let trap = "trap 'echo stopping; exit 3' TERM; echo ready; while :; do sleep 0.1; done";
    let child = start(&env, &["plain", "sh", "-c", trap]);
    sigterm(&child);
    let (code, out, _) = decode(child.wait_with_output().unwrap());
    assert_eq!((code, out.as_str()), (3, "stopping\n"));
    // One that ignores it (PID 1 without a handler) is killed after --stop-timeout.
    let t0 = Instant::now();
    let child = start(
        &env,
        &[
            "--stop-timeout",
            "1",
            "plain",
            "sh",
            "-c",
            "echo ready; sleep 60",
        ],
    );
    sigterm(&child);
    let (code, _, err) = decode(child.wait_with_output().unwrap());
    assert_eq!(code, 137, "{err}");
    assert!(t0.elapsed() < Duration::from_secs(30), "{:?}", t0.elapsed());
    // With --init, PID 1 passes SIGTERM on: the command dies of it at once (the
    // timeout, 60 s, would otherwise end it with 137).
    let t0 = Instant::now();
    let child = start(
        &env,
        &[
            "--init",
            "--stop-timeout",
            "60",
            "plain",
            "sh",
            "-c",
            "echo ready; exec sleep 60",
        ],
    );
    sigterm(&child);
    let (code, _, err) = decode(child.wait_with_output().unwrap());
    assert_eq!(code, 143, "{err}");
    assert!(t0.elapsed() < Duration::from_secs(30), "{:?}", t0.elapsed());
    assert_eq!(
        run_ok(&env, &["--init", "plain", "sh", "-c", "echo $$"]),
        "2\n"
    );
    let (code, _, _) = run(
        &env,
        &["--rm", "--init", "plain", "sh", "-c", "exit 9"],
        None,
    );
    assert_eq!(code, 9);
    // --stop-signal replaces SIGTERM.
    let usr1 = "trap 'exit 4' USR1; echo ready; while :; do sleep 0.1; done";
    let child = start(&env, &["--stop-signal", "USR1", "plain", "sh", "-c", usr1]);
    sigterm(&child);
    let (code, _, _) = decode(child.wait_with_output().unwrap());
    assert_eq!(code, 4);
    assert_eq!(tmp_entries(&env), Vec::<String>::new());
}

#[test]
fn run_pulls_an_image_the_store_lacks_and_honours_pull_never() {
    use crate::registry::server::{Auth, Registry};
    let env = images();
    let reg = Registry::start(false, Auth::None);
    let remote = format!("{}/app:1", reg.host);
    let out = env.kiln(&["push", "plain", &remote], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let fresh = Env::new();
    let (code, _, err) = run(&fresh, &["--rm", "--pull", "never", &remote, "true"], None);
    assert_eq!(code, 125, "{err}");
    let (code, out, err) = run(&fresh, &["--rm", &remote, "cat", "/app/file"], None);
    assert_eq!((code, out.as_str()), (0, "data\n"), "{err}");
    assert!(
        err.contains(&format!("Unable to find image '{remote}' locally")),
        "{err}"
    );
    // Now present: no pull, unless always.
    let (code, _, err) = run(&fresh, &["--rm", &remote, "true"], None);
    assert_eq!(code, 0);
    assert!(!err.contains("Unable to find"), "{err}");
    let (code, _, err) = run(&fresh, &["--rm", "--pull", "always", &remote, "true"], None);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("already present"), "{err}");
}

/// A name that points at an index (the platform's manifest beside an attestation
/// manifest, as an image with provenance has it) runs the platform's image.
#[test]
fn run_resolves_an_index_to_the_host_platform() {
    use kiln::oci::{media_type, Descriptor, Platform};
    let env = images();
    let store = env.store();
    let image = store.resolve("plain").unwrap();
    // Not a manifest at all: reading it instead of the platform's image fails.
    let (digest, size) = store.put_blob(b"{\"not\": \"a manifest\"}").unwrap();
    let attestation = Descriptor::new(media_type::OCI_MANIFEST, digest, size);
    let unknown = Platform {
        os: "unknown".into(),
        architecture: "unknown".into(),
        variant: None,
        os_version: None,
    };
    let manifests = [(attestation, unknown), (image, Platform::host())]
        .into_iter()
        .map(|(mut d, p)| {
            d.platform = Some(p);
            d
        })
        .collect();
    let index = kiln::oci::Index {
        schema_version: 2,
        media_type: Some(media_type::OCI_INDEX.into()),
        manifests,
        annotations: Default::default(),
    };
    let index = store.put_json(media_type::OCI_INDEX, &index).unwrap();
    store.tag("withatt", &index).unwrap();
    assert_eq!(run_ok(&env, &["withatt", "cat", "/app/file"]), "data\n");
}

/// `kiln run --rm ARGS` in a private mount namespace whose /etc/resolv.conf is
/// `host_resolv`; its stdout.
fn run_with_host_resolv(env: &Env, host_resolv: &str, args: &[&str]) -> String {
    let mut full = vec!["run", "--rm"];
    full.extend_from_slice(args);
    let (code, stdout, stderr) = decode(env.kiln_with_host_resolv(host_resolv, &full));
    assert_eq!(code, 0, "kiln run {args:?}: {stderr}");
    stdout
}

// COMPAT(docker): without the host's network, libnetwork's filtered file (as
// BuildKit's RUN gets it); with it, a copy of the host's file as it is.
#[test]
fn run_resolv_conf_is_filtered_without_the_host_network() {
    let env = Env::new();
    env.busybox();
    let host = "# host comment\nnameserver 127.0.0.53\nnameserver 10.9.8.7\nsearch corp.example\n";
    let cat = [
        "busybox",
        "sh",
        "-c",
        "cat /etc/resolv.conf; echo x >> /etc/resolv.conf || echo ro",
    ];
    let mut none = vec!["--network", "none"];
    none.extend_from_slice(&cat);
    let out = run_with_host_resolv(&env, host, &none);
    assert_eq!(out, "nameserver 10.9.8.7\nsearch corp.example\nro\n");
    // COMPAT(podman): a private network's forwarder asks the host's resolvers, the
    // loopback ones too.
    let out = run_with_host_resolv(&env, host, &cat);
    assert_eq!(out, "nameserver 10.0.2.3\nsearch corp.example\nro\n");
    let mut host_net = vec!["--network", "host"];
    host_net.extend_from_slice(&cat);
    let out = run_with_host_resolv(&env, host, &host_net);
    assert_eq!(out, format!("{host}ro\n"));
    let out = run_with_host_resolv(&env, "nameserver ::1\n", &none);
    assert!(
        out.starts_with("nameserver 8.8.8.8\nnameserver 8.8.4.4\n"),
        "{out}"
    );
}
