//! A real registry for the tests: Debian's `docker-registry` (the
//! Distribution server) on a free loopback port, filesystem storage in a temp
//! dir, killed on drop. Modes: plain HTTP, TLS with a CA made here (trusted
//! through a certs.d dir), htpasswd basic auth, and token auth against the
//! test's own token server.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kiln::oci::Digest;

pub const REGISTRY_BIN: &str = "/usr/bin/docker-registry";

/// How the registry authenticates.
pub enum Auth {
    None,
    /// htpasswd (bcrypt) with one user.
    Htpasswd {
        user: String,
        password: String,
    },
    /// Token auth: the realm of a token server and the PEM cert it signs with.
    Token {
        realm: String,
        service: String,
        issuer: String,
        cert: PathBuf,
    },
}

pub struct Registry {
    child: Child,
    pub dir: tempfile::TempDir,
    /// `127.0.0.1:PORT`.
    pub host: String,
    /// A certs.d base trusting the registry's CA (TLS mode only).
    pub certs_d: Option<PathBuf>,
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub use crate::common::run;

impl Registry {
    pub fn start(tls: bool, auth: Auth) -> Registry {
        assert!(
            Path::new(REGISTRY_BIN).is_file(),
            "{REGISTRY_BIN} missing: apt-get install docker-registry (scripts/test does)"
        );
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let host = format!("127.0.0.1:{port}");
        let mut config = format!(
            "version: 0.1\nlog:\n  level: info\n  formatter: text\n\
             storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
             http:\n  addr: {host}\n  secret: kiln-test-secret\n",
            dir.path().join("data").display()
        );
        let mut certs_d = None;
        if tls {
            let (crt, key, d) = make_tls(dir.path(), &host);
            config.push_str(&format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                crt.display(),
                key.display()
            ));
            certs_d = Some(d);
        }
        match auth {
            Auth::None => {}
            Auth::Htpasswd { user, password } => {
                let path = dir.path().join("htpasswd");
                let out = Command::new("htpasswd")
                    .args(["-Bbn", &user, &password])
                    .output()
                    .expect("htpasswd (apt-get install apache2-utils)");
                assert!(out.status.success());
                std::fs::write(&path, out.stdout).unwrap();
                config.push_str(&format!(
                    "auth:\n  htpasswd:\n    realm: kiln-test\n    path: {}\n",
                    path.display()
                ));
            }
            Auth::Token {
                realm,
                service,
                issuer,
                cert,
            } => config.push_str(&format!(
                "auth:\n  token:\n    realm: {realm}\n    service: {service}\n    \
                 issuer: {issuer}\n    rootcertbundle: {}\n",
                cert.display()
            )),
        }
        let cfg = dir.path().join("config.yml");
        std::fs::write(&cfg, config).unwrap();
        let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = Command::new(REGISTRY_BIN)
            .arg("serve")
            .arg(&cfg)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("starting docker-registry");
        let reg = Registry {
            child,
            dir,
            host,
            certs_d,
        };
        reg.wait_ready();
        reg
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(mut s) = TcpStream::connect(&self.host) {
                // Any answer to a request means the server is serving.
                let _ = s.write_all(b"GET /v2/ HTTP/1.0\r\n\r\n");
                if self.log().contains("listening on") {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("docker-registry did not start:\n{}", self.log());
    }

    /// Everything the registry logged (its access log included).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// The access-log request lines (`"METHOD URI HTTP/1.1" STATUS`), from
    /// byte `since` of the log.
    pub fn requests_since(&self, since: usize) -> Vec<String> {
        let log = self.log();
        log[since.min(log.len())..]
            .lines()
            .filter(|l| l.contains("\" ") && l.contains(" HTTP/1.1\" "))
            .filter_map(|l| {
                let start = l.find('"')? + 1;
                let rest = &l[start..];
                let end = rest.find("\" ")?;
                let status = rest[end + 2..].split(' ').next()?;
                Some(format!("{} {status}", &rest[..end]))
            })
            .collect()
    }

    pub fn log_len(&self) -> usize {
        self.log().len()
    }

    /// Where the filesystem driver keeps a blob's bytes.
    pub fn blob_data(&self, digest: &Digest) -> PathBuf {
        let hex = digest.hex();
        self.dir
            .path()
            .join("data/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(&hex)
            .join("data")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A CA, a server certificate for 127.0.0.1 signed by it, and a certs.d
/// dir holding the CA for `host`.
fn make_tls(dir: &Path, host: &str) -> (PathBuf, PathBuf, PathBuf) {
    let p = |n: &str| dir.join(n);
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    run(Command::new("openssl")
        .args(["req", "-x509"])
        .args(ec)
        .arg("-keyout")
        .arg(p("ca.key"))
        .arg("-out")
        .arg(p("ca.crt"))
        .args(["-subj", "/CN=kiln test CA", "-days", "2"])
        .args(["-addext", "basicConstraints=critical,CA:TRUE"])
        .args(["-addext", "keyUsage=critical,keyCertSign,cRLSign"]));
    run(Command::new("openssl")
        .arg("req")
        .args(ec)
        .arg("-keyout")
        .arg(p("server.key"))
        .arg("-out")
        .arg(p("server.csr"))
        .args(["-subj", "/CN=127.0.0.1"]));
    std::fs::write(
        p("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(Command::new("openssl")
        .args(["x509", "-req", "-days", "2", "-CAcreateserial"])
        .arg("-in")
        .arg(p("server.csr"))
        .arg("-CA")
        .arg(p("ca.crt"))
        .arg("-CAkey")
        .arg(p("ca.key"))
        .arg("-extfile")
        .arg(p("ext.cnf"))
        .arg("-out")
        .arg(p("server.crt")));
    let certs_d = p("certs.d");
    std::fs::create_dir_all(certs_d.join(host)).unwrap();
    std::fs::copy(p("ca.crt"), certs_d.join(host).join("ca.crt")).unwrap();
    (p("server.crt"), p("server.key"), certs_d)
}
