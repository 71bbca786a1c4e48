//! `kiln build -`: the context (a tar, maybe compressed) or a lone
//! Dockerfile from stdin; `-f -` with a directory; `-f -` with `-` refused.

use std::io::Write;
use std::process::Output;

use super::Env;

fn kiln_stdin(env: &Env, args: &[&str], stdin: &[u8]) -> Output {
    let mut full = vec!["build", "--progress", "quiet"];
    full.extend_from_slice(args);
    env.kiln_bytes(&full, stdin)
}

/// A tar of a context: `Dockerfile` copies `a` to `/a`, `sub/Other` copies it to `/b`.
fn context_tar() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, content) in [
        ("Dockerfile", "FROM scratch\nCOPY a /a\n"),
        ("sub/Other", "FROM scratch\nCOPY a /b\n"),
        ("a", "from the tar\n"),
    ] {
        let mut h = tar::Header::new_ustar();
        h.set_size(content.len() as u64);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_cksum();
        b.append_data(&mut h, path, content.as_bytes()).unwrap();
    }
    b.into_inner().unwrap()
}

fn compressed(kind: &str, tar: &[u8]) -> Vec<u8> {
    match kind {
        "tar" => tar.to_vec(),
        "gzip" => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(tar).unwrap();
            e.finish().unwrap()
        }
        "bzip2" => {
            let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
            e.write_all(tar).unwrap();
            e.finish().unwrap()
        }
        "xz" => {
            let mut e = xz2::write::XzEncoder::new(Vec::new(), 1);
            e.write_all(tar).unwrap();
            e.finish().unwrap()
        }
        _ => unreachable!(),
    }
}

fn assert_ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_tar_on_stdin_is_the_context_in_every_compression() {
    let env = Env::new();
    let tar = context_tar();
    for kind in ["tar", "gzip", "bzip2", "xz"] {
        let dest = env.path(kind);
        let o = format!("type=local,dest={}", dest.display());
        let out = kiln_stdin(&env, &["-o", &o, "-"], &compressed(kind, &tar));
        assert_ok(&out, kind);
        assert_eq!(
            std::fs::read_to_string(dest.join("a")).unwrap(),
            "from the tar\n"
        );
    }
    // -f names a Dockerfile inside the tar.
    let dest = env.path("other");
    let o = format!("type=local,dest={}", dest.display());
    let out = kiln_stdin(&env, &["-f", "sub/Other", "-o", &o, "-"], &tar);
    assert_ok(&out, "-f sub/Other");
    assert_eq!(
        std::fs::read_to_string(dest.join("b")).unwrap(),
        "from the tar\n"
    );
    let out = kiln_stdin(&env, &["-f", "missing", "-"], &tar);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("reading dockerfile missing from the build context on stdin"));
    // The unpacked context does not outlive the build.
    let left: Vec<_> = std::fs::read_dir(env.root().join("tmp"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn a_dockerfile_on_stdin_has_no_context() {
    let env = Env::new();
    let out = kiln_stdin(&env, &["-t", "stdin:1", "-"], b"FROM scratch\nLABEL a=b\n");
    assert_ok(&out, "metadata only");
    let (_, _, config) = env.image("stdin:1");
    assert_eq!(config.config.labels["a"], "b");
    let out = kiln_stdin(&env, &["-"], b"FROM scratch\nCOPY a /a\n");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("COPY a /a") && err.contains("not found"),
        "{err}"
    );
}

#[test]
fn dockerfile_from_stdin_with_a_directory_context() {
    let env = Env::new();
    let ctx = env.context("ctx", &[("a", "from the dir\n")]);
    let dest = env.path("out");
    let o = format!("type=local,dest={}", dest.display());
    let args = ["-f", "-", "-o", &o, ctx.to_str().unwrap()];
    let out = kiln_stdin(&env, &args, b"FROM scratch\nCOPY a /a\n");
    assert_ok(&out, "-f - DIR");
    assert_eq!(
        std::fs::read_to_string(dest.join("a")).unwrap(),
        "from the dir\n"
    );
}

#[test]
fn stdin_for_both_context_and_dockerfile_is_a_usage_error() {
    let env = Env::new();
    let out = kiln_stdin(&env, &["-f", "-", "-"], b"FROM scratch\n");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("can't use stdin for both build context and dockerfile"));
}
