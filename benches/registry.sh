#!/usr/bin/env bash
# Registry throughput on loopback: push and pull of a ~500 MB image (a few
# incompressible gzip layers) to and from Debian's docker-registry, timed for
# kiln and for `skopeo copy` of the same image in the same run. Each tool gets
# its own fresh registry, so neither finds the other's blobs already there.
#
#   benches/registry.sh                 5 layers of 100 MB, median of RUNS=3
#   LAYERS=3 LAYER_MB=200 benches/registry.sh
#   KILN=target/debug/kiln benches/registry.sh    (skip the release build)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
LAYERS=${LAYERS:-5}
LAYER_MB=${LAYER_MB:-100}
RUNS=${RUNS:-3}
work=${BENCH_WORK:-/tmp/kiln-registry-bench}

for tool in /usr/bin/docker-registry skopeo python3 gzip; do
  command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install docker-registry skopeo)" >&2; exit 1; }
done
if [ -z "${KILN:-}" ]; then
  (cd "$repo" && cargo build --release --quiet)
  KILN=$repo/target/release/kiln
fi

rm -rf "$work"
mkdir -p "$work"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

# The image: an OCI layout with LAYERS gzip layers of random bytes.
layout=$work/layout
mkdir -p "$layout/blobs/sha256"
echo '{"imageLayoutVersion":"1.0.0"}' >"$layout/oci-layout"
for i in $(seq 1 "$LAYERS"); do
  mkdir -p "$work/l$i"
  head -c "$((LAYER_MB * 1000 * 1000))" /dev/urandom >"$work/l$i/data$i"
  tar -C "$work/l$i" -cf "$work/l$i.tar" "data$i"
  gzip -1 -c "$work/l$i.tar" >"$work/l$i.tar.gz"
  rm -rf "$work/l$i"
done
python3 - "$work" "$LAYERS" <<'EOF'
import hashlib, json, os, shutil, sys
work, n = sys.argv[1], int(sys.argv[2])
blobs = os.path.join(work, "layout/blobs/sha256")
def sha(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
def put(data):
    d = hashlib.sha256(data).hexdigest()
    open(os.path.join(blobs, d), "wb").write(data)
    return d
layers, diff_ids = [], []
for i in range(1, n + 1):
    diff_ids.append("sha256:" + sha(f"{work}/l{i}.tar"))
    gz = f"{work}/l{i}.tar.gz"
    d = sha(gz)
    size = os.path.getsize(gz)
    shutil.move(gz, os.path.join(blobs, d))
    os.remove(f"{work}/l{i}.tar")
    layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                   "digest": "sha256:" + d, "size": size})
config = json.dumps({"architecture": "amd64", "os": "linux",
                     "rootfs": {"type": "layers", "diff_ids": diff_ids},
                     "history": [{"created_by": f"layer {i}"} for i in range(n)]},
                    sort_keys=True, separators=(",", ":")).encode()
c = put(config)
manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                  "digest": "sha256:" + c, "size": len(config)},
                       "layers": layers}, separators=(",", ":")).encode()
m = put(manifest)
index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
         "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                        "digest": "sha256:" + m, "size": len(manifest),
                        "annotations": {"org.opencontainers.image.ref.name": "bench"}}]}
json.dump(index, open(os.path.join(work, "layout/index.json"), "w"))
EOF
bytes=$(du -sb "$layout/blobs" | cut -f1)

# start_registry NAME: starts a registry, sets REG=host:port (no subshell, so
# its pid reaches the cleanup list)
start_registry() {
  local dir=$work/$1 port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  mkdir -p "$dir"
  cat >"$dir/config.yml" <<EOF
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $dir/data
http:
  addr: 127.0.0.1:$port
  secret: bench
EOF
  /usr/bin/docker-registry serve "$dir/config.yml" >"$dir/log" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do
    python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/v2/')" 2>/dev/null && break
    sleep 0.1
  done
  REG="127.0.0.1:$port"
}

now() { date +%s.%N; }
# timed LABEL CMD...: runs CMD, appends its seconds to $work/LABEL.times
timed() {
  local label=$1; shift
  local t0 t1
  sync
  t0=$(now)
  "$@" >"$work/$label.out" 2>&1 || { echo "$label failed:" >&2; cat "$work/$label.out" >&2; exit 1; }
  t1=$(now)
  python3 -c "print($t1 - $t0)" >>"$work/$label.times"
}

export KILN_ROOT=$work/kiln-src
"$KILN" load -i "$layout" -t bench:1 >/dev/null
for run in $(seq 1 "$RUNS"); do
  # Fresh registries and destinations each run: nothing is already there.
  start_registry "reg-kiln-$run"
  reg_kiln=$REG
  start_registry "reg-skopeo-$run"
  reg_skopeo=$REG
  export KILN_ROOT=$work/kiln-src
  timed kiln-push "$KILN" push bench:1 "$reg_kiln/bench:1"
  timed skopeo-push skopeo copy -q --dest-tls-verify=false "oci:$layout:bench" "docker://$reg_skopeo/bench:1"
  export KILN_ROOT=$work/kiln-dst-$run
  timed kiln-pull "$KILN" pull "$reg_kiln/bench:1"
  timed skopeo-pull skopeo copy -q --src-tls-verify=false "docker://$reg_skopeo/bench:1" "oci:$work/skopeo-dst-$run:bench"
  rm -rf "$work/kiln-dst-$run" "$work/skopeo-dst-$run" "$work/reg-kiln-$run/data" "$work/reg-skopeo-$run/data"
  cleanup
  pids=()
done
median() { python3 -c 'import statistics,sys; print(statistics.median(float(l) for l in open(sys.argv[1])))' "$work/$1.times"; }
declare -A secs
for l in kiln-push skopeo-push kiln-pull skopeo-pull; do secs[$l]=$(median "$l"); done

printf '\nimage: %d layers, %.1f MB of blobs; docker-registry on loopback; median of %d runs\n\n' "$LAYERS" "$(python3 -c "print($bytes/1e6)")" "$RUNS"
printf '%-6s %12s %12s %12s %12s %8s\n' op kiln_s kiln_MB/s skopeo_s skopeo_MB/s ratio
for op in push pull; do
  python3 - "$op" "$bytes" "${secs[kiln-$op]}" "${secs[skopeo-$op]}" <<'EOF'
import sys
op, b, k, s = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
print("%-6s %12.2f %12.1f %12.2f %12.1f %7.2fx" % (op, k, b / 1e6 / k, s, b / 1e6 / s, s / k))
EOF
done
echo "(ratio = skopeo time / kiln time: above 1 means kiln is faster)"
