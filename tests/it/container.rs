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

/// The peers' `b-multistage` bench (`testdata/bench/b-multistage`, a copy of
/// `../shared/peers/bench/b-multistage/Dockerfile`): two stages with a RUN
/// each, the last one copying from both. Its context as the bench's
/// `make-context.sh` makes it: `one.txt` and `two.txt`, 16 lines of 64 bytes.
fn write_multistage_context(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let dockerfile = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/testdata/bench/b-multistage/Dockerfile"
    );
    std::fs::copy(dockerfile, dir.join("Dockerfile")).unwrap();
    for stage in ["one", "two"] {
        let text: String = (1..=16)
            .map(|i| format!("{:<63}\n", format!("{stage} line {i}")))
            .collect();
        std::fs::write(dir.join(format!("{stage}.txt")), text).unwrap();
    }
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
    build_context_in(c, runtime, shell, write_context).0
}

/// Builds the context `write` makes in `c`, as [`build_in`] does; the
/// manifest digest and kiln's stderr.
fn build_context_in(
    c: &Container,
    runtime: Runtime,
    shell: &str,
    write: fn(&Path),
) -> (String, String) {
    write(&c.host_path("/ctx"));
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
    (
        archive_manifest_digest(&c.host_path("/out/image.tar")),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The manifest digest of [`DOCKERFILE`] built as root on the host, in
/// kiln's namespace sandbox.
pub fn root_build() -> String {
    root_build_of(write_context)
}

/// The manifest digest of the context `write` makes, built as root on the host.
fn root_build_of(write: fn(&Path)) -> String {
    let env = Env::new();
    crate::fixtures::busybox_image(&env.store());
    let ctx = env.path("ctx");
    write(&ctx);
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

/// The peers' `b-multistage` bench (two stages, a RUN each, `COPY --from`
/// both) built in an unprivileged runc container with a user namespace gives
/// the root build's image (`benches/rootless.sh` does this for every bench,
/// and times it). The kernel refuses device nodes in a user namespace, so the
/// chroot's RUN gets no `/dev/null`: the progress says so.
#[test]
fn the_multistage_bench_builds_in_a_container_as_on_the_host() {
    let host = root_build_of(write_multistage_context);
    let c = Container::new(true);
    let (inside, stderr) = build_context_in(&c, Runtime::Runc, "/bin/sh", write_multistage_context);
    assert_eq!(inside, host);
    assert!(
        stderr.contains("RUN steps in the chroot have no /dev/null, /dev/zero"),
        "{stderr}"
    );
}

/// Not a test: makes the runc bundle `benches/rootless.sh` runs its
/// container builds in, with this harness's configuration (so the bench and
/// the tests run kiln in the same container). Environment:
/// `KILN_BENCH_BUNDLE` (where the bundle goes: a new path on the temp dir's
/// filesystem), `KILN_BENCH_KILN` (the kiln to bind in), `KILN_BENCH_USERNS=1`
/// (a user namespace), `KILN_BENCH_BINDS` (`HOST=INSIDE,…`, bound read-only).
/// The container runs `/bin/sh /job.sh` after checking it cannot unshare; the
/// bench writes `job.sh` into the bundle's rootfs. `/store` and `/out` are
/// the container root's.
#[test]
#[ignore = "a tool for benches/rootless.sh, not a test"]
fn bench_bundle() {
    let var = |k: &str| std::env::var(k).unwrap_or_else(|_| panic!("{k} is not set"));
    let userns = std::env::var("KILN_BENCH_USERNS").is_ok_and(|v| v == "1");
    let mut c = Container::new(userns).with_kiln(Path::new(&var("KILN_BENCH_KILN")));
    for bind in var("KILN_BENCH_BINDS").split(',').filter(|b| !b.is_empty()) {
        let (host, inside) = bind.split_once('=').expect("KILN_BENCH_BINDS: HOST=INSIDE");
        c.bind_ro(Path::new(host), inside);
    }
    c.writable_dir("/store");
    c.writable_dir("/out");
    c.write_config(&["/bin/sh", "-c", SCRIPT, "sh", "/bin/sh", "/job.sh"], &[]);
    c.keep_at(Path::new(&var("KILN_BENCH_BUNDLE")));
}
