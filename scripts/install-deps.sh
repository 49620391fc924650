#!/usr/bin/env bash
# Install the Debian packages Trellis builds and tests with, if any is missing.
set -euo pipefail
pkgs=(build-essential cmake pkg-config libgrpc-dev libprotobuf-c-dev
      protobuf-c-compiler libsqlite3-dev libcmocka-dev libmariadb-dev
      mariadb-server libmicrohttpd-dev clang libclang-rt-14-dev openssl
      python3-grpcio python3-grpc-tools chromium libtcmalloc-minimal4)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
    missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing: ${missing[*]}"
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
