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
