//! Failures: the Dockerfile excerpt (golden text in testdata/build/*.err),
//! the cause chain and the exit code (1 step, 2 usage/Dockerfile, 3 I/O).

use std::path::Path;

use super::Env;

fn golden(name: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/build")
        .join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Builds `dockerfile` (its name in messages is `Dockerfile`, relative to
/// the working directory) and returns (exit code, stderr without progress).
fn fail(env: &Env, dockerfile: &str, extra: &[&str]) -> (i32, String) {
    let ctx = env.context("ctx", &[("Dockerfile", dockerfile), ("a", "a")]);
    let mut args = vec!["build", "--progress", "quiet"];
    args.extend_from_slice(extra);
    args.push(".");
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_kiln"));
    cmd.arg("--root")
        .arg(env.root())
        .args(&args)
        .current_dir(&ctx);
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn missing_copy_source_shows_the_instruction() {
    let env = Env::new();
    let (code, err) = fail(
        &env,
        "FROM scratch\nCOPY a /a\nCOPY missing \\\n  /dst\n",
        &[],
    );
    assert_eq!(code, 1);
    assert_eq!(err, golden("missing-source.err"));
}

#[test]
fn unknown_instruction_is_a_dockerfile_error() {
    let env = Env::new();
    let (code, err) = fail(&env, "FROM scratch\nCOPPY a /a\n", &[]);
    assert_eq!(code, 2);
    assert_eq!(err, golden("unknown-instruction.err"));
}

#[test]
fn failing_run_reports_the_exit_code() {
    let env = Env::new();
    env.busybox();
    let (code, err) = fail(
        &env,
        "FROM busybox\nRUN echo about to fail && exit 3\n",
        &[],
    );
    assert_eq!(code, 1);
    assert_eq!(err, golden("run-fails.err"));
}

#[test]
fn usage_errors_exit_2() {
    let env = Env::new();
    let (code, err) = fail(&env, "FROM scratch\n", &["--platform", "linux/s390x"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("only for the host platform"), "{err}");
    let (code, err) = fail(&env, "FROM scratch\n", &["-o", "type=registry"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("needs a name"), "{err}");
    // --pull=never: a test never reaches a registry beyond loopback.
    let (code, err) = fail(&env, "FROM nothere:1\nCOPY a /a\n", &["--pull=never"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("not in the local store"), "{err}");
    let (code, _) = fail(&env, "FROM scratch\n", &["-f", "nope/Dockerfile"]);
    assert_eq!(code, 2);
}

#[test]
fn an_unwritable_output_is_an_io_error() {
    let env = Env::new();
    let (code, err) = fail(
        &env,
        "FROM scratch\nCOPY a /a\n",
        &["-o", "type=oci,dest=/nonexistent-dir/x.tar"],
    );
    assert_eq!(code, 3, "{err}");
    assert!(
        err.starts_with("error: writing /nonexistent-dir/x.tar"),
        "{err}"
    );
}
