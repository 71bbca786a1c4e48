#!/usr/bin/env python3
"""Differential fuzzing of `kiln parse` against BuildKit's Go parser.

The PyPI package `dockerfile` wraps BuildKit's parser (Go, via cgo). This
script mutates the conformance corpus with a fixed seed, feeds every input to
both parsers and reports inputs where acceptance, instructions, flags,
arguments, line numbers or heredocs differ. Not used by the test suite.

    python3 -m venv /tmp/fuzz && /tmp/fuzz/bin/pip install dockerfile
    cargo build && /tmp/fuzz/bin/python scripts/fuzz-parser.py [--cases N] [--seed S]

Differences are written to target/fuzz-parser/<n>.Dockerfile with a .diff
beside it. The package may track a newer BuildKit than the corpus's
reference commit; judge a difference against the corpus before "fixing" it.
"""

import argparse
import json
import os
import random
import re
import subprocess
import sys
from pathlib import Path

import dockerfile  # BuildKit's parser

ROOT = Path(__file__).resolve().parent.parent
TOKENS = [b"\\", b"`", b"\n", b"\r\n", b"<<EOF", b"<<-'X'\n\tX\n", b"\nEOF\n", b'"', b"'",
          b"[", b"]", b"${", b"}", b"--", b" --mount=type=cache ", b"ONBUILD ", b"RUN ",
          b"ENV a=", b"# escape=`\n", b"\t", b'["a", 1]', b" ", b"#", b"=", b"\\\n", b"\n\n"]


def corpus(conf: Path):
    files = sorted(conf.glob("buildkit-parser/*/*/Dockerfile")) + sorted(conf.glob("real-world/*/*/Dockerfile"))
    return [f.read_bytes() for f in files]


def mutate(rng: random.Random, seeds):
    data = bytearray(rng.choice(seeds))
    for _ in range(rng.randint(1, 6)):
        at = rng.randint(0, len(data))
        op = rng.randrange(5)
        if op == 0:
            data[at:at] = rng.choice(TOKENS)
        elif op == 1 and at < len(data):
            data[at] = rng.randrange(32, 127)
        elif op == 2:
            del data[at:at + rng.randrange(40)]
        elif op == 3:
            other = rng.choice(seeds)
            start = rng.randrange(max(len(other), 1))
            data[at:at] = other[start:start + rng.randrange(200)]
        else:
            data[at:at] = bytes(rng.randrange(32, 127) for _ in range(rng.randrange(8)))
    return bytes(data)


KEYWORDS = [b"FROM", b"RUN", b"CMD", b"ENV", b"LABEL", b"ARG", b"COPY", b"ADD", b"ONBUILD", b"HEALTHCHECK",
            b"VOLUME", b"EXPOSE", b"USER", b"SHELL", b"ENTRYPOINT", b"run", b"Env", b"BOGUS", b"#", b""]
PIECES = [b"a", b"b=c", b"'x y'", b'"p q"', b"\\ ", b"\\", b"`", b"=", b"--f=1", b"--", b"-x", b"[", b"]",
          b'["s"]', b'["s", 2]', b"<<E", b"<<-E", b"2<<'E'", b'<<"E"', b"E", b"\tE", b"$V", b"${V:-w}", b"${",
          b"CMD", b"NONE", b"\t", b" ", b"  ", b"#c", b"{", b"}", b"\xc2\xa0",
          b"k='v w'", b'k="v\\"w"', b"k=v\\ w", b"k=`\"", b'--chown="a b"', b"--m='x'", b"--a\\ b",
          b"\\\\", b"'", b'"', b"\\'", b"a=", b"=b", b"\\\n", b"`\n", b"\\\n\n", b"\\\n# c\n", b"\\ \t\n"]


def synthesize(rng: random.Random):
    lines = []
    if rng.random() < 0.2:
        lines.append(rng.choice([b"# escape=`", b"# escape=\\", b"# syntax=x", b"#escape = `", b"# check=skip=all"]))
    for _ in range(rng.randint(1, 8)):
        words = [rng.choice(KEYWORDS)] + [rng.choice(PIECES) for _ in range(rng.randint(0, 5))]
        lines.append(rng.choice([b" ", b"", b"\t"]) * rng.randint(0, 1) + b" ".join(words))
    return b"\n".join(lines) + rng.choice([b"\n", b"", b"\r\n"])


def reference(src: bytes):
    try:
        cmds = dockerfile.parse_string(src.decode("utf-8"))
    except dockerfile.GoParseError as e:
        return {"ok": False, "error": str(e)}
    return {"ok": True, "children": [
        {"cmd": c.cmd, "sub_cmd": c.sub_cmd, "json": c.json, "flags": list(c.flags),
         "value": list(c.value), "lines": [c.start_line, c.end_line],
         "heredocs": [[h.name, h.file_descriptor, h.content] for h in c.heredocs]}
        for c in cmds]}


def kiln(binary: str, src: bytes):
    out = subprocess.run([binary, "parse", "--json", "-"], input=src, capture_output=True, check=False)
    if out.returncode not in (0, 2):
        return {"ok": False, "error": f"exit {out.returncode}: {out.stderr.decode(errors='replace')}", "crash": True}
    tree = json.loads(out.stdout)
    if not tree["ok"]:
        return {"ok": False, "error": tree["error"]}
    children = []
    for c in tree["children"]:
        sub = c.get("sub")
        args = (sub or c)["args"]
        if sub and sub.get("sub"):
            args = [""]  # the binding shows the nested node's empty value
        if (sub or c)["cmd"].lower() in ("env", "label"):
            # The binding leaves out the separator node of each triple.
            args = [a for i, a in enumerate(args) if i % 3 != 2]
        children.append({
            "cmd": c["cmd"], "sub_cmd": sub["cmd"] if sub else None,
            "json": (sub or c)["json_form"], "flags": c["flags"], "value": args,
            "lines": [c["start_line"], c["end_line"]],
            "heredocs": [[h["name"], h["fd"], h["content"]] for h in c["heredocs"]]})
    return {"ok": True, "children": children}


def known_divergence(ref, ours):
    """Differences between the binding and the corpus's reference commit.

    The binding's parser takes `CMD ["a"] trailing text` as JSON; the
    reference commit (and so the corpus, e.g. kaniko's Dockerfile_test_cmd)
    falls back to the shell form. The binding also cuts strings at NUL (it
    passes C strings).
    """
    if any("\x00" in v for v in ours["value"]) or (ref["cmd"] is None and ours["cmd"] == ""):
        return True
    return ref["json"] and not ours["json"] and " ".join(ours["value"]).lstrip().startswith("[")


# Inputs where the binding (an older BuildKit) is known to differ from the
# reference commit: `<<  EOF` (blanks after `<<`) is a heredoc there (corpus
# derived/heredoc-extract); `${X%p}`/`${X#p}` on a heredoc line lexes there;
# and JSON followed by trailing text is not JSON there (kaniko's
# Dockerfile_test_cmd), which can turn into a non-string error.
KNOWN_INPUTS = [re.compile(rb"<<-?[ \t]"), re.compile(rb"\$\{[^}]*[%#]"), re.compile(rb"\][^\n]*\S[^\n]*$", re.M)]


def known_input(src, ref, ours):
    if spaced_or_subst(src) or ONBUILD_HEREDOC.search(src):
        return True
    return json_with_trailing_text(src)


# The binding ignores heredocs under ONBUILD; the reference commit reads them.
ONBUILD_HEREDOC = re.compile(rb"(?im)^\s*onbuild\b.*<<")


def json_with_trailing_text(src):
    """A line whose arguments are a JSON array followed by more text."""
    decoder = json.JSONDecoder()
    for line in src.decode("utf-8", "replace").splitlines():
        for at in [i for i, c in enumerate(line) if c == "["]:
            try:
                _, end = decoder.raw_decode(line[at:])
            except ValueError:
                continue
            if line[at + end:].strip():
                return True
    return False


def spaced_or_subst(src):
    return any(k.search(src) for k in KNOWN_INPUTS[:2]) and b"<<" in src


def same(a, b):
    if a["ok"] != b["ok"] or a.get("crash") or b.get("crash"):
        return False
    if not a["ok"]:
        return True
    if len(a["children"]) != len(b["children"]):
        return False
    return all(x == y or known_divergence(x, y) for x, y in zip(a["children"], b["children"]))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--kiln", default=str(ROOT / "target/debug/kiln"))
    ap.add_argument("--conformance", default=os.environ.get("KILN_CONFORMANCE_DIR", str(ROOT.parent / "shared/conformance")))
    args = ap.parse_args()
    seeds = corpus(Path(args.conformance))
    if not seeds:
        sys.exit(f"no corpus under {args.conformance}")
    rng = random.Random(args.seed)
    outdir = ROOT / "target/fuzz-parser"
    outdir.mkdir(parents=True, exist_ok=True)
    bad = known = 0
    for n in range(args.cases):
        src = mutate(rng, seeds) if n % 2 else synthesize(rng)
        try:
            src.decode("utf-8")
        except UnicodeDecodeError:
            continue  # kiln documents its U+FFFD deviation for non-UTF-8 input
        want, got = reference(src), kiln(args.kiln, src)
        if same(want, got):
            continue
        if known_input(src, want, got):
            known += 1
        else:
            bad += 1
            (outdir / f"{n}.Dockerfile").write_bytes(src)
            (outdir / f"{n}.diff").write_text(json.dumps({"buildkit": want, "kiln": got}, indent=1))
    print(f"{bad} of {args.cases} inputs differ (see {outdir}); {known} more differ in known ways")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
