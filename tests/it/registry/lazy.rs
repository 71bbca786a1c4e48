//! Lazy base images: `FROM registry/img` fetches the manifest and config;
//! the layers only when a step needs the filesystem or an output the bytes.
//! The registry's access log says which blobs were downloaded.

use kiln::oci::registry::push;
use kiln::oci::{validate, Digest, Platform};

use super::images::client;
use super::server::{Auth, Registry};
use super::{pull_back, reference};
use crate::build::Env;

/// The busybox fixture pushed as `busybox:1`; returns its layer digests.
fn busybox_on(reg: &Registry) -> Vec<Digest> {
    let (_d, src) = crate::oci::store();
    let bb = crate::fixtures::busybox_image(&src);
    push(&client(None), &src, &bb, &reference(reg, "busybox:1"), None).unwrap();
    let layers = src.load_image(&bb).unwrap().0.layers;
    layers.iter().map(|l| l.digest).collect()
}

/// The `GET`s of any of `blobs` in `requests`.
fn blob_gets(requests: &[String], blobs: &[Digest]) -> Vec<String> {
    requests
        .iter()
        .filter(|r| r.starts_with("GET /v2/") && blobs.iter().any(|b| r.contains(&b.to_string())))
        .cloned()
        .collect()
}

fn dockerfile(env: &Env, name: &str, text: &str) -> String {
    let p = env.path(name);
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_string()
}

#[test]
fn a_copy_link_build_pushed_to_its_base_registry_downloads_no_base_layer() {
    let reg = Registry::start(false, Auth::None);
    let layers = busybox_on(&reg);
    let env = Env::new();
    let ctx = env.context("ctx", &[("file", "hello\n")]);
    let ctx = ctx.to_str().unwrap();
    let file = dockerfile(
        &env,
        "Dockerfile",
        &format!(
            "FROM {}/busybox:1\nCOPY --link file /f\nCOPY --link --chown=1:2 file /g\n",
            reg.host
        ),
    );
    let out_ref = format!("{}/app:1", reg.host);
    let output = format!("type=registry,name={out_ref}");
    let since = reg.log_len();
    env.build(&["-f", &file, "-o", &output, ctx]);
    let requests = reg.requests_since(since);
    assert_eq!(blob_gets(&requests, &layers), Vec::<String>::new());
    // Each base layer was mounted from the base's repository instead.
    let mounted = requests.iter().filter(|l| {
        l.starts_with("POST /v2/app/blobs/uploads/")
            && l.contains("from=busybox")
            && l.ends_with(" 201")
    });
    assert_eq!(mounted.count(), layers.len(), "{requests:?}");
    let store = env.store();
    assert!(layers.iter().all(|l| !store.has_blob(l)));

    // The pushed image is whole: kiln and skopeo read it back.
    let r = reference(&reg, "app:1");
    let (_d, check, got) = pull_back(&r);
    let (m, _) = check.load_image(&got.manifest).unwrap();
    assert_eq!(m.layers.len(), layers.len() + 2);
    assert_eq!(
        m.layers[0].digest, layers[0],
        "built on the registry's base"
    );
    if super::has_skopeo() {
        let raw = super::skopeo(&[
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{out_ref}"),
        ]);
        // The tag names the index (min provenance by default); the
        // platform's manifest is its first entry.
        let index: kiln::oci::Index = serde_json::from_str(&raw).unwrap();
        assert_eq!(got.manifest.digest, index.manifests[0].digest);
        assert_eq!(
            got.index.as_ref().map(|i| i.digest),
            Some(Digest::of(raw.as_bytes()))
        );
        let dir = env.path("skopeo-copy");
        super::skopeo(&[
            "copy",
            "--src-tls-verify=false",
            &format!("docker://{out_ref}"),
            &format!("oci:{}:app", dir.display()),
        ]);
    }

    // The half-present base is not named: `kiln images` does not list it,
    // and the store passes fsck.
    let images = env.kiln(&["images"], None);
    let listed = String::from_utf8_lossy(&images.stdout);
    assert!(images.status.success(), "{listed}");
    assert!(!listed.contains("busybox"), "{listed}");
    let fsck = env.kiln(&["fsck"], None);
    assert!(
        fsck.status.success(),
        "{}{}",
        String::from_utf8_lossy(&fsck.stdout),
        String::from_utf8_lossy(&fsck.stderr)
    );

    // A fully cached rebuild with --pull (tag unchanged) downloads no layer.
    let since = reg.log_len();
    let out = env.kiln(
        &[
            "build",
            "--progress",
            "plain",
            "--pull",
            "-f",
            &file,
            "-o",
            &output,
            ctx,
        ],
        None,
    );
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(log.contains("CACHED"), "{log}");
    assert_eq!(
        blob_gets(&reg.requests_since(since), &layers),
        Vec::<String>::new()
    );

    // An output that needs the bytes fetches them, and only then is the base named.
    env.build(&["-f", &file, "-t", "local:1", ctx]);
    let (_, m, _) = env.image("local:1");
    assert_eq!(m.layers[0].digest, layers[0]);
    let base = env
        .store()
        .resolve(&format!("{}/busybox:1", reg.host))
        .unwrap();
    validate(&env.store(), &base).unwrap();
}

#[test]
fn a_run_step_fetches_the_base_layers_and_a_cached_pull_rebuild_does_not() {
    let reg = Registry::start(false, Auth::None);
    let layers = busybox_on(&reg);
    let env = Env::new();
    let ctx = env.context("ctx", &[("file", "hello\n")]);
    let ctx = ctx.to_str().unwrap();
    let file = dockerfile(
        &env,
        "Dockerfile",
        &format!(
            "FROM {}/busybox:1\nRUN echo ran > /ran && cat /ran\n",
            reg.host
        ),
    );
    let since = reg.log_len();
    let out = env.kiln(
        &[
            "build",
            "--progress",
            "plain",
            "-f",
            &file,
            "-t",
            "ran:1",
            ctx,
        ],
        None,
    );
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    let fetching = format!("[internal] fetching {} base image layer(s)", layers.len());
    assert!(log.contains(&fetching), "{log}");
    let gets = blob_gets(&reg.requests_since(since), &layers);
    assert_eq!(gets.len(), layers.len(), "each layer once: {gets:?}");
    let root = env.rootfs("ran:1");
    assert_eq!(std::fs::read_to_string(root.join("ran")).unwrap(), "ran\n");
    // Complete now, so named like a pull names it.
    let base = env
        .store()
        .resolve(&format!("{}/busybox:1", reg.host))
        .unwrap();
    validate(&env.store(), &base).unwrap();

    let since = reg.log_len();
    let out = env.kiln(
        &[
            "build",
            "--progress",
            "plain",
            "--pull",
            "-f",
            &file,
            "-t",
            "ran:2",
            ctx,
        ],
        None,
    );
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(log.contains("CACHED"), "{log}");
    let requests = reg.requests_since(since);
    assert!(
        requests
            .iter()
            .any(|r| r.starts_with("GET /v2/busybox/manifests/1")),
        "--pull asked the registry: {requests:?}"
    );
    assert_eq!(blob_gets(&requests, &layers), Vec::<String>::new());
    assert_eq!(env.manifest_digest("ran:2"), env.manifest_digest("ran:1"));
}

/// The CI case: a fresh runner with the step cache from a registry builds a
/// `FROM` + `RUN` Dockerfile fully cached and pushes it next to its base:
/// no base layer is downloaded (the RUN result comes with the cache).
#[test]
fn a_fresh_runner_with_a_registry_cache_pushes_without_downloading_the_base() {
    let reg = Registry::start(false, Auth::None);
    let layers = busybox_on(&reg);
    let text = format!("FROM {}/busybox:1\nRUN echo ran > /ran\n", reg.host);
    let cache = format!("{}/ci/cache:lazy", reg.host);
    let output = format!("type=registry,name={}/app:ci", reg.host);

    let first = Env::new();
    let ctx = first.context("ctx", &[("file", "x\n")]);
    let file = dockerfile(&first, "Dockerfile", &text);
    let to = format!("type=registry,ref={cache},mode=max");
    first.build(&[
        "-f",
        &file,
        "--cache-to",
        &to,
        "-o",
        &output,
        ctx.to_str().unwrap(),
    ]);

    let fresh = Env::new();
    let ctx = fresh.context("ctx", &[("file", "x\n")]);
    let file = dockerfile(&fresh, "Dockerfile", &text);
    let from = format!("type=registry,ref={cache}");
    let since = reg.log_len();
    let out = fresh.kiln(
        &[
            "build",
            "--progress",
            "plain",
            "--cache-from",
            &from,
            "-f",
            &file,
            "-o",
            &output,
            ctx.to_str().unwrap(),
        ],
        None,
    );
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(log.contains("CACHED"), "{log}");
    assert_eq!(
        blob_gets(&reg.requests_since(since), &layers),
        Vec::<String>::new()
    );
    pull_back(&reference(&reg, "app:ci"));
    let fsck = fresh.kiln(&["fsck"], None);
    assert!(
        fsck.status.success(),
        "{}",
        String::from_utf8_lossy(&fsck.stdout)
    );
}

/// A push to another registry cannot mount the base's layers: each one is
/// downloaded (once) just before it is uploaded, and the result is whole.
#[test]
fn a_push_to_another_registry_fetches_the_base_layers_it_uploads() {
    let base_reg = Registry::start(false, Auth::None);
    let layers = busybox_on(&base_reg);
    let other = Registry::start(false, Auth::None);
    let env = Env::new();
    let ctx = env.context("ctx", &[("file", "hello\n")]);
    let file = dockerfile(
        &env,
        "Dockerfile",
        &format!("FROM {}/busybox:1\nCOPY --link file /f\n", base_reg.host),
    );
    let output = format!("type=registry,name={}/app:1", other.host);
    let since = base_reg.log_len();
    env.build(&["-f", &file, "-o", &output, ctx.to_str().unwrap()]);
    let gets = blob_gets(&base_reg.requests_since(since), &layers);
    assert_eq!(gets.len(), layers.len(), "each layer once: {gets:?}");
    pull_back(&reference(&other, "app:1"));
    // Complete after the push's fetches: the base is named now.
    let base = format!("{}/busybox:1", base_reg.host);
    validate(&env.store(), &env.store().resolve(&base).unwrap()).unwrap();
}

/// `--pull` sees the tag move while the build needs no layer of the new
/// image: the stale name is dropped (the new image is not complete, so it
/// cannot be named), and the next build without `--pull` asks the registry
/// instead of taking the old image for the tag.
#[test]
fn a_moved_tag_seen_by_a_lazy_pull_drops_the_stale_name() {
    let reg = Registry::start(false, Auth::None);
    let layers = busybox_on(&reg);
    let env = Env::new();
    let ctx = env.context("ctx", &[("file", "hello\n")]);
    let ctx = ctx.to_str().unwrap();
    let base = format!("{}/busybox:1", reg.host);
    let link = dockerfile(
        &env,
        "Dockerfile",
        &format!("FROM {base}\nCOPY --link file /f\n"),
    );
    let plain = dockerfile(
        &env,
        "Dockerfile.plain",
        &format!("FROM {base}\nCOPY file /f\n"),
    );
    env.build(&["-f", &plain, "-t", "old:1", ctx]);
    let old = env.store().resolve(&base).unwrap();

    let (_d, src) = crate::oci::store();
    let v2 = super::images::image(&src, "moved", &[1000], &Platform::host());
    push(
        &client(None),
        &src,
        &v2,
        &reference(&reg, "busybox:1"),
        None,
    )
    .unwrap();
    let moved = src.load_image(&v2).unwrap().0.layers[0].digest;
    let output = format!("type=registry,name={}/app:1", reg.host);
    env.build(&["--pull", "-f", &link, "-o", &output, ctx]);
    assert!(env.store().resolve(&base).is_err(), "stale name kept");
    assert!(!env.store().has_blob(&moved));
    assert!(
        env.store().has_blob(&layers[0]),
        "the old image is still stored"
    );

    env.build(&["-f", &plain, "-t", "new:1", ctx]);
    assert_eq!(env.image("new:1").1.layers[0].digest, moved);
    assert_ne!(env.store().resolve(&base).unwrap(), old);
}

/// The library seam: a lazily resolved image pushed with a mount source that
/// lacks the blob: the refused mount's upload session is cancelled, the layer
/// is fetched from its origin and uploaded, and the fetch that completes the
/// image names it in the store.
#[test]
fn a_refused_mount_fetches_then_uploads_and_completion_names_the_image() {
    use kiln::oci::registry::{push_fetching, RemoteBlobs};
    let reg = Registry::start(false, Auth::None);
    let (_d, src) = crate::oci::store();
    let v = super::images::image(&src, "refused", &[3000], &Platform::host());
    push(&client(None), &src, &v, &reference(&reg, "base:1"), None).unwrap();
    let layer = src.load_image(&v).unwrap().0.layers[0].clone();

    let (_d2, dst) = crate::oci::store();
    let lazy = RemoteBlobs::new(std::sync::Arc::new(client(None)));
    let base = reference(&reg, "base:1");
    let got = lazy.resolve(&dst, &base, &Platform::host()).unwrap();
    assert_eq!(got.manifest, v);
    assert!(!got.complete);
    assert!(!dst.has_blob(&layer.digest));
    assert!(
        dst.resolve(&base.familiar()).is_err(),
        "named while incomplete"
    );

    let since = reg.log_len();
    let fetch = |d: &kiln::oci::Descriptor| lazy.fetch(&dst, &[d.digest]).map(drop);
    let target = reference(&reg, "copy:1");
    let pushed = push_fetching(
        &client(None),
        &dst,
        &v,
        &target,
        Some("nothere"),
        Some(&fetch),
    )
    .unwrap();
    assert!(pushed.uploaded.contains(&layer.digest), "{pushed:?}");
    assert!(pushed.mounted.is_empty(), "{pushed:?}");
    let requests = reg.requests_since(since);
    let refused = requests
        .iter()
        .filter(|r| r.starts_with("POST /v2/copy/blobs/uploads/") && r.contains("from=nothere"))
        .filter(|r| r.contains(&layer.digest.to_string().replace(':', "%3A")));
    assert_eq!(refused.count(), 1, "asked once for the layer: {requests:?}");
    assert!(
        requests
            .iter()
            .any(|r| r.starts_with("DELETE /v2/copy/blobs/uploads/")),
        "{requests:?}"
    );
    assert_eq!(
        blob_gets(&requests, &[layer.digest]).len(),
        1,
        "{requests:?}"
    );

    assert_eq!(dst.resolve(&base.familiar()).unwrap(), v);
    validate(&dst, &v).unwrap();
    pull_back(&target);
}

/// `--sbom=true` over a lazy base: the scan needs the base's filesystem, so
/// its layers are fetched (shown as a vertex) and unpacked before the scan,
/// and the SBOM lists the packages the base's dpkg database holds, as
/// `dpkg-query` does, though no step read the base.
#[test]
fn an_sbom_of_a_lazy_base_fetches_and_scans_its_layers() {
    let reg = Registry::start(false, Auth::None);
    // The base: busybox with this host's dpkg status, pushed from another store.
    let pusher = Env::new();
    pusher.busybox();
    let base_ctx = pusher.context(
        "base",
        &[(
            "Dockerfile",
            "FROM busybox\nCOPY status /var/lib/dpkg/status\nCOPY os-release /etc/os-release\n",
        )],
    );
    std::fs::copy("/var/lib/dpkg/status", base_ctx.join("status")).unwrap();
    std::fs::copy("/etc/os-release", base_ctx.join("os-release")).unwrap();
    let base = format!("{}/debbase:1", reg.host);
    pusher.build(&[
        "-o",
        &format!("type=registry,name={base}"),
        base_ctx.to_str().unwrap(),
    ]);
    let (_d, src, got) = pull_back(&reference(&reg, "debbase:1"));
    let base_layers: Vec<Digest> = src
        .load_image(&got.manifest)
        .unwrap()
        .0
        .layers
        .iter()
        .map(|l| l.digest)
        .collect();

    let env = Env::new();
    let ctx = env.context("ctx", &[("file", "hello\n")]);
    let file = dockerfile(
        &env,
        "Dockerfile",
        &format!("FROM {base}\nCOPY --link file /f\n"),
    );
    let meta = env.path("meta.json");
    let since = reg.log_len();
    let out = env.kiln(
        &[
            "build",
            "--progress",
            "plain",
            "--sbom=true",
            "-f",
            &file,
            "--metadata-file",
            meta.to_str().unwrap(),
            "-o",
            &format!("type=registry,name={}/app-sbom:1", reg.host),
            ctx.to_str().unwrap(),
        ],
        None,
    );
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(log.contains("[internal] fetching"), "{log}");
    assert!(log.contains("generating sbom"), "{log}");
    let gets = blob_gets(&reg.requests_since(since), &base_layers);
    assert_eq!(
        gets.len(),
        base_layers.len(),
        "each base layer once: {gets:?}"
    );

    let md: serde_json::Value = serde_json::from_slice(&std::fs::read(&meta).unwrap()).unwrap();
    let index: Digest = md["containerimage.digest"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let store = env.store();
    let json = |d: &Digest| -> serde_json::Value {
        serde_json::from_slice(&store.read_blob(d).unwrap()).unwrap()
    };
    let idx: kiln::oci::Index = serde_json::from_value(json(&index)).unwrap();
    let att: kiln::oci::Manifest = serde_json::from_value(json(&idx.manifests[1].digest)).unwrap();
    let stmt = json(&att.layers[0].digest);
    assert_eq!(stmt["predicateType"], "https://spdx.dev/Document");
    let debs: std::collections::BTreeSet<String> = stmt["predicate"]["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| {
            p["externalRefs"][0]["referenceLocator"]
                .as_str()
                .is_some_and(|l| l.starts_with("pkg:deb/"))
        })
        .map(|p| {
            format!(
                "{}={}",
                p["name"].as_str().unwrap(),
                p["versionInfo"].as_str().unwrap()
            )
        })
        .collect();
    let want = crate::common::run(
        std::process::Command::new("dpkg-query")
            .arg(format!("--admindir={}", base_ctx.display()))
            .args(["-W", "-f", "${db:Status-Status} ${Package}=${Version}\n"]),
    );
    let want: std::collections::BTreeSet<String> = want
        .lines()
        .filter_map(|l| l.strip_prefix("installed ").map(str::to_string))
        .collect();
    assert!(want.len() > 50, "{}", want.len());
    assert_eq!(debs, want);
}
