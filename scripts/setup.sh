#!/usr/bin/env bash
# Installs what slicesync needs on a fresh Debian or Ubuntu machine that has only Swift.
#
#   bash scripts/setup.sh build   the two system libraries the build links (libcrypto, zlib)
#   bash scripts/setup.sh test    also what the tests start: nginx, zsync, python3 with moto and boto3
#
# As root it installs what is missing (apt-get, pip); as another user it prints the one command that
# would, and fails. Something already installed is never touched, so it is quick to run again.
set -euo pipefail
want=${1:-build}
packages=(libssl-dev zlib1g-dev pkg-config)
if [ "$want" = test ]; then
  packages+=(openssl python3 python3-pip nginx-light zsync time)
fi

missing=()
for package in "${packages[@]}"; do
  dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if ((${#missing[@]})); then
  if [ "$(id -u)" != 0 ]; then
    echo "setup: missing system packages; install them with:" >&2
    echo "  sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  echo "setup: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The S3 tests run moto's and localbucket's S3-compatible servers and check with boto3 (whose botocore
# also signs requests for the signing tests), all from PyPI; the TLS tests make their certificates with
# `cryptography` (which moto needs too).
if [ "$want" = test ] && ! python3 -c "import moto.server, boto3, cryptography, localbucket" 2>/dev/null; then
  if [ "$(id -u)" != 0 ] && [ -z "${VIRTUAL_ENV:-}" ]; then
    echo "setup: missing Python packages; install them with:" >&2
    echo "  python3 -m pip install --user 'moto[server]' boto3 cryptography localbucket" >&2
    exit 1
  fi
  echo "setup: installing moto[server], boto3, cryptography and localbucket from PyPI"
  python3 -m pip install -q 'moto[server]' boto3 cryptography localbucket 2>/dev/null \
    || python3 -m pip install -q --break-system-packages 'moto[server]' boto3 cryptography localbucket
fi
