//! The sandbox's /etc/resolv.conf, made as BuildKit makes it: never the host's file
//! bound in, but a file generated from it for the caller to bind read-only.
//!
//! COMPAT(buildkit): `executor/oci/resolvconf.go` `GetResolvConf` with the filtering of
//! `util/resolvconf` (moby's `libnetwork/internal/resolvconf`):
//! - the host's file is parsed (comments and blank lines dropped; the last `search` or
//!   `domain` line kept; every `options` line's options accumulated; unknown directives
//!   kept verbatim; an unparsable `nameserver` dropped) and written back in the order
//!   nameservers, `search`, `options`, the other lines;
//! - unless the network is the host's, nameservers on loopback (127.0.0.0/8, ::1) are
//!   dropped, as they only answer in the host's network namespace. BuildKit always
//!   treats IPv6 as enabled (`TransformForLegacyNw(true)`), so IPv6 nameservers stay;
//! - when no nameserver is left (or the host has none, or no file), Google's four
//!   public resolvers (8.8.8.8, 8.8.4.4, 2001:4860:4860::8888, 2001:4860:4860::8844);
//! - unless the network is the host's, a host whose only nameserver is systemd-resolved's
//!   stub 127.0.0.53 is read from `/run/systemd/resolve/resolv.conf` instead.
//!
//! Invariant: the generated text depends only on the host file's content and the
//! network mode; nothing here writes to the host's files.

use std::fs;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use super::ExecError;

/// The host's resolver configuration.
pub const HOST_PATH: &str = "/etc/resolv.conf";
/// systemd-resolved's list of the real upstream servers.
const SYSTEMD_RESOLVED_PATH: &str = "/run/systemd/resolve/resolv.conf";
/// systemd-resolved's stub listener, useless outside the host's network namespace.
const SYSTEMD_STUB: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 53);

/// The fallback nameservers when none is left.
// COMPAT(buildkit): `defaultIPv4NSs` then `defaultIPv6NSs` (IPv6 always on).
const DEFAULT_NAMESERVERS: [IpAddr; 4] = [
    IpAddr::V4(Ipv4Addr::new(8, 8, 8, 8)),
    IpAddr::V4(Ipv4Addr::new(8, 8, 4, 4)),
    IpAddr::V6(Ipv6Addr::new(0x2001, 0x4860, 0x4860, 0, 0, 0, 0, 0x8888)),
    IpAddr::V6(Ipv6Addr::new(0x2001, 0x4860, 0x4860, 0, 0, 0, 0, 0x8844)),
];

/// A parsed resolv.conf, as BuildKit's `ResolvConf` keeps it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct ResolvConf {
    /// Each parsed address with the zone it was written with (`fe80::1%eth0`).
    nameservers: Vec<(IpAddr, Option<String>)>,
    search: Vec<String>,
    options: Vec<String>,
    other: Vec<String>,
}

impl ResolvConf {
    fn parse(text: &str) -> Self {
        let mut rc = ResolvConf::default();
        for line in text.lines() {
            // Only a '#' or ';' in the first column makes a comment.
            if line.is_empty() || line.starts_with(['#', ';']) {
                continue;
            }
            let fields: Vec<&str> = line.split_whitespace().collect();
            let Some((&directive, args)) = fields.split_first() else {
                continue;
            };
            match directive {
                "nameserver" => {
                    if let Some(ns) = args.first().and_then(|a| parse_addr(a)) {
                        rc.nameservers.push(ns);
                    }
                }
                // 'domain' is an obsolete name for 'search'; the last one wins.
                "domain" | "search" if !args.is_empty() => {
                    rc.search = args.iter().map(|s| s.to_string()).collect();
                }
                "options" => rc.options.extend(args.iter().map(|s| s.to_string())),
                "domain" | "search" => {}
                _ => rc.other.push(line.to_string()),
            }
        }
        rc
    }

    /// BuildKit's `TransformForLegacyNw(true)`: no loopback nameserver, the defaults
    /// when none is left.
    fn drop_loopback(&mut self) {
        self.nameservers.retain(|(addr, _)| !is_loopback(addr));
        self.default_if_empty();
    }

    fn default_if_empty(&mut self) {
        if self.nameservers.is_empty() {
            self.nameservers = DEFAULT_NAMESERVERS.iter().map(|a| (*a, None)).collect();
        }
    }

    fn generate(&self) -> String {
        let mut out = String::new();
        for (addr, zone) in &self.nameservers {
            out.push_str(&format!("nameserver {addr}"));
            if let Some(zone) = zone {
                out.push_str(&format!("%{zone}"));
            }
            out.push('\n');
        }
        if !self.search.is_empty() {
            out.push_str(&format!("search {}\n", self.search.join(" ")));
        }
        if !self.options.is_empty() {
            out.push_str(&format!("options {}\n", self.options.join(" ")));
        }
        for line in &self.other {
            out.push_str(line);
            out.push('\n');
        }
        out
    }
}

/// An address as Go's `netip.ParseAddr` reads it: IPv4 or IPv6, an IPv6 one with an
/// optional `%zone`.
fn parse_addr(text: &str) -> Option<(IpAddr, Option<String>)> {
    if let Some((addr, zone)) = text.split_once('%') {
        let addr: Ipv6Addr = addr.parse().ok()?;
        return (!zone.is_empty()).then(|| (IpAddr::V6(addr), Some(zone.to_string())));
    }
    text.parse().ok().map(|a| (a, None))
}

/// Go's `netip.Addr.IsLoopback`: 127.0.0.0/8 (also IPv4-mapped) and ::1.
fn is_loopback(addr: &IpAddr) -> bool {
    match addr {
        IpAddr::V4(a) => a.is_loopback(),
        IpAddr::V6(a) => a.is_loopback() || a.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
    }
}

/// The resolv.conf BuildKit writes from a host file's `text`: loopback nameservers
/// dropped unless `host_network`, the defaults when none is left.
pub fn generate(text: &str, host_network: bool) -> String {
    let mut rc = ResolvConf::parse(text);
    if host_network {
        rc.default_if_empty();
    } else {
        rc.drop_loopback();
    }
    rc.generate()
}

/// The resolv.conf for a sandbox, generated from this host's files (see the module
/// doc). A missing host file gives the default nameservers.
pub fn for_sandbox(host_network: bool) -> Result<String, ExecError> {
    let mut path = Path::new(HOST_PATH);
    let mut text = read(path)?;
    if !host_network {
        let rc = ResolvConf::parse(&text);
        if rc.nameservers == [(IpAddr::V4(SYSTEMD_STUB), None)] {
            tracing::debug!(
                "systemd-resolved's stub is the only nameserver: using {SYSTEMD_RESOLVED_PATH}"
            );
            path = Path::new(SYSTEMD_RESOLVED_PATH);
            text = read(path)?;
        }
    }
    Ok(generate(&text, host_network))
}

/// The resolv.conf for a private network: the host's search and options, and the one
/// nameserver `dns`, the network's forwarder, which asks the host's own resolvers
/// (loopback ones too: it runs in the host's network namespace).
// COMPAT(podman): what it writes for slirp4netns.
pub fn for_private_network(dns: IpAddr) -> Result<String, ExecError> {
    let mut rc = ResolvConf::parse(&read(Path::new(HOST_PATH))?);
    rc.nameservers = vec![(dns, None)];
    Ok(rc.generate())
}

/// A file's text, empty when it is missing. Not UTF-8 bytes become U+FFFD (only an
/// unknown directive's line could carry them through).
fn read(path: &Path) -> Result<String, ExecError> {
    match fs::read(path) {
        Ok(bytes) => Ok(String::from_utf8_lossy(&bytes).into_owned()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(String::new()),
        Err(source) => Err(ExecError::ReadResolvConf {
            path: PathBuf::from(path),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFAULTS: &str = "nameserver 8.8.8.8\nnameserver 8.8.4.4\n\
        nameserver 2001:4860:4860::8888\nnameserver 2001:4860:4860::8844\n";

    #[test]
    fn localhost_only_gives_the_defaults() {
        for text in [
            "nameserver 127.0.0.53\n",
            "nameserver 127.0.0.1\nnameserver ::1\n",
            "nameserver 127.1.2.3\nnameserver ::ffff:127.0.0.1\n",
        ] {
            assert_eq!(generate(text, false), DEFAULTS, "{text:?}");
        }
    }

    #[test]
    fn no_nameserver_or_empty_file_gives_the_defaults_in_every_mode() {
        for host in [false, true] {
            assert_eq!(generate("", host), DEFAULTS);
            assert_eq!(
                generate("search example.com\n", host),
                format!("{DEFAULTS}search example.com\n")
            );
        }
    }

    #[test]
    fn mixed_keeps_the_others_in_order() {
        let text = "nameserver 127.0.0.11\nnameserver 10.0.0.2\nnameserver ::1\n\
                    nameserver 192.168.1.1\n";
        assert_eq!(
            generate(text, false),
            "nameserver 10.0.0.2\nnameserver 192.168.1.1\n"
        );
    }

    #[test]
    fn ipv6_nameservers_stay_as_buildkit_always_enables_ipv6() {
        let text = "nameserver 2001:DB8:0:0::53\nnameserver ::1\nnameserver fe80::1%eth0\n";
        assert_eq!(
            generate(text, false),
            "nameserver 2001:db8::53\nnameserver fe80::1%eth0\n"
        );
    }

    #[test]
    fn host_network_keeps_loopback_but_is_regenerated() {
        let text = "# generated by resolvconf\nnameserver 127.0.0.53\noptions edns0\n";
        assert_eq!(
            generate(text, true),
            "nameserver 127.0.0.53\noptions edns0\n"
        );
    }

    #[test]
    fn search_options_and_unknown_lines_are_kept_comments_dropped() {
        let text = "# comment\n; also a comment\n\noptions ndots:2\n\
                    sortlist 130.155.160.0/255.255.240.0\n\
                    domain first.example\nsearch a.example b.example\n\
                    nameserver 127.0.0.1\noptions edns0 trust-ad\n   # indented\n\
                    search\nnameserver\nnameserver not-an-ip\nnameserver 1.1.1.1 extra\n";
        assert_eq!(
            generate(text, false),
            "nameserver 1.1.1.1\nsearch a.example b.example\n\
             options ndots:2 edns0 trust-ad\n\
             sortlist 130.155.160.0/255.255.240.0\n   # indented\n"
        );
    }

    #[test]
    fn crlf_lines_and_tabs_parse() {
        assert_eq!(
            generate("nameserver\t10.1.1.1\r\nsearch\tx.example\r\n", false),
            "nameserver 10.1.1.1\nsearch x.example\n"
        );
    }

    #[test]
    fn a_missing_file_reads_as_empty() {
        assert_eq!(read(Path::new("/nonexistent/resolv.conf")).unwrap(), "");
    }
}
