//! `parse` never panics: corpus files mutated with a deterministic
//! generator, random bytes, and pathological nesting and lengths.

use super::{positive_cases, read};
use kiln::dockerfile::{ast_json, check_instruction_names, dump, parse};

/// A tiny deterministic generator (xorshift64*), so failures reproduce.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Fragments that reach the parser's tricky paths.
const TOKENS: [&[u8]; 24] = [
    b"\\",
    b"`",
    b"\n",
    b"\r\n",
    b"<<EOF",
    b"<<-'X'\n\tX\n",
    b"\nEOF\n",
    b"\"",
    b"'",
    b"[",
    b"]",
    b"${",
    b"}",
    b"--",
    b" --mount=type=cache ",
    b"ONBUILD ",
    b"RUN ",
    b"ENV a=",
    b"# escape=`\n",
    b"\xef\xbb\xbf",
    b"\t",
    b"\xff\xfe",
    b"[\"a\", 1]",
    b"HEALTHCHECK \xc3\xa0 CMD x",
];

fn mutate(rng: &mut XorShift, seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut data = seeds[rng.below(seeds.len())].clone();
    for _ in 0..1 + rng.below(8) {
        let at = rng.below(data.len() + 1);
        match rng.below(6) {
            0 => data
                .splice(at..at, TOKENS[rng.below(TOKENS.len())].iter().copied())
                .for_each(drop),
            1 if at < data.len() => data[at] = rng.next() as u8,
            2 => {
                let end = (at + rng.below(64)).min(data.len());
                data.drain(at..end);
            }
            3 => {
                let other = &seeds[rng.below(seeds.len())];
                let from = rng.below(other.len());
                let to = (from + rng.below(200)).min(other.len());
                data.splice(at..at, other[from..to].iter().copied())
                    .for_each(drop);
            }
            4 => data.truncate(at),
            _ => data
                .splice(at..at, (0..rng.below(16)).map(|_| rng.next() as u8))
                .for_each(drop),
        }
    }
    data
}

#[test]
fn parse_never_panics_on_mutated_input() {
    let seeds: Vec<Vec<u8>> = positive_cases()
        .iter()
        .map(|d| read(&d.join("Dockerfile")))
        .collect();
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let (mut accepted, mut rejected) = (0, 0);
    for _ in 0..6000 {
        let input = mutate(&mut rng, &seeds);
        match parse(&input) {
            Ok(df) => {
                accepted += 1;
                let _ = (dump(&df), ast_json(&df));
                if let Err(e) = check_instruction_names(&df) {
                    let _ = e.render(&input, "Dockerfile");
                }
            }
            Err(e) => {
                rejected += 1;
                let _ = (e.render(&input, "Dockerfile"), e.position());
            }
        }
    }
    // Both outcomes must be exercised, or the mutator is not reaching the parser.
    assert!(
        accepted > 1000 && rejected > 100,
        "accepted {accepted}, rejected {rejected}"
    );
}

#[test]
fn parse_never_panics_on_random_bytes_and_extremes() {
    let mut rng = XorShift(42);
    for len in 0..2000 {
        let bytes: Vec<u8> = (0..len % 300).map(|_| rng.next() as u8).collect();
        let _ = parse(&bytes);
    }
    let deep_onbuild = format!("{}RUN x\n", "ONBUILD ".repeat(5000));
    let deep_json = format!("CMD {}{}\n", "[".repeat(30_000), "]".repeat(30_000));
    let deep_subst = format!("RUN {}<<EOF\nEOF\n", "${a:-".repeat(5000));
    let long_join = "RUN a \\\n".repeat(20_000) + "b\n";
    for src in [deep_onbuild, deep_json, deep_subst, long_join] {
        let _ = parse(src.as_bytes());
    }
    assert!(parse(&vec![b'x'; 70_000]).is_err());
}

/// Renders a parsed file back to Dockerfile text: the directives, then each
/// instruction's logical line (`original`) with its heredoc bodies after it.
/// Comments, blank lines and continuations are gone, so this is the
/// normal form the parser should read back to the same instructions.
fn render(df: &kiln::dockerfile::Dockerfile) -> String {
    let mut out = String::new();
    for d in &df.directives {
        out.push_str(&format!("# {}={}\n", d.name, d.value));
    }
    for inst in &df.instructions {
        if inst.original.is_empty() {
            // COMPAT(buildkit): a file that ends inside a continuation gives
            // an instruction with no words; only a dangling escape makes one.
            out.push(df.escape);
        }
        out.push_str(&inst.original);
        out.push('\n');
        for h in &inst.heredocs {
            out.push_str(&h.content);
            if !h.content.is_empty() && !h.content.ends_with('\n') {
                out.push('\n');
            }
            out.push_str(&h.name);
            out.push('\n');
        }
    }
    out
}

/// Why `render(parse(src))` does not parse back to the same dump, if it doesn't.
fn round_trip_failure(src: &[u8]) -> Option<String> {
    let first = parse(src).ok()?;
    let text = render(&first);
    match parse(text.as_bytes()) {
        Ok(second) if dump(&second) == dump(&first) => None,
        Ok(second) => Some(format!(
            "dump changed:\n--- input ---\n{:?}\n--- rendered ---\n{text}\n--- first ---\n{}\n--- second ---\n{}",
            String::from_utf8_lossy(src),
            dump(&first),
            dump(&second)
        )),
        Err(e) => Some(format!("rendered text rejected: {e}\n--- rendered ---\n{text}")),
    }
}

#[test]
fn parse_render_parse_is_stable_on_the_corpus() {
    let cases = positive_cases();
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|d| {
            round_trip_failure(&read(&d.join("Dockerfile")))
                .map(|f| format!("{}: {f}", d.display()))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {}:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}

#[test]
fn parse_render_parse_is_stable_on_mutated_input() {
    let seeds: Vec<Vec<u8>> = positive_cases()
        .iter()
        .map(|d| read(&d.join("Dockerfile")))
        .collect();
    let mut rng = XorShift(0x51ab_1e00_0000_0001);
    let mut failures = Vec::new();
    for _ in 0..3000 {
        let input = mutate(&mut rng, &seeds);
        if let Some(f) = round_trip_failure(&input) {
            failures.push(f);
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures, first:\n{}",
        failures.len(),
        failures[0]
    );
}
