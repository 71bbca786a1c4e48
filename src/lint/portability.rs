//! kiln's own rule FrontendVersionPortability: Dockerfile syntax that the
//! Dockerfile frontend the file is meant for cannot parse or run.
//!
//! BuildKit has no such check: a file that pins `# syntax=docker/dockerfile:1.4`
//! and uses `COPY --exclude` builds on the developer's kiln and fails in CI.
//! The minimum is the version the syntax directive pins, or kiln's
//! `--check-frontend-version`, the lower of the two when both are given;
//! without either the rule does not run (so kiln's output for every file
//! BuildKit was recorded on stays BuildKit's).
//!
//! The table says, per feature, the first `docker/dockerfile:1.N` release
//! that has it in the stable channel and, where it came through labs first,
//! the first `1.N-labs` release that has it. Sources, checked against the
//! BuildKit repository: the "Minimum Dockerfile version" tables of
//! `frontend/dockerfile/docs/reference.md` (BuildKit 0.25 and master), and
//! `frontend/dockerfile/release/labs/tags` at each `dockerfile/1.N.0` tag
//! (a build tag leaving that list is the feature reaching stable). Where the
//! two disagree the tags win, and the entry says why.
//!
//! Invariants: a finding names the feature and the version that introduced
//! it; the rule reads only the AST; no input panics it.

use crate::dockerfile::{Dockerfile, Instruction};

use super::{Config, Finding, Rule};

/// The rule. Its name is not one of BuildKit's (`linter/ruleset.go` has no
/// rule about frontend versions), so skip lists stay unambiguous.
pub static FRONTEND_VERSION_PORTABILITY: Rule = Rule {
    name: "FrontendVersionPortability",
    description: "Dockerfile features should be available in the Dockerfile frontend version the file pins or is checked against (kiln)",
    url: None,
    experimental: false,
};

/// A `docker/dockerfile` frontend version, `1.minor` (every release since
/// 1.0 is 1.x), from the labs channel or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrontendVersion {
    /// The minor version.
    pub minor: u32,
    /// A `-labs` release: labs features it has are allowed.
    pub labs: bool,
}

/// A `--check-frontend-version` value that is not `1.N[.P][-labs]`.
#[derive(Debug, thiserror::Error)]
#[error("invalid Dockerfile frontend version {0:?}: want 1.N, 1.N.P or 1.N-labs (e.g. 1.4)")]
pub struct VersionError(pub String);

impl FrontendVersion {
    /// Parses `1.N`, `1.N.P`, `1.N-labs`, `1.N.P-labs`.
    pub fn parse(s: &str) -> Result<FrontendVersion, VersionError> {
        let err = || VersionError(s.to_string());
        let (v, labs) = match s.strip_suffix("-labs") {
            Some(v) => (v, true),
            None => (s, false),
        };
        let mut parts = v.split('.');
        let (Some("1"), Some(minor)) = (parts.next(), parts.next()) else {
            return Err(err());
        };
        let minor: u32 = minor.parse().map_err(|_| err())?;
        match (parts.next(), parts.next()) {
            (None, _) => {}
            (Some(p), None) if p.parse::<u32>().is_ok() => {}
            _ => return Err(err()),
        }
        Ok(FrontendVersion { minor, labs })
    }

    /// The version a `# syntax=` directive pins: `[docker.io/]docker/dockerfile:1.N…`.
    /// `docker/dockerfile:1` (the newest 1.x), `dockerfile-upstream`, digests
    /// and other frontends pin no version.
    pub fn pinned(syntax: &str) -> Option<FrontendVersion> {
        let image = syntax.split('@').next().unwrap_or("").trim();
        let image = image.strip_prefix("docker.io/").unwrap_or(image);
        let tag = image.strip_prefix("docker/dockerfile:")?;
        FrontendVersion::parse(tag).ok()
    }

    fn allows(&self, f: &Feature) -> bool {
        self.minor >= f.stable || (self.labs && f.labs.is_some_and(|l| self.minor >= l))
    }

    fn show(&self) -> String {
        let labs = if self.labs { "-labs" } else { "" };
        format!("1.{}{labs}", self.minor)
    }
}

/// Where the minimum came from (said in each message).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Minimum {
    /// The `# syntax=` directive.
    Pinned(FrontendVersion),
    /// `--check-frontend-version`.
    Option(FrontendVersion),
}

impl Minimum {
    /// The lower of the file's pin and the option.
    pub fn choose(df: &Dockerfile, option: Option<FrontendVersion>) -> Option<Minimum> {
        let pin = df.directive("syntax").and_then(FrontendVersion::pinned);
        match (pin, option) {
            (Some(p), Some(o)) if o.minor < p.minor => Some(Minimum::Option(o)),
            (Some(p), _) => Some(Minimum::Pinned(p)),
            (None, Some(o)) => Some(Minimum::Option(o)),
            (None, None) => None,
        }
    }

    fn version(&self) -> FrontendVersion {
        match self {
            Minimum::Pinned(v) | Minimum::Option(v) => *v,
        }
    }

    fn source(&self) -> String {
        match self {
            Minimum::Pinned(v) => {
                format!("the syntax directive pins docker/dockerfile:{}", v.show())
            }
            Minimum::Option(v) => format!("checked against docker/dockerfile:{}", v.show()),
        }
    }
}

/// One feature of the table.
#[derive(Debug)]
struct Feature {
    /// What the message calls it.
    name: &'static str,
    /// First stable `1.N`.
    stable: u32,
    /// First `1.N-labs` with it, when it was in labs before stable.
    labs: Option<u32>,
}

macro_rules! feature {
    ($id:ident, $name:literal, $stable:literal) => {
        static $id: Feature = Feature {
            name: $name,
            stable: $stable,
            labs: None,
        };
    };
    ($id:ident, $name:literal, $stable:literal, labs $labs:literal) => {
        static $id: Feature = Feature {
            name: $name,
            stable: $stable,
            labs: Some($labs),
        };
    };
}

// reference.md, RUN's table: `--mount` 1.2 (earlier only in the
// `-experimental` channel).
feature!(RUN_MOUNT, "RUN --mount", 2);
// reference.md, RUN --mount=type=secret's `env` option: "since Dockerfile
// v1.10.0"; commands_runmount.go has `case "env"` from dockerfile/1.10.0.
feature!(SECRET_ENV, "RUN --mount=type=secret,env=", 10);
// reference.md: `--network` 1.3; labs/tags lists dfrunnetwork in 1.2 only.
feature!(RUN_NETWORK, "RUN --network", 3, labs 2);
// reference.md (master): `--security` 1.20 (0.25's table still says
// 1.1.2-labs); labs/tags lists dfrunsecurity from 1.2 through 1.19.
feature!(RUN_SECURITY, "RUN --security", 20, labs 2);
// labs/tags lists dfheredoc in 1.3 only; 1.4 is the first stable release
// that parses heredocs (reference.md's examples use `dockerfile:1.4`).
feature!(HEREDOC, "heredocs", 4, labs 3);
// reference.md, COPY and ADD tables: `--chmod` 1.2.
feature!(CHMOD, "--chmod", 2);
// reference.md: "With the Dockerfile syntax version 1.10.0 and later, the
// `--chmod` flag supports variable interpolation".
feature!(CHMOD_VARIABLE, "--chmod with a variable", 10);
// reference.md (master): "Symbolic notation (added in Dockerfile version
// 1.14)"; commit 165f8b441 "bring copy --chmod non-octal out of labs".
feature!(CHMOD_SYMBOLIC, "--chmod in symbolic notation", 14);
// reference.md, COPY and ADD tables: `--link` 1.4.
feature!(LINK, "--link", 4);
// reference.md: `--exclude` 1.19; labs/tags lists dfexcludepatterns 1.7–1.18.
feature!(EXCLUDE, "--exclude", 19, labs 7);
// reference.md (master): `--parents` 1.20 (0.25's table says 1.7-labs);
// labs/tags lists dfparents 1.7–1.19.
feature!(PARENTS, "COPY --parents", 20, labs 7);
// reference.md: ADD `--checksum` 1.6; labs/tags lists dfaddchecksum in 1.5.
feature!(ADD_CHECKSUM, "ADD --checksum", 6, labs 5);
// labs/tags lists dfaddgit in 1.5 only: a Git URL source is stable from
// 1.6 (before, ADD downloads the URL as a file).
feature!(ADD_GIT, "ADD of a Git repository", 6, labs 5);
// reference.md's ADD table says `--keep-git-dir` 1.1, which predates Git
// sources (dfaddgit, 1.5-labs/1.6); the flag only means something with
// one, so it counts as the Git source does.
feature!(ADD_KEEP_GIT_DIR, "ADD --keep-git-dir", 6, labs 5);
// reference.md (master): ADD `--unpack` 1.17; parse.go has it from
// dockerfile/1.17.0.
feature!(ADD_UNPACK, "ADD --unpack", 17);
// parse.go parses HEALTHCHECK `--start-interval` from dockerfile/1.6.0.
feature!(START_INTERVAL, "HEALTHCHECK --start-interval", 6);
// The `check` directive is read from dockerfile/1.8.0 (parser/directives.go);
// older frontends take the line for a comment and run no checks.
feature!(CHECK_DIRECTIVE, "the check directive", 8);
// shell/lex.go expands `${var#…}`, `${var%…}` and `${var/…/…}` from
// dockerfile/1.7.0 (not in 1.6.0; not behind a build tag). reference.md
// still calls them pre-release.
feature!(
    PATTERN_SUBST,
    "${var#…}, ${var%…} or ${var/…} substitution",
    7
);
// reference.md: "As of Dockerfile syntax 1.11, you can use ONBUILD with
// instructions that copy or mount files from other stages, images, or
// build contexts".
feature!(ONBUILD_FROM, "ONBUILD with --from", 11);

/// Instructions whose words BuildKit expands (`${…}` matters there only).
const EXPANDED: [&str; 11] = [
    "add",
    "arg",
    "copy",
    "env",
    "expose",
    "from",
    "label",
    "stopsignal",
    "user",
    "volume",
    "workdir",
];

/// `--name=value` (or a bare `--name`) among an instruction's flags.
fn flag<'a>(inst: &'a Instruction, name: &'a str) -> Vec<&'a str> {
    super::flag_values(inst, name)
        .map(|v| v.unwrap_or(""))
        .collect()
}

/// `${NAME#`, `${NAME%` or `${NAME/` not escaped.
fn has_pattern_subst(s: &str, escape: char) -> bool {
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i + 1 < chars.len() {
        if chars[i] == escape {
            i += 2;
            continue;
        }
        if chars[i] == '$' && chars[i + 1] == '{' {
            let mut j = i + 2;
            while j < chars.len() && (chars[j].is_ascii_alphanumeric() || chars[j] == '_') {
                j += 1;
            }
            if j > i + 2 && j < chars.len() && matches!(chars[j], '#' | '%' | '/') {
                return true;
            }
            i = j;
            continue;
        }
        i += 1;
    }
    false
}

/// `--chmod`'s feature: a variable, symbolic notation or plain octal.
fn chmod_feature(value: &str) -> &'static Feature {
    if value.contains('$') {
        &CHMOD_VARIABLE
    } else if !value.is_empty() && value.chars().all(|c| c.is_digit(8)) {
        &CHMOD
    } else {
        &CHMOD_SYMBOLIC
    }
}

/// The features one instruction uses (an ONBUILD's wrapped one included).
fn features<'a>(inst: &'a Instruction, escape: char, out: &mut Vec<(&'static Feature, &'a str)>) {
    let cmd = inst.command();
    let mut push = |f: &'static Feature| out.push((f, inst.keyword.as_str()));
    // An ONBUILD's heredocs sit on the ONBUILD itself.
    let heredoc_cmds = ["run", "copy", "add", "onbuild"];
    if heredoc_cmds.contains(&cmd.as_str()) && !inst.heredocs.is_empty() {
        push(&HEREDOC);
    }
    match cmd.as_str() {
        "run" => {
            let mounts = flag(inst, "mount");
            if !mounts.is_empty() {
                push(&RUN_MOUNT);
            }
            let secret_env = mounts.iter().any(|m| {
                let fields: Vec<&str> = m.split(',').map(str::trim).collect();
                fields.contains(&"type=secret") && fields.iter().any(|f| f.starts_with("env="))
            });
            if secret_env {
                push(&SECRET_ENV);
            }
            if !flag(inst, "network").is_empty() {
                push(&RUN_NETWORK);
            }
            if !flag(inst, "security").is_empty() {
                push(&RUN_SECURITY);
            }
        }
        "copy" | "add" => {
            if let Some(v) = flag(inst, "chmod").first() {
                push(chmod_feature(v));
            }
            if !flag(inst, "link").is_empty() {
                push(&LINK);
            }
            if !flag(inst, "exclude").is_empty() {
                push(&EXCLUDE);
            }
            if cmd == "copy" && !flag(inst, "parents").is_empty() {
                push(&PARENTS);
            }
        }
        "healthcheck" if !flag(inst, "start-interval").is_empty() => push(&START_INTERVAL),
        _ => {}
    }
    if cmd == "add" {
        if !flag(inst, "checksum").is_empty() {
            push(&ADD_CHECKSUM);
        }
        if !flag(inst, "keep-git-dir").is_empty() {
            push(&ADD_KEEP_GIT_DIR);
        }
        if !flag(inst, "unpack").is_empty() {
            push(&ADD_UNPACK);
        }
        let sources = &inst.args[..inst.args.len().saturating_sub(1)];
        if sources.iter().any(|s| crate::plan::is_git(s)) {
            push(&ADD_GIT);
        }
    }
    // RUN's command is the shell's; its flags (`--mount` values) are expanded.
    let words: &[String] = match EXPANDED.contains(&cmd.as_str()) {
        true => &inst.args,
        false => &[],
    };
    let expanded = cmd == "run" || EXPANDED.contains(&cmd.as_str());
    if expanded
        && words
            .iter()
            .chain(&inst.flags)
            .any(|w| has_pattern_subst(w, escape))
    {
        push(&PATTERN_SUBST);
    }
    if let (Some(sub), "onbuild") = (&inst.sub, cmd.as_str()) {
        let from =
            !flag(sub, "from").is_empty() || flag(sub, "mount").iter().any(|m| m.contains("from="));
        if from {
            out.push((&ONBUILD_FROM, inst.keyword.as_str()));
        }
        features(sub, escape, out);
    }
}

/// The message: the feature (a flag shared by COPY and ADD with the
/// instruction's keyword as written), the release that has it, the minimum.
fn finding(f: &Feature, keyword: &str, min: &Minimum, start: usize, end: usize) -> Finding {
    let labs = match f.labs {
        Some(l) => format!(" (1.{l}-labs in the labs channel)"),
        None => String::new(),
    };
    let name = match f.name.starts_with("--") {
        true => format!("{} {}", keyword.to_ascii_uppercase(), f.name),
        false => f.name.to_string(),
    };
    Finding {
        rule: &FRONTEND_VERSION_PORTABILITY,
        detail: format!(
            "{name} requires docker/dockerfile:1.{} or later{labs}; {}",
            f.stable,
            min.source()
        ),
        start_line: start,
        end_line: end,
    }
}

/// Every use of a feature `min` does not have, per instruction under its
/// comments' config, in file order.
pub(super) fn run(df: &Dockerfile, cfg: &Config, min: &Minimum) -> Vec<Finding> {
    let v = min.version();
    let mut out = Vec::new();
    if let Some(d) = df.directives.iter().find(|d| d.name == "check") {
        if cfg.enabled(&FRONTEND_VERSION_PORTABILITY) && !v.allows(&CHECK_DIRECTIVE) {
            out.push(finding(&CHECK_DIRECTIVE, "", min, d.line, d.line));
        }
    }
    for inst in &df.instructions {
        let icfg = cfg.for_comments(&inst.comments);
        if !icfg.enabled(&FRONTEND_VERSION_PORTABILITY) {
            continue;
        }
        let mut used = Vec::new();
        features(inst, df.escape, &mut used);
        let mut seen: Vec<&str> = Vec::new();
        for (f, keyword) in used {
            if !v.allows(f) && !seen.contains(&f.name) {
                seen.push(f.name);
                let (start, end) = (inst.span.start_line, inst.span.end_line);
                out.push(finding(f, keyword, min, start, end));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_as_the_syntax_tags_spell_them() {
        let v = |s| FrontendVersion::parse(s).ok();
        assert_eq!(
            v("1.4"),
            Some(FrontendVersion {
                minor: 4,
                labs: false
            })
        );
        assert_eq!(
            v("1.7.1"),
            Some(FrontendVersion {
                minor: 7,
                labs: false
            })
        );
        assert_eq!(
            v("1.7-labs"),
            Some(FrontendVersion {
                minor: 7,
                labs: true
            })
        );
        for bad in [
            "1",
            "2.0",
            "1.x",
            "1.4.x",
            "1.4.0.0",
            "",
            "-labs",
            "1.99999999999",
        ] {
            assert_eq!(v(bad), None, "{bad}");
        }
        let p = FrontendVersion::pinned;
        assert_eq!(p("docker/dockerfile:1.4").map(|v| v.minor), Some(4));
        assert_eq!(
            p("docker.io/docker/dockerfile:1.6.0").map(|v| v.minor),
            Some(6)
        );
        assert_eq!(
            p("docker/dockerfile:1.4@sha256:abc").map(|v| v.minor),
            Some(4)
        );
        assert_eq!(p("docker/dockerfile:1"), None);
        assert_eq!(p("docker/dockerfile-upstream:master"), None);
        assert_eq!(p("example.com/frontend:1.4"), None);
    }

    #[test]
    fn pattern_substitutions_are_found_unless_escaped() {
        assert!(has_pattern_subst("${A#x}", '\\'));
        assert!(has_pattern_subst("a${VERSION%.*}", '\\'));
        assert!(has_pattern_subst("${A/x/y}", '\\'));
        assert!(!has_pattern_subst("${A:-x}", '\\'));
        assert!(!has_pattern_subst("$A#x", '\\'));
        assert!(!has_pattern_subst("\\${A#x}", '\\'));
        assert!(!has_pattern_subst("${", '\\'));
    }

    /// The portability findings' messages for `src` with `--check-frontend-version option`.
    fn findings(src: &str, option: Option<&str>) -> Vec<String> {
        let df = crate::dockerfile::parse(src.as_bytes()).unwrap();
        let inputs = super::super::Inputs {
            frontend_version: option.map(|o| FrontendVersion::parse(o).unwrap()),
            ..Default::default()
        };
        let report = super::super::check(&df, &inputs).unwrap();
        report
            .findings
            .iter()
            .filter(|f| f.rule.name == FRONTEND_VERSION_PORTABILITY.name)
            .map(|f| format!("{}: {}", f.start_line, f.detail))
            .collect()
    }

    /// Per feature family: a line using it, the first stable minor, the
    /// first labs minor, how many features the line uses at that version.
    const CASES: &[(&str, u32, Option<u32>, usize)] = &[
        ("RUN <<EOF\ntrue\nEOF\n", 4, Some(3), 1),
        ("COPY <<EOF /f\nx\nEOF\n", 4, Some(3), 1),
        ("ONBUILD RUN <<EOF\ntrue\nEOF\n", 4, Some(3), 1),
        ("RUN --mount=type=cache,target=/c true\n", 2, None, 1),
        ("RUN --mount=type=secret,id=t,env=T true\n", 10, None, 1),
        ("RUN --network=none true\n", 3, Some(2), 1),
        ("RUN --security=insecure true\n", 20, Some(2), 1),
        ("COPY --chmod=755 a /b\n", 2, None, 1),
        ("ADD --chmod=0644 a /b\n", 2, None, 1),
        ("COPY --chmod=$MODE a /b\n", 10, None, 1),
        ("COPY --chmod=u+x a /b\n", 14, None, 1),
        ("COPY --link a /b\n", 4, None, 1),
        ("ADD --link a /b\n", 4, None, 1),
        ("COPY --exclude=*.md a /b\n", 19, Some(7), 1),
        ("ADD --exclude=*.md a /b\n", 19, Some(7), 1),
        ("COPY --parents a/b /c/\n", 20, Some(7), 1),
        (
            "ADD --checksum=sha256:00 https://example.com/x /x\n",
            6,
            Some(5),
            1,
        ),
        (
            "ADD https://github.com/moby/buildkit.git /src\n",
            6,
            Some(5),
            1,
        ),
        ("ADD git@github.com:moby/buildkit.git /src\n", 6, Some(5), 1),
        (
            "ADD --keep-git-dir=true https://github.com/moby/buildkit.git /src\n",
            6,
            Some(5),
            2,
        ),
        (
            "ADD --unpack=true https://example.com/x.tar /x\n",
            17,
            None,
            1,
        ),
        ("HEALTHCHECK --start-interval=1s CMD true\n", 6, None, 1),
        ("ENV A=${B#x}\n", 7, None, 1),
        ("WORKDIR /src/${VERSION%.*}\n", 7, None, 1),
        ("COPY --from=${IMG/x/y} a /b\n", 7, None, 1),
        ("RUN --mount=type=cache,target=/c/${V#x} true\n", 7, None, 1),
        ("ONBUILD COPY --from=build /a /b\n", 11, None, 1),
        (
            "ONBUILD RUN --mount=type=bind,from=build true\n",
            11,
            None,
            1,
        ),
    ];

    #[test]
    fn each_feature_fires_below_its_version_and_not_from_it() {
        for (line, stable, labs, n) in CASES {
            let src = format!("FROM busybox\n{line}");
            let below = format!("1.{}", stable - 1);
            let got = findings(&src, Some(&below));
            assert_eq!(got.len(), *n, "{line:?} at {below}: {got:?}");
            assert!(got[0].starts_with("2: "), "{got:?}");
            assert!(
                got[0].contains(&format!("requires docker/dockerfile:1.{stable} ")),
                "{got:?}"
            );
            assert!(
                got[0].ends_with(&format!("checked against docker/dockerfile:{below}")),
                "{got:?}"
            );
            let at = format!("1.{stable}");
            assert_eq!(
                findings(&src, Some(&at)),
                Vec::<String>::new(),
                "{line:?} at {at}"
            );
            if let Some(l) = labs {
                let labs_at = format!("1.{l}-labs");
                assert_eq!(
                    findings(&src, Some(&labs_at)),
                    Vec::<String>::new(),
                    "{line:?} at {labs_at}"
                );
                let labs_below = format!("1.{}-labs", l - 1);
                assert_eq!(
                    findings(&src, Some(&labs_below)).len(),
                    *n,
                    "{line:?} at {labs_below}"
                );
            }
            // Without a minimum the rule does not run.
            assert_eq!(findings(&src, None), Vec::<String>::new(), "{line:?}");
        }
    }

    #[test]
    fn plain_instructions_need_no_version() {
        let src = "FROM busybox AS b\nARG V=1\nENV A=${V:-x} B=$V\nCOPY --from=b --chown=1:1 a /b\nRUN echo ${V#x}\nADD https://example.com/x /x\nHEALTHCHECK --interval=5s CMD true\nONBUILD RUN true\n";
        assert_eq!(findings(src, Some("1.0")), Vec::<String>::new());
    }

    #[test]
    fn the_check_directive_needs_1_8() {
        let src = "# check=error=false\nFROM busybox\n";
        assert_eq!(
            findings(src, Some("1.7")),
            ["1: the check directive requires docker/dockerfile:1.8 or later; checked against docker/dockerfile:1.7"]
        );
        assert_eq!(findings(src, Some("1.8")), Vec::<String>::new());
    }

    #[test]
    fn the_pin_is_a_minimum_and_the_lower_of_pin_and_option_wins() {
        let src = "# syntax=docker/dockerfile:1.4\nFROM busybox\nCOPY --exclude=x a /b\nCOPY --link a /b\n";
        assert_eq!(
            findings(src, None),
            ["3: COPY --exclude requires docker/dockerfile:1.19 or later (1.7-labs in the labs channel); the syntax directive pins docker/dockerfile:1.4"]
        );
        // A higher option does not lift the pin.
        assert_eq!(findings(src, Some("1.20")).len(), 1);
        // A lower one is stricter.
        let got = findings(src, Some("1.3"));
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(
            got[1].contains("COPY --link")
                && got[1].ends_with("checked against docker/dockerfile:1.3")
        );
        // `:1` is the newest 1.x: no minimum.
        let floating = "# syntax=docker/dockerfile:1\nFROM busybox\nCOPY --exclude=x a /b\n";
        assert_eq!(findings(floating, None), Vec::<String>::new());
    }

    #[test]
    fn the_rule_is_skipped_like_any_other() {
        let src = "# syntax=docker/dockerfile:1.2\n# check=skip=FrontendVersionPortability\nFROM busybox\nCOPY --link a /b\n";
        assert_eq!(findings(src, None), Vec::<String>::new());
        let src = "# syntax=docker/dockerfile:1.2\nFROM busybox\n# check=skip=FrontendVersionPortability\nCOPY --link a /b\nCOPY --link a /c\n";
        assert_eq!(findings(src, None).len(), 1);
        assert!(findings(src, None)[0].starts_with("5: "));
    }

    #[test]
    fn chmod_kinds() {
        assert_eq!(chmod_feature("755").stable, 2);
        assert_eq!(chmod_feature("u+x").stable, 14);
        assert_eq!(chmod_feature("$MODE").stable, 10);
    }
}
