/* What the Kafka benchmarks (command_bench, saga_bench, read_bench) share: a config
 * naming the broker and the run's topic prefix, and quiet clients. Each
 * exits 2 with a message on stderr when it cannot do its job: a benchmark
 * has nothing to measure then. */
#ifndef BENCH_KAFKA_H
#define BENCH_KAFKA_H

#include "cqrs/config.h"

#include <librdkafka/rdkafka.h>

/* cfg from the defaults, KAFKA_BROKERS=brokers, TOPIC_PREFIX=prefix and the
 * environment's TOPIC_PARTITIONS, if set (the services' partition count for
 * the topics a benchmark creates). */
void bench_load_cfg(cqrs_config_t *cfg, const char *brokers, const char *prefix);

/* A producer (linger.ms 5) or a read_committed consumer of group group
 * (no auto commit), logging warnings and errors only as name. */
rd_kafka_t *bench_client(const cqrs_config_t *cfg, rd_kafka_type_t type, const char *group);

#endif
