#!/usr/bin/env bash
# Messaging benchmark (a separate command, never a test): 1:1 sends over the OpenIM WebSocket
# (JSON envelopes, sdkType=js) with bench/loadgen against one node, beside the disk's fdatasync
# rate.  Runs: send-ack at saturation (--rate 0), send-ack at 10,000 msg/s offered, send-push
# at 5,000 msg/s offered.
# Usage: bench/msg.sh [seconds-per-run] [connections]
# Environment: BUILD (default build-release: a release build directory, set up when missing),
# WINDOW (outstanding requests per connection at saturation, default 4), SIZE (text bytes, 64).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
conns=${2:-100}
window=${WINDOW:-4}
size=${SIZE:-64}
build=${BUILD:-build-release}
./tools/deps.sh
[ -d "$build" ] || meson setup "$build" --buildtype=release >/dev/null
ninja -C "$build" server/imlog bench/loadgen bench/fsync_rate >/dev/null

dir=$(mktemp -d /tmp/imlog-msgbench-XXXXXX)
port=$((20000 + RANDOM % 20000))
secret=bench-$RANDOM$RANDOM
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
"./$build/server/imlog" serve --data-dir "$dir/data" --api-addr 127.0.0.1:$port \
	--ws-addr 127.0.0.1:$((port + 1)) --raft-addr 127.0.0.1:$((port + 2)) --secret "$secret" \
	--log-level warn >"$dir/out" 2>"$dir/err" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
until grep -q '^imlog: ready' "$dir/out"; do
	kill -0 $pid 2>/dev/null || { cat "$dir/err"; exit 1; }
	read -r -t 0.1 <> <(:) || true
done

fs=$(./"$build"/bench/fsync_rate "$dir" 3)

# The server's CPU seconds so far (utime + stime of every thread).
srv_cpu() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' /proc/$pid/stat; }
# Raft log writes (raft_uv submits one AIO write per batch of entries) during one run, when
# perf can count system calls here; "n/a" otherwise.
count_writes() {
	if command -v perf >/dev/null &&
		perf stat -x, -e syscalls:sys_enter_io_submit -p $pid -o "$dir/perf" -- sleep "$1" \
			2>/dev/null; then
		awk -F, '/io_submit/ {print $1}' "$dir/perf"
	else
		sleep "$1"
		echo n/a
	fi
}
run() { # name, then loadgen flags; prints the figures prefixed with the name
	local name=$1 c0 c1 writes
	shift
	c0=$(srv_cpu)
	"./$build/bench/loadgen" --api 127.0.0.1:$port --ws 127.0.0.1:$((port + 1)) \
		--secret "$secret" --conns "$conns" --seconds "$secs" --warmup 1 --size "$size" \
		--seed 1 --prefix "$name" "$@" >"$dir/$name" 2>"$dir/$name.err" &
	local lg=$!
	# Count the Raft writes inside the measured window (after the setup and the warm-up).
	until grep -q 'connections open' "$dir/$name.err" 2>/dev/null; do
		kill -0 $lg 2>/dev/null || break
		sleep 0.05
	done
	sleep 1
	writes=$(count_writes "$secs")
	wait $lg || { cat "$dir/$name.err"; exit 1; }
	c1=$(srv_cpu)
	sed "s/^/$name /" "$dir/$name"
	echo "$name raft_writes_per_s $(awk -v w="$writes" -v s="$secs" \
		'BEGIN {if (w == "n/a") print w; else printf "%.0f", w / s}')"
	echo "$name server_cpu_percent $(awk -v a="$c0" -v b="$c1" -v s="$secs" \
		'BEGIN {printf "%.0f (of one core, whole run)", 100 * (b - a) / (s + 1)}')"
}
sat=$(run ack_sat --scenario send-ack --rate 0 --window "$window")
ack10k=$(run ack_10k --scenario send-ack --rate 10000)
push5k=$(run push_5k --scenario send-push --rate 5000)
rss=$(awk '/VmHWM/ {print $2}' /proc/$pid/status)

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r); load average before: $load_before"
echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- server engine raft common 2>/dev/null || echo ' (server tree modified)')"
echo "settings: $conns connections (pairs), ${secs} s per run after 1 s warm-up, text $size bytes, window $window at saturation, seed 1, loopback; loadgen shares the cores with the server"
echo "$fs"
printf '%s\n%s\n%s\n' "$sat" "$ack10k" "$push5k"
echo "server_peak_rss_kib $rss"
python3 - "$fs" "$sat" <<'PY'
import re, sys
fs = float(re.search(r"fdatasync_per_s (\d+)", sys.argv[1]).group(1))
acks = float(re.search(r"ack_throughput_per_s (\d+)", sys.argv[2]).group(1))
print(f"acknowledged_msgs_per_s / fdatasync_per_s = {acks / fs:.2f} (group commit: >1 means several messages per fsync)")
w = re.search(r"raft_writes_per_s (\d+)", sys.argv[2])
if w and float(w.group(1)) > 0:
    print(f"acknowledged messages per Raft log write at saturation = {acks / float(w.group(1)):.1f}")
PY
