//! A stored container's log in docker's `json-file` format: one JSON object per line,
//! `{"log":"…\n","stream":"stdout","time":"2024-01-02T03:04:05.123456789Z"}`, in
//! `<id>-json.log`, rotated to `.1` and `.2` at [`MAX_SIZE`] (docker's default is no
//! cap; kiln keeps at most 3 × 10 MiB so a chatty container cannot fill the disk).
//!
//! Invariant: only the container's monitor writes; a line is written whole with one
//! `write` on an `O_APPEND` file, so a reader sees whole lines or none of the last.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The size at which the log is rotated.
pub const MAX_SIZE: u64 = 10 << 20;
/// The files kept: the current one and two rotated.
pub const MAX_FILES: usize = 3;
/// A line longer than this is written as partial entries (docker's 16 KiB buffer).
const MAX_LINE: usize = 16 << 10;

/// One log entry as docker's json-file driver writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The bytes, with their newline when the line was whole.
    pub log: String,
    /// `stdout` or `stderr`.
    pub stream: String,
    /// RFC 3339 with nanoseconds.
    pub time: String,
}

/// The log file of the container in `dir` whose id is `id`, and its rotated ones,
/// oldest first.
pub fn files(dir: &Path, id: &str) -> Vec<PathBuf> {
    let current = dir.join(format!("{id}-json.log"));
    let mut out: Vec<PathBuf> = (1..MAX_FILES)
        .rev()
        .map(|n| dir.join(format!("{id}-json.log.{n}")))
        .collect();
    out.push(current);
    out
}

/// Writes a container's output as json-file lines, rotating at [`MAX_SIZE`].
pub struct LogWriter {
    files: Vec<PathBuf>,
    file: File,
    size: u64,
    pending: [Vec<u8>; 2],
}

impl LogWriter {
    /// Opens (appending to) the log of container `id` in `dir`.
    pub fn open(dir: &Path, id: &str) -> io::Result<Self> {
        let files = files(dir, id);
        let file = append(files.last().expect("three files"))?;
        let size = file.metadata()?.len();
        Ok(Self {
            files,
            file,
            size,
            pending: [Vec::new(), Vec::new()],
        })
    }

    /// Adds `bytes` from `stream` (0 stdout, 1 stderr), read at `time`: each whole
    /// line is an entry; the rest waits for its newline (or [`LogWriter::flush`]).
    pub fn write(&mut self, stream: usize, bytes: &[u8], time: &str) -> io::Result<()> {
        self.pending[stream].extend_from_slice(bytes);
        loop {
            let buf = &self.pending[stream];
            let cut = match buf.iter().position(|&b| b == b'\n') {
                Some(i) => i + 1,
                None if buf.len() >= MAX_LINE => MAX_LINE,
                None => return Ok(()),
            };
            let line: Vec<u8> = self.pending[stream].drain(..cut).collect();
            self.entry(stream, &line, time)?;
        }
    }

    /// Writes what is left of a line without its newline (the command ended).
    pub fn flush(&mut self, time: &str) -> io::Result<()> {
        for stream in 0..2 {
            if !self.pending[stream].is_empty() {
                let line = std::mem::take(&mut self.pending[stream]);
                self.entry(stream, &line, time)?;
            }
        }
        self.file.sync_data()
    }

    fn entry(&mut self, stream: usize, line: &[u8], time: &str) -> io::Result<()> {
        let entry = Entry {
            log: String::from_utf8_lossy(line).into_owned(),
            stream: if stream == 0 { "stdout" } else { "stderr" }.into(),
            time: time.into(),
        };
        let mut json = serde_json::to_vec(&entry).map_err(io::Error::other)?;
        json.push(b'\n');
        if self.size > 0 && self.size + json.len() as u64 > MAX_SIZE {
            self.rotate()?;
        }
        self.file.write_all(&json)?;
        self.size += json.len() as u64;
        Ok(())
    }

    fn rotate(&mut self) -> io::Result<()> {
        for pair in self.files.windows(2) {
            match fs::rename(&pair[1], &pair[0]) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        self.file = append(self.files.last().expect("three files"))?;
        self.size = 0;
        Ok(())
    }
}

fn append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// Parses json-file lines; a torn or foreign line is skipped.
pub fn parse(bytes: &[u8]) -> Vec<Entry> {
    bytes
        .split(|&b| b == b'\n')
        .filter_map(|l| serde_json::from_slice(l).ok())
        .collect()
}

/// Every entry of the log of container `id` in `dir`, oldest first.
pub fn read_all(dir: &Path, id: &str) -> io::Result<Vec<Entry>> {
    let mut out = Vec::new();
    for f in files(dir, id) {
        match fs::read(&f) {
            Ok(b) => out.extend(parse(&b)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_json_file_entries_and_partial_lines_wait() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = LogWriter::open(dir.path(), "abc").unwrap();
        w.write(0, b"hi\npart", "T1").unwrap();
        w.write(1, b"err\n", "T2").unwrap();
        w.write(0, b"ial\n", "T3").unwrap();
        w.write(0, b"tail", "T4").unwrap();
        w.flush("T5").unwrap();
        let text = fs::read_to_string(dir.path().join("abc-json.log")).unwrap();
        assert_eq!(
            text.lines().next().unwrap(),
            r#"{"log":"hi\n","stream":"stdout","time":"T1"}"#
        );
        let logs: Vec<_> = read_all(dir.path(), "abc")
            .unwrap()
            .into_iter()
            .map(|e| (e.log, e.stream))
            .collect();
        let want = [
            ("hi\n", "stdout"),
            ("err\n", "stderr"),
            ("partial\n", "stdout"),
            ("tail", "stdout"),
        ];
        assert_eq!(
            logs,
            want.map(|(l, s)| (l.to_string(), s.to_string())).to_vec()
        );
    }

    #[test]
    fn the_log_rotates_and_keeps_three_files() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = LogWriter::open(dir.path(), "r").unwrap();
        let line = vec![b'x'; MAX_LINE - 1];
        let mut chunk = line.clone();
        chunk.push(b'\n');
        // Enough for more than three files.
        let n = (MAX_SIZE as usize * 3) / chunk.len() + 10;
        for _ in 0..n {
            w.write(0, &chunk, "T").unwrap();
        }
        w.flush("T").unwrap();
        for f in files(dir.path(), "r") {
            let len = fs::metadata(&f).unwrap().len();
            assert!(len <= MAX_SIZE, "{} is {len} bytes", f.display());
        }
        assert!(!dir.path().join("r-json.log.3").exists());
        let kept = read_all(dir.path(), "r").unwrap().len();
        assert!(kept < n && kept > n / 2, "{kept} of {n}");
    }
}
