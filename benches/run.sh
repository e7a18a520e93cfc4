#!/usr/bin/env bash
# Runs the peer comparison on this machine and prints a Markdown table.
#   bash benches/run.sh [runs]      (default 3 runs of each W1; W3 once)
# Servers are pinned to core 0 and the generator to core 1 (taskset); every Rust server runs
# a single-threaded tokio runtime; release builds. Every process this script starts is
# stopped by its PID. Loopback only; each workload is bounded in time.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-3}
TARGET=${CARGO_TARGET_DIR:-target}
OUT=$(mktemp -d)
export JWT_SECRET='bench-secret-bench-secret-bench-secret!'
cargo build -q --release -p chat-server -p realtime-benches --bins
(cd benches/peers/node-socketio && npm ci --no-audit --no-fund --loglevel=error)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

start() { # name port -> sets PID
  case "$1" in
    realtime) rm -f "$OUT"/chat.db*
      RUST_LOG=error WORKER_THREADS=1 BIND=127.0.0.1:$2 DATABASE_URL="sqlite://$OUT/chat.db" RATE_PER_SECOND=1000000 RATE_BURST=1000000 \
        MAX_CONNECTIONS_PER_USER=100000 taskset -c 0 "$TARGET/release/chat-server" >/dev/null 2>&1 & ;;
    socketioxide) taskset -c 0 "$TARGET/release/peer_socketioxide" 127.0.0.1:$2 >/dev/null 2>&1 & ;;
    node-socketio) taskset -c 0 node benches/peers/node-socketio/server.mjs $2 >/dev/null 2>&1 & ;;
    raw) taskset -c 0 "$TARGET/release/peer_raw" 127.0.0.1:$2 >/dev/null 2>&1 & ;;
  esac
  PID=$!; PIDS+=("$PID"); sleep 1.5
}
proto() { case "$1" in realtime) echo native ;; raw) echo raw ;; *) echo socketio ;; esac; }
gen() { # name port args...
  local name=$1 port=$2; shift 2
  timeout 300 taskset -c 1 "$TARGET/release/loadgen" --protocol "$(proto "$name")" --server "http://127.0.0.1:$port" \
    --server-pid "$PID" --connect-concurrency 64 "$@" 2>/dev/null | tail -1 | sed "s/^{/{\"server\":\"$name\",/" >> "$OUT/results.jsonl" || true
}
port=18100
for name in realtime socketioxide node-socketio raw; do
  for clients in 1000 10000; do
    for run in $(seq 1 "$RUNS"); do
      port=$((port+1)); start "$name" $port
      gen "$name" $port --workload w1 --clients $clients --inflight 16 --seconds 10
      kill "$PID"; wait "$PID" 2>/dev/null || true
      [ "$clients" = 10000 ] && break   # one run at C=10,000 (connection set-up dominates the time)
    done
  done
  port=$((port+1)); start "$name" $port
  gen "$name" $port --workload w3 --clients 10000
  kill "$PID"; wait "$PID" 2>/dev/null || true
done
python3 - "$OUT/results.jsonl" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
def med(xs):
    xs = [x for x in xs if x is not None]
    return (statistics.median(xs), min(xs), max(xs)) if xs else (None, None, None)
print("| server | workload | runs | deliveries/s median (min–max) | server CPU µs/delivery | p50 / p99 latency ms | losses | generator CPU share |")
print("|---|---|---|---|---|---|---|---|")
for server in ["realtime", "socketioxide", "node-socketio", "raw"]:
    for clients in [1000, 10000]:
        rs = [r for r in rows if r["server"] == server and r["workload"] == "w1" and r["clients"] == clients]
        if not rs: continue
        bad = [r for r in rs if "error" in r]
        if bad:
            print(f"| {server} | W1 C={clients}, 16 in flight | {len(rs)} | failed: {bad[0]['error']} ({bad[0].get('connected')} of {clients} connected) | – | – | – | – |")
            continue
        d = med([r["deliveries_per_second"] for r in rs]); c = med([r["server_cpu_us_per_delivery"] for r in rs])
        p50 = med([r["latency_us"]["p50"] for r in rs])[0] / 1000; p99 = med([r["latency_us"]["p99"] for r in rs])[0] / 1000
        g = med([r["generator_cpu_share"] for r in rs])[0]
        print(f"| {server} | W1 C={clients}, 16 in flight | {len(rs)} | {d[0]:,.0f} ({d[1]:,.0f}–{d[2]:,.0f}) | {c[0]:.2f} | {p50:.1f} / {p99:.1f} | {sum(r['losses'] for r in rs)} | {g:.2f} |")
print()
print("| server | W3: idle connections | RSS at 0 KiB | RSS at N KiB | KiB per connection |")
print("|---|---|---|---|---|")
for server in ["realtime", "socketioxide", "node-socketio", "raw"]:
    for r in [r for r in rows if r["server"] == server and r["workload"] == "w3"]:
        print(f"| {server} | {r['clients']} | {r['server_rss_kib_idle_0']} | {r['server_rss_kib_idle_n']} | {r['kib_per_connection']:.1f} |")
PY
echo "raw results: $OUT/results.jsonl"
