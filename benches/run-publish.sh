#!/usr/bin/env bash
# Start-to-first-byte latency of a published port: from starting
# `kiln run --rm -p 127.0.0.1:PORT:80 IMAGE httpd` (kiln's private network,
# slirp4netns) to the first byte of an HTTP answer on 127.0.0.1:PORT, beside the same
# with `podman run` (Debian's podman, its default network), the same busybox image.
# Each run is then stopped with SIGTERM and the port checked free before the next.
# Medians over RUNS runs and their ratio.
#
#   benches/run-publish.sh
#   RUNS=10 PODMAN_FLAGS="--ulimit nproc=1024:1024" benches/run-publish.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
runs=${RUNS:-10}
kiln=${KILN:-$repo/target/release/kiln}
podman_flags=${PODMAN_FLAGS:-}
tag=localhost/kiln-run-bench:latest
for tool in podman skopeo python3 slirp4netns; do
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
python3 - "$runs" "$kiln" "$work/root" "$tag" "$podman_flags" <<'PY'
import os, signal, socket, statistics, subprocess, sys, time
runs, kiln, root, tag, pflags = int(sys.argv[1]), *sys.argv[2:]
# httpd in the background and a shell that ends on SIGTERM (PID 1 without a handler
# ignores it; podman's --init needs catatonit, which Debian's podman lacks).
httpd = ["sh", "-c", "trap 'exit 0' TERM; mkdir -p /tmp/w && echo hi > /tmp/w/index.html && httpd -p 80 -h /tmp/w; while :; do sleep 0.1; done"]

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

def first_byte(port, deadline):
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
                c.sendall(b"GET / HTTP/1.0\r\n\r\n")
                if c.recv(1):
                    return True
        except OSError:
            pass
        time.sleep(0.002)
    return False

def one(argv_of):
    port = free_port()
    t0 = time.monotonic()
    p = subprocess.Popen(argv_of(port), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ok = first_byte(port, t0 + 60)
    t = time.monotonic() - t0
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=60)
    with socket.socket() as s:  # the port is free again
        s.bind(("127.0.0.1", port))
    if not ok:
        sys.exit(f"no answer on port {port}: {argv_of(port)}")
    return t

kiln_argv = lambda port: [kiln, "--root", root, "run", "--rm", "-p", f"127.0.0.1:{port}:80", "busybox", *httpd]
podman_argv = lambda port: ["podman", "run", "--rm", *pflags.split(), "-p", f"127.0.0.1:{port}:80", tag, *httpd]
res = {}
for name, argv in [("kiln", kiln_argv), ("podman", podman_argv)]:
    one(argv)  # warm-up
    res[name] = [one(argv) for _ in range(runs)]
k, p = statistics.median(res["kiln"]), statistics.median(res["podman"])
print(f"median start-to-first-byte over {runs} runs: kiln {k*1000:.1f} ms (min {min(res['kiln'])*1000:.1f}), "
      f"podman {p*1000:.1f} ms (min {min(res['podman'])*1000:.1f}); podman/kiln = {p/k:.2f}x")
PY
