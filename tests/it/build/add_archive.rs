//! ADD of local archives as docker's untar has it: a later entry replaces an
//! earlier one at the same path, entries that leave the destination are
//! refused naming the entry and the archive, and a failed ADD leaves nothing
//! in the store's `tmp/`.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;

use super::Env;

/// One tar entry: a path and what it is.
enum E<'a> {
    File(&'a str, &'a str),
    Dir(&'a str),
    Symlink(&'a str, &'a str),
    Hardlink(&'a str, &'a str),
}

/// A plain tar of `entries`, in order, with no path normalization (the
/// `tar` crate's `append_data` would refuse `..`).
fn tar_of(entries: &[E]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        let (path, data): (&str, &[u8]) = match e {
            E::File(p, c) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o644);
                (p, c.as_bytes())
            }
            E::Dir(p) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                (p, b"")
            }
            E::Symlink(p, t) | E::Hardlink(p, t) => {
                let ty = match e {
                    E::Symlink(..) => tar::EntryType::Symlink,
                    _ => tar::EntryType::Link,
                };
                h.set_entry_type(ty);
                h.set_mode(0o777);
                h.set_link_name_literal(t).unwrap();
                (p, b"")
            }
        };
        // Raw bytes into the name field: no check that would refuse `..`.
        let name = &mut h.as_old_mut().name;
        name[..path.len()].copy_from_slice(path.as_bytes());
        h.set_size(data.len() as u64);
        h.set_mtime(1_600_000_000);
        h.set_uid(0);
        h.set_gid(0);
        h.set_cksum();
        b.append(&h, data).unwrap();
    }
    b.into_inner().unwrap()
}

/// A context holding `x.tar` and a Dockerfile that ADDs it to `/d/`.
fn add_ctx(env: &Env, name: &str, entries: &[E]) -> std::path::PathBuf {
    let ctx = env.context(name, &[("Dockerfile", "FROM scratch\nADD x.tar /d/\n")]);
    fs::write(ctx.join("x.tar"), tar_of(entries)).unwrap();
    ctx
}

fn assert_tmp_empty(env: &Env) {
    let left: Vec<_> = fs::read_dir(env.root().join("tmp"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "tmp/ holds {left:?}");
}

#[test]
fn add_tar_later_entries_replace_earlier_ones() {
    let env = Env::new();
    let cases: &[(&str, &[E])] = &[
        (
            "file_then_dir",
            &[E::File("p", "f"), E::Dir("p/"), E::File("p/in", "in")],
        ),
        (
            "dir_then_file",
            &[E::Dir("p/"), E::File("p/in", "in"), E::File("p", "f")],
        ),
        (
            "file_then_symlink",
            &[E::File("p", "f"), E::Symlink("p", "target")],
        ),
        (
            "symlink_then_file",
            &[E::Symlink("p", "target"), E::File("p", "f")],
        ),
        (
            "dir_then_symlink",
            &[E::Dir("p/"), E::File("p/in", "in"), E::Symlink("p", "t")],
        ),
        (
            "symlink_then_dir",
            &[E::Symlink("p", "/etc"), E::Dir("p/"), E::File("p/in", "in")],
        ),
        (
            "file_then_file",
            &[E::File("p", "one"), E::File("p", "two")],
        ),
        (
            "file_then_hardlink",
            &[E::File("o", "o"), E::File("p", "f"), E::Hardlink("p", "o")],
        ),
        (
            "dir_merges_dir",
            &[
                E::Dir("p/"),
                E::File("p/a", "a"),
                E::Dir("p/"),
                E::File("p/b", "b"),
            ],
        ),
    ];
    for (name, entries) in cases {
        let ctx = add_ctx(&env, name, entries);
        env.build(&["-t", name, ctx.to_str().unwrap()]);
        let p = env.rootfs(name).join("d/p");
        let m = fs::symlink_metadata(&p).unwrap();
        let read = |q: &Path| fs::read_to_string(q).unwrap();
        match *name {
            "file_then_dir" | "symlink_then_dir" => {
                assert!(m.is_dir(), "{name}");
                assert_eq!(read(&p.join("in")), "in", "{name}");
            }
            "dir_then_file" | "symlink_then_file" => {
                assert!(m.is_file(), "{name}");
                assert_eq!(read(&p), "f", "{name}");
            }
            "file_then_symlink" => assert_eq!(fs::read_link(&p).unwrap(), Path::new("target")),
            "dir_then_symlink" => assert_eq!(fs::read_link(&p).unwrap(), Path::new("t")),
            "file_then_file" => assert_eq!(read(&p), "two"),
            "file_then_hardlink" => assert_eq!(read(&p), "o"),
            "dir_merges_dir" => {
                assert_eq!(read(&p.join("a")), "a");
                assert_eq!(read(&p.join("b")), "b");
            }
            _ => unreachable!(),
        }
    }
    // COMPAT(buildkit): paths are cleaned as docker's untar cleans them.
    let ctx = add_ctx(
        &env,
        "clean",
        &[E::File("a/../b", "b"), E::File("/abs", "abs")],
    );
    env.build(&["-t", "clean", ctx.to_str().unwrap()]);
    let root = env.rootfs("clean");
    assert_eq!(fs::read_to_string(root.join("d/b")).unwrap(), "b");
    assert_eq!(fs::read_to_string(root.join("d/abs")).unwrap(), "abs");
    assert!(!root.join("d/a").exists());
    assert_tmp_empty(&env);
}

#[test]
fn add_tar_refuses_entries_outside_the_destination() {
    let env = Env::new();
    let cases: &[(&str, &[E], &str)] = &[
        (
            "dotdot",
            &[E::File("../evil", "x")],
            "outside of the destination",
        ),
        (
            "deep_dotdot",
            &[E::File("a/../../evil", "x")],
            "outside of the destination",
        ),
        (
            "through_symlink",
            &[E::Symlink("up", "../../.."), E::File("up/evil", "x")],
            "symlink",
        ),
        (
            "abs_symlink",
            &[E::Symlink("etc", "/etc"), E::File("etc/evil", "x")],
            "symlink",
        ),
        (
            "hardlink_out",
            &[E::Hardlink("h", "../../etc/passwd")],
            "outside of the destination",
        ),
        (
            "hardlink_abs",
            &[E::Hardlink("h", "/etc/passwd")],
            "hard link target",
        ),
    ];
    for (name, entries, why) in cases {
        let ctx = add_ctx(&env, name, entries);
        let out = env.kiln(&["build", ctx.to_str().unwrap()], None);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name}: {err}");
        assert!(err.contains(why), "{name}: {err}");
        assert!(err.contains("x.tar"), "{name} names the archive: {err}");
        assert!(err.contains("refusing archive entry"), "{name}: {err}");
        assert_tmp_empty(&env);
    }
    assert!(!env.path("evil").exists() && !env.root().join("evil").exists());
}

/// A loopback server answering `/missing` with 404 and anything else with
/// a small body.
fn server() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut request = String::new();
            let _ = reader.read_line(&mut request);
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let reply: &[u8] = if request.contains("/missing") {
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            } else {
                b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nConnection: close\r\n\r\nbody"
            };
            let _ = conn.write_all(reply);
        }
    });
    url
}

#[test]
fn failed_add_leaves_no_staging_dir() {
    let env = Env::new();
    let url = server();
    let truncated = {
        let mut t = tar_of(&[E::File("big", &"a".repeat(5000))]);
        t.truncate(1500);
        t
    };
    let sum = "0".repeat(64);
    let cases = [
        ("truncated", "ADD x.tar /d/\n".to_string()),
        ("escape", "ADD esc.tar /d/\n".to_string()),
        // Extracts, then fails to pack: a `.wh.` name cannot be in a layer.
        ("whiteout_name", "ADD wh.tar /d/\n".to_string()),
        ("notfound", format!("ADD {url}/missing /m\n")),
        (
            "checksum",
            format!("ADD --checksum=sha256:{sum} {url}/f /f\n"),
        ),
    ];
    for (name, add) in cases {
        let df = format!("FROM scratch\nCOPY Dockerfile /first\n{add}");
        let ctx = env.context(name, &[("Dockerfile", &df)]);
        fs::write(ctx.join("x.tar"), &truncated).unwrap();
        fs::write(ctx.join("wh.tar"), tar_of(&[E::File(".wh.x", "w")])).unwrap();
        fs::write(
            ctx.join("esc.tar"),
            tar_of(&[E::File("ok", "ok"), E::File("../e", "e")]),
        )
        .unwrap();
        let out = env.kiln(&["build", ctx.to_str().unwrap()], None);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_tmp_empty(&env);
    }
    let fsck = env.kiln(&["fsck"], None);
    let report =
        String::from_utf8_lossy(&fsck.stdout).into_owned() + &String::from_utf8_lossy(&fsck.stderr);
    assert!(fsck.status.success(), "{report}");
    assert!(!report.contains("interrupted"), "{report}");
}
