//! `-o/--output` specs in buildx's syntax (`type=oci,dest=img.tar,tar=false`)
//! parsed into a typed [`OutputSpec`]. Pure: writing the outputs lives in
//! `export.rs`. Invariant: every spec that parses names a destination its
//! type needs; an unknown type or key is an error, never ignored.

use std::path::PathBuf;

/// Why an output spec was rejected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OutputSpecError {
    /// A `key=value` field without `=`.
    #[error("output spec field {field:?} is not key=value")]
    NotKeyValue {
        /// The field as written.
        field: String,
    },
    /// `type=` names something kiln does not know.
    #[error("unknown output type {kind:?} (expected oci, docker, local, tar, image, registry)")]
    UnknownType {
        /// The type as written.
        kind: String,
    },
    /// A type that needs `dest=` has none.
    #[error("output type {kind} needs dest=")]
    MissingDest {
        /// The type.
        kind: &'static str,
    },
    /// A key the type does not understand.
    #[error("output type {kind} does not support {key:?}")]
    UnknownKey {
        /// The type.
        kind: &'static str,
        /// The key as written.
        key: String,
    },
    /// `dest=-` on a type that writes a directory.
    #[error("output type {kind} writes a directory, which cannot go to stdout (dest=-); use type=tar or an archive")]
    StdoutDir {
        /// The type.
        kind: &'static str,
    },
    /// An exporter option of BuildKit's that kiln does not implement per output.
    #[error("output option {key}={value:?} is not supported: {hint}")]
    Unsupported {
        /// The key.
        key: String,
        /// The value as written.
        value: String,
        /// What to use instead.
        hint: &'static str,
    },
    /// A boolean field with another value.
    #[error("output field {key}={value:?} is not true or false")]
    NotBool {
        /// The key.
        key: String,
        /// The value as written.
        value: String,
    },
}

/// One parsed output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputSpec {
    /// `type=oci`: an OCI archive, or a layout dir with `tar=false`.
    Oci {
        /// Where to write (`-`: stdout, tar only).
        dest: PathBuf,
        /// False: a layout directory instead of a tar.
        tar: bool,
        /// `name=` overrides the name written into the archive.
        name: Option<String>,
        /// `oci-artifact=true`: attestation manifests as OCI artifacts.
        oci_artifact: bool,
    },
    /// `type=docker`: a docker-archive.
    Docker {
        /// Where to write.
        dest: PathBuf,
        /// `name=`.
        name: Option<String>,
    },
    /// `type=local`: the final root filesystem as a directory.
    Local {
        /// The directory.
        dest: PathBuf,
    },
    /// `type=tar`: the final root filesystem as a tar file.
    Tar {
        /// The file.
        dest: PathBuf,
    },
    /// `type=image`: the local store (the default with `-t`).
    Image {
        /// `name=` adds names besides `-t`.
        names: Vec<String>,
        /// `push=true` asks for a registry push.
        push: bool,
        /// `oci-artifact=true`: attestation manifests as OCI artifacts.
        oci_artifact: bool,
    },
    /// `type=registry` (or `--push`): push to each name (and each `-t`).
    Registry {
        /// `name=` adds names besides `-t`.
        names: Vec<String>,
        /// `oci-artifact=true`: attestation manifests as OCI artifacts.
        oci_artifact: bool,
    },
}

/// The `dest` that means standard output.
pub const STDOUT: &str = "-";

impl OutputSpec {
    /// Whether the output is a file streamed to stdout (`dest=-`).
    pub fn to_stdout(&self) -> bool {
        match self {
            Self::Oci { dest, .. } | Self::Docker { dest, .. } | Self::Tar { dest } => {
                dest.as_os_str() == STDOUT
            }
            _ => false,
        }
    }

    /// The same output written to `path` instead (for a `dest=-` output:
    /// written to a file first, then copied to stdout).
    pub fn with_dest(&self, path: PathBuf) -> Self {
        let mut spec = self.clone();
        match &mut spec {
            Self::Oci { dest, .. }
            | Self::Docker { dest, .. }
            | Self::Tar { dest }
            | Self::Local { dest } => *dest = path,
            Self::Image { .. } | Self::Registry { .. } => {}
        }
        spec
    }

    /// Parses one `-o` value. A bare path (no `=`) means `type=local,dest=PATH`,
    /// and a bare `-` means `type=tar,dest=-`, as buildx does.
    pub fn parse(spec: &str) -> Result<Self, OutputSpecError> {
        if spec == "-" {
            return Ok(Self::Tar {
                dest: STDOUT.into(),
            });
        }
        if !spec.contains('=') {
            return Ok(Self::Local { dest: spec.into() });
        }
        let mut kind = None;
        let mut fields = Vec::new();
        for field in spec.split(',') {
            let (k, v) = field
                .split_once('=')
                .ok_or_else(|| OutputSpecError::NotKeyValue {
                    field: field.into(),
                })?;
            let k = k.trim().to_ascii_lowercase();
            if k == "type" {
                kind = Some(v.trim().to_string());
            } else {
                fields.push((k, v.to_string()));
            }
        }
        let kind = kind.unwrap_or_else(|| "local".into());
        build_spec(&kind, fields)
    }
}

fn build_spec(kind: &str, fields: Vec<(String, String)>) -> Result<OutputSpec, OutputSpecError> {
    let mut dest = None;
    let mut tar = true;
    let mut names = Vec::new();
    let mut push = false;
    let mut oci_artifact = false;
    let kname: &'static str = match kind {
        "oci" => "oci",
        "docker" => "docker",
        "local" => "local",
        "tar" => "tar",
        "image" => "image",
        "registry" => "registry",
        other => {
            return Err(OutputSpecError::UnknownType { kind: other.into() });
        }
    };
    for (k, v) in fields {
        match (kname, k.as_str()) {
            (_, "dest") if kname != "image" && kname != "registry" => dest = Some(v),
            ("oci", "tar") => tar = parse_bool(&k, &v)?,
            ("oci" | "docker" | "image" | "registry", "name") => {
                names.extend(v.split(',').map(str::to_string))
            }
            ("image", "push") => push = parse_bool(&k, &v)?,
            // BuildKit's exporter option: the attestation manifest as an OCI
            // artifact with a `subject` (a referrer of the image manifest).
            ("oci" | "image" | "registry", "oci-artifact") => {
                oci_artifact = parse_bool(&k, &v)?
            }
            // COMPAT(buildkit): an image in kiln's store always has unpacked snapshots
            // of the layers it built, which is what `unpack=true` asks containerd for.
            ("image", "unpack") => {
                parse_bool(&k, &v)?;
            }
            // kiln writes OCI media types to every output but a docker-archive;
            // `oci-mediatypes=true` asks for exactly that, `false` for what kiln
            // cannot write.
            ("oci" | "image" | "registry", "oci-mediatypes") => {
                if !parse_bool(&k, &v)? {
                    return Err(OutputSpecError::Unsupported {
                        key: k,
                        value: v,
                        hint: "kiln writes OCI media types; use type=docker for a docker-archive",
                    });
                }
            }
            (_, "compression" | "compression-level" | "force-compression") => {
                return Err(OutputSpecError::Unsupported {
                    key: k,
                    value: v,
                    hint: "the layer compression is set for all outputs with --compression gzip|zstd|uncompressed",
                })
            }
            _ => {
                return Err(OutputSpecError::UnknownKey {
                    kind: kname,
                    key: k,
                })
            }
        }
    }
    if dest.as_deref() == Some(STDOUT) && (kname == "local" || (kname == "oci" && !tar)) {
        return Err(OutputSpecError::StdoutDir { kind: kname });
    }
    let need_dest = || {
        dest.clone()
            .map(PathBuf::from)
            .ok_or(OutputSpecError::MissingDest { kind: kname })
    };
    Ok(match kname {
        "oci" => OutputSpec::Oci {
            dest: need_dest()?,
            tar,
            name: names.into_iter().next(),
            oci_artifact,
        },
        "docker" => OutputSpec::Docker {
            dest: need_dest()?,
            name: names.into_iter().next(),
        },
        "local" => OutputSpec::Local { dest: need_dest()? },
        "tar" => OutputSpec::Tar { dest: need_dest()? },
        "image" => OutputSpec::Image {
            names,
            push,
            oci_artifact,
        },
        _ => OutputSpec::Registry {
            names,
            oci_artifact,
        },
    })
}

fn parse_bool(key: &str, v: &str) -> Result<bool, OutputSpecError> {
    match v {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(OutputSpecError::NotBool {
            key: key.into(),
            value: v.into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Regression: these exporter options were accepted and ignored.
    #[test]
    fn per_output_compression_is_refused_and_names_the_flag() {
        for spec in [
            "type=oci,dest=a.tar,compression=zstd",
            "type=registry,name=r/a,force-compression=true",
            "type=image,compression-level=3",
            "type=oci,dest=a.tar,oci-mediatypes=false",
        ] {
            let e = OutputSpec::parse(spec).unwrap_err();
            assert!(
                matches!(e, OutputSpecError::Unsupported { .. }),
                "{spec}: {e}"
            );
        }
        let e = OutputSpec::parse("type=oci,dest=a.tar,compression=zstd").unwrap_err();
        assert!(e.to_string().contains("--compression"), "{e}");
        assert!(OutputSpec::parse("type=image,unpack=true,oci-mediatypes=true").is_ok());
        assert!(OutputSpec::parse("type=local,dest=d,unpack=true").is_err());
    }

    #[test]
    fn parses_each_type() {
        assert_eq!(
            OutputSpec::parse("type=oci,dest=a.tar").unwrap(),
            OutputSpec::Oci {
                dest: "a.tar".into(),
                tar: true,
                name: None,
                oci_artifact: false,
            }
        );
        assert_eq!(
            OutputSpec::parse("type=oci,dest=dir,tar=false").unwrap(),
            OutputSpec::Oci {
                dest: "dir".into(),
                tar: false,
                name: None,
                oci_artifact: false,
            }
        );
        assert_eq!(
            OutputSpec::parse("type=docker,dest=d.tar,name=app:1").unwrap(),
            OutputSpec::Docker {
                dest: "d.tar".into(),
                name: Some("app:1".into())
            }
        );
        assert_eq!(
            OutputSpec::parse("out").unwrap(),
            OutputSpec::Local { dest: "out".into() }
        );
        assert_eq!(
            OutputSpec::parse("type=tar,dest=r.tar").unwrap(),
            OutputSpec::Tar {
                dest: "r.tar".into()
            }
        );
        assert_eq!(
            OutputSpec::parse("type=image").unwrap(),
            OutputSpec::Image {
                names: vec![],
                push: false,
                oci_artifact: false,
            }
        );
        assert_eq!(
            OutputSpec::parse("type=registry").unwrap(),
            OutputSpec::Registry {
                names: vec![],
                oci_artifact: false,
            }
        );
        assert_eq!(
            OutputSpec::parse("type=registry,oci-artifact=true").unwrap(),
            OutputSpec::Registry {
                names: vec![],
                oci_artifact: true,
            }
        );
        assert!(OutputSpec::parse("type=docker,dest=d.tar,oci-artifact=true").is_err());
        assert_eq!(
            OutputSpec::parse("type=registry,name=localhost:5000/a:1").unwrap(),
            OutputSpec::Registry {
                names: vec!["localhost:5000/a:1".into()],
                oci_artifact: false,
            }
        );
    }

    #[test]
    fn rejects_what_it_does_not_know() {
        assert!(matches!(
            OutputSpec::parse("type=s3,dest=x"),
            Err(OutputSpecError::UnknownType { .. })
        ));
        assert!(matches!(
            OutputSpec::parse("type=oci"),
            Err(OutputSpecError::MissingDest { kind: "oci" })
        ));
        assert!(matches!(
            OutputSpec::parse("type=local,dest=x,tar=false"),
            Err(OutputSpecError::UnknownKey { .. })
        ));
        assert!(matches!(
            OutputSpec::parse("type=oci,dest=x,tar=maybe"),
            Err(OutputSpecError::NotBool { .. })
        ));
        assert!(OutputSpec::parse("type=tar,dest=-").unwrap().to_stdout());
        assert!(OutputSpec::parse("type=docker,dest=-").unwrap().to_stdout());
        assert!(OutputSpec::parse("type=oci,dest=-").unwrap().to_stdout());
        assert_eq!(
            OutputSpec::parse("-").unwrap(),
            OutputSpec::Tar { dest: "-".into() }
        );
        assert_eq!(
            OutputSpec::parse("type=local,dest=-"),
            Err(OutputSpecError::StdoutDir { kind: "local" })
        );
        assert_eq!(
            OutputSpec::parse("type=oci,dest=-,tar=false"),
            Err(OutputSpecError::StdoutDir { kind: "oci" })
        );
        assert!(matches!(
            OutputSpec::parse("type=oci,dest"),
            Err(OutputSpecError::NotKeyValue { .. })
        ));
    }
}
