#!/usr/bin/env bash
# Publishing a new version to S3: slicesync push (server-side stitching) against aws s3 cp, side by side.
#
#   bash bench/push-vs-aws.sh [RUNS]     (default 3; medians; needs about 14 GiB in BENCH_WORK)
#
# The endpoint is moto's S3 server on 127.0.0.1 (in memory; it keeps metadata, as S3 does); a counting
# proxy between the client and the endpoint measures the bytes each tool sends. Before each run the
# old version (1 GiB of random data) is published again with slicesync push, with its signature.
# Scenarios: (a) 20 scattered 100-byte edits; (b) the same plus 5 insertions of 1 to 8 KiB.
# Then peak RSS of pushing a 4 GiB image with 20 scattered edits to localbucket (on disk).
set -euo pipefail
runs=${1:-3}
here=$(cd "$(dirname "$0")/.." && pwd)
work=${BENCH_WORK:-$here/bench/work}/push
mkdir -p "$work"
source "$here/bench/lib/build.sh"
build_release slicesync
measure="python3 $here/bench/lib/measure.py"
servers="$here/Tests/EndToEndTests/Servers"
command -v aws >/dev/null || python3 -m pip install -q awscli

make_versions() {  # SIZE_MIB PREFIX: PREFIX.v1, PREFIX.a (20 edits), PREFIX.b (20 edits, 5 insertions)
  [ -f "$2.b" ] && return
  python3 - "$1" "$2" <<'PY'
import random, sys
size, prefix = int(sys.argv[1]) << 20, sys.argv[2]
rng = random.Random(2030)
with open(prefix + ".v1", "wb") as f:
    for _ in range(size >> 24):
        f.write(rng.randbytes(16 << 20))
def edited(insertions):
    data = bytearray(open(prefix + ".v1", "rb").read())
    for k in range(20):
        at = (k + 1) * len(data) // 22 + rng.randrange(1 << 20)
        data[at:at + 100] = rng.randbytes(100)
    for k in range(insertions):
        at = rng.randrange(len(data))
        data[at:at] = rng.randbytes(rng.randrange(1024, 8192))
    return data
with open(prefix + ".a", "wb") as f:
    f.write(edited(0))
with open(prefix + ".b", "wb") as f:
    f.write(edited(5))
PY
}
make_versions 1024 "$work/img"

pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT
start_endpoint() {  # KIND DATA -> $endpoint_port
  python3 "$servers/s3endpoint.py" "$1" "$2" bench > "$work/endpoint.port" 2>/dev/null &
  pids+=($!)
  for _ in $(seq 100); do [ -s "$work/endpoint.port" ] && break; sleep 0.2; done
  endpoint_port=$(cat "$work/endpoint.port")
}
start_endpoint moto "$work/moto-unused"
python3 "$here/bench/lib/countproxy.py" "$endpoint_port" "$work/totals" > "$work/proxy.port" &
pids+=($!)
for _ in $(seq 50); do [ -s "$work/proxy.port" ] && break; sleep 0.1; done
proxy_port=$(cat "$work/proxy.port")

export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench AWS_REGION=us-east-1
export AWS_CONFIG_FILE=/nonexistent AWS_SHARED_CREDENTIALS_FILE=/nonexistent XDG_CACHE_HOME="$work/cache"
direct="http://127.0.0.1:$endpoint_port"
proxied="http://127.0.0.1:$proxy_port"
sent() { sleep 0.6; cut -d' ' -f1 "$work/totals"; }

median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
echo "scenario tool run bytes_sent seconds peak_rss_kib" > "$work/results"
for scenario in a b; do
  for run in $(seq "$runs"); do
    for tool in slicesync aws; do
      # The old version, published with its signature (not counted).
      AWS_ENDPOINT_URL=$direct "$slicesync" push -q "$work/img.v1" s3://bench/img.bin
      before=$(sent)
      if [ "$tool" = slicesync ]; then
        AWS_ENDPOINT_URL=$proxied $measure "$work/m" -- "$slicesync" push -q "$work/img.$scenario" s3://bench/img.bin
      else
        AWS_ENDPOINT_URL=$proxied $measure "$work/m" -- aws s3 cp --only-show-errors "$work/img.$scenario" \
          s3://bench/img.bin
      fi
      after=$(sent)
      read -r seconds rss _ < "$work/m"
      echo "$scenario $tool $run $((after - before)) $seconds $rss" >> "$work/results"
    done
  done
done

size=$(stat -c %s "$work/img.a")
printf "\n%-42s %14s %8s %9s\n" "1 GiB image, new version pushed" "bytes sent" "of file" "seconds"
for scenario in a b; do
  label=$([ $scenario = a ] && echo "20 scattered edits" || echo "20 edits + 5 insertions")
  for tool in slicesync aws; do
    bytes=$(awk -v s=$scenario -v t=$tool '$1 == s && $2 == t {print $4}' "$work/results" | median)
    secs=$(awk -v s=$scenario -v t=$tool '$1 == s && $2 == t {print $5}' "$work/results" | median)
    name=$([ $tool = aws ] && echo "aws s3 cp" || echo "slicesync push")
    printf "%-42s %14.0f %7.1f%% %9.2f\n" "$label: $name" "$bytes" "$(echo "100 * $bytes / $size" | bc -l)" "$secs"
  done
done

# Peak RSS on a 4 GiB image (localbucket on disk: moto would hold 12 GiB in memory).
make_versions 4096 "$work/big"
rm -rf "$work/lb"
cleanup
pids=()
rm -f "$work/endpoint.port"
start_endpoint localbucket "$work/lb"
AWS_ENDPOINT_URL="http://127.0.0.1:$endpoint_port" "$slicesync" push -q "$work/big.v1" s3://bench/big.bin
AWS_ENDPOINT_URL="http://127.0.0.1:$endpoint_port" $measure "$work/m" -- "$slicesync" push --json \
  "$work/big.a" s3://bench/big.bin > "$work/big.json"
read -r seconds rss _ < "$work/m"
uploaded=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['uploaded_bytes'])" "$work/big.json")
printf "\n4 GiB image, 20 scattered edits (localbucket): uploaded %s bytes (%.1f%%), %.2f s, peak RSS %d MiB\n" \
  "$uploaded" "$(echo "100 * $uploaded / $(stat -c %s "$work/big.a")" | bc -l)" "$seconds" $((rss / 1024))
rm -rf "$work/lb"
