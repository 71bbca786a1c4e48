//! RUN's remaining privileges and mounts end to end: `--mount=type=ssh`
//! against a real `ssh-agent`, `--mount=type=cache,from=…`, and the
//! `--allow` entitlements for `--security=insecure` and `--network=host`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use super::Env;

/// A real ssh-agent (Debian's openssh-client) on a socket in a temp dir,
/// holding one generated key commented `kiln-test-key`; killed on drop.
struct Agent {
    child: Child,
    _dir: tempfile::TempDir,
    socket: PathBuf,
}

impl Agent {
    fn start() -> Agent {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("agent.sock");
        let child = Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&socket)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("running ssh-agent (apt-get install openssh-client)");
        for _ in 0..100 {
            if socket.exists() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let key = dir.path().join("key");
        let ok = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", "kiln-test-key", "-f"])
            .arg(&key)
            .status()
            .unwrap();
        assert!(ok.success(), "ssh-keygen failed");
        let ok = Command::new("ssh-add")
            .arg(&key)
            .env("SSH_AUTH_SOCK", &socket)
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(ok.success(), "ssh-add failed");
        Agent {
            child,
            _dir: dir,
            socket,
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// testdata/build/agent-probe.c, built static so it runs in the busybox
/// image: it asks the agent at $SSH_AUTH_SOCK for its identities.
fn agent_probe(into: &Path) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/build/agent-probe.c");
    let out = Command::new("cc")
        .args(["-static", "-O2", "-o"])
        .arg(into)
        .arg(&src)
        .output()
        .expect("running cc (apt-get install gcc libc6-dev)");
    assert!(
        out.status.success(),
        "building agent-probe: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn build(env: &Env, args: &[&str]) -> (Output, String) {
    let mut full = vec!["build", "--progress", "plain"];
    full.extend_from_slice(args);
    let out = env.kiln(&full, None);
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    (out, log)
}

/// True when a line of the build log ends with ` text` (a RUN's output).
fn printed(log: &str, text: &str) -> bool {
    log.lines().any(|l| l.ends_with(&format!(" {text}")))
}

#[test]
fn ssh_mount_forwards_a_real_agent_with_its_owner_and_mode_and_leaves_no_trace() {
    let env = Env::new();
    env.busybox();
    let agent = Agent::start();
    let ctx = env.context(
        "ctx",
        &[(
            "Dockerfile",
            "FROM busybox\n\
             COPY agent-probe /bin/agent-probe\n\
             RUN --mount=type=ssh test -S \"$SSH_AUTH_SOCK\" && echo \"sock=$SSH_AUTH_SOCK\" \
             && stat -c 'mode=%a owner=%u:%g' \"$SSH_AUTH_SOCK\" && agent-probe\n\
             USER user\n\
             RUN --mount=type=ssh,id=work,target=/home/user/a.sock,uid=1000,gid=1000,mode=0600 \
             stat -c 'user-mode=%a owner=%u:%g' \"$SSH_AUTH_SOCK\" && agent-probe > /tmp/keys\n\
             RUN --mount=type=ssh,id=absent test ! -e /run/buildkit/ssh_agent.0 \
             && echo \"optional-skipped $SSH_AUTH_SOCK\"\n\
             RUN --network=none --mount=type=ssh,uid=1000 echo \"no-net $(agent-probe)\"\n",
        )],
    );
    agent_probe(&ctx.join("agent-probe"));
    let ctx = ctx.to_str().unwrap();
    let default = format!("default={}", agent.socket.display());
    let work = format!("work={}", agent.socket.display());
    let (out, log) = build(&env, &["-t", "ssh", "--ssh", &default, "--ssh", &work, ctx]);
    assert!(out.status.success(), "{log}");
    for line in [
        "sock=/run/buildkit/ssh_agent.0",
        "mode=600 owner=0:0",
        "agent-keys=1 comment=kiln-test-key",
        "user-mode=600 owner=1000:1000",
        "optional-skipped /run/buildkit/ssh_agent.0",
        // A unix socket needs no network: --network=none reaches the agent.
        "no-net agent-keys=1 comment=kiln-test-key",
    ] {
        assert!(printed(&log, line), "{line:?} missing in\n{log}");
    }
    let (_, _, config) = env.image("ssh");
    let root = env.rootfs("ssh");
    // The agent answered the unprivileged user through its own socket.
    assert_eq!(
        fs::read_to_string(root.join("tmp/keys")).unwrap(),
        "agent-keys=1 comment=kiln-test-key\n"
    );
    assert!(!root.join("run").exists(), "/run leaked into the image");
    assert!(!root.join("home/user/a.sock").exists(), "the socket leaked");
    assert!(!config
        .config
        .env
        .iter()
        .any(|e| e.starts_with("SSH_AUTH_SOCK")));

    // The socket's path is no part of a step's key: another agent at
    // another path hits every step.
    let other = Agent::start();
    let default = format!("default={}", other.socket.display());
    let work = format!("work={}", other.socket.display());
    let layout = env.path("layout");
    let oci = format!("type=oci,dest={},tar=false", layout.display());
    // No attestations: umoci 0.4.7 cannot pick the image out of an attested index.
    let (out, log) = build(
        &env,
        &[
            "--provenance=false",
            "-t",
            "ssh2",
            "-o",
            &oci,
            "--ssh",
            &default,
            "--ssh",
            &work,
            ctx,
        ],
    );
    assert!(out.status.success(), "{log}");
    assert!(
        !printed(&log, "agent-keys=1 comment=kiln-test-key"),
        "{log}"
    );
    assert_eq!(log.matches(" CACHED").count(), 5, "{log}");
    assert_eq!(env.manifest_digest("ssh"), env.manifest_digest("ssh2"));
    // The same filesystem as umoci unpacks it.
    kiln::oci::validate_layout(&layout).unwrap();
    let bundle = env.path("bundle");
    let unpacked = Command::new("umoci")
        .arg("unpack")
        .arg("--image")
        .arg(format!("{}:latest", layout.display()))
        .arg(&bundle)
        .output()
        .expect("running umoci");
    assert!(
        unpacked.status.success(),
        "{}",
        String::from_utf8_lossy(&unpacked.stderr)
    );
    let root = bundle.join("rootfs");
    assert!(root.join("bin/agent-probe").is_file());
    assert!(!root.join("run").exists() && !root.join("home/user/a.sock").exists());
}

#[test]
fn ssh_mount_mode_and_required_are_enforced() {
    let env = Env::new();
    env.busybox();
    let agent = Agent::start();
    let default = format!("default={}", agent.socket.display());
    // Root's 0600 socket: an unprivileged command may not connect.
    let ctx = env.context(
        "denied",
        &[(
            "Dockerfile",
            "FROM busybox\nCOPY agent-probe /bin/agent-probe\nUSER user\n\
             RUN --mount=type=ssh agent-probe\n",
        )],
    );
    agent_probe(&ctx.join("agent-probe"));
    let (out, log) = build(&env, &["--ssh", &default, ctx.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{log}");
    assert!(log.contains("Permission denied"), "{log}");

    let ctx = env.context(
        "required",
        &[(
            "Dockerfile",
            "FROM busybox\nRUN --mount=type=ssh,id=deploy,required=true echo ran-$((1+1))\n",
        )],
    );
    let (out, log) = build(&env, &["--ssh", &default, ctx.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{log}");
    assert!(
        log.contains("no SSH key \"deploy\" forwarded") && log.contains("--ssh deploy="),
        "{log}"
    );
    assert!(!printed(&log, "ran-2"), "{log}");

    // --ssh itself: a path that is neither socket nor key, and `default` without an agent.
    let not_sock = format!("default={}", env.path("denied").display());
    let (out, log) = build(&env, &["--ssh", &not_sock, ctx.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{log}");
    assert!(
        log.contains("is neither an agent socket nor a key file"),
        "{log}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .arg("--root")
        .arg(env.root())
        .args(["build", "--ssh", "default"])
        .arg(&ctx)
        .env_remove("SSH_AUTH_SOCK")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("SSH_AUTH_SOCK is set"));
}

#[test]
fn cache_mount_from_a_stage_is_seeded_once_and_keyed_by_that_tree() {
    let (env, ctx) = Env::busybox_dockerfile(
        "FROM busybox AS seed\nARG V=one\n\
             RUN mkdir -p /seed/sub && echo \"$V\" > /seed/sub/f && echo outside > /other\n\
             FROM busybox\n\
             RUN --mount=type=cache,id=c1,target=/c,from=seed,source=/seed \
             echo \"saw=$(/bin/busybox tr '\\n' + < /c/sub/f)\" && echo more >> /c/sub/f \
             && test ! -e /c/other && echo only-source\n\
             RUN --mount=type=cache,id=c1,target=/c test -z \"$(ls -A /c)\" && echo plain-id-is-another-cache\n",
    );
    let ctx = ctx.to_str().unwrap();
    let (out, log) = build(&env, &["-t", "c:1", ctx]);
    assert!(out.status.success(), "{log}");
    for line in ["saw=one+", "only-source", "plain-id-is-another-cache"] {
        assert!(printed(&log, line), "{line:?} missing in\n{log}");
    }
    // Seeded when created only: the second run sees the first one's write.
    // (The seed stage stays cached: rerun, it would be a new tree with new
    // mtimes, and so a new cache, as a new ref is in BuildKit.)
    let (out, log) = build(&env, &["--no-cache-filter", "1", ctx]);
    assert!(out.status.success(), "{log}");
    assert!(printed(&log, "saw=one+more+"), "{log}");
    // Another `from` tree is another cache, seeded from it.
    let (out, log) = build(&env, &["--build-arg", "V=two", ctx]);
    assert!(out.status.success(), "{log}");
    assert!(printed(&log, "saw=two+"), "{log}");
    let (out, log) = build(&env, &["--no-cache-filter", "1", ctx]);
    assert!(out.status.success(), "{log}");
    assert!(printed(&log, "saw=one+more+more+"), "{log}");
    let root = env.rootfs("c:1");
    assert!(
        !root.join("c").exists(),
        "the cache mount leaked into the image"
    );

    let bad = env.context(
        "bad",
        &[(
            "Dockerfile",
            "FROM busybox AS seed\nFROM busybox\n\
             RUN --mount=type=cache,target=/c,from=seed,source=/nope true\n",
        )],
    );
    let (out, log) = build(&env, &[bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{log}");
    assert!(log.contains("/nope not found in its from tree"), "{log}");
}

#[test]
fn insecure_and_host_network_need_allow_and_insecure_gets_the_privileges() {
    let (env, ctx) = Env::busybox_dockerfile(
        "FROM busybox\n\
             RUN /bin/busybox mount -t tmpfs none /tmp 2>/dev/null && echo sandbox-mounted || echo sandbox-denied\n\
             RUN --security=insecure /bin/busybox mount -t tmpfs none /tmp && echo insecure-mounted \
             && /bin/busybox grep ' /sys ' /proc/mounts | /bin/busybox cut -d' ' -f4 | /bin/busybox cut -d, -f1 \
             && test -c /dev/fuse && echo has-fuse\n",
    );
    let ctx = ctx.to_str().unwrap();
    let (out, log) = build(&env, &["-t", "ins", ctx]);
    assert_eq!(out.status.code(), Some(2), "{log}");
    assert!(
        log.contains("security.insecure is not allowed (kiln build --allow security.insecure)"),
        "{log}"
    );
    // Refused before any step ran.
    assert!(!log.contains("sandbox-"), "{log}");

    let (out, log) = build(&env, &["-t", "ins", "--allow", "security.insecure", ctx]);
    assert!(out.status.success(), "{log}");
    for line in ["sandbox-denied", "insecure-mounted", "rw", "has-fuse"] {
        assert!(printed(&log, line), "{line:?} missing in\n{log}");
    }
    env.image("ins");
    // A cached step asks again.
    let (out, log) = build(&env, &[ctx]);
    assert_eq!(out.status.code(), Some(2), "{log}");

    let host = env.context(
        "host",
        &[(
            "Dockerfile",
            "FROM busybox\nRUN --network=host echo host-net > /n\n",
        )],
    );
    let host = host.to_str().unwrap();
    let (out, log) = build(&env, &[host]);
    assert_eq!(out.status.code(), Some(2), "{log}");
    assert!(log.contains("network.host is not allowed"), "{log}");
    let (out, log) = build(&env, &["-t", "hostnet", "--allow", "network.host", host]);
    assert!(out.status.success(), "{log}");
    let root = env.rootfs("hostnet");
    assert_eq!(fs::read_to_string(root.join("n")).unwrap(), "host-net\n");

    let (out, log) = build(&env, &["--allow", "network.everything", host]);
    assert_eq!(out.status.code(), Some(2), "{log}");
    assert!(
        log.contains("invalid entitlement: network.everything"),
        "{log}"
    );
}

/// `--ssh default=KEYFILE` (buildx loads key files into an agent of its
/// own): kiln runs `ssh-agent` for the build, the RUN lists the key, and the
/// agent is gone afterwards; a file that is no key is a usage error.
#[test]
fn ssh_key_files_are_served_by_an_agent_of_the_builds_own() {
    let env = Env::new();
    env.busybox();
    let key = env.path("id_test");
    let ok = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "kiln-key-file", "-f"])
        .arg(&key)
        .status()
        .expect("ssh-keygen (apt-get install openssh-client)");
    assert!(ok.success());
    let ctx = env.context(
        "ctx",
        &[(
            "Dockerfile",
            "FROM busybox\nCOPY agent-probe /bin/agent-probe\n\
             RUN --mount=type=ssh agent-probe\n",
        )],
    );
    agent_probe(&ctx.join("agent-probe"));
    let c = ctx.to_str().unwrap();
    let spec = format!("default={}", key.display());
    // The agent's socket dir is made under this build's own TMPDIR, so the
    // check below finds this build's agent and not another test's.
    let tmp = env.path("tmp");
    fs::create_dir_all(&tmp).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .arg("--root")
        .arg(env.root())
        .args(["build", "--progress", "plain", "--ssh", &spec, c])
        .env("TMPDIR", &tmp)
        .env_remove("SOURCE_DATE_EPOCH")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{log}");
    assert!(printed(&log, "agent-keys=1 comment=kiln-key-file"), "{log}");
    let ours = tmp.join("kiln-ssh-");
    let alive = fs::read_dir("/proc").unwrap().flatten().any(|p| {
        fs::read(p.path().join("cmdline"))
            .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&*ours.to_string_lossy()))
    });
    assert!(!alive, "the build's ssh-agent outlived it");

    let junk = env.path("not-a-key");
    fs::write(&junk, "hello\n").unwrap();
    let (out, log) = build(&env, &["--ssh", &format!("default={}", junk.display()), c]);
    assert_eq!(out.status.code(), Some(2), "{log}");
    assert!(log.contains("ssh-add could not load the key"), "{log}");
}
