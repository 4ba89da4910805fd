#!/usr/bin/env bash
# Local infrastructure for development and CI: a single-node Kafka (KRaft, from Maven
# Central jars), a private PostgreSQL cluster (Debian's server binaries) and FerretDB
# (MongoDB wire protocol on that PostgreSQL, built from the Go module proxy).
#
#   deploy/local/stack.sh install   fetch Kafka jars, build FerretDB (idempotent)
#   deploy/local/stack.sh start     install, then start Kafka, PostgreSQL and FerretDB and wait until ready
#   deploy/local/stack.sh stop      stop what this script started (data is kept)
#                                   (start also runs a watchdog that restarts a FerretDB that stops
#                                   answering: cmd_watch_ferretdb says why)
#   deploy/local/stack.sh status    show what runs
#   deploy/local/stack.sh clean     stop and delete data and logs (keeps jars and binary)
#
# Environment:
#   KAFKA_BROKERS  set: use these brokers, start no Kafka
#   MONGO_URI      set: use this MongoDB, start neither PostgreSQL nor FerretDB
#   LOCAL_STORE    postgresql (default): FerretDB on the private PostgreSQL cluster;
#                  sqlite: FerretDB on its own SQLite files, no PostgreSQL (the old setup)
#   PG_PORT        port of the private PostgreSQL cluster (default 5433)
#   PG_LOG_STATEMENTS  1: log every statement with its duration (log_min_duration_statement=0)
#   PG_BIN_DIR     PostgreSQL server binaries (default: pg_config --bindir, else /usr/lib/postgresql/*/bin)
#   KAFKA_HEAP     JVM heap for the broker (default -Xmx1g)
#   KAFKA_JVM_OPTS the broker's other JVM options (default -XX:+UseG1GC -Djava.awt.headless=true);
#                  its GC log is .local/log/kafka/gc.log
#   KAFKA_TEST_PARTITIONS_MAX  start deletes the tests' topics (e2e<hex>.*) once they hold more
#                  partitions than this (default 4000): a broker past its open files limit dies
#   FERRETDB_DEBUG_ADDR  FerretDB debug HTTP listener (default "-" = disabled)
#   STACK_WAIT_S   readiness timeout per component in seconds (default 90)
#
# Ports: Kafka 127.0.0.1:9092 (controller 9093), PostgreSQL 127.0.0.1:5433 (user postgres,
# trust auth, database ferretdb), FerretDB 127.0.0.1:27017.
# Everything lives under <repo>/.local (data, jars, binary, logs, pid files). As root, the
# PostgreSQL cluster (.local/postgres, .local/log/postgres.log) belongs to the system user
# postgres, because initdb and postgres refuse to run as root.
set -euo pipefail

PFX="[stack]"
# shellcheck source=deploy/local/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

KAFKA_DIR=$LOCAL/kafka
KAFKA_LIBS=$KAFKA_DIR/libs
KAFKA_STAMP=$KAFKA_DIR/libs.stamp
KAFKA_DATA=$KAFKA_DIR/data
KAFKA_PROPS=$KAFKA_DIR/server.properties
KAFKA_CLUSTER_ID=$KAFKA_DIR/cluster.id
KAFKA_PID=$RUN_DIR/kafka.pid
KAFKA_LOG_DIR=$LOG_DIR/kafka
KAFKA_OUT=$LOG_DIR/kafka.out          # JVM stdout/stderr
KAFKA_HOST=127.0.0.1
KAFKA_PORT=9092
KAFKA_CONTROLLER_PORT=9093
KAFKA_HEAP=${KAFKA_HEAP:--Xmx1g}
# Only G1 by default. Kafka's own kafka-run-class.sh adds MaxGCPauseMillis=20
# and IHOP 35 (its pauses here: about 15 ms instead of 20-41 every 1.7 s at
# 500 commands/s); whether that helps on two shared cores is not settled
# (BENCHMARKS.md, read side, "A transaction's own waits"), so it is a knob.
KAFKA_JVM_OPTS=${KAFKA_JVM_OPTS:--XX:+UseG1GC -Djava.awt.headless=true}

FERRETDB_BIN=$LOCAL/bin/ferretdb
FERRETDB_DATA=$LOCAL/ferretdb/data
FERRETDB_STATE=$LOCAL/ferretdb/state
FERRETDB_PID=$RUN_DIR/ferretdb.pid
FERRETDB_LOG=$LOG_DIR/ferretdb.log
FERRETDB_HOST=127.0.0.1
FERRETDB_PORT=27017
FERRETDB_DEBUG_ADDR=${FERRETDB_DEBUG_ADDR:--}
FERRETDB_WATCH_PID=$RUN_DIR/ferretdb-watchdog.pid
FERRETDB_WATCH_LOG=$LOG_DIR/ferretdb-watchdog.log
# the watchdog pings FerretDB every WATCH_EVERY_S and restarts it after WATCH_MISSES misses in a row
WATCH_EVERY_S=${FERRETDB_WATCH_EVERY_S:-5}
WATCH_MISSES=${FERRETDB_WATCH_MISSES:-4}

PG_DIR=$LOCAL/postgres
PG_DATA=$PG_DIR/data
PG_SOCKET_DIR=$PG_DIR/socket
PG_CONF_NAME=local-stack.conf         # in PG_DATA, included by postgresql.conf, rewritten at each start
PG_PID=$RUN_DIR/postgres.pid          # a copy of the first line of PG_DATA/postmaster.pid
PG_LOG=$LOG_DIR/postgres.log

WAIT_S=${STACK_WAIT_S:-90}
INSTALL_LOG=$LOG_DIR/install.log

say() { echo "$PFX $*"; }
die() { echo "$PFX ERROR: $*" >&2; exit 1; }

case $LOCAL_STORE in
  postgresql|sqlite) ;;
  *) die "LOCAL_STORE=$LOCAL_STORE: expected postgresql or sqlite" ;;
esac
[[ $PG_PORT =~ ^[0-9]+$ ]] || die "PG_PORT=$PG_PORT is not a port number"

# ---------------------------------------------------------------- helpers

# Run a Kafka CLI class on the local classpath with quiet logging.
kafka_tool() {
  java -Xmx512m -Dlog4j.configuration="file:$HERE/kafka/tools-log4j.properties" \
    -cp "$KAFKA_LIBS/*" "$@"
}

kafka_ready() {
  if command -v kcat >/dev/null; then
    # real metadata round trip; the broker must list itself
    timeout 5 kcat -b "$KAFKA_HOST:$KAFKA_PORT" -L -t __stack_probe -m 3 2>/dev/null \
      | grep -q "broker 1 at $KAFKA_HOST:$KAFKA_PORT"
  else
    port_open "$KAFKA_HOST" "$KAFKA_PORT"
  fi
}

# mongo_ping HOST PORT: send {ping: 1} as an OP_MSG over bash /dev/tcp and check the reply
# has ok: 1.0. No client needed; this is a real round trip through FerretDB's handler.
mongo_ping() {
  # shellcheck disable=SC2016  # expanded by the inner bash
  timeout 3 bash -c '
    exec 3<>"/dev/tcp/$0/$1" || exit 1
    # header: len 51, requestID 1, responseTo 0, opCode 2013 (OP_MSG); flags 0; section kind 0;
    # body {ping: int32 1, $db: "admin"}
    printf "\x33\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\xdd\x07\x00\x00\x00\x00\x00\x00\x00\x1e\x00\x00\x00\x10ping\x00\x01\x00\x00\x00\x02\$db\x00\x06\x00\x00\x00admin\x00\x00" >&3
    len=$(dd bs=1 count=4 status=none <&3 | od -An -tu4 | tr -d " ")
    [[ $len =~ ^[0-9]+$ ]] && (( len > 20 && len < 65536 )) || exit 1
    # look for the element: double "ok" = 1.0
    dd bs=1 count=$((len - 4)) status=none <&3 | od -An -v -tx1 | tr -d " \n" | grep -q 016f6b00000000000000f03f
  ' "$1" "$2" 2>/dev/null
}

# wait_ready NAME PIDFILE PATTERN LOGFILE CHECK...: poll CHECK every 0.5 s up to WAIT_S.
wait_ready() {
  local name=$1 pidfile=$2 logfile=$4; shift 4  # $3, the pattern, is not needed here
  local start=$SECONDS
  while ! "$@"; do
    # Just started: the pid is ours, so only ask whether it still exists (its
    # cmdline is briefly not the command's own while it execs).
    if ! kill -0 "$(cat "$pidfile" 2>/dev/null)" 2>/dev/null; then
      show_log_tail "$logfile"
      die "$name exited during startup, see $(rel "$logfile")"
    fi
    if (( SECONDS - start >= WAIT_S )); then
      show_log_tail "$logfile"
      die "$name not ready after ${WAIT_S}s, see $(rel "$logfile") (still running; 'stack.sh stop' to stop it)"
    fi
    sleep 0.5
  done
  say "$name ready after $((SECONDS - start))s"
}

# ---------------------------------------------------------------- install

install_kafka() {
  local pom=$HERE/kafka/pom.xml hash
  hash=$(sha256sum "$pom" | cut -d' ' -f1)
  if [[ -f $KAFKA_STAMP && $(cat "$KAFKA_STAMP") == "$hash" ]] && compgen -G "$KAFKA_LIBS/kafka_2.13-*.jar" >/dev/null; then
    say "kafka jars up to date ($(find "$KAFKA_LIBS" -name "*.jar" | wc -l) jars in $(rel "$KAFKA_LIBS"))"
    return 0
  fi
  command -v mvn >/dev/null || die "mvn not found (run deploy/local/deps.sh)"
  command -v java >/dev/null || die "java not found (run deploy/local/deps.sh)"
  say "fetching kafka jars with maven, log: $(rel "$INSTALL_LOG")"
  rm -rf "$KAFKA_LIBS.tmp"
  if ! mvn -B -q -f "$pom" dependency:copy-dependencies -DincludeScope=runtime \
      -DoutputDirectory="$KAFKA_LIBS.tmp" >>"$INSTALL_LOG" 2>&1; then
    show_log_tail "$INSTALL_LOG"
    die "maven failed, see $(rel "$INSTALL_LOG")"
  fi
  compgen -G "$KAFKA_LIBS.tmp/kafka_2.13-*.jar" >/dev/null || die "maven produced no kafka jar, see $(rel "$INSTALL_LOG")"
  rm -rf "$KAFKA_LIBS"
  mv "$KAFKA_LIBS.tmp" "$KAFKA_LIBS"
  echo "$hash" > "$KAFKA_STAMP"
  say "kafka jars: $(find "$KAFKA_LIBS" -name "*.jar" | wc -l) jars in $(rel "$KAFKA_LIBS")"
}

cmd_install() {
  mkdir -p "$LOCAL" "$LOG_DIR" "$KAFKA_DIR"
  echo "=== $(date '+%F %T') install" >> "$INSTALL_LOG"
  install_kafka
  "$HERE/ferretdb/build.sh"
}

# ---------------------------------------------------------------- kafka

start_kafka() {
  if [[ -n ${KAFKA_BROKERS:-} ]]; then
    say "kafka: KAFKA_BROKERS=$KAFKA_BROKERS is set, using those brokers and starting none"
    return 0
  fi
  if pid_alive "$KAFKA_PID" kafka.Kafka; then
    if kafka_ready; then
      say "kafka: already running (pid $(cat "$KAFKA_PID")), reusing it"
      return 0
    fi
    say "kafka: process $(cat "$KAFKA_PID") alive but not answering yet, waiting"
    wait_ready kafka "$KAFKA_PID" kafka.Kafka "$KAFKA_LOG_DIR/server.log" kafka_ready
    return 0
  fi
  rm -f "$KAFKA_PID"
  for p in "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT"; do
    if port_open "$KAFKA_HOST" "$p"; then
      die "port $KAFKA_HOST:$p is in use by a process this script did not start; stop it, or set KAFKA_BROKERS to use an existing Kafka"
    fi
  done

  mkdir -p "$KAFKA_DATA" "$KAFKA_LOG_DIR" "$RUN_DIR"
  sed "s|@KAFKA_DATA_DIR@|$KAFKA_DATA|g" "$HERE/kafka/server.properties.in" > "$KAFKA_PROPS"

  if [[ ! -s $KAFKA_CLUSTER_ID ]]; then
    kafka_tool kafka.tools.StorageTool random-uuid > "$KAFKA_CLUSTER_ID.tmp" 2>>"$KAFKA_OUT" \
      || die "StorageTool random-uuid failed, see $(rel "$KAFKA_OUT")"
    mv "$KAFKA_CLUSTER_ID.tmp" "$KAFKA_CLUSTER_ID"
  fi
  if [[ ! -f $KAFKA_DATA/meta.properties ]]; then
    say "kafka: formatting storage (cluster id $(cat "$KAFKA_CLUSTER_ID"))"
    if ! kafka_tool kafka.tools.StorageTool format -t "$(cat "$KAFKA_CLUSTER_ID")" -c "$KAFKA_PROPS" \
        --ignore-formatted >>"$KAFKA_OUT" 2>&1; then
      show_log_tail "$KAFKA_OUT"
      die "kafka storage format failed, see $(rel "$KAFKA_OUT")"
    fi
  fi

  say "kafka: starting, logs in $(rel "$KAFKA_LOG_DIR")/ and $(rel "$KAFKA_OUT")"
  # exec-style launch: the pid is the JVM's own; KAFKA_HEAP may hold several JVM options
  # shellcheck disable=SC2086
  start_bg "$KAFKA_PID" "$KAFKA_OUT" \
    java $KAFKA_HEAP $KAFKA_JVM_OPTS "-Xlog:gc:file=$KAFKA_LOG_DIR/gc.log:time,uptime:filecount=2,filesize=10M" \
      -Dkafka.logs.dir="$KAFKA_LOG_DIR" \
      -Dlog4j.configuration="file:$HERE/kafka/log4j.properties" \
      -cp "$KAFKA_LIBS/*" kafka.Kafka "$KAFKA_PROPS"
  wait_ready kafka "$KAFKA_PID" kafka.Kafka "$KAFKA_OUT" kafka_ready
}

# Test topics pile up in a broker that outlives many test runs (every test
# makes its own: testkit's prefix "e2e<hex>."; one make test about 2,400
# partitions). A partition keeps about three files open, and past the open
# files limit (ulimit -n) the broker dies with "Too many open files" and cannot
# start again: seen at 19,674 partitions under a limit of 20,000. So start
# deletes the test topics once their partitions pass KAFKA_TEST_PARTITIONS_MAX
# (4000); no other topic is touched.
prune_test_topics() {
  [[ -n ${KAFKA_BROKERS:-} ]] && return 0
  local n
  n=$(find "$KAFKA_DATA" -maxdepth 1 -type d -name 'e2e*.*-[0-9]*' | wc -l)
  ((n > ${KAFKA_TEST_PARTITIONS_MAX:-4000})) || return 0
  say "kafka: $n partitions of test topics (e2e<hex>.*), over KAFKA_TEST_PARTITIONS_MAX=${KAFKA_TEST_PARTITIONS_MAX:-4000}: deleting those topics"
  if ! kafka_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$KAFKA_HOST:$KAFKA_PORT" \
      --delete --topic 'e2e[0-9a-f]+\..*' >>"$KAFKA_OUT" 2>&1; then
    say "kafka: deleting the test topics failed, see $(rel "$KAFKA_OUT")"
  fi
}

# ---------------------------------------------------------------- postgresql

# uses_postgres: true when start should run the private cluster
uses_postgres() { [[ -z ${MONGO_URI:-} && $LOCAL_STORE == postgresql ]]; }

# pg_find_bin: set PG_BIN to the directory with initdb, pg_ctl and postgres. An existing
# cluster wants the major version that created it; otherwise pg_config's, else the newest.
pg_find_bin() {
  local d want=""
  [[ -n ${PG_BIN:-} ]] && return 0
  [[ -f $PG_DATA/PG_VERSION ]] && want=$(cat "$PG_DATA/PG_VERSION")
  local candidates=()
  [[ -n ${PG_BIN_DIR:-} ]] && candidates+=("$PG_BIN_DIR")
  [[ -n $want ]] && candidates+=("/usr/lib/postgresql/$want/bin")
  command -v pg_config >/dev/null && candidates+=("$(pg_config --bindir 2>/dev/null)")
  while IFS= read -r d; do candidates+=("$d"); done \
    < <(compgen -G "/usr/lib/postgresql/*/bin" | sort -V -r)
  for d in "${candidates[@]}"; do
    [[ -n $d && -x $d/initdb && -x $d/pg_ctl && -x $d/postgres ]] || continue
    if [[ -n $want && -z ${PG_BIN_DIR:-} ]] \
        && [[ $("$d/postgres" --version) != *" $want".* ]]; then
      continue
    fi
    PG_BIN=$d
    return 0
  done
  if [[ -n $want ]]; then
    die "no PostgreSQL $want server binaries for the cluster in $(rel "$PG_DATA") (install postgresql-$want, set PG_BIN_DIR, or 'stack.sh clean' to start over)"
  fi
  die "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found (run deploy/local/deps.sh, or set PG_BIN_DIR)"
}

# pg_as CMD...: run a server-side command (initdb, pg_ctl) as the cluster's owner: the
# current user, or the system user postgres when we are root (initdb and postgres refuse
# root). Runs from PG_DIR, so a cwd postgres may not enter does not matter.
pg_as() {
  if [[ $(id -u) -eq 0 ]]; then
    ( cd "$PG_DIR" && runuser -u postgres -- "$@" )
  else
    ( cd "$PG_DIR" && "$@" )
  fi
}

# pg_own: as root, hand PG_DIR and the log to postgres and check it can reach them.
pg_own() {
  mkdir -p "$PG_DIR" "$PG_SOCKET_DIR" "$LOG_DIR" "$RUN_DIR"
  touch "$PG_LOG"
  [[ $(id -u) -eq 0 ]] || return 0
  id -u postgres >/dev/null 2>&1 \
    || die "running as root, but there is no system user postgres to run the cluster as (run deploy/local/deps.sh: the postgresql package creates it)"
  find "$PG_DIR" "$PG_LOG" ! -user postgres -exec chown postgres:postgres {} +
  if ! runuser -u postgres -- test -w "$PG_DIR" -a -w "$PG_LOG"; then
    die "user postgres cannot write $(rel "$PG_DIR") or $(rel "$PG_LOG"): a parent directory of the repo is not traversable for other users (chmod o+x it, or run as a non-root user)"
  fi
}

# pg_write_conf: (re)write PG_DATA/local-stack.conf; returns 0 when it changed.
pg_write_conf() {
  local conf=$PG_DATA/$PG_CONF_NAME socket_dir=$PG_SOCKET_DIR
  # a unix socket path is limited to 107 bytes; from a deep clone, go without one
  # (everything here connects over TCP)
  if (( ${#PG_SOCKET_DIR} + ${#PG_PORT} + 10 > 107 )); then
    socket_dir=""
    say "postgres: $(rel "$PG_SOCKET_DIR") is too long a path for a unix socket, listening on TCP only"
  fi
  {
    echo "# Written by deploy/local/stack.sh at every start (included from postgresql.conf); edits here are lost."
    echo "# Loopback only: pg_hba.conf trusts every local connection (no passwords anywhere)."
    echo "listen_addresses = '127.0.0.1'"
    echo "# Not 5432, so a system PostgreSQL can keep its port (PG_PORT)."
    echo "port = $PG_PORT"
    echo "# Our own socket directory: the system one (/var/run/postgresql) may be missing or a system cluster's."
    echo "unix_socket_directories = '$socket_dir'"
    echo "# FerretDB's pushdown SQL is \`_jsonb->\$1 @> \$2\` with the field name a bind parameter. Only a custom"
    echo "# plan sees the literal field and can use the GIN expression indexes ((_jsonb->'field') jsonb_path_ops)"
    echo "# the projector creates; a generic plan (chosen after 5 executions) falls back to a Seq Scan."
    echo "plan_cache_mode = force_custom_plan"
    echo "# FerretDB's pool (FERRETDB_POOL_MAX_CONNS, lib.sh: 500 at most, about 20 used under load), the"
    echo "# FerretDBs tests start, the services' libpq connections: a connection costs memory only when open."
    echo "max_connections = 1200"
    echo "# Keeps the read models' tables and GIN indexes in memory (default 128MB)."
    echo "shared_buffers = 256MB"
    echo "# Nothing may be lost: an acknowledged write survives a crash of the machine."
    echo "fsync = on"
    echo "synchronous_commit = on"
    echo "# What can stall the store's writes, in its log (the soak's slow minute, RELIABILITY.md, is to be"
    echo "# matched against these): checkpoints, autovacuum runs over 1 s, statements over 500 ms."
    echo "log_checkpoints = on"
    echo "log_autovacuum_min_duration = 1000"
    if [[ ${PG_LOG_STATEMENTS:-0} == 1 ]]; then
      echo "# PG_LOG_STATEMENTS=1: every statement with its duration (shows FerretDB's SQL)."
      echo "log_min_duration_statement = 0"
    else
      echo "log_min_duration_statement = 500"
    fi
  } > "$conf.tmp"
  if cmp -s "$conf.tmp" "$conf"; then
    rm -f "$conf.tmp"
    return 1
  fi
  mv -f "$conf.tmp" "$conf"
  [[ $(id -u) -eq 0 ]] && chown postgres:postgres "$conf"
  return 0
}

# pg_init: create the cluster once (in a temporary directory, moved into place when complete).
pg_init() {
  [[ -f $PG_DATA/PG_VERSION ]] && return 0
  [[ -e $PG_DATA ]] && die "$(rel "$PG_DATA") exists but holds no cluster (no PG_VERSION); delete it or run 'stack.sh clean'"
  say "postgres: creating the cluster in $(rel "$PG_DATA") ($("$PG_BIN/postgres" --version)), log $(rel "$PG_LOG")"
  rm -rf "$PG_DATA.tmp"
  echo "=== $(date '+%F %T') initdb" >> "$PG_LOG"
  if ! pg_as "$PG_BIN/initdb" -D "$PG_DATA.tmp" -U "$PG_USER" --auth=trust -E UTF8 --locale=C \
      >> "$PG_LOG" 2>&1; then
    show_log_tail "$PG_LOG"
    die "initdb failed, see $(rel "$PG_LOG")"
  fi
  {
    echo ""
    echo "# Settings of the local stack (deploy/local/stack.sh); put your own below this line."
    echo "include '$PG_CONF_NAME'"
  } >> "$PG_DATA.tmp/postgresql.conf"
  mv "$PG_DATA.tmp" "$PG_DATA"
}

pg_ready() { "$PG_BIN/pg_isready" -q -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d postgres -t 2 >/dev/null 2>&1; }

# pg_running: true if the postmaster of PG_DATA runs; refreshes PG_PID from postmaster.pid.
pg_running() {
  local pid
  pid=$(head -n1 "$PG_DATA/postmaster.pid" 2>/dev/null) || { rm -f "$PG_PID"; return 1; }
  [[ $pid =~ ^[0-9]+$ ]] || { rm -f "$PG_PID"; return 1; }
  mkdir -p "$RUN_DIR"
  echo "$pid" > "$PG_PID"
  pid_alive "$PG_PID" "$PG_DATA" && return 0
  rm -f "$PG_PID"
  return 1
}

# pg_running_port: the port the running postmaster listens on (line 4 of postmaster.pid)
pg_running_port() { sed -n 4p "$PG_DATA/postmaster.pid" 2>/dev/null; }

pg_create_db() {
  local have
  have=$("$PG_BIN/psql" -X -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d postgres -tAc \
    "SELECT 1 FROM pg_database WHERE datname = '$PG_DB'" 2>>"$PG_LOG") \
    || die "postgres: cannot query $PG_HOST:$PG_PORT as $PG_USER, see $(rel "$PG_LOG")"
  [[ $have == 1 ]] && return 0
  say "postgres: creating database $PG_DB"
  "$PG_BIN/createdb" -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" "$PG_DB" >>"$PG_LOG" 2>&1 \
    || die "createdb $PG_DB failed, see $(rel "$PG_LOG")"
}

start_postgres() {
  if ! uses_postgres; then
    [[ -n ${MONGO_URI:-} ]] && return 0   # start_ferretdb says why
    say "postgres: not used with LOCAL_STORE=$LOCAL_STORE"
    return 0
  fi
  pg_find_bin
  pg_own
  if pg_running; then
    local port; port=$(pg_running_port)
    [[ $port == "$PG_PORT" ]] \
      || die "postgres: the cluster in $(rel "$PG_DATA") runs on port $port, but PG_PORT=$PG_PORT; 'stack.sh stop' first or set PG_PORT=$port"
    if pg_write_conf; then
      say "postgres: settings changed, reloading (port, listen and memory settings need a stop + start)"
      pg_as "$PG_BIN/pg_ctl" -D "$PG_DATA" reload >>"$PG_LOG" 2>&1 || true
    fi
    if pg_ready; then
      say "postgres: already running (pid $(cat "$PG_PID")), reusing it"
    else
      say "postgres: process $(cat "$PG_PID") alive but not answering yet, waiting"
      wait_ready postgres "$PG_PID" "$PG_DATA" "$PG_LOG" pg_ready
    fi
    pg_create_db
    return 0
  fi
  if port_open "$PG_HOST" "$PG_PORT"; then
    die "port $PG_HOST:$PG_PORT is in use by a process this script did not start; stop it, set PG_PORT to a free port, or set MONGO_URI to use an existing server"
  fi
  pg_init
  pg_write_conf || true
  say "postgres: starting on $PG_HOST:$PG_PORT, log $(rel "$PG_LOG")"
  echo "=== $(date '+%F %T') pg_ctl start" >> "$PG_LOG"
  # setsid: the postmaster gets its own session (a Ctrl-C at the terminal does not reach it),
  # --wait: until pg_ctl returns, i.e. the server accepts connections (or -t expired)
  # shellcheck disable=SC2094  # pg_ctl and the server both append to the log
  if ! pg_as setsid --wait "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -w -t "$WAIT_S" start \
      >/dev/null 2>>"$PG_LOG"; then
    show_log_tail "$PG_LOG"
    die "postgres did not start, see $(rel "$PG_LOG")"
  fi
  pg_running || { show_log_tail "$PG_LOG"; die "postgres exited during startup, see $(rel "$PG_LOG")"; }
  wait_ready postgres "$PG_PID" "$PG_DATA" "$PG_LOG" pg_ready
  pg_create_db
}

stop_postgres() {
  if ! pg_running; then
    return 0
  fi
  pg_find_bin
  local pid; pid=$(cat "$PG_PID")
  say "postgres: stopping (pid $pid)"
  # fast: roll back open transactions, disconnect clients, checkpoint; bounded
  if ! pg_as "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w -t 60 stop >>"$PG_LOG" 2>&1; then
    # immediate: no checkpoint, WAL replay at the next start (fsync on, nothing is lost)
    say "postgres: no fast shutdown within 60s, stopping immediately"
    pg_as "$PG_BIN/pg_ctl" -D "$PG_DATA" -m immediate -w -t 20 stop >>"$PG_LOG" 2>&1 || true
  fi
  # pg_ctl returns once postmaster.pid is gone; the process may take a moment more to exit
  local i
  for ((i = 0; i < 50; i++)); do pid_alive "$PG_PID" "$PG_DATA" || break; sleep 0.1; done
  if pid_alive "$PG_PID" "$PG_DATA"; then
    stop_pid postgres "$PG_PID" "$PG_DATA" 5
  else
    rm -f "$PG_PID"
    say "postgres: stopped"
  fi
}

# ---------------------------------------------------------------- ferretdb

ferretdb_ready() { mongo_ping "$FERRETDB_HOST" "$FERRETDB_PORT"; }

# ferretdb_args: FerretDB's store flags into the array args.
ferretdb_args() {
  args=(--handler="$LOCAL_STORE")
  if [[ $LOCAL_STORE == postgresql ]]; then
    args+=(--postgresql-url="$FERRETDB_PG_URL")
  else
    args+=(--sqlite-url="file:$FERRETDB_DATA/")
  fi
}

# launch_ferretdb: start the FerretDB process with args and wait until it answers.
launch_ferretdb() {
  start_bg "$FERRETDB_PID" "$FERRETDB_LOG" \
    "$FERRETDB_BIN" "${args[@]}" \
      --listen-addr="$FERRETDB_HOST:$FERRETDB_PORT" --state-dir="$FERRETDB_STATE" \
      --telemetry=disable --debug-addr="$FERRETDB_DEBUG_ADDR" --log-format=text
  wait_ready ferretdb "$FERRETDB_PID" "$FERRETDB_BIN" "$FERRETDB_LOG" ferretdb_ready
}

# The watchdog (stack.sh watch-ferretdb, started in the background by start): FerretDB
# v1.24 leaks one pooled PostgreSQL connection for every command its client gives up on
# mid-way (a socket timeout: query-svc's MONGO_TIMEOUT_MS under overload), and once the pool
# (FERRETDB_POOL_MAX_CONNS) is used up it answers nothing, ever (tests/bench/store_updates
# with a 2 ms client timeout shows it in seconds). The watchdog restarts it: after
# WATCH_MISSES pings in a row without an answer it sends SIGQUIT (Go writes every goroutine's
# stack to ferretdb.log, for the record), then starts it again. It ends when FerretDB is
# stopped by stack.sh stop.
cmd_watch_ferretdb() {
  local misses=0 pid args
  ferretdb_args
  while [[ -f $FERRETDB_PID ]]; do # stack.sh stop removes it (after stopping the watchdog)
    if pid_alive "$FERRETDB_PID" "$FERRETDB_BIN" && ferretdb_ready; then misses=0; else misses=$((misses + 1)); fi
    if ((misses >= WATCH_MISSES)); then
      pid=$(cat "$FERRETDB_PID")
      say "$(date '+%F %T') ferretdb (pid $pid) answered no ping for $((misses * WATCH_EVERY_S))s: restarting it (its goroutine dump is in $(rel "$FERRETDB_LOG"))"
      kill -QUIT "$pid" 2>/dev/null || true
      for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -KILL "$pid" 2>/dev/null || true
      if (launch_ferretdb); then say "$(date '+%F %T') ferretdb restarted (pid $(cat "$FERRETDB_PID"))"
      else say "$(date '+%F %T') ferretdb did not come back; trying again in ${WATCH_EVERY_S}s"; fi
      misses=0
    fi
    sleep "$WATCH_EVERY_S"
  done
}

start_ferretdb_watchdog() {
  pid_alive "$FERRETDB_WATCH_PID" watch-ferretdb && return 0
  start_bg "$FERRETDB_WATCH_PID" "$FERRETDB_WATCH_LOG" "$ROOT/deploy/local/stack.sh" watch-ferretdb
  say "ferretdb: watchdog running (restarts a FerretDB that stops answering), log $(rel "$FERRETDB_WATCH_LOG")"
}

start_ferretdb() {
  if [[ -n ${MONGO_URI:-} ]]; then
    say "ferretdb: MONGO_URI=$MONGO_URI is set, using that server and starting none"
    return 0
  fi
  local args
  ferretdb_args
  if pid_alive "$FERRETDB_PID" "$FERRETDB_BIN" && ! pid_alive "$FERRETDB_PID" "${args[*]}"; then
    say "ferretdb: running with other store flags than LOCAL_STORE=$LOCAL_STORE needs, restarting it"
    stop_pid ferretdb "$FERRETDB_PID" "$FERRETDB_BIN" 20
  fi
  if pid_alive "$FERRETDB_PID" "$FERRETDB_BIN"; then
    if ferretdb_ready; then
      say "ferretdb: already running (pid $(cat "$FERRETDB_PID")), reusing it"
      start_ferretdb_watchdog
      return 0
    fi
    # a FerretDB that stopped answering (see cmd_watch_ferretdb) does not come back by itself
    say "ferretdb: process $(cat "$FERRETDB_PID") alive but not answering, restarting it"
    kill -QUIT "$(cat "$FERRETDB_PID")" 2>/dev/null || true
    stop_pid ferretdb "$FERRETDB_PID" "$FERRETDB_BIN" 10
  fi
  rm -f "$FERRETDB_PID"
  if port_open "$FERRETDB_HOST" "$FERRETDB_PORT"; then
    die "port $FERRETDB_HOST:$FERRETDB_PORT is in use by a process this script did not start; stop it, or set MONGO_URI to use an existing server"
  fi
  [[ -x $FERRETDB_BIN ]] || die "$(rel "$FERRETDB_BIN") missing (run 'stack.sh install')"
  mkdir -p "$FERRETDB_DATA" "$FERRETDB_STATE" "$RUN_DIR" "$LOG_DIR"

  say "ferretdb: starting on $LOCAL_STORE, log $(rel "$FERRETDB_LOG")"
  launch_ferretdb
  start_ferretdb_watchdog
}

# ---------------------------------------------------------------- commands

cmd_start() {
  local t0=$SECONDS
  cmd_install
  start_kafka
  prune_test_topics
  start_postgres
  start_ferretdb
  say "ready in $((SECONDS - t0))s"
  cmd_status
}

cmd_stop() {
  # FerretDB first (PostgreSQL's client; its watchdog before it), then PostgreSQL; Kafka
  # takes a few seconds.
  stop_pid ferretdb-watchdog "$FERRETDB_WATCH_PID" watch-ferretdb 10
  stop_pid ferretdb "$FERRETDB_PID" "$FERRETDB_BIN" 20
  stop_postgres
  stop_pid kafka "$KAFKA_PID" kafka.Kafka 60
}

cmd_status() {
  if [[ -n ${KAFKA_BROKERS:-} ]]; then
    say "kafka:    external, KAFKA_BROKERS=$KAFKA_BROKERS"
  elif pid_alive "$KAFKA_PID" kafka.Kafka; then
    local state="not answering"; kafka_ready && state="ready"
    say "kafka:    running, $state (pid $(cat "$KAFKA_PID")) at $KAFKA_HOST:$KAFKA_PORT   logs $(rel "$KAFKA_LOG_DIR")/server.log"
  else
    say "kafka:    not running"
  fi
  if pg_running; then
    local state="not answering"
    pg_find_bin
    pg_ready && state="ready"
    say "postgres: running, $state (pid $(cat "$PG_PID")) at $PG_HOST:$(pg_running_port) db $PG_DB user $PG_USER   log $(rel "$PG_LOG")"
    uses_postgres && say "          FERRETDB_PG_URI=${FERRETDB_PG_URI:-$LOCAL_PG_URI}"
  elif [[ -n ${MONGO_URI:-} ]]; then
    say "postgres: not used (MONGO_URI is set)"
  elif [[ $LOCAL_STORE != postgresql ]]; then
    say "postgres: not used (LOCAL_STORE=$LOCAL_STORE)"
  else
    say "postgres: not running"
  fi
  if [[ -n ${MONGO_URI:-} ]]; then
    say "ferretdb: external, MONGO_URI=$MONGO_URI"
  elif pid_alive "$FERRETDB_PID" "$FERRETDB_BIN"; then
    local state="not answering" store=sqlite; ferretdb_ready && state="ready"
    pid_alive "$FERRETDB_PID" "--handler=postgresql" && store=postgresql
    say "ferretdb: running on $store, $state (pid $(cat "$FERRETDB_PID")) at mongodb://$FERRETDB_HOST:$FERRETDB_PORT   log $(rel "$FERRETDB_LOG")"
  else
    say "ferretdb: not running"
  fi
}

cmd_clean() {
  cmd_stop
  say "deleting data (kafka, postgres, ferretdb) and logs under $(rel "$LOCAL") (keeping kafka jars and the ferretdb binary)"
  rm -rf "$KAFKA_DATA" "$KAFKA_CLUSTER_ID" "$KAFKA_PROPS" "$LOCAL/ferretdb" "$PG_DIR" "$LOG_DIR" "$RUN_DIR"
}

case ${1:-} in
  install) cmd_install ;;
  start)   cmd_start ;;
  watch-ferretdb) cmd_watch_ferretdb ;; # started by start, in the background
  stop)    cmd_stop ;;
  status)  cmd_status ;;
  clean)   cmd_clean ;;
  *) echo "usage: $0 install|start|stop|status|clean" >&2; exit 2 ;;
esac
