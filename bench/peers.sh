#!/usr/bin/env bash
# Peers side by side (a separate command, never a test): NATS JetStream and etcd on loopback,
# one member and three members, measured the way bench/msg.sh and bench/rest.sh measure imlog.
#  nats   bench/nats_bench (libnats): publish with ack into a file-storage stream, 1 replica
#         on one server, 3 replicas on a 3-server cluster: saturation (WINDOW in flight) and
#         5,000 msg/s offered with a push consumer (send -> delivery).
#  etcd   one member, then three members: bench/etcd_put (Go, etcd's own client library, gRPC)
#         with 64 and with 400 puts in flight, and wrk -c CONNS through etcd's JSON gateway
#         (POST /v3/kv/put), the same HTTP+JSON path as imlog's REST; all on the leader.
# Durability as shipped (Debian 12): etcd fsyncs its WAL before it answers (batched, like
# imlog's Raft log); NATS 2.9 JetStream answers once the message is written to the stream file
# (and, with 3 replicas, on a quorum), with no fsync per message: it syncs on an interval.
# Usage: bench/peers.sh [nats|etcd|all] [seconds-per-run]
# Environment: BUILD (build-release), WINDOW (400), SIZE (payload and etcd value bytes, 200),
# CONNS (wrk connections for etcd, 64).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
what=${1:-all}
secs=${2:-10}
build=${BUILD:-build-release}
window=${WINDOW:-400}
size=${SIZE:-200}
conns=${CONNS:-64}
./tools/deps.sh --bench >/dev/null
[ -d "$build" ] || meson setup "$build" --buildtype=release >/dev/null
meson setup --reconfigure "$build" >/dev/null 2>&1 || true
ninja -C "$build" bench/nats_bench >/dev/null
# The etcd client is Go (the module proxy provides go.etcd.io/etcd/client/v3 on first build).
export PATH=$PATH:/usr/local/go/bin
etcd_put=""
if command -v go >/dev/null &&
	(cd bench/etcd_put && go build -o "../../$build/bench/etcd_put" .) 2>"$build/etcd_put.log"; then
	etcd_put=$build/bench/etcd_put
fi
dir=$(mktemp -d /tmp/imlog-peers-XXXXXX)
pids=()
stop_all() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	pids=()
}
trap 'stop_all; rm -rf "$dir"' EXIT
base=$((20000 + RANDOM % 20000))
wait_port() { # host port: until something listens
	for _ in $(seq 200); do
		(exec 3<>"/dev/tcp/$1/$2") 2>/dev/null && return 0
		sleep 0.05
	done
	echo "nothing listens on $1:$2" >&2
	return 1
}
echo "$(nats-server --version 2>/dev/null || echo 'nats-server missing'); etcd $(etcd --version 2>/dev/null | awk '/etcd Version/ {print $3}')"

nats_run() { # name replicas url
	echo "$1 conditions: $(load_note)"
	"./$build/bench/nats_bench" --url "$3" --replicas "$2" --seconds "$secs" --window "$window" \
		--size "$size" | sed "s/^/$1_sat /"
	"./$build/bench/nats_bench" --url "$3" --replicas "$2" --seconds "$secs" --rate 5000 \
		--size "$size" --push | sed "s/^/$1_push5k /"
}
if [ "$what" = nats ] || [ "$what" = all ]; then
	if command -v nats-server >/dev/null && [ -x "$build/bench/nats_bench" ]; then
		mkdir -p "$dir/n0"
		nats-server -js -sd "$dir/n0" -a 127.0.0.1 -p $base >"$dir/n0.log" 2>&1 &
		pids+=($!)
		wait_port 127.0.0.1 $base
		nats_run nats_r1 1 nats://127.0.0.1:$base
		stop_all
		routes=nats://127.0.0.1:$((base + 11)),nats://127.0.0.1:$((base + 12)),nats://127.0.0.1:$((base + 13))
		for i in 1 2 3; do
			mkdir -p "$dir/n$i"
			nats-server -js -sd "$dir/n$i" -a 127.0.0.1 -p $((base + i)) \
				--server_name "n$i" --cluster_name bench \
				--cluster nats://127.0.0.1:$((base + 10 + i)) --routes "$routes" \
				>"$dir/n$i.log" 2>&1 &
			pids+=($!)
		done
		for i in 1 2 3; do wait_port 127.0.0.1 $((base + i)); done
		# JetStream needs its meta leader before a stream can be created.
		sleep 3
		nats_run nats_r3 3 nats://127.0.0.1:$((base + 1))
		stop_all
	else
		echo "nats: not available (nats-server or libnats-dev missing)"
	fi
fi

etcd_run() { # name url
	echo "$1 conditions: $(load_note)"
	if [ -n "$etcd_put" ]; then
		for c in 64 400; do
			"./$etcd_put" -endpoints "$2" -clients $c -seconds "$secs" -size "$size" |
				sed "s/^/$1_grpc$c /"
		done
	else
		echo "$1 etcd_put not built (no Go toolchain or module proxy; see $build/etcd_put.log)"
	fi
	{ printf 'run_id = %d\nvalue_size = %d\n' "$RANDOM" "$size"; cat bench/etcd_put.lua; } >"$dir/put.lua"
	wrk -t2 -c"$conns" -d"${secs}s" -s "$dir/put.lua" "$2" >"$dir/wrk.out" 2>&1 || true
	grep "^RESULT" "$dir/wrk.out" | sed "s/^RESULT/$1 put/" || { echo "$1 failed:"; cat "$dir/wrk.out"; }
}
if [ "$what" = etcd ] || [ "$what" = all ]; then
	if command -v etcd >/dev/null && command -v wrk >/dev/null; then
		etcd_start() { # name client-port peer-port initial-cluster
			etcd --name "$1" --data-dir "$dir/$1" \
				--listen-client-urls "http://127.0.0.1:$2" --advertise-client-urls "http://127.0.0.1:$2" \
				--listen-peer-urls "http://127.0.0.1:$3" --initial-advertise-peer-urls "http://127.0.0.1:$3" \
				--initial-cluster "$4" --initial-cluster-state new --initial-cluster-token "bench$base" \
				>"$dir/$1.log" 2>&1 &
			pids+=($!)
		}
		etcd_start e0 $((base + 20)) $((base + 30)) "e0=http://127.0.0.1:$((base + 30))"
		wait_port 127.0.0.1 $((base + 20))
		sleep 1
		etcd_run etcd_1 "http://127.0.0.1:$((base + 20))"
		stop_all
		cl="e1=http://127.0.0.1:$((base + 31)),e2=http://127.0.0.1:$((base + 32)),e3=http://127.0.0.1:$((base + 33))"
		for i in 1 2 3; do etcd_start "e$i" $((base + 20 + i)) $((base + 30 + i)) "$cl"; done
		for i in 1 2 3; do wait_port 127.0.0.1 $((base + 20 + i)); done
		leader=""
		for _ in $(seq 100); do
			leader=$(ETCDCTL_API=3 etcdctl --endpoints "http://127.0.0.1:$((base + 21)),http://127.0.0.1:$((base + 22)),http://127.0.0.1:$((base + 23))" \
				endpoint status 2>/dev/null | awk -F', ' '$5 == "true" {print $1}' | head -1)
			[ -n "$leader" ] && break
			sleep 0.1
		done
		echo "etcd_3 leader $leader"
		etcd_run etcd_3 "${leader:-http://127.0.0.1:$((base + 21))}"
		stop_all
	else
		echo "etcd: not available (etcd-server or wrk missing)"
	fi
fi
