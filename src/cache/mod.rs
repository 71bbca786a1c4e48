//! Step cache keys, cache records and context hashing.
//!
//! The build calls, per step: a key function ([`from_key`], [`run_key`],
//! [`copy_key`], [`workdir_key`]) on the parent's key and the plan's op
//! (what invalidates a step is answered in one file, `cache/ops.rs`); then
//! [`StepCache::get`] (hit: reuse the record's layer) or, after running the
//! step, [`StepCache::put`]. COPY sources and bind-mount sources from the
//! context get their [`ContentDigest`] from a [`ContextHasher`], which is
//! saved once at the end of the build.
//!
//! ```no_run
//! use std::path::{Path, PathBuf};
//! use kiln::cache::*;
//! use kiln::plan::{FilesFrom, CopyOp, CopySource, Excludes};
//! # fn main() -> Result<(), CacheError> {
//! # let (store_root, context, manifest) = (Path::new("/s"), Path::new("/c"), kiln::oci::Digest::of(b""));
//! let steps = StepCache::open(store_root)?;
//! let ctx = ContextHasher::open(store_root, context)?;
//! let (base, _) = from_key(&manifest);
//! let sources = ctx.digest_paths(&[PathBuf::from("src")], &|_, _| true)?;
//! let copy = CopyOp {
//!     from: FilesFrom::Context,
//!     sources: vec![CopySource::Path("src".into())],
//!     heredocs: vec![],
//!     dest: "/app/".into(),
//!     chown: None,
//!     chmod: None,
//!     link: false,
//!     parents: false,
//!     excludes: Excludes::default(),
//!     add: None,
//!     dest_is_dir_hint: true,
//! };
//! let (key, preimage) = copy_key(Some(&base), &copy, &SourceKey::Context(sources), &[]);
//! match steps.get(&key)? {
//!     Some(_hit) => { /* reuse _hit.layer, show CACHED */ }
//!     None => {
//!         // run the step, pack its layer, then:
//!         let debug_cache = true; // --debug-cache: keep the pre-image for explain
//!         steps.put(&CacheRecord::new(key, None), debug_cache.then_some(&preimage[..]))?;
//!     }
//! }
//! ctx.save()?; // once, at the end of the build
//! # Ok(()) }
//! ```
//!
//! Store layout it owns (see DESIGN.md "Store"):
//! `cache/steps/<ab>/<hex>` records (+ `<hex>.preimage` with `--debug-cache`),
//! `cache/context/v1-<id>.json` stat caches and `cache/builds/<ns>.json`
//! build logs ([`BuildLog`], read by explain and by `--cache-to`).
//! [`export`] moves records and layers (and cache mounts) in and out as an
//! OCI artifact. Every write goes through
//! the store's atomic temp + fsync + rename; `tmp/` leftovers are ignored.

mod context;
mod error;
pub mod export;
mod key;
mod keydiff;
mod listing;
mod log;
mod misses;
mod ops;
mod prune;
mod record;
mod statcache;
mod walk;

pub use context::ContextHasher;
pub use error::CacheError;
pub use key::{step_key, ContentDigest, OpKind, StepKey, KEY_VERSION};
pub use keydiff::{diff_values, FieldChange};
pub use listing::{diff_listings, InputListing};
pub use log::{BuildLog, LoggedStep, KEEP_LOGS};
pub use misses::{describe_change, render as render_explanations, MissReason, StepExplanation};
pub use ops::{copy_key, from_key, platform_key, run_key, workdir_key, SourceKey};
pub use prune::CachePruneReport;
pub use record::{CacheRecord, StepCache};
pub use statcache::RACY_WINDOW_NS;
