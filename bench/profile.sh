#!/usr/bin/env bash
# Where the server's CPU goes (a separate command, never a test): runs one loadgen scenario
# against a fresh release node and samples the server with `perf record` (cpu-clock, the only
# event some virtual machines offer) for SECS seconds inside the measured window, then prints the
# top shared objects and symbols.  Without perf it falls back to nothing: use valgrind
# --tool=callgrind by hand (instruction counts, repeatable on a busy machine).
# Usage: bench/profile.sh ack|group|large|storm [SECS]
#   ack    1:1 send-ack at saturation, 100 connections x 4 outstanding
#   group  1 group of 10,000 members with 1,000 online, 40 msg/s (40,000 deliveries/s)
#   large  1 group of 100,000 members with 2,000 online, messages one at a time
#   storm  the reconnect storm of 10,000 clients x 100 offline messages (sampled from its start)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
what=${1:-ack}
secs=${2:-5}
build=${BUILD:-build-release}
command -v perf >/dev/null || { echo "profile: perf missing (tools/deps.sh --bench)"; exit 1; }
ninja -C "$build" server/imlog bench/loadgen >/dev/null
dir=$(mktemp -d /tmp/imlog-profile-XXXXXX)
lgpid=
trap '[ -z "$lgpid" ] || kill $lgpid 2>/dev/null; imlog_stop; rm -rf "$dir"' EXIT
imlog_start "$dir" "$build"
trigger='connections open'
case $what in
ack) flags=(--scenario send-ack --conns 100 --rate 0 --window 4) ;;
group) flags=(--scenario group --groups 1 --members 10000 --online 1000 --rate 40) ;;
large) flags=(--scenario group --groups 1 --members 100000 --online 2000 --rate 0 --count 1000000) ;;
storm)
	flags=(--scenario reconnect --conns 10000 --per-client 100 --senders 20 --window 16)
	trigger=reconnecting
	ulimit -n "$(ulimit -Hn)"
	;;
*) echo "profile: unknown scenario $what" >&2; exit 2 ;;
esac
"./$build/bench/loadgen" --api 127.0.0.1:$api_port --ws 127.0.0.1:$ws_port --secret "$secret" \
	--seconds $((secs + 30)) --prefix prof "${flags[@]}" >"$dir/lg.out" 2>"$dir/lg.err" &
lgpid=$!
until grep -q "$trigger" "$dir/lg.err" 2>/dev/null; do
	kill -0 $lgpid 2>/dev/null || { cat "$dir/lg.err"; exit 1; }
	sleep 0.1
done
[ "$what" = storm ] || sleep 2
echo "profile $what conditions: $(load_note)"
perf record -e cpu-clock -F 999 -g -p "$imlog_pid" -o "$dir/perf.data" -- sleep "$secs" 2>/dev/null
echo "== by shared object"
perf report -i "$dir/perf.data" --no-children --sort dso --stdio 2>/dev/null | grep -E '^ +[0-9.]+%' | head -12
echo "== top symbols"
perf report -i "$dir/perf.data" --no-children --sort dso,sym --stdio -g none 2>/dev/null |
	grep -E '^ +[0-9]' | head -30
