#!/usr/bin/env bash
# Records BuildKit 0.25's provenance attestations for testdata/attest/ctx (see README.md).
# Needs the oracle: ../shared/peers/newbk.sh start (a registry on 127.0.0.1:5000).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
newbk=${NEWBK:-$here/../../../shared/peers/newbk.sh}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# Outside the git checkout: in one, buildx adds vcs metadata (and BuildKit then
# leaves the build args out) that kiln does not write.
cp -r "$here/ctx" "$tmp/ctx"
# min and max provenance; oci-artifact: min with the exporter's oci-artifact=true.
for mode in min max oci-artifact; do
  p=$mode; o=
  [ $mode = oci-artifact ] && { p=min; o=,oci-artifact=true; }
  bash "$newbk" build --provenance=mode=$p,version=v1 --build-arg GREETING=hi \
    -o "type=oci,dest=$tmp/$mode.tar,name=example.com/attest/app:1$o" "$tmp/ctx" >/dev/null 2>&1
  mkdir -p "$tmp/$mode" "$here/$mode"
  tar -xf "$tmp/$mode.tar" -C "$tmp/$mode"
  python3 - "$tmp/$mode" "$here/$mode" <<'PY'
import json, sys
src, dst = sys.argv[1], sys.argv[2]
def blob(d): return open(f"{src}/blobs/sha256/{d.split(':')[1]}", "rb").read()
def save(name, data): open(f"{dst}/{name}", "wb").write(data)
top = json.load(open(f"{src}/index.json"))
index = blob(top["manifests"][0]["digest"])
save("index.json", index)
att = [m for m in json.loads(index)["manifests"] if m["platform"]["os"] == "unknown"][0]
manifest = blob(att["digest"])
save("attestation-manifest.json", manifest)
m = json.loads(manifest)
save("attestation-config.json", blob(m["config"]["digest"]))
save("statement.json", blob(m["layers"][0]["digest"]))
PY
done
bash "$newbk" build --provenance=mode=max,version=v1 --build-arg GREETING=hi \
  --push -t 127.0.0.1:5000/attest-oracle:max "$tmp/ctx" >/dev/null 2>&1
bash "$newbk" buildx imagetools inspect 127.0.0.1:5000/attest-oracle:max \
  --format '{{json .Provenance}}' > "$here/imagetools-provenance-max.json"
