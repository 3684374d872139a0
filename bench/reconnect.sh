#!/usr/bin/env bash
# Reconnect storm (a separate command, never a test): N clients are online, drop off, S senders
# store PER messages for each of them (1:1, acknowledged, durable), then all N reconnect at
# once and each catches up like the JS SDK after a reconnect (WS 1001 newest seqs, then 1002
# pulls of 100 seqs), against a fresh node.  Reports the time until every client has all its
# messages, per-client catch-up p50/p99 (from the client's own TCP connect and from the storm's
# start) and the offline send rate.
# Usage: bench/reconnect.sh [N] [PER]   (default 10000 clients, 100 messages each)
# Environment: BUILD (build-release), SENDERS (20), WINDOW (16 per sender), HANDSHAKES (256:
# the generator's connections being set up at once), TIMEOUT (300 s for the storm).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
n=${1:-10000}
per=${2:-100}
build=${BUILD:-build-release}
./tools/deps.sh >/dev/null
[ -d "$build" ] || meson setup "$build" --buildtype=release >/dev/null
ninja -C "$build" server/imlog bench/loadgen >/dev/null
ulimit -n "$(ulimit -Hn)"
dir=$(mktemp -d /tmp/imlog-reconnect-XXXXXX)
trap 'imlog_stop; rm -rf "$dir"' EXIT
machine_note
imlog_start "$dir" "$build"
echo "storm conditions: $(load_note)"
"./$build/bench/loadgen" --scenario reconnect --api 127.0.0.1:$api_port --ws 127.0.0.1:$ws_port \
	--secret "$secret" --pid "$imlog_pid" --conns "$n" --per-client "$per" \
	--senders "${SENDERS:-20}" --window "${WINDOW:-16}" --handshakes "${HANDSHAKES:-256}" \
	--seconds "${TIMEOUT:-300}" --prefix storm >"$dir/out" 2>"$dir/err" ||
	{ cat "$dir/err" >&2; exit 1; }
sed 's/^/storm /' "$dir/out"
