#!/usr/bin/env bash
# bench/cluster.sh [seconds] [conns] - one node beside three in the same run (issue: cluster).
#
#   1. one node: loadgen send-ack at saturation and at 10,000 msg/s offered;
#   2. three nodes on loopback (one machine, so the three share its 2 cores and its disk):
#      the same two runs against the leader, and at saturation against a follower (its writes are
#      forwarded to the leader);
#      REST reads (get_users_info) on the leader and on a follower, 1 and 50 connections;
#   3. failover: a REST writer on a follower, the leader killed with SIGKILL; the time from the
#      kill to the first acknowledged write after it, five times;
#   4. INSTALL_MB=N (default 0: skipped): N MiB of users written, a follower stopped and its data
#      wiped, the log compacted by further writes, the follower restarted: it installs the
#      leader's engine copy; the time and both nodes' peak memory (VmHWM, and RssAnon at the end).
# Prints one "name value" line per figure. BUILD=dir picks the build (default build-release).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
secs=${1:-8}
conns=${2:-100}
build=${BUILD:-build-release}
[ -d "$build" ] || meson setup "$build" --buildtype=release >/dev/null
ninja -C "$build" server/imlog bench/loadgen >/dev/null
work=$(mktemp -d /tmp/imlog-cluster-bench-XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}" ${imlog_pid:-}; do kill "$p" 2>/dev/null || true; done
	# the nodes the Python parts restarted are not children of this shell
	pkill -f -- "--data-dir $work/" 2>/dev/null || true
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
machine_note
load_note

lg() { # name api ws secret [flags]: one loadgen run, prints its figures prefixed with name
	local name=$1 api=$2 ws=$3 sec=$4
	shift 4
	./"$build"/bench/loadgen --scenario send-ack --api "$api" --ws "$ws" --secret "$sec" \
		--conns "$conns" --seconds "$secs" --warmup 1 --size 64 --seed 1 --prefix "$name" "$@" \
		2>/dev/null | awk -v n="$name" '/ack_latency_(p50|p99)_ms|ack_latency_samples/ {
			if ($1 == "ack_latency_samples") printf "%s acked_per_s %.0f\n", n, $2 / secs
			else print n, $1, $2 }' secs="$secs"
}

# ---- one node
mkdir -p "$work/one"
imlog_start "$work/one" "$build"
lg one "127.0.0.1:$api_port" "127.0.0.1:$ws_port" "$secret"
wait_idle "$imlog_pid"
lg one_10k "127.0.0.1:$api_port" "127.0.0.1:$ws_port" "$secret" --rate 10000
imlog_stop

# ---- three nodes
base=$((21000 + RANDOM % 20000))
secret=bench-$RANDOM$RANDOM
cl="1@127.0.0.1:$((base + 2)),2@127.0.0.1:$((base + 12)),3@127.0.0.1:$((base + 22))"
ca="1@127.0.0.1:$base,2@127.0.0.1:$((base + 10)),3@127.0.0.1:$((base + 20))"
start_node() { # id [flags]
	local i=$1 p=$((base + ($1 - 1) * 10))
	shift
	./"$build"/server/imlog serve --node-id "$i" --data-dir "$work/n$i" --api-addr "127.0.0.1:$p" \
		--ws-addr "127.0.0.1:$((p + 1))" --cluster "$cl" --cluster-api "$ca" --secret "$secret" \
		--log-level warn "$@" >"$work/n$i.out" 2>"$work/n$i.err" &
	pids[$i]=$!
}
admin_token() { # port
	curl -s -X POST "http://127.0.0.1:$1/auth/get_admin_token" -H 'operationID: b' \
		-d "{\"secret\":\"$secret\",\"userID\":\"imAdmin\"}" | sed 's/.*"token":"\([^"]*\)".*/\1/'
}
leader_of() { # port: prints the leader's node id as this node sees it
	curl -s -X POST "http://127.0.0.1:$1/cluster/status" -H "token: $(admin_token "$1")" \
		-H 'operationID: b' -d '{}' | sed -n 's/.*"leaderID":\([0-9]*\).*/\1/p'
}
for i in 1 2 3; do start_node $i --snapshot-threshold 1024 --snapshot-trailing 128; done
for _ in $(seq 200); do
	l=$(leader_of $base 2>/dev/null || true)
	[ -n "$l" ] && [ "$l" != 0 ] && grep -q '^imlog: ready' "$work/n$l.out" 2>/dev/null && break
	sleep 0.1
done
echo "three_leader $l"
lp=$((base + (l - 1) * 10))
f=$((l % 3 + 1))
fp=$((base + (f - 1) * 10))
lg three_leader "127.0.0.1:$lp" "127.0.0.1:$((lp + 1))" "$secret"
wait_idle "${pids[$l]}"
lg three_leader_10k "127.0.0.1:$lp" "127.0.0.1:$((lp + 1))" "$secret" --rate 10000
wait_idle "${pids[$l]}"
lg three_follower "127.0.0.1:$fp" "127.0.0.1:$((fp + 1))" "$secret"
wait_idle "${pids[$l]}"

# ---- REST reads on the leader and on a follower (which first waits for a read index, one
# round trip to the leader): get_users_info of 10 users, one connection and 50.
command -v wrk >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk >/dev/null
tok=$(admin_token "$lp")
curl -s -X POST "http://127.0.0.1:$lp/user/user_register" -H 'operationID: b' -H "token: $tok" \
	-d "$(python3 -c 'import json; print(json.dumps({"users":[{"userID":"rq%d"%i} for i in range(10)]}))')" >/dev/null
rd() { # name port conns
	{ printf 'token = "%s"\nbody = [[%s]]\n' "$tok" \
		"$(python3 -c 'import json; print(json.dumps({"userIDs":["rq%d"%i for i in range(10)]}))')"
	  cat bench/users_info.lua; } >"$work/rd.lua"
	wrk -t"$(( $3 > 1 ? 2 : 1 ))" -c"$3" -d"${secs}s" -s "$work/rd.lua" "http://127.0.0.1:$2" |
		awk -v n="$1" '/^RESULT/ { for (i = 2; i <= NF; i++) { split($i, kv, "="); print n, kv[1], kv[2] } }'
}
rd three_leader_read_c1 "$lp" 1
rd three_follower_read_c1 "$fp" 1
rd three_leader_read_c50 "$lp" 50
rd three_follower_read_c50 "$fp" 50

# ---- failover, five times: writes through a node that survives, the leader killed
python3 - "$base" "$secret" "$work" "$build" "$cl" "$ca" <<'EOF'
import json, os, signal, subprocess, sys, time, urllib.request
base, secret, work, build, cl, ca = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6]
port = lambda i: base + (i - 1) * 10
def post(i, path, body, tok=None, timeout=5):
    h = {"operationID": "fo", "Content-Type": "application/json"}
    if tok: h["token"] = tok
    req = urllib.request.Request(f"http://127.0.0.1:{port(i)}{path}", json.dumps(body).encode(), h)
    return json.loads(urllib.request.urlopen(req, timeout=timeout).read())
def tok(i): return post(i, "/auth/get_admin_token", {"secret": secret, "userID": "imAdmin"})["data"]["token"]
def leader(i): return post(i, "/cluster/status", {}, tok(i))["data"]["leaderID"]
def pid_of(i):
    out = subprocess.run(["pgrep", "-f", "--", f"--node-id {i} --data-dir {work}/n{i}"], capture_output=True, text=True).stdout.split()
    return int(out[0]) if out else None
times = []
for run in range(5):
    l = 0
    while not l:
        try: l = leader(1 if pid_of(1) else 2)
        except Exception: time.sleep(0.1)
    w = l % 3 + 1
    t = tok(w)
    n = 0
    def write():
        global n
        n += 1
        return post(w, "/user/user_register", {"users": [{"userID": f"fo{run}x{n}"}]}, t, timeout=15)["errCode"] == 0
    while not write(): time.sleep(0.05)
    os.kill(pid_of(l), signal.SIGKILL)
    t0 = time.monotonic()
    while True:
        try:
            if write(): break
        except Exception: time.sleep(0.01)
    times.append((time.monotonic() - t0) * 1000)
    # the killed node comes back (same data) for the next run
    p = port(l)
    subprocess.Popen([f"./{build}/server/imlog", "serve", "--node-id", str(l), "--data-dir", f"{work}/n{l}",
                      "--api-addr", f"127.0.0.1:{p}", "--ws-addr", f"127.0.0.1:{p + 1}", "--cluster", cl,
                      "--cluster-api", ca, "--secret", secret, "--log-level", "warn",
                      "--snapshot-threshold", "1024", "--snapshot-trailing", "128"],
                     stdout=open(f"{work}/n{l}.out", "a"), stderr=open(f"{work}/n{l}.err", "a"))
    while True:
        try:
            if post(l, "/cluster/status", {}, tok(l))["data"]["leaderID"]: break
        except Exception: pass
        time.sleep(0.1)
times.sort()
print("failover_ms_min_median_max %.0f %.0f %.0f" % (times[0], times[len(times) // 2], times[-1]))
EOF

# ---- an engine copy of INSTALL_MB MiB installed on a wiped follower
mb=${INSTALL_MB:-0}
if [ "$mb" -gt 0 ]; then
	python3 - "$base" "$secret" "$work" "$build" "$cl" "$ca" "$mb" <<'EOF'
import json, os, shutil, signal, subprocess, sys, time, urllib.request
base, secret, work, build, cl, ca, mb = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6], int(sys.argv[7])
port = lambda i: base + (i - 1) * 10
def post(i, path, body, tok=None, timeout=60):
    h = {"operationID": "in", "Content-Type": "application/json"}
    if tok: h["token"] = tok
    req = urllib.request.Request(f"http://127.0.0.1:{port(i)}{path}", json.dumps(body).encode(), h)
    return json.loads(urllib.request.urlopen(req, timeout=timeout).read())
def tok(i): return post(i, "/auth/get_admin_token", {"secret": secret, "userID": "imAdmin"})["data"]["token"]
def status(i): return post(i, "/cluster/status", {}, tok(i))["data"]
def pid_of(i):
    out = subprocess.run(["pgrep", "-f", "--", f"--node-id {i} --data-dir {work}/n{i}"], capture_output=True, text=True).stdout.split()
    return int(out[0]) if out else None
def mem(pid):
    f = {k: v.split()[0] for k, v in (l.split(":", 1) for l in open(f"/proc/{pid}/status")) if v.split()}
    return int(f["VmHWM"]) // 1024, int(f.get("RssAnon", "0")) // 1024
l = status(1)["leaderID"]
f = l % 3 + 1
t = tok(l)
ex = "x" * 60000
t0 = time.monotonic()
for k in range(mb * 1024 * 1024 // (60000 * 50) + 1):
    env = post(l, "/user/user_register", {"users": [{"userID": f"big{k}_{j}", "ex": ex} for j in range(50)]}, t)
    assert env["errCode"] == 0, env
print("install_write_s %.1f" % (time.monotonic() - t0))
os.kill(pid_of(f), signal.SIGKILL)
time.sleep(0.5)  # the process is gone (SIGKILL); only then its directory is removed
shutil.rmtree(f"{work}/n{f}")
for k in range(2000):  # past a snapshot: the wiped follower can only catch up by a copy
    post(l, "/user/user_register", {"users": [{"userID": f"after{k}"}]}, t)
data_mb = sum(os.path.getsize(os.path.join(d, x)) for d, _, fs in os.walk(f"{work}/n{l}") for x in fs) // (1 << 20)
p = port(f)
t0 = time.monotonic()
subprocess.Popen([f"./{build}/server/imlog", "serve", "--node-id", str(f), "--data-dir", f"{work}/n{f}",
                  "--api-addr", f"127.0.0.1:{p}", "--ws-addr", f"127.0.0.1:{p + 1}", "--cluster", cl,
                  "--cluster-api", ca, "--secret", secret, "--log-level", "warn",
                  "--snapshot-threshold", "1024", "--snapshot-trailing", "128"],
                 stdout=open(f"{work}/n{f}.out", "w"), stderr=open(f"{work}/n{f}.err", "w"))
want = status(l)["appliedIndex"]
while True:
    try:
        s = status(f)
        if s["appliedIndex"] >= want: break
    except Exception: pass
    time.sleep(0.2)
print("install_data_mib %d" % data_mb)
print("install_catch_up_s %.1f" % (time.monotonic() - t0))
lh, la = mem(pid_of(l)); fh, fa = mem(pid_of(f))
print("install_leader_vmhwm_mib %d rssanon_mib %d" % (lh, la))
print("install_follower_vmhwm_mib %d rssanon_mib %d" % (fh, fa))
EOF
fi
load_note
