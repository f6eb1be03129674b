#!/usr/bin/env bash
# Mirroring a tree: slicesync URL/ (nginx on 127.0.0.1) against rsync -a --delete (its daemon), side by side.
#
#   bash bench/mirror-vs-rsync.sh [RUNS]     (default 3; medians; needs about 9 GiB in BENCH_WORK)
#
# Version 1 of a tree holds 10,000 files (9,900 of 1 KiB to 256 KiB and 100 of 1 to 64 MiB, about
# 2 GiB). Version 2: 20 files got scattered edits, 10 were renamed or moved, 5 deleted, 5 added. The
# client holds version 1, obtained with the tool itself (slicesync: a mirror of version 1, so it knows
# what it installed; rsync: a copy with the same times). Reports bytes on the wire, wall time, peak
# RSS, and an update with no change (requests and time).
set -euo pipefail
runs=${1:-3}
here=$(cd "$(dirname "$0")/.." && pwd)
work=${BENCH_WORK:-$here/bench/work}/mirror
mkdir -p "$work"
command -v rsync >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rsync >/dev/null
source "$here/bench/lib/build.sh"
build_release shash slicesync
measure="python3 $here/bench/lib/measure.py"

if [ ! -f "$work/pub/v2/.done" ]; then
  rm -rf "$work/pub"
  mkdir -p "$work/pub"
  python3 - "$work/pub" <<'PY'
import os, random, shutil, sys
root = sys.argv[1]
rng = random.Random(2028)
v1 = os.path.join(root, "v1")
names = ["src", "lib", "include", "docs", "tests", "assets", "data", "models", "build", "vendor"]
files = []
for i in range(10000):
    top = names[i % 10]
    sub = f"{top}/part{(i // 10) % 40:02d}"
    big = i % 100 == 0
    size = int(2 ** rng.uniform(20, 26)) if big else int(2 ** rng.uniform(10, 18))
    path = f"{sub}/{'shard' if big else 'file'}_{i:05d}.{'bin' if big else 'dat'}"
    files.append((path, size))
    full = os.path.join(v1, path)
    os.makedirs(os.path.dirname(full), exist_ok=True)
    with open(full, "wb") as f:
        f.write(rng.randbytes(size))
    os.utime(full, (1_700_000_000 + i, 1_700_000_000 + i))
v2 = os.path.join(root, "v2")
shutil.copytree(v1, v2, copy_function=shutil.copy2)
order = list(range(10000))
rng.shuffle(order)
edited, renamed, deleted = order[:20], order[20:30], order[30:35]
for k in edited:
    path, size = files[k]
    with open(os.path.join(v2, path), "r+b") as f:
        for _ in range(5):
            at = rng.randrange(max(1, size - 100))
            f.seek(at); f.write(rng.randbytes(min(100, size)))
    os.utime(os.path.join(v2, path), (1_800_000_000, 1_800_000_000))
for n, k in enumerate(renamed):
    path, _ = files[k]
    target = f"moved/renamed_{n}_{os.path.basename(path)}" if n % 2 else path.replace("file_", "renamed_")
    os.makedirs(os.path.dirname(os.path.join(v2, target)), exist_ok=True)
    os.rename(os.path.join(v2, path), os.path.join(v2, target))
for k in deleted:
    os.remove(os.path.join(v2, files[k][0]))
for n in range(5):
    full = os.path.join(v2, f"added/new_{n}.dat")
    os.makedirs(os.path.dirname(full), exist_ok=True)
    with open(full, "wb") as f:
        f.write(rng.randbytes(int(2 ** rng.uniform(10, 20))))
PY
  "$shash" -q "$work/pub/v1" "$work/pub/v2"
  touch "$work/pub/v2/.done"
fi
"$shash" -q "$work/pub/v1" "$work/pub/v2"

source "$here/bench/lib/nginx.sh"
start_nginx "$work/nginx" "$work/pub"
source "$here/bench/lib/rsyncd.sh"
start_rsyncd "$work" "$work/pub" ".slicesync/ .done"
trap 'kill "$(cat "$work/nginx/nginx.pid")" 2>/dev/null || true; kill "$(cat "$work/rsyncd.pid")" 2>/dev/null || true' EXIT
export XDG_CACHE_HOME=$work/cache
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
wire() { awk '{s+=$1} END {print s+0}' "$work/nginx/access.log"; }
rm -f "$work"/result.*
for ((i = 0; i < runs; i++)); do
  # slicesync: version 1 mirrored first, then the update.
  rm -rf "$work/dest"
  "$slicesync" -q "http://127.0.0.1:$port/v1/" -o "$work/dest"
  # The mirror of version 1 is named after it; the update is the same directory.
  sync; : >"$work/nginx/access.log"
  $measure "$work/.m" -- "$slicesync" -q --delete "http://127.0.0.1:$port/v2/" -o "$work/dest"
  sleep 0.2
  echo "$(cat "$work/.m") $(wire) $(wc -l <"$work/nginx/access.log")" >>"$work/result.slicesync"
  diff -rq -x .slicesync -x .slicesync-mirror -x .slicesync-mirror-manifest -x .done "$work/pub/v2" "$work/dest" >/dev/null \
    || { echo "slicesync: WRONG MIRROR" >&2; exit 1; }
  : >"$work/nginx/access.log"
  $measure "$work/.m" -- "$slicesync" -q --delete "http://127.0.0.1:$port/v2/" -o "$work/dest"
  sleep 0.2
  echo "$(cat "$work/.m") $(wire) $(wc -l <"$work/nginx/access.log")" >>"$work/result.noop"
  # rsync: version 1 copied with its times, then the update through the daemon.
  rm -rf "$work/dest"
  cp -a "$work/pub/v1" "$work/dest"
  rm -rf "$work/dest/.slicesync"
  sync
  $measure "$work/.m" -- rsync -a --delete --stats "rsync://127.0.0.1:$rport/pub/v2/" "$work/dest/" >"$work/rsync.out"
  # rsync never flushes what it wrote, slicesync does (each file before its rename): the durable
  # time adds a flush of the destination's file system.
  start=$(date +%s.%N); sync -f "$work/dest"
  flush=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN {print b - a}')
  bytes=$(awk -F': ' '/Total bytes sent/ {gsub(",", "", $2); s+=$2}
    /Total bytes received/ {gsub(",", "", $2); s+=$2} END {print s}' "$work/rsync.out")
  echo "$(cat "$work/.m") $bytes 1 $flush" >>"$work/result.rsync"
done
rm -rf "$work/dest"
col() { cut -d' ' -f"$2" "$work/result.$1" | median; }
printf '\nMirroring a 10,000-file tree (about 2 GiB; 20 edited, 10 renamed or moved, 5 deleted, 5 added files)'
printf ', 127.0.0.1 (median of %d runs; release build)\n\n' "$runs"
rb=$(col rsync 4)
rt=$(cut -d' ' -f1,6 "$work/result.rsync" | awk '{print $1 + $2}' | median)
printf '| tool | seconds (durable) | bytes on the wire | vs rsync | requests | peak RSS MiB | written MiB |\n'
printf '|---|---|---|---|---|---|---|\n'
for tool in slicesync rsync noop; do
  name=$([ "$tool" = noop ] && echo "slicesync, no change" \
    || { [ "$tool" = rsync ] && echo "rsync -a --delete (daemon)" || echo "slicesync URL/ --delete"; })
  t=$(printf '%.2f' "$(col "$tool" 1)")
  [ "$tool" = rsync ] && t=$(printf '%.2f raw, %.2f durable' "$(col rsync 1)" "$rt")
  awk -v n="$name" -v t="$t" -v m="$(col "$tool" 2)" -v w="$(col "$tool" 3)" -v b="$(col "$tool" 4)" \
    -v r="$(col "$tool" 5)" -v rb="$rb" \
    'BEGIN {printf "| %s | %s | %d | %.2f× | %d | %.1f | %.1f |\n", n, t, b, b / rb, r, m / 1024, w / 1048576}'
done
