#!/usr/bin/env bash
# Builds tests/linear (the Porcupine linearizability checker's workload, Go) into
# <builddir>/tests/linear/linear, with its GOCACHE beside it. Porcupine (MIT) comes through the
# Go module proxy (go.mod/go.sum pin it; nothing is vendored). Without go it says so and does
# nothing (the Python test then skips).
set -euo pipefail
build=$(realpath "${1:?usage: build.sh BUILDDIR}")
cd "$(dirname "$0")"
if ! command -v go >/dev/null; then
	[ -x /usr/local/go/bin/go ] && PATH=/usr/local/go/bin:$PATH
fi
if ! command -v go >/dev/null; then
	echo "linear: go not found; the linearizability test will be skipped" >&2
	exit 0
fi
mkdir -p "$build/tests/linear"
GOFLAGS="-buildvcs=false" GOCACHE="$build/tests/linear/gocache" go build -o "$build/tests/linear/linear" .
