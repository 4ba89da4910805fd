#!/usr/bin/env bash
# Run the services locally against the stack from deploy/local/stack.sh.
#
#   deploy/local/services.sh start    start command-svc, projector-svc, query-svc, admin-svc, saga-svc (reuse running ones)
#   deploy/local/services.sh stop     SIGTERM, bounded wait, then SIGKILL
#   deploy/local/services.sh status   show what runs
#
# Binaries: <repo>/build/bin/<svc> (override the folder with SVC_BIN_DIR).
# Each service gets KAFKA_BROKERS, MONGO_URI and HTTP_PORT from the environment, with
# defaults 127.0.0.1:9092, mongodb://127.0.0.1:27017 and ports command 8080, query 8081,
# projector 8082, admin 8083, saga 8084 (override with COMMAND_PORT, QUERY_PORT, PROJECTOR_PORT,
# ADMIN_PORT, SAGA_PORT).
# saga-svc signs the commands it emits and command-svc checks them with SAGA_SIGNING_KEY
# (cqrs/saga_sign.h): unless set, a random key made once in .local/auth/saga-signing.key.
# With the local FerretDB on PostgreSQL (MONGO_URI unset, LOCAL_STORE=postgresql, the
# default) they also get FERRETDB_PG_URI, default postgres://postgres@127.0.0.1:$PG_PORT/ferretdb
# (PG_PORT 5433), the PostgreSQL behind FerretDB where the projector creates GIN indexes.
# Other variables in the environment are passed through unchanged.
# Logs: .local/log/<svc>.log, pid files: .local/run/<svc>.pid.
set -euo pipefail

PFX="[services]"
# shellcheck source=deploy/local/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

BIN_DIR=${SVC_BIN_DIR:-$ROOT/build/bin}
WAIT_S=${SERVICES_WAIT_S:-60}
HOST=127.0.0.1

export KAFKA_BROKERS=${KAFKA_BROKERS:-127.0.0.1:9092}
# before MONGO_URI gets its default: a MONGO_URI of the user's means no local PostgreSQL
if [[ -z ${MONGO_URI:-} && $LOCAL_STORE == postgresql ]]; then
  export FERRETDB_PG_URI=${FERRETDB_PG_URI:-$LOCAL_PG_URI}
fi
export MONGO_URI=${MONGO_URI:-mongodb://127.0.0.1:27017}
# authentication: the local key's JWKS, issuer and audience (deploy/local/auth.sh), unless
# AUTH=off or your own AUTH_JWKS_URL / AUTH_JWKS_FILE
while IFS= read -r kv; do export "${kv?}"; done < <("$(dirname "${BASH_SOURCE[0]}")/auth.sh" env)

# saga-svc and command-svc share the key saga commands are signed with; never printed
if [[ -z ${SAGA_SIGNING_KEY:-} ]]; then
  saga_key_file=$LOCAL/auth/saga-signing.key
  if [[ ! -s $saga_key_file ]]; then
    mkdir -p "$LOCAL/auth"
    (umask 077 && od -An -tx1 -N32 /dev/urandom | tr -d " \n" >"$saga_key_file")
  fi
  SAGA_SIGNING_KEY=$(<"$saga_key_file")
  export SAGA_SIGNING_KEY
fi

SERVICES=(command-svc projector-svc query-svc admin-svc saga-svc)

port_of() {
  case $1 in
    command-svc)   echo "${COMMAND_PORT:-8080}" ;;
    query-svc)     echo "${QUERY_PORT:-8081}" ;;
    projector-svc) echo "${PROJECTOR_PORT:-8082}" ;;
    admin-svc)     echo "${ADMIN_PORT:-8083}" ;;
    saga-svc)      echo "${SAGA_PORT:-8084}" ;;
  esac
}

say() { echo "$PFX $*"; }
die() { echo "$PFX ERROR: $*" >&2; exit 1; }

pidfile_of() { echo "$RUN_DIR/$1.pid"; }
logfile_of() { echo "$LOG_DIR/$1.log"; }
healthy() { curl -fsS -m 2 -o /dev/null "http://$HOST:$1/healthz" 2>/dev/null; }

start_one() {
  local svc=$1 port bin pidfile logfile
  port=$(port_of "$svc")
  bin=$BIN_DIR/$svc
  pidfile=$(pidfile_of "$svc")
  logfile=$(logfile_of "$svc")
  if pid_alive "$pidfile" "$bin"; then
    # A binary rebuilt since the process started: restart it, so `make run`
    # after a change runs the new code.
    if [[ $bin -nt /proc/$(cat "$pidfile") ]]; then
      say "$svc: binary rebuilt since it started, restarting"
      stop_pid "$svc" "$pidfile" "$bin" "${SERVICES_STOP_S:-15}"
    else
      say "$svc: already running (pid $(cat "$pidfile")), reusing it"
      return 0
    fi
  fi
  rm -f "$pidfile"
  [[ -x $bin ]] || die "$svc: $(rel "$bin") not found or not executable (build the project first)"
  if port_open "$HOST" "$port"; then
    die "$svc: port $HOST:$port is in use by a process this script did not start"
  fi
  say "$svc: starting on port $port"
  HTTP_PORT=$port start_bg "$pidfile" "$logfile" "$bin"
}

wait_one() {
  local svc=$1 port pidfile logfile bin start=$SECONDS
  port=$(port_of "$svc")
  pidfile=$(pidfile_of "$svc")
  logfile=$(logfile_of "$svc")
  bin=$BIN_DIR/$svc
  while ! healthy "$port"; do
    if ! pid_alive "$pidfile" "$bin"; then
      show_log_tail "$logfile"
      die "$svc exited during startup, see $(rel "$logfile") ('services.sh stop' stops the others)"
    fi
    if (( SECONDS - start >= WAIT_S )); then
      show_log_tail "$logfile"
      die "$svc: no answer on http://$HOST:$port/healthz after ${WAIT_S}s, see $(rel "$logfile")"
    fi
    sleep 0.25
  done
}

print_table() {
  local svc port pidfile state
  printf '%s %-14s %-8s %-8s %-28s %s\n' "$PFX" SERVICE STATE PID URL LOG
  for svc in "${SERVICES[@]}"; do
    port=$(port_of "$svc")
    pidfile=$(pidfile_of "$svc")
    if pid_alive "$pidfile" "$BIN_DIR/$svc"; then
      if healthy "$port"; then state=ready; else state=starting; fi
      printf '%s %-14s %-8s %-8s %-28s %s\n' "$PFX" "$svc" "$state" "$(cat "$pidfile")" \
        "http://$HOST:$port" "$(rel "$(logfile_of "$svc")")"
    else
      printf '%s %-14s %-8s %-8s %-28s %s\n' "$PFX" "$svc" stopped - "http://$HOST:$port" \
        "$(rel "$(logfile_of "$svc")")"
    fi
  done
}

cmd_start() {
  local svc t0=$SECONDS
  say "KAFKA_BROKERS=$KAFKA_BROKERS MONGO_URI=$MONGO_URI${FERRETDB_PG_URI:+ FERRETDB_PG_URI=$FERRETDB_PG_URI}"
  # start all first, then wait: they come up in parallel
  for svc in "${SERVICES[@]}"; do start_one "$svc"; done
  for svc in "${SERVICES[@]}"; do wait_one "$svc"; done
  say "all healthy after $((SECONDS - t0))s"
  print_table
}

cmd_stop() {
  local svc
  for svc in "${SERVICES[@]}"; do
    stop_pid "$svc" "$(pidfile_of "$svc")" "$BIN_DIR/$svc" "${SERVICES_STOP_S:-15}"
  done
}

case ${1:-} in
  start)  cmd_start ;;
  stop)   cmd_stop ;;
  status) print_table ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
