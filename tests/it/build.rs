//! `kiln build` end to end: the real binary, a temp store, fixtures under
//! testdata/build/, results read back through the store, `oci::validate`
//! and the flattened root filesystem.

#[path = "build/add_archive.rs"]
mod add_archive;
#[path = "build/annotations.rs"]
mod annotations;
#[path = "build/attest.rs"]
mod attest;
#[path = "build/build_context.rs"]
mod build_context;
#[path = "build/cache.rs"]
mod cache;
#[path = "build/cache_sources.rs"]
mod cache_sources;
#[path = "build/checks.rs"]
mod checks;
#[path = "build/compression.rs"]
mod compression;
#[path = "build/docker_flags.rs"]
mod docker_flags;
#[path = "build/errors.rs"]
mod errors;
#[path = "build/isolation.rs"]
mod isolation;
#[path = "build/library.rs"]
mod library;
#[path = "build/metadata.rs"]
mod metadata;
#[path = "build/outputs.rs"]
mod outputs;
#[path = "build/outputs_kept.rs"]
mod outputs_kept;
#[path = "build/run.rs"]
mod run;
#[path = "build/run_devices.rs"]
mod run_devices;
#[path = "build/run_flags.rs"]
mod run_flags;
#[path = "build/run_fs.rs"]
mod run_fs;
#[path = "build/run_mounts.rs"]
mod run_mounts;
#[path = "build/run_secrets.rs"]
mod run_secrets;
#[path = "build/sbom.rs"]
mod sbom;
#[path = "build/stdin_context.rs"]
mod stdin_context;
#[path = "build/steps.rs"]
mod steps;

use std::fs;
use std::io::Write;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use kiln::oci::{Descriptor, ImageConfig, Manifest, Store};

/// A temp dir holding a store (`root/`) and whatever contexts a test writes.
pub struct Env {
    pub dir: tempfile::TempDir,
}

impl Env {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    pub fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    /// A new env with the busybox base loaded and a context `ctx` holding
    /// only `dockerfile`: the start of most RUN tests.
    pub fn busybox_dockerfile(dockerfile: &str) -> (Self, PathBuf) {
        let env = Self::new();
        env.busybox();
        let ctx = env.context("ctx", &[("Dockerfile", dockerfile)]);
        (env, ctx)
    }

    /// Writes files of a context: `(path, content)`; a content starting
    /// with `->` makes a symlink.
    pub fn context(&self, name: &str, files: &[(&str, &str)]) -> PathBuf {
        let ctx = self.path(name);
        fs::create_dir_all(&ctx).unwrap();
        for (p, content) in files {
            let at = ctx.join(p);
            fs::create_dir_all(at.parent().unwrap()).unwrap();
            match content.strip_prefix("->") {
                Some(target) => symlink(target, &at).unwrap(),
                None => fs::write(&at, content).unwrap(),
            }
        }
        ctx
    }

    /// Runs `kiln --root ROOT ARGS`, feeding `stdin`.
    pub fn kiln(&self, args: &[&str], stdin: Option<&str>) -> Output {
        self.kiln_bytes(args, stdin.unwrap_or("").as_bytes())
    }

    /// [`Env::kiln`] with any bytes on stdin (a tar context).
    pub fn kiln_bytes(&self, args: &[&str], stdin: &[u8]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_kiln"));
        cmd.arg("--root").arg(self.root()).args(args);
        cmd.env_remove("SOURCE_DATE_EPOCH").env_remove("RUST_LOG");
        cmd.env_remove("BUILDX_NO_DEFAULT_ATTESTATIONS");
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let mut input = child.stdin.take().unwrap();
        // kiln may exit (a usage error) before it reads stdin; the write
        // then fails with EPIPE, which is the child's business, not ours.
        match input.write_all(stdin) {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
            r => r.unwrap(),
        }
        drop(input);
        child.wait_with_output().unwrap()
    }

    /// Runs `kiln --root ROOT ARGS` in a private mount namespace whose
    /// /etc/resolv.conf is a file holding `host_resolv`; checks that the run
    /// left that file as it was.
    pub fn kiln_with_host_resolv(&self, host_resolv: &str, args: &[&str]) -> Output {
        let fake = self.path("host-resolv.conf");
        fs::write(&fake, host_resolv).unwrap();
        let out = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c"])
            .arg(r#"mount --bind "$0" /etc/resolv.conf && exec "$@""#)
            .arg(&fake)
            .arg(env!("CARGO_BIN_EXE_kiln"))
            .arg("--root")
            .arg(self.root())
            .args(args)
            .env_remove("SOURCE_DATE_EPOCH")
            .env_remove("RUST_LOG")
            .output()
            .unwrap();
        assert_eq!(fs::read_to_string(&fake).unwrap(), host_resolv);
        out
    }

    /// `kiln build ARGS`, which must succeed; returns stdout.
    pub fn build(&self, args: &[&str]) -> String {
        let mut full = vec!["build", "--progress", "plain"];
        full.extend_from_slice(args);
        let out = self.kiln(&full, None);
        assert!(
            out.status.success(),
            "kiln {full:?} failed: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    pub fn store(&self) -> Store {
        kiln::store::open(&self.root()).unwrap()
    }

    /// The digest of the platform's image manifest `reference` names (inside
    /// its index when it has attestations): what "the same image" means
    /// when two builds name it differently (the attestation subjects carry
    /// the names, so their indexes differ).
    pub fn manifest_digest(&self, reference: &str) -> kiln::oci::Digest {
        let (desc, _, _) = self.image(reference);
        self.store().load_manifest(&desc).unwrap().1.digest
    }

    /// The image `reference` names, validated.
    pub fn image(&self, reference: &str) -> (Descriptor, Manifest, ImageConfig) {
        let store = self.store();
        let desc = store.resolve(reference).unwrap();
        kiln::oci::validate(&store, &desc).unwrap();
        let (m, c) = store.load_image(&desc).unwrap();
        (desc, m, c)
    }

    /// The flattened root filesystem of `reference` (via `-o type=local`
    /// would rebuild; this applies the stored layers directly).
    pub fn rootfs(&self, reference: &str) -> PathBuf {
        let (_, m, c) = self.image(reference);
        let out = self.path(&format!("rootfs-{}", reference.replace([':', '/'], "_")));
        let store = self.store();
        let img = kiln::builder::BuiltImage {
            manifest: store.resolve(reference).unwrap(),
            config_digest: m.config.digest,
            layers: kiln::oci::LayerBlob::of_image(&m, &c),
            config: c,
            remote: None,
            attestations: Vec::new(),
            index: None,
            others: Vec::new(),
            target: None,
        };
        kiln::builder::flatten(&store, &img, &out).unwrap();
        out
    }

    /// Builds the busybox base image (`busybox:latest`) from the host's
    /// static busybox with kiln itself: `FROM scratch` + COPY.
    pub fn busybox(&self) {
        let ctx = self.path("busybox-ctx");
        for d in ["bin", "etc", "tmp", "home/user"] {
            fs::create_dir_all(ctx.join(d)).unwrap();
        }
        fs::set_permissions(ctx.join("tmp"), fs::Permissions::from_mode(0o1777)).unwrap();
        fs::copy("/bin/busybox", ctx.join("bin/busybox")).unwrap();
        for applet in [
            "sh", "echo", "ls", "id", "cat", "mkdir", "rm", "touch", "stat", "test", "false",
        ] {
            symlink("busybox", ctx.join("bin").join(applet)).unwrap();
        }
        fs::write(
            ctx.join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000::/home/user:/bin/sh\n",
        )
        .unwrap();
        fs::write(
            ctx.join("etc/group"),
            "root:x:0:\nuser:x:1000:\nstaff:x:50:user\n",
        )
        .unwrap();
        fs::write(
            ctx.join("Dockerfile"),
            "FROM scratch\nCOPY . /\nCMD [\"sh\"]\n",
        )
        .unwrap();
        fs::write(ctx.join(".dockerignore"), "Dockerfile\n.dockerignore\n").unwrap();
        self.build(&["-q", "-t", "busybox", ctx.to_str().unwrap()]);
    }
}

/// `stat` of a path as `(mode & 07777, uid, gid)`.
pub fn attrs(p: &Path) -> (u32, u32, u32) {
    use std::os::unix::fs::MetadataExt;
    let m = fs::symlink_metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    (m.mode() & 0o7777, m.uid(), m.gid())
}

/// The history `created_by` lines of a config.
pub fn created_by(c: &ImageConfig) -> Vec<(String, bool)> {
    c.history
        .iter()
        .map(|h| (h.created_by.clone().unwrap_or_default(), h.empty_layer))
        .collect()
}
