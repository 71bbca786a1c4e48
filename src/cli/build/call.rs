//! `--call` and `--check`: buildx's frontend methods. `build` builds;
//! `check` runs BuildKit's Dockerfile checks and prints them as buildx does
//! (text with excerpts, or `format=json`), exiting 1 when any fired.
//! `targets` lists the stages; `outline` lists the target's build args,
//! secrets and SSH ids. `subrequests.describe` is refused by name.

use super::super::report::render_build_error;
use super::BuildArgs;
use crate::builder::{self, BuildOptions};
use crate::oci::Store;

/// A `--call` value kiln cannot run.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// A method buildx knows that kiln does not implement.
    #[error(
        "--call={0} is not supported by kiln: only `build`, `check`, `outline` and `targets` are"
    )]
    Unsupported(String),
    /// Not a buildx method, or a bad option.
    #[error("invalid --call value {0:?}: want METHOD[,format=text|json][,ignorestatus=BOOL]")]
    Invalid(String),
}

/// `--call=check`'s options.
#[derive(Debug, Clone, Copy)]
pub struct Check {
    json: bool,
    ignore_status: bool,
}

/// The method to run.
#[derive(Debug)]
pub enum Call {
    /// Build the image.
    Build,
    /// Only the checks.
    Check(Check),
    /// List the stages (`--call=targets`); `true` for JSON.
    Targets(bool),
    /// The target's build args, secrets and SSH ids (`--call=outline`); `true` for JSON.
    Outline(bool),
}

impl Call {
    /// From `--call` and `--check` (buildx: `--check` is `--call=check`).
    pub fn from_args(args: &BuildArgs) -> Result<Call, CallError> {
        let value = match (&args.call, args.check) {
            (_, true) => "check",
            (Some(v), false) => v.as_str(),
            (None, false) => return Ok(Call::Build),
        };
        let mut parts = value.split(',');
        let name = parts.next().unwrap_or("").trim();
        let (mut json, mut ignore_status) = (false, false);
        for opt in parts {
            match opt.split_once('=') {
                Some(("format", "json")) => json = true,
                Some(("format", "text")) => json = false,
                Some(("ignorestatus", v)) => {
                    ignore_status = v
                        .parse::<bool>()
                        .map_err(|_| CallError::Invalid(value.into()))?
                }
                _ => return Err(CallError::Invalid(value.into())),
            }
        }
        match name {
            "build" => Ok(Call::Build),
            // COMPAT(buildkit): buildx's `lint` is the older name of `check`.
            "check" | "lint" => Ok(Call::Check(Check {
                json,
                ignore_status,
            })),
            "targets" => Ok(Call::Targets(json)),
            "outline" => Ok(Call::Outline(json)),
            "subrequests.describe" => Err(CallError::Unsupported(name.into())),
            _ => Err(CallError::Invalid(value.into())),
        }
    }

    /// The check options when the method is `check`.
    pub fn check(&self) -> Option<Check> {
        match self {
            Call::Check(c) => Some(*c),
            Call::Build | Call::Targets(_) | Call::Outline(_) => None,
        }
    }
}

/// The file name excerpts start with: buildx's, the Dockerfile's path as
/// given (`-f`, or CONTEXT/Dockerfile), cleaned as Go's `filepath.Join`.
fn excerpt_name(args: &BuildArgs) -> String {
    let path = match &args.file {
        Some(f) if f.as_os_str() == "-" => return "Dockerfile".into(),
        Some(f) => f.clone(),
        None if super::is_stdin(&args.context) => return "Dockerfile".into(),
        None => args.context.join("Dockerfile"),
    };
    let parts: Vec<String> = path
        .components()
        .filter(|c| !matches!(c, std::path::Component::CurDir))
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let joined = parts.join("/");
    joined.replace("//", "/")
}

/// `--call=targets`: the stages on stdout; the exit code.
pub fn run_targets(json: bool, opts: &BuildOptions) -> i32 {
    let df = match crate::dockerfile::parse(&opts.dockerfile) {
        Ok(df) => df,
        Err(e) => return fail(&builder::BuildError::Parse(e), opts),
    };
    let list = crate::lint::targets(&df);
    if json {
        print!(
            "{}",
            crate::lint::render_targets_json(&list, &opts.dockerfile)
        );
    } else {
        print!("{}", crate::lint::render_targets_text(&list));
    }
    0
}

/// `--call=outline`: the target's build args, secrets and SSH ids on
/// stdout; the exit code.
pub fn run_outline(json: bool, store: &Store, opts: &BuildOptions) -> i32 {
    let (df, graph) = match builder::outline(store, opts) {
        Ok(r) => r,
        Err(e) => return fail(&e, opts),
    };
    let o = crate::lint::outline(&df, &graph);
    if json {
        print!("{}", crate::lint::render_outline_json(&o, &opts.dockerfile));
    } else {
        print!("{}", crate::lint::render_outline_text(&o));
    }
    0
}

/// Runs the checks and prints them on stdout; the exit code.
pub fn run_check(check: Check, store: &Store, args: &BuildArgs, opts: &BuildOptions) -> i32 {
    let (report, plan_failed) = match builder::check(store, opts) {
        Ok(r) => r,
        Err(e) => return fail(&e, opts),
    };
    let file = excerpt_name(args);
    let text = if check.json {
        // COMPAT(buildkit): the JSON source is named by its base name.
        let base = std::path::Path::new(&file)
            .file_name()
            .map_or_else(|| file.clone(), |n| n.to_string_lossy().into_owned());
        crate::lint::render_json(&report, &base, &opts.dockerfile)
    } else {
        crate::lint::render_text(&report.findings, &file, &opts.dockerfile)
    };
    print!("{text}");
    let stop = report
        .stop
        .as_ref()
        .map(|s| (s.message.clone(), Some((s.start_line, s.end_line))))
        .or_else(|| report.error().map(|m| (m, None)));
    if let Some((message, lines)) = stop {
        // COMPAT(buildkit): buildx separates the report from the error by a blank line.
        if !check.json && !report.findings.is_empty() {
            println!();
        }
        eprint!(
            "{}",
            crate::lint::render_stop(&message, lines, &file, &opts.dockerfile)
        );
        return 1;
    }
    if let Some(e) = plan_failed {
        // COMPAT(buildkit): a check run whose build would fail exits 1, as
        // buildx's does when its lint result carries a build error. kiln's
        // plan refuses some files BuildKit only warns about (a duplicate stage
        // name), so stdout stays the report alone.
        print_error(&e, opts);
        return 1;
    }
    if report.findings.is_empty() || check.ignore_status {
        0
    } else {
        1
    }
}

/// Prints a build error with its Dockerfile excerpt on stderr.
fn print_error(e: &builder::BuildError, opts: &BuildOptions) {
    eprint!(
        "{}",
        render_build_error(e, &opts.dockerfile, &opts.dockerfile_name)
    );
}

/// [`print_error`], then the error's exit code.
fn fail(e: &builder::BuildError, opts: &BuildOptions) -> i32 {
    print_error(e, opts);
    e.exit_code()
}
