#!/usr/bin/env bash
# The main job on bundled data, end to end: publish a tree with shash, serve it over HTTP on
# 127.0.0.1, change a file on the server, and let slicesync update an old copy, downloading only what
# changed and proving the result bit-identical.
#
#   bash scripts/demo.sh
#
# Works in a temporary directory; the repository is left untouched. The server is syncserver; nginx,
# S3 or any other Range-capable server works the same way.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/slicesync-demo.XXXXXX)
server_pid=""
cleanup() { [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

bash "$here/scripts/setup.sh" build

# DEMO_CONFIGURATION=debug reuses the debug build (CI has just made one); release is the default.
configuration=${DEMO_CONFIGURATION:-release}
echo "== building shash, slicesync and syncserver ($configuration)"
# Release programs are built as `make install` builds them, with the Swift runtime linked in.
flags=(-c "$configuration")
[ "$configuration" = release ] && flags+=(--static-swift-stdlib)
(cd "$here" && for product in shash slicesync syncserver; do swift build "${flags[@]}" --product "$product" 2>&1 | tail -1; done)
bin=$(cd "$here" && swift build "${flags[@]}" --show-bin-path)
shash="$bin/shash"
slicesync="$bin/slicesync"
syncserver="$bin/syncserver"

echo
echo "== a published tree: the bundled test data plus a generated 64 MiB disk image"
mkdir -p "$work/pub/images" "$work/client"
cp "$here"/testdata/testfile.txt "$here"/testdata/example.bin "$work/pub/"
(openssl enc -aes-128-ctr -pass pass:demo -nosalt -pbkdf2 </dev/zero 2>/dev/null || true) | head -c $((64 << 20)) >"$work/pub/images/disk.img"
cp "$work/pub/images/disk.img" "$work/client/disk.img"   # the user's copy of version 1
touch -d '1 hour ago' "$work"/pub/*.* "$work/pub/images/disk.img"
find "$work/pub" -type f | sed "s|$work/||" | sort

echo
echo "== the original format 1 signature of testfile.txt is byte-identical to the bundled one"
mkdir -p "$work/v1" && cp "$here/testdata/testfile.txt" "$work/v1/"
"$shash" -q --format 1 --slice 10 "$work/v1/testfile.txt"
cmp "$work/v1/.slicesync/testfile.txt.slicesync" "$here/testdata/expected/testfile.txt.v1.slicesync" && echo "identical"

echo
echo "== version 2 on the server: 100 bytes changed in the middle, 1 MiB appended; shash signs the tree"
printf '%100s' "edited" | dd of="$work/pub/images/disk.img" bs=1 seek=$((40 << 20)) conv=notrunc status=none
(openssl enc -aes-128-ctr -pass pass:appended -nosalt -pbkdf2 </dev/zero 2>/dev/null || true) | head -c $((1 << 20)) >>"$work/pub/images/disk.img"
touch -d '30 minutes ago' "$work/pub/images/disk.img"
"$shash" "$work/pub"
find "$work/pub/.slicesync" -type f -printf '   %P  %s bytes\n' | sort

echo
echo "== serving the tree on 127.0.0.1 with syncserver"
"$syncserver" --root "$work/pub" --port 0 -q >"$work/serving" &
server_pid=$!
for _ in $(seq 100); do grep -q http "$work/serving" 2>/dev/null && break; sleep 0.1; done
url="$(grep -o 'http://[^ ]*' "$work/serving")images/disk.img"
echo "   $url"

echo
echo "== slicesync -n: what would an update cost?"
(cd "$work/client" && "$slicesync" -n "$url")

echo
echo "== slicesync: update the local copy"
(cd "$work/client" && "$slicesync" -v "$url" 2>&1 | grep -E 'slices found|updated')
cmp "$work/client/disk.img" "$work/pub/images/disk.img" && echo "   the local copy is now bit-identical to the server's"

echo
echo "== and again: nothing to do"
(cd "$work/client" && "$slicesync" --json "$url" | python3 -c 'import json,sys; r=json.load(sys.stdin); print("   outcome:", r["outcome"], "| requests:", r["requests"], "| bytes:", r["bytes_downloaded"])')

echo
echo "== slicesync --inplace: version 3 changes 4 KiB; only that is written into the local copy"
printf '%4096s' "version 3" | dd of="$work/pub/images/disk.img" bs=1 seek=$((10 << 20)) conv=notrunc status=none
touch -d '20 minutes ago' "$work/pub/images/disk.img"
"$shash" -q "$work/pub"
(cd "$work/client" && "$slicesync" --inplace --json "$url" | python3 -c 'import json,sys; r=json.load(sys.stdin); print("   update:", r["update"], "| slice digest cache:", r["cache"], "| bytes written:", r["bytes_written"])')
cmp "$work/client/disk.img" "$work/pub/images/disk.img" && echo "   bit-identical again"

echo
echo "== mirroring the whole tree: slicesync URL/ reads the tree's manifest and fetches every file"
base=$(grep -o 'http://[^ ]*' "$work/serving")
"$slicesync" -n "$base" -o "$work/mirror"
"$slicesync" "$base" -o "$work/mirror"
echo "   a rename and an edit on the server, then the mirror again (--delete removes the old name):"
mv "$work/pub/example.bin" "$work/pub/renamed.bin"
printf 'one more line\n' >>"$work/pub/testfile.txt"
# syncserver signs changed files once they settled, then rewrites the manifest: wait for it (a busy
# machine may take longer than the settle time).
for _ in $(seq 60); do
  plan=$("$slicesync" -n --delete "$base" -o "$work/mirror")
  case "$plan" in *" 0 changed"* | *" 0 moved"*) sleep 0.5 ;; *) break ;; esac
done
echo "$plan"
"$slicesync" --delete --json "$base" -o "$work/mirror" | python3 -c 'import json,sys; r=json.load(sys.stdin); print("   ", ", ".join(f["path"] + ": " + f["action"] for f in r["files"]), "| bytes:", r["bytes_downloaded"])'
diff -r -x .slicesync -x '.slicesync-*' "$work/pub" "$work/mirror" && echo "   the mirror is identical to the published tree"
