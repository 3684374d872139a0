#!/usr/bin/env bash
# Group fan-out benchmark (a separate command, never a test) with bench/loadgen against one node:
#  fan-out   groups of 100, 1,000 and 10,000 members with a share online, senders posting to
#            their groups at a fixed offered rate: deliveries/s at the online receivers, send ->
#            each delivery and send -> the last online member's delivery;
#  large     one group of 100,000 members (built over REST) with 2,000 online on a fresh node:
#            build time, then COUNT messages one at a time (send -> last delivery) and the
#            server's RSS.
# Usage: bench/group.sh [fanout|large|all] [seconds-per-run]
# Environment: BUILD (default build-release), DELIVERIES (offered deliveries/s of the fan-out
# runs, default "40000 120000": one load the node carries, one beyond what it can, whose
# delivery rate is the node's ceiling for the shape), COUNT (messages in the large run, default 20), LARGE_MEMBERS (100000),
# LARGE_ONLINE (2000).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
what=${1:-all}
secs=${2:-10}
build=${BUILD:-build-release}
deliveries=${DELIVERIES:-40000 120000}
count=${COUNT:-20}
./tools/deps.sh >/dev/null
[ -d "$build" ] || meson setup "$build" --buildtype=release >/dev/null
ninja -C "$build" server/imlog bench/loadgen >/dev/null

dir=$(mktemp -d /tmp/imlog-groupbench-XXXXXX)
trap 'imlog_stop; rm -rf "$dir"' EXIT
lg() { # name, then loadgen flags: prints the figures prefixed with the name
	local name=$1
	shift
	wait_idle "$imlog_pid" # an overloaded run leaves a backlog behind
	echo "$name conditions: $(load_note)"
	"./$build/bench/loadgen" --api 127.0.0.1:$api_port --ws 127.0.0.1:$ws_port \
		--secret "$secret" --pid "$imlog_pid" --seed 1 --prefix "$name" "$@" \
		>"$dir/$name" 2>"$dir/$name.err" || { cat "$dir/$name.err" >&2; exit 1; }
	sed "s/^/$name /" "$dir/$name"
}

machine_note
if [ "$what" = fanout ] || [ "$what" = all ]; then
	imlog_start "$dir" "$build"
	# groups x members, online per group: 1,000 online connections in every run.
	for cfg in "10 100 100" "2 1000 500" "1 10000 1000"; do
		read -r g m k <<<"$cfg"
		for d in $deliveries; do
			lg "g${m}_$((d / 1000))k" --scenario group --groups "$g" --members "$m" \
				--online "$k" --rate $((d / (k - 1))) --seconds "$secs" --warmup 1
		done
	done
	imlog_stop
fi
if [ "$what" = large ] || [ "$what" = all ]; then
	rm -rf "$dir/data"
	imlog_start "$dir" "$build"
	lg large --scenario group --groups 1 --members "${LARGE_MEMBERS:-100000}" \
		--online "${LARGE_ONLINE:-2000}" --rate 0 --count "$count" --seconds 300
	echo "large server_final_status $(grep -E '^Vm(HWM|RSS)' /proc/$imlog_pid/status | tr -s ' \t' ' ' | tr '\n' ' ')"
	echo "large data_dir_mib $(du -sm "$dir/data" | cut -f1)"
	imlog_stop
fi
