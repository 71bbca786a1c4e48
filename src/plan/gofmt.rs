//! Go `fmt` renderings that BuildKit's history strings depend on: `%q` of a
//! string, a `[]string` and an int; `%v` of a `[]string`; `time.Duration`.
//! `docker history` shows these strings, so they must match byte for byte.

use std::fmt::Write;

/// `strconv.Quote`: `"…"` with Go's escapes.
pub(super) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            _ => push_escaped(&mut out, c),
        }
    }
    out.push('"');
    out
}

fn push_escaped(out: &mut String, c: char) {
    match c {
        '\x07' => out.push_str("\\a"),
        '\x08' => out.push_str("\\b"),
        '\x0c' => out.push_str("\\f"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\x0b' => out.push_str("\\v"),
        c if (c as u32) < 0x20 || c as u32 == 0x7f => {
            let _ = write!(out, "\\x{:02x}", c as u32);
        }
        // Go escapes non-printable runes; the Unicode printability table is
        // large, so only the common non-printables (C1 controls and the
        // Unicode spaces other than U+0020) are escaped here.
        c if ('\u{80}'..='\u{a0}').contains(&c)
            || c == '\u{ad}'
            || (c.is_whitespace() && c != ' ') =>
        {
            let _ = write!(out, "\\u{:04x}", c as u32);
        }
        c => out.push(c),
    }
}

/// `%q` of a `[]string`: `["a" "b"]`.
pub(super) fn quote_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| quote(s)).collect();
    format!("[{}]", quoted.join(" "))
}

/// `%v` of a `[]string`: `[a b]`.
pub(super) fn plain_list(items: &[String]) -> String {
    format!("[{}]", items.join(" "))
}

/// `%q` of an int: a quoted rune, `'\x03'`.
pub(super) fn quote_rune(v: i64) -> String {
    match u32::try_from(v).ok().and_then(char::from_u32) {
        Some('\'') => "'\\''".to_string(),
        Some('\\') => "'\\\\'".to_string(),
        Some(c) if c != '"' => {
            let mut s = String::new();
            push_escaped(&mut s, c);
            format!("'{s}'")
        }
        Some(c) => format!("'{c}'"),
        None => "'\u{fffd}'".to_string(),
    }
}

/// `time.Duration.String()` of `ns` nanoseconds: `1m30s`, `500ms`, `0s`.
pub(super) fn duration(ns: i64) -> String {
    if ns == 0 {
        return "0s".to_string();
    }
    let neg = ns < 0;
    let u = ns.unsigned_abs();
    let body = if u < 1_000_000_000 {
        let (unit, div) = match u {
            0..=999 => ("ns", 1),
            1_000..=999_999 => ("µs", 1_000),
            _ => ("ms", 1_000_000),
        };
        format!("{}{unit}", fraction(u, div))
    } else {
        let secs = u / 1_000_000_000;
        let frac = u % 1_000_000_000;
        let (h, m, s) = (secs / 3600, (secs / 60) % 60, secs % 60);
        let s_str = fraction(s * 1_000_000_000 + frac, 1_000_000_000);
        match (h, m) {
            (0, 0) => format!("{s_str}s"),
            (0, m) => format!("{m}m{s_str}s"),
            (h, m) => format!("{h}h{m}m{s_str}s"),
        }
    };
    if neg {
        format!("-{body}")
    } else {
        body
    }
}

/// `v / div` with Go's trailing-zero-free fraction.
fn fraction(v: u64, div: u64) -> String {
    let whole = v / div;
    let rem = v % div;
    if rem == 0 {
        return whole.to_string();
    }
    let width = div.ilog10() as usize;
    let digits = format!("{rem:0width$}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

/// Parses a Go duration (`1h30m`, `1.5s`, `300ms`, `10us`) to nanoseconds.
pub(super) fn parse_duration(s: &str) -> Option<i64> {
    let (neg, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let num: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += num * scale;
    }
    if total > i64::MAX as f64 {
        return None;
    }
    let ns = total.round() as i64;
    Some(if neg { -ns } else { ns })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_like_go() {
        assert_eq!(quote("a \"b\"\n\\"), r#""a \"b\"\n\\""#);
        assert_eq!(quote("\u{0}é"), "\"\\x00é\"");
        assert_eq!(
            quote_list(&["/bin/sh".into(), "-c".into(), "echo hi".into()]),
            r#"["/bin/sh" "-c" "echo hi"]"#
        );
        assert_eq!(plain_list(&["/a".into(), "/b".into()]), "[/a /b]");
        assert_eq!(quote_rune(3), "'\\x03'");
        assert_eq!(quote_rune(0), "'\\x00'");
        assert_eq!(quote_rune(65), "'A'");
    }

    #[test]
    fn durations_round_trip_go_strings() {
        for (s, ns) in [
            ("0s", 0),
            ("30s", 30_000_000_000),
            ("1m30s", 90_000_000_000),
            ("1h0m0s", 3_600_000_000_000),
            ("1.5s", 1_500_000_000),
            ("500ms", 500_000_000),
            ("10µs", 10_000),
            ("7ns", 7),
        ] {
            assert_eq!(duration(ns), s);
            assert_eq!(parse_duration(s), Some(ns), "{s}");
        }
        assert_eq!(parse_duration("1h30m"), Some(5_400_000_000_000));
        assert_eq!(parse_duration("10us"), Some(10_000));
        assert_eq!(parse_duration("5"), None);
        assert_eq!(parse_duration("5x"), None);
        assert_eq!(parse_duration(""), None);
    }
}
