//! Runs the stages the target reaches, each on its own thread as soon as the
//! stages it reads are done, so independent stages build in parallel.
//!
//! Invariants: a stage starts only after all of its `deps` finished; a stage
//! the target does not reach is never started; after the first failure no
//! stage starts, and the build returns the first error that happened (never
//! a `Cancelled`).

use std::collections::BTreeMap;
use std::sync::{Arc, Condvar, Mutex};

use crate::plan::{Base, BuildGraph, Stage};

use super::error::BuildError;
use super::image::StageOutput;
use super::stage::{build_stage, image_output, BuildEnv};

/// Finished stages (`None`: failed or cancelled), and the first error.
#[derive(Default)]
struct Board {
    done: Mutex<BTreeMap<usize, Option<Arc<StageOutput>>>>,
    cv: Condvar,
    first_error: Mutex<Option<BuildError>>,
}

impl Board {
    fn wait(&self, id: usize) -> Option<Arc<StageOutput>> {
        let mut g = self.done.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(r) = g.get(&id) {
                return r.clone();
            }
            g = self.cv.wait(g).unwrap_or_else(|p| p.into_inner());
        }
    }

    fn finish(&self, id: usize, r: Result<StageOutput, BuildError>) {
        let value = match r {
            Ok(o) => Some(Arc::new(o)),
            Err(BuildError::Cancelled) => None,
            Err(e) => {
                let mut first = self.first_error.lock().unwrap_or_else(|p| p.into_inner());
                first.get_or_insert(e);
                None
            }
        };
        self.done
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, value);
        self.cv.notify_all();
    }

    fn failed(&self) -> bool {
        self.first_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
    }
}

/// Every reached stage's output, by stage index.
pub type StageOutputs = BTreeMap<usize, Arc<StageOutput>>;

/// Builds every reached stage of `env.graph`; returns the target's output
/// and every reached stage's (an SBOM may scan other stages too).
pub fn run_graph(env: &BuildEnv<'_>) -> Result<(StageOutput, StageOutputs), BuildError> {
    let graph: &BuildGraph = env.graph;
    let board = Board::default();
    std::thread::scope(|s| {
        let handles: Vec<_> = graph
            .stages
            .iter()
            .filter(|st| st.reached)
            .map(|st| {
                let board = &board;
                let h = s.spawn(move || {
                    let r = stage_thread(env, st, board);
                    board.finish(st.id.0, r);
                });
                (st.id.0, h)
            })
            .collect();
        for (id, h) in handles {
            if h.join().is_err() {
                board.finish(id, Err(BuildError::Panicked { stage: id }));
            }
        }
    });
    if let Some(e) = board
        .first_error
        .into_inner()
        .unwrap_or_else(|p| p.into_inner())
    {
        return Err(e);
    }
    let done = board.done.into_inner().unwrap_or_else(|p| p.into_inner());
    let target = match done.get(&graph.target.0) {
        Some(Some(o)) => (**o).clone(),
        _ => return Err(BuildError::Cancelled),
    };
    let all = done
        .into_iter()
        .filter_map(|(i, o)| Some((i, o?)))
        .collect();
    Ok((target, all))
}

fn stage_thread(env: &BuildEnv<'_>, st: &Stage, board: &Board) -> Result<StageOutput, BuildError> {
    let mut outputs = BTreeMap::new();
    for dep in &st.deps {
        // A dependency lowering did not mark reached would never finish.
        if !env.graph.stages.get(dep.0).is_some_and(|d| d.reached) {
            return Err(BuildError::Cancelled);
        }
        match board.wait(dep.0) {
            Some(o) => {
                outputs.insert(dep.0, o);
            }
            None => return Err(BuildError::Cancelled),
        }
    }
    if board.failed() {
        return Err(BuildError::Cancelled);
    }
    let base = match &st.base {
        Base::Unresolved { reference } => {
            return Err(BuildError::Unresolved {
                stage: st.id.0,
                reference: reference.clone(),
            })
        }
        Base::Scratch => StageOutput {
            layers: vec![],
            history: vec![],
            config: Default::default(),
            platform: st.platform.clone(),
            key: None,
            time: None,
        },
        Base::Image(img) => image_output(env.store, img).map_err(|source| BuildError::Step {
            span: env
                .from_spans
                .get(st.id.0)
                .copied()
                .unwrap_or(crate::dockerfile::Span {
                    start_line: 1,
                    end_line: 1,
                }),
            display: format!("FROM {}", img.reference),
            source: Box::new(source),
        })?,
        Base::Stage(id) => match outputs.get(&id.0) {
            Some(o) => (**o).clone(),
            None => return Err(BuildError::Cancelled),
        },
    };
    build_stage(env, st, base, &outputs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builder::event::{Event, Progress};
    use crate::builder::source::Source;
    use crate::dockerfile::Span;
    use crate::plan::{
        CopyOp, CopySource, Excludes, FilesFrom, Op, Stage, StageId, Step, WorkdirOp,
    };

    fn step(op: Op, line: usize) -> Step {
        Step {
            op,
            span: Span {
                start_line: line,
                end_line: line,
            },
            created_by: format!("step {line}"),
            empty_layer: false,
            display: format!("STEP {line}"),
        }
    }

    fn workdir(path: &str, line: usize) -> Step {
        step(
            Op::Workdir(WorkdirOp {
                path: path.into(),
                user: String::new(),
            }),
            line,
        )
    }

    fn stage(id: usize, base: Base, steps: Vec<Step>, deps: &[usize], reached: bool) -> Stage {
        Stage {
            id: StageId(id),
            name: None,
            base,
            steps,
            deps: deps.iter().map(|d| StageId(*d)).collect(),
            reached,
            config: Default::default(),
            platform: crate::oci::Platform::host(),
            args: Vec::new(),
            from_args: Default::default(),
        }
    }

    /// Runs `stages` (the last is the target); returns the result and the
    /// stage index of every started step, in order.
    fn run(stages: Vec<Stage>) -> (Result<(StageOutput, StageOutputs), BuildError>, Vec<usize>) {
        let root = tempfile::tempdir().unwrap();
        let store = crate::store::open(root.path()).unwrap();
        let ctx = tempfile::tempdir().unwrap();
        let context = Source::context(ctx.path().into(), None);
        let (tx, rx) = std::sync::mpsc::channel();
        let progress = Progress::new(tx);
        let cache = crate::builder::cached::CacheSession::open(
            &store,
            ctx.path(),
            "Dockerfile",
            None,
            Default::default(),
            &Default::default(),
        )
        .unwrap();
        let graph = BuildGraph {
            target: StageId(stages.len() - 1),
            stages,
            unused_build_args: vec![],
            undefined_vars: vec![],
            global_args: vec![],
        };
        let env = BuildEnv {
            store: &store,
            context: &context,
            progress: &progress,
            pack: Default::default(),
            created: "1970-01-01T00:00:00Z".into(),
            secrets: &Default::default(),
            ssh: &Default::default(),
            sandbox: &Default::default(),
            exe: std::path::Path::new("/proc/self/exe"),
            graph: &graph,
            from_spans: vec![],
            cache: &cache,
            remote: None,
            multi_platform: false,
        };
        let res = run_graph(&env);
        drop(env);
        drop(progress);
        let started = rx
            .iter()
            .filter_map(|e| match e {
                Event::Started { step: Some(s), .. } => Some(s.stage),
                _ => None,
            })
            .collect();
        (res, started)
    }

    #[test]
    fn only_reached_stages_run_and_deps_come_first() {
        let (res, started) = run(vec![
            stage(0, Base::Scratch, vec![workdir("/a", 2)], &[], true),
            stage(1, Base::Scratch, vec![workdir("/never", 4)], &[], false),
            stage(
                2,
                Base::Stage(StageId(0)),
                vec![workdir("/b", 6)],
                &[0],
                true,
            ),
        ]);
        let (out, all) = res.unwrap();
        assert_eq!(all.keys().copied().collect::<Vec<_>>(), [0, 2]);
        assert_eq!(started, [0, 2], "stage 1 is not reached");
        assert_eq!(out.layers.len(), 2, "stage 2 carries stage 0's layer");
        assert_eq!(out.history.len(), 2);
    }

    #[test]
    fn a_failing_stage_cancels_its_dependents_and_returns_its_error() {
        let missing = step(
            Op::Copy(CopyOp {
                from: FilesFrom::Context,
                sources: vec![CopySource::Path("missing".into())],
                heredocs: vec![],
                dest: "/x".into(),
                chown: None,
                chmod: None,
                link: false,
                parents: false,
                excludes: Excludes::default(),
                add: None,
                dest_is_dir_hint: false,
            }),
            7,
        );
        let (res, started) = run(vec![
            stage(0, Base::Scratch, vec![missing], &[], true),
            stage(
                1,
                Base::Stage(StageId(0)),
                vec![workdir("/b", 9)],
                &[0],
                true,
            ),
        ]);
        match res {
            Err(BuildError::Step { span, .. }) => assert_eq!(span.start_line, 7),
            other => panic!("expected the COPY's error, got {other:?}"),
        }
        assert_eq!(started, [0], "the dependent stage never starts");
    }
}
