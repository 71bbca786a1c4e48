//! `--compression` is an output property: a rebuild in another compression
//! runs no step, re-encodes only the layers it lacks in that compression
//! (recording them, so the next such build is a pure hit), and never touches
//! the base image's layers.

use std::fs;

use kiln::oci::spec::media_type;

use super::cache::steps;
use super::Env;

fn blob_count(env: &Env) -> usize {
    fs::read_dir(env.root().join("blobs/sha256"))
        .unwrap()
        .count()
}

/// Builds `ctx` with `--compression c`; returns (steps that ran, manifest digest).
fn build(env: &Env, ctx: &str, c: &str) -> (usize, String) {
    let args = [
        "build",
        "--progress",
        "plain",
        "--reproducible",
        // Blob counts below are about layer encodings: no attestation blobs.
        "--provenance=false",
        "-t",
        "img",
    ];
    let out = env.kiln(&[&args[..], &["--compression", c, ctx]].concat(), None);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{c}: {err}");
    let ran = steps(&err).iter().filter(|s| !s.1).count();
    (ran, env.image("img").0.digest.to_string())
}

/// The media types of the image's layers (`env.image` validates it).
fn layer_types(env: &Env) -> Vec<String> {
    layers(env).into_iter().map(|l| l.0).collect()
}

/// (media type, digest) of the image's layers.
fn layers(env: &Env) -> Vec<(String, String)> {
    let (_, m, _) = env.image("img");
    m.layers
        .iter()
        .map(|l| (l.media_type.clone(), l.digest.to_string()))
        .collect()
}

#[test]
fn compression_change_keeps_steps_cached_and_reencodes_only_missing_blobs() {
    let (env, ctx) = Env::busybox_dockerfile("FROM busybox\nCOPY a /a\nRUN echo hi > /b\n");
    fs::write(ctx.join("a"), "a").unwrap();
    let ctx = ctx.to_str().unwrap();
    let gzip = media_type::OCI_LAYER_GZIP;
    let zstd = media_type::OCI_LAYER_ZSTD;
    let none = media_type::OCI_LAYER;
    let (ran, gz_id) = build(&env, ctx, "gzip");
    assert_eq!(ran, 2, "the first --reproducible build runs both steps");
    assert_eq!(layer_types(&env), [gzip, gzip, gzip]);
    let (ran, zstd_id) = build(&env, ctx, "zstd");
    let zstd_layers = layers(&env);
    assert_eq!(ran, 0, "a compression change runs no step");
    // COMPAT(buildkit): base layers are kept as stored (BuildKit re-encodes
    // them only with force-compression=true).
    assert_eq!(layer_types(&env), [gzip, zstd, zstd]);
    let blobs = blob_count(&env);
    assert_eq!(build(&env, ctx, "zstd"), (0, zstd_id.clone()));
    assert_eq!(
        blob_count(&env),
        blobs,
        "a second zstd build re-encodes nothing"
    );
    assert_eq!(
        build(&env, ctx, "gzip"),
        (0, gz_id.clone()),
        "back to gzip: the same image"
    );
    let (ran, _) = build(&env, ctx, "uncompressed");
    assert_eq!(ran, 0);
    assert_eq!(layer_types(&env), [gzip, none, none]);
    // prune keeps every recorded encoding: all three are still pure hits.
    let out = env.kiln(&["rmi", "img"], None);
    assert!(out.status.success());
    let out = env.kiln(&["prune"], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let blobs = blob_count(&env);
    for c in ["gzip", "zstd", "uncompressed"] {
        assert_eq!(build(&env, ctx, c).0, 0, "{c} after prune");
    }
    assert!(
        blob_count(&env) <= blobs + 6,
        "only configs and manifests were written"
    );
    // --cache-to carries every encoding it has: an importer building in
    // gzip receives the zstd blobs too.
    let cache = env.path("cache");
    let to = format!("type=local,dest={},mode=max", cache.display());
    let out = env.kiln(&["build", "--reproducible", "--cache-to", &to, ctx], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let other = Env::new();
    let saved = env.path("busybox.tar");
    let ok = |o: std::process::Output| assert!(o.status.success(), "{o:?}");
    ok(env.kiln(&["save", "busybox", "-o", saved.to_str().unwrap()], None));
    ok(other.kiln(&["load", "-i", saved.to_str().unwrap()], None));
    let from = format!("type=local,src={}", cache.display());
    let args = [
        "build",
        "--progress",
        "plain",
        "--reproducible",
        "--cache-from",
        &from,
        ctx,
    ];
    let out = other.kiln(&args, None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        steps(&String::from_utf8_lossy(&out.stderr))
            .iter()
            .filter(|s| !s.1)
            .count(),
        0
    );
    for (_, digest) in &zstd_layers[1..] {
        let d = kiln::oci::Digest::parse(digest).unwrap();
        assert!(other.store().has_blob(&d), "zstd blob {digest} imported");
    }
    let fsck = env.kiln(&["fsck"], None);
    assert!(
        fsck.status.success(),
        "{}",
        String::from_utf8_lossy(&fsck.stderr)
    );
    // A re-encoded blob is byte for byte what packing in that compression
    // makes: a fresh zstd build in another store gives the same image.
    let fresh = Env::new();
    fresh.busybox();
    let ctx2 = fresh.context(
        "ctx",
        &[
            ("a", "a"),
            ("Dockerfile", "FROM busybox\nCOPY a /a\nRUN echo hi > /b\n"),
        ],
    );
    let (ran, _) = build(&fresh, ctx2.to_str().unwrap(), "zstd");
    assert_eq!(ran, 2);
    assert_eq!(
        layers(&fresh)[1..],
        zstd_layers[1..],
        "re-encoded zstd equals packed zstd"
    );
}
