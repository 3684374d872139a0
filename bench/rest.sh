#!/usr/bin/env bash
# REST benchmark (a separate command, never a test): user_register and get_users_info
# throughput and latency with wrk on loopback, beside the data disk's fdatasync rate.
# Usage: bench/rest.sh [seconds-per-run] [connections]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
conns=${2:-64}
./tools/deps.sh
command -v wrk >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk
[ -d build-release ] || meson setup build-release --buildtype=release >/dev/null
ninja -C build-release server/imlog bench/fsync_rate >/dev/null

dir=$(mktemp -d /tmp/imlog-bench-XXXXXX)
port=$((20000 + RANDOM % 20000))
secret=bench-$RANDOM$RANDOM
./build-release/server/imlog serve --data-dir "$dir/data" --api-addr 127.0.0.1:$port \
	--ws-addr 127.0.0.1:$((port + 1)) --raft-addr 127.0.0.1:$((port + 2)) --secret "$secret" \
	--log-level warn >"$dir/out" 2>"$dir/err" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
until grep -q '^imlog: ready' "$dir/out"; do
	kill -0 $pid 2>/dev/null || { cat "$dir/err"; exit 1; }
	read -r -t 0.1 <> <(:) || true
done
post() { curl -s -H 'operationID: bench' -H "token: ${3:-}" -d "$2" "http://127.0.0.1:$port$1"; }
admin=$(post /auth/get_admin_token "{\"secret\":\"$secret\",\"userID\":\"imAdmin\"}" |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["token"])')
users=$(python3 -c 'import json; print(json.dumps({"users":[{"userID":"q%d"%i,"nickname":"q"} for i in range(1000)]}))')
post /user/user_register "$users" "$admin" >/dev/null
ids=$(python3 -c 'import json; print(json.dumps({"userIDs":["q%d"%i for i in range(0,1000,100)]}))')

fs=$(./build-release/bench/fsync_rate "$dir" 3)
run() { # name script extra-lua
	{ printf 'token = "%s"\nrun_id = %d\nbody = [[%s]]\n' "$admin" "$RANDOM" "$ids"; cat "bench/$2"; } >"$dir/s.lua"
	wrk -t2 -c"$conns" -d"${secs}s" -s "$dir/s.lua" "http://127.0.0.1:$port" | grep '^RESULT' |
		sed "s/^RESULT/$1/"
}
reg=$(run user_register register.lua)
info=$(run get_users_info users_info.lua)
rss=$(awk '/VmHWM/ {print $2}' /proc/$pid/status)
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r)"
echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown); wrk -t2 -c$conns -d${secs}s on loopback"
echo "$fs"
echo "$reg"
echo "$info"
echo "server_peak_rss_kib $rss"
python3 - "$fs" "$reg" <<'PY'
import re, sys
fs = float(re.search(r"fdatasync_per_s (\d+)", sys.argv[1]).group(1))
rps = float(re.search(r"rps=(\d+)", sys.argv[2]).group(1))
print(f"user_register_rps / fdatasync_per_s = {rps / fs:.2f} (group commit: >1 means several writes per fsync)")
PY
