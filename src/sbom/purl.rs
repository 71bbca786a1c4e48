//! Package URLs (purl-spec), spelled as syft spells them.
//!
//! COMPAT(syft): components are percent-encoded as anchore's packageurl-go
//! does: RFC 3986 unreserved characters, `:` and the sub-delimiters other
//! than `+` stay; everything else (`@`, `+`, `/`, spaces, non-ASCII) is
//! `%XX`. Qualifiers come sorted by key, except `distro`, which syft
//! appends last.

use super::Distro;

/// `pkg:<ty>/<namespace>/<name>@<version>?<qualifiers>`; empty qualifier
/// values are left out, as the spec says.
pub(super) fn purl(
    ty: &str,
    namespace: Option<&str>,
    name: &str,
    version: &str,
    qualifiers: &[(&str, Option<&str>)],
) -> String {
    let mut s = format!("pkg:{ty}/");
    if let Some(ns) = namespace.filter(|n| !n.is_empty()) {
        for seg in ns.split('/').filter(|s| !s.is_empty()) {
            escape_into(&mut s, seg, is_path_safe);
            s.push('/');
        }
    }
    escape_into(&mut s, name, is_path_safe);
    if !version.is_empty() {
        s.push('@');
        escape_into(&mut s, version, is_path_safe);
    }
    let mut first = true;
    for (k, v) in qualifiers {
        let Some(v) = v.filter(|v| !v.is_empty()) else {
            continue;
        };
        s.push(if first { '?' } else { '&' });
        first = false;
        s.push_str(k);
        s.push('=');
        escape_into(&mut s, v, is_value_safe);
    }
    s
}

/// The `distro` qualifier: `<id>-<version_id>`, or just `<id>`.
pub(super) fn distro_qualifier(d: Option<&Distro>) -> Option<String> {
    let d = d?;
    Some(match &d.version_id {
        Some(v) => format!("{}-{v}", d.id),
        None => d.id.clone(),
    })
}

fn is_path_safe(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"-._~!$&'()*,;=:".contains(&c)
}

/// In a qualifier value `&` and `=` would end it.
fn is_value_safe(c: u8) -> bool {
    is_path_safe(c) && c != b'&' && c != b'='
}

/// Appends `s` to `out`, each byte `safe` refuses as `%XX` (upper case).
pub(crate) fn escape_into(out: &mut String, s: &str, safe: fn(u8) -> bool) {
    for &b in s.as_bytes() {
        if safe(b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spelled_as_syft_spells_them() {
        assert_eq!(
            purl(
                "deb",
                Some("debian"),
                "libc6",
                "2.36-9+deb12u7",
                &[
                    ("arch", Some("amd64")),
                    ("upstream", Some("glibc")),
                    ("distro", Some("debian-12"))
                ]
            ),
            "pkg:deb/debian/libc6@2.36-9%2Bdeb12u7?arch=amd64&upstream=glibc&distro=debian-12"
        );
        assert_eq!(
            purl(
                "deb",
                Some("debian"),
                "zlib1g",
                "1:1.2.13.dfsg-1",
                &[("upstream", Some("gcc-12@12.2.0-14"))]
            ),
            "pkg:deb/debian/zlib1g@1:1.2.13.dfsg-1?upstream=gcc-12%4012.2.0-14"
        );
        assert_eq!(
            purl("npm", Some("@babel"), "core", "7.0.0", &[]),
            "pkg:npm/%40babel/core@7.0.0"
        );
        assert_eq!(
            purl(
                "pypi",
                None,
                "a b/c",
                "1.0",
                &[("x", None), ("y", Some(""))]
            ),
            "pkg:pypi/a%20b%2Fc@1.0"
        );
        assert_eq!(purl("npm", None, "é", "", &[]), "pkg:npm/%C3%A9");
    }
}
