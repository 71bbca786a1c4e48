//! BuildKit's Dockerfile checks (`frontend/dockerfile/linter`): the rules with
//! their names, descriptions, URLs and messages verbatim, the `# check=`
//! directive and `BUILDKIT_DOCKERFILE_CHECK` build arg that configure them, and
//! the per-instruction `# check=skip=…` comments.
//!
//! Owns: which rule fires where (`rules`), how findings are printed as
//! buildx prints them (`report`), `--call=targets`' list of stages with
//! their descriptions (`targets`), which reads the same comments, and
//! `--call=outline`'s build args, secrets and SSH ids of the target
//! (`outline`). One rule is kiln's own, not BuildKit's: FrontendVersionPortability
//! (`portability`), which runs only when a minimum frontend version is known. Reads the parsed Dockerfile and, when there is
//! one, the build graph (which stages the target reaches, base image configs);
//! never expands anything the plan would expand differently, and never fails a
//! build by itself: `Report::error` says when `error=true` asks for that.
//!
//! Invariants: findings come in the order BuildKit emits them (parse-time
//! rules first, then per stage in instruction order); a skipped or
//! experimental-and-not-enabled rule never appears; no rule panics on any input
//! the parser accepts.

mod outline;
mod portability;
mod report;
mod rules;
mod targets;

use std::collections::BTreeSet;

pub use outline::{
    outline, render_outline_json, render_outline_text, Outline, OutlineArg, OutlineMount,
};
pub use portability::{FrontendVersion, Minimum, VersionError, FRONTEND_VERSION_PORTABILITY};
pub use report::{render_json, render_short, render_stop, render_text};
pub use targets::{render_targets_json, render_targets_text, targets, Target};

use crate::dockerfile::ignore::IgnorePatterns;
use crate::dockerfile::Dockerfile;
use crate::plan::BuildGraph;

/// One rule of BuildKit's rule set (`linter/ruleset.go`).
#[derive(Debug, PartialEq, Eq)]
pub struct Rule {
    /// Its name, e.g. `StageNameCasing`.
    pub name: &'static str,
    /// BuildKit's one-line description.
    pub description: &'static str,
    /// The documentation page (`None` for InvalidBaseImagePlatform, as in BuildKit).
    pub url: Option<&'static str>,
    /// Runs only when enabled with `experimental=`.
    pub experimental: bool,
}

macro_rules! rule {
    ($id:ident, $name:literal, $url:literal, $desc:literal) => {
        rule!($id, $name, $url, $desc, false);
    };
    ($id:ident, $name:literal, $url:literal, $desc:literal, $exp:literal) => {
        #[doc = $desc]
        pub static $id: Rule = Rule {
            name: $name,
            description: $desc,
            url: Some(concat!(
                "https://docs.docker.com/go/dockerfile/rule/",
                $url,
                "/"
            )),
            experimental: $exp,
        };
    };
}

rule!(
    STAGE_NAME_CASING,
    "StageNameCasing",
    "stage-name-casing",
    "Stage names should be lowercase"
);
rule!(
    FROM_AS_CASING,
    "FromAsCasing",
    "from-as-casing",
    "The 'as' keyword should match the case of the 'from' keyword"
);
rule!(
    NO_EMPTY_CONTINUATION,
    "NoEmptyContinuation",
    "no-empty-continuation",
    "Empty continuation lines will become errors in a future release"
);
rule!(
    CONSISTENT_INSTRUCTION_CASING,
    "ConsistentInstructionCasing",
    "consistent-instruction-casing",
    "All commands within the Dockerfile should use the same casing (either upper or lower)"
);
rule!(
    DUPLICATE_STAGE_NAME,
    "DuplicateStageName",
    "duplicate-stage-name",
    "Stage names should be unique"
);
rule!(
    RESERVED_STAGE_NAME,
    "ReservedStageName",
    "reserved-stage-name",
    "Reserved words should not be used as stage names"
);
rule!(JSON_ARGS_RECOMMENDED, "JSONArgsRecommended", "json-args-recommended", "JSON arguments recommended for ENTRYPOINT/CMD to prevent unintended behavior related to OS signals");
rule!(
    MAINTAINER_DEPRECATED,
    "MaintainerDeprecated",
    "maintainer-deprecated",
    "The MAINTAINER instruction is deprecated, use a label instead to define an image author"
);
rule!(
    UNDEFINED_ARG_IN_FROM,
    "UndefinedArgInFrom",
    "undefined-arg-in-from",
    "FROM command must use declared ARGs"
);
rule!(WORKDIR_RELATIVE_PATH, "WorkdirRelativePath", "workdir-relative-path", "Relative workdir without an absolute workdir declared within the build can have unexpected results if the base image changes");
rule!(
    UNDEFINED_VAR,
    "UndefinedVar",
    "undefined-var",
    "Variables should be defined before their use"
);
rule!(
    MULTIPLE_INSTRUCTIONS_DISALLOWED,
    "MultipleInstructionsDisallowed",
    "multiple-instructions-disallowed",
    "Multiple instructions of the same type should not be used in the same stage"
);
rule!(
    LEGACY_KEY_VALUE_FORMAT,
    "LegacyKeyValueFormat",
    "legacy-key-value-format",
    "Legacy key/value format with whitespace separator should not be used"
);
rule!(REDUNDANT_TARGET_PLATFORM, "RedundantTargetPlatform", "redundant-target-platform", "Setting platform to predefined $TARGETPLATFORM in FROM is redundant as this is the default behavior");
rule!(
    SECRETS_USED_IN_ARG_OR_ENV,
    "SecretsUsedInArgOrEnv",
    "secrets-used-in-arg-or-env",
    "Sensitive data should not be used in the ARG or ENV commands"
);
rule!(
    INVALID_DEFAULT_ARG_IN_FROM,
    "InvalidDefaultArgInFrom",
    "invalid-default-arg-in-from",
    "Default value for global ARG results in an empty or invalid base image name"
);
rule!(
    FROM_PLATFORM_FLAG_CONST_DISALLOWED,
    "FromPlatformFlagConstDisallowed",
    "from-platform-flag-const-disallowed",
    "FROM --platform flag should not use a constant value"
);
// COMPAT(buildkit): experimental in BuildKit 0.25 (the reference); later releases enable it.
rule!(
    COPY_IGNORED_FILE,
    "CopyIgnoredFile",
    "copy-ignored-file",
    "Attempting to Copy file that is excluded by .dockerignore",
    true
);
rule!(INVALID_DEFINITION_DESCRIPTION, "InvalidDefinitionDescription", "invalid-definition-description", "Comment for build stage or argument should follow the format: `# <arg/stage name> <description>`. If this is not intended to be a description comment, add an empty line or comment between the instruction and the comment.", true);
rule!(
    EXPOSE_PROTO_CASING,
    "ExposeProtoCasing",
    "expose-proto-casing",
    "Protocol in EXPOSE instruction should be lowercase"
);
rule!(EXPOSE_INVALID_FORMAT, "ExposeInvalidFormat", "expose-invalid-format", "IP address and host-port mapping should not be used in EXPOSE instruction. This will become an error in a future release");

/// Every BuildKit rule kiln checks, in BuildKit's `ruleset.go` order (kiln's
/// own [`FRONTEND_VERSION_PORTABILITY`] is not in the list). BuildKit's
/// InvalidBaseImagePlatform is not here: kiln refuses a base image whose
/// config names another platform than its stage's before any check could
/// fire.
pub static RULES: &[&Rule] = &[
    &STAGE_NAME_CASING,
    &FROM_AS_CASING,
    &NO_EMPTY_CONTINUATION,
    &CONSISTENT_INSTRUCTION_CASING,
    &DUPLICATE_STAGE_NAME,
    &RESERVED_STAGE_NAME,
    &JSON_ARGS_RECOMMENDED,
    &MAINTAINER_DEPRECATED,
    &UNDEFINED_ARG_IN_FROM,
    &WORKDIR_RELATIVE_PATH,
    &UNDEFINED_VAR,
    &MULTIPLE_INSTRUCTIONS_DISALLOWED,
    &LEGACY_KEY_VALUE_FORMAT,
    &REDUNDANT_TARGET_PLATFORM,
    &SECRETS_USED_IN_ARG_OR_ENV,
    &INVALID_DEFAULT_ARG_IN_FROM,
    &FROM_PLATFORM_FLAG_CONST_DISALLOWED,
    &COPY_IGNORED_FILE,
    &INVALID_DEFINITION_DESCRIPTION,
    &EXPOSE_PROTO_CASING,
    &EXPOSE_INVALID_FORMAT,
];

/// One rule violation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The rule.
    pub rule: &'static Rule,
    /// The formatted message (BuildKit's `detail`).
    pub detail: String,
    /// First physical line of the instruction it points at (1-based).
    pub start_line: usize,
    /// Last physical line.
    pub end_line: usize,
}

impl Finding {
    /// buildx's one-line form: `Rule: message (line N)`.
    pub fn short(&self) -> String {
        format!(
            "{}: {} (line {})",
            self.rule.name, self.detail, self.start_line
        )
    }
}

/// A `check=` value that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum LintError {
    /// `key=value` without `=`, or an unknown key.
    #[error("invalid check option {0:?}")]
    Option(String),
    /// `error=` not a boolean.
    #[error("failed to parse check option {0:?}: invalid syntax")]
    ErrorValue(String),
    /// The `BUILDKIT_DOCKERFILE_CHECK` build arg does not parse.
    #[error("failed to parse build-arg:BUILDKIT_DOCKERFILE_CHECK")]
    BuildArg(#[source] Box<LintError>),
}

/// What `# check=` (or `BUILDKIT_DOCKERFILE_CHECK`) asks for (BuildKit's `linter.Config`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    /// `skip=all`.
    pub skip_all: bool,
    /// `skip=A,B`.
    pub skip: BTreeSet<String>,
    /// `experimental=all`.
    pub experimental_all: bool,
    /// `experimental=A,B`.
    pub experimental: BTreeSet<String>,
    /// `error=true`: a build with findings fails.
    pub error: bool,
}

/// The values of `--name` among an instruction's flags, in order: `None`
/// for a bare `--name`, `Some(value)` for `--name=value`.
fn flag_values<'a>(
    inst: &'a crate::dockerfile::Instruction,
    name: &'a str,
) -> impl Iterator<Item = Option<&'a str>> + 'a {
    inst.flags.iter().filter_map(move |f| {
        let rest = f.strip_prefix("--")?.strip_prefix(name)?;
        match rest {
            "" => Some(None),
            _ => rest.strip_prefix('=').map(Some),
        }
    })
}

/// Go's `strconv.ParseBool`.
fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

fn rule_list(v: &str) -> BTreeSet<String> {
    v.split(',').map(|r| r.trim().to_string()).collect()
}

impl Config {
    /// Parses `skip=A,B;experimental=C;error=true` as BuildKit's `ParseLintOptions`.
    pub fn parse(value: &str) -> Result<Config, LintError> {
        let value = value.trim();
        let mut cfg = Config::default();
        if value.is_empty() {
            return Ok(cfg);
        }
        // COMPAT(buildkit): SplitN(…, ";", 3): a fourth part stays in the third.
        for part in value.splitn(3, ';') {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| LintError::Option(part.to_string()))?;
            let v = v.trim();
            match k.trim() {
                "skip" if v == "all" => cfg.skip_all = true,
                "skip" => cfg.skip = rule_list(v),
                "experimental" if v == "all" => cfg.experimental_all = true,
                "experimental" => cfg.experimental = rule_list(v),
                "error" => {
                    cfg.error =
                        parse_bool(v).ok_or_else(|| LintError::ErrorValue(part.to_string()))?
                }
                other => return Err(LintError::Option(other.to_string())),
            }
        }
        Ok(cfg)
    }

    /// This config with `other`'s skips and experiments added (BuildKit's
    /// `WithMergedConfig`: `error` is not merged).
    fn merged(&self, other: &Config) -> Config {
        let mut out = self.clone();
        out.skip_all |= other.skip_all;
        out.experimental_all |= other.experimental_all;
        out.skip.extend(other.skip.iter().cloned());
        out.experimental.extend(other.experimental.iter().cloned());
        out
    }

    /// The config for one instruction: the first `check=…` among the comments
    /// just above it merged in (an unreadable one leaves the config as it is).
    fn for_comments(&self, comments: &[String]) -> Config {
        for c in comments {
            let Some((name, value)) = c.split_once('=') else {
                continue;
            };
            if !name.trim().eq_ignore_ascii_case("check") {
                continue;
            }
            let value = value.trim();
            let value = value.split(' ').next().unwrap_or("");
            return match Config::parse(value) {
                Ok(other) => self.merged(&other),
                Err(_) => self.clone(),
            };
        }
        self.clone()
    }

    /// Whether `rule` runs under this config.
    pub fn enabled(&self, rule: &Rule) -> bool {
        if rule.experimental {
            self.experimental_all || self.experimental.contains(rule.name)
        } else {
            !(self.skip_all || self.skip.contains(rule.name))
        }
    }
}

/// What the checks read besides the Dockerfile.
#[derive(Debug, Default)]
pub struct Inputs<'a> {
    /// The context's `.dockerignore` (CopyIgnoredFile).
    pub ignore: Option<&'a IgnorePatterns>,
    /// The `--build-arg` values (BUILDKIT_DOCKERFILE_CHECK; build args count as defined).
    pub build_args: Option<&'a std::collections::BTreeMap<String, String>>,
    /// The planned build: the unset names its expansions met (UndefinedVar),
    /// which stages the target reaches and their base images' configs.
    pub graph: Option<&'a BuildGraph>,
    /// Run the dispatch-time rules on every stage (`--check`, as BuildKit's
    /// lint), not only on those the target reaches (a build).
    pub all_stages: bool,
    /// `--check-frontend-version`: the oldest Dockerfile frontend the file
    /// must work with (kiln's FrontendVersionPortability; the file's
    /// `# syntax=docker/dockerfile:1.N` pin counts too).
    pub frontend_version: Option<FrontendVersion>,
}

/// An error BuildKit's lint run stops at (a FROM whose base name expands to
/// nothing): the rules after it do not run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stop {
    /// BuildKit's message.
    pub message: String,
    /// First line of the instruction.
    pub start_line: usize,
    /// Last line.
    pub end_line: usize,
}

/// The checks' result.
#[derive(Debug, Default)]
pub struct Report {
    /// The findings, in the order BuildKit emits them.
    pub findings: Vec<Finding>,
    /// Where the checks stopped early (the build fails there too).
    pub stop: Option<Stop>,
    /// `error=true` was asked for (the build fails when there are findings).
    pub error_on_findings: bool,
}

impl Report {
    /// BuildKit's `lint violation found for rules: A, B` when `error=true` and
    /// anything fired.
    pub fn error(&self) -> Option<String> {
        if !self.error_on_findings || self.findings.is_empty() {
            return None;
        }
        let names: BTreeSet<&str> = self.findings.iter().map(|f| f.rule.name).collect();
        let names: Vec<&str> = names.into_iter().collect();
        Some(format!(
            "lint violation found for rules: {}",
            names.join(", ")
        ))
    }
}

/// The config a build uses: `BUILDKIT_DOCKERFILE_CHECK` replaces the directive.
pub fn config(df: &Dockerfile, inputs: &Inputs) -> Result<Config, LintError> {
    if let Some(v) = inputs
        .build_args
        .and_then(|a| a.get("BUILDKIT_DOCKERFILE_CHECK"))
    {
        return Config::parse(v).map_err(|e| LintError::BuildArg(Box::new(e)));
    }
    // COMPAT(buildkit): the directive's whole value is parsed (an unreadable
    // one fails the build); only per-instruction comments stop at a space.
    Config::parse(df.directive("check").unwrap_or(""))
}

/// Runs every enabled rule over `df`.
pub fn check(df: &Dockerfile, inputs: &Inputs) -> Result<Report, LintError> {
    let cfg = config(df, inputs)?;
    let (mut findings, stop) = rules::run(df, inputs, &cfg);
    // kiln's own rule, after BuildKit's; only when a minimum is known.
    if let Some(min) = Minimum::choose(df, inputs.frontend_version) {
        findings.extend(portability::run(df, &cfg, &min));
    }
    Ok(Report {
        findings,
        stop,
        error_on_findings: cfg.error,
    })
}
