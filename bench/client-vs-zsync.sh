#!/usr/bin/env bash
# Rebuild benchmark: slicesync against zsync 0.6.2 and casync, all served by the same nginx on
# 127.0.0.1, and rsync 3 (its own daemon on 127.0.0.1, the old file as the basis) for reference.
#
#   bash bench/client-vs-zsync.sh [RUNS]          (default 5 runs per tool and case)
#   TOOLS="zsync slicesync" bash bench/client-vs-zsync.sh 5     (only these tools)
#
# Cases, 256 MiB each: (a) 10 scattered 100-byte in-place edits, (b) 10 insertions and 10 deletions of
# 1-1000 bytes, (c) 8 MiB appended, (d) unrelated content; plus (t) a real pair of consecutive releases,
# the uncompressed sdists of botocore 1.35.0 and 1.35.1 from PyPI (about 110 MB each), and (z) the same
# pair compressed as published (.tar.gz: nothing reusable).
# Bytes on the wire and requests are counted by nginx ($bytes_sent, headers included), signature,
# control file or chunk index included; for rsync, its own --stats (bytes sent plus received).
# Times are wall-clock medians; RSS is the client's peak. Two times per tool: raw (the tool's own run)
# and durable (until its output is on disk: the run plus `sync -d` of the output). slicesync fsyncs
# before it renames, so its two are nearly equal; zsync, casync and rsync never fsync.
# Needs: nginx-light, zsync, casync, rsync, time, python3, pip (Debian/PyPI; installed when missing).
set -euo pipefail
runs=${1:-5}
tools=${TOOLS:-zsync slicesync casync rsync}
here=$(cd "$(dirname "$0")/.." && pwd)
work=${BENCH_WORK:-$here/bench/work}
mkdir -p "$work"
for package in zsync casync rsync nginx-light time; do
  dpkg -s "$package" >/dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$package" >/dev/null || true
done
for tool in zsync zsyncmake $tools nginx python3; do
  [ "$tool" = slicesync ] && continue
  command -v "$tool" >/dev/null || [ -x "/usr/sbin/$tool" ] || { echo "missing: $tool" >&2; exit 1; }
done

source "$here/bench/lib/build.sh"
build_release shash slicesync

# ---- corpora -------------------------------------------------------------------------------------
source "$here/bench/lib/corpora.sh"
make_corpora "$work"

# ---- nginx ---------------------------------------------------------------------------------------
source "$here/bench/lib/nginx.sh"
start_nginx "$work/nginx" "$work/pub"
source "$here/bench/lib/rsyncd.sh"
start_rsyncd "$work" "$work/pub"
trap 'kill "$(cat "$work/nginx/nginx.pid")" 2>/dev/null || true; kill "$(cat "$work/rsyncd.pid")" 2>/dev/null || true' EXIT
url="http://127.0.0.1:$port"

# ---- signatures ----------------------------------------------------------------------------------
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
declare -A sign_zs sign_ss sign_ca
for c in a b c d t z; do
  t0=$(date +%s.%N); zsyncmake -Z -u "$url/$c/new.bin" -o "$work/pub/$c/new.bin.zsync" "$work/pub/$c/new.bin" 2>/dev/null; t1=$(date +%s.%N)
  "$shash" -q --force "$work/pub/$c/new.bin"; t2=$(date +%s.%N)
  rm -rf "$work/pub/$c/store" "$work/pub/$c/new.caibx"
  if [[ " $tools " == *" casync "* ]]; then
    casync make --store="$work/pub/$c/store" "$work/pub/$c/new.caibx" "$work/pub/$c/new.bin" >/dev/null
  fi
  t3=$(date +%s.%N)
  sign_zs[$c]=$(echo "$t1 - $t0" | bc); sign_ss[$c]=$(echo "$t2 - $t1" | bc); sign_ca[$c]=$(echo "$t3 - $t2" | bc)
done

# ---- runs ----------------------------------------------------------------------------------------
client="$work/client"
measure() { # tool case -> appends "seconds rss_kib wire_bytes requests durable_seconds" to $work/results/tool.case
  local tool=$1 c=$2
  rm -rf "$client"; mkdir -p "$client"; cd "$client"
  : >"$work/nginx/access.log"
  sync # earlier runs' writeback must not be charged to this one
  local rsync_wire=""
  local start; start=$(date +%s.%N)
  if [ "$tool" = zsync ]; then
    /usr/bin/time -f "%e %M" -o "$work/.time" zsync -q -i "$work/old/$c.bin" -o "$client/out.bin" "$url/$c/new.bin.zsync" >/dev/null 2>&1
  elif [ "$tool" = casync ]; then
    /usr/bin/time -f "%e %M" -o "$work/.time" casync extract --store="$url/$c/store" --seed="$work/old/$c.bin" "$url/$c/new.caibx" "$client/out.bin" >/dev/null 2>&1
  elif [ "$tool" = rsync ]; then
    # rsync updates a copy of the old version (its basis); the copy is not timed.
    cp "$work/old/$c.bin" "$client/out.bin"
    /usr/bin/time -f "%e %M" -o "$work/.time" rsync --stats --no-whole-file "rsync://127.0.0.1:$rport/pub/$c/new.bin" "$client/out.bin" >"$work/.rsync" 2>&1
    rsync_wire=$(awk -F': ' '/^Total bytes (sent|received)/ {gsub(/,/, "", $2); s += $2} END {print s + 0}' "$work/.rsync")
  else
    /usr/bin/time -f "%e %M" -o "$work/.time" "$slicesync" -q "$url/$c/new.bin" --alike "$work/old/$c.bin" -o "$client/out.bin" >/dev/null
  fi
  sync -d "$client/out.bin"
  local durable; durable=$(echo "$(date +%s.%N) - $start" | bc)
  cmp -s "$client/out.bin" "$work/pub/$c/new.bin" || { echo "$tool $c: WRONG OUTPUT" >&2; exit 1; }
  sleep 0.2 # let nginx write its log
  read -r seconds rss <"$work/.time"
  if [ -n "$rsync_wire" ]; then
    echo "$seconds $rss $rsync_wire 1 $durable" >>"$work/results/$tool.$c"
  else
    echo "$seconds $rss $(awk '{s+=$1} END {print s+0}' "$work/nginx/access.log") $(wc -l <"$work/nginx/access.log") $durable" >>"$work/results/$tool.$c"
  fi
  cd "$work"
}
rm -rf "$work/results"; mkdir -p "$work/results"
for ((i = 0; i < runs; i++)); do
  for c in a b c d t z; do for tool in $tools; do measure "$tool" "$c"; done; done
done

# ---- table ---------------------------------------------------------------------------------------
col() { cut -d' ' -f"$2" "$work/results/$1" | median; }
printf '\nRebuild, served by nginx on 127.0.0.1 (median of %d runs; 2 cores; release builds)\n\n' "$runs"
printf '| case | tool | bytes on the wire | requests | raw s | durable s | MB/s (durable) | peak RSS MiB | sign s (MB/s) | wire vs zsync | durable time vs zsync |\n'
printf '|---|---|---|---|---|---|---|---|---|---|---|\n'
declare -A names=([a]="a: 10 edits" [b]="b: 10 ins + 10 del" [c]="c: 8 MiB appended" [d]="d: unrelated" [t]="t: botocore 1.35.0→1.35.1" [z]="z: the same, .tar.gz")
for c in a b c d t z; do
  size=$(stat -c %s "$work/pub/$c/new.bin")
  zw=$(col zsync.$c 3); zd=$(col zsync.$c 5)
  for tool in $tools; do
    w=$(col $tool.$c 3); r=$(col $tool.$c 4); t=$(col $tool.$c 1); m=$(col $tool.$c 2); d=$(col $tool.$c 5)
    case $tool in zsync) s=${sign_zs[$c]} ;; slicesync) s=${sign_ss[$c]} ;; casync) s=${sign_ca[$c]} ;; rsync) s=0 ;; esac
    awk -v n="${names[$c]}" -v tool="$tool" -v w="$w" -v r="$r" -v t="$t" -v d="$d" -v m="$m" -v s="$s" -v size="$size" -v zw="$zw" -v zd="$zd" \
      'BEGIN {sign = s > 0 ? sprintf("%.2f (%.0f)", s, size / s / 1e6) : "none needed"; printf "| %s | %s | %d | %d | %.2f | %.2f | %.0f | %.1f | %s | %.3f | %.2f× faster |\n", n, tool, w, r, t, d, size / d / 1e6, m / 1024, sign, w / zw, zd / d}'
  done
done
