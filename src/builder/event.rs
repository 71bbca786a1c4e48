//! Progress events: what the builder tells the CLI while it works.
//!
//! The builder never prints. It sends [`Event`]s over a channel and the CLI
//! renders them (plain lines, json, or nothing). Invariants: every vertex is
//! announced with [`Event::Started`] before any other event names it, and ends
//! with exactly one of [`Event::Done`], [`Event::Cached`] or [`Event::Failed`].

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

/// Which output stream a log chunk came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    /// The step's standard output.
    Stdout,
    /// The step's standard error.
    Stderr,
}

/// Where a vertex sits in the build graph, for tests and renderers that care.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepRef {
    /// The stage's index in the Dockerfile (`StageId.0`).
    pub stage: usize,
    /// The step's index within the stage (0 is FROM).
    pub index: usize,
}

/// One progress event. `vertex` is BuildKit's `#N` number, unique per build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A vertex began: `name` is what BuildKit prints after `#N `,
    /// e.g. `[build 2/5] COPY src /src` or `exporting to image`.
    Started {
        /// The vertex number.
        vertex: usize,
        /// The display name.
        name: String,
        /// The step this vertex runs, when it is a Dockerfile step.
        step: Option<StepRef>,
    },
    /// Output of a running vertex (RUN's stdout/stderr, or a status line).
    Log {
        /// The vertex number.
        vertex: usize,
        /// Which stream.
        stream: Stream,
        /// The bytes, as produced.
        data: Vec<u8>,
    },
    /// The vertex finished.
    Done {
        /// The vertex number.
        vertex: usize,
        /// How long it took.
        elapsed: Duration,
    },
    /// The vertex's result came from the cache.
    Cached {
        /// The vertex number.
        vertex: usize,
    },
    /// The vertex failed; the error itself is returned by the build.
    Failed {
        /// The vertex number.
        vertex: usize,
        /// How long it ran.
        elapsed: Duration,
        /// The error's one-line summary.
        message: String,
    },
    /// A non-fatal finding (unused build args, ignored directives).
    Warning {
        /// The text.
        message: String,
    },
    /// A Dockerfile check that fired, under the vertex that loaded the
    /// Dockerfile (BuildKit shows them there, then once more after the build).
    Check {
        /// The vertex number.
        vertex: usize,
        /// buildx's short form: `Rule: message (line N)`.
        short: String,
    },
}

/// Hands out vertex numbers and sends events; cheap to clone across threads.
/// A closed receiver is not an error: progress is best effort.
#[derive(Debug, Clone)]
pub struct Progress {
    tx: Option<Sender<Event>>,
    next: Arc<AtomicUsize>,
    /// The keys of the warnings sent once per build ([`Progress::warn_once`]).
    once: Arc<std::sync::Mutex<std::collections::BTreeSet<&'static str>>>,
}

impl Progress {
    /// Progress that sends to `tx`.
    pub fn new(tx: Sender<Event>) -> Self {
        Self {
            tx: Some(tx),
            next: Arc::new(AtomicUsize::new(1)),
            once: Arc::default(),
        }
    }

    /// Progress that goes nowhere.
    pub fn discard() -> Self {
        Self {
            tx: None,
            next: Arc::new(AtomicUsize::new(1)),
            once: Arc::default(),
        }
    }

    /// Sends one event.
    pub fn send(&self, event: Event) {
        if let Some(tx) = &self.tx {
            // A renderer that went away must not fail the build.
            let _ = tx.send(event);
        }
    }

    /// Starts a vertex and returns its handle.
    pub fn start(&self, name: impl Into<String>, step: Option<StepRef>) -> Vertex {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.send(Event::Started {
            vertex: id,
            name: name.into(),
            step,
        });
        Vertex {
            id,
            started: Instant::now(),
            progress: self.clone(),
        }
    }

    /// Sends a Dockerfile check's finding, under `vertex`.
    pub fn check(&self, vertex: &Vertex, short: impl Into<String>) {
        self.send(Event::Check {
            vertex: vertex.id,
            short: short.into(),
        });
    }

    /// Sends a warning the first time this build asks with `key`; later calls with the
    /// same key send nothing.
    pub fn warn_once(&self, key: &'static str, message: impl FnOnce() -> String) {
        let first = self.once.lock().map_or(true, |mut seen| seen.insert(key));
        if first {
            self.warn(message());
        }
    }

    /// Sends a warning.
    pub fn warn(&self, message: impl Into<String>) {
        self.send(Event::Warning {
            message: message.into(),
        });
    }
}

/// A started vertex. Finish it with [`Vertex::done`], [`Vertex::cached`] or
/// [`Vertex::failed`].
#[derive(Debug)]
pub struct Vertex {
    id: usize,
    started: Instant,
    progress: Progress,
}

impl Vertex {
    /// The vertex number.
    pub fn id(&self) -> usize {
        self.id
    }

    /// Sends output of this vertex.
    pub fn log(&self, stream: Stream, data: &[u8]) {
        self.progress.send(Event::Log {
            vertex: self.id,
            stream,
            data: data.to_vec(),
        });
    }

    /// [`Progress::warn_once`] from this vertex's step.
    pub fn warn_once(&self, key: &'static str, message: impl FnOnce() -> String) {
        self.progress.warn_once(key, message);
    }

    /// Marks the vertex finished.
    pub fn done(self) {
        self.progress.send(Event::Done {
            vertex: self.id,
            elapsed: self.started.elapsed(),
        });
    }

    /// Marks the vertex as served from the cache.
    pub fn cached(self) {
        self.progress.send(Event::Cached { vertex: self.id });
    }

    /// Marks the vertex failed with the error's summary.
    pub fn failed(self, message: impl Into<String>) {
        self.progress.send(Event::Failed {
            vertex: self.id,
            elapsed: self.started.elapsed(),
            message: message.into(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vertices_are_numbered_and_finished_once() {
        let (tx, rx) = std::sync::mpsc::channel();
        let p = Progress::new(tx);
        let a = p.start("a", None);
        let b = p.start("b", Some(StepRef { stage: 0, index: 1 }));
        assert_eq!((a.id(), b.id()), (1, 2));
        b.log(Stream::Stdout, b"hi\n");
        a.done();
        b.failed("boom");
        drop(p);
        let events: Vec<Event> = rx.iter().collect();
        assert_eq!(events.len(), 5);
        assert!(matches!(&events[2], Event::Log { vertex: 2, data, .. } if data == b"hi\n"));
        assert!(matches!(&events[3], Event::Done { vertex: 1, .. }));
        assert!(
            matches!(&events[4], Event::Failed { vertex: 2, message, .. } if message == "boom")
        );
    }

    #[test]
    fn discarded_progress_still_numbers() {
        let p = Progress::discard();
        assert_eq!(p.start("x", None).id(), 1);
        assert_eq!(p.start("y", None).id(), 2);
    }
}
