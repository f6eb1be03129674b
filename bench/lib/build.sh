# Sourced by the benchmarks: release builds of this package's programs.
#
#   build_release PRODUCT...   builds each product as `make install` does (`swift build -c release
#                              --static-swift-stdlib`, quietly) and sets
#                              $shash, $slicesync and $syncserver to the binaries' paths.
build_release() {
  echo "building release binaries..." >&2
  local product
  for product in "$@"; do
    (cd "$here" && swift build -c release --static-swift-stdlib --product "$product" >/dev/null)
  done
  shash="$here/.build/release/shash"
  slicesync="$here/.build/release/slicesync"
  syncserver="$here/.build/release/syncserver"
}
