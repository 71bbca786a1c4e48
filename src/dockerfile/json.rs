//! The JSON exec form (grammar §4.2): `["a", "b"]` with the rules of Go's
//! `encoding/json`, because BuildKit's fallback depends on them: text that
//! is not valid JSON becomes the shell form, while valid JSON whose
//! elements are not all strings is an error.
//!
//! Invariant: nesting is walked with an explicit stack, so deeply nested
//! input cannot exhaust the call stack (Go's own limit, 10000, applies).

use nom::branch::alt;
use nom::bytes::complete::{tag, take_while, take_while1, take_while_m_n};
use nom::character::complete::{char, one_of};
use nom::combinator::{opt, recognize};
use nom::sequence::{pair, tuple};
use nom::IResult;

/// What the text after the keyword turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum JsonArgs {
    /// Not a JSON array: use the shell / whitespace form.
    NotJson,
    /// Valid JSON array with a non-string element: a parse error.
    NotStrings,
    /// A JSON array of strings, escapes decoded.
    Strings(Vec<String>),
}

/// Go's `encoding/json` nesting limit.
const MAX_DEPTH: usize = 10_000;

fn ws(i: &str) -> &str {
    i.trim_start_matches([' ', '\t', '\n', '\r'])
}

/// Classifies `rest` (already trimmed on the right by the caller).
pub(crate) fn parse_array(rest: &str) -> JsonArgs {
    let rest = rest.trim_start();
    if !rest.starts_with('[') {
        return JsonArgs::NotJson;
    }
    match value_list(rest) {
        Some(v) => v,
        None => JsonArgs::NotJson,
    }
}

/// Walks the whole document; `None` when it is not valid JSON.
fn value_list(input: &str) -> Option<JsonArgs> {
    // Open containers: true = array, false = object.
    let mut stack: Vec<bool> = Vec::new();
    let mut strings = Vec::new();
    let mut all_strings = true;
    let mut i = input;
    loop {
        // Expect a value here.
        i = ws(i);
        let top_level = stack.len() == 1;
        if let Some(r) = i.strip_prefix('[').or_else(|| i.strip_prefix('{')) {
            if stack.len() >= MAX_DEPTH {
                return None;
            }
            all_strings &= stack.is_empty();
            stack.push(i.starts_with('['));
            i = ws(r);
            let close = if *stack.last()? { ']' } else { '}' };
            if let Some(r) = i.strip_prefix(close) {
                stack.pop();
                i = r;
            } else if !*stack.last()? {
                i = object_key(i)?;
                continue;
            } else {
                continue;
            }
        } else if i.starts_with('"') {
            let (r, s) = string(i).ok()?;
            if top_level {
                strings.push(s);
            }
            i = r;
        } else {
            let (r, _) = scalar(i).ok()?;
            all_strings &= !top_level;
            i = r;
        }
        // After a value: `,` or a closing bracket, repeatedly.
        loop {
            i = ws(i);
            let Some(&is_array) = stack.last() else {
                return i.is_empty().then_some(if all_strings {
                    JsonArgs::Strings(strings)
                } else {
                    JsonArgs::NotStrings
                });
            };
            if let Some(r) = i.strip_prefix(',') {
                i = if is_array { r } else { object_key(ws(r))? };
                break;
            }
            i = i.strip_prefix(if is_array { ']' } else { '}' })?;
            stack.pop();
        }
    }
}

/// `"key" :` inside an object; returns the input after the colon.
fn object_key(i: &str) -> Option<&str> {
    let (r, _) = string(i).ok()?;
    ws(r).strip_prefix(':')
}

/// Numbers, `true`, `false`, `null`.
fn scalar(i: &str) -> IResult<&str, &str> {
    let digits = || take_while1(|c: char| c.is_ascii_digit());
    let number = recognize(tuple((
        opt(char('-')),
        alt((
            tag("0"),
            recognize(pair(
                one_of("123456789"),
                take_while(|c: char| c.is_ascii_digit()),
            )),
        )),
        opt(pair(char('.'), digits())),
        opt(tuple((one_of("eE"), opt(one_of("+-")), digits()))),
    )));
    alt((tag("true"), tag("false"), tag("null"), number))(i)
}

/// A JSON string, decoded the way Go decodes it (lone surrogates → U+FFFD).
fn string(i: &str) -> IResult<&str, String> {
    let (mut i, _) = char('"')(i)?;
    let mut out = String::new();
    loop {
        let mut chars = i.chars();
        let Some(c) = chars.next() else {
            return Err(nom::Err::Error(nom::error::Error::new(
                i,
                nom::error::ErrorKind::Char,
            )));
        };
        match c {
            '"' => return Ok((chars.as_str(), out)),
            '\\' => {
                let (r, decoded) = escape(chars.as_str())?;
                out.push_str(&decoded);
                i = r;
            }
            c if (c as u32) < 0x20 => {
                return Err(nom::Err::Error(nom::error::Error::new(
                    i,
                    nom::error::ErrorKind::Char,
                )))
            }
            c => {
                // COMPAT(buildkit): Go's decoder makes each invalid byte U+FFFD.
                out.push(super::rawbytes::replace_char(c));
                i = chars.as_str();
            }
        }
    }
}

fn hex4(i: &str) -> IResult<&str, u32> {
    let (r, h) = take_while_m_n(4, 4, |c: char| c.is_ascii_hexdigit())(i)?;
    Ok((r, u32::from_str_radix(h, 16).unwrap_or(0xFFFD)))
}

/// The part after a backslash.
fn escape(i: &str) -> IResult<&str, String> {
    let (r, c) = one_of("\"\\/bfnrtu")(i)?;
    let simple = match c {
        'b' => '\u{8}',
        'f' => '\u{c}',
        'n' => '\n',
        'r' => '\r',
        't' => '\t',
        'u' => {
            let (r, hi) = hex4(r)?;
            if (0xD800..0xDC00).contains(&hi) {
                if let Ok((r2, lo)) = pair(tag("\\u"), hex4)(r) {
                    if (0xDC00..0xE000).contains(&lo.1) {
                        let cp = 0x10000 + ((hi - 0xD800) << 10) + (lo.1 - 0xDC00);
                        let ch = char::from_u32(cp).unwrap_or('\u{fffd}');
                        return Ok((r2, ch.to_string()));
                    }
                }
            }
            let ch = char::from_u32(hi).unwrap_or('\u{fffd}');
            return Ok((r, ch.to_string()));
        }
        other => other,
    };
    Ok((r, simple.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> JsonArgs {
        JsonArgs::Strings(v.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn arrays_of_strings() {
        assert_eq!(parse_array(r#"["a", "b"]"#), strings(&["a", "b"]));
        assert_eq!(parse_array("[]"), strings(&[]));
        assert_eq!(parse_array("\t[\t\"a\",\t\"b\"\t]\t"), strings(&["a", "b"]));
        assert_eq!(
            parse_array(r#"["\" \\ \/ \b \f \n \r \t \u0000"]"#),
            strings(&["\" \\ / \u{8} \u{c} \n \r \t \0"])
        );
        assert_eq!(
            parse_array(r#"["\ud83d\ude00", "\ud800"]"#),
            strings(&["😀", "\u{fffd}"])
        );
    }

    #[test]
    fn invalid_json_falls_back() {
        for s in [
            "['a']",
            "[\"a\"",
            "[\"a\"] x",
            "[\"a\",]",
            "[\"a",
            "x",
            "[\"a\u{1}\"]",
        ] {
            assert_eq!(parse_array(s), JsonArgs::NotJson, "{s}");
        }
    }

    #[test]
    fn valid_json_with_non_strings_is_flagged() {
        for s in [
            r#"["a", ["b"]]"#,
            "[1]",
            "[null]",
            r#"[{"a": [1, {}]}]"#,
            "[[[]]]",
        ] {
            assert_eq!(parse_array(s), JsonArgs::NotStrings, "{s}");
        }
    }

    #[test]
    fn deep_nesting_does_not_overflow() {
        let deep = format!("{}{}", "[".repeat(20_000), "]".repeat(20_000));
        assert_eq!(parse_array(&deep), JsonArgs::NotJson);
        let ok = format!("{}{}", "[".repeat(500), "]".repeat(500));
        assert_eq!(parse_array(&ok), JsonArgs::NotStrings);
    }
}
