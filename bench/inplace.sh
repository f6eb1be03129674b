#!/usr/bin/env bash
# In-place updates of a 4 GiB disk image against zsync 0.6.2, served by nginx on 127.0.0.1.
#
#   bash bench/inplace.sh [RUNS]      (default 3; medians; needs about 17 GiB in BENCH_WORK)
#
# Version 2 differs from version 1 by 20 rewritten 4 KiB blocks and 20 scattered 100-byte edits. The
# client holds version 1:
#   (w) obtained by an earlier slicesync run, so its slice digests are cached: slicesync --inplace;
#   (c) copied in by other means (cold cache): slicesync --inplace --no-cache;
#   (z) zsync -i v1 (raw, and durable: plus `sync -d` of its output, as slicesync fsyncs);
#   (i) version 3 inserts 4 KiB at 3 GiB, so the last GiB shifts: slicesync --inplace (warm).
# Reports wall time, peak RSS, bytes written to disk (/proc/PID/io write_bytes) and the speed-up.
set -euo pipefail
runs=${1:-3}
here=$(cd "$(dirname "$0")/.." && pwd)
work=${BENCH_WORK:-$here/bench/work}/inplace
mkdir -p "$work/pub" "$work/client"
command -v zsyncmake >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq zsync >/dev/null
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] \
  || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light >/dev/null
source "$here/bench/lib/build.sh"
build_release shash slicesync
measure="python3 $here/bench/lib/measure.py"

v1=$work/v1.bin
if [ ! -f "$v1" ] || [ "$(stat -c %s "$v1")" -ne $((4 << 30)) ]; then
  (openssl enc -aes-128-ctr -pass pass:slicesync-inplace -nosalt -pbkdf2 </dev/zero 2>/dev/null || true) \
    | head -c $((4 << 30)) >"$v1"
  rm -f "$work/pub/"*
fi
if [ ! -f "$work/pub/v3.bin" ]; then
  cp "$v1" "$work/pub/v1.bin"
  cp "$v1" "$work/pub/v2.bin"
  python3 - "$work/pub/v2.bin" <<'PY'
import random, sys
rng = random.Random(2027)
with open(sys.argv[1], "r+b") as f:
    for k in range(40):
        size = 4096 if k < 20 else 100
        at = rng.randrange((4 << 30) - size) // (4096 if k < 20 else 1) * (4096 if k < 20 else 1)
        f.seek(at); f.write(rng.randbytes(size))
PY
  { head -c $((3 << 30)) "$v1"; head -c 4096 /dev/urandom; tail -c $((1 << 30)) "$v1"; } >"$work/pub/v3.bin"
  touch -d '1 hour ago' "$work/pub/"*.bin
  (cd "$work/pub" && zsyncmake -u v2.bin -o v2.bin.zsync v2.bin)
fi
"$shash" -q "$work/pub"

source "$here/bench/lib/nginx.sh"
start_nginx "$work/nginx" "$work/pub"
trap 'kill "$(cat "$work/nginx/nginx.pid")" 2>/dev/null || true' EXIT
base="http://127.0.0.1:$port"
export XDG_CACHE_HOME=$work/cache

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
dest=$work/client/image.bin
fresh_copy() { rm -f "$dest" "$dest".slicesync.*; cp "$v1" "$dest"; sync; }
rm -f "$work"/result.*
run_slicesync() { # case url [options...]: one timed update of the image, checked against the published file
  local case=$1 url=$2; shift 2
  $measure "$work/.m" -- "$slicesync" -q --inplace "$@" "$base/$url" -o "$dest"
  cmp -s "$dest" "$work/pub/$url" || { echo "$case: WRONG OUTPUT" >&2; exit 1; }
  cat "$work/.m" >>"$work/result.$case"
}
for ((i = 0; i < runs; i++)); do
  # (w) the client got version 1 through slicesync: its digests are cached.
  fresh_copy
  "$slicesync" -q "$base/v1.bin" -o "$dest"
  run_slicesync w v2.bin
  # (c) cold: the same update without the cache.
  fresh_copy
  run_slicesync c v2.bin --no-cache
  # (z) zsync rebuilds a new copy from version 1; durable adds the flush of its output.
  rm -f "$work/client/zout.bin"*; sync
  (cd "$work/client" && $measure "$work/.m" -- zsync -q -i "$v1" -o zout.bin "$base/v2.bin.zsync")
  start=$(date +%s.%N); sync -d "$work/client/zout.bin"
  flush=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN {print b - a}')
  cmp -s "$work/client/zout.bin" "$work/pub/v2.bin" || { echo "z: WRONG OUTPUT" >&2; exit 1; }
  awk -v f="$flush" '{printf "%s %s %s %.3f\n", $1, $2, $3, $1 + f}' "$work/.m" >>"$work/result.z"
  rm -f "$work/client/zout.bin"*
  # (i) an insertion: everything after it moves.
  fresh_copy
  "$slicesync" -q "$base/v1.bin" -o "$dest"
  run_slicesync i v3.bin
done
rm -f "$dest"
col() { cut -d' ' -f"$2" "$work/result.$1" | median; }
zd=$(col z 4)
printf '\n4 GiB image, 20 rewritten 4 KiB blocks + 20 scattered 100-byte edits, nginx on 127.0.0.1'
printf ' (median of %d runs; release build)\n\n' "$runs"
printf '| case | seconds | vs zsync (durable %.2f s) | peak RSS MiB | written to disk MiB |\n' "$zd"
printf '|---|---|---|---|---|\n'
row() {
  awk -v n="$1" -v t="$(col "$2" 1)" -v m="$(col "$2" 2)" -v w="$(col "$2" 3)" -v z="$zd" \
    'BEGIN {printf "| %s | %.2f | %.1fx | %.1f | %.1f |\n", n, t, z / t, m / 1024, w / 1048576}'
}
row "slicesync --inplace, warm cache" w
row "slicesync --inplace, cold cache" c
awk -v t="$(col z 1)" -v d="$zd" -v m="$(col z 2)" -v w="$(col z 3)" \
  'BEGIN {printf "| zsync 0.6.2 (raw %.2f s) | %.2f | 1.0x | %.1f | %.1f |\n", t, d, m / 1024, w / 1048576}'
row "slicesync --inplace, 4 KiB inserted at 3 GiB (1 GiB shifts)" i
