#!/usr/bin/env bash
# Physical limits (a separate command, never a test), measured in the same run as the figures
# they bound: the data disk's fdatasync rate (bench/fsync_rate), raw LMDB appends by batch size
# with an fdatasync per transaction and with none (bench/lmdb_append), and the WebSocket
# transport ceiling: bench/loadgen's send-ack at saturation against bench/echo, a bare libuv +
# wslay server answering 1003 with a canned reply (same connections and window as msg.sh).
# Usage: bench/limits.sh [seconds] [connections]
# Environment: BUILD (build-release), WINDOW (4), SIZE (64-byte texts), RECORD (LMDB record
# bytes, 200: about a stored MsgData with a 64-byte text), BATCHES ("1 10 100").
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
secs=${1:-10}
conns=${2:-100}
build=${BUILD:-build-release}
./tools/deps.sh >/dev/null
[ -d "$build" ] || meson setup "$build" --buildtype=release >/dev/null
ninja -C "$build" bench/fsync_rate bench/lmdb_append bench/echo bench/loadgen >/dev/null
dir=$(mktemp -d /tmp/imlog-limits-XXXXXX)
epid=
trap '[ -z "$epid" ] || kill $epid 2>/dev/null; rm -rf "$dir"' EXIT
machine_note
echo "limits conditions: $(load_note)"
"./$build/bench/fsync_rate" "$dir" 3 | sed 's/^/disk /'
# shellcheck disable=SC2086
"./$build/bench/lmdb_append" "$dir/lmdb" 2 "${RECORD:-200}" ${BATCHES:-1 10 100} | sed 's/^/lmdb /'
port=$((20000 + RANDOM % 20000))
"./$build/bench/echo" 127.0.0.1:$port >"$dir/echo.out" 2>&1 &
epid=$!
until grep -q ready "$dir/echo.out"; do sleep 0.05; done
"./$build/bench/loadgen" --scenario send-ack --no-setup --api 127.0.0.1:1 --ws 127.0.0.1:$port \
	--conns "$conns" --seconds "$secs" --rate 0 --window "${WINDOW:-4}" --size "${SIZE:-64}" \
	--pid $epid | grep -vE '^(server_|kernel_)(setup|open)' | sed 's/^/echo_sat /'
