#!/usr/bin/env bash
# A few seconds of the load generator against a debug chat-server: it must connect,
# deliver without loss and report. The numbers mean nothing here (debug build, CI).
set -euo pipefail
# Say where it stopped: a failing command under `set -e` may print nothing itself.
trap 'echo "loadgen smoke: stopped at line $LINENO (exit $?)" >&2' ERR
cd "$(dirname "$0")/.."
TARGET=${CARGO_TARGET_DIR:-target}
work=$(mktemp -d)
cargo build -q -p chat-server -p realtime-benches --bin chat-server --bin loadgen
export JWT_SECRET='smoke-secret-smoke-secret-smoke-secret!'
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
RUST_LOG=error BIND=127.0.0.1:$port DATABASE_URL="sqlite://$work/chat.db" RATE_PER_SECOND=100000 RATE_BURST=100000 \
  "$TARGET/debug/chat-server" > "$work/server.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/health/live" >/dev/null && break; sleep 0.1; done
w1=$("$TARGET/debug/loadgen" --server "http://127.0.0.1:$port" --workload w1 --clients 20 --inflight 4 --seconds 2 --server-pid $pid)
w2=$("$TARGET/debug/loadgen" --server "http://127.0.0.1:$port" --workload w2 --clients 20 --room-size 5 --rate 5 --seconds 2 --server-pid $pid)
w3=$("$TARGET/debug/loadgen" --server "http://127.0.0.1:$port" --workload w3 --clients 50 --server-pid $pid)
echo "loadgen smoke: $w1"
echo "loadgen smoke: $w2"
echo "loadgen smoke: $w3"
echo "$w1" | python3 -c 'import json,sys; r=json.load(sys.stdin); assert r["deliveries"] > 0 and r["losses"] == 0, r'
echo "$w3" | python3 -c 'import json,sys; r=json.load(sys.stdin); assert r["server_rss_kib_idle_n"] > 0, r'
echo "$w2" | python3 -c 'import json,sys; r=json.load(sys.stdin); assert r["deliveries"] > 0 and r["losses"] == 0, r'
echo "$w2" | python3 -c 'import json,sys; r=json.load(sys.stdin); assert 0 < r["server_cpu_share"] < 64, r'
# The runtime's threads did the fan-out (the main thread with WORKER_THREADS=1, tokio's
# workers otherwise, as here): they have CPU time of their own in the split, and the parts
# add up to the whole give or take each thread's rounding to the 10 ms tick.
echo "$w1" | python3 -c 'import json,sys; r=json.load(sys.stdin); t=r["server_cpu_us_by_thread"]; assert t.get("chat-server", 0) + t.get("tokio-rt-worker", 0) > 0 and sum(t.values()) <= r["server_cpu_us"] + 20000 * len(t), r'
# The tables benches/run.sh prints, from these three results: every column filled.
for r in "$w1" "$w2" "$w3"; do echo "$r" | sed 's/^{/{"server":"realtime",/'; done > "$work/results.jsonl"
tables=$(python3 benches/table.py "$work/results.jsonl")
echo "$tables"
echo "$tables" | python3 -c '
import sys
rows = [l for l in sys.stdin.read().splitlines() if l.startswith("| realtime |")]
assert len(rows) == 3, rows  # W1, W2, W3
for row in rows[:2]:
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert len(cells) == 8 and "–" not in cells and "failed" not in row, row
'
# The Pusher framing against a debug booking-server: HTTP API triggers (W1), client
# events on private channels (W2), idle subscribed connections (W3).
cargo build -q -p booking-server
pport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
RUST_LOG=error BIND=127.0.0.1:$pport PUSHER_APP_SECRET=app-secret CLIENT_EVENTS_PER_SECOND=1000 \
  "$TARGET/debug/booking-server" > "$work/booking.log" 2>&1 &
ppid=$!
trap 'kill $pid $ppid 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$pport/health" >/dev/null && break; sleep 0.1; done
pusher() { "$TARGET/debug/loadgen" --protocol pusher --server "http://127.0.0.1:$pport" --server-pid $ppid "$@"; }
p1=$(pusher --workload w1 --clients 20 --inflight 4 --seconds 2)
p2=$(pusher --workload w2 --clients 20 --room-size 5 --rate 5 --seconds 2)
p3=$(pusher --workload w3 --clients 50)
for r in "$p1" "$p2" "$p3"; do echo "loadgen smoke (pusher): $r"; done
for r in "$p1" "$p2"; do
  echo "$r" | python3 -c 'import json,sys; r=json.load(sys.stdin); assert r["protocol"] == "pusher" and r["deliveries"] > 0 and r["losses"] == 0, r'
done
echo "$p3" | python3 -c 'import json,sys; r=json.load(sys.stdin); assert r["failed"] == 0 and r["server_rss_kib_idle_n"] > 0, r'
