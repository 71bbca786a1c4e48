//! The step cache inside one build: lookup before a step runs, a record
//! after it ran, and the build log `kiln cache explain` reads.
//!
//! Invariants: `--no-cache` and `--no-cache-filter` only skip lookups, every
//! step that ran still writes its record (so the next build can hit); a
//! record whose blob is gone is a miss ([`StepCache::get`]); a hit's history
//! time is the record's creation time, so a rebuild that hits every step
//! gives the same config and image ID (with `SOURCE_DATE_EPOCH`, every time
//! is that epoch instead); the context's stat cache is saved once, at the end.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::cache::{step_key, BuildLog, InputListing, LoggedStep, OpKind, StepKey};
use crate::cache::{CacheError, CacheRecord, ContextHasher, StepCache};
use crate::dockerfile::ignore::IgnorePatterns;
use crate::layer::{Compression, PackOptions};
use crate::oci::{LayerBlob, Platform, Store};
use crate::plan::{BuildGraph, Stage};

use super::contexts::LocalContext;
use super::error::StepError;
use super::image::rfc3339;
use super::source::Source;
use super::stepkey::KeyEnv;

/// `kiln build`'s cache flags.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheOptions {
    /// `--no-cache`: look nothing up (records are still written).
    pub no_cache: bool,
    /// `--no-cache-filter`: stages (by name or index) whose steps are not looked up.
    pub no_cache_filter: Vec<String>,
    /// `--debug-cache`: store each key's pre-image for `kiln cache explain`.
    pub debug_cache: bool,
}

/// The cache state of one build.
pub struct CacheSession {
    steps: StepCache,
    hasher: ContextHasher,
    ignore: Option<IgnorePatterns>,
    opts: CacheOptions,
    epoch: Option<i64>,
    compression: Compression,
    log: Mutex<Vec<LoggedStep>>,
    position: PositionBase,
    named: BTreeMap<String, LocalContext>,
}

/// What identifies "the same step" across builds, for explain.
#[derive(Clone)]
struct PositionBase {
    context: PathBuf,
    dockerfile: String,
}

impl CacheSession {
    /// Opens the step cache and the context's stat cache.
    pub fn open(
        store: &Store,
        context: &std::path::Path,
        dockerfile: &str,
        ignore: Option<IgnorePatterns>,
        opts: CacheOptions,
        pack: &PackOptions,
    ) -> Result<Self, CacheError> {
        let hasher = ContextHasher::with_store(store.clone(), context)?;
        Ok(Self {
            steps: StepCache::with_store(store.clone())?,
            position: PositionBase {
                context: hasher.root().to_path_buf(),
                dockerfile: dockerfile.to_string(),
            },
            hasher,
            ignore,
            opts,
            epoch: pack.source_date_epoch,
            compression: pack.compression,
            log: Mutex::new(Vec::new()),
            named: BTreeMap::new(),
        })
    }

    /// With the `--build-context` directories `named` (their stat caches
    /// are saved with the context's).
    pub fn with_named(mut self, named: BTreeMap<String, LocalContext>) -> Self {
        self.named = named;
        self
    }

    /// What COPY reads from the directory context `name`.
    pub fn named_source(&self, name: &str) -> Result<&Source, StepError> {
        match self.named.get(name) {
            Some(c) => Ok(&c.source),
            None => Err(StepError::NoContext { name: name.into() }),
        }
    }

    /// The inputs key computation reads.
    pub fn key_env<'a>(&'a self, context: &'a Source) -> KeyEnv<'a> {
        KeyEnv {
            hasher: &self.hasher,
            context,
            ignore: self.ignore.as_ref(),
            listing: self.opts.debug_cache.then(Default::default),
            named: &self.named,
        }
    }

    /// The key a stage's steps start from, given its base's (`None`:
    /// scratch). Layers with clamped times (`SOURCE_DATE_EPOCH`) are another
    /// tar: such builds chain from a root salted with the epoch, so they never
    /// reuse each other's layers; without one the root is the base's key.
    /// The compression is not in the key: it is an output property, and a hit
    /// recorded in another compression is re-encoded ([`Self::encoded`]).
    /// A stage for a platform the host does not run natively is salted with
    /// it too ([`crate::cache::platform_key`]); a host-platform stage's
    /// keys are unchanged.
    pub fn root_key(&self, base: Option<StepKey>, platform: &Platform) -> Option<StepKey> {
        let base = match super::emulation::is_native(platform) {
            true => base,
            false => Some(crate::cache::platform_key(base.as_ref(), &platform.to_specifier()).0),
        };
        if self.epoch.is_none() {
            return base;
        }
        let op = serde_json::json!({ "source_date_epoch": self.epoch });
        Some(step_key(base.as_ref(), OpKind::From, &op, &[]).0)
    }

    /// A hit's layer in this build's compression, when the record knows that
    /// encoding and its blob is in the store (`lookup` drops the others).
    pub fn encoded(&self, rec: &CacheRecord) -> Option<LayerBlob> {
        rec.layer_as(self.compression.media_type())
    }

    /// Records `made` (a re-encoding of `rec`'s layer) in `rec`, so the next
    /// build in that compression is a pure hit and `prune` keeps the blob.
    pub fn add_encoding(&self, rec: &CacheRecord, made: &LayerBlob) -> Result<(), CacheError> {
        let mut rec = rec.clone();
        rec.add_encoding(made.descriptor.clone());
        self.steps.put(&rec, None)
    }

    /// True when `stage`'s steps may be served from the cache.
    pub fn lookups_enabled(&self, stage: &Stage) -> bool {
        if self.opts.no_cache {
            return false;
        }
        let index = stage.id.0.to_string();
        !self
            .opts
            .no_cache_filter
            .iter()
            .any(|f| stage.name.as_deref() == Some(f.as_str()) || *f == index)
    }

    /// The record for `key` when lookups are enabled for `stage`.
    pub fn lookup(&self, stage: &Stage, key: &StepKey) -> Result<Option<CacheRecord>, CacheError> {
        if !self.lookups_enabled(stage) {
            return Ok(None);
        }
        self.steps.get(key)
    }

    /// Records that `key` produced `layer`; returns the record.
    pub fn commit(
        &self,
        key: StepKey,
        layer: Option<&LayerBlob>,
        preimage: &[u8],
        listing: Option<&InputListing>,
    ) -> Result<CacheRecord, CacheError> {
        let rec = CacheRecord::new(key, layer.cloned());
        let pre = self.opts.debug_cache.then_some(preimage);
        if let Some(l) = listing.filter(|l| !l.is_empty()) {
            self.steps.put_inputs(&key, l)?;
        }
        self.steps.put(&rec, pre)?;
        Ok(rec)
    }

    /// The history time of a step whose result dates from `secs`.
    pub fn created(&self, secs: i64) -> String {
        rfc3339(self.epoch.unwrap_or(secs), 0)
    }

    /// Notes a step for the build log.
    pub fn note(&self, stage: &Stage, index: usize, display: &str, key: StepKey, hit: bool) {
        let step = LoggedStep {
            stage: stage.id.0,
            stage_name: stage.name.clone(),
            index,
            display: display.to_string(),
            key,
            hit,
        };
        self.log
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(step);
    }

    /// Saves the stat cache and the build log (with the image ID, when the
    /// build made one); returns the log.
    pub fn finish(
        &self,
        graph: &BuildGraph,
        image: Option<crate::oci::Digest>,
    ) -> Result<BuildLog, CacheError> {
        self.hasher.save()?;
        for c in self.named.values() {
            c.hasher.save()?;
        }
        let mut steps = std::mem::take(&mut *self.log.lock().unwrap_or_else(|p| p.into_inner()));
        steps.sort_by_key(|s| (s.stage, s.index));
        let log = BuildLog {
            context: self.position.context.clone(),
            dockerfile: self.position.dockerfile.clone(),
            target_chain: target_chain(graph),
            steps,
            image,
        };
        self.steps.write_log(&log)?;
        Ok(log)
    }
}

/// The target stage and the stages it is built `FROM`, target first: the
/// steps whose layers make up the final image.
fn target_chain(graph: &BuildGraph) -> Vec<usize> {
    let mut out = vec![];
    let mut cur = Some(graph.target.0);
    while let Some(id) = cur {
        if out.contains(&id) {
            break;
        }
        out.push(id);
        cur = match graph.stages.get(id).map(|s| &s.base) {
            Some(crate::plan::Base::Stage(s)) => Some(s.0),
            _ => None,
        };
    }
    out
}
