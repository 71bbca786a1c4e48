//! The distribution client against a real registry (Debian's
//! `docker-registry`) on loopback: pull, push, auth, TLS, and the failures a
//! network brings (dropped connections, corrupt blobs, registry errors).

mod attest;
mod auth;
mod build;
mod cache;
mod cli;
mod flaky;
pub(crate) mod forward;
mod images;
mod lazy;
mod multiarch;
mod proxy;
pub(crate) mod server;
mod token;

use std::process::Command;

use kiln::oci::registry::{pull, push, ClientOptions, RegistryError};
use kiln::oci::{validate, validate_layout, Platform, Reference, StoreError};

use crate::oci::store;
use images::{client, client_with, image, index, noise, options, platform};
use server::{Auth, Registry};

/// Pulls `r` into a fresh store and validates it: a pushed image read back.
fn pull_back(
    r: &Reference,
) -> (
    tempfile::TempDir,
    kiln::oci::Store,
    kiln::oci::registry::PulledImage,
) {
    let (dir, check) = store();
    let got = pull(&client(None), &check, r, &Platform::host()).unwrap();
    validate(&check, &got.manifest).unwrap();
    (dir, check, got)
}

fn reference(reg: &Registry, name: &str) -> Reference {
    Reference::parse(&format!("{}/{name}", reg.host)).unwrap()
}

fn has_skopeo() -> bool {
    Command::new("skopeo").arg("--version").output().is_ok()
}

fn skopeo(args: &[&str]) -> String {
    let out = Command::new("skopeo")
        .args(args)
        .output()
        .expect("running skopeo (apt-get install skopeo; scripts/test installs it)");
    assert!(
        out.status.success(),
        "skopeo {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The image `skopeo` pushed from an OCI layout is pulled by kiln, verified,
/// stored under the registry's manifest digest and named.
#[test]
fn pull_single_platform_image_pushed_by_skopeo() {
    let reg = Registry::start(false, Auth::None);
    let (_d, src) = store();
    let img = image(&src, "single", &[3000, 70_000], &Platform::host());
    let layout = tempfile::tempdir().unwrap();
    let named = vec![kiln::oci::NamedImage {
        name: Some("app:v1".into()),
        descriptor: img.clone(),
    }];
    kiln::oci::write_layout(&src, &named, layout.path()).unwrap();
    let dest = format!("docker://{}/single/app:v1", reg.host);
    let from = format!("oci:{}:v1", layout.path().display());
    skopeo(&["copy", "--dest-tls-verify=false", &from, &dest]);

    let (_d2, dst) = store();
    let r = reference(&reg, "single/app:v1");
    let got = pull(&client(None), &dst, &r, &Platform::host()).unwrap();
    // skopeo re-serializes the manifest: kiln must keep the registry's bytes.
    let raw = skopeo(&["inspect", "--raw", "--tls-verify=false", &dest]);
    assert_eq!(got.manifest.digest, kiln::oci::Digest::of(raw.as_bytes()));
    assert_eq!(dst.read_blob(&got.manifest.digest).unwrap(), raw.as_bytes());
    assert_eq!(
        dst.config_digest(&got.manifest).unwrap(),
        src.config_digest(&img).unwrap()
    );
    assert_eq!(got.fetched.len(), 3);
    validate(&dst, &got.manifest).unwrap();
    assert_eq!(dst.resolve(&r.familiar()).unwrap(), got.manifest);
    // Again: everything is there already.
    let again = pull(&client(None), &dst, &r, &Platform::host()).unwrap();
    assert!(again.fetched.is_empty());
    assert_eq!(again.present.len(), 3);

    // Docker v2 schema 2: skopeo converts, kiln pulls the docker media types.
    let v2s2 = format!("docker://{}/single/app:v2s2", reg.host);
    skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        "--format",
        "v2s2",
        &from,
        &v2s2,
    ]);
    let (_d3, dst) = store();
    let r = reference(&reg, "single/app:v2s2");
    let got = pull(&client(None), &dst, &r, &Platform::host()).unwrap();
    assert_eq!(
        got.manifest.media_type,
        kiln::oci::media_type::DOCKER_MANIFEST
    );
    validate(&dst, &got.manifest).unwrap();
}

/// An index with two platforms: each pull gets its platform's manifest, and
/// a platform the index lacks is named in the error with what it has.
#[test]
fn pull_resolves_an_index_to_the_platform() {
    let reg = Registry::start(false, Auth::None);
    let (_d, src) = store();
    let amd = platform("amd64", None);
    let arm = platform("arm64", Some("v8"));
    let a = image(&src, "amd", &[1000], &amd);
    let b = image(&src, "arm", &[2000], &arm);
    let idx = index(&src, &[(a.clone(), amd.clone()), (b.clone(), arm.clone())]);
    let r = reference(&reg, "multi:latest");
    let pushed = push(&client(None), &src, &idx, &r, None).unwrap();
    assert_eq!(pushed.digest, Some(idx.digest));

    for (want, expect) in [(&amd, &a), (&platform("arm64", None), &b)] {
        let (_d2, dst) = store();
        let got = pull(&client(None), &dst, &r, want).unwrap();
        assert_eq!(got.manifest.digest, expect.digest, "{want:?}");
        assert_eq!(got.index.as_ref().map(|i| i.digest), Some(idx.digest));
        validate(&dst, &got.manifest).unwrap();
    }
    let (_d3, dst) = store();
    let e = pull(&client(None), &dst, &r, &platform("s390x", None)).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, RegistryError::NoPlatform { .. }), "{msg}");
    assert!(
        msg.contains("linux/s390x") && msg.contains("linux/arm64/v8"),
        "{msg}"
    );
    if has_skopeo() {
        let raw = skopeo(&[
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{}/multi:latest", reg.host),
        ]);
        assert_eq!(kiln::oci::Digest::of(raw.as_bytes()), idx.digest);
    }
}

/// A pushed image reads back with skopeo (inspect and copy to an OCI dir
/// that validates), and pushing it again uploads nothing.
#[test]
fn push_reads_back_with_skopeo_and_skips_existing_blobs() {
    let reg = Registry::start(false, Auth::None);
    let (_d, src) = store();
    let img = crate::fixtures::busybox_image(&src);
    let r = reference(&reg, "kiln/busybox:1");
    let first = push(&client(None), &src, &img, &r, None).unwrap();
    assert_eq!(first.digest, Some(img.digest));
    assert_eq!(first.uploaded.len(), 2);

    let since = reg.log_len();
    let second = push(&client(None), &src, &img, &r, None).unwrap();
    assert!(second.uploaded.is_empty(), "{second:?}");
    assert_eq!(second.existing.len(), 2);
    let requests = reg.requests_since(since);
    let writes: Vec<&String> = requests
        .iter()
        .filter(|l| l.starts_with("POST") || l.starts_with("PATCH") || l.contains("/blobs/uploads"))
        .collect();
    assert!(writes.is_empty(), "second push wrote blobs: {writes:?}");
    assert_eq!(
        requests.iter().filter(|l| l.starts_with("HEAD")).count(),
        2,
        "{requests:?}"
    );

    if !has_skopeo() {
        eprintln!("skopeo not installed: skipping the read-back");
        return;
    }
    let remote = format!("docker://{}/kiln/busybox:1", reg.host);
    let inspect = skopeo(&["inspect", "--tls-verify=false", &remote]);
    let v: serde_json::Value = serde_json::from_str(&inspect).unwrap();
    assert_eq!(v["Digest"], img.digest.to_string());
    let out = tempfile::tempdir().unwrap();
    let dest = format!("oci:{}:b", out.path().display());
    skopeo(&["copy", "--src-tls-verify=false", &remote, &dest]);
    validate_layout(out.path()).unwrap();
}

/// Above the monolithic limit a blob goes up in PATCH chunks; mounting from
/// another repository of the same registry uploads nothing.
#[test]
fn chunked_upload_and_cross_repository_mount() {
    let reg = Registry::start(false, Auth::None);
    let (_d, src) = store();
    let img = image(&src, "big", &[3 << 20], &Platform::host());
    let opts = ClientOptions {
        monolithic_max: 1 << 20,
        chunk_size: 700 << 10,
        ..options(None)
    };
    let since = reg.log_len();
    let r = reference(&reg, "chunks:1");
    push(&client_with(None, opts), &src, &img, &r, None).unwrap();
    let patches = reg
        .requests_since(since)
        .into_iter()
        .filter(|l| l.starts_with("PATCH"))
        .count();
    assert_eq!(patches, 5, "3 MiB in 700 KiB chunks");

    let since = reg.log_len();
    let other = reference(&reg, "elsewhere:1");
    let pushed = push(&client(None), &src, &img, &other, Some("chunks")).unwrap();
    assert_eq!(pushed.mounted.len(), 2, "{pushed:?}");
    assert!(pushed.uploaded.is_empty());
    let requests = reg.requests_since(since);
    assert!(
        requests
            .iter()
            .any(|l| l.contains("mount=") && l.ends_with(" 201")),
        "{requests:?}"
    );
    assert!(
        !requests.iter().any(|l| l.starts_with("PATCH")),
        "{requests:?}"
    );

    let (_d2, dst) = store();
    let got = pull(&client(None), &dst, &other, &Platform::host()).unwrap();
    validate(&dst, &got.manifest).unwrap();
}

/// A connection cut in the middle of a blob resumes with a range request.
#[test]
fn pull_resumes_after_a_dropped_connection() {
    let reg = Registry::start(false, Auth::None);
    let (_d, src) = store();
    let img = image(&src, "drop", &[4 << 20], &Platform::host());
    push(&client(None), &src, &img, &reference(&reg, "drop:1"), None).unwrap();

    let proxy = proxy::CuttingProxy::start(&reg.host, 1 << 20);
    let r = Reference::parse(&format!("{}/drop:1", proxy.host)).unwrap();
    let since = reg.log_len();
    let (_d2, dst) = store();
    let got = pull(&client(None), &dst, &r, &Platform::host()).unwrap();
    validate(&dst, &got.manifest).unwrap();
    assert_eq!(proxy.cuts.load(std::sync::atomic::Ordering::SeqCst), 1);
    let requests = reg.requests_since(since);
    assert!(
        requests
            .iter()
            .any(|l| l.contains("/blobs/") && l.ends_with(" 206")),
        "no range request after the cut: {requests:?}"
    );
}

/// A chunked upload whose connection drops mid-chunk starts the blob over
/// (bounded by the retries), and the push succeeds.
#[test]
fn chunked_push_resumes_after_a_dropped_connection() {
    let reg = Registry::start(false, Auth::None);
    let (_d, src) = store();
    let img = image(&src, "upcut", &[3 << 20], &Platform::host());
    let proxy = proxy::CuttingProxy::start_upload(&reg.host, (1 << 20) + (300 << 10));
    let r = Reference::parse(&format!("{}/upcut:1", proxy.host)).unwrap();
    let opts = ClientOptions {
        monolithic_max: 1 << 20,
        chunk_size: 1 << 20,
        ..options(None)
    };
    let since = reg.log_len();
    push(&client_with(None, opts), &src, &img, &r, None).unwrap();
    assert_eq!(proxy.cuts.load(std::sync::atomic::Ordering::SeqCst), 1);
    let requests = reg.requests_since(since);
    let posts = requests.iter().filter(|l| l.starts_with("POST")).count();
    assert_eq!(posts, 3, "config, layer, and the layer again: {requests:?}");
    let (_d2, dst) = store();
    let got = pull(
        &client(None),
        &dst,
        &reference(&reg, "upcut:1"),
        &Platform::host(),
    )
    .unwrap();
    validate(&dst, &got.manifest).unwrap();
    assert_eq!(got.manifest.digest, img.digest);
}

/// A blob whose bytes are not its digest is refused, named, and not kept.
#[test]
fn pull_refuses_a_blob_with_the_wrong_digest() {
    let reg = Registry::start(false, Auth::None);
    let (_d, src) = store();
    let img = image(&src, "corrupt", &[50_000], &Platform::host());
    let r = reference(&reg, "corrupt:1");
    push(&client(None), &src, &img, &r, None).unwrap();
    let (m, _) = src.load_image(&img).unwrap();
    let layer = &m.layers[0];
    let data = reg.blob_data(&layer.digest);
    let mut bytes = std::fs::read(&data).unwrap();
    bytes[20_000] ^= 0xff;
    std::fs::write(&data, &bytes).unwrap();

    let (_d2, dst) = store();
    let e = pull(&client(None), &dst, &r, &Platform::host()).unwrap_err();
    let chain = error_chain(&e);
    assert!(chain.contains(&layer.digest.to_string()), "{chain}");
    assert!(
        chain.contains(&kiln::oci::Digest::of(&bytes).to_string()),
        "{chain}"
    );
    let RegistryError::PullBlob { source, .. } = &e else {
        panic!("not a blob error: {chain}")
    };
    assert!(
        matches!(
            **source,
            RegistryError::Store(StoreError::DigestMismatch { .. })
        ),
        "{chain}"
    );
    assert!(!dst.has_blob(&layer.digest));
    assert_eq!(std::fs::read_dir(dst.tmp_dir()).unwrap().count(), 0);
    assert!(
        dst.images().unwrap().is_empty(),
        "nothing named after a failed pull"
    );
}

/// The registry's own error code and the request reach the message.
#[test]
fn registry_errors_show_code_and_request() {
    let reg = Registry::start(false, Auth::None);
    let (_d, dst) = store();
    let r = reference(&reg, "nothing:here");
    let e = pull(&client(None), &dst, &r, &Platform::host()).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("MANIFEST_UNKNOWN") || msg.contains("NAME_UNKNOWN"),
        "{msg}"
    );
    assert!(
        msg.starts_with(&format!(
            "GET http://{}/v2/nothing/manifests/here: 404",
            reg.host
        )),
        "{msg}"
    );
}

pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

#[test]
fn noise_does_not_compress() {
    use std::io::Write;
    let n = noise("x", 100_000);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&n).unwrap();
    assert!(gz.finish().unwrap().len() > 99_000);
}

/// Behind a proxy (`HTTPS_PROXY`), a registry only the proxy can reach is
/// pulled through it; `NO_PROXY` sends the same client around it, and
/// loopback is never proxied.
#[test]
fn pull_through_a_forward_proxy_and_no_proxy() {
    let reg = Registry::start(false, Auth::None);
    let (_d, src) = store();
    let img = image(&src, "proxied", &[2000, 40_000], &Platform::host());
    let direct = reference(&reg, "proxied/app:1");
    push(&client(None), &src, &img, &direct, None).unwrap();

    let port = reg.host.rsplit(':').next().unwrap();
    let name = format!("registry.kiln.test:{port}");
    let proxy = forward::ForwardProxy::start([(name.clone(), reg.host.clone())].into());
    let via = |no_proxy: &[&str]| {
        client_with(
            None,
            ClientOptions {
                insecure_registries: vec![name.clone()],
                proxies: kiln::oci::registry::Proxies {
                    https: Some(format!("http://{}", proxy.addr)),
                    http: None,
                    no_proxy: no_proxy.iter().map(|s| s.to_string()).collect(),
                },
                ..options(None)
            },
        )
    };
    let r = Reference::parse(&format!("{name}/proxied/app:1")).unwrap();
    let (_d2, dst) = store();
    let got = pull(&via(&[]), &dst, &r, &Platform::host()).unwrap();
    assert_eq!(got.manifest.digest, img.digest);
    validate(&dst, &got.manifest).unwrap();
    let seen = proxy.seen();
    assert!(
        seen.iter()
            .any(|l| l.starts_with(&format!("GET http://{name}/v2/proxied/app/manifests/1"))),
        "{seen:?}"
    );
    // NO_PROXY: the client goes direct, and this name resolves nowhere.
    let before = proxy.seen().len();
    let (_d3, dst3) = store();
    let err = pull(&via(&["kiln.test"]), &dst3, &r, &Platform::host()).unwrap_err();
    assert!(matches!(err, RegistryError::Transport { .. }), "{err}");
    assert_eq!(proxy.seen().len(), before, "NO_PROXY hosts skip the proxy");
    // Loopback is never proxied.
    pull(&via(&[]), &dst3, &direct, &Platform::host()).unwrap();
    assert_eq!(proxy.seen().len(), before);
}
