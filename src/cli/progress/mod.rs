//! Renders the builder's progress events: BuildKit-style plain lines for CI
//! (`#3 [2/4] COPY app /app`, `#3 DONE 0.1s`), one JSON object per line, or
//! nothing. Invariant: rendering never fails the build — write errors (a
//! closed pipe) stop the output, not the work.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::sync::mpsc::Receiver;
use std::thread::JoinHandle;
use std::time::Instant;

use crate::builder::Event;

mod tty;

use tty::tty_loop;
pub use tty::TtyView;

/// How progress is shown (`--progress`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProgressMode {
    /// `tty` when stderr is a terminal, else `plain`.
    Auto,
    /// Plain lines, one event per line.
    Plain,
    /// For a terminal: a live, redrawn list of steps with timings.
    Tty,
    /// Nothing.
    Quiet,
    /// One JSON object per event and line (`json` also accepted).
    #[value(alias = "json")]
    Rawjson,
}

impl ProgressMode {
    /// `auto` resolved against whether stderr is a terminal.
    pub fn resolve(self) -> Self {
        match self {
            Self::Auto if std::io::stderr().is_terminal() => Self::Tty,
            Self::Auto => Self::Plain,
            other => other,
        }
    }
}

/// Renders events into a writer, keeping per-vertex state (start times,
/// partial log lines).
pub struct Renderer<W: Write> {
    mode: ProgressMode,
    out: W,
    started: HashMap<usize, Instant>,
    partial: HashMap<usize, Vec<u8>>,
    any: bool,
    broken: bool,
    /// Dockerfile checks that fired, for the summary after the build.
    checks: Vec<String>,
}

impl<W: Write> Renderer<W> {
    /// A renderer in `mode` (already resolved: not `Auto`).
    pub fn new(mode: ProgressMode, out: W) -> Self {
        Self {
            mode,
            out,
            started: HashMap::new(),
            partial: HashMap::new(),
            any: false,
            broken: false,
            checks: Vec::new(),
        }
    }

    /// Renders one event.
    pub fn render(&mut self, event: &Event) {
        if self.broken || self.mode == ProgressMode::Quiet {
            return;
        }
        let res = match self.mode {
            ProgressMode::Rawjson => self.json(event),
            _ => self.plain(event),
        };
        if res.is_err() {
            // A closed stderr (broken pipe) silences progress; the build goes on.
            self.broken = true;
        }
    }

    /// The writer back, flushed, after the checks' summary.
    pub fn into_inner(mut self) -> W {
        if !self.broken && self.mode == ProgressMode::Plain {
            let _ = self.out.write_all(check_summary(&self.checks).as_bytes());
        }
        let _ = self.out.flush();
        self.out
    }

    fn json(&mut self, event: &Event) -> std::io::Result<()> {
        let line = serde_json::to_string(event).map_err(std::io::Error::other)?;
        writeln!(self.out, "{line}")
    }

    fn plain(&mut self, event: &Event) -> std::io::Result<()> {
        match event {
            Event::Started { vertex, name, .. } => {
                if self.any {
                    writeln!(self.out)?;
                }
                self.any = true;
                self.started.insert(*vertex, Instant::now());
                writeln!(self.out, "#{vertex} {name}")
            }
            Event::Log { vertex, data, .. } => self.log(*vertex, data),
            Event::Done { vertex, elapsed } => {
                self.flush_partial(*vertex)?;
                writeln!(self.out, "#{vertex} DONE {:.1}s", elapsed.as_secs_f64())
            }
            Event::Cached { vertex } => {
                self.flush_partial(*vertex)?;
                writeln!(self.out, "#{vertex} CACHED")
            }
            Event::Failed {
                vertex, message, ..
            } => {
                self.flush_partial(*vertex)?;
                writeln!(self.out, "#{vertex} ERROR: {message}")
            }
            Event::Warning { message } => writeln!(self.out, "WARN: {message}"),
            Event::Check { vertex, short } => {
                self.checks.push(short.clone());
                writeln!(self.out, "#{vertex} WARN: {short}")
            }
        }
    }

    fn log(&mut self, vertex: usize, data: &[u8]) -> std::io::Result<()> {
        let mut buf = self.partial.remove(&vertex).unwrap_or_default();
        buf.extend_from_slice(data);
        let mut rest = buf.as_slice();
        while let Some(nl) = rest.iter().position(|&b| b == b'\n') {
            self.log_line(vertex, &rest[..nl])?;
            rest = &rest[nl + 1..];
        }
        if !rest.is_empty() {
            self.partial.insert(vertex, rest.to_vec());
        }
        Ok(())
    }

    fn flush_partial(&mut self, vertex: usize) -> std::io::Result<()> {
        match self.partial.remove(&vertex) {
            Some(rest) => self.log_line(vertex, &rest),
            None => Ok(()),
        }
    }

    fn log_line(&mut self, vertex: usize, line: &[u8]) -> std::io::Result<()> {
        let secs = self
            .started
            .get(&vertex)
            .map(|t| t.elapsed().as_secs_f64())
            .unwrap_or(0.0);
        write!(self.out, "#{vertex} {secs:.3} ")?;
        self.out.write_all(line)?;
        writeln!(self.out)
    }
}

/// buildx's block after a build: `N warnings found` and one line each; empty
/// when no check fired.
pub(crate) fn check_summary(checks: &[String]) -> String {
    if checks.is_empty() {
        return String::new();
    }
    // COMPAT(buildkit): buildx says "(use docker --debug to expand)"; kiln's
    // --check is what prints the excerpts.
    let mut out = match checks.len() {
        1 => "\n 1 warning found (use kiln build --check to expand):\n".to_string(),
        n => format!("\n {n} warnings found (use kiln build --check to expand):\n"),
    };
    for c in checks {
        out.push_str(&format!(" - {c}\n"));
    }
    out
}

/// Renders every event from `rx` to stderr on a thread until the sender side
/// is dropped.
pub fn spawn(mode: ProgressMode, rx: Receiver<Event>) -> JoinHandle<()> {
    let mode = mode.resolve();
    std::thread::spawn(move || {
        // Not `stderr().lock()` for the whole build: log events (`--debug`) and
        // warnings write to stderr from other threads meanwhile. A frame (tty)
        // or a line (plain) is buffered and written in one piece instead.
        if mode == ProgressMode::Tty {
            return tty_loop(rx, std::io::BufWriter::new(std::io::stderr()));
        }
        let mut r = Renderer::new(mode, std::io::LineWriter::new(std::io::stderr()));
        for ev in rx {
            r.render(&ev);
        }
        let _ = r.into_inner();
    })
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::builder::Stream;
    use std::time::Duration;

    pub(super) fn events() -> Vec<Event> {
        vec![
            Event::Started {
                vertex: 1,
                name: "[1/2] FROM scratch".into(),
                step: None,
            },
            Event::Done {
                vertex: 1,
                elapsed: Duration::from_millis(10),
            },
            Event::Started {
                vertex: 2,
                name: "[2/2] COPY app /app".into(),
                step: None,
            },
            Event::Log {
                vertex: 2,
                stream: Stream::Stdout,
                data: b"one\ntw".to_vec(),
            },
            Event::Log {
                vertex: 2,
                stream: Stream::Stdout,
                data: b"o\nthree".to_vec(),
            },
            Event::Failed {
                vertex: 2,
                elapsed: Duration::from_millis(1234),
                message: "copying app: not found".into(),
            },
        ]
    }

    #[test]
    fn plain_matches_buildkit_shape() {
        let mut r = Renderer::new(ProgressMode::Plain, Vec::new());
        for e in events() {
            r.render(&e);
        }
        let text = String::from_utf8(r.into_inner()).unwrap();
        // Log lines carry a time we cannot predict: blank it out.
        let text: String = text
            .lines()
            .map(|l| match l.split_once(' ') {
                Some((n, rest)) if rest.starts_with("0.") => {
                    let msg = rest.split_once(' ').map(|x| x.1).unwrap_or("");
                    format!("{n} T {msg}\n")
                }
                _ => format!("{l}\n"),
            })
            .collect();
        assert_eq!(
            text,
            "#1 [1/2] FROM scratch\n#1 DONE 0.0s\n\n#2 [2/2] COPY app /app\n\
             #2 T one\n#2 T two\n#2 T three\n#2 ERROR: copying app: not found\n"
        );
    }

    #[test]
    fn quiet_prints_nothing_and_json_one_line_per_event() {
        let mut q = Renderer::new(ProgressMode::Quiet, Vec::new());
        let mut j = Renderer::new(ProgressMode::Rawjson, Vec::new());
        for e in events() {
            q.render(&e);
            j.render(&e);
        }
        assert!(q.into_inner().is_empty());
        let out = String::from_utf8(j.into_inner()).unwrap();
        assert_eq!(out.lines().count(), 6);
        let first: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
        assert_eq!(first["event"], "started");
        assert_eq!(first["name"], "[1/2] FROM scratch");
    }
}
