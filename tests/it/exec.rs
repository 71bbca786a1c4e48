//! The RUN sandbox for real: as root, over an overlay whose lower dir is a busybox rootfs.

mod fixture;

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use fixture::{base, listener, Run};
use kiln::exec::{self, ExecError, Mount, MountKind, Network, Output};

#[test]
fn output_is_captured_and_exit_code_returned() {
    let run = Run::new("echo out; echo err >&2; exit 7");
    let (status, out, err) = run.go().unwrap();
    assert_eq!((status, out.as_str(), err.as_str()), (7, "out\n", "err\n"));
}

#[test]
fn a_signal_shows_as_128_plus_its_number() {
    // The command is PID 1 of its namespace, immune to its own SIGKILL: kill it from the
    // host, as a cancelled build would.
    let mut run = Run::new("");
    let marker = format!("{}.{}", 30, std::process::id());
    run.spec.argv = vec!["/bin/sleep".into(), marker.clone()];
    std::thread::scope(|s| {
        let waiter = s.spawn(|| run.go().unwrap().0);
        let wanted = format!("/bin/sleep\0{marker}\0");
        let pid = (0..100)
            .find_map(|_| {
                std::thread::sleep(std::time::Duration::from_millis(50));
                fs::read_dir("/proc").unwrap().flatten().find_map(|e| {
                    let cmdline = fs::read(e.path().join("cmdline")).ok()?;
                    (cmdline == wanted.as_bytes())
                        .then(|| e.file_name().to_string_lossy().parse::<i32>().ok())?
                })
            })
            .expect("the sandboxed sleep never appeared");
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap();
        assert_eq!(waiter.join().unwrap(), 137);
    });
}

#[test]
fn upper_dir_holds_only_the_commands_writes() {
    let run = Run::new("touch /new && echo changed > /srv/old && rm /srv/dir/inner/f && rm -r /srv/dir && mkdir -p /srv/dir/fresh");
    run.ok();
    let want: BTreeSet<String> = ["new", "srv", "srv/old", "srv/dir", "srv/dir/fresh"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(run.upper_paths(), want);
    assert_eq!(
        fs::read_to_string(run.upper().join("srv/old")).unwrap(),
        "changed\n"
    );
    // The replaced dir is opaque; nothing of the old content shows through.
    let opaque = xattr::get(run.upper().join("srv/dir"), "trusted.overlay.opaque").unwrap();
    assert_eq!(opaque.as_deref(), Some(&b"y"[..]));
}

#[test]
fn a_deletion_is_a_zero_zero_char_device_whiteout() {
    let run = Run::new("rm /srv/old");
    run.ok();
    let meta = fs::symlink_metadata(run.upper().join("srv/old")).unwrap();
    assert!(meta.file_type().is_char_device());
    assert_eq!(meta.rdev(), 0);
}

#[test]
fn a_command_that_writes_nothing_leaves_an_empty_upper_dir() {
    // The image lacks /proc, /dev, /sys, /etc/resolv.conf and /etc/hosts: all are created
    // as mount points and must be gone afterwards, /etc's copy-up included.
    let run = Run::new("cat /etc/resolv.conf /etc/hosts >/dev/null && ls /proc/self >/dev/null");
    run.ok();
    assert_eq!(run.upper_paths(), BTreeSet::new());
}

#[test]
fn user_by_name_and_by_number_with_supplementary_groups() {
    let mut run = Run::new("id");
    run.spec.user = "user".into();
    assert_eq!(
        run.ok(),
        "uid=1000(user) gid=1000(user) groups=50(staff),1000(user)\n"
    );
    let mut run = Run::new("id");
    run.spec.user = "1000:50".into();
    assert_eq!(run.ok(), "uid=1000(user) gid=50(staff) groups=50(staff)\n");
    let mut run = Run::new("id -u; touch /root-only 2>/dev/null || echo denied");
    run.spec.user = "4242".into();
    assert_eq!(run.ok(), "4242\ndenied\n");
    let mut run = Run::new("id");
    run.spec.user = "nobody".into();
    assert!(matches!(run.go(), Err(ExecError::UnknownId { .. })));
    // Setup failed after the mounts: their mount points are cleaned all the same.
    assert_eq!(run.upper_paths(), BTreeSet::new());
}

#[test]
fn cwd_is_created_env_and_hostname_apply() {
    let mut run = Run::new("pwd; echo $GREETING; hostname");
    run.spec.cwd = "/work/dir".into();
    run.spec.env.push("GREETING=hello there".into());
    assert_eq!(run.ok(), "/work/dir\nhello there\nkiln-test\n");
    assert!(
        run.upper().join("work/dir").is_dir(),
        "the created cwd is layer content"
    );
}

#[test]
fn dev_null_is_writable_and_pid_1_is_the_command_shell() {
    let run = Run::new("echo x > /dev/null && cat /dev/null && echo $$ && readlink /proc/1/exe && head -c 4 /dev/zero | wc -c && ls /dev/pts /dev/shm >/dev/null && test -c /dev/urandom && echo devs");
    let out = run.ok();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "1");
    assert_eq!(lines[1], "/bin/busybox");
    assert_eq!(lines.last(), Some(&"devs"));
}

#[test]
fn sys_is_read_only_and_proc_is_the_sandboxes() {
    let run = Run::new("grep ' /sys ' /proc/mounts; ls /proc | grep -c '^[0-9]'");
    let out = run.ok();
    let (mounts, count) = out.trim().rsplit_once('\n').unwrap();
    assert!(mounts.starts_with("sysfs /sys sysfs ro,"), "{mounts}");
    // sh, ls and grep: a handful of processes, not the host's.
    let n: u32 = count.parse().unwrap();
    assert!(n <= 4, "{n} processes visible");
}

#[test]
fn output_streams_while_the_command_runs() {
    let run = Run::new("echo first; sleep 1; echo second");
    let start = std::time::Instant::now();
    let mut arrivals = Vec::new();
    exec::run(&run.spec, Path::new(env!("CARGO_BIN_EXE_kiln")), &mut |o| {
        if let Output::Stdout(b) = o {
            arrivals.push((String::from_utf8_lossy(b).into_owned(), start.elapsed()));
        }
    })
    .unwrap();
    assert_eq!(arrivals[0].0, "first\n");
    // "first" reached us a second before the command ended, not with its end.
    let gap = arrivals.last().unwrap().1 - arrivals[0].1;
    assert!(gap >= std::time::Duration::from_millis(800), "{arrivals:?}");
}

#[test]
fn bad_specs_are_refused_before_anything_runs() {
    let mut run = Run::new("true");
    run.spec.cwd = "relative".into();
    assert!(matches!(run.go(), Err(ExecError::RelativeCwd { .. })));
    let mut run = Run::new("true");
    run.spec.upper_dir = "/a,b".into();
    assert!(matches!(run.go(), Err(ExecError::OverlayPath { .. })));
    let mut run = Run::new("true");
    let file = run.dir.path().join("file");
    fs::write(&file, "").unwrap();
    run.spec.mounts = vec![Mount {
        target: "/m".into(),
        kind: MountKind::BindDiscardWrites {
            source: file,
            scratch: run.dir.path().join("s"),
        },
    }];
    assert!(matches!(
        run.go(),
        Err(ExecError::DiscardSourceNotDir { .. })
    ));
}

#[test]
fn stdin_file_is_fed_else_dev_null() {
    let run = Run::new("cat");
    assert_eq!(run.ok(), "");
    let mut run = Run::new("cat");
    let script = run.dir.path().join("stdin");
    fs::write(&script, "from a heredoc\n").unwrap();
    run.spec.stdin = Some(script);
    assert_eq!(run.ok(), "from a heredoc\n");
}

#[test]
fn network_none_has_only_loopback_up_and_no_host_listener() {
    let port = listener();
    // busybox-static's wget crashes in glibc's NSS without its libraries in the rootfs;
    // nc makes the same TCP connection.
    let mut run = Run::new(&format!(
        "ip -o link | wc -l; ip -o link show lo | grep -q UP && echo lo-up; \
         printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc 127.0.0.1 {port} || echo unreachable"
    ));
    run.spec.network = Network::None;
    let out = run.ok();
    assert_eq!(
        out.split_whitespace().collect::<Vec<_>>(),
        ["1", "lo-up", "unreachable"],
        "{out}"
    );
}

#[test]
fn host_network_reaches_a_loopback_listener() {
    let port = listener();
    let run = Run::new(&format!(
        "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc 127.0.0.1 {port}"
    ));
    assert!(run.ok().ends_with("\r\n\r\npong"));
}

#[test]
fn bind_readonly_discard_and_tmpfs_mounts() {
    let mut run = Run::new(
        "echo rw > /rw/new && (echo no > /ro/new 2>/dev/null || echo ro-refused) && cat /ro/file && \
         echo scratch > /discard/new && cat /discard/file && echo t > /scratch/t && cat /scratch/t",
    );
    let host = run.dir.path().to_path_buf();
    for d in ["rw", "ro", "discard", "discard-scratch"] {
        fs::create_dir(host.join(d)).unwrap();
    }
    fs::write(host.join("ro/file"), "ro-content\n").unwrap();
    fs::write(host.join("discard/file"), "discard-content\n").unwrap();
    let bind = |s: &str, ro| MountKind::Bind {
        source: host.join(s),
        readonly: ro,
    };
    run.spec.mounts = vec![
        Mount {
            target: "/rw".into(),
            kind: bind("rw", false),
        },
        Mount {
            target: "/ro".into(),
            kind: bind("ro", true),
        },
        Mount {
            target: "/discard".into(),
            kind: MountKind::BindDiscardWrites {
                source: host.join("discard"),
                scratch: host.join("discard-scratch"),
            },
        },
        Mount {
            target: "/scratch".into(),
            kind: MountKind::Tmpfs {
                size: Some(1 << 20),
            },
        },
    ];
    assert_eq!(run.ok(), "ro-refused\nro-content\ndiscard-content\nt\n");
    assert_eq!(fs::read_to_string(host.join("rw/new")).unwrap(), "rw\n");
    assert!(!host.join("ro/new").exists());
    assert!(
        !host.join("discard/new").exists(),
        "discarded writes reached the source"
    );
    assert_eq!(
        run.upper_paths(),
        BTreeSet::new(),
        "mount points leaked into the layer"
    );
}

#[test]
fn a_chain_of_120_lower_dirs_mounts() {
    let mut run = Run::new("cat /layers/000 /layers/119 && ls /layers | wc -l");
    let store = run.dir.path().join("snapshots");
    let mut lowers = Vec::new();
    for i in 0..120 {
        // Digest-long names: 120 of them do not fit in a page even relative.
        let snap = store.join(format!("{i:03}{}", "e".repeat(61)));
        fs::create_dir_all(snap.join("layers")).unwrap();
        fs::write(
            snap.join("layers").join(format!("{i:03}")),
            format!("layer {i}\n"),
        )
        .unwrap();
        lowers.push(snap);
    }
    lowers.reverse();
    lowers.push(base().to_path_buf());
    run.spec.lower_dirs = lowers;
    assert_eq!(
        run.ok().split_whitespace().collect::<Vec<_>>(),
        ["layer", "0", "layer", "119", "120"]
    );
}

#[test]
fn two_runs_at_once() {
    // Each run waits for the other's mark in a shared bind mount: only runs that are
    // alive at the same time both finish (a wait gives up after 10 s).
    let shared = tempfile::tempdir().unwrap();
    let script = |me: &str, other: &str| {
        format!(
            "touch /shared/{me}; i=0; while [ ! -e /shared/{other} ]; do \
             i=$((i+1)); [ $i -gt 100 ] && exit 9; sleep 0.1; done; echo {me} > /out; cat /out"
        )
    };
    let mut runs = [Run::new(&script("a", "b")), Run::new(&script("b", "a"))];
    for run in &mut runs {
        run.spec.mounts = vec![Mount {
            target: "/shared".into(),
            kind: MountKind::Bind {
                source: shared.path().into(),
                readonly: false,
            },
        }];
    }
    let outs: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = runs.iter().map(|r| s.spawn(|| r.ok())).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(outs, ["a\n", "b\n"]);
    assert_eq!(
        fs::read_to_string(runs[1].upper().join("out")).unwrap(),
        "b\n"
    );
    assert_eq!(runs[0].upper_paths(), BTreeSet::from(["out".to_string()]));
}

#[test]
fn setup_failures_come_back_typed() {
    let mut run = Run::new("true");
    run.spec.argv = vec!["/no/such/program".into()];
    match run.go() {
        Err(ExecError::Exec { argv0, source }) => {
            assert_eq!(
                (argv0.as_str(), source),
                ("/no/such/program", nix::errno::Errno::ENOENT)
            );
        }
        other => panic!("expected an exec error, got {other:?}"),
    }
    let mut run = Run::new("true");
    run.spec.lower_dirs = vec![PathBuf::from("/no/such/snapshot")];
    assert!(matches!(run.go(), Err(ExecError::MountOverlay { .. })));
}

#[test]
fn the_helper_refuses_to_run_without_kiln() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kiln"))
        .arg("__sandbox")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("internal"));
}

/// The capability sets of the command, from /proc/self/status.
fn caps(out: &str) -> std::collections::BTreeMap<String, u64> {
    out.lines()
        .filter_map(|l| l.strip_prefix("Cap"))
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_string(), u64::from_str_radix(v.trim(), 16).unwrap()))
        .collect()
}

#[test]
fn default_sandbox_keeps_dockers_14_capabilities_and_privileged_keeps_all() {
    // Docker's and containerd's default set: CAP_CHOWN … CAP_SETFCAP.
    const DEFAULT: u64 = 0xa80425fb;
    const SYS_ADMIN: u64 = 1 << 21;
    let script = "grep ^Cap /proc/self/status; grep ' /sys ' /proc/mounts; \
                  grep ' /proc/sys ' /proc/mounts || echo proc-sys-not-a-mount; \
                  test -c /proc/keys && echo keys-masked; test -f /proc/keys && echo keys-real; \
                  /bin/busybox mount -t tmpfs none /tmp && echo mounted; ls /dev";
    let run = Run::new(script);
    let out = run.ok();
    let c = caps(&out);
    assert_eq!(c["Bnd"], DEFAULT, "{out}");
    assert_eq!(c["Eff"], DEFAULT, "{out}");
    assert_eq!(c["Prm"], DEFAULT, "{out}");
    assert_eq!((c["Inh"], c["Amb"]), (0, 0), "{out}");
    assert!(out.contains("sysfs /sys sysfs ro,"), "{out}");
    assert!(out.contains("proc /proc/sys proc ro,"), "{out}");
    assert!(out.contains("keys-masked\n"), "{out}");
    assert!(
        !out.contains("mounted\n"),
        "mount without CAP_SYS_ADMIN: {out}"
    );
    assert!(!out.lines().any(|l| l == "fuse"), "{out}");

    let mut run = Run::new(script);
    run.spec.user = "user".into();
    let out = run.ok();
    let c = caps(&out);
    assert_eq!((c["Bnd"], c["Eff"], c["Prm"]), (DEFAULT, 0, 0), "{out}");

    let mut run = Run::new(script);
    run.spec.privileged = true;
    let out = run.ok();
    let c = caps(&out);
    assert_eq!(c["Eff"] & SYS_ADMIN, SYS_ADMIN, "{out}");
    assert_eq!(c["Bnd"] & DEFAULT, DEFAULT, "{out}");
    assert!(out.contains("sysfs /sys sysfs rw,"), "{out}");
    assert!(out.contains("proc-sys-not-a-mount\n"), "{out}");
    assert!(out.contains("keys-real\n"), "{out}");
    assert!(out.contains("mounted\n"), "{out}");
    for dev in ["fuse", "kmsg", "loop-control", "loop0", "net"] {
        assert!(out.lines().any(|l| l == dev), "/dev/{dev} missing: {out}");
    }
}
