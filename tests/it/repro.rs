//! Reproducible builds: the fixture under testdata/repro (COPY of files,
//! dirs, symlinks, hard links and modes; ADD of a local tar; RUN writing
//! files; WORKDIR; ENV/LABEL/CMD; a multi-stage COPY --from) built from two
//! copies of the context with different mtimes and inodes, at different
//! times, into different stores (and again warm, into the same store) must
//! give the same manifest digest and byte-equal OCI and docker archives,
//! without rewriting the base layer; whoever owns the checkout and whatever
//! umask the caller has.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use kiln::oci::{Descriptor, Digest, Manifest, Store};

use crate::build::Env;
use crate::fixtures::busybox_image;

/// The fixture's source tree.
pub fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/repro")
}

/// A small deterministic generator (xorshift64*), so seeds give the same dates.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let ft = entry.file_type().unwrap();
        if ft.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(&src).unwrap(), &dst).unwrap();
        } else if ft.is_dir() {
            copy_tree(&src, &dst);
        } else {
            fs::copy(&src, &dst).unwrap();
        }
    }
}

/// The tar ADD unpacks: fixed bytes, so both copies carry the same archive.
fn bundle_tar() -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    for (path, body) in [("x/inner.txt", "inner\n"), ("x/y/deeper.txt", "deeper\n")] {
        let mut h = tar::Header::new_ustar();
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_000);
        h.set_size(body.len() as u64);
        tar.append_data(&mut h, path, body.as_bytes()).unwrap();
    }
    tar.into_inner().unwrap()
}

/// A fresh copy of the fixture at `env.path(name)` (new inodes), with what git
/// cannot carry (a hard link, modes, the tar), every mtime set to a random
/// date after `min_mtime` drawn from `seed`.
pub fn context_copy(env: &Env, name: &str, seed: u64, min_mtime: i64) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let ctx = env.path(name);
    copy_tree(&fixture_dir(), &ctx);
    fs::hard_link(ctx.join("files/a.txt"), ctx.join("files/hard-a")).unwrap();
    fs::set_permissions(ctx.join("files/run.sh"), fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(ctx.join("files/sub"), fs::Permissions::from_mode(0o750)).unwrap();
    fs::write(ctx.join("bundle.tar"), bundle_tar()).unwrap();
    fs::create_dir(ctx.join("files/empty")).unwrap();
    // Larger than a gzip member (1 MiB), so parallel compression is exercised.
    let mut big = Rng(7);
    let bytes: Vec<u8> = (0..(5 << 16))
        .flat_map(|_| big.next().to_le_bytes())
        .collect();
    fs::write(ctx.join("files/big.bin"), bytes).unwrap();
    let mut rng = Rng(seed | 1);
    let mut paths: Vec<PathBuf> = walkdir::WalkDir::new(&ctx)
        .into_iter()
        .map(|e| e.unwrap().into_path())
        .collect();
    paths.reverse(); // children before parents: setting a child's time touches nothing else
    for p in paths {
        let t = min_mtime + 1 + (rng.next() % 600_000_000) as i64;
        let ft = filetime::FileTime::from_unix_time(t, (rng.next() % 1_000_000_000) as u32);
        filetime::set_symlink_file_times(&p, ft, ft).unwrap();
        // Checkouts by different users: COPY makes files root-owned anyway.
        let owner = 1000 + (seed % 7) as u32;
        std::os::unix::fs::lchown(&p, Some(owner), Some(owner)).unwrap();
    }
    ctx
}

/// A store holding the busybox base; returns the env and the base manifest.
pub fn env_with_base() -> (Env, Manifest) {
    let env = Env::new();
    let store = env.store();
    let base = busybox_image(&store);
    let (m, _) = store.load_image(&base).unwrap();
    (env, m)
}

/// What one build produced: the manifest, its archives' bytes.
struct Built {
    desc: Descriptor,
    manifest: Manifest,
    oci: Vec<u8>,
    docker: Vec<u8>,
}

fn build(env: &Env, ctx: &Path, tag: &str, extra: &[&str]) -> Built {
    build_with_umask(env, ctx, tag, extra, "0022")
}

/// Builds from a shell that first sets `umask`: a RUN layer must not depend on it.
fn build_with_umask(env: &Env, ctx: &Path, tag: &str, extra: &[&str], umask: &str) -> Built {
    let oci = env.path(&format!("{tag}-oci.tar"));
    let docker = env.path(&format!("{tag}-docker.tar"));
    let oci_spec = format!("type=oci,dest={},name=app", oci.display());
    let docker_spec = format!("type=docker,dest={},name=app", docker.display());
    let mut args = vec!["-t", tag, "-o", &oci_spec, "-o", &docker_spec];
    args.extend_from_slice(extra);
    args.push(ctx.to_str().unwrap());
    let script = format!("umask {umask} && exec \"$0\" \"$@\"");
    let out = std::process::Command::new("/bin/sh")
        .args(["-c", &script, env!("CARGO_BIN_EXE_kiln"), "--root"])
        .arg(env.root())
        .args(["build", "--progress", "plain"])
        .args(&args)
        .env_remove("SOURCE_DATE_EPOCH")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "kiln build {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (desc, manifest, _) = env.image(tag);
    Built {
        desc,
        manifest,
        oci: fs::read(&oci).unwrap(),
        docker: fs::read(&docker).unwrap(),
    }
}

fn assert_same(a: &Built, b: &Built, base: &Manifest) {
    assert_eq!(a.desc.digest, b.desc.digest, "manifest digests differ");
    assert!(a.oci == b.oci, "OCI archives differ");
    assert!(a.docker == b.docker, "docker archives differ");
    assert_eq!(
        a.manifest.layers[0], base.layers[0],
        "the base layer was rewritten"
    );
}

/// Every entry of a layer blob: (path, mtime, uid, gid).
fn layer_entries(store: &Store, layer: &Descriptor) -> Vec<(String, u64, u64, u64)> {
    let blob = fs::File::open(store.blob_path(&layer.digest)).unwrap();
    let raw: Box<dyn Read> = if layer.media_type.ends_with("+gzip") {
        Box::new(flate2::read::MultiGzDecoder::new(blob))
    } else {
        Box::new(zstd::stream::read::Decoder::new(blob).unwrap())
    };
    let mut ar = tar::Archive::new(raw);
    ar.entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let h = e.header();
            let path = e.path().unwrap().display().to_string();
            (path, h.mtime().unwrap(), h.uid().unwrap(), h.gid().unwrap())
        })
        .collect()
}

#[test]
fn reproducible_across_checkouts_times_and_stores() {
    let (one, base) = env_with_base();
    let (two, _) = env_with_base();
    let ctx1 = context_copy(&one, "ctx", 11, 0);
    let ctx2 = context_copy(&two, "ctx", 22, 0);
    let a = build(&one, &ctx1, "app", &["--reproducible"]);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let b = build(&two, &ctx2, "app", &["--reproducible"]);
    assert_same(&a, &b, &base);
    let (_, _, config) = one.image("app");
    assert_eq!(config.created.as_deref(), Some("1970-01-01T00:00:00Z"));
    assert!(config
        .history
        .iter()
        .all(|h| h.created.as_deref() == Some("1970-01-01T00:00:00Z")));
    // Every new layer: times clamped to the epoch, root-owned (but what USER
    // 1000 made), no sandbox mountpoints.
    let store = one.store();
    let mut names = Vec::new();
    for layer in &a.manifest.layers[1..] {
        for (path, mtime, uid, gid) in layer_entries(&store, layer) {
            let owner = if path.starts_with("home/user/") {
                1000
            } else {
                0
            };
            assert_eq!(
                (mtime, uid, gid),
                (0, owner, owner),
                "{path} in {}",
                layer.digest
            );
            let top = path.trim_end_matches('/');
            assert!(!["dev", "proc", "sys"].contains(&top), "{path} leaked");
            names.push(path);
        }
    }
    // gzip headers carry no time and no host OS ("unknown", 255).
    for layer in &a.manifest.layers[1..] {
        let blob = fs::read(store.blob_path(&layer.digest)).unwrap();
        assert_eq!(
            (&blob[4..8], blob[9]),
            (&[0u8; 4][..], 255),
            "{}",
            layer.digest
        );
    }
    for want in [
        "app/work/deep/er/file",
        "app/files/empty/",
        "app/heredoc.txt",
        "bin/.wh.arch",
        "home/.wh..wh..opq",
        "home/user/note",
    ] {
        assert!(names.iter().any(|n| n == want), "{want} not in {names:?}");
    }
}

#[test]
fn reproducible_with_zstd_and_an_epoch_from_build_arg() {
    let (one, base) = env_with_base();
    let (two, _) = env_with_base();
    // Context times all after the epoch, so all are clamped to it.
    let epoch = 1_000_000_000;
    let ctx1 = context_copy(&one, "ctx", 33, epoch);
    let ctx2 = context_copy(&two, "ctx", 44, epoch);
    let flags = [
        "--compression",
        "zstd",
        "--build-arg",
        "SOURCE_DATE_EPOCH=1000000000",
        "--reproducible", // the explicit epoch wins
    ];
    let a = build(&one, &ctx1, "app", &flags);
    let b = build(&two, &ctx2, "app", &flags);
    assert_same(&a, &b, &base);
    assert!(a.manifest.layers[1].media_type.ends_with("+zstd"));
    let (_, _, config) = one.image("app");
    assert_eq!(config.created.as_deref(), Some("2001-09-09T01:46:40Z"));
    let store = one.store();
    // Clamped, not rewritten: only the ADDed tar's own (older) times survive.
    for layer in &a.manifest.layers[1..] {
        for (path, mtime, _, _) in layer_entries(&store, layer) {
            let want = if path.starts_with("app/bundle/x") && !path.ends_with('/') {
                1_000
            } else {
                epoch as u64
            };
            assert_eq!(mtime, want, "{path}");
        }
    }
}

#[test]
fn reproducible_warm_in_the_same_store() {
    let (env, base) = env_with_base();
    let ctx1 = context_copy(&env, "ctx1", 55, 0);
    let ctx2 = context_copy(&env, "ctx2", 66, 0);
    let a = build(&env, &ctx1, "app", &["--reproducible"]);
    let b = build_with_umask(&env, &ctx2, "app", &["--reproducible"], "0077");
    assert_same(&a, &b, &base);
    // Without an epoch the created time is the clock's, so the digest moves:
    // the test above would catch a build that ignored the flag.
    let c = build(&env, &ctx2, "app", &[]);
    assert_ne!(c.desc.digest, a.desc.digest);
    assert_eq!(c.manifest.layers[0], base.layers[0]);
    let digests: Vec<Digest> = a.manifest.layers.iter().map(|l| l.digest).collect();
    assert_eq!(digests.len(), 10, "{digests:?}");
}

#[test]
fn reproducible_keeps_an_epoch_from_the_environment() {
    let env = Env::new();
    let ctx = env.context(
        "ctx",
        &[("Dockerfile", "FROM scratch\nCOPY f /f\n"), ("f", "x")],
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kiln"))
        .arg("--root")
        .arg(env.root())
        .args(["build", "-q", "--reproducible", "-t", "e"])
        .arg(&ctx)
        .env("SOURCE_DATE_EPOCH", "86400")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (_, _, config) = env.image("e");
    assert_eq!(config.created.as_deref(), Some("1970-01-02T00:00:00Z"));
    env.build(&["-q", "--reproducible", "-t", "z", ctx.to_str().unwrap()]);
    assert_eq!(
        env.image("z").2.created.as_deref(),
        Some("1970-01-01T00:00:00Z")
    );
}
