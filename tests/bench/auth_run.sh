#!/usr/bin/env bash
# Authentication benchmark: what a credential costs per request, and whether one tenant
# flooding commands hurts another. Not a test: numbers go to BENCHMARKS.md.
#
#   tests/bench/auth_run.sh        (the local stack up: make run, or deploy/local/stack.sh start)
#
# 1. query-svc, AUTH=off vs AUTH=on (a JWT: cached verification; an API key: a registry
#    lookup + SHA-256), run pair by pair on two instances side by side:
#      gate:  GET /v1/users?limit=0 -> 400 after the gate, no store read (the gate's own cost
#             against the bare HTTP answer; and against AUTH=off sent the same header, which
#             separates verifying from carrying a 600-byte token)
#      read:  GET /v1/users/<id>, a point read of one document (the real path)
# 2. command-svc HTTP ingress (wrk create_user.lua), AUTH=off vs AUTH=on with a JWT.
# 3. Fairness: tenant B's command latency (wrk -c2, closed loop) alone, then while tenant A
#    floods commands (wrk -c64), on a command-svc with RATE_LIMIT_COMMANDS=$RATE: A's excess
#    gets 429 at the door, so B's p99 should stay within 2x of alone.
# 4. Fairness on Kafka ingress (phase fairness-kafka): the same B, while tenant A produces
#    BENCH_KAFKA_FLOOD CreateUser records (kcat, A's JWT in the authorization header) to the
#    shared commands topic, then to a topic of its own (the second tier); on the shared topic
#    the command loop answers A's excess 429 (results, nothing appended), on its own topic it
#    reads A's records at A's rate and the rest waits there. Reports B's p99 and how far the
#    loop got through A's records.
# Knobs: BENCH_SECONDS (10), BENCH_PAIRS (3), BENCH_CONNS (64), BENCH_RATE (200), BENCH_PORT_BASE (18480),
#        BENCH_KAFKA_FLOOD (100000), BENCH_PHASES ("gate read commands fairness fairness-kafka"),
#        BENCH_KAFKA_TIERS ("unread shared own": the floods of phase fairness-kafka)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
BIN=${BENCH_BIN:-build/bin}
BROKERS=${KAFKA_BROKERS:-127.0.0.1:9092}
MONGO=${MONGO_URI:-mongodb://127.0.0.1:27017}
SECS=${BENCH_SECONDS:-10}
PAIRS=${BENCH_PAIRS:-3}
CONNS=${BENCH_CONNS:-64}
RATE=${BENCH_RATE:-200}
PB=${BENCH_PORT_BASE:-18480}
PHASES=" ${BENCH_PHASES:-gate read commands fairness fairness-kafka} "
phase() { [[ $PHASES == *" $1 "* ]]; }
RUN=authbench$(date +%s)
LOG=.local/log/bench-$RUN
mkdir -p "$LOG"
exec > >(tee "$LOG/auth_run.out") 2>&1
say() { echo "[auth-bench] $*"; }
die() { echo "[auth-bench] ERROR: $*" >&2; exit 1; }
for b in cqrs-token command-svc projector-svc query-svc admin-svc; do
  [ -x "$BIN/$b" ] || die "$BIN/$b missing: build first (or set BENCH_BIN)"
done
command -v wrk >/dev/null || die "wrk missing (deploy/local/deps.sh installs it)"

ISS=https://bench.local/ AUD=cqrs-bench
mkdir -p "$LOG/auth" && "$BIN/cqrs-token" keygen --dir "$LOG/auth" >/dev/null
sign() { "$BIN/cqrs-token" sign --key "$LOG/auth/signing-key.jwk" --iss "$ISS" --aud "$AUD" --sub "$1" --scope "$2" \
  --ttl 86400 ${3:+--tenant "$3"}; }
AUTH_ENV=(AUTH=on "AUTH_JWKS_FILE=$LOG/auth/jwks.json" "AUTH_ISSUER=$ISS" "AUTH_AUDIENCE=$AUD")

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

# start <name> <binary> <port> VAR=value...: a service in the background, awaited on /readyz
start() {
  local name=$1 bin=$2 port=$3
  shift 3
  env "$@" KAFKA_BROKERS="$BROKERS" MONGO_URI="$MONGO" HTTP_PORT="$port" "$BIN/$bin" >"$LOG/$name.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 600); do
    curl -fsS -m 2 "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && return 0
    kill -0 "${pids[-1]}" 2>/dev/null || die "$name exited; see $LOG/$name.log"
    sleep 0.1
  done
  die "$name not ready; see $LOG/$name.log"
}

P_ADMIN=$PB P_CMD_ON=$((PB + 1)) P_CMD_OFF=$((PB + 2)) P_PROJ_ON=$((PB + 3)) P_PROJ_OFF=$((PB + 4))
P_Q_ON=$((PB + 5)) P_Q_OFF=$((PB + 6)) P_FAIR=$((PB + 7))
ON=(TOPIC_PREFIX=$RUN.on. MONGO_DB=${RUN}on "${AUTH_ENV[@]}")
OFF=(TOPIC_PREFIX=$RUN.off. MONGO_DB=${RUN}off AUTH=off)
PG=${FERRETDB_PG_URI:+FERRETDB_PG_URI=$FERRETDB_PG_URI}

say "services: AUTH=on (prefix $RUN.on.) and AUTH=off (prefix $RUN.off.) side by side"
start admin-on admin-svc "$P_ADMIN" "${ON[@]}"
ADMIN_TOKEN=$(sign bench-admin platform:admin)
for t in a b; do
  code=$(curl -s -o /dev/null -w '%{http_code}' -XPOST "http://127.0.0.1:$P_ADMIN/v1/admin/tenants" \
    -H "Authorization: Bearer $ADMIN_TOKEN" -d "{\"tenantId\":\"$t\"}")
  [ "$code" = 201 ] || die "creating tenant $t answered $code"
done
KEY=$(curl -s -XPOST "http://127.0.0.1:$P_ADMIN/v1/admin/tenants/a/keys" -H "Authorization: Bearer $ADMIN_TOKEN" \
  -d '{"scopes":["commands:write","queries:read"]}' | sed -E 's/.*"key":"([^"]+)".*/\1/')
[[ $KEY == cqrs_* ]] || die "no API key issued"
TOKEN_A=$(sign bench-a "commands:write queries:read" a)
TOKEN_B=$(sign bench-b "commands:write queries:read" b)
start command-on command-svc "$P_CMD_ON" "${ON[@]}"
cmd_on_pid=${pids[-1]}
start command-off command-svc "$P_CMD_OFF" "${OFF[@]}"
start projector-on projector-svc "$P_PROJ_ON" "${ON[@]}" ${PG:+"$PG"}
start projector-off projector-svc "$P_PROJ_OFF" "${OFF[@]}" ${PG:+"$PG"}
start query-on query-svc "$P_Q_ON" "${ON[@]}" ${PG:+"$PG"}
start query-off query-svc "$P_Q_OFF" "${OFF[@]}" ${PG:+"$PG"}

say "one user in each store, to read back"
id_on=$(curl -s -XPOST "http://127.0.0.1:$P_CMD_ON/v1/commands" -H "Authorization: Bearer $TOKEN_A" \
  -d '{"commandType":"CreateUser","email":"bench@example.com","name":"Bench"}' | sed -E 's/.*"aggregateId":"([^"]+)".*/\1/')
id_off=$(curl -s -XPOST "http://127.0.0.1:$P_CMD_OFF/v1/commands" \
  -d '{"commandType":"CreateUser","email":"bench@example.com","name":"Bench"}' | sed -E 's/.*"aggregateId":"([^"]+)".*/\1/')
curl -fsS -o /dev/null "http://127.0.0.1:$P_Q_ON/v1/users/$id_on?minVersion=1&waitMs=10000" -H "Authorization: Bearer $TOKEN_A" ||
  die "the AUTH=on read model did not show the user"
curl -fsS -o /dev/null "http://127.0.0.1:$P_Q_OFF/v1/users/$id_off?minVersion=1&waitMs=10000" ||
  die "the AUTH=off read model did not show the user"

# rate <wrk output file>: requests/s
rate() { awk '/Requests\/sec/ {print $2}' "$1"; }
p99() { awk '$1=="99%" {print $2}' "$1"; }
non2xx() { awk '/Non-2xx/ {print $5}' "$1"; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

# pairs <label> <script or ""> <url-off> <url-on> <header for on> [header for off]: PAIRS runs
# of off then on; prints each pair and the medians and ratio on/off
pairs() {
  local label=$1 script=$2 url_off=$3 url_on=$4 hdr=$5 i off on
  local sargs=() oargs=()
  [ -n "${6:-}" ] && oargs=(-H "$6")
  [ -n "$script" ] && sargs=(-s "$script")
  : >"$LOG/$label.off" && : >"$LOG/$label.on"
  for i in $(seq 1 "$PAIRS"); do
    wrk -t2 -c"$CONNS" -d"${SECS}s" --latency "${sargs[@]}" "${oargs[@]}" "$url_off" >"$LOG/$label.off.$i"
    wrk -t2 -c"$CONNS" -d"${SECS}s" --latency "${sargs[@]}" -H "$hdr" "$url_on" >"$LOG/$label.on.$i"
    off=$(rate "$LOG/$label.off.$i") on=$(rate "$LOG/$label.on.$i")
    echo "$off" >>"$LOG/$label.off"
    echo "$on" >>"$LOG/$label.on"
    say "  pair $i: off $off req/s (p99 $(p99 "$LOG/$label.off.$i"), non-2xx $(non2xx "$LOG/$label.off.$i"))," \
      "on $on req/s (p99 $(p99 "$LOG/$label.on.$i"), non-2xx $(non2xx "$LOG/$label.on.$i"))"
  done
  off=$(median <"$LOG/$label.off") on=$(median <"$LOG/$label.on")
  say "  $label: median off $off, on $on req/s, ratio on/off $(awk -v a="$on" -v b="$off" 'BEGIN {printf "%.2f", a / b}')"
}

if phase gate; then
say "1a. query-svc gate only: wrk -t2 -c$CONNS -d${SECS}s GET /v1/users?limit=0 (400 after the gate), JWT"
pairs gate-jwt "" "http://127.0.0.1:$P_Q_OFF/v1/users?limit=0" "http://127.0.0.1:$P_Q_ON/v1/users?limit=0" \
  "Authorization: Bearer $TOKEN_A"
say "1a'. the same, AUTH=off also sent the JWT (which it ignores): verification alone, without the token's bytes"
pairs gate-jwt-bytes "" "http://127.0.0.1:$P_Q_OFF/v1/users?limit=0" "http://127.0.0.1:$P_Q_ON/v1/users?limit=0" \
  "Authorization: Bearer $TOKEN_A" "Authorization: Bearer $TOKEN_A"
say "1b. the same with an API key"
pairs gate-key "" "http://127.0.0.1:$P_Q_OFF/v1/users?limit=0" "http://127.0.0.1:$P_Q_ON/v1/users?limit=0" \
  "Authorization: Bearer $KEY"
fi
if phase read; then
say "1c. query-svc point read: wrk -t2 -c$CONNS -d${SECS}s GET /v1/users/<id>, JWT"
pairs read-jwt "" "http://127.0.0.1:$P_Q_OFF/v1/users/$id_off" "http://127.0.0.1:$P_Q_ON/v1/users/$id_on" \
  "Authorization: Bearer $TOKEN_A"
fi
if phase commands; then
say "2. command-svc HTTP ingress: wrk -t2 -c$CONNS -d${SECS}s -s tests/bench/create_user.lua, JWT"
pairs commands-jwt tests/bench/create_user.lua "http://127.0.0.1:$P_CMD_OFF" "http://127.0.0.1:$P_CMD_ON" \
  "Authorization: Bearer $TOKEN_A"

fi
# start_fair: the fairness phases' command-svc (RATE_LIMIT_COMMANDS=$RATE), the only member of
# its group (so no rebalance runs while B is measured); once
start_fair() {
  [ -n "${fair_started:-}" ] && return 0
  kill "$cmd_on_pid" && wait "$cmd_on_pid" 2>/dev/null || true
  start command-fair command-svc "$P_FAIR" "${ON[@]}" RATE_LIMIT_COMMANDS="$RATE"
  for _ in 1 2 3; do # warm: the group settled and every partition restored
    curl -fsS -o /dev/null -XPOST "http://127.0.0.1:$P_FAIR/v1/commands" -H "Authorization: Bearer $TOKEN_B" \
      -d '{"commandType":"CreateUser","email":"warm@example.com","name":"Warm"}' || die "warm-up command failed"
  done
  fair_started=1
}
# b_run <file>: tenant B's closed-loop commands for SECS seconds
b_run() {
  wrk -t1 -c2 -d"${SECS}s" --latency -s tests/bench/create_user.lua -H "Authorization: Bearer $TOKEN_B" \
    "http://127.0.0.1:$P_FAIR" >"$1"
}
# fair_metric <series prefix>: the sum of command-fair's /metrics lines that start with it
fair_metric() { curl -s "http://127.0.0.1:$P_FAIR/metrics" | awk -v m="$1" 'index($0, m) == 1 {s += $2} END {print s + 0}'; }

if phase fairness; then
say "3. fairness: command-svc with RATE_LIMIT_COMMANDS=$RATE; B at wrk -c2 alone, then with A flooding at -c$CONNS"
start_fair
b_run "$LOG/fair.alone"
wrk -t1 -c"$CONNS" -d"$((SECS + 4))s" --latency -s tests/bench/create_user.lua -H "Authorization: Bearer $TOKEN_A" \
  "http://127.0.0.1:$P_FAIR" >"$LOG/fair.flood" &
flood=$!
sleep 2 # let the flood reach its pace before B is measured
b_run "$LOG/fair.with"
wait $flood
say "  B alone: $(rate "$LOG/fair.alone") req/s, p99 $(p99 "$LOG/fair.alone"), non-2xx $(non2xx "$LOG/fair.alone")"
say "  B while A floods: $(rate "$LOG/fair.with") req/s, p99 $(p99 "$LOG/fair.with"), non-2xx $(non2xx "$LOG/fair.with")"
say "  A flooding: $(rate "$LOG/fair.flood") req/s, non-2xx (429) $(non2xx "$LOG/fair.flood")"
fi
if phase fairness-kafka; then
FLOOD=${BENCH_KAFKA_FLOOD:-100000}
command -v kcat >/dev/null || die "kcat missing (deploy/local/deps.sh installs it)"
start_fair
A='commands_by_tenant_total{tenant="a",'
# kafka_flood <topic> <label>: A produces FLOOD records to topic while B is measured (alone first)
kafka_flood() {
  local topic=$1 label=$2
  say "4. fairness on Kafka ingress, $label: A produces $FLOOD records to $topic while B is measured"
  awk -v n="$FLOOD" -v run="$RUN-$label" 'BEGIN { for (i = 0; i < n; i++)
    printf "a/u-kf-%d\t{\"commandType\":\"CreateUser\",\"commandId\":\"kf-%s-%d\",\"aggregateId\":\"u-kf-%d\",\"email\":\"kf%d@example.com\",\"name\":\"Kafka Flood\"}\n", i, run, i, i, i }' \
    >"$LOG/kafka-flood.txt"
  b_run "$LOG/fair.$label.alone"
  local a0 a201 a429 t0 kc secs
  a0=$(fair_metric "$A") a201=$(fair_metric "${A}status=\"201\"") a429=$(fair_metric "${A}status=\"429\"")
  t0=$(date +%s%N)
  # murmur2_random: the Java client's partitioner, as every producer of ours (README): no record needs forwarding
  kcat -P -b "$BROKERS" -t "$topic" -X partitioner=murmur2_random -K $'\t' -H "authorization=Bearer $TOKEN_A" \
    -l "$LOG/kafka-flood.txt" &
  kc=$!
  b_run "$LOG/fair.$label.with"
  wait $kc || die "kcat could not produce the flood"
  for _ in $(seq 1 1200); do # until the loop has decided every one of A's records (at most 10 minutes);
    # on its own topic they are decided at A's rate: the rest waits there, as it should
    [ "$label" = unread ] || [ "$label" = own ] || [ $(($(fair_metric "$A") - a0)) -ge "$FLOOD" ] && break
    sleep 0.5
  done
  secs=$(awk -v a="$t0" -v b="$(date +%s%N)" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')
  say "  B alone: $(rate "$LOG/fair.$label.alone") req/s, p99 $(p99 "$LOG/fair.$label.alone"), non-2xx $(non2xx "$LOG/fair.$label.alone")"
  say "  B while A's records are decided: $(rate "$LOG/fair.$label.with") req/s, p99 $(p99 "$LOG/fair.$label.with"), non-2xx $(non2xx "$LOG/fair.$label.with")"
  say "  A: $(($(fair_metric "$A") - a0)) of $FLOOD records decided in $secs s: $(($(fair_metric "${A}status=\"201\"") - a201)) accepted (201), $(($(fair_metric "${A}status=\"429\"") - a429)) refused (429)"
}
# the machine's share: the same flood to a topic nothing reads (the broker and kcat on the two cores)
java -cp '.local/kafka/libs/*' org.apache.kafka.tools.TopicCommand --bootstrap-server "$BROKERS" --create \
  --topic "$RUN.on.unread" --partitions 6 --replication-factor 1 >/dev/null || die "cannot create $RUN.on.unread"
tier() { case " ${BENCH_KAFKA_TIERS:-unread shared own} " in *" $1 "*) return 0 ;; esac; return 1; }
tier unread && kafka_flood "$RUN.on.unread" unread
tier shared && kafka_flood "$RUN.on.commands" shared
if tier own; then
# the second tier: A's own topic, with the partition count of commands, found by command-svc's scan
OWN="$RUN.on.tenant.a.commands"
PARTS=$(kcat -L -b "$BROKERS" -t "$RUN.on.commands" | awk '/partitions:/ {print $4; exit}')
java -cp '.local/kafka/libs/*' org.apache.kafka.tools.TopicCommand --bootstrap-server "$BROKERS" --create \
  --topic "$OWN" --partitions "${PARTS:-6}" --replication-factor 1 >/dev/null || die "cannot create $OWN"
for _ in $(seq 1 300); do # command-svc lists the topics every 10 s
  grep -q "reading a tenant's command topic.*$OWN" "$LOG/command-fair.log" && break
  sleep 0.2
done
grep -q "reading a tenant's command topic.*$OWN" "$LOG/command-fair.log" || die "command-svc did not find $OWN"
kafka_flood "$OWN" own
say "  reads that left A's records waiting for its rate: $(fair_metric 'tenant_topic_waits_total{tenant="a"}')"
fi
fi
say "logs in $LOG"
