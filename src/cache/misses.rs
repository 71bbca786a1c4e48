//! Why the latest build missed: each missed step of the newest build log is
//! compared with the same step (same Dockerfile and context, same stage and
//! step index) in the closest earlier build, field by field when both keys'
//! pre-images were stored (`--debug-cache`).
//!
//! Invariant: it never guesses. Without pre-images it says which key
//! changed and that it cannot tell why; with the same key as before it says
//! the record was not used, not that something changed.

use std::fmt::Write as _;

use serde_json::Value;

use super::{diff_listings, BuildLog, CacheError, FieldChange, LoggedStep, StepCache, StepKey};

/// Why one step missed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MissReason {
    /// No earlier build ran this step position.
    FirstBuild,
    /// Same key as before: the record was skipped (`--no-cache`,
    /// `--no-cache-filter`), pruned, or its layer blob was gone.
    RecordNotUsed,
    /// The key changed: these fields of its pre-image differ, and (when
    /// both keys' input listings were stored) these context files.
    Changed {
        /// The changed fields.
        fields: Vec<FieldChange>,
        /// `path changed|added|removed`, for the files the key read.
        files: Vec<String>,
    },
    /// The key changed, and the pre-image of this key is not stored.
    NoPreimage(StepKey),
}

/// One missed step and its reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepExplanation {
    /// The step in the latest build.
    pub step: LoggedStep,
    /// The key the step had in the closest earlier build.
    pub previous: Option<StepKey>,
    /// Why it missed.
    pub reason: MissReason,
}

impl StepCache {
    /// Explains every missed step of the newest build log (empty when it
    /// hit everything, or no build was logged).
    pub fn explain_latest(&self) -> Result<Vec<StepExplanation>, CacheError> {
        let logs = self.logs()?;
        let Some((latest, older)) = logs.split_last() else {
            return Ok(vec![]);
        };
        let mut out = vec![];
        for step in latest.steps.iter().filter(|s| !s.hit) {
            out.push(self.explain_step(step, latest, older)?);
        }
        Ok(out)
    }

    /// Explains the misses of the newest logged build that made `image`
    /// (an image ID, the config digest); `None` when no logged build made it.
    pub fn explain_image(
        &self,
        image: &crate::oci::Digest,
    ) -> Result<Option<Vec<StepExplanation>>, CacheError> {
        let logs = self.logs()?;
        let Some(i) = logs.iter().rposition(|l| l.image.as_ref() == Some(image)) else {
            return Ok(None);
        };
        let mut out = vec![];
        for step in logs[i].steps.iter().filter(|s| !s.hit) {
            out.push(self.explain_step(step, &logs[i], &logs[..i])?);
        }
        Ok(Some(out))
    }

    /// Explains `key` against the same step in the build before the one
    /// that logged it; `None` when no build logged it.
    pub fn explain_key(&self, key: &StepKey) -> Result<Option<StepExplanation>, CacheError> {
        let logs = self.logs()?;
        for (i, log) in logs.iter().enumerate().rev() {
            if let Some(step) = log.steps.iter().find(|s| s.key == *key) {
                return self.explain_step(step, log, &logs[..i]).map(Some);
            }
        }
        Ok(None)
    }

    fn explain_step(
        &self,
        step: &LoggedStep,
        log: &BuildLog,
        older: &[BuildLog],
    ) -> Result<StepExplanation, CacheError> {
        let previous = older
            .iter()
            .rev()
            .filter(|l| l.same_build(log))
            .find_map(|l| {
                l.steps
                    .iter()
                    .find(|s| s.stage == step.stage && s.index == step.index)
            })
            .map(|s| s.key);
        let reason = match previous {
            None => MissReason::FirstBuild,
            Some(p) if p == step.key => MissReason::RecordNotUsed,
            Some(p) => match self.explain(&p, &step.key) {
                Ok(fields) => MissReason::Changed {
                    files: self.changed_files(&p, &step.key, &fields)?,
                    fields,
                },
                Err(CacheError::NoPreimage { key }) => MissReason::NoPreimage(key),
                Err(e) => return Err(e),
            },
        };
        Ok(StepExplanation {
            step: step.clone(),
            previous,
            reason,
        })
    }
}

impl StepCache {
    /// The context files behind changed inputs, when both listings exist.
    fn changed_files(
        &self,
        before: &StepKey,
        after: &StepKey,
        fields: &[FieldChange],
    ) -> Result<Vec<String>, CacheError> {
        let reads_context = fields
            .iter()
            .any(|c| c.path.starts_with("inputs") || c.path.contains(".from.context"));
        if !reads_context {
            return Ok(vec![]);
        }
        match (self.inputs(before)?, self.inputs(after)?) {
            (Some(a), Some(b)) => Ok(diff_listings(&a, &b)),
            _ => Ok(vec![]),
        }
    }
}

fn show(v: &Option<Value>) -> String {
    match v {
        None => "(absent)".into(),
        Some(v) => v.to_string(),
    }
}

/// One change as a line: `op.env[1]: "FOO=1" -> "FOO=2"`, with a word on
/// what the opaque fields mean.
pub fn describe_change(c: &FieldChange) -> String {
    let note = if c.path == "parent" {
        " (an earlier step changed)"
    } else if c.path.starts_with("inputs") {
        " (the content of the files it reads changed)"
    } else {
        ""
    };
    format!(
        "{}: {} -> {}{note}",
        c.path,
        show(&c.before),
        show(&c.after)
    )
}

/// The report `kiln cache explain` prints.
pub fn render(explanations: &[StepExplanation]) -> String {
    if explanations.is_empty() {
        return "the build used the cache for every step\n".into();
    }
    let mut s = String::new();
    for e in explanations {
        let _ = writeln!(s, "{}: missed", e.step.display);
        let _ = writeln!(s, "  key: {}", e.step.key);
        if let Some(p) = &e.previous {
            let _ = writeln!(s, "  previous key: {p}");
        }
        match &e.reason {
            MissReason::FirstBuild => {
                let _ = writeln!(s, "  no earlier build of this step is logged");
            }
            MissReason::RecordNotUsed => {
                let _ = writeln!(
                    s,
                    "  same key as before: the record was not used (--no-cache, \
                     --no-cache-filter, pruned, or its layer blob was gone)"
                );
            }
            MissReason::Changed { fields, files } => {
                for c in fields {
                    let _ = writeln!(s, "  {}", describe_change(c));
                }
                if !files.is_empty() {
                    let _ = writeln!(s, "  context files: {}", files.join(", "));
                }
            }
            MissReason::NoPreimage(k) => {
                let _ = writeln!(
                    s,
                    "  cannot tell which field changed: no pre-image stored for {k} \
                     (build with --debug-cache to record one)"
                );
            }
        }
    }
    s
}
