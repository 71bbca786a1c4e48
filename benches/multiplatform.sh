#!/usr/bin/env bash
# Multi-platform benchmark: a cross-"compiling" Dockerfile (a native
# `FROM --platform=$BUILDPLATFORM` stage doing the heavy work once for every
# target, then a per-target stage with a small RUN under QEMU), built cold
# for linux/amd64,linux/arm64 against the two single-platform builds, in
# the same run. Also the same work written without $BUILDPLATFORM (every
# RUN emulated on arm64), to show what the native stage saves.
# With NEWBK=1, BuildKit 0.25 (../shared/peers/newbk.sh, which must be
# running) builds the same Dockerfile for both platforms too.
#
# Needs: root, qemu-user-static registered for aarch64 with the F flag, the
# arm64 busybox-static .deb under target/test-fixtures (scripts/test does
# all three).
#   benches/multiplatform.sh            RUNS=3 by default
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
work=${BENCH_WORK:-/tmp/kiln-bench-multiplatform}
RUNS=${RUNS:-3}
rm -rf "$work" && mkdir -p "$work/ctx" "$work/emulated"

(cd "$repo" && cargo build --release --quiet && \
  cargo run --release --quiet --example make-busybox-image -- --multiarch "$work/busybox.tar")
kiln=$repo/target/release/kiln

# ~2 s of shell work natively (a compiler's stand-in), ~10x that under QEMU.
work_loop='i=0; while [ $i -lt 400000 ]; do i=$((i+1)); done'
cat >"$work/ctx/Dockerfile" <<EOF
ARG BASE=busybox
FROM --platform=\$BUILDPLATFORM \$BASE AS build
RUN $work_loop; mkdir /out && for a in amd64 arm64; do echo "app for \$a" > /out/\$a; done
FROM \$BASE
ARG TARGETARCH
COPY --from=build /out/\$TARGETARCH /app
RUN cat /app > /app.checked
EOF
cat >"$work/emulated/Dockerfile" <<EOF
ARG BASE=busybox
FROM \$BASE AS build
ARG TARGETARCH
RUN $work_loop; mkdir /out && echo "app for \$TARGETARCH" > /out/app
FROM \$BASE
COPY --from=build /out/app /app
RUN cat /app > /app.checked
EOF

# cold NAME CTX PLATFORMS: seconds of a build in a fresh store.
cold() {
  local root=$work/root-$1
  rm -rf "$root"
  "$kiln" --root "$root" load -q -i "$work/busybox.tar" >/dev/null
  local t0 t1
  t0=$(date +%s.%N)
  "$kiln" --root "$root" build -q --platform "$3" "$2" >/dev/null
  t1=$(date +%s.%N)
  echo "$t1 - $t0" | bc
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

declare -A med
for case in "two:ctx:linux/amd64,linux/arm64" "amd64:ctx:linux/amd64" "arm64:ctx:linux/arm64" \
  "two-emulated:emulated:linux/amd64,linux/arm64"; do
  IFS=: read -r name ctx platforms <<<"$case"
  med[$name]=$(for _ in $(seq "$RUNS"); do cold "$name" "$work/$ctx" "$platforms"; done | median)
  printf '%-22s %6.2f s  (median of %s cold builds)\n' "kiln $name" "${med[$name]}" "$RUNS"
done
printf 'two-platform / (amd64 + arm64):   %.2f\n' "$(echo "${med[two]} / (${med[amd64]} + ${med[arm64]})" | bc -l)"
printf 'two-platform / (2 x amd64):       %.2f\n' "$(echo "${med[two]} / (2 * ${med[amd64]})" | bc -l)"
printf 'emulated-style / native-stage:     %.2f\n' "$(echo "${med[two-emulated]} / ${med[two]}" | bc -l)"

if [ "${NEWBK:-0}" = 1 ]; then
  nb=$repo/../shared/peers/newbk.sh
  # Both platforms of the base in its image store, as busybox-multi.
  ctrd=/run/peers/docker-new-exec/containerd/containerd.sock
  /opt/buildkit-new/bin/ctr -a "$ctrd" -n moby images import --all-platforms \
    --index-name docker.io/library/busybox-multi:latest "$work/busybox.tar" >/dev/null
  for ctx in ctx emulated; do
    ts=()
    for _ in $(seq "$RUNS"); do
      "$nb" buildx prune -af >/dev/null 2>&1 || true
      t0=$(date +%s.%N)
      "$nb" build -q --build-arg BASE=busybox-multi --platform linux/amd64,linux/arm64 \
        -o "type=oci,dest=$work/bk.tar" "$work/$ctx" >/dev/null
      t1=$(date +%s.%N)
      ts+=("$(echo "$t1 - $t0" | bc)")
    done
    printf '%-22s %6.2f s  (median of %s cold builds)\n' "buildkit two ($ctx)" \
      "$(printf '%s\n' "${ts[@]}" | median)" "$RUNS"
  done
fi
