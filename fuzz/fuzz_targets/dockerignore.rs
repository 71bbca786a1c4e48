//! `.dockerignore` text of any shape, matched against paths made from the
//! same bytes: a pattern set or an error, never a panic.
#![no_main]

use kiln::dockerfile::ignore::IgnorePatterns;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(patterns) = IgnorePatterns::parse(text) else {
        return;
    };
    for path in text.lines().chain(["a", "a/b/c", ".git", "node_modules/x"]) {
        let _ = patterns.is_excluded(path.trim_start_matches('/'));
        let _ = patterns.dir_may_have_exceptions(path);
    }
});
