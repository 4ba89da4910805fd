#!/usr/bin/env bash
# The broker fault for tests/faults: stops the local stack's Kafka (the process
# deploy/local/stack.sh started, by the pid file it wrote) and starts it again
# with deploy/local/stack.sh start, which starts only what is not running and
# waits until it answers. Every service and test on the machine sees the
# outage: run only on a stack nothing else uses (the fault suite runs it only
# with FAULTS_LONG=1 FAULTS_STACK_RESTARTS=1).
#
#   tests/faults/stack_fault.sh broker
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
case ${1:-} in
  broker) pidfile=$ROOT/.local/run/kafka.pid ;;
  *) echo "usage: $0 broker" >&2; exit 2 ;;
esac
[[ -s $pidfile ]] || { echo "$0: no $pidfile: is the local stack running from $ROOT?" >&2; exit 1; }
pid=$(cat "$pidfile")
kill -TERM "$pid"
for _ in $(seq 1 600); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
"$ROOT/deploy/local/stack.sh" start >/dev/null
