//! Metadata instructions, flags, history text and the config a stage ends with.

use super::*;

#[test]
fn env_pairs_in_one_instruction_see_the_old_values() {
    let g = plan("FROM scratch\nENV A=1\nENV A=2 B=$A C=\"x y\"\n").unwrap();
    let env = &g.target_stage().config.config.env;
    assert!(env.contains(&"A=2".to_string()));
    assert!(env.contains(&"B=1".to_string()));
    assert!(env.contains(&"C=x y".to_string()));
    assert_eq!(created_by(&g)[1], "ENV A=2 B=1 C=x y");
}

#[test]
fn entrypoint_clears_an_inherited_cmd_but_not_one_set_in_the_stage() {
    let g = plan("FROM busybox\nENTRYPOINT [\"/bin/app\"]\n").unwrap();
    let c = &g.target_stage().config.config;
    assert_eq!(c.entrypoint.as_deref(), Some(&["/bin/app".to_string()][..]));
    assert_eq!(c.cmd, None);
    let g = plan("FROM busybox\nCMD [\"a\"]\nENTRYPOINT run me\n").unwrap();
    let c = &g.target_stage().config.config;
    assert_eq!(c.cmd.as_deref(), Some(&["a".to_string()][..]));
    assert_eq!(created_by(&g)[1], r#"ENTRYPOINT ["/bin/sh" "-c" "run me"]"#);
}

#[test]
fn expose_expands_ranges_and_defaults_to_tcp() {
    let g = plan("FROM scratch\nARG P=80\nEXPOSE $P 8000-8001/udp\n").unwrap();
    let ports: Vec<&String> = g
        .target_stage()
        .config
        .config
        .exposed_ports
        .keys()
        .collect();
    assert_eq!(ports, ["80/tcp", "8000/udp", "8001/udp"]);
    assert_eq!(
        created_by(&g)[1],
        "EXPOSE map[80/tcp:{} 8000/udp:{} 8001/udp:{}]"
    );
}

#[test]
fn healthcheck_flags_become_nanoseconds() {
    let g = plan(
        "FROM scratch\nHEALTHCHECK --interval=30s --timeout=1m30s --retries=3 CMD curl -f x\n",
    )
    .unwrap();
    let h = g.target_stage().config.config.healthcheck.clone().unwrap();
    assert_eq!(h.test, ["CMD-SHELL", "curl -f x"]);
    assert_eq!(h.interval, Some(30_000_000_000));
    assert_eq!(h.timeout, Some(90_000_000_000));
    assert_eq!(h.retries, Some(3));
    assert_eq!(
        created_by(&g)[0],
        r#"HEALTHCHECK &{["CMD-SHELL" "curl -f x"] "30s" "1m30s" "0s" "0s" '\x03'}"#
    );
    let g = plan("FROM scratch\nHEALTHCHECK NONE\n").unwrap();
    assert_eq!(
        g.target_stage()
            .config
            .config
            .healthcheck
            .clone()
            .unwrap()
            .test,
        ["NONE"]
    );
    let err = plan("FROM scratch\nHEALTHCHECK --interval=5 CMD x\n").unwrap_err();
    assert!(err.to_string().contains("--interval"), "{err}");
    let err = plan("FROM scratch\nHEALTHCHECK --interval=10us CMD x\n").unwrap_err();
    assert!(err.to_string().contains("less than 1ms"), "{err}");
}

#[test]
fn unknown_flags_are_errors_naming_flag_and_instruction() {
    let err = plan("FROM busybox\nCOPY --bogus=1 a b\n").unwrap_err();
    assert_eq!(err.to_string(), "unknown flag for COPY: --bogus");
    let err = plan("FROM busybox\nADD --from=x a b\n").unwrap_err();
    assert_eq!(err.to_string(), "unknown flag for ADD: --from");
    let err = plan("FROM busybox\nRUN --privileged true\n").unwrap_err();
    assert_eq!(err.to_string(), "unknown flag for RUN: --privileged");
    let err = plan("FROM busybox\nRUN --network=bridge true\n").unwrap_err();
    assert!(err.to_string().contains("--network"), "{err}");
}

#[test]
fn unknown_instruction_suggests_the_nearest() {
    let err = plan("FROM busybox\nRNU true\n").unwrap_err();
    assert!(matches!(err, PlanError::Syntax(_)), "{err}");
    assert!(err.to_string().contains("RUN"), "{err}");
    assert_eq!(err.span().unwrap().start_line, 2);
}

#[test]
fn stage_without_path_gets_buildkit_default() {
    let g = plan("FROM scratch\nRUN true\n").unwrap();
    let path = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string();
    assert_eq!(
        g.target_stage().config.config.env,
        std::slice::from_ref(&path)
    );
    assert!(runs(&g)[0].env.contains(&path));
    let g = plan("FROM busybox\nRUN true\n").unwrap();
    assert_eq!(g.target_stage().config.config.env, ["PATH=/bin:/usr/bin"]);
}

#[test]
fn created_by_matches_buildkit_history() {
    let src = "FROM busybox\nARG A=1 B\nUSER app\nWORKDIR /w\nWORKDIR sub\nLABEL k=v\n\
               COPY --chown=app --chmod=644 a b ./\nCMD echo hi\nVOLUME /data /cache\n\
               STOPSIGNAL SIGINT\nSHELL [\"/bin/bash\", \"-c\"]\nRUN echo $A\nWORKDIR /\n";
    let g = plan(src).unwrap();
    assert_eq!(
        created_by(&g),
        [
            "ARG A=1 B",
            "USER app",
            "WORKDIR /w",
            "WORKDIR /w/sub",
            "LABEL k=v",
            "COPY --chown=app --chmod=644 a b ./ # buildkit",
            r#"CMD ["/bin/sh" "-c" "echo hi"]"#,
            "VOLUME [/data /cache]",
            "STOPSIGNAL SIGINT",
            "SHELL [/bin/bash -c]",
            "RUN |2 A=1 B= /bin/bash -c echo $A # buildkit",
            "WORKDIR /",
        ]
    );
    let empty: Vec<bool> = g
        .target_stage()
        .steps
        .iter()
        .map(|s| s.empty_layer)
        .collect();
    assert_eq!(
        empty,
        [true, true, false, false, true, false, true, true, true, true, false, true]
    );
    let r = runs(&g)[0];
    assert_eq!((r.user.as_str(), r.workdir.as_str()), ("app", "/w/sub"));
}

#[test]
fn cli_labels_apply_to_the_target_and_run_network_is_kept() {
    let o = PlanOptions {
        labels: BTreeMap::from([("org.x".to_string(), "1".to_string())]),
        ..Default::default()
    };
    let g = plan_with(
        "FROM busybox\nLABEL a=b\nRUN --network=none true\n",
        &o,
        &Fake::new(),
    )
    .unwrap();
    let labels = &g.target_stage().config.config.labels;
    assert_eq!(labels.get("org.x").map(String::as_str), Some("1"));
    assert_eq!(labels.get("a").map(String::as_str), Some("b"));
    assert_eq!(runs(&g)[0].network, NetworkMode::None);
}

#[test]
fn shell_must_be_json_and_changes_later_shell_forms() {
    let err = plan("FROM busybox\nSHELL /bin/bash -c\n").unwrap_err();
    assert!(err.to_string().contains("JSON form"), "{err}");
    let g = plan(
        "FROM busybox\nSHELL [\"/bin/ash\", \"-eo\", \"pipefail\", \"-c\"]\nRUN a | b\nCMD c\n",
    )
    .unwrap();
    assert_eq!(
        runs(&g)[0].argv,
        ["/bin/ash", "-eo", "pipefail", "-c", "a | b"]
    );
    let cmd = g.target_stage().config.config.cmd.clone().unwrap();
    assert_eq!(cmd, ["/bin/ash", "-eo", "pipefail", "-c", "c"]);
}

#[test]
fn user_volume_stopsignal_maintainer_set_the_config() {
    let src = "FROM scratch\nARG U=app\nUSER ${U}:grp\nVOLUME [\"/data\", \"/$U\"]\nSTOPSIGNAL SIGQUIT\nMAINTAINER Jo <jo@x>\n";
    let g = plan(src).unwrap();
    let cfg = &g.target_stage().config;
    assert_eq!(cfg.config.user.as_deref(), Some("app:grp"));
    assert_eq!(
        cfg.config.volumes.keys().collect::<Vec<_>>(),
        ["/app", "/data"]
    );
    assert_eq!(cfg.config.stop_signal.as_deref(), Some("SIGQUIT"));
    assert_eq!(cfg.author.as_deref(), Some("Jo <jo@x>"));
    assert_eq!(created_by(&g)[2], "VOLUME [/data /app]");
    let err = plan("FROM scratch\nSTOPSIGNAL SIGNOPE\n").unwrap_err();
    assert!(err.to_string().contains("invalid signal"), "{err}");
}

#[test]
fn legacy_env_form_and_backtick_escape() {
    let g = plan("FROM scratch\nENV GREETING hello   big world\n").unwrap();
    assert_eq!(
        g.target_stage().config.config.env_get("GREETING"),
        Some("hello   big world")
    );
    let g = plan("# escape=`\nFROM scratch\nENV A=x B=`$A\n").unwrap();
    assert_eq!(g.target_stage().config.config.env_get("B"), Some("$A"));
}
