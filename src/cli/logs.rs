//! `kiln logs [-f] [--tail N] [-t] CONTAINER`: a stored container's json-file log,
//! stdout entries to stdout and stderr entries to stderr, as docker prints them.

use std::io::{Read, Seek, Write};
use std::time::Duration;

use anyhow::Context;

use crate::container::{self, logfile};

use super::Cli;

/// Arguments of `kiln logs`.
#[derive(Debug, clap::Args)]
pub struct LogsArgs {
    /// Keep printing new output until the container stops.
    #[arg(short, long)]
    pub follow: bool,
    /// Only the last N lines (`all`: every line).
    #[arg(short = 'n', long, value_name = "N")]
    pub tail: Option<String>,
    /// Prefix each line with its time (RFC 3339, nanoseconds).
    #[arg(short, long)]
    pub timestamps: bool,
    /// The container: name, id or id prefix.
    pub container: String,
}

fn print(e: &logfile::Entry, stamps: bool) -> std::io::Result<()> {
    let text = if stamps {
        format!("{} {}", e.time, e.log)
    } else {
        e.log.clone()
    };
    if e.stream == "stderr" {
        std::io::stderr().lock().write_all(text.as_bytes())
    } else {
        let mut out = std::io::stdout().lock();
        out.write_all(text.as_bytes())?;
        out.flush()
    }
}

/// Runs `kiln logs`.
pub fn run(cli: &Cli, args: &LogsArgs) -> anyhow::Result<()> {
    let tail = match args.tail.as_deref() {
        None | Some("all") => None,
        Some(n) => match n.parse::<usize>() {
            Ok(n) => Some(n),
            Err(_) => {
                let e = format!("--tail {n:?}: expected a number of lines or all");
                return Err(super::UsageError(e).into());
            }
        },
    };
    let store = cli.open_store()?;
    let mut c = container::find(&store, &args.container)?;
    let id = c.config.id.clone();
    let files = logfile::files(&c.dir, &id);
    let current = files.last().context("the log's files")?.clone();
    // Where the current file was read up to, so that -f goes on from there.
    let (mut inode, mut offset) = file_pos(&current);
    let entries = logfile::read_all(&c.dir, &id)
        .with_context(|| format!("reading the log of {}", args.container))?;
    let skip = tail.map_or(0, |n| entries.len().saturating_sub(n));
    for e in &entries[skip..] {
        print(e, args.timestamps)?;
    }
    if !args.follow {
        return Ok(());
    }
    loop {
        let running = {
            c.reload()?;
            c.is_running()
        };
        let (now_inode, _) = file_pos(&current);
        if now_inode != inode {
            // Rotated: the rest of the old file is now `.1`.
            let rotated = &files[files.len() - 2];
            offset = drain(rotated, offset, args.timestamps)?;
            let _ = offset;
            (inode, offset) = (now_inode, 0);
        }
        offset = drain(&current, offset, args.timestamps)?;
        if !running {
            // Read once more after the monitor's last write was seen.
            drain(&current, offset, args.timestamps)?;
            return Ok(());
        }
        // A follow loop, not synchronisation: new lines show within 100 ms.
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn file_pos(path: &std::path::Path) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).map_or((0, 0), |m| (m.ino(), m.len()))
}

/// Prints the whole lines of `path` from `offset`; the offset after them.
fn drain(path: &std::path::Path, offset: u64, stamps: bool) -> anyhow::Result<u64> {
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(offset),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    f.seek(std::io::SeekFrom::Start(offset))?;
    let mut buf = Vec::new();
    f.read_to_end(&mut buf)?;
    let whole = buf.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    for e in logfile::parse(&buf[..whole]) {
        print(&e, stamps)?;
    }
    Ok(offset + whole as u64)
}
