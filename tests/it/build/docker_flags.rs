//! The docker/buildx flags CI scripts pass: each is accepted with docker's
//! meaning or refused with exit 2 and an error that names it (never clap's
//! "unexpected argument").

use super::Env;

fn ctx(env: &Env) -> std::path::PathBuf {
    env.context(
        "ctx",
        &[("Dockerfile", "FROM scratch\nCOPY a /a\n"), ("a", "a")],
    )
}

#[test]
fn known_docker_flags_are_refused_by_name() {
    let env = Env::new();
    let ctx = ctx(&env);
    let refused: &[(&[&str], &str)] = &[
        (&["--squash"], "--squash is not supported by kiln"),
        (&["--compress"], "--compress is not supported by kiln"),
        (
            &["--builder", "ci"],
            "--builder ci is not supported by kiln",
        ),
        (
            &["--cgroup-parent", "/x"],
            "--cgroup-parent /x is not supported",
        ),
        (
            &["--isolation", "hyperv"],
            "--isolation hyperv is not supported",
        ),
        (&["-m", "1g"], "--memory 1g is not supported"),
        (
            &["--memory-swap", "2g"],
            "--memory-swap 2g is not supported",
        ),
        (&["-c", "2"], "--cpu-shares 2 is not supported"),
        (
            &["--cpu-period", "1000"],
            "--cpu-period 1000 is not supported",
        ),
        (
            &["--cpu-quota", "1000"],
            "--cpu-quota 1000 is not supported",
        ),
        (&["--cpuset-cpus", "0"], "--cpuset-cpus 0 is not supported"),
        (&["--cpuset-mems", "0"], "--cpuset-mems 0 is not supported"),
        (
            &["--security-opt", "seccomp=unconfined"],
            "--security-opt seccomp=unconfined is not supported",
        ),
        (
            &["--provenance=mode=max,filename=p.json"],
            "--provenance=mode=max,filename=p.json: filename is not supported",
        ),
        (
            &["--attest", "type=provenance,version=v0.2"],
            "version=v0.2 is not supported",
        ),
        (
            &["--attest", "type=provenance,oci-artifact=true"],
            "oci-artifact is not supported by kiln here: it is an output option",
        ),
        (
            &["--provenance=mode=maximal"],
            "invalid value \"maximal\" for mode",
        ),
        (&["--provenance=mode"], "is not key=value"),
        (
            &["--attest", "type=vex"],
            "unknown attestation type \"vex\"",
        ),
        (
            &["--sbom=generator=docker/buildkit-syft-scanner"],
            "generator=docker/buildkit-syft-scanner is not supported",
        ),
        (
            &["--attest", "type=sbom,generator=x/y"],
            "--attest type=sbom,generator=x/y: generator=x/y is not supported",
        ),
        (
            &["--call", "subrequests.describe"],
            "--call=subrequests.describe is not supported",
        ),
        (&["--call", "nope"], "invalid --call value"),
        (
            &["--cache-from", "type=gha"],
            "--cache-from type=gha is not supported",
        ),
        (
            &["--cache-to", "type=gha,mode=max"],
            "--cache-to type=gha is not supported",
        ),
        (
            &["--cache-to", "type=inline"],
            "--cache-to type=inline is not supported",
        ),
        (
            &["--cache-from", "type=s3,bucket=b"],
            "--cache-from type=s3 is not supported",
        ),
    ];
    for (flags, want) in refused {
        let mut args = vec!["build", "--progress", "quiet"];
        args.extend_from_slice(flags);
        args.push(ctx.to_str().unwrap());
        let out = env.kiln(&args, None);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flags:?}: {err}");
        assert!(err.contains(want), "{flags:?}: {err}");
    }
}

#[test]
fn buildkit_no_ops_and_disabled_attestations_are_accepted() {
    let env = Env::new();
    let ctx = ctx(&env);
    let c = ctx.to_str().unwrap();
    env.build(&[
        "--rm",
        "--force-rm=false",
        "--provenance=false",
        "--sbom=false",
        "--attest",
        "type=provenance,disabled=true",
        "--isolation",
        "default",
        "--secret",
        "type=file,id=s,src=/dev/null",
        "-t",
        "flags:1",
        c,
    ]);
    let (_, _, config) = env.image("flags:1");
    assert!(config.rootfs.diff_ids.len() == 1);
}

#[test]
fn load_puts_the_image_in_the_store() {
    let env = Env::new();
    let ctx = ctx(&env);
    let c = ctx.to_str().unwrap();
    let out = env.kiln(
        &[
            "build",
            "--progress",
            "plain",
            "--load",
            "--iidfile",
            env.path("iid").to_str().unwrap(),
            c,
        ],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("exporting to image"));
    let iid = std::fs::read_to_string(env.path("iid")).unwrap();
    // --load beside another output still lands in the store, named by -t.
    let dest = env.path("o.tar");
    env.build(&[
        "--load",
        "-t",
        "loaded:1",
        "-o",
        &format!("type=oci,dest={}", dest.display()),
        c,
    ]);
    let (_, _, config) = env.image("loaded:1");
    assert_eq!(config.rootfs.diff_ids.len(), 1);
    assert!(iid.starts_with("sha256:"));
}
