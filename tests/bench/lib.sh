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

# The local broker's request counters (Kafka's RequestMetrics over JMX), to
# count what a measurement asks of it. The local broker listens for JMX only
# once asked: bench_broker_jmx opens a port on 127.0.0.1 in its running JVM
# (jcmd; it stays open until the broker stops) and fails (with a line on
# stderr) when that cannot be done.
BENCH_BROKER_JMX_PORT=${BENCH_BROKER_JMX_PORT:-9999}
bench_broker_jmx() {
  local pid
  pid=$(cat .local/run/kafka.pid 2>/dev/null) || { echo "broker requests: no .local/run/kafka.pid (is the local stack running?)" >&2; return 1; }
  (exec 3<>"/dev/tcp/127.0.0.1/$BENCH_BROKER_JMX_PORT") 2>/dev/null && return 0
  # loopback only: the port has no authentication (a JMX client may do anything in the JVM)
  jcmd "$pid" ManagementAgent.start "jmxremote.port=$BENCH_BROKER_JMX_PORT" jmxremote.host=127.0.0.1 \
    jmxremote.authenticate=false jmxremote.ssl=false >/dev/null 2>&1 || { echo "broker requests: jcmd could not open JMX on the broker (pid $pid)" >&2; return 1; }
}
# bench_broker_requests <file>: every request type's count so far, "time=<ms>" first (JmxTool's properties format)
bench_broker_requests() {
  timeout 60 java -Xmx256m -Dlog4j.configuration="file:deploy/local/kafka/tools-log4j.properties" -cp '.local/kafka/libs/*' \
    org.apache.kafka.tools.JmxTool --jmx-url "service:jmx:rmi:///jndi/rmi://127.0.0.1:$BENCH_BROKER_JMX_PORT/jmxrmi" \
    --object-name 'kafka.network:type=RequestMetrics,name=RequestsPerSec,request=*,version=*' --attributes Count \
    --one-time true --report-format properties 2>/dev/null | grep -E '^(time|kafka)' >"$1"
}
# bench_broker_rates <before> <after>: requests per second between two counts, by type, most first
# (FetchConsumer is a part of Fetch and is left out of the total)
bench_broker_rates() {
  awk -F= 'FNR == 1 { f++ }
    $1 == "time" { t[f] = $2; next }
    { split($0, a, "request="); split(a[2], b, ","); c[b[1]] += (f == 1 ? -$NF : $NF) }
    END {
      s = (t[2] - t[1]) / 1000; if (s <= 0) exit
      for (k in c) if (k != "FetchConsumer") all += c[k]
      printf "broker requests over %.0f s: %.0f/s", s, all / s
      n = 0; for (k in c) if (c[k] / s >= 1) keys[++n] = k
      for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (c[keys[j]] > c[keys[i]]) { x = keys[i]; keys[i] = keys[j]; keys[j] = x }
      for (i = 1; i <= n; i++) if (keys[i] != "FetchConsumer") printf "%s %s %.0f", (i == 1 ? ":" : ","), keys[i], c[keys[i]] / s
    }' "$1" "$2"
}
