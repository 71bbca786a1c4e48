//! Diagnostic logging to stderr: `--log-level LEVEL`, `--debug`, or `RUST_LOG`.
//!
//! kiln's own `tracing` events (registry retries and fallbacks, resumed
//! downloads, files left out of a layer, sandbox launches, cache lookups) go to
//! stderr through `tracing-subscriber`, filtered as `RUST_LOG` directives
//! (`debug`, `kiln=trace`, `kiln::oci::registry=debug`). Nothing is logged by
//! default but warnings; the build's progress output is separate and unchanged.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// The filter when neither a flag nor `RUST_LOG` chooses one.
const DEFAULT: &str = "kiln=warn";

/// The directives `--log-level`/`--debug` choose, else `RUST_LOG`'s, else
/// `DEFAULT`. A bare level (`debug`) applies to kiln's events only, so a
/// user asking kiln for detail is not flooded by its libraries'; directives
/// with a target (`ureq=debug`) pass through as written.
pub fn directives(level: Option<&str>, debug: bool, rust_log: Option<&str>) -> String {
    let chosen = if debug { Some("debug") } else { level };
    match chosen.or(rust_log).map(str::trim).filter(|s| !s.is_empty()) {
        None => DEFAULT.to_string(),
        Some(d) if is_level(d) => format!("kiln={d}"),
        Some(d) => d.to_string(),
    }
}

fn is_level(s: &str) -> bool {
    ["off", "error", "warn", "info", "debug", "trace"]
        .iter()
        .any(|l| l.eq_ignore_ascii_case(s))
}

/// Installs the stderr subscriber for `directives`; a directive string that
/// does not parse is a usage error naming it.
pub fn init(directives: &str) -> Result<(), String> {
    let filter = EnvFilter::builder()
        .parse(directives)
        .map_err(|e| format!("invalid --log-level/RUST_LOG {directives:?}: {e}"))?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(true)
        .without_time()
        .init();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::directives;

    #[test]
    fn flags_then_rust_log_then_default() {
        assert_eq!(directives(None, false, None), "kiln=warn");
        assert_eq!(directives(None, false, Some("  ")), "kiln=warn");
        assert_eq!(directives(None, false, Some("trace")), "kiln=trace");
        assert_eq!(directives(Some("info"), false, Some("trace")), "kiln=info");
        assert_eq!(directives(Some("info"), true, None), "kiln=debug");
        assert_eq!(
            directives(None, false, Some("kiln::oci=debug,ureq=info")),
            "kiln::oci=debug,ureq=info"
        );
    }
}
