//! `--log-level`, `--debug` and `RUST_LOG`: kiln's diagnostics on stderr.

use crate::build::Env;

#[test]
fn debug_logs_the_sandbox_launch_and_the_default_logs_nothing() {
    let (env, ctx) = Env::busybox_dockerfile("FROM busybox\nRUN echo hi > /f\n");
    let ctx = ctx.to_str().unwrap();
    let out = env.kiln(&["--debug", "build", "--progress", "quiet", ctx], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("starting the sandbox helper"), "{err}");
    assert!(
        err.contains(r#"argv=["/bin/sh", "-c", "echo hi > /f"]"#),
        "{err}"
    );

    // Quiet by default: no event reaches stderr without a flag or RUST_LOG.
    let out = env.kiln(&["build", "--progress", "quiet", "--no-cache", ctx], None);
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("sandbox helper"), "{err}");
}

#[test]
fn a_bad_log_level_is_a_usage_error() {
    let env = Env::new();
    let out = env.kiln(&["--log-level", "kiln=loud", "images"], None);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("invalid --log-level/RUST_LOG \"kiln=loud\""),
        "{err}"
    );
}
