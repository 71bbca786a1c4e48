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
    let (code, err) = fail(&env, "FROM scratch\n", &["--platform", "windows/amd64"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("kiln builds linux images only"), "{err}");
    let (code, err) = fail(
        &env,
        "FROM scratch\n",
        &["--platform", "linux/arm64,linux/arm64/v8"],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("listed twice"), "{err}");
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

/// Regression (issue 11): `${a:-${a:-…}}` 8,000 deep, one 48 KB line, overflowed the
/// stack (exit 134). Now the nesting limit refuses it with the instruction's position.
#[test]
fn deeply_nested_substitution_is_a_dockerfile_error() {
    let env = Env::new();
    let n = 8000;
    let df = format!(
        "FROM scratch\nENV X={}x{}\n",
        "${a:-".repeat(n),
        "}".repeat(n)
    );
    let (code, err) = fail(&env, &df, &[]);
    assert_eq!(code, 2, "{}", &err[..err.len().min(2000)]);
    assert!(
        err.contains("--> Dockerfile:2:1"),
        "{}",
        &err[..err.len().min(2000)]
    );
    assert!(
        err.contains("nested deeper than 64 levels"),
        "{}",
        &err[..err.len().min(2000)]
    );
    // The 48 KB word is elided in the message, not printed whole.
    assert!(err.contains("(48001 bytes)"));
}

/// Regression (issue 11): `ENV A=${A}${A}` doubles per line; 40 lines reached 1.5 GB.
/// One expansion is capped at 1 MiB, which line 21 (2 × 2^19 + …) passes.
#[test]
fn doubling_env_is_capped() {
    let env = Env::new();
    let mut df = String::from("FROM scratch\nENV A=ab\n");
    for _ in 0..40 {
        df.push_str("ENV A=${A}${A}\n");
    }
    let (code, err) = fail(&env, &df, &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--> Dockerfile:22:1"), "{err}");
    assert!(err.contains("grows beyond 1048576 bytes"), "{err}");
}

/// `${v//?/$big}` multiplies `big` by the length of `v` inside one word: refused as
/// the result grows, not after building it.
#[test]
fn replace_all_is_capped_while_it_grows() {
    let env = Env::new();
    let mut df = String::from("FROM scratch\nENV A=0123456789abcdef\n");
    for _ in 0..12 {
        df.push_str("ENV A=${A}${A}\n");
    }
    // A is 64 KiB; each of its characters becomes 64 KiB: 4 GiB uncapped.
    df.push_str("ENV B=${A//?/$A}\n");
    let (code, err) = fail(&env, &df, &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--> Dockerfile:15:1"), "{err}");
    assert!(err.contains("grows beyond 1048576 bytes"), "{err}");
}

/// Many copies of a capped value on one line: the per-Dockerfile budget refuses
/// them (8,000 × 1 MiB would be 8 GB of labels).
#[test]
fn expansion_budget_spans_the_dockerfile() {
    let env = Env::new();
    let mut df = String::from("FROM scratch\nENV A=0123456789abcdef\n");
    for _ in 0..15 {
        df.push_str("ENV A=${A}${A}\n");
    }
    // A is 512 KiB; 200 labels of it are 100 MiB.
    df.push_str("LABEL");
    for i in 0..200 {
        df.push_str(&format!(" l{i}=$A"));
    }
    df.push('\n');
    let (code, err) = fail(&env, &df, &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--> Dockerfile:18:1"), "{err}");
    assert!(err.contains("grow beyond 67108864 bytes in all"), "{err}");
}

// Regression: an unreachable registry during COPY --from=image exited 2, as if
// the Dockerfile were bad; a network failure is an I/O error (3), while an image
// that is simply not there stays a Dockerfile error (2).
#[test]
fn an_unreachable_registry_is_an_io_error_not_a_bad_dockerfile() {
    let env = Env::new();
    // Nothing listens on a port the kernel just handed out and took back.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let df = format!("FROM scratch\nCOPY --from=127.0.0.1:{port}/x:1 /a /a\n");
    let (code, err) = fail(&env, &df, &[]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("Dockerfile:2:1"), "{err}");
    let (code, err) = fail(
        &env,
        "FROM scratch\nCOPY --from=nosuch /a /a\n",
        &["--pull=never"],
    );
    assert_eq!(code, 2, "{err}");
}
