//! apk's database, `lib/apk/db/installed`: one paragraph per package,
//! blank-line separated, each line `<letter>:<value>` (apk-tools'
//! "installed database" format; `P` name, `V` version, `A` arch, `L`
//! license, `o` origin, `m` maintainer; file lines `F`/`R`/`Z`… ignored).

use super::purl::{distro_qualifier, purl};
use super::{Distro, Ecosystem, Package, Scan, MAX_DB_BYTES};
use crate::layer::MergedFs;

const INSTALLED: &str = "/lib/apk/db/installed";

pub(super) fn scan(fs: &MergedFs, distro: Option<&Distro>, scan: &mut Scan) {
    if let Some(bytes) = scan.read_whole(fs, INSTALLED, MAX_DB_BYTES) {
        parse_db(&String::from_utf8_lossy(&bytes), distro, scan);
    }
}

#[derive(Default)]
struct Entry<'a> {
    name: Option<&'a str>,
    version: Option<&'a str>,
    arch: Option<&'a str>,
    license: Option<&'a str>,
    origin: Option<&'a str>,
    maintainer: Option<&'a str>,
    bad_line: Option<usize>,
    first_line: usize,
}

pub(super) fn parse_db(text: &str, distro: Option<&Distro>, scan: &mut Scan) {
    let mut cur = Entry::default();
    let mut started = false;
    for (i, line) in text.lines().chain(std::iter::once("")).enumerate() {
        if line.trim().is_empty() {
            if started {
                finish(std::mem::take(&mut cur), distro, scan);
            }
            started = false;
            continue;
        }
        if !started {
            cur.first_line = i + 1;
            started = true;
        }
        let b = line.as_bytes();
        if b.len() < 2 || b[1] != b':' || !b[0].is_ascii_alphabetic() {
            cur.bad_line.get_or_insert(i + 1);
            continue;
        }
        match b[0] {
            b'P' => cur.name = value(line),
            b'V' => cur.version = value(line),
            b'A' => cur.arch = value(line),
            b'L' => cur.license = value(line),
            b'o' => cur.origin = value(line),
            b'm' => cur.maintainer = value(line),
            _ => {}
        }
    }
}

/// The value of a `<letter>:<value>` line (checked to have that shape).
fn value(line: &str) -> Option<&str> {
    Some(line[2..].trim()).filter(|v| !v.is_empty())
}

fn finish(e: Entry<'_>, distro: Option<&Distro>, scan: &mut Scan) {
    if let Some(line) = e.bad_line {
        return scan.warn(INSTALLED, format!("malformed line {line}: entry skipped"));
    }
    let (Some(name), Some(version)) = (e.name, e.version) else {
        return scan.warn(
            INSTALLED,
            format!("entry at line {} has no P: or V:: skipped", e.first_line),
        );
    };
    let dq = distro_qualifier(distro);
    // COMPAT(syft): the namespace is the distro's ID; apk is Alpine's (and
    // its derivatives'), so `alpine` when os-release says nothing.
    let ns = distro.map_or("alpine", |d| d.id.as_str());
    scan.packages.push(Package {
        ecosystem: Ecosystem::Apk,
        name: name.to_string(),
        version: version.to_string(),
        arch: e.arch.map(str::to_string),
        source: e.origin.map(str::to_string),
        supplier: e.maintainer.map(str::to_string),
        license: e.license.map(str::to_string),
        purl: purl(
            "apk",
            Some(ns),
            name,
            version,
            &[
                ("arch", e.arch),
                ("upstream", e.origin),
                ("distro", dq.as_deref()),
            ],
        ),
        found_at: INSTALLED.to_string(),
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    // Shaped as apk-tools writes it (see the apk-tools docs' "installed
    // database" and any alpine image's lib/apk/db/installed): C: checksum,
    // P/V/A/S/I/T/U/L/o/m/t/c/D/p, then the file list.
    const DB: &str = "C:Q1fRWh2cRFSqJJvXtx+AD0bd+iX2g=\nP:musl\nV:1.2.5-r0\nA:x86_64\nS:411323\nI:654336\n\
T:the musl c library (libc) implementation\nU:https://musl.libc.org/\nL:MIT\no:musl\n\
m:Natanael Copa <ncopa@alpinelinux.org>\nt:1712153617\nc:2e3a4f2d2d1c43c4cd9e5d0e8a6e4ee5b3f86fce\n\
p:so:libc.musl-x86_64.so.1=1\nF:lib\nR:ld-musl-x86_64.so.1\na:0:0:755\nZ:Q1abc=\n\n\
C:Q1xyz=\nP:libcrypto3\nV:3.3.2-r0\nA:x86_64\nL:Apache-2.0\no:openssl\nm:Ariadne Conill <ariadne@dereferenced.org>\n\n\
P:zlib\nV:1.3.1-r1\nA:x86_64\nL:Zlib\no:zlib\n";

    #[test]
    fn reads_the_installed_database() {
        let d = Distro {
            id: "alpine".into(),
            version_id: Some("3.20.3".into()),
            id_like: vec![],
        };
        let mut scan = Scan::default();
        parse_db(DB, Some(&d), &mut scan);
        let purls: Vec<&str> = scan.packages.iter().map(|p| p.purl.as_str()).collect();
        assert_eq!(
            purls,
            [
                "pkg:apk/alpine/musl@1.2.5-r0?arch=x86_64&upstream=musl&distro=alpine-3.20.3",
                "pkg:apk/alpine/libcrypto3@3.3.2-r0?arch=x86_64&upstream=openssl&distro=alpine-3.20.3",
                "pkg:apk/alpine/zlib@1.3.1-r1?arch=x86_64&upstream=zlib&distro=alpine-3.20.3",
            ]
        );
        assert_eq!(scan.packages[0].license.as_deref(), Some("MIT"));
        assert_eq!(
            scan.packages[1].supplier.as_deref(),
            Some("Ariadne Conill <ariadne@dereferenced.org>")
        );
        assert!(scan.warnings.is_empty());
    }

    #[test]
    fn bad_entries_are_warnings() {
        let mut scan = Scan::default();
        parse_db(
            "P:ok\nV:1\n\nP:noversion\n\ngarbage\nP:x\nV:1\n\n\u{e9}:\n",
            None,
            &mut scan,
        );
        assert_eq!(scan.packages.len(), 1);
        assert_eq!(scan.packages[0].purl, "pkg:apk/alpine/ok@1");
        assert_eq!(scan.warnings.len(), 3, "{:?}", scan.warnings);
    }
}
