//! The tty view of progress: a header and one line per vertex, redrawn in
//! place with ANSI cursor moves, the running steps' last log line under
//! them. Invariant: no drawn line wraps (names are clipped), since the
//! redraw moves up by the number of lines it drew.

use std::io::Write;
use std::sync::mpsc::Receiver;
use std::time::Instant;

use crate::builder::Event;

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
    checks: Vec<String>,
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
            checks: Vec::new(),
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
            Event::Check { short, .. } => self.checks.push(short.clone()),
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
        self.out
            .write_all(super::check_summary(&self.checks).as_bytes())?;
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

pub(super) fn tty_loop<W: Write>(rx: Receiver<Event>, out: W) {
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
    use crate::cli::progress::tests::events;

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
