//! One key function per op kind, reading the plan's op itself: this file
//! answers "what invalidates a RUN (a COPY, a WORKDIR)". Each function
//! destructures its op field by field (a field added to the plan does not
//! compile until it is decided here), spells what matters as JSON and
//! hashes it with [`step_key`].
//!
//! What matters, as BuildKit decides (see DESIGN.md "Cache keys"):
//! - FROM: the resolved manifest digest, never the tag.
//! - RUN: argv, the effective env (undeclared proxy build args left out),
//!   user, workdir, network, security, inline files, stdin, and mount specs:
//!   cache mounts by id, bind mounts by the content digest of their source,
//!   secrets by id; never the content of a cache mount or a secret.
//! - COPY/ADD: destination, flags, the sources as written, and the Merkle
//!   digest of the selected sources ([`super::ContextHasher`]).
//! - WORKDIR: the path and the user who would own created directories.
//!
//! Invariants: the JSON is the recipe's own spelling, not the plan's serde
//! form (a rename in the plan's JSON dump never moves a key), and it is
//! byte for byte what kiln hashed before the recipe read the plan (pinned in
//! the tests: existing stores keep their hits); a field reaches the
//! pre-image under its own name, so `explain` reports changes in the
//! build's vocabulary.

use serde_json::{json, Value};

use crate::oci::Digest;
use crate::plan::{
    AddOptions, Chmod, Chown, CopyOp, CopySource, FilesFrom, InlineFile, NetworkMode, RunMount,
    RunOp, Security, Sharing, WorkdirOp,
};

use super::key::{step_key, ContentDigest, OpKind, StepKey};

/// Where a mount or a COPY takes files from, as the key sees it: what the
/// build resolved the plan's `from` to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SourceKey {
    /// The build context: the Merkle digest of the selected paths.
    Context(ContentDigest),
    /// An earlier stage: the key of its last step (its result).
    Stage(StepKey),
    /// An image: its manifest digest.
    Image(Digest),
}

impl SourceKey {
    /// `{"context"|"stage"|"image": "sha256:…"}`.
    fn value(&self) -> Value {
        let (kind, digest) = match self {
            SourceKey::Context(d) => ("context", d.to_string()),
            SourceKey::Stage(k) => ("stage", k.to_string()),
            SourceKey::Image(d) => ("image", d.to_string()),
        };
        json!({ kind: digest })
    }
}

/// FROM an image: the stage's root key, from the manifest digest alone.
/// (`FROM scratch` has no key: its first step has no parent.)
pub fn from_key(manifest: &Digest) -> (StepKey, Vec<u8>) {
    let op = json!({ "manifest": manifest });
    step_key(None, OpKind::From, &op, &[])
}

/// A stage for a platform the host does not run natively: its root key,
/// the base's salted with the platform, so a step on it never shares a
/// record with the same step on the host (a RUN under emulation may write
/// other bytes, `uname -m` the least). Host-platform stages do not call it:
/// their keys are what they were before kiln built for other platforms.
pub fn platform_key(parent: Option<&StepKey>, platform: &str) -> (StepKey, Vec<u8>) {
    let op = json!({ "platform": platform });
    step_key(parent, OpKind::From, &op, &[])
}

/// RUN `op` on top of `parent`. `source` resolves what a bind mount (or a
/// seeded cache mount) reads, given its `from` and the path in it; `None`
/// from it (a context path that selects nothing) leaves the step unkeyed
/// (`Ok(None)`: it runs and fails with its own error).
pub fn run_key<E>(
    parent: Option<&StepKey>,
    op: &RunOp,
    mut source: impl FnMut(&FilesFrom, &str) -> Result<Option<SourceKey>, E>,
) -> Result<Option<(StepKey, Vec<u8>)>, E> {
    let RunOp {
        argv,
        env,
        // COMPAT(buildkit): `llb.WithProxy` values stay out of the cache key,
        // so a CI runner behind another proxy still hits.
        proxy_env: _,
        user,
        workdir,
        network,
        security,
        mounts,
        files,
        stdin,
    } = op;
    let mut keyed = Vec::with_capacity(mounts.len());
    for m in mounts {
        match mount_value(m, &mut source)? {
            Some(v) => keyed.push(v),
            None => return Ok(None),
        }
    }
    let network = match network {
        NetworkMode::Default => "default",
        NetworkMode::None => "none",
        NetworkMode::Host => "host",
    };
    let security = match security {
        Security::Sandbox => "sandbox",
        Security::Insecure => "insecure",
    };
    let op = json!({
        "argv": argv,
        "env": env,
        "user": user,
        "workdir": workdir,
        "network": network,
        "security": security,
        "mounts": keyed,
        "files": files.iter().map(inline_value).collect::<Vec<_>>(),
        "stdin": stdin,
    });
    Ok(Some(step_key(parent, OpKind::Run, &op, &[])))
}

/// One `--mount`: by its spec, never by what a cache or a secret holds.
fn mount_value<E>(
    m: &RunMount,
    source: &mut impl FnMut(&FilesFrom, &str) -> Result<Option<SourceKey>, E>,
) -> Result<Option<Value>, E> {
    Ok(Some(match m {
        RunMount::Bind {
            target,
            source: path,
            from,
            rw,
        } => {
            let Some(from) = source(from, path)? else {
                return Ok(None);
            };
            json!({
                "type": "bind", "target": target, "source": path,
                "from": from.value(), "rw": rw,
            })
        }
        RunMount::Cache {
            id,
            target,
            ro,
            sharing,
            from,
            source: path,
            mode,
            uid,
            gid,
        } => {
            let from = match from {
                Some(f) => match source(f, path)? {
                    Some(k) => Some(k.value()),
                    None => return Ok(None),
                },
                None => None,
            };
            let sharing = match sharing {
                Sharing::Shared => "shared",
                Sharing::Private => "private",
                Sharing::Locked => "locked",
            };
            json!({
                "type": "cache", "id": id, "target": target, "ro": ro, "sharing": sharing,
                "from": from, "source": path, "mode": mode, "uid": uid, "gid": gid,
            })
        }
        RunMount::Tmpfs { target, size } => {
            json!({ "type": "tmpfs", "target": target, "size": size })
        }
        RunMount::Secret {
            id,
            target,
            env,
            required,
            mode,
            uid,
            gid,
        } => json!({
            "type": "secret", "id": id, "target": target, "env": env,
            "required": required, "mode": mode, "uid": uid, "gid": gid,
        }),
        RunMount::Ssh {
            id,
            target,
            required,
            mode,
            uid,
            gid,
        } => json!({
            "type": "ssh", "id": id, "target": target,
            "required": required, "mode": mode, "uid": uid, "gid": gid,
        }),
    }))
}

/// A heredoc file: its content matters.
fn inline_value(f: &InlineFile) -> Value {
    let InlineFile {
        name,
        content,
        mode,
    } = f;
    json!({ "name": name, "content": content, "mode": mode })
}

/// COPY or ADD `op` on top of `parent`, its sources read from `from`. The
/// key's inputs are the context digest (when `from` is the context) then
/// `url_contents`: for each `http(s)://` source, in order, the digest of the
/// bytes the build downloaded (a URL's content, not its text, decides a hit).
pub fn copy_key(
    parent: Option<&StepKey>,
    op: &CopyOp,
    from: &SourceKey,
    url_contents: &[ContentDigest],
) -> (StepKey, Vec<u8>) {
    let mut value = copy_value(op);
    let mut inputs = Vec::new();
    match from {
        SourceKey::Context(digest) => inputs.push(*digest),
        other => {
            if let Value::Object(map) = &mut value {
                map.insert("from".into(), other.value());
            }
        }
    }
    inputs.extend(url_contents.iter().copied());
    let kind = match op.add {
        Some(_) => OpKind::Add,
        None => OpKind::Copy,
    };
    step_key(parent, kind, &value, &inputs)
}

/// The flags and sources of a COPY/ADD as the key spells them: strings as
/// written (`--chmod` and `--chown` unparsed, sources with wildcards).
fn copy_value(op: &CopyOp) -> Value {
    let CopyOp {
        // Keyed by what it resolves to (`copy_key`'s `from`).
        from: _,
        sources,
        heredocs,
        dest,
        chown,
        chmod,
        link,
        parents,
        excludes,
        add,
        dest_is_dir_hint,
    } = op;
    let add = add.as_ref().map(|a| {
        let AddOptions {
            checksum,
            keep_git_dir,
            unpack,
        } = a;
        json!({ "checksum": checksum, "keep_git_dir": keep_git_dir, "unpack": unpack })
    });
    json!({
        "sources": sources.iter().map(CopySource::as_str).collect::<Vec<_>>(),
        "heredocs": heredocs.iter().map(inline_value).collect::<Vec<_>>(),
        "dest": dest,
        "dest_is_dir": dest_is_dir_hint,
        "chown": chown.as_ref().map(Chown::text),
        "chmod": chmod.as_ref().map(Chmod::text),
        "link": link,
        "parents": parents,
        "excludes": excludes.patterns().iter().map(String::as_str).collect::<Vec<_>>(),
        "add": add,
    })
}

/// WORKDIR on top of `parent`: the path (absolute) and who owns what it creates.
pub fn workdir_key(parent: Option<&StepKey>, op: &WorkdirOp) -> (StepKey, Vec<u8>) {
    let WorkdirOp { path, user } = op;
    let op = json!({ "path": path, "user": user });
    step_key(parent, OpKind::Workdir, &op, &[])
}

#[cfg(test)]
#[path = "ops_tests.rs"]
mod tests;
