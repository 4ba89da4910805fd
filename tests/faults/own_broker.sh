#!/usr/bin/env bash
# A Kafka broker of a fault scenario's own (tests/faults), so the broker can be
# stopped and started again without touching the local stack's: a single
# KRaft node like deploy/local/stack.sh's (its server.properties.in), on other
# ports, with its data under dir. Formats dir on first use; then runs the
# broker in the foreground (exec: the caller's pid is the JVM's).
#
#   tests/faults/own_broker.sh DIR PORT CONTROLLER_PORT
#
# The jars: FAULTS_KAFKA_LIBS (not KAFKA_*: the services take those for
# librdkafka properties), else <repo>/.local/kafka/libs (deploy/local/stack.sh
# install fetches them). Heap: OWN_BROKER_HEAP (default -Xmx384m).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
LIBS=${FAULTS_KAFKA_LIBS:-$ROOT/.local/kafka/libs}
[[ $# -eq 3 ]] || { echo "usage: $0 DIR PORT CONTROLLER_PORT" >&2; exit 2; }
dir=$1 port=$2 cport=$3
[[ -d $LIBS ]] || { echo "$0: no Kafka jars in $LIBS (deploy/local/stack.sh install, or set FAULTS_KAFKA_LIBS)" >&2; exit 1; }
mkdir -p "$dir/data" "$dir/logs"
sed -e "s|@KAFKA_DATA_DIR@|$dir/data|g" -e "s|127.0.0.1:9093|127.0.0.1:$cport|g" \
    -e "s|127.0.0.1:9092|127.0.0.1:$port|g" "$ROOT/deploy/local/kafka/server.properties.in" >"$dir/server.properties"
tool() { java -Xmx128m -Dlog4j.configuration="file:$ROOT/deploy/local/kafka/tools-log4j.properties" -cp "$LIBS/*" "$@"; }
if [[ ! -f $dir/data/meta.properties ]]; then
  id=$(tool kafka.tools.StorageTool random-uuid)
  tool kafka.tools.StorageTool format -t "$id" -c "$dir/server.properties" --ignore-formatted >"$dir/format.log" 2>&1
fi
# shellcheck disable=SC2086
exec java ${OWN_BROKER_HEAP:--Xmx384m} -XX:+UseG1GC -Djava.awt.headless=true -Dkafka.logs.dir="$dir/logs" \
  -Dlog4j.configuration="file:$ROOT/deploy/local/kafka/log4j.properties" -cp "$LIBS/*" kafka.Kafka "$dir/server.properties"
