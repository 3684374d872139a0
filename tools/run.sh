#!/usr/bin/env bash
# Installs what is needed, builds a release binary and starts the server on ./imlog-data.
# Extra arguments go to `imlog serve` (see `imlog help`).
set -euo pipefail
cd "$(dirname "$0")/.."
./tools/deps.sh
[ -d build-release ] || meson setup build-release --buildtype=release >/dev/null
ninja -C build-release server/imlog
exec ./build-release/server/imlog serve "$@"
