//! `kiln inspect REF…`: prints a JSON array with, per image, its ID (config
//! digest), names, manifest descriptor, manifest and config. For an image index
//! (a multi-platform image, or one with attestations) it also prints the index
//! itself (every platform's manifest and the attestation manifests, as `docker
//! buildx imagetools inspect --raw` shows them), and the manifest and config are
//! those of `--platform` (the host's by default, chosen as a build would).
//! Per stored container (a name, id or id prefix of one, looked up first as docker
//! does, or with `--type container`), docker's main fields: Id, Name, Created, Path,
//! Args, State, Image, Config, LogPath, GraphDriver.

use std::io::Write;

use anyhow::Context;
use serde_json::json;

use super::Cli;

/// Arguments of `kiln inspect`.
#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// Images to inspect: names, digests or image IDs.
    #[arg(required = true, value_name = "REF")]
    pub references: Vec<String>,
    /// The platform whose manifest and config to show when an image is an
    /// index (`linux/arm64`); the host's by default.
    #[arg(long, value_name = "PLATFORM")]
    pub platform: Option<String>,
    /// Only `container`s or only `image`s [default: a container by that name or id
    /// first, else an image].
    #[arg(long = "type", value_name = "TYPE", value_parser = ["container", "image"])]
    pub kind: Option<String>,
}

/// A container's JSON, with docker's names for its fields.
fn container_json(c: &crate::container::Container) -> serde_json::Value {
    use crate::container::Status;
    use crate::oci::time::rfc3339;
    let s = c.observed();
    let spec = &c.config.spec;
    let time = |t: Option<i64>| t.map_or("0001-01-01T00:00:00Z".to_string(), |t| rfc3339(t, 0));
    let status = match s.status {
        Status::Created => "created",
        Status::Running => "running",
        Status::Exited => "exited",
    };
    json!({
        "Id": c.config.id,
        "Name": format!("/{}", c.config.name),
        "Created": rfc3339(c.config.created, 0),
        "Path": spec.argv.first(),
        "Args": spec.argv.get(1..).unwrap_or_default(),
        "State": {
            "Status": status,
            "Running": s.status == Status::Running,
            "Pid": s.init.map_or(0, |p| p.pid),
            "ExitCode": s.exit_code.unwrap_or(0),
            "Error": s.error.unwrap_or_default(),
            "StartedAt": time(s.started_at),
            "FinishedAt": time(s.finished_at),
        },
        "Image": c.config.image_digest,
        "Config": {
            "Image": c.config.image,
            "Hostname": spec.hostname,
            "Cmd": spec.argv,
            "Env": spec.env,
            "WorkingDir": spec.cwd,
            "User": spec.user,
            "StopSignal": c.config.stop_signal,
            "StopTimeout": c.config.stop_timeout,
        },
        "HostConfig": {
            "AutoRemove": c.config.auto_remove,
            "Privileged": spec.privileged,
            "ReadonlyRootfs": spec.read_only_root,
        },
        "LogPath": crate::container::logfile::files(&c.dir, &c.config.id).last(),
        "GraphDriver": {
            "Name": "overlay",
            "Data": {
                "UpperDir": spec.upper_dir,
                "LowerDir": spec.lower_dirs,
            },
        },
    })
}

/// Runs `kiln inspect`.
pub fn run(cli: &Cli, args: &InspectArgs) -> anyhow::Result<()> {
    let store = cli.open_store()?;
    let names = store.images()?;
    let platform = match &args.platform {
        Some(p) => crate::oci::parse_platform(p).with_context(|| format!("--platform {p}"))?,
        None => crate::oci::Platform::host(),
    };
    let mut all = Vec::new();
    for r in &args.references {
        if args.kind.as_deref() != Some("image") {
            match crate::container::find(&store, r) {
                Ok(c) => {
                    all.push(container_json(&c));
                    continue;
                }
                Err(crate::container::StoredError::NotFound(_))
                    if args.kind.as_deref() != Some("container") => {}
                Err(e) => return Err(anyhow::Error::new(e).context(format!("inspecting {r}"))),
            }
        }
        let desc = store
            .resolve(r)
            .with_context(|| format!("inspecting {r}"))?;
        let (manifest, manifest_desc) =
            store.load_manifest_for(&desc, &platform).with_context(|| {
                format!(
                    "reading image {} for {}",
                    desc.digest,
                    platform.to_specifier()
                )
            })?;
        let config: crate::oci::ImageConfig = serde_json::from_slice(
            &store
                .read_blob(&manifest.config.digest)
                .with_context(|| format!("reading config {}", manifest.config.digest))?,
        )
        .with_context(|| format!("parsing config {}", manifest.config.digest))?;
        let index = if manifest_desc.digest == desc.digest {
            serde_json::Value::Null
        } else {
            serde_json::from_slice(&store.read_blob(&desc.digest)?)
                .with_context(|| format!("parsing index {}", desc.digest))?
        };
        let tags: Vec<&str> = names
            .iter()
            .filter(|e| e.descriptor.digest == desc.digest)
            .map(|e| e.name.as_str())
            .collect();
        all.push(json!({
            "Id": manifest.config.digest,
            "RepoTags": tags,
            "Descriptor": desc,
            "Index": index,
            "ManifestDescriptor": manifest_desc,
            "Manifest": manifest,
            "Config": config,
        }));
    }
    // Serialize first: an io error inside serde_json's error would hide a
    // closed stdout from the broken-pipe check.
    let mut bytes = serde_json::to_vec_pretty(&all)?;
    bytes.push(b'\n');
    std::io::stdout().lock().write_all(&bytes)?;
    Ok(())
}
