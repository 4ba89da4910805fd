#!/usr/bin/env bash
# Local infrastructure for development and CI: a single-node Kafka (KRaft, from Maven
# Central jars) and FerretDB (MongoDB wire protocol on SQLite, built from the Go module proxy).
#
#   deploy/local/stack.sh install   fetch Kafka jars, build FerretDB (idempotent)
#   deploy/local/stack.sh start     install, then start Kafka and FerretDB and wait until ready
#   deploy/local/stack.sh stop      stop what this script started (data is kept)
#   deploy/local/stack.sh status    show what runs
#   deploy/local/stack.sh clean     stop and delete data and logs (keeps jars and binary)
#
# Environment:
#   KAFKA_BROKERS  set: use these brokers, start no Kafka
#   MONGO_URI      set: use this MongoDB, start no FerretDB
#   KAFKA_HEAP     JVM heap for the broker (default -Xmx1g)
#   FERRETDB_DEBUG_ADDR  FerretDB debug HTTP listener (default "-" = disabled)
#   STACK_WAIT_S   readiness timeout per component in seconds (default 90)
#
# Ports: Kafka 127.0.0.1:9092 (controller 9093), FerretDB 127.0.0.1:27017.
# Everything lives under <repo>/.local (data, jars, binary, logs, pid files).
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

FERRETDB_BIN=$LOCAL/bin/ferretdb
FERRETDB_DATA=$LOCAL/ferretdb/data
FERRETDB_STATE=$LOCAL/ferretdb/state
FERRETDB_PID=$RUN_DIR/ferretdb.pid
FERRETDB_LOG=$LOG_DIR/ferretdb.log
FERRETDB_HOST=127.0.0.1
FERRETDB_PORT=27017
FERRETDB_DEBUG_ADDR=${FERRETDB_DEBUG_ADDR:--}

WAIT_S=${STACK_WAIT_S:-90}
INSTALL_LOG=$LOG_DIR/install.log

say() { echo "$PFX $*"; }
die() { echo "$PFX ERROR: $*" >&2; exit 1; }

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
    java $KAFKA_HEAP -XX:+UseG1GC -Djava.awt.headless=true \
      -Dkafka.logs.dir="$KAFKA_LOG_DIR" \
      -Dlog4j.configuration="file:$HERE/kafka/log4j.properties" \
      -cp "$KAFKA_LIBS/*" kafka.Kafka "$KAFKA_PROPS"
  wait_ready kafka "$KAFKA_PID" kafka.Kafka "$KAFKA_OUT" kafka_ready
}

# ---------------------------------------------------------------- ferretdb

ferretdb_ready() { mongo_ping "$FERRETDB_HOST" "$FERRETDB_PORT"; }

start_ferretdb() {
  if [[ -n ${MONGO_URI:-} ]]; then
    say "ferretdb: MONGO_URI=$MONGO_URI is set, using that server and starting none"
    return 0
  fi
  if pid_alive "$FERRETDB_PID" "$FERRETDB_BIN"; then
    if ferretdb_ready; then
      say "ferretdb: already running (pid $(cat "$FERRETDB_PID")), reusing it"
      return 0
    fi
    say "ferretdb: process $(cat "$FERRETDB_PID") alive but not answering yet, waiting"
    wait_ready ferretdb "$FERRETDB_PID" "$FERRETDB_BIN" "$FERRETDB_LOG" ferretdb_ready
    return 0
  fi
  rm -f "$FERRETDB_PID"
  if port_open "$FERRETDB_HOST" "$FERRETDB_PORT"; then
    die "port $FERRETDB_HOST:$FERRETDB_PORT is in use by a process this script did not start; stop it, or set MONGO_URI to use an existing server"
  fi
  [[ -x $FERRETDB_BIN ]] || die "$(rel "$FERRETDB_BIN") missing (run 'stack.sh install')"
  mkdir -p "$FERRETDB_DATA" "$FERRETDB_STATE" "$RUN_DIR" "$LOG_DIR"

  say "ferretdb: starting, log $(rel "$FERRETDB_LOG")"
  start_bg "$FERRETDB_PID" "$FERRETDB_LOG" \
    "$FERRETDB_BIN" --handler=sqlite --sqlite-url="file:$FERRETDB_DATA/" \
      --listen-addr="$FERRETDB_HOST:$FERRETDB_PORT" --state-dir="$FERRETDB_STATE" \
      --telemetry=disable --debug-addr="$FERRETDB_DEBUG_ADDR" --log-format=text
  wait_ready ferretdb "$FERRETDB_PID" "$FERRETDB_BIN" "$FERRETDB_LOG" ferretdb_ready
}

# ---------------------------------------------------------------- commands

cmd_start() {
  local t0=$SECONDS
  cmd_install
  start_kafka
  start_ferretdb
  say "ready in $((SECONDS - t0))s"
  cmd_status
}

cmd_stop() {
  # FerretDB first: nothing depends on it stopping late; Kafka takes a few seconds.
  stop_pid ferretdb "$FERRETDB_PID" "$FERRETDB_BIN" 20
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
  if [[ -n ${MONGO_URI:-} ]]; then
    say "ferretdb: external, MONGO_URI=$MONGO_URI"
  elif pid_alive "$FERRETDB_PID" "$FERRETDB_BIN"; then
    local state="not answering"; ferretdb_ready && state="ready"
    say "ferretdb: running, $state (pid $(cat "$FERRETDB_PID")) at mongodb://$FERRETDB_HOST:$FERRETDB_PORT   log $(rel "$FERRETDB_LOG")"
  else
    say "ferretdb: not running"
  fi
}

cmd_clean() {
  cmd_stop
  say "deleting data and logs under $(rel "$LOCAL") (keeping kafka jars and the ferretdb binary)"
  rm -rf "$KAFKA_DATA" "$KAFKA_CLUSTER_ID" "$KAFKA_PROPS" "$LOCAL/ferretdb" "$LOG_DIR" "$RUN_DIR"
}

case ${1:-} in
  install) cmd_install ;;
  start)   cmd_start ;;
  stop)    cmd_stop ;;
  status)  cmd_status ;;
  clean)   cmd_clean ;;
  *) echo "usage: $0 install|start|stop|status|clean" >&2; exit 2 ;;
esac
