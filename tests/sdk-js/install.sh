#!/usr/bin/env bash
# Installs the real OpenIM JS SDK (@openim/client-sdk 0.0.14, GPL-3.0) and ws 8 into
# tests/sdk-js/node_modules for the sdk-js conformance tests. Test-only: node_modules is
# git-ignored and never bundled. Needs node and npm; without them it says so and does nothing
# (the Python test then skips).
set -euo pipefail
cd "$(dirname "$0")"
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
	echo "sdk-js: node/npm not found; the JS SDK tests will be skipped" >&2
	exit 0
fi
# package-lock.json pins the exact tree; npm install keeps to it and is quick when up to date.
npm install --no-audit --no-fund
