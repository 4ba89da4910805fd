#!/usr/bin/env bash
# The soak run (`make soak`): every service for SOAK_SECONDS (10 minutes) at half the mixed
# load's measured maximum rate, with authentication on, watching for what only time shows:
# memory that keeps growing, error lines, a p99 that drifts.
#
#   make soak                        (builds, starts the local stack when it is not up)
#   tests/soak/run.sh                (the stack up and the tree built)
#
# 1. starts admin-svc, command-svc, projector-svc, query-svc and saga-svc on ports of their own
#    (a fresh topic prefix and database; a tenant `soak` and a JWT for it);
# 2. creates SOAK_USERS users;
# 3. measures the maximum rate of the mix (tests/soak/soak.c: 25% profile updates, 60% point
#    reads, 10% lookups by email, 5% order lists) with SOAK_WORKERS connections for
#    SOAK_MAX_SECONDS;
# 4. runs the mix at half that rate (or SOAK_RATE) for SOAK_SECONDS, open loop, one line per
#    minute, sampling every service's RSS every SOAK_SAMPLE_S;
# 5. judges: RSS of each service after the warm-up (SOAK_WARMUP_S) within 10% of its value at
#    the end of the warm-up; no request failed; no error line in any service's log; the p99 of
#    every minute after the warm-up within 2x of the median minute's.
# Writes .local/log/soak<epoch>/report.md (the tables RELIABILITY.md quotes); exits 1 when a
# verdict fails. Knobs: SOAK_SECONDS (600), SOAK_WARMUP_S (120), SOAK_USERS (5000),
# SOAK_WORKERS (256), SOAK_MAX_SECONDS (20), SOAK_RATE, SOAK_SAMPLE_S (10), SOAK_PORT_BASE (18600),
# SOAK_BIN (build/bin).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
BIN=${SOAK_BIN:-build/bin}
BROKERS=${KAFKA_BROKERS:-127.0.0.1:9092}
MONGO=${MONGO_URI:-mongodb://127.0.0.1:27017}
SECS=${SOAK_SECONDS:-600}
WARMUP=${SOAK_WARMUP_S:-120}
USERS=${SOAK_USERS:-5000}
WORKERS=${SOAK_WORKERS:-256}
MAX_SECS=${SOAK_MAX_SECONDS:-20}
SAMPLE=${SOAK_SAMPLE_S:-10}
PB=${SOAK_PORT_BASE:-18600}
RUN=soak$(date +%s)
LOG=.local/log/$RUN
mkdir -p "$LOG"
exec > >(tee "$LOG/run.out") 2>&1
say() { echo "[soak] $*"; }
die() { echo "[soak] ERROR: $*" >&2; exit 1; }
for b in soak cqrs-token admin-svc command-svc projector-svc query-svc saga-svc; do
  [ -x "$BIN/$b" ] || die "$BIN/$b missing: build first (make build, or set SOAK_BIN)"
done
host=${BROKERS%%,*}
(exec 3<>"/dev/tcp/${host%:*}/${host##*:}") 2>/dev/null ||
  die "no Kafka at $BROKERS: start the local stack (deploy/local/stack.sh start, or make soak)"
(( WARMUP < SECS )) || die "SOAK_WARMUP_S ($WARMUP) must be shorter than SOAK_SECONDS ($SECS)"

ISS=https://soak.local/ AUD=cqrs-soak
mkdir -p "$LOG/auth" && "$BIN/cqrs-token" keygen --dir "$LOG/auth" >/dev/null
sign() { "$BIN/cqrs-token" sign --key "$LOG/auth/signing-key.jwk" --iss "$ISS" --aud "$AUD" --sub "$1" --scope "$2" \
  --ttl 86400 ${3:+--tenant "$3"}; }
SAGA_KEY=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
ENV=(TOPIC_PREFIX="$RUN." MONGO_DB="$RUN" AUTH=on "AUTH_JWKS_FILE=$LOG/auth/jwks.json" "AUTH_ISSUER=$ISS"
  "AUTH_AUDIENCE=$AUD" "SAGA_SIGNING_KEY=$SAGA_KEY" ${FERRETDB_PG_URI:+"FERRETDB_PG_URI=$FERRETDB_PG_URI"})

SERVICES=(admin-svc command-svc projector-svc query-svc saga-svc)
declare -A PORT=([admin-svc]=$PB [command-svc]=$((PB + 1)) [projector-svc]=$((PB + 2)) [query-svc]=$((PB + 3))
  [saga-svc]=$((PB + 4)))
declare -A PID=()
sampler=
cleanup() {
  [ -n "$sampler" ] && kill "$sampler" 2>/dev/null
  for s in "${SERVICES[@]}"; do [ -n "${PID[$s]:-}" ] && kill "${PID[$s]}" 2>/dev/null; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

start() { # service: in the background, awaited on /readyz
  local s=$1 port=${PORT[$1]}
  env "${ENV[@]}" KAFKA_BROKERS="$BROKERS" MONGO_URI="$MONGO" HTTP_PORT="$port" "$BIN/$s" >"$LOG/$s.log" 2>&1 &
  PID[$s]=$!
  for _ in $(seq 1 600); do
    curl -fsS -m 2 -o /dev/null "http://127.0.0.1:$port/readyz" 2>/dev/null && return 0
    kill -0 "${PID[$s]}" 2>/dev/null || die "$s exited during start; see $LOG/$s.log"
    sleep 0.1
  done
  die "$s not ready after 60 s; see $LOG/$s.log"
}

say "run $RUN: services on ports $PB-$((PB + 4)), logs in $LOG"
start admin-svc
code=$(curl -s -o "$LOG/tenant.json" -w '%{http_code}' -XPOST "http://127.0.0.1:${PORT[admin-svc]}/v1/admin/tenants" \
  -H "Authorization: Bearer $(sign soak-admin platform:admin)" -d '{"tenantId":"soak"}')
[ "$code" = 201 ] || die "creating tenant soak answered $code: $(cat "$LOG/tenant.json")"
export SOAK_TOKEN
SOAK_TOKEN=$(sign soak-load "commands:write queries:read" soak)
for s in command-svc projector-svc query-svc saga-svc; do start "$s"; done

C=${PORT[command-svc]} Q=${PORT[query-svc]}
say "seeding $USERS users"
"$BIN/soak" seed "$C" "$Q" "$USERS" "$RUN" 64 | tee "$LOG/seed.txt" || die "seeding failed (see above)"

if [ -n "${SOAK_RATE:-}" ]; then
  RATE=$SOAK_RATE
  say "rate $RATE/s (SOAK_RATE)"
else
  say "maximum rate of the mix: $WORKERS connections for $MAX_SECS s"
  # at the maximum some requests may time out: the rate counts the answered ones
  "$BIN/soak" max "$C" "$Q" "$USERS" "$RUN" "$MAX_SECS" "$WORKERS" | tee "$LOG/max.txt" ||
    say "some requests failed at the maximum (above); the rate counts the answered ones"
  MAX=$(sed -nE 's/.* rate=([0-9]+).*/\1/p' "$LOG/max.txt")
  RATE=$((MAX / 2))
  (( RATE > 0 )) || die "the measured maximum rate is 0"
  say "soak rate: half of $MAX/s = $RATE/s"
fi

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
echo "t_s,${SERVICES[*]}" | tr ' ' ',' >"$LOG/rss.csv"
(
  t0=$SECONDS
  while :; do
    row=$((SECONDS - t0))
    for s in "${SERVICES[@]}"; do row+=",$(rss_kb "${PID[$s]}")"; done
    echo "$row" >>"$LOG/rss.csv"
    sleep "$SAMPLE"
  done
) &
sampler=$!

say "soak: $RATE/s for $SECS s (warm-up $WARMUP s), one line a minute"
# The local store's PostgreSQL log from here on (checkpoints, long autovacuums, slow statements:
# deploy/local/stack.sh), to set beside a slow minute; none with a store of your own.
PG_LOG_FILE=.local/log/postgres.log
pg_from=$(stat -c %s "$PG_LOG_FILE" 2>/dev/null || echo "")
status=0
start_epoch=$(date +%s)
"$BIN/soak" run "$C" "$Q" "$USERS" "$RUN" "$RATE" "$SECS" 60 "$WORKERS" | tee "$LOG/intervals.txt" || status=1
kill "$sampler" 2>/dev/null
wait "$sampler" 2>/dev/null || true
sampler=

for s in "${SERVICES[@]}"; do
  kill -0 "${PID[$s]}" 2>/dev/null || { say "FAIL: $s is no longer running"; status=1; }
done

# ---- verdicts and the report ----
report=$LOG/report.md
{
  echo "## Soak \`$RUN\`: $RATE requests/s for $SECS s (warm-up $WARMUP s), $USERS users, AUTH=on"
  echo
  echo "Mix: 25% UpdateUserProfile, 60% GET /v1/users/{id}, 10% GET /v1/users?email=, 5% GET /v1/orders?userId=."
  [ -f "$LOG/max.txt" ] && echo "Maximum measured first: \`$(cat "$LOG/max.txt")\`."
  echo
  echo "| minute | requests | failed | rate/s | p50 ms | p99 ms | p99.9 ms | max ms | writes p99 | reads p99 |"
  echo "|---|---|---|---|---|---|---|---|---|---|"
  awk '/^interval / { for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
    printf "| %d | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", v["k"] + 1, v["requests"], v["failed"], v["rate"],
      v["p50_ms"], v["p99_ms"], v["p999_ms"], v["max_ms"], v["write_p99_ms"], v["read_p99_ms"] }' "$LOG/intervals.txt"
  echo
  echo "RSS (MiB), sampled every $SAMPLE s; shown once a minute:"
  echo
  printf '| t (s) |'; printf ' %s |' "${SERVICES[@]}"; echo
  echo "|---|$(printf -- '---|%.0s' "${SERVICES[@]}")"
  awk -F, -v every=60 'NR > 1 && ($1 % every < '"$SAMPLE"' || NR == 2) {
    printf "| %d |", $1; for (i = 2; i <= NF; i++) printf " %.1f |", $i / 1024; printf "\n" }' "$LOG/rss.csv"
  echo
  if [ -n "$pg_from" ]; then
    echo "The local PostgreSQL's log during the run (checkpoints, autovacuum runs over 1 s, statements"
    echo "over 500 ms; times in UTC, the minutes above count from the start at $(date -u -d "@$start_epoch" +%T)):"
    echo
    echo '```'
    tail -c +"$((pg_from + 1))" "$PG_LOG_FILE" | grep -E 'checkpoint (starting|complete)|automatic (vacuum|analyze)|elapsed:|duration: ' |
      cut -c1-240 | head -200 || true
    echo '```'
    echo
  fi
} >"$report"

verdict() { echo "- $*" >>"$report"; say "$*"; }
for ((i = 0; i < ${#SERVICES[@]}; i++)); do
  s=${SERVICES[$i]}
  # base: the first sample at or after the warm-up; then the largest and the last
  read -r base top last < <(awk -F, -v col=$((i + 2)) -v w="$WARMUP" 'NR > 1 && $1 >= w {
      if (base == "") base = $col; if ($col > top) top = $col; last = $col }
    END { print base + 0, top + 0, last + 0 }' "$LOG/rss.csv")
  growth=$(awk -v b="$base" -v t="$top" 'BEGIN { printf "%.1f", (b > 0 ? (t - b) * 100 / b : 0) }')
  if awk -v g="$growth" -v b="$base" 'BEGIN { exit !(b > 0 && g <= 10) }'; then
    verdict "RSS $s: $((base / 1024)) MiB after the warm-up, at most $((top / 1024)) MiB later (+$growth%), $((last / 1024)) MiB at the end: flat"
  else
    verdict "FAIL RSS $s: $((base / 1024)) MiB after the warm-up, up to $((top / 1024)) MiB later (+$growth%, more than 10%)"
    status=1
  fi
done
errors=0
for s in "${SERVICES[@]}"; do
  n=$(grep -c '"level":"error"' "$LOG/$s.log" || true)
  errors=$((errors + n))
  ((n == 0)) || { verdict "FAIL $s logged $n error lines, the first: $(grep -m1 '"level":"error"' "$LOG/$s.log")"; status=1; }
done
((errors > 0)) || verdict "no error line in any service's log"
failed=$(sed -nE 's/^run .* failed=([0-9]+).*/\1/p' "$LOG/intervals.txt")
if [ "${failed:-x}" = 0 ]; then verdict "every request answered as expected"
else verdict "FAIL ${failed:-?} requests failed (their first answers are above)"; status=1; fi
# p99 per minute after the warm-up, against the median minute
read -r med lo hi < <(awk -v w="$WARMUP" '/^interval / { for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
    if (v["end_s"] - 60 >= w) print v["p99_ms"] + 0 }' "$LOG/intervals.txt" | sort -g |
  awk '{ p[NR] = $1 } END { if (!NR) print "0 0 0"; else print p[int((NR + 1) / 2)], p[1], p[NR] }')
if awk -v m="$med" -v h="$hi" 'BEGIN { exit !(m > 0 && h <= 2 * m) }'; then
  verdict "p99 after the warm-up: median minute $med ms, from $lo to $hi ms: stable (within 2x)"
else
  verdict "FAIL p99 after the warm-up: median minute $med ms, from $lo to $hi ms (more than 2x)"
  status=1
fi
say "report: $report"
exit $status
