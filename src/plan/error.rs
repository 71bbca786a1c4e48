//! `PlanError`: why a Dockerfile could not be lowered. Every variant that
//! comes from an instruction carries its `Span`, so the CLI can print the
//! Dockerfile excerpt; causes from other modules (shell expansion, parsing
//! ONBUILD triggers, image resolution) are kept as `source`.

use std::error::Error;

use crate::dockerfile::{ParseError, Span};

/// A boxed cause from another module.
pub type Cause = Box<dyn Error + Send + Sync>;

/// Why lowering failed.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// The Dockerfile has no FROM.
    #[error("dockerfile contains no stages to build")]
    NoStages,
    /// Something other than ARG before the first FROM.
    #[error("{keyword} before the first FROM: only ARG may come before it")]
    BeforeFrom {
        /// The instruction's lines.
        span: Span,
        /// The keyword as written.
        keyword: String,
    },
    /// An unknown instruction word (with the parser's did-you-mean), or an
    /// ONBUILD trigger of a base image that does not parse.
    #[error(transparent)]
    Syntax(#[from] ParseError),
    /// A `--flag` the instruction does not take.
    #[error("unknown flag for {instruction}: --{flag}")]
    UnknownFlag {
        /// The instruction's lines.
        span: Span,
        /// The instruction, upper-cased.
        instruction: String,
        /// The flag name without dashes.
        flag: String,
    },
    /// A flag given a value it does not accept.
    #[error("{instruction} --{flag}: invalid value {value:?}: {reason}")]
    FlagValue {
        /// The instruction's lines.
        span: Span,
        /// The instruction, upper-cased.
        instruction: String,
        /// The flag name.
        flag: String,
        /// The value as given.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The instruction's arguments are malformed.
    #[error("{instruction}: {reason}")]
    Arguments {
        /// The instruction's lines.
        span: Span,
        /// The instruction, upper-cased.
        instruction: String,
        /// What is wrong, e.g. `requires at least two arguments`.
        reason: String,
    },
    /// `$VAR` expansion failed (e.g. `${X?msg}` with X unset).
    #[error("{instruction}: expanding {}", elide(word))]
    Expand {
        /// The instruction's lines.
        span: Span,
        /// The instruction, upper-cased.
        instruction: String,
        /// The word being expanded.
        word: String,
        /// The shell lexer's error.
        source: Cause,
    },
    /// The Dockerfile's expansions together outgrew
    /// `MAX_EXPANDED_TOTAL` bytes (`plan/expand.rs`).
    #[error("{instruction}: expansions of this Dockerfile grow beyond {limit} bytes in all")]
    ExpansionBudget {
        /// The instruction's lines.
        span: Span,
        /// The instruction, upper-cased.
        instruction: String,
        /// The limit.
        limit: usize,
    },
    /// `AS name` that BuildKit would refuse.
    #[error("invalid stage name {name:?}: must start with a letter and contain only letters, digits, '-', '_' and '.'")]
    StageName {
        /// The FROM's lines.
        span: Span,
        /// The name as written.
        name: String,
    },
    /// Two stages with the same name.
    #[error("duplicate stage name {name:?}")]
    DuplicateStage {
        /// The second FROM's lines.
        span: Span,
        /// The name.
        name: String,
    },
    /// `FROM --platform` naming no platform kiln can build for.
    #[error("FROM --platform={platform}")]
    Platform {
        /// The FROM's lines.
        span: Span,
        /// The requested platform, expanded.
        platform: String,
        /// Why it was refused.
        #[source]
        source: crate::oci::PlatformParseError,
    },
    /// `--target` names no stage.
    #[error("target stage {target:?} could not be found (stages: {})", .stages.join(", "))]
    UnknownTarget {
        /// The requested target.
        target: String,
        /// The named stages.
        stages: Vec<String>,
    },
    /// A reached stage's image could not be resolved.
    #[error("resolving image {reference}")]
    Resolve {
        /// The instruction that named the image.
        span: Span,
        /// The reference.
        reference: String,
        /// The resolver's error.
        source: Cause,
    },
    /// `--from` naming the current stage or a later one.
    #[error(
        "cannot copy from stage {from:?}, it needs to be defined before current stage {current:?}"
    )]
    ForwardReference {
        /// The instruction's lines.
        span: Span,
        /// The `from` value.
        from: String,
        /// The current stage's name (or `stage-N`).
        current: String,
    },
    /// `--from=<n>` with no stage n before this one.
    #[error("invalid stage index {index}")]
    StageIndex {
        /// The instruction's lines.
        span: Span,
        /// The index.
        index: usize,
    },
    /// A `RUN --mount` option is wrong.
    #[error("RUN --mount: {key}: {reason}")]
    Mount {
        /// The RUN's lines.
        span: Span,
        /// The offending key (or the whole option).
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A base image's ONBUILD trigger does not parse.
    #[error("parsing ONBUILD trigger {trigger:?}")]
    OnBuildTrigger {
        /// The FROM's lines.
        span: Span,
        /// The trigger text.
        trigger: String,
        /// The parser's error.
        source: Cause,
    },
    /// A construct kiln does not support (named in `what`).
    #[error("{what} is not supported")]
    Unsupported {
        /// The instruction's lines.
        span: Span,
        /// The unsupported thing.
        what: String,
    },
}

/// `word` quoted, its middle elided when it is long: a word worth refusing can be
/// 48 KB of `${`, and the excerpt already shows where it is.
fn elide(word: &str) -> String {
    const KEEP: usize = 40;
    if word.chars().count() <= 2 * KEEP {
        return format!("{word:?}");
    }
    let head: String = word.chars().take(KEEP).collect();
    let tail: String = word
        .chars()
        .rev()
        .take(KEEP)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("{head:?}…{tail:?} ({} bytes)", word.len())
}

impl PlanError {
    /// The Dockerfile lines the error is about, when it has some.
    pub fn span(&self) -> Option<Span> {
        use PlanError::*;
        match self {
            NoStages | UnknownTarget { .. } => None,
            Syntax(e) => Some(e.span()),
            BeforeFrom { span, .. }
            | UnknownFlag { span, .. }
            | FlagValue { span, .. }
            | Arguments { span, .. }
            | Expand { span, .. }
            | ExpansionBudget { span, .. }
            | StageName { span, .. }
            | DuplicateStage { span, .. }
            | Platform { span, .. }
            | Resolve { span, .. }
            | ForwardReference { span, .. }
            | StageIndex { span, .. }
            | Mount { span, .. }
            | OnBuildTrigger { span, .. }
            | Unsupported { span, .. } => Some(*span),
        }
    }
}
