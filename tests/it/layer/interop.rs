//! What other tools make of our blobs and we of theirs, and memory on a large tree.

use super::*;

/// A tree big enough for several gzip members, with incompressible bytes.
fn noisy_tree(root: &Path, len: usize) {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let data: Vec<u8> = (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    fs::create_dir(root.join("d")).unwrap();
    fs::write(root.join("d/noise"), &data).unwrap();
    fs::write(root.join("d/small"), b"small").unwrap();
}

fn tool(cmd: &str, args: &[&str]) -> std::process::Output {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {cmd}: {e}"));
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn gzip_blobs_are_multi_member_and_read_by_gzip_and_tar() {
    let src = tempfile::tempdir().unwrap();
    noisy_tree(src.path(), 3 << 20);
    let blob_file = tempfile::NamedTempFile::new().unwrap();
    let packed = pack(
        src.path(),
        SourceKind::Plain,
        &opts(Compression::Gzip, None),
        blob_file.as_file(),
    )
    .unwrap();
    let path = blob_file.path().to_str().unwrap();
    tool("gzip", &["-t", path]);
    let listing = tool("tar", &["-tzf", path]);
    assert_eq!(
        String::from_utf8_lossy(&listing.stdout),
        "d/\nd/noise\nd/small\n"
    );
    // A single-member reader stops at the first member; the whole stream is longer.
    let blob = fs::read(path).unwrap();
    let mut first = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&blob[..]), &mut first).unwrap();
    assert_eq!(first.len(), 1 << 20);
    assert!(packed.uncompressed_size > 3 << 20);
    let zcat = tool("gzip", &["-dc", path]);
    assert_eq!(DiffId::of(&zcat.stdout), packed.diff_id);
    assert_eq!(zcat.stdout.len() as u64, packed.uncompressed_size);
}

#[test]
fn zstd_blobs_are_read_by_zstd_and_tar() {
    if Command::new("zstd").arg("--version").output().is_err() {
        eprintln!("zstd is not installed; the zstd CLI check is skipped");
        return;
    }
    let src = tempfile::tempdir().unwrap();
    noisy_tree(src.path(), 1 << 20);
    let blob_file = tempfile::NamedTempFile::new().unwrap();
    let packed = pack(
        src.path(),
        SourceKind::Plain,
        &PackOptions {
            level: Some(19),
            ..opts(Compression::Zstd, None)
        },
        blob_file.as_file(),
    )
    .unwrap();
    let path = blob_file.path().to_str().unwrap();
    tool("zstd", &["-t", path]);
    let plain = tool("zstd", &["-dc", path]);
    assert_eq!(DiffId::of(&plain.stdout), packed.diff_id);
    let listing = tool("tar", &["--zstd", "-tf", path]);
    assert_eq!(
        String::from_utf8_lossy(&listing.stdout),
        "d/\nd/noise\nd/small\n"
    );
}

#[test]
fn tars_made_by_gnu_tar_unpack_with_metadata() {
    let src = tempfile::tempdir().unwrap();
    make_tree(src.path());
    let want = describe(src.path());
    let blob = tempfile::NamedTempFile::new().unwrap();
    let (s, b) = (src.path().to_str().unwrap(), blob.path().to_str().unwrap());
    tool(
        "tar",
        &[
            "--xattrs",
            "--xattrs-include=*",
            "--numeric-owner",
            "-C",
            s,
            "-czf",
            b,
            ".",
        ],
    );
    let dest = tempfile::tempdir().unwrap();
    let diff_id = unpack(fs::File::open(b).unwrap(), dest.path(), UnpackMode::Apply).unwrap();
    let plain = tool("gzip", &["-dc", b]);
    assert_eq!(diff_id, DiffId::of(&plain.stdout));
    assert_eq!(describe(dest.path()), want);
}

fn vm_hwm_kib() -> u64 {
    let status = fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Packs a 200 MB tree in a child process (this same test, re-run alone) and reads the
/// child's peak resident memory, so other tests' allocations cannot blur it.
#[test]
fn a_200_mb_tree_packs_in_bounded_memory() {
    const CHILD: &str = "KILN_LAYER_MEMORY_CHILD";
    if let Some(dir) = std::env::var_os(CHILD) {
        let before = vm_hwm_kib();
        let packed = pack(
            Path::new(&dir),
            SourceKind::Plain,
            &opts(Compression::Gzip, None),
            std::io::sink(),
        )
        .unwrap();
        assert!(packed.uncompressed_size > 200_000_000);
        println!("hwm-before={before} hwm-after={}", vm_hwm_kib());
        return;
    }
    let src = tempfile::tempdir().unwrap();
    for i in 0..4 {
        // Sparse: 200 MB to read and compress without 200 MB of disk.
        let f = fs::File::create(src.path().join(format!("big{i}"))).unwrap();
        f.set_len(50_000_000).unwrap();
    }
    // Test names are module paths without the crate name.
    let test_name = format!(
        "{}::a_200_mb_tree_packs_in_bounded_memory",
        module_path!().split_once("::").unwrap().1
    );
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", &test_name, "--nocapture", "--test-threads=1"])
        .env(CHILD, src.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let field = |name: &str| -> u64 {
        let at = stdout
            .find(name)
            .unwrap_or_else(|| panic!("no {name} in {stdout}"))
            + name.len();
        stdout[at..]
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    let (before, after) = (field("hwm-before="), field("hwm-after="));
    // The gzip queue holds a few 1 MiB chunks per core; a whole layer would be 200 MB.
    assert!(
        after - before < 48 * 1024,
        "peak memory grew by {} KiB",
        after - before
    );
}
