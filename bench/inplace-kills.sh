#!/usr/bin/env bash
# kill -9 at random moments of in-place updates of a 4 GiB image (nginx on 127.0.0.1): after each
# kill, the next run must end with the exact file. Half the updates are the scattered edits of
# bench/inplace.sh, half the insertion (whose apply phase rewrites the last GiB, so kills land in it).
#
#   bash bench/inplace-kills.sh [KILLS]      (default 10; reuses bench/inplace.sh's data)
set -euo pipefail
kills=${1:-10}
here=$(cd "$(dirname "$0")/.." && pwd)
work=${BENCH_WORK:-$here/bench/work}/inplace
[ -f "$work/pub/v3.bin" ] || { echo "run bench/inplace.sh first (it makes the data)" >&2; exit 1; }
source "$here/bench/lib/build.sh"
build_release slicesync
source "$here/bench/lib/nginx.sh"
start_nginx "$work/nginx" "$work/pub"
trap 'kill "$(cat "$work/nginx/nginx.pid")" 2>/dev/null || true' EXIT
export XDG_CACHE_HOME=$work/cache-kills
dest=$work/client/killed.bin
base="http://127.0.0.1:$port"
prepare() { # a fresh copy of version 1, got through slicesync so the cache knows it (as in the benchmark)
  rm -f "$dest" "$dest".slicesync.* "$work/client/.killed.bin.slicesync."*
  cp "$work/v1.bin" "$dest"
  sync  # the copy's own writeback is not the update's
  "$slicesync" -q "$base/v1.bin" -o "$dest"
}
# How long each update takes uncut: kills are spread evenly over that time, so they land in every
# phase (matching, downloading, gathering the journal, applying it).
declare -A duration
for version in v2.bin v3.bin; do
  prepare
  start=$(date +%s.%N)
  "$slicesync" -q --inplace "$base/$version" -o "$dest"
  duration[$version]=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN {print b - a}')
done
for ((k = 0; k < kills; k++)); do
  version=$([ $((k % 2)) = 0 ] && echo v2.bin || echo v3.bin)
  prepare
  delay=$(python3 -c "import random; print(round(random.uniform(0.01, 0.95 * ${duration[$version]}), 3))")
  "$slicesync" -q --inplace "$base/$version" -o "$dest" &
  pid=$!
  sleep "$delay"
  kill -9 "$pid" 2>/dev/null && state=killed || state="had finished"
  wait "$pid" 2>/dev/null || true
  journal=$([ -f "$dest.slicesync.journal" ] && echo "journal left" || echo "no journal")
  "$slicesync" -q "$base/$version" -o "$dest"
  if cmp -s "$dest" "$work/pub/$version"; then result=exact; else result=WRONG; fi
  printf 'kill %2d: %s %s after %5.3f of %5.3f s (%s); next run: %s\n' "$k" "$version" "$state" "$delay" \
    "${duration[$version]}" "$journal" "$result"
  [ "$result" = exact ] || exit 1
done
rm -f "$dest"
