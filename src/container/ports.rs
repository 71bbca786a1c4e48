//! `-p/--publish` and `-P/--publish-all`: docker's port syntax, the image's
//! ExposedPorts, and the host ports chosen before the container starts.
//!
//! A host port given is checked free by binding it here, so that a port in use fails
//! with its own error (exit 125) before any sandbox exists; a port left to kiln
//! (`-p CTRPORT`, `-P`) is one the kernel hands out for an ephemeral bind, released
//! just before the network forwards it.

use std::collections::BTreeSet;
use std::io;
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, UdpSocket};

use crate::exec::{PortMapping, Protocol};
use crate::oci::ContainerConfig;

use super::ContainerError;

/// One `-p` as written: the host port absent means any free one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublishSpec {
    /// The host address; every IPv4 address when absent.
    pub host_ip: Option<Ipv4Addr>,
    /// The host port; a free one when absent.
    pub host_port: Option<u16>,
    /// The container's port.
    pub container_port: u16,
    /// TCP or UDP.
    pub protocol: Protocol,
}

/// Why a `-p` value is not one kiln takes.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("-p {spec:?}: {why}")]
pub struct PublishSyntaxError {
    /// As written.
    pub spec: String,
    /// What is wrong.
    pub why: String,
}

impl PublishSpec {
    /// `[IP:][HOSTPORT:]CTRPORT[/tcp|udp]`, docker's syntax for one port (no ranges;
    /// IPv4 host addresses: the private network is IPv4, as docker's default bridge).
    pub fn parse(spec: &str) -> Result<Self, PublishSyntaxError> {
        let err = |why: &str| PublishSyntaxError {
            spec: spec.into(),
            why: why.into(),
        };
        let (ports, protocol) = match spec.rsplit_once('/') {
            Some((p, "tcp")) => (p, Protocol::Tcp),
            Some((p, "udp")) => (p, Protocol::Udp),
            Some((_, proto)) => {
                return Err(err(&format!(
                    "protocol {proto:?} is not tcp or udp (sctp is not implemented)"
                )))
            }
            None => (spec, Protocol::Tcp),
        };
        if ports.starts_with('[') {
            return Err(err(
                "IPv6 host addresses are not implemented (the private network is IPv4)",
            ));
        }
        let parts: Vec<&str> = ports.split(':').collect();
        let (ip, host, ctr) = match parts.as_slice() {
            [c] => (None, None, *c),
            [h, c] => (None, Some(*h), *c),
            [ip, h, c] => (Some(*ip), Some(*h).filter(|h| !h.is_empty()), *c),
            _ => return Err(err("expected [IP:][HOSTPORT:]CTRPORT[/tcp|udp]")),
        };
        let port = |p: &str, what: &str| -> Result<u16, PublishSyntaxError> {
            if p.contains('-') {
                return Err(err("port ranges are not implemented; give one -p per port"));
            }
            match p.parse::<u16>() {
                Ok(n) if n > 0 => Ok(n),
                _ => Err(err(&format!("{what} {p:?} is not a port (1-65535)"))),
            }
        };
        let host_ip = match ip {
            None | Some("") => None,
            Some(ip) => Some(
                ip.parse::<Ipv4Addr>()
                    .map_err(|_| err(&format!("{ip:?} is not an IPv4 address")))?,
            ),
        };
        Ok(Self {
            host_ip,
            host_port: host.map(|h| port(h, "host port")).transpose()?,
            container_port: port(ctr, "container port")?,
            protocol,
        })
    }
}

/// `-P`: every port of the image's ExposedPorts (`80/tcp`, `53/udp`, `8080`), each to
/// a free host port.
pub fn exposed(cfg: &ContainerConfig) -> Result<Vec<PublishSpec>, ContainerError> {
    cfg.exposed_ports
        .keys()
        .map(|k| {
            let spec = PublishSpec::parse(k).map_err(|_| ContainerError::ExposedPort {
                port: k.to_string(),
            })?;
            if spec.host_port.is_some() || spec.host_ip.is_some() {
                return Err(ContainerError::ExposedPort {
                    port: k.to_string(),
                });
            }
            Ok(spec)
        })
        .collect()
}

/// The host side of each spec: a given port checked free, an absent one chosen.
/// Returns the mappings in order, each once (docker merges duplicates too).
pub fn resolve(specs: &[PublishSpec]) -> Result<Vec<PortMapping>, ContainerError> {
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    for s in specs {
        let ip = s.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED);
        let host_port = bind(ip, s.host_port.unwrap_or(0), s.protocol).map_err(|source| {
            ContainerError::PortInUse {
                port: format!("{ip}:{}/{}", s.host_port.unwrap_or(0), s.protocol.name()),
                source,
            }
        })?;
        let m = PortMapping {
            host_ip: s.host_ip,
            host_port,
            container_port: s.container_port,
            protocol: s.protocol,
        };
        if seen.insert((ip, host_port, s.protocol.name())) {
            out.push(m);
        } else if !out.contains(&m) {
            return Err(ContainerError::PortInUse {
                port: format!("{ip}:{host_port}/{}", s.protocol.name()),
                source: io::Error::from(io::ErrorKind::AddrInUse),
            });
        }
    }
    Ok(out)
}

/// Binds `ip:port` (0: any free one) and releases it; the port bound.
fn bind(ip: Ipv4Addr, port: u16, protocol: Protocol) -> io::Result<u16> {
    let addr = SocketAddrV4::new(ip, port);
    match protocol {
        Protocol::Tcp => TcpListener::bind(addr)?.local_addr().map(|a| a.port()),
        Protocol::Udp => UdpSocket::bind(addr)?.local_addr().map(|a| a.port()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_port_syntax() {
        let p = PublishSpec::parse("127.0.0.1:8080:80/udp").unwrap();
        assert_eq!(p.host_ip, Some(Ipv4Addr::LOCALHOST));
        assert_eq!((p.host_port, p.container_port), (Some(8080), 80));
        assert_eq!(p.protocol, Protocol::Udp);
        let p = PublishSpec::parse("8080:80").unwrap();
        assert_eq!(
            (p.host_ip, p.host_port, p.protocol),
            (None, Some(8080), Protocol::Tcp)
        );
        let p = PublishSpec::parse("80").unwrap();
        assert_eq!(p.host_port, None);
        let p = PublishSpec::parse("127.0.0.1::80").unwrap();
        assert_eq!((p.host_ip.is_some(), p.host_port), (true, None));
        for bad in [
            "0",
            "x:80",
            "80/sctp",
            "8000-8001:80",
            "[::1]:80:80",
            "a.b:1:2",
            "1:2:3:4",
            "70000",
        ] {
            assert!(PublishSpec::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_port_in_use_is_refused_and_a_free_one_chosen() {
        let held = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = held.local_addr().unwrap().port();
        let spec = PublishSpec {
            host_ip: Some(Ipv4Addr::LOCALHOST),
            host_port: Some(port),
            container_port: 80,
            protocol: Protocol::Tcp,
        };
        let err = resolve(&[spec]).unwrap_err();
        assert!(matches!(err, ContainerError::PortInUse { .. }), "{err}");
        let any = resolve(&[PublishSpec {
            host_port: None,
            ..spec
        }])
        .unwrap();
        assert_ne!(any[0].host_port, 0);
    }
}
