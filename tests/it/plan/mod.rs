//! `plan::lower` against small Dockerfiles, one rule per test, with a fake
//! image resolver whose configs the tests construct. Shared helpers here;
//! the tests live in the submodules.

mod contexts;
mod corpus;
mod instructions;
mod run_copy;
mod stages;

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::error::Error;

use kiln::dockerfile::parse;
use kiln::oci::{media_type, ContainerConfig, Descriptor, Digest, ImageConfig, Platform};
use kiln::plan::{
    lower, Base, BuildGraph, ContextKind, CopySource, FilesFrom, ImageResolver, NetworkMode, Op,
    PlanError, PlanOptions, ResolvedImage, RunMount, RunOp, Sharing, StageId,
};

/// Resolves the images it was given; records every reference asked for.
pub(super) struct Fake {
    images: HashMap<String, ImageConfig>,
    pub(super) asked: RefCell<Vec<String>>,
    /// Every `reference platform` asked for.
    pub(super) asked_for: RefCell<Vec<String>>,
}

impl Fake {
    pub(super) fn new() -> Self {
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
            asked_for: RefCell::new(Vec::new()),
        }
    }

    pub(super) fn with(mut self, name: &str, config: ImageConfig) -> Self {
        self.images.insert(name.into(), config);
        self
    }
}

pub(super) fn image(f: impl FnOnce(&mut ContainerConfig)) -> ImageConfig {
    let mut c = ImageConfig {
        architecture: "amd64".into(),
        os: "linux".into(),
        ..Default::default()
    };
    f(&mut c.config);
    c
}

impl ImageResolver for Fake {
    /// A named context `NAME` is the image `ctx-NAME`.
    fn resolve_context(
        &self,
        name: &str,
        platform: &Platform,
    ) -> Result<ResolvedImage, Box<dyn Error + Send + Sync>> {
        self.resolve(&format!("ctx-{name}"), platform)
    }

    fn resolve(
        &self,
        reference: &str,
        platform: &Platform,
    ) -> Result<ResolvedImage, Box<dyn Error + Send + Sync>> {
        self.asked.borrow_mut().push(reference.to_string());
        let spec = platform.to_specifier();
        self.asked_for
            .borrow_mut()
            .push(format!("{reference} {spec}"));
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

pub(super) fn plan_with(
    src: &str,
    opts: &PlanOptions,
    fake: &Fake,
) -> Result<BuildGraph, PlanError> {
    let df = parse(src.as_bytes()).expect("test Dockerfile parses");
    lower(&df, opts, fake)
}

pub(super) fn plan(src: &str) -> Result<BuildGraph, PlanError> {
    plan_with(src, &PlanOptions::default(), &Fake::new())
}

pub(super) fn opts(args: &[(&str, &str)]) -> PlanOptions {
    PlanOptions {
        build_args: args
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..Default::default()
    }
}

pub(super) fn runs(g: &BuildGraph) -> Vec<&RunOp> {
    g.target_stage()
        .steps
        .iter()
        .filter_map(|s| match &s.op {
            Op::Run(r) => Some(r),
            _ => None,
        })
        .collect()
}

pub(super) fn created_by(g: &BuildGraph) -> Vec<&str> {
    g.target_stage()
        .steps
        .iter()
        .map(|s| s.created_by.as_str())
        .collect()
}
