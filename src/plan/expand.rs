//! Variable expansion at the moments BuildKit expands: one seam over
//! `dockerfile::shell`, plus the ordered environment a stage carries
//! (BuildKit's LLB state env: base config env, then ENV and ARG in
//! instruction order, a later definition replacing an earlier one in place).

use crate::dockerfile::shell::Lexer;
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

/// Expands words of one Dockerfile (fixed escape character).
pub(super) struct Expander {
    lexer: Lexer,
    /// BuildKit expands heredoc bodies with a `\` lexer whatever the file's escape.
    raw_lexer: Lexer,
}

impl Expander {
    /// An expander for a Dockerfile whose escape character is `escape`.
    pub(super) fn new(escape: char) -> Self {
        Self {
            lexer: Lexer::new(escape),
            raw_lexer: Lexer::new('\\').skip_process_quotes(true),
        }
    }

    /// One word (quotes removed, no splitting), as BuildKit's `ProcessWord`.
    pub(super) fn word(
        &self,
        inst: &Instruction,
        word: &str,
        env: &Env,
    ) -> Result<String, PlanError> {
        self.lexer
            .expand_word(word, env.pairs())
            .map(|e| e.value)
            .map_err(|e| expand_error(inst, word, Box::new(e)))
    }

    /// Expands and splits into words, as BuildKit's `ProcessWords` (EXPOSE).
    pub(super) fn words(
        &self,
        inst: &Instruction,
        word: &str,
        env: &Env,
    ) -> Result<Vec<String>, PlanError> {
        self.lexer
            .expand_words(word, env.pairs())
            .map_err(|e| expand_error(inst, word, Box::new(e)))
    }

    /// A heredoc body: variables expand, quotes stay as written.
    // COMPAT(buildkit): `ExpandRaw` uses a `\` lexer with `SkipProcessQuotes`.
    pub(super) fn raw(
        &self,
        inst: &Instruction,
        text: &str,
        env: &Env,
    ) -> Result<String, PlanError> {
        self.raw_lexer
            .expand_word(text, env.pairs())
            .map(|e| e.value)
            .map_err(|e| expand_error(inst, text, Box::new(e)))
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
