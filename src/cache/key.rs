//! The step-key recipe: "clone the op, blank what must not matter, hash".
//!
//! A key's pre-image is the canonical JSON (sorted keys, no whitespace) of
//! `{"v":"kiln-step-v1","parent":…,"kind":…,"op":…,"inputs":[…]}` and the key
//! is its sha256. Invariants: the same pre-image always gives the same key
//! (the JSON is canonical, so field order in Rust never reaches the bytes);
//! the version tag changes whenever the recipe changes meaning, so old
//! records can never be mistaken for new ones.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::oci::{Digest, DigestError};

/// The recipe version inside every pre-image.
pub const KEY_VERSION: &str = "kiln-step-v1";

macro_rules! digest_newtype {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Digest);

        impl $name {
            /// The sha256 of `data`.
            pub fn of(data: &[u8]) -> Self {
                Self(Digest::of(data))
            }
            /// Wraps raw sha256 bytes.
            pub fn from_bytes(bytes: [u8; 32]) -> Self {
                Self(Digest::from_bytes(bytes))
            }
            /// The raw 32 bytes.
            pub fn bytes(&self) -> &[u8; 32] {
                self.0.bytes()
            }
            /// The 64 lower-case hex characters.
            pub fn hex(&self) -> String {
                self.0.hex()
            }
            /// Parses `sha256:<hex>`.
            pub fn parse(s: &str) -> Result<Self, DigestError> {
                Digest::parse(s).map(Self)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }

        impl FromStr for $name {
            type Err = DigestError;
            fn from_str(s: &str) -> Result<Self, DigestError> {
                Self::parse(s)
            }
        }
    };
}

digest_newtype!(
    /// A step's cache key: the sha256 of its pre-image.
    StepKey
);
digest_newtype!(
    /// A Merkle digest of content a step reads (selected context paths, a
    /// bind mount's source, downloaded bytes).
    ContentDigest
);

/// Which recipe built a key; part of the pre-image, so two kinds never collide.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpKind {
    /// FROM an image.
    From,
    /// RUN.
    Run,
    /// COPY.
    Copy,
    /// ADD.
    Add,
    /// WORKDIR.
    Workdir,
}

/// Hashes a normalized op: returns the key and the exact pre-image bytes it
/// is the sha256 of (store them with `--debug-cache` so `explain` can diff).
pub fn step_key(
    parent: Option<&StepKey>,
    kind: OpKind,
    op: &Value,
    inputs: &[ContentDigest],
) -> (StepKey, Vec<u8>) {
    let pre = json!({
        "v": KEY_VERSION,
        "parent": parent,
        "kind": kind,
        "op": op,
        "inputs": inputs,
    });
    // serde_json's Value map is a BTreeMap (no `preserve_order` in this
    // build, pinned by a test below) and Display is its compact form: the
    // bytes are canonical. Writing a Value cannot fail (its keys are strings).
    let bytes = pre.to_string().into_bytes();
    (StepKey::of(&bytes), bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preimage_is_canonical_and_key_is_its_hash() {
        let op = json!({"z": 1, "a": [true, null], "m": {"y": "2", "b": "1"}});
        let parent = StepKey::of(b"p");
        let (key, pre) = step_key(Some(&parent), OpKind::Run, &op, &[ContentDigest::of(b"x")]);
        let text = String::from_utf8(pre.clone()).unwrap();
        assert_eq!(
            text,
            format!(
                r#"{{"inputs":["{}"],"kind":"run","op":{{"a":[true,null],"m":{{"b":"1","y":"2"}},"z":1}},"parent":"{}","v":"kiln-step-v1"}}"#,
                ContentDigest::of(b"x"),
                parent
            )
        );
        assert_eq!(key, StepKey::of(&pre));
    }

    #[test]
    fn every_part_of_the_preimage_matters() {
        let op = json!({"a": 1});
        let p = StepKey::of(b"p");
        let base = step_key(Some(&p), OpKind::Copy, &op, &[]).0;
        assert_ne!(base, step_key(None, OpKind::Copy, &op, &[]).0);
        assert_ne!(base, step_key(Some(&p), OpKind::Add, &op, &[]).0);
        assert_ne!(
            base,
            step_key(Some(&p), OpKind::Copy, &json!({"a": 2}), &[]).0
        );
        let input = [ContentDigest::of(b"")];
        assert_ne!(base, step_key(Some(&p), OpKind::Copy, &op, &input).0);
        assert_eq!(
            base,
            step_key(Some(&p), OpKind::Copy, &json!({"a": 1}), &[]).0
        );
    }

    #[test]
    fn keys_print_and_parse_like_digests() {
        let k = StepKey::of(b"");
        let s = k.to_string();
        assert!(s.starts_with("sha256:e3b0c442"));
        assert_eq!(s.parse::<StepKey>().unwrap(), k);
        assert_eq!(serde_json::to_string(&k).unwrap(), format!("\"{s}\""));
        assert!(StepKey::parse("md5:00").is_err());
    }
}
