//! Renders the builder's progress events: BuildKit-style plain lines for CI
//! (`#3 [2/4] COPY app /app`, `#3 DONE 0.1s`), one JSON object per line, or
//! nothing. Invariant: rendering never fails the build — write errors (a
//! closed pipe) stop the output, not the work.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::sync::mpsc::Receiver;
use std::thread::JoinHandle;
use std::time::Instant;

use crate::build::Event;

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
    /// One JSON object per event and line.
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

    /// The writer back, flushed.
    pub fn into_inner(mut self) -> W {
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

/// Renders every event from `rx` to stderr on a thread until the sender side
/// is dropped.
pub fn spawn(mode: ProgressMode, rx: Receiver<Event>) -> JoinHandle<()> {
    let mode = mode.resolve();
    std::thread::spawn(move || {
        if mode == ProgressMode::Tty {
            return tty_loop(rx, std::io::stderr().lock());
        }
        let mut r = Renderer::new(mode, std::io::stderr().lock());
        for ev in rx {
            r.render(&ev);
        }
        let _ = r.into_inner();
    })
}

/// One vertex as the tty view shows it.
struct Row {
    id: usize,
    name: String,
    started: Instant,
    end: Option<(std::time::Duration, &'static str)>,
    last_log: String,
}

/// The tty view: a header and one line per vertex, redrawn in place (at
/// most ten times a second, and whenever a vertex starts or ends).
pub struct TtyView<W: Write> {
    out: W,
    rows: Vec<Row>,
    warnings: Vec<String>,
    started: Instant,
    drawn: usize,
}

impl<W: Write> TtyView<W> {
    /// An empty view writing to `out`.
    pub fn new(out: W) -> Self {
        Self {
            out,
            rows: Vec::new(),
            warnings: Vec::new(),
            started: Instant::now(),
            drawn: 0,
        }
    }

    /// Applies one event (does not redraw).
    pub fn apply(&mut self, event: &Event) {
        match event {
            Event::Started { vertex, name, .. } => self.rows.push(Row {
                id: *vertex,
                name: name.clone(),
                started: Instant::now(),
                end: None,
                last_log: String::new(),
            }),
            Event::Log { vertex, data, .. } => {
                if let Some(r) = self.rows.iter_mut().find(|r| r.id == *vertex) {
                    let text = String::from_utf8_lossy(data);
                    if let Some(line) = text.lines().rev().find(|l| !l.trim().is_empty()) {
                        r.last_log = line.to_string();
                    }
                }
            }
            Event::Done { vertex, elapsed } => self.finish(*vertex, *elapsed, ""),
            Event::Cached { vertex } => self.finish(*vertex, Default::default(), "CACHED "),
            Event::Failed {
                vertex, elapsed, ..
            } => self.finish(*vertex, *elapsed, "ERROR "),
            Event::Warning { message } => self.warnings.push(message.clone()),
        }
    }

    fn finish(&mut self, id: usize, elapsed: std::time::Duration, tag: &'static str) {
        if let Some(r) = self.rows.iter_mut().find(|r| r.id == id) {
            r.end = Some((elapsed, tag));
        }
    }

    /// Redraws the view over the previous drawing.
    pub fn draw(&mut self) -> std::io::Result<()> {
        let mut text = String::new();
        if self.drawn > 0 {
            // Up to the first line of the previous drawing, then clear below.
            text.push_str(&format!("\x1b[{}F\x1b[J", self.drawn));
        }
        let done = self.rows.iter().filter(|r| r.end.is_some()).count();
        let mut lines = vec![format!(
            "[+] Building {:.1}s ({done}/{})",
            self.started.elapsed().as_secs_f64(),
            self.rows.len()
        )];
        for r in &self.rows {
            let (secs, tag) = match r.end {
                Some((d, tag)) => (d.as_secs_f64(), tag),
                None => (r.started.elapsed().as_secs_f64(), ""),
            };
            // Lines must not wrap: the redraw counts them.
            lines.push(format!(" => {tag}{:<60} {secs:>5.1}s", clip(&r.name, 60)));
            if r.end.is_none() && !r.last_log.is_empty() {
                lines.push(format!(" => => # {}", clip(&r.last_log, 66)));
            }
        }
        for l in &lines {
            text.push_str(l);
            text.push('\n');
        }
        self.drawn = lines.len();
        self.out.write_all(text.as_bytes())?;
        self.out.flush()
    }

    /// Final drawing, then the warnings.
    pub fn close(mut self) -> std::io::Result<W> {
        self.draw()?;
        for w in &self.warnings {
            writeln!(self.out, "WARN: {w}")?;
        }
        Ok(self.out)
    }
}

/// At most `n` characters of `s`, `…` marking a cut.
fn clip(s: &str, n: usize) -> String {
    match s.char_indices().nth(n.saturating_sub(1)) {
        Some((i, _)) if s.chars().count() > n => format!("{}…", &s[..i]),
        _ => s.to_string(),
    }
}

fn tty_loop<W: Write>(rx: Receiver<Event>, out: W) {
    use std::sync::mpsc::RecvTimeoutError;
    let mut view = TtyView::new(out);
    let tick = std::time::Duration::from_millis(100);
    let mut last = Instant::now();
    loop {
        let (changed, end) = match rx.recv_timeout(tick) {
            Ok(ev) => {
                let shape = !matches!(ev, Event::Log { .. });
                view.apply(&ev);
                (shape, false)
            }
            Err(RecvTimeoutError::Timeout) => (true, false),
            Err(RecvTimeoutError::Disconnected) => (false, true),
        };
        if end {
            break;
        }
        if changed || last.elapsed() >= tick {
            if view.draw().is_err() {
                // A closed terminal: stop drawing, keep draining.
                for _ in rx.iter() {}
                return;
            }
            last = Instant::now();
        }
    }
    let _ = view.close();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::Stream;
    use std::time::Duration;

    fn events() -> Vec<Event> {
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

    #[test]
    fn tty_view_redraws_in_place() {
        let mut v = TtyView::new(Vec::new());
        let evs = events();
        v.apply(&evs[0]);
        v.draw().unwrap();
        for e in &evs[1..] {
            v.apply(e);
        }
        v.apply(&Event::Warning {
            message: "unused".into(),
        });
        let out = String::from_utf8(v.close().unwrap()).unwrap();
        // The second drawing moves up over the first (header + one row).
        assert!(out.contains("\x1b[2F\x1b[J"), "{out:?}");
        assert!(out.contains("(2/2)"), "{out:?}");
        assert!(out.contains(" => ERROR [2/2] COPY app /app"), "{out:?}");
        assert!(out.ends_with("WARN: unused\n"), "{out:?}");
    }
}
