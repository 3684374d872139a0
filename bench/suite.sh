#!/usr/bin/env bash
# The side-by-side benchmark suite in one command (never a test; 5-8 minutes on 2 cores):
# physical limits, imlog's REST and messaging, group fan-out and the 100,000-member group, idle
# connections, the reconnect storm, then NATS JetStream and etcd, and a table of the figures
# with ratios (bench/suite.py).  Every part is also a command of its own; the raw outputs stay
# in the results directory.
# Usage: bench/suite.sh [results-dir]   (default /tmp/imlog-suite-<date>)
# Environment: SECS (seconds per measured run, 10), BUILD (build-release).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
out=${1:-/tmp/imlog-suite-$(date -u +%Y%m%dT%H%M%S)}
secs=${SECS:-10}
export BUILD=${BUILD:-build-release}
mkdir -p "$out"
./tools/deps.sh --bench >/dev/null
[ -d "$BUILD" ] || meson setup "$BUILD" --buildtype=release >/dev/null
meson setup --reconfigure "$BUILD" >/dev/null 2>&1 || true
ninja -C "$BUILD" >/dev/null
start=$(date +%s)
part() { # name command...: runs one part, its output in $out/name.txt
	local name=$1
	shift
	echo "suite: $name ($(load_note))" >&2
	"$@" >"$out/$name.txt" 2>"$out/$name.err" || echo "suite: $name failed (see $out/$name.err)" >&2
}
{
	machine_note
	echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'); load before: $(load_note)"
	echo "settings: $secs s per run after 1 s warm-up; loopback; generators share the 2 cores with the servers; data in $(df --output=source,fstype /tmp | tail -1)"
} | tee "$out/machine.txt"
part limits bench/limits.sh "$secs" 100
part rest bench/rest.sh "$secs" 64
part msg bench/msg.sh "$secs" 100
part group bench/group.sh all "$secs"
HOLD=30 part idle bench/idle.sh 10000 19000
part reconnect bench/reconnect.sh 10000 100
part peers bench/peers.sh all "$secs"
part cluster bench/cluster.sh "$secs" 100
echo "suite: done in $(($(date +%s) - start)) s; raw outputs in $out" >&2
echo
{
	sed 's/^/    /' "$out/machine.txt"
	echo
	python3 bench/suite.py "$out"
} | tee "$out/table.md"
