#!/usr/bin/env bash
# Read-side benchmark: one run prints each read-side rate next to its raw
# baseline measured in the same run (ratio), with the exact command lines.
# Not a test: numbers go to BENCHMARKS.md ("Read side").
#
#   make build && deploy/local/stack.sh start && tests/bench/read_run.sh
#
# 1. projector-svc applying N seeded UserCreated events vs a raw libmongoc bulk
#    write of the same N documents (chunks of 20, and unchunked on a private
#    FerretDB, where a deadlock hurts nobody)
# 2. query-svc GET /v1/users/<random id> (wrk) vs raw libmongoc find by _id
# 3. query-svc GET /healthz vs nginx answering the same bytes
# 4. command-to-visible latency at fixed command rates
# Everything listens on 127.0.0.1; every loop and wait is bounded.
# Knobs: BENCH_EVENTS (5000), BENCH_READ_SECONDS (10), BENCH_READ_CONNS (16),
#        BENCH_HTTP_CONNS (64), BENCH_VISIBLE_RATES ("10 50 200"), BENCH_VISIBLE_SECONDS (10),
#        BENCH_UNCHUNKED (1: try the unchunked write on a private FerretDB),
#        BENCH_PORT_BASE (18380: command +0, query +1, projector +2, nginx +3, FerretDB +4)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
BIN=build/bin
BROKERS=${KAFKA_BROKERS:-127.0.0.1:9092}
MONGO=${MONGO_URI:-mongodb://127.0.0.1:27017}
N=${BENCH_EVENTS:-5000}
READ_S=${BENCH_READ_SECONDS:-10}
READ_C=${BENCH_READ_CONNS:-16}
HTTP_C=${BENCH_HTTP_CONNS:-64}
VIS_RATES=${BENCH_VISIBLE_RATES:-10 50 200}
VIS_S=${BENCH_VISIBLE_SECONDS:-10}
UNCHUNKED=${BENCH_UNCHUNKED:-1}
PB=${BENCH_PORT_BASE:-18380}
P_CMD=$PB P_QUERY=$((PB + 1)) P_PROJ=$((PB + 2)) P_NGINX=$((PB + 3)) P_FERRET=$((PB + 4))
RUN=readbench$(date +%s)
PREFIX=$RUN.
DB=$RUN
LOG=.local/log/bench-$RUN
IDS=$LOG/ids.txt
mkdir -p "$LOG"
exec > >(tee "$LOG/read_run.out") 2>&1
say() { echo "[read-bench] $*"; }
die() { echo "[read-bench] ERROR: $*" >&2; exit 1; }

for b in read_bench command-svc projector-svc query-svc; do
  [ -x "$BIN/$b" ] || die "$BIN/$b missing: make build first"
done
command -v wrk >/dev/null || die "wrk missing (deploy/local/deps.sh installs it)"
command -v nginx >/dev/null || die "nginx missing (deploy/local/deps.sh installs nginx-light)"
for p in $P_CMD $P_QUERY $P_PROJ $P_NGINX $P_FERRET; do
  (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && die "port $p is in use (set BENCH_PORT_BASE)"
done

# Processes this script started, by pid; stopped in reverse order on exit.
PIDS=()
cleanup() {
  local i
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
    kill "${PIDS[i]}" 2>/dev/null && for _ in $(seq 1 100); do kill -0 "${PIDS[i]}" 2>/dev/null || break; sleep 0.1; done
    kill -9 "${PIDS[i]}" 2>/dev/null || true
  done
  PIDS=()
}
trap cleanup EXIT
stop_pid() { # pid: SIGTERM, bounded wait, SIGKILL
  kill "$1" 2>/dev/null || return 0
  for _ in $(seq 1 150); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$1" 2>/dev/null || true
}
wait_http() { # port path pid what
  for _ in $(seq 1 600); do
    curl -fsS -m 2 -o /dev/null "http://127.0.0.1:$1$2" 2>/dev/null && return 0
    kill -0 "$3" 2>/dev/null || die "$4 died, see $LOG"
    sleep 0.1
  done
  die "$4 not ready on :$1$2"
}
field() { sed -nE "s/.*[ ^]$1=([^ ]+).*/\1/p" <<<" $2"; }
wrk_field() { # file: requests/s, p50, p99 (ms) from wrk --latency output
  awk '/Requests\/sec/ {r=$2}
       function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
       $1=="50%" {p50=ms($2)} $1=="99%" {p99=ms($2)}
       /Non-2xx/ {bad=$5} /Socket errors/ {err=$0}
       END {printf "requests_per_s=%s p50_ms=%.2f p99_ms=%.2f non2xx=%d%s\n", r, p50, p99, bad, err ? " " err : ""}' "$1"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }
met() { awk -v r="$1" -v t="$2" 'BEGIN { print (r >= t ? "met" : "NOT met") }'; }
show() { say "  \$ $*"; }

say "run $RUN: topic prefix $PREFIX, database $DB at $MONGO, logs in $LOG"

# ------------------------------------------------------------------ 1. projector
say "1. projector: $N UserCreated events, then projector-svc until user_profiles has them all"
SEED_CMD="$BIN/read_bench seed-events $BROKERS $PREFIX $N $IDS"
show "$SEED_CMD"
say "  $($SEED_CMD)"

RAW_W_CMD="$BIN/read_bench raw-write $MONGO $DB raw_user_profiles_c20 $IDS 20"
show "$RAW_W_CMD"
raw1=$($RAW_W_CMD) || true
say "  $raw1"

TO_MONGO_ALL=$MONGO
ferret_pid=
if [ "$UNCHUNKED" = 1 ]; then
  # FerretDB v1.24 deadlocks on update commands of 100+ updates (apply_loop.c):
  # tried on a private FerretDB (own SQLite directory, own port), never on the shared one.
  FDIR=$LOG/ferretdb
  mkdir -p "$FDIR/data" "$FDIR/state"
  FERRET_CMD=".local/bin/ferretdb --handler=sqlite --sqlite-url=file:$FDIR/data/ --listen-addr=127.0.0.1:$P_FERRET --state-dir=$FDIR/state --telemetry=disable --debug-addr=- --log-format=text --log-level=warn"
  say "  private FerretDB for the unchunked try: $FERRET_CMD"
  $FERRET_CMD >"$LOG/ferretdb-private.log" 2>&1 &
  ferret_pid=$!
  PIDS+=("$ferret_pid")
  for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$P_FERRET") 2>/dev/null && break; sleep 0.1; done
  PMONGO="mongodb://127.0.0.1:$P_FERRET/?socketTimeoutMS=60000"
  PRIV20_CMD="$BIN/read_bench raw-write $PMONGO $DB raw_c20 $IDS 20"
  show "$PRIV20_CMD"
  priv20=$($PRIV20_CMD) || true
  say "  $priv20"
  PRIVALL_CMD="timeout 90 $BIN/read_bench raw-write $PMONGO $DB raw_all $IDS 0"
  show "$PRIVALL_CMD"
  privall=$($PRIVALL_CMD 2>&1) || privall="${privall:-} (exit $?: no answer within the time limits: deadlock)"
  say "  $privall"
  stop_pid "$ferret_pid"
  if command -v sqlite3 >/dev/null; then
    # Why every _id lookup costs the same as a scan: FerretDB's pushed-down
    # WHERE (as its debug log shows it) against the _id index it created.
    tbl=$(sqlite3 "file:$FDIR/data/$DB.sqlite?mode=ro" "SELECT table_name FROM _ferretdb_collections WHERE name = 'raw_c20'")
    plan=$(sqlite3 "file:$FDIR/data/$DB.sqlite?mode=ro" "EXPLAIN QUERY PLAN SELECT _ferretdb_sjson FROM \"$tbl\" WHERE _ferretdb_sjson->'\$._id' = ?" | tail -1)
    idx=$(sqlite3 "file:$FDIR/data/$DB.sqlite?mode=ro" "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = '$tbl'")
    say "  FerretDB's query for {_id: ...}: WHERE _ferretdb_sjson->'\$._id' = ?  plan: $plan  (its index: $idx)"
  fi
fi

PROJ_CMD="TOPIC_PREFIX=$PREFIX MONGO_DB=$DB HTTP_PORT=$P_PROJ $BIN/projector-svc"
show "$PROJ_CMD"
TOPIC_PREFIX=$PREFIX MONGO_DB=$DB HTTP_PORT=$P_PROJ KAFKA_BROKERS=$BROKERS MONGO_URI=$MONGO \
  "$BIN/projector-svc" >"$LOG/projector-svc.log" 2>&1 &
proj_pid=$!
PIDS+=("$proj_pid")
WAIT_CMD="$BIN/read_bench wait-applied $P_PROJ $N 300"
show "$WAIT_CMD   (started right after projector-svc)"
proj=$($WAIT_CMD) || die "projector did not apply $N events: $proj"
say "  $proj"
kill -0 "$proj_pid" || die "projector-svc died"

show "$RAW_W_CMD   (again, after the projector: same-run noise)"
raw1b=$($BIN/read_bench raw-write "$MONGO" "$DB" raw_user_profiles_c20b "$IDS" 20) || true
say "  $raw1b"
raw_rate=$(awk -v a="$(field docs_per_s "$raw1")" -v b="$(field docs_per_s "$raw1b")" 'BEGIN { printf "%.0f", (a + b) / 2 }')
proj_rate=$(field events_per_s "$proj")
proj_rate_all=$(field events_per_s_since_start "$proj")

# ------------------------------------------------------------------ 2. point reads
QUERY_CMD="MONGO_DB=$DB HTTP_PORT=$P_QUERY $BIN/query-svc"
show "$QUERY_CMD"
MONGO_DB=$DB HTTP_PORT=$P_QUERY MONGO_URI=$MONGO "$BIN/query-svc" >"$LOG/query-svc.log" 2>&1 &
query_pid=$!
PIDS+=("$query_pid")
wait_http "$P_QUERY" /readyz "$query_pid" query-svc
first=$(head -1 "$IDS")
curl -fsS -o /dev/null "http://127.0.0.1:$P_QUERY/v1/users/$first" || die "GET /v1/users/$first failed"

say "2. point reads: $READ_C connections for ${READ_S}s, random ids of the $N"
WRK_READ_CMD="wrk -t1 -c$READ_C -d${READ_S}s --latency -s tests/bench/user_ids.lua http://127.0.0.1:$P_QUERY -- $IDS"
show "$WRK_READ_CMD"
$WRK_READ_CMD >"$LOG/wrk-read.txt"
qread=$(wrk_field "$LOG/wrk-read.txt")
say "  query-svc $qread"
RAW_F_CMD="$BIN/read_bench raw-find $MONGO $DB user_profiles $IDS $READ_C $READ_S"
show "$RAW_F_CMD"
rawf=$($RAW_F_CMD) || true
say "  $rawf"

# ------------------------------------------------------------------ 3. HTTP layer
say "3. HTTP layer: GET /healthz, $HTTP_C connections for ${READ_S}s"
WRK_H_CMD="wrk -t1 -c$HTTP_C -d${READ_S}s --latency http://127.0.0.1:$P_QUERY/healthz"
show "$WRK_H_CMD"
$WRK_H_CMD >"$LOG/wrk-healthz-query.txt"
qh=$(wrk_field "$LOG/wrk-healthz-query.txt")
say "  query-svc $qh"
NDIR=$ROOT/.local/run/$RUN-nginx
mkdir -p "$NDIR/nginx-tmp"
sed -e "s|@DIR@|$NDIR|g" -e "s|@PORT@|$P_NGINX|g" tests/bench/nginx.conf.in >"$NDIR/nginx.conf"
NGINX_CMD="nginx -p $NDIR -c $NDIR/nginx.conf"
show "$NGINX_CMD   (config from tests/bench/nginx.conf.in: worker_processes 2, access_log off)"
$NGINX_CMD >"$LOG/nginx.log" 2>&1 &
nginx_pid=$!
PIDS+=("$nginx_pid")
wait_http "$P_NGINX" /healthz "$nginx_pid" nginx
[ "$(curl -fsS "http://127.0.0.1:$P_NGINX/healthz")" = "$(curl -fsS "http://127.0.0.1:$P_QUERY/healthz")" ] ||
  die "nginx and query-svc answer different bodies"
WRK_N_CMD="wrk -t1 -c$HTTP_C -d${READ_S}s --latency http://127.0.0.1:$P_NGINX/healthz"
show "$WRK_N_CMD"
$WRK_N_CMD >"$LOG/wrk-healthz-nginx.txt"
nh=$(wrk_field "$LOG/wrk-healthz-nginx.txt")
say "  nginx $nh"
stop_pid "$nginx_pid"

# ------------------------------------------------------------------ 4. command to visible
CMD_CMD="TOPIC_PREFIX=$PREFIX HTTP_PORT=$P_CMD $BIN/command-svc"
show "$CMD_CMD"
TOPIC_PREFIX=$PREFIX HTTP_PORT=$P_CMD KAFKA_BROKERS=$BROKERS "$BIN/command-svc" >"$LOG/command-svc.log" 2>&1 &
cmd_pid=$!
PIDS+=("$cmd_pid")
wait_http "$P_CMD" /readyz "$cmd_pid" command-svc
# warm-up, not measured: the first transaction of a fresh command-svc takes seconds
WARM_CMD="$BIN/read_bench visible $P_CMD $P_QUERY 2 2"
say "  warm-up: $($WARM_CMD || true)"
say "4. command to visible: CreateUser over HTTP at a fixed rate, then GET ?minVersion=1&waitMs=10000"
vis=()
for rate in $VIS_RATES; do
  VIS_CMD="$BIN/read_bench visible $P_CMD $P_QUERY $rate $VIS_S"
  show "$VIS_CMD"
  line=$($VIS_CMD) || true
  say "  $line"
  vis+=("$line")
done

# ------------------------------------------------------------------ summary
say "summary ($RUN)"
# Both from an empty collection to N documents (an upsert costs more as the
# collection grows), the projector's time including its start and group join.
r1=$(ratio "$proj_rate_all" "$raw_rate")
say "  1. projector      $(printf '%8.0f' "$proj_rate_all") events/s from process start to all applied ($(printf '%.0f' "$proj_rate")/s after its first batch)  raw bulk(20) $(printf '%8.0f' "$raw_rate") docs/s (mean of $(field docs_per_s "$raw1") and $(field docs_per_s "$raw1b"))  ratio $r1 (target 0.8: $(met "$r1" 0.8))"
if [ "$UNCHUNKED" = 1 ]; then
  say "     private FerretDB: chunk 20: $(field docs_per_s "$priv20") docs/s; unchunked: $privall"
fi
qr=$(field requests_per_s "$qread") rr=$(field requests_per_s "$rawf")
r2=$(ratio "$qr" "$rr")
say "  2. point reads    query-svc $qr req/s p99 $(field p99_ms "$qread") ms   raw find $rr req/s p99 $(field p99_ms "$rawf") ms   ratio $r2 (target 0.7: $(met "$r2" 0.7))"
qhr=$(field requests_per_s "$qh") nhr=$(field requests_per_s "$nh")
r3=$(ratio "$qhr" "$nhr")
say "  3. /healthz       query-svc $qhr req/s p99 $(field p99_ms "$qh") ms   nginx $nhr req/s p99 $(field p99_ms "$nh") ms   ratio $r3 (target 0.6: $(met "$r3" 0.6))"
for line in "${vis[@]}"; do
  say "  4. visible        $(field rate "$line")/s: p50 $(field p50_ms "$line") ms p99 $(field p99_ms "$line") ms (visible $(field visible "$line") of $(field commands "$line"); command ack p50 $(field ack_p50_ms "$line") ms)"
done
say "logs in $LOG"
