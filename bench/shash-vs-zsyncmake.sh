#!/usr/bin/env bash
# Signing benchmark: shash (release build) against zsyncmake on the same files, side by side in one run.
#
#   bench/shash-vs-zsyncmake.sh [RUNS]        (default 5 runs per tool and file)
#
# Prints, for a 256 MiB file read from the page cache, the median wall time, throughput and peak RSS
# of each tool and the throughput ratio to zsyncmake; then the peak RSS of shash on a 1 GiB file.
# Needs: zsync (apt-get install zsync), GNU time (apt-get install time).
set -euo pipefail
runs=${1:-5}
here=$(cd "$(dirname "$0")/.." && pwd)
work=${BENCH_WORK:-$here/bench/work}
mkdir -p "$work"

command -v zsyncmake >/dev/null || { echo "zsyncmake is missing: apt-get install zsync" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "GNU time is missing: apt-get install time" >&2; exit 1; }

echo "building release shash..." >&2
(cd "$here" && swift build -c release --static-swift-stdlib --product shash >/dev/null)
shash="$here/.build/release/shash"

make_file() { # path size_mib
  [ -f "$1" ] && [ "$(stat -c %s "$1")" -eq $(($2 * 1048576)) ] && return
  # Deterministic, incompressible content so every run hashes the same bytes.
  (openssl enc -aes-128-ctr -pass pass:slicesync-bench -nosalt -pbkdf2 </dev/zero 2>/dev/null || true) | head -c $(($2 * 1048576)) >"$1"
}

mkdir -p "$work/sign256" "$work/sign1g"
make_file "$work/sign256/file.bin" 256
make_file "$work/sign1g/file.bin" 1024
cat "$work/sign256/file.bin" >/dev/null # into the page cache

upfront() { # bytes of a format 2 signature's header plus coarse table: what a client downloads first
  python3 - "$1" <<'PY'
import sys
data = open(sys.argv[1], "rb").read(8192)
end = data.index(b"\n\n") + 2
fields = dict(line.split(": ", 1) for line in data[:end - 2].decode().split("\n"))
length, slice_size = int(fields["Length"]), int(fields["Slice"])
print(end + 12 * ((length + slice_size - 1) // slice_size))
PY
}

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

measure() { # label command... ; appends "seconds kib" lines to $work/$label
  local label=$1; shift
  /usr/bin/time -f "%e %M" -o "$work/.time" "$@" >/dev/null 2>&1
  cat "$work/.time" >>"$work/$label.samples"
}

rm -f "$work"/*.samples
for ((i = 0; i < runs; i++)); do
  # Alternate the tools so background load hits both alike.
  measure zsyncmake zsyncmake -u file.bin -o "$work/file.zsync" "$work/sign256/file.bin"
  # zsyncmake never flushes its output and shash does (its signatures are durable when it exits):
  # the durable figure adds `sync -d` of zsyncmake's output.
  start=$(date +%s.%N); sync -d "$work/file.zsync"
  awk -v a="$start" -v b="$(date +%s.%N)" -v t="$(tail -1 "$work/zsyncmake.samples")" \
    'BEGIN {split(t, f, " "); printf "%.3f %s\n", f[1] + b - a, f[2]}' >>"$work/zsyncmake-durable.samples"
  measure shash-v2 "$shash" -q --force "$work/sign256"
  measure shash-v2-sha256 "$shash" -q --force --no-cache --sha256 "$work/sign256"
  measure shash-v1 "$shash" -q --force --no-cache --format 1 "$work/sign256"
done
measure shash-1g "$shash" -q --force --no-cache "$work/sign1g"

size=$((256 * 1048576))
zs=$(cut -d' ' -f1 "$work/zsyncmake-durable.samples" | median)
printf '\nSigning a 256 MiB file from the page cache (median of %d runs; 2 cores)\n\n' "$runs"
printf '| tool | wall s | MB/s | peak RSS MiB | throughput vs zsyncmake (durable) |\n|---|---|---|---|---|\n'
for label in zsyncmake zsyncmake-durable shash-v2 shash-v2-sha256 shash-v1; do
  t=$(cut -d' ' -f1 "$work/$label.samples" | median)
  rss=$(cut -d' ' -f2 "$work/$label.samples" | median)
  awk -v l="$label" -v t="$t" -v r="$rss" -v s="$size" -v z="$zs" \
    'BEGIN {printf "| %s | %.2f | %.0f | %.1f | %.2f× |\n", l, t, s / t / 1e6, r / 1024, z / t}'
done
read -r t1g rss1g <"$work/shash-1g.samples"
printf '\nshash (format 2) on a 1 GiB file: %.2f s, peak RSS %.1f MiB\n' "$t1g" "$(awk -v r="$rss1g" 'BEGIN {print r / 1024}')"
"$shash" -q --force --format 1 "$work/sign256" && v1=$(stat -c %s "$work/sign256/.slicesync/file.bin.slicesync")
"$shash" -q --force "$work/sign256" && v2=$(stat -c %s "$work/sign256/.slicesync/file.bin.slicesync")
printf 'signature sizes: zsync %s bytes; slicesync format 2 %s bytes in all, of which a client fetches up front %s; format 1 %s bytes\n' \
  "$(stat -c %s "$work/file.zsync")" "$v2" "$(upfront "$work/sign256/.slicesync/file.bin.slicesync")" "$v1"
