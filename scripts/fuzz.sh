#!/usr/bin/env bash
# Coverage-guided fuzzing (cargo fuzz, libFuzzer, nightly) of every decoder that reads
# network input; see fuzz/README.md.
#
#   bash scripts/fuzz.sh smoke [SECONDS]   each target for SECONDS (default 10): CI
#   bash scripts/fuzz.sh runs  [N]         each target for N executions (default 10,000,000)
#
# Installs cargo-fuzz when missing. A crash stops the script with libFuzzer's report and
# the input in fuzz/artifacts/<target>/; make it a regression test before fixing it.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

mode="${1:-smoke}"
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-$HOME/.cache/realtime-fuzz-target}"
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi
# The fuzz workspace builds with the main workspace's dependency versions.
cp ../Cargo.lock Cargo.lock
targets=(native_command ws_frames event_json jwt rest_bodies pusher)
cargo +nightly fuzz build -O
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  case "$mode" in
    smoke) args=(-max_total_time="${2:-10}") ;;
    runs) args=(-runs="${2:-10000000}") ;;
    *) echo "usage: $0 smoke [SECONDS] | runs [N]" >&2; exit 2 ;;
  esac
  echo "fuzz: $t ${args[*]}"
  start=$(date +%s)
  mkdir -p logs
  log="logs/$t.log"
  set +e
  cargo +nightly fuzz run -O "$t" "corpus/$t" -- "${args[@]}" -print_final_stats=1 >"$log" 2>&1
  status=$?
  set -e
  grep -E "^(Done|stat::number_of_executed_units|stat::average_exec_per_sec)" "$log" || true
  echo "fuzz: $t finished in $(( $(date +%s) - start )) s, exit $status"
  if [ "$status" != 0 ]; then
    tail -n 60 "$log"
    exit "$status"
  fi
done
