//! Any bytes: the parser returns a file or an error (never panics), every
//! view of an accepted file renders, and an error renders its excerpt.
#![no_main]

use kiln::dockerfile::{ast_json, check_instruction_names, dump, parse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match parse(data) {
        Ok(df) => {
            let _ = (dump(&df), ast_json(&df));
            if let Err(e) = check_instruction_names(&df) {
                let _ = e.render(data, "Dockerfile");
            }
        }
        Err(e) => {
            let _ = (e.render(data, "Dockerfile"), e.position());
        }
    }
});
