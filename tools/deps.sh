#!/usr/bin/env bash
# Installs the Debian 12 packages imlog builds, runs and tests with (idempotent; needs root).
set -euo pipefail
pkgs=(build-essential meson ninja-build pkg-config cmake python3
      liblmdb-dev libuv1-dev libwslay-dev node-llhttp libraft-dev libjwt-dev libmbedtls-dev
      libprotobuf-c-dev protobuf-c-compiler libjansson-dev zlib1g-dev)
if [ "${1:-}" = "--test" ]; then
	pkgs+=(libcmocka-dev clang libclang-rt-14-dev clang-format lmdb-utils)
	# tests/sdk-go: Go (preinstalled, not Debian's 1.19) builds it, with cgo (gcc) for sqlite.
	command -v go >/dev/null || [ -x /usr/local/go/bin/go ] || echo "deps: no go; test_sdk_go will skip" >&2
fi
if [ "${1:-}" = "--bench" ]; then
	# bench/: wrk, perf, and the peers run side by side (NATS JetStream with its C client, etcd).
	pkgs+=(wrk linux-perf nats-server libnats-dev etcd-server etcd-client)
fi
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	SUDO=""
	[ "$(id -u)" -eq 0 ] || SUDO=sudo
	$SUDO apt-get update -q
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
