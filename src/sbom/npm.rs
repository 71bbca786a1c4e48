//! npm packages: `package.json` of each `node_modules/<name>/` and
//! `node_modules/@scope/<name>/` (the walk finds nested `node_modules`).

use serde_json::Value;

use super::purl::purl;
use super::{Ecosystem, Package, Scan, MAX_METADATA_BYTES};
use crate::layer::{Entry, MergedFs};

/// Looks at one entry of a `node_modules` dir (`dir` is its image path).
pub(super) fn visit(fs: &MergedFs, dir: &str, e: &Entry, scan: &mut Scan) {
    if !e.meta.is_dir() || e.name.starts_with('.') {
        return;
    }
    if e.name.starts_with('@') {
        let scope = format!("{dir}/{}", e.name);
        match fs.children(&scope) {
            Ok(children) => {
                for c in children.iter().filter(|c| c.meta.is_dir()) {
                    read(fs, &format!("{scope}/{}/package.json", c.name), scan);
                }
            }
            Err(err) => scan.warn(&scope, super::error_chain(&err)),
        }
    } else {
        read(fs, &format!("{dir}/{}/package.json", e.name), scan);
    }
}

fn read(fs: &MergedFs, path: &str, scan: &mut Scan) {
    if let Some(bytes) = scan.read_whole(fs, path, MAX_METADATA_BYTES) {
        parse(&bytes, path, scan);
    }
}

pub(super) fn parse(bytes: &[u8], path: &str, scan: &mut Scan) {
    let json: Value = match serde_json::from_slice(bytes) {
        Ok(v) => v,
        Err(e) => return scan.warn(path, format!("not JSON ({e}): skipped")),
    };
    let text = |k: &str| {
        json.get(k)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
    };
    let (Some(name), Some(version)) = (text("name"), text("version")) else {
        return scan.warn(path, "no name or version: skipped");
    };
    let (ns, base) = match name.split_once('/') {
        Some((scope, base)) if scope.starts_with('@') && !base.is_empty() => (Some(scope), base),
        None => (None, name),
        Some(_) => return scan.warn(path, format!("malformed package name {name:?}: skipped")),
    };
    scan.packages.push(Package {
        ecosystem: Ecosystem::Npm,
        name: name.to_string(),
        version: version.to_string(),
        arch: None,
        source: None,
        supplier: None,
        license: license(&json),
        purl: purl("npm", ns, base, version, &[]),
        found_at: path.to_string(),
    });
}

/// `"license": "MIT"`, the old `"license": {"type": "MIT"}`, or the older
/// `"licenses": [{"type": …}, …]` (joined with AND, as syft joins them).
fn license(json: &Value) -> Option<String> {
    let of = |v: &Value| match v {
        Value::String(s) => Some(s.trim().to_string()),
        Value::Object(o) => o
            .get("type")
            .and_then(Value::as_str)
            .map(|s| s.trim().to_string()),
        _ => None,
    };
    if let Some(l) = json.get("license").and_then(of) {
        return Some(l).filter(|l| !l.is_empty());
    }
    let all: Vec<String> = json
        .get("licenses")?
        .as_array()?
        .iter()
        .filter_map(of)
        .filter(|l| !l.is_empty())
        .collect();
    (!all.is_empty()).then(|| all.join(" AND "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scoped_names_and_license_forms() {
        let mut scan = Scan::default();
        parse(
            br#"{"name":"@npmcli/arborist","version":"7.5.4","license":"ISC"}"#,
            "/a",
            &mut scan,
        );
        parse(
            br#"{"name":"old","version":"1.0.0","license":{"type":"MIT"}}"#,
            "/b",
            &mut scan,
        );
        parse(br#"{"name":"older","version":"1.0.0","licenses":[{"type":"MIT"},{"type":"Apache-2.0"}]}"#, "/c", &mut scan);
        let got: Vec<(&str, Option<&str>)> = scan
            .packages
            .iter()
            .map(|p| (p.purl.as_str(), p.license.as_deref()))
            .collect();
        assert_eq!(
            got,
            [
                ("pkg:npm/%40npmcli/arborist@7.5.4", Some("ISC")),
                ("pkg:npm/old@1.0.0", Some("MIT")),
                ("pkg:npm/older@1.0.0", Some("MIT AND Apache-2.0")),
            ]
        );
    }

    #[test]
    fn bad_files_are_warnings() {
        let mut scan = Scan::default();
        for bad in [
            &b"{"[..],
            b"[]",
            b"{\"name\":1,\"version\":\"1\"}",
            b"{\"name\":\"a/b\",\"version\":\"1\"}",
            b"\xff\xfe",
        ] {
            parse(bad, "/x", &mut scan);
        }
        assert!(scan.packages.is_empty());
        assert_eq!(scan.warnings.len(), 5);
    }
}
