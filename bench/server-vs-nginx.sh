#!/usr/bin/env bash
# Server benchmark: syncserver against nginx on 127.0.0.1, the same files, wrk with 16 connections.
#
#   bash bench/server-vs-nginx.sh [RUNS] [SECONDS]     (default 3 runs of 8 s per server and case)
#
# Cases: single 4 KiB range, single 64 KiB range, a 3-range request (multipart, 3 x 4 KiB), and the
# whole 64 MiB file. nginx runs as Debian ships it for static files (sendfile on, one worker per core).
# Servers and runs alternate so background noise falls on both. Reported: median requests/s and MB/s,
# the ratio syncserver/nginx, and syncserver's peak RSS over all runs (VmHWM), then again after 256
# connections at once.
# Needs: nginx-light, wrk (Debian packages; .ci/run installs them).
set -euo pipefail
runs=${1:-3}
seconds=${2:-8}
here=$(cd "$(dirname "$0")/.." && pwd)
work=${BENCH_WORK:-$here/bench/work}/server
mkdir -p "$work/pub" "$work/nginx/tmp"
for tool in wrk nginx python3; do
  command -v "$tool" >/dev/null || [ -x "/usr/sbin/$tool" ] || { echo "missing: $tool" >&2; exit 1; }
done
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)

echo "building release syncserver..." >&2
[ -n "${SKIP_BUILD:-}" ] || (cd "$here" && swift build -c release --static-swift-stdlib --product syncserver >/dev/null)
syncserver="$here/.build/release/syncserver"

file="$work/pub/file.bin"
if [ ! -f "$file" ] || [ "$(stat -c %s "$file")" -ne $((64 << 20)) ]; then
  head -c $((64 << 20)) /dev/urandom >"$file"
fi

port_nginx=$((20000 + RANDOM % 10000))
port_sync=$((port_nginx + 1))
user=""; [ "$(id -u)" = 0 ] && user="user root;"
cat >"$work/nginx/nginx.conf" <<CONF
$user
daemon off;
worker_processes $(nproc);
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on; tcp_nopush on;
  client_body_temp_path $work/nginx/tmp; proxy_temp_path $work/nginx/tmp; fastcgi_temp_path $work/nginx/tmp;
  uwsgi_temp_path $work/nginx/tmp; scgi_temp_path $work/nginx/tmp;
  types { application/octet-stream bin; }
  server { listen 127.0.0.1:$port_nginx; root $work/pub; }
}
CONF
"$nginx_bin" -c "$work/nginx/nginx.conf" &
nginx_pid=$!
"$syncserver" --root "$work/pub" --port "$port_sync" --no-signatures -q &
sync_pid=$!
cleanup() { kill "$nginx_pid" "$sync_pid" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT
for _ in $(seq 50); do
  curl -sf -o /dev/null "http://127.0.0.1:$port_nginx/file.bin" -r 0-0 && curl -sf -o /dev/null "http://127.0.0.1:$port_sync/file.bin" -r 0-0 && break
  sleep 0.1
done
cat /dev/null >"$work/results.tsv"

# case name | Range header ("" for the whole file)
cases=(
  "4 KiB range|bytes=1048576-1052671"
  "64 KiB range|bytes=2097152-2162687"
  "3 ranges x 4 KiB|bytes=0-4095,8388608-8392703,33554432-33558527"
  "whole 64 MiB file|"
)
for run in $(seq "$runs"); do
  for entry in "${cases[@]}"; do
    name=${entry%%|*}; range=${entry#*|}
    for server in nginx syncserver; do
      port=$port_nginx; [ "$server" = syncserver ] && port=$port_sync
      args=(-t2 -c16 -d"${seconds}s" --latency)
      [ -n "$range" ] && args+=(-H "Range: $range")
      out=$(wrk "${args[@]}" "http://127.0.0.1:$port/file.bin")
      rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
      transfer=$(echo "$out" | awk '/Transfer\/sec/ {print $2}')
      errors=$(echo "$out" | awk '/Non-2xx|Socket errors/ {print}' | tr '\n' ' ')
      [ -n "$errors" ] && echo "warning: $server $name: $errors" >&2
      printf '%s\t%s\t%s\t%s\n' "$name" "$server" "$rps" "$transfer" >>"$work/results.tsv"
      echo "run $run: $name, $server: $rps req/s, $transfer/s" >&2
    done
  done
done
rss_kib=$(awk '/VmHWM/ {print $2}' "/proc/$sync_pid/status")
# Memory under load: 256 connections at once, whole files (each holds a chunk of the body) and then
# 64 KiB ranges (each holds a whole reply), after the timed runs so they do not weigh on them.
wrk -t2 -c256 -d"${seconds}s" "http://127.0.0.1:$port_sync/file.bin" >/dev/null
wrk -t2 -c256 -d"${seconds}s" -H "Range: bytes=2097152-2162687" "http://127.0.0.1:$port_sync/file.bin" >/dev/null
rss256_kib=$(awk '/VmHWM/ {print $2}' "/proc/$sync_pid/status")

python3 - "$work/results.tsv" "$rss_kib" "$rss256_kib" <<'PY'
import statistics, sys
rows = [line.rstrip("\n").split("\t") for line in open(sys.argv[1]) if line.strip()]
def mbps(text):
    units = {"B": 1, "KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30}
    for unit in ("GB", "MB", "KB", "B"):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * units[unit] / 1e6
    return float(text) / 1e6
order = []
for name, *_ in rows:
    if name not in order:
        order.append(name)
print("| case | nginx req/s | syncserver req/s | nginx MB/s | syncserver MB/s | syncserver/nginx |")
print("|---|---|---|---|---|---|")
for name in order:
    med = {}
    for server in ("nginx", "syncserver"):
        values = [(float(r[2]), mbps(r[3])) for r in rows if r[0] == name and r[1] == server]
        med[server] = (statistics.median(v[0] for v in values), statistics.median(v[1] for v in values))
    key = 1 if name.startswith("whole") else 0
    ratio = med["syncserver"][key] / med["nginx"][key]
    print(f"| {name} | {med['nginx'][0]:,.0f} | {med['syncserver'][0]:,.0f} | {med['nginx'][1]:,.0f} | {med['syncserver'][1]:,.0f} | {ratio:.2f}x |")
print(f"\nsyncserver peak RSS over all runs: {int(sys.argv[2]) / 1024:.1f} MiB; "
      f"with 256 connections (whole files, then 64 KiB ranges): {int(sys.argv[3]) / 1024:.1f} MiB")
PY
