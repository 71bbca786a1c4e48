//! Named contexts (`--build-context NAME=VALUE`): the one place that says
//! which Dockerfile name a named context answers to, and what a stage based
//! on a directory context starts with.
//!
//! BuildKit's order, which the rest of the plan follows: a named context
//! whose name is a stage's `AS` name replaces that stage (its instructions
//! are not run); otherwise `FROM NAME`, `COPY --from=NAME` and `RUN
//! --mount=from=NAME` look for a stage first, then a named context, then an
//! image. Names are compared in docker's familiar form without `:latest`, so
//! `FROM docker.io/library/alpine:latest` finds the context `alpine`.

use crate::dockerfile::Span;
use crate::oci::Reference;

use super::{CopyOp, CopySource, Excludes, FilesFrom, Op, Step};

/// The key a name has among named contexts (`alpine` for `alpine`,
/// `alpine:latest` and `docker.io/library/alpine`; `alpine:3.20` for that
/// tag), or `None` when no named context can have it: not a valid image
/// name, or `scratch` / `context`, which BuildKit never looks up.
// COMPAT(buildkit): `dockerui.Client.NamedContext` and buildx's
// `ParseContextNames` both normalize with `ParseNormalizedNamed`, then
// `FamiliarString` with `:latest` trimmed.
pub fn context_key(name: &str) -> Option<String> {
    if name.eq_ignore_ascii_case("scratch") || name.eq_ignore_ascii_case("context") {
        return None;
    }
    let r = Reference::parse(name).ok()?;
    let familiar = r.familiar();
    Some(match familiar.strip_suffix(":latest") {
        Some(short) => short.to_string(),
        None => familiar,
    })
}

/// The step a stage based on the directory context `name` starts with: the
/// directory (after its `.dockerignore`, files root-owned) as its first
/// layer, as BuildKit's local source gives it.
pub(super) fn dir_base_step(name: &str, span: Span) -> Step {
    let op = CopyOp {
        from: FilesFrom::NamedContext(name.to_string()),
        sources: vec![CopySource::Path(".".into())],
        heredocs: Vec::new(),
        dest: "/".into(),
        chown: None,
        chmod: None,
        link: false,
        parents: false,
        excludes: Excludes::default(),
        add: None,
        dest_is_dir_hint: true,
    };
    Step {
        op: Op::Copy(op),
        span,
        created_by: format!("[context {name}] load from client"),
        empty_layer: false,
        display: format!("[context {name}] load from client"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_familiar_names_without_latest() {
        assert_eq!(context_key("alpine").as_deref(), Some("alpine"));
        assert_eq!(context_key("alpine:latest").as_deref(), Some("alpine"));
        let full = context_key("docker.io/library/alpine:latest");
        assert_eq!(full.as_deref(), Some("alpine"));
        assert_eq!(context_key("alpine:3.20").as_deref(), Some("alpine:3.20"));
        let ghcr = context_key("ghcr.io/o/app");
        assert_eq!(ghcr.as_deref(), Some("ghcr.io/o/app"));
        assert_eq!(context_key("scratch"), None);
        assert_eq!(context_key("Context"), None);
        assert_eq!(context_key("Not/Valid"), None);
    }
}
