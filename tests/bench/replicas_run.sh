#!/usr/bin/env bash
# Replies routed to the waiting replica: 3 command-svc replicas on 6 partitions
# under HTTP load (one wrk per replica, new CreateUser per request), then each
# replica's share of command-results read (command_results_read_bytes_total)
# next to the total. Not a test: numbers go to BENCHMARKS.md.
#
#   tests/bench/replicas_run.sh   (make run or deploy/local/stack.sh start first)
# Knobs: BENCH_HTTP_SECONDS (15), BENCH_HTTP_CONNS (64 per replica), BENCH_REPLICAS (3),
#        BENCH_PARTITIONS (6)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
BIN=build/bin
BROKERS=${KAFKA_BROKERS:-127.0.0.1:9092}
SECONDS_=${BENCH_HTTP_SECONDS:-15}
CONNS=${BENCH_HTTP_CONNS:-64}
REPLICAS=${BENCH_REPLICAS:-3}
PARTITIONS=${BENCH_PARTITIONS:-6}
RUN=bench$(date +%s)-replicas
PREFIX=$RUN.
LOG=.local/log/$RUN
mkdir -p "$LOG"
say() { echo "[bench] $*"; }

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done; true; }
trap cleanup EXIT

port_of() { echo $((18190 + $1)); }
metric() { # port series
  curl -fsS "http://127.0.0.1:$1/metrics" | awk -v s="$2" '$1==s {print $2}'
}

say "$REPLICAS command-svc replicas on $PARTITIONS partitions, prefix $PREFIX"
for i in $(seq 0 $((REPLICAS - 1))); do
  # AUTH=off: this measures the command pipeline alone (auth has tests/bench/auth_run.sh).
  AUTH=off TOPIC_PREFIX=$PREFIX TOPIC_PARTITIONS=$PARTITIONS HTTP_PORT=$(port_of "$i") KAFKA_BROKERS=$BROKERS \
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

total_rate=0 total_bytes=0
for i in $(seq 0 $((REPLICAS - 1))); do
  port=$(port_of "$i")
  rate=$(awk '/Requests\/sec/ {print $2}' "$LOG/wrk-$i.txt")
  p50=$(awk '$1=="50%" {print $2}' "$LOG/wrk-$i.txt")
  p99=$(awk '$1=="99%" {print $2}' "$LOG/wrk-$i.txt")
  non2xx=$(awk '/Non-2xx/ {print $5}' "$LOG/wrk-$i.txt")
  bytes=$(metric "$port" command_results_read_bytes_total)
  records=$(metric "$port" command_results_read_total)
  parts=$(metric "$port" command_reply_partitions)
  over=$(metric "$port" commands_overloaded_total)
  say "  replica $i: requests/s=$rate p50=$p50 p99=$p99 non-2xx=${non2xx:-0} overloaded=${over:-0}" \
      "reply partitions=$parts results read=$records bytes read=$bytes"
  total_rate=$(awk -v a="$total_rate" -v b="$rate" 'BEGIN {print a + b}')
  total_bytes=$(awk -v a="$total_bytes" -v b="$bytes" 'BEGIN {printf "%.0f", a + b}')
done
# Every result on the topic, as a Kafka client reads it (key and value bytes).
topic_bytes=$(kcat -C -b "$BROKERS" -t "${PREFIX}command-results" -e -q -X isolation.level=read_committed \
  -f '%k%s' | wc -c)
say "summary"
say "  HTTP-ingress commands over $REPLICAS replicas: $total_rate commands/s"
say "  command-results holds $topic_bytes key+value bytes; the replicas read $total_bytes together"
for i in $(seq 0 $((REPLICAS - 1))); do
  bytes=$(metric "$(port_of "$i")" command_results_read_bytes_total)
  awk -v i="$i" -v b="$bytes" -v t="$total_bytes" \
    'BEGIN {printf "[bench]   replica %d read %.0f of %.0f result bytes (%.1f%%)\n", i, b, t, 100 * b / t}'
done
say "logs in $LOG"
