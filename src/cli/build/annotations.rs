//! `--annotation [TYPE[,TYPE…][PLATFORM]:]KEY=VALUE`, buildx's syntax: with
//! no type the annotation goes on the image manifest, as in buildx. kiln
//! writes the same manifest annotations on every platform's manifest (a
//! `[PLATFORM]` selector may name the host only); the image index it writes
//! (attestations, several platforms) takes no annotations yet, so `manifest`
//! is the only level it honours; `index`, `index-descriptor` and
//! `manifest-descriptor` are refused by name.

use std::collections::BTreeMap;

use crate::oci::Platform;

/// A bad or unsupported `--annotation`.
#[derive(Debug, thiserror::Error)]
pub(in crate::cli) enum AnnotationError {
    // COMPAT(buildkit): buildx's wording.
    #[error("invalid annotation {value:?}, expected key=value")]
    Shape { value: String },
    #[error("--annotation {value:?}: unknown annotation type {kind:?} (manifest, index, manifest-descriptor, index-descriptor)")]
    Type { value: String, kind: String },
    #[error("--annotation {value:?}: kiln does not support {kind} annotations yet: only the image manifest's (`manifest`, the default) are written")]
    Level { value: String, kind: String },
    #[error("--annotation {value:?}: a [PLATFORM] selector may name only the host platform {host}: kiln writes the same manifest annotations on every platform's manifest")]
    Platform { value: String, host: String },
}

const LEVELS: [&str; 4] = [
    "manifest",
    "index",
    "manifest-descriptor",
    "index-descriptor",
];

/// The manifest annotations `vals` ask for.
pub(super) fn manifest_annotations(
    vals: &[String],
) -> Result<BTreeMap<String, String>, AnnotationError> {
    let mut out = BTreeMap::new();
    for v in vals {
        let shape = || AnnotationError::Shape { value: v.clone() };
        let (k, val) = v.split_once('=').ok_or_else(shape)?;
        let (types, key) = match k.split_once(':') {
            Some((t, key)) if is_type_list(t) => (t, key),
            _ => ("manifest", k),
        };
        if key.is_empty() || key.contains(char::is_whitespace) {
            return Err(shape());
        }
        for t in types.split(',') {
            let (kind, platform) = match t.split_once('[') {
                Some((kind, p)) => (kind, p.strip_suffix(']')),
                None => (t, None),
            };
            if !LEVELS.contains(&kind) {
                return Err(AnnotationError::Type {
                    value: v.clone(),
                    kind: kind.into(),
                });
            }
            if kind != "manifest" {
                return Err(AnnotationError::Level {
                    value: v.clone(),
                    kind: kind.into(),
                });
            }
            let host = Platform::host();
            if let Some(p) = platform {
                let mut parts = p.split('/');
                if parts.next() != Some(host.os.as_str())
                    || parts.next() != Some(host.architecture.as_str())
                {
                    return Err(AnnotationError::Platform {
                        value: v.clone(),
                        host: host.to_specifier(),
                    });
                }
            }
        }
        out.insert(key.to_string(), val.to_string());
    }
    Ok(out)
}

/// `manifest`, `index,manifest[linux/amd64]`: buildx's type prefix.
fn is_type_list(s: &str) -> bool {
    !s.is_empty()
        && s.split(',').all(|t| {
            let name = t.split_once('[').map_or(t, |(n, _)| n);
            !name.is_empty() && name.bytes().all(|b| b.is_ascii_lowercase() || b == b'-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(v: &str) -> Result<BTreeMap<String, String>, AnnotationError> {
        manifest_annotations(&[v.to_string()])
    }

    #[test]
    fn parses_buildx_annotation_syntax() {
        let host = Platform::host().to_specifier();
        assert_eq!(one("a.b=c").unwrap()["a.b"], "c");
        assert_eq!(one("manifest:a=c=d").unwrap()["a"], "c=d");
        assert_eq!(one(&format!("manifest[{host}]:a=")).unwrap()["a"], "");
        // A key with a colon whose prefix is not a type list stays a key.
        assert_eq!(one("com.example:x=1").unwrap()["com.example:x"], "1");
        assert!(matches!(one("novalue"), Err(AnnotationError::Shape { .. })));
        assert!(matches!(
            one("bogus:a=b"),
            Err(AnnotationError::Type { .. })
        ));
        assert!(matches!(
            one("index:a=b"),
            Err(AnnotationError::Level { .. })
        ));
        assert!(matches!(
            one("manifest,manifest-descriptor:a=b"),
            Err(AnnotationError::Level { .. })
        ));
        assert!(matches!(
            one("manifest[plan9/mips]:a=b"),
            Err(AnnotationError::Platform { .. })
        ));
    }
}
