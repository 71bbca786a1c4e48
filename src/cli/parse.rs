//! `kiln parse [--json] [FILE|-]`: prints BuildKit's dump of a Dockerfile,
//! or its `ast.json` view. Exit codes: 0 ok, 2 rejected Dockerfile, 3 the
//! file could not be read. Does not run the instruction-name check, so the
//! dump matches BuildKit's parser exactly.

use crate::dockerfile;
use clap::Args;
use std::io::{Read, Write};
use std::path::PathBuf;

/// Arguments of `kiln parse`.
#[derive(Debug, Clone, Args)]
pub struct ParseArgs {
    /// Print the `ast.json` view instead of the dump.
    #[arg(long)]
    pub json: bool,
    /// The Dockerfile (`-` for standard input).
    #[arg(default_value = "-")]
    pub file: PathBuf,
}

/// Runs `kiln parse`; returns the exit code.
pub fn run(args: ParseArgs) -> i32 {
    let (name, src) = match read_input(&args.file) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("error: reading {}\ncaused by: {e}", args.file.display());
            return 3;
        }
    };
    // COMPAT(buildkit): bytes that are not UTF-8 dump as `\xHH`, not U+FFFD.
    let (out, code) = match dockerfile::parse_source(&src) {
        Ok(df) if args.json => (pretty(&df.ast_json()), 0),
        Ok(df) => (df.dump(), 0),
        Err(e) if args.json => (pretty(&dockerfile::ast_json_error(&e.full_message())), 2),
        Err(e) => {
            eprint!("{}", e.render(&src, &name));
            return 2;
        }
    };
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(out.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Ok(()) => code,
        // A closed pipe (`kiln parse | head`) is not an error worth a message.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => code,
        Err(e) => {
            eprintln!("error: writing output\ncaused by: {e}");
            3
        }
    }
}

fn pretty(v: &serde_json::Value) -> String {
    let mut s = serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string());
    s.push('\n');
    s
}

fn read_input(file: &PathBuf) -> std::io::Result<(String, Vec<u8>)> {
    if file.as_os_str() == "-" {
        let mut buf = Vec::new();
        std::io::stdin().read_to_end(&mut buf)?;
        return Ok(("<stdin>".to_string(), buf));
    }
    Ok((file.display().to_string(), std::fs::read(file)?))
}
