#!/usr/bin/env bash
# The Pusher protocol peer comparison on this machine; prints Markdown tables.
#   bash benches/run-pusher.sh [runs] [seconds]     (default 3 runs of every cell, 8 s of publishing)
#   BENCH_CELLS="w1 w3" BENCH_SERVERS="realtime-pusher soketi" bash benches/run-pusher.sh 1 5
# Servers: realtime-pusher (examples/booking-server, release, one runtime thread), sockudo
# (`cargo install sockudo`, into $PEERS) and soketi (npm, benches/peers/soketi). A peer
# that is not installed is reported and skipped; BENCH_INSTALL_PEERS=1 installs sockudo
# first (a long build). Cells: W1 one public channel of 10,000 subscribers, 16 events in
# flight, published through the signed HTTP API; W2 1,000 clients in channels of 10, each
# sending 20 client events/s on its private channel (not echoed: 9 deliveries each); W3
# 10,000 idle subscribed connections. Every app limit that would throttle the load is
# raised on every server. Servers on core 0, the generator on core 1; loopback only;
# every process started here is stopped by its PID.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-3}
SECS=${2:-8}
TARGET=${CARGO_TARGET_DIR:-target}
OUT=${BENCH_OUT:-$(mktemp -d)}
PEERS=${PEERS:-$HOME/.cache/realtime-peers}
mkdir -p "$OUT" "$PEERS"
cargo build -q --release -p booking-server -p realtime-benches --bin booking-server --bin loadgen
SOCKUDO=$PEERS/sockudo/bin/sockudo
if [ ! -x "$SOCKUDO" ] && [ "${BENCH_INSTALL_PEERS:-0}" = 1 ]; then
  # sockudo's metrics exporter compiles protobuf definitions at build time.
  command -v protoc >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq protobuf-compiler
  cargo install sockudo --version 5.2.0 --locked --no-default-features --features local \
    --root "$PEERS/sockudo" --target-dir "$PEERS/sockudo-target"
fi
(cd benches/peers/soketi && npm ci --no-audit --no-fund --loglevel=error) || echo "soketi: npm install failed" >&2
PID=
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null || true; }
trap cleanup EXIT
available() {
  case "$1" in
    sockudo) [ -x "$SOCKUDO" ] || { echo "sockudo: not installed at $SOCKUDO (BENCH_INSTALL_PEERS=1 installs it)" >&2; return 1; } ;;
    soketi) [ -x benches/peers/soketi/node_modules/.bin/soketi ] || { echo "soketi: not installed" >&2; return 1; } ;;
  esac
}
start() { # server port -> sets PID
  case "$1" in
    realtime-pusher)
      RUST_LOG=error WORKER_THREADS=1 BIND=127.0.0.1:$2 PUSHER_APP_ID=app-id PUSHER_APP_KEY=app-key \
        PUSHER_APP_SECRET=app-secret CLIENT_EVENTS_PER_SECOND=1000000 RATE_PER_SECOND=1000000 \
        RATE_BURST=1000000 taskset -c 0 "$TARGET/release/booking-server" >/dev/null 2>&1 & ;;
    sockudo)
      PORT=$2 HOST=127.0.0.1 DEBUG=false SOCKUDO_DEFAULT_APP_ID=app-id SOCKUDO_DEFAULT_APP_KEY=app-key \
        SOCKUDO_DEFAULT_APP_SECRET=app-secret SOCKUDO_DEFAULT_APP_MAX_CONNECTIONS=1000000 \
        SOCKUDO_DEFAULT_APP_MAX_BACKEND_EVENTS_PER_SECOND=1000000 \
        SOCKUDO_DEFAULT_APP_MAX_CLIENT_EVENTS_PER_SECOND=1000000 \
        SOCKUDO_DEFAULT_APP_MAX_READ_REQUESTS_PER_SECOND=1000000 \
        SOCKUDO_DEFAULT_APP_ENABLE_CLIENT_MESSAGES=true RATE_LIMITER_ENABLED=false METRICS_ENABLED=false \
        taskset -c 0 "$SOCKUDO" >/dev/null 2>&1 & ;;
    soketi)
      SOKETI_PORT=$2 SOKETI_DEFAULT_APP_ID=app-id SOKETI_DEFAULT_APP_KEY=app-key \
        SOKETI_DEFAULT_APP_SECRET=app-secret SOKETI_DEFAULT_APP_ENABLE_CLIENT_MESSAGES=true \
        SOKETI_DEFAULT_APP_MAX_CONNECTIONS=-1 SOKETI_DEFAULT_APP_MAX_BACKEND_EVENTS_PER_SEC=-1 \
        SOKETI_DEFAULT_APP_MAX_CLIENT_EVENTS_PER_SEC=-1 SOKETI_DEFAULT_APP_MAX_READ_REQ_PER_SEC=-1 \
        SOKETI_METRICS_ENABLED=false taskset -c 0 benches/peers/soketi/node_modules/.bin/soketi start >/dev/null 2>&1 & ;;
  esac
  PID=$!
  for _ in $(seq 1 100); do
    (exec 3<>/dev/tcp/127.0.0.1/$2) 2>/dev/null && return 0
    sleep 0.1
  done
}
stop() { kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; PID=; }
port=18300
want() { [ -z "${BENCH_CELLS:-}" ] || [[ " $BENCH_CELLS " == *" $1 "* ]]; }
run() { # server args... -> one result line in results.jsonl
  local name=$1; shift
  port=$((port+1)); start "$name" $port
  # The server's process: soketi's shim starts node, whose PID is the child's.
  local pid=$PID
  [ "$name" = soketi ] && sleep 1 && pid=$(pgrep -P "$PID" | head -1 || echo "$PID")
  timeout 300 taskset -c 1 "$TARGET/release/loadgen" --protocol pusher --server "http://127.0.0.1:$port" \
    --server-pid "$pid" --connect-concurrency 64 "$@" 2>/dev/null | tail -1 \
    | sed "s/^{/{\"server\":\"$name\",/" >> "$OUT/results.jsonl" || true
  stop
}
for run_no in $(seq 1 "$RUNS"); do
  for name in ${BENCH_SERVERS:-realtime-pusher sockudo soketi}; do
    available "$name" || continue
    if want w1; then run "$name" --workload w1 --clients 10000 --inflight 16 --seconds "$SECS"; fi
    if want w2; then run "$name" --workload w2 --clients 1000 --room-size 10 --rate 20 --seconds "$SECS"; fi
    if want w3; then run "$name" --workload w3 --clients 10000; fi
  done
done
python3 benches/table.py "$OUT/results.jsonl"
echo "raw results: $OUT/results.jsonl"
