//! `kiln run`'s private network (the default): its own interface and address,
//! outbound access to the host's non-loopback addresses but not to its loopback,
//! published ports (`-p`, `-P`) that carry a real HTTP exchange and are free again
//! once kiln has ended, and a port in use refused before anything runs.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use super::{decode, images, run, run_ok, sigterm, start, tmp_entries};

/// This host's address on its default route (a UDP connect sends nothing), where
/// a listener is reachable from the private network as from another machine.
fn host_addr() -> Ipv4Addr {
    let s = UdpSocket::bind("0.0.0.0:0").unwrap();
    s.connect("198.51.100.1:9")
        .expect("the host needs a default route for the private network's test");
    match s.local_addr().unwrap().ip() {
        std::net::IpAddr::V4(a) => a,
        other => panic!("no IPv4 address on the default route: {other}"),
    }
}

/// GET / through `port` on the host's loopback; the response, or None while the
/// container is not answering yet (slirp4netns accepts, then closes).
fn get(port: u16) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    (!out.is_empty()).then_some(out)
}

#[test]
fn private_network_reaches_out_but_not_the_host_loopback() {
    let env = images();
    // A service on the host's own address, and one on its loopback only.
    let outside = TcpListener::bind((host_addr(), 0)).unwrap();
    let out_port = outside.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (conn, _) = outside.accept().unwrap();
        let mut line = String::new();
        BufReader::new(&conn).read_line(&mut line).unwrap();
        (&conn).write_all(b"back\n").unwrap();
        line
    });
    // It answers whoever connects, so that reaching it shows (and nothing hangs).
    let loopback = TcpListener::bind("127.0.0.1:0").unwrap();
    let lo_port = loopback.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in loopback.incoming() {
            let _ = conn.and_then(|mut c| c.write_all(b"loopback-service\n"));
        }
    });
    let script = format!(
        "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | sort; \
         echo hi | nc {ip} {out_port}; \
         nc 10.0.2.2 {lo_port} </dev/null && echo gateway-reached || echo gateway-refused; \
         nc 127.0.0.1 {lo_port} </dev/null && echo loopback-reached || echo loopback-refused; \
         hostname -i",
        ip = host_addr(),
    );
    let out = run_ok(&env, &["plain", "sh", "-c", &script]);
    assert_eq!(
        out,
        "eth0\nlo\nback\ngateway-refused\nloopback-refused\n10.0.2.100\n"
    );
    assert_eq!(server.join().unwrap(), "hi\n");
    // `none` has loopback only.
    let ifaces = "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '";
    assert_eq!(
        run_ok(&env, &["--network", "none", "plain", "sh", "-c", ifaces]),
        "lo\n"
    );
}

#[test]
fn published_port_serves_http_and_is_freed_when_kiln_ends() {
    let env = images();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let publish = format!("127.0.0.1:{port}:80");
    // As the image's user: port 80 is bindable in the container's own namespace.
    let httpd = "mkdir -p /tmp/www && echo hello-from-kiln > /tmp/www/index.html && echo ready && exec httpd -f -p 80 -h /tmp/www";
    let child = start(
        &env,
        &["--init", "-p", &publish, "plain", "sh", "-c", httpd],
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let page = loop {
        match get(port) {
            Some(page) => break page,
            None if Instant::now() > deadline => break String::new(),
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    };
    // The port is taken while the container runs: a second run is refused.
    let second = run(&env, &["--rm", "-p", &publish, "plain", "true"], None);
    sigterm(&child);
    assert!(
        page.starts_with("HTTP/1.1 200 OK"),
        "no page on port {port}: {page:?}"
    );
    assert!(page.ends_with("hello-from-kiln\n"), "{page}");
    let (code, _, err) = second;
    assert_eq!(code, 125, "{err}");
    assert!(err.contains("in use"), "{err}");
    let (code, _, err) = decode(child.wait_with_output().unwrap());
    assert_eq!(code, 143, "{err}");
    TcpListener::bind(("127.0.0.1", port)).expect("the published port is still bound");
    // -p CTRPORT and -P: a free host port each, printed on stderr.
    let (code, _, err) = run(&env, &["--rm", "-p", "127.0.0.1::80", "-P", "ep"], None);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 3, "{err}");
    assert!(
        lines[0].starts_with("127.0.0.1:") && lines[0].ends_with(" -> 80/tcp"),
        "{err}"
    );
    assert!(
        lines[1].starts_with("0.0.0.0:") && lines[1].ends_with(" -> 53/udp"),
        "{err}"
    );
    assert!(lines[2].ends_with(" -> 8080/tcp"), "{err}");
    assert_eq!(tmp_entries(&env), Vec::<String>::new());
}
