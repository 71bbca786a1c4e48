//! `kiln build` with a registry: a FROM the store lacks is pulled, `--pull`
//! sees a tag that moved, and `--push` / `-o type=registry` push the result.

use kiln::oci::registry::push;
use kiln::oci::Platform;

use super::images::{client, image};
use super::server::{Auth, Registry};
use super::{pull_back, reference};
use crate::build::Env;

#[test]
fn from_pulls_missing_base_and_push_sends_the_result() {
    let reg = Registry::start(false, Auth::None);
    let (_d, src) = crate::oci::store();
    let v1 = image(&src, "base-v1", &[2000], &Platform::host());
    let v2 = image(&src, "base-v2", &[3000], &Platform::host());
    let base = reference(&reg, "base:1");
    push(&client(None), &src, &v1, &base, None).unwrap();

    let env = Env::new();
    let ctx = env.context("ctx", &[("a", "hello\n")]);
    let ctx = ctx.to_str().unwrap();
    let df = format!("FROM {}/base:1\nCOPY a /a\n", reg.host);
    std::fs::write(env.path("Dockerfile"), &df).unwrap();
    let file = env.path("Dockerfile");
    let file = file.to_str().unwrap();
    let out_name = format!("{}/out:1", reg.host);
    let since = reg.log_len();
    let out = env.kiln(
        &[
            "build",
            "--progress",
            "plain",
            "-f",
            file,
            "-t",
            &out_name,
            "--push",
            ctx,
        ],
        None,
    );
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(
        log.contains(&format!("[internal] pulling {}/base:1", reg.host)),
        "{log}"
    );
    // Manifest and config now; the layer when COPY reads the base's tree.
    assert!(log.contains("layers fetched when needed"), "{log}");
    assert!(
        log.contains(&format!("pushed manifest for {out_name}@sha256:")),
        "{log}"
    );
    // The base layer is mounted from the repository it was pulled from.
    let requests = reg.requests_since(since);
    let mounted = requests.iter().filter(|l| {
        l.starts_with("POST /v2/out/blobs/uploads/")
            && l.contains("from=base")
            && l.ends_with(" 201")
    });
    assert_eq!(mounted.count(), 1, "{requests:?}");
    let (_, m, _) = env.image(&out_name);
    let first_base = src.load_image(&v1).unwrap().0.layers[0].digest;
    assert_eq!(m.layers[0].digest, first_base, "built on the pulled base");

    // The pushed result reads back from the registry.
    let (_d2, _, got) = pull_back(&reference(&reg, "out:1"));
    assert_eq!(got.manifest.digest, env.manifest_digest(&out_name));

    // The tag moves: without --pull the stored base is used, with it the new one.
    push(&client(None), &src, &v2, &base, None).unwrap();
    let second_base = src.load_image(&v2).unwrap().0.layers[0].digest;
    env.build(&["-f", file, "-t", "local:1", ctx]);
    assert_eq!(env.image("local:1").1.layers[0].digest, first_base);
    env.build(&["-f", file, "-t", "local:2", "--pull", ctx]);
    assert_eq!(env.image("local:2").1.layers[0].digest, second_base);

    // COPY --from a registry image pulls it too.
    let tool = reference(&reg, "tool:1");
    push(&client(None), &src, &v2, &tool, None).unwrap();
    let df2 = format!(
        "FROM scratch\nCOPY --from={}/tool:1 /data /data\n",
        reg.host
    );
    std::fs::write(env.path("Dockerfile.copy"), df2).unwrap();
    let f2 = env.path("Dockerfile.copy");
    env.build(&["-f", f2.to_str().unwrap(), "-t", "copied:1", ctx]);
    let root = env.rootfs("copied:1");
    assert!(root.join("data/base-v2-0").is_file());

    // -o type=registry,name=… pushes too.
    let other = format!("{}/other:7", reg.host);
    env.build(&[
        "-f",
        file,
        "-o",
        &format!("type=registry,name={other}"),
        ctx,
    ]);
    pull_back(&reference(&reg, "other:7"));
}

#[test]
fn pull_never_keeps_to_the_store_and_push_needs_a_name() {
    let env = Env::new();
    let ctx = env.context("ctx", &[("a", "x")]);
    let ctx = ctx.to_str().unwrap();
    std::fs::write(
        env.path("Dockerfile"),
        "FROM 127.0.0.1:1/nothere:1\nCOPY a /a\n",
    )
    .unwrap();
    let file = env.path("Dockerfile");
    let out = env.kiln(
        &["build", "--pull=never", "-f", file.to_str().unwrap(), ctx],
        None,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("not in the local store"), "{err}");
    // Missing: the pull is tried, and its failure names the image.
    let out = env.kiln(&["build", "-f", file.to_str().unwrap(), ctx], None);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("pulling base image 127.0.0.1:1/nothere:1"),
        "{err}"
    );
    let out = env.kiln(
        &["build", "--push", "-f", file.to_str().unwrap(), ctx],
        None,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("needs a name"), "{err}");
}

/// `FROM name@sha256:<index>` pulls once; later builds, even with --pull and
/// with the registry gone, resolve it from the store (content under a digest
/// never changes).
#[test]
fn a_digest_pinned_base_resolves_offline_once_pulled() {
    let reg = Registry::start(false, Auth::None);
    let (_d, src) = crate::oci::store();
    let host = Platform::host();
    let other = super::images::platform("s390x", None);
    let a = image(&src, "pinned-host", &[1500], &host);
    let b = image(&src, "pinned-other", &[1600], &other);
    let idx = super::images::index(&src, &[(a.clone(), host.clone()), (b, other)]);
    push(
        &client(None),
        &src,
        &idx,
        &reference(&reg, "pinned:1"),
        None,
    )
    .unwrap();

    let env = Env::new();
    let ctx = env.context("ctx", &[("a", "x")]);
    let ctx = ctx.to_str().unwrap();
    let df = format!("FROM {}/pinned@{}\nCOPY a /a\n", reg.host, idx.digest);
    std::fs::write(env.path("Dockerfile"), df).unwrap();
    let file = env.path("Dockerfile");
    let file = file.to_str().unwrap();
    env.build(&["-f", file, "-t", "one:1", ctx]);
    let base_layer = src.load_image(&a).unwrap().0.layers[0].digest;
    assert_eq!(env.image("one:1").1.layers[0].digest, base_layer);

    drop(reg);
    let out = env.kiln(
        &[
            "build",
            "--progress",
            "plain",
            "--pull",
            "-f",
            file,
            "-t",
            "two:1",
            ctx,
        ],
        None,
    );
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(!log.contains("[internal] pulling"), "{log}");
    assert_eq!(env.image("two:1").1.layers[0].digest, base_layer);
}
