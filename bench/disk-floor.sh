#!/usr/bin/env bash
# The floor under every durable rebuild on this disk: a bare copy of a file and its fsync, no hashing,
# no network, written three ways (see bench/lib/diskfloor.c), alternated, each run after `sync`.
#
#   bash bench/disk-floor.sh [RUNS] [SOURCE]     (default 5 runs; SOURCE: a 256 MiB file of the corpora)
#
# slicesync's durable time on (a)-(c) cannot go below the buffered line's total plus its matching.
set -euo pipefail
runs=${1:-5}
here=$(cd "$(dirname "$0")/.." && pwd)
work=${BENCH_WORK:-$here/bench/work}
source_file=${2:-$work/old/a.bin}
if [ ! -f "$source_file" ]; then
  source "$here/bench/lib/corpora.sh"
  make_corpora "$work"
fi
mkdir -p "$work/floor"
cc -O2 -o "$work/floor/diskfloor" "$here/bench/lib/diskfloor.c" -lpthread
cat "$source_file" >/dev/null # the source comes from the page cache, as a local file does
out="$work/floor/out.bin"
for ((i = 0; i < runs; i++)); do
  for mode in "buffered 0" "direct 4" "early 32"; do
    rm -f "$out"; sync
    # shellcheck disable=SC2086
    "$work/floor/diskfloor" "$source_file" "$out" $mode
  done
done | sort >"$work/floor/runs.txt"
cat "$work/floor/runs.txt"
echo
# The median total of each way.
for mode in "buffered 0" "direct 4" "early 32"; do
  grep "^$mode:" "$work/floor/runs.txt" | sed 's/.*total \([0-9.]*\) s/\1/' | sort -n |
    awk -v m="$mode" '{a[NR] = $1} END {printf "%s: median total %.3f s over %d runs\n", m, (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2), NR}'
done
rm -f "$out"
