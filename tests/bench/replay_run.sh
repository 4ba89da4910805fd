#!/usr/bin/env bash
# Replay benchmark (issue 11): starts admin-svc, projector-svc and query-svc of
# its own (AUTH=off, a fresh TOPIC_PREFIX and MONGO_DB) on 127.0.0.1, puts
# BENCH_EVENTS UserCreated events straight on the events topic, and lets
# replay_bench measure the live projector's rate, a replay from the beginning
# (its rate, the swap) and query-svc's answers during it (BENCHMARKS.md,
# "Replays"). Stops what it started; the topics and database stay (names printed).
#
#   cmake --build build && tests/bench/replay_run.sh
#
# Knobs: BENCH_BIN (build/bin), BENCH_EVENTS (100000; the issue's 1,000,000 takes
#        about ten times as long), BENCH_PORT (18491: admin, +1 projector, +2 query),
#        KAFKA_BROKERS, MONGO_URI (default: the local stack's FerretDB; BENCHMARKS.md's runs
#        used a FerretDB of their own on the stack's PostgreSQL), FERRETDB_PG_URI (passed
#        on: the PostgreSQL behind MONGO_URI, for the GIN indexes). A 1,000,000-event run
#        leaves about 2.8 GB in that PostgreSQL: drop the database when done.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
BIN=${BENCH_BIN:-build/bin}
PORT=${BENCH_PORT:-18491}
EVENTS=${BENCH_EVENTS:-100000}
export KAFKA_BROKERS=${KAFKA_BROKERS:-127.0.0.1:9092}
export MONGO_URI=${MONGO_URI:-mongodb://127.0.0.1:27017}
export AUTH=off LOG_LEVEL=warn MONGO_DB=replaybench$$ TOPIC_PREFIX=replaybench$$.
LOGS=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT
"$BIN/replay_bench" load "$EVENTS"
start() { # name port
  HTTP_PORT=$2 "$BIN/$1" >"$LOGS/$1.log" 2>&1 &
  PIDS+=($!)
}
start admin-svc "$PORT"
STARTED=$(date +%s%3N)
start projector-svc $((PORT + 1))
start query-svc $((PORT + 2))
for p in "$PORT" $((PORT + 1)) $((PORT + 2)); do
  for _ in $(seq 1 300); do curl -fs "http://127.0.0.1:$p/readyz" >/dev/null && break; sleep 0.1; done
  curl -fs "http://127.0.0.1:$p/readyz" >/dev/null || { echo "port $p did not get ready; logs in $LOGS"; exit 1; }
done
echo "replay_bench: $EVENTS events, topics ${TOPIC_PREFIX}*, database ${MONGO_DB}_default, $(date -u +%FT%TZ), logs $LOGS"
"$BIN/replay_bench" run "$PORT" $((PORT + 2)) "$EVENTS" "$STARTED"
