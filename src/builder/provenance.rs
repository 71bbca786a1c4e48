//! The provenance of one build: the build's options put in BuildKit's
//! words (its frontend args and locals) for [`crate::attest::provenance`].

use std::collections::BTreeMap;

use super::contexts::ContextSource;
use super::BuildOptions;
use crate::attest::provenance::{provenance, ProvenanceInputs};
use crate::attest::{Attestation, ProvenanceOptions};
use crate::dockerfile::Span;
use crate::oci::{Digest, Platform};
use crate::plan::{BuildGraph, NetworkMode};

/// The provenance attestation of the build `opts` planned as `graph`.
pub fn of_build(
    opts: &BuildOptions,
    options: &ProvenanceOptions,
    graph: &BuildGraph,
    from_spans: &[Span],
    image: Digest,
) -> Attestation {
    let (args, locals) = request(opts);
    // COMPAT(buildkit): the name of the Dockerfile, not its path (buildx
    // sends the directory as the `dockerfile` local and the name apart).
    let name = opts
        .dockerfile_path
        .as_deref()
        .and_then(|p| p.file_name())
        .map_or("Dockerfile".into(), |n| n.to_string_lossy().into_owned());
    let host = Platform::host();
    provenance(&ProvenanceInputs {
        options,
        dockerfile_name: &name,
        dockerfile: &opts.dockerfile,
        args,
        locals,
        graph,
        from_spans,
        builder_platform: &host,
        time: opts.source_date_epoch.map(|e| super::image::rfc3339(e, 0)),
        image,
    })
}

/// BuildKit's frontend args and local names for the build's flags: as
/// buildx sends them, minus what BuildKit's provenance leaves out (host
/// specific values, local directories' paths, `attest:` args).
fn request(opts: &BuildOptions) -> (BTreeMap<String, String>, Vec<String>) {
    let mut args = BTreeMap::new();
    for (k, v) in &opts.plan.build_args {
        args.insert(format!("build-arg:{k}"), v.clone());
    }
    for (k, v) in &opts.plan.labels {
        args.insert(format!("label:{k}"), v.clone());
    }
    if let Some(t) = &opts.plan.target {
        args.insert("target".into(), t.clone());
    }
    match opts.plan.network {
        NetworkMode::Default => {}
        NetworkMode::None => {
            args.insert("force-network-mode".into(), "none".into());
        }
        NetworkMode::Host => {
            args.insert("force-network-mode".into(), "host".into());
        }
    }
    // COMPAT(buildkit): buildx sends `no-cache` empty for --no-cache, else
    // the --no-cache-filter stages.
    if opts.cache.no_cache {
        args.insert("no-cache".into(), String::new());
    } else if !opts.cache.no_cache_filter.is_empty() {
        args.insert("no-cache".into(), opts.cache.no_cache_filter.join(","));
    }
    if !opts.sandbox.extra_hosts.is_empty() {
        let hosts: Vec<String> = opts
            .sandbox
            .extra_hosts
            .iter()
            .map(|h| format!("{}={}", h.host, h.ip))
            .collect();
        args.insert("add-hosts".into(), hosts.join(","));
    }
    let mut locals = vec!["context".to_string(), "dockerfile".to_string()];
    for (name, source) in &opts.contexts {
        let value = match source {
            ContextSource::Dir(_) => {
                locals.push(name.clone());
                continue;
            }
            ContextSource::Image(r) => format!("docker-image://{r}"),
            ContextSource::OciLayout { dir, tag, digest } => {
                let mut s = format!("oci-layout://{}:{tag}", dir.display());
                if let Some(d) = digest {
                    s.push_str(&format!("@{d}"));
                }
                s
            }
        };
        args.insert(format!("context:{name}"), value);
    }
    locals.sort();
    (args, locals)
}
