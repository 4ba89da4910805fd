# shellcheck shell=bash disable=SC2034
# Shared helpers for deploy/local/*.sh (sourced, not run).
# Everything lives under <repo>/.local; nothing here uses an absolute machine path.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE=$ROOT/deploy/local
LOCAL=$ROOT/.local
RUN_DIR=$LOCAL/run
LOG_DIR=$LOCAL/log

# The store behind FerretDB: postgresql (default, a private cluster started by stack.sh)
# or sqlite (FerretDB's own files, no index-backed lookups; kept for before/after benchmarks).
LOCAL_STORE=${LOCAL_STORE:-postgresql}
PG_HOST=127.0.0.1
PG_PORT=${PG_PORT:-5433}
PG_USER=postgres
PG_DB=ferretdb
# What FerretDB connects to, and the default FERRETDB_PG_URI for the services.
LOCAL_PG_URI=postgres://$PG_USER@$PG_HOST:$PG_PORT/$PG_DB
# FerretDB's own PostgreSQL pool. Its default, 50, is where FerretDB v1.24 deadlocks: an
# update command holds one pooled connection while it iterates the matched documents and
# takes a second to write each one (internal/handler/common/update.go), so 50 update commands
# at once each hold one and wait forever for another: FerretDB stops answering everything
# (seen in a goroutine dump: 32 waits in pgxpool.Acquire, 50 connections in use, no query
# running). Our clients never have this many update commands in flight at once (the
# projector 4 per read model; tests/support/testkit.c's tk_ferretdb_url_arg gives the same for the
# FerretDBs tests start).
FERRETDB_POOL_MAX_CONNS=${FERRETDB_POOL_MAX_CONNS:-500}
FERRETDB_PG_URL="$LOCAL_PG_URI?pool_max_conns=$FERRETDB_POOL_MAX_CONNS"

# path relative to the repo root, for messages
rel() { local p=$1; echo "${p#"$ROOT"/}"; }

# pid_alive PIDFILE PATTERN: true if the pid in PIDFILE is alive and its command line
# contains PATTERN (guards against a recycled pid after a reboot or crash).
pid_alive() {
  local pidfile=$1 pattern=$2 pid
  [[ -f $pidfile ]] || return 1
  pid=$(cat "$pidfile" 2>/dev/null) || return 1
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  [[ -r /proc/$pid/cmdline ]] || return 0
  tr '\0' ' ' < "/proc/$pid/cmdline" | grep -qF -- "$pattern"
}

# port_open HOST PORT: true if a TCP connection succeeds (1 s timeout)
port_open() {
  timeout 1 bash -c ">/dev/tcp/$1/$2" 2>/dev/null
}

# start_bg PIDFILE LOGFILE CMD...: start CMD detached (own session, no stdin), output
# appended to LOGFILE, pid written to PIDFILE.
start_bg() {
  local pidfile=$1 logfile=$2; shift 2
  mkdir -p "$(dirname "$pidfile")" "$(dirname "$logfile")"
  echo "=== $(date '+%F %T') starting: $*" >> "$logfile"
  rm -f "$pidfile"
  # The process writes its own pid, then execs the command: with job control on,
  # setsid forks (its caller leads a process group) and $! would be a pid that
  # has already exited.
  # shellcheck disable=SC2016  # expanded by the inner bash
  setsid nohup bash -c 'echo $$ > "$0"; exec "$@"' "$pidfile" "$@" >> "$logfile" 2>&1 < /dev/null &
  local i
  for i in $(seq 1 50); do
    [[ -s $pidfile ]] && return 0
    sleep 0.1
  done
  echo $! > "$pidfile"
}

# stop_pid NAME PIDFILE PATTERN [TIMEOUT_S]: SIGTERM, wait bounded, then SIGKILL.
# Removes the pid file. Fine when nothing runs.
stop_pid() {
  local name=$1 pidfile=$2 pattern=$3 timeout=${4:-30} pid i
  if ! pid_alive "$pidfile" "$pattern"; then
    [[ -f $pidfile ]] && echo "$PFX $name: not running (removing stale $(rel "$pidfile"))"
    rm -f "$pidfile"
    return 0
  fi
  pid=$(cat "$pidfile")
  echo "$PFX $name: stopping (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < timeout * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    echo "$PFX $name: still running after ${timeout}s, sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -f "$pidfile"
  echo "$PFX $name: stopped"
}

# show the end of a log file on stderr after a failure
show_log_tail() {
  local logfile=$1 n=${2:-30}
  [[ -f $logfile ]] || return 0
  echo "---- last $n lines of $(rel "$logfile") ----" >&2
  tail -n "$n" "$logfile" >&2
  echo "----" >&2
}
