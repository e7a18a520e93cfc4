#!/usr/bin/env bash
# Runs the README's walk-through verbatim against a freshly started chat-server and checks
# what it promises. Used by .ci/run; also runnable by hand (port 8080 must be free).
set -euo pipefail
# Say where it stopped: a failing command under `set -e` may print nothing itself.
trap 'echo "walkthrough: stopped at line $LINENO (exit $?)" >&2' ERR
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap '[ -n "${server_pid:-}" ] && kill "$server_pid" 2>/dev/null; rm -rf "$work"' EXIT

if (exec 3<>/dev/tcp/127.0.0.1/8080) 2>/dev/null; then
  echo "walkthrough: port 8080 is in use; the README's commands need it" >&2
  exit 1
fi
server_pid=
# Build exactly what is run next: `cargo run -p chat-server` resolves features without the
# dev-dependencies that an example build brings in, so a build of both at once would leave
# the server to be rebuilt, silently, inside `cargo run` (on a cold cache, longer than a
# short health wait).
cargo build -q -p chat-server --bin chat-server
cargo build -q -p chat-server --example ws-client
DATABASE_URL="sqlite://$work/chat.db" cargo run -q -p chat-server > "$work/server.log" 2>&1 &
server_pid=$!
up=0
for _ in $(seq 1 600); do
  if curl -sf http://localhost:8080/health/live >/dev/null; then up=1; break; fi
  kill -0 "$server_pid" 2>/dev/null || break
  sleep 0.5
done
if [ "$up" = 0 ]; then
  echo "walkthrough: chat-server did not answer /health/live on port 8080; its log:" >&2
  cat "$work/server.log" >&2
  exit 1
fi

# The blocks after each <!-- walkthrough --> marker, in order, as one script.
awk '/<!-- walkthrough -->/{grab=1; next} grab && /^```sh/{inblock=1; next} inblock && /^```/{inblock=0; grab=0; next} inblock{print}' README.md > "$work/walk.sh"
# Run from the project directory, as a user in a second terminal would.
rm -f alice-ws.log
bash -euo pipefail "$work/walk.sh" > "$work/out.txt" 2>&1 || {
  echo "walkthrough: a README command failed; its output, then the server's log:" >&2
  cat "$work/out.txt" "$work/server.log"
  exit 1
}
mv alice-ws.log "$work/alice-ws.log"
log="$work/alice-ws.log"
fail=0
check() { grep -q "$2" "$1" || { echo "walkthrough: expected $2 in $(basename "$1")"; fail=1; }; }
check "$log" '"type":"auth"'
check "$log" '"type":"typing_start"'
check "$log" '"type":"user_join"'
check "$log" '"type":"event.message.send"'
check "$log" 'Hello everyone!'
check "$work/out.txt" '"has_more":false'
check "$work/out.txt" '"events_published"'
if [ "$fail" = 1 ]; then cat "$work/out.txt" "$log"; exit 1; fi
cut -c1-160 "$log"
echo "walkthrough: README walk-through works as written"
