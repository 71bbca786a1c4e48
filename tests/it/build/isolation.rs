//! `--isolation`: a build in a chroot gives the image the sandbox gives, and `auto`
//! falls back to chroot (announced) where namespaces are refused for real: kiln run
//! by `setpriv` without CAP_SYS_ADMIN, so `unshare` fails with EPERM as under
//! Docker's default profile.

use std::process::{Command, Output};

use super::Env;

/// RUN creating, changing and deleting files and dirs, chmod, chown, symlinks, hard
/// links, a dir replaced (opaque), a rename, /dev/null, a file opened for writing
/// but unchanged (overlayfs copies it up), a bind mount over an image file, a secret,
/// a tmpfs and a cache mount (written by one RUN, read by the next), a heredoc, COPY
/// --chown, and a RUN as a user.
const DOCKERFILE: &str = r#"FROM busybox
COPY --chown=1000:50 a.txt /home/user/a.txt
RUN --mount=type=cache,target=/cache --mount=type=secret,id=s,target=/run/s \
    echo hi > /cache/x && cat /run/s > /dev/null && \
    mkdir -p /opt/d/e && echo new > /opt/d/e/f && echo more >> /etc/passwd && \
    rm /etc/group && busybox chmod 711 /home && busybox ln -s /opt/d /opt/link && \
    busybox ln /opt/d/e/f /opt/d/hard && rm -rf /home/user && mkdir /home/user && \
    echo u > /home/user/n && busybox chmod 4755 /opt/d/e/f && busybox chown 1000:50 /opt/d/e
RUN --mount=type=cache,target=/cache --mount=type=bind,source=a.txt,target=/etc/passwd \
    cat /cache/x /etc/passwd > /seen && busybox mv /opt/d/e /opt/moved && rm /bin/false
RUN --mount=type=tmpfs,target=/scratch <<EOF
echo kept > /scratch/t
cat /scratch/t > /from-heredoc
: >> /etc/passwd
EOF
USER user
RUN id > /tmp/id && echo me > /tmp/me
"#;

fn setup() -> (Env, String, String) {
    let (env, ctx) = Env::busybox_dockerfile(DOCKERFILE);
    std::fs::write(ctx.join("a.txt"), "from the context\n").unwrap();
    let secret = env.path("secret");
    std::fs::write(&secret, "s3cret-value\n").unwrap();
    let secret = format!("id=s,src={}", secret.display());
    (env, ctx.to_str().unwrap().to_string(), secret)
}

fn build_args<'a>(ctx: &'a str, secret: &'a str, tag: &'a str) -> Vec<&'a str> {
    vec![
        "build",
        "--progress",
        "plain",
        "--reproducible",
        "--no-cache",
        "--provenance=false",
        "--secret",
        secret,
        "-t",
        tag,
        ctx,
    ]
}

/// kiln as root without CAP_SYS_ADMIN (and without `also_drop`): no namespace can be
/// made, while every other capability Docker grants stays.
fn kiln_without(env: &Env, also_drop: &str, args: &[&str]) -> Output {
    let caps = format!("-sys_admin{also_drop}");
    Command::new("setpriv")
        .args(["--bounding-set", &caps, "--inh-caps", &caps, "--"])
        .arg(env!("CARGO_BIN_EXE_kiln"))
        .arg("--root")
        .arg(env.root())
        .args(args)
        .env_remove("SOURCE_DATE_EPOCH")
        .env_remove("KILN_ISOLATION")
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn chroot_builds_the_sandbox_image_and_auto_falls_back_to_it_announced() {
    let (env, ctx, secret) = setup();
    env.build(
        &[
            &build_args(&ctx, &secret, "iso:sandbox")[3..],
            &["--isolation=sandbox"],
        ]
        .concat(),
    );
    env.build(
        &[
            &build_args(&ctx, &secret, "iso:chroot")[3..],
            &["--isolation", "chroot"],
        ]
        .concat(),
    );
    let sandbox = env.manifest_digest("iso:sandbox");
    if env.manifest_digest("iso:chroot") != sandbox {
        for tag in ["iso:sandbox", "iso:chroot"] {
            let (_, m, _) = env.image(tag);
            for l in &m.layers {
                let p = env.root().join("blobs/sha256").join(l.digest.hex());
                let out = Command::new("tar")
                    .arg("--full-time")
                    .arg("-tvzf")
                    .arg(&p)
                    .output()
                    .unwrap();
                eprintln!(
                    "== {tag} {}\n{}",
                    l.digest,
                    String::from_utf8_lossy(&out.stdout)
                );
            }
        }
    }
    assert_eq!(
        env.manifest_digest("iso:chroot"),
        sandbox,
        "chroot and sandbox layers differ"
    );
    let root = env.rootfs("iso:chroot");
    let seen = std::fs::read_to_string(root.join("seen")).unwrap();
    assert_eq!(
        seen, "hi\nfrom the context\n",
        "the cache mount kept the first RUN's write"
    );
    let id = std::fs::read_to_string(root.join("tmp/id")).unwrap();
    assert!(id.starts_with("uid=1000(user) gid=1000"), "{id}");
    assert!(!root.join("run/s").exists() && !root.join("cache").exists());
    assert!(
        !root.join("dev/null").exists(),
        "the chroot's device nodes left the layer"
    );
    assert_eq!(
        std::fs::read_to_string(root.join("from-heredoc")).unwrap(),
        "kept\n"
    );
    assert!(!root.join("scratch").exists());
    // RUNs appended to the base's /etc/passwd in the root: its snapshot is as it was.
    crate::common::ok(env.kiln(&["fsck"], None));

    // auto, where unshare is refused: chroot, said once, and the same image.
    let out = kiln_without(&env, "", &build_args(&ctx, &secret, "iso:auto"));
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert_eq!(
        err.matches("RUN steps run with --isolation=chroot").count(),
        1,
        "announced once: {err}"
    );
    assert!(
        err.contains("unsharing namespaces"),
        "names what was refused: {err}"
    );
    assert_eq!(env.manifest_digest("iso:auto"), sandbox);

    // The sandbox asked for by name fails there, naming the refusal.
    let mut args = build_args(&ctx, &secret, "iso:no");
    args.push("--isolation=sandbox");
    let out = kiln_without(&env, "", &args);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("unsharing namespaces"),
        "{}",
        stderr(&out)
    );

    // Nothing works: the error names what chroot lacks.
    let out = kiln_without(&env, ",-sys_chroot", &build_args(&ctx, &secret, "iso:none"));
    let err = stderr(&out);
    assert!(!out.status.success());
    assert!(err.contains("no isolation for RUN works here"), "{err}");
    assert!(err.contains("CAP_SYS_CHROOT"), "{err}");
}

#[test]
fn chroot_refuses_what_it_cannot_honour_by_name() {
    let (env, ctx) = Env::busybox_dockerfile("FROM busybox\nRUN --network=none true\n");
    let out = env.kiln(
        &["build", "--isolation=chroot", ctx.to_str().unwrap()],
        None,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("RUN --network=none cannot be honoured with --isolation=chroot"),
        "{err}"
    );
    assert!(err.contains("Dockerfile:2"), "names the line: {err}");
}
