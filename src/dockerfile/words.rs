//! Word splitters of BuildKit's parser (grammar §4.1, §4.3, §4.5): leading
//! `--flags`, the quote-aware split of ENV/LABEL/ARG, and the plain
//! whitespace split of FROM/EXPOSE/ADD/COPY/VOLUME.
//!
//! These mirror BuildKit's state machines quirk for quirk (each quirk is
//! marked `COMPAT(buildkit)`), because the dump must match byte for byte.
//! Invariant: indices never leave the input, so no input panics.

use super::rawbytes;

/// Is `c` in BuildKit's `[\t\v\f\r ]` separator class?
pub(crate) fn is_sep(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\x0b' | '\x0c' | '\r')
}

/// Go's `unicode.IsSpace` (Rust's `char::is_whitespace` is the same set).
fn is_space(c: char) -> bool {
    c.is_whitespace()
}

/// Splits on runs of `[\t\v\f\r ]`; an empty input gives no words.
pub(crate) fn split_ws(rest: &str) -> Vec<String> {
    if rest.is_empty() {
        return Vec::new();
    }
    let mut out: Vec<String> = Vec::new();
    let mut word = String::new();
    let mut in_sep = false;
    for c in rest.chars() {
        if is_sep(c) {
            if !in_sep {
                out.push(std::mem::take(&mut word));
            }
            in_sep = true;
        } else {
            in_sep = false;
            word.push(c);
        }
    }
    out.push(word);
    out
}

/// Removes leading `--flags` from the text after the keyword (grammar
/// §4.1); returns the remaining text and the flags, quotes and `\` escapes
/// removed.
///
/// COMPAT(buildkit): the scan is byte-wise and each byte is taken as the
/// code point of the same value, so non-ASCII flag text is re-encoded as
/// Latin-1 and bytes 0x85/0xA0 count as blanks; the escape is always `\`.
///
/// Longer than house style on purpose: it follows BuildKit's
/// `extractBuilderFlags` loop statement by statement, so the two can be
/// compared side by side.
pub(crate) fn extract_flags(line: &str) -> (String, Vec<String>) {
    #[derive(PartialEq)]
    enum Phase {
        Spaces,
        Word,
        Quote,
    }
    // Carriers (invalid bytes, see `rawbytes`) are scanned as the byte they stand for.
    let raw = rawbytes::bytes_of(line);
    let b: &[u8] = &raw;
    let rest = |pos: usize| rawbytes::text_of(&b[pos..]);
    let space = |x: u8| is_space(x as char);
    let mut words = Vec::new();
    let mut phase = Phase::Spaces;
    let mut word = String::new();
    let mut quote = 0u8;
    let mut blank_ok = false;
    let mut pos = 0;
    while pos <= b.len() {
        let at_end = pos == b.len();
        let ch = if at_end { 0 } else { b[pos] };
        if phase == Phase::Spaces {
            if at_end {
                break;
            }
            if space(ch) {
                pos += 1;
                continue;
            }
            if ch != b'-' || pos + 1 == b.len() || b[pos + 1] != b'-' {
                return (rest(pos), words);
            }
            phase = Phase::Word;
        }
        if at_end {
            if word != "--" && (blank_ok || !word.is_empty()) {
                words.push(word);
            }
            break;
        }
        let mut c = ch;
        if phase == Phase::Word {
            if space(c) {
                if word == "--" {
                    return (rest(pos), words);
                }
                if blank_ok || !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                phase = Phase::Spaces;
                blank_ok = false;
                pos += 1;
                continue;
            }
            if c == b'\'' || c == b'"' {
                quote = c;
                blank_ok = true;
                phase = Phase::Quote;
                pos += 1;
                continue;
            }
        } else if c == quote {
            phase = Phase::Word;
            pos += 1;
            continue;
        }
        if c == b'\\' {
            if pos + 1 == b.len() {
                if phase == Phase::Quote {
                    phase = Phase::Word;
                }
                pos += 1;
                continue;
            }
            pos += 1;
            c = b[pos];
        }
        word.push(c as char);
        pos += 1;
    }
    (String::new(), words)
}

/// The quote-aware split of ENV, LABEL and ARG (grammar §4.3): quotes and
/// escapes are kept in the words, only unquoted whitespace separates.
///
/// Like `extract_flags`, one function on purpose: it follows BuildKit's
/// `parseWords` loop statement by statement.
pub(crate) fn parse_words(rest: &str, escape: char) -> Vec<String> {
    #[derive(PartialEq)]
    enum Phase {
        Spaces,
        Word,
        Quote,
    }
    // COMPAT(buildkit): a rune loop; each invalid byte is read as U+FFFD.
    let chars: Vec<char> = rest.chars().map(rawbytes::replace_char).collect();
    let n = chars.len();
    let mut words = Vec::new();
    let mut phase = Phase::Spaces;
    let mut quote = '\0';
    let mut blank_ok = false;
    let mut word = String::new();
    let mut ch = '\0';
    let mut pos = 0;
    while pos <= n {
        if pos != n {
            ch = chars[pos];
        }
        if phase == Phase::Spaces {
            if pos == n {
                break;
            }
            if is_space(ch) {
                pos += 1;
                continue;
            }
            phase = Phase::Word;
        }
        // An unterminated quote still ends the word at end of input.
        if pos == n {
            if blank_ok || !word.is_empty() {
                words.push(std::mem::take(&mut word));
            }
            break;
        }
        if phase == Phase::Word {
            if is_space(ch) {
                phase = Phase::Spaces;
                if blank_ok || !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                word.clear();
                blank_ok = false;
                pos += 1;
                continue;
            }
            if ch == '\'' || ch == '"' {
                quote = ch;
                blank_ok = true;
                phase = Phase::Quote;
            }
            if ch == escape {
                if pos + 1 == n {
                    pos += 1;
                    continue;
                }
                word.push(ch);
                pos += 1;
                ch = chars[pos];
            }
            word.push(ch);
            pos += 1;
            continue;
        }
        if ch == quote {
            phase = Phase::Word;
        }
        if ch == escape && quote != '\'' {
            if pos + 1 == n {
                phase = Phase::Word;
                pos += 1;
                continue;
            }
            pos += 1;
            word.push(ch);
            ch = chars[pos];
        }
        word.push(ch);
        pos += 1;
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn flags_are_unquoted_and_terminated() {
        assert_eq!(
            extract_flags("--chown=\"a b\" --chmod=7\\ 55 x y"),
            ("x y".to_string(), v(&["--chown=a b", "--chmod=7 55"]))
        );
        assert_eq!(
            extract_flags("-- foo /tmp/"),
            (" foo /tmp/".to_string(), vec![])
        );
        assert_eq!(extract_flags("-x y"), ("-x y".to_string(), vec![]));
        assert_eq!(
            extract_flags("--a --b"),
            (String::new(), v(&["--a", "--b"]))
        );
    }

    #[test]
    fn words_keep_quotes_and_escapes() {
        assert_eq!(
            parse_words("a\\ b 'c d' \"e\\\"f\"", '\\'),
            v(&["a\\ b", "'c d'", "\"e\\\"f\""])
        );
        assert_eq!(parse_words("''", '\\'), v(&["''"]));
        assert_eq!(parse_words("x\\", '\\'), v(&["x"]));
        assert_eq!(parse_words("a=\"b", '\\'), v(&["a=\"b"]));
    }

    #[test]
    fn whitespace_split() {
        assert_eq!(split_ws("a \t b"), v(&["a", "b"]));
        assert!(split_ws("").is_empty());
    }
}
