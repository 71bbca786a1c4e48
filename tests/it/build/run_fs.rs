//! What RUN writes reaches the image exactly: created, changed and deleted
//! files, a directory replaced (opaque), symlinks, hard links, setuid and
//! sticky modes, xattrs, owners; ENV and ARG reach the command in shell and
//! exec form; a failing command fails the build. Read back with `umoci
//! unpack` (a real OCI tool) and from the layer tars themselves.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use super::{attrs, Env};
use crate::common::run;

/// Builds `testdata/build/setxattr.c` as a static binary into `dir`.
fn setxattr_tool(dir: &Path) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/build/setxattr.c");
    run(Command::new("cc")
        .args(["-static", "-O2", "-o"])
        .arg(dir.join("setxattr"))
        .arg(&src));
}

/// The entry names of every layer of `reference`, per layer.
fn layer_entries(env: &Env, reference: &str) -> Vec<Vec<String>> {
    let (_, m, _) = env.image(reference);
    let store = env.store();
    m.layers
        .iter()
        .map(|l| {
            let blob = fs::File::open(store.blob_path(&l.digest)).unwrap();
            tar::Archive::new(flate2::read::MultiGzDecoder::new(blob))
                .entries()
                .unwrap()
                .map(|e| e.unwrap().path().unwrap().display().to_string())
                .collect()
        })
        .collect()
}

const DOCKERFILE: &str = r#"FROM busybox
COPY setxattr /usr/local/bin/setxattr
RUN mkdir -p /d /keep && echo a > /d/a && echo old > /keep/changed && echo gone > /keep/deleted
RUN rm -rf /d && mkdir /d && echo b > /d/b \
 && echo new > /keep/changed && rm /keep/deleted \
 && ln -s ../keep/changed /keep/link && ln /keep/changed /keep/hard \
 && touch /keep/suid && chmod 4755 /keep/suid && mkdir /keep/sticky && chmod 1777 /keep/sticky \
 && touch /keep/owned && chown 1000:1000 /keep/owned \
 && touch /keep/attr && setxattr /keep/attr user.kiln yes
ARG A=from-arg
ENV E=from-env
RUN echo "$A $E" > /shell-form
RUN ["/bin/sh", "-c", "echo \"$A $E\" > /exec-form"]
"#;

#[test]
fn run_changes_reach_the_image_as_umoci_reads_it() {
    let env = Env::new();
    env.busybox();
    let ctx = env.context("ctx", &[("Dockerfile", DOCKERFILE)]);
    setxattr_tool(&ctx);
    let layout = env.path("layout");
    env.build(&[
        // umoci 0.4.7 cannot pick the image out of an attested index.
        "--provenance=false",
        "-t",
        "runfs",
        "-o",
        &format!("type=oci,dest={},tar=false", layout.display()),
        ctx.to_str().unwrap(),
    ]);
    kiln::oci::validate_layout(&layout).unwrap();
    let bundle = env.path("bundle");
    run(Command::new("umoci").args([
        "unpack",
        "--image",
        &format!("{}:latest", layout.display()),
        bundle.to_str().unwrap(),
    ]));
    let r = bundle.join("rootfs");
    let read = |p: &str| fs::read_to_string(r.join(p)).unwrap();
    // The replaced directory holds only what the second RUN put there.
    assert!(
        !r.join("d/a").exists(),
        "opaque dir must hide the old entries"
    );
    assert_eq!(read("d/b"), "b\n");
    assert_eq!(read("keep/changed"), "new\n");
    assert!(!r.join("keep/deleted").exists());
    assert_eq!(
        fs::read_link(r.join("keep/link")).unwrap().to_str(),
        Some("../keep/changed")
    );
    let (hard, changed) = (
        fs::metadata(r.join("keep/hard")).unwrap(),
        fs::metadata(r.join("keep/changed")).unwrap(),
    );
    assert_eq!(hard.ino(), changed.ino(), "a hard link stays one inode");
    assert_eq!(attrs(&r.join("keep/suid")).0, 0o4755);
    assert_eq!(attrs(&r.join("keep/sticky")).0, 0o1777);
    assert_eq!(attrs(&r.join("keep/owned")), (0o644, 1000, 1000));
    assert_eq!(
        xattr::get(r.join("keep/attr"), "user.kiln").unwrap(),
        Some(b"yes".to_vec())
    );
    assert_eq!(read("shell-form"), "from-arg from-env\n");
    assert_eq!(read("exec-form"), "from-arg from-env\n");

    // In the layer itself: the opaque marker, the whiteout, a hard link
    // entry, and nothing from the sandbox's own mounts.
    let layers = layer_entries(&env, "runfs");
    let second = &layers[layers.len() - 3];
    for want in [
        "d/.wh..wh..opq",
        "keep/.wh.deleted",
        "keep/hard",
        "keep/link",
    ] {
        assert!(second.iter().any(|e| e == want), "{want} not in {second:?}");
    }
    for layer in &layers {
        for e in layer {
            assert!(
                !["proc/", "sys/", "dev/", "etc/resolv.conf", "etc/hosts"]
                    .iter()
                    .any(|p| e.starts_with(p)),
                "sandbox mount {e} leaked into a layer"
            );
        }
    }
}

#[test]
fn a_failing_run_fails_the_build_with_its_exit_code_and_output() {
    let (env, ctx) = Env::busybox_dockerfile(
        "FROM busybox\nRUN echo ok\nRUN echo about to fail >&2 && exit 7\n",
    );
    let out = env.kiln(
        &["build", "--progress", "plain", ctx.to_str().unwrap()],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("Dockerfile:3"), "{stderr}");
    assert!(stderr.contains("about to fail"), "{stderr}");
    assert!(stderr.contains("exit code: 7"), "{stderr}");
}

/// The default sandbox filters system calls that capabilities do not cover
/// (Docker's default seccomp profile's intent): no new namespaces, so no
/// user namespace to regain capabilities in; no_new_privs stays off so setuid
/// binaries work. `--security=insecure` runs unfiltered.
#[test]
fn run_is_seccomp_filtered_unless_insecure() {
    let (env, ctx) = Env::busybox_dockerfile(
        "FROM busybox\n\
             RUN grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status > /status \
              && (unshare -U true 2> /unshare-err; echo $? > /unshare-rc) \
              && (unshare -n true 2>/dev/null; echo $? > /unshare-net-rc)\n\
             RUN --security=insecure grep '^Seccomp:' /proc/self/status > /insecure-status \
              && unshare -U true && echo ok > /insecure-unshare\n",
    );
    let c = ctx.to_str().unwrap();
    let refused = env.kiln(&["build", c], None);
    assert_eq!(refused.status.code(), Some(2), "insecure needs --allow");
    env.build(&["--allow", "security.insecure", "-t", "sec", c]);
    let r = env.rootfs("sec");
    let read = |p: &str| fs::read_to_string(r.join(p)).unwrap();
    let status = read("status");
    assert!(status.contains("Seccomp:\t2"), "{status}");
    assert!(status.contains("NoNewPrivs:\t0"), "{status}");
    assert_ne!(
        read("unshare-rc").trim(),
        "0",
        "a user namespace was created"
    );
    assert!(
        read("unshare-err").contains("ermitted"),
        "{}",
        read("unshare-err")
    );
    assert_ne!(read("unshare-net-rc").trim(), "0");
    assert!(read("insecure-status").contains("Seccomp:\t0"));
    assert_eq!(read("insecure-unshare"), "ok\n");
}

/// `$HOME` as runc sets it: the passwd entry's home, `/` for a uid with
/// none; an explicit ENV HOME wins.
#[test]
fn run_home_comes_from_the_passwd_entry() {
    let (env, ctx) = Env::busybox_dockerfile(
        "FROM busybox\n\
         RUN echo \"$HOME\" > /tmp/root-home\n\
         USER user\nRUN echo \"$HOME\" > /tmp/user-home\n\
         USER 4242\nRUN echo \"$HOME\" > /tmp/none-home\n\
         ENV HOME=/explicit\nRUN echo \"$HOME\" > /tmp/env-home\n",
    );
    env.build(&["-t", "home", ctx.to_str().unwrap()]);
    let r = env.rootfs("home");
    let read = |p: &str| fs::read_to_string(r.join("tmp").join(p)).unwrap();
    assert_eq!(read("root-home"), "/root\n");
    assert_eq!(read("user-home"), "/home/user\n");
    assert_eq!(read("none-home"), "/\n");
    assert_eq!(read("env-home"), "/explicit\n");
}
