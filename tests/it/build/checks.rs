//! The Dockerfile checks during a build: findings under the load vertex and
//! in buildx's summary block, the build still succeeding, and
//! `# check=error=true` (or `BUILDKIT_DOCKERFILE_CHECK`) turning them into a
//! failure.

use super::Env;

const DF: &str = "FROM busybox AS Base\nMAINTAINER me\nCMD echo hi\n";

#[test]
fn a_build_prints_its_findings_and_succeeds() {
    let (env, ctx) = Env::busybox_dockerfile(DF);
    let out = env.kiln(
        &["build", "--progress", "plain", ctx.to_str().unwrap()],
        None,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("#1 WARN: StageNameCasing: Stage name 'Base' should be lowercase (line 1)"),
        "{err}"
    );
    let summary = " 3 warnings found (use kiln build --check to expand):\n \
        - StageNameCasing: Stage name 'Base' should be lowercase (line 1)\n \
        - MaintainerDeprecated: Maintainer instruction is deprecated in favor of using label (line 2)\n \
        - JSONArgsRecommended: JSON arguments recommended for CMD to prevent unintended behavior related to OS signals (line 3)\n";
    assert!(err.ends_with(summary), "{err}");
}

#[test]
fn error_true_fails_the_build_and_the_build_arg_overrides_the_directive() {
    let (env, ctx) = Env::busybox_dockerfile(&format!("# check=error=true\n{DF}"));
    let ctx = ctx.to_str().unwrap();
    let out = env.kiln(&["build", "--progress", "plain", ctx], None);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(
            "lint violation found for rules: JSONArgsRecommended, MaintainerDeprecated, StageNameCasing"
        ),
        "{err}"
    );
    // COMPAT(buildkit): the build arg replaces the directive's whole config.
    let out = env.kiln(
        &[
            "build",
            "--progress",
            "plain",
            "--build-arg",
            "BUILDKIT_DOCKERFILE_CHECK=skip=all",
            ctx,
        ],
        None,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(!err.contains("WARN"), "{err}");
}

#[test]
fn check_runs_no_step_and_exits_1_on_findings() {
    let (env, ctx) = Env::busybox_dockerfile(DF);
    let out = env.kiln(&["build", "--check", ctx.to_str().unwrap()], None);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.starts_with("Check complete, 3 warnings have been found!\n"),
        "{text}"
    );
    let out = env.kiln(
        &[
            "build",
            "--call=check,ignorestatus=true",
            ctx.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(0));
    // Nothing was built: the store holds the base image only.
    let images = env.kiln(&["images"], None);
    let list = String::from_utf8_lossy(&images.stdout);
    assert_eq!(
        list.lines().filter(|l| !l.trim().is_empty()).count(),
        2,
        "{list}"
    );
}

#[test]
fn a_bad_check_directive_is_a_dockerfile_error() {
    let (env, ctx) = Env::busybox_dockerfile("# check=nope=1\nFROM busybox\n");
    let out = env.kiln(
        &["build", "--progress", "plain", ctx.to_str().unwrap()],
        None,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("invalid check option \"nope\""), "{err}");
}

/// kiln's FrontendVersionPortability: off without a minimum (BuildKit's
/// output stays BuildKit's), on with the syntax pin or
/// `--check-frontend-version`, in `--check` and in a build, skippable.
#[test]
fn the_portability_rule_needs_a_minimum_and_reports_in_checks_and_builds() {
    let df = "FROM busybox\nCOPY --link Dockerfile /d\nCMD [\"true\"]\n";
    let (env, ctx) = Env::busybox_dockerfile(df);
    let ctx_s = ctx.to_str().unwrap();
    let out = env.kiln(&["build", "--check", ctx_s], None);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert_eq!(text, "Check complete, no warnings found.\n");

    let out = env.kiln(
        &["build", "--check", "--check-frontend-version", "1.3", ctx_s],
        None,
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains(
            "WARNING: FrontendVersionPortability\nCOPY --link requires docker/dockerfile:1.4 or later; checked against docker/dockerfile:1.3\n"
        ),
        "{text}"
    );

    let out = env.kiln(
        &["build", "--check", "--check-frontend-version", "1", ctx_s],
        None,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("--check-frontend-version"), "{err}");

    // The pin alone turns it on; a build lists it and succeeds.
    std::fs::write(
        ctx.join("Dockerfile"),
        format!("# syntax=docker/dockerfile:1.3\n{df}"),
    )
    .unwrap();
    let out = env.kiln(&["build", "--progress", "plain", ctx_s], None);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let short = "FrontendVersionPortability: COPY --link requires docker/dockerfile:1.4 or later; the syntax directive pins docker/dockerfile:1.3 (line 3)";
    assert!(err.contains(&format!("WARN: {short}")), "{err}");
    assert!(err.contains(&format!(" - {short}\n")), "{err}");

    std::fs::write(
        ctx.join("Dockerfile"),
        format!("# syntax=docker/dockerfile:1.3\n# check=skip=FrontendVersionPortability\n{df}"),
    )
    .unwrap();
    let out = env.kiln(&["build", "--check", ctx_s], None);
    let text = String::from_utf8_lossy(&out.stdout);
    // The check directive itself needs 1.8, but the rule is skipped.
    assert_eq!(text, "Check complete, no warnings found.\n");
}
