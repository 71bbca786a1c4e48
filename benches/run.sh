#!/usr/bin/env bash
# Start-to-exit latency of a container: `kiln run --rm IMAGE true` beside
# `podman run --rm IMAGE true` (Debian's podman), the same busybox image in both,
# medians over RUNS runs with hyperfine, and their ratio.
#
#   benches/run.sh
#   RUNS=30 PODMAN_FLAGS="--ulimit nproc=1024:1024" benches/run.sh
#
# Both run with no network (kiln's default; podman's `--network none`), so neither
# pays for a network setup the other skips. PODMAN_FLAGS is added to podman's
# command line (some sandboxes refuse podman's default ulimits: lower them there).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
runs=${RUNS:-20}
kiln=${KILN:-$repo/target/release/kiln}
podman_flags=${PODMAN_FLAGS:-}
tag=localhost/kiln-run-bench:latest
for tool in hyperfine podman skopeo; do
  command -v "$tool" >/dev/null || { echo "$0: needs $tool (apt-get install $tool)" >&2; exit 2; }
done
[ -x "$kiln" ] || (cd "$repo" && cargo build --release --locked)
work=$(mktemp -d)
cleanup() {
  rm -rf "$work"
  podman rmi -f "$tag" >/dev/null 2>&1 || true
}
trap cleanup EXIT
"$repo/scripts/make-busybox-image" "$work/busybox.tar"
"$kiln" --root "$work/root" load -i "$work/busybox.tar" >/dev/null
skopeo copy --quiet "oci-archive:$work/busybox.tar" "containers-storage:$tag"
kiln_cmd="$kiln --root $work/root run --rm --network none busybox true"
# shellcheck disable=SC2086 # PODMAN_FLAGS is a list of words
podman_cmd="podman run --rm --network none $podman_flags $tag true"
$kiln_cmd && $podman_cmd
hyperfine -N --warmup 3 --runs "$runs" --export-json "$work/run.json" \
  -n kiln "$kiln_cmd" -n podman "$podman_cmd"
python3 - "$work/run.json" <<'EOF'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
k, p = r["kiln"]["median"], r["podman"]["median"]
print(f"median start-to-exit: kiln {k*1000:.1f} ms, podman {p*1000:.1f} ms; podman/kiln = {p/k:.2f}x")
EOF
