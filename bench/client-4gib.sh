#!/usr/bin/env bash
# Memory and time of the client on a 4 GiB file, served by nginx on 127.0.0.1:
#   (e) 20 scattered 100-byte edits, the old version as the alike file;
#   (n) nothing local (a plain download, checked as it streams).
#
#   bash bench/client-4gib.sh [RUNS]      (default 3; medians; needs about 13 GiB in BENCH_WORK)
#
# Reports peak RSS (the target is 48 MiB for both), wall time, bytes and requests.
set -euo pipefail
runs=${1:-3}
here=$(cd "$(dirname "$0")/.." && pwd)
work=${BENCH_WORK:-$here/bench/work}/4gib
mkdir -p "$work/pub" "$work/client"
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light time >/dev/null
source "$here/bench/lib/build.sh"
build_release shash slicesync

if [ ! -f "$work/old.bin" ] || [ "$(stat -c %s "$work/old.bin")" -ne $((4 << 30)) ]; then
  (openssl enc -aes-128-ctr -pass pass:slicesync-4gib -nosalt -pbkdf2 </dev/zero 2>/dev/null || true) | head -c $((4 << 30)) >"$work/old.bin"
  rm -f "$work/pub/new.bin"
fi
if [ ! -f "$work/pub/new.bin" ]; then
  cp "$work/old.bin" "$work/pub/new.bin"
  python3 - "$work/pub/new.bin" <<'PY'
import random, sys
rng = random.Random(2026)
with open(sys.argv[1], "r+b") as f:
    for _ in range(20):
        f.seek(rng.randrange((4 << 30) - 100)); f.write(rng.randbytes(100))
PY
  touch -d '1 hour ago' "$work/pub/new.bin"
fi
"$shash" -q "$work/pub"

source "$here/bench/lib/nginx.sh"
start_nginx "$work/nginx" "$work/pub"
trap 'kill "$(cat "$work/nginx/nginx.pid")" 2>/dev/null || true' EXIT
url="http://127.0.0.1:$port/new.bin"

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
rm -f "$work"/result.*
for ((i = 0; i < runs; i++)); do
  for case in e n; do
    rm -f "$work/client/out.bin"; : >"$work/nginx/access.log"; sync
    alike=(); [ "$case" = e ] && alike=(--alike "$work/old.bin")
    /usr/bin/time -f "%e %M" -o "$work/.time" "$slicesync" -q "$url" "${alike[@]}" -o "$work/client/out.bin"
    cmp -s "$work/client/out.bin" "$work/pub/new.bin" || { echo "$case: WRONG OUTPUT" >&2; exit 1; }
    sleep 0.2
    echo "$(cat "$work/.time") $(awk '{s+=$1} END {print s+0}' "$work/nginx/access.log") $(wc -l <"$work/nginx/access.log")" >>"$work/result.$case"
  done
done
rm -f "$work/client/out.bin"
printf '\n4 GiB target, served by nginx on 127.0.0.1 (median of %d runs; release build)\n\n' "$runs"
printf '| case | seconds | peak RSS MiB | bytes on the wire | requests |\n|---|---|---|---|---|\n'
for case in e n; do
  name=$([ "$case" = e ] && echo "20 scattered 100-byte edits" || echo "nothing local")
  col() { cut -d' ' -f"$1" "$work/result.$case" | median; }
  awk -v n="$name" -v t="$(col 1)" -v m="$(col 2)" -v w="$(col 3)" -v r="$(col 4)" \
    'BEGIN {printf "| %s | %.2f | %.1f | %.0f | %d |\n", n, t, m / 1024, w, r}'
done
