//! TLS trust for one registry host, as docker sets it up: the system roots
//! (`/etc/ssl/certs/ca-certificates.crt`, else the bundled Mozilla roots)
//! plus every `*.crt` in `<certs.d>/<host>/` (default `/etc/docker/certs.d`).
//!
//! Client certificates (`client.cert`/`client.key` in certs.d) are not
//! supported yet: finding one is an error naming it, never silently skipped.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

use super::RegistryError;

/// The system CA bundle Debian (and most distributions) keep.
pub const SYSTEM_ROOTS: &str = "/etc/ssl/certs/ca-certificates.crt";

/// docker's per-registry CA directory.
pub const DEFAULT_CERTS_D: &str = "/etc/docker/certs.d";

/// The certs.d base: `$KILN_CERTS_D`, else `/etc/docker/certs.d`.
pub fn default_certs_d() -> PathBuf {
    std::env::var_os("KILN_CERTS_D")
        .filter(|v| !v.is_empty())
        .map_or_else(|| PathBuf::from(DEFAULT_CERTS_D), PathBuf::from)
}

/// The rustls config for talking to `registry` (`host[:port]`).
pub fn client_config(
    registry: &str,
    certs_d: &Path,
) -> Result<Arc<rustls::ClientConfig>, RegistryError> {
    let mut roots = RootCertStore::empty();
    let system = Path::new(SYSTEM_ROOTS);
    if system.is_file() {
        add_pem_file(&mut roots, system)?;
    } else {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    let host_dir = certs_d.join(registry);
    if let Ok(entries) = std::fs::read_dir(&host_dir) {
        let mut paths: Vec<PathBuf> = entries.filter_map(|e| Some(e.ok()?.path())).collect();
        paths.sort();
        for path in paths {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if name.ends_with(".cert") || name.ends_with(".key") {
                return Err(RegistryError::Certificates {
                    path,
                    source: std::io::Error::new(
                        std::io::ErrorKind::Unsupported,
                        "client certificates are not supported yet",
                    ),
                });
            }
            if name.ends_with(".crt") {
                add_pem_file(&mut roots, &path)?;
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|source| RegistryError::Tls {
            registry: registry.to_string(),
            source,
        })?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

fn add_pem_file(roots: &mut RootCertStore, path: &Path) -> Result<(), RegistryError> {
    let err = |source| RegistryError::Certificates {
        path: path.to_path_buf(),
        source,
    };
    let bytes = std::fs::read(path).map_err(err)?;
    let mut found = 0;
    for cert in CertificateDer::pem_slice_iter(&bytes) {
        let cert =
            cert.map_err(|e| err(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))?;
        // The system bundle carries a few certificates rustls cannot use; skip
        // those there, but a CA the user placed in certs.d must load.
        match roots.add(cert) {
            Ok(()) => found += 1,
            Err(e) if path == Path::new(SYSTEM_ROOTS) => {
                tracing::debug!("skipping a system root: {e}");
            }
            Err(e) => return Err(err(std::io::Error::new(std::io::ErrorKind::InvalidData, e))),
        }
    }
    if found == 0 {
        return Err(err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "no PEM certificate in the file",
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_client_certificates_and_empty_cas() {
        let dir = tempfile::tempdir().unwrap();
        let host = dir.path().join("reg:5000");
        std::fs::create_dir(&host).unwrap();
        std::fs::write(host.join("ca.crt"), "not a pem").unwrap();
        let e = client_config("reg:5000", dir.path()).unwrap_err();
        assert!(e.to_string().contains("ca.crt"), "{e}");
        std::fs::remove_file(host.join("ca.crt")).unwrap();
        std::fs::write(host.join("client.cert"), "x").unwrap();
        assert!(client_config("reg:5000", dir.path()).is_err());
        assert!(client_config("other:1", dir.path()).is_ok());
    }
}
