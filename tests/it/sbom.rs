//! SBOMs of real package data: this host's dpkg database against
//! dpkg-query, its Python distributions against importlib.metadata, its
//! npm packages against node; layered images with whiteouts; documents
//! checked by the SPDX project's own validator (pyspdxtools, from PyPI's
//! spdx-tools, which scripts/test installs).

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;

use kiln::sbom::{
    scan_dir, scan_layers, spdx_document, spdx_json, DocumentParams, Ecosystem, Scan,
};
use nix::sys::stat::{mknod, Mode, SFlag};

use crate::common::{dpkg_query, run};

const PARAMS: DocumentParams<'static> = DocumentParams {
    name: "docker.io/library/fixture:latest",
    digest: "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    created: 1_700_000_000,
};

fn set(scan: &Scan, eco: Ecosystem) -> BTreeSet<(String, String)> {
    scan.packages
        .iter()
        .filter(|p| p.ecosystem == eco)
        .map(|p| (p.name.clone(), p.version.clone()))
        .collect()
}

fn copy_dir(from: &Path, to: &Path) {
    for e in walkdir::WalkDir::new(from) {
        let e = e.unwrap();
        let dest = to.join(e.path().strip_prefix(from).unwrap());
        let ft = e.file_type();
        if ft.is_dir() {
            fs::create_dir_all(&dest).unwrap();
        } else if ft.is_symlink() {
            symlink(fs::read_link(e.path()).unwrap(), &dest).unwrap();
        } else {
            fs::copy(e.path(), &dest).unwrap();
        }
    }
}

/// A root holding this host's dpkg status (plus a removed and a
/// half-installed entry, which must not count) and its os-release.
fn debian_root(root: &Path) {
    fs::create_dir_all(root.join("var/lib/dpkg")).unwrap();
    fs::create_dir_all(root.join("etc")).unwrap();
    let mut status = fs::read_to_string("/var/lib/dpkg/status").expect("this host's dpkg status");
    status.push_str(
        "\nPackage: kiln-removed\nStatus: deinstall ok config-files\nPriority: optional\nArchitecture: amd64\nVersion: 1.0-1\nConffiles:\n /etc/kiln-removed.conf 0123456789abcdef0123456789abcdef\n\n\
         Package: kiln-half\nStatus: install reinstreq half-installed\nArchitecture: amd64\nVersion: 2.0-1\n",
    );
    fs::write(root.join("var/lib/dpkg/status"), status).unwrap();
    fs::copy("/etc/os-release", root.join("etc/os-release")).unwrap();
}

#[test]
fn debian_status_matches_dpkg_query() {
    let t = tempfile::tempdir().unwrap();
    debian_root(t.path());
    let scan = scan_dir(t.path()).unwrap();
    let want = dpkg_query(&t.path().join("var/lib/dpkg"));
    assert!(
        want.len() > 50,
        "the host's dpkg database is too small to test with"
    );
    assert_eq!(set(&scan, Ecosystem::Deb), want);
    assert!(scan.warnings.is_empty(), "{:?}", scan.warnings);
    // The purl of dpkg itself, with this host's os-release.
    let distro = scan.distro.as_ref().unwrap();
    let dpkg = scan.packages.iter().find(|p| p.name == "dpkg").unwrap();
    let arch = run(Command::new("dpkg").arg("--print-architecture"));
    assert_eq!(
        dpkg.purl,
        format!(
            "pkg:deb/{}/dpkg@{}?arch={}&distro={}-{}",
            distro.id,
            dpkg.version.replace('+', "%2B"),
            arch.trim(),
            distro.id,
            distro.version_id.as_deref().unwrap()
        )
    );
    assert_eq!(dpkg.found_at, "/var/lib/dpkg/status");
}

#[test]
fn distroless_status_d_is_read_file_by_file() {
    let t = tempfile::tempdir().unwrap();
    let full = t.path().join("full");
    debian_root(&full);
    let want = dpkg_query(&full.join("var/lib/dpkg"));
    // Distroless writes one file per package, without Status, with its
    // md5sums beside it.
    let root = t.path().join("distroless");
    let dir = root.join("var/lib/dpkg/status.d");
    fs::create_dir_all(&dir).unwrap();
    let status = fs::read_to_string(full.join("var/lib/dpkg/status")).unwrap();
    let mut expected = BTreeSet::new();
    for para in status
        .split("\n\n")
        .filter(|p| p.contains("Status: install ok installed"))
        .take(25)
    {
        let name = para
            .lines()
            .find_map(|l| l.strip_prefix("Package: "))
            .unwrap();
        let version = para
            .lines()
            .find_map(|l| l.strip_prefix("Version: "))
            .unwrap();
        assert!(want.contains(&(name.to_string(), version.to_string())));
        expected.insert((name.to_string(), version.to_string()));
        let body: String = para
            .lines()
            .filter(|l| !l.starts_with("Status:"))
            .map(|l| format!("{l}\n"))
            .collect();
        fs::write(dir.join(name), body).unwrap();
        fs::write(
            dir.join(format!("{name}.md5sums")),
            "d41d8cd98f00b204e9800998ecf8427e  usr/share/doc/x\n",
        )
        .unwrap();
    }
    let scan = scan_dir(&root).unwrap();
    assert_eq!(set(&scan, Ecosystem::Deb), expected);
    assert!(scan.warnings.is_empty(), "{:?}", scan.warnings);
    assert!(scan
        .packages
        .iter()
        .all(|p| p.found_at == format!("/var/lib/dpkg/status.d/{}", p.name)));
    // Without os-release the namespace is debian and there is no distro.
    assert!(scan
        .packages
        .iter()
        .all(|p| p.purl.starts_with("pkg:deb/debian/") && !p.purl.contains("distro=")));
}

/// The first of this host's site-packages dirs with a few wheels in it
/// (pyenv's has many; Debian's python3 lists /usr/local's first, which may
/// hold only what scripts/test installed).
fn host_site_packages() -> PathBuf {
    let out = run(Command::new("python3").args([
        "-c",
        "import site; print('\\n'.join(site.getsitepackages()))",
    ]));
    out.lines()
        .map(PathBuf::from)
        .find(|d| d.is_dir() && distributions(d, ".dist-info", 6).len() == 6)
        .unwrap_or_else(|| panic!("no site-packages dir with 6 wheels among {out:?}"))
}

/// Up to `n` distributions of `dir` with the given suffix, sorted by name.
fn distributions(dir: &Path, suffix: &str, n: usize) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    v.sort();
    v.truncate(n);
    v
}

/// What importlib.metadata reads from a dist-info or egg-info path.
fn importlib(path: &Path) -> (String, String) {
    let out = run(Command::new("python3")
        .arg("-c")
        .arg(
            "import importlib.metadata as m, pathlib, sys\n\
         d = m.PathDistribution(pathlib.Path(sys.argv[1]))\n\
         print(d.metadata['Name']); print(d.version)",
        )
        .arg(path));
    let mut l = out.lines();
    (l.next().unwrap().to_string(), l.next().unwrap().to_string())
}

/// A root with real dist-info dirs (and egg-info, when the host has any)
/// in a site-packages and a dist-packages dir; returns what importlib says.
fn python_root(root: &Path) -> BTreeSet<(String, String)> {
    let mut want = BTreeSet::new();
    let site = root.join("usr/local/lib/python3.11/site-packages");
    for d in distributions(&host_site_packages(), ".dist-info", 6) {
        let dest = site.join(d.file_name().unwrap());
        copy_dir(&d, &dest);
        want.insert(importlib(&dest));
    }
    let debian = Path::new("/usr/lib/python3/dist-packages");
    if debian.is_dir() {
        let dist = root.join("usr/lib/python3/dist-packages");
        fs::create_dir_all(&dist).unwrap();
        for d in distributions(debian, ".egg-info", 3) {
            let dest = dist.join(d.file_name().unwrap());
            if d.is_dir() {
                copy_dir(&d, &dest);
            } else {
                fs::copy(&d, &dest).unwrap();
            }
            want.insert(importlib(&dest));
        }
    }
    assert!(
        want.len() >= 6,
        "too few Python distributions on this host: {want:?}"
    );
    want
}

#[test]
fn python_distributions_match_importlib_metadata() {
    let t = tempfile::tempdir().unwrap();
    let want = python_root(t.path());
    let scan = scan_dir(t.path()).unwrap();
    assert_eq!(set(&scan, Ecosystem::Python), want);
    assert!(scan.warnings.is_empty(), "{:?}", scan.warnings);
    for p in scan.packages.iter() {
        let normalized = p.name.to_lowercase().replace(['_', '.'], "-");
        assert_eq!(p.purl, format!("pkg:pypi/{normalized}@{}", p.version));
    }
}

#[test]
fn npm_packages_match_what_node_reads() {
    let modules = Path::new("/usr/lib/node_modules/npm/node_modules");
    if Command::new("node").arg("--version").output().is_err() || !modules.is_dir() {
        eprintln!("SKIPPED: node or /usr/lib/node_modules/npm is absent on this host");
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let dest_modules = t.path().join("usr/lib/node_modules/npm/node_modules");
    let mut files: Vec<PathBuf> = vec![Path::new("/usr/lib/node_modules/npm/package.json").into()];
    let mut names: Vec<PathBuf> = fs::read_dir(modules)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    for d in names
        .iter()
        .filter(|d| {
            !d.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(['@', '.'])
        })
        .take(8)
    {
        files.push(d.join("package.json"));
    }
    for scope in names
        .iter()
        .filter(|d| d.file_name().unwrap().to_string_lossy().starts_with('@'))
        .take(2)
    {
        let mut inner: Vec<PathBuf> = fs::read_dir(scope)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        inner.sort();
        files.extend(inner.iter().take(2).map(|d| d.join("package.json")));
    }
    // A nested node_modules, as npm writes when versions conflict.
    let nested = walkdir::WalkDir::new(modules)
        .min_depth(3)
        .max_depth(3)
        .sort_by_file_name()
        .into_iter()
        .filter_map(Result::ok)
        .find(|e| {
            e.file_name() == "package.json"
                && e.path()
                    .parent()
                    .unwrap()
                    .parent()
                    .unwrap()
                    .ends_with("node_modules")
        })
        .map(|e| e.into_path());
    files.extend(nested);
    let mut want = BTreeSet::new();
    for f in &files {
        let dest = t.path().join(f.strip_prefix("/").unwrap());
        fs::create_dir_all(dest.parent().unwrap()).unwrap();
        fs::copy(f, &dest).unwrap();
        let out = run(Command::new("node")
            .args([
                "-p",
                "const p = require(process.argv[1]); p.name + '\\t' + p.version",
            ])
            .arg(&dest));
        let (n, v) = out.trim().split_once('\t').unwrap();
        want.insert((n.to_string(), v.to_string()));
    }
    // npm itself sits in /usr/lib/node_modules/npm, whose parent is a node_modules dir.
    let scan = scan_dir(t.path()).unwrap();
    assert_eq!(set(&scan, Ecosystem::Npm), want);
    assert!(scan.warnings.is_empty(), "{:?}", scan.warnings);
    assert!(dest_modules.is_dir());
    for p in scan.packages.iter().filter(|p| p.name.starts_with('@')) {
        let (scope, base) = p.name.split_once('/').unwrap();
        assert_eq!(
            p.purl,
            format!(
                "pkg:npm/%40{}/{base}@{}",
                &scope[1..],
                p.version.replace('+', "%2B")
            )
        );
    }
}

const APK_INSTALLED: &str = include_str!("sbom/apk-installed");

/// A hand-written Alpine root: there is no Alpine here, so `installed` is
/// written in apk-tools' documented format (tests/it/sbom/apk-installed).
fn alpine_root(root: &Path) {
    fs::create_dir_all(root.join("lib/apk/db")).unwrap();
    fs::create_dir_all(root.join("etc")).unwrap();
    fs::write(root.join("lib/apk/db/installed"), APK_INSTALLED).unwrap();
    fs::write(
        root.join("etc/os-release"),
        "NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.20.3\nPRETTY_NAME=\"Alpine Linux v3.20\"\n",
    )
    .unwrap();
}

#[test]
fn alpine_installed_database() {
    let t = tempfile::tempdir().unwrap();
    alpine_root(t.path());
    let scan = scan_dir(t.path()).unwrap();
    assert!(scan.warnings.is_empty(), "{:?}", scan.warnings);
    let purls: Vec<&str> = scan.packages.iter().map(|p| p.purl.as_str()).collect();
    assert!(
        purls.contains(
            &"pkg:apk/alpine/busybox@1.36.1-r29?arch=x86_64&upstream=busybox&distro=alpine-3.20.3"
        ),
        "{purls:?}"
    );
    assert!(purls.contains(
        &"pkg:apk/alpine/libcrypto3@3.3.2-r0?arch=x86_64&upstream=openssl&distro=alpine-3.20.3"
    ));
    assert_eq!(
        scan.packages.len(),
        APK_INSTALLED
            .lines()
            .filter(|l| l.starts_with("P:"))
            .count()
    );
    let doc = spdx_document(&scan, &PARAMS);
    let licenses: BTreeSet<&str> = doc["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["licenseDeclared"].as_str().unwrap())
        .collect();
    // apk's "MIT BSD-2-Clause GPL-2.0-or-later" style lists become AND.
    assert!(licenses.contains("GPL-2.0-only"), "{licenses:?}");
    assert!(
        licenses.contains("MIT AND BSD-2-Clause AND GPL-2.0-or-later"),
        "{licenses:?}"
    );
}

fn whiteout(p: &Path) {
    mknod(p, SFlag::S_IFCHR, Mode::from_bits_truncate(0), 0).expect("mknod needs root");
}

fn dist_info(site: &Path, name: &str, version: &str) {
    let d = site.join(format!("{name}-{version}.dist-info"));
    fs::create_dir_all(&d).unwrap();
    fs::write(
        d.join("METADATA"),
        format!(
            "Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nLicense: MIT\n\n{name}\n"
        ),
    )
    .unwrap();
}

#[test]
fn layers_merge_upper_wins_whiteouts_delete_opaque_dirs_hide() {
    let t = tempfile::tempdir().unwrap();
    let (l0, l1, l2) = (
        t.path().join("l0"),
        t.path().join("l1"),
        t.path().join("l2"),
    );
    let site = "usr/lib/python3.12/site-packages";
    dist_info(&l0.join(site), "keep", "1.0");
    dist_info(&l0.join(site), "removed", "1.0");
    dist_info(&l0.join(site), "upgraded", "1.0");
    let nm = "app/node_modules";
    for (n, v) in [("left", "1.0.0"), ("hidden", "1.0.0")] {
        fs::create_dir_all(l0.join(nm).join(n)).unwrap();
        fs::write(
            l0.join(nm).join(n).join("package.json"),
            format!(r#"{{"name":"{n}","version":"{v}"}}"#),
        )
        .unwrap();
    }
    // Layer 1: `pip uninstall removed`, `pip install upgraded==2.0`. (A
    // whiteout device hides a path twice over, as a whiteout and as a
    // non-directory above it; the opaque dir below has no such backup.)
    fs::create_dir_all(l1.join(site)).unwrap();
    whiteout(&l1.join(site).join("removed-1.0.dist-info"));
    whiteout(&l1.join(site).join("upgraded-1.0.dist-info"));
    dist_info(&l1.join(site), "upgraded", "2.0");
    // Layer 2: `rm -rf app/node_modules && npm ci`: an opaque dir.
    fs::create_dir_all(l2.join(nm).join("fresh")).unwrap();
    xattr::set(l2.join(nm), "trusted.overlay.opaque", b"y").unwrap();
    fs::write(
        l2.join(nm).join("fresh/package.json"),
        r#"{"name":"fresh","version":"3.0.0"}"#,
    )
    .unwrap();
    let scan = scan_layers(&[l0.clone(), l1.clone(), l2.clone()]).unwrap();
    let got: Vec<String> = scan
        .packages
        .iter()
        .map(|p| format!("{}@{}", p.name, p.version))
        .collect();
    assert_eq!(got, ["keep@1.0", "upgraded@2.0", "fresh@3.0.0"]);
    // Lowest layer alone: everything it had.
    let base = scan_layers(std::slice::from_ref(&l0)).unwrap();
    assert_eq!(base.packages.len(), 5);
    // Order matters: lowest first.
    let reversed = scan_layers(&[l2, l1, l0]).unwrap();
    assert_ne!(reversed.packages, scan.packages);
    assert!(scan_layers(&[]).unwrap().packages.is_empty());
    assert!(scan_layers(&[t.path().join("absent")]).is_err());
}

#[test]
fn symlinks_never_reach_the_host() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path();
    // Dirs linked to host paths that hold packages on this host: the walk
    // does not descend through links, and file links resolve in the image.
    fs::create_dir_all(root.join("usr/lib/python3")).unwrap();
    symlink(
        "/usr/lib/python3/dist-packages",
        root.join("usr/lib/python3/dist-packages"),
    )
    .unwrap();
    fs::create_dir_all(root.join("usr/lib/node_modules")).unwrap();
    symlink(
        "/usr/lib/node_modules/npm",
        root.join("usr/lib/node_modules/npm"),
    )
    .unwrap();
    let site = root.join("usr/local/lib/python3.11/site-packages/evil-1.0.dist-info");
    fs::create_dir_all(&site).unwrap();
    let host_metadata = distributions(&host_site_packages(), ".dist-info", 1)[0].join("METADATA");
    assert!(host_metadata.is_file());
    symlink(&host_metadata, site.join("METADATA")).unwrap();
    fs::create_dir_all(root.join("var/lib")).unwrap();
    symlink("/var/lib/dpkg", root.join("var/lib/dpkg")).unwrap();
    symlink("/etc", root.join("etc")).unwrap();
    let scan = scan_dir(root).unwrap();
    assert!(
        scan.packages.is_empty(),
        "read the host: {:?}",
        scan.packages
    );
    assert!(scan.distro.is_none());
    // A link inside the image is followed inside the image.
    fs::remove_file(site.join("METADATA")).unwrap();
    fs::write(
        root.join("usr/local/real-metadata"),
        "Name: inside\nVersion: 1\n",
    )
    .unwrap();
    symlink(
        "../../../../../../../../usr/local/real-metadata",
        site.join("METADATA"),
    )
    .unwrap();
    let scan = scan_dir(root).unwrap();
    let got: Vec<&str> = scan.packages.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(got, ["inside"]);
}

/// A root with every kind of package: real Debian, Python and npm data,
/// and the hand-written Alpine database.
fn everything_root(root: &Path) {
    debian_root(root);
    python_root(root);
    alpine_root(root);
    let npm = Path::new("/usr/lib/node_modules/npm/package.json");
    if npm.is_file() {
        let dest = root.join("usr/lib/node_modules/npm");
        fs::create_dir_all(&dest).unwrap();
        fs::copy(npm, dest.join("package.json")).unwrap();
    }
    // Licenses that are not SPDX expressions must not spoil the document.
    let site = root.join("usr/lib/python3.12/site-packages");
    for (i, l) in [
        "GPLv2+",
        "Apache Software License",
        "LicenseRef-Mine",
        "MIT OR",
        "(MIT",
        "BSD",
    ]
    .iter()
    .enumerate()
    {
        let d = site.join(format!("odd{i}-1.dist-info"));
        fs::create_dir_all(&d).unwrap();
        fs::write(
            d.join("METADATA"),
            format!("Name: odd{i}\nVersion: 1\nLicense: {l}\n"),
        )
        .unwrap();
    }
}

#[test]
fn the_same_filesystem_gives_byte_identical_documents() {
    let t = tempfile::tempdir().unwrap();
    let (a, b) = (t.path().join("a"), t.path().join("b"));
    everything_root(&a);
    copy_dir(&a, &b);
    let one = spdx_json(&scan_dir(&a).unwrap(), &PARAMS);
    let two = spdx_json(&scan_dir(&b).unwrap(), &PARAMS);
    assert!(one == two, "two scans of the same filesystem differ");
    assert_eq!(one, spdx_json(&scan_dir(&a).unwrap(), &PARAMS));
    let other = DocumentParams {
        created: 1,
        ..PARAMS
    };
    assert_ne!(one, spdx_json(&scan_dir(&a).unwrap(), &other));
    let doc: serde_json::Value = serde_json::from_slice(&one).unwrap();
    assert_eq!(doc["creationInfo"]["created"], "2023-11-14T22:13:20Z");
    assert_eq!(
        doc["documentNamespace"],
        "https://spdx.org/spdxdocs/kiln-docker.io-library-fixture-latest-sha256-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
    );
    let ids: Vec<&str> = doc["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["SPDXID"].as_str().unwrap())
        .collect();
    let unique: BTreeSet<&&str> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len());
    let rels = doc["relationships"].as_array().unwrap();
    assert_eq!(rels.len(), ids.len());
    let contained: Vec<&str> = rels[1..]
        .iter()
        .map(|r| r["relatedSpdxElement"].as_str().unwrap())
        .collect();
    let mut sorted = contained.clone();
    sorted.sort();
    assert_eq!(contained, sorted);
}

/// The SPDX project's validator: pyspdxtools from PyPI's spdx-tools,
/// installed by scripts/test. Missing, the test fails: CI must have it.
fn pyspdxtools(file: &Path) -> std::process::Output {
    Command::new("pyspdxtools")
        .arg("-i")
        .arg(file)
        .output()
        .unwrap_or_else(|e| {
            panic!("pyspdxtools (pip install spdx-tools; scripts/test installs it): {e}")
        })
}

#[test]
fn documents_pass_the_spdx_validator() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("root");
    everything_root(&root);
    let scan = scan_dir(&root).unwrap();
    for eco in [Ecosystem::Deb, Ecosystem::Apk, Ecosystem::Python] {
        assert!(
            !set(&scan, eco).is_empty(),
            "no {eco:?} package in the fixture"
        );
    }
    let doc = spdx_document(&scan, &PARAMS);
    let odd: Vec<&serde_json::Value> = doc["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["name"].as_str().unwrap().starts_with("odd"))
        .collect();
    assert_eq!(odd.len(), 6);
    assert!(odd.iter().all(|p| p["licenseDeclared"] == "NOASSERTION"));
    let file = t.path().join("sbom.spdx.json");
    fs::write(&file, spdx_json(&scan, &PARAMS)).unwrap();
    let out = pyspdxtools(&file);
    assert!(
        out.status.success(),
        "pyspdxtools rejects the document: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The validator is not a yes-machine: an invalid license expression
    // written into the same document is refused.
    let mut bad = doc.clone();
    bad["packages"][1]["licenseDeclared"] = "GPLv2+".into();
    fs::write(&file, serde_json::to_vec(&bad).unwrap()).unwrap();
    assert!(!pyspdxtools(&file).status.success());
    // An empty image (scratch) is a valid document too.
    fs::write(&file, spdx_json(&scan_layers(&[]).unwrap(), &PARAMS)).unwrap();
    assert!(pyspdxtools(&file).status.success());
}

/// A deterministic byte mangler (xorshift), so a failure reproduces.
struct Mangler(u64);

impl Mangler {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn mangle(&mut self, src: &[u8]) -> Vec<u8> {
        let mut b = src.to_vec();
        match self.next() % 4 {
            0 => b.truncate((self.next() as usize) % (b.len() + 1)),
            1 => {
                for _ in 0..8 {
                    if !b.is_empty() {
                        let i = self.next() as usize % b.len();
                        b[i] = self.next() as u8;
                    }
                }
            }
            2 => {
                let i = self.next() as usize % (b.len() + 1);
                b.splice(
                    i..i,
                    b"\n\n:\n \x00\xff\nPackage\nVersion: \n{\"".iter().copied(),
                );
            }
            _ => {
                let i = self.next() as usize % (b.len() + 1);
                b.truncate(i);
                b.extend_from_slice(b"\n \t\n");
            }
        }
        b
    }
}

#[test]
fn garbage_metadata_gives_warnings_not_panics() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path();
    everything_root(root);
    let status = fs::read("/var/lib/dpkg/status").unwrap();
    // Its first 8 KiB: a few dozen entries, mangled fast.
    let status = &status[..status.len().min(8 << 10)];
    let metadata =
        fs::read(distributions(&host_site_packages(), ".dist-info", 1)[0].join("METADATA"))
            .unwrap();
    let package_json = br#"{"name":"@s/x","version":"1.0.0","license":{"type":"MIT"},"licenses":[{"type":"ISC"}]}"#;
    let meta_path = root.join("usr/lib/python3.12/site-packages/odd0-1.dist-info/METADATA");
    let pkg_path = root.join("usr/lib/node_modules/@s/x/package.json");
    fs::create_dir_all(pkg_path.parent().unwrap()).unwrap();
    let mut m = Mangler(0x9e37_79b9_7f4a_7c15);
    let mut warned = 0;
    for _ in 0..60 {
        fs::write(root.join("var/lib/dpkg/status"), m.mangle(status)).unwrap();
        fs::write(
            root.join("lib/apk/db/installed"),
            m.mangle(APK_INSTALLED.as_bytes()),
        )
        .unwrap();
        fs::write(
            root.join("etc/os-release"),
            m.mangle(b"ID=debian\nVERSION_ID=\"12\"\n"),
        )
        .unwrap();
        fs::write(&meta_path, m.mangle(&metadata)).unwrap();
        fs::write(&pkg_path, m.mangle(package_json)).unwrap();
        let scan = scan_dir(root).unwrap();
        warned += usize::from(!scan.warnings.is_empty());
        // Whatever was found still makes a document.
        let doc: serde_json::Value = serde_json::from_slice(&spdx_json(&scan, &PARAMS)).unwrap();
        assert_eq!(
            doc["packages"].as_array().unwrap().len(),
            scan.packages.len() + 1
        );
    }
    assert!(
        warned > 30,
        "only {warned} of 60 mangled roots gave a warning"
    );
}
