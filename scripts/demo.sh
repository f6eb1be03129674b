#!/usr/bin/env bash
# The main job on bundled data: publish a tree's signatures with shash, change a file, see exactly
# which slices changed, and re-sign only what changed.
#
#   bash scripts/demo.sh
#
# Works in a temporary directory; the repository is left untouched.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/slicesync-demo.XXXXXX)
trap 'rm -rf "$work"' EXIT

echo "== building shash (release)"
(cd "$here" && swift build -c release --product shash 2>&1 | tail -1)
shash="$here/.build/release/shash"

echo "== a published tree: the bundled test data plus a generated 64 MiB disk image"
mkdir -p "$work/pub/images"
cp "$here"/testdata/testfile.txt "$here"/testdata/example.bin "$work/pub/"
(openssl enc -aes-128-ctr -pass pass:demo -nosalt -pbkdf2 </dev/zero 2>/dev/null || true) | head -c $((64 << 20)) >"$work/pub/images/disk.img"
touch -d '1 hour ago' "$work"/pub/*.* "$work/pub/images/disk.img"
find "$work/pub" -type f | sed "s|$work/||" | sort

echo
echo "== shash pub   (format 2, one signature per file under pub/.slicesync/)"
"$shash" "$work/pub"
find "$work/pub/.slicesync" -type f -printf '%P  %s bytes\n' | sort

echo
echo "== the original format 1 signature of testfile.txt is byte-identical to the bundled one"
mkdir -p "$work/v1" && cp "$here/testdata/testfile.txt" "$work/v1/"
"$shash" -q --format 1 --slice 10 "$work/v1/testfile.txt"
cmp "$work/v1/.slicesync/testfile.txt.slicesync" "$here/testdata/expected/testfile.txt.v1.slicesync" && echo "identical"

echo
echo "== change 100 bytes in the middle of disk.img, then verify it against its signature"
printf '%100s' "edited" | dd of="$work/pub/images/disk.img" bs=1 seek=$((40 << 20)) conv=notrunc status=none
touch -d '30 minutes ago' "$work/pub/images/disk.img"
"$shash" --verify "$work/pub/images/disk.img" 2>&1 || echo "(exit status $?: the file differs from its signature)"

echo
echo "== shash pub again: only the changed file is hashed"
"$shash" "$work/pub"
"$shash" --verify "$work/pub/images/disk.img" 2>&1
