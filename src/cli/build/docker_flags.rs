//! `docker build` / `docker buildx build` flags that CI scripts pass and that
//! are not kiln build options proper: each is either accepted with docker's
//! meaning (documented no-ops of BuildKit itself; the attestation flags,
//! read by [`crate::attest::AttestOptions`]) or refused with an error naming
//! the flag and saying what to do instead.
//! clap's "unexpected argument" would not tell a user whether kiln knows the
//! flag, so every known docker flag is declared here (hidden from `--help`).

use clap::Args;

/// The docker flags kiln takes only to accept as no-ops or to refuse.
#[derive(Debug, Args, Default)]
pub struct DockerFlags {
    /// Docker's `--rm` (remove intermediate containers): a no-op, as in BuildKit.
    #[arg(long, hide = true, num_args = 0..=1, require_equals = true,
          default_missing_value = "true", value_name = "BOOL")]
    pub rm: Option<bool>,
    /// Docker's `--force-rm`: a no-op, as in BuildKit.
    #[arg(long = "force-rm", hide = true, num_args = 0..=1, require_equals = true,
          default_missing_value = "true", value_name = "BOOL")]
    pub force_rm: Option<bool>,
    /// `--provenance=true|false|mode=min|max[,builder-id=URI]`: SLSA provenance.
    #[arg(long, hide = true, num_args = 0..=1, require_equals = true,
          default_missing_value = "true", value_name = "VALUE")]
    pub provenance: Option<String>,
    /// `--sbom=true|false`: an SPDX SBOM of the image, by kiln's own scanner.
    #[arg(long, hide = true, num_args = 0..=1, require_equals = true,
          default_missing_value = "true", value_name = "VALUE")]
    pub sbom: Option<String>,
    /// `--attest type=provenance,…`, or `type=sbom[,disabled=true]`.
    #[arg(long, hide = true, value_name = "SPEC")]
    pub attest: Vec<String>,
    /// How RUN steps are isolated: `sandbox` (kiln's namespace sandbox), `chroot` (a
    /// chroot of the step's root, for containers that may not make namespaces: no
    /// further isolation) or `auto` (the default, also docker's `default`): the sandbox
    /// where it can start, else chroot, announced.
    #[arg(long, env = "KILN_ISOLATION", value_name = "auto|sandbox|chroot")]
    pub isolation: Option<String>,
    /// Refused: kiln has no builder instances.
    #[arg(long, hide = true, value_name = "NAME")]
    pub builder: Option<String>,
    /// Refused: RUN steps are not placed in a caller's cgroup.
    #[arg(long = "cgroup-parent", hide = true, value_name = "PATH")]
    pub cgroup_parent: Option<String>,
    /// Refused: no resource limits on RUN.
    #[arg(short = 'm', long, hide = true, value_name = "BYTES")]
    pub memory: Option<String>,
    /// Refused: no resource limits on RUN.
    #[arg(long = "memory-swap", hide = true, value_name = "BYTES")]
    pub memory_swap: Option<String>,
    /// Refused: no resource limits on RUN.
    #[arg(short = 'c', long = "cpu-shares", hide = true, value_name = "N")]
    pub cpu_shares: Option<String>,
    /// Refused: no resource limits on RUN.
    #[arg(long = "cpu-period", hide = true, value_name = "N")]
    pub cpu_period: Option<String>,
    /// Refused: no resource limits on RUN.
    #[arg(long = "cpu-quota", hide = true, value_name = "N")]
    pub cpu_quota: Option<String>,
    /// Refused: no resource limits on RUN.
    #[arg(long = "cpuset-cpus", hide = true, value_name = "CPUS")]
    pub cpuset_cpus: Option<String>,
    /// Refused: no resource limits on RUN.
    #[arg(long = "cpuset-mems", hide = true, value_name = "MEMS")]
    pub cpuset_mems: Option<String>,
    /// Refused: use `RUN --security=insecure` with `--allow security.insecure`.
    #[arg(long = "security-opt", hide = true, value_name = "OPT")]
    pub security_opt: Vec<String>,
    /// Refused: removed by BuildKit.
    #[arg(long, hide = true)]
    pub squash: bool,
    /// Refused: kiln reads the context in place; there is nothing to compress.
    #[arg(long, hide = true)]
    pub compress: bool,
}

/// A docker flag kiln does not support, or a value of one it does not.
#[derive(Debug, thiserror::Error)]
#[error("{flag} is not supported by kiln: {why}")]
pub struct Unsupported {
    /// The flag as given (`--squash`, `--provenance=max`).
    pub flag: String,
    /// Why, and what to use instead.
    pub why: &'static str,
}

const LIMITS: &str =
    "RUN steps get no cgroup resource limits (BuildKit ignores this legacy-builder flag too); drop it";

impl DockerFlags {
    /// The attestations `--provenance`, `--sbom` and `--attest` ask for,
    /// with `no_default` the value of `BUILDX_NO_DEFAULT_ATTESTATIONS`.
    pub fn attest_options(
        &self,
        no_default: Option<&str>,
    ) -> Result<crate::attest::AttestOptions, crate::attest::OptionsError> {
        crate::attest::AttestOptions::from_flags(
            self.provenance.as_deref(),
            self.sbom.as_deref(),
            &self.attest,
            no_default,
        )
    }

    /// Refuses the first flag kiln cannot honour with docker's meaning.
    pub fn check(&self) -> Result<(), Unsupported> {
        let refuse = |flag: String, why| Err(Unsupported { flag, why });
        if let Some(v) = self
            .isolation
            .as_deref()
            .filter(|v| crate::builder::Isolation::parse(v).is_none())
        {
            return refuse(
                format!("--isolation {v}"),
                "kiln's isolations are auto (docker's default), sandbox and chroot",
            );
        }
        if let Some(v) = &self.builder {
            return refuse(
                format!("--builder {v}"),
                "kiln builds in its own process and has no builder instances; drop the flag",
            );
        }
        if let Some(v) = &self.cgroup_parent {
            return refuse(
                format!("--cgroup-parent {v}"),
                "RUN steps are not placed in a caller-chosen cgroup; run kiln itself in that cgroup",
            );
        }
        let limits = [
            ("--memory", &self.memory),
            ("--memory-swap", &self.memory_swap),
            ("--cpu-shares", &self.cpu_shares),
            ("--cpu-period", &self.cpu_period),
            ("--cpu-quota", &self.cpu_quota),
            ("--cpuset-cpus", &self.cpuset_cpus),
            ("--cpuset-mems", &self.cpuset_mems),
        ];
        if let Some((flag, Some(v))) = limits.iter().find(|(_, v)| v.is_some()) {
            return refuse(format!("{flag} {v}"), LIMITS);
        }
        // The first flag given of these, as written, with what to do instead.
        let others: [(Option<String>, &str); 3] = [
            (
                self.security_opt
                    .first()
                    .map(|v| format!("--security-opt {v}")),
                "use `RUN --security=insecure` with `--allow security.insecure`, as with BuildKit",
            ),
            (
                self.squash.then(|| "--squash".into()),
                "BuildKit removed it; squash with a multi-stage build (COPY --from=STAGE / .)",
            ),
            (
                self.compress.then(|| "--compress".into()),
                "kiln reads the context in place, nothing is sent to compress; drop the flag",
            ),
        ];
        if let Some((Some(flag), why)) = others.into_iter().find(|(f, _)| f.is_some()) {
            return refuse(flag, why);
        }
        // COMPAT(buildkit): --rm and --force-rm are accepted and do nothing in
        // buildx too: no intermediate containers outlive a step.
        let _ = (self.rm, self.force_rm);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attestation_flags_are_read_not_refused_here() {
        let mut f = DockerFlags {
            provenance: Some("mode=max".into()),
            sbom: Some("0".into()),
            attest: vec![],
            isolation: Some("default".into()),
            rm: Some(true),
            ..Default::default()
        };
        assert!(f.check().is_ok());
        assert!(f.attest_options(None).unwrap().provenance.is_some());
        f.sbom = Some("true".into());
        assert!(f.attest_options(None).unwrap().sbom);
        f.sbom = Some("generator=x/y".into());
        let e = f.attest_options(None).unwrap_err().to_string();
        assert!(e.contains("generator=x/y is not supported"), "{e}");
    }
}
