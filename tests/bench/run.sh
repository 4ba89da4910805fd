#!/usr/bin/env bash
# Command benchmark: one run prints the command pipeline's rates next to Kafka's
# own transactional producer on the same broker (ratio), and the time to restore
# aggregates from aggregate-state. Not a test: numbers go to BENCHMARKS.md.
#
#   tests/bench/run.sh            (make run or deploy/local/stack.sh start first)
# Knobs: BENCH_COMMANDS (50000), BENCH_KAFKA_RUNS (3), BENCH_HTTP_SECONDS (15),
#        BENCH_HTTP_CONNS ("64 256"), BENCH_MIX_AGGREGATES (10000),
#        BENCH_RESTORE (1000000), BENCH_RAW_RECORDS (200000),
#        COMMAND_LANES (command-svc's default) and any other command-svc variable
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
BIN=build/bin
BROKERS=${KAFKA_BROKERS:-127.0.0.1:9092}
N=${BENCH_COMMANDS:-50000}
HTTP_SECONDS=${BENCH_HTTP_SECONDS:-15}
HTTP_CONNS=${BENCH_HTTP_CONNS:-64 256}
KAFKA_RUNS=${BENCH_KAFKA_RUNS:-3}
MIX=${BENCH_MIX_AGGREGATES:-10000}
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

# Where a transaction's time went since the service started: mean ms per phase and
# mean commands per transaction, from command-svc's /metrics.
txn_summary() { # port
  curl -fsS "http://127.0.0.1:$1/metrics" | awk '
    /^transaction_phase_seconds_sum/ { split($1, a, "\""); sum[a[2]] = $2 }
    /^transaction_phase_seconds_count/ { split($1, a, "\""); cnt[a[2]] = $2 }
    /^transaction_duration_seconds_sum/ { tsum = $2 } /^transaction_duration_seconds_count/ { tcnt = $2 }
    /^transaction_commands_sum/ { csum = $2 }
    /^transactions_total/ { if ($1 ~ /aborted/) aborted += $2 }
    END { if (tcnt > 0) printf "transactions=%d aborted=%d mean_ms=%.1f decide_ms=%.1f offsets_ms=%.1f commit_ms=%.1f commands_per_txn=%.0f\n",
            tcnt, aborted, 1000 * tsum / tcnt, 1000 * sum["decide"] / cnt["decide"], 1000 * sum["offsets"] / cnt["offsets"],
            1000 * sum["commit"] / cnt["commit"], csum / tcnt }'
}

# wrk against port with script and connections; prints one summary line.
http_run() { # port script conns label
  # 2 s of warm-up first, not counted: the first commands of a new instance wait for its
  # producers' first transactions and connections (one took 1.6 s in a c1 run). Always new
  # users, so the mixed load's versions are untouched.
  wrk -t2 -c"$3" -d2s -s tests/bench/create_user.lua "http://127.0.0.1:$1" >/dev/null
  wrk -t2 -c"$3" -d"${HTTP_SECONDS}s" --latency -s "$2" "http://127.0.0.1:$1" >"$LOG/wrk-$4.txt"
  awk '/Requests\/sec/ {r=$2} $1=="50%" {p50=$2} $1=="99%" {p99=$2} /^p999_ms=/ {split($1, a, "="); p999=a[2] "ms"}
       /Non-2xx/ {e=$5} END {printf "requests/s=%s p50=%s p99=%s p99.9=%s non-2xx=%d\n", r, p50, p99, p999, e}' "$LOG/wrk-$4.txt"
}

k_rates=()
for run in $(seq 1 "$KAFKA_RUNS"); do
  PREFIX=$RUN-k$run.
  start_command_svc "$PREFIX" 18180
  say "command pipeline, Kafka ingress (run $run of $KAFKA_RUNS): $N CreateUser commands produced keyed, results read back"
  say "  $BIN/command_bench kafka $BROKERS $PREFIX $N"
  k_line=$("$BIN/command_bench" kafka "$BROKERS" "$PREFIX" "$N")
  say "  $k_line"
  say "  $(txn_summary 18180)"
  k_rates+=("$(echo "$k_line" | sed -E 's/.*commands_per_s=([0-9.]+).*/\1/')")
  cleanup; svc_pid=
done
k_rate=$(printf '%s\n' "${k_rates[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')

h_lines=()
for conns in $HTTP_CONNS; do
  PREFIX=$RUN-h$conns.
  start_command_svc "$PREFIX" 18180
  say "command pipeline, HTTP ingress: wrk -t2 -c$conns -d${HTTP_SECONDS}s --latency -s tests/bench/create_user.lua"
  line=$(http_run 18180 tests/bench/create_user.lua "$conns" "create-c$conns")
  say "  $line"
  say "  $(txn_summary 18180)"
  h_lines+=("c$conns $line")
  cleanup; svc_pid=
done
h_rate=$(echo "${h_lines[0]}" | sed -E 's/.*requests\/s=([0-9.]+).*/\1/')

say "mixed load: $MIX users seeded at version 1, then 80% UpdateUserProfile with expectedVersion, 20% CreateUser"
PREFIX=$RUN-mix.
"$BIN/command_bench" seed "$BROKERS" "$PREFIX" "$MIX" plain 2>/dev/null | sed 's/^/[bench]   /'
start_command_svc "$PREFIX" 18180
conns=${HTTP_CONNS##* }
say "  MIX_AGGREGATES=$MIX wrk -t2 -c$conns -d${HTTP_SECONDS}s --latency -s tests/bench/mixed.lua"
m_line=$(MIX_AGGREGATES=$MIX http_run 18180 tests/bench/mixed.lua "$conns" mixed)
m_409=$(curl -fsS http://127.0.0.1:18180/metrics | awk '/^commands_total/ && /status="409"/ {n += $2} /^commands_total/ {t += $2} END {printf "%.2f%% of %d", t ? 100 * n / t : 0, t}')
say "  $m_line; 409: $m_409"
say "  $(txn_summary 18180)"
cleanup; svc_pid=

say "restore: $RESTORE aggregates seeded into aggregate-state, then a command-svc start"
RPREFIX=$RUN-restore.
"$BIN/command_bench" seed "$BROKERS" "$RPREFIX" "$RESTORE" 2>/dev/null | sed 's/^/[bench]   /'
start_command_svc "$RPREFIX" 18181
# Each lane restores its own partitions, side by side: the restore took the longest of them.
restore_line=$(grep '"partitions assigned and restored"' "$LOG/command-svc-${RPREFIX}log" |
  sed -E 's/.*"aggregates":"([0-9]+)".*"restoreMs":"([0-9]+)".*/\1 \2/' |
  awk '{n += $1; if ($2 > ms) ms = $2; l = l " " $2} END {printf "restored %d aggregates in %d ms (lanes:%s ms)", n, ms, l}')
say "  $restore_line"
cleanup; svc_pid=

say "summary"
awk -v raw="$raw_rate" -v k="$k_rate" -v ks="${k_rates[*]}" 'BEGIN {
  printf "[bench]   raw transactional produce   %10.0f records/s\n", raw
  printf "[bench]   Kafka-ingress commands      %10.0f commands/s (median of %s)  ratio %.2f, in records (x4) %.2f\n", k, ks, k / raw, 4 * k / raw
}'
for l in "${h_lines[@]}"; do say "  HTTP-ingress $l"; done
say "  mixed $m_line; 409: $m_409"
say "logs in $LOG"
