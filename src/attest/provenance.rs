//! SLSA v1 provenance (`https://slsa.dev/provenance/v1`) for a build, with
//! BuildKit 0.25's structure and field names (`testdata/attest` holds what
//! it writes): `buildDefinition` (buildType, `externalParameters.configSource`
//! and `.request` with frontend, args, locals, secrets, ssh;
//! `internalParameters.builderPlatform`, and in max mode `buildConfig`;
//! `resolvedDependencies` with `pkg:docker/…` URIs) and `runDetails`
//! (`builder.id`, `metadata` with the invocation id, times and BuildKit's
//! `buildkit_*` extensions).
//!
//! kiln has no LLB: max mode's `buildConfig` lists kiln's plan steps
//! (`steps`, each with its op as kiln's plan has it) where BuildKit writes
//! `llbDefinition` and `digestMapping`; the source map names the same step
//! ids. Invariants: reproducible by construction — the invocation id is the
//! sha256 of the build definition (the inputs) and the image made, times come only from
//! `SOURCE_DATE_EPOCH` (omitted otherwise), every map is sorted and every
//! list is in plan order or sorted.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::Serialize;
use serde_json::{json, Value};

use super::options::{ProvenanceMode, ProvenanceOptions};
use super::{sha256_map, Attestation, PREDICATE_SLSA_PROVENANCE_V1};
use crate::dockerfile::Span;
use crate::oci::{canonical_json, Digest, Platform, Reference};
use crate::plan::{Base, BuildGraph, CopySource, FilesFrom, Op, ResolvedImage, RunMount};

/// BuildKit's build type: kiln's `externalParameters` follow its
/// definitions (frontend `dockerfile.v0`, its arg names, its locals).
// COMPAT(buildkit): the same URI, so policies that match on it accept kiln's.
pub const BUILD_TYPE: &str =
    "https://github.com/moby/buildkit/blob/master/docs/attestations/slsa-definitions.md";

/// The frontend BuildKit names for Dockerfiles.
pub const FRONTEND: &str = "dockerfile.v0";

/// What the provenance of one build is made from.
#[derive(Debug, Clone)]
pub struct ProvenanceInputs<'a> {
    /// `mode=` and `builder-id=`.
    pub options: &'a ProvenanceOptions,
    /// The Dockerfile's file name (`configSource.path`).
    pub dockerfile_name: &'a str,
    /// The Dockerfile's bytes (max mode: the source map).
    pub dockerfile: &'a [u8],
    /// The frontend args as BuildKit names them (`build-arg:K`, `label:K`,
    /// `target`, `force-network-mode`, `context:NAME`, …).
    pub args: BTreeMap<String, String>,
    /// The local sources: `context`, `dockerfile`, named directory contexts.
    pub locals: Vec<String>,
    /// The plan, its base images resolved.
    pub graph: &'a BuildGraph,
    /// Each stage's FROM line, by stage index.
    pub from_spans: &'a [Span],
    /// The platform kiln ran on.
    pub builder_platform: &'a Platform,
    /// `SOURCE_DATE_EPOCH` as RFC 3339: `startedOn` and `finishedOn`.
    pub time: Option<String>,
    /// The image manifest built (part of the invocation id).
    pub image: Digest,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Predicate {
    build_definition: Value,
    run_details: Value,
}

/// The provenance attestation of a build.
pub fn provenance(inputs: &ProvenanceInputs<'_>) -> Attestation {
    let mode = inputs.options.mode;
    // COMPAT(buildkit): min mode leaves build args and labels out (they may
    // hold what the user would not publish) and says the request is
    // incomplete.
    let mut args = inputs.args.clone();
    if mode == ProvenanceMode::Min {
        args.retain(|k, _| !k.starts_with("build-arg:") && !k.starts_with("label:"));
    }
    let request_complete = args.len() == inputs.args.len();
    let mut request = json!({
        "frontend": FRONTEND,
        "args": args,
        "locals": inputs.locals.iter().map(|n| json!({"name": n})).collect::<Vec<_>>(),
    });
    let (secrets, ssh) = secrets_and_ssh(inputs.graph);
    if !secrets.is_empty() {
        request["secrets"] = Value::Array(secrets);
    }
    if !ssh.is_empty() {
        request["ssh"] = Value::Array(ssh);
    }
    let steps = Steps::of(inputs.graph);
    let mut internal = json!({"builderPlatform": inputs.builder_platform.to_specifier()});
    if mode == ProvenanceMode::Max {
        internal["buildConfig"] = json!({"steps": steps.values});
    }
    let definition = json!({
        "buildType": BUILD_TYPE,
        "externalParameters": {
            "configSource": {"path": inputs.dockerfile_name},
            "request": request,
        },
        "internalParameters": internal,
        "resolvedDependencies": resolved_dependencies(inputs.graph),
    });
    // The invocation is named by what it published: its definition and the
    // image it made. Two builds of the same inputs are the same invocation;
    // builds whose min provenance looks alike (build args are left out)
    // differ by their image. Nothing min mode hides is hashed in (a digest
    // of a low-entropy build arg could be confirmed by guessing).
    let id = canonical_json(&json!([definition, inputs.image.to_string()]))
        .map(|b| Digest::of(&b).hex())
        .unwrap_or_default();
    let mut metadata = json!({
        "invocationId": id,
        "buildkit_completeness": {
            "request": request_complete,
            "resolvedDependencies": !reads_unpinned_sources(inputs.graph),
        },
        "buildkit_metadata": {},
    });
    if let Some(t) = &inputs.time {
        metadata["startedOn"] = json!(t);
        metadata["finishedOn"] = json!(t);
    }
    if mode == ProvenanceMode::Max {
        metadata["buildkit_metadata"] = json!({"source": source_map(inputs, &steps)});
    }
    let predicate = Predicate {
        build_definition: definition,
        run_details: json!({
            "builder": {"id": inputs.options.builder_id.clone().unwrap_or_default()},
            "metadata": metadata,
        }),
    };
    Attestation {
        predicate_type: PREDICATE_SLSA_PROVENANCE_V1.into(),
        predicate: serde_json::to_value(predicate).unwrap_or(Value::Null),
    }
}

/// A base image or `--from` image as a resolved dependency.
fn dependency(img: &ResolvedImage, platform: &Platform) -> Value {
    let uri = match Reference::parse(&img.reference) {
        Ok(r) => super::docker_purl(&r, Some(platform)),
        Err(_) => img.reference.clone(),
    };
    json!({"uri": uri, "digest": sha256_map(&img.manifest.digest)})
}

/// Every image the reached stages read (bases, `COPY --from`, `RUN
/// --mount=from=`), sorted by URI then digest, duplicates removed.
fn resolved_dependencies(graph: &BuildGraph) -> Vec<Value> {
    let mut deps = BTreeMap::new();
    for stage in graph.stages.iter().filter(|s| s.reached) {
        let mut add = |img: &ResolvedImage| {
            let v = dependency(img, &stage.platform);
            deps.insert((v["uri"].to_string(), v.to_string()), v);
        };
        if let Base::Image(img) = &stage.base {
            add(img);
        }
        for step in &stage.steps {
            for from in files_from(&step.op) {
                if let FilesFrom::Image(img) = from {
                    add(img);
                }
            }
        }
    }
    deps.into_values().collect()
}

/// Where a step's op reads files from besides its own stage.
fn files_from(op: &Op) -> Vec<&FilesFrom> {
    match op {
        Op::Copy(c) => vec![&c.from],
        Op::Run(r) => r
            .mounts
            .iter()
            .filter_map(|m| match m {
                RunMount::Bind { from, .. } => Some(from),
                RunMount::Cache { from, .. } => from.as_ref(),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// Whether the build read anything not listed in `resolvedDependencies`:
/// the context, a named directory, a URL or a git repository.
fn reads_unpinned_sources(graph: &BuildGraph) -> bool {
    graph
        .stages
        .iter()
        .filter(|s| s.reached)
        .flat_map(|s| &s.steps)
        .any(|step| {
            let local = files_from(&step.op)
                .iter()
                .any(|f| matches!(f, FilesFrom::Context | FilesFrom::NamedContext(_)));
            let remote = match &step.op {
                Op::Copy(c) => c.sources.iter().any(|s| !matches!(s, CopySource::Path(_))),
                _ => false,
            };
            local || remote
        })
}

/// `request.secrets` and `request.ssh`: the ids the build's RUNs mount,
/// `optional` when not `required`, sorted by id.
fn secrets_and_ssh(graph: &BuildGraph) -> (Vec<Value>, Vec<Value>) {
    let mut secrets = BTreeMap::new();
    let mut ssh = BTreeMap::new();
    for step in graph
        .stages
        .iter()
        .filter(|s| s.reached)
        .flat_map(|s| &s.steps)
    {
        let Op::Run(r) = &step.op else { continue };
        for m in &r.mounts {
            match m {
                RunMount::Secret { id, required, .. } => {
                    let e = secrets.entry(id.clone()).or_insert(true);
                    *e &= !required;
                }
                RunMount::Ssh { id, required, .. } => {
                    let e = ssh.entry(id.clone()).or_insert(true);
                    *e &= !required;
                }
                _ => {}
            }
        }
    }
    let list = |m: BTreeMap<String, bool>| {
        m.into_iter()
            .map(|(id, optional)| {
                let mut v = json!({"id": id});
                if optional {
                    v["optional"] = json!(true);
                }
                v
            })
            .collect()
    };
    (list(secrets), list(ssh))
}

/// kiln's steps in max mode, named `step0`, `step1`… as BuildKit names its
/// LLB vertices: for each reached stage its base, then its steps.
struct Steps {
    values: Vec<Value>,
    /// (step id, its Dockerfile lines) for the source map.
    spans: Vec<(String, Lines)>,
}

/// Where a step came from in the Dockerfile.
enum Lines {
    /// A stage's base: the stage's FROM line.
    From(usize),
    /// An instruction's lines.
    Span(Span),
}

impl Steps {
    fn of(graph: &BuildGraph) -> Self {
        let mut values = Vec::new();
        let mut spans = Vec::new();
        // The id of each stage's last step: what a later stage reads.
        let mut last: BTreeMap<usize, String> = BTreeMap::new();
        for stage in graph.stages.iter().filter(|s| s.reached) {
            let id = format!("step{}", values.len());
            let (base, inputs) = match &stage.base {
                Base::Scratch => (json!({"kind": "scratch"}), vec![]),
                Base::Image(img) => (json!({"kind": "image", "image": image_ref(img)}), vec![]),
                Base::Stage(s) => (
                    json!({"kind": "stage", "stage": s.0}),
                    last.get(&s.0).cloned().into_iter().collect(),
                ),
                Base::Unresolved { reference } => (
                    json!({"kind": "unresolved", "reference": reference}),
                    vec![],
                ),
            };
            let mut v = json!({"id": id, "stage": stage.id.0, "op": {"from": base}});
            if let Some(n) = &stage.name {
                v["stageName"] = json!(n);
            }
            if !inputs.is_empty() {
                v["inputs"] = json!(inputs);
            }
            spans.push((id.clone(), Lines::From(stage.id.0)));
            values.push(v);
            let mut prev = id;
            for step in &stage.steps {
                let id = format!("step{}", values.len());
                let mut inputs = vec![prev.clone()];
                for from in files_from(&step.op) {
                    if let FilesFrom::Stage(s) = from {
                        inputs.extend(last.get(&s.0).cloned());
                    }
                }
                let mut op = serde_json::to_value(&step.op).unwrap_or(Value::Null);
                shorten_images(&mut op);
                values.push(json!({
                    "id": id,
                    "stage": stage.id.0,
                    "instruction": step.created_by,
                    "op": op,
                    "inputs": inputs,
                }));
                spans.push((id.clone(), Lines::Span(step.span)));
                prev = id;
            }
            last.insert(stage.id.0, prev);
        }
        Self { values, spans }
    }
}

/// `docker-image://REF@DIGEST`, as BuildKit's source identifiers.
fn image_ref(img: &ResolvedImage) -> String {
    image_id(&img.reference, &img.manifest.digest.to_string())
}

/// `docker-image://` + the qualified name (with its tag, if any) + `@` the
/// digest kiln resolved it to.
fn image_id(reference: &str, digest: &str) -> String {
    let name = match Reference::parse(reference) {
        Ok(r) => {
            let mut n = format!("{}/{}", r.registry, r.repository);
            if let Some(t) = &r.tag {
                n.push(':');
                n.push_str(t);
            }
            n
        }
        Err(_) => reference.to_string(),
    };
    format!("docker-image://{name}@{digest}")
}

/// Replaces each resolved image inside a serialized op (which carries the
/// image's whole config) with its `docker-image://` identifier.
fn shorten_images(v: &mut Value) {
    match v {
        Value::Object(map) => {
            let is_image = map.contains_key("reference")
                && map.contains_key("manifest")
                && map.contains_key("config");
            if is_image {
                let reference = map["reference"].as_str().unwrap_or_default();
                let digest = map["manifest"]["digest"].as_str().unwrap_or_default();
                *v = json!(image_id(reference, digest));
                return;
            }
            map.values_mut().for_each(shorten_images);
        }
        Value::Array(a) => a.iter_mut().for_each(shorten_images),
        _ => {}
    }
}

/// BuildKit's `buildkit_metadata.source`: the Dockerfile (base64) and,
/// for each step, its lines.
fn source_map(inputs: &ProvenanceInputs<'_>, steps: &Steps) -> Value {
    let mut locations = serde_json::Map::new();
    for (id, lines) in &steps.spans {
        let span = match lines {
            Lines::Span(s) => *s,
            Lines::From(stage) => match inputs.from_spans.get(*stage) {
                Some(s) => *s,
                None => continue,
            },
        };
        locations.insert(
            id.clone(),
            json!({"locations": [{"ranges": [{
                "start": {"line": span.start_line},
                "end": {"line": span.end_line},
            }]}]}),
        );
    }
    json!({
        "locations": locations,
        "infos": [{
            "filename": inputs.dockerfile_name,
            "language": "Dockerfile",
            "data": base64::engine::general_purpose::STANDARD.encode(inputs.dockerfile),
        }],
    })
}
