//! `kiln ps [-a] [-q] [--format TEMPLATE]`: the stored containers, as docker lists
//! them. A `running` state whose monitor is gone shows as exited (see
//! `container::Container::observed`).

use std::io::Write;

use crate::container::{self, Container, Status};

use super::{Cli, UsageError};

/// Arguments of `kiln ps`.
#[derive(Debug, clap::Args)]
pub struct PsArgs {
    /// Show every container (by default only running ones).
    #[arg(short, long)]
    pub all: bool,
    /// Only the (short) ids.
    #[arg(short, long)]
    pub quiet: bool,
    /// Don't truncate ids and commands.
    #[arg(long)]
    pub no_trunc: bool,
    /// A Go-template subset: `{{.ID}}`, `{{.Names}}`, `{{.Image}}`, `{{.Command}}`,
    /// `{{.CreatedAt}}`, `{{.RunningFor}}`, `{{.Status}}`, `{{.State}}`, `{{.Ports}}`
    /// and literal text (`\t`, `\n` as docker); a `table ` prefix prints a header.
    #[arg(long, value_name = "TEMPLATE")]
    pub format: Option<String>,
}

/// The fields `--format` knows, with their table headers.
const FIELDS: [(&str, &str); 9] = [
    ("ID", "CONTAINER ID"),
    ("Image", "IMAGE"),
    ("Command", "COMMAND"),
    ("CreatedAt", "CREATED AT"),
    ("RunningFor", "CREATED"),
    ("Status", "STATUS"),
    ("Ports", "PORTS"),
    ("Names", "NAMES"),
    ("State", "STATE"),
];

/// One piece of a template.
#[derive(Debug, PartialEq, Eq)]
enum Piece {
    Text(String),
    Field(&'static str),
}

/// Parses `--format`; anything but `{{.Field}}` of [`FIELDS`] is refused by name.
fn template(format: &str) -> anyhow::Result<Vec<Piece>> {
    let format = format.replace("\\t", "\t").replace("\\n", "\n");
    let mut out = Vec::new();
    let mut rest = format.as_str();
    while let Some(open) = rest.find("{{") {
        if open > 0 {
            out.push(Piece::Text(rest[..open].into()));
        }
        let Some(close) = rest[open..].find("}}") else {
            return Err(UsageError(format!("--format {format:?}: unclosed {{{{")).into());
        };
        let action = rest[open + 2..open + close].trim();
        let field = action
            .strip_prefix('.')
            .and_then(|f| FIELDS.iter().find(|(n, _)| *n == f));
        match field {
            Some((name, _)) => out.push(Piece::Field(name)),
            None => {
                return Err(UsageError(format!(
                    "--format: {{{{{action}}}}} is not supported; kiln's ps takes {} (no functions or pipelines)",
                    FIELDS.map(|(n, _)| format!("{{{{.{n}}}}}")).join(", ")
                ))
                .into())
            }
        }
        rest = &rest[open + close + 2..];
    }
    if !rest.is_empty() {
        out.push(Piece::Text(rest.into()));
    }
    Ok(out)
}

/// "3 seconds", "2 minutes", as docker's `units.HumanDuration`.
fn human(secs: i64) -> String {
    let s = secs.max(0);
    match s {
        0 => "Less than a second".into(),
        1 => "1 second".into(),
        2..=59 => format!("{s} seconds"),
        60..=119 => "About a minute".into(),
        120..=3599 => format!("{} minutes", s / 60),
        3600..=7199 => "About an hour".into(),
        7200..=172_799 => format!("{} hours", s / 3600),
        _ => format!("{} days", s / 86_400),
    }
}

fn field(c: &Container, name: &str, trunc: bool) -> String {
    let s = c.observed();
    let now = container::now();
    match name {
        "ID" if trunc => c.short_id().into(),
        "ID" => c.config.id.clone(),
        "Image" => c.config.image.clone(),
        "Command" => {
            let cmd = c.config.spec.argv.join(" ");
            if trunc && cmd.chars().count() > 20 {
                format!("\"{}…\"", cmd.chars().take(19).collect::<String>())
            } else {
                format!("\"{cmd}\"")
            }
        }
        "CreatedAt" => crate::oci::time::rfc3339(c.config.created, 0),
        "RunningFor" => format!("{} ago", human(now - c.config.created)),
        "Status" => match s.status {
            Status::Created => "Created".into(),
            Status::Running => format!("Up {}", human(now - s.started_at.unwrap_or(now))),
            Status::Exited => {
                let code = s.exit_code.map_or("?".into(), |c| c.to_string());
                let ago = human(now - s.finished_at.unwrap_or(now));
                format!("Exited ({code}) {ago} ago")
            }
        },
        "State" => match s.status {
            Status::Created => "created",
            Status::Running => "running",
            Status::Exited => "exited",
        }
        .into(),
        "Names" => c.config.name.clone(),
        _ => String::new(),
    }
}

/// Runs `kiln ps`.
pub fn run(cli: &Cli, args: &PsArgs) -> anyhow::Result<()> {
    let pieces = match &args.format {
        Some(f) => Some((
            f.starts_with("table"),
            template(f.trim_start_matches("table").trim_start())?,
        )),
        None => None,
    };
    let store = cli.open_store()?;
    let shown: Vec<Container> = container::list(&store)?
        .into_iter()
        .filter(|c| args.all || c.is_running())
        .collect();
    let trunc = !args.no_trunc;
    let mut out = std::io::stdout().lock();
    if args.quiet {
        for c in &shown {
            writeln!(out, "{}", field(c, "ID", trunc))?;
        }
        return Ok(());
    }
    if let Some((table, pieces)) = pieces {
        let render = |get: &dyn Fn(&str) -> String| {
            pieces
                .iter()
                .map(|p| match p {
                    Piece::Text(t) => t.clone(),
                    Piece::Field(f) => get(f),
                })
                .collect::<String>()
        };
        if table {
            let header = |f: &str| {
                FIELDS
                    .iter()
                    .find(|(n, _)| *n == f)
                    .map_or(String::new(), |(_, h)| (*h).to_string())
            };
            writeln!(out, "{}", render(&header))?;
        }
        for c in &shown {
            writeln!(out, "{}", render(&|f| field(c, f, trunc)))?;
        }
        return Ok(());
    }
    let cols = [
        "ID",
        "Image",
        "Command",
        "RunningFor",
        "Status",
        "Ports",
        "Names",
    ];
    let mut rows: Vec<Vec<String>> = vec![[
        "CONTAINER ID",
        "IMAGE",
        "COMMAND",
        "CREATED",
        "STATUS",
        "PORTS",
        "NAMES",
    ]
    .map(String::from)
    .to_vec()];
    for c in &shown {
        rows.push(cols.iter().map(|f| field(c, f, trunc)).collect());
    }
    let widths: Vec<usize> = (0..cols.len())
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    for r in rows {
        let mut line = String::new();
        for (i, cell) in r.iter().enumerate() {
            if i + 1 == r.len() {
                line.push_str(cell);
            } else {
                let pad = widths[i] - cell.chars().count() + 3;
                line.push_str(cell);
                line.push_str(&" ".repeat(pad));
            }
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_take_known_fields_and_refuse_the_rest() {
        assert_eq!(
            template("{{.ID}}\\t{{ .Names }}").unwrap(),
            [
                Piece::Field("ID"),
                Piece::Text("\t".into()),
                Piece::Field("Names")
            ]
        );
        let e = template("{{json .}}").unwrap_err().to_string();
        assert!(e.contains("{{json .}} is not supported"), "{e}");
        assert!(template("{{.Labels}}").is_err());
        assert!(template("{{.ID").is_err());
    }

    #[test]
    fn durations_read_as_dockers() {
        assert_eq!(human(5), "5 seconds");
        assert_eq!(human(90), "About a minute");
        assert_eq!(human(7300), "2 hours");
    }
}
