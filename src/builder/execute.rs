//! One build from the options to its results, as `kiln build` runs it and
//! as a test or another program calls it: every `--cache-from` imported,
//! the Dockerfile planned and built ([`super::build`]), every `--cache-to`
//! exported, every output written, then `--iidfile` and `--metadata-file`.
//! Each phase reports under its own progress vertices.
//!
//! Invariants: nothing is written under a name, to an output or to the
//! id/metadata files unless the build succeeded; the first failure ends the
//! build and is the error returned (its vertex marked failed); an output
//! with `dest=-` is staged under the store's `tmp/` and copied to stdout
//! only once it is whole.

use std::io;
use std::path::{Path, PathBuf};

use super::cache_transfer::{self, CacheSpec, CacheTransferError};
use super::export::{self, ExportError};
use super::{BuildError, BuildOptions, BuiltImage, OutputSpec, Progress, Stream};
use crate::oci::{Reference, Store};

/// Everything one build needs besides the store: what to build
/// ([`BuildOptions`]) and where its result goes.
#[derive(Debug, Clone)]
pub struct Build {
    /// The Dockerfile, context and build flags.
    pub options: BuildOptions,
    /// The `-o` outputs, in order (`type=image` included when `-t` is given).
    pub outputs: Vec<OutputSpec>,
    /// The `-t` names, as docker shows them (`app:1`).
    pub tags: Vec<String>,
    /// `--cache-from` (imported before the build) and `--cache-to`
    /// (exported after the outputs) values.
    pub cache: Vec<CacheSpec>,
    /// `--iidfile`: gets the image ID.
    pub iidfile: Option<PathBuf>,
    /// `--metadata-file`: gets buildx's metadata JSON.
    pub metadata_file: Option<PathBuf>,
}

/// Why a build, or something it had to do after the steps, failed.
#[derive(Debug, thiserror::Error)]
pub enum ExecuteError {
    /// A `--cache-from` could not be imported.
    #[error(transparent)]
    CacheImport(CacheTransferError),
    /// Parsing, planning or a step failed.
    #[error(transparent)]
    Build(#[from] BuildError),
    /// A `--cache-to` could not be exported.
    #[error(transparent)]
    CacheExport(CacheTransferError),
    /// An output could not be written.
    #[error(transparent)]
    Output(#[from] ExportError),
    /// Staging a `dest=-` output in the store's `tmp/`.
    #[error("staging the output for stdout")]
    StageStdout(#[source] io::Error),
    /// Copying a staged output to stdout.
    #[error("writing the output to stdout")]
    Stdout(#[source] io::Error),
    /// An output that cannot carry the attestations asked for.
    #[error("{output} output cannot carry attestations: {why}")]
    AttestOutput {
        /// The output type.
        output: &'static str,
        /// What to do instead.
        why: &'static str,
    },
    /// `type=docker` with several platforms.
    // COMPAT(buildkit): its docker exporter refuses an index; and docker
    // 20.10's `docker load` reads one platform's manifest from an archive.
    #[error("type=docker output cannot hold a multi-platform image: docker exporter does not support exporting manifest lists (docker load takes one platform), use the oci exporter instead (-o type=oci) or build one --platform")]
    DockerMultiPlatform,
    /// Image outputs disagree on `oci-artifact`.
    #[error("oci-artifact must be the same on every image output: kiln attaches one attestation manifest per build")]
    ArtifactForms,
    /// Attaching the attestations to the image.
    #[error(transparent)]
    Attest(#[from] crate::attest::AttestError),
    /// Writing `--iidfile` or `--metadata-file`.
    #[error("writing {path}")]
    WriteFile {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

impl ExecuteError {
    /// 1 a step failed, 2 a bad Dockerfile or name, 3 internal or I/O.
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::Build(e) => e.exit_code(),
            Self::Output(ExportError::PushName | ExportError::Name { .. }) => 2,
            Self::AttestOutput { .. } | Self::ArtifactForms | Self::DockerMultiPlatform => 2,
            Self::Attest(crate::attest::AttestError::Name { .. }) => 2,
            _ => 3,
        }
    }
}

impl Build {
    /// A build of `options` into the store, with no other output.
    pub fn new(options: BuildOptions) -> Self {
        Self {
            options,
            outputs: Vec::new(),
            tags: Vec::new(),
            cache: Vec::new(),
            iidfile: None,
            metadata_file: None,
        }
    }

    /// Imports the cache, builds, writes the outputs, exports the cache and
    /// writes the id and metadata files; returns the image.
    ///
    /// Sets the process umask to 022 first: what a build creates without an
    /// explicit mode (a tar's implicit parent dirs, staging dirs) must not
    /// depend on the caller's umask. The caller holds the store lock shared
    /// until this returns (a prune meanwhile would drop the image's blobs).
    pub fn execute(&self, store: &Store, progress: &Progress) -> Result<BuiltImage, ExecuteError> {
        nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
        self.check_attest_outputs()?;
        self.check_platform_outputs()?;
        let registry = self.options.registry.as_deref();
        cache_transfer::import_specs(store, &self.cache, progress, registry)
            .map_err(ExecuteError::CacheImport)?;
        let mut img = self.build_platforms(store, progress)?;
        self.attach(store, &mut img, progress)?;
        // Every platform's pass logged its build: all are exported.
        let builds = img.per_platform().count();
        cache_transfer::export_specs(store, &self.cache, progress, registry, builds)
            .map_err(ExecuteError::CacheExport)?;
        for spec in &self.outputs {
            self.output(store, &img, spec, progress)?;
        }
        let write = |path: &PathBuf, text: String| {
            std::fs::write(path, text).map_err(|source| ExecuteError::WriteFile {
                path: path.clone(),
                source,
            })
        };
        if let Some(p) = &self.iidfile {
            write(p, img.id().to_string())?;
        }
        if let Some(p) = &self.metadata_file {
            write(p, metadata(&img, &self.tags))?;
        }
        Ok(img)
    }

    /// Builds the image, or with several `--platform`s one pass per
    /// platform, in order: each pass plans the graph for its target
    /// platform; a stage for the build platform (`FROM
    /// --platform=$BUILDPLATFORM`) has the same steps and keys in every
    /// pass, so it runs in the first and is a cache hit in the others.
    fn build_platforms(
        &self,
        store: &Store,
        progress: &Progress,
    ) -> Result<BuiltImage, BuildError> {
        let platforms = &self.options.platforms;
        if platforms.len() < 2 {
            return super::build(store, &self.options, progress);
        }
        let mut images = Vec::with_capacity(platforms.len());
        for (i, p) in platforms.iter().enumerate() {
            let mut opts = self.options.clone();
            opts.plan.platform = p.clone();
            let mut img = super::build_pass(store, &opts, progress, i == 0)?;
            img.target = Some(p.clone());
            images.push(img);
        }
        let mut first = images.remove(0);
        first.others = images;
        Ok(first)
    }

    /// Refuses, before anything is built, an output that cannot hold a
    /// multi-platform image.
    fn check_platform_outputs(&self) -> Result<(), ExecuteError> {
        if self.options.platforms.len() < 2 {
            return Ok(());
        }
        match self
            .outputs
            .iter()
            .any(|o| matches!(o, OutputSpec::Docker { .. }))
        {
            true => Err(ExecuteError::DockerMultiPlatform),
            false => Ok(()),
        }
    }

    /// Refuses, before anything is built, an explicit attestation request
    /// with an output that cannot hold it (BuildKit's docker exporter
    /// refuses an index; kiln writes no provenance or SBOM file into a
    /// local or tar output). An SBOM is never a default: always explicit.
    fn check_attest_outputs(&self) -> Result<(), ExecuteError> {
        let attest = &self.options.attest;
        let provenance = attest.explicit && attest.provenance.is_some();
        if !provenance && !attest.sbom {
            return Ok(());
        }
        for spec in &self.outputs {
            let refuse = |output, why| Err(ExecuteError::AttestOutput { output, why });
            match spec {
                OutputSpec::Docker { .. } if provenance => return refuse(
                    "type=docker",
                    "docker exporter does not support exporting manifest lists, use the oci exporter instead (or --provenance=false)",
                ),
                OutputSpec::Docker { .. } => return refuse(
                    "type=docker",
                    "docker exporter does not support exporting manifest lists, use the oci exporter instead (or --sbom=false)",
                ),
                OutputSpec::Local { .. } | OutputSpec::Tar { .. } => return refuse(
                    "a type=local or type=tar",
                    "kiln attaches attestations to images only and writes no provenance.json or sbom.spdx.json into a filesystem output; drop --provenance/--sbom or the output",
                ),
                _ => {}
            }
        }
        Ok(())
    }

    /// Attaches the build's attestations when an output (or the store, with
    /// no output at all) takes an image: `img.index` is then set.
    fn attach(
        &self,
        store: &Store,
        img: &mut BuiltImage,
        progress: &Progress,
    ) -> Result<(), ExecuteError> {
        let attestations = img.per_platform().any(|i| !i.attestations.is_empty());
        let several = !img.others.is_empty();
        if !self.takes_index() || (!attestations && !several) {
            return Ok(());
        }
        let names = self.subject_names();
        let form = self.manifest_form()?;
        let what = match attestations {
            true => "[internal] attaching attestations",
            false => "[internal] writing the image index",
        };
        let v = progress.start(what.to_string(), None);
        let platforms: Vec<crate::oci::Platform> =
            img.per_platform().map(|i| i.platform()).collect();
        let entries: Vec<crate::attest::PlatformImage<'_>> = img
            .per_platform()
            .zip(&platforms)
            .map(|(i, platform)| crate::attest::PlatformImage {
                manifest: &i.manifest,
                platform,
                attestations: &i.attestations,
            })
            .collect();
        let attached = crate::attest::attach_all(store, &entries, &names, form);
        match attached {
            Ok(index) => {
                log_attached(store, &index, &v);
                v.done();
                img.index = Some(index);
                Ok(())
            }
            Err(e) => {
                v.failed(e.to_string());
                Err(e.into())
            }
        }
    }

    /// Whether any output takes an image index (none given is the store).
    fn takes_index(&self) -> bool {
        self.outputs.is_empty()
            || self.outputs.iter().any(|o| {
                matches!(
                    o,
                    OutputSpec::Oci { .. } | OutputSpec::Image { .. } | OutputSpec::Registry { .. }
                )
            })
    }

    /// The names the attestations' subjects carry: the tags, then every
    /// image output's names.
    fn subject_names(&self) -> Vec<String> {
        let mut names = self.tags.clone();
        for o in &self.outputs {
            match o {
                OutputSpec::Oci { name: Some(n), .. } => names.push(n.clone()),
                OutputSpec::Image { names: n, .. } | OutputSpec::Registry { names: n, .. } => {
                    names.extend(n.iter().cloned())
                }
                _ => {}
            }
        }
        names
    }

    /// One attestation manifest per build: its form is every image
    /// output's (BuildKit's per-exporter option).
    fn manifest_form(&self) -> Result<crate::attest::ManifestForm, ExecuteError> {
        let forms: std::collections::BTreeSet<bool> = self
            .outputs
            .iter()
            .filter_map(|o| match o {
                OutputSpec::Oci { oci_artifact, .. }
                | OutputSpec::Image { oci_artifact, .. }
                | OutputSpec::Registry { oci_artifact, .. } => Some(*oci_artifact),
                _ => None,
            })
            .collect();
        match forms.into_iter().collect::<Vec<_>>()[..] {
            [] | [false] => Ok(crate::attest::ManifestForm::Image),
            [true] => Ok(crate::attest::ManifestForm::OciArtifact),
            _ => Err(ExecuteError::ArtifactForms),
        }
    }

    /// Writes one output under its own vertex.
    fn output(
        &self,
        store: &Store,
        img: &BuiltImage,
        spec: &OutputSpec,
        progress: &Progress,
    ) -> Result<(), ExecuteError> {
        let v = progress.start(format!("exporting to {}", describe(spec)), None);
        if let OutputSpec::Image { names, .. } = spec {
            for n in names.iter().chain(&self.tags) {
                if let Ok(q) = Reference::parse(n) {
                    v.log(
                        Stream::Stdout,
                        format!("naming to {}\n", q.qualified()).as_bytes(),
                    );
                }
            }
        }
        // dest=-: written to a file in the store's tmp/ first (archives are
        // written by path and renamed into place), then copied to stdout.
        let staged = match spec.to_stdout() {
            true => Some(
                tempfile::Builder::new()
                    .prefix("stdout-")
                    .tempfile_in(store.tmp_dir())
                    .map_err(ExecuteError::StageStdout)?,
            ),
            false => None,
        };
        let to_file;
        let spec = match &staged {
            Some(file) => {
                to_file = spec.with_dest(file.path().to_path_buf());
                &to_file
            }
            None => spec,
        };
        let registry = self.options.registry.as_deref();
        // A staged file is new each time: never kept, never recorded.
        let keep = staged.is_none();
        let exported = export::export(store, img, spec, &self.tags, registry, keep);
        if let (Ok(_), Some(file)) = (&exported, &staged) {
            copy_to_stdout(file.path()).map_err(ExecuteError::Stdout)?;
        }
        match exported {
            Err(e) => {
                v.failed(e.to_string());
                return Err(e.into());
            }
            Ok(export::Exported::Unchanged) => {
                v.log(
                    Stream::Stdout,
                    b"archive unchanged: it already holds this image\n",
                );
                v.cached();
                return Ok(());
            }
            Ok(export::Exported::Written) => {}
        }
        if let OutputSpec::Registry { names, .. }
        | OutputSpec::Image {
            names, push: true, ..
        } = spec
        {
            for n in names.iter().chain(&self.tags) {
                let line = format!("pushed manifest for {n}@{}\n", img.descriptor().digest);
                v.log(Stream::Stdout, line.as_bytes());
            }
        }
        v.done();
        Ok(())
    }
}

/// Logs the lines BuildKit's exporter prints for the index `index`.
// COMPAT(buildkit): the lines its exporter prints.
fn log_attached(store: &Store, index: &crate::oci::Descriptor, v: &super::Vertex) {
    let listed = store
        .read_blob(&index.digest)
        .ok()
        .and_then(|b| serde_json::from_slice::<crate::oci::Index>(&b).ok());
    for m in listed.iter().flat_map(|i| &i.manifests) {
        if m.is_attestation() {
            let line = format!("exporting attestation manifest {}\n", m.digest);
            v.log(Stream::Stdout, line.as_bytes());
        }
    }
    let line = format!("exporting manifest list {}\n", index.digest);
    v.log(Stream::Stdout, line.as_bytes());
}

fn copy_to_stdout(path: &Path) -> io::Result<()> {
    let mut f = std::fs::File::open(path)?;
    let mut out = io::stdout().lock();
    io::copy(&mut f, &mut out)?;
    io::Write::flush(&mut out)
}

/// The vertex name BuildKit gives an output.
fn describe(spec: &OutputSpec) -> String {
    match spec {
        OutputSpec::Oci { dest, .. } => format!("oci image format {}", dest.display()),
        OutputSpec::Docker { dest, .. } => format!("docker image format {}", dest.display()),
        OutputSpec::Local { dest } => format!("client directory {}", dest.display()),
        OutputSpec::Tar { dest } => format!("client tarball {}", dest.display()),
        OutputSpec::Image { .. } => "image".into(),
        OutputSpec::Registry { .. } => "registry".into(),
    }
}

/// buildx's metadata file keys.
/// With an index, its digest and descriptor, and no config digest (as
/// BuildKit's exporter response).
fn metadata(img: &BuiltImage, tags: &[String]) -> String {
    let mut m = serde_json::Map::new();
    m.insert(
        "containerimage.digest".into(),
        img.descriptor().digest.to_string().into(),
    );
    if img.index.is_none() {
        m.insert(
            "containerimage.config.digest".into(),
            img.config_digest.to_string().into(),
        );
    }
    m.insert(
        "containerimage.descriptor".into(),
        serde_json::to_value(img.descriptor()).unwrap_or_default(),
    );
    let names: Vec<String> = tags
        .iter()
        .filter_map(|t| Reference::parse(t).ok().map(|r| r.qualified()))
        .collect();
    if !names.is_empty() {
        m.insert("image.name".into(), names.join(",").into());
    }
    let mut s = serde_json::to_string_pretty(&serde_json::Value::Object(m)).unwrap_or_default();
    s.push('\n');
    s
}
