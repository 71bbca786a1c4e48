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
use super::stage::{build_stage, image_output, BuildEnv, StageOutput};

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

/// Builds every reached stage of `env.graph`; returns the target's output.
pub fn run_graph(env: &BuildEnv<'_>) -> Result<StageOutput, BuildError> {
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
    match done.get(&graph.target.0) {
        Some(Some(o)) => Ok((**o).clone()),
        _ => Err(BuildError::Cancelled),
    }
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
        Base::Scratch | Base::Unresolved { .. } => StageOutput {
            layers: vec![],
            history: vec![],
            config: Default::default(),
            platform: st.platform.clone(),
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
