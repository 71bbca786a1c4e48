//! `kiln build --allow`: the privileges a Dockerfile may ask for only when the
//! person building grants them, checked over the whole plan before any step
//! runs (a cached step asks too), as BuildKit's solver does when it loads the
//! definition (`ValidateEntitlements`).

use crate::plan::{BuildGraph, NetworkMode, Op, Security};

use super::BuildError;

/// One privilege `--allow` grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Entitlement {
    /// `network.host`: `RUN --network=host`.
    NetworkHost,
    /// `security.insecure`: `RUN --security=insecure`.
    SecurityInsecure,
}

impl Entitlement {
    /// BuildKit's name for it.
    pub fn name(self) -> &'static str {
        match self {
            Self::NetworkHost => "network.host",
            Self::SecurityInsecure => "security.insecure",
        }
    }

    /// The entitlement called `name`, if there is one.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "network.host" => Some(Self::NetworkHost),
            "security.insecure" => Some(Self::SecurityInsecure),
            _ => None,
        }
    }
}

/// Fails on the first reached RUN that needs an entitlement `allowed` lacks.
// COMPAT(buildkit): `RUN --network=host` needs `network.host` like
// `--security=insecure` needs `security.insecure`. dockerd's builder grants
// network.host by default on its side, but the build request must still ask for
// it (`docker build --allow network.host`; the Dockerfile reference: "protected
// by the network.host entitlement … for a build request with --allow
// network.host"), so kiln, which is both sides, asks for the flag. The default
// network is the host's in both (no CNI), and needs nothing.
pub fn check(graph: &BuildGraph, allowed: &[Entitlement]) -> Result<(), BuildError> {
    for stage in graph.stages.iter().filter(|s| s.reached) {
        for step in &stage.steps {
            let Op::Run(op) = &step.op else { continue };
            let needs = [
                (op.network == NetworkMode::Host).then_some(Entitlement::NetworkHost),
                (op.security == Security::Insecure).then_some(Entitlement::SecurityInsecure),
            ];
            if let Some(e) = needs.into_iter().flatten().find(|e| !allowed.contains(e)) {
                return Err(BuildError::NotEntitled {
                    span: step.span,
                    entitlement: e.name(),
                });
            }
        }
    }
    Ok(())
}
