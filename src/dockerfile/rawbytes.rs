//! Bytes that are not UTF-8, carried through the `&str` parser for
//! `kiln parse`'s views.
//!
//! BuildKit's parser works on Go strings (bytes), so an invalid byte stays a
//! byte: its dump prints it as `strconv.Quote` does (`\xff`), while its
//! `ast.json` (Go's `json.Marshal`), the ENV/LABEL/ARG word split and JSON
//! arrays (rune loops) turn each such byte into U+FFFD. Our parser is
//! `&str` based, so for those views each invalid byte `b` is read as the
//! *carrier* code point `U+10FE00 + b` (plane-16 private use) and mapped
//! back at the edges: to `\xHH` in the dump, to U+FFFD everywhere else.
//!
//! Invariants: carriers are made only for a file whose valid text holds no
//! code point of the carrier block, and read as bytes only inside
//! [`active`] (a scope on this thread, entered by [`super::parse_source`]
//! and its views, never by [`super::parse`]); so a carrier always means an
//! invalid byte, the builder's AST never holds one, and a file that is
//! valid UTF-8 parses and dumps exactly as without this module.

use std::cell::Cell;

use serde_json::Value;

thread_local! {
    /// Whether code points of the carrier block stand for bytes right now.
    static ACTIVE: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` with carriers read as bytes (`on`) or as the code points they
/// are; the previous state comes back afterwards, even on unwind.
pub(crate) fn active<T>(on: bool, f: impl FnOnce() -> T) -> T {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            ACTIVE.set(self.0);
        }
    }
    let _restore = Restore(ACTIVE.replace(on));
    f()
}

/// The carrier of byte `b` (0x80..=0xFF) is `CARRIER_BASE + b`.
const CARRIER_BASE: u32 = 0x10FE00;

/// The byte a carrier stands for, inside [`active`] only.
pub(crate) fn carried_byte(c: char) -> Option<u8> {
    if (c as u32) < CARRIER_BASE || !ACTIVE.get() {
        return None;
    }
    in_block(c)
}

/// The byte `c` would stand for if it is in the carrier block.
fn in_block(c: char) -> Option<u8> {
    let u = c as u32;
    (CARRIER_BASE + 0x80..=CARRIER_BASE + 0xFF)
        .contains(&u)
        .then(|| (u - CARRIER_BASE) as u8)
}

fn carrier(b: u8) -> char {
    char::from_u32(CARRIER_BASE + u32::from(b)).unwrap_or(char::REPLACEMENT_CHARACTER)
}

/// Whether `src` needs carriers and can have them: it is not UTF-8 and its
/// valid text uses no code point of the carrier block.
pub(crate) fn wants_carriers(src: &[u8]) -> bool {
    std::str::from_utf8(src).is_err()
        && src
            .utf8_chunks()
            .all(|c| !c.valid().chars().any(|ch| in_block(ch).is_some()))
}

/// `raw` as text, each invalid byte a carrier (Go decodes invalid UTF-8 one
/// byte at a time, so a truncated sequence is several carriers).
pub(crate) fn decode(raw: &[u8]) -> String {
    let mut out = String::with_capacity(raw.len());
    for chunk in raw.utf8_chunks() {
        out.push_str(chunk.valid());
        out.extend(chunk.invalid().iter().map(|&b| carrier(b)));
    }
    out
}

/// The bytes `s` stands for: carriers back to their byte.
pub(crate) fn encode(s: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    for c in s.chars() {
        match carried_byte(c) {
            Some(b) => out.push(b),
            None => out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
        }
    }
    out
}

/// The bytes `s` stands for, borrowed when it holds no carrier.
pub(crate) fn bytes_of(s: &str) -> std::borrow::Cow<'_, [u8]> {
    if has_carriers(s) {
        std::borrow::Cow::Owned(encode(s))
    } else {
        std::borrow::Cow::Borrowed(s.as_bytes())
    }
}

/// Bytes as text: inside [`active`] with carriers, else lossily (U+FFFD).
pub(crate) fn text_of(raw: &[u8]) -> String {
    if ACTIVE.get() {
        decode(raw)
    } else {
        String::from_utf8_lossy(raw).into_owned()
    }
}

/// `c`, or U+FFFD for a carrier.
pub(crate) fn replace_char(c: char) -> char {
    match carried_byte(c) {
        Some(_) => char::REPLACEMENT_CHARACTER,
        None => c,
    }
}

/// Whether `s` holds a carrier.
pub(crate) fn has_carriers(s: &str) -> bool {
    s.chars().any(|c| carried_byte(c).is_some())
}

/// `s` with each carrier made U+FFFD, as a Go rune loop or `json.Marshal` does.
pub(crate) fn replaced(s: &str) -> String {
    s.chars().map(replace_char).collect()
}

/// Every string in `v` (keys too) [`replaced`].
pub(crate) fn replace_in_json(v: &mut Value) {
    match v {
        Value::String(s) if has_carriers(s) => *s = replaced(s),
        Value::Array(a) => a.iter_mut().for_each(replace_in_json),
        Value::Object(m) => {
            let old = std::mem::take(m);
            for (k, mut x) in old {
                replace_in_json(&mut x);
                m.insert(replaced(&k), x);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dockerfile::{dump, parse, parse_source};

    #[test]
    fn invalid_bytes_round_trip_one_carrier_each() {
        let raw = b"a\xffb\xf0\x9f\x98 \xc3\xa9";
        let text = decode(raw);
        assert_eq!(replaced(&text), text, "carriers read outside their scope");
        active(true, || {
            let carried = text.chars().filter(|&c| carried_byte(c).is_some());
            assert_eq!(carried.count(), 4);
            assert!(text.ends_with(" \u{e9}"));
            assert_eq!(encode(&text), raw);
            assert_eq!(replaced(&text), "a\u{fffd}b\u{fffd}\u{fffd}\u{fffd} \u{e9}");
        });
    }

    #[test]
    fn carriers_only_for_invalid_files_without_carrier_text() {
        assert!(!wants_carriers("valid \u{10fe80}".as_bytes()));
        assert!(wants_carriers(b"RUN \xff"));
        let mut clash = "RUN \u{10feff}".as_bytes().to_vec();
        clash.push(0xff);
        assert!(!wants_carriers(&clash));
    }

    #[test]
    fn a_file_holding_carrier_text_falls_back_to_replacement_characters() {
        let mut src = "RUN a\u{10feff}".as_bytes().to_vec();
        src.extend_from_slice(b"\xff\n");
        let parsed = parse_source(&src).unwrap();
        assert_eq!(parsed.dump(), "(run \"a\\U0010feff\u{fffd}\")\n");
        let plain = parse_source(b"RUN a\xff\n").unwrap();
        assert_eq!(plain.dump(), "(run \"a\\xff\")\n");
    }

    #[test]
    fn a_valid_file_holding_carrier_text_is_not_read_as_bytes() {
        let valid = "ENV k=\u{10fe80}\nCOPY --from=\u{10feff} a b\n".as_bytes();
        let want = "(env \"k\" \"\\U0010fe80\" \"=\")\n\
                    (copy [\"--from=\u{f4}\\u008f\u{bb}\u{bf}\"] \"a\" \"b\")\n";
        assert_eq!(dump(&parse(valid).unwrap()), want);
        assert_eq!(parse_source(valid).unwrap().dump(), want);
    }
}
