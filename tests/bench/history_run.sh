#!/usr/bin/env bash
# History and time travel benchmark (issue 16): starts two query-svcs of its
# own on 127.0.0.1 over one fresh MONGO_DB (AUTH=off), one with snapshots every
# SNAPSHOT_EVERY versions and one without (SNAPSHOT_EVERY=0), lets
# history_bench load orders with 10, 1,000 and 10,000 events (with their
# snapshots) and BENCH_EVENTS events over BENCH_DAYS days straight into that
# database (with the projections' own code), prints the latencies
# (BENCHMARKS.md, "Event history"), stops the query-svcs and drops the database.
#
#   cmake --build build && deploy/local/stack.sh start && tests/bench/history_run.sh
#
# Knobs: BENCH_BIN (build/bin), SNAPSHOT_EVERY (100), BENCH_EVENTS (100000),
#        BENCH_DAYS (1), BENCH_REPS (100), BENCH_PORT (18391; +1 for the one
#        without snapshots), MONGO_URI, FERRETDB_PG_URI (the local stack's).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
BIN=${BENCH_BIN:-build/bin}
PORT=${BENCH_PORT:-18391}
export SNAPSHOT_EVERY=${SNAPSHOT_EVERY:-100}
export MONGO_URI=${MONGO_URI:-mongodb://127.0.0.1:27017}
export FERRETDB_PG_URI=${FERRETDB_PG_URI:-postgres://postgres@127.0.0.1:${PG_PORT:-5433}/ferretdb}
DB=histbench$$
LOGS=$(mktemp -d)
PIDS=()
start() { # port snapshot_every
  AUTH=off MONGO_DB=$DB HTTP_PORT=$1 SNAPSHOT_EVERY=$2 LOG_LEVEL=warn "$BIN/query-svc" >"$LOGS/query-$1.log" 2>&1 &
  PIDS+=($!)
}
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  "$BIN/history_bench" --drop "${DB}_default" >/dev/null 2>&1 || true
  rm -rf "$LOGS"
}
trap cleanup EXIT
start "$PORT" "$SNAPSHOT_EVERY"
start $((PORT + 1)) 0
for p in "$PORT" $((PORT + 1)); do
  for _ in $(seq 1 100); do
    curl -fs "http://127.0.0.1:$p/readyz" >/dev/null && break
    sleep 0.1
  done
  curl -fs "http://127.0.0.1:$p/readyz" >/dev/null || { echo "query-svc on $p did not get ready:"; cat "$LOGS"/*; exit 1; }
done
echo "history_bench $PORT $((PORT + 1)) $DB (SNAPSHOT_EVERY=$SNAPSHOT_EVERY, BENCH_EVENTS=${BENCH_EVENTS:-100000}," \
  "BENCH_DAYS=${BENCH_DAYS:-1}, BENCH_REPS=${BENCH_REPS:-100}), $(date -u +%FT%TZ)"
"$BIN/history_bench" "$PORT" $((PORT + 1)) "$DB"
