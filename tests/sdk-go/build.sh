#!/usr/bin/env bash
# Builds tests/sdk-go (the real OpenIM native SDK, openim-sdk-core, GPL-3.0, test-only) into
# <builddir>/tests/sdk-go/sdkgo, with its GOCACHE beside it. The modules come through the Go
# module proxy on the first build (go.mod/go.sum pin them; nothing is vendored); the cold build
# takes about 2 minutes here (cgo sqlite). Without go it says so and does nothing (the Python
# test then skips).
set -euo pipefail
build=$(realpath "${1:?usage: build.sh BUILDDIR}")
cd "$(dirname "$0")"
if ! command -v go >/dev/null; then
	[ -x /usr/local/go/bin/go ] && PATH=/usr/local/go/bin:$PATH
fi
if ! command -v go >/dev/null; then
	echo "sdk-go: go not found; the native SDK tests will be skipped" >&2
	exit 0
fi
mkdir -p "$build/tests/sdk-go"
start=$(date +%s)
GOFLAGS="-mod=mod -buildvcs=false" GOCACHE="$build/tests/sdk-go/gocache" CGO_ENABLED=1 \
	go build -o "$build/tests/sdk-go/sdkgo" .
echo "sdk-go: built $build/tests/sdk-go/sdkgo in $(($(date +%s) - start)) s" >&2
