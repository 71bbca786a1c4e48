//! `--flag[=value]` parsing for one instruction, BuildKit's `BFlags`: every
//! instruction declares the flags it takes and anything else is an error that
//! names the flag and the instruction. Values are as the parser left them
//! (quotes removed, not expanded); expansion is the caller's choice.

use crate::dockerfile::Instruction;

use super::PlanError;

/// The flags of one instruction, checked against what it accepts.
pub(super) struct Flags<'a> {
    inst: &'a Instruction,
    /// `(name, value)`: value `None` for a bare `--name`.
    given: Vec<(&'a str, Option<&'a str>)>,
}

impl<'a> Flags<'a> {
    /// Splits `inst.flags` and refuses any name not in `allowed`.
    pub(super) fn parse(inst: &'a Instruction, allowed: &[&str]) -> Result<Self, PlanError> {
        let mut given = Vec::new();
        for raw in &inst.flags {
            let body = raw.strip_prefix("--").unwrap_or(raw);
            let (name, value) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (body, None),
            };
            if !allowed.contains(&name) {
                return Err(PlanError::UnknownFlag {
                    span: inst.span,
                    instruction: inst.keyword.to_ascii_uppercase(),
                    flag: name.to_string(),
                });
            }
            given.push((name, value));
        }
        Ok(Self { inst, given })
    }

    /// The last value of a string flag (BuildKit: a repeated string flag keeps the last).
    pub(super) fn string(&self, name: &str) -> Result<Option<&'a str>, PlanError> {
        match self.given.iter().rev().find(|(n, _)| *n == name) {
            None => Ok(None),
            Some((_, Some(v))) => Ok(Some(v)),
            Some((_, None)) => Err(self.bad(name, "", "missing a value")),
        }
    }

    /// Every value of a repeatable flag, in order.
    pub(super) fn strings(&self, name: &str) -> Result<Vec<&'a str>, PlanError> {
        self.given
            .iter()
            .filter(|(n, _)| *n == name)
            .map(|(_, v)| v.ok_or_else(|| self.bad(name, "", "missing a value")))
            .collect()
    }

    /// A boolean flag: absent → `None`, `--x` → true, `--x=true|false`.
    pub(super) fn bool(&self, name: &str) -> Result<Option<bool>, PlanError> {
        match self.given.iter().rev().find(|(n, _)| *n == name) {
            None => Ok(None),
            Some((_, None)) => Ok(Some(true)),
            Some((_, Some(v))) => match v.to_ascii_lowercase().as_str() {
                "" | "true" => Ok(Some(true)),
                "false" => Ok(Some(false)),
                _ => Err(self.bad(name, v, "expecting a boolean value")),
            },
        }
    }

    /// A `FlagValue` error for this instruction.
    pub(super) fn bad(&self, flag: &str, value: &str, reason: &'static str) -> PlanError {
        PlanError::FlagValue {
            span: self.inst.span,
            instruction: self.inst.keyword.to_ascii_uppercase(),
            flag: flag.to_string(),
            value: value.to_string(),
            reason,
        }
    }
}

/// An `Arguments` error for `inst`.
pub(super) fn bad_args(inst: &Instruction, reason: impl Into<String>) -> PlanError {
    PlanError::Arguments {
        span: inst.span,
        instruction: inst.keyword.to_ascii_uppercase(),
        reason: reason.into(),
    }
}

/// The single argument of USER, WORKDIR, STOPSIGNAL, MAINTAINER.
pub(super) fn one_arg(inst: &Instruction) -> Result<&str, PlanError> {
    Flags::parse(inst, &[])?;
    match inst.args.as_slice() {
        [a] => Ok(a),
        _ => Err(bad_args(inst, "requires exactly one argument")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dockerfile::Span;

    fn inst(flags: &[&str]) -> Instruction {
        Instruction {
            keyword: "copy".into(),
            flags: flags.iter().map(|s| s.to_string()).collect(),
            args: vec![],
            json_form: false,
            sub: None,
            original: String::new(),
            span: Span {
                start_line: 1,
                end_line: 1,
            },
            heredocs: vec![],
            comments: vec![],
        }
    }

    #[test]
    fn unknown_flag_names_flag_and_instruction() {
        let i = inst(&["--chown=a", "--bogus=1"]);
        let err = Flags::parse(&i, &["chown"]).err().expect("must fail");
        assert_eq!(err.to_string(), "unknown flag for COPY: --bogus");
    }

    #[test]
    fn values_bools_and_repeats() {
        let i = inst(&[
            "--link",
            "--exclude=a",
            "--exclude=b",
            "--from=x",
            "--parents=false",
        ]);
        let f = Flags::parse(&i, &["link", "exclude", "from", "parents"]).unwrap();
        assert_eq!(f.bool("link").unwrap(), Some(true));
        assert_eq!(f.bool("parents").unwrap(), Some(false));
        assert_eq!(f.strings("exclude").unwrap(), ["a", "b"]);
        assert_eq!(f.string("from").unwrap(), Some("x"));
        assert_eq!(f.string("chown").unwrap(), None);
        let i = inst(&["--link=maybe"]);
        assert!(Flags::parse(&i, &["link"]).unwrap().bool("link").is_err());
    }
}
