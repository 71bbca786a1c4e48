//! `os-release`: which distro an image is, for the `distro` qualifier and
//! the namespace of OS package purls.

use super::{Distro, Scan, MAX_METADATA_BYTES};
use crate::layer::MergedFs;

/// Where os-release(5) says to look, in order.
const PATHS: [&str; 2] = ["/etc/os-release", "/usr/lib/os-release"];

/// The image's distro, `None` when no os-release names an `ID`.
pub(super) fn read(fs: &MergedFs, scan: &mut Scan) -> Option<Distro> {
    for path in PATHS {
        if let Some(bytes) = scan.read_prefix(fs, path, MAX_METADATA_BYTES) {
            return parse(&String::from_utf8_lossy(&bytes));
        }
    }
    None
}

/// `KEY=value` lines, values optionally quoted (shell-style, the common
/// cases: `"…"` with `\"`/`\\` escapes, or `'…'`).
pub(super) fn parse(text: &str) -> Option<Distro> {
    let mut d = Distro::default();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let v = unquote(v.trim());
        match k.trim() {
            "ID" => d.id = v.to_ascii_lowercase(),
            "VERSION_ID" if !v.is_empty() => d.version_id = Some(v),
            "ID_LIKE" => d.id_like = v.split_whitespace().map(str::to_ascii_lowercase).collect(),
            _ => {}
        }
    }
    (!d.id.is_empty()).then_some(d)
}

fn unquote(v: &str) -> String {
    let bytes = v.as_bytes();
    match bytes.first() {
        Some(b'\'') => v[1..].split('\'').next().unwrap_or("").to_string(),
        Some(b'"') => {
            let mut out = String::new();
            let mut chars = v[1..].chars();
            while let Some(c) = chars.next() {
                match c {
                    '"' => break,
                    '\\' => out.extend(chars.next()),
                    c => out.push(c),
                }
            }
            out
        }
        _ => v.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_debian_and_alpine_forms() {
        let deb =
            parse("PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nVERSION_ID=\"12\"\nID=debian\n")
                .unwrap();
        assert_eq!(
            (deb.id.as_str(), deb.version_id.as_deref()),
            ("debian", Some("12"))
        );
        let alpine = parse("NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.20.3\n").unwrap();
        assert_eq!(alpine.version_id.as_deref(), Some("3.20.3"));
        let ubuntu = parse("ID=ubuntu\nID_LIKE=debian\nVERSION_ID='24.04'\n").unwrap();
        assert_eq!(
            (ubuntu.id_like, ubuntu.version_id.as_deref()),
            (vec!["debian".to_string()], Some("24.04"))
        );
        assert!(parse("garbage\n=\nID=\n").is_none());
        assert_eq!(parse("ID=\"unterminated").unwrap().id, "unterminated");
    }
}
