//! A token server of our own for the bearer flow: a loopback HTTP server
//! that checks basic credentials (GET) or a refresh token (POST,
//! `grant_type=refresh_token`) and answers with an ES256 JWT whose `x5c`
//! header carries a certificate the registry trusts (`rootcertbundle`).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};

use super::server::run;

pub const SERVICE: &str = "kiln-test-registry";
pub const ISSUER: &str = "kiln-test-issuer";
pub const REFRESH_TOKEN: &str = "kiln-refresh-secret";

pub struct TokenServer {
    pub realm: String,
    /// The PEM certificate to put in the registry's `rootcertbundle`.
    pub cert: PathBuf,
    /// Every request: (method, query or form body).
    pub requests: Arc<Mutex<Vec<(String, String)>>>,
}

struct Signer {
    key: EcdsaKeyPair,
    cert_der: Vec<u8>,
    user: String,
    password: String,
}

impl TokenServer {
    pub fn start(dir: &Path, user: &str, password: &str) -> TokenServer {
        let p = |n: &str| dir.join(n);
        run(Command::new("openssl")
            .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
            .args(["ec_paramgen_curve:prime256v1", "-nodes", "-days", "2"])
            .args(["-subj", "/CN=kiln test token signer"])
            .arg("-keyout")
            .arg(p("token.key"))
            .arg("-out")
            .arg(p("token.crt")));
        run(Command::new("openssl")
            .args(["pkcs8", "-topk8", "-nocrypt", "-outform", "DER"])
            .arg("-in")
            .arg(p("token.key"))
            .arg("-out")
            .arg(p("token.p8")));
        run(Command::new("openssl")
            .args(["x509", "-outform", "DER"])
            .arg("-in")
            .arg(p("token.crt"))
            .arg("-out")
            .arg(p("token.der")));
        let pkcs8 = std::fs::read(p("token.p8")).unwrap();
        let key = EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            &pkcs8,
            &SystemRandom::new(),
        )
        .unwrap();
        let signer = Arc::new(Signer {
            key,
            cert_der: std::fs::read(p("token.der")).unwrap(),
            user: user.into(),
            password: password.into(),
        });
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let realm = format!("http://{}/token", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let log = requests.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(stream) = conn else { continue };
                let (signer, log) = (signer.clone(), log.clone());
                std::thread::spawn(move || serve(stream, &signer, &log));
            }
        });
        TokenServer {
            realm,
            cert: p("token.crt"),
            requests,
        }
    }

    pub fn request_count(&self) -> usize {
        self.requests.lock().unwrap().len()
    }
}

fn serve(stream: std::net::TcpStream, signer: &Signer, log: &Mutex<Vec<(String, String)>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let target = parts.next().unwrap_or("").to_string();
    let (mut auth, mut length) = (None, 0usize);
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).unwrap();
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':').unwrap_or((h, ""));
        match k.to_ascii_lowercase().as_str() {
            "authorization" => auth = Some(v.trim().to_string()),
            "content-length" => length = v.trim().parse().unwrap(),
            _ => {}
        }
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body).unwrap();
    let params = if method == "POST" {
        String::from_utf8(body).unwrap()
    } else {
        target
            .split_once('?')
            .map(|(_, q)| q.to_string())
            .unwrap_or_default()
    };
    log.lock().unwrap().push((method.clone(), params.clone()));
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(params.as_bytes())
        .into_owned()
        .collect();
    let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let expected = format!(
        "Basic {}",
        STANDARD.encode(format!("{}:{}", signer.user, signer.password))
    );
    let ok = if method == "POST" {
        get("grant_type").as_deref() == Some("refresh_token")
            && get("refresh_token").as_deref() == Some(REFRESH_TOKEN)
    } else {
        auth.as_deref() == Some(expected.as_str())
    };
    let mut out = stream;
    if !ok {
        let body = r#"{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}"#;
        let _ = write!(
            out,
            "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        return;
    }
    let mut scopes: Vec<String> = pairs
        .iter()
        .filter(|(k, _)| k == "scope")
        .flat_map(|(_, v)| v.split(' ').map(str::to_string).collect::<Vec<_>>())
        .collect();
    scopes.retain(|s| !s.is_empty());
    let token = sign(signer, &scopes);
    let field = if method == "POST" {
        "access_token"
    } else {
        "token"
    };
    let body = format!(r#"{{"{field}":"{token}","expires_in":300}}"#);
    let _ = write!(
        out,
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

fn sign(signer: &Signer, scopes: &[String]) -> String {
    let access: Vec<serde_json::Value> = scopes
        .iter()
        .filter_map(|s| {
            let (kind, rest) = s.split_once(':')?;
            let (name, actions) = rest.rsplit_once(':')?;
            Some(serde_json::json!({
                "type": kind, "name": name,
                "actions": actions.split(',').collect::<Vec<_>>(),
            }))
        })
        .collect();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let header = serde_json::json!({
        "alg": "ES256", "typ": "JWT", "x5c": [STANDARD.encode(&signer.cert_der)],
    });
    let claims = serde_json::json!({
        "iss": ISSUER, "sub": signer.user, "aud": SERVICE,
        "exp": now + 300, "nbf": now - 10, "iat": now,
        "jti": format!("{now}-{}", scopes.len()), "access": access,
    });
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let sig = signer
        .key
        .sign(&SystemRandom::new(), signing_input.as_bytes())
        .unwrap();
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
}
