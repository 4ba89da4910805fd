#!/usr/bin/env bash
# Saga benchmark: orders/s through the order placement saga end to end, the cost
# a running saga-svc adds to the command path (the same CreateOrder commands
# with command-svc alone, then with saga-svc: ratio), and the order deadline
# saga's precision (fired - due) and memory per pending deadline, and how soon
# a compensation is visible through query-svc under light load. Not a test:
# numbers go to BENCHMARKS.md.
#
#   tests/bench/saga_run.sh       (make run or deploy/local/stack.sh start first)
# Knobs: BENCH_SAGA_ORDERS (20000), BENCH_SAGA_USERS (10000), BENCH_SAGA_PAIRS (2:
#        alone, with saga-svc, alone, ...; medians), BENCH_DEADLINES (100000),
#        BENCH_DEADLINE_OFFSET (120 s from the start to the first processBy),
#        BENCH_DEADLINE_SPREAD (30 s over which the processBy are spread),
#        BENCH_DEADLINE_RESTART (1: restart saga-svc once every deadline is held,
#        before the first is due, and read the restored instance's VmRSS),
#        BENCH_SAGA_VISIBLE_RATE (5 orders/s), BENCH_SAGA_VISIBLE_SECONDS (30),
#        BENCH_SAGA_PHASES ("orders deadlines visible"),
#        BENCH_PORT (18290; +1 saga-svc, +2 projector-svc, +3 query-svc),
#        BENCH_BIN (build/bin), BENCH_KEEP (1: keep the run's topics), FERRETDB_PG_URI (the local stack's, unless MONGO_URI is set)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
. tests/bench/lib.sh
BIN=${BENCH_BIN:-build/bin} # BENCH_BIN: the binaries of another build
BROKERS=${KAFKA_BROKERS:-127.0.0.1:9092}
N=${BENCH_SAGA_ORDERS:-20000}
USERS=${BENCH_SAGA_USERS:-10000}
PAIRS=${BENCH_SAGA_PAIRS:-2}
D=${BENCH_DEADLINES:-100000}
OFFSET=${BENCH_DEADLINE_OFFSET:-120}
SPREAD=${BENCH_DEADLINE_SPREAD:-30}
PHASES=${BENCH_SAGA_PHASES:-orders deadlines visible}
VIS_RATE=${BENCH_SAGA_VISIBLE_RATE:-5}
VIS_S=${BENCH_SAGA_VISIBLE_SECONDS:-30}
RESTART=${BENCH_DEADLINE_RESTART:-1}
CPORT=${BENCH_PORT:-18290}
SPORT=$((CPORT + 1)) PPORT=$((CPORT + 2)) QPORT=$((CPORT + 3))
# Both services as tenant "default" without credentials: with AUTH=off saga
# commands need no SAGA_SIGNING_KEY (README, Sagas).
export AUTH=off
# As make run gives them: the PostgreSQL behind the local FerretDB, where the
# projector keeps its indexes and query-svc's waiting reads probe versions
# (without it every waiting read's poll reads the whole collection).
[ -z "${MONGO_URI:-}" ] && export FERRETDB_PG_URI=${FERRETDB_PG_URI:-postgres://postgres@127.0.0.1:${PG_PORT:-5433}/ferretdb}
RUN=sagabench$(date +%s)
LOG=.local/log/bench-$RUN
mkdir -p "$LOG"
say() { echo "[saga-bench] $*"; }

cmd_pid= saga_pid= proj_pid= query_pid=
stop() { # pid
  [ -n "$1" ] && kill "$1" 2>/dev/null && wait "$1" 2>/dev/null
  true
}
cleanup() { stop "$saga_pid"; stop "$cmd_pid"; stop "$proj_pid"; stop "$query_pid"; saga_pid= cmd_pid= proj_pid= query_pid=; }
trap 'cleanup; bench_drop_topics "$BROKERS" "$RUN"' EXIT

await_ready() { # pid port log
  for _ in $(seq 1 900); do
    curl -fsS "http://127.0.0.1:$2/readyz" >/dev/null 2>&1 && return 0
    kill -0 "$1" 2>/dev/null || { say "died: $3"; exit 1; }
    sleep 0.1
  done
  say "not ready: $3"; exit 1
}

start() { # service prefix port: sets started_pid
  local log="$LOG/$1-$2log"
  TOPIC_PREFIX=$2 HTTP_PORT=$3 KAFKA_BROKERS=$BROKERS "$BIN/$1" >"$log" 2>&1 &
  started_pid=$!
  await_ready "$started_pid" "$3" "$log"
}

seed() { # prefix
  "$BIN/command_bench" seed "$BROKERS" "$1" "$USERS" 2>/dev/null | sed 's/^/[saga-bench]   /'
}

metric_sum() { # port series-regex: the sum of the matching series
  curl -fsS "http://127.0.0.1:$1/metrics" | awk -v re="$2" '$1 ~ re {s += $2} END {printf "%g", s}'
}

# p50 and p99 of a histogram on port's /metrics, as the upper bound of the bucket
# that holds them, and its mean; with a label (e.g. projection="order_summaries"),
# only the series that carry it.
histogram() { # port name [label]
  curl -fsS "http://127.0.0.1:$1/metrics" | awk -v h="$2" -v l="${3:-}" '
    l != "" && index($1, l) == 0 { next }
    index($1, h "_bucket{") == 1 { split($1, a, "le=\""); le = a[2]; sub(/".*/, "", le); b[++n] = le; c[n] = $2 }
    $1 == h "_sum" || index($1, h "_sum{") == 1 { sum = $2 } $1 == h "_count" || index($1, h "_count{") == 1 { cnt = $2 }
    END {
      if (!cnt) { print "no observations"; exit }
      for (i = 1; i <= n; i++) { if (!p50 && c[i] >= cnt / 2) p50 = b[i]; if (!p99 && c[i] >= cnt * 0.99) p99 = b[i] }
      printf "count=%d mean_s=%.3f p50_s<=%s p99_s<=%s\n", cnt, sum / cnt, p50, p99 }'
}

cpu_of() { # pid: user + system CPU seconds it has used
  awk -v t="$(getconf CLK_TCK)" '{sub(/.*\) /, ""); printf "%.1f", ($12 + $13) / t}' "/proc/$1/stat"
}

median() { sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
field() { sed -E "s/.*[ ]$1=([0-9.]+).*/\\1/"; } # field name < line

alone=() with=() orders=() e2e=()
if [[ " $PHASES " == *" orders "* ]]; then
  for k in $(seq 1 "$PAIRS"); do
    P=$RUN-a$k.
    say "pair $k, command-svc alone: $USERS users seeded, $N CreateOrder commands produced keyed, results read back"
    seed "$P"
    start command-svc "$P" "$CPORT"; cmd_pid=$started_pid
    say "  $BIN/saga_bench orders $BROKERS $P $N $USERS"
    line=$("$BIN/saga_bench" orders "$BROKERS" "$P" "$N" "$USERS") || say "  (incomplete)"
    say "  $line"
    say "  command-svc cpu_s=$(cpu_of "$cmd_pid")"
    alone+=("$(echo "$line" | field commands_per_s)")
    cleanup

    P=$RUN-b$k.
    say "pair $k, command-svc and saga-svc: the same, then until every order_placement saga has ended"
    seed "$P"
    start command-svc "$P" "$CPORT"; cmd_pid=$started_pid
    start saga-svc "$P" "$SPORT"; saga_pid=$started_pid
    say "  $BIN/saga_bench orders $BROKERS $P $N $USERS saga"
    line=$("$BIN/saga_bench" orders "$BROKERS" "$P" "$N" "$USERS" saga) || say "  (incomplete)"
    say "  $line"
    say "  saga-svc: transactions=$(metric_sum "$SPORT" '^saga_transactions_total') records=$(metric_sum "$SPORT" '^saga_records_total') commands_emitted=$(metric_sum "$SPORT" '^saga_commands_emitted_total') cpu_s=$(cpu_of "$saga_pid"); command-svc cpu_s=$(cpu_of "$cmd_pid")"
    with+=("$(echo "$line" | field commands_per_s)")
    orders+=("$(echo "$line" | field orders_per_s)")
    e2e+=("$(echo "$line" | sed -E 's/.*(created_to_saga_end_p50_ms=[0-9]+ created_to_saga_end_p99_ms=[0-9]+).*/\1/')")
    cleanup
  done
fi

d_lines=()
if [[ " $PHASES " == *" deadlines "* ]]; then
  P=$RUN-d.
  PIDFILE=$LOG/saga-svc.pid
  say "deadlines: $D orders with processBy from now + ${OFFSET}s over ${SPREAD}s; saga-svc's VmRSS before and with all pending"
  seed "$P"
  start command-svc "$P" "$CPORT"; cmd_pid=$started_pid
  start saga-svc "$P" "$SPORT"; saga_pid=$started_pid
  echo "$saga_pid" >"$PIDFILE"
  say "  $BIN/saga_bench deadlines $BROKERS $P $D $USERS $OFFSET $SPREAD $PIDFILE"
  while IFS= read -r l; do
    say "  $l"; d_lines+=("$l")
    # Once every deadline is held and the placement sagas ended: a new saga-svc
    # restores them from saga-state, and its VmRSS is the memory of the held
    # instances without the run's allocation history. It fires them.
    if [ "$RESTART" = 1 ] && [ ${#d_lines[@]} = 1 ]; then
      stop "$saga_pid"
      t=$(date +%s%N)
      start saga-svc "$P" "$SPORT"; saga_pid=$started_pid
      echo "$saga_pid" >"$PIDFILE"
      l="restarted saga-svc: ready after $(( ($(date +%s%N) - t) / 1000000 )) ms, $(grep -o '"sagas":"[0-9]*"' "$LOG/saga-svc-${P}log" | tail -1) restored, VmRSS $(awk '/^VmRSS/ {print $2}' "/proc/$saga_pid/status") kB"
      say "  $l"; d_lines+=("$l")
    fi
  done < <("$BIN/saga_bench" deadlines "$BROKERS" "$P" "$D" "$USERS" "$OFFSET" "$SPREAD" "$PIDFILE" || echo "(incomplete)")
  say "  saga_deadline_fired_late_seconds: $(histogram "$SPORT" saga_deadline_fired_late_seconds)"
  say "  saga-svc: transactions=$(metric_sum "$SPORT" '^saga_transactions_total') commands_emitted=$(metric_sum "$SPORT" '^saga_commands_emitted_total') cpu_s=$(cpu_of "$saga_pid"); command-svc cpu_s=$(cpu_of "$cmd_pid")"
  cleanup
fi

v_line=
if [[ " $PHASES " == *" visible "* ]]; then
  P=$RUN-v.
  export MONGO_DB=${RUN}_v
  say "visible: $VIS_RATE orders/s for ${VIS_S}s, each naming a user that does not exist; POST, then GET /v1/orders/{id}?minVersion=2 until Cancelled USER_NOT_FOUND (database $MONGO_DB)"
  start command-svc "$P" "$CPORT"; cmd_pid=$started_pid
  start projector-svc "$P" "$PPORT"; proj_pid=$started_pid
  start query-svc "$P" "$QPORT"; query_pid=$started_pid
  start saga-svc "$P" "$SPORT"; saga_pid=$started_pid
  say "  $BIN/saga_visible $CPORT $QPORT $VIS_RATE $VIS_S"
  v_line=$("$BIN/saga_visible" "$CPORT" "$QPORT" "$VIS_RATE" "$VIS_S") || say "  (some orders not seen compensated)"
  say "  $v_line"
  # where the time after the saga went: the projector (append -> written) and the waiting reads
  say "  projector_event_delay_seconds: $(histogram "$PPORT" projector_event_delay_seconds 'projection="order_summaries"')"
  say "  query-svc: read_wait_polls_total=$(metric_sum "$QPORT" '^read_wait_polls_total') read_waits_total=$(metric_sum "$QPORT" '^read_waits_total')"
  cleanup
  unset MONGO_DB
fi

say "summary"
if [ ${#alone[@]} -gt 0 ]; then
  a=$(printf '%s\n' "${alone[@]}" | median) w=$(printf '%s\n' "${with[@]}" | median) o=$(printf '%s\n' "${orders[@]}" | median)
  awk -v a="$a" -v w="$w" -v o="$o" -v as="${alone[*]}" -v ws="${with[*]}" -v os="${orders[*]}" 'BEGIN {
    printf "[saga-bench]   CreateOrder, command-svc alone     %8.0f commands/s (median of %s)\n", a, as
    printf "[saga-bench]   CreateOrder, saga-svc running       %8.0f commands/s (median of %s)  ratio %.2f\n", w, ws, w / a
    printf "[saga-bench]   orders through order_placement      %8.0f orders/s (median of %s)  ratio to alone %.2f\n", o, os, o / a
  }'
  for l in "${e2e[@]}"; do say "  $l"; done
fi
for l in "${d_lines[@]}"; do say "  $l"; done
[ -n "$v_line" ] && say "  $v_line"
say "logs in $LOG"
