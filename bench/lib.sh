# bench/lib.sh - shared by the benchmark scripts (sourced): start a one-node imlog on loopback,
# sample a process, print the load conditions.  Never used by the tests.

# A signal (^C, a closed pipe such as `| head`) ends the script through its EXIT trap, which
# stops the servers it started; by default bash would die without running it.
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 141' PIPE
trap 'exit 143' TERM

# imlog_start DIR BUILD: starts one node with its data in DIR/data on random loopback ports;
# sets imlog_pid, api_port, ws_port, secret.  The caller stops it with imlog_stop.
imlog_start() {
	local dir=$1 build=$2 try
	secret=bench-$RANDOM$RANDOM
	# Random ports may be taken (another session's servers): three attempts.
	for try in 1 2 3; do
		api_port=$((20000 + RANDOM % 20000))
		ws_port=$((api_port + 1))
		rm -f "$dir/imlog.out" # a previous node's "ready" must not be read as this one's
		"./$build/server/imlog" serve --data-dir "$dir/data" --api-addr 127.0.0.1:$api_port \
			--ws-addr 127.0.0.1:$ws_port --raft-addr 127.0.0.1:$((api_port + 2)) \
			--secret "$secret" --log-level warn "${@:3}" >"$dir/imlog.out" 2>"$dir/imlog.err" &
		imlog_pid=$!
		until grep -q '^imlog: ready' "$dir/imlog.out" 2>/dev/null; do
			kill -0 $imlog_pid 2>/dev/null || break
			sleep 0.05
		done
		kill -0 $imlog_pid 2>/dev/null && return 0
		wait $imlog_pid 2>/dev/null || true
		echo "imlog_start: attempt $try failed: $(tail -1 "$dir/imlog.err")" >&2
		rm -rf "$dir/data"
	done
	imlog_pid=
	return 1
}

imlog_stop() {
	[ -n "${imlog_pid:-}" ] || return 0
	kill "$imlog_pid" 2>/dev/null || true
	wait "$imlog_pid" 2>/dev/null || true
	imlog_pid=
}

# The load average, the machine's busy share over the last half second and the busiest
# processes then, for the record of each run.
load_note() {
	top -b -n 2 -d 0.5 -w 200 | awk -v ncpu="$(nproc)" '
		/^top -/ { it++ }
		it == 2 && /^%Cpu/ { busy = 100 - $8 }
		it == 2 && f && n < 3 && $9 + 0 >= 1 { top = top sprintf("%s %s%%, ", $12, $9); n++ }
		it == 2 && /PID USER/ { f = 1 }
		END { printf "busy %.0f%% of %d cores; busiest: %s", busy, ncpu, top }'
	echo "load average $(cut -d' ' -f1-3 /proc/loadavg)"
}

# The machine and the commit, one line each.
machine_note() {
	echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), Linux $(uname -r), $(lscpu 2>/dev/null | awk -F: '/Model name/ {gsub(/^ +/, "", $2); print $2}')"
	echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- server engine raft common bench 2>/dev/null || echo ' (tree modified)')"
}

# wait_idle PID: waits (at most 60 s) until the process used under 5 % of a core over half a
# second, so that a run does not start while the server still works off the previous one.
wait_idle() {
	local pid=$1 hz a b
	hz=$(getconf CLK_TCK)
	for _ in $(seq 120); do
		a=$(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null) || return 0
		sleep 0.5
		b=$(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null) || return 0
		[ $(((b - a) * 100 / hz)) -lt 3 ] && return 0
	done
}
