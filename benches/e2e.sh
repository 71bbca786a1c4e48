#!/usr/bin/env bash
# End-to-end benchmark: times kiln against peer builders in the same run and
# prints medians and ratios. Peers (buildah, docker's BuildKit) come from
# ../shared/peers (run its setup.sh first; it also makes the busybox base).
#
#   benches/e2e.sh              all suites
#   SUITES="run cache" benches/e2e.sh
#   PEERS="buildah" RUNS=5 benches/e2e.sh
#
# Suites:
#   run    RUN-heavy: one RUN writing 50 MB in 2,000 files; 20 small RUN steps (cold builds)
#   cache  10,000 small files + one 200 MB file, 10 steps: cold, no-op rebuild,
#          rebuild after touching one file, rebuild after changing one file;
#          kiln's no-op with -o type=oci,dest=FILE (cache.noop-oci)
#   peers  ../shared/peers/run-peers.sh with kiln joined to its table
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
peers_dir=${PEERS_DIR:-$repo/../shared/peers}
state=${PEERS_STATE:-/tmp/peers}
work=${BENCH_WORK:-/tmp/kiln-bench}
RUNS=${RUNS:-5}
SUITES=${SUITES:-"run cache peers"}
PEERS=${PEERS:-"buildah"}

command -v hyperfine >/dev/null || { echo "hyperfine missing: run $peers_dir/setup.sh" >&2; exit 1; }
base_archive=$state/oci/busybox.oci.tar
[ -f "$base_archive" ] || { echo "no busybox base at $base_archive: run $peers_dir/setup.sh" >&2; exit 1; }

(cd "$repo" && cargo build --release --quiet)
kiln=$repo/target/release/kiln
export KILN_ROOT=$work/kiln-root
mkdir -p "$work"
"$kiln" load -i "$base_archive" -t busybox:latest >/dev/null

bah="buildah --root $state/storage/overlay --runroot /run/peers/overlay --storage-driver overlay"
have_buildah() { [[ " $PEERS " == *" buildah "* ]] && command -v buildah >/dev/null; }

# build_cmd TOOL CTX TAG -> command line
build_cmd() {
  case $1 in
    kiln) echo "$kiln build -q -t $3 $2" ;;
    buildah) echo "$bah bud --layers --network none -q -t $3 -f $2/Dockerfile $2" ;;
  esac
}
clean_cmd() {
  case $1 in
    kiln) echo "rm -rf $KILN_ROOT/cache; $kiln rmi $2 >/dev/null 2>&1; $kiln prune >/dev/null 2>&1; true" ;;
    buildah) echo "$bah rmi -f $2 >/dev/null 2>&1; $bah rmi --prune >/dev/null 2>&1; true" ;;
  esac
}

results=$work/results.tsv
: >"$results"
# measure NAME TOOL ARGS...: hyperfine, appends "name tool median_s"
measure() {
  local name=$1 tool=$2; shift 2
  local json=$work/$name.$tool.json
  hyperfine --style none --export-json "$json" "$@" >/dev/null 2>"$work/$name.$tool.err" || {
    printf '%s\t%s\tFAIL\n' "$name" "$tool" >>"$results"; return 0; }
  python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["results"][0]; print("%s\t%s\t%.4f" % (sys.argv[2], sys.argv[3], r["median"]))' \
    "$json" "$name" "$tool" >>"$results"
}

tools() { echo kiln; have_buildah && echo buildah; true; }

suite_run() {
  for b in run-heavy run-steps; do
    local ctx=$work/ctx-$b; rm -rf "$ctx"; mkdir -p "$ctx"; cp "$here/e2e/$b/Dockerfile" "$ctx/"
    for t in $(tools); do
      measure "$b.cold" "$t" --runs "$RUNS" --prepare "$(clean_cmd "$t" bench-$b)" "$(build_cmd "$t" "$ctx" bench-$b)"
    done
  done
}

suite_cache() {
  local ctx=$work/ctx-cache
  if [ ! -f "$ctx/big.bin" ]; then
    rm -rf "$ctx"; mkdir -p "$ctx/files"
    for d in $(seq -w 0 99); do
      mkdir -p "$ctx/files/d$d"
      for f in $(seq -w 0 99); do echo "file $d/$f" > "$ctx/files/d$d/f$f.txt"; done
    done
    head -c $((200 * 1024 * 1024)) /dev/urandom > "$ctx/big.bin"
  fi
  cp "$here/e2e/cache-context/Dockerfile" "$ctx/"
  local one=$ctx/files/d42/f42.txt
  for t in $(tools); do
    local b; b=$(build_cmd "$t" "$ctx" bench-cache)
    measure cache.cold "$t" --runs 3 --prepare "$(clean_cmd "$t" bench-cache)" "$b"
    eval "$b" >/dev/null
    measure cache.noop "$t" --runs "$RUNS" --warmup 1 "$b"
    measure cache.touch "$t" --runs "$RUNS" --warmup 1 --prepare "touch $one" "$b"
    measure cache.change "$t" --runs "$RUNS" --warmup 1 --prepare "echo \$RANDOM\$RANDOM >> $one" "$b"
  done
  # kiln only: the no-op again with an OCI archive output (kept when it
  # already holds the image); compare with cache.noop.
  local ob="$kiln build -q -t bench-cache -o type=oci,dest=$work/cache.oci.tar $ctx"
  eval "$ob" >/dev/null
  measure cache.noop-oci kiln --runs "$RUNS" --warmup 1 "$ob"
}

suite_peers() {
  PEERS="cmd:kiln buildah-overlay docker-buildkit" \
  PEER_kiln_BUILD="$kiln build -q -t {tag} {ctx}" \
  PEER_kiln_CLEAN="$kiln rmi {tag}; rm -rf $KILN_ROOT/cache; $kiln prune" \
  PEER_kiln_EXPORT="$kiln save {tag} -o {out}" \
  BENCHES=${BENCHES:-"a-basic b-multistage c-bigcontext"} EXPORT=0 \
    bash "$peers_dir/run-peers.sh"
}

for s in $SUITES; do "suite_$s"; done

# Table: median seconds per tool and the ratio peer/kiln (>1 means kiln is faster).
python3 - "$results" <<'PY'
import sys, collections
rows = collections.OrderedDict()
for line in open(sys.argv[1]):
    name, tool, med = line.rstrip("\n").split("\t")
    rows.setdefault(name, {})[tool] = med
tools = sorted({t for r in rows.values() for t in r}, key=lambda t: (t != "kiln", t))
print("%-18s" % "bench" + "".join("%12s" % t for t in tools) + "".join("%16s" % (t + "/kiln") for t in tools if t != "kiln"))
for name, r in rows.items():
    cells = "".join("%12s" % (r.get(t, "-")) for t in tools)
    ratios = ""
    for t in tools:
        if t == "kiln": continue
        try: ratios += "%16.1fx" % (float(r[t]) / float(r["kiln"]))
        except (KeyError, ValueError, ZeroDivisionError): ratios += "%16s" % "-"
    print("%-18s" % name + cells + ratios)
PY
