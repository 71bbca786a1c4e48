//! `plan::lower` against small Dockerfiles, one rule per test, with a fake
//! image resolver whose configs the tests construct.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::error::Error;

use kiln::dockerfile::parse;
use kiln::oci::{media_type, ContainerConfig, Descriptor, Digest, ImageConfig, Platform};
use kiln::plan::{
    lower, Base, BuildGraph, CopyFrom, ImageResolver, MountFrom, NetworkMode, Op, PlanError,
    PlanOptions, ResolvedImage, RunMount, RunOp, Sharing, StageId,
};

/// Resolves the images it was given; records every reference asked for.
struct Fake {
    images: HashMap<String, ImageConfig>,
    asked: RefCell<Vec<String>>,
}

impl Fake {
    fn new() -> Self {
        let mut images = HashMap::new();
        images.insert(
            "busybox".to_string(),
            image(|c| {
                c.env = vec!["PATH=/bin:/usr/bin".into()];
                c.cmd = Some(vec!["sh".into()]);
            }),
        );
        images.insert("alpine".to_string(), image(|_| {}));
        Self {
            images,
            asked: RefCell::new(Vec::new()),
        }
    }

    fn with(mut self, name: &str, config: ImageConfig) -> Self {
        self.images.insert(name.into(), config);
        self
    }
}

fn image(f: impl FnOnce(&mut ContainerConfig)) -> ImageConfig {
    let mut c = ImageConfig {
        architecture: "amd64".into(),
        os: "linux".into(),
        ..Default::default()
    };
    f(&mut c.config);
    c
}

impl ImageResolver for Fake {
    fn resolve(
        &self,
        reference: &str,
        _platform: &Platform,
    ) -> Result<ResolvedImage, Box<dyn Error + Send + Sync>> {
        self.asked.borrow_mut().push(reference.to_string());
        let config = self
            .images
            .get(reference)
            .ok_or_else(|| format!("image {reference} not found"))?;
        Ok(ResolvedImage {
            reference: reference.into(),
            manifest: Descriptor::new(
                media_type::OCI_MANIFEST,
                Digest::of(reference.as_bytes()),
                1,
            ),
            config: config.clone(),
        })
    }
}

fn plan_with(src: &str, opts: &PlanOptions, fake: &Fake) -> Result<BuildGraph, PlanError> {
    let df = parse(src.as_bytes()).expect("test Dockerfile parses");
    lower(&df, opts, fake)
}

fn plan(src: &str) -> Result<BuildGraph, PlanError> {
    plan_with(src, &PlanOptions::default(), &Fake::new())
}

fn opts(args: &[(&str, &str)]) -> PlanOptions {
    PlanOptions {
        build_args: args
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..Default::default()
    }
}

fn runs(g: &BuildGraph) -> Vec<&RunOp> {
    g.target_stage()
        .steps
        .iter()
        .filter_map(|s| match &s.op {
            Op::Run(r) => Some(r),
            _ => None,
        })
        .collect()
}

fn created_by(g: &BuildGraph) -> Vec<&str> {
    g.target_stage()
        .steps
        .iter()
        .map(|s| s.created_by.as_str())
        .collect()
}

#[test]
fn global_arg_is_visible_in_a_stage_only_after_redeclaring_it() {
    let g = plan("ARG V=1\nFROM busybox\nRUN echo $V\nARG V\nRUN echo $V\n").unwrap();
    let r = runs(&g);
    assert!(!r[0].env.iter().any(|e| e.starts_with("V=")));
    assert!(r[1].env.contains(&"V=1".to_string()));
    assert_eq!(r[1].argv, ["/bin/sh", "-c", "echo $V"]);
    assert_eq!(
        created_by(&g)[2],
        "RUN |1 V=1 /bin/sh -c echo $V # buildkit"
    );
}

#[test]
fn build_arg_overrides_declared_args_and_unused_ones_are_reported() {
    let o = opts(&[("V", "2"), ("NOPE", "x"), ("TARGETARCH", "amd64")]);
    let g = plan_with("FROM busybox\nARG V=1\nRUN true\n", &o, &Fake::new()).unwrap();
    assert!(runs(&g)[0].env.contains(&"V=2".to_string()));
    assert_eq!(created_by(&g)[0], "ARG V=2");
    assert_eq!(g.unused_build_args, ["NOPE"]);
}

#[test]
fn global_arg_selects_the_base_image() {
    let src = "ARG BASE=busybox\nFROM $BASE\n";
    let g = plan(src).unwrap();
    assert!(matches!(&g.stages[0].base, Base::Image(i) if i.reference == "busybox"));
    let fake = Fake::new();
    let g = plan_with(src, &opts(&[("BASE", "alpine")]), &fake).unwrap();
    assert!(matches!(&g.stages[0].base, Base::Image(i) if i.reference == "alpine"));
    assert_eq!(*fake.asked.borrow(), ["alpine"]);
}

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
fn onbuild_triggers_of_a_base_image_run_first_and_are_consumed() {
    let base = image(|c| c.on_build = Some(vec!["RUN echo from-trigger".into()]));
    let fake = Fake::new().with("onbase", base);
    let g = plan_with(
        "FROM onbase\nRUN echo mine\n",
        &PlanOptions::default(),
        &fake,
    )
    .unwrap();
    let r = runs(&g);
    assert_eq!(r[0].argv[2], "echo from-trigger");
    assert_eq!(r[1].argv[2], "echo mine");
    assert_eq!(g.target_stage().steps[0].span.start_line, 1);
    assert_eq!(g.target_stage().config.config.on_build, None);
}

#[test]
fn onbuild_of_an_earlier_stage_runs_in_the_stage_built_on_it() {
    let g = plan("FROM busybox AS b\nONBUILD RUN echo trig\nFROM b\nRUN echo own\n").unwrap();
    assert_eq!(
        g.stages[0].config.config.on_build,
        Some(vec!["RUN echo trig".to_string()])
    );
    assert!(g.stages[0].steps.is_empty(), "ONBUILD writes no history");
    let r = runs(&g);
    assert_eq!(r.len(), 2);
    assert_eq!(r[0].argv[2], "echo trig");
    assert_eq!(g.target_stage().config.config.on_build, None);
    assert_eq!(g.stages[1].deps, [StageId(0)]);
}

#[test]
fn stages_the_target_does_not_reach_are_not_resolved_or_lowered() {
    let src =
        "FROM missing AS a\nRUN --mount=type=bogus x\nFROM busybox AS b\nRUN y\nFROM b AS c\n";
    let fake = Fake::new();
    let o = PlanOptions {
        target: Some("B".into()),
        ..Default::default()
    };
    let g = plan_with(src, &o, &fake).unwrap();
    assert_eq!(g.target, StageId(1));
    assert_eq!(
        g.stages.iter().map(|s| s.reached).collect::<Vec<_>>(),
        [false, true, false]
    );
    assert!(matches!(&g.stages[0].base, Base::Unresolved { reference } if reference == "missing"));
    assert!(g.stages[0].steps.is_empty());
    assert_eq!(*fake.asked.borrow(), ["busybox"]);
}

#[test]
fn copy_from_and_mount_from_make_stages_reached() {
    let src = "FROM alpine AS tools\nFROM busybox AS build\nFROM scratch AS unused\n\
               FROM busybox\nCOPY --from=build /out /out\nRUN --mount=from=tools,target=/t ls\n";
    let g = plan(src).unwrap();
    assert_eq!(
        g.stages.iter().map(|s| s.reached).collect::<Vec<_>>(),
        [true, true, false, true]
    );
    assert_eq!(g.target_stage().deps, [StageId(0), StageId(1)]);
}

#[test]
fn unknown_target_lists_the_stages() {
    let o = PlanOptions {
        target: Some("nope".into()),
        ..Default::default()
    };
    let err = plan_with("FROM busybox AS a\nFROM busybox AS b\n", &o, &Fake::new()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "target stage \"nope\" could not be found (stages: a, b)"
    );
    assert!(err.span().is_none());
}

#[test]
fn copy_from_a_later_stage_or_itself_is_an_error() {
    let err = plan(
        "FROM busybox AS a\nCOPY --from=b /x /y\nFROM busybox AS b\nCOPY --from=a / /\nFROM a\n",
    )
    .unwrap_err();
    assert!(matches!(err, PlanError::ForwardReference { .. }), "{err}");
    assert_eq!(err.span().unwrap().start_line, 2);
    let err = plan("FROM busybox AS a\nCOPY --from=a /x /y\n").unwrap_err();
    assert!(
        err.to_string()
            .contains("needs to be defined before current stage \"a\""),
        "{err}"
    );
    let err = plan("FROM busybox\nCOPY --from=7 /x /y\n").unwrap_err();
    assert!(
        matches!(err, PlanError::StageIndex { index: 7, .. }),
        "{err}"
    );
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
fn run_mounts_are_typed_with_buildkit_defaults() {
    let src = "FROM busybox AS builder\nFROM busybox\nWORKDIR /src\n\
               RUN --mount=type=cache,target=/root/.cache,sharing=locked \
               --mount=type=secret,id=tok --mount=from=builder,source=out,target=o,rw \
               --mount=type=tmpfs,target=/t,size=64m --mount=type=ssh make\n";
    let g = plan(src).unwrap();
    let m = &runs(&g)[0].mounts;
    assert!(
        matches!(&m[0], RunMount::Cache { id, target, sharing: Sharing::Locked, mode: 0o755, ro: false, .. }
        if id == "/root/.cache" && target == "/root/.cache")
    );
    assert!(
        matches!(&m[1], RunMount::Secret { id, target: Some(t), mode: 0o400, required: false, .. }
        if id == "tok" && t == "/run/secrets/tok")
    );
    assert!(
        matches!(&m[2], RunMount::Bind { target, source, from: MountFrom::Stage(StageId(0)), rw: true }
        if target == "/src/o" && source == "/out")
    );
    assert!(matches!(&m[3], RunMount::Tmpfs { size: Some(s), .. } if *s == 64 << 20));
    assert!(
        matches!(&m[4], RunMount::Ssh { id, target, mode: 0o600, .. }
        if id == "default" && target == "/run/buildkit/ssh_agent.0")
    );
}

#[test]
fn run_mount_errors_name_the_key() {
    for (mount, key) in [
        ("type=tmpfs,target=/t,mode=0700", "mode"),
        ("type=bogus,target=/t", "type"),
        ("type=bind,target=/t,size=1m", "size"),
        ("type=cache,target=/t,sharing=sometimes", "sharing"),
        ("type=cache", "target"),
        ("target=/t,colour=red", "colour"),
        ("type=cache,target=/t,uid=me", "uid"),
    ] {
        let err = plan(&format!("FROM busybox\nRUN --mount={mount} true\n")).unwrap_err();
        match &err {
            PlanError::Mount { key: k, .. } => assert_eq!(k, key, "{mount}: {err}"),
            other => panic!("{mount}: expected a mount error, got {other}"),
        }
        assert_eq!(err.span().unwrap().start_line, 2);
    }
}

#[test]
fn run_heredoc_forms_follow_dispatch_run() {
    let g = plan("FROM busybox\nRUN <<EOF\necho a\necho b\nEOF\n").unwrap();
    let r = runs(&g)[0];
    assert_eq!(r.argv, ["/bin/sh", "-c", "echo a\necho b\n"]);
    assert!(r.files.is_empty());
    assert_eq!(g.target_stage().steps[0].display, "RUN <<EOF (echo a...)");

    let g = plan("FROM busybox\nRUN <<EOF\n#!/bin/busybox sh\necho hi\nEOF\n").unwrap();
    let r = runs(&g)[0];
    assert_eq!(r.argv, ["/bin/sh", "-c", "/dev/pipes/EOF"]);
    assert_eq!(r.files[0].name, "EOF");
    assert_eq!(r.files[0].mode, 0o755);
    assert_eq!(r.files[0].content, "#!/bin/busybox sh\necho hi\n");

    let g = plan("FROM busybox\nRUN cat <<EOF > /greeting\nhello $X\nEOF\n").unwrap();
    assert_eq!(runs(&g)[0].argv[2], "cat <<EOF > /greeting\nhello $X\nEOF");
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
fn instructions_before_from_other_than_arg_are_errors() {
    let err = plan("ENV A=1\nFROM busybox\n").unwrap_err();
    assert!(matches!(err, PlanError::BeforeFrom { .. }), "{err}");
}

#[test]
fn stage_without_path_gets_buildkit_default() {
    let g = plan("FROM scratch\nRUN true\n").unwrap();
    let path = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string();
    assert_eq!(g.target_stage().config.config.env, [path.clone()]);
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
fn copy_resolves_dest_against_workdir_and_expands_heredocs() {
    let src = "FROM busybox AS a\nFROM busybox\nWORKDIR /app\nENV N=world\n\
               COPY --from=a --exclude=*.md src/ .\nCOPY <<EOF <<'RAW' conf/\nhello \"$N\"\nEOF\n$N\nRAW\n";
    let g = plan(src).unwrap();
    let copies: Vec<_> = g
        .target_stage()
        .steps
        .iter()
        .filter_map(|s| match &s.op {
            Op::Copy(c) => Some(c),
            _ => None,
        })
        .collect();
    assert!(matches!(copies[0].from, CopyFrom::Stage(StageId(0))));
    assert_eq!(copies[0].dest, "/app/");
    assert!(copies[0].dest_is_dir_hint);
    assert_eq!(copies[0].excludes, ["*.md"]);
    assert_eq!(copies[1].dest, "/app/conf/");
    assert_eq!(copies[1].heredocs[0].content, "hello \"world\"\n");
    assert_eq!(copies[1].heredocs[1].content, "$N\n");
    assert_eq!(
        g.target_stage().steps[3].created_by,
        "COPY <<EOF <<RAW conf/ # buildkit"
    );
}

#[test]
fn copy_and_add_source_rules() {
    let err = plan("FROM busybox\nCOPY https://example.com/x /x\n").unwrap_err();
    assert!(err.to_string().contains("can't be a URL"), "{err}");
    let err = plan("FROM busybox\nADD --checksum=sha256:abc a b /x/\n").unwrap_err();
    assert!(err.to_string().contains("multiple sources"), "{err}");
    let err = plan("FROM busybox\nCOPY --chmod=999 a /x\n").unwrap_err();
    assert!(err.to_string().contains("--chmod"), "{err}");
    let g = plan("FROM busybox\nADD --unpack=false https://example.com/a.tgz /x/\n").unwrap();
    let Op::Copy(c) = &g.target_stage().steps[0].op else {
        panic!("ADD is a copy op")
    };
    assert_eq!(c.add.as_ref().unwrap().unpack, Some(false));
    let err = plan("FROM busybox\nADD https://github.com/a/b.git /src\n").unwrap_err();
    assert!(matches!(err, PlanError::Unsupported { .. }), "{err}");
}

#[test]
fn platform_other_than_the_host_is_refused() {
    let err = plan("FROM --platform=windows/arm busybox\n").unwrap_err();
    assert!(matches!(err, PlanError::Platform { .. }), "{err}");
    let g = plan("FROM --platform=$BUILDPLATFORM busybox\n").unwrap();
    assert!(g.target_stage().reached);
}

#[test]
fn proxy_build_args_reach_run_but_not_history() {
    let o = opts(&[("HTTP_PROXY", "http://proxy:3128")]);
    let g = plan_with("FROM busybox\nRUN wget x\n", &o, &Fake::new()).unwrap();
    let env = &runs(&g)[0].env;
    assert!(env.contains(&"HTTP_PROXY=http://proxy:3128".to_string()));
    assert!(env.contains(&"http_proxy=http://proxy:3128".to_string()));
    assert_eq!(created_by(&g)[0], "RUN /bin/sh -c wget x # buildkit");
    assert!(g.unused_build_args.is_empty());
}

#[test]
fn stage_names_are_validated_and_unique() {
    let err = plan("FROM busybox AS 1bad\n").unwrap_err();
    assert!(matches!(err, PlanError::StageName { .. }), "{err}");
    let err = plan("FROM busybox AS a\nFROM busybox AS A\n").unwrap_err();
    assert!(matches!(err, PlanError::DuplicateStage { .. }), "{err}");
}

#[test]
fn cli_labels_apply_to_the_target_and_run_network_is_kept() {
    let mut o = PlanOptions::default();
    o.labels = BTreeMap::from([("org.x".to_string(), "1".to_string())]);
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
fn an_unresolvable_reached_image_is_an_error_with_its_cause() {
    let err = plan("FROM nosuch\n").unwrap_err();
    assert_eq!(err.to_string(), "resolving image nosuch");
    assert!(err.source().unwrap().to_string().contains("not found"));
    assert_eq!(err.span().unwrap().start_line, 1);
}
