#!/usr/bin/env bash
# Replies routed to the waiting replica: 3 command-svc replicas on 6 partitions
# under HTTP load (one wrk per replica, new CreateUser per request), then each
# replica's share of command-results read (command_results_read_bytes_total)
# next to the total. Not a test: numbers go to BENCHMARKS.md.
#
#   tests/bench/replicas_run.sh   (make run or deploy/local/stack.sh start first)
# Knobs: BENCH_HTTP_SECONDS (15), BENCH_HTTP_CONNS (64 per replica), BENCH_REPLICAS (3),
#        BENCH_PARTITIONS (6), BENCH_MAX_IN_FLIGHT (COMMAND_MAX_IN_FLIGHT of each replica: 2048)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
BIN=build/bin
BROKERS=${KAFKA_BROKERS:-127.0.0.1:9092}
SECONDS_=${BENCH_HTTP_SECONDS:-15}
CONNS=${BENCH_HTTP_CONNS:-64}
REPLICAS=${BENCH_REPLICAS:-3}
PARTITIONS=${BENCH_PARTITIONS:-6}
MAX_IN_FLIGHT=${BENCH_MAX_IN_FLIGHT:-2048}
RUN=bench$(date +%s)-replicas
PREFIX=$RUN.
LOG=.local/log/$RUN
mkdir -p "$LOG"
say() { echo "[bench] $*"; }

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done; true; }
trap cleanup EXIT

port_of() { echo $((18190 + $1)); }
metric() { # port series (retried: a loaded replica may drop a scrape)
  local v
  for _ in 1 2 3 4 5; do
    v=$(curl -fsS --max-time 5 "http://127.0.0.1:$1/metrics" | awk -v s="$2" '$1==s {print $2}') || true
    [ -n "$v" ] && { echo "$v"; return 0; }
    sleep 0.2
  done
  echo "?"
}

say "$REPLICAS command-svc replicas on $PARTITIONS partitions, COMMAND_MAX_IN_FLIGHT=$MAX_IN_FLIGHT, prefix $PREFIX"
for i in $(seq 0 $((REPLICAS - 1))); do
  # AUTH=off: this measures the command pipeline alone (auth has tests/bench/auth_run.sh).
  AUTH=off TOPIC_PREFIX=$PREFIX TOPIC_PARTITIONS=$PARTITIONS COMMAND_MAX_IN_FLIGHT=$MAX_IN_FLIGHT \
    HTTP_PORT=$(port_of "$i") KAFKA_BROKERS=$BROKERS \
    "$BIN/command-svc" >"$LOG/command-svc-$i.log" 2>&1 &
  pids+=($!)
done
for i in $(seq 0 $((REPLICAS - 1))); do
  for _ in $(seq 1 600); do
    curl -fsS "http://127.0.0.1:$(port_of "$i")/readyz" >/dev/null 2>&1 && break
    kill -0 "${pids[$i]}" 2>/dev/null || { say "replica $i died: $LOG/command-svc-$i.log"; exit 1; }
    sleep 0.1
  done
  curl -fsS "http://127.0.0.1:$(port_of "$i")/readyz" >/dev/null || { say "replica $i not ready"; exit 1; }
done

say "HTTP load: per replica wrk -t1 -c$CONNS -d${SECONDS_}s --latency -s tests/bench/create_user.lua <replica> -- r<i>-"
wrks=()
for i in $(seq 0 $((REPLICAS - 1))); do
  wrk -t1 -c"$CONNS" -d"${SECONDS_}s" --latency -s tests/bench/create_user.lua \
    "http://127.0.0.1:$(port_of "$i")" -- "r$i-" >"$LOG/wrk-$i.txt" &
  wrks+=($!)
done
for w in "${wrks[@]}"; do wait "$w"; done
# wrk drops the requests in flight at its deadline; their results still come: read the
# counters once every replica has none in flight.
for i in $(seq 0 $((REPLICAS - 1))); do
  for _ in $(seq 1 300); do
    [ "$(metric "$(port_of "$i")" commands_in_flight)" = 0 ] && break
    sleep 0.1
  done
done

total_rate=0 total_ok=0 total_bytes=0 total_records=0 read_bytes=()
for i in $(seq 0 $((REPLICAS - 1))); do
  port=$(port_of "$i")
  rate=$(awk '/Requests\/sec/ {print $2}' "$LOG/wrk-$i.txt")
  p50=$(awk '$1=="50%" {print $2}' "$LOG/wrk-$i.txt")
  p99=$(awk '$1=="99%" {print $2}' "$LOG/wrk-$i.txt")
  non2xx=$(awk '/Non-2xx/ {print $5}' "$LOG/wrk-$i.txt")
  answered=$(awk '/requests in/ {print $1}' "$LOG/wrk-$i.txt")
  ok_rate=$(awk -v n="$answered" -v bad="${non2xx:-0}" -v t="$SECONDS_" 'BEGIN {printf "%.1f", (n - bad) / t}')
  bytes=$(metric "$port" command_results_read_bytes_total)
  read_bytes[$i]=$bytes
  records=$(metric "$port" command_results_read_total)
  parts=$(metric "$port" command_reply_partitions)
  over=$(metric "$port" commands_overloaded_total)
  say "  replica $i: requests/s=$rate 2xx/s=$ok_rate p50=$p50 p99=$p99 non-2xx=${non2xx:-0} overloaded=${over:-0}" \
      "reply partitions=$parts results read=$records bytes read=$bytes"
  total_rate=$(awk -v a="$total_rate" -v b="$rate" 'BEGIN {print a + b}')
  total_ok=$(awk -v a="$total_ok" -v b="$ok_rate" 'BEGIN {print a + b}')
  total_bytes=$(awk -v a="$total_bytes" -v b="$bytes" 'BEGIN {printf "%.0f", a + b}')
  total_records=$(awk -v a="$total_records" -v b="$records" 'BEGIN {printf "%.0f", a + b}')
done
# Every result on the topic, as a Kafka client reads it (key and value bytes).
topic_bytes=$(kcat -C -b "$BROKERS" -t "${PREFIX}command-results" -e -q -X isolation.level=read_committed \
  -f '%k%s' | wc -c)
topic_records=$(kcat -C -b "$BROKERS" -t "${PREFIX}command-results" -e -q -X isolation.level=read_committed \
  -f '%p\n' | wc -l)
say "summary"
say "  HTTP-ingress over $REPLICAS replicas: $total_rate answers/s, $total_ok commands/s accepted (2xx)"
say "  command-results holds $topic_records results, $topic_bytes key+value bytes; the replicas read" \
    "$total_records results, $total_bytes bytes together"
for i in $(seq 0 $((REPLICAS - 1))); do
  bytes=${read_bytes[$i]}
  awk -v i="$i" -v b="$bytes" -v t="$total_bytes" \
    'BEGIN {printf "[bench]   replica %d read %.0f of %.0f result bytes (%.1f%%)\n", i, b, t, 100 * b / t}'
done
say "logs in $LOG"
