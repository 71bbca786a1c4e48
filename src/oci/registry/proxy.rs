//! Which HTTP proxy a registry host is reached through: `HTTPS_PROXY` (else
//! `HTTP_PROXY`) unless `NO_PROXY` exempts the host, read as Go's
//! `net/http/httpproxy` reads them, since that is what docker's daemon and
//! BuildKit obey and what CI machines behind a proxy are set up for.
//!
//! Invariant: loopback hosts never go through a proxy (Go's rule too), so a
//! registry on `localhost` keeps working on a machine with a proxy set.

use std::net::IpAddr;

use super::request::{host_port, is_loopback};

/// The proxy settings of an environment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Proxies {
    /// `HTTPS_PROXY`: the proxy for `https://` URLs, e.g. `http://proxy:3128`.
    pub https: Option<String>,
    /// `HTTP_PROXY`: the proxy for `http://` URLs.
    pub http: Option<String>,
    /// `NO_PROXY` entries, trimmed, lower-case, empty ones dropped.
    pub no_proxy: Vec<String>,
}

impl Proxies {
    /// From the process environment.
    pub fn from_env() -> Proxies {
        Proxies::from_vars(|name| std::env::var(name).ok())
    }

    /// From `var` (a lookup by name): the upper-case name wins over the
    /// lower-case one, and an empty value counts as unset.
    // COMPAT(buildkit): Go's httpproxy.FromEnvironment.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Proxies {
        let get = |upper: &str| {
            var(upper)
                .filter(|v| !v.is_empty())
                .or_else(|| var(&upper.to_ascii_lowercase()).filter(|v| !v.is_empty()))
        };
        let (https, http) = (get("HTTPS_PROXY"), get("HTTP_PROXY"));
        let no_proxy = get("NO_PROXY")
            .unwrap_or_default()
            .split(',')
            .map(|e| e.trim().to_ascii_lowercase())
            .filter(|e| !e.is_empty())
            .collect();
        Proxies {
            https,
            http,
            no_proxy,
        }
    }

    /// The proxy for a registry `host` (`name[:port]` or `[v6]:port`), if
    /// any. Registries speak HTTPS (plain HTTP only as a fallback), so
    /// `HTTPS_PROXY` is theirs and `HTTP_PROXY` the fallback.
    pub fn for_host(&self, host: &str) -> Option<&str> {
        let proxy = self.https.as_deref().or(self.http.as_deref())?;
        self.applies(host).then_some(proxy)
    }

    /// The proxy for `url`, as Go picks it: `HTTPS_PROXY` for https,
    /// `HTTP_PROXY` for http.
    pub fn for_url(&self, url: &url::Url) -> Option<&str> {
        let proxy = match url.scheme() {
            "https" => self.https.as_deref(),
            "http" => self.http.as_deref(),
            _ => None,
        }?;
        self.applies(&host_port(url)).then_some(proxy)
    }

    fn applies(&self, host: &str) -> bool {
        !is_loopback(host) && !self.exempts(host)
    }

    fn exempts(&self, host: &str) -> bool {
        let (name, port) = split_host_port(&host.to_ascii_lowercase());
        self.no_proxy.iter().any(|entry| {
            if entry == "*" {
                return true;
            }
            if let Some((net, bits)) = entry.split_once('/') {
                return in_cidr(&name, net, bits);
            }
            let (e_name, e_port) = split_host_port(entry);
            if e_port.is_some() && e_port != port {
                return false;
            }
            // `.example.com` and `*.example.com`: subdomains only.
            if let Some(suffix) = e_name.strip_prefix('.').or(e_name.strip_prefix("*.")) {
                return name.ends_with(&format!(".{suffix}"));
            }
            // `example.com`: the domain and its subdomains.
            name == e_name || name.ends_with(&format!(".{e_name}"))
        })
    }
}

/// `name[:port]` or `[v6][:port]` → (name, port).
fn split_host_port(host: &str) -> (String, Option<String>) {
    if let Some(rest) = host.strip_prefix('[') {
        let (name, after) = rest.split_once(']').unwrap_or((rest, ""));
        let port = after.strip_prefix(':').map(str::to_string);
        return (name.to_string(), port);
    }
    match host.rsplit_once(':') {
        // A bare IPv6 address has several colons and no port.
        Some((name, port)) if !name.contains(':') => (name.to_string(), Some(port.to_string())),
        _ => (host.to_string(), None),
    }
}

fn in_cidr(name: &str, net: &str, bits: &str) -> bool {
    let (Ok(ip), Ok(net), Ok(bits)) = (
        name.parse::<IpAddr>(),
        net.parse::<IpAddr>(),
        bits.parse::<u32>(),
    ) else {
        return false;
    };
    match (ip, net) {
        (IpAddr::V4(ip), IpAddr::V4(net)) if bits <= 32 => {
            let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) if bits <= 128 => {
            let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> Proxies {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Proxies::from_vars(|name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
    }

    #[test]
    fn https_proxy_wins_and_upper_case_wins() {
        let p = env(&[
            ("HTTP_PROXY", "http://h:1"),
            ("https_proxy", "http://lower:2"),
            ("HTTPS_PROXY", "http://upper:3"),
        ]);
        assert_eq!(p.for_host("ghcr.io"), Some("http://upper:3"));
        let p = env(&[("HTTP_PROXY", "http://h:1"), ("HTTPS_PROXY", "")]);
        assert_eq!(p.for_host("ghcr.io"), Some("http://h:1"));
        assert_eq!(env(&[]).for_host("ghcr.io"), None);
        let p = env(&[("HTTP_PROXY", "http://h:1"), ("HTTPS_PROXY", "http://s:2")]);
        let url = |u: &str| url::Url::parse(u).unwrap();
        assert_eq!(p.for_url(&url("http://example.com/f")), Some("http://h:1"));
        assert_eq!(p.for_url(&url("https://example.com/f")), Some("http://s:2"));
        assert_eq!(p.for_url(&url("ftp://example.com/f")), None);
    }

    #[test]
    fn loopback_is_never_proxied() {
        let p = env(&[("HTTPS_PROXY", "http://p:1")]);
        for h in ["localhost:5000", "127.0.0.1:5000", "[::1]:5000"] {
            assert_eq!(p.for_host(h), None, "{h}");
        }
    }

    #[test]
    fn no_proxy_entries_as_go_reads_them() {
        let p = env(&[
            ("HTTPS_PROXY", "http://p:1"),
            (
                "NO_PROXY",
                " corp.example , .internal,reg.io:5000,10.0.0.0/8,[fd00::1]:443,*.wild.dev",
            ),
        ]);
        let through = |h: &str| p.for_host(h).is_some();
        assert!(!through("corp.example"));
        assert!(!through("a.corp.example:443"));
        assert!(through("notcorp.example"));
        assert!(!through("x.internal"));
        assert!(through("internal"), "a leading dot means subdomains only");
        assert!(!through("reg.io:5000"));
        assert!(
            through("reg.io:5001"),
            "an entry with a port matches that port"
        );
        assert!(!through("10.1.2.3:5000"));
        assert!(through("11.1.2.3"));
        assert!(!through("[fd00::1]:443"));
        assert!(!through("a.wild.dev"));
        assert!(through("wild.dev"), "*. is a leading dot");
        assert!(through("ghcr.io"));
        assert_eq!(
            env(&[("HTTPS_PROXY", "http://p:1"), ("no_proxy", "*")]).for_host("ghcr.io"),
            None
        );
    }
}
