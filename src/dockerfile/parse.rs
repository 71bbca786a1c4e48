//! Phase two (grammar §3–§4): one logical line → one [`Instruction`].
//!
//! Splits the keyword, strips leading `--flags`, then applies the argument
//! rule of the instruction (BuildKit's dispatch table). Nothing is expanded:
//! arguments keep their quotes, `$` and escapes, except inside flags and
//! JSON arrays, exactly as BuildKit's parser does.
//!
//! Invariant: never panics, whatever the line; ONBUILD nesting is bounded.

use super::ast::{Instruction, Span};
use super::json::{parse_array, JsonArgs};
use super::words::{extract_flags, is_sep, parse_words, split_ws};
use nom::bytes::complete::take_till;
use nom::IResult;

/// How deep `ONBUILD ONBUILD …` may nest before the line is rejected.
pub(crate) const MAX_ONBUILD_DEPTH: usize = 64;

/// A rule failed; the caller adds the line numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RuleError {
    MissingValue(&'static str),
    MissingEquals(String),
    JsonNotStrings,
    OnbuildTooDeep,
}

/// The argument nodes a rule produced.
#[derive(Debug, Default)]
struct Args {
    args: Vec<String>,
    json: bool,
    sub: Option<Box<Instruction>>,
}

impl Args {
    fn plain(args: Vec<String>) -> Self {
        Args {
            args,
            ..Args::default()
        }
    }
}

fn keyword(line: &str) -> IResult<&str, &str> {
    take_till(is_sep)(line)
}

/// Parses one logical line (grammar §3.1).
pub(crate) fn instruction(line: &str, escape: char) -> Result<Instruction, RuleError> {
    instruction_at(line, escape, 0)
}

fn instruction_at(line: &str, escape: char, depth: usize) -> Result<Instruction, RuleError> {
    let trimmed = line.trim();
    let (rest, kw) = keyword(trimmed).unwrap_or(("", trimmed));
    let (flags, rest) = if rest.is_empty() {
        (Vec::new(), String::new())
    } else {
        let (after, flags) = extract_flags(rest.trim_start_matches(is_sep));
        (flags, after.trim().to_string())
    };
    let parsed = match kw.to_ascii_lowercase().as_str() {
        "from" | "expose" => Args::plain(split_ws(&rest)),
        "add" | "copy" | "volume" => maybe_json_list(&rest)?,
        "run" | "cmd" | "entrypoint" | "shell" => maybe_json(&rest)?,
        "healthcheck" => health(&rest)?,
        "maintainer" | "user" | "workdir" | "stopsignal" => Args::plain(one(&rest)),
        "env" => name_val(&rest, "ENV", escape)?,
        "label" => name_val(&rest, "LABEL", escape)?,
        "arg" => Args::plain(parse_words(&rest, escape)),
        "onbuild" => onbuild(&rest, escape, depth)?,
        // COMPAT(buildkit): unknown instructions parse, with one empty argument.
        _ => Args::plain(vec![String::new()]),
    };
    Ok(Instruction {
        keyword: kw.to_string(),
        flags,
        args: parsed.args,
        json_form: parsed.json,
        sub: parsed.sub,
        original: line.to_string(),
        span: Span {
            start_line: 0,
            end_line: 0,
        },
        heredocs: Vec::new(),
        comments: Vec::new(),
    })
}

/// The whole rest as one node, none when empty.
fn one(rest: &str) -> Vec<String> {
    if rest.is_empty() {
        Vec::new()
    } else {
        vec![rest.to_string()]
    }
}

/// RUN/CMD/ENTRYPOINT/SHELL: JSON array, else the rest verbatim.
fn maybe_json(rest: &str) -> Result<Args, RuleError> {
    json_or(rest, one)
}

/// ADD/COPY/VOLUME: JSON array, else whitespace-split.
fn maybe_json_list(rest: &str) -> Result<Args, RuleError> {
    json_or(rest, split_ws)
}

/// A JSON array of strings as JSON-form arguments; text that is not a JSON
/// array goes to `plain` (an empty rest included: it yields no arguments).
fn json_or(rest: &str, plain: fn(&str) -> Vec<String>) -> Result<Args, RuleError> {
    match parse_array(rest) {
        JsonArgs::Strings(args) => Ok(Args {
            args,
            json: true,
            sub: None,
        }),
        JsonArgs::NotStrings => Err(RuleError::JsonNotStrings),
        JsonArgs::NotJson => Ok(Args::plain(plain(rest))),
    }
}

/// HEALTHCHECK: a type word, then the CMD rule on the remainder.
fn health(rest: &str) -> Result<Args, RuleError> {
    // COMPAT(buildkit): the type word ends at the first byte that Go's
    // `unicode.IsSpace(rune(b))` accepts, so bytes 0x85/0xA0 count too.
    let raw = super::rawbytes::bytes_of(rest);
    let bytes: &[u8] = &raw;
    let is_space = |b: u8| (b as char).is_whitespace();
    let sep = bytes
        .iter()
        .position(|&b| is_space(b))
        .unwrap_or(bytes.len());
    if sep == 0 {
        return Ok(Args::default());
    }
    let next = bytes[sep..]
        .iter()
        .position(|&b| !is_space(b))
        .map_or(bytes.len(), |i| sep + i);
    let typ = super::rawbytes::text_of(&bytes[..sep]);
    let cmd = maybe_json(&super::rawbytes::text_of(&bytes[next..]))?;
    let mut args = vec![typ];
    args.extend(cmd.args);
    Ok(Args {
        args,
        json: cmd.json,
        sub: None,
    })
}

/// ENV/LABEL (grammar §4.4): legacy `k v` or `k=v …` triples.
fn name_val(rest: &str, key: &'static str, escape: char) -> Result<Args, RuleError> {
    let words = parse_words(rest, escape);
    let Some(first) = words.first() else {
        return Ok(Args::default());
    };
    if !first.contains('=') {
        let mut parts = rest.splitn(2, is_sep);
        let k = parts.next().unwrap_or_default();
        let Some(v) = parts.next() else {
            return Err(RuleError::MissingValue(key));
        };
        let v = v.trim_start_matches(is_sep);
        return Ok(Args::plain(vec![
            k.to_string(),
            v.to_string(),
            String::new(),
        ]));
    }
    let mut args = Vec::with_capacity(words.len() * 3);
    for word in words {
        let Some((k, v)) = word.split_once('=') else {
            return Err(RuleError::MissingEquals(word));
        };
        args.extend([k.to_string(), v.to_string(), "=".to_string()]);
    }
    Ok(Args::plain(args))
}

/// ONBUILD: the rest is a whole instruction of its own.
fn onbuild(rest: &str, escape: char, depth: usize) -> Result<Args, RuleError> {
    if rest.is_empty() {
        return Ok(Args::default());
    }
    if depth >= MAX_ONBUILD_DEPTH {
        return Err(RuleError::OnbuildTooDeep);
    }
    let sub = instruction_at(rest, escape, depth + 1)?;
    Ok(Args {
        sub: Some(Box::new(sub)),
        ..Args::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> (Vec<String>, Vec<String>, bool) {
        let i = instruction(line, '\\').unwrap();
        (i.flags, i.args, i.json_form)
    }

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn forms_per_instruction() {
        assert_eq!(args("FROM a AS b").1, v(&["a", "AS", "b"]));
        assert_eq!(
            args("CMD --doit [ \"a\", \"b\" ]"),
            (v(&["--doit"]), v(&["a", "b"]), true)
        );
        assert_eq!(args("COPY -- foo /tmp/").1, v(&["foo", "/tmp/"]));
        assert_eq!(args("VOLUME \"/a b\"").1, v(&["\"/a", "b\""]));
        assert_eq!(
            args("HEALTHCHECK CMD [\"foo\"]"),
            (vec![], v(&["CMD", "foo"]), true)
        );
        assert_eq!(args("ENV  x  y  z ").1, v(&["x", "y  z", ""]));
        assert_eq!(
            args("ARG abc=\"123 456\" def").1,
            v(&["abc=\"123 456\"", "def"])
        );
        assert_eq!(args("LABEL \"my key\"=v").1, v(&["\"my key\"", "v", "="]));
        assert_eq!(args("INVALID").1, v(&[""]));
        assert_eq!(args("CMD []"), (vec![], vec![], true));
    }

    #[test]
    fn rule_errors() {
        assert_eq!(
            instruction("ENV PATH", '\\').unwrap_err(),
            RuleError::MissingValue("ENV")
        );
        assert!(
            matches!(instruction("ENV a=b c", '\\'), Err(RuleError::MissingEquals(w)) if w == "c")
        );
        assert_eq!(
            instruction("CMD [ \"echo\", [ \"nested json\" ] ]", '\\').unwrap_err(),
            RuleError::JsonNotStrings
        );
        let deep = "ONBUILD ".repeat(200) + "RUN x";
        assert_eq!(
            instruction(&deep, '\\').unwrap_err(),
            RuleError::OnbuildTooDeep
        );
    }

    #[test]
    fn onbuild_nests() {
        let i = instruction("ONBUILD --x RUN --y z", '\\').unwrap();
        assert_eq!(i.flags, v(&["--x"]));
        let sub = i.sub.unwrap();
        assert_eq!(
            (sub.keyword.as_str(), sub.flags, sub.args),
            ("RUN", v(&["--y"]), v(&["z"]))
        );
        assert_eq!(sub.original, "RUN --y z");
    }
}
