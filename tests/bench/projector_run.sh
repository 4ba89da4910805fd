#!/usr/bin/env bash
# Projector throughput by the read models it runs (issue 16: what the event
# history and the snapshots cost): for each run, a fresh TOPIC_PREFIX and
# MONGO_DB, BENCH_EVENTS events put on the log first (replay_bench load: one
# UserCreated per user, or users of BENCH_PER_USER events), then projector-svc
# started with PROJECTIONS=<set>, timed from its start (start-up included)
# until each projection of the set has applied everything (its /metrics:
# events_applied_total, polled every 100 ms; snapshots: the writes it must
# make), and each projection's rate printed. Stops what it started; drops the
# databases (BENCH_KEEP=1 keeps them); the topics stay (names printed).
#
#   cmake --build build && deploy/local/stack.sh start && tests/bench/projector_run.sh
#
# Knobs: BENCH_BIN (build/bin), BENCH_EVENTS (30000), BENCH_PER_USER (1),
#        BENCH_SETS (space-separated PROJECTIONS values; default: user_profiles, then
#        user_profiles,event_history), SNAPSHOT_EVERY (100), BENCH_PORT (18591),
#        KAFKA_BROKERS, MONGO_URI, FERRETDB_PG_URI (the local stack's: GIN indexes as in use).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
BIN=${BENCH_BIN:-build/bin}
PORT=${BENCH_PORT:-18591}
EVENTS=${BENCH_EVENTS:-30000}
PER=${BENCH_PER_USER:-1}
SETS=${BENCH_SETS:-"user_profiles user_profiles,event_history"}
export SNAPSHOT_EVERY=${SNAPSHOT_EVERY:-100}
export KAFKA_BROKERS=${KAFKA_BROKERS:-127.0.0.1:9092}
export MONGO_URI=${MONGO_URI:-mongodb://127.0.0.1:27017}
export FERRETDB_PG_URI=${FERRETDB_PG_URI:-postgres://postgres@127.0.0.1:${PG_PORT:-5433}/ferretdb}
export AUTH=off LOG_LEVEL=${LOG_LEVEL:-warn}
LOGS=$(mktemp -d)
PID=
DBS=()
cleanup() {
  [[ -n $PID ]] && { kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; }
  if [[ -z ${BENCH_KEEP:-} ]]; then
    for db in "${DBS[@]}"; do "$BIN/history_bench" --drop "$db" >/dev/null 2>&1 || true; done
  fi
}
trap cleanup EXIT
now_ms() { date +%s%3N; }
# the value of events_applied_total{projection="$1"} on the projector's /metrics (0 when absent)
applied() {
  curl -fs "http://127.0.0.1:$PORT/metrics" 2>/dev/null |
    awk -v s="events_applied_total{projection=\"$1\"}" '$1 == s { v = $2 } END { print v + 0 }'
}
echo "projector_run: BENCH_EVENTS=$EVENTS BENCH_PER_USER=$PER SNAPSHOT_EVERY=$SNAPSHOT_EVERY, $(date -u +%FT%TZ), logs $LOGS"
i=0
for set in $SETS; do
  i=$((i + 1))
  export MONGO_DB=projbench$$x$i TOPIC_PREFIX=projbench$$x$i.
  DBS+=("$MONGO_DB" "${MONGO_DB}_default") # its progress reports, its read models
  "$BIN/replay_bench" load "$EVENTS" "$PER" >/dev/null
  started=$(now_ms)
  PROJECTIONS=$set HTTP_PORT=$PORT "$BIN/projector-svc" >"$LOGS/projector-$i.log" 2>&1 &
  PID=$!
  declare -A done_at=()
  names=${set//,/ }
  deadline=$((started + 600000))
  while :; do
    all=1
    for p in $names; do
      [[ -n ${done_at[$p]:-} ]] && continue
      want=$EVENTS
      [[ $p == snapshots ]] && want=$(( (EVENTS / PER) * (PER / SNAPSHOT_EVERY) )) # one per K versions of each user
      if (( $(applied "$p") >= want )); then done_at[$p]=$(now_ms); else all=0; fi
    done
    (( all )) && break
    (( $(now_ms) > deadline )) && { echo "PROJECTIONS=$set: not done within 600 s; log $LOGS/projector-$i.log"; exit 1; }
    sleep 0.1
  done
  line="PROJECTIONS=$set:"
  for p in $names; do
    ms=$((done_at[$p] - started))
    line+=" $p $(awk -v n="$EVENTS" -v ms="$ms" 'BEGIN { printf "%.1f s, %.0f events/s;", ms / 1000, n * 1000 / ms }')"
  done
  echo "$line"
  kill "$PID"
  wait "$PID" 2>/dev/null || true
  PID=
  unset done_at
done
