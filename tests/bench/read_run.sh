#!/usr/bin/env bash
# Read-side benchmark: one run prints each read-side rate next to its raw
# baseline measured in the same run (ratio), with the exact command lines.
# Not a test: numbers go to BENCHMARKS.md ("Read side").
#
#   cmake --build build && deploy/local/stack.sh start && tests/bench/read_run.sh
#
# Per size N of BENCH_SIZES (a fresh topic prefix and database each):
#  1. projector-svc applying N seeded UserCreated events vs a raw libmongoc
#     version-guarded bulk upsert of the same N documents into a fresh
#     collection with the same indexes (GIN included), same chunk size
#     (MONGO_BULK_MAX) and commands in flight (MONGO_WRITE_CONCURRENCY); the
#     raw insert_many rate of the same documents as context
#  2. query-svc GET /v1/users/<random id> (wrk) vs raw libmongoc find by _id;
#     again after merging the GIN indexes' pending lists (what VACUUM does)
# At the largest N, on the same database:
#  3. list queries (user by email, orders by user, customers by email prefix,
#     customers by status, orders by status) over seeded read models, each
#     through query-svc, as the same find straight from libmongoc and, with
#     FerretDB's PostgreSQL, as query-svc's keyset path straight from libpq
#     and libmongoc (raw-keyset: the anchor of the keyset lists)
#  4. the PostgreSQL plan FerretDB runs for each query shape (explain), and
#     that of the keyset statement of each keyset list (EXPLAIN ANALYZE)
#  5. query-svc GET /healthz vs nginx answering the same bytes
#  6. command to visible: POST CreateUser, then GET ?minVersion=1&waitMs at
#     fixed rates, with the services' /metrics sampled meanwhile; the higher
#     rates are skipped once fewer than half of the reads are answered
# Between phases it waits (bounded) until PostgreSQL has finished what
# FerretDB still runs for the run's database (queries whose client gave up).
# Then, at BENCH_STUDY_DOCS documents, on a private FerretDB over its own
# database of the same PostgreSQL (so a deadlock hurts nobody):
#  7. raw bulk upserts at each chunk size of BENCH_BULK_SIZES (each try bounded)
#  8. projector-svc at each MONGO_WRITE_CONCURRENCY and each MONGO_BULK_MAX
# Everything listens on 127.0.0.1; every loop and wait is bounded. What the
# run created (databases, topics) is dropped at the end unless BENCH_KEEP=1.
# Knobs: BENCH_BIN (build/bin), BENCH_SIZES ("2000 20000 100000"),
#        BENCH_READ_SECONDS (10), BENCH_READ_CONNS (16), BENCH_HTTP_CONNS (64),
#        BENCH_ORDERS (100000), BENCH_CUSTOMERS (100000), BENCH_LIST_SECONDS (10), BENCH_LIST_CONNS (4),
#        BENCH_LIST_RAW_FIND (1; 0: the keyset lists skip the store's own find, 18-34 s a page at 100k),
#        BENCH_VISIBLE_RATES ("100 500 1000"), BENCH_VISIBLE_SECONDS (30), BENCH_VISIBLE_WAIT_MS (10000),
#        BENCH_STUDY_DOCS (20000), BENCH_BULK_SIZES ("20 100 500 1000"), BENCH_TRY_SECONDS (180),
#        BENCH_CONCURRENCIES ("1 2 4 8"), BENCH_PROJ_BULK_SIZES ("20 100 500 1000"),
#        BENCH_PHASES ("sizes lists plans http visible study"), BENCH_KEEP (0),
#        BENCH_PORT_BASE (18380: command +0, query +1, projector +2, nginx +3, private FerretDB +4),
#        BENCH_BROKER_REQUESTS (0; 1: the broker's requests per second by type over each rate of
#        step 6, from Kafka's counters over JMX, tests/bench/lib.sh)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
. tests/bench/lib.sh
BIN=${BENCH_BIN:-build/bin}
BROKERS=${KAFKA_BROKERS:-127.0.0.1:9092}
MONGO=${MONGO_URI:-mongodb://127.0.0.1:27017}
# The PostgreSQL behind the local FerretDB, where projector-svc creates its GIN
# indexes; none when MONGO_URI names a server of your own (a real MongoDB).
if [ -z "${MONGO_URI:-}" ]; then PG=${FERRETDB_PG_URI:-postgres://postgres@127.0.0.1:${PG_PORT:-5433}/ferretdb}
else PG=${FERRETDB_PG_URI:-}; fi
unset FERRETDB_PG_URI
SIZES=${BENCH_SIZES:-2000 20000 100000}
READ_S=${BENCH_READ_SECONDS:-10}
READ_C=${BENCH_READ_CONNS:-16}
HTTP_C=${BENCH_HTTP_CONNS:-64}
ORDERS=${BENCH_ORDERS:-100000}
CUSTOMERS=${BENCH_CUSTOMERS:-100000}
LIST_S=${BENCH_LIST_SECONDS:-10}
LIST_C=${BENCH_LIST_CONNS:-4}
RAW_FIND=${BENCH_LIST_RAW_FIND:-1}
VIS_RATES=${BENCH_VISIBLE_RATES:-100 500 1000}
VIS_S=${BENCH_VISIBLE_SECONDS:-30}
VIS_WAIT=${BENCH_VISIBLE_WAIT_MS:-10000}
STUDY_N=${BENCH_STUDY_DOCS:-20000}
BULK_SIZES=${BENCH_BULK_SIZES:-20 100 500 1000}
TRY_S=${BENCH_TRY_SECONDS:-180}
CONCS=${BENCH_CONCURRENCIES:-1 2 4 8}
PROJ_BULKS=${BENCH_PROJ_BULK_SIZES:-20 100 500 1000}
PHASES=" ${BENCH_PHASES:-sizes lists plans http visible study} "
KEEP=${BENCH_KEEP:-0}
BROKER_REQ=${BENCH_BROKER_REQUESTS:-0}
# These measure the pipelines, as tenant "default" without credentials; the cost of
# authentication has its own benchmark (tests/bench/auth_run.sh).
export AUTH=${AUTH:-off}
# what projector-svc runs with unless told otherwise (libshared/src/config.c)
BULK=${MONGO_BULK_MAX:-100}
CONC=${MONGO_WRITE_CONCURRENCY:-4}
PB=${BENCH_PORT_BASE:-18380}
P_CMD=$PB P_QUERY=$((PB + 1)) P_PROJ=$((PB + 2)) P_NGINX=$((PB + 3)) P_FERRET=$((PB + 4))
RUN=readbench$(date +%s)
LOG=.local/log/bench-$RUN
mkdir -p "$LOG"
exec > >(tee "$LOG/read_run.out") 2>&1
say() { echo "[read-bench] $*"; }
die() { echo "[read-bench] ERROR: $*" >&2; exit 1; }
phase() { [[ $PHASES == *" $1 "* ]]; }

for b in read_bench command-svc projector-svc query-svc; do
  [ -x "$BIN/$b" ] || die "$BIN/$b missing: build first (or set BENCH_BIN)"
done
command -v wrk >/dev/null || die "wrk missing (deploy/local/deps.sh installs it)"
for p in $P_CMD $P_QUERY $P_PROJ $P_NGINX $P_FERRET; do
  (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && die "port $p is in use (set BENCH_PORT_BASE)"
done

# Processes this script started, by pid; stopped in reverse order on exit.
PIDS=()
stop_pid() { # pid: SIGTERM, bounded wait, SIGKILL; forgets it
  local i
  for i in "${!PIDS[@]}"; do [ "${PIDS[i]}" = "$1" ] && unset 'PIDS[i]'; done
  PIDS=("${PIDS[@]}")
  kill "$1" 2>/dev/null || return 0
  for _ in $(seq 1 150); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$1" 2>/dev/null || true
}
# What the run created in the shared stack, dropped on exit unless BENCH_KEEP=1.
DBS=()
TOPIC_PREFIXES=()
STUDY_PGDB=
cleanup() {
  local i
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do stop_pid "${PIDS[i]}"; done
  [ "$KEEP" != 1 ] || return 0
  for i in "${DBS[@]}"; do "$BIN/read_bench" drop "$MONGO" "$i" >/dev/null || true; done
  [ -z "$STUDY_PGDB" ] || psql "$PG" -qAtc "DROP DATABASE IF EXISTS $STUDY_PGDB WITH (FORCE)" >/dev/null || true
  [ ${#TOPIC_PREFIXES[@]} -eq 0 ] || bench_drop_topics "$BROKERS" "$RUN-"
}
trap cleanup EXIT
wait_http() { # port path pid what
  for _ in $(seq 1 600); do
    curl -fsS -m 2 -o /dev/null "http://127.0.0.1:$1$2" 2>/dev/null && return 0
    kill -0 "$3" 2>/dev/null || die "$4 died, see $LOG"
    sleep 0.1
  done
  die "$4 not ready on :$1$2"
}
# tdb <db>: the database of tenant "default" (events without ce_tenant), where
# projector-svc writes and query-svc with AUTH=off reads (MONGO_DB=<db>)
tdb() { echo "${1}_default"; }
field() { sed -nE "s/.*[ ^]$1=([^ ]+).*/\1/p" <<<" $2"; }
wrk_field() { # file: requests, requests/s, p50, p99 (ms) from wrk --latency output
  awk '/Requests\/sec/ {r=$2} / requests in / {n=$1}
       function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
       $1=="50%" {p50=ms($2)} $1=="99%" {p99=ms($2)}
       /Non-2xx/ {bad=$5} /Socket errors/ {err=$0}
       END {printf "requests=%d requests_per_s=%s p50_ms=%.2f p99_ms=%.2f non2xx=%d%s\n", n, r, p50, p99, bad, err ? " " err : ""}' "$1"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }
met() { awk -v r="$1" -v t="$2" 'BEGIN { print (r >= t ? "met" : "NOT met") }'; }
show() { say "  \$ $*"; }
run() { show "$*"; local out; out=$("$@") || true; say "  $out"; LAST=$out; }
SUMMARY=()
note() { SUMMARY+=("$*"); }

# start_projector <prefix> <db> <mongo-uri> <pg-uri or ""> [VAR=value...]: projector-svc on P_PROJ
start_projector() {
  local prefix=$1 db=$2 mongo=$3 pg=$4
  shift 4
  show "$* ${pg:+FERRETDB_PG_URI=$pg }TOPIC_PREFIX=$prefix MONGO_DB=$db MONGO_URI=$mongo HTTP_PORT=$P_PROJ $BIN/projector-svc"
  env "$@" ${pg:+FERRETDB_PG_URI=$pg} TOPIC_PREFIX="$prefix" MONGO_DB="$db" MONGO_URI="$mongo" HTTP_PORT=$P_PROJ \
    KAFKA_BROKERS="$BROKERS" "$BIN/projector-svc" >"$LOG/projector-$db.log" 2>&1 &
  proj_pid=$!
  PIDS+=("$proj_pid")
}
# projector_run <n> <prefix> <db> <mongo-uri> <pg-uri> [VAR=value...]: seeds n events, projects them; LAST = rate line
projector_run() {
  local n=$1 prefix=$2 db=$3 mongo=$4 pg=$5
  shift 5
  run "$BIN/read_bench" seed-events "$BROKERS" "$prefix" "$n" "$LOG/ids-$db.txt"
  start_projector "$prefix" "$db" "$mongo" "$pg" "$@"
  run "$BIN/read_bench" wait-applied "$P_PROJ" "$n" 600
  [ "$(field events_per_s "$LAST")" ] || die "projector did not apply $n events (see $LOG/projector-$db.log)"
}
start_query() { # db
  show "${PG:+FERRETDB_PG_URI=$PG }MONGO_DB=$1 MONGO_URI=$MONGO HTTP_PORT=$P_QUERY $BIN/query-svc"
  env ${PG:+FERRETDB_PG_URI=$PG} MONGO_DB="$1" MONGO_URI="$MONGO" HTTP_PORT=$P_QUERY "$BIN/query-svc" \
    >"$LOG/query-svc-$1.log" 2>&1 &
  query_pid=$!
  PIDS+=("$query_pid")
  wait_http "$P_QUERY" /readyz "$query_pid" query-svc
}
# point_reads <n> <db> <idfile> <label>: query-svc (wrk) then raw find by _id; sets qread
point_reads() {
  local n=$1 db=$2 ids=$3 label=$4 tag
  tag=$n$([ -z "$label" ] || echo -merged)
  # raw, query-svc, raw: the store drifts right after a load (autovacuum,
  # GIN pending lists), so query-svc is compared with the mean of both
  run "$BIN/read_bench" raw-find "$MONGO" "$(tdb "$db")" user_profiles "$ids" "$READ_C" "$READ_S"
  local raw1=$LAST qr rr r2
  show "wrk -t1 -c$READ_C -d${READ_S}s --latency -s tests/bench/user_ids.lua http://127.0.0.1:$P_QUERY -- $ids"
  wrk -t1 -c"$READ_C" -d"${READ_S}s" --latency -s tests/bench/user_ids.lua "http://127.0.0.1:$P_QUERY" -- "$ids" >"$LOG/wrk-read-$tag.txt"
  qread=$(wrk_field "$LOG/wrk-read-$tag.txt")
  say "  query-svc $qread"
  run "$BIN/read_bench" raw-find "$MONGO" "$(tdb "$db")" user_profiles "$ids" "$READ_C" "$READ_S"
  qr=$(field requests_per_s "$qread")
  rr=$(awk -v a="$(field requests_per_s "$raw1")" -v b="$(field requests_per_s "$LAST")" 'BEGIN { printf "%.0f", (a + b) / 2 }')
  r2=$(ratio "$qr" "$rr")
  note "N=$n point reads$label: query-svc $qr req/s p50 $(field p50_ms "$qread") p99 $(field p99_ms "$qread") ms non2xx $(field non2xx "$qread") | raw find $rr req/s (mean of $(field requests_per_s "$raw1") before and $(field requests_per_s "$LAST") after; p99 $(field p99_ms "$raw1") / $(field p99_ms "$LAST") ms) | ratio $r2 (target 0.7: $(met "$r2" 0.7))"
}
# pg_activity <db>: every second, the statements PostgreSQL runs on db's
# schema: all of them | the SELECTs without WHERE (whole-table reads; an INSERT or a
# COMMIT has no WHERE either and is not one); to stdout
pg_activity() {
  while :; do
    psql "$PG" -Atc "SELECT count(*), count(*) FILTER (WHERE query ILIKE 'SELECT%' AND query NOT LIKE '%WHERE%') FROM pg_stat_activity WHERE state = 'active' AND pid <> pg_backend_pid() AND query LIKE '%\"$1\".%'" 2>/dev/null || true
    sleep 1
  done
}
# drain_store <db>: waits (bounded) until PostgreSQL runs no statement on db's
# schema: FerretDB finishes a query whose client gave up (query-svc's store
# timeout), and a backlog of those would slow the next measurement.
drain_store() {
  [ -n "$PG" ] || return 0
  local n=0 t0=$SECONDS
  for _ in $(seq 1 240); do
    n=$(psql "$PG" -Atc "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND pid <> pg_backend_pid() AND query LIKE '%\"$1\".%'" 2>/dev/null || echo 0)
    [ "$n" = 0 ] && break
    sleep 0.5
  done
  [ $((SECONDS - t0)) -lt 2 ] || say "  (waited $((SECONDS - t0)) s for the store to finish the queries left on $1; $n still running)"
}
with_opt() { # uri option=value: the URI with one more option
  if [[ $1 == *\?* ]]; then echo "$1&$2"; elif [[ $1 == */ ]]; then echo "$1?$2"; else echo "$1/?$2"; fi
}
metric() { # port name: the sum of a metric's samples
  curl -fsS -m 2 "http://127.0.0.1:$1/metrics" 2>/dev/null | awk -v m="$2" '$1 == m || index($1, m "{") == 1 {s += $NF} END {print s + 0}'
}

say "run $RUN: database(s) ${RUN}_*, topic prefixes $RUN-*, store $MONGO${PG:+ (PostgreSQL $PG)}, logs in $LOG"
if [ "$BROKER_REQ" = 1 ] && ! bench_broker_jmx; then
  say "BENCH_BROKER_REQUESTS=1: the broker's request counters cannot be read (above); the run goes on without them"
  BROKER_REQ=0
fi
# What the binaries were built from: this tree (with whatever is uncommitted in
# it) or, say, a `git archive` of one commit with its id in .commit.
src=$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$BIN/../CMakeCache.txt" 2>/dev/null || true)
if [ -n "$src" ] && [ "$src" != "$ROOT" ]; then
  built="$src$([ ! -f "$src/.commit" ] || echo ", commit $(cat "$src/.commit")")"
else
  built="commit $(git rev-parse --short HEAD)"
  dirty=$(git status --porcelain -- command-svc projector-svc query-svc libshared | awk '{print $2}' | tr '\n' ' ')
  [ -z "$dirty" ] || built="$built + uncommitted: $dirty"
fi
say "binaries in $BIN built from $built"
say "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo), load $(cut -d' ' -f1-3 /proc/loadavg); binaries $BIN; MONGO_BULK_MAX=$BULK MONGO_WRITE_CONCURRENCY=$CONC"
last=${SIZES##* }

# ------------------------------------------------------------------ 1, 2: per size
if phase sizes; then
  for n in $SIZES; do
    prefix=$RUN-n$n. db=${RUN}_n$n ids=$LOG/ids-${RUN}_n$n.txt
    DBS+=("$db" "$(tdb "$db")")
    TOPIC_PREFIXES+=("$prefix")
    say "== N = $n: database $db"
    say "1. raw baseline: $n version-guarded upserts, chunks of $BULK, $CONC commands in flight, into a fresh collection with the projector's indexes"
    run "$BIN/read_bench" prepare "$MONGO" "${PG:--}" "$db" raw_upsert email
    run "$BIN/read_bench" seed-events "$BROKERS" "$prefix" "$n" "$ids"
    run "$BIN/read_bench" raw-write "$MONGO" "$db" raw_upsert "$ids" "$BULK" "$CONC"
    raw_up=$LAST
    run "$BIN/read_bench" prepare "$MONGO" "${PG:--}" "$db" raw_insert email
    run "$BIN/read_bench" raw-insert "$MONGO" "$db" raw_insert "$ids" "$BULK" "$CONC"
    raw_ins=$LAST
    say "1. projector-svc on the $n events (GIN indexes created at its start)"
    start_projector "$prefix" "$db" "$MONGO" "$PG"
    run "$BIN/read_bench" wait-applied "$P_PROJ" "$n" 600
    proj=$LAST
    [ "$(field events_per_s "$proj")" ] || die "projector did not apply $n events (see $LOG/projector-$db.log)"
    pr=$(field events_per_s "$proj") ur=$(field docs_per_s "$raw_up") ir=$(field docs_per_s "$raw_ins")
    r1=$(ratio "$pr" "$ur")
    note "N=$n projector $pr events/s (first batch to last; $(field events_per_s_since_start "$proj")/s from process start) | raw upsert $ur docs/s | ratio $r1 (target 0.8: $(met "$r1" 0.8)) | raw insert_many $ir docs/s (projector/insert $(ratio "$pr" "$ir"))"

    say "2. point reads: $READ_C connections for ${READ_S}s, random ids of the $n"
    start_query "$db"
    curl -fsS -o /dev/null "http://127.0.0.1:$P_QUERY/v1/users/$(head -1 "$ids")" || die "GET /v1/users/<first id> failed"
    point_reads "$n" "$db" "$ids" ""
    qr=$(field requests_per_s "$qread")
    if [ -n "$PG" ]; then
      # GIN's fast update keeps new entries in a pending list that every
      # lookup scans until VACUUM merges it: merged here, the same reads again.
      run psql "$PG" -Atc "SELECT 'gin_pending_pages_merged=' || coalesce(sum(gin_clean_pending_list(c.oid)), 0) FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace WHERE s.nspname = '$(tdb "$db")' AND c.relname LIKE 'cqrs_gin_%'"
      point_reads "$n" "$db" "$ids" " after merging the GIN pending lists ($(field gin_pending_pages_merged "$LAST") pages)"
      eval "qrate_merged_$n=$(field requests_per_s "$qread")"
    fi
    eval "qrate_$n=$qr"
    if [ "$n" != "$last" ]; then
      stop_pid "$query_pid"
      stop_pid "$proj_pid"
    fi
  done
  first=${SIZES%% *}
  q_first=$(eval echo "\${qrate_$first:-0}") q_last=$(eval echo "\${qrate_$last:-0}")
  r=$(ratio "$q_last" "$q_first")
  note "point reads at $last vs $first: $q_last / $q_first req/s = $r (target within 2x, i.e. >= 0.5: $(met "$r" 0.5))"
  if [ -n "$PG" ]; then
    q_first=$(eval echo "\${qrate_merged_$first:-0}") q_last=$(eval echo "\${qrate_merged_$last:-0}")
    r=$(ratio "$q_last" "$q_first")
    note "point reads at $last vs $first, GIN pending lists merged: $q_last / $q_first req/s = $r ($(met "$r" 0.5))"
  fi
fi

big_db=$(tdb "${RUN}_n$last") big_ids=$LOG/ids-${RUN}_n$last.txt
have_big() { phase sizes && kill -0 "${proj_pid:-0}" 2>/dev/null && kill -0 "${query_pid:-0}" 2>/dev/null; }

# ------------------------------------------------------------------ 3. lists
if phase lists && have_big; then
  say "3. lists at $last: $ORDERS order_summaries (10 per user, 5 statuses) and $CUSTOMERS customers (90% ACTIVE) inserted into collections with projector-svc's indexes"
  # projector-svc makes a read model's indexes before its first write there, and it wrote no order or customer
  run "$BIN/read_bench" prepare-models "$MONGO" "${PG:--}" "$big_db" order_summaries customers
  run "$BIN/read_bench" seed-lists "$MONGO" "$big_db" "$big_ids" "$ORDERS" "$CUSTOMERS" "$LOG"
  LMONGO=$(with_opt "$MONGO" socketTimeoutMS=60000)
  # cheapest first; each through query-svc, then the same finds straight from libmongoc
  for ls in users_by_email:email orders_by_user:userId customers_by_email:email-prefix \
    customers_by_status:customer-status orders_by_status:status; do
    list=${ls%%:*} shape=${ls##*:}
    drain_store "$big_db"
    show "wrk -t1 -c$LIST_C -d${LIST_S}s --timeout 30s --latency -s tests/bench/paths.lua http://127.0.0.1:$P_QUERY -- $LOG/$list.paths   (e.g. $(head -1 "$LOG/$list.paths"))"
    wrk -t1 -c"$LIST_C" -d"${LIST_S}s" --timeout 30s --latency -s tests/bench/paths.lua "http://127.0.0.1:$P_QUERY" \
      -- "$LOG/$list.paths" >"$LOG/wrk-$list.txt"
    line=$(wrk_field "$LOG/wrk-$list.txt")
    say "  query-svc $list: $line"
    keyset=""
    [[ -z $PG || $shape == email || $shape == userId ]] || keyset=1
    raw=""
    if [ -n "$keyset" ]; then
      # query-svc's own path (query-svc/pg_lists.h): the keyset statement, then each document by _id
      drain_store "$big_db"
      run "$BIN/read_bench" raw-keyset "$MONGO" "$PG" "$big_db" "$shape" "$LOG/$list.paths" "$LIST_C" "$LIST_S"
      raw=" | raw keyset $(field requests_per_s "$LAST") req/s p50 $(field p50_ms "$LAST") p99 $(field p99_ms "$LAST") ms ($(field docs_per_request "$LAST") docs each): ratio $(ratio "$(field requests_per_s "$line")" "$(field requests_per_s "$LAST")")"
    fi
    if [ -z "$keyset" ] || [ "$RAW_FIND" = 1 ]; then
      drain_store "$big_db"
      run "$BIN/read_bench" raw-list "$LMONGO" "$big_db" "$shape" "$LOG/$list.paths" "$LIST_C" "$LIST_S"
      raw="$raw | raw find $(field requests_per_s "$LAST") req/s p50 $(field p50_ms "$LAST") p99 $(field p99_ms "$LAST") ms ($(field requests "$LAST") finds, $(field docs_per_request "$LAST") docs each)"
    fi
    note "list $list at $last: query-svc $(field requests_per_s "$line") req/s p50 $(field p50_ms "$line") p99 $(field p99_ms "$line") ms ($(field requests "$line") answers, $(field non2xx "$line") non-2xx)$raw"
  done
  drain_store "$big_db"
fi

# ------------------------------------------------------------------ 4. plans
if phase plans && have_big; then
  say "4. the PostgreSQL plan FerretDB runs per query shape (explain, verbosity queryPlanner), at $last users"
  for sv in "id $(head -1 "$big_ids")" "id-version $(head -1 "$big_ids")" "id-in $(head -1 "$big_ids")" "email reader0@example.com" \
    "userId $(head -1 "$big_ids")" "status Shipped" "customer-status ACTIVE" "email-prefix anna.12"; do
    # shellcheck disable=SC2086
    run "$BIN/read_bench" explain "$MONGO" "$big_db" $sv
    note "plan ${sv%% *}: $(sed -nE 's/.*plan="([^"]*)".*/\1/p' <<<"$LAST") (pushdown filter/sort/limit: $(field filterPushdown "$LAST")/$(field sortPushdown "$LAST")/$(field limitPushdown "$LAST"))"
  done
  if [ -n "$PG" ]; then
    say "   and the keyset statement query-svc runs in PostgreSQL for the lists (EXPLAIN ANALYZE, first page)"
    for sv in "status Shipped" "customer-status ACTIVE" "email-prefix anna.12"; do
      # shellcheck disable=SC2086
      run "$BIN/read_bench" explain-keyset "$PG" "$big_db" $sv
      note "keyset plan ${sv%% *}: $(sed -nE 's/.*plan="([^"]*)".*/\1/p' <<<"$LAST") ($(sed -nE 's/.*execution="([^"]*)".*/\1/p' <<<"$LAST"))"
    done
  fi
fi

# ------------------------------------------------------------------ 5. HTTP layer
if phase http && have_big && command -v nginx >/dev/null; then
  say "5. HTTP layer: GET /healthz, $HTTP_C connections for ${READ_S}s"
  show "wrk -t1 -c$HTTP_C -d${READ_S}s --latency http://127.0.0.1:$P_QUERY/healthz"
  wrk -t1 -c"$HTTP_C" -d"${READ_S}s" --latency "http://127.0.0.1:$P_QUERY/healthz" >"$LOG/wrk-healthz-query.txt"
  qh=$(wrk_field "$LOG/wrk-healthz-query.txt")
  NDIR=$ROOT/.local/run/$RUN-nginx
  mkdir -p "$NDIR/nginx-tmp"
  sed -e "s|@DIR@|$NDIR|g" -e "s|@PORT@|$P_NGINX|g" tests/bench/nginx.conf.in >"$NDIR/nginx.conf"
  show "nginx -p $NDIR -c $NDIR/nginx.conf   (tests/bench/nginx.conf.in: worker_processes 2, access_log off)"
  nginx -p "$NDIR" -c "$NDIR/nginx.conf" >"$LOG/nginx.log" 2>&1 &
  nginx_pid=$!
  PIDS+=("$nginx_pid")
  wait_http "$P_NGINX" /healthz "$nginx_pid" nginx
  show "wrk -t1 -c$HTTP_C -d${READ_S}s --latency http://127.0.0.1:$P_NGINX/healthz"
  wrk -t1 -c"$HTTP_C" -d"${READ_S}s" --latency "http://127.0.0.1:$P_NGINX/healthz" >"$LOG/wrk-healthz-nginx.txt"
  nh=$(wrk_field "$LOG/wrk-healthz-nginx.txt")
  stop_pid "$nginx_pid"
  rm -rf "$NDIR"
  r3=$(ratio "$(field requests_per_s "$qh")" "$(field requests_per_s "$nh")")
  note "/healthz query-svc $(field requests_per_s "$qh") req/s p99 $(field p99_ms "$qh") ms | nginx $(field requests_per_s "$nh") req/s p99 $(field p99_ms "$nh") ms | ratio $r3"
fi

# ------------------------------------------------------------------ 6. command to visible
if phase visible && have_big; then
  CMD_PREFIX=$RUN-n$last.
  show "TOPIC_PREFIX=$CMD_PREFIX KAFKA_BROKERS=$BROKERS HTTP_PORT=$P_CMD $BIN/command-svc"
  TOPIC_PREFIX=$CMD_PREFIX HTTP_PORT=$P_CMD KAFKA_BROKERS=$BROKERS "$BIN/command-svc" >"$LOG/command-svc.log" 2>&1 &
  cmd_pid=$!
  PIDS+=("$cmd_pid")
  wait_http "$P_CMD" /readyz "$cmd_pid" command-svc
  # warm-up, not measured: the first transaction of a fresh command-svc takes seconds
  say "  warm-up: $("$BIN/read_bench" visible "$P_CMD" "$P_QUERY" "$P_PROJ" 5 2 "$VIS_WAIT" || true)"
  say "6. command to visible at $last users: CreateUser over HTTP at a fixed rate for ${VIS_S}s, then GET ?minVersion=1&waitMs=$VIS_WAIT"
  for rate in $VIS_RATES; do
    drain_store "$big_db"
    pga=
    if [ -n "$PG" ]; then
      pg_activity "$big_db" >"$LOG/pg-activity-$rate.txt" &
      pga=$!
      PIDS+=("$pga")
    fi
    [ "$BROKER_REQ" != 1 ] || bench_broker_requests "$LOG/broker-requests-$rate-before.txt"
    run "$BIN/read_bench" visible "$P_CMD" "$P_QUERY" "$P_PROJ" "$rate" "$VIS_S" "$VIS_WAIT"
    l=$LAST
    breq=
    if [ "$BROKER_REQ" = 1 ]; then
      bench_broker_requests "$LOG/broker-requests-$rate-after.txt"
      breq="; $(bench_broker_rates "$LOG/broker-requests-$rate-before.txt" "$LOG/broker-requests-$rate-after.txt")"
    fi
    # where the command side's transactions spent their time (transaction_phase_seconds)
    curl -fsS -m 2 "http://127.0.0.1:$P_CMD/metrics" >"$LOG/command-svc-metrics-$rate.txt" 2>/dev/null || true
    pgs=
    if [ -n "$pga" ]; then
      stop_pid "$pga"
      pgs=$(awk -F'|' '$1 > a {a = $1} $2 > w {w = $2} END {printf "; PostgreSQL statements on the database at once, max %d (%d of them whole-table reads)", a, w}' "$LOG/pg-activity-$rate.txt")
    fi
    note "visible ${rate}/s: p50 $(field p50_ms "$l") p99 $(field p99_ms "$l") ms; visible $(field visible "$l") of $(field commands "$l") sent ($(field accepted "$l") accepted, $(field stale "$l") stale, $(field read_no_answer "$l") no answer); command answered p50 $(field ack_p50_ms "$l") p99 $(field ack_p99_ms "$l") ms, then visible p50 $(field after_ack_p50_ms "$l") p99 $(field after_ack_p99_ms "$l") ms later; projector append to written p50 $(field proj_delay_p50_ms "$l") p99 $(field proj_delay_p99_ms "$l") ms; tx mean $(field tx_mean_ms "$l") ms over $(field tx "$l"); projector lag max $(field proj_lag_max "$l"); waiters max $(field waiters_max "$l"), hub finds $(field wait_polls "$l"), waits answered fresh $(field waits_fresh "$l") / stale $(field waits_stale "$l"); sender lag max $(field send_lag_max_ms "$l") ms$pgs$breq"
    # let the backlog drain before the next rate (bounded)
    for _ in $(seq 1 120); do
      [ "$(metric "$P_PROJ" projection_lag_events)" = 0 ] && [ "$(metric "$P_QUERY" read_waiters)" = 0 ] && break
      sleep 0.5
    done
    # broken at this rate: a higher one would only load the shared store longer
    if [ "$(awk -v v="$(field visible "$l")" -v c="$(field commands "$l")" 'BEGIN { print (c > 0 && v / c >= 0.5) }')" != 1 ]; then
      note "visible: fewer than half of the reads answered at ${rate}/s; higher rates skipped"
      break
    fi
  done
  stop_pid "$cmd_pid"
fi
[ -z "${query_pid:-}" ] || stop_pid "$query_pid"
[ -z "${proj_pid:-}" ] || stop_pid "$proj_pid"

# ------------------------------------------------------------------ 7, 8. bulk size and concurrency
if phase study; then
  SMONGO=$MONGO SPG=$PG sdb=${RUN}_study
  if [ -n "$PG" ]; then
    # A private FerretDB over its own database of the same PostgreSQL: a
    # FerretDB that deadlocks on big bulk commands hurts only this run.
    STUDY_PGDB=${RUN}_study
    run psql "$PG" -v ON_ERROR_STOP=1 -qAtc "CREATE DATABASE $STUDY_PGDB"
    SPG=${PG%/*}/$STUDY_PGDB
    start_ferret() {
      show ".local/bin/ferretdb --handler=postgresql --postgresql-url=$SPG --listen-addr=127.0.0.1:$P_FERRET --debug-addr=- --state-dir=$LOG/ferretdb-study --telemetry=disable --log-level=warn"
      mkdir -p "$LOG/ferretdb-study"
      .local/bin/ferretdb --handler=postgresql --postgresql-url="$SPG" --listen-addr=127.0.0.1:$P_FERRET --debug-addr=- \
        --state-dir="$LOG/ferretdb-study" --telemetry=disable --log-level=warn --log-format=text >>"$LOG/ferretdb-study.log" 2>&1 &
      ferret_pid=$!
      PIDS+=("$ferret_pid")
      for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$P_FERRET") 2>/dev/null && return 0; sleep 0.1; done
      die "private FerretDB did not start (see $LOG/ferretdb-study.log)"
    }
    start_ferret
    SMONGO=mongodb://127.0.0.1:$P_FERRET
  else
    DBS+=("$sdb")
  fi
  sep=$([[ $SMONGO == *\?* ]] && echo '&' || echo '/?')
  say "7. raw bulk upserts of $STUDY_N documents by chunk size ($CONC in flight), each try bounded by ${TRY_S}s, on $SMONGO"
  sids=$LOG/ids-study.txt
  TOPIC_PREFIXES+=("$RUN-study.")
  run "$BIN/read_bench" seed-events "$BROKERS" "$RUN-study." "$STUDY_N" "$sids"
  line7=""
  for b in $BULK_SIZES; do
    run "$BIN/read_bench" prepare "$SMONGO" "${SPG:--}" "$sdb" "raw_c$b" email
    show "timeout $TRY_S $BIN/read_bench raw-write '$SMONGO${sep}socketTimeoutMS=$((TRY_S * 1000))' $sdb raw_c$b $sids $b $CONC"
    out=$(timeout "$TRY_S" "$BIN/read_bench" raw-write "$SMONGO${sep}socketTimeoutMS=$((TRY_S * 1000))" "$sdb" "raw_c$b" "$sids" "$b" "$CONC" 2>&1) && rc=0 || rc=$?
    if [ "$rc" = 124 ]; then
      out="no answer within ${TRY_S}s (deadlock?)"
      [ -z "${ferret_pid:-}" ] || { stop_pid "$ferret_pid"; start_ferret; }
    fi
    say "  $out"
    line7="$line7 | chunk $b: $( [ "$rc" = 0 ] && echo "$(field docs_per_s "$out") docs/s in $(field seconds "$out") s" || echo "FAILED ($out)")"
  done
  note "raw upsert by MONGO_BULK_MAX at $STUDY_N docs, $CONC in flight$line7"

  say "8. projector-svc on $STUDY_N events by MONGO_WRITE_CONCURRENCY (MONGO_BULK_MAX=$BULK), then by MONGO_BULK_MAX (MONGO_WRITE_CONCURRENCY=$CONC)"
  line8="" line9=""
  for c in $CONCS; do
    p=$RUN-sc$c.
    TOPIC_PREFIXES+=("$p")
    projector_run "$STUDY_N" "$p" "${RUN}_sc$c" "$SMONGO" "$SPG" MONGO_WRITE_CONCURRENCY="$c" MONGO_BULK_MAX="$BULK"
    [ "$SMONGO" != "$MONGO" ] || DBS+=("$(tdb "${RUN}_sc$c")")
    stop_pid "$proj_pid"
    line8="$line8 | $c: $(field events_per_s "$LAST")/s"
  done
  note "projector by MONGO_WRITE_CONCURRENCY at $STUDY_N events (MONGO_BULK_MAX=$BULK)$line8"
  for b in $PROJ_BULKS; do
    p=$RUN-sb$b.
    TOPIC_PREFIXES+=("$p")
    projector_run "$STUDY_N" "$p" "${RUN}_sb$b" "$SMONGO" "$SPG" MONGO_WRITE_CONCURRENCY="$CONC" MONGO_BULK_MAX="$b"
    [ "$SMONGO" != "$MONGO" ] || DBS+=("$(tdb "${RUN}_sb$b")")
    stop_pid "$proj_pid"
    line9="$line9 | $b: $(field events_per_s "$LAST")/s"
  done
  note "projector by MONGO_BULK_MAX at $STUDY_N events (MONGO_WRITE_CONCURRENCY=$CONC)$line9"
  [ -z "${ferret_pid:-}" ] || stop_pid "$ferret_pid"
fi

# ------------------------------------------------------------------ summary
say "summary ($RUN, binaries built from $built)"
for s in "${SUMMARY[@]}"; do say "  $s"; done
say "logs in $LOG$([ "$KEEP" = 1 ] && echo "; databases and topics kept (BENCH_KEEP=1)")"
