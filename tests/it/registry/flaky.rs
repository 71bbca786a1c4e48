//! Blob downloads against a misbehaving server of our own (loopback): a
//! body cut short, a range ignored, a range refused (416). What a real
//! registry behind a flaky proxy or CDN does; the docker-registry tests
//! cover the well-behaved resume.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use kiln::oci::registry::{fetch_blob, RegistryError};
use kiln::oci::{media_type, Descriptor, Digest};

use super::images::{client, noise};
use crate::oci::store;

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// The first answer is cut in half; a range request gets 200 and the whole blob.
    IgnoreRange,
    /// The first answer is cut in half; a range request gets 416.
    RefuseRange,
    /// Every answer is cut in half.
    AlwaysCut,
}

/// Serves `blob` at any `/v2/…/blobs/…`; returns the host and the Range
/// header of every blob request (empty when none).
fn serve(blob: Vec<u8>, mode: Mode) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let host = listener.local_addr().unwrap().to_string();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            let (mut range, mut h) = (String::new(), String::new());
            while reader.read_line(&mut h).is_ok_and(|n| n > 2) {
                if let Some(v) = h.to_ascii_lowercase().strip_prefix("range:") {
                    range = v.trim().to_string();
                }
                h.clear();
            }
            if !line.contains("/blobs/") {
                let _ = conn.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
                );
                continue;
            }
            let n = {
                let mut l = log.lock().unwrap();
                l.push(range.clone());
                l.len()
            };
            if !range.is_empty() && mode == Mode::RefuseRange {
                let _ = conn.write_all(b"HTTP/1.1 416 Range Not Satisfiable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                continue;
            }
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                blob.len()
            );
            let _ = conn.write_all(head.as_bytes());
            let cut = n == 1 || mode == Mode::AlwaysCut;
            let body = if cut {
                &blob[..blob.len() / 2]
            } else {
                &blob[..]
            };
            let _ = conn.write_all(body);
        }
    });
    (host, seen)
}

fn desc(blob: &[u8]) -> Descriptor {
    Descriptor::new(media_type::OCI_LAYER, Digest::of(blob), blob.len() as u64)
}

#[test]
fn a_cut_body_whose_range_is_ignored_starts_over() {
    let blob = noise("flaky", 300_000);
    for mode in [Mode::IgnoreRange, Mode::RefuseRange] {
        let (host, seen) = serve(blob.clone(), mode);
        let (_d, st) = store();
        assert!(fetch_blob(&client(None), &st, &host, "x", &desc(&blob)).unwrap());
        assert_eq!(st.read_blob(&Digest::of(&blob)).unwrap(), blob);
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen[0], "", "first request has no range");
        assert_eq!(seen[1], "bytes=150000-", "the resume asks for the rest");
        if mode == Mode::RefuseRange {
            assert_eq!(seen[2], "", "after a 416 the blob starts over");
        }
    }
}

#[test]
fn a_body_that_keeps_breaking_fails_after_the_retries_and_keeps_nothing() {
    let blob = noise("broken", 100_000);
    let (host, seen) = serve(blob.clone(), Mode::AlwaysCut);
    let (_d, st) = store();
    let e = fetch_blob(&client(None), &st, &host, "x", &desc(&blob)).unwrap_err();
    assert!(matches!(e, RegistryError::PullBlob { .. }), "{e}");
    assert_eq!(seen.lock().unwrap().len(), 4, "one try and three retries");
    assert!(!st.has_blob(&Digest::of(&blob)));
    assert_eq!(std::fs::read_dir(st.tmp_dir()).unwrap().count(), 0);
}
