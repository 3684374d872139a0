#!/usr/bin/env bash
# Idle-connection benchmark (a separate command, never a test): N authenticated WebSocket
# connections (JS SDK style, platform Web) held open for HOLD seconds, each sending the JS SDK's
# text heartbeat {"type":"ping"} every PING seconds, against a fresh node per N.  Reports the
# server's memory per connection (RSS and anonymous RSS after all connected, minus before) and
# the CPU the heartbeats cost (the server's CPU time over the hold).
# Usage: bench/idle.sh [N...]   (default: 10000 19000)
# Environment: BUILD (default build-release), HOLD (60), PING (10: the JS SDK's interval,
# openim-protocol.md §4.6; the server's read deadline is 30 s).
# Both processes need a descriptor per connection: N is capped by the hard RLIMIT_NOFILE.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
build=${BUILD:-build-release}
hold=${HOLD:-60}
ping=${PING:-10}
[ $# -gt 0 ] || set -- 10000 19000
./tools/deps.sh >/dev/null
[ -d "$build" ] || meson setup "$build" --buildtype=release >/dev/null
ninja -C "$build" server/imlog bench/loadgen >/dev/null
ulimit -n "$(ulimit -Hn)"
dir=$(mktemp -d /tmp/imlog-idlebench-XXXXXX)
trap 'imlog_stop; rm -rf "$dir"' EXIT
machine_note
echo "open files: soft $(ulimit -n), hard $(ulimit -Hn) (server and generator each need one per connection)"
for n in "$@"; do
	if [ "$n" -gt $(($(ulimit -Hn) - 200)) ]; then
		echo "idle$n skipped: $n connections exceed the hard RLIMIT_NOFILE $(ulimit -Hn) of this machine"
		continue
	fi
	rm -rf "$dir/data"
	imlog_start "$dir" "$build"
	echo "idle$n conditions: $(load_note)"
	echo "idle$n server_open_files_limit $(awk '/Max open files/ {print $4}' /proc/$imlog_pid/limits)"
	"./$build/bench/loadgen" --scenario idle --api 127.0.0.1:$api_port --ws 127.0.0.1:$ws_port \
		--secret "$secret" --pid "$imlog_pid" --conns "$n" --seconds "$hold" --ping "$ping" \
		--prefix "idle$n" >"$dir/out" 2>"$dir/err" || { cat "$dir/err" >&2; exit 1; }
	sed "s/^/idle$n /" "$dir/out"
	imlog_stop
done
