//! Which attestations a build makes, from buildx's flags: `--provenance`
//! (`true`/`false`/`1`/`0` or `mode=min|max,builder-id=…`), `--attest
//! type=provenance,…`, `--sbom` (`true`/`false`) and `--attest
//! type=sbom[,disabled=true]`, and the default (min provenance, unless
//! `BUILDX_NO_DEFAULT_ATTESTATIONS` says no; no SBOM, as BuildKit). Pure:
//! the caller passes the environment variable's value.
//!
//! Invariant: every option is understood or refused by name; nothing is
//! accepted and ignored.

/// How much the provenance records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProvenanceMode {
    /// The request, the base images, the builder's platform.
    #[default]
    Min,
    /// Also every step the build ran and the Dockerfile itself.
    Max,
}

impl ProvenanceMode {
    /// `min` or `max`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Min => "min",
            Self::Max => "max",
        }
    }
}

/// The provenance a build attaches.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProvenanceOptions {
    /// `mode=`.
    pub mode: ProvenanceMode,
    /// `builder-id=`: `runDetails.builder.id` (empty otherwise, as BuildKit).
    pub builder_id: Option<String>,
}

/// What the attestation flags asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttestOptions {
    /// The provenance to attach (`None`: none).
    pub provenance: Option<ProvenanceOptions>,
    /// Whether the user asked for it (a flag), rather than the default: an
    /// output that cannot carry attestations refuses an explicit request
    /// and silently goes without a default one, as buildx's `inline-only`.
    pub explicit: bool,
    /// Whether to attach an SBOM of the image (`--sbom=true`, `--attest
    /// type=sbom`); never on by default, so always an explicit request.
    pub sbom: bool,
}

impl Default for AttestOptions {
    /// BuildKit 0.28+'s default: min provenance.
    fn default() -> Self {
        Self {
            provenance: Some(ProvenanceOptions::default()),
            explicit: false,
            sbom: false,
        }
    }
}

/// A bad attestation flag.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OptionsError {
    /// A `key=value` field without `=`.
    #[error("{flag}: field {field:?} is not key=value")]
    NotKeyValue {
        /// The flag as given.
        flag: String,
        /// The field.
        field: String,
    },
    /// An option kiln does not implement.
    #[error("{flag}: {key} is not supported by kiln{hint}")]
    Unsupported {
        /// The flag as given.
        flag: String,
        /// The option (`filename`, `referrers`, `version=v0.2`).
        key: String,
        /// What to do instead (starts with `: ` when there is one).
        hint: &'static str,
    },
    /// A value that is not one the option takes.
    #[error("{flag}: invalid value {value:?} for {key} (expected {expected})")]
    Value {
        /// The flag as given.
        flag: String,
        /// The option.
        key: String,
        /// The value.
        value: String,
        /// What it takes.
        expected: &'static str,
    },
    /// `--attest` without `type=`.
    #[error("--attest {spec}: missing type= (provenance or sbom)")]
    NoType {
        /// The spec.
        spec: String,
    },
    /// `--attest type=` that is neither provenance nor sbom.
    #[error("--attest {spec}: unknown attestation type {kind:?} (expected provenance or sbom)")]
    UnknownType {
        /// The spec.
        spec: String,
        /// The type.
        kind: String,
    },
    /// `BUILDX_NO_DEFAULT_ATTESTATIONS` is not a boolean.
    #[error(
        "invalid BUILDX_NO_DEFAULT_ATTESTATIONS={0:?} (expected a boolean: 1, true, 0, false)"
    )]
    NoDefaultEnv(String),
}

/// Go's `strconv.ParseBool`, which buildx reads these values with.
pub fn parse_go_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// One attestation request, as buildx turns each flag into `type=…,…`.
struct Request {
    flag: String,
    kind: String,
    disabled: bool,
    fields: Vec<(String, String)>,
}

fn fields(flag: &str, spec: &str) -> Result<Vec<(String, String)>, OptionsError> {
    spec.split(',')
        .filter(|f| !f.is_empty())
        .map(|f| {
            f.split_once('=')
                .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
                .ok_or_else(|| OptionsError::NotKeyValue {
                    flag: flag.into(),
                    field: f.into(),
                })
        })
        .collect()
}

/// `--provenance V` / `--sbom V`: a boolean, or fields of `type=KIND,V`.
fn shorthand(kind: &str, v: &str) -> Result<Request, OptionsError> {
    let flag = format!("--{kind}={v}");
    if let Some(b) = parse_go_bool(v) {
        return Ok(Request {
            flag,
            kind: kind.into(),
            disabled: !b,
            fields: Vec::new(),
        });
    }
    let fields = fields(&flag, v)?;
    request(flag, Some(kind.into()), fields)
}

fn request(
    flag: String,
    mut kind: Option<String>,
    all: Vec<(String, String)>,
) -> Result<Request, OptionsError> {
    let mut disabled = false;
    let mut rest = Vec::new();
    for (k, v) in all {
        match k.as_str() {
            "type" => kind = Some(v),
            "disabled" => {
                disabled = parse_go_bool(&v).ok_or_else(|| OptionsError::Value {
                    flag: flag.clone(),
                    key: k.clone(),
                    value: v.clone(),
                    expected: "true or false",
                })?
            }
            _ => rest.push((k, v)),
        }
    }
    let kind = kind.ok_or_else(|| OptionsError::NoType {
        spec: flag.trim_start_matches("--attest ").into(),
    })?;
    Ok(Request {
        flag,
        kind,
        disabled,
        fields: rest,
    })
}

fn provenance(r: &Request) -> Result<ProvenanceOptions, OptionsError> {
    let mut p = ProvenanceOptions::default();
    let value = |k: &str, v: &str, expected| OptionsError::Value {
        flag: r.flag.clone(),
        key: k.into(),
        value: v.into(),
        expected,
    };
    for (k, v) in &r.fields {
        match k.as_str() {
            "mode" => {
                p.mode = match v.as_str() {
                    "min" => ProvenanceMode::Min,
                    "max" => ProvenanceMode::Max,
                    _ => return Err(value(k, v, "min or max")),
                }
            }
            "builder-id" => p.builder_id = Some(v.clone()),
            // kiln writes SLSA provenance v1 only; BuildKit 0.25 writes v0.2
            // unless `version=v1`.
            "version" if v == "v1" => {}
            "version" => {
                return Err(OptionsError::Unsupported {
                    flag: r.flag.clone(),
                    key: format!("version={v}"),
                    hint: ": kiln writes SLSA provenance v1 only (version=v1)",
                })
            }
            "inline-only" => {
                parse_go_bool(v).ok_or_else(|| value(k, v, "true or false"))?;
                if parse_go_bool(v) == Some(false) {
                    return Err(OptionsError::Unsupported {
                        flag: r.flag.clone(),
                        key: "inline-only=false".into(),
                        hint: ": kiln attaches provenance to image outputs only",
                    });
                }
            }
            "oci-artifact" => return Err(OptionsError::Unsupported {
                flag: r.flag.clone(),
                key: k.clone(),
                hint: " here: it is an output option, -o type=oci|image|registry,oci-artifact=true",
            }),
            _ => {
                return Err(OptionsError::Unsupported {
                    flag: r.flag.clone(),
                    key: k.clone(),
                    hint: "",
                })
            }
        }
    }
    Ok(p)
}

/// The SBOM request's own fields: none is implemented. kiln scans with
/// its own scanner (`crate::sbom`), so BuildKit's `generator=` image, and
/// the parameters it would hand that image, have nothing to go to.
fn sbom(r: &Request) -> Result<(), OptionsError> {
    match r.fields.first() {
        None => Ok(()),
        Some((k, v)) if k == "generator" => Err(OptionsError::Unsupported {
            flag: r.flag.clone(),
            key: format!("generator={v}"),
            hint: ": kiln scans the image with its own scanner and runs no generator image; drop generator=",
        }),
        Some((k, _)) if k == "scan-context" || k == "scan-stage" => {
            Err(OptionsError::Unsupported {
                flag: r.flag.clone(),
                key: k.clone(),
                hint: ": BuildKit reads these as the build args BUILDKIT_SBOM_SCAN_CONTEXT and BUILDKIT_SBOM_SCAN_STAGE",
            })
        }
        Some((k, _)) => Err(OptionsError::Unsupported {
            flag: r.flag.clone(),
            key: k.clone(),
            hint: ": it would be a parameter for BuildKit's generator image, which kiln does not run",
        }),
    }
}

impl AttestOptions {
    /// Reads the flags: `provenance` and `sbom` are `--provenance` /
    /// `--sbom` values, `attest` the `--attest` specs, `no_default` the
    /// value of `BUILDX_NO_DEFAULT_ATTESTATIONS` when it is set.
    pub fn from_flags(
        provenance_flag: Option<&str>,
        sbom_flag: Option<&str>,
        attest: &[String],
        no_default: Option<&str>,
    ) -> Result<Self, OptionsError> {
        // COMPAT(buildkit): buildx applies --provenance and --sbom first and
        // the --attest values after them: the last request of a type wins
        // (`--provenance=mode=max --attest type=provenance,mode=min` is min).
        let mut reqs = Vec::new();
        if let Some(v) = provenance_flag {
            reqs.push(shorthand("provenance", v)?);
        }
        if let Some(v) = sbom_flag {
            reqs.push(shorthand("sbom", v)?);
        }
        for spec in attest {
            let flag = format!("--attest {spec}");
            let f = fields(&flag, spec)?;
            reqs.push(request(flag, None, f)?);
        }
        let mut out = Self {
            provenance: None,
            explicit: false,
            sbom: false,
        };
        let mut seen_provenance = false;
        for r in &reqs {
            let kind: &'static str = match r.kind.as_str() {
                "provenance" => "provenance",
                "sbom" => "sbom",
                other => {
                    return Err(OptionsError::UnknownType {
                        spec: r.flag.trim_start_matches("--attest ").into(),
                        kind: other.into(),
                    })
                }
            };
            match (kind, r.disabled) {
                ("sbom", true) => out.sbom = false,
                ("sbom", false) => {
                    sbom(r)?;
                    out.sbom = true;
                }
                (_, true) => {
                    seen_provenance = true;
                    out.explicit = true;
                    out.provenance = None;
                }
                (_, false) => {
                    seen_provenance = true;
                    out.provenance = Some(provenance(r)?);
                    out.explicit = true;
                }
            }
        }
        if !seen_provenance {
            let off = match no_default.filter(|v| !v.is_empty()) {
                Some(v) => parse_go_bool(v).ok_or_else(|| OptionsError::NoDefaultEnv(v.into()))?,
                None => false,
            };
            if !off {
                out.provenance = Some(ProvenanceOptions::default());
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(
        p: Option<&str>,
        attest: &[&str],
        env: Option<&str>,
    ) -> Result<AttestOptions, OptionsError> {
        let a: Vec<String> = attest.iter().map(|s| s.to_string()).collect();
        AttestOptions::from_flags(p, None, &a, env)
    }

    fn mode(o: &AttestOptions) -> Option<ProvenanceMode> {
        o.provenance.as_ref().map(|p| p.mode)
    }

    #[test]
    fn default_is_min_unless_the_env_says_no() {
        let d = parse(None, &[], None).unwrap();
        assert_eq!(d, AttestOptions::default());
        assert!(!d.explicit);
        assert_eq!(parse(None, &[], Some("1")).unwrap().provenance, None);
        assert_eq!(parse(None, &[], Some("true")).unwrap().provenance, None);
        assert_eq!(
            mode(&parse(None, &[], Some("0")).unwrap()),
            Some(ProvenanceMode::Min)
        );
        assert_eq!(
            mode(&parse(None, &[], Some("")).unwrap()),
            Some(ProvenanceMode::Min)
        );
        assert!(matches!(
            parse(None, &[], Some("yes")),
            Err(OptionsError::NoDefaultEnv(_))
        ));
        // An explicit flag wins over the variable, as in buildx.
        let o = parse(Some("mode=max"), &[], Some("1")).unwrap();
        assert_eq!(mode(&o), Some(ProvenanceMode::Max));
    }

    #[test]
    fn reads_buildx_values() {
        for (v, m) in [
            ("true", Some(ProvenanceMode::Min)),
            ("1", Some(ProvenanceMode::Min)),
            ("false", None),
            ("0", None),
            ("mode=min", Some(ProvenanceMode::Min)),
            ("mode=max", Some(ProvenanceMode::Max)),
            ("mode=max,version=v1", Some(ProvenanceMode::Max)),
        ] {
            let o = parse(Some(v), &[], None).unwrap();
            assert_eq!(mode(&o), m, "{v}");
            assert!(o.explicit);
        }
        let o = parse(
            Some("mode=max,builder-id=https://ci.example/run/1"),
            &[],
            None,
        )
        .unwrap();
        assert_eq!(
            o.provenance.unwrap().builder_id.as_deref(),
            Some("https://ci.example/run/1")
        );
        let o = parse(None, &["type=provenance,mode=max"], None).unwrap();
        assert_eq!(mode(&o), Some(ProvenanceMode::Max));
        let o = parse(None, &["type=provenance,disabled=true"], None).unwrap();
        assert_eq!(o.provenance, None);
        let o = parse(None, &["type=sbom,disabled=true"], None).unwrap();
        assert_eq!(mode(&o), Some(ProvenanceMode::Min));
    }

    #[test]
    fn sbom_is_off_by_default_and_the_last_request_wins() {
        let sbom = |f: Option<&str>, attest: &[&str]| {
            let a: Vec<String> = attest.iter().map(|s| s.to_string()).collect();
            AttestOptions::from_flags(None, f, &a, None).unwrap().sbom
        };
        assert!(!sbom(None, &[]));
        assert!(sbom(Some("true"), &[]));
        assert!(sbom(Some("1"), &[]));
        assert!(!sbom(Some("false"), &[]));
        assert!(sbom(None, &["type=sbom"]));
        assert!(!sbom(None, &["type=sbom,disabled=true"]));
        assert!(!sbom(Some("true"), &["type=sbom,disabled=true"]));
        assert!(sbom(Some("false"), &["type=sbom"]));
        // The SBOM leaves the default provenance as it is.
        let o = AttestOptions::from_flags(None, Some("true"), &[], None).unwrap();
        assert_eq!(o.provenance, Some(ProvenanceOptions::default()));
        assert!(!o.explicit);
    }

    #[test]
    fn refuses_what_it_does_not_implement_by_name() {
        for (v, key) in [
            ("mode=max,filename=p.json", "filename"),
            ("version=v0.2", "version=v0.2"),
            ("mode=max,reproducible=true", "reproducible"),
            ("inline-only=false", "inline-only=false"),
        ] {
            let e = parse(Some(v), &[], None).unwrap_err().to_string();
            assert!(e.contains(key) && e.contains("not supported"), "{v}: {e}");
        }
        assert!(matches!(
            parse(Some("mode=medium"), &[], None),
            Err(OptionsError::Value { .. })
        ));
        for (flag, attest, key) in [
            (
                None,
                "type=sbom,generator=docker/buildkit-syft-scanner",
                "generator=docker/buildkit-syft-scanner",
            ),
            (None, "type=sbom,scan-stage=true", "scan-stage"),
            (None, "type=sbom,foo=bar", "foo"),
            (Some("generator=x/y"), "", "generator=x/y"),
        ] {
            let a: Vec<String> = [attest]
                .iter()
                .filter(|s| !s.is_empty())
                .map(|s| s.to_string())
                .collect();
            let e = AttestOptions::from_flags(None, flag, &a, None)
                .unwrap_err()
                .to_string();
            assert!(
                e.contains(key) && e.contains("not supported"),
                "{attest}: {e}"
            );
        }
        // A disabled request is not read further, as in BuildKit.
        assert!(parse(None, &["type=sbom,disabled=true,generator=x"], None).is_ok());
        assert!(matches!(
            parse(None, &["type=vex"], None),
            Err(OptionsError::UnknownType { .. })
        ));
        assert!(matches!(
            parse(None, &["mode=max"], None),
            Err(OptionsError::NoType { .. })
        ));
        // The --attest value wins, whatever the order on the command line.
        let o = parse(Some("mode=max"), &["type=provenance,mode=min"], None).unwrap();
        assert_eq!(mode(&o), Some(ProvenanceMode::Min));
        let o = parse(Some("false"), &["type=provenance,disabled=true"], None).unwrap();
        assert_eq!(o.provenance, None);
        assert!(matches!(
            parse(Some("mode"), &[], None),
            Err(OptionsError::NotKeyValue { .. })
        ));
    }
}
