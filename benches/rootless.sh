#!/usr/bin/env bash
# Cold builds of the peers' benches (../shared/peers/bench) three ways in one run,
# with the same kiln binary and the same context: as root; rootless, as an ordinary
# user with /etc/subuid and /etc/subgid ranges (the user tests/it/rootless.rs makes);
# and inside an unprivileged runc container with Docker's defaults (14 capabilities,
# no CAP_SYS_ADMIN, its seccomp profile), without and with a user namespace: the
# container's config is tests/it/container/harness.rs's (the `bench_bundle` tool
# there writes it), with the context and the base archives bound in read-only.
# Every build is `kiln build -q --no-cache --reproducible`; the script prints the
# median wall time of each way, its ratio to root, and whether the four image
# digests (containerimage.digest from --metadata-file) are equal.
#
#   benches/rootless.sh
#   RUNS=5 BENCHES="a-basic b-multistage" benches/rootless.sh
#   KILN=target/debug/kiln KEEP=1 benches/rootless.sh   # another kiln; keep the work dir
#
# Needs ../shared/peers/setup.sh's base archives ($PEERS_STATE/oci/busybox.oci.tar
# and debian.oci.tar; no registry: kiln loads them), runc, uidmap, setpriv, and root.
# The runs are interleaved (run 1 of every way, then run 2, ...) rather than
# hyperfine's all-runs-of-one-command-then-the-next, so load from other work on a
# shared machine falls on every way alike; medians of RUNS runs. A container's time
# includes runc's start and stop (tens of ms). Inside the container no namespace
# can be made, so kiln's `auto` isolation picks `chroot` there (announced).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
peers_dir=${PEERS_DIR:-$repo/../shared/peers}
state=${PEERS_STATE:-/tmp/peers}
work=${BENCH_WORK:-/tmp/kiln-rootless-bench}
RUNS=${RUNS:-3}
BENCHES=${BENCHES:-"a-basic b-multistage c-bigcontext d-debian"}
user=kiln-rootless-ranges
ways="root rootless runc runc-userns"

[ "$(id -u)" = 0 ] || { echo "$0: run as root (it makes a user and starts runc)" >&2; exit 2; }
for tool in runc newuidmap setpriv python3; do
  command -v "$tool" >/dev/null || { echo "$0: needs $tool" >&2; exit 2; }
done
for b in busybox debian; do
  [ -f "$state/oci/$b.oci.tar" ] || { echo "$0: no $state/oci/$b.oci.tar: run $peers_dir/setup.sh" >&2; exit 2; }
done

kiln_src=${KILN:-$repo/target/release/kiln}
[ "$kiln_src" != "$repo/target/release/kiln" ] || [ -x "$kiln_src" ] \
  || (cd "$repo" && cargo build --release --quiet --bin kiln)

# Fresh work dir, reachable by the rootless user and the container's root; removed
# at the end (about 2 GB with c-bigcontext) unless KEEP=1.
rm -rf "$work"
mkdir -p "$work"/{ctx,out,logs}
[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$work"' EXIT
chmod 755 "$work"
# The user may not reach the build's own binary (a checkout under /root): all ways
# run this copy.
kiln=$work/kiln
install -m 0755 "$kiln_src" "$kiln"

# The user, as tests/it/rootless.rs makes it (idempotent, serialised with the tests).
flock /tmp/kiln-rootless-useradd.lock sh -c "id -u $user >/dev/null 2>&1 || {
  useradd -M -d /nonexistent -s /bin/sh $user &&
  { grep -q '^$user:' /etc/subuid || usermod --add-subuids 600000-665535 --add-subgids 600000-665535 $user; }; }"
grep -q "^$user:" /etc/subuid || { echo "$0: $user has no /etc/subuid range" >&2; exit 2; }
home=$work/home
mkdir -p "$home"
chown "$user:" "$home"

for b in $BENCHES; do
  bash "$peers_dir/bench/make-context.sh" "$b" "$work/ctx/$b" >/dev/null
done
chmod -R a+rX "$work/ctx"

# Base images, loaded by each way's own kiln into its own store.
load_args="load -i /bases/busybox.oci.tar -t busybox:latest"
load_deb="load -i /bases/debian.oci.tar -t debian:bookworm"
host_load() { # CMD-PREFIX...
  "$@" ${load_args//\/bases/$state/oci} >/dev/null
  "$@" ${load_deb//\/bases/$state/oci} >/dev/null
}
host_load "$kiln" --root "$work/store-root"
as_user=(setpriv --reuid "$user" --regid "$user" --init-groups
         env -i "HOME=$home" PATH=/usr/sbin:/usr/bin:/sbin:/bin)
(cd "$home" && host_load "${as_user[@]}" "$kiln")

# The container bundles, from the test harness's configuration.
(cd "$repo" && cargo test --quiet --test it --no-run) >"$work/logs/cargo-test.log" 2>&1 \
  || { cat "$work/logs/cargo-test.log" >&2; exit 1; }
make_bundle() { # NAME USERNS
  (cd "$repo" && KILN_BENCH_BUNDLE=$work/$1 KILN_BENCH_USERNS=$2 KILN_BENCH_KILN=$kiln \
     KILN_BENCH_BINDS="$work/ctx=/ctx,$state/oci=/bases" \
     cargo test --quiet --test it -- --ignored --exact container::bench_bundle) \
    >"$work/logs/bundle-$1.log" 2>&1 || { cat "$work/logs/bundle-$1.log" >&2; exit 1; }
}
make_bundle runc 0
make_bundle runc-userns 1
seq=0
in_container() { # BUNDLE KILN-ARGS... : runs kiln ARGS in a fresh container
  local bundle=$work/$1; shift
  printf 'exec /usr/local/bin/kiln --root /store %s\n' "$*" >"$bundle/rootfs/job.sh"
  seq=$((seq + 1))
  runc --root "$bundle/state" run --bundle "$bundle" "kiln-bench-$$-$seq" </dev/null
}
for c in runc runc-userns; do
  in_container "$c" "$load_args" >/dev/null
  in_container "$c" "$load_deb" >/dev/null
done

# build WAY BENCH: one cold build; its stderr goes to the way's log.
build() {
  local way=$1 b=$2
  local args="build -q --no-cache --reproducible -t bench-$b"
  case $way in
    root) "$kiln" --root "$work/store-root" $args --metadata-file "$work/out/$way-$b.json" "$work/ctx/$b" ;;
    rootless) (cd "$home" && "${as_user[@]}" "$kiln" $args --metadata-file "$home/$b.json" "$work/ctx/$b") \
                && cp "$home/$b.json" "$work/out/$way-$b.json" ;;
    runc|runc-userns) in_container "$way" "$args --metadata-file /out/$b.json /ctx/$b" \
                && cp "$work/$way/rootfs/out/$b.json" "$work/out/$way-$b.json" ;;
  esac
}

now() { date +%s.%N; }
times=$work/times.tsv
: >"$times"
for b in $BENCHES; do
  for i in $(seq "$RUNS"); do
    for way in $ways; do
      t0=$(now)
      if build "$way" "$b" >/dev/null 2>>"$work/logs/$way-$b.log"; then
        printf '%s\t%s\t%s\n' "$b" "$way" "$(python3 -c "print($(now) - $t0)")" >>"$times"
        mv "$work/out/$way-$b.json" "$work/out/$way-$b-$i.json"
      else
        printf '%s\t%s\tFAIL\n' "$b" "$way" >>"$times"
        echo "$way $b failed: $(tail -3 "$work/logs/$way-$b.log")" >&2
      fi
    done
  done
done

echo "kiln build --no-cache --reproducible; median of $RUNS interleaved runs; $(nproc) cores; $("$kiln" --version 2>/dev/null || true)"
# Each way's store, to read an image's layers where digests differ.
python3 - "$times" "$work/out" "$RUNS" \
  "root=$work/store-root" "rootless=$home/.local/share/kiln" \
  "runc=$work/runc/rootfs/store" "runc-userns=$work/runc-userns/rootfs/store" <<'PY'
import json, os, statistics, sys, collections
times, out, nruns = sys.argv[1], sys.argv[2], int(sys.argv[3])
stores = dict(a.split("=", 1) for a in sys.argv[4:])
ways = list(stores)
runs = collections.OrderedDict()
for line in open(times):
    b, way, t = line.rstrip("\n").split("\t")
    runs.setdefault(b, {}).setdefault(way, []).append(t)

def med(ts):
    return None if "FAIL" in ts else statistics.median(float(t) for t in ts)

def digests(way, b):
    """containerimage.digest of each successful run of WAY on bench B."""
    ds = []
    for i in range(1, nruns + 1):
        p = os.path.join(out, "%s-%s-%d.json" % (way, b, i))
        if os.path.exists(p):
            ds.append(json.load(open(p))["containerimage.digest"])
    return ds

def blob(way, digest):
    alg, hex_ = digest.split(":")
    return json.load(open(os.path.join(stores[way], "blobs", alg, hex_)))

def layers(way, digest):
    """The layer digests of the image (the first non-attestation manifest of an index)."""
    m = blob(way, digest)
    if "manifests" in m:
        for d in m["manifests"]:
            if d.get("annotations", {}).get("vnd.docker.reference.type") != "attestation-manifest":
                m = blob(way, d["digest"]); break
    return [l["digest"] for l in m["layers"]]

print("%-14s %9s %16s %16s %16s  %s" % ("bench", *ways, "digests equal"))
notes = []
for b, r in runs.items():
    m = {w: med(r.get(w, ["FAIL"])) for w in ways}
    cells = []
    for w in ways:
        if m[w] is None: cells.append("FAIL")
        elif w == "root": cells.append("%.2f s" % m[w])
        else: cells.append("%.2f s (x%.2f)" % (m[w], m[w] / m["root"]))
    ds = {w: digests(w, b) for w in ways}
    last = {w: d[-1] for w, d in ds.items() if d}
    missing = [w for w in ways if w not in last]
    if len(set(ds["root"])) > 1:
        # Not reproducible by itself (e.g. a RUN writes random bytes): compare the
        # layers that are equal across root's own runs.
        stable = [i for i, l in enumerate(layers("root", ds["root"][0]))
                  if all(layers("root", d)[i] == l for d in ds["root"])]
        ref = layers("root", last["root"])
        same = all(len(layers(w, d)) == len(ref) and all(layers(w, d)[i] == ref[i] for i in stable)
                   for w, d in last.items())
        verdict = "n/a: root's own runs differ"
        notes.append("%s: not reproducible (root's %d runs gave %d digests); layers %s equal in every "
                     "way that built: %s; the others differ from run to run"
                     % (b, len(ds["root"]), len(set(ds["root"])), [i + 1 for i in stable],
                        "yes" if same else "NO"))
    else:
        same = not missing and len({d for w in ways for d in ds[w]}) == 1
        verdict = "yes" if same else "NO"
        if same:
            notes.append("%s: %s" % (b, last["root"]))
        else:
            for w in ways:
                notes.append("%s %-12s %s" % (b, w, " ".join(ds[w]) or "(no build)"))
    if missing:
        verdict += " (%s failed)" % ", ".join(missing)
    print("%-14s %9s %16s %16s %16s  %s" % (b, *cells, verdict))
print()
print("\n".join(notes))
PY
