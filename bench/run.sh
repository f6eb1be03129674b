#!/usr/bin/env bash
# The whole benchmark in one command: release builds, generated and real corpora, every tool side by
# side on this machine, medians and ratios. The README's tables come from this.
#
#   bash bench/run.sh [RUNS]      (default 3; the serving part always does 5 runs of 6 s per case)
#
# 1. signing: shash against zsyncmake (256 MiB and 1 GiB files)
# 2. rebuilding: slicesync against zsync, casync and rsync, served by nginx (rsync by its daemon) on
#    127.0.0.1: 256 MiB with scattered edits, insertions and deletions, an append, unrelated content,
#    and a real pair of consecutive releases (botocore 1.35.0 -> 1.35.1 sdists from PyPI, uncompressed)
# 3. serving: syncserver against nginx under wrk (ranges of 4 KiB and 64 KiB, 3 ranges, whole file)
# 4. in place: slicesync --inplace against zsync on a 4 GiB image (warm and cold cache, an insertion),
#    then kill -9 at 10 random moments of in-place updates
# Needs about 20 GiB in bench/work (BENCH_WORK overrides) and apt/PyPI access for missing tools.
set -euo pipefail
runs=${1:-3}
here=$(cd "$(dirname "$0")/.." && pwd)
echo "building release binaries..." >&2
(cd "$here" && for product in shash slicesync syncserver; do swift build -c release --static-swift-stdlib --product "$product" >/dev/null; done)
for package in wrk curl; do
  dpkg -s "$package" >/dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$package" >/dev/null || true
done
echo "== 1. signing"
bash "$here/bench/shash-vs-zsyncmake.sh" "$((runs > 5 ? runs : 5))"
echo
echo "== 2. rebuilding"
bash "$here/bench/client-vs-zsync.sh" "$runs"
echo
echo "== 3. serving"
SKIP_BUILD=1 bash "$here/bench/server-vs-nginx.sh" 5 6
echo
echo "== 4. in place"
bash "$here/bench/inplace.sh" "$runs"
bash "$here/bench/inplace-kills.sh" 10
