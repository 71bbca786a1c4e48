//! The config-only instructions end to end, read back from the built image:
//! HEALTHCHECK (every option, then NONE), SHELL (and RUN using it), VOLUME,
//! MAINTAINER, ENTRYPOINT clearing an inherited CMD, ONBUILD recorded and its
//! triggers run by a child build, the predefined platform ARGs.

use std::fs;

use super::{created_by, Env};

#[test]
fn healthcheck_shell_volume_maintainer_and_platform_args() {
    let env = Env::new();
    env.busybox();
    let ctx = env.context(
        "ctx",
        &[(
            "Dockerfile",
            "FROM busybox\n\
             MAINTAINER Jane Doe <jane@example.com>\n\
             HEALTHCHECK --interval=30s --timeout=5s --start-period=1m --start-interval=2s --retries=4 \\\n  CMD [\"sh\", \"-c\", \"test -e /ok\"]\n\
             SHELL [\"/bin/sh\", \"-e\", \"-c\"]\n\
             ARG TARGETARCH\n\
             ARG TARGETOS\n\
             ARG BUILDPLATFORM\n\
             RUN echo \"$TARGETOS/$TARGETARCH built on $BUILDPLATFORM\" > /platform && echo $0 > /shell\n\
             VOLUME /data /cache\n\
             VOLUME [\"/logs\", \"/more\"]\n\
             ENTRYPOINT [\"/bin/sh\"]\n",
        )],
    );
    env.build(&["-t", "meta", ctx.to_str().unwrap()]);
    let (_, _, c) = env.image("meta");
    assert_eq!(c.author.as_deref(), Some("Jane Doe <jane@example.com>"));
    let hc = c.config.healthcheck.as_ref().expect("a healthcheck");
    assert_eq!(hc.test, ["CMD", "sh", "-c", "test -e /ok"]);
    assert_eq!(hc.interval, Some(30_000_000_000));
    assert_eq!(hc.timeout, Some(5_000_000_000));
    assert_eq!(hc.start_period, Some(60_000_000_000));
    assert_eq!(hc.start_interval, Some(2_000_000_000));
    assert_eq!(hc.retries, Some(4));
    assert_eq!(
        c.config.shell.as_deref(),
        Some(&["/bin/sh".to_string(), "-e".into(), "-c".into()][..])
    );
    let vols: Vec<&String> = c.config.volumes.keys().collect();
    assert_eq!(vols, ["/cache", "/data", "/logs", "/more"]);
    // ENTRYPOINT clears the CMD inherited from busybox (["sh"]).
    assert_eq!(c.config.cmd, None);
    let rootfs = env.rootfs("meta");
    let arch = kiln::oci::Platform::host().architecture;
    let platform = fs::read_to_string(rootfs.join("platform")).unwrap();
    assert_eq!(
        platform,
        format!("linux/{arch} built on linux/{arch}\n"),
        "predefined platform args reach RUN"
    );
    assert_eq!(
        fs::read_to_string(rootfs.join("shell")).unwrap(),
        "/bin/sh\n"
    );
    let hist = created_by(&c);
    assert!(
        hist.iter()
            .any(|(by, empty)| by.starts_with("RUN |3 TARGETARCH=")
                && by.contains(" /bin/sh -e -c echo ")
                && !empty),
        "RUN runs through the SHELL: {hist:?}"
    );

    // HEALTHCHECK NONE in a child disables the inherited check.
    let child = env.context(
        "child",
        &[(
            "Dockerfile",
            "FROM meta\nHEALTHCHECK NONE\nCMD [\"-c\", \"true\"]\n",
        )],
    );
    env.build(&["-t", "child", child.to_str().unwrap()]);
    let (_, _, c) = env.image("child");
    assert_eq!(c.config.healthcheck.unwrap().test, ["NONE"]);
    assert_eq!(
        c.config.entrypoint.as_deref(),
        Some(&["/bin/sh".to_string()][..])
    );
    assert_eq!(
        c.config.cmd.as_deref(),
        Some(&["-c".to_string(), "true".into()][..])
    );
}

#[test]
fn onbuild_triggers_are_recorded_and_run_in_the_child() {
    let env = Env::new();
    env.busybox();
    let base = env.context(
        "base",
        &[(
            "Dockerfile",
            "FROM busybox\nONBUILD COPY marker.txt /from-trigger.txt\nONBUILD RUN echo ran > /trigger-ran\n",
        )],
    );
    env.build(&["-t", "base", base.to_str().unwrap()]);
    let (_, _, c) = env.image("base");
    assert_eq!(
        c.config.on_build.as_deref(),
        Some(
            &[
                "COPY marker.txt /from-trigger.txt".to_string(),
                "RUN echo ran > /trigger-ran".into()
            ][..]
        )
    );
    let base_fs = env.rootfs("base");
    assert!(
        !base_fs.join("trigger-ran").exists(),
        "triggers do not run in the image that declares them"
    );

    let child = env.context(
        "child",
        &[
            ("marker.txt", "from the child's context"),
            (
                "Dockerfile",
                "FROM base\nRUN cat /from-trigger.txt > /seen\n",
            ),
        ],
    );
    env.build(&["-t", "child", child.to_str().unwrap()]);
    let (_, _, c) = env.image("child");
    // COMPAT(buildkit): triggers are consumed: the child's config does not carry them on.
    assert_eq!(c.config.on_build, None);
    let fs_ = env.rootfs("child");
    assert_eq!(
        fs::read_to_string(fs_.join("trigger-ran")).unwrap(),
        "ran\n"
    );
    assert_eq!(
        fs::read_to_string(fs_.join("seen")).unwrap(),
        "from the child's context"
    );
}
