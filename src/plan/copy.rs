//! COPY, ADD and WORKDIR: the file ops. Sources, destination and the
//! `--chown`/`--chmod`/`--exclude`/`--checksum` flags are expanded (`--from`
//! is not: BuildKit resolves it before expansion); the destination is made
//! absolute against WORKDIR and keeps a trailing `/`.

use crate::dockerfile::ignore::IgnoreError;
use crate::dockerfile::Instruction;
use crate::oci::Digest;

use super::flags::Flags;
use super::flags::{bad_args, one_arg};
use super::heredoc::{body, is_lone_heredoc};
use super::path::clean_abs;
use super::state::{Lowerer, Source, StageState};

use super::{
    AddOptions, Chmod, Chown, CopyOp, CopySource, Excludes, FilesFrom, InlineFile, Op, PlanError,
    WorkdirOp,
};

const COPY_FLAGS: [&str; 6] = ["from", "chown", "chmod", "link", "parents", "exclude"];
const ADD_FLAGS: [&str; 7] = [
    "chown",
    "chmod",
    "link",
    "exclude",
    "checksum",
    "keep-git-dir",
    "unpack",
];

/// BuildKit's `pathRelativeToWorkingDir` with `keepSlash`: absolute, cleaned,
/// a trailing `/` (or `/.`, or a bare `.`) kept as `/`.
pub(super) fn resolve_dest(workdir: &str, dest: &str) -> String {
    let dest = if dest.is_empty() || dest == "." {
        "./"
    } else {
        dest
    };
    let mut out = clean_abs(workdir, dest);
    if (dest.ends_with('/') || dest.ends_with("/.")) && !out.ends_with('/') {
        out.push('/');
    }
    out
}

/// True for a source ADD fetches over HTTP(S). With [`is_git`], the one
/// classification of COPY/ADD sources, whose result the op carries as a
/// [`CopySource`].
fn is_url(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://")
}

/// True for a source BuildKit treats as a git repository (`gitutil` transports
/// `git://`, `git@`, `ssh://`, or an http(s) URL whose path ends in `.git`).
pub fn is_git(s: &str) -> bool {
    let no_frag = s.split(['#', '?']).next().unwrap_or(s);
    s.starts_with("git@")
        || s.starts_with("git://")
        || s.starts_with("ssh://")
        || (is_url(s) && no_frag.ends_with(".git"))
}

/// `COPY` (`add == false`) or `ADD`.
pub(super) fn copy(
    lw: &mut Lowerer<'_>,
    st: &mut StageState,
    inst: &Instruction,
    add: bool,
) -> Result<(), PlanError> {
    let kw = if add { "ADD" } else { "COPY" };
    let flags = Flags::parse(inst, if add { &ADD_FLAGS } else { &COPY_FLAGS })?;
    let Some((dest_raw, srcs_raw)) = inst.args.split_last().filter(|(_, s)| !s.is_empty()) else {
        return Err(bad_args(inst, "requires at least two arguments"));
    };
    if is_lone_heredoc(dest_raw) {
        return Err(bad_args(inst, "cannot accept a heredoc as a destination"));
    }
    let (sources, heredocs) = sources(lw, st, inst, srcs_raw)?;
    let dest_text = lw.exp.word(inst, dest_raw, &st.env)?;
    // COMPAT(buildkit): `--chown=` (or one that expands to nothing) is no --chown:
    // dockerfile2llb applies it only when non-empty.
    let chown = expanded_flag(lw, st, inst, &flags, "chown")?
        .filter(|c| !c.is_empty())
        .map(|c| Chown::parse(&c));
    let chmod = match expanded_flag(lw, st, inst, &flags, "chmod")? {
        Some(m) => Some(Chmod::parse(&m).map_err(|e| flags.bad("chmod", &m, e.reason()))?),
        None => None,
    };
    let mut patterns = Vec::new();
    for e in flags.strings("exclude")? {
        patterns.push(lw.exp.word(inst, e, &st.env)?);
    }
    let excludes = Excludes::compile(patterns.clone())
        .map_err(|(i, e)| flags.bad("exclude", &patterns[i], exclude_reason(&e)))?;
    let add_opts = if add {
        let checksum = expanded_flag(lw, st, inst, &flags, "checksum")?;
        Some(add_options(inst, &flags, checksum, &sources)?)
    } else {
        check_copy_sources(inst, &sources)?;
        None
    };
    // COMPAT(buildkit): `--from` is not expanded; stage dependencies are
    // computed from it before any instruction runs (`toCommand`).
    let from = match flags.string("from")? {
        Some(f) if !f.is_empty() => match lw.source(inst, f, st)? {
            Source::Stage(id) => FilesFrom::Stage(id),
            Source::Image(img) => FilesFrom::Image(*img),
            Source::Context(name) => FilesFrom::NamedContext(name),
        },
        _ => FilesFrom::Context,
    };
    let parents = flags.bool("parents")?.unwrap_or(false);
    let created_by = history(kw, parents, &chown, &chmod, &sources, &heredocs, &dest_text);
    // The one classification: planning refused git sources, and URLs for COPY.
    let sources = sources
        .into_iter()
        .map(|s| match is_url(&s) {
            true => CopySource::Url(s),
            false => CopySource::Path(s),
        })
        .collect();
    let dest = resolve_dest(&st.workdir(), &dest_text);
    let op = CopyOp {
        from,
        sources,
        heredocs,
        dest_is_dir_hint: dest.ends_with('/'),
        dest,
        chown,
        chmod,
        link: flags.bool("link")?.unwrap_or(false),
        parents,
        excludes,
        add: add_opts,
    };
    st.push(inst, Op::Copy(op), created_by, false);
    Ok(())
}

/// Sources as expanded words, and `<<EOF` sources as inline files (bodies
/// expanded unless the delimiter was quoted).
fn sources(
    lw: &Lowerer<'_>,
    st: &StageState,
    inst: &Instruction,
    raw: &[String],
) -> Result<(Vec<String>, Vec<InlineFile>), PlanError> {
    let mut sources = Vec::new();
    let mut heredocs = Vec::new();
    let mut docs = inst.heredocs.iter();
    for s in raw {
        if !is_lone_heredoc(s) {
            sources.push(lw.exp.word(inst, s, &st.env)?);
            continue;
        }
        let h = docs
            .next()
            .ok_or_else(|| bad_args(inst, format!("heredoc {s} has no body")))?;
        let mut content = body(h);
        if h.expand {
            content = lw.exp.raw(inst, &content, &st.env)?;
        }
        heredocs.push(InlineFile {
            name: h.name.clone(),
            content,
            mode: 0o644,
        });
    }
    Ok((sources, heredocs))
}

/// A string flag, expanded; empty counts as absent.
fn expanded_flag(
    lw: &Lowerer<'_>,
    st: &StageState,
    inst: &Instruction,
    flags: &Flags<'_>,
    name: &str,
) -> Result<Option<String>, PlanError> {
    match flags.string(name)? {
        Some(v) if !v.is_empty() => Ok(Some(lw.exp.word(inst, v, &st.env)?)),
        _ => Ok(None),
    }
}

fn check_copy_sources(inst: &Instruction, sources: &[String]) -> Result<(), PlanError> {
    if sources.iter().any(|s| is_git(s)) {
        return Err(bad_args(inst, "source can't be a git ref for COPY"));
    }
    if sources.iter().any(|s| is_url(s)) {
        return Err(bad_args(inst, "source can't be a URL for COPY"));
    }
    Ok(())
}

fn add_options(
    inst: &Instruction,
    flags: &Flags<'_>,
    checksum: Option<String>,
    sources: &[String],
) -> Result<AddOptions, PlanError> {
    if sources.iter().any(|s| is_git(s)) {
        return Err(PlanError::Unsupported {
            span: inst.span,
            what: "ADD from a git repository".into(),
        });
    }
    if checksum.is_some() {
        if sources.len() != 1 {
            return Err(bad_args(
                inst,
                "checksum can't be specified for multiple sources",
            ));
        }
        if !is_url(&sources[0]) {
            return Err(bad_args(
                inst,
                "checksum can't be specified for non-HTTP(S) sources",
            ));
        }
    }
    // COMPAT(buildkit): dockerfile2llb parses the digest while converting, so a bad
    // value fails before any step runs.
    let checksum = checksum
        .map(|c| {
            Digest::parse(&c)
                .map_err(|e| bad_args(inst, format!("invalid checksum digest {c:?}: {e}")))
        })
        .transpose()?;
    Ok(AddOptions {
        checksum,
        keep_git_dir: flags.bool("keep-git-dir")?.unwrap_or(false),
        unpack: flags.bool("unpack")?,
    })
}

/// Why patternmatcher refuses an `--exclude` pattern.
fn exclude_reason(e: &IgnoreError) -> &'static str {
    match e {
        // COMPAT(buildkit): patternmatcher's own words.
        IgnoreError::LoneExclamation { .. } => "illegal exclusion pattern: \"!\"",
        IgnoreError::BadPattern { .. } => "syntax error in pattern",
        IgnoreError::Compile { .. } => "the pattern does not compile",
    }
}

/// BuildKit's commit message for COPY/ADD (`--link`, `--from` not shown).
fn history(
    kw: &str,
    parents: bool,
    chown: &Option<Chown>,
    chmod: &Option<Chmod>,
    sources: &[String],
    heredocs: &[InlineFile],
    dest: &str,
) -> String {
    let mut s = kw.to_string();
    if parents {
        s.push_str(" --parents");
    }
    if let Some(c) = chown {
        s.push_str(&format!(" --chown={}", c.text()));
    }
    if let Some(m) = chmod {
        s.push_str(&format!(" --chmod={}", m.text()));
    }
    for src in sources {
        s.push(' ');
        s.push_str(src);
    }
    for h in heredocs {
        s.push_str(&format!(" <<{}", h.name));
    }
    format!("{s} {dest} # buildkit")
}

/// `WORKDIR path`: relative to the previous WORKDIR; `/` makes no layer (and no op).
pub(super) fn workdir(
    lw: &mut Lowerer<'_>,
    st: &mut StageState,
    inst: &Instruction,
) -> Result<(), PlanError> {
    // An empty path (an unset variable) joins to the current WORKDIR.
    let raw = lw.exp.word(inst, one_arg(inst)?, &st.env)?;
    let path = clean_abs(&st.workdir(), &raw);
    // COMPAT(buildkit): `system.NormalizeWorkdir` keeps an absolute path as written,
    // so `WORKDIR /app/` is `/app/` in the config; a relative one goes through
    // `path.Join`, which drops the slash. The op (and its key) takes the clean path.
    let mut config_path = path.clone();
    if raw.starts_with('/') && raw.ends_with('/') && !path.ends_with('/') {
        config_path.push('/');
    }
    st.config.config.working_dir = Some(config_path.clone());
    let created_by = format!("WORKDIR {config_path}");
    if path == "/" {
        st.push_meta(inst, created_by);
        return Ok(());
    }
    let op = Op::Workdir(WorkdirOp {
        path,
        user: st.user(),
    });
    st.push(inst, op, created_by, false);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_clean_like_go() {
        assert_eq!(clean_abs("/a", "b/../c"), "/a/c");
        assert_eq!(clean_abs("/a", "/x//y/."), "/x/y");
        assert_eq!(clean_abs("/", ".."), "/");
        assert_eq!(resolve_dest("/app", "."), "/app/");
        assert_eq!(resolve_dest("/app", "sub/"), "/app/sub/");
        assert_eq!(resolve_dest("/app", "/etc/x"), "/etc/x");
        assert_eq!(resolve_dest("/", "/"), "/");
    }

    #[test]
    fn url_and_git_sources() {
        assert!(is_git("https://github.com/a/b.git#main"));
        assert!(is_git("git@github.com:a/b.git"));
        // Regression: ssh:// passed planning and failed at execution.
        assert!(is_git("ssh://git@host/repo.git"));
        assert!(is_git("ssh://host/repo"));
        assert!(!is_git("https://example.com/x.tar.gz"));
        assert!(is_url("https://example.com/x.tar.gz"));
    }
}
