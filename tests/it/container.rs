//! kiln inside a real unprivileged container (issue 12: "kaniko's place"): runc or
//! crun with `docker run`'s default configuration (see `container/harness.rs`),
//! with and without a user namespace, its root busybox and the test's kiln, or
//! kiln's own debug image. The build there must give the same image manifest
//! as the root build of the same Dockerfile on the host.

#[path = "container/harness.rs"]
pub mod harness;

use std::path::Path;
use std::process::Command;

use harness::{Container, Runtime, KILN};

use crate::build::Env;
use crate::common::run;

/// RUN (new, changed, deleted files, a symlink, chown and chmod), COPY --chown
/// and a cache mount.
const DOCKERFILE: &str = "FROM busybox
COPY --chown=1000:1000 app.txt /app/app.txt
RUN --mount=type=cache,target=/var/cache/ci,id=ci \\
    echo cached > /var/cache/ci/stamp && mkdir -p /built && echo built > /built/file \\
 && chmod 0640 /built/file && chown 1000:1000 /built/file && ln -s file /built/link \\
 && echo changed >> /etc/passwd && rm /etc/group
";

/// The context of [`DOCKERFILE`], written into `dir`.
fn write_context(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("Dockerfile"), DOCKERFILE).unwrap();
    std::fs::write(dir.join("app.txt"), "app\n").unwrap();
}

/// The digest of the platform's image manifest in an OCI archive, as skopeo reads it.
pub fn archive_manifest_digest(tar: &Path) -> String {
    let out = run(Command::new("skopeo")
        .args(["inspect", "--format", "{{.Digest}}"])
        .arg(format!("oci-archive:{}", tar.display())));
    out.trim().to_string()
}

/// What the container runs: first proof that it is unprivileged (a new mount
/// namespace is refused: no CAP_SYS_ADMIN, and Docker's seccomp profile), then
/// the build, in the chroot isolation, since no namespace can be made.
const SCRIPT: &str = r#"if unshare -m true 2>/dev/null; then
  echo "unshare -m succeeded: this container is privileged" >&2; exit 99
fi
exec "$@""#;

/// Builds [`DOCKERFILE`] in a `runtime` container with busybox and the test's
/// kiln (`userns`: with a user namespace); the image manifest digest of the
/// archive it wrote.
fn build_in_container(runtime: Runtime, userns: bool) -> String {
    build_in(&Container::new(userns), runtime, "/bin/sh")
}

/// Builds [`DOCKERFILE`] in `c` (whose kiln is at [`KILN`], and `shell` a
/// POSIX shell with `unshare` on the PATH); the image manifest digest of the
/// archive it wrote.
pub fn build_in(c: &Container, runtime: Runtime, shell: &str) -> String {
    write_context(&c.host_path("/ctx"));
    let store = kiln::store::open(&c.host_path("/store")).unwrap();
    crate::fixtures::busybox_image(&store);
    drop(store);
    c.writable_dir("/store");
    c.writable_dir("/out");
    let build = [
        shell,
        "-c",
        SCRIPT,
        "sh",
        KILN,
        "--root",
        "/store",
        "build",
        "--progress",
        "plain",
        "--reproducible",
        "--isolation=chroot",
        "-o",
        "type=oci,dest=/out/image.tar",
        "/ctx",
    ];
    let out = c.run(runtime, &build, &[]);
    assert!(
        out.status.success(),
        "kiln build in a {runtime:?} container failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    archive_manifest_digest(&c.host_path("/out/image.tar"))
}

/// The manifest digest of [`DOCKERFILE`] built as root on the host, in
/// kiln's namespace sandbox.
pub fn root_build() -> String {
    let env = Env::new();
    crate::fixtures::busybox_image(&env.store());
    let ctx = env.path("ctx");
    write_context(&ctx);
    let tar = env.path("host.tar");
    env.build(&[
        "--reproducible",
        "-o",
        &format!("type=oci,dest={}", tar.display()),
        ctx.to_str().unwrap(),
    ]);
    archive_manifest_digest(&tar)
}

#[test]
fn a_build_in_an_unprivileged_container_gives_the_root_builds_image() {
    let host = root_build();
    assert_eq!(build_in_container(Runtime::Runc, false), host, "runc");
    assert_eq!(
        build_in_container(Runtime::Crun, true),
        host,
        "crun, user namespace"
    );
}

/// kiln's image as a CI job runs it: the debug target (`scripts/image
/// --debug`, with the test's kiln) unpacked as the root of an unprivileged
/// container with a user namespace, its kiln building [`DOCKERFILE`].
#[test]
fn kilns_debug_image_builds_in_an_unprivileged_container() {
    let dir = tempfile::tempdir().unwrap();
    let rootfs = dir.path().join("rootfs");
    let unpack = format!("type=local,dest={}", rootfs.display());
    let tar = dir.path().join("kiln-debug.tar");
    crate::ciimage::scripts_image(&["--debug"], &tar, &["-o", &unpack]);
    let job = Container::from_rootfs(&rootfs, true);
    assert_eq!(build_in(&job, Runtime::Runc, "/busybox/sh"), root_build());
}
