//! A real OCI container for kiln to run in, started by Debian's `runc` or `crun`
//! as root, with the configuration `docker run IMAGE` gives a container (moby's
//! `daemon/pkg/oci/defaults.go` and `caps/defaults.go`): Docker's 14 default
//! capabilities (no CAP_SYS_ADMIN), its default seccomp profile
//! (`testdata/ciimage/seccomp-docker-default-amd64.json`), its masked and
//! read-only paths, its mounts, new mount/PID/IPC/UTS/network namespaces, and
//! optionally a user namespace (`linux.uidMappings`, as `docker run` with
//! userns-remap or a Kubernetes pod with `hostUsers: false`). Not copied from
//! Docker: its time namespace (runc 1.1 does not know it), cgroup limits, and
//! AppArmor (not on these machines).
//!
//! The root filesystem is either the host's static busybox with its applets
//! and kiln ([`Container::new`]: the test binary's kiln is dynamically linked,
//! so the host's `/usr/lib` and `/lib64` are bind-mounted read-only; a static
//! kiln, `scripts/static`, would need neither), or a copy of a directory such
//! as kiln's own image unpacked ([`Container::from_rootfs`]). What the
//! container may write (its store, an output dir, `/tmp`) belongs to the
//! container's root: host uid 0, or [`MAPPED_ROOT`] with a user namespace.
//!
//! Reusable: a constructor, then [`Container::host_path`] /
//! [`Container::writable_dir`] to put files in, then [`Container::run`].

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{json, Value};

/// The host uid and gid the container's root is mapped to with a user namespace.
pub const MAPPED_ROOT: u32 = 100_000;
/// How many ids the user namespace maps (a Kubernetes `hostUsers: false` pod gets 65536).
pub const MAPPED_SIZE: u32 = 65_536;
/// Where kiln is inside the container.
pub const KILN: &str = "/usr/local/bin/kiln";

/// Docker's default capabilities (moby `daemon/pkg/oci/caps/defaults.go`).
pub const DOCKER_CAPS: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Docker's seccomp profile as the daemon hands it to runc for a default
/// container on amd64 (see `testdata/ciimage/README.md`).
const SECCOMP: &str = include_str!("../../../testdata/ciimage/seccomp-docker-default-amd64.json");

/// The OCI runtime that starts the container.
#[derive(Clone, Copy, Debug)]
pub enum Runtime {
    Runc,
    Crun,
}

impl Runtime {
    fn binary(self) -> &'static str {
        match self {
            Runtime::Runc => "/usr/sbin/runc",
            Runtime::Crun => "/usr/bin/crun",
        }
    }
}

/// A container bundle in a temp dir: `config.json`, `rootfs/`, and the
/// runtime's state dir (so nothing is left under /run).
pub struct Container {
    dir: tempfile::TempDir,
    userns: bool,
    /// Bind the test's kiln and the host's libraries in (the busybox rootfs).
    host_kiln: bool,
    /// The host's kiln bound at [`KILN`] (the test's, unless [`Container::with_kiln`]).
    kiln: PathBuf,
    /// Read-only bind mounts of host paths: (host, inside).
    binds: Vec<(PathBuf, String)>,
}

impl Container {
    /// A bundle whose rootfs holds busybox (`/bin/sh` and every applet) and
    /// kiln; `userns`: run it in a user namespace.
    pub fn new(userns: bool) -> Self {
        let c = Self::bundle(userns, true);
        let root = c.rootfs();
        for d in [
            "bin",
            "dev",
            "etc",
            "lib64",
            "proc",
            "root",
            "sys",
            "usr/bin",
            "usr/lib",
            "usr/local/bin",
            "usr/sbin",
        ] {
            fs::create_dir_all(root.join(d)).unwrap();
        }
        symlink("usr/lib", root.join("lib")).unwrap();
        fs::copy(crate::fixtures::BUSYBOX, root.join("bin/busybox")).unwrap();
        let list = crate::common::run(Command::new(crate::fixtures::BUSYBOX).arg("--list-full"));
        for applet in list.lines().map(str::trim).filter(|a| !a.is_empty()) {
            let at = root.join(applet);
            if !at.exists() && at.parent().is_some_and(Path::is_dir) {
                symlink("/bin/busybox", at).unwrap();
            }
        }
        fs::write(root.join(&KILN[1..]), b"").unwrap();
        fs::write(
            root.join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
        )
        .unwrap();
        fs::write(root.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n").unwrap();
        c.writable_dir("/tmp");
        c.writable_dir("/root");
        c
    }

    /// A bundle whose rootfs is a copy of `src` (owners and modes kept), with
    /// the mount points the config needs and a writable `/tmp`.
    pub fn from_rootfs(src: &Path, userns: bool) -> Self {
        let c = Self::bundle(userns, false);
        crate::common::run(Command::new("cp").arg("-a").arg(src).arg(c.rootfs()));
        for d in ["dev", "proc", "sys"] {
            fs::create_dir_all(c.rootfs().join(d)).unwrap();
        }
        c.writable_dir("/tmp");
        c
    }

    /// The bundle dir: the container's root (host uid 100000 with a user
    /// namespace) must reach it through the temp dir, which tempfile makes 0700.
    fn bundle(userns: bool, host_kiln: bool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        Container {
            dir,
            userns,
            host_kiln,
            kiln: PathBuf::from(env!("CARGO_BIN_EXE_kiln")),
            binds: Vec::new(),
        }
    }

    /// Binds `kiln` (a dynamically linked kiln of the host, e.g. a release
    /// build) at [`KILN`] instead of the test's.
    pub fn with_kiln(mut self, kiln: &Path) -> Self {
        self.kiln = kiln.to_path_buf();
        self
    }

    /// Binds the host's `host` read-only at `inside` (a directory; its mount
    /// point is made in the rootfs), as `docker run -v HOST:INSIDE:ro` would.
    pub fn bind_ro(&mut self, host: &Path, inside: &str) {
        fs::create_dir_all(self.host_path(inside)).unwrap();
        self.binds.push((host.to_path_buf(), inside.to_string()));
    }

    /// Keeps the bundle (it is removed on drop otherwise) and moves it to
    /// `dest` (on the same filesystem as the temp dir), for a runtime to run
    /// later: `runc --root DEST/state run --bundle DEST ID`.
    pub fn keep_at(self, dest: &Path) {
        let kept = self.dir.keep();
        fs::rename(&kept, dest)
            .unwrap_or_else(|e| panic!("moving {} to {}: {e}", kept.display(), dest.display()));
    }

    fn rootfs(&self) -> PathBuf {
        self.dir.path().join("rootfs")
    }

    /// The host path of `inside` (an absolute path in the container).
    pub fn host_path(&self, inside: &str) -> PathBuf {
        self.rootfs().join(inside.trim_start_matches('/'))
    }

    /// Gives the container's root everything under `inside` (made if missing):
    /// call it after filling the dir from the host.
    pub fn writable_dir(&self, inside: &str) -> PathBuf {
        let at = self.host_path(inside);
        fs::create_dir_all(&at).unwrap();
        if self.userns {
            crate::common::run(
                Command::new("chown")
                    .arg("-R")
                    .arg(format!("{MAPPED_ROOT}:{MAPPED_ROOT}"))
                    .arg(&at),
            );
        }
        at
    }

    /// The OCI runtime config (runtime-spec 1.0.2) for `args`, as `docker run`
    /// makes it.
    pub fn config(&self, args: &[&str], env: &[&str]) -> Value {
        let caps = DOCKER_CAPS.to_vec();
        let mut namespaces = vec![
            json!({"type": "mount"}),
            json!({"type": "network"}),
            json!({"type": "uts"}),
            json!({"type": "pid"}),
            json!({"type": "ipc"}),
        ];
        let mut env: Vec<String> = env.iter().map(|e| e.to_string()).collect();
        // Docker's default PATH, and kaniko-style debug images' /busybox.
        env.insert(
            0,
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/busybox".into(),
        );
        env.push("HOME=/root".into());
        let ro_bind = |src: &str, dest: &str| {
            json!({"destination": dest, "type": "bind", "source": src,
                   "options": ["rbind", "ro", "nosuid", "nodev"]})
        };
        let mut config = json!({
            "ociVersion": "1.0.2",
            "process": {
                "terminal": false,
                "user": {"uid": 0, "gid": 0},
                "args": args,
                "env": env,
                "cwd": "/",
                "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
                "noNewPrivileges": false,
            },
            "root": {"path": "rootfs", "readonly": false},
            "hostname": "kiln-ci",
            "mounts": [
                {"destination": "/proc", "type": "proc", "source": "proc",
                 "options": ["nosuid", "noexec", "nodev"]},
                {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
                 "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
                {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
                 "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
                {"destination": "/sys", "type": "sysfs", "source": "sysfs",
                 "options": ["nosuid", "noexec", "nodev", "ro"]},
                {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
                 "options": ["nosuid", "noexec", "nodev"]},
                {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
                 "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            ],
            "linux": {
                "namespaces": [],
                "seccomp": serde_json::from_str::<Value>(SECCOMP).unwrap(),
                "maskedPaths": [
                    "/proc/acpi", "/proc/asound", "/proc/interrupts", "/proc/kcore",
                    "/proc/keys", "/proc/latency_stats", "/proc/sched_debug", "/proc/scsi",
                    "/proc/timer_list", "/proc/timer_stats",
                    "/sys/devices/virtual/powercap", "/sys/firmware",
                ],
                "readonlyPaths": [
                    "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
                ],
            },
        });
        if self.userns {
            namespaces.push(json!({"type": "user"}));
            let map = json!([{"containerID": 0, "hostID": MAPPED_ROOT, "size": MAPPED_SIZE}]);
            config["linux"]["uidMappings"] = map.clone();
            config["linux"]["gidMappings"] = map;
        }
        config["linux"]["namespaces"] = Value::Array(namespaces);
        if self.host_kiln {
            let mounts = config["mounts"].as_array_mut().unwrap();
            mounts.push(ro_bind("/usr/lib", "/usr/lib"));
            mounts.push(ro_bind("/lib64", "/lib64"));
            mounts.push(ro_bind(self.kiln.to_str().unwrap(), KILN));
        }
        let mounts = config["mounts"].as_array_mut().unwrap();
        for (host, inside) in &self.binds {
            mounts.push(ro_bind(host.to_str().unwrap(), inside));
        }
        config
    }

    /// Writes the bundle's `config.json` for `args` and `env` (see [`Container::config`]).
    pub fn write_config(&self, args: &[&str], env: &[&str]) {
        let config = self.config(args, env);
        fs::write(
            self.dir.path().join("config.json"),
            serde_json::to_vec_pretty(&config).unwrap(),
        )
        .unwrap();
    }

    /// Runs `args` (a command inside, e.g. `["/bin/sh", "-c", SCRIPT]`) in a
    /// fresh container started by `runtime`, in the foreground, with `env`
    /// (`K=V`) beside PATH and HOME; waits for it to exit.
    pub fn run(&self, runtime: Runtime, args: &[&str], env: &[&str]) -> Output {
        static SEQ: AtomicUsize = AtomicUsize::new(0);
        self.write_config(args, env);
        let id = format!(
            "kiln-it-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        // `run` (not create/start) keeps the container in the foreground and
        // deletes it when its process exits.
        Command::new(runtime.binary())
            .arg("--root")
            .arg(self.dir.path().join("state"))
            .args(["run", "--bundle"])
            .arg(self.dir.path())
            .arg(&id)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .unwrap_or_else(|e| panic!("starting {}: {e}", runtime.binary()))
    }
}
