//! Named contexts in the plan, in BuildKit's order: a context with a stage's
//! name replaces the stage; otherwise a stage, then a context, then an image;
//! names compared as familiar names without `:latest`.

use super::*;

fn with_contexts(contexts: &[(&str, ContextKind)]) -> PlanOptions {
    PlanOptions {
        contexts: contexts.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        ..Default::default()
    }
}

#[test]
fn a_context_with_a_stage_name_replaces_the_stage_and_its_steps() {
    let fake = Fake::new().with("ctx-base", image(|_| {}));
    let o = with_contexts(&[("base", ContextKind::Image)]);
    let src = "FROM alpine AS base\nRUN false\nFROM base\nRUN true\n";
    let g = plan_with(src, &o, &fake).unwrap();
    assert!(g.stages[0].steps.is_empty());
    assert!(matches!(&g.stages[0].base, Base::Image(i) if i.reference == "ctx-base"));
    assert_eq!(runs(&g).len(), 1);
    assert_eq!(*fake.asked.borrow(), ["ctx-base"]);
}

#[test]
fn from_copy_and_mount_find_a_context_by_its_familiar_name() {
    let fake = Fake::new().with("ctx-busybox", image(|_| {}));
    let o = with_contexts(&[("busybox", ContextKind::Image), ("files", ContextKind::Dir)]);
    let src = "FROM docker.io/library/busybox:latest\nCOPY --from=files a /a\nRUN --mount=from=files,target=/f true\n";
    let g = plan_with(src, &o, &fake).unwrap();
    assert!(matches!(&g.target_stage().base, Base::Image(i) if i.reference == "ctx-busybox"));
    let Op::Copy(c) = &g.target_stage().steps[0].op else {
        panic!("not a copy")
    };
    assert!(matches!(&c.from, FilesFrom::NamedContext(n) if n == "files"));
    let from = match &runs(&g)[0].mounts[0] {
        RunMount::Bind { from, .. } => from,
        m => panic!("{m:?}"),
    };
    assert!(matches!(from, FilesFrom::NamedContext(n) if n == "files"));
    assert_eq!(*fake.asked.borrow(), ["ctx-busybox"]);
}

#[test]
fn a_stage_is_found_before_a_context_of_another_spelling() {
    // `--from=0` is the stage; the context `alpine` answers only names.
    let fake = Fake::new().with("ctx-alpine", image(|_| {}));
    let o = with_contexts(&[("alpine", ContextKind::Image)]);
    let src =
        "FROM busybox AS one\nFROM alpine:latest\nCOPY --from=0 / /x\nCOPY --from=alpine / /y\n";
    let g = plan_with(src, &o, &fake).unwrap();
    let froms: Vec<_> = g
        .target_stage()
        .steps
        .iter()
        .map(|s| match &s.op {
            Op::Copy(c) => c.from.clone(),
            op => panic!("{op:?}"),
        })
        .collect();
    assert!(matches!(froms[0], FilesFrom::Stage(StageId(0))));
    assert!(matches!(&froms[1], FilesFrom::Image(i) if i.reference == "ctx-alpine"));
}

#[test]
fn from_a_dir_context_starts_from_scratch_with_a_copy_of_it() {
    let o = with_contexts(&[("files", ContextKind::Dir)]);
    let g = plan_with("FROM files\nENV A=1\n", &o, &Fake::new()).unwrap();
    assert!(matches!(g.target_stage().base, Base::Scratch));
    let Op::Copy(c) = &g.target_stage().steps[0].op else {
        panic!("not a copy")
    };
    assert!(matches!(&c.from, FilesFrom::NamedContext(n) if n == "files"));
    assert_eq!(
        (c.sources.as_slice(), c.dest.as_str()),
        (&[CopySource::Path(".".into())][..], "/")
    );
}

#[test]
fn an_unreached_replaced_stage_resolves_nothing() {
    let fake = Fake::new();
    let o = with_contexts(&[("unused", ContextKind::Image)]);
    let g = plan_with("FROM alpine AS unused\nFROM busybox\n", &o, &fake).unwrap();
    assert!(!g.stages[0].reached);
    assert_eq!(*fake.asked.borrow(), ["busybox"]);
}
