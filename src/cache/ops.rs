//! One key function per op kind. Each takes a small input struct the build
//! fills from its plan step, normalizes it (drops what must not matter) and
//! hashes it with [`step_key`].
//!
//! What matters, as BuildKit decides (see DESIGN.md "Cache keys"):
//! - FROM: the resolved manifest digest, never the tag.
//! - RUN: argv, the effective env (undeclared proxy build args left out),
//!   user, workdir, network, security, inline files, stdin, and mount specs: cache mounts by id, bind mounts by the content
//!   digest of their source, secrets by id; never the content of a cache
//!   mount or a secret.
//! - COPY/ADD: destination, flags, the sources as written, and the Merkle
//!   digest of the selected sources ([`super::ContextHasher`]).
//! - WORKDIR: the path and the user who would own created directories.
//!
//! Invariant: a field of an input struct reaches the pre-image under its own
//! name, so `explain` reports changes in the build's vocabulary.

use serde::Serialize;
use serde_json::Value;

use crate::oci::Digest;

use super::key::{step_key, ContentDigest, OpKind, StepKey};

/// A file whose content is in the Dockerfile (heredoc): its content matters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct InlineFileKey {
    /// File name.
    pub name: String,
    /// Content.
    pub content: String,
    /// Mode.
    pub mode: u32,
}

/// Where a mount or a COPY takes files from, as the key sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceKey {
    /// The build context: the Merkle digest of the selected paths.
    Context(ContentDigest),
    /// An earlier stage: the key of its last step (its result).
    Stage(StepKey),
    /// An image: its manifest digest.
    Image(Digest),
}

/// `RUN --network`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NetworkKey {
    /// The builder's default.
    Default,
    /// No network.
    None,
    /// The host network.
    Host,
}

/// `RUN --security`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SecurityKey {
    /// The normal sandbox.
    Sandbox,
    /// All capabilities.
    Insecure,
}

/// One `RUN --mount`, as the key sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum MountKeyInput {
    /// `type=bind`: `from` carries the content digest of the source.
    Bind {
        /// Mount point.
        target: String,
        /// Path inside `from`.
        source: String,
        /// Where the files come from (for the context: the digest of `source`).
        from: SourceKey,
        /// Writable (writes discarded).
        rw: bool,
    },
    /// `type=cache`: identified by id and options, never by its contents.
    Cache {
        /// Cache id.
        id: String,
        /// Mount point.
        target: String,
        /// Read-only.
        ro: bool,
        /// `shared`, `private` or `locked`.
        sharing: String,
        /// Seed for a new cache.
        from: Option<SourceKey>,
        /// Path inside `from`.
        source: String,
        /// Mode of a new cache directory.
        mode: u32,
        /// Owner of a new cache directory.
        uid: u32,
        /// Group of a new cache directory.
        gid: u32,
    },
    /// `type=tmpfs`.
    Tmpfs {
        /// Mount point.
        target: String,
        /// Size limit.
        size: Option<u64>,
    },
    /// `type=secret`: by id and placement, never by its contents.
    Secret {
        /// Secret id.
        id: String,
        /// File to mount it at.
        target: Option<String>,
        /// Environment variable to expose it as.
        env: Option<String>,
        /// Fail when missing.
        required: bool,
        /// File mode.
        mode: u32,
        /// Owner.
        uid: u32,
        /// Group.
        gid: u32,
    },
    /// `type=ssh`.
    Ssh {
        /// Agent id.
        id: String,
        /// Socket path.
        target: String,
        /// Fail when missing.
        required: bool,
        /// Socket mode.
        mode: u32,
        /// Owner.
        uid: u32,
        /// Group.
        gid: u32,
    },
}

/// RUN, filled from the plan's `RunOp`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RunKeyInput {
    /// The process argv (shell already prepended).
    pub argv: Vec<String>,
    /// `KEY=VALUE`, in order: the plan's `RunOp::env` (config env and ARGs
    /// in scope; a proxy variable only when the Dockerfile declares it).
    pub env: Vec<String>,
    /// The plan's `RunOp::proxy_env`: undeclared proxy `--build-arg`s the
    /// process also gets. Never part of the key.
    // COMPAT(buildkit): `llb.WithProxy` values stay out of the cache key, so
    // a CI runner behind another proxy still hits.
    #[serde(skip)]
    pub proxy_env: Vec<String>,
    /// USER in effect (empty: root).
    pub user: String,
    /// WORKDIR in effect.
    pub workdir: String,
    /// `--network`.
    pub network: NetworkKey,
    /// `--security`.
    pub security: SecurityKey,
    /// `--mount`s, in order.
    pub mounts: Vec<MountKeyInput>,
    /// Heredoc scripts mounted for the process.
    pub files: Vec<InlineFileKey>,
    /// Data fed to the process's stdin.
    pub stdin: Option<String>,
}

/// ADD-only options.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct AddKeyInput {
    /// `--checksum`.
    pub checksum: Option<String>,
    /// `--keep-git-dir`.
    pub keep_git_dir: bool,
    /// `--unpack` (`None`: ADD's default).
    pub unpack: Option<bool>,
    /// For each `http(s)://` source, in order, the digest of the bytes the
    /// build downloaded: a URL's content, not its text, decides a hit.
    #[serde(skip)]
    pub url_contents: Vec<ContentDigest>,
}

/// COPY or ADD, filled from the plan's `CopyOp`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CopyKeyInput {
    /// Where the sources come from; for the context, the Merkle digest of
    /// exactly the selected paths (it becomes the key's first input).
    #[serde(skip)]
    pub from: SourceKey,
    /// Sources as written (wildcards intact).
    pub sources: Vec<String>,
    /// `COPY <<EOF` files.
    pub heredocs: Vec<InlineFileKey>,
    /// Destination, absolute.
    pub dest: String,
    /// Sources go inside `dest`.
    pub dest_is_dir: bool,
    /// `--chown`.
    pub chown: Option<String>,
    /// `--chmod`.
    pub chmod: Option<String>,
    /// `--link`.
    pub link: bool,
    /// `--parents`.
    pub parents: bool,
    /// `--exclude` patterns.
    pub excludes: Vec<String>,
    /// `Some` for ADD.
    pub add: Option<AddKeyInput>,
}

fn to_value<T: Serialize>(v: &T) -> Value {
    // Plain structs of strings, integers, options and unit/newtype enums
    // (no maps, no custom serializers): to_value cannot fail, exactly as
    // inside `json!`. A silent fallback would give every op the same key.
    serde_json::to_value(v).expect("key inputs are plain data")
}

/// FROM an image: the stage's root key, from the manifest digest alone.
/// (`FROM scratch` has no key: its first step has no parent.)
pub fn from_key(manifest: &Digest) -> (StepKey, Vec<u8>) {
    let op = serde_json::json!({ "manifest": manifest });
    step_key(None, OpKind::From, &op, &[])
}

/// RUN on top of `parent`.
pub fn run_key(parent: Option<&StepKey>, run: &RunKeyInput) -> (StepKey, Vec<u8>) {
    step_key(parent, OpKind::Run, &to_value(run), &[])
}

/// COPY or ADD on top of `parent`. The key's inputs are the context digest
/// (when `from` is the context) then each downloaded URL's digest.
pub fn copy_key(parent: Option<&StepKey>, copy: &CopyKeyInput) -> (StepKey, Vec<u8>) {
    let mut op = to_value(copy);
    let mut inputs = Vec::new();
    match &copy.from {
        SourceKey::Context(digest) => inputs.push(*digest),
        other => {
            if let Value::Object(map) = &mut op {
                map.insert("from".into(), to_value(other));
            }
        }
    }
    if let Some(add) = &copy.add {
        inputs.extend(add.url_contents.iter().copied());
    }
    let kind = if copy.add.is_some() {
        OpKind::Add
    } else {
        OpKind::Copy
    };
    step_key(parent, kind, &op, &inputs)
}

/// WORKDIR `path` (absolute) created as `user` on top of `parent`.
pub fn workdir_key(parent: Option<&StepKey>, path: &str, user: &str) -> (StepKey, Vec<u8>) {
    let op = serde_json::json!({ "path": path, "user": user });
    step_key(parent, OpKind::Workdir, &op, &[])
}

#[cfg(test)]
#[path = "ops_tests.rs"]
mod tests;
