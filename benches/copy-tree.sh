#!/usr/bin/env bash
# COPY of a large tree: a Python-virtualenv-like tree (3,600 files: 3,200 .py and
# metadata files of 0.2-24 KB, 400 compiled-module-like files of 2-200 KB, ~70 MB
# in all) built as one stage over 4 layers, then
#   copy-from  FROM scratch + COPY --from=venv /venv /venv     (the final stage only)
#   copy-ctx   FROM scratch + COPY tree/ /venv/                 (from the context)
# timed with hyperfine (the other stages cached, --no-cache-filter on the measured
# one), beside `cp -a` of the same tree into a fresh dir on the same disk in the
# same run (the floor any copy pays) and, for the compression share, kiln with
# `--compression=uncompressed` (BuildKit's COPY stores the layer uncompressed
# until export).
#
#   benches/copy-tree.sh            # RUNS=10 by default
#   KILN=target/debug/kiln RUNS=5 benches/copy-tree.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
work=${BENCH_WORK:-/tmp/kiln-copy-bench}
RUNS=${RUNS:-10}
if [ -z "${KILN:-}" ]; then
  (cd "$repo" && cargo build --release --quiet --bin kiln)
  KILN=$repo/target/release/kiln
fi
command -v hyperfine >/dev/null || { echo "hyperfine missing (apt-get install hyperfine)" >&2; exit 1; }
export KILN_ROOT=$work/root
ctx=$work/ctx
mkdir -p "$work"

if [ ! -f "$ctx/.done" ]; then
  rm -rf "$ctx"; mkdir -p "$ctx"
  python3 - "$ctx" <<'PY'
import os, random, sys
ctx = sys.argv[1]
rng = random.Random(16)
words = b"def class import return self None True False for in if else yield lambda".split()
def text(n):
    out = bytearray()
    while len(out) < n:
        out += b" ".join(rng.choice(words) for _ in range(8)) + b"\n"
    return bytes(out[:n])
n = 0
for layer in range(4):
    site = os.path.join(ctx, f"l{layer}", "lib", "python3.11", "site-packages")
    for p in range(20):
        pkg = os.path.join(site, f"pkg{layer}_{p}")
        for d in range(4):
            sub = os.path.join(pkg, f"mod{d}", "sub")
            os.makedirs(sub, exist_ok=True)
            for f in range(10):
                path = os.path.join(sub if f % 2 else os.path.dirname(sub), f"m{f}.py")
                open(path, "wb").write(text(rng.randint(200, 24000)))
                n += 1
            so = os.path.join(pkg, f"mod{d}", f"_speedups{d}.cpython-311-x86_64-linux-gnu.so")
            half = rng.randint(1000, 100000)
            open(so, "wb").write(rng.randbytes(half) + text(half))
            os.chmod(so, 0o755)
            n += 1
        info = os.path.join(site, f"pkg{layer}_{p}-1.0.dist-info")
        os.makedirs(info, exist_ok=True)
        for name in ("METADATA", "RECORD", "WHEEL", "INSTALLER", "top_level.txt"):
            open(os.path.join(info, name), "wb").write(text(rng.randint(20, 3000)))
            n += 1
    os.makedirs(os.path.join(ctx, f"l{layer}", "bin"), exist_ok=True)
    for b in range(5):
        p = os.path.join(ctx, f"l{layer}", "bin", f"tool{layer}{b}")
        open(p, "wb").write(b"#!/venv/bin/python\n" + text(300))
        os.chmod(p, 0o755)
        n += 1
print(n, "files")
PY
  mkdir -p "$ctx/tree"
  for l in 0 1 2 3; do cp -a "$ctx/l$l/." "$ctx/tree/"; done
  cat >"$ctx/Dockerfile" <<'EOF'
FROM scratch AS venv
COPY l0/ /venv/
COPY l1/ /venv/
COPY l2/ /venv/
COPY l3/ /venv/

FROM scratch AS copy-from
COPY --from=venv /venv /venv

FROM scratch AS copy-ctx
COPY tree/ /venv/
EOF
  touch "$ctx/.done"
fi
echo "tree: $(find "$ctx/tree" -type f | wc -l) files, $(du -sh "$ctx/tree" | cut -f1)"

# KILN_BASE=OTHER-KILN: the same cases with another build of kiln in the same
# run (before/after a change).
cases=()
for k in "$KILN" ${KILN_BASE:-}; do
  tag=kiln; [ "$k" = "$KILN" ] || tag=base
  for t in copy-from copy-ctx; do
    "$k" build -q --target "$t" "$ctx" >/dev/null
  done
  cases+=(-n "$tag copy-from" "$k build -q --target copy-from --no-cache-filter copy-from $ctx"
          -n "$tag copy-from uncompressed" "$k build -q --target copy-from --no-cache-filter copy-from --compression=uncompressed $ctx"
          -n "$tag copy-ctx" "$k build -q --target copy-ctx --no-cache-filter copy-ctx $ctx")
done
# Wall times on a shared machine are noisy: compare the user + system times
# hyperfine prints too.
hyperfine --style basic --runs "$RUNS" --warmup 1 \
  --prepare "rm -rf $work/cp" \
  -n "cp -a (floor)" "cp -a $ctx/tree $work/cp" \
  "${cases[@]}" \
  --export-json "$work/copy-tree.json"
rm -rf "$work/cp"
"$KILN" prune >/dev/null 2>&1 || true
