#!/usr/bin/env bash
# Runs the peer comparison on this machine and prints Markdown tables.
#   bash benches/run.sh [runs] [seconds]     (default 3 runs of every cell, 8 s of publishing)
#   BENCH_CELLS="w1-10000-16 w3" bash benches/run.sh   (only those cells: w1-<C>-2|16|rate,
#                                                      w2-1|10|20|40, w3)
#   BENCH_SERVERS="realtime" bash benches/run.sh       (only those servers: realtime,
#                                                      socketioxide, node-socketio, raw)
# Servers are pinned to core 0 and the generator to core 1 (taskset); every Rust server runs
# a single-threaded tokio runtime; release builds. Every process this script starts is
# stopped by its PID. Loopback only; each workload is bounded in time (`timeout`).
# Workloads (issue 6): W1 fan-out to one room of C = 1,000 and 10,000 (closed loop with 2
# and 16 in flight, and a fixed rate), W2 many rooms (1,000 clients in rooms of 10, each
# publishing 1/10/20/40 msg/s), W3 idle connections (RSS per connection).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-3}
SECS=${2:-8}
TARGET=${CARGO_TARGET_DIR:-target}
OUT=${BENCH_OUT:-$(mktemp -d)}
mkdir -p "$OUT"
export JWT_SECRET='bench-secret-bench-secret-bench-secret!'
cargo build -q --release -p chat-server -p realtime-benches --bins
(cd benches/peers/node-socketio && npm ci --no-audit --no-fund --loglevel=error)
PID=
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null || true; }
trap cleanup EXIT

start() { # server port -> sets PID
  case "$1" in
    realtime|realtime-presence) rm -f "$OUT"/chat.db*
      local presence=false; [ "$1" = realtime-presence ] && presence=true
      RUST_LOG=error WORKER_THREADS=1 BIND=127.0.0.1:$2 DATABASE_URL="sqlite://$OUT/chat.db" \
        RATE_PER_SECOND=1000000 RATE_BURST=1000000 MAX_CONNECTIONS_PER_USER=100000 \
        AUTO_SUBSCRIBE_PRESENCE=$presence taskset -c 0 "$TARGET/release/chat-server" >/dev/null 2>&1 & ;;
    socketioxide) taskset -c 0 "$TARGET/release/peer_socketioxide" 127.0.0.1:$2 >/dev/null 2>&1 & ;;
    node-socketio) taskset -c 0 node benches/peers/node-socketio/server.mjs $2 >/dev/null 2>&1 & ;;
    raw) taskset -c 0 "$TARGET/release/peer_raw" 127.0.0.1:$2 >/dev/null 2>&1 & ;;
  esac
  PID=$!
  for _ in $(seq 1 100); do
    (exec 3<>/dev/tcp/127.0.0.1/$2) 2>/dev/null && return 0
    sleep 0.1
  done
}
stop() { kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; PID=; }
proto() { case "$1" in realtime*) echo native ;; raw) echo raw ;; *) echo socketio ;; esac; }
port=18100
want() { # cell -> whether BENCH_CELLS (space-separated, default: all) includes it
  [ -z "${BENCH_CELLS:-}" ] || [[ " $BENCH_CELLS " == *" $1 "* ]]
}
run() { # server args... -> one result line in results.jsonl
  local name=$1; shift
  port=$((port+1)); start "$name" $port
  timeout 300 taskset -c 1 "$TARGET/release/loadgen" --protocol "$(proto "$name")" --server "http://127.0.0.1:$port" \
    --server-pid "$PID" --connect-concurrency 64 "$@" 2>/dev/null | tail -1 \
    | sed "s/^{/{\"server\":\"$name\",/" >> "$OUT/results.jsonl" || true
  stop
}
for run_no in $(seq 1 "$RUNS"); do
  for name in ${BENCH_SERVERS:-realtime socketioxide node-socketio raw}; do
    for clients in 1000 10000; do
      rate=$(( clients == 1000 ? 100 : 20 ))   # 100,000 and 200,000 deliveries/s offered
      if want w1-$clients-2; then run "$name" --workload w1 --clients $clients --inflight 2 --seconds "$SECS"; fi
      if want w1-$clients-16; then run "$name" --workload w1 --clients $clients --inflight 16 --seconds "$SECS"; fi
      if want w1-$clients-rate; then run "$name" --workload w1 --clients $clients --rate $rate --seconds "$SECS"; fi
    done
    for rate in 1 10 20 40; do
      if want w2-$rate; then run "$name" --workload w2 --clients 1000 --room-size 10 --rate $rate --seconds "$SECS"; fi
    done
    if want w3; then run "$name" --workload w3 --clients 10000; fi
  done
  if want w3 && [[ " ${BENCH_SERVERS:-realtime} " == *" realtime "* ]]; then
    run realtime-presence --workload w3 --clients 10000
  fi
done
python3 benches/table.py "$OUT/results.jsonl"
echo "raw results: $OUT/results.jsonl"
