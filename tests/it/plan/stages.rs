//! Stage structure: ARG scoping, FROM, targets, reachability, ONBUILD, references.

use super::*;

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
fn instructions_before_from_other_than_arg_are_errors() {
    let err = plan("ENV A=1\nFROM busybox\n").unwrap_err();
    assert!(matches!(err, PlanError::BeforeFrom { .. }), "{err}");
}

#[test]
fn from_platform_sets_the_stage_platform_and_the_platform_args() {
    let err = plan("FROM --platform=windows/arm busybox\n").unwrap_err();
    assert!(matches!(err, PlanError::Platform { .. }), "{err}");
    let err = plan("FROM --platform=linux busybox\n").unwrap_err();
    assert!(matches!(err, PlanError::Platform { .. }), "{err}");
    // A pass for linux/arm64 built on linux/amd64.
    let mut o = opts(&[]);
    o.platform = kiln::oci::parse_platform("linux/arm64").unwrap();
    o.build_platform = kiln::oci::parse_platform("linux/amd64").unwrap();
    let src = "FROM --platform=$BUILDPLATFORM busybox AS build\n\
               ARG BUILDPLATFORM TARGETPLATFORM TARGETARCH TARGETVARIANT\n\
               RUN echo $BUILDPLATFORM $TARGETPLATFORM $TARGETARCH.$TARGETVARIANT\n\
               FROM build AS child\n\
               FROM --platform=linux/arm/v7 alpine AS arm\n\
               FROM busybox\n\
               COPY --from=child / /\n\
               COPY --from=arm / /\n";
    let fake = Fake::new();
    let g = plan_with(src, &o, &fake).unwrap();
    let specs: Vec<String> = g.stages.iter().map(|s| s.platform.to_specifier()).collect();
    // The native stage, its child (a stage's platform is inherited), an
    // explicit one, and the target's.
    assert_eq!(
        specs,
        ["linux/amd64", "linux/amd64", "linux/arm/v7", "linux/arm64"]
    );
    // Each base image is resolved for its stage's platform.
    let asked = fake.asked_for.borrow().clone();
    assert_eq!(
        asked,
        [
            "busybox linux/amd64",
            "alpine linux/arm/v7",
            "busybox linux/arm64"
        ]
    );
    let run = g.stages[0].steps.iter().find_map(|s| match &s.op {
        kiln::plan::Op::Run(r) => Some(r),
        _ => None,
    });
    assert_eq!(
        run.unwrap().argv.last().unwrap(),
        "echo $BUILDPLATFORM $TARGETPLATFORM $TARGETARCH.$TARGETVARIANT"
    );
    assert!(
        run.unwrap()
            .env
            .contains(&"TARGETPLATFORM=linux/arm64".to_string()),
        "{:?}",
        run.unwrap().env
    );
    assert!(run
        .unwrap()
        .env
        .contains(&"BUILDPLATFORM=linux/amd64".to_string()));
    assert!(run.unwrap().env.contains(&"TARGETVARIANT=".to_string()));
}

#[test]
fn proxy_build_args_reach_run_but_not_history() {
    let o = opts(&[("HTTP_PROXY", "http://proxy:3128")]);
    let g = plan_with("FROM busybox\nRUN wget x\n", &o, &Fake::new()).unwrap();
    let r = runs(&g)[0];
    assert_eq!(
        r.proxy_env,
        [
            "HTTP_PROXY=http://proxy:3128",
            "http_proxy=http://proxy:3128"
        ]
    );
    assert!(!r
        .env
        .iter()
        .any(|e| e.to_ascii_lowercase().starts_with("http_proxy")));
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
fn an_unresolvable_reached_image_is_an_error_with_its_cause() {
    let err = plan("FROM nosuch\n").unwrap_err();
    assert_eq!(err.to_string(), "resolving image nosuch");
    assert!(err.source().unwrap().to_string().contains("not found"));
    assert_eq!(err.span().unwrap().start_line, 1);
}

#[test]
fn a_base_image_trigger_naming_a_stage_makes_it_reached() {
    let base = image(|c| c.on_build = Some(vec!["COPY --from=tools /t /t".into()]));
    let fake = Fake::new().with("onbase", base);
    let src = "FROM alpine AS tools\nFROM busybox AS other\nFROM onbase\n";
    let g = plan_with(src, &PlanOptions::default(), &fake).unwrap();
    assert_eq!(
        g.stages.iter().map(|s| s.reached).collect::<Vec<_>>(),
        [true, false, true]
    );
    assert!(
        matches!(&g.target_stage().steps[0].op, Op::Copy(c) if matches!(c.from, FilesFrom::Stage(StageId(0))))
    );
    assert_eq!(g.target_stage().deps, [StageId(0)]);
}

#[test]
fn a_declared_proxy_arg_is_ordinary_env() {
    let o = opts(&[("HTTP_PROXY", "http://proxy:3128")]);
    let g = plan_with(
        "FROM busybox\nARG HTTP_PROXY\nRUN wget x\n",
        &o,
        &Fake::new(),
    )
    .unwrap();
    let r = runs(&g)[0];
    assert!(r.env.contains(&"HTTP_PROXY=http://proxy:3128".to_string()));
    assert_eq!(r.proxy_env, ["http_proxy=http://proxy:3128"]);
}

#[test]
fn the_graph_serializes_with_tagged_ops() {
    let src = "FROM busybox AS b\nFROM b\nRUN --mount=type=cache,target=/c,from=b true\nCOPY --from=0 a /a\n";
    let g = plan(src).unwrap();
    let v = serde_json::to_value(&g).unwrap();
    let steps = &v["stages"][1]["steps"];
    assert_eq!(steps[0]["op"]["kind"], "run");
    assert_eq!(steps[0]["op"]["mounts"][0]["type"], "cache");
    assert_eq!(steps[1]["op"]["kind"], "copy");
    assert_eq!(steps[0]["op"]["mounts"][0]["from"]["value"], 0);
    assert_eq!(
        steps[1]["op"]["from"],
        serde_json::json!({"kind": "stage", "value": 0})
    );
    assert_eq!(v["stages"][0]["base"]["kind"], "image");
    assert_eq!(
        v["stages"][1]["base"],
        serde_json::json!({"kind": "stage", "value": 0})
    );
}

#[test]
fn platform_args_are_global_and_need_arg_inside_a_stage() {
    let o = PlanOptions {
        platform: Platform {
            architecture: "arm64".into(),
            os: "linux".into(),
            variant: Some("v8".into()),
            os_version: None,
        },
        ..Default::default()
    };
    let fake = Fake::new();
    let g = plan_with(
        "FROM busybox AS x\nRUN a\nARG TARGETPLATFORM\nARG TARGETARCH\nRUN b\n",
        &o,
        &fake,
    )
    .unwrap();
    let r = runs(&g);
    assert!(!r[0].env.iter().any(|e| e.starts_with("TARGET")));
    assert!(r[1]
        .env
        .contains(&"TARGETPLATFORM=linux/arm64/v8".to_string()));
    assert!(r[1].env.contains(&"TARGETARCH=arm64".to_string()));
    let g = plan_with(
        "ARG IMG=busy\nFROM ${IMG}box:${TARGETARCH}\n",
        &o,
        &fake.with("busybox:arm64", image(|_| {})),
    );
    assert!(matches!(&g.unwrap().stages[0].base, Base::Image(i) if i.reference == "busybox:arm64"));
}
