//! Heredoc bodies as BuildKit reads them: `<<-` strips leading tabs, and a
//! command that is one heredoc word runs the body as a script.

use crate::dockerfile::Heredoc;

/// A heredoc body with `<<-` tab stripping applied.
pub(super) fn body(h: &Heredoc) -> String {
    if !h.chomp {
        return h.content.clone();
    }
    h.content
        .split_inclusive('\n')
        .map(|l| l.trim_start_matches('\t'))
        .collect()
}

/// True when the whole command is one heredoc word (`<<EOF`, `<<-"EOF"`, `3<<X`).
pub(super) fn is_lone_heredoc(word: &str) -> bool {
    let w = word.trim();
    let w = w.trim_start_matches(|c: char| c.is_ascii_digit());
    let Some(rest) = w.strip_prefix("<<") else {
        return false;
    };
    let rest = rest.strip_prefix('-').unwrap_or(rest).trim_start();
    !rest.is_empty() && !rest.contains(|c: char| c == '<' || c.is_whitespace())
}
