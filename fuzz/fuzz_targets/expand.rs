//! Shell-word expansion of any word, with both escape characters and every
//! lexer mode: a value or an error, never a panic.
#![no_main]

use std::collections::BTreeMap;

use kiln::dockerfile::shell::Lexer;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let Ok(word) = std::str::from_utf8(rest) else {
        return;
    };
    let env: BTreeMap<String, String> = [("a", "x y"), ("b", ""), ("PATH", "/bin:/usr/bin")]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let lexer = Lexer::new(if mode & 1 == 0 { '\\' } else { '`' })
        .raw_quotes(mode & 2 != 0)
        .raw_escapes(mode & 4 != 0)
        .skip_process_quotes(mode & 8 != 0)
        .skip_unset_env(mode & 16 != 0);
    let _ = lexer.expand_word(word, &env);
    let _ = lexer.expand_words(word, &env);
});
