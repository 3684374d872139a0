#!/usr/bin/env python3
"""Summarises a bench/suite.sh results directory: one markdown table of imlog's figures beside
the peers' and the physical limits, with ratios.  Usage: bench/suite.py RESULTS_DIR"""
import glob
import os
import re
import sys

d = sys.argv[1]
vals = {}  # "<run> <key>" -> first number on the line
for path in sorted(glob.glob(os.path.join(d, "*.txt"))):
    for line in open(path, errors="replace"):
        parts = line.split()
        if len(parts) >= 3:
            m = re.match(r"-?[0-9.]+", parts[2])
            if m:
                vals.setdefault(parts[0] + " " + parts[1], float(m.group(0)))
        # wrk lines: "<name> requests=.. rps=.. p50_us=.."
        if "rps=" in line:
            name = " ".join(parts[: 2 if parts[1] == "put" else 1])
            for kv in re.findall(r"(\w+)=([0-9.]+)", line):
                vals[f"{name} {kv[0]}"] = float(kv[1])


def v(key, scale=1.0):
    x = vals.get(key)
    return None if x is None else x * scale


def fmt(x, unit=""):
    if x is None:
        return "n/a"
    if abs(x) >= 100:
        s = f"{x:,.0f}"
    elif abs(x) >= 10:
        s = f"{x:.1f}"
    else:
        s = f"{x:.2f}"
    return s + unit


def ratio(a, b):
    return "n/a" if a is None or b in (None, 0) else f"{a / b:.2f}"


# The LMDB lines carry the batch in their second field.
for path in glob.glob(os.path.join(d, "limits.txt")):
    for line in open(path):
        m = re.match(r"lmdb lmdb_append_(sync|nosync) batch=(\d+) records_per_s (\d+)", line)
        if m:
            vals[f"lmdb_{m.group(1)}_{m.group(2)}"] = float(m.group(3))

rows = [
    # (figure, imlog value, peer or limit name, peer value, unit)
    ("durable 1:1 messages/s at saturation (1 node; 400 in flight)",
     v("ack_sat ack_throughput_per_s"), "NATS JetStream R1 (no fsync per msg)",
     v("nats_r1_sat ack_throughput_per_s"), ""),
    ("  send -> ack p50 at saturation",
     v("ack_sat ack_latency_p50_ms"), "NATS R1", v("nats_r1_sat ack_latency_p50_ms"), " ms"),
    ("  send -> ack p99 at saturation",
     v("ack_sat ack_latency_p99_ms"), "NATS R1", v("nats_r1_sat ack_latency_p99_ms"), " ms"),
    ("send -> receiver's push p50 at 5,000 msg/s",
     v("push_5k push_latency_p50_ms"), "NATS R1 push consumer",
     v("nats_r1_push5k push_latency_p50_ms"), " ms"),
    ("send -> receiver's push p99 at 5,000 msg/s",
     v("push_5k push_latency_p99_ms"), "NATS R1 push consumer",
     v("nats_r1_push5k push_latency_p99_ms"), " ms"),
    ("replicated (3 nodes) messages/s at saturation", v("three_leader acked_per_s"), "NATS JetStream R3",
     v("nats_r3_sat ack_throughput_per_s"), ""),
    ("durable writes/s, 400 in flight, 1 node (imlog: 1:1 messages)",
     v("ack_sat ack_throughput_per_s"), "etcd 1 member, gRPC put, 400 clients",
     v("etcd_1_grpc400 put_throughput_per_s"), ""),
    ("  send -> ack p99, 400 in flight", v("ack_sat ack_latency_p99_ms"), "etcd 1 member put p99",
     v("etcd_1_grpc400 put_latency_p99_ms"), " ms"),
    ("replicated writes/s, 400 in flight, 3 nodes", v("three_leader acked_per_s"),
     "etcd 3 members, gRPC put, 400 clients",
     v("etcd_3_grpc400 put_throughput_per_s"), ""),
    ("durable REST writes/s (user_register, wrk 64 conns)", v("user_register rps"),
     "etcd 1 member put, JSON gateway, wrk 64 conns", v("etcd_1 put rps"), ""),
    ("  p99", v("user_register p99_us", 1e-3), "etcd 1 member, JSON gateway",
     v("etcd_1 put p99_us", 1e-3), " ms"),
    ("durable REST writes/s (user_register, 64 conns)", v("user_register rps"),
     "etcd 1 member, gRPC put, 64 clients", v("etcd_1_grpc64 put_throughput_per_s"), ""),
    ("replicated writes/s, 64 in flight, 3 nodes", None, "etcd 3 members, gRPC put, 64 clients",
     v("etcd_3_grpc64 put_throughput_per_s"), ""),
    ("messages/s at saturation vs the transport ceiling", v("ack_sat ack_throughput_per_s"),
     "bare wslay echo (same generator)", v("echo_sat ack_throughput_per_s"), ""),
    ("acknowledged messages/s vs fdatasync/s", v("ack_sat ack_throughput_per_s"),
     "fdatasync/s (4 KiB appends)", v("disk fdatasync_per_s"), ""),
    ("acknowledged messages/s vs raw LMDB, batch 100 + fdatasync",
     v("ack_sat ack_throughput_per_s"), "LMDB appends/s (200 B, 100 per txn, synced)",
     v("lmdb_sync_100"), ""),
]

print("| figure | imlog | compared with | value | imlog / other |")
print("|---|---|---|---|---|")
for fig, a, other, b, unit in rows:
    print(f"| {fig} | {fmt(a, unit)} | {other} | {fmt(b, unit)} | {ratio(a, b)} |")

print()
print("| imlog scenario | figure | value |")
print("|---|---|---|")
for m, label in (("100", "10 groups x 100, all online"),
                 ("1000", "2 groups x 1,000, 500 online each"),
                 ("10000", "1 group x 10,000, 1,000 online")):
    runs = sorted({k.split()[0] for k in vals if k.startswith(f"g{m}_")},
                  key=lambda r: float(r.split("_")[1].rstrip("k")))
    for i, run in enumerate(runs):
        offered = run.split("_")[1].rstrip("k")
        print(f"| {'fan-out, ' + label if i == 0 else ''} | deliveries/s at {offered},000/s offered "
              f"({fmt(v(run + ' complete_per_s'))} messages/s complete) | "
              f"{fmt(v(run + ' delivery_throughput_per_s'))} |")
        print(f"| | {offered}k offered: send -> last online delivery p50 / p99 / max | "
              f"{fmt(v(run + ' last_delivery_latency_p50_ms'))} / "
              f"{fmt(v(run + ' last_delivery_latency_p99_ms'))} / "
              f"{fmt(v(run + ' last_delivery_latency_max_ms'))} ms |")
print(f"| 1 group x 100,000, 2,000 online | register the users over REST (1,000 per call) | {fmt(v('large register_s'))} s |")
print(f"| | build the group over REST ({fmt(v('large group_build_calls'))} calls) | {fmt(v('large group_build_s'))} s |")
print(f"| | send -> last delivery p50 / p99 / max ({fmt(v('large last_delivery_latency_samples'))} msgs, one at a time) | "
      f"{fmt(v('large last_delivery_latency_p50_ms'))} / {fmt(v('large last_delivery_latency_p99_ms'))} / "
      f"{fmt(v('large last_delivery_latency_max_ms'))} ms |")
print(f"| | server RSS peak (anonymous at the end) | {fmt(v('large server_end_hwm_kib', 1 / 1024))} MiB "
      f"({fmt(v('large server_end_rss_anon_kib', 1 / 1024))} MiB) |")
for n in ("10000", "19000"):
    k = f"idle{n}"
    if v(k + " server_kib_per_connection") is not None:
        print(f"| {int(n):,} idle connections | server KiB per connection (RSS) | "
              f"{fmt(v(k + ' server_kib_per_connection'))} |")
        print(f"| | server CPU for their heartbeats (ping every {fmt(v(k + ' ping_interval_s'))} s) | "
              f"{fmt(v(k + ' server_cpu_percent'))} % of a core |")
print(f"| reconnect storm, {fmt(v('storm clients_caught_up'))} clients x "
      f"{fmt((v('storm messages_pulled') or 0) / max(v('storm clients_caught_up') or 1, 1))} msgs | "
      f"all caught up | {fmt(v('storm storm_all_caught_up_s'))} s |")
print(f"| | per client, from its connect: p50 / p99 | {fmt(v('storm catchup_latency_p50_ms'))} / "
      f"{fmt(v('storm catchup_latency_p99_ms'))} ms |")
print(f"| | per client, from the storm's start: p50 / p99 | {fmt(v('storm since_storm_latency_p50_ms'))} / "
      f"{fmt(v('storm since_storm_latency_p99_ms'))} ms |")
