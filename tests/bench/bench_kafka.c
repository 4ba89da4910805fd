/* The Kafka benchmarks' shared setup (bench_kafka.h). */
#include "bench_kafka.h"

#include "cqrs/kafka.h"

#include <stdio.h>
#include <stdlib.h>

void bench_load_cfg(cqrs_config_t *cfg, const char *brokers, const char *prefix) {
  char b[512], p[256], n[64];
  snprintf(b, sizeof b, "KAFKA_BROKERS=%s", brokers);
  snprintf(p, sizeof p, "TOPIC_PREFIX=%s", prefix);
  char *envp[] = {b, p, NULL, NULL};
  /* the topics a benchmark creates get the services' partition count */
  const char *parts = getenv("TOPIC_PARTITIONS");
  if (parts) {
    snprintf(n, sizeof n, "TOPIC_PARTITIONS=%s", parts);
    envp[2] = n;
  }
  cqrs_error_t err;
  if (!cqrs_config_load(cfg, envp, 0, &err)) {
    fprintf(stderr, "config: %s\n", err.message);
    exit(2);
  }
}

rd_kafka_t *bench_client(const cqrs_config_t *cfg, rd_kafka_type_t type, const char *group) {
  static cqrs_log_t quiet = {"bench", CQRS_LOG_WARN};
  cqrs_error_t err;
  rd_kafka_conf_t *conf =
      type == RD_KAFKA_PRODUCER
          ? cqrs_kafka_conf_new(cfg, &quiet, &err, "linger.ms", "5", NULL)
          : cqrs_kafka_conf_new(cfg, &quiet, &err, "group.id", group, "isolation.level", "read_committed",
                                "enable.auto.commit", "false", NULL);
  rd_kafka_t *rk = conf ? cqrs_kafka_new(type, conf, &err) : NULL;
  if (!rk) {
    fprintf(stderr, "kafka: %s\n", err.message);
    exit(2);
  }
  return rk;
}
