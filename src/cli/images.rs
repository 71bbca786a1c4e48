//! `kiln images`: the store's named images, as `docker images` shows them
//! (REPOSITORY TAG IMAGE ID CREATED SIZE), then PLATFORM: the platforms of
//! a multi-platform index (attestation manifests left out), or the config's.
//! The image ID is the config digest (the host platform's in an index), SIZE
//! the sum of its (compressed) layer blobs.

use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;

use crate::oci::{Reference, Store};

use super::Cli;

/// Arguments of `kiln images`.
#[derive(Debug, clap::Args)]
pub struct ImagesArgs {
    /// Only images of this repository (e.g. `busybox`).
    pub repository: Option<String>,
    /// Print only image IDs.
    #[arg(short, long)]
    pub quiet: bool,
    /// Do not shorten image IDs.
    #[arg(long)]
    pub no_trunc: bool,
}

/// One row of the table.
struct Row {
    repository: String,
    tag: String,
    id: String,
    created: String,
    size: String,
    platform: String,
}

/// Runs `kiln images`.
pub fn run(cli: &Cli, args: &ImagesArgs) -> anyhow::Result<()> {
    let store = cli.open_store()?;
    let want = match &args.repository {
        Some(r) => Some(Reference::parse(r)?.familiar_repository()),
        None => None,
    };
    let mut rows = Vec::new();
    for entry in store.images()? {
        let r = Reference::parse(&entry.name)?;
        if want.as_ref().is_some_and(|w| *w != r.familiar_repository()) {
            continue;
        }
        rows.push(row(&store, &r, &entry.descriptor, args.no_trunc)?);
    }
    let mut out = std::io::stdout().lock();
    if args.quiet {
        for r in rows {
            writeln!(out, "{}", r.id)?;
        }
        return Ok(());
    }
    let header = Row {
        repository: "REPOSITORY".into(),
        tag: "TAG".into(),
        id: "IMAGE ID".into(),
        created: "CREATED".into(),
        size: "SIZE".into(),
        platform: "PLATFORM".into(),
    };
    let cells = |r: &Row| {
        [
            r.repository.clone(),
            r.tag.clone(),
            r.id.clone(),
            r.created.clone(),
            r.size.clone(),
        ]
    };
    let mut widths = [0usize; 5];
    for r in std::iter::once(&header).chain(&rows) {
        for (w, c) in widths.iter_mut().zip(cells(r)) {
            *w = (*w).max(c.chars().count());
        }
    }
    for r in std::iter::once(&header).chain(&rows) {
        let mut line = String::new();
        for (w, c) in widths.iter().zip(cells(r)) {
            // Docker's tabwriter pads each column by three spaces.
            line.push_str(&format!("{c:<width$}", width = w + 3));
        }
        line.push_str(&r.platform);
        writeln!(out, "{line}")?;
    }
    Ok(())
}

fn row(
    store: &Store,
    r: &Reference,
    desc: &crate::oci::Descriptor,
    no_trunc: bool,
) -> anyhow::Result<Row> {
    let (manifest, config) =
        shown_image(store, desc).with_context(|| format!("reading image {}", r.familiar()))?;
    let id = manifest.config.digest.to_string();
    let id = if no_trunc {
        id
    } else {
        manifest.config.digest.hex()[..12].to_string()
    };
    let created = config
        .created
        .as_deref()
        .and_then(crate::builder::parse_rfc3339)
        .map_or_else(|| "N/A".to_string(), ago);
    Ok(Row {
        repository: r.familiar_repository(),
        tag: r.tag.clone().unwrap_or_else(|| "<none>".into()),
        id,
        created,
        size: human_size(manifest.layers.iter().map(|l| l.size).sum()),
        platform: platforms(store, desc).unwrap_or_else(|| {
            let v = config.variant.as_ref().map(|v| format!("/{v}"));
            format!(
                "{}/{}{}",
                config.os,
                config.architecture,
                v.unwrap_or_default()
            )
        }),
    })
}

/// The manifest and config a row describes: the host platform's, or for an
/// index built for other platforms only (`--platform linux/arm64`), its
/// first platform's.
fn shown_image(
    store: &Store,
    desc: &crate::oci::Descriptor,
) -> Result<(crate::oci::Manifest, crate::oci::ImageConfig), crate::oci::StoreError> {
    match store.load_image(desc) {
        Err(crate::oci::StoreError::NoPlatform { .. }) => {
            let bytes = store.read_blob(&desc.digest)?;
            let first = serde_json::from_slice::<crate::oci::Index>(&bytes)
                .ok()
                .and_then(|i| {
                    i.manifests
                        .into_iter()
                        .filter(|d| !d.is_attestation())
                        .find_map(|d| d.platform)
                });
            let Some(p) = first else {
                return store.load_image(desc);
            };
            let (m, _) = store.load_manifest_for(desc, &p)?;
            let config =
                serde_json::from_slice(&store.read_blob(&m.config.digest)?).map_err(|source| {
                    crate::oci::StoreError::ParseBlob {
                        what: "config",
                        digest: m.config.digest,
                        source,
                    }
                })?;
            Ok((m, config))
        }
        other => other,
    }
}

/// The platforms an index lists (attestation manifests left out), joined
/// by commas; `None` for a plain manifest.
fn platforms(store: &Store, desc: &crate::oci::Descriptor) -> Option<String> {
    use crate::oci::media_type::{DOCKER_MANIFEST_LIST, OCI_INDEX};
    if ![OCI_INDEX, DOCKER_MANIFEST_LIST].contains(&desc.media_type.as_str()) {
        return None;
    }
    let index: crate::oci::Index =
        serde_json::from_slice(&store.read_blob(&desc.digest).ok()?).ok()?;
    let listed: Vec<String> = index
        .manifests
        .iter()
        .filter(|d| !d.is_attestation())
        .filter_map(|d| d.platform.as_ref().map(crate::oci::Platform::to_specifier))
        .collect();
    Some(listed.join(","))
}

/// Docker's `units.HumanSize`: decimal units, three significant digits.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1000.0 && unit < UNITS.len() - 1 {
        v /= 1000.0;
        unit += 1;
    }
    let digits = if v >= 100.0 {
        0
    } else if v >= 10.0 {
        1
    } else {
        2
    };
    let s = format!("{v:.digits$}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    };
    format!("{s}{}", UNITS[unit])
}

/// "3 weeks ago", as docker's `units.HumanDuration` words it.
fn ago(then: i64) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let s = (now - then).max(0);
    let (m, h, d) = (s / 60, s / 3600, s / 86400);
    let words = match () {
        _ if s < 1 => "Less than a second".to_string(),
        _ if s < 60 => format!("{s} seconds"),
        _ if m == 1 => "About a minute".to_string(),
        _ if m < 60 => format!("{m} minutes"),
        _ if h == 1 => "About an hour".to_string(),
        _ if h < 48 => format!("{h} hours"),
        _ if h < 24 * 7 * 2 => format!("{d} days"),
        _ if h < 24 * 30 * 2 => format!("{} weeks", d / 7),
        _ if h < 24 * 365 * 2 => format!("{} months", d / 30),
        _ => format!("{} years", d / 365),
    };
    format!("{words} ago")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_docker() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(1000), "1kB");
        assert_eq!(human_size(4_261_000), "4.26MB");
        assert_eq!(human_size(123_456_789), "123MB");
    }
}
