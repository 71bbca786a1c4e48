//! Step-cache rules that need more than a context: ADD of a URL (served on
//! loopback), a record whose layer blob was removed, reproducible builds
//! that must not reuse layers packed without SOURCE_DATE_EPOCH, and
//! `kiln prune --keep-storage`.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use super::cache::{build, iid, stdout};
use super::Env;

/// Serves `body` (changeable through the handle) to every GET on loopback;
/// returns the base URL.
fn serve(body: Arc<Mutex<Vec<u8>>>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let body = body.lock().unwrap().clone();
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = conn.write_all(head.as_bytes());
            let _ = conn.write_all(&body);
        }
    });
    url
}

#[test]
fn add_url_without_checksum_always_fetches_and_later_steps_key_on_its_content() {
    let env = Env::new();
    let body = Arc::new(Mutex::new(b"v1".to_vec()));
    let url = serve(body.clone());
    let sum = kiln::oci::Digest::of(b"v1");
    let df =
        format!("FROM scratch\nADD {url}/f /f\nCOPY a.txt /a\nADD --checksum={sum} {url}/g /g\n");
    let ctx = env.context("ctx", &[("a.txt", "a"), ("Dockerfile", &df)]);
    let c = ctx.to_str().unwrap();
    assert_eq!(build(&env, &[c]), [false, false, false]);
    // COMPAT(buildkit): an unpinned URL is fetched every build; what it
    // returned decides whether the steps after it hit. A pinned one hits.
    assert_eq!(build(&env, &[c]), [false, true, true]);
    *body.lock().unwrap() = b"v2".to_vec();
    let out = env.kiln(&["build", "--progress", "plain", c], None);
    let log = String::from_utf8_lossy(&out.stderr);
    let steps: Vec<bool> = super::cache::steps(&log).into_iter().map(|s| s.1).collect();
    // The COPY after the changed download runs again; the pinned ADD's
    // checksum no longer matches what the server sends, so it fails.
    assert_eq!(steps[..2], [false, false], "{log}");
    assert!(!out.status.success(), "{log}");
}

#[test]
fn a_record_whose_blob_is_gone_is_a_miss() {
    let env = Env::new();
    let ctx = env.context(
        "ctx",
        &[
            ("a.txt", "a"),
            ("Dockerfile", "FROM scratch\nCOPY a.txt /a\n"),
        ],
    );
    let c = ctx.to_str().unwrap();
    assert_eq!(build(&env, &["-t", "one", c]), [false]);
    let (_, m, _) = env.image("one");
    fs::remove_file(env.store().blob_path(&m.layers[0].digest)).unwrap();
    assert_eq!(build(&env, &["-t", "one", c]), [false]);
    assert_eq!(build(&env, &["-t", "one", c]), [true]);
    env.image("one"); // validates: the blob is back
}

#[test]
fn reproducible_builds_never_reuse_layers_packed_without_the_epoch() {
    let files = [
        ("a.txt", "a"),
        ("Dockerfile", "FROM scratch\nCOPY a.txt /a\nWORKDIR /w\n"),
    ];
    let epoch = ["--build-arg", "SOURCE_DATE_EPOCH=0"];
    let warm = Env::new();
    let ctx = warm.context("ctx", &files);
    assert_eq!(iid(&warm, &ctx, &[]).0, [false, false]);
    let (hits, warm_id) = iid(&warm, &ctx, &epoch);
    assert_eq!(hits, [false, false], "a non-epoch record is not reused");
    let (hits, again) = iid(&warm, &ctx, &epoch);
    assert_eq!((hits, &again), (vec![true, true], &warm_id));
    // Another store, another checkout (other mtimes and inodes), cold.
    let cold = Env::new();
    let ctx2 = cold.context("ctx", &files);
    let (_, cold_id) = iid(&cold, &ctx2, &epoch);
    assert_eq!(cold_id, warm_id);
}

/// `len` bytes that do not compress (xorshift), different per `seed`.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[test]
fn prune_keep_storage_drops_least_recently_used_records_first() {
    let env = Env::new();
    let mut ctxs = vec![];
    for (i, name) in ["a", "b", "c"].iter().enumerate() {
        let ctx = env.context(name, &[("Dockerfile", "FROM scratch\nCOPY big /big\n")]);
        fs::write(ctx.join("big"), noise(i as u64 + 1, 200_000)).unwrap();
        assert_eq!(build(&env, &[ctx.to_str().unwrap()]), [false]);
        ctxs.push(ctx);
    }
    // a is used again: now the most recent, then c, then b.
    assert_eq!(build(&env, &[ctxs[0].to_str().unwrap()]), [true]);
    let out = stdout(&env, &["prune", "--keep-storage", "450k"]);
    assert_eq!(out.matches("Deleted cache record").count(), 1, "{out}");
    assert!(
        out.contains("Deleted: sha256:"),
        "b's unreferenced blob goes: {out}"
    );
    assert_eq!(build(&env, &[ctxs[0].to_str().unwrap()]), [true]);
    assert_eq!(build(&env, &[ctxs[2].to_str().unwrap()]), [true]);
    assert_eq!(build(&env, &[ctxs[1].to_str().unwrap()]), [false]);
    // A plain prune keeps every record's layers.
    stdout(&env, &["prune"]);
    for ctx in &ctxs {
        assert_eq!(build(&env, &[ctx.to_str().unwrap()]), [true]);
    }
}

#[test]
fn cache_export_and_import_subcommands_verify_every_blob() {
    let env = Env::new();
    let files = [
        ("a.txt", "a"),
        ("Dockerfile", "FROM scratch\nCOPY a.txt /a\n"),
    ];
    let ctx = env.context("ctx", &files);
    assert_eq!(build(&env, &[ctx.to_str().unwrap()]), [false]);
    let dir = env.path("exported");
    let out = stdout(&env, &["cache", "export", "--dest", dir.to_str().unwrap()]);
    assert!(out.starts_with("exported 1 records"), "{out}");
    let fresh = Env::new();
    let ctx2 = fresh.context("ctx", &files);
    // A layout whose layer blob was tampered with is refused, nothing merged.
    let bad = env.path("tampered");
    fs::create_dir_all(bad.join("blobs/sha256")).unwrap();
    for e in fs::read_dir(dir.join("blobs/sha256")).unwrap() {
        let e = e.unwrap();
        let mut bytes = fs::read(e.path()).unwrap();
        if bytes.starts_with(&[0x1f, 0x8b]) {
            bytes.push(0);
        }
        fs::write(bad.join("blobs/sha256").join(e.file_name()), bytes).unwrap();
    }
    for f in ["index.json", "oci-layout"] {
        fs::copy(dir.join(f), bad.join(f)).unwrap();
    }
    let out = fresh.kiln(&["cache", "import", "--src", bad.to_str().unwrap()], None);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("importing cache blob"));
    assert_eq!(
        build(&fresh, &[ctx2.to_str().unwrap()]),
        [false],
        "nothing merged"
    );
    let again = Env::new();
    let ctx3 = again.context("ctx", &files);
    let out = stdout(&again, &["cache", "import", "--src", dir.to_str().unwrap()]);
    assert!(out.starts_with("imported 1 records"), "{out}");
    assert_eq!(build(&again, &[ctx3.to_str().unwrap()]), [true]);
}

/// `ADD <url>` goes through `HTTP_PROXY` (a host only the proxy resolves),
/// and `NO_PROXY` sends it around the proxy.
#[test]
fn add_url_goes_through_the_environments_proxy() {
    let env = Env::new();
    let url = serve(Arc::new(Mutex::new(b"via proxy\n".to_vec())));
    let port = url.rsplit(':').next().unwrap();
    let name = format!("files.kiln.test:{port}");
    let real = url.trim_start_matches("http://").to_string();
    let proxy = crate::registry::forward::ForwardProxy::start([(name.clone(), real)].into());
    let df = format!("FROM scratch\nADD http://{name}/f /f\n");
    let ctx = env.context("ctx", &[("Dockerfile", &df)]);
    let build = |no_proxy: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_kiln"))
            .arg("--root")
            .arg(env.root())
            .args([
                "build",
                "--no-cache",
                "-t",
                "viaproxy",
                ctx.to_str().unwrap(),
            ])
            .env("HTTP_PROXY", format!("http://{}", proxy.addr))
            // An http:// URL takes HTTP_PROXY whatever HTTPS_PROXY says.
            .env("HTTPS_PROXY", "http://127.0.0.1:9")
            .env("NO_PROXY", no_proxy)
            .output()
            .unwrap()
    };
    let out = build("");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        fs::read_to_string(env.rootfs("viaproxy").join("f")).unwrap(),
        "via proxy\n"
    );
    assert!(proxy
        .seen()
        .iter()
        .any(|l| l.contains(&format!("http://{name}/f"))));
    let seen = proxy.seen().len();
    let out = build("kiln.test");
    assert!(
        !out.status.success(),
        "without the proxy the name resolves nowhere"
    );
    assert_eq!(proxy.seen().len(), seen);
}

/// Regression: with no `Last-Modified`, a downloaded file kept the time of
/// the download, so a rebuild a second later made another layer and every
/// step after an unpinned ADD missed (seen as a flaky test under load).
/// BuildKit gives such a file the epoch; so does kiln.
#[test]
fn add_url_without_last_modified_gets_the_epoch_so_rebuilds_hit() {
    let env = Env::new();
    let url = serve(Arc::new(Mutex::new(b"same\n".to_vec())));
    let df = format!("FROM scratch\nADD {url}/f /f\nCOPY a.txt /a\n");
    let ctx = env.context("ctx", &[("a.txt", "a"), ("Dockerfile", &df)]);
    let c = ctx.to_str().unwrap();
    assert_eq!(build(&env, &["-t", "epoch", c]), [false, false]);
    // Cross a second boundary: the download time would differ now.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert_eq!(build(&env, &["-t", "epoch", c]), [false, true]);
    let f = env.rootfs("epoch").join("f");
    assert_eq!(
        fs::metadata(f).unwrap().modified().unwrap(),
        std::time::UNIX_EPOCH
    );
}
