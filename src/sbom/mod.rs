//! SBOMs for image root filesystems: finds the packages an image holds and
//! writes them as an SPDX 2.3 JSON document.
//!
//! The input is the image's filesystem, either its layer dirs lowest first
//! ([`scan_layers`]: kiln's snapshots, merged as overlayfs would: upper
//! wins, whiteouts delete, opaque dirs hide what is below) or one plain dir
//! ([`scan_dir`]), read through [`crate::layer::MergedFs`] with a layer
//! tar's `.wh.` forms read as whiteouts too. The output is a [`Scan`] (packages and warnings), turned
//! into a document by [`spdx_document`] / [`spdx_json`]. Nothing here knows
//! of builds, images or attestations: filesystem in, JSON out.
//!
//! For a built image, the snapshot dirs in `diff_ids` order are its layers:
//!
//! ```text
//! let layers: Vec<PathBuf> = config.rootfs.diff_ids.iter().map(|d| layout.snapshot(d)).collect();
//! let scan = sbom::scan_layers(&layers)?;           // scan.warnings: what was skipped
//! let doc = sbom::spdx_document(&scan, &DocumentParams {
//!     name: "docker.io/library/app:1",
//!     digest: "sha256:…",                           // the image's config or manifest digest
//!     created: source_date_epoch,                   // or the config's `created`, in seconds
//! });
//! ```
//!
//! What is found, and where (paths inside the image):
//!
//! | ecosystem | read from | purl |
//! |---|---|---|
//! | Debian, Ubuntu | `var/lib/dpkg/status` (entries whose status is `installed`), distroless `var/lib/dpkg/status.d/*` | `pkg:deb/<os id>/<name>@<version>?arch=…&upstream=<source>&distro=<id>-<version_id>` |
//! | Alpine | `lib/apk/db/installed` (`P:` `V:` `A:` `L:` `o:` `m:`) | `pkg:apk/alpine/<name>@<version>?arch=…&upstream=<origin>&distro=alpine-<version_id>` |
//! | Python | `*.dist-info/METADATA`, `*.egg-info/PKG-INFO` and `*.egg-info` files in any `site-packages` or `dist-packages` dir | `pkg:pypi/<normalized name>@<version>` |
//! | npm | `node_modules/<name>/package.json`, `node_modules/@scope/<name>/package.json`, nested too | `pkg:npm/<name>@<version>`, `pkg:npm/%40scope/<name>@<version>` |
//!
//! The distro comes from `etc/os-release` (or `usr/lib/os-release`). purls
//! are written as syft writes them (its qualifiers: sorted, then `distro`;
//! percent-encoding as its packageurl-go does, so `+` is `%2B`).
//!
//! Left out: RPM databases (`var/lib/rpm`: Berkeley DB, NDB or SQLite, none
//! readable without a heavy dependency or a parser of our own for a binary
//! format); Debian licenses (dpkg's status has none: syft reads
//! `/usr/share/doc/*/copyright`, which is free text); language packages
//! other than Python and npm (Go binaries, jars, gems, crates); file-level
//! SPDX data (`filesAnalyzed` is false).
//!
//! Invariants: bad input never panics and never aborts the scan: a
//! malformed entry is skipped with a [`Warning`]; files are read up to a
//! named limit ([`MAX_DB_BYTES`], [`MAX_METADATA_BYTES`]) and the walk visits
//! at most [`MAX_WALK_ENTRIES`] entries; symlinks resolve inside the image
//! root, never on the host, and the walk does not descend through them.
//! The same filesystem and the same [`DocumentParams`] give byte-identical
//! JSON: no clock, no random ids, everything sorted.

mod apk;
mod dpkg;
mod license;
mod npm;
mod osrelease;
mod purl;
pub(crate) use purl::escape_into;
mod python;
mod spdx;
mod walk;

use std::path::{Path, PathBuf};

pub use spdx::{spdx_document, spdx_json, DocumentParams};

use crate::layer::MergedFs;

/// The largest package database read whole (dpkg `status`, a `status.d`
/// file, apk `installed`); a larger one is skipped with a warning.
pub const MAX_DB_BYTES: u64 = 64 << 20;
/// How much of one package's metadata file (`METADATA`, `PKG-INFO`,
/// `package.json`, `os-release`) is read. Python headers come first, so a
/// longer file is read up to here; a longer `package.json` is skipped.
pub const MAX_METADATA_BYTES: u64 = 1 << 20;
/// How many filesystem entries the search for Python and npm packages
/// visits before it stops (with a warning).
pub const MAX_WALK_ENTRIES: usize = 2_000_000;
/// How deep the search for Python and npm packages descends.
pub const MAX_WALK_DEPTH: usize = 64;

/// Why a scan could not start. Everything after that is a [`Warning`].
#[derive(Debug, thiserror::Error)]
pub enum SbomError {
    /// A layer dir (or the root dir) cannot be read.
    #[error("opening the image filesystem at {path}")]
    Layer {
        /// The dir given.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A layer dir (or the root dir) is not a directory.
    #[error("{path} is not a directory")]
    NotADirectory {
        /// The path given.
        path: PathBuf,
    },
}

/// The package manager a package was found by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Ecosystem {
    /// dpkg (Debian, Ubuntu, distroless).
    Deb,
    /// apk (Alpine).
    Apk,
    /// Python distributions (wheels' dist-info, eggs' egg-info).
    Python,
    /// npm packages under `node_modules`.
    Npm,
}

impl Ecosystem {
    /// A short lowercase name (`deb`, `apk`, `python`, `npm`).
    pub fn as_str(self) -> &'static str {
        match self {
            Ecosystem::Deb => "deb",
            Ecosystem::Apk => "apk",
            Ecosystem::Python => "python",
            Ecosystem::Npm => "npm",
        }
    }

    /// What the metadata file is, for the document's `sourceInfo`.
    fn source_kind(self) -> &'static str {
        match self {
            Ecosystem::Deb => "DPKG DB",
            Ecosystem::Apk => "APK DB",
            Ecosystem::Python => "Python package metadata",
            Ecosystem::Npm => "npm package.json",
        }
    }
}

/// One package found in the image.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Package {
    /// Who found it.
    pub ecosystem: Ecosystem,
    /// Its name as its metadata spells it.
    pub name: String,
    /// Its version as its metadata spells it.
    pub version: String,
    /// Its architecture, for OS packages.
    pub arch: Option<String>,
    /// The source package (dpkg `Source:`, apk origin), when it has one.
    pub source: Option<String>,
    /// Who supplies it, as found (`Name <email>`): dpkg `Maintainer:`, apk `m:`.
    pub supplier: Option<String>,
    /// The declared license as found, valid SPDX expression or not.
    pub license: Option<String>,
    /// Its package URL.
    pub purl: String,
    /// The image path of the metadata it was read from.
    pub found_at: String,
}

impl Package {
    /// What makes a package itself: two with the same identity are one.
    fn identity(&self) -> (Ecosystem, &str, &str, Option<&str>, &str) {
        (
            self.ecosystem,
            &self.name,
            &self.version,
            self.arch.as_deref(),
            &self.found_at,
        )
    }
}

/// Something the scan skipped, and why.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Warning {
    /// The image path it concerns.
    pub path: String,
    /// What was wrong.
    pub message: String,
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// The distro an image says it is (`os-release`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Distro {
    /// `ID` (`debian`, `ubuntu`, `alpine`).
    pub id: String,
    /// `VERSION_ID` (`12`, `3.20.3`), when given.
    pub version_id: Option<String>,
    /// `ID_LIKE`, split.
    pub id_like: Vec<String>,
}

/// What a scan found: packages sorted (and without duplicates), warnings
/// sorted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scan {
    /// The distro, when `os-release` names one.
    pub distro: Option<Distro>,
    /// The packages.
    pub packages: Vec<Package>,
    /// What was skipped.
    pub warnings: Vec<Warning>,
}

impl Scan {
    fn warn(&mut self, path: &str, message: impl Into<String>) {
        self.warnings.push(Warning {
            path: path.to_string(),
            message: message.into(),
        });
    }

    /// Reads image file `path` whole (up to `limit`), turning every failure
    /// into a warning; `None` when it is absent or unreadable.
    fn read_whole(&mut self, fs: &MergedFs, path: &str, limit: u64) -> Option<Vec<u8>> {
        match fs.read_whole(path, limit) {
            Ok(b) => b,
            Err(e) => {
                self.warn(path, error_chain(&e));
                None
            }
        }
    }

    /// Reads the first `limit` bytes of image file `path`.
    fn read_prefix(&mut self, fs: &MergedFs, path: &str, limit: u64) -> Option<Vec<u8>> {
        match fs.read_prefix(path, limit) {
            Ok(b) => b.map(|(b, _)| b),
            Err(e) => {
                self.warn(path, error_chain(&e));
                None
            }
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// Scans an image given as its layer dirs, lowest first (kiln's snapshot
/// dirs `snapshots/<diff_id>/`, in the order of the image's `diff_ids`).
/// An empty list is `scratch`: nothing found.
pub fn scan_layers(layers_lowest_first: &[PathBuf]) -> Result<Scan, SbomError> {
    for l in layers_lowest_first {
        let meta = std::fs::metadata(l).map_err(|source| SbomError::Layer {
            path: l.clone(),
            source,
        })?;
        if !meta.is_dir() {
            return Err(SbomError::NotADirectory { path: l.clone() });
        }
    }
    let top_first = layers_lowest_first.iter().rev().cloned().collect();
    // A plain dir may be an extracted layer tar: read its `.wh.` forms too.
    let fs = MergedFs::new(top_first).with_tar_whiteouts();
    let mut scan = Scan::default();
    scan.distro = osrelease::read(&fs, &mut scan);
    let distro = scan.distro.clone();
    dpkg::scan(&fs, distro.as_ref(), &mut scan);
    apk::scan(&fs, distro.as_ref(), &mut scan);
    walk::scan(&fs, &mut scan);
    scan.packages.sort();
    dedup(&mut scan);
    scan.warnings.sort();
    scan.warnings.dedup();
    Ok(scan)
}

/// Keeps the first (in sorted order) of packages that share an identity:
/// the document derives SPDXIDs from it, and a database that lists one
/// package twice (with different details) must not make two alike.
fn dedup(scan: &mut Scan) {
    let keep: Vec<bool> = {
        let mut seen = std::collections::BTreeSet::new();
        scan.packages
            .iter()
            .map(|p| seen.insert(p.identity()))
            .collect()
    };
    let mut warnings = Vec::new();
    for (p, _) in scan.packages.iter().zip(&keep).filter(|(_, k)| !**k) {
        warnings.push(Warning {
            path: p.found_at.clone(),
            message: format!("{} {} listed twice: kept once", p.name, p.version),
        });
    }
    scan.warnings.extend(warnings);
    let mut keep = keep.into_iter();
    scan.packages.retain(|_| keep.next().unwrap_or(true));
}

/// Scans one plain root dir (an unpacked image, a container's rootfs).
pub fn scan_dir(root: &Path) -> Result<Scan, SbomError> {
    scan_layers(&[root.to_path_buf()])
}

/// Splits RFC 822-style text (dpkg status, `METADATA`) into paragraphs of
/// `(field, value)`; continuation lines (leading space or tab) are joined
/// to the field before them with `\n`. A line that is neither makes its
/// paragraph malformed: `Err(line number)`, and the next paragraph starts
/// fresh.
type Paragraph = Result<Vec<(String, String)>, usize>;

fn paragraphs(text: &str) -> Vec<Paragraph> {
    let mut out = Vec::new();
    let mut cur: Vec<(String, String)> = Vec::new();
    let mut bad: Option<usize> = None;
    let mut flush = |cur: &mut Vec<(String, String)>, bad: &mut Option<usize>| {
        if let Some(l) = bad.take() {
            out.push(Err(l));
        } else if !cur.is_empty() {
            out.push(Ok(std::mem::take(cur)));
        }
        cur.clear();
    };
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            flush(&mut cur, &mut bad);
            continue;
        }
        if bad.is_some() {
            continue;
        }
        if line.starts_with([' ', '\t']) {
            match cur.last_mut() {
                Some((_, v)) => {
                    v.push('\n');
                    v.push_str(line.trim());
                }
                None => bad = Some(i + 1),
            }
            continue;
        }
        match line.split_once(':') {
            Some((k, v)) if !k.is_empty() && !k.contains(char::is_whitespace) => {
                cur.push((k.to_string(), v.trim().to_string()));
            }
            _ => bad = Some(i + 1),
        }
    }
    flush(&mut cur, &mut bad);
    out
}

/// The first value of `field` (case-insensitive, as RFC 822 fields are).
fn field<'a>(p: &'a [(String, String)], name: &str) -> Option<&'a str> {
    p.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_package_listed_twice_is_kept_once() {
        let mut scan = Scan::default();
        let db = "Package: a\nVersion: 1\nMaintainer: X <x@x>\n\nPackage: a\nVersion: 1\nMaintainer: Y <y@y>\n\nPackage: a\nVersion: 2\n";
        dpkg::parse_db(db.as_bytes(), "/s", None, &mut scan);
        scan.packages.sort();
        dedup(&mut scan);
        let got: Vec<(&str, Option<&str>)> = scan
            .packages
            .iter()
            .map(|p| (p.version.as_str(), p.supplier.as_deref()))
            .collect();
        assert_eq!(got, [("1", Some("X <x@x>")), ("2", None)]);
        assert_eq!(scan.warnings.len(), 1);
    }

    #[test]
    fn paragraphs_join_continuations_and_flag_bad_lines() {
        let p = paragraphs("A: 1\nB: x\n y\n\n\nbad line\nC: 2\n\nD: 3\n");
        assert_eq!(
            p,
            vec![
                Ok(vec![("A".into(), "1".into()), ("B".into(), "x\ny".into())]),
                Err(6),
                Ok(vec![("D".into(), "3".into())]),
            ]
        );
        assert_eq!(paragraphs(" leading continuation\n"), vec![Err(1)]);
        assert!(paragraphs("").is_empty());
    }

    /// Mangled copies of each format (truncated, bytes overwritten,
    /// garbage spliced in) through every parser: warnings, never a panic,
    /// and every package found still has a name, a version and a purl.
    #[test]
    fn mangled_input_never_panics() {
        let dpkg_db = std::fs::read("/var/lib/dpkg/status")
            .map(|b| b[..b.len().min(16 << 10)].to_vec())
            .unwrap_or_else(|_| {
                b"Package: a\nStatus: install ok installed\nVersion: 1\nSource: s (2)\n".to_vec()
            });
        let samples: [&[u8]; 5] = [
            &dpkg_db,
            b"C:Q1=\nP:musl\nV:1.2.5-r0\nA:x86_64\nL:MIT\no:musl\nm:N C <n@a.org>\nF:lib\nR:x\n\nP:z\nV:1\n",
            b"Metadata-Version: 2.1\nName: a_b\nVersion: 1.0\nLicense: MIT\n\nbody\n",
            br#"{"name":"@s/x","version":"1.0.0","license":{"type":"MIT"},"licenses":[{"type":"ISC"}]}"#,
            b"ID=debian\nVERSION_ID=\"12\"\nID_LIKE='x y'\n",
        ];
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let junk: &[u8] = b"\n\n:\n \t\x00\xff\xc3(\"{[Package: \nV:\nP:\n";
        let mut warned = 0;
        for round in 0..3000 {
            let src = samples[round % samples.len()];
            let mut b = src.to_vec();
            for _ in 0..1 + next() % 4 {
                let i = (next() as usize) % (b.len() + 1);
                match next() % 3 {
                    0 => b.truncate(i),
                    1 if i < b.len() => b[i] = next() as u8,
                    _ => {
                        let n = (next() as usize) % junk.len();
                        b.splice(i..i, junk[..n].iter().copied());
                    }
                };
            }
            let text = String::from_utf8_lossy(&b);
            let mut scan = Scan::default();
            let distro = osrelease::parse(&text);
            dpkg::parse_db(&b, "/s", distro.as_ref(), &mut scan);
            apk::parse_db(&text, distro.as_ref(), &mut scan);
            python::parse(&text, "/m", &mut scan);
            npm::parse(&b, "/p", &mut scan);
            for p in &scan.packages {
                assert!(!p.name.is_empty() && !p.version.is_empty() && p.purl.starts_with("pkg:"));
                if let Some(l) = &p.license {
                    let _ = license::expression(l);
                }
            }
            let _ = license::expression(&text);
            warned += usize::from(!scan.warnings.is_empty());
        }
        assert!(warned > 1000, "only {warned} of 3000 mangled inputs warned");
    }
}
