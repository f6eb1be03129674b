#!/usr/bin/env bash
# The tests, on a fresh machine with only Swift: installs what they need (scripts/setup.sh test),
# then runs every test, unit and end-to-end (real servers on 127.0.0.1). Extra arguments go to
# `swift test`, for example `bash scripts/test.sh --filter Transport`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
swift test "$@"
