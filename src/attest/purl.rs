//! Package URLs for docker images, spelled as BuildKit's `purl.RefToPURL`
//! (through packageurl-go) spells them: `pkg:docker/<familiar name>@<tag>`
//! with the namespace before the last `/`, a digest as the version when
//! there is no tag (else a `digest` qualifier), and a `platform` qualifier;
//! qualifiers sorted by key, values query-escaped (`linux%2Famd64`).

use crate::oci::{Platform, Reference};

/// The purl of `reference` (a tag defaults to `latest`, as docker's
/// `TagNameOnly`), with `platform` as a qualifier when given.
pub fn docker_purl(reference: &Reference, platform: Option<&Platform>) -> String {
    let name = reference.familiar_repository();
    let mut version = reference.tag.clone().unwrap_or_default();
    let mut qualifiers: Vec<(&str, String)> = Vec::new();
    if let Some(d) = &reference.digest {
        if version.is_empty() {
            version = d.to_string();
        } else {
            qualifiers.push(("digest", d.to_string()));
        }
    }
    if let Some(p) = platform {
        qualifiers.push(("platform", p.to_specifier()));
    }
    qualifiers.sort();
    // packageurl-go escapes each namespace segment and the name with
    // url.PathEscape, which keeps ':' (a registry port) and '@'-free names.
    let path: Vec<String> = name.split('/').map(path_escape).collect();
    let mut out = format!("pkg:docker/{}", path.join("/"));
    if !version.is_empty() {
        out.push('@');
        out.push_str(&path_escape(&version));
    }
    for (i, (k, v)) in qualifiers.iter().enumerate() {
        out.push(if i == 0 { '?' } else { '&' });
        out.push_str(k);
        out.push('=');
        out.extend(url::form_urlencoded::byte_serialize(v.as_bytes()));
    }
    out
}

/// Go's `url.PathEscape`: everything but unreserved characters and
/// `$&+,:;=@` (sub-delims a path segment may hold) is percent-encoded.
fn path_escape(s: &str) -> String {
    let mut out = String::new();
    crate::sbom::escape_into(&mut out, s, |b| {
        b.is_ascii_alphanumeric() || b"-_.~$&+,:;=@".contains(&b)
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn purl(r: &str) -> String {
        let p = Platform {
            architecture: "amd64".into(),
            os: "linux".into(),
            variant: None,
            os_version: None,
        };
        docker_purl(&Reference::parse(r).unwrap(), Some(&p))
    }

    // The spellings in testdata/attest (recorded from BuildKit 0.25).
    #[test]
    fn spells_as_buildkit() {
        assert_eq!(
            purl("busybox:latest"),
            "pkg:docker/busybox@latest?platform=linux%2Famd64"
        );
        assert_eq!(purl("busybox"), purl("docker.io/library/busybox:latest"));
        assert_eq!(
            purl("127.0.0.1:5000/attest-oracle:max"),
            "pkg:docker/127.0.0.1:5000/attest-oracle@max?platform=linux%2Famd64"
        );
        assert_eq!(
            purl("example.com/attest/app:1"),
            "pkg:docker/example.com/attest/app@1?platform=linux%2Famd64"
        );
        let d = "sha256:70be71c84b89709c8dca71b1aec0efc2546cf956d52c5b86723819c8008daa33";
        assert_eq!(
            purl(&format!("user/app@{d}")),
            format!("pkg:docker/user/app@{d}?platform=linux%2Famd64")
        );
        assert_eq!(
            purl(&format!("app:1@{d}")),
            format!(
                "pkg:docker/app@1?digest=sha256%3A{}&platform=linux%2Famd64",
                &d[7..]
            )
        );
    }
}
