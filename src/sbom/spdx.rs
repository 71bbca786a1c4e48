//! The SPDX 2.3 JSON document for a [`Scan`].
//!
//! One root package stands for the image (the document DESCRIBES it); it
//! CONTAINS every package found. Package SPDXIDs are derived from what
//! identifies the package (ecosystem, name, version, arch, where it was
//! found), so they are unique and the same on every run. Nothing comes
//! from the clock or a random source: `created` and `documentNamespace`
//! are the caller's ([`DocumentParams`]).

use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

use super::{license, Package, Scan};

/// What the document says about itself; the caller's, so a rebuild gives
/// the same bytes.
#[derive(Debug, Clone, Copy)]
pub struct DocumentParams<'a> {
    /// The image's name (a reference like `docker.io/library/app:1`, or any
    /// label): the document's and the root package's name (`image` when
    /// empty).
    pub name: &'a str,
    /// A digest that identifies the image (its manifest's or config's,
    /// `sha256:<hex>`): it makes the document namespace unique, and is the
    /// root package's version (left out when empty).
    pub digest: &'a str,
    /// The creation time in seconds since the epoch: `SOURCE_DATE_EPOCH`,
    /// or the image config's `created`.
    pub created: i64,
}

/// The root package's SPDXID.
const ROOT_ID: &str = "SPDXRef-Image";

/// The SPDX 2.3 document for `scan`, as a JSON value (keys sorted, as
/// `serde_json`'s map keeps them).
pub fn spdx_document(scan: &Scan, params: &DocumentParams<'_>) -> Value {
    let name = if params.name.trim().is_empty() {
        "image"
    } else {
        params.name
    };
    let mut root = json!({
        "SPDXID": ROOT_ID,
        "name": name,
        "primaryPackagePurpose": "CONTAINER",
        "supplier": "NOASSERTION",
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": false,
        "licenseConcluded": "NOASSERTION",
        "licenseDeclared": "NOASSERTION",
        "copyrightText": "NOASSERTION",
    });
    if !params.digest.is_empty() {
        root["versionInfo"] = json!(params.digest);
    }
    let mut packages = vec![root];
    let mut ids: Vec<String> = Vec::new();
    let mut used = std::collections::BTreeSet::new();
    for p in &scan.packages {
        // A scan has no two packages of one identity; a Scan made by hand
        // might: the later one gets a suffix, so ids stay unique.
        let base = package_id(p);
        let mut id = base.clone();
        let mut n = 1;
        while !used.insert(id.clone()) {
            n += 1;
            id = format!("{base}-{n}");
        }
        packages.push(package(p, &id));
        ids.push(id);
    }
    ids.sort();
    let mut relationships = vec![json!({
        "spdxElementId": "SPDXRef-DOCUMENT",
        "relationshipType": "DESCRIBES",
        "relatedSpdxElement": ROOT_ID,
    })];
    relationships.extend(ids.iter().map(|id| {
        json!({
            "spdxElementId": ROOT_ID,
            "relationshipType": "CONTAINS",
            "relatedSpdxElement": id,
        })
    }));
    json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": name,
        "documentNamespace": namespace(params),
        "creationInfo": {
            "creators": [format!("Tool: kiln-{}", env!("CARGO_PKG_VERSION"))],
            "created": rfc3339(params.created),
        },
        "packages": packages,
        "relationships": relationships,
    })
}

/// [`spdx_document`] as bytes: compact JSON, keys sorted.
pub fn spdx_json(scan: &Scan, params: &DocumentParams<'_>) -> Vec<u8> {
    // A Value of strings, bools and arrays always serializes.
    serde_json::to_vec(&spdx_document(scan, params)).unwrap_or_default()
}

fn package(p: &Package, id: &str) -> Value {
    let declared = p.license.as_deref().and_then(license::expression);
    let mut v = json!({
        "SPDXID": id,
        "name": p.name,
        "versionInfo": p.version,
        "supplier": p.supplier.as_deref().map_or_else(|| "NOASSERTION".to_string(), supplier),
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": false,
        "licenseConcluded": "NOASSERTION",
        "licenseDeclared": declared.as_deref().unwrap_or("NOASSERTION"),
        "copyrightText": "NOASSERTION",
        "externalRefs": [{
            "referenceCategory": "PACKAGE-MANAGER",
            "referenceType": "purl",
            "referenceLocator": p.purl,
        }],
        "sourceInfo": format!("acquired package info from {}: {}", p.ecosystem.source_kind(), p.found_at),
    });
    if let (Some(raw), None) = (&p.license, &declared) {
        v["comment"] = json!(format!("declared license, not an SPDX expression: {raw}"));
    }
    v
}

/// `SPDXRef-Package-<ecosystem>-<name>-<hash>`: readable, unique, stable.
fn package_id(p: &Package) -> String {
    let mut h = Sha256::new();
    for part in [
        p.ecosystem.as_str(),
        &p.name,
        &p.version,
        p.arch.as_deref().unwrap_or(""),
        &p.found_at,
    ] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    let hash = hex::encode(&h.finalize()[..8]);
    let name: String = id_chars(&p.name).chars().take(64).collect();
    format!("SPDXRef-Package-{}-{name}-{hash}", p.ecosystem.as_str())
}

/// `s` with every character an SPDXID may not hold (`[A-Za-z0-9.-]` only)
/// as `-`.
fn id_chars(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// `Name <email>` → `Person: Name (email)`, the SPDX actor form; the
/// parentheses SPDX uses as delimiters are dropped from the parts.
fn supplier(raw: &str) -> String {
    let clean = |s: &str| {
        s.chars()
            .filter(|c| !matches!(c, '(' | ')' | '<' | '>'))
            .collect::<String>()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    let (name, email) = match raw.split_once('<') {
        Some((n, rest)) => (clean(n), clean(rest.split('>').next().unwrap_or(""))),
        None => (clean(raw), String::new()),
    };
    match (name.is_empty(), email.is_empty()) {
        (true, true) => "NOASSERTION".to_string(),
        (true, false) => format!("Person: {email} ({email})"),
        (false, true) => format!("Person: {name}"),
        (false, false) => format!("Person: {name} ({email})"),
    }
}

/// `https://spdx.org/spdxdocs/kiln-<name>-<digest>`: the form the SPDX
/// spec suggests, unique per image through its digest.
fn namespace(p: &DocumentParams<'_>) -> String {
    let safe = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_' {
                    c
                } else {
                    '-'
                }
            })
            .collect()
    };
    format!(
        "https://spdx.org/spdxdocs/kiln-{}-{}",
        safe(p.name),
        safe(p.digest)
    )
}

/// Seconds since the epoch as `YYYY-MM-DDThh:mm:ssZ` (SPDX's form, UTC,
/// no fraction); before 1970 is 1970, past 9999 is 9999-12-31.
fn rfc3339(secs: i64) -> String {
    crate::builder::rfc3339(secs.clamp(0, 253_402_300_799), 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sbom::{Ecosystem, Scan};

    #[test]
    fn ids_stay_unique_for_a_hand_made_scan() {
        let p = Package {
            ecosystem: Ecosystem::Deb,
            name: "a".into(),
            version: "1".into(),
            arch: None,
            source: None,
            supplier: None,
            license: None,
            purl: "pkg:deb/debian/a@1".into(),
            found_at: "/var/lib/dpkg/status".into(),
        };
        let scan = Scan {
            packages: vec![p.clone(), p],
            ..Scan::default()
        };
        let doc = spdx_document(
            &scan,
            &DocumentParams {
                name: "",
                digest: "",
                created: 0,
            },
        );
        let id = |i: usize| doc["packages"][i]["SPDXID"].as_str().unwrap().to_string();
        assert_eq!(id(2), format!("{}-2", id(1)));
        assert_eq!(doc["name"], "image");
        assert!(doc["packages"][0].get("versionInfo").is_none());
        assert_eq!(doc["relationships"].as_array().unwrap().len(), 3);
    }

    #[test]
    fn times_are_utc_seconds() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(-5), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(i64::MAX), "9999-12-31T23:59:59Z");
    }

    #[test]
    fn suppliers_are_spdx_actors() {
        assert_eq!(
            supplier("GNU Libc Maintainers <debian-glibc@lists.debian.org>"),
            "Person: GNU Libc Maintainers (debian-glibc@lists.debian.org)"
        );
        assert_eq!(supplier("Someone (the) One"), "Person: Someone the One");
        assert_eq!(supplier("<a@b>"), "Person: a@b (a@b)");
        assert_eq!(supplier(" <> "), "NOASSERTION");
    }

    #[test]
    fn ids_are_stable_and_valid() {
        let p = Package {
            ecosystem: Ecosystem::Npm,
            name: "@scope/näme".into(),
            version: "1".into(),
            arch: None,
            source: None,
            supplier: None,
            license: Some("not a license".into()),
            purl: "pkg:npm/%40scope/n%C3%A4me@1".into(),
            found_at: "/node_modules/@scope/näme/package.json".into(),
        };
        let id = package_id(&p);
        assert!(id.starts_with("SPDXRef-Package-npm--scope-n-me-"), "{id}");
        assert!(id[8..]
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-'));
        let mut q = p.clone();
        q.found_at = "/other/package.json".into();
        assert_ne!(package_id(&q), id);
        assert_eq!(package(&p, &id)["licenseDeclared"], "NOASSERTION");
    }
}
