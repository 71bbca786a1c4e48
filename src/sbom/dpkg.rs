//! dpkg's database: `var/lib/dpkg/status` and distroless images'
//! `var/lib/dpkg/status.d/<package>` files (the same paragraphs, one
//! package or a few per file, `*.md5sums` beside them).

use super::purl::{distro_qualifier, purl};
use super::{field, paragraphs, Distro, Ecosystem, Package, Scan, MAX_DB_BYTES};
use crate::layer::MergedFs;

const STATUS: &str = "/var/lib/dpkg/status";
const STATUS_D: &str = "/var/lib/dpkg/status.d";

pub(super) fn scan(fs: &MergedFs, distro: Option<&Distro>, scan: &mut Scan) {
    if let Some(bytes) = scan.read_whole(fs, STATUS, MAX_DB_BYTES) {
        parse_db(&bytes, STATUS, distro, scan);
    }
    let dir = match fs.resolve(STATUS_D, true) {
        Ok(Some(n)) if n.meta.is_dir() => n.path,
        Ok(_) => return,
        Err(e) => return scan.warn(STATUS_D, super::error_chain(&e)),
    };
    let entries = match fs.children(&dir) {
        Ok(e) => e,
        Err(e) => return scan.warn(STATUS_D, super::error_chain(&e)),
    };
    for e in entries {
        if e.name.ends_with(".md5sums") || e.meta.is_dir() {
            continue;
        }
        let path = format!("{STATUS_D}/{}", e.name);
        if let Some(bytes) = scan.read_whole(fs, &path, MAX_DB_BYTES) {
            parse_db(&bytes, &path, distro, scan);
        }
    }
}

/// Adds the installed packages of one database file; a malformed or
/// incomplete paragraph is a warning.
pub(super) fn parse_db(bytes: &[u8], path: &str, distro: Option<&Distro>, scan: &mut Scan) {
    let text = String::from_utf8_lossy(bytes);
    for (i, p) in paragraphs(&text).into_iter().enumerate() {
        let p = match p {
            Ok(p) => p,
            Err(line) => {
                scan.warn(path, format!("malformed line {line}: entry skipped"));
                continue;
            }
        };
        // COMPAT(syft): status.d files of distroless images carry no
        // Status; their entries are installed. With a Status, only
        // `<want> ok installed` is (dpkg-query's `ii`, `hi`).
        if let Some(status) = field(&p, "Status") {
            let words: Vec<&str> = status.split_whitespace().collect();
            if words.len() != 3 || words[1] != "ok" || words[2] != "installed" {
                continue;
            }
        }
        let (Some(name), Some(version)) = (field(&p, "Package"), field(&p, "Version")) else {
            scan.warn(
                path,
                format!("entry {} has no Package or Version: skipped", i + 1),
            );
            continue;
        };
        if name.contains(char::is_whitespace) || version.contains(char::is_whitespace) {
            scan.warn(
                path,
                format!(
                    "entry {} has a malformed Package or Version: skipped",
                    i + 1
                ),
            );
            continue;
        }
        let arch = field(&p, "Architecture");
        let source = field(&p, "Source").map(source_field);
        scan.packages.push(Package {
            ecosystem: Ecosystem::Deb,
            name: name.to_string(),
            version: version.to_string(),
            arch: arch.map(str::to_string),
            source: source.clone(),
            supplier: field(&p, "Maintainer").map(str::to_string),
            license: None,
            purl: deb_purl(name, version, arch, source.as_deref(), distro),
            found_at: path.to_string(),
        });
    }
}

/// `Source: gcc-12 (12.2.0-14)` → `gcc-12@12.2.0-14`, `Source: glibc` → `glibc`.
fn source_field(v: &str) -> String {
    match v.split_once('(') {
        Some((name, rest)) => {
            let ver = rest.split(')').next().unwrap_or("").trim();
            if ver.is_empty() {
                name.trim().to_string()
            } else {
                format!("{}@{ver}", name.trim())
            }
        }
        None => v.trim().to_string(),
    }
}

/// COMPAT(syft): the namespace is the os-release `ID` when the distro is
/// Debian or like it; otherwise (or with no os-release) `debian`, without
/// a `distro` qualifier.
fn deb_purl(
    name: &str,
    version: &str,
    arch: Option<&str>,
    source: Option<&str>,
    distro: Option<&Distro>,
) -> String {
    let distro = distro.filter(|d| d.id == "debian" || d.id_like.iter().any(|l| l == "debian"));
    let ns = distro.map_or("debian", |d| d.id.as_str());
    let dq = distro_qualifier(distro);
    purl(
        "deb",
        Some(ns),
        name,
        version,
        &[
            ("arch", arch),
            ("upstream", source),
            ("distro", dq.as_deref()),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn debian() -> Distro {
        Distro {
            id: "debian".into(),
            version_id: Some("12".into()),
            id_like: vec![],
        }
    }

    #[test]
    fn only_installed_entries_count() {
        let db = "Package: a\nStatus: install ok installed\nVersion: 1.0-1\nArchitecture: amd64\nSource: srca (1.0)\nMaintainer: A Team <a@example.org>\n\n\
                  Package: b\nStatus: deinstall ok config-files\nVersion: 2\n\n\
                  Package: c\nStatus: hold ok installed\nVersion: 3+b1\nArchitecture: all\n\n\
                  Package: d\nStatus: install reinstreq half-installed\nVersion: 4\n";
        let mut scan = Scan::default();
        parse_db(db.as_bytes(), STATUS, Some(&debian()), &mut scan);
        let got: Vec<(&str, &str)> = scan
            .packages
            .iter()
            .map(|p| (p.name.as_str(), p.purl.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (
                    "a",
                    "pkg:deb/debian/a@1.0-1?arch=amd64&upstream=srca%401.0&distro=debian-12"
                ),
                ("c", "pkg:deb/debian/c@3%2Bb1?arch=all&distro=debian-12"),
            ]
        );
        assert_eq!(
            scan.packages[0].supplier.as_deref(),
            Some("A Team <a@example.org>")
        );
        assert!(scan.warnings.is_empty());
    }

    #[test]
    fn bad_entries_are_warnings_and_the_rest_is_kept() {
        let db = "Package: ok\nVersion: 1\n\nnot a field\nPackage: lost\n\nPackage: nover\n\nPackage: sp ace\nVersion: 1\n";
        let mut scan = Scan::default();
        parse_db(db.as_bytes(), "/var/lib/dpkg/status.d/x", None, &mut scan);
        assert_eq!(scan.packages.len(), 1);
        assert_eq!(scan.packages[0].purl, "pkg:deb/debian/ok@1");
        assert_eq!(scan.warnings.len(), 3, "{:?}", scan.warnings);
    }

    #[test]
    fn ubuntu_is_its_own_namespace() {
        let u = Distro {
            id: "ubuntu".into(),
            version_id: Some("24.04".into()),
            id_like: vec!["debian".into()],
        };
        assert_eq!(
            deb_purl("bash", "5.2", Some("amd64"), None, Some(&u)),
            "pkg:deb/ubuntu/bash@5.2?arch=amd64&distro=ubuntu-24.04"
        );
        assert_eq!(source_field("gcc-12 (12.2.0-14)"), "gcc-12@12.2.0-14");
        assert_eq!(source_field("x ("), "x");
    }
}
