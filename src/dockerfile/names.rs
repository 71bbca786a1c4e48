//! The instruction-name check the builder runs after parsing: BuildKit's
//! parser accepts unknown keywords (they dump as `(invalid "")`), its
//! dispatcher rejects them, with a did-you-mean hint.
//!
//! Invariant: the known set is exactly BuildKit's dispatch table.

use super::ast::{Dockerfile, Instruction};
use super::error::ParseError;

/// Every instruction BuildKit dispatches, upper-case.
pub const KNOWN_INSTRUCTIONS: [&str; 18] = [
    "ADD",
    "ARG",
    "CMD",
    "COPY",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "FROM",
    "HEALTHCHECK",
    "LABEL",
    "MAINTAINER",
    "ONBUILD",
    "RUN",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
];

/// Rejects the first instruction (or ONBUILD-wrapped instruction) whose
/// keyword is unknown, suggesting the nearest known one.
pub fn check_instruction_names(df: &Dockerfile) -> Result<(), ParseError> {
    for ins in &df.instructions {
        let mut cur: Option<&Instruction> = Some(ins);
        while let Some(i) = cur {
            let upper = i.keyword.to_uppercase();
            if !KNOWN_INSTRUCTIONS.contains(&upper.as_str()) {
                return Err(ParseError::UnknownInstruction {
                    keyword: i.keyword.clone(),
                    suggestion: suggest(&upper),
                    span: ins.span,
                });
            }
            cur = i.sub.as_deref();
        }
    }
    Ok(())
}

/// The known instruction within edit distance 2 (or a third of the
/// word's length, if longer), closest first.
fn suggest(word: &str) -> Option<&'static str> {
    let limit = (word.chars().count() / 3).max(2);
    KNOWN_INSTRUCTIONS
        .iter()
        .map(|k| (levenshtein(word, k), *k))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        assert_eq!(suggest("RNU"), Some("RUN"));
        assert_eq!(suggest("EXPSOE"), Some("EXPOSE"));
        assert_eq!(suggest("WORKDIRR"), Some("WORKDIR"));
        assert_eq!(suggest("XYZZYQ"), None);
        assert_eq!(levenshtein("kitten", "sitting"), 3);
    }

    #[test]
    fn check_rejects_unknown_and_nested() {
        let df = crate::dockerfile::parse(b"FROM a\nRNU x\n").unwrap();
        let err = check_instruction_names(&df).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown instruction: RNU (did you mean RUN?)"
        );
        assert_eq!(err.position().line, 2);
        let df = crate::dockerfile::parse(b"FROM a\nONBUILD RUNN x\n").unwrap();
        assert!(check_instruction_names(&df).is_err());
        let df = crate::dockerfile::parse(b"from a\nrun x\n").unwrap();
        assert!(check_instruction_names(&df).is_ok());
    }
}
