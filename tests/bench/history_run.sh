#!/usr/bin/env bash
# History and time travel benchmark (issue 16): starts a query-svc of its own
# (AUTH=off, a fresh MONGO_DB) on 127.0.0.1, lets history_bench load orders
# with 10, 1,000 and 10,000 events and BENCH_EVENTS events over a day straight
# into that database (with the projections' own code), prints the latencies
# (BENCHMARKS.md, "Event history"), stops query-svc and drops the database.
#
#   cmake --build build && deploy/local/stack.sh start && tests/bench/history_run.sh
#
# Knobs: BENCH_BIN (build/bin), BENCH_EVENTS (100000), BENCH_REPS (100),
#        BENCH_PORT (18391), MONGO_URI, FERRETDB_PG_URI (the local stack's).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
BIN=${BENCH_BIN:-build/bin}
PORT=${BENCH_PORT:-18391}
export MONGO_URI=${MONGO_URI:-mongodb://127.0.0.1:27017}
export FERRETDB_PG_URI=${FERRETDB_PG_URI:-postgres://postgres@127.0.0.1:${PG_PORT:-5433}/ferretdb}
DB=histbench$$
LOG=$(mktemp)
AUTH=off MONGO_DB=$DB HTTP_PORT=$PORT LOG_LEVEL=warn "$BIN/query-svc" >"$LOG" 2>&1 &
QPID=$!
cleanup() {
  kill "$QPID" 2>/dev/null || true
  wait "$QPID" 2>/dev/null || true
  "$BIN/history_bench" --drop "${DB}_default" >/dev/null 2>&1 || true
  rm -f "$LOG"
}
trap cleanup EXIT
for _ in $(seq 1 100); do
  curl -fs "http://127.0.0.1:$PORT/readyz" >/dev/null && break
  sleep 0.1
done
curl -fs "http://127.0.0.1:$PORT/readyz" >/dev/null || { echo "query-svc did not get ready:"; cat "$LOG"; exit 1; }
echo "history_bench $PORT $DB (BENCH_EVENTS=${BENCH_EVENTS:-100000}, BENCH_REPS=${BENCH_REPS:-100}), $(date -u +%FT%TZ)"
"$BIN/history_bench" "$PORT" "$DB"
