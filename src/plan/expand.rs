//! Variable expansion at the moments BuildKit expands: one seam over
//! `dockerfile::shell`, plus the ordered environment a stage carries
//! (BuildKit's LLB state env: base config env, then ENV and ARG in
//! instruction order, a later definition replacing an earlier one in place).

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::dockerfile::shell::{Expanded, Lexer};
use crate::dockerfile::Instruction;

use super::PlanError;

/// An ordered `KEY=VALUE` environment; keys are unique.
#[derive(Clone, Debug, Default)]
pub(super) struct Env {
    vars: Vec<(String, String)>,
}

impl Env {
    /// Sets `key`, replacing in place (docker's order) or appending.
    pub(super) fn set(&mut self, key: &str, value: &str) {
        match self.vars.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value.to_string(),
            None => self.vars.push((key.to_string(), value.to_string())),
        }
    }

    /// The value of `key`.
    pub(super) fn get(&self, key: &str) -> Option<&str> {
        self.vars
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The pairs, in order.
    pub(super) fn pairs(&self) -> &[(String, String)] {
        &self.vars
    }

    /// `KEY=VALUE` strings, in order.
    pub(super) fn to_strings(&self) -> Vec<String> {
        self.vars.iter().map(|(k, v)| format!("{k}={v}")).collect()
    }
}

/// The most bytes all expansions of one Dockerfile may produce together. One word
/// is capped by `MAX_EXPANSION_LEN`, but `LABEL a=$A b=$A …` on one 48 KB line
/// would still copy a 1 MiB value 8,000 times; real Dockerfiles expand to a few KB.
pub const MAX_EXPANDED_TOTAL: usize = 64 << 20;

/// Expands words of one Dockerfile (fixed escape character).
pub(super) struct Expander {
    lexer: Lexer,
    /// BuildKit expands heredoc bodies with a `\` lexer whatever the file's escape.
    raw_lexer: Lexer,
    /// Bytes produced so far, against `MAX_EXPANDED_TOTAL`.
    spent: AtomicUsize,
    /// Names single-word expansions looked up and found unset (BuildKit's
    /// `unmatched`, which its UndefinedVar check reads).
    undefined: Mutex<Vec<super::UndefinedVar>>,
}

impl Expander {
    /// An expander for a Dockerfile whose escape character is `escape`.
    pub(super) fn new(escape: char) -> Self {
        Self {
            lexer: Lexer::new(escape),
            raw_lexer: Lexer::new('\\').skip_process_quotes(true),
            spent: AtomicUsize::new(0),
            undefined: Mutex::new(Vec::new()),
        }
    }

    /// The unset names looked up so far, in expansion order.
    pub(super) fn take_undefined(&self) -> Vec<super::UndefinedVar> {
        std::mem::take(&mut *self.undefined.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// `lexer`'s expansion of one word, its error tied to `inst`, its unset
    /// names recorded.
    fn expand(
        &self,
        lexer: &Lexer,
        inst: &Instruction,
        word: &str,
        env: &Env,
    ) -> Result<String, PlanError> {
        Ok(self.expand_full(lexer, inst, word, env)?.value)
    }

    /// `expand` with the names looked up.
    fn expand_full(
        &self,
        lexer: &Lexer,
        inst: &Instruction,
        word: &str,
        env: &Env,
    ) -> Result<Expanded, PlanError> {
        let mut e = lexer
            .expand_word(word, env.pairs())
            .map_err(|e| expand_error(inst, word, Box::new(e)))?;
        if !e.unmatched.is_empty() {
            let known: Vec<String> = env.pairs().iter().map(|(k, _)| k.clone()).collect();
            let mut u = self.undefined.lock().unwrap_or_else(|p| p.into_inner());
            u.extend(std::mem::take(&mut e.unmatched).into_iter().map(|name| {
                super::UndefinedVar {
                    start_line: inst.span.start_line,
                    end_line: inst.span.end_line,
                    name,
                    known: known.clone(),
                }
            }));
        }
        Ok(e)
    }

    /// One word (quotes removed, no splitting), as BuildKit's `ProcessWord`.
    pub(super) fn word(
        &self,
        inst: &Instruction,
        word: &str,
        env: &Env,
    ) -> Result<String, PlanError> {
        let out = self.expand(&self.lexer, inst, word, env)?;
        self.spend(inst, out.len())?;
        Ok(out)
    }

    /// `word`, and the set names it looked up (BuildKit's `ProcessWordWithMatches`).
    pub(super) fn word_matched(
        &self,
        inst: &Instruction,
        word: &str,
        env: &Env,
    ) -> Result<(String, BTreeSet<String>), PlanError> {
        let out = self.expand_full(&self.lexer, inst, word, env)?;
        self.spend(inst, out.value.len())?;
        Ok((out.value, out.matched))
    }

    /// Expands and splits into words, as BuildKit's `ProcessWords` (EXPOSE).
    pub(super) fn words(
        &self,
        inst: &Instruction,
        word: &str,
        env: &Env,
    ) -> Result<Vec<String>, PlanError> {
        let out = self
            .lexer
            .expand_words(word, env.pairs())
            .map_err(|e| expand_error(inst, word, Box::new(e)))?;
        self.spend(inst, out.iter().map(String::len).sum())?;
        Ok(out)
    }

    /// A heredoc body: variables expand, quotes stay as written.
    // COMPAT(buildkit): `ExpandRaw` uses a `\` lexer with `SkipProcessQuotes`.
    pub(super) fn raw(
        &self,
        inst: &Instruction,
        text: &str,
        env: &Env,
    ) -> Result<String, PlanError> {
        let out = self.expand(&self.raw_lexer, inst, text, env)?;
        self.spend(inst, out.len())?;
        Ok(out)
    }

    /// Counts `len` more expanded bytes against `MAX_EXPANDED_TOTAL`.
    fn spend(&self, inst: &Instruction, len: usize) -> Result<(), PlanError> {
        let spent = self.spent.fetch_add(len, Ordering::Relaxed) + len;
        if spent > MAX_EXPANDED_TOTAL {
            return Err(PlanError::ExpansionBudget {
                span: inst.span,
                instruction: inst.keyword.to_ascii_uppercase(),
                limit: MAX_EXPANDED_TOTAL,
            });
        }
        Ok(())
    }
}

fn expand_error(inst: &Instruction, word: &str, source: super::Cause) -> PlanError {
    PlanError::Expand {
        span: inst.span,
        instruction: inst.keyword.to_ascii_uppercase(),
        word: word.to_string(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_set_replaces_in_place() {
        let mut e = Env::default();
        e.set("A", "1");
        e.set("B", "2");
        e.set("A", "3");
        assert_eq!(e.to_strings(), ["A=3", "B=2"]);
        assert_eq!(e.get("B"), Some("2"));
        assert_eq!(e.get("C"), None);
    }
}
