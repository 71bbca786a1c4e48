//! Python distributions: core metadata (`Name`, `Version`, `License`,
//! `License-Expression`) from a wheel's `*.dist-info/METADATA`, an egg's
//! `*.egg-info/PKG-INFO`, or a `*.egg-info` file (distutils), in a
//! `site-packages` or `dist-packages` dir.

use super::purl::purl;
use super::{field, paragraphs, Ecosystem, Package, Scan, MAX_METADATA_BYTES};
use crate::layer::{Entry, MergedFs};

/// Whether a directory of this name holds installed distributions.
pub(super) fn is_packages_dir(name: &str) -> bool {
    name == "site-packages" || name == "dist-packages"
}

/// Looks at one entry of a packages dir (`dir` is its image path).
pub(super) fn visit(fs: &MergedFs, dir: &str, e: &Entry, scan: &mut Scan) {
    let metadata = if e.name.ends_with(".dist-info") && e.meta.is_dir() {
        format!("{dir}/{}/METADATA", e.name)
    } else if e.name.ends_with(".egg-info") && e.meta.is_dir() {
        format!("{dir}/{}/PKG-INFO", e.name)
    } else if e.name.ends_with(".egg-info") && e.meta.is_file() {
        format!("{dir}/{}", e.name)
    } else {
        return;
    };
    // Headers come first: a long description past the limit is not needed.
    let Some(bytes) = scan.read_prefix(fs, &metadata, MAX_METADATA_BYTES) else {
        return;
    };
    parse(&String::from_utf8_lossy(&bytes), &metadata, scan);
}

pub(super) fn parse(text: &str, path: &str, scan: &mut Scan) {
    // The header block ends at the first blank line; the body after it is
    // the description.
    let end = text
        .find("\n\n")
        .or_else(|| text.find("\r\n\r\n"))
        .unwrap_or(text.len());
    let headers = match paragraphs(&text[..end]).into_iter().next() {
        Some(Ok(h)) => h,
        Some(Err(line)) => {
            return scan.warn(
                path,
                format!("malformed metadata header at line {line}: skipped"),
            )
        }
        None => return scan.warn(path, "empty metadata: skipped"),
    };
    let (Some(name), Some(version)) = (field(&headers, "Name"), field(&headers, "Version")) else {
        return scan.warn(path, "metadata has no Name or Version: skipped");
    };
    // PEP 639's License-Expression is an SPDX expression; License is free
    // text (often the whole license), kept for the checks in `license`.
    let license = field(&headers, "License-Expression")
        .or_else(|| field(&headers, "License"))
        .filter(|l| !l.eq_ignore_ascii_case("UNKNOWN"));
    scan.packages.push(Package {
        ecosystem: Ecosystem::Python,
        name: name.to_string(),
        version: version.to_string(),
        arch: None,
        source: None,
        supplier: None,
        license: license.map(str::to_string),
        purl: purl("pypi", None, &normalize(name), version, &[]),
        found_at: path.to_string(),
    });
}

/// PEP 503's normalized name (lowercase, runs of `-_.` as one `-`), the
/// form purl-spec asks for PyPI names.
fn normalize(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut sep = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            sep = true;
            continue;
        }
        if sep && !out.is_empty() {
            out.push('-');
        }
        sep = false;
        out.extend(c.to_lowercase());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_normalized_for_the_purl() {
        assert_eq!(normalize("Foo__Bar.baz-Qux"), "foo-bar-baz-qux");
        assert_eq!(normalize("PyYAML"), "pyyaml");
        assert_eq!(normalize("-x-"), "x");
    }

    #[test]
    fn reads_headers_and_ignores_the_body() {
        let mut scan = Scan::default();
        let meta = "Metadata-Version: 2.4\nName: Typing_Extensions\nVersion: 4.12.2\nLicense-Expression: PSF-2.0\n\nbody: not: a header\n\n# Title\n";
        parse(meta, "/p/METADATA", &mut scan);
        let p = &scan.packages[0];
        assert_eq!(p.purl, "pkg:pypi/typing-extensions@4.12.2");
        assert_eq!(p.license.as_deref(), Some("PSF-2.0"));
        assert!(scan.warnings.is_empty());
        parse("Name: x\n", "/q", &mut scan);
        parse("", "/r", &mut scan);
        parse(" bad\nName: y\nVersion: 1\n", "/s", &mut scan);
        assert_eq!((scan.packages.len(), scan.warnings.len()), (1, 3));
    }
}
