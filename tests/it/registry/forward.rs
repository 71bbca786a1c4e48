//! A forward HTTP proxy on loopback, as CI machines behind a corporate proxy
//! have: `CONNECT host:port` tunnels and absolute-form requests, to hosts only
//! it can resolve (a name mapped to a loopback address). It records the
//! request lines it saw.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

pub struct ForwardProxy {
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// Every request line, in order.
    pub seen: Arc<Mutex<Vec<String>>>,
}

impl ForwardProxy {
    /// Serves until the test process ends; `hosts` maps `name:port` to the
    /// address to connect to.
    pub fn start(hosts: HashMap<String, String>) -> ForwardProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let (hosts, log) = (hosts.clone(), log.clone());
                std::thread::spawn(move || {
                    let _ = serve(conn, &hosts, &log);
                });
            }
        });
        ForwardProxy { addr, seen }
    }

    pub fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

fn serve(
    client: TcpStream,
    hosts: &HashMap<String, String>,
    log: &Mutex<Vec<String>>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(client.try_clone()?);
    let mut head = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let end = line == "\r\n";
        head.push(line);
        if end {
            break;
        }
    }
    let request = head[0].trim_end().to_string();
    log.lock().unwrap().push(request.clone());
    let mut parts = request.split(' ');
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let authority = match method {
        "CONNECT" => target.to_string(),
        _ => target
            .strip_prefix("http://")
            .and_then(|rest| rest.split('/').next())
            .unwrap_or("")
            .to_string(),
    };
    let Some(upstream) = hosts.get(&authority) else {
        let mut c = client;
        return c.write_all(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n");
    };
    let mut up = TcpStream::connect(upstream)?;
    let mut client = client;
    if method == "CONNECT" {
        client.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")?;
    } else {
        // Go's server takes absolute-form request targets as they are.
        up.write_all(head.concat().as_bytes())?;
    }
    // Whatever the client sent past the head is still in the reader.
    let pending = reader.buffer().to_vec();
    up.write_all(&pending)?;
    let (mut up_read, mut client_write) = (up.try_clone()?, client.try_clone()?);
    let back = std::thread::spawn(move || {
        let _ = std::io::copy(&mut up_read, &mut client_write);
        let _ = client_write.shutdown(std::net::Shutdown::Write);
    });
    let mut client_read = client;
    let _ = std::io::copy(&mut client_read, &mut up);
    let _ = up.shutdown(std::net::Shutdown::Write);
    let _ = back.join();
    Ok(())
}
