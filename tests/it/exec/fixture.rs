//! The exec tests' fixture: a busybox rootfs built once, one run's fresh dirs and spec,
//! and a loopback listener.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use kiln::exec::{self, ExecError, Network, Output, RunSpec};

const APPLETS: &[&str] = &[
    "sh", "echo", "cat", "ls", "id", "touch", "rm", "mkdir", "ip", "ping", "wget", "hostname",
    "env", "sleep", "readlink", "stat", "head", "nc", "test", "grep", "wc",
];

/// The busybox rootfs every test uses as its lowest layer: built once per test process in
/// the target's tmp dir (replacing any earlier one), never written by a run.
pub fn base() -> &'static Path {
    static BASE: OnceLock<PathBuf> = OnceLock::new();
    BASE.get_or_init(|| {
        let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("exec-busybox-rootfs");
        if root.exists() {
            fs::remove_dir_all(&root).unwrap();
        }
        for d in ["bin", "etc", "tmp", "home/user", "srv/dir/inner"] {
            fs::create_dir_all(root.join(d)).unwrap();
        }
        fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
        for a in APPLETS {
            std::os::unix::fs::symlink("busybox", root.join("bin").join(a)).unwrap();
        }
        let passwd = "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000::/home/user:/bin/sh\n";
        fs::write(root.join("etc/passwd"), passwd).unwrap();
        let group = "root:x:0:\nuser:x:1000:\nstaff:x:50:user\n";
        fs::write(root.join("etc/group"), group).unwrap();
        fs::write(root.join("srv/old"), "old").unwrap();
        fs::write(root.join("srv/dir/inner/f"), "f").unwrap();
        root
    })
}

/// One run's dirs: a fresh upper and work dir.
pub struct Run {
    pub dir: tempfile::TempDir,
    pub spec: RunSpec,
}

impl Run {
    pub fn new(script: &str) -> Run {
        let dir = tempfile::tempdir().unwrap();
        let (upper, work) = (dir.path().join("upper"), dir.path().join("work"));
        fs::create_dir(&upper).unwrap();
        fs::create_dir(&work).unwrap();
        let spec = RunSpec {
            lower_dirs: vec![base().to_path_buf()],
            upper_dir: upper,
            work_dir: work,
            argv: vec!["/bin/sh".into(), "-c".into(), script.into()],
            env: vec!["PATH=/bin".into(), "HOME=/root".into()],
            cwd: "/".into(),
            user: String::new(),
            hostname: "kiln-test".into(),
            network: Network::Host,
            mounts: vec![],
            stdin: None,
            privileged: false,
            hosts_file: None,
            resolv_conf: None,
            ulimits: vec![],
            shm_size: None,
            capabilities: None,
            read_only_root: false,
            foreground: None,
            ports: Vec::new(),
        };
        Run { dir, spec }
    }

    pub fn go(&self) -> Result<(i32, String, String), ExecError> {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let res = exec::run(
            &self.spec,
            Path::new(env!("CARGO_BIN_EXE_kiln")),
            &mut |o| match o {
                Output::Stdout(b) => out.extend_from_slice(b),
                Output::Stderr(b) => err.extend_from_slice(b),
            },
        )?;
        Ok((
            res.status,
            String::from_utf8_lossy(&out).into(),
            String::from_utf8_lossy(&err).into(),
        ))
    }

    /// Runs and asserts success; returns stdout.
    pub fn ok(&self) -> String {
        let (status, out, err) = self.go().unwrap();
        assert_eq!(status, 0, "stdout: {out}\nstderr: {err}");
        out
    }

    pub fn upper(&self) -> &Path {
        &self.spec.upper_dir
    }

    /// Every path in the upper dir, relative.
    pub fn upper_paths(&self) -> BTreeSet<String> {
        walkdir::WalkDir::new(self.upper())
            .min_depth(1)
            .into_iter()
            .map(|e| {
                e.unwrap()
                    .path()
                    .strip_prefix(self.upper())
                    .unwrap()
                    .display()
                    .to_string()
            })
            .collect()
    }
}

/// A loopback TCP listener that answers HTTP requests with "pong".
pub fn listener() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut s in l.incoming().flatten() {
            use std::io::{Read, Write};
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf);
            let _ = s.write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 4\r\n\r\npong");
        }
    });
    port
}
