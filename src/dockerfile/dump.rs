//! BuildKit's `result` dump (README §1.2 of the conformance corpus): one
//! `(keyword ["flags"] "args"…)` line per instruction, strings quoted the
//! way Go's `strconv.Quote` quotes them.
//!
//! Invariant: the output depends only on keyword, flags, args and sub, so
//! it is stable under CRLF line endings and a BOM.

use super::ast::{Dockerfile, Instruction};
use std::fmt::Write;

/// The dump of a whole file, one line per instruction, each ending `\n`.
pub fn dump(df: &Dockerfile) -> String {
    let mut out = String::new();
    for ins in &df.instructions {
        out.push('(');
        out.push_str(&dump_instruction(ins));
        out.push_str(")\n");
    }
    out
}

/// One instruction without the outer parentheses.
pub fn dump_instruction(ins: &Instruction) -> String {
    let mut s = go_lower(&ins.keyword);
    if !ins.flags.is_empty() {
        let flags: Vec<String> = ins.flags.iter().map(|f| go_quote(f)).collect();
        let _ = write!(s, " [{}]", flags.join(" "));
    }
    for arg in &ins.args {
        s.push(' ');
        s.push_str(&go_quote(arg));
    }
    if let Some(sub) = &ins.sub {
        let _ = write!(s, " ({})", dump_instruction(sub));
    }
    // COMPAT(buildkit): Go trims the node's dump (visible for an empty keyword).
    s.trim().to_string()
}

/// Go's `strings.ToLower`: one code point per code point; an invalid byte
/// (a carrier) becomes U+FFFD.
fn go_lower(s: &str) -> String {
    s.chars()
        .map(super::rawbytes::replace_char)
        .map(|c| {
            let mut lower = c.to_lowercase();
            match (lower.next(), lower.next()) {
                (Some(l), None) => l,
                _ if c == '\u{130}' => 'i',
                _ => c,
            }
        })
        .collect()
}

/// Go's `strconv.Quote`; carriers (see `rawbytes`) print as the byte they stand for.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match super::rawbytes::carried_byte(c) {
            // A byte that is not UTF-8 (`kiln parse` keeps them): Go's `\xHH`.
            Some(b) => {
                let _ = write!(out, "\\x{b:02x}");
            }
            None => push_go_escaped(&mut out, c, '"'),
        }
    }
    out.push('"');
    out
}

/// Appends `c` as Go's `appendEscapedRune` does inside a literal delimited
/// by `quote`: shared by `strconv.Quote` (`"`) and `strconv.QuoteRune` (`'`).
pub(crate) fn push_go_escaped(out: &mut String, c: char, quote: char) {
    if c == quote || c == '\\' {
        out.push('\\');
        out.push(c);
        return;
    }
    match c {
        '\u{7}' => out.push_str("\\a"),
        '\u{8}' => out.push_str("\\b"),
        '\u{c}' => out.push_str("\\f"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\u{b}' => out.push_str("\\v"),
        c if is_go_printable(c) => out.push(c),
        c if (c as u32) < 0x20 || c == '\u{7f}' => {
            let _ = write!(out, "\\x{:02x}", c as u32);
        }
        c if (c as u32) < 0x10000 => {
            let _ = write!(out, "\\u{:04x}", c as u32);
        }
        c => {
            let _ = write!(out, "\\U{:08x}", c as u32);
        }
    }
}

/// Go's `unicode.IsPrint`: letters, marks, numbers, punctuation, symbols and
/// the ASCII space. Without Unicode tables in std this excludes the other
/// categories that occur in practice (controls, separators, format
/// characters, private use, noncharacters); unassigned code points are
/// treated as printable.
fn is_go_printable(c: char) -> bool {
    let u = c as u32;
    if c == ' ' {
        return true;
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    let format = matches!(u,
        0xAD | 0x600..=0x605 | 0x61C | 0x6DD | 0x70F | 0x890..=0x891 | 0x8E2 | 0x180E
        | 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x2064 | 0x2066..=0x206F
        | 0xFEFF | 0xFFF9..=0xFFFB | 0x110BD | 0x110CD | 0x13430..=0x1343F
        | 0x1BCA0..=0x1BCA3 | 0x1D173..=0x1D17A | 0xE0001 | 0xE0020..=0xE007F);
    let private = matches!(u, 0xE000..=0xF8FF | 0xF0000..=0xFFFFD | 0x100000..=0x10FFFD);
    let nonchar = (0xFDD0..=0xFDEF).contains(&u) || (u & 0xFFFE) == 0xFFFE;
    !(format || private || nonchar)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_matches_go() {
        assert_eq!(
            go_quote("\" \\ / \u{8} \u{c} \n \r \t \0"),
            r#""\" \\ / \b \f \n \r \t \x00""#
        );
        assert_eq!(go_quote("♥ 한국어"), "\"♥ 한국어\"");
        assert_eq!(go_quote("\u{a0}\u{7f}\u{7}\u{b}"), r#""\u00a0\x7f\a\v""#);
        assert_eq!(go_quote("\u{feff}\u{10ffff}"), r#""\ufeff\U0010ffff""#);
    }

    #[test]
    fn lowercase_per_code_point() {
        assert_eq!(go_lower("FrOM"), "from");
        assert_eq!(go_lower("\u{130}X"), "ix");
    }
}
