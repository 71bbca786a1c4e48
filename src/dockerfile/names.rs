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
    // Nothing known is longer than 11 characters; skip the matrix for junk.
    if word.chars().count() > 16 {
        return None;
    }
    let limit = (word.chars().count() / 3).max(2);
    KNOWN_INSTRUCTIONS
        .iter()
        .map(|k| (distance(word, k), *k))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Edit distance counting an adjacent transposition as one edit (optimal
/// string alignment), so `RNU` is one step from `RUN`, not two.
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
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
        assert_eq!(distance("kitten", "sitting"), 3);
        assert_eq!(distance("RNU", "RUN"), 1);
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
