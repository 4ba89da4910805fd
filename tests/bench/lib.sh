# Shared by the benchmark scripts (sourced, not run).

# Deletes the topics whose names start with prefix, unless BENCH_KEEP=1. A run
# that leaves its topics makes every later run measure a broker that carries
# them: after a day of runs the local broker held ~1,500 partitions of old
# runs and a live heap of ~220 MB after a full collection.
bench_drop_topics() { # brokers prefix
  [ "${BENCH_KEEP:-0}" != 1 ] || return 0
  local re
  re=$(printf '%s' "$2" | sed 's/[.[\*^$+?(){}|]/\\&/g')
  java -Xmx256m -Dlog4j.configuration="file:deploy/local/kafka/tools-log4j.properties" -cp '.local/kafka/libs/*' \
    org.apache.kafka.tools.TopicCommand --bootstrap-server "$1" --delete --topic "$re.*" >/dev/null 2>&1 || true
}
