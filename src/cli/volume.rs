//! `kiln volume create|ls|rm|inspect`: the store's volumes (`volumes/<name>/_data`),
//! as docker's local driver keeps them.

use std::io::Write;

use anyhow::{bail, Context};

use crate::container::volume;

use super::Cli;

/// Arguments of `kiln volume`.
#[derive(Debug, clap::Args)]
pub struct VolumeArgs {
    #[command(subcommand)]
    command: VolumeCommand,
}

#[derive(Debug, clap::Subcommand)]
enum VolumeCommand {
    /// Create a volume (a fresh 64-hex-digit name when none is given).
    Create {
        /// `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
        name: Option<String>,
    },
    /// List volumes.
    #[command(alias = "list")]
    Ls {
        /// Only names.
        #[arg(short, long)]
        quiet: bool,
    },
    /// Remove volumes.
    #[command(alias = "remove")]
    Rm {
        /// Remove a volume even if a stored container mounts it.
        #[arg(short, long)]
        force: bool,
        /// The volumes.
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Show volumes as JSON.
    Inspect {
        /// The volumes.
        #[arg(required = true)]
        names: Vec<String>,
    },
}

/// Runs `kiln volume`.
pub fn run(cli: &Cli, args: &VolumeArgs) -> anyhow::Result<()> {
    let store = cli.open_store()?;
    let mut out = std::io::stdout().lock();
    match &args.command {
        VolumeCommand::Create { name } => {
            let name = match name {
                Some(n) => n.clone(),
                None => hex::encode(rand_bytes()?),
            };
            volume::ensure(&store, &name, false)
                .with_context(|| format!("creating volume {name}"))?;
            writeln!(out, "{name}")?;
        }
        VolumeCommand::Ls { quiet } => {
            let all = volume::list(&store)?;
            if !quiet {
                writeln!(out, "{:<15} VOLUME NAME", "DRIVER")?;
            }
            for v in all {
                if *quiet {
                    writeln!(out, "{}", v.name)?;
                } else {
                    writeln!(out, "{:<15} {}", "local", v.name)?;
                }
            }
        }
        VolumeCommand::Rm { force, names } => {
            let mut failed = false;
            for n in names {
                match volume::remove(&store, n, *force) {
                    Ok(()) => writeln!(out, "{n}")?,
                    Err(e) => {
                        eprintln!("Error response from kiln: {e}");
                        failed = true;
                    }
                }
            }
            if failed {
                bail!("some volumes were not removed");
            }
        }
        VolumeCommand::Inspect { names } => {
            let mut shown = Vec::new();
            for n in names {
                let v = volume::get(&store, n)?;
                shown.push(serde_json::json!({
                    "CreatedAt": v.created_at,
                    "Driver": "local",
                    "Labels": if v.anonymous {
                        serde_json::json!({"com.docker.volume.anonymous": ""})
                    } else {
                        serde_json::Value::Null
                    },
                    "Mountpoint": v.mountpoint,
                    "Name": v.name,
                    "Options": null,
                    "Scope": "local",
                }));
            }
            serde_json::to_writer_pretty(&mut out, &shown)?;
            writeln!(out)?;
        }
    }
    Ok(())
}

fn rand_bytes() -> anyhow::Result<[u8; 32]> {
    let mut bytes = [0u8; 32];
    std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom")?, &mut bytes)
        .context("reading /dev/urandom")?;
    Ok(bytes)
}
