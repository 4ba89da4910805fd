#!/usr/bin/env bash
# Command benchmark: one run prints the command pipeline's rates next to Kafka's
# own transactional producer on the same broker (ratio), and the time to restore
# aggregates from aggregate-state. Not a test: numbers go to BENCHMARKS.md.
#
#   tests/bench/run.sh            (make run or deploy/local/stack.sh start first)
# Knobs: BENCH_COMMANDS (50000), BENCH_HTTP_SECONDS (15), BENCH_HTTP_CONNS (64),
#        BENCH_RESTORE (1000000), BENCH_RAW_RECORDS (200000)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
BIN=build/bin
BROKERS=${KAFKA_BROKERS:-127.0.0.1:9092}
N=${BENCH_COMMANDS:-50000}
HTTP_SECONDS=${BENCH_HTTP_SECONDS:-15}
HTTP_CONNS=${BENCH_HTTP_CONNS:-64}
RESTORE=${BENCH_RESTORE:-1000000}
RAW=${BENCH_RAW_RECORDS:-200000}
# These measure the pipelines, as tenant "default" without credentials; the cost of
# authentication has its own benchmark (tests/bench/auth_run.sh).
export AUTH=${AUTH:-off}
RUN=bench$(date +%s)
LOG=.local/log/bench-$RUN
mkdir -p "$LOG"
CP='.local/kafka/libs/*'
JLOG=-Dlog4j.configuration=file:deploy/local/kafka/tools-log4j.properties
say() { echo "[bench] $*"; }

svc_pid=
cleanup() { [ -n "$svc_pid" ] && kill "$svc_pid" 2>/dev/null && wait "$svc_pid" 2>/dev/null; true; }
trap cleanup EXIT

start_command_svc() { # prefix port
  # AUTH=off: this measures the command pipeline alone.
  AUTH=off TOPIC_PREFIX=$1 HTTP_PORT=$2 KAFKA_BROKERS=$BROKERS "$BIN/command-svc" >"$LOG/command-svc-$1log" 2>&1 &
  svc_pid=$!
  for _ in $(seq 1 600); do
    curl -fsS "http://127.0.0.1:$2/readyz" >/dev/null 2>&1 && return 0
    kill -0 "$svc_pid" 2>/dev/null || { say "command-svc died: $LOG/command-svc-$1log"; exit 1; }
    sleep 0.1
  done
  say "command-svc not ready"; exit 1
}

say "raw engine: Kafka's ProducerPerformance, transactional, $RAW records of 200 bytes, 6 partitions"
java $JLOG -cp "$CP" org.apache.kafka.tools.TopicCommand --bootstrap-server "$BROKERS" --create \
  --topic "$RUN.raw" --partitions 6 --replication-factor 1 >/dev/null
RAW_CMD="java -cp '.local/kafka/libs/*' org.apache.kafka.tools.ProducerPerformance --topic $RUN.raw --num-records $RAW --record-size 200 --throughput -1 --transactional-id $RUN-raw --transaction-duration-ms 100 --producer-props bootstrap.servers=$BROKERS"
say "  $RAW_CMD"
raw_line=$(java $JLOG -cp "$CP" org.apache.kafka.tools.ProducerPerformance --topic "$RUN.raw" --num-records "$RAW" \
  --record-size 200 --throughput -1 --transactional-id "$RUN-raw" --transaction-duration-ms 100 \
  --producer-props bootstrap.servers="$BROKERS" | tail -1)
say "  $raw_line"
raw_rate=$(echo "$raw_line" | sed -E 's/.* ([0-9.]+) records\/sec.*/\1/')

PREFIX=$RUN.
start_command_svc "$PREFIX" 18180
say "command pipeline, Kafka ingress: $N CreateUser commands produced keyed, results read back"
say "  $BIN/command_bench kafka $BROKERS $PREFIX $N"
k_line=$("$BIN/command_bench" kafka "$BROKERS" "$PREFIX" "$N")
say "  $k_line"
k_rate=$(echo "$k_line" | sed -E 's/.*commands_per_s=([0-9.]+).*/\1/')

say "command pipeline, HTTP ingress: wrk -t2 -c$HTTP_CONNS -d${HTTP_SECONDS}s --latency -s tests/bench/create_user.lua"
wrk -t2 -c"$HTTP_CONNS" -d"${HTTP_SECONDS}s" --latency -s tests/bench/create_user.lua http://127.0.0.1:18180 >"$LOG/wrk.txt"
h_rate=$(awk '/Requests\/sec/ {print $2}' "$LOG/wrk.txt")
h_p50=$(awk '$1=="50%" {print $2}' "$LOG/wrk.txt")
h_p99=$(awk '$1=="99%" {print $2}' "$LOG/wrk.txt")
h_non2xx=$(awk '/Non-2xx/ {print $5}' "$LOG/wrk.txt")
say "  requests/s=$h_rate p50=$h_p50 p99=$h_p99 non-2xx=${h_non2xx:-0}"
cleanup; svc_pid=

say "restore: $RESTORE aggregates seeded into aggregate-state, then a command-svc start"
RPREFIX=$RUN-restore.
"$BIN/command_bench" seed "$BROKERS" "$RPREFIX" "$RESTORE" 2>/dev/null | sed 's/^/[bench]   /'
start_command_svc "$RPREFIX" 18181
restore_line=$(grep -m1 '"partitions assigned and restored"' "$LOG/command-svc-${RPREFIX}log")
say "  $restore_line"
cleanup; svc_pid=

say "summary"
awk -v raw="$raw_rate" -v k="$k_rate" -v h="$h_rate" 'BEGIN {
  printf "[bench]   raw transactional produce   %10.0f records/s\n", raw
  printf "[bench]   Kafka-ingress commands      %10.0f commands/s  ratio %.2f\n", k, k / raw
  printf "[bench]   HTTP-ingress commands       %10.0f commands/s  ratio %.2f\n", h, h / raw
}'
say "logs in $LOG"
