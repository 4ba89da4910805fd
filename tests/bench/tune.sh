#!/usr/bin/env bash
# The measurements behind command-svc's defaults (README, "Why lanes"): for each variant of
# the settings, Kafka ingress (commands/s) and HTTP ingress at 64 and 256 connections
# (commands/s, p50, p99), plus where a transaction's time went (transaction_phase_seconds).
# Not a test. Needs the local stack (make run or deploy/local/stack.sh start).
#
#   tests/bench/tune.sh                                  every variant below
#   tests/bench/tune.sh "COMMAND_LANES=1" "COMMAND_LANES=3 KAFKA_LINGER_MS=5"   your own
# Knobs: TUNE_COMMANDS (20000), TUNE_HTTP_SECONDS (10), BENCH_BIN (build/bin),
#        BENCH_KEEP (1: keep each variant's topics)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
. tests/bench/lib.sh
BIN=${BENCH_BIN:-build/bin} # BENCH_BIN: the binaries of another build
BROKERS=${KAFKA_BROKERS:-127.0.0.1:9092}
N=${TUNE_COMMANDS:-20000}
SECS=${TUNE_HTTP_SECONDS:-10}
PORT=18188
LOG=.local/log/tune-$(date +%s)
mkdir -p "$LOG"
if [ $# -eq 0 ]; then
  set -- "COMMAND_LANES=1" "COMMAND_LANES=2" "COMMAND_LANES=3" "COMMAND_LANES=6" \
    "COMMAND_LANES=3 KAFKA_LINGER_MS=0" "COMMAND_LANES=3 KAFKA_LINGER_MS=5" \
    "COMMAND_LANES=3 COMMAND_BATCH_MAX=500"
fi

pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; true; }
trap cleanup EXIT

phases() {
  curl -fsS "http://127.0.0.1:$PORT/metrics" | awk '
    /^transaction_phase_seconds_sum/ { split($1, a, "\""); s[a[2]] = $2 }
    /^transaction_phase_seconds_count/ { split($1, a, "\""); c[a[2]] = $2 }
    /^transaction_commands_sum/ { cs = $2 } /^transaction_commands_count/ { cc = $2 }
    END { if (cc > 0) printf "txn: %d, %.0f commands each, decide %.1f ms, offsets %.1f ms, commit %.1f ms",
            cc, cs / cc, 1000 * s["decide"] / c["decide"], 1000 * s["offsets"] / c["offsets"], 1000 * s["commit"] / c["commit"] }'
}

run_variant() { # "NAME=value ..."
  local prefix=tune$(date +%s%N | tail -c 9).
  env AUTH=off TOPIC_PREFIX="$prefix" HTTP_PORT=$PORT $1 "$BIN/command-svc" >"$LOG/${prefix}log" 2>&1 &
  pid=$!
  for _ in $(seq 1 600); do curl -fsS "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
  local k
  k=$("$BIN/command_bench" kafka "$BROKERS" "$prefix" "$N" | sed -E 's/.*commands_per_s=([0-9.]+).*/\1/')
  local out="[tune] $1: kafka $k/s; $(phases)"
  for c in 64 256; do
    wrk -t2 -c$c -d2s -s tests/bench/create_user.lua "http://127.0.0.1:$PORT" >/dev/null
    out+=$(wrk -t2 -c$c -d"${SECS}s" --latency -s tests/bench/create_user.lua "http://127.0.0.1:$PORT" |
      awk -v c=$c '/Requests\/sec/ {r=$2} $1=="50%" {p50=$2} $1=="99%" {p99=$2} END {printf "; http c%d %.0f/s p50 %s p99 %s", c, r, p50, p99}')
  done
  echo "$out; all: $(phases)"
  cleanup; pid=
  bench_drop_topics "$BROKERS" "$prefix"
}

for v in "$@"; do run_variant "$v"; done
echo "[tune] logs in $LOG"
