//! Which platforms serve a wanted one, and which index entry is best for it: the one
//! rule the store, the registry pull and the builder's resolver all use.
//!
//! COMPAT(buildkit): BuildKit picks from an index with containerd's `platforms.Only`
//! (v1.0.0-rc.1): both sides are normalized (`arm64` without a variant is `arm64/v8`,
//! `arm` without one is `arm/v7`, `amd64/v1` is `amd64`, names lowercased, `aarch64`
//! and `x86_64` renamed), then the entries that match one of an ordered list of
//! platforms are kept and the best-ranked one wins (the first in the index on a tie):
//! - `amd64/vN`: `vN`, …, `v2`, then plain `amd64`;
//! - `arm/vN`: `vN` down to `v5`;
//! - `arm64/v8.x`: `v8.x` down to `v8`; `arm64/v9.x`: `v9.x` down to `v9`, then
//!   `v8.(x+5)` down to `v8` (an unknown arm64 variant matches nothing);
//! - anything else: itself only.
//!
//! Left out on purpose: containerd also lets `amd64` fall back to `386` and `arm64` to
//! `arm/v8`…`v5`. kiln refuses an image whose config names another architecture than
//! the build's (BuildKit only warns, `InvalidBaseImagePlatform`), so such a fallback
//! would trade "no such platform in the index" for a later refusal.

use super::spec::{Descriptor, Platform};

/// A platform as containerd's `Normalize` leaves it: (os, architecture, variant), with
/// `""` for no variant.
type Normal = (String, String, String);

fn normalize(p: &Platform) -> Normal {
    let os = match p.os.to_ascii_lowercase().as_str() {
        // containerd fills in `runtime.GOOS`; kiln runs on Linux only.
        "" => "linux".to_string(),
        "macos" => "darwin".to_string(),
        other => other.to_string(),
    };
    let arch = p.architecture.to_ascii_lowercase();
    let variant = p.variant.as_deref().unwrap_or("").to_ascii_lowercase();
    let (arch, variant) = match (arch.as_str(), variant.as_str()) {
        ("i386", _) => ("386".into(), String::new()),
        ("x86_64" | "x86-64" | "amd64", "v1") => ("amd64".into(), String::new()),
        ("x86_64" | "x86-64" | "amd64", _) => ("amd64".into(), variant),
        ("aarch64" | "arm64", "8" | "v8" | "v8.0") => ("arm64".into(), String::new()),
        ("aarch64" | "arm64", "9" | "9.0" | "v9.0") => ("arm64".into(), "v9".into()),
        ("aarch64" | "arm64", _) => ("arm64".into(), variant),
        ("armhf", _) => ("arm".into(), "v7".into()),
        ("armel", _) => ("arm".into(), "v6".into()),
        ("arm", "" | "7") => ("arm".into(), "v7".into()),
        ("arm", "5" | "6" | "8") => ("arm".into(), format!("v{variant}")),
        _ => (arch, variant),
    };
    (os, arch, variant)
}

/// containerd's `platformVector` for a normalized platform, same architecture only
/// (see the module doc), best first, each entry normalized.
fn preference(wanted: &Normal) -> Vec<Normal> {
    let (os, arch, variant) = wanted;
    let with = |v: String| (os.clone(), arch.clone(), v);
    let level = |v: &str| v.strip_prefix('v').and_then(|n| n.parse::<u32>().ok());
    match arch.as_str() {
        "amd64" => match level(variant) {
            // v1 is normalized to no variant.
            Some(n) if n > 1 => (2..=n)
                .rev()
                .map(|l| with(format!("v{l}")))
                .chain([with(String::new())])
                .collect(),
            _ => vec![wanted.clone()],
        },
        "arm" => match level(variant) {
            Some(n) if n > 5 => (5..=n).rev().map(|l| with(format!("v{l}"))).collect(),
            _ => vec![wanted.clone()],
        },
        "arm64" => arm64_versions(variant)
            .into_iter()
            .map(|v| with(if v == "v8" { String::new() } else { v }))
            .collect(),
        _ => vec![wanted.clone()],
    }
}

/// The arm64 variants a (normalized) variant runs, best first: containerd's
/// `arm64variantToVersion` table written as its rule.
fn arm64_versions(variant: &str) -> Vec<String> {
    let variant = if variant.is_empty() { "v8" } else { variant };
    let parsed = variant
        .strip_prefix('v')
        .and_then(|v| match v.split_once('.') {
            Some((major, minor)) => Some((major.parse::<u32>().ok()?, minor.parse::<u32>().ok()?)),
            None => Some((v.parse::<u32>().ok()?, 0)),
        });
    let chain: Vec<(u32, u32)> = match parsed {
        Some((8, minor)) if minor <= 9 => vec![(8, minor)],
        // Armv9.x implements Armv8.(x+5), the table stopping at v8.9.
        Some((9, minor)) if minor <= 7 => vec![(9, minor), (8, (minor + 5).min(9))],
        _ => Vec::new(),
    };
    chain
        .into_iter()
        .flat_map(|(major, top)| {
            (0..=top).rev().map(move |minor| match minor {
                0 => format!("v{major}"),
                _ => format!("v{major}.{minor}"),
            })
        })
        .collect()
}

/// The platforms that serve one wanted platform, in order of preference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformMatcher {
    order: Vec<Normal>,
}

impl PlatformMatcher {
    /// containerd's `platforms.Only(wanted)`, less its cross-architecture fallbacks.
    pub fn only(wanted: &Platform) -> Self {
        Self {
            order: preference(&normalize(wanted)),
        }
    }

    /// How good `candidate` is: 0 for the wanted platform itself, higher for the
    /// older variants it also runs; `None` when it does not serve it.
    pub fn rank(&self, candidate: &Platform) -> Option<usize> {
        let c = normalize(candidate);
        self.order.iter().position(|p| *p == c)
    }

    /// Whether `candidate` serves the wanted platform.
    pub fn matches(&self, candidate: &Platform) -> bool {
        self.rank(candidate).is_some()
    }

    /// The best of `entries` (index entries) by their platform; entries without one
    /// are skipped, the first in the index wins a tie (containerd's stable sort).
    pub fn select<'a>(
        &self,
        entries: impl IntoIterator<Item = &'a Descriptor>,
    ) -> Option<&'a Descriptor> {
        entries
            .into_iter()
            .filter_map(|d| Some((self.rank(d.platform.as_ref()?)?, d)))
            .min_by_key(|(rank, _)| *rank)
            .map(|(_, d)| d)
    }
}

/// Whether an image whose manifest or config names `candidate` may serve `wanted`:
/// [`PlatformMatcher::only`]'s rule, and any variant of the same OS and architecture
/// when `wanted` names none (a config is no index entry: BuildKit refuses none, and
/// kiln refuses only what cannot be the wanted platform).
pub fn platform_matches(candidate: &Platform, wanted: &Platform) -> bool {
    if PlatformMatcher::only(wanted).matches(candidate) {
        return true;
    }
    let (c, w) = (normalize(candidate), normalize(wanted));
    wanted.variant.is_none() && c.0 == w.0 && c.1 == w.1
}

/// Why a platform specifier (`--platform`, `FROM --platform=`) was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlatformParseError {
    /// Not `os/arch[/variant]`.
    #[error("invalid platform {0:?}: expected os/arch[/variant], e.g. linux/arm64")]
    Shape(String),
    /// Another OS than Linux: kiln's RUN sandbox is Linux's.
    #[error("platform {0:?}: kiln builds linux images only")]
    Os(String),
}

/// Parses `os/arch[/variant]` as containerd's `platforms.Parse` reads it:
/// lowercased, its architecture aliases renamed (`x86_64` → `amd64`,
/// `aarch64` → `arm64`), the variant kept as written (matching normalizes
/// it: `arm64` ≡ `arm64/v8`). Only `linux` is accepted.
pub fn parse_platform(spec: &str) -> Result<Platform, PlatformParseError> {
    let shape = || PlatformParseError::Shape(spec.to_string());
    let lower = spec.trim().to_ascii_lowercase();
    let parts: Vec<&str> = lower.split('/').collect();
    if !(2..=3).contains(&parts.len()) || parts.iter().any(|p| p.is_empty()) {
        return Err(shape());
    }
    if parts[0] != "linux" {
        return Err(PlatformParseError::Os(spec.to_string()));
    }
    let architecture = match parts[1] {
        "x86_64" | "x86-64" => "amd64",
        "aarch64" => "arm64",
        "i386" => "386",
        a => a,
    };
    Ok(Platform {
        os: parts[0].to_string(),
        architecture: architecture.to_string(),
        variant: parts.get(2).map(|v| v.to_string()),
        os_version: None,
    })
}

/// `spec` for a directory or file name: `linux/arm64/v8` → `linux_arm64_v8`
/// (buildx's subdirectory per platform of a local or tar output).
pub fn platform_dir_name(p: &Platform) -> String {
    p.to_specifier().replace('/', "_")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::Digest;

    fn p(spec: &str) -> Platform {
        let mut parts = spec.split('/');
        Platform {
            os: parts.next().unwrap_or_default().into(),
            architecture: parts.next().unwrap_or_default().into(),
            variant: parts.next().map(str::to_string),
            os_version: None,
        }
    }

    fn index(specs: &[&str]) -> Vec<Descriptor> {
        specs
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let mut d = Descriptor::new(
                    crate::oci::spec::media_type::OCI_MANIFEST.to_string(),
                    Digest::of(format!("{i}").as_bytes()),
                    1,
                );
                d.platform = Some(p(s));
                d
            })
            .collect()
    }

    /// The platform of the entry `wanted` picks from `specs`.
    fn pick(wanted: &str, specs: &[&str]) -> Option<String> {
        let idx = index(specs);
        let d = PlatformMatcher::only(&p(wanted)).select(&idx)?;
        d.platform.as_ref().map(Platform::to_specifier)
    }

    #[test]
    fn parses_specifiers_as_containerd() {
        let arm = parse_platform("linux/aarch64").unwrap();
        assert_eq!(arm.to_specifier(), "linux/arm64");
        assert_eq!(
            parse_platform("Linux/ARM/v7").unwrap().to_specifier(),
            "linux/arm/v7"
        );
        assert!(matches!(
            parse_platform("linux"),
            Err(PlatformParseError::Shape(_))
        ));
        assert!(matches!(
            parse_platform("linux//v7"),
            Err(PlatformParseError::Shape(_))
        ));
        assert!(matches!(
            parse_platform("windows/amd64"),
            Err(PlatformParseError::Os(_))
        ));
        assert_eq!(platform_dir_name(&p("linux/arm/v7")), "linux_arm_v7");
    }

    #[test]
    fn platforms_match_with_default_variants() {
        assert!(platform_matches(&p("linux/arm64"), &p("linux/arm64/v8")));
        assert!(platform_matches(&p("linux/arm64/v8"), &p("linux/arm64")));
        // arm/v7 also runs v6 (containerd's rule; kiln refused it before).
        assert!(platform_matches(&p("linux/arm/v6"), &p("linux/arm/v7")));
        assert!(!platform_matches(&p("linux/arm/v7"), &p("linux/arm/v6")));
        assert!(platform_matches(&p("linux/arm"), &p("linux/arm/v7")));
        assert!(!platform_matches(&p("linux/amd64"), &p("linux/arm64")));
        // A config naming a level of the wanted architecture that names none.
        assert!(platform_matches(&p("linux/amd64/v3"), &p("linux/amd64")));
        assert!(!platform_matches(
            &p("linux/arm64/v8.2"),
            &p("linux/arm64/v8")
        ));
        assert!(!platform_matches(&p("linux/386"), &p("linux/amd64")));
    }

    #[test]
    fn normalizes_as_containerd() {
        assert_eq!(
            normalize(&p("linux/aarch64/v8")),
            normalize(&p("linux/arm64"))
        );
        assert_eq!(
            normalize(&p("Linux/x86_64/v1")),
            normalize(&p("linux/amd64"))
        );
        assert_eq!(normalize(&p("linux/arm")), normalize(&p("linux/arm/v7")));
        assert_eq!(normalize(&p("linux/armhf")), normalize(&p("linux/arm/7")));
        assert_eq!(
            normalize(&p("linux/arm64/9.0")),
            normalize(&p("linux/arm64/v9"))
        );
        assert_eq!(normalize(&p("/amd64")), normalize(&p("linux/amd64")));
    }

    #[test]
    fn arm64_prefers_v8_or_no_variant_and_refuses_newer() {
        let idx = [
            "linux/amd64",
            "linux/arm64/v8.2",
            "linux/arm/v7",
            "linux/arm64",
        ];
        assert_eq!(pick("linux/arm64/v8", &idx).as_deref(), Some("linux/arm64"));
        assert_eq!(
            pick("linux/arm64", &["linux/arm64/v8.2", "linux/arm64/v8"]).as_deref(),
            Some("linux/arm64/v8")
        );
        // A v8.0 host cannot run v8.2 code, nor (kiln's subset) fall back to arm.
        assert_eq!(
            pick("linux/arm64", &["linux/arm64/v8.2", "linux/arm/v7"]),
            None
        );
        // A v8.2 host takes the newest it can run.
        assert_eq!(
            pick(
                "linux/arm64/v8.2",
                &["linux/arm64", "linux/arm64/v8.1", "linux/arm64/v8.3"]
            )
            .as_deref(),
            Some("linux/arm64/v8.1")
        );
        // v9.1 runs v9.1, v9, then v8.6 … v8.
        assert_eq!(
            pick(
                "linux/arm64/v9.1",
                &["linux/arm64", "linux/arm64/v8.6", "linux/arm64/v8.7"]
            )
            .as_deref(),
            Some("linux/arm64/v8.6")
        );
        assert_eq!(pick("linux/arm64/v7", &["linux/arm64"]), None);
    }

    #[test]
    fn arm_prefers_its_variant_then_older_ones() {
        let idx = [
            "linux/arm/v5",
            "linux/arm/v6",
            "linux/arm64",
            "linux/arm/v8",
        ];
        assert_eq!(pick("linux/arm/v7", &idx).as_deref(), Some("linux/arm/v6"));
        assert_eq!(pick("linux/arm", &idx).as_deref(), Some("linux/arm/v6"));
        assert_eq!(
            pick("linux/arm", &["linux/arm/v6", "linux/arm"]).as_deref(),
            Some("linux/arm")
        );
        assert_eq!(
            pick("linux/arm/v5", &["linux/arm/v6", "linux/arm/v7"]),
            None
        );
    }

    #[test]
    fn amd64_levels_fall_back_to_plain_amd64() {
        let idx = [
            "linux/amd64/v2",
            "linux/amd64",
            "linux/amd64/v4",
            "linux/386",
        ];
        // Plain amd64 takes only plain amd64 (v1); never a higher level.
        assert_eq!(pick("linux/amd64", &idx).as_deref(), Some("linux/amd64"));
        assert_eq!(pick("linux/amd64", &["linux/amd64/v2", "linux/386"]), None);
        assert_eq!(
            pick("linux/amd64/v3", &idx).as_deref(),
            Some("linux/amd64/v2")
        );
        assert_eq!(
            pick("linux/amd64/v4", &idx).as_deref(),
            Some("linux/amd64/v4")
        );
        assert_eq!(
            pick("linux/amd64/v3", &["linux/amd64/v1"]).as_deref(),
            Some("linux/amd64/v1")
        );
    }

    #[test]
    fn ties_go_to_the_first_entry_and_other_oses_never_match() {
        let idx = index(&["windows/amd64", "linux/amd64", "linux/x86_64"]);
        let d = PlatformMatcher::only(&p("linux/amd64"))
            .select(&idx)
            .unwrap();
        assert_eq!(d.digest, idx[1].digest);
        let mut no_platform = idx[1].clone();
        no_platform.platform = None;
        assert!(PlatformMatcher::only(&p("linux/amd64"))
            .select([&no_platform])
            .is_none());
        assert!(!PlatformMatcher::only(&p("linux/riscv64")).matches(&p("linux/amd64")));
        assert!(PlatformMatcher::only(&p("linux/riscv64")).matches(&p("linux/riscv64")));
    }
}
