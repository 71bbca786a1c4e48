//! A loopback TCP proxy in front of a registry that cuts the first
//! connection to carry more than `cut_after` bytes towards the client (or
//! towards the registry), once: a connection dropped in the middle of a blob.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

pub struct CuttingProxy {
    /// `127.0.0.1:PORT` of the proxy.
    pub host: String,
    /// How many connections it cut.
    pub cuts: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl CuttingProxy {
    /// Cuts the first connection carrying more than `cut_after` bytes to the client.
    pub fn start(upstream: &str, cut_after: u64) -> CuttingProxy {
        Self::start_cutting(upstream, cut_after, false)
    }

    /// Cuts the first connection carrying more than `cut_after` bytes to the
    /// registry (an upload).
    pub fn start_upload(upstream: &str, cut_after: u64) -> CuttingProxy {
        Self::start_cutting(upstream, cut_after, true)
    }

    fn start_cutting(upstream: &str, cut_after: u64, upload: bool) -> CuttingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let host = listener.local_addr().unwrap().to_string();
        let cuts = Arc::new(AtomicUsize::new(0));
        let armed = Arc::new(AtomicBool::new(true));
        let stop = Arc::new(AtomicBool::new(false));
        let upstream = upstream.to_string();
        let (c, s) = (cuts.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = conn else { continue };
                let Ok(server) = TcpStream::connect(&upstream) else {
                    continue;
                };
                let (c2, a2) = (c.clone(), armed.clone());
                let (client2, server2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                let cut = Some((cut_after, a2, c2));
                let (up, down) = if upload { (cut, None) } else { (None, cut) };
                std::thread::spawn(move || pipe(client2, server2, up));
                std::thread::spawn(move || pipe(server, client, down));
            }
        });
        CuttingProxy { host, cuts, stop }
    }
}

impl Drop for CuttingProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(&self.host);
    }
}

type Cut = (u64, Arc<AtomicBool>, Arc<AtomicUsize>);

fn pipe(mut from: TcpStream, mut to: TcpStream, cut: Option<Cut>) {
    let mut buf = [0u8; 16 * 1024];
    let mut total = 0u64;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Some((after, armed, cuts)) = &cut {
            if total + n as u64 > *after && armed.swap(false, Ordering::SeqCst) {
                let keep = (*after - total) as usize;
                let _ = to.write_all(&buf[..keep]);
                cuts.fetch_add(1, Ordering::SeqCst);
                break;
            }
        }
        total += n as u64;
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}
