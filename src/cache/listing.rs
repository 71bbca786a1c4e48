//! The listings `--debug-cache` stores beside a key's pre-image
//! (`cache/steps/<ab>/<hex>.inputs`): which context files the key read and
//! their digests, so explain can name the files behind a changed input.
//!
//! Invariant: a listing describes a key, it never takes part in one; a
//! missing listing only makes explain less specific.

use std::collections::BTreeMap;
use std::fs;
use std::io;

use super::{CacheError, StepCache, StepKey};

/// Path (relative to the context) → what it was, as the key saw it.
pub type InputListing = BTreeMap<String, String>;

impl StepCache {
    /// Stores the listing of the context files `key` read.
    pub fn put_inputs(&self, key: &StepKey, listing: &InputListing) -> Result<(), CacheError> {
        let path = self.record_path(key).with_extension("inputs");
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(|source| CacheError::CreateDir {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let bytes = serde_json::to_vec(listing).map_err(|source| CacheError::Encode {
            what: "input listing",
            source,
        })?;
        self.store
            .write_file_atomic(&path, &bytes)
            .map_err(|source| CacheError::Write { path, source })
    }

    /// The listing stored for `key`, if any.
    pub fn inputs(&self, key: &StepKey) -> Result<Option<InputListing>, CacheError> {
        let path = self.record_path(key).with_extension("inputs");
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(CacheError::Read { path, source }),
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| CacheError::Parse { path, source })
    }
}

/// The files two listings disagree on, as `path changed|added|removed`.
pub fn diff_listings(before: &InputListing, after: &InputListing) -> Vec<String> {
    let mut out = vec![];
    for (p, v) in after {
        match before.get(p) {
            None => out.push(format!("{p} added")),
            Some(b) if b != v => out.push(format!("{p} changed")),
            Some(_) => {}
        }
    }
    out.extend(
        before
            .keys()
            .filter(|p| !after.contains_key(*p))
            .map(|p| format!("{p} removed")),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_changed_added_and_removed_paths() {
        let l = |v: &[(&str, &str)]| -> InputListing {
            v.iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect()
        };
        let before = l(&[("a", "1"), ("b", "2"), ("gone", "3")]);
        let after = l(&[("a", "1"), ("b", "9"), ("new", "4")]);
        assert_eq!(
            diff_listings(&before, &after),
            ["b changed", "new added", "gone removed"]
        );
        assert!(diff_listings(&after, &after).is_empty());
    }
}
