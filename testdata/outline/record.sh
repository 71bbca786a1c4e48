#!/usr/bin/env bash
# Records BuildKit's --call=outline output for each case (see README, "Dockerfile checks").
set -u
cd "$(dirname "$0")"
[ $# -gt 0 ] || set -- */
for c in "$@"; do
  c=${c%/}
  extra=()
  [ -f "$c/args" ] && mapfile -t extra < "$c/args"
  bash "${NEWBK:-../../../shared/peers/newbk.sh}" build --call=outline --progress=plain "${extra[@]}" "$c" > "$c/expected.txt" 2>/dev/null
  bash "${NEWBK:-../../../shared/peers/newbk.sh}" build --call=outline,format=json --progress=plain "${extra[@]}" "$c" > "$c/expected.json" 2>/dev/null
done
