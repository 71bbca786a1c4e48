//! Build logs: which key every step of a build had and whether it hit, kept
//! under `cache/builds/` so `kiln cache explain` can compare the latest
//! build with earlier ones, and `--cache-to mode=min` knows the final
//! image's steps.
//!
//! Invariants: logs are written atomically and named by a nanosecond time
//! (newest sorts last); at most [`KEEP_LOGS`] are kept; a build that hit
//! every step and whose log equals the newest one writes nothing (a no-op
//! rebuild stays cheap).

use std::fs;
use std::io;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::{CacheError, StepCache, StepKey};

/// How many build logs are kept.
pub const KEEP_LOGS: usize = 16;

/// One step of a build.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoggedStep {
    /// Stage index.
    pub stage: usize,
    /// Stage name, if any.
    pub stage_name: Option<String>,
    /// Step index in the stage (0 is FROM).
    pub index: usize,
    /// The instruction as progress shows it.
    pub display: String,
    /// Its key.
    pub key: StepKey,
    /// Served from the cache.
    pub hit: bool,
}

/// One build.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildLog {
    /// The context (absolute).
    pub context: PathBuf,
    /// The Dockerfile's name or path.
    pub dockerfile: String,
    /// The target stage and the stages it is built from, target first.
    pub target_chain: Vec<usize>,
    /// Every keyed step, by stage then index.
    pub steps: Vec<LoggedStep>,
    /// The image ID (config digest) the build made; `None` when it failed.
    #[serde(default)]
    pub image: Option<crate::oci::Digest>,
}

impl BuildLog {
    /// True when `other` is a build of the same Dockerfile in the same context.
    pub fn same_build(&self, other: &BuildLog) -> bool {
        self.context == other.context && self.dockerfile == other.dockerfile
    }

    /// The keys of the steps whose layers make up the final image.
    pub fn final_image_keys(&self) -> Vec<StepKey> {
        self.steps
            .iter()
            .filter(|s| self.target_chain.contains(&s.stage))
            .map(|s| s.key)
            .collect()
    }
}

impl StepCache {
    fn logs_dir(&self) -> PathBuf {
        self.dir.with_file_name("builds")
    }

    /// Every stored build log, oldest first.
    pub fn logs(&self) -> Result<Vec<BuildLog>, CacheError> {
        let dir = self.logs_dir();
        let mut names: Vec<PathBuf> = match fs::read_dir(&dir) {
            Ok(rd) => rd
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .collect(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(vec![]),
            Err(source) => return Err(CacheError::List { path: dir, source }),
        };
        names.sort();
        let mut out = Vec::with_capacity(names.len());
        for path in names {
            let bytes = fs::read(&path).map_err(|source| CacheError::Read {
                path: path.clone(),
                source,
            })?;
            let log = serde_json::from_slice(&bytes)
                .map_err(|source| CacheError::Parse { path, source })?;
            out.push(log);
        }
        Ok(out)
    }

    /// Stores `log` as the newest build (unless it equals the newest) and
    /// drops logs beyond [`KEEP_LOGS`].
    pub fn write_log(&self, log: &BuildLog) -> Result<(), CacheError> {
        let dir = self.logs_dir();
        fs::create_dir_all(&dir).map_err(|source| CacheError::CreateDir {
            path: dir.clone(),
            source,
        })?;
        let mut names: Vec<PathBuf> = fs::read_dir(&dir)
            .map_err(|source| CacheError::List {
                path: dir.clone(),
                source,
            })?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        names.sort();
        let bytes = serde_json::to_vec(log).map_err(|source| CacheError::Encode {
            what: "build log",
            source,
        })?;
        // Only an all-hit rebuild may skip its log: after a build with a
        // miss the newest log must be this one (explain reads it).
        let all_hit = log.steps.iter().all(|s| s.hit);
        if all_hit && names.last().and_then(|p| fs::read(p).ok()).as_deref() == Some(&bytes[..]) {
            return Ok(());
        }
        let ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let path = dir.join(format!("{ns:024}.json"));
        self.store
            .write_file_atomic(&path, &bytes)
            .map_err(|source| CacheError::Write {
                path: path.clone(),
                source,
            })?;
        names.push(path);
        let excess = names.len().saturating_sub(KEEP_LOGS);
        for old in &names[..excess] {
            // A log another build removed first is fine.
            let _ = fs::remove_file(old);
        }
        Ok(())
    }
}
