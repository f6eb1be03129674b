#!/usr/bin/env bash
# zsync control files: slicesync and zsync 0.6.2 reading the same .zsync files, made by zsyncmake 0.6.2
# for the rebuild corpora (see bench/lib/corpora.sh), served by one nginx on 127.0.0.1; and
# `shash --zsync` against zsyncmake writing them (plus a check that zsync rebuilds from ours).
#
#   bash bench/zsync-files.sh [RUNS]        (default 5 runs per tool and case, tools alternated)
#
# Control files are made with `zsyncmake -Z -u new.bin` (relative URL, no look inside the .tar.gz), so
# both clients read exactly the same file. Bytes on the wire and requests are nginx's ($bytes_sent,
# headers included, control file included). Times are wall-clock medians; durable adds `sync -d` of
# the output (zsync never fsyncs; slicesync fsyncs before it renames). RSS is the client's peak.
# Needs: nginx-light, zsync, time, python3 (Debian; installed when missing).
set -euo pipefail
runs=${1:-5}
here=$(cd "$(dirname "$0")/.." && pwd)
work=${BENCH_WORK:-$here/bench/work}
mkdir -p "$work"
for package in zsync nginx-light time; do
  dpkg -s "$package" >/dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$package" >/dev/null || true
done
source "$here/bench/lib/build.sh"
build_release shash slicesync
source "$here/bench/lib/corpora.sh"
make_corpora "$work"
cases="a b c d t z"
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

# ---- writing: zsyncmake against shash --zsync, alternated ------------------------------------------
rm -rf "$work/zresults"; mkdir -p "$work/zresults"
# Wall-clock seconds from the shell's clock (time's %e has 10 ms steps, a third of the .tar.gz's run),
# peak RSS from time, and the durable time (the run plus `sync -d` of what it wrote: zsyncmake never
# fsyncs, shash fsyncs before it renames): "seconds rss_kib durable_seconds" appended to zresults/NAME.
timed() {
  local name=$1 outputs=$2 start end; shift 2
  sync
  start=$(date +%s.%N)
  /usr/bin/time -f "%M" -o "$work/.time" "$@" 2>/dev/null
  end=$(date +%s.%N)
  # shellcheck disable=SC2086 # several outputs, none with spaces
  sync -d $outputs
  echo "$(echo "$end - $start" | bc) $(cat "$work/.time") $(echo "$(date +%s.%N) - $start" | bc)" >>"$work/zresults/$name"
}
for ((i = 0; i < runs; i++)); do
  for c in $cases; do
    timed "zsyncmake.$c" "$work/pub/$c/new.bin.zsync" \
      zsyncmake -Z -u new.bin -o "$work/pub/$c/new.bin.zsync" "$work/pub/$c/new.bin"
    timed "shash.$c" "$work/pub/$c/.slicesync/new.bin.slicesync $work/pub/$c/.slicesync/new.bin.zsync" \
      "$shash" -q --force --zsync "$work/pub/$c/new.bin"
  done
done

# ---- nginx ---------------------------------------------------------------------------------------
source "$here/bench/lib/nginx.sh"
start_nginx "$work/nginx" "$work/pub"
trap 'kill "$(cat "$work/nginx/nginx.pid")" 2>/dev/null || true' EXIT
url="http://127.0.0.1:$port"

# zsync 0.6.2 must rebuild from the control files shash wrote (no seed: every block downloaded).
for c in $cases; do
  rm -rf "$work/client"; mkdir -p "$work/client"
  (cd "$work/client" && zsync -q -o out.bin "$url/$c/.slicesync/new.bin.zsync" >/dev/null 2>&1)
  cmp -s "$work/client/out.bin" "$work/pub/$c/new.bin" || { echo "zsync could not rebuild $c from shash's control file" >&2; exit 1; }
done

# ---- reading: the same zsyncmake control file ------------------------------------------------------
client="$work/client"
measure() { # tool case -> appends "seconds rss_kib wire_bytes requests durable_seconds"
  local tool=$1 c=$2
  rm -rf "$client"; mkdir -p "$client"; cd "$client"
  : >"$work/nginx/access.log"
  sync
  local start; start=$(date +%s.%N)
  if [ "$tool" = zsync ]; then
    /usr/bin/time -f "%e %M" -o "$work/.time" zsync -q -i "$work/old/$c.bin" -o "$client/out.bin" "$url/$c/new.bin.zsync" >/dev/null 2>&1
  else
    /usr/bin/time -f "%e %M" -o "$work/.time" "$slicesync" -q "$url/$c/new.bin.zsync" --alike "$work/old/$c.bin" -o "$client/out.bin" >/dev/null
  fi
  sync -d "$client/out.bin"
  local durable; durable=$(echo "$(date +%s.%N) - $start" | bc)
  cmp -s "$client/out.bin" "$work/pub/$c/new.bin" || { echo "$tool $c: WRONG OUTPUT" >&2; exit 1; }
  sleep 0.2
  read -r seconds rss <"$work/.time"
  echo "$seconds $rss $(awk '{s+=$1} END {print s+0}' "$work/nginx/access.log") $(wc -l <"$work/nginx/access.log") $durable" >>"$work/zresults/$tool.$c"
  cd "$work"
}
for ((i = 0; i < runs; i++)); do
  for c in $cases; do
    # Alternate which tool goes first.
    if ((i % 2 == 0)); then measure zsync "$c"; measure slicesync "$c"; else measure slicesync "$c"; measure zsync "$c"; fi
  done
done

# ---- tables --------------------------------------------------------------------------------------
col() { cut -d' ' -f"$2" "$work/zresults/$1" | median; }
declare -A names=([a]="a: 10 edits" [b]="b: 10 ins + 10 del" [c]="c: 8 MiB appended" [d]="d: unrelated" [t]="t: botocore 1.35.0→1.35.1" [z]="z: the same, .tar.gz")
printf '\nReading the same zsyncmake control file, served by nginx on 127.0.0.1 (median of %d runs; 2 cores; release build)\n\n' "$runs"
printf '| case | tool | bytes on the wire | requests | raw s | durable s | peak RSS MiB | wire vs zsync | durable time vs zsync |\n'
printf '|---|---|---|---|---|---|---|---|---|\n'
for c in $cases; do
  zw=$(col zsync.$c 3); zd=$(col zsync.$c 5)
  for tool in zsync slicesync; do
    awk -v n="${names[$c]}" -v tool="$tool" -v w="$(col $tool.$c 3)" -v r="$(col $tool.$c 4)" -v t="$(col $tool.$c 1)" \
      -v m="$(col $tool.$c 2)" -v d="$(col $tool.$c 5)" -v zw="$zw" -v zd="$zd" \
      'BEGIN {printf "| %s | %s | %d | %d | %.2f | %.2f | %.1f | %.3f | %.2f× faster |\n", n, tool, w, r, t, d, m / 1024, w / zw, zd / d}'
  done
done
printf '\nWriting control files: zsyncmake -Z against shash --zsync (which also writes the slicesync signature);'
printf ' durable adds `sync -d` of the files written\n\n'
printf '| case | size MB | zsyncmake raw s | zsyncmake durable s | shash --zsync raw s | shash durable s |'
printf ' speed-up raw | speed-up durable | zsyncmake RSS MiB | shash RSS MiB |\n|---|---|---|---|---|---|---|---|---|---|\n'
for c in $cases; do
  awk -v n="${names[$c]}" -v size="$(stat -c %s "$work/pub/$c/new.bin")" -v z="$(col zsyncmake.$c 1)" -v s="$(col shash.$c 1)" \
    -v zd="$(col zsyncmake.$c 3)" -v sd="$(col shash.$c 3)" -v zm="$(col zsyncmake.$c 2)" -v sm="$(col shash.$c 2)" \
    'BEGIN {printf "| %s | %.0f | %.3f | %.3f | %.3f | %.3f | %.2f× | %.2f× | %.1f | %.1f |\n", n, size / 1e6, z, zd, s, sd, z / s, zd / sd, zm / 1024, sm / 1024}'
done
